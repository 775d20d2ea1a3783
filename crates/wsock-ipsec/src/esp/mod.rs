//! The ESP data path (RFC 4303), sans-IO.
//!
//! An SA direction is one value: [`OutboundSa`] seals, [`InboundSa`] opens. Both are keyed once
//! (from the child SA's KEYMAT, or from "dictated" keys in tests) and then take packets as byte
//! buffers and time as a [`Duration`] since an arbitrary epoch chosen by the caller; they read no
//! clock and do no I/O.
//!
//! Packet layout: `SPI | seq | IV | payload | padding (1, 2, 3, ...) | pad length | next header |
//! ICV`. The sequence number starts at 1 and never wraps; the IV of counter-mode suites (AES-GCM,
//! ChaCha20-Poly1305, GMAC) is the 64-bit sequence number, so it never repeats under one key; the
//! CBC IV is random (`ring::rand`).
//!
//! Inbound order of checks: ICV first, then the anti-replay window, then the trailer; the window
//! moves only for authentic, well-formed packets. A [`IpsecError::ReplayCheckFailed`] therefore
//! always means an authentic duplicate, and forged packets can never disturb the window.
//! (RFC 4303 §3.4.3 allows the cheap window pre-check before the ICV as a DoS optimisation;
//! this crate prefers the unambiguous error.)
//!
//! Lifetimes: each SA counts payload bytes and packets and compares them, and the time since it
//! was created, with soft and hard limits. Crossing a limit queues an [`SaEvent`] for
//! [`OutboundSa::poll_event`]; after a hard limit every operation fails with
//! [`IpsecError::SaLifetimeExpired`].
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use wsock_ipsec::esp::{EspSuite, InboundSa, OutboundSa, SaConfig};
//!
//! let suite = EspSuite::AesGcm16 { key_bits: 256 };
//! let key = [7u8; 36]; // 32-byte key || 4-byte salt
//! let cfg = SaConfig::new(0x1234_5678, suite);
//! let now = Duration::ZERO;
//! let mut tx = OutboundSa::new(&cfg, &key, &[], now).unwrap();
//! let mut rx = InboundSa::new(&cfg, &key, &[], now).unwrap();
//!
//! let mut packet = Vec::new();
//! tx.seal(now, 17, b"hello", &mut packet).unwrap();
//! let opened = rx.open(now, &mut packet).unwrap();
//! assert_eq!((opened.next_header, &opened.payload[..]), (17, &b"hello"[..]));
//! ```

mod replay;
mod suite;
pub mod tunnel;

pub use replay::{ReplayWindow, MAX_REPLAY_WINDOW};
pub(crate) use suite::ct_eq;
pub use suite::{EspCrypto, EspSuite, Integrity, SeqInfo, ESP_HEADER_LEN};

use crate::error::{IpsecError, LifetimeKind};
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

/// IP protocol number of ESP.
pub const IPPROTO_ESP: u8 = 50;
/// Next Header value of a dummy packet (RFC 4303 §2.6); the receiver discards it.
pub const NEXT_HEADER_DUMMY: u8 = 59;
/// Next Header value for an inner IPv4 packet (tunnel mode).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next Header value for an inner IPv6 packet (tunnel mode).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// The default anti-replay window (RFC 4303 recommends 64).
pub const DEFAULT_REPLAY_WINDOW: u32 = 64;

/// The cleartext header of an ESP packet: what a receiver needs to find the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspHeader {
    /// The SPI.
    pub spi: u32,
    /// The low 32 bits of the sequence number.
    pub seq_lo: u32,
}

impl EspHeader {
    /// Reads the SPI and sequence number of an ESP packet.
    ///
    /// # Errors
    /// [`IpsecError::InvalidPacket`] for fewer than 8 bytes or a zero SPI (reserved, never sent).
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::esp::EspHeader;
    /// let h = EspHeader::parse(&[0xc0, 0, 0, 1, 0, 0, 0, 7, 0xaa]).unwrap();
    /// assert_eq!((h.spi, h.seq_lo), (0xc000_0001, 7));
    /// ```
    pub fn parse(packet: &[u8]) -> Result<Self, IpsecError> {
        match packet {
            [a, b, c, d, e, f, g, h, ..] => {
                let spi = u32::from_be_bytes([*a, *b, *c, *d]);
                if spi == 0 {
                    return Err(IpsecError::InvalidPacket("ESP SPI 0 is reserved"));
                }
                Ok(EspHeader {
                    spi,
                    seq_lo: u32::from_be_bytes([*e, *f, *g, *h]),
                })
            }
            _ => Err(IpsecError::InvalidPacket(
                "ESP packet shorter than its header",
            )),
        }
    }
}

