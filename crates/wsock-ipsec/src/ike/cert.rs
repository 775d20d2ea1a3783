//! Certificate authentication of IKE_AUTH (RFC 7296 §2.15, §3.6-3.8; RFC 7427).
//!
//! [`CertAuth`] is one side's certificate credential and trust: its chain (sent in CERT
//! payloads, encoding 4, end-entity first), its ECDSA P-256 private key, the trust anchors it
//! accepts the peer's chain from (announced in CERTREQ payloads as SHA-1 hashes of their
//! SubjectPublicKeyInfo), and the wall-clock time that corresponds to the engine's `now` of zero.
//!
//! Signing: `AUTH` method 14 (RFC 7427 digital signature) carries the length and DER of the
//! `ecdsa-with-SHA256` AlgorithmIdentifier (parameters absent) and an ASN.1 DER ECDSA signature
//! over the signed octets, made with ring. Method 14 is used only with a peer that announced
//! SHA2-256 in `N(SIGNATURE_HASH_ALGORITHMS)` (RFC 7427 §4; we announce it whenever we
//! authenticate with a certificate); otherwise AUTH is method 9 (RFC 4754, ECDSA with SHA-256
//! on P-256, the fixed `r || s` form). Verification accepts both.
//!
//! Verification of the peer, in this order:
//! 1. Its chain is built to one of our trust anchors by rustls-webpki at the wall-clock time
//!    `wall_clock_epoch + now` (validity periods, CA constraints, signatures of the chain).
//!    Extended key usage: a certificate without an EKU extension passes; one with an EKU
//!    extension passes when it holds id-kp-ipsecIKE (1.3.6.1.5.5.7.3.17), iKEIntermediate
//!    (1.3.6.1.5.5.8.2.2), serverAuth, clientAuth or anyExtendedKeyUsage, since Windows and
//!    other implementations issue IKE certificates with the TLS purposes. This is a custom
//!    webpki `ExtendedKeyUsageValidator`: webpki's own `KeyUsage` checks one purpose only.
//! 2. The AUTH signature verifies with the end-entity certificate's public key (ring's
//!    `UnparsedPublicKey`, P-256 only).
//! 3. The peer's ID is one the certificate holds: ID_FQDN a DNS name of its subject alternative
//!    names (rustls-webpki's name matching, after the trailing dot is dropped), ID_IPV4_ADDR /
//!    ID_IPV6_ADDR an IP address SAN, ID_DER_ASN1_DN its subject, byte for byte.
//! 4. With a target name, the certificate must hold that name: the `host/` SPN prefix is
//!    stripped (case-insensitively) and the raw name matched as a DNS name or IP address by
//!    rustls-webpki (case-insensitive, trailing dot ignored). A trusted certificate for another
//!    name (a man in the middle with a certificate from the same CA) fails here.
//!
//! Every failure is an [`IpsecError`] mapped to `ERROR_IPSEC_IKE_AUTH_FAIL` (13801).

use crate::error::IpsecError;
use crate::ike::sa::Identity;
use crate::ike::wire::{AuthMethod, CertEncoding, IdType, Identification, PayloadRepr};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use rustls_pki_types::{CertificateDer, DnsName, ServerName, UnixTime};
use std::sync::Arc;
use std::time::Duration;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage};

/// The RFC 7427 hash algorithm id of SHA2-256 (IANA "IKEv2 Hash Algorithms").
pub const SIGNATURE_HASH_SHA2_256: u16 = 2;

/// Whether the data of a peer's `N(SIGNATURE_HASH_ALGORITHMS)` lists SHA2-256, the hash of
/// the only RFC 7427 signature we make (a trailing odd byte is ignored).
///
/// # Examples
/// ```
/// use wsock_ipsec::ike::cert::announces_sha256;
/// assert!(announces_sha256(&[0, 1, 0, 2, 0, 3]));
/// assert!(!announces_sha256(&[0, 1, 0, 4]));
/// assert!(!announces_sha256(&[0]));
/// ```
pub fn announces_sha256(notify_data: &[u8]) -> bool {
    notify_data
        .chunks_exact(2)
        .any(|c| u16::from_be_bytes([c[0], c[1]]) == SIGNATURE_HASH_SHA2_256)
}

