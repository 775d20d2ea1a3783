//! Typed provider-context data: IKE main-mode policy (`IKEEXT_POLICY` in spirit) and IPsec
//! quick-mode transport/tunnel policy (`IPSEC_TRANSPORT_POLICY` / `IPSEC_TUNNEL_POLICY` in
//! spirit), validated when the provider context is added, with the Windows enum names as the
//! vocabulary (`IKEEXT_CIPHER_AES_128`, `IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128`,
//! `IKEEXT_DH_ECP_256`, ...). Other context types keep opaque bytes.
//!
//! This crate knows nothing about IKEv2 wire transforms: the stack maps these values onto the
//! IPsec crate's proposals. Windows' own numeric values are kept ([`IkeDhGroup::value`] is the
//! Windows enum value; [`IkeDhGroup::iana`] the IKEv2 transform id).
//!
//! ```
//! use wsock_wfp::*;
//! let mut e = Engine::new();
//! let s = e.open_session(false);
//! let qm = ProviderContext::ipsec_qm_transport("qm", IpsecQmPolicy::windows_default());
//! e.add_provider_context(s, &qm).unwrap();
//! let mut bad = IpsecQmPolicy::windows_default();
//! bad.proposals.clear();
//! let err = e.add_provider_context(s, &ProviderContext::ipsec_qm_transport("bad", bad));
//! assert_eq!(err, Err(WfpError::ZeroLengthArray));
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::spec::SpecError;
use crate::{Engine, Guid, SessionId, WfpError};

/// `FWPM_PROVIDER_CONTEXT_TYPE` values.
pub mod provider_context_type {
    /// `FWPM_IPSEC_KEYING_CONTEXT`.
    pub const IPSEC_KEYING: u32 = 0;
    /// `FWPM_IPSEC_IKE_QM_TRANSPORT_CONTEXT`.
    pub const IPSEC_IKE_QM_TRANSPORT: u32 = 1;
    /// `FWPM_IPSEC_IKE_QM_TUNNEL_CONTEXT`.
    pub const IPSEC_IKE_QM_TUNNEL: u32 = 2;
    /// `FWPM_IPSEC_AUTHIP_QM_TRANSPORT_CONTEXT`.
    pub const IPSEC_AUTHIP_QM_TRANSPORT: u32 = 3;
    /// `FWPM_IPSEC_AUTHIP_QM_TUNNEL_CONTEXT`.
    pub const IPSEC_AUTHIP_QM_TUNNEL: u32 = 4;
    /// `FWPM_IPSEC_IKE_MM_CONTEXT`.
    pub const IPSEC_IKE_MM: u32 = 5;
    /// `FWPM_IPSEC_AUTHIP_MM_CONTEXT`.
    pub const IPSEC_AUTHIP_MM: u32 = 6;
    /// `FWPM_CLASSIFY_OPTIONS_CONTEXT`.
    pub const CLASSIFY_OPTIONS: u32 = 7;
    /// `FWPM_GENERAL_CONTEXT`.
    pub const GENERAL: u32 = 8;
    /// `FWPM_IPSEC_IKEV2_QM_TUNNEL_CONTEXT`.
    pub const IPSEC_IKEV2_QM_TUNNEL: u32 = 9;
    /// `FWPM_IPSEC_IKEV2_MM_CONTEXT`.
    pub const IPSEC_IKEV2_MM: u32 = 10;
    /// `FWPM_IPSEC_DOSP_CONTEXT`.
    pub const IPSEC_DOSP: u32 = 11;
    /// Largest value the engine accepts (`FWPM_PROVIDER_CONTEXT_TYPE_MAX` of current headers).
    pub const MAX: u32 = 14;

    /// Main-mode types (IKE, AuthIP, IKEv2).
    pub fn is_mm(t: u32) -> bool {
        matches!(t, IPSEC_IKE_MM | IPSEC_AUTHIP_MM | IPSEC_IKEV2_MM)
    }
    /// Quick-mode transport types (IKE, AuthIP).
    pub fn is_qm_transport(t: u32) -> bool {
        matches!(t, IPSEC_IKE_QM_TRANSPORT | IPSEC_AUTHIP_QM_TRANSPORT)
    }
    /// Quick-mode tunnel types (IKE, AuthIP, IKEv2).
    pub fn is_qm_tunnel(t: u32) -> bool {
        matches!(
            t,
            IPSEC_IKE_QM_TUNNEL | IPSEC_AUTHIP_QM_TUNNEL | IPSEC_IKEV2_QM_TUNNEL
        )
    }
    /// AuthIP types.
    pub fn is_authip(t: u32) -> bool {
        matches!(
            t,
            IPSEC_AUTHIP_MM | IPSEC_AUTHIP_QM_TRANSPORT | IPSEC_AUTHIP_QM_TUNNEL
        )
    }

    /// Parses a type name: the scenario's short names (`"ike-mm"`, `"authip-mm"`,
    /// `"ikev2-mm"`, `"ipsec-qm-transport"`, `"authip-qm-transport"`, `"ipsec-qm-tunnel"`,
    /// `"authip-qm-tunnel"`, `"ikev2-qm-tunnel"`, `"general"`, `"keying"`,
    /// `"classify-options"`, `"dosp"`), the Windows names (`FWPM_IPSEC_IKE_MM_CONTEXT`, ...)
    /// or a number.
    pub fn from_name(s: &str) -> Option<u32> {
        let t = s.trim().to_ascii_uppercase().replace('-', "_");
        if let Ok(n) = t.parse::<u32>() {
            return (n <= MAX).then_some(n);
        }
        let t = t.strip_prefix("FWPM_").unwrap_or(&t);
        let t = t.strip_suffix("_CONTEXT").unwrap_or(t);
        Some(match t {
            "IPSEC_KEYING" | "KEYING" => IPSEC_KEYING,
            "IPSEC_IKE_QM_TRANSPORT" | "IPSEC_QM_TRANSPORT" | "IKE_QM_TRANSPORT" => {
                IPSEC_IKE_QM_TRANSPORT
            }
            "IPSEC_IKE_QM_TUNNEL" | "IPSEC_QM_TUNNEL" | "IKE_QM_TUNNEL" => IPSEC_IKE_QM_TUNNEL,
            "IPSEC_AUTHIP_QM_TRANSPORT" | "AUTHIP_QM_TRANSPORT" => IPSEC_AUTHIP_QM_TRANSPORT,
            "IPSEC_AUTHIP_QM_TUNNEL" | "AUTHIP_QM_TUNNEL" => IPSEC_AUTHIP_QM_TUNNEL,
            "IPSEC_IKE_MM" | "IKE_MM" => IPSEC_IKE_MM,
            "IPSEC_AUTHIP_MM" | "AUTHIP_MM" => IPSEC_AUTHIP_MM,
            "CLASSIFY_OPTIONS" => CLASSIFY_OPTIONS,
            "GENERAL" => GENERAL,
            "IPSEC_IKEV2_QM_TUNNEL" | "IKEV2_QM_TUNNEL" => IPSEC_IKEV2_QM_TUNNEL,
            "IPSEC_IKEV2_MM" | "IKEV2_MM" => IPSEC_IKEV2_MM,
            "IPSEC_DOSP" | "DOSP" => IPSEC_DOSP,
            _ => return None,
        })
    }
}

/// `IKEEXT_POLICY_FLAG_*` (main-mode policy flags).
pub mod ike_policy_flags {
    /// `IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS`.
    pub const DISABLE_DIAGNOSTICS: u32 = 0x1;
    /// `IKEEXT_POLICY_FLAG_NO_MACHINE_LUID_VERIFY`.
    pub const NO_MACHINE_LUID_VERIFY: u32 = 0x2;
    /// `IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY`.
    pub const NO_IMPERSONATION_LUID_VERIFY: u32 = 0x4;
    /// `IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH`.
    pub const ENABLE_OPTIONAL_DH: u32 = 0x8;
    /// `IKEEXT_POLICY_FLAG_MOBIKE_NOT_SUPPORTED`.
    pub const MOBIKE_NOT_SUPPORTED: u32 = 0x10;
    /// `IKEEXT_POLICY_FLAG_SITE_TO_SITE`.
    pub const SITE_TO_SITE: u32 = 0x20;
    /// `IKEEXT_POLICY_FLAG_IMS_VPN`.
    pub const IMS_VPN: u32 = 0x40;
    /// Every known bit.
    pub const ALL: u32 = 0x7F;

    /// Parses a flag name (`"IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS"`, prefix optional).
    pub fn from_name(s: &str) -> Option<u32> {
        let t = s.trim().to_ascii_uppercase().replace('-', "_");
        let t = t.strip_prefix("IKEEXT_POLICY_FLAG_").unwrap_or(&t);
        Some(match t {
            "DISABLE_DIAGNOSTICS" => DISABLE_DIAGNOSTICS,
            "NO_MACHINE_LUID_VERIFY" => NO_MACHINE_LUID_VERIFY,
            "NO_IMPERSONATION_LUID_VERIFY" => NO_IMPERSONATION_LUID_VERIFY,
            "ENABLE_OPTIONAL_DH" => ENABLE_OPTIONAL_DH,
            "MOBIKE_NOT_SUPPORTED" => MOBIKE_NOT_SUPPORTED,
            "SITE_TO_SITE" => SITE_TO_SITE,
            "IMS_VPN" => IMS_VPN,
            _ => return None,
        })
    }
}

/// `IPSEC_POLICY_FLAG_*` (quick-mode policy flags).
pub mod ipsec_policy_flags {
    /// `IPSEC_POLICY_FLAG_ND_SECURE`: negotiation discovery, secure side (require inbound,
    /// request outbound).
    pub const ND_SECURE: u32 = 0x2;
    /// `IPSEC_POLICY_FLAG_ND_BOUNDARY`: negotiation discovery at the boundary (request both
    /// ways; clear-text fallback).
    pub const ND_BOUNDARY: u32 = 0x4;
    /// `IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL`.
    pub const CLEAR_DF_ON_TUNNEL: u32 = 0x8;
    /// `IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT`.
    pub const NAT_ENCAP_ALLOW_PEER_BEHIND_NAT: u32 = 0x10;
    /// `IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL`.
    pub const NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL: u32 = 0x20;
    /// `IPSEC_POLICY_FLAG_DONT_NEGOTIATE_SECOND_LIFETIME`.
    pub const DONT_NEGOTIATE_SECOND_LIFETIME: u32 = 0x40;
    /// `IPSEC_POLICY_FLAG_DONT_NEGOTIATE_BYTE_LIFETIME`.
    pub const DONT_NEGOTIATE_BYTE_LIFETIME: u32 = 0x80;
    /// `IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING`.
    pub const ENABLE_V6_IN_V4_TUNNELING: u32 = 0x100;
    /// `IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT`.
    pub const ENABLE_SERVER_ADDR_ASSIGNMENT: u32 = 0x200;
    /// `IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION`.
    pub const TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION: u32 = 0x400;
    /// `IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION`.
    pub const TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION: u32 = 0x800;
    /// `IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6`.
    pub const TUNNEL_BYPASS_ICMPV6: u32 = 0x1000;
    /// `IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY`.
    pub const KEY_MANAGER_ALLOW_DICTATE_KEY: u32 = 0x2000;
    /// `IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_NOTIFY_KEY`.
    pub const KEY_MANAGER_ALLOW_NOTIFY_KEY: u32 = 0x4000;
    /// `IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL`.
    pub const SITE_TO_SITE_TUNNEL: u32 = 0x10000;
    /// Every known bit.
    pub const ALL: u32 = 0x17FFE;
    /// Flags that only make sense on a tunnel policy.
    pub const TUNNEL_ONLY: u32 = CLEAR_DF_ON_TUNNEL
        | ENABLE_V6_IN_V4_TUNNELING
        | ENABLE_SERVER_ADDR_ASSIGNMENT
        | TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION
        | TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION
        | TUNNEL_BYPASS_ICMPV6
        | SITE_TO_SITE_TUNNEL;