/// ESP mode of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Transport mode: the payload is a transport segment (TCP, UDP...); what Windows secure
    /// sockets use. The receiver rebuilds the IP header from the child SA's selectors.
    #[default]
    Transport,
    /// Tunnel mode: the payload is a whole inner IPv4/IPv6 packet.
    Tunnel,
}

/// One set of lifetime limits; `None` means "no limit of this kind".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifetimeLimits {
    /// Time since the SA was created.
    pub time: Option<Duration>,
    /// Payload bytes protected (outbound) or accepted (inbound).
    pub bytes: Option<u64>,
    /// Packets protected or accepted.
    pub packets: Option<u64>,
}

/// Soft and hard lifetime of an SA. The soft limit asks for a rekey; the hard limit ends the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// Reported once with [`SaEvent::SoftExpired`]; the SA keeps working.
    pub soft: LifetimeLimits,
    /// Reported once with [`SaEvent::HardExpired`]; the SA refuses all further packets.
    pub hard: LifetimeLimits,
}

impl Lifetime {
    /// No limits at all (the sequence number space still ends an SA).
    pub fn unlimited() -> Self {
        Lifetime::default()
    }

    /// Hard limits as given, soft limits at 90 % of each (the emulator's choice, reference §5.8).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use wsock_ipsec::esp::{Lifetime, LifetimeLimits};
    /// let l = Lifetime::with_hard(LifetimeLimits { time: Some(Duration::from_secs(3600)), bytes: None, packets: Some(1000) });
    /// assert_eq!(l.soft.time, Some(Duration::from_secs(3240)));
    /// assert_eq!(l.soft.packets, Some(900));
    /// ```
    pub fn with_hard(hard: LifetimeLimits) -> Self {
        let soft = LifetimeLimits {
            time: hard.time.map(|t| t.mul_f64(0.9)),
            bytes: hard.bytes.map(|b| b / 10 * 9),
            packets: hard.packets.map(|p| p / 10 * 9),
        };
        Lifetime { soft, hard }
    }
}

/// Something the SA owner must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaEvent {
    /// A soft limit was crossed: start a rekey (CREATE_CHILD_SA).
    SoftExpired(LifetimeKind),
    /// A hard limit was crossed: the SA is dead; delete it (and tell the peer).
    HardExpired(LifetimeKind),
}

/// Parameters of one SA direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaConfig {
    /// The SPI (chosen by the receiving side; 0..=255 are reserved).
    pub spi: u32,
    /// Transport or tunnel mode.
    pub mode: Mode,
    /// Algorithms.
    pub suite: EspSuite,
    /// Extended (64-bit) sequence numbers.
    pub esn: bool,
    /// Anti-replay window size for the inbound direction (0 disables the check).
    pub replay_window: u32,
    /// Lifetime limits.
    pub lifetime: Lifetime,
}

impl SaConfig {
    /// Transport mode, no ESN, a window of 64, no lifetime limits.
    pub fn new(spi: u32, suite: EspSuite) -> Self {
        SaConfig {
            spi,
            mode: Mode::Transport,
            suite,
            esn: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            lifetime: Lifetime::unlimited(),
        }
    }

    fn validate(&self) -> Result<(), IpsecError> {
        if self.spi <= 255 {
            return Err(IpsecError::InvalidConfig("SPI values 0..=255 are reserved"));
        }
        self.suite.validate()
    }

    fn max_seq(&self) -> u64 {
        if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }
}

/// Lifetime accounting shared by both directions.
#[derive(Debug, Clone)]
struct Accounting {
    lifetime: Lifetime,
    created: Duration,
    bytes: u64,
    packets: u64,
    soft_fired: bool,
    hard: Option<LifetimeKind>,
    pending: [Option<SaEvent>; 2],
}

