//! Entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the stable
//! replay test of the committed corpus (`crates/wsock-ipsec/tests/fuzz_corpus.rs`, which
//! includes this file with `#[path]`, so it needs neither libFuzzer nor a nightly toolchain).
//!
//! Each function takes arbitrary bytes, drives one parser or engine of `wsock-ipsec` with them,
//! checks invariants with `assert!` (a panic is a finding, whether it comes from the code under
//! test or from a broken invariant) and returns an [`Outcome`]: how many of the things the input
//! held were accepted and how many were refused with a typed error or dropped and counted.
//!
//! Input layouts are documented per function; every byte string is a valid input.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use wsock_ipsec::esp::tunnel::{ipv4_packet, ipv6_packet, next_header_for, InnerPacket};
use wsock_ipsec::esp::{
    EspCrypto, EspHeader, EspSuite, InboundSa, Integrity, Mode, OutboundSa, SaConfig, SeqInfo,
    NEXT_HEADER_IPV4, NEXT_HEADER_IPV6,
};
use wsock_ipsec::ike::cert::CertAuth;
use wsock_ipsec::ike::crypto::SkCrypter;
use wsock_ipsec::ike::sa::{
    host_selector, EndpointConfig, Identity, IkeEndpoint, IkeEvent, IkePolicy, IkeStats, SaState,
    SeededIkeRandom, WireSocket,
};
use wsock_ipsec::ike::wire::{
    emit_payload_chain, parse_payload_chain, AuthMethod, ExchangeType, Flags, Header, IdType,
    Identification, Message, MessageRepr, PayloadRepr, PayloadType, HEADER_LEN,
};
use wsock_ipsec::keylog::IkeKeyRecord;
use wsock_ipsec::natt::{self, NattDatagram};
use wsock_ipsec::pki::{CertAuthority, Validity};
use wsock_ipsec::IpsecError;

/// What one input did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Units (messages, packets, datagrams, certificate checks) accepted.
    pub accepted: u32,
    /// Units refused with a typed error, or dropped and counted.
    pub rejected: u32,
}

impl Outcome {
    fn add(&mut self, o: Outcome) {
        self.accepted += o.accepted;
        self.rejected += o.rejected;
    }

    fn accept(&mut self) {
        self.accepted += 1;
    }

    fn reject(&mut self) {
        self.rejected += 1;
    }
}

/// A little cursor over the fuzz input; reads past the end yield zeros / empty slices.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// IKE wire format.

/// The errors the wire parsers may return.
fn is_wire_error(e: &IpsecError) -> bool {
    matches!(
        e,
        IpsecError::InvalidIkeHeader(_)
            | IpsecError::InvalidMajorVersion(_)
            | IpsecError::MalformedPayload { .. }
    )
}

/// `ike_message`: the whole input as one IKE message (header, zero-copy views, owned
/// representation), and again as a bare payload chain whose first type is the first byte.
///
/// Invariants: the view and the owned parse agree; whatever parses re-emits to a message of the
/// same length that parses to the same value; the header re-emits byte for byte; errors are
/// wire errors.
pub fn ike_message(data: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    let owned = MessageRepr::parse(data);
    match &owned {
        Ok(m) => {
            o.accept();
            let again = m.emit().expect("a parsed message can be emitted again");
            assert_eq!(again.len(), data.len(), "re-emitting changes the length");
            assert_eq!(&MessageRepr::parse(&again).expect("re-parse"), m);
        }
        Err(e) => {
            assert!(is_wire_error(e), "unexpected error kind {e:?}");
            o.reject();
        }
    }
    if let Ok(h) = Header::parse(data) {
        let mut b = [0u8; HEADER_LEN];
        h.emit(&mut b).expect("28 bytes of room");
        assert_eq!(
            &b[..],
            &data[..HEADER_LEN],
            "the header re-emits byte for byte"
        );
    }
    match Message::parse(data) {
        Ok(view) => {
            // Walk and interpret one payload at a time, as the owned parse does, so that both
            // stop at the same first error.
            let reprs: Result<Vec<_>, _> = view
                .payloads()
                .map(|raw| raw.and_then(|r| PayloadRepr::parse(&r)))
                .collect();
            match (&owned, reprs) {
                (Ok(m), Ok(p)) => assert_eq!(m.payloads, p),
                (Err(a), Err(b)) => assert_eq!(a, &b),
                (a, b) => panic!("view and owned parse disagree: {a:?} vs {b:?}"),
            }
        }
        Err(e) => assert!(owned.is_err() && is_wire_error(&e)),
    }
    if let Some((&first, rest)) = data.split_first() {
        o.add(payload_chain(PayloadType(first), rest));
    }
    o
}