/// The DER `AlgorithmIdentifier` of ecdsa-with-SHA256 (1.2.840.10045.4.3.2), parameters
/// absent, as RFC 7427 Appendix A lists it.
pub const ECDSA_WITH_SHA256_ALG_ID: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// The fixed head of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, a 65-byte
/// BIT STRING): what follows is the uncompressed point.
const P256_SPKI_HEAD: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Key purposes (OID contents) accepted in an EKU extension.
const ACCEPTED_EKUS: [&[u8]; 5] = [
    // id-kp-ipsecIKE 1.3.6.1.5.5.7.3.17
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11],
    // iKEIntermediate 1.3.6.1.5.5.8.2.2
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x08, 0x02, 0x02],
    // id-kp-serverAuth
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01],
    // id-kp-clientAuth
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
    // anyExtendedKeyUsage 2.5.29.37.0
    &[0x55, 0x1d, 0x25, 0x00],
];

/// The EKU policy of IKE certificates (see the module documentation).
struct IkeEku;

impl ExtendedKeyUsageValidator for IkeEku {
    fn validate(&self, mut iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut any = false;
        for item in iter.by_ref() {
            let id = item?;
            any = true;
            if ACCEPTED_EKUS.iter().any(|oid| KeyPurposeId::new(oid) == id) {
                return Ok(());
            }
        }
        if !any {
            return Ok(());
        }
        // None acceptable: let webpki's own validator describe the failure (the iterator is
        // exhausted, so a required id-kp-ipsecIKE is reported missing).
        KeyUsage::required(ACCEPTED_EKUS[0]).validate(iter)
    }
}

/// The signature algorithms accepted in peer chains.
static CHAIN_ALGS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
];

/// One side's certificate credential and trust (see the module documentation).
#[derive(Clone)]
pub struct CertAuth {
    chain: Vec<Vec<u8>>,
    key: Arc<EcdsaKeyPair>,
    /// The same key for RFC 4754 signatures (fixed-size `r || s`).
    key_fixed: Arc<EcdsaKeyPair>,
    trust_anchors: Vec<Vec<u8>>,
    anchor_hashes: Vec<u8>,
    /// The wall-clock time at the engine's `now` of zero: certificates are checked at
    /// `wall_clock_epoch + now`. The engine reads no clock; the owner sets this from the system
    /// clock (or, in tests and scenarios, from the scenario's notion of the date) so that
    /// certificate validity follows the virtual clock.
    pub wall_clock_epoch: UnixTime,
}

impl std::fmt::Debug for CertAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuth")
            .field("chain_len", &self.chain.len())
            .field("trust_anchors", &self.trust_anchors.len())
            .field("wall_clock_epoch", &self.wall_clock_epoch)
            .finish_non_exhaustive()
    }
}

fn cert_err(e: webpki::Error) -> IpsecError {
    IpsecError::IkeCertRejected(format!("{e:?}"))
}