impl Accounting {
    fn new(lifetime: Lifetime, now: Duration) -> Self {
        Accounting {
            lifetime,
            created: now,
            bytes: 0,
            packets: 0,
            soft_fired: false,
            hard: None,
            pending: [None, None],
        }
    }

    fn push(&mut self, ev: SaEvent) {
        if let Some(slot) = self.pending.iter_mut().find(|s| s.is_none()) {
            *slot = Some(ev);
        }
    }

    fn poll(&mut self) -> Option<SaEvent> {
        let ev = self.pending[0].take();
        self.pending[0] = self.pending[1].take();
        ev
    }

    fn exceeded(
        limits: &LifetimeLimits,
        age: Duration,
        bytes: u64,
        packets: u64,
    ) -> Option<LifetimeKind> {
        if limits.time.is_some_and(|t| age >= t) {
            return Some(LifetimeKind::Time);
        }
        if limits.bytes.is_some_and(|b| bytes >= b) {
            return Some(LifetimeKind::Bytes);
        }
        if limits.packets.is_some_and(|p| packets >= p) {
            return Some(LifetimeKind::Packets);
        }
        None
    }

    /// Re-evaluates the limits; returns the hard-expiry error if the SA is dead.
    fn update(&mut self, now: Duration) -> Result<(), IpsecError> {
        if let Some(kind) = self.hard {
            return Err(IpsecError::SaLifetimeExpired(kind));
        }
        let age = now.saturating_sub(self.created);
        if !self.soft_fired {
            if let Some(kind) = Self::exceeded(&self.lifetime.soft, age, self.bytes, self.packets) {
                self.soft_fired = true;
                self.push(SaEvent::SoftExpired(kind));
            }
        }
        if let Some(kind) = Self::exceeded(&self.lifetime.hard, age, self.bytes, self.packets) {
            self.expire(kind);
            return Err(IpsecError::SaLifetimeExpired(kind));
        }
        Ok(())
    }

    fn soft_seq(&mut self) {
        if !self.soft_fired {
            self.soft_fired = true;
            self.push(SaEvent::SoftExpired(LifetimeKind::SequenceNumber));
        }
    }

    fn expire(&mut self, kind: LifetimeKind) {
        if self.hard.is_none() {
            self.hard = Some(kind);
            self.push(SaEvent::HardExpired(kind));
        }
    }

    fn count(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes as u64);
        self.packets += 1;
    }

    fn next_deadline(&self) -> Option<Duration> {
        if self.hard.is_some() {
            return None;
        }
        let soft = if self.soft_fired {
            None
        } else {
            self.lifetime.soft.time
        };
        [soft, self.lifetime.hard.time]
            .into_iter()
            .flatten()
            .map(|t| self.created + t)
            .min()
    }
}

/// The sending direction of an ESP SA.
pub struct OutboundSa {
    config: SaConfig,
    crypto: EspCrypto,
    /// Last sequence number used (0 = none yet).
    seq: u64,
    rng: SystemRandom,
    acct: Accounting,
}

impl std::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("config", &self.config)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl OutboundSa {
    /// Creates the SA at time `now` with the encryption keying material (with salt for AEAD and
    /// GMAC suites) and the integrity key (empty for AEAD and GMAC suites).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for a reserved SPI, an invalid suite or wrong key lengths.
    pub fn new(
        config: &SaConfig,
        encr_key: &[u8],
        integ_key: &[u8],
        now: Duration,
    ) -> Result<Self, IpsecError> {
        config.validate()?;
        Ok(OutboundSa {
            config: *config,
            crypto: EspCrypto::new(config.suite, encr_key, integ_key)?,
            seq: 0,
            rng: SystemRandom::new(),
            acct: Accounting::new(config.lifetime, now),
        })
    }

    /// The SA's configuration.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The last sequence number sent (0 before the first packet).
    pub fn last_sequence(&self) -> u64 {
        self.seq
    }

    /// Headroom [`OutboundSa::seal_in_place`] needs in front of the payload (header + IV).
    pub fn header_len(&self) -> usize {
        self.config.suite.header_len()
    }

