//! Numbers of the IKEv2 registry (RFC 7296 §3 and the IANA "IKEv2 Parameters" registry).
//!
//! Type-like fields are newtypes over the wire integer with associated constants, so an
//! unknown value received from the peer is representable (and can be answered with the right
//! notify) instead of being a parse error.

use std::fmt;

macro_rules! wire_newtype {
    ($(#[$m:meta])* $name:ident($int:ty) { $($(#[$cm:meta])* $c:ident = $v:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $($(#[$cm])* pub const $c: Self = Self($v);)*

            /// The registry name of a known value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($c)),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}", n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                Self(v)
            }
        }
    };
}

wire_newtype! {
    /// Exchange type (RFC 7296 §3.1).
    ExchangeType(u8) {
        /// IKE_SA_INIT.
        IKE_SA_INIT = 34,
        /// IKE_AUTH.
        IKE_AUTH = 35,
        /// CREATE_CHILD_SA.
        CREATE_CHILD_SA = 36,
        /// INFORMATIONAL.
        INFORMATIONAL = 37,
    }
}

wire_newtype! {
    /// Payload type (RFC 7296 §3.2). `PROPOSAL` (2) and `TRANSFORM` (3) are the values of the
    /// "last substructure" fields, used here to name errors inside an SA payload.
    PayloadType(u8) {
        /// No next payload.
        NONE = 0,
        /// More proposals follow (substructure marker).
        PROPOSAL = 2,
        /// More transforms follow (substructure marker).
        TRANSFORM = 3,
        /// Security Association.
        SA = 33,
        /// Key Exchange.
        KE = 34,
        /// Identification - Initiator.
        IDI = 35,
        /// Identification - Responder.
        IDR = 36,
        /// Certificate.
        CERT = 37,
        /// Certificate Request.
        CERTREQ = 38,
        /// Authentication.
        AUTH = 39,
        /// Nonce.
        NONCE = 40,
        /// Notify.
        NOTIFY = 41,
        /// Delete.
        DELETE = 42,
        /// Vendor ID.
        VENDOR_ID = 43,
        /// Traffic Selector - Initiator.
        TSI = 44,
        /// Traffic Selector - Responder.
        TSR = 45,
        /// Encrypted and Authenticated (SK).
        SK = 46,
        /// Configuration.
        CP = 47,
        /// Extensible Authentication.
        EAP = 48,
    }
}

wire_newtype! {
    /// Security protocol id of a proposal, notify or delete (RFC 7296 §3.3.1).
    ProtocolId(u8) {
        /// None (notifies about the IKE SA itself may use 0).
        NONE = 0,
        /// IKE.
        IKE = 1,
        /// AH.
        AH = 2,
        /// ESP.
        ESP = 3,
    }
}

wire_newtype! {
    /// Transform type (RFC 7296 §3.3.2).
    TransformType(u8) {
        /// Encryption algorithm.
        ENCR = 1,
        /// Pseudo-random function.
        PRF = 2,
        /// Integrity algorithm.
        INTEG = 3,
        /// Diffie-Hellman group (key exchange method).
        DH = 4,
        /// Extended sequence numbers.
        ESN = 5,
    }
}

