//! IKEv2 cryptography (RFC 7296 §2.13-§2.17, RFC 5282, RFC 7634, RFC 5903, RFC 8031): the PRFs,
//! prf+, SKEYSEED and the IKE SA keys, child SA KEYMAT, SK payload protection, and ephemeral
//! Diffie-Hellman.
//!
//! Everything here is a pure function of its inputs except [`KeyExchange::generate`] and the
//! random CBC IVs of [`SkCrypter::seal`], which draw from `ring::rand::SystemRandom`. Key
//! exchange is one-shot, as in ring: [`KeyExchange::agree`] consumes the private key.

use crate::error::IpsecError;
use crate::esp::{EspSuite, Integrity};
use crate::ike::wire::{
    transform as tid, Message, MessageRepr, PayloadRepr, PayloadType, GENERIC_HEADER_LEN,
};
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// A pseudo-random function of the IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA1 (2).
    HmacSha1,
    /// PRF_HMAC_SHA2_256 (5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (6).
    HmacSha384,
}

impl Prf {
    /// The PRF for an IANA PRF transform id.
    ///
    /// # Errors
    /// [`IpsecError::UnsupportedPrf`] for other ids.
    pub fn from_transform_id(id: u16) -> Result<Self, IpsecError> {
        match id {
            tid::PRF_HMAC_SHA1 => Ok(Prf::HmacSha1),
            tid::PRF_HMAC_SHA2_256 => Ok(Prf::HmacSha256),
            tid::PRF_HMAC_SHA2_384 => Ok(Prf::HmacSha384),
            other => Err(IpsecError::UnsupportedPrf(other)),
        }
    }

    /// The IANA transform id.
    pub fn transform_id(self) -> u16 {
        match self {
            Prf::HmacSha1 => tid::PRF_HMAC_SHA1,
            Prf::HmacSha256 => tid::PRF_HMAC_SHA2_256,
            Prf::HmacSha384 => tid::PRF_HMAC_SHA2_384,
        }
    }

    /// Output length in bytes, which is also the preferred key length (the size of SK_d, SK_pi
    /// and SK_pr).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
        }
    }

    /// `prf(key, data)`.
    pub fn prf(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        self.prf_parts(key, &[data])
    }

    /// `prf(key, part0 | part1 | ...)` without concatenating first.
    pub fn prf_parts(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let k = hmac::Key::new(self.algorithm(), key);
        let mut ctx = hmac::Context::with_key(&k);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// `prf+(key, seed)` truncated to `len` bytes: `T1 | T2 | ...` with
    /// `T1 = prf(K, S | 0x01)` and `Tn = prf(K, Tn-1 | S | n)`.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when `len` needs more than 255 blocks.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::ike::crypto::Prf;
    /// let out = Prf::HmacSha256.prf_plus(b"key", b"seed", 70).unwrap();
    /// assert_eq!(out.len(), 70);
    /// assert_eq!(&out[..32], &Prf::HmacSha256.prf(b"key", b"seed\x01")[..]);
    /// ```
    pub fn prf_plus(self, key: &[u8], seed: &[u8], len: usize) -> Result<Vec<u8>, IpsecError> {
        self.prf_plus_parts(key, &[seed], len)
    }

    /// [`Prf::prf_plus`] with the seed given in parts.
    ///
    /// # Errors
    /// As [`Prf::prf_plus`].
    pub fn prf_plus_parts(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Vec<u8>, IpsecError> {
        let h = self.output_len();
        if len > 255 * h {
            return Err(IpsecError::InvalidConfig(
                "prf+ output longer than 255 blocks",
            ));
        }
        let k = hmac::Key::new(self.algorithm(), key);
        let mut out = Vec::with_capacity(len + h);
        let mut prev: Option<hmac::Tag> = None;
        let mut n = 1u8;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&k);
            if let Some(t) = &prev {
                ctx.update(t.as_ref());
            }
            for s in seed {
                ctx.update(s);
            }
            ctx.update(&[n]);
            let t = ctx.sign();
            out.extend_from_slice(t.as_ref());
            prev = Some(t);
            n = n.wrapping_add(1);
        }
        out.truncate(len);
        Ok(out)
    }
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (nonce bodies only).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.prf(&key, g_ir)
}

/// SKEYSEED of a rekeyed IKE SA: `prf(SK_d (old), g^ir (new) | Ni | Nr)`.
pub fn skeyseed_rekey(prf: Prf, old_sk_d: &[u8], g_ir: &[u8], ni: &[u8], nr: &[u8]) -> Vec<u8> {
    prf.prf_parts(old_sk_d, &[g_ir, ni, nr])
}

