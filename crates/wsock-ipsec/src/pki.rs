//! A small certificate authority for scenarios and tests: a self-signed CA and the machine
//! certificates it issues, made with rcgen. Machine keys are ECDSA P-256 (what IKE AUTH signs
//! with); a CA key is P-256 (certificates signed ECDSA with SHA-256) or, with
//! [`CaKey::EcdsaP384`], P-384 (signed ECDSA with SHA-384).
//!
//! Machine certificates carry DNS names as subject alternative names (the first one also as
//! the subject's common name), the digitalSignature key usage and, when asked for, the
//! IPsec-IKE extended key usage (`id-kp-ipsecIKE`, 1.3.6.1.5.5.7.3.17). Keys come from ring's
//! system randomness, so certificates differ from run to run; serial numbers and validity
//! periods are whatever the caller set, so everything but the keys and signatures repeats.
//!
//! The output is plain DER (certificates) and PKCS#8 (keys), the form
//! [`crate::ike::cert::CertAuth::new`] takes.
//!
//! # Examples
//! ```
//! use wsock_ipsec::pki::{CertAuthority, Validity};
//! let mut ca = CertAuthority::new("Scenario CA", Validity::default()).unwrap();
//! let host = ca.issue_machine(&["a.example"], true, Validity::default()).unwrap();
//! assert_eq!(host.chain.len(), 1);
//! assert!(!host.key_pkcs8.is_empty());
//! ```

use crate::error::IpsecError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};
use rustls_pki_types::UnixTime;
use std::time::Duration;

/// The IPsec-IKE extended key usage (RFC 4945 §5.1.3.12), `id-kp-ipsecIKE`.
pub const IPSEC_IKE_EKU: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 17];

/// When a certificate is valid, in wall-clock time (second precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity.
    pub not_before: UnixTime,
    /// End of validity.
    pub not_after: UnixTime,
}

impl Default for Validity {
    /// 2020-01-01 to 2100-01-01: valid for any wall clock a test or scenario uses.
    fn default() -> Self {
        Validity {
            not_before: UnixTime::since_unix_epoch(Duration::from_secs(1_577_836_800)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(4_102_444_800)),
        }
    }
}

impl Validity {
    /// From `not_before`, for `length`.
    pub fn starting(not_before: UnixTime, length: Duration) -> Self {
        let end = Duration::from_secs(not_before.as_secs()).saturating_add(length);
        Validity {
            not_before,
            not_after: UnixTime::since_unix_epoch(end),
        }
    }

    fn apply(&self, params: &mut CertificateParams) -> Result<(), IpsecError> {
        let t = |u: UnixTime| {
            let secs = i64::try_from(u.as_secs())
                .map_err(|_| IpsecError::InvalidConfig("validity out of range"))?;
            time::OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|_| IpsecError::InvalidConfig("validity out of range"))
        };
        params.not_before = t(self.not_before)?;
        params.not_after = t(self.not_after)?;
        Ok(())
    }
}

/// A certificate and its private key.
#[derive(Clone)]
pub struct MachineCert {
    /// The certificate chain, end-entity certificate first, then any intermediate CAs up to
    /// (without) the root, which is the trust anchor and not in it (DER).
    pub chain: Vec<Vec<u8>>,
    /// The private key (PKCS#8 DER, ECDSA P-256).
    pub key_pkcs8: Vec<u8>,
    /// The DNS names the certificate holds.
    pub dns_names: Vec<String>,
}

impl std::fmt::Debug for MachineCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineCert")
            .field("dns_names", &self.dns_names)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A certification authority that issues machine certificates: a self-signed root
/// ([`CertAuthority::new`]) or an intermediate CA under another one
/// ([`CertAuthority::issue_intermediate`]).
pub struct CertAuthority {
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    next_serial: u64,
    /// For an intermediate CA: its own certificate, then those above it up to (without) the
    /// root; what the certificates it issues carry after their own. Empty for a root.
    chain_above: Vec<Vec<u8>>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority")
            .field("next_serial", &self.next_serial)
            .finish_non_exhaustive()
    }
}