wire_newtype! {
    /// Notify message type (RFC 7296 §3.10.1; 12345 is the Windows private-use status).
    NotifyType(u16) {
        /// UNSUPPORTED_CRITICAL_PAYLOAD.
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// INVALID_IKE_SPI.
        INVALID_IKE_SPI = 4,
        /// INVALID_MAJOR_VERSION.
        INVALID_MAJOR_VERSION = 5,
        /// INVALID_SYNTAX.
        INVALID_SYNTAX = 7,
        /// INVALID_MESSAGE_ID.
        INVALID_MESSAGE_ID = 9,
        /// INVALID_SPI.
        INVALID_SPI = 11,
        /// NO_PROPOSAL_CHOSEN.
        NO_PROPOSAL_CHOSEN = 14,
        /// INVALID_KE_PAYLOAD (data: the 2-byte group the responder wants).
        INVALID_KE_PAYLOAD = 17,
        /// AUTHENTICATION_FAILED.
        AUTHENTICATION_FAILED = 24,
        /// SINGLE_PAIR_REQUIRED.
        SINGLE_PAIR_REQUIRED = 34,
        /// NO_ADDITIONAL_SAS.
        NO_ADDITIONAL_SAS = 35,
        /// INTERNAL_ADDRESS_FAILURE.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// FAILED_CP_REQUIRED.
        FAILED_CP_REQUIRED = 37,
        /// TS_UNACCEPTABLE.
        TS_UNACCEPTABLE = 38,
        /// INVALID_SELECTORS.
        INVALID_SELECTORS = 39,
        /// TEMPORARY_FAILURE.
        TEMPORARY_FAILURE = 43,
        /// CHILD_SA_NOT_FOUND.
        CHILD_SA_NOT_FOUND = 44,
        /// MS_NOTIFY_STATUS: private use, carries a 32-bit Windows error code (emulator choice).
        MS_NOTIFY_STATUS = 12345,
        /// INITIAL_CONTACT.
        INITIAL_CONTACT = 16384,
        /// SET_WINDOW_SIZE.
        SET_WINDOW_SIZE = 16385,
        /// ADDITIONAL_TS_POSSIBLE.
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// IPCOMP_SUPPORTED.
        IPCOMP_SUPPORTED = 16387,
        /// NAT_DETECTION_SOURCE_IP.
        NAT_DETECTION_SOURCE_IP = 16388,
        /// NAT_DETECTION_DESTINATION_IP.
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// COOKIE.
        COOKIE = 16390,
        /// USE_TRANSPORT_MODE.
        USE_TRANSPORT_MODE = 16391,
        /// HTTP_CERT_LOOKUP_SUPPORTED.
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// REKEY_SA.
        REKEY_SA = 16393,
        /// ESP_TFC_PADDING_NOT_SUPPORTED.
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// NON_FIRST_FRAGMENTS_ALSO.
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// MULTIPLE_AUTH_SUPPORTED (RFC 4739).
        MULTIPLE_AUTH_SUPPORTED = 16404,
        /// ANOTHER_AUTH_FOLLOWS (RFC 4739).
        ANOTHER_AUTH_FOLLOWS = 16405,
        /// CHILDLESS_IKEV2_SUPPORTED (RFC 6023): an IKE_AUTH without a child SA is acceptable.
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        /// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4): the hash algorithms (2-byte ids) a side
        /// verifies RFC 7427 signatures with; sending it announces the Digital Signature method.
        SIGNATURE_HASH_ALGORITHMS = 16431,
    }
}

impl NotifyType {
    /// Error types are below 16384; status types from 16384 on.
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }
}

wire_newtype! {
    /// Identification type (RFC 7296 §3.5).
    IdType(u8) {
        /// A single IPv4 address.
        IPV4_ADDR = 1,
        /// A fully-qualified domain name.
        FQDN = 2,
        /// An RFC 822 e-mail address.
        RFC822_ADDR = 3,
        /// A single IPv6 address.
        IPV6_ADDR = 5,
        /// A DER ASN.1 distinguished name.
        DER_ASN1_DN = 9,
        /// A DER ASN.1 general name.
        DER_ASN1_GN = 10,
        /// An opaque key id.
        KEY_ID = 11,
    }
}

wire_newtype! {
    /// Authentication method (RFC 7296 §3.8, RFC 4754, RFC 7427).
    AuthMethod(u8) {
        /// RSA digital signature.
        RSA_SIG = 1,
        /// Shared key message integrity code.
        SHARED_KEY_MIC = 2,
        /// DSS digital signature.
        DSS_SIG = 3,
        /// ECDSA with SHA-256 on P-256.
        ECDSA_SHA256_P256 = 9,
        /// ECDSA with SHA-384 on P-384.
        ECDSA_SHA384_P384 = 10,
        /// ECDSA with SHA-512 on P-521.
        ECDSA_SHA512_P521 = 11,
        /// Generic digital signature (RFC 7427).
        DIGITAL_SIGNATURE = 14,
    }
}