/// The octets an IKE_AUTH signs (RFC 7296 §2.15): the peer-visible first message of the signer
/// (`RealMessage1` / `RealMessage2`, exactly as sent), the other side's nonce body, and
/// `prf(SK_p, RestOfIDPayload)` where `id_body` is the signer's ID payload body (ID type, three
/// reserved bytes, ID data) and `sk_p` is SK_pi for the initiator, SK_pr for the responder.
pub fn signed_octets(
    prf: Prf,
    first_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let mac = prf.prf(sk_p, id_body);
    let mut out = Vec::with_capacity(first_message.len() + peer_nonce.len() + mac.len());
    out.extend_from_slice(first_message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(&mac);
    out
}

/// The key pad of shared-key authentication: 17 ASCII octets, no terminator.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// AUTH data for shared-key authentication: `prf(prf(Shared Secret, "Key Pad for IKEv2"),
/// <signed octets>)`.
pub fn psk_auth(prf: Prf, psk: &[u8], signed_octets: &[u8]) -> Vec<u8> {
    prf.prf(&prf.prf(psk, KEY_PAD), signed_octets)
}

/// The data of a NAT_DETECTION_SOURCE_IP / _DESTINATION_IP notify (RFC 7296 §2.23):
/// `SHA-1(SPIi | SPIr | IP | port)`, with SPIr zero in the first request.
pub fn nat_detection_hash(spi_i: u64, spi_r: u64, addr: std::net::IpAddr, port: u16) -> [u8; 20] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr {
        std::net::IpAddr::V4(a) => ctx.update(&a.octets()),
        std::net::IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&port.to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The seven keys of an IKE SA.
#[derive(Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    /// Key for deriving child SA keys.
    pub sk_d: Vec<u8>,
    /// Integrity key, initiator to responder (empty with an AEAD).
    pub sk_ai: Vec<u8>,
    /// Integrity key, responder to initiator.
    pub sk_ar: Vec<u8>,
    /// Encryption key (with salt for AEAD), initiator to responder.
    pub sk_ei: Vec<u8>,
    /// Encryption key, responder to initiator.
    pub sk_er: Vec<u8>,
    /// Key for the initiator's AUTH payload.
    pub sk_pi: Vec<u8>,
    /// Key for the responder's AUTH payload.
    pub sk_pr: Vec<u8>,
}

impl std::fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IkeSaKeys { .. }")
    }
}

impl IkeSaKeys {
    /// `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`
    /// for an SK suite.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] if the total exceeds what prf+ can produce.
    pub fn derive(
        prf: Prf,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
        suite: SkSuite,
    ) -> Result<Self, IpsecError> {
        let d = prf.output_len();
        let a = suite.integ_key_len();
        let e = suite.encr_key_len();
        let km = prf.prf_plus_parts(
            skeyseed,
            &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
            3 * d + 2 * a + 2 * e,
        )?;
        let mut at = 0;
        let mut take = |n: usize| {
            let v = km[at..at + n].to_vec();
            at += n;
            v
        };
        Ok(IkeSaKeys {
            sk_d: take(d),
            sk_ai: take(a),
            sk_ar: take(a),
            sk_ei: take(e),
            sk_er: take(e),
            sk_pi: take(d),
            sk_pr: take(d),
        })
    }
}

/// Which end of an exchange we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The original initiator.
    Initiator,
    /// The original responder.
    Responder,
}

/// The keys of a child SA pair.
#[derive(Clone, PartialEq, Eq)]
pub struct ChildSaKeys {
    /// Encryption keying material (with salt for AEAD), initiator to responder.
    pub encr_i: Vec<u8>,
    /// Integrity key, initiator to responder.
    pub integ_i: Vec<u8>,
    /// Encryption keying material, responder to initiator.
    pub encr_r: Vec<u8>,
    /// Integrity key, responder to initiator.
    pub integ_r: Vec<u8>,
}

impl std::fmt::Debug for ChildSaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildSaKeys { .. }")
    }
}

