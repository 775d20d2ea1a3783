//! Key records that let Wireshark / tshark decrypt a capture (tshark's `esp_sa` and
//! `ikev2_decryption_table` preference formats): one record per ESP SA and one per IKE SA, as `uat:` option
//! strings for `tshark -o` and as entries of the JSON key file of `esp_pcap_check.py`.
//!
//! This is debug material: only write it where the user asked for a key log.

use crate::esp::{EspSuite, Integrity};
use crate::ike::crypto::{IkeSaKeys, SkSuite};
use std::fmt::Write as _;
use std::net::IpAddr;

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// tshark's name for an ESP cipher, or `None` when tshark (4.0) cannot decrypt the suite
/// (ChaCha20-Poly1305 and AES-GMAC).
pub fn tshark_esp_encryption(suite: EspSuite) -> Option<&'static str> {
    match suite {
        EspSuite::AesGcm16 { .. } => Some("AES-GCM with 16 octet ICV [RFC4106]"),
        EspSuite::AesCbc { .. } => Some("AES-CBC [RFC3602]"),
        EspSuite::Null(_) => Some("NULL"),
        EspSuite::ChaCha20Poly1305 | EspSuite::NullAuthAesGmac { .. } => None,
    }
}

/// tshark's name for an ESP integrity transform ("NULL" for AEAD suites).
pub fn tshark_esp_authentication(suite: EspSuite) -> &'static str {
    match suite.integrity() {
        None => "NULL",
        Some(Integrity::HmacSha256_128) => "HMAC-SHA-256-128 [RFC4868]",
        Some(Integrity::HmacSha1_96) => "HMAC-SHA-1-96 [RFC2404]",
    }
}

/// One ESP SA as tshark wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspKeyRecord {
    /// Outer source address of the SA's packets.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
    /// Suite.
    pub suite: EspSuite,
    /// Encryption keying material (key || salt for GCM).
    pub encr_key: Vec<u8>,
    /// Integrity key (empty for AEAD).
    pub integ_key: Vec<u8>,
}

impl EspKeyRecord {
    /// The `uat:esp_sa:` record (all 8 fields quoted), or `None` for suites tshark cannot
    /// decrypt.
    pub fn tshark_uat(&self) -> Option<String> {
        let enc = tshark_esp_encryption(self.suite)?;
        let fam = if self.src.is_ipv4() { "IPv4" } else { "IPv6" };
        let integ = if self.integ_key.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(&self.integ_key))
        };
        let enc_key = if self.encr_key.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(&self.encr_key))
        };
        Some(format!(
            "\"{fam}\",\"{}\",\"{}\",\"0x{:08x}\",\"{enc}\",\"{enc_key}\",\"{}\",\"{integ}\"",
            self.src,
            self.dst,
            self.spi,
            tshark_esp_authentication(self.suite)
        ))
    }

    /// The entry of the `esp_sa` list of the JSON key file, or `None` as for
    /// [`EspKeyRecord::tshark_uat`].
    pub fn json(&self) -> Option<String> {
        let enc = tshark_esp_encryption(self.suite)?;
        let enc_key = if self.encr_key.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(&self.encr_key))
        };
        let auth_key = if self.integ_key.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(&self.integ_key))
        };
        Some(format!(
            "{{\"src\": \"{}\", \"dst\": \"{}\", \"spi\": \"0x{:08x}\", \"enc\": \"{enc}\", \"enc_key\": \"{enc_key}\", \"auth\": \"{}\", \"auth_key\": \"{auth_key}\"}}",
            self.src,
            self.dst,
            self.spi,
            tshark_esp_authentication(self.suite)
        ))
    }
}

/// tshark's names for an SK suite: (encryption, integrity), or `None` for ChaCha20-Poly1305.
pub fn tshark_ike_algorithms(suite: SkSuite) -> Option<(&'static str, &'static str)> {
    let integ = |i| match i {
        Integrity::HmacSha256_128 => "HMAC_SHA2_256_128 [RFC4868]",
        Integrity::HmacSha1_96 => "HMAC_SHA1_96 [RFC2404]",
    };
    match suite {
        SkSuite::AesGcm16 { key_bits: 128 } => {
            Some(("AES-GCM-128 with 16 octet ICV [RFC5282]", "NONE [RFC4306]"))
        }
        SkSuite::AesGcm16 { .. } => {
            Some(("AES-GCM-256 with 16 octet ICV [RFC5282]", "NONE [RFC4306]"))
        }
        SkSuite::AesCbc {
            key_bits: 128,
            integrity,
        } => Some(("AES-CBC-128 [RFC3602]", integ(integrity))),
        SkSuite::AesCbc { integrity, .. } => Some(("AES-CBC-256 [RFC3602]", integ(integrity))),
        SkSuite::ChaCha20Poly1305 => None,
    }
}