    /// ESP packet length for a payload of `payload_len` bytes.
    pub fn packet_len(&self, payload_len: usize) -> usize {
        self.config.suite.packet_len(payload_len)
    }

    /// Protocol bytes counted against the byte lifetime so far, and packets.
    pub fn counters(&self) -> (u64, u64) {
        (self.acct.bytes, self.acct.packets)
    }

    /// Appends the ESP packet protecting `payload` (with `next_header`, e.g. 6 for TCP) to `out`.
    /// Returns the sequence number used. Anything already in `out` (a UDP header, a prefix) is
    /// kept; reserve capacity with [`OutboundSa::packet_len`] to avoid reallocation.
    ///
    /// # Errors
    /// [`IpsecError::SaLifetimeExpired`] once a hard limit (time, bytes, packets, sequence
    /// numbers) is reached.
    pub fn seal(
        &mut self,
        now: Duration,
        next_header: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, IpsecError> {
        let start = out.len();
        out.reserve(self.packet_len(payload.len()));
        out.resize(start + self.header_len(), 0);
        out.extend_from_slice(payload);
        let res = self.seal_in_place(now, next_header, out, start);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Seals without copying the payload: `buf[start..start + header_len()]` is headroom, the
    /// payload is `buf[start + header_len()..]`; trailer and ICV are appended. Returns the
    /// sequence number used.
    ///
    /// # Errors
    /// As [`OutboundSa::seal`]; also [`IpsecError::InvalidConfig`] when the headroom is missing.
    pub fn seal_in_place(
        &mut self,
        now: Duration,
        next_header: u8,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<u64, IpsecError> {
        self.acct.update(now)?;
        let max = self.config.max_seq();
        if self.seq >= max {
            self.acct.expire(LifetimeKind::SequenceNumber);
            return Err(IpsecError::SaLifetimeExpired(LifetimeKind::SequenceNumber));
        }
        let seq = self.seq + 1;
        if seq >= max - max / 16 {
            self.acct.soft_seq();
        }
        let payload_len = buf.len().saturating_sub(start + self.header_len());
        let mut iv = [0u8; 16];
        let iv = match self.config.suite {
            EspSuite::AesCbc { .. } => {
                self.rng
                    .fill(&mut iv)
                    .map_err(|_| IpsecError::InvalidConfig("system random source failed"))?;
                &iv[..]
            }
            EspSuite::Null(_) => &iv[..0],
            _ => {
                iv[..8].copy_from_slice(&seq.to_be_bytes());
                &iv[..8]
            }
        };
        self.crypto.seal_in_place(
            self.config.spi,
            SeqInfo {
                seq,
                esn: self.config.esn,
            },
            iv,
            next_header,
            buf,
            start,
        )?;
        self.seq = seq;
        self.acct.count(payload_len);
        // A limit reached by this very packet is reported now; the packet itself still goes.
        let _ = self.acct.update(now);
        Ok(seq)
    }

    /// Next event the owner must act on (soft or hard expiry), if any.
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.acct.poll()
    }

    /// Re-evaluates the time limits at `now` (call when [`OutboundSa::poll_timeout`] passes).
    pub fn handle_timeout(&mut self, now: Duration) {
        let _ = self.acct.update(now);
    }

    /// The next instant at which a time limit fires, if any.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.acct.next_deadline()
    }

    /// Whether a hard limit was reached.
    pub fn is_expired(&self) -> bool {
        self.acct.hard.is_some()
    }

    #[cfg(test)]
    pub(crate) fn set_last_sequence(&mut self, seq: u64) {
        self.seq = seq;
    }
}

/// The result of [`InboundSa::open`]: a view of the decrypted payload inside the packet buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The Next Header field (6 TCP, 17 UDP, 4/41 inner IP in tunnel mode, 59 dummy).
    pub next_header: u8,
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// The payload, without padding and trailer.
    pub payload: &'a mut [u8],
}

/// The receiving direction of an ESP SA.
pub struct InboundSa {
    config: SaConfig,
    crypto: EspCrypto,
    window: ReplayWindow,
    acct: Accounting,
}