wire_newtype! {
    /// Certificate encoding (RFC 7296 §3.6).
    CertEncoding(u8) {
        /// X.509 certificate, signature.
        X509_SIGNATURE = 4,
        /// Raw RSA key.
        RAW_RSA_KEY = 11,
        /// Hash and URL of an X.509 certificate.
        HASH_URL_X509 = 12,
        /// Hash and URL of an X.509 bundle.
        HASH_URL_BUNDLE = 13,
    }
}

wire_newtype! {
    /// Traffic selector type (RFC 7296 §3.13.1).
    TsType(u8) {
        /// IPv4 address range.
        IPV4_ADDR_RANGE = 7,
        /// IPv6 address range.
        IPV6_ADDR_RANGE = 8,
    }
}

/// Transform ids of every transform type (IANA "IKEv2 Parameters"), as plain `u16` so that a
/// `match` on a received id reads naturally.
pub mod transform {
    /// ENCR_NULL (RFC 2410; ESP only).
    pub const ENCR_NULL: u16 = 11;
    /// ENCR_AES_CBC (RFC 3602).
    pub const ENCR_AES_CBC: u16 = 12;
    /// ENCR_AES_GCM_8.
    pub const ENCR_AES_GCM_8: u16 = 18;
    /// ENCR_AES_GCM_12.
    pub const ENCR_AES_GCM_12: u16 = 19;
    /// ENCR_AES_GCM_16 (RFC 4106 / RFC 5282).
    pub const ENCR_AES_GCM_16: u16 = 20;
    /// ENCR_NULL_AUTH_AES_GMAC (RFC 4543; ESP only).
    pub const ENCR_NULL_AUTH_AES_GMAC: u16 = 21;
    /// ENCR_CHACHA20_POLY1305 (RFC 7634).
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;

    /// PRF_HMAC_SHA1.
    pub const PRF_HMAC_SHA1: u16 = 2;
    /// PRF_HMAC_SHA2_256.
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    /// PRF_HMAC_SHA2_384.
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    /// PRF_HMAC_SHA2_512.
    pub const PRF_HMAC_SHA2_512: u16 = 7;

    /// NONE (with an AEAD cipher).
    pub const AUTH_NONE: u16 = 0;
    /// AUTH_HMAC_SHA1_96 (RFC 2404).
    pub const AUTH_HMAC_SHA1_96: u16 = 2;
    /// AUTH_HMAC_SHA2_256_128 (RFC 4868).
    pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
    /// AUTH_HMAC_SHA2_384_192.
    pub const AUTH_HMAC_SHA2_384_192: u16 = 13;
    /// AUTH_HMAC_SHA2_512_256.
    pub const AUTH_HMAC_SHA2_512_256: u16 = 14;

    /// No Diffie-Hellman group.
    pub const DH_NONE: u16 = 0;
    /// 2048-bit MODP group.
    pub const DH_MODP_2048: u16 = 14;
    /// 256-bit random ECP group (NIST P-256, RFC 5903).
    pub const DH_ECP_256: u16 = 19;
    /// 384-bit random ECP group (NIST P-384).
    pub const DH_ECP_384: u16 = 20;
    /// Curve25519 (RFC 8031).
    pub const DH_CURVE25519: u16 = 31;
    /// Curve448.
    pub const DH_CURVE448: u16 = 32;

    /// No extended sequence numbers.
    pub const ESN_NONE: u16 = 0;
    /// Extended sequence numbers.
    pub const ESN_ENABLED: u16 = 1;
}

/// Transform attribute type of the Key Length attribute (TV format).
pub const ATTR_KEY_LENGTH: u16 = 14;