    /// Parses a flag name (`"IPSEC_POLICY_FLAG_ND_SECURE"`, prefix optional).
    pub fn from_name(s: &str) -> Option<u32> {
        let t = s.trim().to_ascii_uppercase().replace('-', "_");
        let t = t.strip_prefix("IPSEC_POLICY_FLAG_").unwrap_or(&t);
        Some(match t {
            "ND_SECURE" => ND_SECURE,
            "ND_BOUNDARY" => ND_BOUNDARY,
            "CLEAR_DF_ON_TUNNEL" => CLEAR_DF_ON_TUNNEL,
            "NAT_ENCAP_ALLOW_PEER_BEHIND_NAT" => NAT_ENCAP_ALLOW_PEER_BEHIND_NAT,
            "NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL" => NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL,
            "DONT_NEGOTIATE_SECOND_LIFETIME" => DONT_NEGOTIATE_SECOND_LIFETIME,
            "DONT_NEGOTIATE_BYTE_LIFETIME" => DONT_NEGOTIATE_BYTE_LIFETIME,
            "ENABLE_V6_IN_V4_TUNNELING" => ENABLE_V6_IN_V4_TUNNELING,
            "ENABLE_SERVER_ADDR_ASSIGNMENT" => ENABLE_SERVER_ADDR_ASSIGNMENT,
            "TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION" => TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION,
            "TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION" => TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION,
            "TUNNEL_BYPASS_ICMPV6" => TUNNEL_BYPASS_ICMPV6,
            "KEY_MANAGER_ALLOW_DICTATE_KEY" => KEY_MANAGER_ALLOW_DICTATE_KEY,
            "KEY_MANAGER_ALLOW_NOTIFY_KEY" => KEY_MANAGER_ALLOW_NOTIFY_KEY,
            "SITE_TO_SITE_TUNNEL" => SITE_TO_SITE_TUNNEL,
            _ => return None,
        })
    }
}

/// A name that is not one of an enum's Windows names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// Which enum (`"IKEEXT_CIPHER_TYPE"`, ...).
    pub kind: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted Windows names, comma separated.
    pub expected: String,
}

fn normalize(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace(['-', ' '], "_")
}

