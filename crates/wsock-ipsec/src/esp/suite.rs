//! ESP algorithm suites and the stateless packet transform (RFC 4303 §2, RFC 4106, RFC 4543,
//! RFC 7634, RFC 3602 + RFC 4868 / RFC 2404).
//!
//! [`EspCrypto`] seals and opens one ESP packet given every per-packet input (SPI, the full
//! sequence number, IV). It keeps no counters and no window: [`crate::esp::OutboundSa`] and
//! [`crate::esp::InboundSa`] own that state. Keeping the transform stateless lets known-answer
//! tests (RFC 7634 Appendix A) drive it with the published IV.

use crate::error::IpsecError;
use crate::ike::wire::transform as tid;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

/// Length of the fixed ESP header: SPI and (low) sequence number.
pub const ESP_HEADER_LEN: usize = 8;

/// An integrity (authentication) transform for the non-AEAD suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// AUTH_HMAC_SHA2_256_128 (RFC 4868): 32-byte key, 16-byte ICV.
    HmacSha256_128,
    /// AUTH_HMAC_SHA1_96 (RFC 2404): 20-byte key, 12-byte ICV.
    HmacSha1_96,
}

impl Integrity {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Integrity::HmacSha256_128 => 32,
            Integrity::HmacSha1_96 => 20,
        }
    }

    /// ICV (truncated MAC) length in bytes.
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::HmacSha256_128 => 16,
            Integrity::HmacSha1_96 => 12,
        }
    }

    /// The IANA INTEG transform id.
    pub fn transform_id(self) -> u16 {
        match self {
            Integrity::HmacSha256_128 => tid::AUTH_HMAC_SHA2_256_128,
            Integrity::HmacSha1_96 => tid::AUTH_HMAC_SHA1_96,
        }
    }

    /// The integrity transform for an IANA INTEG id.
    ///
    /// # Errors
    /// [`IpsecError::UnsupportedIntegrity`] for any other id.
    pub fn from_transform_id(id: u16) -> Result<Self, IpsecError> {
        match id {
            tid::AUTH_HMAC_SHA2_256_128 => Ok(Integrity::HmacSha256_128),
            tid::AUTH_HMAC_SHA1_96 => Ok(Integrity::HmacSha1_96),
            other => Err(IpsecError::UnsupportedIntegrity(other)),
        }
    }

    pub(crate) fn ring_algorithm(self) -> hmac::Algorithm {
        match self {
            Integrity::HmacSha256_128 => hmac::HMAC_SHA256,
            Integrity::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// An ESP algorithm suite: the cipher, and the integrity transform where the cipher is not an AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EspSuite {
    /// ENCR_AES_GCM_16 (RFC 4106) with a 128- or 256-bit key; keying material is key || 4-byte salt.
    AesGcm16 {
        /// 128 or 256.
        key_bits: u16,
    },
    /// ENCR_CHACHA20_POLY1305 (RFC 7634); keying material is a 32-byte key || 4-byte salt.
    ChaCha20Poly1305,
    /// ENCR_NULL_AUTH_AES_GMAC (RFC 4543): integrity only, everything authenticated as AAD.
    NullAuthAesGmac {
        /// 128 or 256.
        key_bits: u16,
    },
    /// ENCR_NULL (RFC 2410) with an HMAC integrity transform: integrity only.
    Null(Integrity),
    /// ENCR_AES_CBC (RFC 3602) with a 128- or 256-bit key and an HMAC integrity transform.
    AesCbc {
        /// 128 or 256.
        key_bits: u16,
        /// The integrity transform.
        integrity: Integrity,
    },
}

impl EspSuite {
    /// Checks the key sizes of the suite.
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for an AES key size other than 128 or 256 bits.
    pub fn validate(self) -> Result<(), IpsecError> {
        match self {
            EspSuite::AesGcm16 { key_bits }
            | EspSuite::NullAuthAesGmac { key_bits }
            | EspSuite::AesCbc { key_bits, .. } => {
                if key_bits == 128 || key_bits == 256 {
                    Ok(())
                } else {
                    Err(IpsecError::InvalidConfig("AES key must be 128 or 256 bits"))
                }
            }
            EspSuite::ChaCha20Poly1305 | EspSuite::Null(_) => Ok(()),
        }
    }

    /// The IANA ENCR transform id.
    pub fn encr_transform_id(self) -> u16 {
        match self {
            EspSuite::AesGcm16 { .. } => tid::ENCR_AES_GCM_16,
            EspSuite::ChaCha20Poly1305 => tid::ENCR_CHACHA20_POLY1305,
            EspSuite::NullAuthAesGmac { .. } => tid::ENCR_NULL_AUTH_AES_GMAC,
            EspSuite::Null(_) => tid::ENCR_NULL,
            EspSuite::AesCbc { .. } => tid::ENCR_AES_CBC,
        }
    }

    /// The Key Length attribute to send with the ENCR transform (`None` for fixed-size ciphers).
    pub fn key_length_attribute(self) -> Option<u16> {
        match self {
            EspSuite::AesGcm16 { key_bits }
            | EspSuite::NullAuthAesGmac { key_bits }
            | EspSuite::AesCbc { key_bits, .. } => Some(key_bits),
            EspSuite::ChaCha20Poly1305 | EspSuite::Null(_) => None,
        }
    }

    /// The integrity transform, if the suite uses a separate one.
    pub fn integrity(self) -> Option<Integrity> {
        match self {
            EspSuite::Null(i) | EspSuite::AesCbc { integrity: i, .. } => Some(i),
            _ => None,
        }
    }

    /// Whether the suite encrypts (as opposed to integrity-only suites).
    pub fn is_encrypting(self) -> bool {
        !matches!(self, EspSuite::Null(_) | EspSuite::NullAuthAesGmac { .. })
    }

    /// The suite for negotiated IANA transform ids.
    ///
    /// # Errors
    /// [`IpsecError::UnsupportedEncryption`] / [`IpsecError::UnsupportedIntegrity`] for ids or
    /// combinations this crate does not implement, [`IpsecError::InvalidConfig`] for a bad key
    /// length.
    pub fn from_transforms(
        encr: u16,
        key_bits: Option<u16>,
        integ: Option<u16>,
    ) -> Result<Self, IpsecError> {
        let integ = integ.filter(|&i| i != tid::AUTH_NONE);
        let suite = match (encr, integ) {
            (tid::ENCR_AES_GCM_16, None) => EspSuite::AesGcm16 {
                key_bits: key_bits.unwrap_or(0),
            },
            (tid::ENCR_CHACHA20_POLY1305, None) => EspSuite::ChaCha20Poly1305,
            (tid::ENCR_NULL_AUTH_AES_GMAC, None) => EspSuite::NullAuthAesGmac {
                key_bits: key_bits.unwrap_or(0),
            },
            (tid::ENCR_NULL, Some(i)) => EspSuite::Null(Integrity::from_transform_id(i)?),
            (tid::ENCR_AES_CBC, Some(i)) => EspSuite::AesCbc {
                key_bits: key_bits.unwrap_or(0),
                integrity: Integrity::from_transform_id(i)?,
            },
            (other, _) => return Err(IpsecError::UnsupportedEncryption(other)),
        };
        suite.validate()?;
        Ok(suite)
    }

    /// Length of the encryption keying material in bytes (including the 4-byte salt of the
    /// AEAD and GMAC suites), as taken from KEYMAT.
    pub fn encr_key_len(self) -> usize {
        match self {
            EspSuite::AesGcm16 { key_bits } | EspSuite::NullAuthAesGmac { key_bits } => {
                usize::from(key_bits / 8) + 4
            }
            EspSuite::ChaCha20Poly1305 => 36,
            EspSuite::Null(_) => 0,
            EspSuite::AesCbc { key_bits, .. } => usize::from(key_bits / 8),
        }
    }

    /// Length of the integrity key in bytes (0 for AEAD and GMAC suites).
    pub fn integ_key_len(self) -> usize {
        self.integrity().map_or(0, Integrity::key_len)
    }

    /// Length of the explicit IV carried in each packet.
    pub fn iv_len(self) -> usize {
        match self {
            EspSuite::AesGcm16 { .. }
            | EspSuite::ChaCha20Poly1305
            | EspSuite::NullAuthAesGmac { .. } => 8,
            EspSuite::Null(_) => 0,
            EspSuite::AesCbc { .. } => 16,
        }
    }

    /// Length of the ICV.
    pub fn icv_len(self) -> usize {
        match self {
            EspSuite::AesGcm16 { .. }
            | EspSuite::ChaCha20Poly1305
            | EspSuite::NullAuthAesGmac { .. } => 16,
            EspSuite::Null(i) | EspSuite::AesCbc { integrity: i, .. } => i.icv_len(),
        }
    }

    /// The alignment of payload || padding || pad length || next header.
    pub fn block_align(self) -> usize {
        match self {
            EspSuite::AesCbc { .. } => 16,
            _ => 4,
        }
    }

    /// Bytes in front of the payload: ESP header plus IV.
    pub fn header_len(self) -> usize {
        ESP_HEADER_LEN + self.iv_len()
    }

    /// Total ESP packet length for a payload of `payload_len` bytes.
    pub fn packet_len(self, payload_len: usize) -> usize {
        self.header_len() + padded_len(payload_len, self.block_align()) + self.icv_len()
    }
}

/// Length of payload || padding || pad length || next header for the alignment.
fn padded_len(payload_len: usize, align: usize) -> usize {
    (payload_len + 2).div_ceil(align) * align
}

/// What the cipher part of an [`EspCrypto`] holds. One per SA direction, never moved on the
/// packet path, so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Aead {
        key: LessSafeKey,
        salt: [u8; 4],
        gmac: bool,
    },
    Cbc {
        cipher: CbcCipher,
        mac: hmac::Key,
        icv_len: usize,
    },
    Null {
        mac: hmac::Key,
        icv_len: usize,
    },
}