/// One IKE SA as tshark wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeKeyRecord {
    /// Initiator SPI.
    pub spi_i: u64,
    /// Responder SPI.
    pub spi_r: u64,
    /// SK suite.
    pub suite: SkSuite,
    /// SK_ei (with salt for GCM).
    pub sk_ei: Vec<u8>,
    /// SK_er.
    pub sk_er: Vec<u8>,
    /// SK_ai (empty for AEAD).
    pub sk_ai: Vec<u8>,
    /// SK_ar.
    pub sk_ar: Vec<u8>,
}

impl IkeKeyRecord {
    /// The record for an IKE SA's derived keys.
    pub fn new(spi_i: u64, spi_r: u64, suite: SkSuite, keys: &IkeSaKeys) -> Self {
        IkeKeyRecord {
            spi_i,
            spi_r,
            suite,
            sk_ei: keys.sk_ei.clone(),
            sk_er: keys.sk_er.clone(),
            sk_ai: keys.sk_ai.clone(),
            sk_ar: keys.sk_ar.clone(),
        }
    }

    /// The `uat:ikev2_decryption_table:` record (hex fields unquoted, names quoted), or `None`
    /// for suites tshark cannot decrypt.
    pub fn tshark_uat(&self) -> Option<String> {
        let (enc, integ) = tshark_ike_algorithms(self.suite)?;
        Some(format!(
            "{:016x},{:016x},{},{},\"{enc}\",{},{},\"{integ}\"",
            self.spi_i,
            self.spi_r,
            hex(&self.sk_ei),
            hex(&self.sk_er),
            hex(&self.sk_ai),
            hex(&self.sk_ar)
        ))
    }

    /// The entry of the `ikev2` list of the JSON key file.
    pub fn json(&self) -> Option<String> {
        let (enc, integ) = tshark_ike_algorithms(self.suite)?;
        Some(format!(
            "{{\"spii\": \"{:016x}\", \"spir\": \"{:016x}\", \"sk_ei\": \"{}\", \"sk_er\": \"{}\", \"enc\": \"{enc}\", \"sk_ai\": \"{}\", \"sk_ar\": \"{}\", \"integ\": \"{integ}\"}}",
            self.spi_i,
            self.spi_r,
            hex(&self.sk_ei),
            hex(&self.sk_er),
            hex(&self.sk_ai),
            hex(&self.sk_ar)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_match_the_oracle_readme() {
        let r = EspKeyRecord {
            src: "127.0.0.1".parse().unwrap(),
            dst: "127.0.0.2".parse().unwrap(),
            spi: 0xc002_0002,
            suite: EspSuite::AesGcm16 { key_bits: 128 },
            encr_key: vec![0x69; 20],
            integ_key: vec![],
        };
        assert_eq!(
            r.tshark_uat().unwrap(),
            format!("\"IPv4\",\"127.0.0.1\",\"127.0.0.2\",\"0xc0020002\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"", "69".repeat(20))
        );
        let i = IkeKeyRecord {
            spi_i: 0xef04_9504_7d7b_7a4d,
            spi_r: 0x566f_6b4e_f817_e298,
            suite: SkSuite::AesGcm16 { key_bits: 256 },
            sk_ei: vec![1; 36],
            sk_er: vec![2; 36],
            sk_ai: vec![],
            sk_ar: vec![],
        };
        let uat = i.tshark_uat().unwrap();
        assert!(uat.starts_with("ef0495047d7b7a4d,566f6b4ef817e298,0101"));
        assert!(uat.ends_with(",\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\""));
        assert!(EspKeyRecord {
            suite: EspSuite::ChaCha20Poly1305,
            ..r
        }
        .json()
        .is_none());
    }
}