impl CertAuth {
    /// A credential from our chain (DER, end-entity first), its private key (PKCS#8, ECDSA
    /// P-256) and the trust anchors (DER CA certificates) we accept peers from.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for an empty chain, a key that is not a P-256 PKCS#8 key
    /// or does not belong to the end-entity certificate, or a trust anchor webpki cannot read.
    pub fn new(
        chain: Vec<Vec<u8>>,
        key_pkcs8: &[u8],
        trust_anchors: Vec<Vec<u8>>,
        wall_clock_epoch: UnixTime,
    ) -> Result<Self, IpsecError> {
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            key_pkcs8,
            &rng,
        )
        .map_err(|_| IpsecError::InvalidConfig("certificate key is not an ECDSA P-256 key"))?;
        let key_fixed =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, key_pkcs8, &rng)
                .map_err(|_| {
                    IpsecError::InvalidConfig("certificate key is not an ECDSA P-256 key")
                })?;
        let leaf = chain
            .first()
            .ok_or(IpsecError::InvalidConfig("empty certificate chain"))?;
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|_| IpsecError::InvalidConfig("unreadable end-entity certificate"))?;
        if p256_point(&ee).as_deref() != Some(key.public_key().as_ref()) {
            return Err(IpsecError::InvalidConfig(
                "key does not belong to the end-entity certificate",
            ));
        }
        let mut anchor_hashes = Vec::with_capacity(20 * trust_anchors.len());
        for a in &trust_anchors {
            let der = CertificateDer::from(a.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|_| IpsecError::InvalidConfig("unreadable trust anchor"))?;
            let spki = webpki::spki_for_anchor(&anchor);
            let h = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_ref());
            anchor_hashes.extend_from_slice(h.as_ref());
        }
        Ok(CertAuth {
            chain,
            key: Arc::new(key),
            key_fixed: Arc::new(key_fixed),
            trust_anchors,
            anchor_hashes,
            wall_clock_epoch,
        })
    }

    /// Our CERT payloads: the chain, end-entity first (encoding 4, X.509 signature).
    pub fn cert_payloads(&self) -> Vec<PayloadRepr> {
        self.chain
            .iter()
            .map(|c| PayloadRepr::Cert {
                encoding: CertEncoding::X509_SIGNATURE,
                data: c.clone(),
            })
            .collect()
    }

    /// Our CERTREQ payload: the SHA-1 hashes of our trust anchors' SubjectPublicKeyInfo.
    pub fn certreq_payload(&self) -> PayloadRepr {
        PayloadRepr::CertReq {
            encoding: CertEncoding::X509_SIGNATURE,
            data: self.anchor_hashes.clone(),
        }
    }

    /// Our AUTH payload over `signed_octets`: method 14, ecdsa-with-SHA256, DER signature.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when signing fails (the system random source failed).
    pub fn sign(&self, signed_octets: &[u8]) -> Result<PayloadRepr, IpsecError> {
        let rng = ring::rand::SystemRandom::new();
        let sig = self
            .key
            .sign(&rng, signed_octets)
            .map_err(|_| IpsecError::InvalidConfig("signing failed"))?;
        let mut data = Vec::with_capacity(1 + ECDSA_WITH_SHA256_ALG_ID.len() + sig.as_ref().len());
        data.push(ECDSA_WITH_SHA256_ALG_ID.len() as u8);
        data.extend_from_slice(&ECDSA_WITH_SHA256_ALG_ID);
        data.extend_from_slice(sig.as_ref());
        Ok(PayloadRepr::Auth {
            method: AuthMethod::DIGITAL_SIGNATURE,
            data,
        })
    }

    /// Our AUTH payload over `signed_octets` in the form the peer can verify: with
    /// `peer_rfc7427` (the peer announced SHA2-256 in `N(SIGNATURE_HASH_ALGORITHMS)`, RFC 7427
    /// §4) method 14 as [`CertAuth::sign`]; otherwise RFC 4754 method 9 (ECDSA with SHA-256 on
    /// P-256), whose data is the fixed-size `r || s`, since a peer that did not announce
    /// RFC 7427 need not understand method 14.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when signing fails (the system random source failed).
    pub fn sign_for_peer(
        &self,
        signed_octets: &[u8],
        peer_rfc7427: bool,
    ) -> Result<PayloadRepr, IpsecError> {
        if peer_rfc7427 {
            return self.sign(signed_octets);
        }
        let rng = ring::rand::SystemRandom::new();
        let sig = self
            .key_fixed
            .sign(&rng, signed_octets)
            .map_err(|_| IpsecError::InvalidConfig("signing failed"))?;
        Ok(PayloadRepr::Auth {
            method: AuthMethod::ECDSA_SHA256_P256,
            data: sig.as_ref().to_vec(),
        })
    }

    /// The data of our `N(SIGNATURE_HASH_ALGORITHMS)`: the hashes we verify RFC 7427
    /// signatures with (SHA2-256, id 2, the hash of ecdsa-with-SHA256).
    pub fn signature_hash_algorithms(&self) -> Vec<u8> {
        SIGNATURE_HASH_SHA2_256.to_be_bytes().to_vec()
    }

    /// The wall-clock time at the engine's `now`.
    pub fn wall_clock(&self, now: Duration) -> UnixTime {
        let t = Duration::from_secs(self.wall_clock_epoch.as_secs()).saturating_add(now);
        UnixTime::since_unix_epoch(t)
    }

    /// Verifies the peer: its chain (`certs`, the data of its CERT payloads of encoding 4,
    /// end-entity first) against our trust anchors at [`CertAuth::wall_clock`], the AUTH
    /// signature (`method`, `auth_data`) over `signed_octets`, its ID against the certificate,
    /// and with `target` the certificate against the target name.
    ///
    /// # Errors
    /// [`IpsecError::IkeCertRejected`] for a chain, EKU, signature or ID that does not check
    /// out; [`IpsecError::IkePeerIdMismatch`] for a trusted certificate of another name than
    /// `target`. Both are `ERROR_IPSEC_IKE_AUTH_FAIL`.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_peer(
        &self,
        now: Duration,
        certs: &[&[u8]],
        id: &Identification,
        method: AuthMethod,
        auth_data: &[u8],
        signed_octets: &[u8],
        target: Option<&str>,
    ) -> Result<(), IpsecError> {
        let Some((leaf, rest)) = certs.split_first() else {
            return Err(IpsecError::IkeCertRejected("no certificate".into()));
        };
        let leaf_der = CertificateDer::from(*leaf);
        let ee = EndEntityCert::try_from(&leaf_der).map_err(cert_err)?;
        let intermediates: Vec<CertificateDer<'_>> =
            rest.iter().map(|c| CertificateDer::from(*c)).collect();
        let anchor_ders: Vec<CertificateDer<'_>> = self
            .trust_anchors
            .iter()
            .map(|a| CertificateDer::from(a.as_slice()))
            .collect();
        let anchors = anchor_ders
            .iter()
            .map(webpki::anchor_from_trusted_cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(cert_err)?;
        ee.verify_for_usage(
            CHAIN_ALGS,
            &anchors,
            &intermediates,
            self.wall_clock(now),
            IkeEku,
            None,
            None,
        )
        .map_err(cert_err)?;
        // The AUTH signature, with the end-entity key.
        let point = p256_point(&ee).ok_or_else(|| {
            IpsecError::IkeCertRejected("end-entity key is not ECDSA P-256".into())
        })?;
        let (alg, sig): (&dyn signature::VerificationAlgorithm, &[u8]) = match method {
            AuthMethod::DIGITAL_SIGNATURE => {
                let (alg_id, sig) = split_rfc7427(auth_data)?;
                if alg_id != ECDSA_WITH_SHA256_ALG_ID {
                    return Err(IpsecError::IkeCertRejected(
                        "signature algorithm other than ecdsa-with-SHA256".into(),
                    ));
                }
                (&signature::ECDSA_P256_SHA256_ASN1, sig)
            }
            AuthMethod::ECDSA_SHA256_P256 => (&signature::ECDSA_P256_SHA256_FIXED, auth_data),
            _ => {
                return Err(IpsecError::IkeCertRejected(format!(
                    "authentication method {} instead of a signature",
                    method.0
                )))
            }
        };
        UnparsedPublicKey::new(alg, &point)
            .verify(signed_octets, sig)
            .map_err(|_| IpsecError::IkeCertRejected("AUTH signature does not verify".into()))?;
        // The ID must be one the certificate holds.
        let id_ok = match id.id_type {
            IdType::FQDN => std::str::from_utf8(&id.data)
                .ok()
                .is_some_and(|n| cert_has_name(&ee, n)),
            IdType::IPV4_ADDR | IdType::IPV6_ADDR => match Identity::from_wire(id) {
                Identity::Ipv4(a) => ee
                    .verify_is_valid_for_subject_name(&ServerName::from(std::net::IpAddr::V4(a)))
                    .is_ok(),
                Identity::Ipv6(a) => ee
                    .verify_is_valid_for_subject_name(&ServerName::from(std::net::IpAddr::V6(a)))
                    .is_ok(),
                _ => false,
            },
            IdType::DER_ASN1_DN => der_sequence(ee.subject()) == id.data,
            _ => false,
        };
        if !id_ok {
            return Err(IpsecError::IkeCertRejected(
                "peer ID is not a name of its certificate".into(),
            ));
        }
        if let Some(target) = target {
            let raw = strip_spn(target);
            if !cert_has_name(&ee, raw) {
                return Err(IpsecError::IkePeerIdMismatch {
                    peer: Identity::from_wire(id).to_string(),
                    target: target.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The raw name of a target name: without the `host/` SPN prefix (any case).
pub fn strip_spn(target: &str) -> &str {
    match target.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("host/") => &target[5..],
        _ => target,
    }
}

/// Whether the certificate holds `name` (a DNS name, case-insensitive, trailing dot ignored,
/// or an IP address).
fn cert_has_name(ee: &EndEntityCert<'_>, name: &str) -> bool {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return ee
            .verify_is_valid_for_subject_name(&ServerName::from(ip))
            .is_ok();
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    // One trailing dot is the absolute form; a second would be an empty label, which webpki
    // would otherwise read as the absolute form of the name without it.
    if name.ends_with('.') {
        return false;
    }
    match DnsName::try_from(name) {
        Ok(d) => ee
            .verify_is_valid_for_subject_name(&ServerName::DnsName(d))
            .is_ok(),
        Err(_) => false,
    }
}

/// The uncompressed point of a P-256 end-entity key.
fn p256_point(ee: &EndEntityCert<'_>) -> Option<Vec<u8>> {
    let spki = ee.subject_public_key_info();
    let b = spki.as_ref();
    match b.split_at_checked(P256_SPKI_HEAD.len()) {
        Some((head, point)) if head == P256_SPKI_HEAD && point.len() == 65 && point[0] == 4 => {
            Some(point.to_vec())
        }
        _ => None,
    }
}

/// Splits RFC 7427 AUTH data into the AlgorithmIdentifier and the signature.
fn split_rfc7427(data: &[u8]) -> Result<(&[u8], &[u8]), IpsecError> {
    let bad = || IpsecError::IkeCertRejected("malformed RFC 7427 AUTH data".into());
    let (&len, rest) = data.split_first().ok_or_else(bad)?;
    let len = usize::from(len);
    if rest.len() <= len {
        return Err(bad());
    }
    Ok(rest.split_at(len))
}

/// A DER SEQUENCE around `content`.
fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - start) as u8);
        out.extend_from_slice(&bytes[start..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertAuthority, MachineCert, Validity};

    fn epoch() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_790_000_000))
    }

    struct Fixture {
        ca: CertAuthority,
        cert: MachineCert,
        auth: CertAuth,
    }

    fn fixture(names: &[&str]) -> Fixture {
        let mut ca = CertAuthority::new("unit CA", Validity::default()).unwrap();
        let cert = ca.issue_machine(names, true, Validity::default()).unwrap();
        let auth = CertAuth::new(
            cert.chain.clone(),
            &cert.key_pkcs8,
            vec![ca.cert_der().to_vec()],
            epoch(),
        )
        .unwrap();
        Fixture { ca, cert, auth }
    }

    fn fqdn(s: &str) -> Identification {
        Identification {
            id_type: IdType::FQDN,
            data: s.as_bytes().to_vec(),
        }
    }

    fn signed(auth: &CertAuth, octets: &[u8]) -> (AuthMethod, Vec<u8>) {
        match auth.sign(octets).unwrap() {
            PayloadRepr::Auth { method, data } => (method, data),
            other => panic!("not AUTH: {other:?}"),
        }
    }

    #[test]
    fn rfc7427_signature_verifies_and_binds_the_octets() {
        let f = fixture(&["b.example"]);
        let (m, d) = signed(&f.auth, b"octets");
        assert_eq!(m, AuthMethod::DIGITAL_SIGNATURE);
        assert_eq!(usize::from(d[0]), ECDSA_WITH_SHA256_ALG_ID.len());
        let certs = [f.cert.chain[0].as_slice()];
        let id = fqdn("b.example");
        let v = |m, d: &[u8], o: &[u8]| {
            f.auth
                .verify_peer(Duration::ZERO, &certs, &id, m, d, o, None)
        };
        assert_eq!(v(m, &d, b"octets"), Ok(()));
        assert!(v(m, &d, b"other octets").is_err());
        // Signature data under other methods: refused.
        assert!(v(AuthMethod::SHARED_KEY_MIC, &d, b"octets").is_err());
        assert!(v(AuthMethod::RSA_SIG, &d, b"octets").is_err());
        // Another AlgorithmIdentifier (ecdsa-with-SHA384) in front of the same signature.
        let mut other = d.clone();
        other[12] = 0x03;
        assert!(v(m, &other, b"octets").is_err());
    }

    #[test]
    fn rfc4754_method_9_is_accepted() {
        let f = fixture(&["b.example"]);
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &f.cert.key_pkcs8,
            &rng,
        )
        .unwrap();
        let sig = key.sign(&rng, b"octets").unwrap();
        assert_eq!(sig.as_ref().len(), 64);
        let certs = [f.cert.chain[0].as_slice()];
        let r = f.auth.verify_peer(
            Duration::ZERO,
            &certs,
            &fqdn("b.example"),
            AuthMethod::ECDSA_SHA256_P256,
            sig.as_ref(),
            b"octets",
            Some("host/B.EXAMPLE."),
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn hostile_auth_data_and_certificates_are_errors_not_panics() {
        let f = fixture(&["b.example"]);
        let good = f.cert.chain[0].as_slice();
        let id = fqdn("b.example");
        let mut state = 0x5eed_u64;
        println!("noise seed {state:#x}");
        let mut noise = |n: usize| {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect::<Vec<u8>>()
        };
        let mut datas: Vec<Vec<u8>> =
            vec![vec![], vec![0], vec![12], vec![255, 1, 2], vec![12; 13]];
        let mut alg_only = vec![12];
        alg_only.extend_from_slice(&ECDSA_WITH_SHA256_ALG_ID);
        datas.push(alg_only);
        for n in [1, 20, 64, 72, 200] {
            datas.push(noise(n));
        }
        for d in &datas {
            for m in [AuthMethod::DIGITAL_SIGNATURE, AuthMethod::ECDSA_SHA256_P256] {
                let r = f
                    .auth
                    .verify_peer(Duration::ZERO, &[good], &id, m, d, b"o", None);
                assert!(r.is_err(), "{d:?}");
            }
        }
        let (m, d) = signed(&f.auth, b"o");
        let truncated = &good[..good.len() / 2];
        let junk = noise(300);
        let lists: [Vec<&[u8]>; 5] = [
            vec![],
            vec![truncated],
            vec![junk.as_slice()],
            vec![&[][..]],
            vec![junk.as_slice(), good],
        ];
        for certs in lists {
            let r = f
                .auth
                .verify_peer(Duration::ZERO, &certs, &id, m, &d, b"o", None);
            assert_eq!(r.map_err(|e| e.win32_code()), Err(13801));
        }
        // Junk intermediates after a good leaf do not stop the chain being found.
        let r = f
            .auth
            .verify_peer(Duration::ZERO, &[good, &junk], &id, m, &d, b"o", None);
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn ids_must_be_names_of_the_certificate() {
        let mut f = fixture(&["b.example"]);
        let (m, d) = signed(&f.auth, b"o");
        let leaf = f.cert.chain[0].clone();
        let certs = [leaf.as_slice()];
        let ok = |auth: &CertAuth, id: &Identification| {
            auth.verify_peer(Duration::ZERO, &certs, id, m, &d, b"o", None)
                .is_ok()
        };
        assert!(ok(&f.auth, &fqdn("b.example")));
        assert!(ok(&f.auth, &fqdn("B.Example.")));
        assert!(!ok(&f.auth, &fqdn("c.example")));
        assert!(!ok(&f.auth, &fqdn("")));
        assert!(!ok(
            &f.auth,
            &Identification {
                id_type: IdType::RFC822_ADDR,
                data: b"b.example".to_vec(),
            }
        ));
        // ID_DER_ASN1_DN: the certificate's subject, byte for byte.
        let der = CertificateDer::from(leaf.as_slice());
        let ee = EndEntityCert::try_from(&der).unwrap();
        let dn = der_sequence(ee.subject());
        assert!(ok(
            &f.auth,
            &Identification {
                id_type: IdType::DER_ASN1_DN,
                data: dn.clone(),
            }
        ));
        assert!(!ok(
            &f.auth,
            &Identification {
                id_type: IdType::DER_ASN1_DN,
                data: dn[..dn.len() - 1].to_vec(),
            }
        ));
        // An IP address SAN and ID_IPV4_ADDR.
        let ip_cert =
            f.ca.issue_machine(&["10.0.0.2"], false, Validity::default())
                .unwrap();
        let ip_auth = CertAuth::new(
            ip_cert.chain.clone(),
            &ip_cert.key_pkcs8,
            vec![f.ca.cert_der().to_vec()],
            epoch(),
        )
        .unwrap();
        let (m, d) = signed(&ip_auth, b"o");
        let id = Identity::Ipv4([10, 0, 0, 2].into()).to_wire();
        let certs = [ip_cert.chain[0].as_slice()];
        let check = |target| {
            f.auth
                .verify_peer(Duration::ZERO, &certs, &id, m, &d, b"o", Some(target))
        };
        assert_eq!(check("10.0.0.2"), Ok(()));
        assert_eq!(check("host/10.0.0.2"), Ok(()));
        assert!(matches!(
            check("10.0.0.3"),
            Err(IpsecError::IkePeerIdMismatch { .. })
        ));
    }

    #[test]
    fn credential_checks() {
        let f = fixture(&["b.example"]);
        let other = fixture(&["c.example"]);
        let anchors = vec![f.ca.cert_der().to_vec()];
        let chain = f.cert.chain.clone();
        assert!(CertAuth::new(vec![], &f.cert.key_pkcs8, anchors.clone(), epoch()).is_err());
        assert!(CertAuth::new(chain.clone(), b"junk", anchors.clone(), epoch()).is_err());
        assert!(
            CertAuth::new(chain.clone(), &other.cert.key_pkcs8, anchors, epoch()).is_err(),
            "a key of another certificate"
        );
        assert!(CertAuth::new(chain, &f.cert.key_pkcs8, vec![vec![1, 2]], epoch()).is_err());
        match f.auth.certreq_payload() {
            PayloadRepr::CertReq { encoding, data } => {
                assert_eq!(encoding, CertEncoding::X509_SIGNATURE);
                assert_eq!(data.len(), 20);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(strip_spn("HoSt/x.example"), "x.example");
        assert_eq!(strip_spn("x.example"), "x.example");
        assert_eq!(strip_spn("hos"), "hos");
        assert_eq!(der_sequence(&[0u8; 200])[..3], [0x30, 0x81, 200]);
    }
}