#[derive(Clone)]
enum CbcCipher {
    Aes128(Box<aes::Aes128>),
    Aes256(Box<aes::Aes256>),
}

/// The keyed, stateless ESP transform of one SA direction.
pub struct EspCrypto {
    suite: EspSuite,
    engine: Engine,
}

impl std::fmt::Debug for EspCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EspCrypto")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Where the sequence number goes in the integrity computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqInfo {
    /// The full sequence number (high 32 bits used only with ESN).
    pub seq: u64,
    /// Whether extended sequence numbers are in use (the high half is authenticated, not sent).
    pub esn: bool,
}

impl EspCrypto {
    /// Keys the transform. `encr_key` is the encryption keying material including the salt
    /// ([`EspSuite::encr_key_len`] bytes); `integ_key` is the integrity key
    /// ([`EspSuite::integ_key_len`] bytes, empty for AEAD suites).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for wrong key lengths or an invalid suite.
    pub fn new(suite: EspSuite, encr_key: &[u8], integ_key: &[u8]) -> Result<Self, IpsecError> {
        suite.validate()?;
        if encr_key.len() != suite.encr_key_len() {
            return Err(IpsecError::InvalidConfig("wrong ESP encryption key length"));
        }
        if integ_key.len() != suite.integ_key_len() {
            return Err(IpsecError::InvalidConfig("wrong ESP integrity key length"));
        }
        let engine = match suite {
            EspSuite::AesGcm16 { key_bits } | EspSuite::NullAuthAesGmac { key_bits } => {
                let alg = if key_bits == 128 {
                    &aead::AES_128_GCM
                } else {
                    &aead::AES_256_GCM
                };
                aead_engine(
                    alg,
                    encr_key,
                    matches!(suite, EspSuite::NullAuthAesGmac { .. }),
                )?
            }
            EspSuite::ChaCha20Poly1305 => aead_engine(&aead::CHACHA20_POLY1305, encr_key, false)?,
            EspSuite::Null(i) => Engine::Null {
                mac: hmac::Key::new(i.ring_algorithm(), integ_key),
                icv_len: i.icv_len(),
            },
            EspSuite::AesCbc { integrity, .. } => {
                use aes::cipher::KeyInit;
                let cipher = if encr_key.len() == 16 {
                    CbcCipher::Aes128(Box::new(
                        aes::Aes128::new_from_slice(encr_key)
                            .map_err(|_| IpsecError::InvalidConfig("AES-128 key"))?,
                    ))
                } else {
                    CbcCipher::Aes256(Box::new(
                        aes::Aes256::new_from_slice(encr_key)
                            .map_err(|_| IpsecError::InvalidConfig("AES-256 key"))?,
                    ))
                };
                Engine::Cbc {
                    cipher,
                    mac: hmac::Key::new(integrity.ring_algorithm(), integ_key),
                    icv_len: integrity.icv_len(),
                }
            }
        };
        Ok(EspCrypto { suite, engine })
    }