/// A bare payload chain: parse, and if it parses, emit and parse again.
fn payload_chain(first: PayloadType, buf: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    match parse_payload_chain(first, buf) {
        Ok(ps) => {
            o.accept();
            let mut out = Vec::new();
            let f = emit_payload_chain(&ps, &mut out).expect("a parsed chain can be emitted");
            assert_eq!(
                out.len(),
                buf.len(),
                "re-emitting a chain changes its length"
            );
            if !ps.is_empty() {
                assert_eq!(f, first);
            }
            assert_eq!(parse_payload_chain(f, &out).expect("re-parse"), ps);
        }
        Err(e) => {
            assert!(is_wire_error(&e), "unexpected error kind {e:?}");
            o.reject();
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// NAT-T demultiplexing.

/// `natt_classify`: the whole input as one datagram on the NAT-T socket.
///
/// Invariants: a keepalive is exactly `0xFF`; an IKE message is the marker and the rest (and
/// `emit_ike` rebuilds the datagram); an ESP packet has a non-zero SPI and an ESP header that
/// parses; refusals are `InvalidPacket` and only for datagrams that are none of these. IKE
/// contents continue into [`ike_message`].
pub fn natt_classify(data: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    match natt::classify(data) {
        Ok(NattDatagram::Keepalive) => {
            assert_eq!(data, natt::KEEPALIVE);
            o.accept();
        }
        Ok(NattDatagram::Ike(m)) => {
            assert!(data.starts_with(&natt::NON_ESP_MARKER));
            assert_eq!(m, &data[4..]);
            let mut d = Vec::new();
            natt::emit_ike(m, &mut d);
            assert_eq!(d, data);
            o.accept();
            o.add(ike_message(m));
        }
        Ok(NattDatagram::Esp { spi, packet }) => {
            assert_eq!(packet, data);
            assert_ne!(spi, 0);
            let h = EspHeader::parse(packet).expect("an ESP datagram has an ESP header");
            assert_eq!(h.spi, spi);
            o.accept();
        }
        Err(e) => {
            assert!(matches!(e, IpsecError::InvalidPacket(_)), "{e:?}");
            assert!(data != natt::KEEPALIVE && !data.starts_with(&natt::NON_ESP_MARKER));
            assert!(data.len() < 8, "an 8-byte datagram without marker is ESP");
            o.reject();
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// ESP.

const ESP_SPI: u32 = 0xc0de_0001;

/// The suites `esp_open` picks from (first byte of the input).
pub const ESP_SUITES: [EspSuite; 9] = [
    EspSuite::AesGcm16 { key_bits: 128 },
    EspSuite::Null(Integrity::HmacSha256_128),
    EspSuite::AesGcm16 { key_bits: 256 },
    EspSuite::ChaCha20Poly1305,
    EspSuite::NullAuthAesGmac { key_bits: 128 },
    EspSuite::Null(Integrity::HmacSha1_96),
    EspSuite::AesCbc {
        key_bits: 128,
        integrity: Integrity::HmacSha256_128,
    },
    EspSuite::AesCbc {
        key_bits: 256,
        integrity: Integrity::HmacSha1_96,
    },
    EspSuite::NullAuthAesGmac { key_bits: 256 },
];

/// The fixed keys of an `esp_open` SA.
pub fn esp_keys(suite: EspSuite) -> (Vec<u8>, Vec<u8>) {
    let e = (0..suite.encr_key_len())
        .map(|i| (i as u8).wrapping_mul(29) ^ 0x5a)
        .collect();
    let a = (0..suite.integ_key_len())
        .map(|i| (i as u8).wrapping_mul(13) ^ 0xa5)
        .collect();
    (e, a)
}

/// The inbound SA `esp_open` feeds: SPI `0xc0de0001`, fixed keys, window 64.
pub fn esp_inbound(suite: EspSuite, esn: bool, tunnel: bool) -> InboundSa {
    let mut cfg = SaConfig::new(ESP_SPI, suite);
    cfg.esn = esn;
    cfg.mode = if tunnel {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    let (e, a) = esp_keys(suite);
    InboundSa::new(&cfg, &e, &a, Duration::ZERO).expect("valid fixed SA")
}

/// Builds an authentic packet around an arbitrary plaintext region (payload, padding, pad
/// length, next header: whatever `plain` holds) for the suites whose crypto this harness
/// reproduces with ring directly (AES-GCM-128 and NULL + HMAC-SHA-256-128), so that trailers
/// the sender would never make still pass the integrity check.
fn esp_forge(suite: EspSuite, seq: u64, esn: bool, plain: &[u8]) -> Option<Vec<u8>> {
    use ring::{aead, hmac};
    let (e, a) = esp_keys(suite);
    let mut p = Vec::with_capacity(plain.len() + 40);
    p.extend_from_slice(&ESP_SPI.to_be_bytes());
    p.extend_from_slice(&(seq as u32).to_be_bytes());
    match suite {
        EspSuite::AesGcm16 { key_bits: 128 } => {
            let iv = seq.to_be_bytes();
            p.extend_from_slice(&iv);
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&e[16..20]);
            nonce[4..].copy_from_slice(&iv);
            let key =
                aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &e[..16]).ok()?);
            let mut aad = ESP_SPI.to_be_bytes().to_vec();
            if esn {
                aad.extend_from_slice(&seq.to_be_bytes());
            } else {
                aad.extend_from_slice(&(seq as u32).to_be_bytes());
            }
            let mut body = plain.to_vec();
            key.seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&aad),
                &mut body,
            )
            .ok()?;
            p.extend_from_slice(&body);
        }
        EspSuite::Null(Integrity::HmacSha256_128) => {
            p.extend_from_slice(plain);
            let k = hmac::Key::new(hmac::HMAC_SHA256, &a);
            let mut ctx = hmac::Context::with_key(&k);
            ctx.update(&p);
            if esn {
                ctx.update(&((seq >> 32) as u32).to_be_bytes());
            }
            p.extend_from_slice(&ctx.sign().as_ref()[..16]);
        }
        _ => return None,
    }
    Some(p)
}

/// The payload and next header a well-formed plaintext region holds, or `None` when its
/// trailer is malformed (pad length past the start, padding other than 1, 2, 3, ...).
fn expected_trailer(plain: &[u8]) -> Option<(&[u8], u8)> {
    let n = plain.len();
    if n < 2 {
        return None;
    }
    let pad = usize::from(plain[n - 2]);
    if pad + 2 > n {
        return None;
    }
    let end = n - 2 - pad;
    if plain[end..n - 2]
        .iter()
        .enumerate()
        .any(|(i, &b)| usize::from(b) != i + 1)
    {
        return None;
    }
    Some((&plain[..end], plain[n - 1]))
}

/// `esp_open`: one inbound SA and a sequence of packets.
///
/// Layout: byte 0 picks the suite (`ESP_SUITES[b % 9]`), bit 4 ESN, bit 5 tunnel mode; then
/// records of `op (1) | seq_lo (4) | len (2) | bytes (len)`:
/// - `op & 3` 0 or 3: `bytes` is the packet as received (with `op & 4`, its first four bytes
///   are replaced by the SA's SPI so that the integrity check is reached);
/// - `op & 3 == 1`: a packet sealed by the crate's own [`EspCrypto`] with sequence number
///   `seq_lo` (high half inferred), next header `op >> 2` and payload `bytes`;
/// - `op & 3 == 2`: for AES-GCM-128 and NULL/HMAC-SHA-256 only, an authentic packet whose whole
///   plaintext region (payload, padding, pad length, next header) is `bytes` (see `esp_forge`).
///
/// Invariants: no sequence number is accepted twice and an accepted packet replayed is refused
/// with `ReplayCheckFailed`; accepted packets carry the header's sequence number; forged
/// trailers are accepted exactly when well-formed (and the window allows) and then yield their
/// payload; tunnel mode never accepts a transport payload; errors are ESP errors.
pub fn esp_open(data: &[u8]) -> Outcome {
    let mut inp = Input(data);
    let sel = inp.u8();
    let suite = ESP_SUITES[usize::from(sel) % ESP_SUITES.len()];
    let esn = sel & 0x10 != 0;
    let tunnel = sel & 0x20 != 0;
    let mut rx = esp_inbound(suite, esn, tunnel);
    let (e, a) = esp_keys(suite);
    let crypto = EspCrypto::new(suite, &e, &a).expect("valid fixed keys");
    let mut seen = HashSet::new();
    let mut o = Outcome::default();
    let mut iv_counter = 0u64;
    while !inp.is_empty() {
        let op = inp.u8();
        let seq_lo = inp.u32();
        let len = usize::from(inp.u16());
        let bytes = inp.bytes(len);
        let seq = if esn {
            rx.window().infer_esn(seq_lo).unwrap_or(u64::from(seq_lo))
        } else {
            u64::from(seq_lo)
        };
        let mut expect: Option<Option<(Vec<u8>, u8)>> = None;
        let packet = match op & 3 {
            0 | 3 => {
                let mut p = bytes.to_vec();
                if op & 4 != 0 && p.len() >= 4 {
                    p[..4].copy_from_slice(&ESP_SPI.to_be_bytes());
                }
                p
            }
            1 => {
                let hdr = suite.header_len();
                let mut buf = vec![0u8; hdr];
                buf.extend_from_slice(bytes);
                iv_counter += 1;
                let iv: Vec<u8> = (0..suite.iv_len())
                    .map(|i| (iv_counter.rotate_left(i as u32 * 8) as u8) ^ i as u8)
                    .collect();
                let nh = op >> 2;
                crypto
                    .seal_in_place(ESP_SPI, SeqInfo { seq, esn }, &iv, nh, &mut buf, 0)
                    .expect("sealing with valid parameters");
                expect = Some(Some((bytes.to_vec(), nh)));
                buf
            }
            _ => match esp_forge(suite, seq, esn, bytes) {
                Some(p) => {
                    // A region that is not a whole number of the suite's blocks is malformed
                    // however good its trailer.
                    let aligned = bytes.len() % suite.block_align() == 0;
                    expect = Some(
                        expected_trailer(bytes)
                            .filter(|_| aligned)
                            .map(|(p, nh)| (p.to_vec(), nh)),
                    );
                    p
                }
                None => continue,
            },
        };
        let copy = packet.clone();
        let mut packet = packet;
        let hdr_seq = EspHeader::parse(&copy).map(|h| h.seq_lo);
        match rx.open(Duration::ZERO, &mut packet) {
            Ok(opened) => {
                assert!(
                    seen.insert(opened.seq),
                    "sequence number {} accepted twice",
                    opened.seq
                );
                assert_eq!(hdr_seq, Ok(opened.seq as u32));
                if tunnel {
                    assert!(matches!(opened.next_header, 4 | 41 | 59));
                }
                if let Some(exp) = &expect {
                    let (payload, nh) = exp.as_ref().expect("a malformed trailer was accepted");
                    assert_eq!(&opened.payload[..], &payload[..]);
                    assert_eq!(opened.next_header, *nh);
                }
                let seq = opened.seq;
                let mut again = copy;
                assert_eq!(
                    rx.open(Duration::ZERO, &mut again).unwrap_err(),
                    IpsecError::ReplayCheckFailed { seq },
                    "an accepted packet replayed"
                );
                o.accept();
            }
            Err(err) => {
                assert!(
                    matches!(
                        err,
                        IpsecError::InvalidPacket(_)
                            | IpsecError::BadSpi { .. }
                            | IpsecError::IntegrityCheckFailed
                            | IpsecError::ReplayCheckFailed { .. }
                            | IpsecError::WrongSa { .. }
                    ),
                    "unexpected error {err:?}"
                );
                // A packet the crate sealed itself, or a forged one with a good trailer, is
                // authentic: it may only fail on the window or the mode.
                if let Some(Some((_, nh))) = &expect {
                    assert!(
                        matches!(err, IpsecError::ReplayCheckFailed { .. })
                            || (tunnel
                                && matches!(err, IpsecError::WrongSa { next_header } if next_header == *nh)),
                        "an authentic packet refused with {err:?}"
                    );
                }
                o.reject();
            }
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Tunnel-mode ESP: the inner IP packet.

fn v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// The IPv6 next-header values `InnerPacket::parse` walks over (extension and fragment
/// headers).
const V6_WALKED: [u8; 5] = [0, 43, 44, 60, 135];

/// Checks what `InnerPacket::parse` says about `data` against the bytes themselves.
fn check_inner(next_header: u8, data: &[u8]) -> Outcome {
    let mut o = Outcome::default();
    match InnerPacket::parse(next_header, data) {
        Ok(p) => {
            assert!(
                data.starts_with(p.packet),
                "the packet is a prefix of the data"
            );
            assert!(p.transport_offset <= p.packet.len());
            let (src, dst) = match next_header {
                NEXT_HEADER_IPV4 => (IpAddr::V4(v4(&data[12..])), IpAddr::V4(v4(&data[16..]))),
                _ => (IpAddr::V6(v6(&data[8..])), IpAddr::V6(v6(&data[24..]))),
            };
            assert_eq!((p.src, p.dst), (src, dst));
            assert!(
                p.within(&[host_selector(src)], &[host_selector(dst)]),
                "a packet lies within the selectors of its own addresses"
            );
            let whole = p.packet.len() == data.len();
            assert_eq!(next_header_for(data).is_ok(), whole);
            o.accept();
        }
        Err(e) => {
            assert!(
                matches!(e, IpsecError::InvalidPacket(_) | IpsecError::WrongSa { .. }),
                "{e:?}"
            );
            assert_ne!(
                next_header_for(data),
                Ok(next_header),
                "a whole packet of that version was refused"
            );
            o.reject();
        }
    }
    o
}

/// `esp_tunnel`: tunnel-mode ESP ([`InnerPacket`], `next_header_for`, the IPv4/IPv6
/// builders, `seal_tunnel`/`open_tunnel`). Byte 0 picks the mode (`% 3`):
/// - 0: byte 1 is the ESP Next Header, the rest the decrypted payload: `InnerPacket::parse`
///   must agree with the bytes (addresses, packet a prefix, selectors of its own addresses,
///   `next_header_for` accepting exactly whole packets);
/// - 1: `version (1) | src (16) | dst (16) | protocol (1) | ttl (1) | id (2) | payload`: the
///   builders' packet parses back to those fields, ports included (for an IPv6 extension
///   header type, the payload is part of the header chain: checked as in mode 0);
/// - 2: the rest is sealed on a tunnel-mode SA (AES-GCM-128) exactly when `next_header_for`
///   accepts it, and opens to what `InnerPacket::parse` reads from it.
pub fn esp_tunnel(data: &[u8]) -> Outcome {
    let mut inp = Input(data);
    let mode = inp.u8() % 3;
    let mut o = Outcome::default();
    match mode {
        0 => {
            let nh = inp.u8();
            o.add(check_inner(nh, inp.rest()));
        }
        1 => {
            let is_v6 = inp.u8() & 1 == 1;
            let src = inp.bytes(16).to_vec();
            let dst = inp.bytes(16).to_vec();
            if src.len() < 16 || dst.len() < 16 {
                return o;
            }
            let protocol = inp.u8();
            let ttl = inp.u8();
            let id = inp.u16();
            let payload = inp.rest();
            let (nh, built) = if is_v6 {
                (
                    NEXT_HEADER_IPV6,
                    ipv6_packet(v6(&src), v6(&dst), protocol, ttl, payload),
                )
            } else {
                (
                    NEXT_HEADER_IPV4,
                    ipv4_packet(v4(&src), v4(&dst), protocol, ttl, id, payload),
                )
            };
            let built = built.expect("payloads here are short");
            if is_v6 && V6_WALKED.contains(&protocol) {
                // The payload is read as extension headers: whatever it is, the parse must
                // agree with the bytes.
                o.add(check_inner(nh, &built));
                return o;
            }
            assert_eq!(next_header_for(&built), Ok(nh));
            let p = InnerPacket::parse(nh, &built).expect("a built packet parses");
            assert_eq!(p.packet, &built[..]);
            let (src, dst) = if is_v6 {
                (IpAddr::V6(v6(&src)), IpAddr::V6(v6(&dst)))
            } else {
                (IpAddr::V4(v4(&src)), IpAddr::V4(v4(&dst)))
            };
            assert_eq!((p.src, p.dst), (src, dst));
            assert_eq!(p.protocol, protocol);
            assert_eq!(p.transport_offset, if is_v6 { 40 } else { 20 });
            let ports = match protocol {
                6 | 17 | 33 | 132 | 136 if payload.len() >= 4 => (
                    Some(u16::from_be_bytes([payload[0], payload[1]])),
                    Some(u16::from_be_bytes([payload[2], payload[3]])),
                ),
                1 | 58 if payload.len() >= 2 => {
                    let t = u16::from_be_bytes([payload[0], payload[1]]);
                    (Some(t), Some(t))
                }
                _ => (None, None),
            };
            assert_eq!((p.src_port, p.dst_port), ports);
            o.accept();
        }
        _ => {
            let inner = inp.rest();
            let suite = EspSuite::AesGcm16 { key_bits: 128 };
            let mut cfg = SaConfig::new(ESP_SPI, suite);
            cfg.mode = Mode::Tunnel;
            let (e, a) = esp_keys(suite);
            let mut tx = OutboundSa::new(&cfg, &e, &a, Duration::ZERO).expect("tunnel SA");
            let mut rx = InboundSa::new(&cfg, &e, &a, Duration::ZERO).expect("tunnel SA");
            let mut wire = Vec::new();
            let sealed = tx.seal_tunnel(Duration::ZERO, inner, &mut wire);
            let nh = next_header_for(inner);
            assert_eq!(
                sealed.is_ok(),
                nh.is_ok(),
                "sealed exactly the well-formed packets"
            );
            match sealed {
                Ok(_) => {
                    let nh = nh.expect("checked above");
                    let got = rx
                        .open_tunnel(Duration::ZERO, &mut wire)
                        .expect("opens")
                        .expect("not a dummy packet");
                    assert_eq!(Ok(got), InnerPacket::parse(nh, inner));
                    o.accept();
                }
                Err(e) => {
                    assert!(matches!(e, IpsecError::InvalidPacket(_)), "{e:?}");
                    o.reject();
                }
            }
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Certificates.

struct CertFixture {
    /// Host a verifies peers.
    verifier: CertAuth,
    /// Host b signs.
    signer: CertAuth,
    leaf: Vec<u8>,
    ca: Vec<u8>,
    key_b: Vec<u8>,
}

const PEER_NAME: &str = "b.example";
const SIGNED_OCTETS: &[u8] = b"the octets an IKE_AUTH signature covers";

fn cert_fixture() -> &'static CertFixture {
    static F: OnceLock<CertFixture> = OnceLock::new();
    F.get_or_init(|| {
        let epoch = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
        let mut ca = CertAuthority::new("wsock fuzz CA", Validity::default()).expect("CA");
        let a = ca
            .issue_machine(&["a.example"], true, Validity::default())
            .expect("cert a");
        let b = ca
            .issue_machine(&[PEER_NAME], true, Validity::default())
            .expect("cert b");
        let anchors = vec![ca.cert_der().to_vec()];
        CertFixture {
            verifier: CertAuth::new(a.chain.clone(), &a.key_pkcs8, anchors.clone(), epoch)
                .expect("verifier"),
            signer: CertAuth::new(b.chain.clone(), &b.key_pkcs8, anchors, epoch).expect("signer"),
            leaf: b.chain[0].clone(),
            ca: ca.cert_der().to_vec(),
            key_b: b.key_pkcs8.clone(),
        }
    })
}

fn sign_b(f: &CertFixture) -> Vec<u8> {
    match f.signer.sign(SIGNED_OCTETS).expect("signing") {
        PayloadRepr::Auth { data, .. } => data,
        other => panic!("sign gave {other:?}"),
    }
}

fn is_cert_error(e: &IpsecError) -> bool {
    matches!(
        e,
        IpsecError::IkeCertRejected(_) | IpsecError::IkePeerIdMismatch { .. }
    )
}

/// Whether `name` designates the peer's certificate name the way the verifier compares them.
fn names_peer(name: &str) -> bool {
    name.strip_suffix('.')
        .unwrap_or(name)
        .eq_ignore_ascii_case(PEER_NAME)
}

/// `cert_verify`: the certificate path of IKE_AUTH against a fixed CA (made at start-up) whose
/// machine certificate `b.example` is the genuine peer. Byte 0 picks the mode (`% 4`):
/// - 0: the peer's chain comes from the input (records `len (2) | DER`, at most 4; with bit 2
///   of byte 0, the first is instead the genuine leaf with the input's `pos (2) | xor (1)`
///   edits), with a genuine signature and ID: accepted only if the leaf is the genuine one;
/// - 1: genuine chain, method, ID and AUTH data from the input: never accepted (nobody can
///   sign for the peer's fresh key);
/// - 2: genuine chain and signature, ID type, ID data and target name from the input: accepted
///   exactly when the ID and the target name both name `b.example` (FQDN compared without case
///   and trailing dot, `host/` stripped from the target);
/// - 3: a credential made from input DER (leaf and trust anchor) and the genuine key: refused
///   with `InvalidConfig` unless the leaf is the genuine one.
pub fn cert_verify(data: &[u8]) -> Outcome {
    let f = cert_fixture();
    let mut inp = Input(data);
    let sel = inp.u8();
    let mut o = Outcome::default();
    let peer_id = Identification {
        id_type: IdType::FQDN,
        data: PEER_NAME.as_bytes().to_vec(),
    };
    let now = Duration::ZERO;
    let res = match sel % 4 {
        0 => {
            let mut certs: Vec<Vec<u8>> = Vec::new();
            if sel & 4 != 0 {
                let mut leaf = f.leaf.clone();
                while !inp.is_empty() {
                    let pos = usize::from(inp.u16()) % leaf.len();
                    leaf[pos] ^= inp.u8();
                }
                certs.push(leaf);
            } else {
                while !inp.is_empty() && certs.len() < 4 {
                    let n = usize::from(inp.u16());
                    certs.push(inp.bytes(n).to_vec());
                }
            }
            let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
            let auth = sign_b(f);
            let r = f.verifier.verify_peer(
                now,
                &refs,
                &peer_id,
                AuthMethod::DIGITAL_SIGNATURE,
                &auth,
                SIGNED_OCTETS,
                Some(PEER_NAME),
            );
            if r.is_ok() {
                assert_eq!(
                    certs.first(),
                    Some(&f.leaf),
                    "a chain other than the genuine one was accepted"
                );
            }
            r
        }
        1 => {
            let method = AuthMethod(inp.u8());
            let id_type = IdType(inp.u8());
            let id_len = usize::from(inp.u8());
            let id = Identification {
                id_type,
                data: inp.bytes(id_len).to_vec(),
            };
            let auth = inp.rest();
            let r = f
                .verifier
                .verify_peer(now, &[&f.leaf], &id, method, auth, SIGNED_OCTETS, None);
            assert!(r.is_err(), "an AUTH signature nobody made was accepted");
            r
        }
        2 => {
            let id_type = IdType(inp.u8());
            let id_len = usize::from(inp.u8());
            let id = Identification {
                id_type,
                data: inp.bytes(id_len).to_vec(),
            };
            let target = match inp.u8() {
                0 => None,
                _ => Some(String::from_utf8_lossy(inp.rest()).into_owned()),
            };
            let auth = sign_b(f);
            let r = f.verifier.verify_peer(
                now,
                &[&f.leaf],
                &id,
                AuthMethod::DIGITAL_SIGNATURE,
                &auth,
                SIGNED_OCTETS,
                target.as_deref(),
            );
            let id_names_peer =
                id_type == IdType::FQDN && std::str::from_utf8(&id.data).is_ok_and(names_peer);
            let target_ok = target
                .as_deref()
                .is_none_or(|t| names_peer(wsock_ipsec::ike::cert::strip_spn(t)));
            // A DER distinguished name equal to the certificate's subject is a valid ID too;
            // this harness does not rebuild the subject, so it checks the other types only.
            if id_type != IdType::DER_ASN1_DN {
                assert_eq!(
                    r.is_ok(),
                    id_names_peer && target_ok,
                    "id {id:?} target {target:?} gave {r:?}"
                );
            }
            if id_names_peer && !target_ok {
                assert!(
                    matches!(r, Err(IpsecError::IkePeerIdMismatch { .. })),
                    "a trusted certificate of another name than the target gave {r:?}"
                );
            }
            r
        }
        _ => {
            let n = usize::from(inp.u16());
            let leaf = inp.bytes(n).to_vec();
            let anchor = inp.rest().to_vec();
            let epoch = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
            let genuine = leaf == f.leaf;
            let r = CertAuth::new(vec![leaf], &f.key_b, vec![anchor.clone()], epoch);
            match &r {
                Ok(_) => assert!(genuine, "a credential from a foreign leaf was accepted"),
                Err(e) => {
                    assert!(matches!(e, IpsecError::InvalidConfig(_)), "{e:?}");
                    assert!(
                        !(genuine && anchor == f.ca),
                        "the genuine credential was refused"
                    );
                }
            }
            r.map(|_| ())
        }
    };
    match res {
        Ok(()) => o.accept(),
        Err(e) => {
            assert!(
                is_cert_error(&e) || matches!(e, IpsecError::InvalidConfig(_)),
                "{e:?}"
            );
            o.reject()
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The IKE responder.

const PSK: &[u8] = b"fuzz pre-shared key";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

fn endpoint(ike: &str, natt: &str, responder: Option<IkePolicy>, seed: u64) -> IkeEndpoint {
    let mut c = EndpointConfig::new(addr(ike), addr(natt));
    c.responder = responder;
    c.keylog = true;
    c.cookie_threshold = 4;
    IkeEndpoint::new(c, Box::new(SeededIkeRandom::new(seed))).expect("endpoint")
}

const A_IKE: &str = "127.0.0.1:10500";
const A_NATT: &str = "127.0.0.1:14500";
const B_IKE: &str = "127.0.0.2:10500";
const B_NATT: &str = "127.0.0.2:14500";

/// The responder `ike_responder` feeds: PSK, the crate's default suites, cookies from 4
/// half-open SAs on, SPIs and nonces from seed 2.
pub fn responder() -> IkeEndpoint {
    endpoint(
        B_IKE,
        B_NATT,
        Some(IkePolicy::psk(Identity::Fqdn("b.example".into()), PSK)),
        2,
    )
}

fn dropped(s: &IkeStats) -> u64 {
    s.dropped_malformed + s.dropped_unknown_sa + s.dropped_unexpected + s.dropped_unauthentic
}

/// What delivering one datagram did.
struct Delivery {
    /// The datagrams the endpoint sent in reaction (IKE messages, marker removed).
    answers: Vec<Vec<u8>>,
    /// Whether an IKE SA was established.
    established: bool,
}

/// Who sent a datagram to the endpoint under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Host a (the initiator's addresses): datagrams for the responder.
    A,
    /// Host b (the responder's addresses): datagrams for the initiator.
    B,
}

/// Hands `d` to `ep` from `peer` and checks that it was answered, counted as dropped, changed
/// the set of SAs or raised an event; that every datagram sent in reaction is a message our own
/// parser reads, sent to that peer (with `only_responses`: a response, to the very address and
/// on the socket the datagram used); returns those datagrams.
fn deliver(
    ep: &mut IkeEndpoint,
    now: Duration,
    peer: Peer,
    socket: WireSocket,
    d: &[u8],
    only_responses: bool,
) -> Delivery {
    let before = *ep.stats();
    let sas_before = ep.summaries();
    let from = match (peer, socket) {
        (Peer::A, WireSocket::Ike) => addr(A_IKE),
        (Peer::A, WireSocket::Natt) => addr(A_NATT),
        (Peer::B, WireSocket::Ike) => addr(B_IKE),
        (Peer::B, WireSocket::Natt) => addr(B_NATT),
    };
    ep.handle_datagram(now, from, socket, d);
    let after = *ep.stats();
    assert_eq!(after.received, before.received + 1);
    let mut answers = Vec::new();
    while let Some(t) = ep.poll_transmit(now) {
        if only_responses {
            assert_eq!(
                t.destination, from,
                "answers go back where the request came from"
            );
            assert_eq!(
                t.socket, socket,
                "answers leave on the socket the request used"
            );
        } else {
            // An initiator may move to the peer's NAT-T socket (NAT detected) on its own.
            let (ike, natt) = match peer {
                Peer::A => (addr(A_IKE), addr(A_NATT)),
                Peer::B => (addr(B_IKE), addr(B_NATT)),
            };
            let expected = match t.socket {
                WireSocket::Ike => ike,
                WireSocket::Natt => natt,
            };
            assert_eq!(
                t.destination, expected,
                "sent to the peer's socket of that kind"
            );
        }
        let bytes = match t.socket {
            WireSocket::Ike => &t.contents[..],
            WireSocket::Natt => match natt::classify(&t.contents) {
                Ok(NattDatagram::Ike(m)) => m,
                other => panic!("NAT-T datagram that is not IKE: {other:?}"),
            },
        };
        let m = MessageRepr::parse(bytes).expect("the endpoint sends only what it can parse");
        assert!(
            !only_responses || m.flags.response(),
            "the responder answers, never asks, here"
        );
        answers.push(bytes.to_vec());
    }
    let mut established = false;
    let mut events = 0;
    while let Some(e) = ep.poll_event() {
        events += 1;
        if matches!(e, IkeEvent::IkeSaEstablished { .. }) {
            established = true;
        }
    }
    let changed = ep.summaries() != sas_before;
    assert!(
        !answers.is_empty() || dropped(&after) > dropped(&before) || changed || events > 0,
        "a datagram was neither answered, nor dropped and counted, nor did it change anything"
    );
    Delivery {
        answers,
        established,
    }
}

fn count(o: &mut Outcome, d: &Delivery) {
    if d.answers.is_empty() {
        o.reject()
    } else {
        o.accept()
    }
}

/// The initiator of the harness: host a, seed 1, PSK.
pub fn initiator() -> IkeEndpoint {
    endpoint(A_IKE, A_NATT, None, 1)
}

/// Makes the harness's initiator connect to the responder's addresses (PSK, `a.example`).
pub fn connect(init: &mut IkeEndpoint, now: Duration) {
    init.connect(
        now,
        addr(B_IKE),
        Some(addr(B_NATT)),
        IkePolicy::psk(Identity::Fqdn("a.example".into()), PSK),
    )
    .expect("connect");
}

/// Moves datagrams between the two endpoints (no NAT: both use their IKE sockets) until
/// nothing moves or `rounds` rounds are over; drains their events.
pub fn run(init: &mut IkeEndpoint, resp: &mut IkeEndpoint, now: Duration, rounds: usize) {
    for _ in 0..rounds {
        let mut moved = false;
        while let Some(t) = init.poll_transmit(now) {
            moved = true;
            resp.handle_datagram(now, addr(A_IKE), t.socket, &t.contents);
        }
        while let Some(t) = resp.poll_transmit(now) {
            moved = true;
            init.handle_datagram(now, addr(B_IKE), t.socket, &t.contents);
        }
        if !moved {
            break;
        }
    }
    while init.poll_event().is_some() {}
    while resp.poll_event().is_some() {}
}

/// A genuine IKE SA (and its first child SA) between the harness's initiator and responder.
pub fn established_pair(now: Duration) -> (IkeEndpoint, IkeEndpoint) {
    let mut init = initiator();
    let mut resp = responder();
    connect(&mut init, now);
    run(&mut init, &mut resp, now, 8);
    for ep in [&init, &resp] {
        let s = ep.summaries();
        assert!(
            s.len() == 1 && s[0].state == SaState::Established,
            "the genuine exchange did not complete: {s:?}"
        );
    }
    (init, resp)
}

/// The exchange type a selector byte names (the four of RFC 7296 first, then any value).
fn exchange_of(b: u8) -> ExchangeType {
    match b {
        0 => ExchangeType::CREATE_CHILD_SA,
        1 => ExchangeType::INFORMATIONAL,
        2 => ExchangeType::IKE_AUTH,
        3 => ExchangeType::IKE_SA_INIT,
        b => ExchangeType(b),
    }
}

/// Seals `inner` (read from the input as `first` and a chain) into a message of the IKE SA
/// `rec` with the given header fields, with the keys of the sending side; `None` when the
/// chain does not parse (that is `ike_message`'s business) or is too long.
fn seal_chain(
    rec: &IkeKeyRecord,
    from_initiator: bool,
    exchange: ExchangeType,
    response: bool,
    message_id: u32,
    first: PayloadType,
    chain: &[u8],
) -> Option<Vec<u8>> {
    let inner = parse_payload_chain(first, chain).ok()?;
    let outer = MessageRepr {
        spi_i: rec.spi_i,
        spi_r: rec.spi_r,
        exchange,
        flags: Flags::new(from_initiator, response),
        message_id,
        payloads: Vec::new(),
    };
    let (e, a) = if from_initiator {
        (&rec.sk_ei, &rec.sk_ai)
    } else {
        (&rec.sk_er, &rec.sk_ar)
    };
    let mut c = SkCrypter::new(rec.suite, e, a).expect("SK keys");
    c.seal(&outer, &inner).ok()
}

/// Overwrites the header of `m` (padded to 28 bytes) with the given SPIs, flags and message
/// id, version 2.0 and the right length; keeps the input's next payload and exchange type.
fn patch_header(m: &[u8], spi_i: u64, spi_r: u64, flags: u8, message_id: u32) -> Vec<u8> {
    let mut m = m.to_vec();
    if m.len() < HEADER_LEN {
        m.resize(HEADER_LEN, 0);
    }
    m[..8].copy_from_slice(&spi_i.to_be_bytes());
    m[8..16].copy_from_slice(&spi_r.to_be_bytes());
    m[17] = 0x20;
    m[19] = flags;
    m[20..24].copy_from_slice(&message_id.to_be_bytes());
    let l = m.len() as u32;
    m[24..28].copy_from_slice(&l.to_be_bytes());
    m
}

/// `ike_responder`: an [`IkeEndpoint`] as responder (see [`responder`]). Byte 0 picks the mode
/// (`% 4`):
/// - 0: a sequence of datagrams (`flags (1) | len (2) | bytes`; flag bit 0: NAT-T socket) to
///   the responder, at one-second steps;
/// - 1: a genuine initiator (seed 1) runs IKE_SA_INIT with the responder; then the rest of
///   the input, read as a payload chain whose first type is byte 1, is sealed with the IKE SA's
///   real SK_ei/SK_ai into an IKE_AUTH request (message ID 1) and delivered;
/// - 2: after the same IKE_SA_INIT, the rest of the input is delivered as a message whose
///   header is patched to the SA's SPIs and message ID 1 (unencrypted garbage after that);
/// - 3: after a whole genuine exchange (IKE SA and first child SA established), records of
///   `exchange (1, see exchange_of) | first type (1) | len (2) | chain` are sealed with the
///   real keys into requests with message IDs from 2 on (the next one after each answered
///   request) and delivered: CREATE_CHILD_SA, INFORMATIONAL and the rest, authentic.
///
/// Invariants: see `deliver` (with only responses sent); and in modes 0-2 no IKE SA is ever
/// established, since the input never knows the PSK-derived AUTH (the DH secret is fresh on
/// each run).
pub fn ike_responder(data: &[u8]) -> Outcome {
    let mut inp = Input(data);
    let mode = inp.u8() % 4;
    let mut o = Outcome::default();
    let now = Duration::ZERO;
    match mode {
        0 => {
            let mut resp = responder();
            let mut now = now;
            while !inp.is_empty() {
                let flags = inp.u8();
                let len = usize::from(inp.u16());
                let d = inp.bytes(len);
                let socket = if flags & 1 == 0 {
                    WireSocket::Ike
                } else {
                    WireSocket::Natt
                };
                let r = deliver(&mut resp, now, Peer::A, socket, d, true);
                assert!(!r.established);
                count(&mut o, &r);
                now += Duration::from_secs(1);
                resp.handle_timeout(now);
            }
        }
        1 | 2 => {
            let mut resp = responder();
            let mut init = initiator();
            connect(&mut init, now);
            let req = init.poll_transmit(now).expect("IKE_SA_INIT request");
            let r = deliver(
                &mut resp,
                now,
                Peer::A,
                WireSocket::Ike,
                &req.contents,
                true,
            );
            let reply = r.answers.first().expect("IKE_SA_INIT answered");
            let reply = MessageRepr::parse(reply).expect("parsed above");
            assert_eq!(reply.exchange, ExchangeType::IKE_SA_INIT);
            let sa = resp
                .summaries()
                .first()
                .map(|s| s.id)
                .expect("a half-open SA");
            let rec = resp.ike_key_record(sa).expect("key log on").clone();
            let message = if mode == 1 {
                let first = PayloadType(inp.u8());
                let Some(m) = seal_chain(
                    &rec,
                    true,
                    ExchangeType::IKE_AUTH,
                    false,
                    1,
                    first,
                    inp.rest(),
                ) else {
                    return o;
                };
                m
            } else {
                patch_header(inp.rest(), rec.spi_i, rec.spi_r, Flags::INITIATOR, 1)
            };
            let r = deliver(&mut resp, now, Peer::A, WireSocket::Ike, &message, true);
            assert!(!r.established, "an IKE SA was established without the PSK");
            count(&mut o, &r);
        }
        _ => {
            let (_init, mut resp) = established_pair(now);
            let sa = resp.summaries()[0].id;
            let rec = resp.ike_key_record(sa).expect("key log on").clone();
            let mut message_id = 2;
            while !inp.is_empty() {
                let exchange = exchange_of(inp.u8());
                let first = PayloadType(inp.u8());
                let len = usize::from(inp.u16());
                let chain = inp.bytes(len);
                let Some(m) = seal_chain(&rec, true, exchange, false, message_id, first, chain)
                else {
                    continue;
                };
                let r = deliver(&mut resp, now, Peer::A, WireSocket::Ike, &m, true);
                if !r.answers.is_empty() {
                    message_id += 1;
                }
                count(&mut o, &r);
            }
        }
    }
    o
}

/// `ike_initiator`: an [`IkeEndpoint`] that initiated (host a, seed 1) receiving answers.
/// Byte 0 picks the mode (`% 3`):
/// - 0: after `connect`, records of `flags (1) | len (2) | bytes` are delivered from the
///   responder's address (flag bit 0: NAT-T socket, with the marker added; bit 1: the header
///   is patched into an IKE_SA_INIT-time response to our SPI, message ID 0);
/// - 1: after a genuine IKE_SA_INIT exchange, the initiator has sent IKE_AUTH; the rest of the
///   input, a chain whose first type is byte 1, is sealed with the real SK_er/SK_ar into the
///   IKE_AUTH response and delivered;
/// - 2: after a whole genuine exchange, byte 1 picks the request the initiator makes
///   (CREATE_CHILD_SA, liveness check, IKE SA rekey, child delete, IKE SA delete, child
///   rekey), and the rest, a chain whose first type is byte 2, is sealed with the real
///   responder keys into its response and delivered.
///
/// Invariants: see `deliver`; and in modes 0 and 1 no IKE SA is established.
pub fn ike_initiator(data: &[u8]) -> Outcome {
    let mut inp = Input(data);
    let mode = inp.u8() % 3;
    let mut o = Outcome::default();
    let now = Duration::ZERO;
    match mode {
        0 => {
            let mut init = initiator();
            connect(&mut init, now);
            let _request = init.poll_transmit(now).expect("IKE_SA_INIT request");
            let (spi_i, _) = init.spis(init.summaries()[0].id).expect("our SA");
            while !inp.is_empty() {
                let flags = inp.u8();
                let len = usize::from(inp.u16());
                let mut d = inp.bytes(len).to_vec();
                if flags & 2 != 0 {
                    let spi_r = u64::from(flags) << 32 | 0x5eed;
                    d = patch_header(&d, spi_i, spi_r, Flags::RESPONSE, 0);
                }
                let socket = if flags & 1 == 0 {
                    WireSocket::Ike
                } else {
                    let mut m = Vec::new();
                    natt::emit_ike(&d, &mut m);
                    d = m;
                    WireSocket::Natt
                };
                let r = deliver(&mut init, now, Peer::B, socket, &d, false);
                assert!(!r.established);
                count(&mut o, &r);
            }
        }
        1 => {
            let mut init = initiator();
            let mut resp = responder();
            connect(&mut init, now);
            let req = init.poll_transmit(now).expect("IKE_SA_INIT request");
            resp.handle_datagram(now, addr(A_IKE), req.socket, &req.contents);
            let reply = resp.poll_transmit(now).expect("IKE_SA_INIT answered");
            let r = deliver(
                &mut init,
                now,
                Peer::B,
                WireSocket::Ike,
                &reply.contents,
                false,
            );
            assert_eq!(r.answers.len(), 1, "the initiator goes on with IKE_AUTH");
            let sa = resp.summaries()[0].id;
            let rec = resp.ike_key_record(sa).expect("key log on").clone();
            let first = PayloadType(inp.u8());
            let Some(m) = seal_chain(
                &rec,
                false,
                ExchangeType::IKE_AUTH,
                true,
                1,
                first,
                inp.rest(),
            ) else {
                return o;
            };
            let r = deliver(&mut init, now, Peer::B, WireSocket::Ike, &m, false);
            assert!(!r.established, "an IKE SA was established without the PSK");
            count(&mut o, &r);
        }
        _ => {
            let (mut init, resp) = established_pair(now);
            let sa = init.summaries()[0].id;
            let child = init.summaries()[0].children.first().map(|c| c.0);
            let asked = match (inp.u8() % 6, child) {
                (0, _) => init.create_child(now, sa),
                (1, _) => init.check_liveness(now, sa),
                (2, _) => init.rekey_ike_sa(now, sa),
                (3, Some(c)) => init.delete_child(now, sa, c),
                (4, _) => init.delete_ike_sa(now, sa),
                (_, Some(c)) => init.rekey_child(now, sa, c),
                (_, None) => init.check_liveness(now, sa),
            };
            asked.expect("a request on an established SA");
            let request = init.poll_transmit(now).expect("the request");
            let h = Header::parse(&request.contents).expect("our request parses");
            let rsa = resp.summaries()[0].id;
            let rec = resp.ike_key_record(rsa).expect("key log on").clone();
            let first = PayloadType(inp.u8());
            let Some(m) = seal_chain(
                &rec,
                false,
                h.exchange,
                true,
                h.message_id,
                first,
                inp.rest(),
            ) else {
                return o;
            };
            let r = deliver(&mut init, now, Peer::B, WireSocket::Ike, &m, false);
            count(&mut o, &r);
        }
    }
    o
}