impl ChildSaKeys {
    /// `KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`, split in the order of RFC 7296 §2.17:
    /// initiator-to-responder encryption then integrity, then the other direction.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for an invalid suite.
    pub fn derive(
        prf: Prf,
        sk_d: &[u8],
        pfs_g_ir: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        suite: EspSuite,
    ) -> Result<Self, IpsecError> {
        suite.validate()?;
        let e = suite.encr_key_len();
        let a = suite.integ_key_len();
        let g = pfs_g_ir.unwrap_or(&[]);
        let km = prf.prf_plus_parts(sk_d, &[g, ni, nr], 2 * (e + a))?;
        Ok(ChildSaKeys {
            encr_i: km[..e].to_vec(),
            integ_i: km[e..e + a].to_vec(),
            encr_r: km[e + a..2 * e + a].to_vec(),
            integ_r: km[2 * e + a..].to_vec(),
        })
    }

    /// `(encryption, integrity)` keys of our outbound SA.
    pub fn outbound(&self, role: Role) -> (&[u8], &[u8]) {
        match role {
            Role::Initiator => (&self.encr_i, &self.integ_i),
            Role::Responder => (&self.encr_r, &self.integ_r),
        }
    }

    /// `(encryption, integrity)` keys of our inbound SA.
    pub fn inbound(&self, role: Role) -> (&[u8], &[u8]) {
        match role {
            Role::Initiator => (&self.encr_r, &self.integ_r),
            Role::Responder => (&self.encr_i, &self.integ_i),
        }
    }
}

/// The protection of SK payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkSuite {
    /// ENCR_AES_GCM_16 (RFC 5282), 128- or 256-bit key, key || 4-byte salt, 8-byte IV.
    AesGcm16 {
        /// 128 or 256.
        key_bits: u16,
    },
    /// ENCR_CHACHA20_POLY1305 (RFC 7634), 32-byte key || 4-byte salt, 8-byte IV.
    ChaCha20Poly1305,
    /// ENCR_AES_CBC (RFC 3602) with an HMAC integrity transform over the whole message.
    AesCbc {
        /// 128 or 256.
        key_bits: u16,
        /// AUTH_HMAC_SHA2_256_128 or AUTH_HMAC_SHA1_96.
        integrity: Integrity,
    },
}

impl SkSuite {
    /// The suite for negotiated IKE transform ids.
    ///
    /// # Errors
    /// [`IpsecError::UnsupportedEncryption`] / [`IpsecError::UnsupportedIntegrity`] for
    /// transforms not implemented, [`IpsecError::InvalidConfig`] for a bad key length.
    pub fn from_transforms(
        encr: u16,
        key_bits: Option<u16>,
        integ: Option<u16>,
    ) -> Result<Self, IpsecError> {
        let integ = integ.filter(|&i| i != tid::AUTH_NONE);
        let s = match (encr, integ) {
            (tid::ENCR_AES_GCM_16, None) => SkSuite::AesGcm16 {
                key_bits: key_bits.unwrap_or(0),
            },
            (tid::ENCR_CHACHA20_POLY1305, None) => SkSuite::ChaCha20Poly1305,
            (tid::ENCR_AES_CBC, Some(i)) => SkSuite::AesCbc {
                key_bits: key_bits.unwrap_or(0),
                integrity: Integrity::from_transform_id(i)?,
            },
            (other, _) => return Err(IpsecError::UnsupportedEncryption(other)),
        };
        match s {
            SkSuite::AesGcm16 { key_bits } | SkSuite::AesCbc { key_bits, .. }
                if key_bits != 128 && key_bits != 256 =>
            {
                Err(IpsecError::InvalidConfig("AES key must be 128 or 256 bits"))
            }
            s => Ok(s),
        }
    }

    /// Encryption keying material length (SK_e*), salt included.
    pub fn encr_key_len(self) -> usize {
        match self {
            SkSuite::AesGcm16 { key_bits } => usize::from(key_bits / 8) + 4,
            SkSuite::ChaCha20Poly1305 => 36,
            SkSuite::AesCbc { key_bits, .. } => usize::from(key_bits / 8),
        }
    }

    /// Integrity key length (SK_a*); 0 for AEADs.
    pub fn integ_key_len(self) -> usize {
        match self {
            SkSuite::AesCbc { integrity, .. } => integrity.key_len(),
            _ => 0,
        }
    }

    /// IV length.
    pub fn iv_len(self) -> usize {
        match self {
            SkSuite::AesCbc { .. } => 16,
            _ => 8,
        }
    }

    /// ICV length.
    pub fn icv_len(self) -> usize {
        match self {
            SkSuite::AesCbc { integrity, .. } => integrity.icv_len(),
            _ => 16,
        }
    }
}

/// One per IKE SA direction and never moved while in use.
#[allow(clippy::large_enum_variant)]
enum SkEngine {
    Aead { key: LessSafeKey, salt: [u8; 4] },
    Cbc { key: Vec<u8>, mac: hmac::Key },
}