impl std::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSa")
            .field("config", &self.config)
            .field("window_top", &self.window.top())
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    /// Creates the SA at time `now`; keys as for [`OutboundSa::new`].
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] for a reserved SPI, an invalid suite, wrong key lengths or a
    /// window larger than [`MAX_REPLAY_WINDOW`].
    pub fn new(
        config: &SaConfig,
        encr_key: &[u8],
        integ_key: &[u8],
        now: Duration,
    ) -> Result<Self, IpsecError> {
        config.validate()?;
        Ok(InboundSa {
            config: *config,
            crypto: EspCrypto::new(config.suite, encr_key, integ_key)?,
            window: ReplayWindow::new(config.replay_window)?,
            acct: Accounting::new(config.lifetime, now),
        })
    }

    /// The SA's configuration.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The anti-replay window.
    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Payload bytes and packets accepted so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.acct.bytes, self.acct.packets)
    }

    /// Verifies, decrypts (in place) and accepts one ESP packet: ICV first, then the replay
    /// window, then the trailer (self-describing padding); only then does the window move.
    ///
    /// # Errors
    /// - [`IpsecError::BadSpi`]: the packet's SPI is not this SA's.
    /// - [`IpsecError::InvalidPacket`]: too short, misaligned, or a bad trailer.
    /// - [`IpsecError::IntegrityCheckFailed`]: the ICV did not verify.
    /// - [`IpsecError::ReplayCheckFailed`]: authentic, but already seen or too old.
    /// - [`IpsecError::WrongSa`]: a tunnel-mode SA received something other than an IP packet.
    /// - [`IpsecError::SaLifetimeExpired`]: the SA reached a hard limit.
    pub fn open<'a>(
        &mut self,
        now: Duration,
        packet: &'a mut [u8],
    ) -> Result<Opened<'a>, IpsecError> {
        self.acct.update(now)?;
        if packet.len() < ESP_HEADER_LEN {
            return Err(IpsecError::InvalidPacket("ESP packet too short"));
        }
        let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        if spi != self.config.spi {
            return Err(IpsecError::BadSpi { spi });
        }
        let seq_lo = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let seq = if self.config.esn {
            // A number before the start of the sequence space cannot be authentic; run the ICV
            // check with the high half the sender would have had to use (0) so that forgeries
            // still report an integrity failure.
            self.window.infer_esn(seq_lo)
        } else {
            Some(u64::from(seq_lo))
        };
        let seq_for_icv = seq.unwrap_or(u64::from(seq_lo));
        let range = self.crypto.open_in_place(
            SeqInfo {
                seq: seq_for_icv,
                esn: self.config.esn,
            },
            packet,
        )?;
        let seq = seq.ok_or(IpsecError::ReplayCheckFailed { seq: seq_for_icv })?;
        self.window.check(seq)?;

        let plain = &packet[range.clone()];
        let n = plain.len();
        let next_header = plain[n - 1];
        let pad = usize::from(plain[n - 2]);
        if pad + 2 > n {
            return Err(IpsecError::InvalidPacket("pad length exceeds payload"));
        }
        let payload_len = n - 2 - pad;
        if plain[payload_len..n - 2]
            .iter()
            .enumerate()
            .any(|(i, &b)| usize::from(b) != i + 1)
        {
            return Err(IpsecError::InvalidPacket("padding is not 1, 2, 3, ..."));
        }
        if self.config.mode == Mode::Tunnel
            && !matches!(
                next_header,
                NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6 | NEXT_HEADER_DUMMY
            )
        {
            return Err(IpsecError::WrongSa { next_header });
        }
        self.window.record(seq);
        self.acct.count(payload_len);
        let _ = self.acct.update(now);
        let start = range.start;
        Ok(Opened {
            next_header,
            seq,
            payload: &mut packet[start..start + payload_len],
        })
    }

    /// Next event the owner must act on (soft or hard expiry), if any.
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.acct.poll()
    }

    /// Re-evaluates the time limits at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        let _ = self.acct.update(now);
    }

    /// The next instant at which a time limit fires, if any.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.acct.next_deadline()
    }

    /// Whether a hard limit was reached.
    pub fn is_expired(&self) -> bool {
        self.acct.hard.is_some()
    }
}

#[cfg(test)]
mod tests;