fn gen_err(_: rcgen::Error) -> IpsecError {
    IpsecError::InvalidConfig("certificate generation failed")
}

/// The key of a CA (a scenario's `[ca] key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CaKey {
    /// ECDSA P-256; certificates signed `ecdsa-with-SHA256`.
    #[default]
    EcdsaP256,
    /// ECDSA P-384; certificates signed `ecdsa-with-SHA384`.
    EcdsaP384,
}

impl CaKey {
    /// The key type's name in a scenario: `ecdsa-p256` or `ecdsa-p384`.
    pub fn from_name(name: &str) -> Option<CaKey> {
        match name {
            "ecdsa-p256" => Some(CaKey::EcdsaP256),
            "ecdsa-p384" => Some(CaKey::EcdsaP384),
            _ => None,
        }
    }

    fn alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            CaKey::EcdsaP384 => &PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A PKCS#8 private key of type `key` whose scalar is a hash of `seed` (with a counter, redrawn
/// in the negligible case of a hash outside the curve's scalar range).
fn derive_pkcs8(key: CaKey, seed: &[u8]) -> Result<Vec<u8>, IpsecError> {
    use p256::pkcs8::EncodePrivateKey as _;
    let hash = match key {
        CaKey::EcdsaP256 => &ring::digest::SHA256,
        CaKey::EcdsaP384 => &ring::digest::SHA384,
    };
    for counter in 0u32..64 {
        let mut ctx = ring::digest::Context::new(hash);
        ctx.update(b"wsock derived CA key\0");
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        let scalar = ctx.finish();
        let der = match key {
            CaKey::EcdsaP256 => p256::SecretKey::from_slice(scalar.as_ref())
                .ok()
                .and_then(|k| k.to_pkcs8_der().ok()),
            CaKey::EcdsaP384 => p384::SecretKey::from_slice(scalar.as_ref())
                .ok()
                .and_then(|k| k.to_pkcs8_der().ok()),
        };
        if let Some(der) = der {
            return Ok(der.as_bytes().to_vec());
        }
    }
    Err(IpsecError::InvalidConfig("no CA key could be derived"))
}

impl CertAuthority {
    /// A new CA named `common_name` (subject CN), with a fresh P-256 key.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the key or certificate cannot be made.
    pub fn new(common_name: &str, validity: Validity) -> Result<Self, IpsecError> {
        Self::with_key(common_name, validity, CaKey::EcdsaP256)
    }

    /// A new CA named `common_name` with a fresh key of type `key`. The machine certificates
    /// it issues still hold P-256 keys; only their signatures (and the CA's own) change.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the key or certificate cannot be made.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::pki::{CaKey, CertAuthority, Validity};
    /// let ca = CertAuthority::with_key("P-384 CA", Validity::default(), CaKey::EcdsaP384).unwrap();
    /// // secp384r1 (1.3.132.0.34) names the CA's curve.
    /// let oid = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    /// assert!(ca.cert_der().windows(oid.len()).any(|w| w == oid));
    /// ```
    pub fn with_key(common_name: &str, validity: Validity, key: CaKey) -> Result<Self, IpsecError> {
        let key = KeyPair::generate_for(key.alg()).map_err(gen_err)?;
        Self::from_key_pair(common_name, validity, key)
    }

    /// A CA whose key is derived from `seed` (a hash of it, as the private scalar): whoever
    /// derives from the same seed gets the same key, so the certificates one process issues
    /// verify against the CA certificate another process made. Anyone who knows the seed can
    /// issue certificates too: this is for labs whose hosts run in several processes, never for
    /// secrets (`wsock` derives it from a scenario's name and its CA's name).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the key or certificate cannot be made.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::pki::{CaKey, CertAuthority, Validity};
    /// let a = CertAuthority::derived("Lab CA", Validity::default(), CaKey::EcdsaP256, b"lab").unwrap();
    /// let b = CertAuthority::derived("Lab CA", Validity::default(), CaKey::EcdsaP256, b"lab").unwrap();
    /// assert_eq!(a.public_key_der(), b.public_key_der());
    /// ```
    pub fn derived(
        common_name: &str,
        validity: Validity,
        key: CaKey,
        seed: &[u8],
    ) -> Result<Self, IpsecError> {
        let der = derive_pkcs8(key, seed)?;
        let pair = KeyPair::try_from(der.as_slice()).map_err(gen_err)?;
        Self::from_key_pair(common_name, validity, pair)
    }