/// Seals and opens SK payloads in one direction (one SK_e / SK_a pair).
pub struct SkCrypter {
    suite: SkSuite,
    engine: SkEngine,
    /// Last counter used as AEAD IV.
    counter: u64,
    rng: SystemRandom,
}

impl std::fmt::Debug for SkCrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkCrypter")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SkCrypter {
    /// Keys the crypter with SK_e (salt included for AEADs) and SK_a (empty for AEADs).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for wrong key lengths.
    pub fn new(suite: SkSuite, encr_key: &[u8], integ_key: &[u8]) -> Result<Self, IpsecError> {
        if encr_key.len() != suite.encr_key_len() || integ_key.len() != suite.integ_key_len() {
            return Err(IpsecError::InvalidConfig("wrong SK key length"));
        }
        let engine = match suite {
            SkSuite::AesGcm16 { .. } | SkSuite::ChaCha20Poly1305 => {
                let alg = match suite {
                    SkSuite::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
                    SkSuite::AesGcm16 { key_bits: 128 } => &aead::AES_128_GCM,
                    _ => &aead::AES_256_GCM,
                };
                let (k, s) = encr_key.split_at(encr_key.len() - 4);
                let key =
                    UnboundKey::new(alg, k).map_err(|_| IpsecError::InvalidConfig("SK key"))?;
                let mut salt = [0u8; 4];
                salt.copy_from_slice(s);
                SkEngine::Aead {
                    key: LessSafeKey::new(key),
                    salt,
                }
            }
            SkSuite::AesCbc { integrity, .. } => SkEngine::Cbc {
                key: encr_key.to_vec(),
                mac: hmac::Key::new(integrity.ring_algorithm(), integ_key),
            },
        };
        Ok(SkCrypter {
            suite,
            engine,
            counter: 0,
            rng: SystemRandom::new(),
        })
    }

    /// The suite.
    pub fn suite(&self) -> SkSuite {
        self.suite
    }

    /// Emits `outer` (its payloads are the unencrypted ones, normally none) with an SK payload
    /// protecting `inner` appended. The IV is a counter for AEADs and random for CBC.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] if `outer` already holds an SK payload or a payload is
    /// oversized; [`IpsecError::EncryptFailed`] if the cipher fails.
    pub fn seal(
        &mut self,
        outer: &MessageRepr,
        inner: &[PayloadRepr],
    ) -> Result<Vec<u8>, IpsecError> {
        let mut iv = [0u8; 16];
        let n = self.suite.iv_len();
        match self.engine {
            SkEngine::Aead { .. } => {
                self.counter += 1;
                iv[..8].copy_from_slice(&self.counter.to_be_bytes());
            }
            SkEngine::Cbc { .. } => {
                self.rng
                    .fill(&mut iv)
                    .map_err(|_| IpsecError::EncryptFailed)?;
            }
        }
        self.seal_with_iv(outer, inner, &iv[..n])
    }

    /// [`SkCrypter::seal`] with a caller-chosen IV (known-answer tests). The IV must never
    /// repeat under one key.
    ///
    /// # Errors
    /// As [`SkCrypter::seal`]; [`IpsecError::InvalidConfig`] for a wrong IV length.
    pub fn seal_with_iv(
        &self,
        outer: &MessageRepr,
        inner: &[PayloadRepr],
        iv: &[u8],
    ) -> Result<Vec<u8>, IpsecError> {
        let suite = self.suite;
        if iv.len() != suite.iv_len() {
            return Err(IpsecError::InvalidConfig("wrong SK IV length"));
        }
        if outer
            .payloads
            .iter()
            .any(|p| matches!(p, PayloadRepr::Encrypted { .. }))
        {
            return Err(IpsecError::InvalidConfig(
                "outer payloads already hold an SK payload",
            ));
        }
        let mut plain = Vec::with_capacity(256);
        let first_inner = crate::ike::wire::emit_payload_chain(inner, &mut plain)?;
        // Padding: none for AEADs (pad length 0, as RFC 7634 Appendix B), to the block for CBC.
        let pad = match self.engine {
            SkEngine::Aead { .. } => 0,
            SkEngine::Cbc { .. } => (16 - (plain.len() + 1) % 16) % 16,
        };
        plain.resize(plain.len() + pad, 0);
        plain.push(pad as u8);
        let sk_len = GENERIC_HEADER_LEN + iv.len() + plain.len() + suite.icv_len();
        // Emit the outer message with a placeholder SK payload of the final size, then fill in.
        let mut msg = outer.clone();
        msg.payloads.push(PayloadRepr::Encrypted {
            first_inner,
            data: vec![0; sk_len - GENERIC_HEADER_LEN],
        });
        let mut out = msg.emit()?;
        let sk_start = out.len() - sk_len;
        let body = sk_start + GENERIC_HEADER_LEN;
        out[body..body + iv.len()].copy_from_slice(iv);
        let ct_start = body + iv.len();
        match &self.engine {
            SkEngine::Aead { key, salt } => {
                out.truncate(ct_start);
                out.extend_from_slice(&plain);
                let (aad, ct) = out.split_at_mut(ct_start);
                let tag = key
                    .seal_in_place_separate_tag(nonce(salt, iv), Aad::from(&aad[..body]), ct)
                    .map_err(|_| IpsecError::EncryptFailed)?;
                out.extend_from_slice(tag.as_ref());
            }
            SkEngine::Cbc { key, mac } => {
                let len = plain.len();
                cbc_encrypt(key, iv, &mut plain, len)?;
                out.truncate(ct_start);
                out.extend_from_slice(&plain);
                let tag = hmac::sign(mac, &out);
                out.extend_from_slice(&tag.as_ref()[..suite.icv_len()]);
            }
        }
        Ok(out)
    }

    /// Verifies and decrypts the SK payload of `message` (which must be its last payload) and
    /// returns the outer message (without the SK payload) and the inner payloads.
    ///
    /// # Errors
    /// Parse errors of the outer message or the inner chain; [`IpsecError::DecryptFailed`] when
    /// the ICV does not verify or the padding is inconsistent; [`IpsecError::MalformedPayload`]
    /// when there is no SK payload.
    pub fn open(&self, message: &[u8]) -> Result<(MessageRepr, Vec<PayloadRepr>), IpsecError> {
        let suite = self.suite;
        let view = Message::parse(message)?;
        let mut outer = Vec::new();
        let mut sk = None;
        for raw in view.payloads() {
            let raw = raw?;
            if raw.kind == PayloadType::SK {
                sk = Some(raw);
            } else {
                outer.push(PayloadRepr::parse(&raw)?);
            }
        }
        let sk = sk.ok_or(IpsecError::MalformedPayload {
            payload: PayloadType::SK,
            reason: "no SK payload",
        })?;
        let body_start = sk.offset + GENERIC_HEADER_LEN;
        let (ivn, icv) = (suite.iv_len(), suite.icv_len());
        if sk.body.len() < ivn + icv + 1 {
            return Err(IpsecError::MalformedPayload {
                payload: PayloadType::SK,
                reason: "shorter than IV and ICV",
            });
        }
        let iv = &sk.body[..ivn];
        let mut ct = sk.body[ivn..].to_vec();
        let plain_len = match &self.engine {
            SkEngine::Aead { key, salt } => key
                .open_in_place(nonce(salt, iv), Aad::from(&message[..body_start]), &mut ct)
                .map_err(|_| IpsecError::DecryptFailed)?
                .len(),
            SkEngine::Cbc { key, mac } => {
                let (authed, tag) = message.split_at(message.len() - icv);
                let expect = hmac::sign(mac, authed);
                if !crate::esp::ct_eq(&expect.as_ref()[..icv], tag) {
                    return Err(IpsecError::DecryptFailed);
                }
                ct.truncate(ct.len() - icv);
                if ct.len() % 16 != 0 {
                    return Err(IpsecError::DecryptFailed);
                }
                cbc_decrypt(key, iv, &mut ct)?;
                ct.len()
            }
        };
        let plain = &ct[..plain_len];
        let pad = usize::from(*plain.last().ok_or(IpsecError::DecryptFailed)?);
        if pad + 1 > plain.len() {
            return Err(IpsecError::DecryptFailed);
        }
        let inner =
            crate::ike::wire::parse_payload_chain(sk.next, &plain[..plain.len() - 1 - pad])?;
        let h = view.header();
        let outer = MessageRepr {
            spi_i: h.spi_i,
            spi_r: h.spi_r,
            exchange: h.exchange,
            flags: h.flags,
            message_id: h.message_id,
            payloads: outer,
        };
        Ok((outer, inner))
    }
}