    /// The suite of this transform.
    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    /// Seals in place. `buf[start..start + header_len]` is headroom for the ESP header and IV
    /// (its content is overwritten); the payload is `buf[start + header_len..]`. Padding, pad
    /// length, next header and ICV are appended. `iv` must be [`EspSuite::iv_len`] bytes and must
    /// never repeat under this key (the SA uses the sequence number for counter-mode suites and
    /// random bytes for CBC).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] if `iv` has the wrong length or the headroom is missing.
    pub fn seal_in_place(
        &self,
        spi: u32,
        seq: SeqInfo,
        iv: &[u8],
        next_header: u8,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), IpsecError> {
        let suite = self.suite;
        let hdr = suite.header_len();
        if iv.len() != suite.iv_len() {
            return Err(IpsecError::InvalidConfig("wrong IV length"));
        }
        if buf.len() < start + hdr {
            return Err(IpsecError::InvalidConfig("missing ESP header headroom"));
        }
        let payload_len = buf.len() - start - hdr;
        let padded = padded_len(payload_len, suite.block_align());
        let pad = padded - payload_len - 2;
        buf.reserve(pad + 2 + suite.icv_len());
        buf.extend((1..=pad).map(|i| i as u8));
        buf.push(pad as u8);
        buf.push(next_header);

        let head = &mut buf[start..start + hdr];
        head[0..4].copy_from_slice(&spi.to_be_bytes());
        head[4..8].copy_from_slice(&(seq.seq as u32).to_be_bytes());
        head[8..].copy_from_slice(iv);

        match &self.engine {
            Engine::Aead {
                key,
                salt,
                gmac: false,
            } => {
                let aad = AadBuf::new(spi, seq);
                let tag = key
                    .seal_in_place_separate_tag(
                        nonce(salt, iv),
                        Aad::from(aad.as_slice()),
                        &mut buf[start + hdr..],
                    )
                    .map_err(|_| IpsecError::InvalidConfig("AEAD seal failed"))?;
                buf.extend_from_slice(tag.as_ref());
            }
            Engine::Aead {
                key,
                salt,
                gmac: true,
            } => {
                let tag = gmac_tag(key, salt, iv, seq, &buf[start..])
                    .map_err(|_| IpsecError::InvalidConfig("GMAC failed"))?;
                buf.extend_from_slice(&tag);
            }
            Engine::Cbc {
                cipher,
                mac,
                icv_len,
            } => {
                let mut iv16 = [0u8; 16];
                iv16.copy_from_slice(iv);
                let body = &mut buf[start + hdr..];
                let len = body.len();
                let res = match cipher {
                    CbcCipher::Aes128(c) => {
                        cbc::Encryptor::<aes::Aes128>::inner_iv_init((**c).clone(), (&iv16).into())
                            .encrypt_padded_mut::<NoPadding>(body, len)
                            .map(|_| ())
                    }
                    CbcCipher::Aes256(c) => {
                        cbc::Encryptor::<aes::Aes256>::inner_iv_init((**c).clone(), (&iv16).into())
                            .encrypt_padded_mut::<NoPadding>(body, len)
                            .map(|_| ())
                    }
                };
                res.map_err(|_| IpsecError::InvalidConfig("CBC block alignment"))?;
                let tag = hmac_icv(mac, &buf[start..], seq);
                buf.extend_from_slice(&tag.as_ref()[..*icv_len]);
            }
            Engine::Null { mac, icv_len } => {
                let tag = hmac_icv(mac, &buf[start..], seq);
                buf.extend_from_slice(&tag.as_ref()[..*icv_len]);
            }
        }
        Ok(())
    }