/// Defines an enum of Windows values with its Windows names (plus accepted aliases and
/// prefixes that may be left out), `value`, `name`, `from_value`, `FromStr`, `Display` and
/// serde as the name.
macro_rules! windows_enum {
    (
        $(#[$m:meta])* $name:ident : $kind:literal, prefixes [$($prefix:literal),*] {
            $( $(#[$vm:meta])* $variant:ident = $val:literal, $wname:literal $(, $alias:literal)* ; )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vm])* $variant, )*
        }

        impl $name {
            /// Every value, in Windows enum order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The Windows numeric value.
            pub const fn value(self) -> u32 {
                match self { $( $name::$variant => $val, )* }
            }

            /// The Windows name.
            pub const fn name(self) -> &'static str {
                match self { $( $name::$variant => $wname, )* }
            }

            /// The variant with Windows value `v`.
            pub fn from_value(v: u32) -> Option<$name> {
                match v { $( $val => Some($name::$variant), )* _ => None }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                let n = normalize(s);
                let candidates = std::iter::once(n.clone())
                    $( .chain(std::iter::once(format!("{}{}", $prefix, n))) )*;
                for c in candidates {
                    $(
                        if c == $wname $(|| c == $alias)* {
                            return Ok($name::$variant);
                        }
                    )*
                }
                Err(UnknownName {
                    kind: $kind,
                    name: s.to_string(),
                    expected: [$($wname),*].join(", "),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

windows_enum! {
    /// `IKEEXT_CIPHER_TYPE`: main-mode encryption.
    IkeCipher: "IKEEXT_CIPHER_TYPE", prefixes ["IKEEXT_CIPHER_"] {
        /// `IKEEXT_CIPHER_DES`.
        Des = 0, "IKEEXT_CIPHER_DES";
        /// `IKEEXT_CIPHER_3DES`.
        TripleDes = 1, "IKEEXT_CIPHER_3DES";
        /// `IKEEXT_CIPHER_AES_128` (CBC).
        Aes128 = 2, "IKEEXT_CIPHER_AES_128";
        /// `IKEEXT_CIPHER_AES_192` (CBC).
        Aes192 = 3, "IKEEXT_CIPHER_AES_192";
        /// `IKEEXT_CIPHER_AES_256` (CBC).
        Aes256 = 4, "IKEEXT_CIPHER_AES_256";
        /// `IKEEXT_CIPHER_AES_GCM_128_16ICV`.
        AesGcm128 = 5, "IKEEXT_CIPHER_AES_GCM_128_16ICV", "IKEEXT_CIPHER_AES_GCM_128";
        /// `IKEEXT_CIPHER_AES_GCM_256_16ICV`.
        AesGcm256 = 6, "IKEEXT_CIPHER_AES_GCM_256_16ICV", "IKEEXT_CIPHER_AES_GCM_256";
    }
}

impl IkeCipher {
    /// Whether this is an AEAD (GCM) cipher.
    pub fn is_aead(self) -> bool {
        matches!(self, IkeCipher::AesGcm128 | IkeCipher::AesGcm256)
    }
    /// Key size in bits (DES 64 with parity, 3DES 192).
    pub fn key_bits(self) -> u16 {
        match self {
            IkeCipher::Des => 64,
            IkeCipher::TripleDes => 192,
            IkeCipher::Aes128 | IkeCipher::AesGcm128 => 128,
            IkeCipher::Aes192 => 192,
            IkeCipher::Aes256 | IkeCipher::AesGcm256 => 256,
        }
    }
}

windows_enum! {
    /// `IKEEXT_INTEGRITY_TYPE`: main-mode integrity (also the PRF in IKEv2 terms).
    IkeIntegrity: "IKEEXT_INTEGRITY_TYPE", prefixes ["IKEEXT_INTEGRITY_"] {
        /// `IKEEXT_INTEGRITY_MD5`.
        Md5 = 0, "IKEEXT_INTEGRITY_MD5";
        /// `IKEEXT_INTEGRITY_SHA1`.
        Sha1 = 1, "IKEEXT_INTEGRITY_SHA1", "IKEEXT_INTEGRITY_SHA_1";
        /// `IKEEXT_INTEGRITY_SHA_256`.
        Sha256 = 2, "IKEEXT_INTEGRITY_SHA_256", "IKEEXT_INTEGRITY_SHA256";
        /// `IKEEXT_INTEGRITY_SHA_384`.
        Sha384 = 3, "IKEEXT_INTEGRITY_SHA_384", "IKEEXT_INTEGRITY_SHA384";
    }
}

windows_enum! {
    /// `IKEEXT_DH_GROUP` (Windows values, not IANA numbers: see [`IkeDhGroup::iana`]).
    IkeDhGroup: "IKEEXT_DH_GROUP", prefixes ["IKEEXT_DH_GROUP_", "IKEEXT_DH_"] {
        /// `IKEEXT_DH_GROUP_NONE`.
        None = 0, "IKEEXT_DH_GROUP_NONE";
        /// `IKEEXT_DH_GROUP_1` (768-bit MODP).
        Group1 = 1, "IKEEXT_DH_GROUP_1";
        /// `IKEEXT_DH_GROUP_2` (1024-bit MODP).
        Group2 = 2, "IKEEXT_DH_GROUP_2";
        /// `IKEEXT_DH_GROUP_14` = `IKEEXT_DH_GROUP_2048`.
        Group14 = 3, "IKEEXT_DH_GROUP_14", "IKEEXT_DH_GROUP_2048";
        /// `IKEEXT_DH_ECP_256` (NIST P-256).
        Ecp256 = 4, "IKEEXT_DH_ECP_256";
        /// `IKEEXT_DH_ECP_384` (NIST P-384).
        Ecp384 = 5, "IKEEXT_DH_ECP_384";
        /// `IKEEXT_DH_GROUP_24` (2048-bit MODP, 256-bit prime order subgroup).
        Group24 = 6, "IKEEXT_DH_GROUP_24";
    }
}

impl IkeDhGroup {
    /// The IKEv2 transform id (IANA "Transform Type 4"), `None` for `IKEEXT_DH_GROUP_NONE`.
    pub fn iana(self) -> Option<u16> {
        match self {
            IkeDhGroup::None => None,
            IkeDhGroup::Group1 => Some(1),
            IkeDhGroup::Group2 => Some(2),
            IkeDhGroup::Group14 => Some(14),
            IkeDhGroup::Ecp256 => Some(19),
            IkeDhGroup::Ecp384 => Some(20),
            IkeDhGroup::Group24 => Some(24),
        }
    }
}

windows_enum! {
    /// `IKEEXT_AUTHENTICATION_METHOD_TYPE`.
    IkeAuthType: "IKEEXT_AUTHENTICATION_METHOD_TYPE", prefixes ["IKEEXT_"] {
        /// `IKEEXT_PRESHARED_KEY`: the key comes from the host's credentials for the peer.
        PresharedKey = 0, "IKEEXT_PRESHARED_KEY", "PSK", "PRESHARED_KEY";
        /// `IKEEXT_CERTIFICATE`.
        Certificate = 1, "IKEEXT_CERTIFICATE", "CERT", "CERTIFICATE";
        /// `IKEEXT_KERBEROS`.
        Kerberos = 2, "IKEEXT_KERBEROS";
        /// `IKEEXT_ANONYMOUS` (AuthIP only).
        Anonymous = 3, "IKEEXT_ANONYMOUS";
        /// `IKEEXT_SSL`.
        Ssl = 4, "IKEEXT_SSL";
        /// `IKEEXT_NTLM_V2`.
        NtlmV2 = 5, "IKEEXT_NTLM_V2", "NTLM";
        /// `IKEEXT_IPV6_CGA`.
        Ipv6Cga = 6, "IKEEXT_IPV6_CGA";
        /// `IKEEXT_CERTIFICATE_ECDSA_P256`.
        CertificateEcdsaP256 = 7, "IKEEXT_CERTIFICATE_ECDSA_P256";
        /// `IKEEXT_CERTIFICATE_ECDSA_P384`.
        CertificateEcdsaP384 = 8, "IKEEXT_CERTIFICATE_ECDSA_P384";
        /// `IKEEXT_SSL_ECDSA_P256`.
        SslEcdsaP256 = 9, "IKEEXT_SSL_ECDSA_P256";
        /// `IKEEXT_SSL_ECDSA_P384`.
        SslEcdsaP384 = 10, "IKEEXT_SSL_ECDSA_P384";
        /// `IKEEXT_EAP`.
        Eap = 11, "IKEEXT_EAP";
    }
}

impl IkeAuthType {
    /// Whether the method authenticates with a certificate (and so may name a root CA).
    pub fn uses_certificate(self) -> bool {
        matches!(
            self,
            IkeAuthType::Certificate
                | IkeAuthType::CertificateEcdsaP256
                | IkeAuthType::CertificateEcdsaP384
                | IkeAuthType::Ssl
                | IkeAuthType::SslEcdsaP256
                | IkeAuthType::SslEcdsaP384
        )
    }
}

windows_enum! {
    /// `IPSEC_AUTH_TRANSFORM_ID0` (the `{IPSEC_AUTH_TYPE, IPSEC_AUTH_CONFIG}` pairs Windows
    /// defines). The GCM ids used alone (ESP auth only, or AH) are AES-GMAC.
    IpsecAuth: "IPSEC_AUTH_TRANSFORM_ID", prefixes ["IPSEC_AUTH_TRANSFORM_ID_", "IPSEC_AUTH_TYPE_", "IPSEC_AUTH_CONFIG_"] {
        /// `IPSEC_AUTH_TRANSFORM_ID_HMAC_MD5_96`.
        HmacMd5_96 = 0, "IPSEC_AUTH_TRANSFORM_ID_HMAC_MD5_96", "IPSEC_AUTH_TYPE_MD5";
        /// `IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96`.
        HmacSha1_96 = 1, "IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96", "IPSEC_AUTH_TYPE_SHA_1", "IPSEC_AUTH_TYPE_SHA1";
        /// `IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128`.
        HmacSha256_128 = 2, "IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128", "IPSEC_AUTH_TYPE_SHA_256", "IPSEC_AUTH_TYPE_SHA256";
        /// `IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128` (AES-GMAC-128 when used without a cipher).
        GcmAes128 = 3, "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128", "IPSEC_AUTH_TYPE_AES_128", "GMAC_AES_128";
        /// `IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192`.
        GcmAes192 = 4, "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192", "IPSEC_AUTH_TYPE_AES_192", "GMAC_AES_192";
        /// `IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256`.
        GcmAes256 = 5, "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256", "IPSEC_AUTH_TYPE_AES_256", "GMAC_AES_256";
    }
}

impl IpsecAuth {
    /// `IPSEC_AUTH_TYPE` of the pair (MD5 0, SHA_1 1, SHA_256 2, AES_128 3, AES_192 4,
    /// AES_256 5).
    pub fn auth_type(self) -> u32 {
        self.value()
    }
    /// `IPSEC_AUTH_CONFIG` of the pair (HMAC_MD5_96 0 ... GCM_AES_256 5).
    pub fn auth_config(self) -> u32 {
        self.value()
    }
    /// Key size in bits of a GCM/GMAC id; `None` for the HMACs.
    pub fn gcm_key_bits(self) -> Option<u16> {
        match self {
            IpsecAuth::GcmAes128 => Some(128),
            IpsecAuth::GcmAes192 => Some(192),
            IpsecAuth::GcmAes256 => Some(256),
            _ => None,
        }
    }
    /// Whether this is a GCM/GMAC id.
    pub fn is_gcm(self) -> bool {
        matches!(
            self,
            IpsecAuth::GcmAes128 | IpsecAuth::GcmAes192 | IpsecAuth::GcmAes256
        )
    }
}

windows_enum! {
    /// `IPSEC_CIPHER_TRANSFORM_ID0` (the `{IPSEC_CIPHER_TYPE, IPSEC_CIPHER_CONFIG}` pairs).
    /// The value is the `IPSEC_CIPHER_CONFIG`.
    IpsecCipher: "IPSEC_CIPHER_TRANSFORM_ID", prefixes ["IPSEC_CIPHER_TRANSFORM_ID_", "IPSEC_CIPHER_TYPE_", "IPSEC_CIPHER_CONFIG_"] {
        /// `IPSEC_CIPHER_TRANSFORM_ID_CBC_DES`.
        CbcDes = 1, "IPSEC_CIPHER_TRANSFORM_ID_CBC_DES", "IPSEC_CIPHER_TYPE_DES";
        /// `IPSEC_CIPHER_TRANSFORM_ID_CBC_3DES`.
        Cbc3Des = 2, "IPSEC_CIPHER_TRANSFORM_ID_CBC_3DES", "IPSEC_CIPHER_TYPE_3DES";
        /// `IPSEC_CIPHER_TRANSFORM_ID_AES_128` (CBC).
        CbcAes128 = 3, "IPSEC_CIPHER_TRANSFORM_ID_AES_128", "IPSEC_CIPHER_TYPE_AES_128", "IPSEC_CIPHER_TRANSFORM_ID_CBC_AES_128", "IPSEC_CIPHER_CONFIG_CBC_AES_128";
        /// `IPSEC_CIPHER_TRANSFORM_ID_AES_192` (CBC).
        CbcAes192 = 4, "IPSEC_CIPHER_TRANSFORM_ID_AES_192", "IPSEC_CIPHER_TYPE_AES_192", "IPSEC_CIPHER_TRANSFORM_ID_CBC_AES_192", "IPSEC_CIPHER_CONFIG_CBC_AES_192";
        /// `IPSEC_CIPHER_TRANSFORM_ID_AES_256` (CBC).
        CbcAes256 = 5, "IPSEC_CIPHER_TRANSFORM_ID_AES_256", "IPSEC_CIPHER_TYPE_AES_256", "IPSEC_CIPHER_TRANSFORM_ID_CBC_AES_256", "IPSEC_CIPHER_CONFIG_CBC_AES_256";
        /// `IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128`.
        GcmAes128 = 6, "IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128", "IPSEC_CIPHER_TYPE_AES_GCM_128", "IPSEC_CIPHER_CONFIG_GCM_AES_128";
        /// `IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_192`.
        GcmAes192 = 7, "IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_192", "IPSEC_CIPHER_TYPE_AES_GCM_192", "IPSEC_CIPHER_CONFIG_GCM_AES_192";
        /// `IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256`.
        GcmAes256 = 8, "IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256", "IPSEC_CIPHER_TYPE_AES_GCM_256", "IPSEC_CIPHER_CONFIG_GCM_AES_256";
    }
}

impl IpsecCipher {
    /// `IPSEC_CIPHER_TYPE` of the pair (DES 1, 3DES 2, AES_128 3, AES_192 4, AES_256 5).
    pub fn cipher_type(self) -> u32 {
        match self {
            IpsecCipher::CbcDes => 1,
            IpsecCipher::Cbc3Des => 2,
            IpsecCipher::CbcAes128 | IpsecCipher::GcmAes128 => 3,
            IpsecCipher::CbcAes192 | IpsecCipher::GcmAes192 => 4,
            IpsecCipher::CbcAes256 | IpsecCipher::GcmAes256 => 5,
        }
    }
    /// `IPSEC_CIPHER_CONFIG` of the pair.
    pub fn cipher_config(self) -> u32 {
        self.value()
    }
    /// Key size in bits (DES 64 with parity, 3DES 192).
    pub fn key_bits(self) -> u16 {
        match self {
            IpsecCipher::CbcDes => 64,
            IpsecCipher::Cbc3Des => 192,
            IpsecCipher::CbcAes128 | IpsecCipher::GcmAes128 => 128,
            IpsecCipher::CbcAes192 | IpsecCipher::GcmAes192 => 192,
            IpsecCipher::CbcAes256 | IpsecCipher::GcmAes256 => 256,
        }
    }
    /// Whether this is a GCM cipher (which must be paired with the GCM auth id of the same
    /// key size).
    pub fn is_gcm(self) -> bool {
        matches!(
            self,
            IpsecCipher::GcmAes128 | IpsecCipher::GcmAes192 | IpsecCipher::GcmAes256
        )
    }
    /// The GCM auth id a GCM cipher must be paired with.
    pub fn gcm_auth(self) -> Option<IpsecAuth> {
        match self {
            IpsecCipher::GcmAes128 => Some(IpsecAuth::GcmAes128),
            IpsecCipher::GcmAes192 => Some(IpsecAuth::GcmAes192),
            IpsecCipher::GcmAes256 => Some(IpsecAuth::GcmAes256),
            _ => None,
        }
    }
}

windows_enum! {
    /// `IPSEC_PFS_GROUP`.
    IpsecPfsGroup: "IPSEC_PFS_GROUP", prefixes ["IPSEC_PFS_"] {
        /// `IPSEC_PFS_NONE`.
        None = 0, "IPSEC_PFS_NONE";
        /// `IPSEC_PFS_1`.
        Group1 = 1, "IPSEC_PFS_1";
        /// `IPSEC_PFS_2`.
        Group2 = 2, "IPSEC_PFS_2";
        /// `IPSEC_PFS_14` = `IPSEC_PFS_2048`.
        Group14 = 3, "IPSEC_PFS_14", "IPSEC_PFS_2048";
        /// `IPSEC_PFS_ECP_256`.
        Ecp256 = 4, "IPSEC_PFS_ECP_256";
        /// `IPSEC_PFS_ECP_384`.
        Ecp384 = 5, "IPSEC_PFS_ECP_384";
        /// `IPSEC_PFS_MM`: reuse the main-mode DH group.
        Mm = 6, "IPSEC_PFS_MM";
        /// `IPSEC_PFS_24`.
        Group24 = 7, "IPSEC_PFS_24";
    }
}

impl IpsecPfsGroup {
    /// The IKEv2 DH transform id, `None` for NONE and MM (which needs the MM group).
    pub fn iana(self) -> Option<u16> {
        match self {
            IpsecPfsGroup::Group1 => Some(1),
            IpsecPfsGroup::Group2 => Some(2),
            IpsecPfsGroup::Group14 => Some(14),
            IpsecPfsGroup::Ecp256 => Some(19),
            IpsecPfsGroup::Ecp384 => Some(20),
            IpsecPfsGroup::Group24 => Some(24),
            IpsecPfsGroup::None | IpsecPfsGroup::Mm => None,
        }
    }
}

// ------------------------------------------------------------------------------ main mode

/// One authentication method of a main-mode policy (`IKEEXT_AUTHENTICATION_METHOD0` in
/// spirit). Pre-shared keys are not stored here: the key for a peer comes from the host's
/// credentials (the scenario's `[[host.psk]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeAuthMethod {
    /// The method.
    pub method: IkeAuthType,
    /// For certificate methods: the root CA (subject name) the peer's certificate must chain
    /// to (`inboundConfig`/`outboundConfig` root array in spirit); `None`: any trusted root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<String>,
}

impl IkeAuthMethod {
    /// `IKEEXT_PRESHARED_KEY`.
    pub fn psk() -> Self {
        IkeAuthMethod {
            method: IkeAuthType::PresharedKey,
            root_ca: None,
        }
    }
    /// `IKEEXT_CERTIFICATE` with an optional root CA name.
    pub fn certificate(root_ca: Option<&str>) -> Self {
        IkeAuthMethod {
            method: IkeAuthType::Certificate,
            root_ca: root_ca.map(str::to_string),
        }
    }
    /// `IKEEXT_ANONYMOUS`.
    pub fn anonymous() -> Self {
        IkeAuthMethod {
            method: IkeAuthType::Anonymous,
            root_ca: None,
        }
    }
    /// Any method without a root CA.
    pub fn of(method: IkeAuthType) -> Self {
        IkeAuthMethod {
            method,
            root_ca: None,
        }
    }
}

/// A main-mode proposal (`IKEEXT_PROPOSAL0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeProposal {
    /// `cipherAlgorithm`.
    pub cipher: IkeCipher,
    /// `integrityAlgorithm`.
    pub integrity: IkeIntegrity,
    /// `dhGroup`.
    pub dh_group: IkeDhGroup,
    /// `maxLifetimeSeconds`: the MM SA lifetime (must be > 0).
    pub max_lifetime_seconds: u32,
    /// `quickModeLimit`: QM SAs per MM SA; 0 = unlimited.
    #[serde(default)]
    pub quick_mode_limit: u32,
}

impl IkeProposal {
    /// A proposal with no quick-mode limit.
    pub fn new(
        cipher: IkeCipher,
        integrity: IkeIntegrity,
        dh_group: IkeDhGroup,
        max_lifetime_seconds: u32,
    ) -> Self {
        IkeProposal {
            cipher,
            integrity,
            dh_group,
            max_lifetime_seconds,
            quick_mode_limit: 0,
        }
    }
}

/// A main-mode policy (`IKEEXT_POLICY1` in spirit): how to authenticate and which MM
/// proposals to offer/accept, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeMmPolicy {
    /// `authenticationMethods`, in order of preference.
    pub auth_methods: Vec<IkeAuthMethod>,
    /// `initiatorImpersonationType` = `IKEEXT_IMPERSONATION_SOCKET_PRINCIPAL` (AuthIP only).
    #[serde(default)]
    pub impersonation: bool,
    /// `ikeProposals`, in order of preference.
    pub proposals: Vec<IkeProposal>,
    /// `IKEEXT_POLICY_FLAG_*` ([`ike_policy_flags`]).
    #[serde(default)]
    pub flags: u32,
    /// `maxDynamicFilters` (0 disables).
    #[serde(default)]
    pub max_dynamic_filters: u32,
    /// `retransmitDurationSecs` (`IKEEXT_POLICY1`); `None`: the host's default schedule.
    #[serde(default)]
    pub retransmit_duration_seconds: Option<u32>,
}

impl IkeMmPolicy {
    /// The secure-socket default main-mode policy (winsock-api.md §1.9, an AuthIP MM policy):
    /// anonymous authentication, no impersonation; proposals AES-128/SHA-1/ECP-256 then
    /// 3DES/SHA-1/DH group 2, each with a 2 h lifetime and no quick-mode limit. Anonymous
    /// authentication is AuthIP-only, so add it as an AuthIP MM context
    /// ([`ProviderContext::authip_mm`](crate::ProviderContext::authip_mm)).
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::*;
    /// let p = IkeMmPolicy::windows_default();
    /// assert_eq!(p.proposals[0].dh_group, IkeDhGroup::Ecp256);
    /// assert!(p.validate(provider_context_type::IPSEC_AUTHIP_MM).is_ok());
    /// ```
    pub fn windows_default() -> Self {
        IkeMmPolicy {
            auth_methods: vec![IkeAuthMethod::anonymous()],
            impersonation: false,
            proposals: vec![
                IkeProposal::new(
                    IkeCipher::Aes128,
                    IkeIntegrity::Sha1,
                    IkeDhGroup::Ecp256,
                    7200,
                ),
                IkeProposal::new(
                    IkeCipher::TripleDes,
                    IkeIntegrity::Sha1,
                    IkeDhGroup::Group2,
                    7200,
                ),
            ],
            flags: 0,
            max_dynamic_filters: 0,
            retransmit_duration_seconds: None,
        }
    }

    /// Checks the policy for a provider context of type `context_type`.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] whose `error` is: `FWP_E_PROVIDER_CONTEXT_MISMATCH` (not a main-mode
    /// type), `FWP_E_ZERO_LENGTH_ARRAY` (no auth method / no proposal),
    /// `FWP_E_DUPLICATE_AUTH_METHOD`, `FWP_E_INCOMPATIBLE_AUTH_METHOD` (anonymous outside
    /// AuthIP; Kerberos/NTLM/SSL/CGA with IKEv2; EAP outside IKEv2), `FWP_E_INCOMPATIBLE_DH_GROUP`
    /// (no DH outside AuthIP), `FWP_E_INVALID_PARAMETER` (lifetime 0, a root CA on a
    /// non-certificate method or empty, impersonation outside AuthIP, retransmit duration 0),
    /// `FWP_E_INVALID_FLAGS`.
    pub fn validate(&self, context_type: u32) -> Result<(), SpecError> {
        use provider_context_type as t;
        if !t::is_mm(context_type) {
            return Err(SpecError::new(
                WfpError::ProviderContextMismatch,
                "type",
                format!("a main-mode policy needs a main-mode context type, not {context_type}"),
            ));
        }
        let authip = context_type == t::IPSEC_AUTHIP_MM;
        let ikev2 = context_type == t::IPSEC_IKEV2_MM;
        if self.auth_methods.is_empty() {
            return Err(SpecError::new(
                WfpError::ZeroLengthArray,
                "auth",
                "a main-mode policy needs at least one authentication method",
            ));
        }
        for (i, a) in self.auth_methods.iter().enumerate() {
            let path = format!("auth[{i}]");
            if self.auth_methods[..i].iter().any(|b| b.method == a.method) {
                return Err(SpecError::new(
                    WfpError::DuplicateAuthMethod,
                    path,
                    format!("{} is listed twice", a.method),
                ));
            }
            match &a.root_ca {
                Some(_) if !a.method.uses_certificate() => {
                    return Err(SpecError::new(
                        WfpError::InvalidParameter,
                        format!("{path}.root_ca"),
                        format!("{} takes no root CA", a.method),
                    ))
                }
                Some(r) if r.trim().is_empty() => {
                    return Err(SpecError::new(
                        WfpError::InvalidParameter,
                        format!("{path}.root_ca"),
                        "the root CA name is empty",
                    ))
                }
                _ => {}
            }
            let incompatible = match a.method {
                IkeAuthType::Anonymous => !authip,
                IkeAuthType::Kerberos
                | IkeAuthType::NtlmV2
                | IkeAuthType::Ssl
                | IkeAuthType::SslEcdsaP256
                | IkeAuthType::SslEcdsaP384
                | IkeAuthType::Ipv6Cga => ikev2,
                IkeAuthType::Eap => !ikev2,
                _ => false,
            };
            if incompatible {
                return Err(SpecError::new(
                    WfpError::IncompatibleAuthMethod,
                    path,
                    format!(
                        "{} is not available in a context of type {context_type}",
                        a.method
                    ),
                ));
            }
        }
        if self.impersonation && !authip {
            return Err(SpecError::new(
                WfpError::InvalidParameter,
                "impersonation",
                "initiator impersonation is an AuthIP feature",
            ));
        }
        if self.proposals.is_empty() {
            return Err(SpecError::new(
                WfpError::ZeroLengthArray,
                "proposal",
                "a main-mode policy needs at least one proposal",
            ));
        }
        for (i, p) in self.proposals.iter().enumerate() {
            let path = format!("proposal[{i}]");
            if p.max_lifetime_seconds == 0 {
                return Err(SpecError::new(
                    WfpError::InvalidParameter,
                    format!("{path}.lifetime_seconds"),
                    "a main-mode lifetime of 0 seconds",
                ));
            }
            if p.dh_group == IkeDhGroup::None && !authip {
                return Err(SpecError::new(
                    WfpError::IncompatibleDhGroup,
                    format!("{path}.dh_group"),
                    "IKEEXT_DH_GROUP_NONE is only allowed in an AuthIP main-mode policy",
                ));
            }
        }
        if self.flags & !ike_policy_flags::ALL != 0 {
            return Err(SpecError::new(
                WfpError::InvalidFlags,
                "policy_flags",
                format!("unknown IKEEXT_POLICY_FLAG bits 0x{:x}", self.flags),
            ));
        }
        if self.retransmit_duration_seconds == Some(0) {
            return Err(SpecError::new(
                WfpError::InvalidParameter,
                "retransmit_duration_seconds",
                "a retransmit duration of 0 seconds",
            ));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------ quick mode

/// One SA transform of a quick-mode proposal (`IPSEC_SA_TRANSFORM0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IpsecTransform {
    /// `IPSEC_TRANSFORM_AH` (1).
    Ah {
        /// Integrity.
        auth: IpsecAuth,
    },
    /// `IPSEC_TRANSFORM_ESP_AUTH` (2): ESP with the NULL cipher, integrity only (with a GCM id:
    /// AES-GMAC).
    EspAuth {
        /// Integrity.
        auth: IpsecAuth,
    },
    /// `IPSEC_TRANSFORM_ESP_CIPHER` (3): encryption without integrity; refused on add
    /// (EMULATOR CHOICE, see docs/windows-differences.md).
    EspCipher {
        /// Cipher.
        cipher: IpsecCipher,
    },
    /// `IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER` (4).
    EspAuthAndCipher {
        /// Integrity (the GCM id of the same size for a GCM cipher).
        auth: IpsecAuth,
        /// Cipher.
        cipher: IpsecCipher,
    },
    /// `IPSEC_TRANSFORM_ESP_AUTH_FW` (5): ESP integrity for the authenticated firewall.
    EspAuthFw {
        /// Integrity.
        auth: IpsecAuth,
    },
}

impl IpsecTransform {
    /// `IPSEC_TRANSFORM_TYPE` value.
    pub fn transform_type(self) -> u32 {
        match self {
            IpsecTransform::Ah { .. } => 1,
            IpsecTransform::EspAuth { .. } => 2,
            IpsecTransform::EspCipher { .. } => 3,
            IpsecTransform::EspAuthAndCipher { .. } => 4,
            IpsecTransform::EspAuthFw { .. } => 5,
        }
    }
    /// The Windows name (`"IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER"`, ...).
    pub fn type_name(self) -> &'static str {
        match self {
            IpsecTransform::Ah { .. } => "IPSEC_TRANSFORM_AH",
            IpsecTransform::EspAuth { .. } => "IPSEC_TRANSFORM_ESP_AUTH",
            IpsecTransform::EspCipher { .. } => "IPSEC_TRANSFORM_ESP_CIPHER",
            IpsecTransform::EspAuthAndCipher { .. } => "IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER",
            IpsecTransform::EspAuthFw { .. } => "IPSEC_TRANSFORM_ESP_AUTH_FW",
        }
    }
    /// Whether this is an ESP transform (else AH).
    pub fn is_esp(self) -> bool {
        !matches!(self, IpsecTransform::Ah { .. })
    }
    /// Whether it encrypts (has a cipher).
    pub fn encrypts(self) -> bool {
        matches!(
            self,
            IpsecTransform::EspCipher { .. } | IpsecTransform::EspAuthAndCipher { .. }
        )
    }
    /// The integrity id, if any.
    pub fn auth(self) -> Option<IpsecAuth> {
        match self {
            IpsecTransform::Ah { auth }
            | IpsecTransform::EspAuth { auth }
            | IpsecTransform::EspAuthAndCipher { auth, .. }
            | IpsecTransform::EspAuthFw { auth } => Some(auth),
            IpsecTransform::EspCipher { .. } => None,
        }
    }
    /// The cipher id, if any.
    pub fn cipher(self) -> Option<IpsecCipher> {
        match self {
            IpsecTransform::EspCipher { cipher }
            | IpsecTransform::EspAuthAndCipher { cipher, .. } => Some(cipher),
            _ => None,
        }
    }
}

/// `IPSEC_SA_LIFETIME0`: whichever limit is reached first ends the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecLifetime {
    /// `lifetimeSeconds`.
    pub seconds: u32,
    /// `lifetimeKilobytes`.
    pub kilobytes: u32,
    /// `lifetimePackets`.
    pub packets: u32,
}

impl IpsecLifetime {
    /// The secure-socket default: 1 h, "55 GB" (taken as 55 GiB in KiB, UNCONFIRMED unit),
    /// 0x7FFFFFFF packets (the Microsoft sample's packet limit).
    pub const WINDOWS_DEFAULT: IpsecLifetime = IpsecLifetime {
        seconds: 3600,
        kilobytes: 55 * 1024 * 1024,
        packets: 0x7FFF_FFFF,
    };
}

/// A quick-mode proposal (`IPSEC_PROPOSAL0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecProposal {
    /// `lifetime`.
    pub lifetime: IpsecLifetime,
    /// `saTransforms`: one ESP transform, one AH transform, or AH + ESP.
    pub transforms: Vec<IpsecTransform>,
    /// `pfsGroup`.
    pub pfs_group: IpsecPfsGroup,
}

impl IpsecProposal {
    /// A proposal with one transform, the default lifetime and no PFS.
    pub fn single(t: IpsecTransform) -> Self {
        IpsecProposal {
            lifetime: IpsecLifetime::WINDOWS_DEFAULT,
            transforms: vec![t],
            pfs_group: IpsecPfsGroup::None,
        }
    }
    /// Whether an SA made from this proposal encrypts.
    pub fn encrypts(&self) -> bool {
        self.transforms.iter().any(|t| t.encrypts())
    }
}

/// Tunnel endpoints of a tunnel-mode policy (`IPSEC_TUNNEL_ENDPOINTS0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelEndpoints {
    /// Local tunnel endpoint.
    pub local: IpAddr,
    /// Remote tunnel endpoint.
    pub remote: IpAddr,
}

/// A quick-mode policy (`IPSEC_TRANSPORT_POLICY2` / `IPSEC_TUNNEL_POLICY2` in spirit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecQmPolicy {
    /// `ipsecProposals`, in order of preference.
    pub proposals: Vec<IpsecProposal>,
    /// `IPSEC_POLICY_FLAG_*` ([`ipsec_policy_flags`]); `ND_SECURE` / `ND_BOUNDARY` select
    /// negotiation discovery.
    #[serde(default)]
    pub flags: u32,
    /// `ndAllowClearTimeoutSeconds`.
    #[serde(default)]
    pub nd_allow_clear_timeout_seconds: u32,
    /// `saIdleTimeout.idleTimeoutSeconds` (must be > 0).
    pub idle_timeout_seconds: u32,
    /// `saIdleTimeout.idleTimeoutSecondsFailOver` (must be > 0).
    pub idle_timeout_fail_over_seconds: u32,
    /// Anti-replay window of inbound SAs (0 disables the check; at most 65536). Not a field
    /// of the Windows structures (Windows uses a fixed window): an emulator knob.
    pub replay_window: u32,
    /// Tunnel endpoints: required for tunnel context types, refused for transport ones.
    #[serde(default)]
    pub tunnel: Option<TunnelEndpoints>,
}

/// Largest anti-replay window accepted.
pub const MAX_REPLAY_WINDOW: u32 = 1 << 16;

impl IpsecQmPolicy {
    /// The secure-socket default quick-mode policy (winsock-api.md §1.9): proposals ESP
    /// HMAC-SHA1-96 (integrity only), ESP SHA1-96 + AES-128, ESP SHA1-96 + 3DES, AH
    /// HMAC-SHA1-96, each 1 h / 55 GB with no PFS; `ND_BOUNDARY`; clear allowed 10 s during
    /// discovery; idle 300 s (fail-over 60 s); replay window 64.
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::*;
    /// let p = IpsecQmPolicy::windows_default();
    /// assert!(!p.proposals[0].encrypts());
    /// assert!(p.negotiation_discovery());
    /// ```
    pub fn windows_default() -> Self {
        use IpsecAuth::HmacSha1_96 as Sha1;
        IpsecQmPolicy {
            proposals: vec![
                IpsecProposal::single(IpsecTransform::EspAuth { auth: Sha1 }),
                IpsecProposal::single(IpsecTransform::EspAuthAndCipher {
                    auth: Sha1,
                    cipher: IpsecCipher::CbcAes128,
                }),
                IpsecProposal::single(IpsecTransform::EspAuthAndCipher {
                    auth: Sha1,
                    cipher: IpsecCipher::Cbc3Des,
                }),
                IpsecProposal::single(IpsecTransform::Ah { auth: Sha1 }),
            ],
            flags: ipsec_policy_flags::ND_BOUNDARY,
            nd_allow_clear_timeout_seconds: 10,
            idle_timeout_seconds: 300,
            idle_timeout_fail_over_seconds: 60,
            replay_window: 64,
            tunnel: None,
        }
    }

    /// `ND_SECURE`: negotiation discovery, require inbound / request outbound.
    pub fn nd_secure(&self) -> bool {
        self.flags & ipsec_policy_flags::ND_SECURE != 0
    }
    /// `ND_BOUNDARY`: request both ways with clear-text fallback.
    pub fn nd_boundary(&self) -> bool {
        self.flags & ipsec_policy_flags::ND_BOUNDARY != 0
    }
    /// Either negotiation-discovery flag.
    pub fn negotiation_discovery(&self) -> bool {
        self.nd_secure() || self.nd_boundary()
    }

    /// Checks the policy for a provider context of type `context_type`.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] whose `error` is: `FWP_E_PROVIDER_CONTEXT_MISMATCH` (not a quick-mode
    /// type), `FWP_E_ZERO_LENGTH_ARRAY` (no proposal / no transform),
    /// `FWP_E_INVALID_TRANSFORM_COMBINATION` (more than one AH or ESP transform, ESP cipher
    /// without integrity, GCM cipher without its GCM auth id or GCM auth with a CBC cipher),
    /// `FWP_E_INVALID_PARAMETER` (a lifetime limit of 0, idle timeout 0, replay window above
    /// 65536), `FWP_E_INVALID_FLAGS` (unknown bits, tunnel-only flags on a transport policy),
    /// `FWP_E_INVALID_TUNNEL_ENDPOINT` (tunnel type without endpoints, transport type with
    /// them, unspecified/multicast or mixed-family endpoints).
    pub fn validate(&self, context_type: u32) -> Result<(), SpecError> {
        use provider_context_type as t;
        let tunnel = t::is_qm_tunnel(context_type);
        if !tunnel && !t::is_qm_transport(context_type) {
            return Err(SpecError::new(
                WfpError::ProviderContextMismatch,
                "type",
                format!("a quick-mode policy needs a quick-mode context type, not {context_type}"),
            ));
        }
        if self.proposals.is_empty() {
            return Err(SpecError::new(
                WfpError::ZeroLengthArray,
                "proposal",
                "a quick-mode policy needs at least one proposal",
            ));
        }
        for (i, p) in self.proposals.iter().enumerate() {
            let path = format!("proposal[{i}]");
            for (what, v) in [
                ("lifetime_seconds", p.lifetime.seconds),
                ("lifetime_kilobytes", p.lifetime.kilobytes),
                ("lifetime_packets", p.lifetime.packets),
            ] {
                if v == 0 {
                    return Err(SpecError::new(
                        WfpError::InvalidParameter,
                        format!("{path}.{what}"),
                        format!("a quick-mode {what} of 0"),
                    ));
                }
            }
            if p.transforms.is_empty() {
                return Err(SpecError::new(
                    WfpError::ZeroLengthArray,
                    format!("{path}.transforms"),
                    "a proposal needs at least one transform",
                ));
            }
            let ah = p.transforms.iter().filter(|t| !t.is_esp()).count();
            let esp = p.transforms.len() - ah;
            if ah > 1 || esp > 1 {
                return Err(SpecError::new(
                    WfpError::InvalidTransformCombination,
                    format!("{path}.transforms"),
                    "a proposal holds at most one AH and one ESP transform",
                ));
            }
            for (j, tr) in p.transforms.iter().enumerate() {
                let tpath = format!("{path}.transforms[{j}]");
                match *tr {
                    IpsecTransform::EspCipher { .. } => {
                        return Err(SpecError::new(
                            WfpError::InvalidTransformCombination,
                            tpath,
                            "ESP encryption without integrity is not supported (use \
                             esp-auth-and-cipher)",
                        ))
                    }
                    IpsecTransform::EspAuthAndCipher { auth, cipher } => {
                        let ok = match cipher.gcm_auth() {
                            Some(g) => auth == g,
                            None => !auth.is_gcm(),
                        };
                        if !ok {
                            return Err(SpecError::new(
                                WfpError::InvalidTransformCombination,
                                tpath,
                                format!(
                                    "{cipher} cannot be paired with {auth} (a GCM cipher needs \
                                     the GCM auth id of the same key size; a CBC cipher an \
                                     HMAC)"
                                ),
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        if self.flags & !ipsec_policy_flags::ALL != 0 {
            return Err(SpecError::new(
                WfpError::InvalidFlags,
                "policy_flags",
                format!("unknown IPSEC_POLICY_FLAG bits 0x{:x}", self.flags),
            ));
        }
        if !tunnel && self.flags & ipsec_policy_flags::TUNNEL_ONLY != 0 {
            return Err(SpecError::new(
                WfpError::InvalidFlags,
                "policy_flags",
                "tunnel-only IPSEC_POLICY_FLAG bits on a transport policy",
            ));
        }
        if self.idle_timeout_seconds == 0 || self.idle_timeout_fail_over_seconds == 0 {
            return Err(SpecError::new(
                WfpError::InvalidParameter,
                "idle_timeout_seconds",
                "an SA idle timeout of 0 seconds",
            ));
        }
        if self.replay_window > MAX_REPLAY_WINDOW {
            return Err(SpecError::new(
                WfpError::InvalidParameter,
                "replay_window",
                format!(
                    "replay window {} is above {MAX_REPLAY_WINDOW}",
                    self.replay_window
                ),
            ));
        }
        match (tunnel, &self.tunnel) {
            (true, None) => {
                return Err(SpecError::new(
                    WfpError::InvalidTunnelEndpoint,
                    "tunnel",
                    "a tunnel policy needs tunnel_local and tunnel_remote",
                ))
            }
            (false, Some(_)) => {
                return Err(SpecError::new(
                    WfpError::InvalidTunnelEndpoint,
                    "tunnel",
                    "a transport policy has no tunnel endpoints",
                ))
            }
            (true, Some(e)) => {
                let bad = |a: IpAddr| a.is_unspecified() || a.is_multicast();
                if bad(e.local) || bad(e.remote) || e.local.is_ipv4() != e.remote.is_ipv4() {
                    return Err(SpecError::new(
                        WfpError::InvalidTunnelEndpoint,
                        "tunnel",
                        "tunnel endpoints must be unicast addresses of one family",
                    ));
                }
            }
            (false, None) => {}
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------ the union

/// What a provider context holds (the `FWPM_PROVIDER_CONTEXT0` union): a typed main-mode or
/// quick-mode policy, or opaque bytes for the other types (and for callers that predate the
/// typed forms).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderContextData {
    /// Opaque bytes (never validated).
    Opaque(Arc<Vec<u8>>),
    /// A main-mode policy (`ikeMmPolicy` / `authIpMmPolicy` / `ikeV2MmPolicy`).
    IkeMm(Arc<IkeMmPolicy>),
    /// A quick-mode policy (`ikeQmTransportPolicy`, `ikeQmTunnelPolicy`,
    /// `authipQmTransportPolicy`, `authipQmTunnelPolicy`, `ikeV2QmTunnelPolicy`).
    IpsecQm(Arc<IpsecQmPolicy>),
}

impl ProviderContextData {
    /// Checks the data against the context type.
    ///
    /// # Errors
    /// As [`IkeMmPolicy::validate`] / [`IpsecQmPolicy::validate`]; opaque data is accepted for
    /// every type.
    pub fn validate(&self, context_type: u32) -> Result<(), SpecError> {
        match self {
            ProviderContextData::Opaque(_) => Ok(()),
            ProviderContextData::IkeMm(p) => p.validate(context_type),
            ProviderContextData::IpsecQm(p) => p.validate(context_type),
        }
    }
}

// ------------------------------------------------------------------------------ TOML spec

/// A provider context as written in a scenario file (`[[host.provider_context]]`).
///
/// ```toml
/// [[host.provider_context]]
/// key = "5d3c4f6e-0000-4000-8000-000000000001"
/// name = "lab main mode"
/// type = "ike-mm"                  # authip-mm, ikev2-mm, ipsec-qm-transport, ipsec-qm-tunnel, ...
/// auth = [{ method = "certificate", root_ca = "WSOCK Lab CA" }, { method = "psk" }]
/// [[host.provider_context.proposal]]
/// cipher = "IKEEXT_CIPHER_AES_128"
/// integrity = "IKEEXT_INTEGRITY_SHA_256"
/// dh_group = "IKEEXT_DH_ECP_256"
/// lifetime_seconds = 28800
///
/// [[host.provider_context]]
/// name = "lab quick mode"
/// type = "ipsec-qm-transport"
/// policy_flags = ["ND_SECURE"]
/// [[host.provider_context.proposal]]
/// lifetime_seconds = 3600
/// transforms = [{ type = "esp-auth-and-cipher", auth = "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128",
///                 cipher = "IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128" }]
/// ```
///
/// `preset = "windows-default"` starts from [`IkeMmPolicy::windows_default`] /
/// [`IpsecQmPolicy::windows_default`]; what the spec sets replaces the preset's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderContextSpec {
    /// Key (GUID); absent = generated.
    #[serde(default)]
    pub key: Option<String>,
    /// Display name (required).
    #[serde(default)]
    pub name: String,
    /// Context type (see [`provider_context_type::from_name`]).
    #[serde(rename = "type", default)]
    pub context_type: String,
    /// Provider (GUID or name).
    #[serde(default)]
    pub provider: Option<String>,
    /// Object flags: `persistent`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// `"windows-default"`: start from the secure-socket default policy.
    #[serde(default)]
    pub preset: Option<String>,
    /// Main mode: authentication methods in order.
    #[serde(default)]
    pub auth: Vec<IkeAuthMethodSpec>,
    /// Main mode (AuthIP): initiator impersonation.
    #[serde(default)]
    pub impersonation: Option<bool>,
    /// Main mode: `maxDynamicFilters`.
    #[serde(default)]
    pub max_dynamic_filters: Option<u32>,
    /// Main mode: `retransmitDurationSecs`.
    #[serde(default)]
    pub retransmit_duration_seconds: Option<u32>,
    /// `IKEEXT_POLICY_FLAG_*` (main mode) or `IPSEC_POLICY_FLAG_*` (quick mode) names.
    #[serde(default)]
    pub policy_flags: Option<Vec<String>>,
    /// Proposals in order (main- or quick-mode fields according to the type).
    #[serde(default)]
    pub proposal: Vec<ProposalSpec>,
    /// Quick mode: `ndAllowClearTimeoutSeconds`.
    #[serde(default)]
    pub nd_allow_clear_timeout_seconds: Option<u32>,
    /// Quick mode: SA idle timeout.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// Quick mode: SA idle timeout on fail-over.
    #[serde(default)]
    pub idle_timeout_fail_over_seconds: Option<u32>,
    /// Quick mode: anti-replay window.
    #[serde(default)]
    pub replay_window: Option<u32>,
    /// Quick mode, tunnel types: local tunnel endpoint.
    #[serde(default)]
    pub tunnel_local: Option<IpAddr>,
    /// Quick mode, tunnel types: remote tunnel endpoint.
    #[serde(default)]
    pub tunnel_remote: Option<IpAddr>,
    /// Other types: opaque data as hex.
    #[serde(default)]
    pub data: Option<String>,
}

/// An authentication method in a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IkeAuthMethodSpec {
    /// `psk`, `certificate`, `anonymous`, `kerberos`, or an `IKEEXT_*` name.
    pub method: String,
    /// Root CA name (certificate methods).
    #[serde(default)]
    pub root_ca: Option<String>,
}

/// A proposal in a spec: main-mode fields (`cipher`, `integrity`, `dh_group`,
/// `lifetime_seconds`, `quick_mode_limit`) or quick-mode fields (`transforms`,
/// `lifetime_seconds`, `lifetime_kilobytes`, `lifetime_packets`, `pfs_group`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalSpec {
    /// MM: `IKEEXT_CIPHER_*`.
    #[serde(default)]
    pub cipher: Option<String>,
    /// MM: `IKEEXT_INTEGRITY_*`.
    #[serde(default)]
    pub integrity: Option<String>,
    /// MM: `IKEEXT_DH_*`.
    #[serde(default)]
    pub dh_group: Option<String>,
    /// MM and QM lifetime in seconds (MM default 28800, QM default 3600).
    #[serde(default)]
    pub lifetime_seconds: Option<u32>,
    /// MM: `quickModeLimit` (default 0 = unlimited).
    #[serde(default)]
    pub quick_mode_limit: Option<u32>,
    /// QM: lifetime in kilobytes (default 100000).
    #[serde(default)]
    pub lifetime_kilobytes: Option<u32>,
    /// QM: lifetime in packets (default 0x7FFFFFFF).
    #[serde(default)]
    pub lifetime_packets: Option<u32>,
    /// QM: `IPSEC_PFS_*` (default none).
    #[serde(default)]
    pub pfs_group: Option<String>,
    /// QM: transforms.
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
}

/// A quick-mode transform in a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// `ah`, `esp-auth`, `esp-cipher`, `esp-auth-and-cipher`, `esp-auth-fw` or an
    /// `IPSEC_TRANSFORM_*` name.
    #[serde(rename = "type")]
    pub kind: String,
    /// `IPSEC_AUTH_TRANSFORM_ID_*` / `IPSEC_AUTH_TYPE_*`.
    #[serde(default)]
    pub auth: Option<String>,
    /// `IPSEC_CIPHER_TRANSFORM_ID_*` / `IPSEC_CIPHER_TYPE_*`.
    #[serde(default)]
    pub cipher: Option<String>,
}

fn parse_named<T: FromStr<Err = UnknownName>>(s: &str, path: &str) -> Result<T, SpecError> {
    s.parse::<T>()
        .map_err(|e| SpecError::new(WfpError::InvalidParameter, path, e.to_string()))
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let t = t.strip_prefix("0x").unwrap_or(&t);
    if t.len() % 2 != 0 {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

impl TransformSpec {
    fn build(&self, path: &str) -> Result<IpsecTransform, SpecError> {
        let kind = normalize(&self.kind);
        let kind = kind.strip_prefix("IPSEC_TRANSFORM_").unwrap_or(&kind);
        let auth = |req: bool| -> Result<Option<IpsecAuth>, SpecError> {
            match &self.auth {
                Some(a) => parse_named(a, &format!("{path}.auth")).map(Some),
                None if req => Err(SpecError::new(
                    WfpError::InvalidAuthTransform,
                    format!("{path}.auth"),
                    format!("a {} transform needs `auth`", self.kind),
                )),
                None => Ok(None),
            }
        };
        let cipher = |req: bool| -> Result<Option<IpsecCipher>, SpecError> {
            match &self.cipher {
                Some(c) => parse_named(c, &format!("{path}.cipher")).map(Some),
                None if req => Err(SpecError::new(
                    WfpError::InvalidCipherTransform,
                    format!("{path}.cipher"),
                    format!("a {} transform needs `cipher`", self.kind),
                )),
                None => Ok(None),
            }
        };
        let no_cipher = || -> Result<(), SpecError> {
            if self.cipher.is_some() {
                return Err(SpecError::new(
                    WfpError::InvalidTransformCombination,
                    format!("{path}.cipher"),
                    format!("a {} transform has no cipher", self.kind),
                ));
            }
            Ok(())
        };
        let need = |x: Option<IpsecAuth>| x.ok_or_else(|| unreachable_missing(path));
        Ok(match kind {
            "AH" => {
                no_cipher()?;
                IpsecTransform::Ah {
                    auth: need(auth(true)?)?,
                }
            }
            "ESP_AUTH" => {
                no_cipher()?;
                IpsecTransform::EspAuth {
                    auth: need(auth(true)?)?,
                }
            }
            "ESP_AUTH_FW" => {
                no_cipher()?;
                IpsecTransform::EspAuthFw {
                    auth: need(auth(true)?)?,
                }
            }
            "ESP_CIPHER" => {
                if self.auth.is_some() {
                    return Err(SpecError::new(
                        WfpError::InvalidTransformCombination,
                        format!("{path}.auth"),
                        "an esp-cipher transform has no auth (use esp-auth-and-cipher)",
                    ));
                }
                IpsecTransform::EspCipher {
                    cipher: cipher(true)?.ok_or_else(|| unreachable_missing(path))?,
                }
            }
            "ESP_AUTH_AND_CIPHER" => IpsecTransform::EspAuthAndCipher {
                auth: need(auth(true)?)?,
                cipher: cipher(true)?.ok_or_else(|| unreachable_missing(path))?,
            },
            _ => {
                return Err(SpecError::new(
                    WfpError::InvalidParameter,
                    format!("{path}.type"),
                    format!(
                        "unknown transform type {:?} (ah, esp-auth, esp-cipher, \
                         esp-auth-and-cipher, esp-auth-fw)",
                        self.kind
                    ),
                ))
            }
        })
    }
}

// `auth(true)` / `cipher(true)` never return Ok(None); this keeps the code panic-free anyway.
fn unreachable_missing(path: &str) -> SpecError {
    SpecError::new(WfpError::InvalidParameter, path, "missing transform field")
}

impl ProviderContextSpec {
    /// Builds the provider context (without resolving `provider`, which needs an engine: see
    /// [`Engine::add_provider_context_spec`]).
    ///
    /// # Errors
    /// A [`SpecError`] with the path of the bad field: unknown type or names
    /// (`FWP_E_INVALID_PARAMETER`), a main-mode field on a quick-mode type or the reverse,
    /// and everything [`ProviderContextData::validate`] reports.
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::*;
    /// let spec: ProviderContextSpec = toml::from_str(r#"
    ///     name = "qm"
    ///     type = "ipsec-qm-transport"
    ///     [[proposal]]
    ///     transforms = [{ type = "ah", auth = "IPSEC_AUTH_TYPE_SHA_256", cipher = "IPSEC_CIPHER_TYPE_AES_128" }]
    /// "#).unwrap();
    /// let err = spec.build().unwrap_err();
    /// assert_eq!(err.error, WfpError::InvalidTransformCombination);
    /// assert_eq!(err.path, "proposal[0].transforms[0].cipher");
    /// ```
    pub fn build(&self) -> Result<ProviderContext, SpecError> {
        use provider_context_type as t;
        let ty = t::from_name(&self.context_type).ok_or_else(|| {
            SpecError::new(
                WfpError::InvalidParameter,
                "type",
                format!(
                    "unknown provider context type {:?} (ike-mm, authip-mm, ikev2-mm, \
                     ipsec-qm-transport, authip-qm-transport, ipsec-qm-tunnel, \
                     authip-qm-tunnel, ikev2-qm-tunnel, general, ...)",
                    self.context_type
                ),
            )
        })?;
        let preset = match self.preset.as_deref().map(normalize).as_deref() {
            None => false,
            Some("WINDOWS_DEFAULT") => true,
            Some(_) => {
                return Err(SpecError::new(
                    WfpError::InvalidParameter,
                    "preset",
                    format!(
                        "unknown preset {:?} (windows-default)",
                        self.preset.as_deref().unwrap_or_default()
                    ),
                ))
            }
        };
        let mm = t::is_mm(ty);
        let qm = t::is_qm_transport(ty) || t::is_qm_tunnel(ty);
        let misplaced = |cond: bool, field: &str, kind: &str| -> Result<(), SpecError> {
            if cond {
                Err(SpecError::new(
                    WfpError::InvalidParameter,
                    field,
                    format!("`{field}` is not a field of a {kind} provider context"),
                ))
            } else {
                Ok(())
            }
        };
        if !mm {
            misplaced(!self.auth.is_empty(), "auth", "non-main-mode")?;
            misplaced(
                self.impersonation.is_some(),
                "impersonation",
                "non-main-mode",
            )?;
            misplaced(
                self.max_dynamic_filters.is_some(),
                "max_dynamic_filters",
                "non-main-mode",
            )?;
            misplaced(
                self.retransmit_duration_seconds.is_some(),
                "retransmit_duration_seconds",
                "non-main-mode",
            )?;
        }
        if !qm {
            for (cond, field) in [
                (
                    self.nd_allow_clear_timeout_seconds.is_some(),
                    "nd_allow_clear_timeout_seconds",
                ),
                (self.idle_timeout_seconds.is_some(), "idle_timeout_seconds"),
                (
                    self.idle_timeout_fail_over_seconds.is_some(),
                    "idle_timeout_fail_over_seconds",
                ),
                (self.replay_window.is_some(), "replay_window"),
                (self.tunnel_local.is_some(), "tunnel_local"),
                (self.tunnel_remote.is_some(), "tunnel_remote"),
            ] {
                misplaced(cond, field, "non-quick-mode")?;
            }
        }
        if mm || qm {
            misplaced(self.data.is_some(), "data", "policy (main or quick mode)")?;
        } else {
            misplaced(!self.proposal.is_empty(), "proposal", "non-IPsec")?;
            misplaced(self.policy_flags.is_some(), "policy_flags", "non-IPsec")?;
            misplaced(preset, "preset", "non-IPsec")?;
        }
        let data = if mm {
            ProviderContextData::IkeMm(Arc::new(self.build_mm(preset)?))
        } else if qm {
            ProviderContextData::IpsecQm(Arc::new(self.build_qm(preset)?))
        } else {
            let bytes = match &self.data {
                None => Vec::new(),
                Some(h) => parse_hex(h).ok_or_else(|| {
                    SpecError::new(
                        WfpError::InvalidParameter,
                        "data",
                        "`data` is not hex bytes",
                    )
                })?,
            };
            ProviderContextData::Opaque(Arc::new(bytes))
        };
        data.validate(ty)?;
        let mut c = ProviderContext::with_data(self.name.clone(), ty, data);
        if let Some(k) = &self.key {
            c.key = k.parse::<Guid>().map_err(|_| {
                SpecError::new(
                    WfpError::InvalidParameter,
                    "key",
                    format!("{k:?} is not a GUID"),
                )
            })?;
        }
        for (i, fl) in self.flags.iter().enumerate() {
            if fl.eq_ignore_ascii_case("persistent") {
                c.flags |= 1;
            } else {
                return Err(SpecError::new(
                    WfpError::InvalidFlags,
                    format!("flags[{i}]"),
                    format!("unknown flag {fl:?} (persistent)"),
                ));
            }
        }
        Ok(c)
    }

    fn flags_from(&self, parse: fn(&str) -> Option<u32>) -> Result<Option<u32>, SpecError> {
        let Some(list) = &self.policy_flags else {
            return Ok(None);
        };
        let mut bits = 0;
        for (i, f) in list.iter().enumerate() {
            bits |= parse(f).ok_or_else(|| {
                SpecError::new(
                    WfpError::InvalidFlags,
                    format!("policy_flags[{i}]"),
                    format!("unknown policy flag {f:?}"),
                )
            })?;
        }
        Ok(Some(bits))
    }

    fn build_mm(&self, preset: bool) -> Result<IkeMmPolicy, SpecError> {
        let mut p = if preset {
            IkeMmPolicy::windows_default()
        } else {
            IkeMmPolicy {
                auth_methods: Vec::new(),
                impersonation: false,
                proposals: Vec::new(),
                flags: 0,
                max_dynamic_filters: 0,
                retransmit_duration_seconds: None,
            }
        };
        if !self.auth.is_empty() || !preset {
            p.auth_methods = self
                .auth
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    Ok(IkeAuthMethod {
                        method: parse_named(&a.method, &format!("auth[{i}].method"))?,
                        root_ca: a.root_ca.clone(),
                    })
                })
                .collect::<Result<_, SpecError>>()?;
        }
        if !self.proposal.is_empty() || !preset {
            p.proposals = Vec::with_capacity(self.proposal.len());
            for (i, s) in self.proposal.iter().enumerate() {
                let path = format!("proposal[{i}]");
                for (cond, f) in [
                    (s.lifetime_kilobytes.is_some(), "lifetime_kilobytes"),
                    (s.lifetime_packets.is_some(), "lifetime_packets"),
                    (s.pfs_group.is_some(), "pfs_group"),
                    (!s.transforms.is_empty(), "transforms"),
                ] {
                    if cond {
                        return Err(SpecError::new(
                            WfpError::InvalidParameter,
                            format!("{path}.{f}"),
                            format!("`{f}` is a quick-mode field; this is a main-mode context"),
                        ));
                    }
                }
                let req = |v: &Option<String>, f: &str| {
                    v.clone().ok_or_else(|| {
                        SpecError::new(
                            WfpError::InvalidParameter,
                            format!("{path}.{f}"),
                            format!("a main-mode proposal needs `{f}`"),
                        )
                    })
                };
                p.proposals.push(IkeProposal {
                    cipher: parse_named(&req(&s.cipher, "cipher")?, &format!("{path}.cipher"))?,
                    integrity: parse_named(
                        &req(&s.integrity, "integrity")?,
                        &format!("{path}.integrity"),
                    )?,
                    dh_group: parse_named(
                        &req(&s.dh_group, "dh_group")?,
                        &format!("{path}.dh_group"),
                    )?,
                    max_lifetime_seconds: s.lifetime_seconds.unwrap_or(28800),
                    quick_mode_limit: s.quick_mode_limit.unwrap_or(0),
                });
            }
        }
        if let Some(f) = self.flags_from(ike_policy_flags::from_name)? {
            p.flags = f;
        }
        if let Some(v) = self.impersonation {
            p.impersonation = v;
        }
        if let Some(v) = self.max_dynamic_filters {
            p.max_dynamic_filters = v;
        }
        if self.retransmit_duration_seconds.is_some() {
            p.retransmit_duration_seconds = self.retransmit_duration_seconds;
        }
        Ok(p)
    }

    fn build_qm(&self, preset: bool) -> Result<IpsecQmPolicy, SpecError> {
        let d = IpsecQmPolicy::windows_default();
        let mut p = if preset {
            d.clone()
        } else {
            IpsecQmPolicy {
                proposals: Vec::new(),
                flags: 0,
                ..d.clone()
            }
        };
        if !self.proposal.is_empty() || !preset {
            p.proposals = Vec::with_capacity(self.proposal.len());
            for (i, s) in self.proposal.iter().enumerate() {
                let path = format!("proposal[{i}]");
                for (cond, f) in [
                    (s.cipher.is_some(), "cipher"),
                    (s.integrity.is_some(), "integrity"),
                    (s.dh_group.is_some(), "dh_group"),
                    (s.quick_mode_limit.is_some(), "quick_mode_limit"),
                ] {
                    if cond {
                        return Err(SpecError::new(
                            WfpError::InvalidParameter,
                            format!("{path}.{f}"),
                            format!(
                                "`{f}` is a main-mode field; a quick-mode proposal lists \
                                 `transforms`"
                            ),
                        ));
                    }
                }
                let transforms = s
                    .transforms
                    .iter()
                    .enumerate()
                    .map(|(j, t)| t.build(&format!("{path}.transforms[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                p.proposals.push(IpsecProposal {
                    lifetime: IpsecLifetime {
                        seconds: s.lifetime_seconds.unwrap_or(3600),
                        kilobytes: s.lifetime_kilobytes.unwrap_or(100_000),
                        packets: s.lifetime_packets.unwrap_or(0x7FFF_FFFF),
                    },
                    transforms,
                    pfs_group: match &s.pfs_group {
                        Some(g) => parse_named(g, &format!("{path}.pfs_group"))?,
                        None => IpsecPfsGroup::None,
                    },
                });
            }
        }
        if let Some(f) = self.flags_from(ipsec_policy_flags::from_name)? {
            p.flags = f;
        }
        if let Some(v) = self.nd_allow_clear_timeout_seconds {
            p.nd_allow_clear_timeout_seconds = v;
        }
        if let Some(v) = self.idle_timeout_seconds {
            p.idle_timeout_seconds = v;
        }
        if let Some(v) = self.idle_timeout_fail_over_seconds {
            p.idle_timeout_fail_over_seconds = v;
        }
        if let Some(v) = self.replay_window {
            p.replay_window = v;
        }
        p.tunnel = match (self.tunnel_local, self.tunnel_remote) {
            (Some(local), Some(remote)) => Some(TunnelEndpoints { local, remote }),
            (None, None) => None,
            _ => {
                return Err(SpecError::new(
                    WfpError::InvalidTunnelEndpoint,
                    "tunnel_local",
                    "set both tunnel_local and tunnel_remote",
                ))
            }
        };
        Ok(p)
    }
}

use crate::ProviderContext;

impl Engine {
    /// Validates and adds a [`ProviderContextSpec`] (resolving its provider by GUID or name);
    /// returns the provider context id.
    ///
    /// # Errors
    /// As [`ProviderContextSpec::build`], `FWP_E_PROVIDER_NOT_FOUND`, and everything
    /// [`Engine::add_provider_context`] returns (path `""`).
    ///
    /// # Examples
    /// ```
    /// use wsock_wfp::*;
    /// let mut e = Engine::new();
    /// let s = e.open_session(false);
    /// let spec = ProviderContextSpec {
    ///     name: "mm".into(),
    ///     context_type: "authip-mm".into(),
    ///     preset: Some("windows-default".into()),
    ///     ..Default::default()
    /// };
    /// let id = e.add_provider_context_spec(s, &spec).unwrap();
    /// let c = e.get_provider_context_by_id(s, id).unwrap();
    /// assert_eq!(c.ike_mm_policy().unwrap(), &IkeMmPolicy::windows_default());
    /// ```
    pub fn add_provider_context_spec(
        &mut self,
        sid: SessionId,
        spec: &ProviderContextSpec,
    ) -> Result<u64, SpecError> {
        let mut c = spec.build()?;
        if let Some(p) = &spec.provider {
            c.provider_key = Some(self.resolve_provider(sid, p, "provider")?);
        }
        self.add_provider_context(sid, &c)
            .map_err(|e| SpecError::new(e, "", format!("FwpmProviderContextAdd0 failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_context_type as t;

    #[test]
    fn names_round_trip_and_aliases() {
        for c in IkeCipher::ALL {
            assert_eq!(c.name().parse::<IkeCipher>().unwrap(), *c);
            assert_eq!(IkeCipher::from_value(c.value()), Some(*c));
        }
        assert_eq!("aes-128".parse::<IkeCipher>().unwrap(), IkeCipher::Aes128);
        assert_eq!(
            "IKEEXT_DH_GROUP_2048".parse::<IkeDhGroup>().unwrap(),
            IkeDhGroup::Group14
        );
        assert_eq!("ecp_256".parse::<IkeDhGroup>().unwrap(), IkeDhGroup::Ecp256);
        assert_eq!(IkeDhGroup::Ecp256.iana(), Some(19));
        assert_eq!(
            "IPSEC_AUTH_TYPE_SHA_256".parse::<IpsecAuth>().unwrap(),
            IpsecAuth::HmacSha256_128
        );
        assert_eq!(
            "IPSEC_CIPHER_TYPE_AES_GCM_128"
                .parse::<IpsecCipher>()
                .unwrap(),
            IpsecCipher::GcmAes128
        );
        assert_eq!(IpsecCipher::GcmAes256.cipher_type(), 5);
        assert_eq!(IpsecCipher::GcmAes256.cipher_config(), 8);
        assert_eq!(IpsecCipher::GcmAes192.key_bits(), 192);
        assert_eq!(IkeCipher::AesGcm256.key_bits(), 256);
        assert_eq!(IpsecAuth::GcmAes128.gcm_key_bits(), Some(128));
        assert_eq!(IpsecAuth::HmacSha1_96.gcm_key_bits(), None);
        assert_eq!(
            "psk".parse::<IkeAuthType>().unwrap(),
            IkeAuthType::PresharedKey
        );
        let e = "IKEEXT_CIPHER_CHACHA20".parse::<IkeCipher>().unwrap_err();
        assert!(e.to_string().contains("IKEEXT_CIPHER_AES_128"), "{e}");
    }

    #[test]
    fn windows_defaults_validate_for_their_types() {
        IkeMmPolicy::windows_default()
            .validate(t::IPSEC_AUTHIP_MM)
            .unwrap();
        // anonymous is AuthIP-only
        assert_eq!(
            IkeMmPolicy::windows_default()
                .validate(t::IPSEC_IKE_MM)
                .unwrap_err()
                .error,
            WfpError::IncompatibleAuthMethod
        );
        let qm = IpsecQmPolicy::windows_default();
        qm.validate(t::IPSEC_AUTHIP_QM_TRANSPORT).unwrap();
        qm.validate(t::IPSEC_IKE_QM_TRANSPORT).unwrap();
        assert_eq!(qm.proposals.len(), 4);
        assert!(!qm.proposals[0].encrypts());
        assert!(qm.proposals[1].encrypts());
        assert_eq!(qm.proposals[3].transforms[0].transform_type(), 1);
        assert_eq!(
            qm.validate(t::IPSEC_IKE_MM).unwrap_err().error,
            WfpError::ProviderContextMismatch
        );
    }

    fn mm() -> IkeMmPolicy {
        IkeMmPolicy {
            auth_methods: vec![
                IkeAuthMethod::certificate(Some("Lab CA")),
                IkeAuthMethod::psk(),
            ],
            impersonation: false,
            proposals: vec![IkeProposal::new(
                IkeCipher::AesGcm128,
                IkeIntegrity::Sha256,
                IkeDhGroup::Ecp256,
                3600,
            )],
            flags: 0,
            max_dynamic_filters: 0,
            retransmit_duration_seconds: None,
        }
    }

    #[test]
    fn mm_rejections() {
        mm().validate(t::IPSEC_IKEV2_MM).unwrap();
        let err = |p: IkeMmPolicy, ty| p.validate(ty).unwrap_err();
        let mut p = mm();
        p.proposals.clear();
        assert_eq!(err(p, t::IPSEC_IKE_MM).error, WfpError::ZeroLengthArray);
        let mut p = mm();
        p.auth_methods.clear();
        assert_eq!(err(p, t::IPSEC_IKE_MM).error, WfpError::ZeroLengthArray);
        let mut p = mm();
        p.proposals[0].max_lifetime_seconds = 0;
        let e = err(p, t::IPSEC_IKE_MM);
        assert_eq!(
            (e.error, e.path.as_str()),
            (WfpError::InvalidParameter, "proposal[0].lifetime_seconds")
        );
        let mut p = mm();
        p.auth_methods.push(IkeAuthMethod::psk());
        assert_eq!(err(p, t::IPSEC_IKE_MM).error, WfpError::DuplicateAuthMethod);
        let mut p = mm();
        p.proposals[0].dh_group = IkeDhGroup::None;
        assert_eq!(
            err(p.clone(), t::IPSEC_IKE_MM).error,
            WfpError::IncompatibleDhGroup
        );
        p.auth_methods = vec![IkeAuthMethod::anonymous()];
        p.validate(t::IPSEC_AUTHIP_MM).unwrap();
        let mut p = mm();
        p.auth_methods[1].root_ca = Some("x".into());
        assert_eq!(err(p, t::IPSEC_IKE_MM).error, WfpError::InvalidParameter);
        let mut p = mm();
        p.flags = 0x80;
        assert_eq!(err(p, t::IPSEC_IKE_MM).error, WfpError::InvalidFlags);
        let mut p = mm();
        p.auth_methods
            .push(IkeAuthMethod::of(IkeAuthType::Kerberos));
        assert_eq!(
            err(p, t::IPSEC_IKEV2_MM).error,
            WfpError::IncompatibleAuthMethod
        );
    }

    #[test]
    fn qm_rejections() {
        let base = IpsecQmPolicy::windows_default();
        let err = |p: IpsecQmPolicy| p.validate(t::IPSEC_IKE_QM_TRANSPORT).unwrap_err();
        let mut p = base.clone();
        p.proposals.clear();
        assert_eq!(err(p).error, WfpError::ZeroLengthArray);
        let mut p = base.clone();
        p.proposals[1].transforms.clear();
        assert_eq!(err(p).error, WfpError::ZeroLengthArray);
        for f in 0..3 {
            let mut p = base.clone();
            match f {
                0 => p.proposals[0].lifetime.seconds = 0,
                1 => p.proposals[0].lifetime.kilobytes = 0,
                _ => p.proposals[0].lifetime.packets = 0,
            }
            assert_eq!(err(p).error, WfpError::InvalidParameter);
        }
        // GCM cipher with an HMAC, GCM auth with a CBC cipher, mismatched GCM sizes
        for (auth, cipher) in [
            (IpsecAuth::HmacSha256_128, IpsecCipher::GcmAes128),
            (IpsecAuth::GcmAes128, IpsecCipher::CbcAes128),
            (IpsecAuth::GcmAes256, IpsecCipher::GcmAes128),
        ] {
            let mut p = base.clone();
            p.proposals[0].transforms = vec![IpsecTransform::EspAuthAndCipher { auth, cipher }];
            assert_eq!(err(p).error, WfpError::InvalidTransformCombination);
        }
        let mut p = base.clone();
        p.proposals[0].transforms = vec![IpsecTransform::EspCipher {
            cipher: IpsecCipher::CbcAes128,
        }];
        assert_eq!(err(p).error, WfpError::InvalidTransformCombination);
        // AH + ESP is a valid bundle; two ESP transforms are not
        let mut p = base.clone();
        p.proposals[0].transforms = vec![
            IpsecTransform::Ah {
                auth: IpsecAuth::HmacSha256_128,
            },
            IpsecTransform::EspAuthAndCipher {
                auth: IpsecAuth::GcmAes256,
                cipher: IpsecCipher::GcmAes256,
            },
        ];
        p.validate(t::IPSEC_IKE_QM_TRANSPORT).unwrap();
        p.proposals[0].transforms.push(IpsecTransform::EspAuth {
            auth: IpsecAuth::GcmAes128,
        });
        assert_eq!(err(p).error, WfpError::InvalidTransformCombination);
        // GMAC (integrity-only ESP with a GCM id) is fine
        let mut p = base.clone();
        p.proposals[0].transforms = vec![IpsecTransform::EspAuth {
            auth: IpsecAuth::GcmAes128,
        }];
        p.validate(t::IPSEC_IKE_QM_TRANSPORT).unwrap();
        let mut p = base.clone();
        p.replay_window = MAX_REPLAY_WINDOW + 1;
        assert_eq!(err(p).error, WfpError::InvalidParameter);
        let mut p = base.clone();
        p.flags |= ipsec_policy_flags::CLEAR_DF_ON_TUNNEL;
        assert_eq!(err(p).error, WfpError::InvalidFlags);
        // tunnel endpoints
        let mut p = base.clone();
        assert_eq!(
            p.validate(t::IPSEC_IKEV2_QM_TUNNEL).unwrap_err().error,
            WfpError::InvalidTunnelEndpoint
        );
        p.tunnel = Some(TunnelEndpoints {
            local: "10.0.0.1".parse().unwrap(),
            remote: "fd00::2".parse().unwrap(),
        });
        assert_eq!(
            p.validate(t::IPSEC_IKEV2_QM_TUNNEL).unwrap_err().error,
            WfpError::InvalidTunnelEndpoint
        );
        p.tunnel = Some(TunnelEndpoints {
            local: "10.0.0.1".parse().unwrap(),
            remote: "10.0.0.2".parse().unwrap(),
        });
        p.validate(t::IPSEC_IKEV2_QM_TUNNEL).unwrap();
        assert_eq!(err(p).error, WfpError::InvalidTunnelEndpoint);
    }

    #[test]
    fn hex_data() {
        assert_eq!(parse_hex("0a ff"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex("0xab"), Some(vec![0xab]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("é1"), None);
    }
}