fn nonce(salt: &[u8; 4], iv: &[u8]) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    Nonce::assume_unique_for_key(n)
}

fn cbc_encrypt(key: &[u8], iv: &[u8], buf: &mut [u8], len: usize) -> Result<(), IpsecError> {
    let r = if key.len() == 16 {
        cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| IpsecError::EncryptFailed)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ())
    } else {
        cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| IpsecError::EncryptFailed)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ())
    };
    r.map_err(|_| IpsecError::EncryptFailed)
}

fn cbc_decrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), IpsecError> {
    let r = if key.len() == 16 {
        cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| IpsecError::DecryptFailed)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ())
    } else {
        cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| IpsecError::DecryptFailed)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ())
    };
    r.map_err(|_| IpsecError::DecryptFailed)
}

/// A Diffie-Hellman group this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 19: NIST P-256 (RFC 5903); KE data is x || y, 64 bytes.
    Ecp256,
    /// 20: NIST P-384; KE data is x || y, 96 bytes.
    Ecp384,
    /// 31: Curve25519 (RFC 8031); KE data is the 32-byte public value.
    Curve25519,
}

impl DhGroup {
    /// The group for an IANA DH transform id.
    ///
    /// # Errors
    /// [`IpsecError::UnsupportedGroup`] for other ids.
    pub fn from_transform_id(id: u16) -> Result<Self, IpsecError> {
        match id {
            tid::DH_ECP_256 => Ok(DhGroup::Ecp256),
            tid::DH_ECP_384 => Ok(DhGroup::Ecp384),
            tid::DH_CURVE25519 => Ok(DhGroup::Curve25519),
            other => Err(IpsecError::UnsupportedGroup(other)),
        }
    }