    /// Verifies and decrypts `packet` (a whole ESP packet, header to ICV) in place, with the
    /// full sequence number `seq` (the caller infers the high half for ESN). On success returns
    /// the plaintext region: payload || padding || pad length || next header, as a range of
    /// `packet`. The trailer is not checked here.
    ///
    /// # Errors
    /// [`IpsecError::InvalidPacket`] when the packet is too short or misaligned,
    /// [`IpsecError::IntegrityCheckFailed`] when the ICV does not verify.
    pub fn open_in_place(
        &self,
        seq: SeqInfo,
        packet: &mut [u8],
    ) -> Result<std::ops::Range<usize>, IpsecError> {
        let suite = self.suite;
        let hdr = suite.header_len();
        let icv = suite.icv_len();
        if packet.len() < hdr + 2 + icv {
            return Err(IpsecError::InvalidPacket("ESP packet too short"));
        }
        let body_end = packet.len() - icv;
        if (body_end - hdr) % suite.block_align() != 0 {
            return Err(IpsecError::InvalidPacket("ESP payload not aligned"));
        }
        let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        match &self.engine {
            Engine::Aead {
                key,
                salt,
                gmac: false,
            } => {
                let aad = AadBuf::new(spi, seq);
                let n = nonce(salt, &packet[8..hdr]);
                key.open_in_place(n, Aad::from(aad.as_slice()), &mut packet[hdr..])
                    .map_err(|_| IpsecError::IntegrityCheckFailed)?;
            }
            Engine::Aead {
                key,
                salt,
                gmac: true,
            } => {
                let (authed, tag) = packet.split_at(body_end);
                let mut t = [0u8; 16];
                t.copy_from_slice(tag);
                let expect = gmac_tag(key, salt, &authed[8..hdr], seq, authed)
                    .map_err(|_| IpsecError::IntegrityCheckFailed)?;
                if !ct_eq(&expect, &t) {
                    return Err(IpsecError::IntegrityCheckFailed);
                }
            }
            Engine::Cbc {
                cipher,
                mac,
                icv_len,
            } => {
                let (authed, tag) = packet.split_at(body_end);
                let expect = hmac_icv(mac, authed, seq);
                if !ct_eq(&expect.as_ref()[..*icv_len], tag) {
                    return Err(IpsecError::IntegrityCheckFailed);
                }
                let mut iv16 = [0u8; 16];
                iv16.copy_from_slice(&packet[8..hdr]);
                let body = &mut packet[hdr..body_end];
                let res = match cipher {
                    CbcCipher::Aes128(c) => {
                        cbc::Decryptor::<aes::Aes128>::inner_iv_init((**c).clone(), (&iv16).into())
                            .decrypt_padded_mut::<NoPadding>(body)
                            .map(|_| ())
                    }
                    CbcCipher::Aes256(c) => {
                        cbc::Decryptor::<aes::Aes256>::inner_iv_init((**c).clone(), (&iv16).into())
                            .decrypt_padded_mut::<NoPadding>(body)
                            .map(|_| ())
                    }
                };
                res.map_err(|_| IpsecError::InvalidPacket("CBC block alignment"))?;
            }
            Engine::Null { mac, icv_len } => {
                let (authed, tag) = packet.split_at(body_end);
                let expect = hmac_icv(mac, authed, seq);
                if !ct_eq(&expect.as_ref()[..*icv_len], tag) {
                    return Err(IpsecError::IntegrityCheckFailed);
                }
            }
        }
        Ok(hdr..body_end)
    }
}