    /// The CA's SubjectPublicKeyInfo (DER).
    pub fn public_key_der(&self) -> Vec<u8> {
        use rcgen::PublicKeyData as _;
        self.issuer.key().subject_public_key_info()
    }

    fn from_key_pair(
        common_name: &str,
        validity: Validity,
        key: KeyPair,
    ) -> Result<Self, IpsecError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from_slice(&[1]));
        validity.apply(&mut params)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(CertAuthority {
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
            next_serial: 2,
            chain_above: Vec::new(),
        })
    }

    /// An intermediate CA named `common_name` under this one, with a fresh P-256 key. The
    /// certificates it issues carry their chain up to (without) the root: their own, this
    /// intermediate's, and any above it, so a peer that trusts only the root can build it.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the key or certificate cannot be made.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::pki::{CertAuthority, Validity};
    /// let mut root = CertAuthority::new("Root", Validity::default()).unwrap();
    /// let mut sub = root.issue_intermediate("Issuing CA", Validity::default()).unwrap();
    /// let host = sub.issue_machine(&["a.example"], true, Validity::default()).unwrap();
    /// assert_eq!(host.chain.len(), 2);
    /// assert_eq!(host.chain[1], sub.cert_der());
    /// ```
    pub fn issue_intermediate(
        &mut self,
        common_name: &str,
        validity: Validity,
    ) -> Result<CertAuthority, IpsecError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params)?;
        let serial = self.next_serial.to_be_bytes();
        let start = serial.iter().position(|b| *b != 0).unwrap_or(7);
        params.serial_number = Some(SerialNumber::from_slice(&serial[start..]));
        self.next_serial += 1;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        let der = cert.der().to_vec();
        let mut chain_above = vec![der.clone()];
        chain_above.extend(self.chain_above.iter().cloned());
        Ok(CertAuthority {
            cert_der: der,
            issuer: Issuer::new(params, key),
            next_serial: 1,
            chain_above,
        })
    }

    /// The CA certificate (DER): for a root, the trust anchor of the certificates it issues.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a machine certificate for `dns_names` (at least one) with a fresh P-256 key;
    /// with `ike_eku` it carries the IPsec-IKE extended key usage, else no EKU extension.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for no or invalid names, or when generation fails.
    pub fn issue_machine(
        &mut self,
        dns_names: &[&str],
        ike_eku: bool,
        validity: Validity,
    ) -> Result<MachineCert, IpsecError> {
        let Some(first) = dns_names.first() else {
            return Err(IpsecError::InvalidConfig(
                "a machine certificate needs a name",
            ));
        };
        let names: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(gen_err)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, *first);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if ike_eku {
            params.extended_key_usages =
                vec![ExtendedKeyUsagePurpose::Other(IPSEC_IKE_EKU.to_vec())];
        }
        validity.apply(&mut params)?;
        let mut cert = self.issue_with_params(params)?;
        cert.dns_names = names;
        Ok(cert)
    }

    /// Issues a certificate from rcgen parameters as the caller made them (any names, key
    /// usages, extended key usages, validity), with a fresh P-256 key and the next serial
    /// number. `dns_names` of the result is empty; the names are the caller's.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when generation fails.
    pub fn issue_with_params(
        &mut self,
        mut params: CertificateParams,
    ) -> Result<MachineCert, IpsecError> {
        params.use_authority_key_identifier_extension = true;
        let serial = self.next_serial.to_be_bytes();
        let start = serial.iter().position(|b| *b != 0).unwrap_or(7);
        params.serial_number = Some(SerialNumber::from_slice(&serial[start..]));
        self.next_serial += 1;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(MachineCert {
            chain: std::iter::once(cert.der().to_vec())
                .chain(self.chain_above.iter().cloned())
                .collect(),
            key_pkcs8: key.serialize_der(),
            dns_names: Vec::new(),
        })
    }
}