    /// The IANA id (also the group number of the KE payload).
    pub fn transform_id(self) -> u16 {
        match self {
            DhGroup::Ecp256 => tid::DH_ECP_256,
            DhGroup::Ecp384 => tid::DH_ECP_384,
            DhGroup::Curve25519 => tid::DH_CURVE25519,
        }
    }

    /// Length of the KE payload's key exchange data.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Curve25519 => 32,
        }
    }

    fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            DhGroup::Ecp256 => &agreement::ECDH_P256,
            DhGroup::Ecp384 => &agreement::ECDH_P384,
            DhGroup::Curve25519 => &agreement::X25519,
        }
    }

    fn is_ecp(self) -> bool {
        !matches!(self, DhGroup::Curve25519)
    }
}

/// One side's ephemeral key exchange: generate, send [`KeyExchange::public_value`] in the KE
/// payload, then [`KeyExchange::agree`] once with the peer's value.
pub struct KeyExchange {
    group: DhGroup,
    private: agreement::EphemeralPrivateKey,
    public: Vec<u8>,
}

impl std::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExchange")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl KeyExchange {
    /// A fresh ephemeral key pair.
    ///
    /// # Errors
    /// [`IpsecError::DhFailed`] if the random source fails.
    pub fn generate(group: DhGroup) -> Result<Self, IpsecError> {
        let rng = SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(group.algorithm(), &rng)
            .map_err(|_| IpsecError::DhFailed)?;
        let pk = private
            .compute_public_key()
            .map_err(|_| IpsecError::DhFailed)?;
        let bytes = pk.as_ref();
        // ring encodes ECP points uncompressed (0x04 || x || y); IKE sends x || y.
        let public = if group.is_ecp() {
            bytes[1..].to_vec()
        } else {
            bytes.to_vec()
        };
        Ok(KeyExchange {
            group,
            private,
            public,
        })
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value as carried in the KE payload.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Computes `g^ir` with the peer's KE data (consumes the private key). For the ECP groups it
    /// is the x coordinate (RFC 5903 §7); for Curve25519 the 32-byte X25519 output.
    ///
    /// # Errors
    /// [`IpsecError::DhFailed`] when the peer's value has the wrong length or is not a valid
    /// point (ring validates it; the all-zero X25519 result is rejected).
    pub fn agree(self, peer: &[u8]) -> Result<Vec<u8>, IpsecError> {
        if peer.len() != self.group.public_len() {
            return Err(IpsecError::DhFailed);
        }
        let mut encoded = Vec::with_capacity(peer.len() + 1);
        if self.group.is_ecp() {
            encoded.push(0x04);
        }
        encoded.extend_from_slice(peer);
        let peer_key = agreement::UnparsedPublicKey::new(self.group.algorithm(), encoded);
        agreement::agree_ephemeral(self.private, &peer_key, |s| s.to_vec())
            .map_err(|_| IpsecError::DhFailed)
    }
}

#[cfg(test)]
mod tests;