fn aead_engine(
    alg: &'static aead::Algorithm,
    keymat: &[u8],
    gmac: bool,
) -> Result<Engine, IpsecError> {
    let (k, s) = keymat.split_at(keymat.len() - 4);
    let key = UnboundKey::new(alg, k).map_err(|_| IpsecError::InvalidConfig("AEAD key"))?;
    let mut salt = [0u8; 4];
    salt.copy_from_slice(s);
    Ok(Engine::Aead {
        key: LessSafeKey::new(key),
        salt,
        gmac,
    })
}

fn nonce(salt: &[u8; 4], iv: &[u8]) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    Nonce::assume_unique_for_key(n)
}

/// SPI || seq (8 bytes) or SPI || seq_hi || seq_lo (12 bytes), on the stack.
struct AadBuf {
    bytes: [u8; 12],
    len: usize,
}

impl AadBuf {
    fn new(spi: u32, seq: SeqInfo) -> Self {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&spi.to_be_bytes());
        if seq.esn {
            bytes[4..12].copy_from_slice(&seq.seq.to_be_bytes());
            AadBuf { bytes, len: 12 }
        } else {
            bytes[4..8].copy_from_slice(&(seq.seq as u32).to_be_bytes());
            AadBuf { bytes, len: 8 }
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// RFC 4543 GMAC over `authed` = SPI || seq_lo || IV || payload || trailer. With ESN the AAD is
/// SPI || seq_hi || seq_lo || IV || ..., which is not contiguous in the packet; that case builds
/// the AAD in a temporary buffer (the only per-packet allocation of the data path).
fn gmac_tag(
    key: &LessSafeKey,
    salt: &[u8; 4],
    iv: &[u8],
    seq: SeqInfo,
    authed: &[u8],
) -> Result<[u8; 16], ring::error::Unspecified> {
    let n = nonce(salt, iv);
    let tag = if seq.esn {
        let mut aad = Vec::with_capacity(authed.len() + 4);
        aad.extend_from_slice(&authed[..4]);
        aad.extend_from_slice(&((seq.seq >> 32) as u32).to_be_bytes());
        aad.extend_from_slice(&authed[4..]);
        key.seal_in_place_separate_tag(n, Aad::from(&aad[..]), &mut [])?
    } else {
        key.seal_in_place_separate_tag(n, Aad::from(authed), &mut [])?
    };
    let mut out = [0u8; 16];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// HMAC over the authenticated region, with the high sequence half appended for ESN
/// (RFC 4303 §2.2.1: seq_hi is authenticated but not transmitted).
fn hmac_icv(mac: &hmac::Key, authed: &[u8], seq: SeqInfo) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(mac);
    ctx.update(authed);
    if seq.esn {
        ctx.update(&((seq.seq >> 32) as u32).to_be_bytes());
    }
    ctx.sign()
}

/// Constant-time equality of two byte strings of public length.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}
