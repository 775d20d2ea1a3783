//! Property tests of the IPsec wire parsers (issue 8, "Bad input"): `parse(emit(x)) == x` for
//! IKE payloads, payload chains, headers and messages and for ESP headers, and a cross-check
//! with an independent parser, rusticata's `ipsec-parser` 0.7, which must read every generated
//! message the way we do: exchange type, SPIs, flags, message id, the payload types in order
//! (and each generic header's "next payload" and critical bit), notify types, protocols and
//! SPIs, SA proposals with their transforms and attributes, KE, ID, CERT, CERTREQ, nonce,
//! traffic selectors, and the SK payload's bytes.
//!
//! `ipsec-parser` 0.7 has quirks the cross-check works around, each noted where it matters: it
//! counts the generic header twice when it measures Notify data and Delete SPIs (4 bytes short)
//! and Vendor IDs (8 bytes short; a Vendor ID under 8 bytes is an error), reads the AUTH
//! reserved bytes as data, and wants at least one proposal and one traffic selector.
//!
//! proptest prints the failing case and its seed (and saves it under `proptest-regressions/`).

use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use wsock_ipsec::esp::{EspHeader, EspSuite, Integrity, OutboundSa, SaConfig};
use wsock_ipsec::ike::crypto::{SkCrypter, SkSuite};
use wsock_ipsec::ike::wire::*;
use wsock_ipsec::{natt, IpsecError};

fn bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), min..max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        3 => (0u16..0x8000, any::<u16>()).prop_map(|(kind, value)| Attribute::Tv { kind, value }),
        1 => (0u16..0x8000, bytes(0, 12)).prop_map(|(kind, value)| Attribute::Tlv { kind, value }),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        prop_oneof![1u8..=5, any::<u8>()],
        any::<u16>(),
        prop::collection::vec(attribute(), 0..3),
    )
        .prop_map(|(k, id, attributes)| Transform {
            kind: TransformType(k),
            id,
            attributes,
        })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        prop_oneof![0u8..=3, any::<u8>()],
        prop_oneof![Just(0usize), Just(4), Just(8), 0usize..12],
        prop::collection::vec(transform(), 0..7),
        any::<u8>(),
    )
        .prop_map(|(number, proto, spi_len, transforms, fill)| Proposal {
            number,
            protocol: ProtocolId(proto),
            spi: vec![fill; spi_len],
            transforms,
        })
}

fn selector() -> impl Strategy<Value = TrafficSelector> {
    let v4 = (any::<u32>(), any::<u32>())
        .prop_map(|(a, b)| AddressRange::V4(Ipv4Addr::from(a), Ipv4Addr::from(b)));
    let v6 = (any::<u128>(), any::<u128>())
        .prop_map(|(a, b)| AddressRange::V6(Ipv6Addr::from(a), Ipv6Addr::from(b)));
    (any::<u8>(), any::<u16>(), any::<u16>(), prop_oneof![v4, v6]).prop_map(
        |(ip_protocol, start_port, end_port, addresses)| TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            addresses,
        },
    )
}

/// Payload types with no representation of their own (CP, EAP, unassigned, private use).
fn unknown_kind() -> impl Strategy<Value = PayloadType> {
    prop_oneof![Just(47u8), Just(48u8), 49u8..=255, 1u8..33]
        .prop_filter("2 and 3 name substructures", |k| !(2..=3).contains(k))
        .prop_map(PayloadType)
}

/// Any payload but SK. With `compat`, only shapes `ipsec-parser` 0.7 reads (see the module
/// documentation): at least one traffic selector, Vendor ID bodies of 8 bytes or more, and
/// Delete bodies of 8 bytes or more.
fn payload(compat: bool) -> impl Strategy<Value = PayloadRepr> {
    let min_ts = usize::from(compat);
    let min_vid = if compat { 8 } else { 0 };
    prop_oneof![
        prop::collection::vec(proposal(), 1..4).prop_map(PayloadRepr::Sa),
        (any::<u16>(), bytes(0, 133)).prop_map(|(group, data)| PayloadRepr::Ke { group, data }),
        (any::<u8>(), bytes(0, 40)).prop_map(|(t, data)| PayloadRepr::IdI(Identification {
            id_type: IdType(t),
            data
        })),
        (any::<u8>(), bytes(0, 40)).prop_map(|(t, data)| PayloadRepr::IdR(Identification {
            id_type: IdType(t),
            data
        })),
        (any::<u8>(), bytes(0, 300)).prop_map(|(e, data)| PayloadRepr::Cert {
            encoding: CertEncoding(e),
            data
        }),
        (any::<u8>(), bytes(0, 60)).prop_map(|(e, data)| PayloadRepr::CertReq {
            encoding: CertEncoding(e),
            data
        }),
        (any::<u8>(), bytes(0, 100)).prop_map(|(m, data)| PayloadRepr::Auth {
            method: AuthMethod(m),
            data
        }),
        bytes(0, 256).prop_map(PayloadRepr::Nonce),
        (
            any::<u8>(),
            prop_oneof![Just(0usize), Just(4), Just(8), 0usize..17],
            any::<u16>(),
            bytes(0, 40)
        )
            .prop_map(|(p, spi_len, k, data)| {
                PayloadRepr::Notify(Notify {
                    protocol: ProtocolId(p),
                    spi: (0..spi_len).map(|i| i as u8 ^ 0x5c).collect(),
                    kind: NotifyType(k),
                    data,
                })
            }),
        (any::<u8>(), 1u8..17, 0usize..6).prop_map(move |(p, size, n)| {
            let size = usize::from(size);
            // ipsec-parser wants a body of 8 bytes or more (4 of them SPIs).
            let n = if compat {
                n.max(4usize.div_ceil(size))
            } else {
                n
            };
            PayloadRepr::Delete(Delete {
                protocol: ProtocolId(p),
                spi_size: size as u8,
                spis: (0..n).map(|i| vec![i as u8; size]).collect(),
            })
        }),
        bytes(min_vid, 40).prop_map(PayloadRepr::VendorId),
        prop::collection::vec(selector(), min_ts..4).prop_map(PayloadRepr::TsI),
        prop::collection::vec(selector(), min_ts..4).prop_map(PayloadRepr::TsR),
        (unknown_kind(), any::<bool>(), bytes(0, 30)).prop_map(|(kind, critical, data)| {
            PayloadRepr::Unknown {
                kind,
                critical,
                data,
            }
        }),
    ]
    .prop_filter("ipsec-parser needs a Delete body of 8 bytes", move |p| {
        !compat || !matches!(p, PayloadRepr::Delete(d) if d.spis.is_empty())
    })
}

/// A payload chain, an SK payload last in a third of the cases.
fn chain(compat: bool) -> impl Strategy<Value = Vec<PayloadRepr>> {
    (
        prop::collection::vec(payload(compat), 0..7),
        prop::option::weighted(0.33, (any::<u8>(), bytes(0, 80))),
    )
        .prop_map(|(mut payloads, sk)| {
            if let Some((first, data)) = sk {
                payloads.push(PayloadRepr::Encrypted {
                    first_inner: PayloadType(first),
                    data,
                });
            }
            payloads
        })
}

fn message(compat: bool) -> impl Strategy<Value = MessageRepr> {
    (
        any::<u64>(),
        any::<u64>(),
        prop_oneof![34u8..=37, any::<u8>()],
        any::<u8>(),
        any::<u32>(),
        chain(compat),
    )
        .prop_map(
            |(spi_i, spi_r, ex, flags, message_id, payloads)| MessageRepr {
                spi_i,
                spi_r,
                exchange: ExchangeType(ex),
                flags: Flags(flags),
                message_id,
                payloads,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `parse(emit(x)) == x` for messages, and the emitted form is canonical: emitting what was
    /// parsed gives the same bytes, whose length field is the datagram's.
    #[test]
    fn message_parse_inverts_emit(msg in message(false)) {
        let bytes = msg.emit().unwrap();
        let parsed = MessageRepr::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &msg);
        prop_assert_eq!(parsed.emit().unwrap(), bytes.clone());
        let h = Header::parse(&bytes).unwrap();
        prop_assert_eq!(h.length as usize, bytes.len());
        prop_assert_eq!((h.major_version, h.minor_version), (2, 0));
        prop_assert_eq!(h.next_payload, msg.payloads.first().map_or(PayloadType::NONE, |p| p.kind()));
    }

    /// `parse(emit(x)) == x` for bare payload chains (the content of an SK payload), and the
    /// zero-copy walk finds each payload where the emitter put it.
    #[test]
    fn chain_parse_inverts_emit(payloads in chain(false)) {
        let mut out = vec![0xee; 3]; // emitting appends: start at an offset
        let first = emit_payload_chain(&payloads, &mut out).unwrap();
        let body = &out[3..];
        prop_assert_eq!(parse_payload_chain(first, body).unwrap(), payloads.clone());
        let mut offset = 0;
        for (raw, p) in PayloadIter::new(first, body).zip(&payloads) {
            let raw = raw.unwrap();
            prop_assert_eq!(raw.offset, offset);
            prop_assert_eq!(raw.kind, p.kind());
            prop_assert_eq!(&PayloadRepr::parse(&raw).unwrap(), p);
            offset += GENERIC_HEADER_LEN + raw.body.len();
        }
        prop_assert_eq!(offset, body.len());
    }

    /// Each payload alone: `parse(emit(x)) == x` whatever "next payload" it is emitted with.
    #[test]
    fn payload_parse_inverts_emit(p in payload(false), next in any::<u8>()) {
        let mut out = Vec::new();
        p.emit(PayloadType(next), &mut out).unwrap();
        prop_assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), out.len());
        prop_assert_eq!(out[0], next);
        let raw = RawPayload {
            kind: p.kind(),
            critical: out[1] & 0x80 != 0,
            next: PayloadType(out[0]),
            body: &out[GENERIC_HEADER_LEN..],
            offset: 0,
        };
        prop_assert_eq!(PayloadRepr::parse(&raw).unwrap(), p);
    }

    /// The fixed header: `parse(emit(h)) == h`, byte-exact; any other major version is
    /// refused with `InvalidMajorVersion`, and a length below 28 with `InvalidIkeHeader`.
    #[test]
    fn header_parse_inverts_emit(
        spi_i in any::<u64>(), spi_r in any::<u64>(), next in any::<u8>(), minor in 0u8..16,
        ex in any::<u8>(), flags in any::<u8>(), mid in any::<u32>(), length in 28u32..,
        other_major in any::<u8>(),
    ) {
        let h = Header {
            spi_i, spi_r, next_payload: PayloadType(next), major_version: 2,
            minor_version: minor, exchange: ExchangeType(ex), flags: Flags(flags),
            message_id: mid, length,
        };
        let mut b = [0u8; HEADER_LEN];
        h.emit(&mut b).unwrap();
        prop_assert_eq!(Header::parse(&b).unwrap(), h);
        let (_, theirs) = ipsec_parser::parse_ikev2_header(&b).unwrap();
        prop_assert_eq!((theirs.init_spi, theirs.resp_spi, theirs.msg_id, theirs.length), (spi_i, spi_r, mid, length));
        prop_assert_eq!((theirs.exch_type.0, theirs.flags, theirs.next_payload.0), (ex, flags, next));
        prop_assert_eq!((theirs.maj_ver, theirs.min_ver), (2, minor));
        let major = other_major >> 4;
        b[17] = other_major;
        if major != 2 {
            prop_assert_eq!(Header::parse(&b).unwrap_err(), IpsecError::InvalidMajorVersion(major));
        }
        b[17] = 0x20;
        b[24..28].copy_from_slice(&(length % 28).to_be_bytes());
        prop_assert!(matches!(Header::parse(&b), Err(IpsecError::InvalidIkeHeader(_))));
    }

    /// rusticata's ipsec-parser reads every generated message the way we do.
    #[test]
    fn ipsec_parser_reads_generated_messages_alike(msg in message(true)) {
        let bytes = msg.emit().unwrap();
        let (rest, (hdr, list)) = ipsec_parser::parse_ikev2_message(&bytes)
            .map_err(|e| TestCaseError::fail(format!("ipsec-parser refused our message: {e:?}")))?;
        prop_assert!(rest.is_empty());
        prop_assert_eq!(hdr.init_spi, msg.spi_i);
        prop_assert_eq!(hdr.resp_spi, msg.spi_r);
        prop_assert_eq!(hdr.exch_type.0, msg.exchange.0);
        prop_assert_eq!(hdr.flags, msg.flags.0);
        prop_assert_eq!(hdr.msg_id, msg.message_id);
        prop_assert_eq!(hdr.length as usize, bytes.len());
        prop_assert_eq!((hdr.maj_ver, hdr.min_ver), (2, 0));
        let list = list.map_err(|e| TestCaseError::fail(format!("ipsec-parser refused our payloads: {e:?}")))?;
        // Its first element is a placeholder carrying the header's "next payload".
        prop_assert_eq!(list.len(), msg.payloads.len() + 1);
        prop_assert_eq!(list[0].hdr.next_payload_type.0, msg.payloads.first().map_or(0, |p| p.kind().0));
        for (i, (theirs, ours)) in list[1..].iter().zip(&msg.payloads).enumerate() {
            let next = match (ours, msg.payloads.get(i + 1)) {
                (PayloadRepr::Encrypted { first_inner, .. }, _) => first_inner.0,
                (_, Some(n)) => n.kind().0,
                (_, None) => 0,
            };
            prop_assert_eq!(theirs.hdr.next_payload_type.0, next, "next payload of #{}", i);
            prop_assert_eq!(
                theirs.hdr.critical,
                matches!(ours, PayloadRepr::Unknown { critical: true, .. })
            );
            compare_payload(&theirs.content, ours)?;
        }
    }

    /// ESP headers as the data path emits them: our parser, ipsec-parser and the NAT-T
    /// demultiplexer all read the SPI and the sequence numbers 1, 2, 3... of sealed packets.
    #[test]
    fn esp_header_parse_reads_what_seal_emits(
        suite in (0usize..5).prop_map(|i| [
            EspSuite::AesGcm16 { key_bits: 128 },
            EspSuite::ChaCha20Poly1305,
            EspSuite::NullAuthAesGmac { key_bits: 256 },
            EspSuite::Null(Integrity::HmacSha256_128),
            EspSuite::AesCbc { key_bits: 128, integrity: Integrity::HmacSha1_96 },
        ][i]),
        spi in 256u32..,
        payloads in prop::collection::vec(bytes(0, 200), 1..6),
    ) {
        let cfg = SaConfig::new(spi, suite);
        let e = vec![7u8; suite.encr_key_len()];
        let a = vec![9u8; suite.integ_key_len()];
        let mut tx = OutboundSa::new(&cfg, &e, &a, Duration::ZERO).unwrap();
        for (i, p) in payloads.iter().enumerate() {
            let mut packet = Vec::new();
            tx.seal(Duration::ZERO, 17, p, &mut packet).unwrap();
            let seq = i as u32 + 1;
            prop_assert_eq!(EspHeader::parse(&packet).unwrap(), EspHeader { spi, seq_lo: seq });
            prop_assert_eq!(packet.len(), suite.packet_len(p.len()));
            let (_, theirs) = ipsec_parser::parse_esp_header(&packet).unwrap();
            prop_assert_eq!(theirs.spi_index, &spi.to_be_bytes()[..]);
            prop_assert_eq!(theirs.seq, seq);
            prop_assert_eq!(theirs.data, &packet[8..]);
            prop_assert_eq!(
                natt::classify(&packet).unwrap(),
                natt::NattDatagram::Esp { spi, packet: &packet }
            );
            prop_assert!(matches!(
                ipsec_parser::parse_esp_encapsulated(&packet),
                Ok((_, ipsec_parser::ESPData::ESP(_)))
            ));
        }
    }

    /// Arbitrary 8+ byte ESP headers: `parse` reads exactly the two fields (SPI 0 refused).
    #[test]
    fn esp_header_fields(spi in any::<u32>(), seq in any::<u32>(), tail in bytes(0, 40)) {
        let mut p = spi.to_be_bytes().to_vec();
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&tail);
        match EspHeader::parse(&p) {
            Ok(h) => prop_assert_eq!((h.spi, h.seq_lo), (spi, seq)),
            Err(e) => {
                prop_assert_eq!(spi, 0);
                prop_assert!(matches!(e, IpsecError::InvalidPacket(_)));
            }
        }
        for n in 0..8 {
            prop_assert!(EspHeader::parse(&p[..n]).is_err());
        }
    }

    /// IKE on the NAT-T socket: the non-ESP marker is read the same way by ipsec-parser.
    #[test]
    fn natt_ike_reads_alike(msg in message(false)) {
        let ike = msg.emit().unwrap();
        let mut d = Vec::new();
        natt::emit_ike(&ike, &mut d);
        prop_assert_eq!(natt::classify(&d).unwrap(), natt::NattDatagram::Ike(&ike));
        // ipsec-parser reads the marker as the first half of an IKE SPI: it looks at the
        // datagram as IKE exactly when its first 4 bytes are zero.
        let theirs_ike = matches!(
            ipsec_parser::parse_esp_encapsulated(&d),
            Ok((_, ipsec_parser::ESPData::IKE(_)))
        );
        prop_assert!(theirs_ike);
    }
}

fn sk_suite() -> impl Strategy<Value = SkSuite> {
    (0usize..5).prop_map(|i| {
        [
            SkSuite::AesGcm16 { key_bits: 128 },
            SkSuite::AesGcm16 { key_bits: 256 },
            SkSuite::ChaCha20Poly1305,
            SkSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
            SkSuite::AesCbc {
                key_bits: 256,
                integrity: Integrity::HmacSha1_96,
            },
        ][i]
    })
}

/// An IKE_AUTH-like message around an SK payload that protects `inner`.
fn sealed(
    suite: SkSuite,
    key_seed: u8,
    outer: &MessageRepr,
    inner: &[PayloadRepr],
) -> (SkCrypter, Vec<u8>) {
    let e: Vec<u8> = (0..suite.encr_key_len())
        .map(|i| (i as u8) ^ key_seed)
        .collect();
    let a: Vec<u8> = (0..suite.integ_key_len())
        .map(|i| (i as u8).wrapping_mul(3) ^ key_seed)
        .collect();
    let mut c = SkCrypter::new(suite, &e, &a).unwrap();
    let bytes = c.seal(outer, inner).unwrap();
    (c, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The SK payload: `open(seal(x)) == x` for the inner chain and the outer header in every
    /// suite; the sealed message is a well-formed IKE message (ours and ipsec-parser's reading,
    /// the SK payload last, its "next payload" the first inner type); any flipped bit anywhere
    /// makes `open` fail.
    #[test]
    fn sk_open_inverts_seal(
        suite in sk_suite(),
        key_seed in any::<u8>(),
        msg in message(true),
        inner in prop::collection::vec(payload(false), 0..6),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let outer = MessageRepr {
            payloads: msg.payloads.into_iter().filter(|p| !matches!(p, PayloadRepr::Encrypted { .. })).collect(),
            ..msg
        };
        let (c, bytes) = sealed(suite, key_seed, &outer, &inner);
        let (o, i) = c.open(&bytes).unwrap();
        prop_assert_eq!(&o, &outer);
        prop_assert_eq!(&i, &inner);
        let parsed = MessageRepr::parse(&bytes).unwrap();
        let Some(PayloadRepr::Encrypted { first_inner, data }) = parsed.payloads.last() else {
            return Err(TestCaseError::fail("no SK payload last"));
        };
        prop_assert_eq!(*first_inner, inner.first().map_or(PayloadType::NONE, |p| p.kind()));
        prop_assert!(data.len() > suite.iv_len() + suite.icv_len(), "IV, pad length and ICV at least");
        let (rest, (_, list)) = ipsec_parser::parse_ikev2_message(&bytes).unwrap();
        prop_assert!(rest.is_empty());
        let list = list.map_err(|e| TestCaseError::fail(format!("ipsec-parser: {e:?}")))?;
        prop_assert_eq!(list.len(), outer.payloads.len() + 2);
        let is_sk = matches!(
            list.last().map(|p| &p.content),
            Some(ipsec_parser::IkeV2PayloadContent::Encrypted(_))
        );
        prop_assert!(is_sk);
        let mut tampered = bytes.clone();
        let i = flip.index(tampered.len());
        tampered[i] ^= 1 << bit;
        prop_assert!(c.open(&tampered).is_err(), "a flipped bit at {} went unnoticed", i);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Tunnel-mode inner packets: `InnerPacket::parse` reads back what `ipv4_packet` and
    /// `ipv6_packet` emit (addresses, protocol, ports, transport offset), TFC padding after the
    /// packet excluded.
    #[test]
    fn inner_packet_parse_inverts_builders(
        is_v6 in any::<bool>(),
        src in any::<u128>(),
        dst in any::<u128>(),
        protocol in prop_oneof![Just(6u8), Just(17), Just(1), Just(58), Just(132), any::<u8>()],
        ttl in any::<u8>(),
        id in any::<u16>(),
        payload in bytes(0, 64),
        padding in bytes(0, 16),
    ) {
        use std::net::IpAddr;
        use wsock_ipsec::esp::tunnel::{ipv4_packet, ipv6_packet, next_header_for, InnerPacket};
        // IPv6 extension headers would make the payload part of the header chain.
        prop_assume!(!(is_v6 && [0u8, 43, 44, 60, 135].contains(&protocol)));
        let (nh, built, s, d, off) = if is_v6 {
            let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            (41, ipv6_packet(s, d, protocol, ttl, &payload).unwrap(), IpAddr::V6(s), IpAddr::V6(d), 40)
        } else {
            let (s, d) = (Ipv4Addr::from(src as u32), Ipv4Addr::from(dst as u32));
            (4, ipv4_packet(s, d, protocol, ttl, id, &payload).unwrap(), IpAddr::V4(s), IpAddr::V4(d), 20)
        };
        prop_assert_eq!(next_header_for(&built), Ok(nh));
        let mut padded = built.clone();
        padded.extend_from_slice(&padding);
        let p = InnerPacket::parse(nh, &padded).unwrap();
        prop_assert_eq!(p.packet, &built[..]);
        prop_assert_eq!((p.src, p.dst, p.protocol, p.transport_offset), (s, d, protocol, off));
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
        prop_assert_eq!((p.src_port, p.dst_port), ports);
        // The other version's Next Header is refused.
        let other = if is_v6 { 4 } else { 41 };
        prop_assert!(InnerPacket::parse(other, &built).is_err());
    }
}

/// Compares one payload as ipsec-parser read it with ours.
fn compare_payload(
    theirs: &ipsec_parser::IkeV2PayloadContent<'_>,
    ours: &PayloadRepr,
) -> Result<(), TestCaseError> {
    use ipsec_parser::IkeV2PayloadContent as C;
    match (theirs, ours) {
        (C::SA(props), PayloadRepr::Sa(ps)) => {
            prop_assert_eq!(props.len(), ps.len());
            for (i, (t, o)) in props.iter().zip(ps).enumerate() {
                let last = if i + 1 == ps.len() { 0 } else { 2 };
                prop_assert_eq!(t.last, last);
                prop_assert_eq!(t.proposal_num, o.number);
                prop_assert_eq!(t.protocol_id.0, o.protocol.0);
                prop_assert_eq!(t.spi.unwrap_or(&[]), &o.spi[..]);
                prop_assert_eq!(usize::from(t.num_transforms), o.transforms.len());
                prop_assert_eq!(t.transforms.len(), o.transforms.len());
                for (j, (tt, ot)) in t.transforms.iter().zip(&o.transforms).enumerate() {
                    let tlast = if j + 1 == o.transforms.len() { 0 } else { 3 };
                    prop_assert_eq!(tt.last, tlast);
                    prop_assert_eq!(tt.transform_type.0, ot.kind.0);
                    prop_assert_eq!(tt.transform_id, ot.id);
                    let mut attrs = Vec::new();
                    for a in &ot.attributes {
                        match a {
                            Attribute::Tv { kind, value } => {
                                attrs.extend_from_slice(&(kind | 0x8000).to_be_bytes());
                                attrs.extend_from_slice(&value.to_be_bytes());
                            }
                            Attribute::Tlv { kind, value } => {
                                attrs.extend_from_slice(&kind.to_be_bytes());
                                attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
                                attrs.extend_from_slice(value);
                            }
                        }
                    }
                    prop_assert_eq!(tt.attributes.unwrap_or(&[]), &attrs[..]);
                }
            }
        }
        (C::KE(k), PayloadRepr::Ke { group, data }) => {
            prop_assert_eq!(k.dh_group.0, *group);
            prop_assert_eq!(k.kex_data, &data[..]);
        }
        (C::IDi(t), PayloadRepr::IdI(o)) | (C::IDr(t), PayloadRepr::IdR(o)) => {
            prop_assert_eq!(t.id_type.0, o.id_type.0);
            prop_assert_eq!(t.ident_data, &o.data[..]);
        }
        (C::Certificate(c), PayloadRepr::Cert { encoding, data }) => {
            prop_assert_eq!(c.cert_encoding.0, encoding.0);
            prop_assert_eq!(c.cert_data, &data[..]);
        }
        (C::CertificateRequest(c), PayloadRepr::CertReq { encoding, data }) => {
            prop_assert_eq!(c.cert_encoding.0, encoding.0);
            prop_assert_eq!(c.ca_data, &data[..]);
        }
        (C::Authentication(a), PayloadRepr::Auth { method, data }) => {
            // ipsec-parser 0.7 does not skip the 3 reserved bytes: it reads them (zero, as we
            // send them) as the start of the data and drops the last three data bytes.
            prop_assert_eq!(a.auth_method.0, method.0);
            let mut expect = vec![0u8; 3];
            expect.extend_from_slice(data);
            expect.truncate(data.len());
            prop_assert_eq!(a.auth_data, &expect[..]);
        }
        (C::Nonce(n), PayloadRepr::Nonce(data)) => prop_assert_eq!(n.nonce_data, &data[..]),
        (C::Notify(n), PayloadRepr::Notify(o)) => {
            prop_assert_eq!(n.notify_type.0, o.kind.0);
            prop_assert_eq!(n.protocol_id.0, o.protocol.0);
            prop_assert_eq!(usize::from(n.spi_size), o.spi.len());
            prop_assert_eq!(n.spi.unwrap_or(&[]), &o.spi[..]);
            // ipsec-parser 0.7 reads the data 4 bytes short (see the module documentation).
            let theirs = n.notify_data.unwrap_or(&[]);
            prop_assert_eq!(theirs, &o.data[..o.data.len().saturating_sub(4)]);
        }
        (C::Delete(d), PayloadRepr::Delete(o)) => {
            prop_assert_eq!(d.protocol_id.0, o.protocol.0);
            prop_assert_eq!(d.spi_size, o.spi_size);
            prop_assert_eq!(usize::from(d.num_spi), o.spis.len());
            let all: Vec<u8> = o.spis.concat();
            prop_assert_eq!(d.spi, &all[..all.len() - 4]);
        }
        (C::VendorID(v), PayloadRepr::VendorId(data)) => {
            // Measured 8 bytes short: the generic header counted twice.
            prop_assert_eq!(v.vendor_id, &data[..data.len() - 8]);
        }
        (C::TSi(t), PayloadRepr::TsI(o)) | (C::TSr(t), PayloadRepr::TsR(o)) => {
            prop_assert_eq!(usize::from(t.num_ts), o.len());
            prop_assert_eq!(t.ts.len(), o.len());
            for (tt, ot) in t.ts.iter().zip(o) {
                prop_assert_eq!(tt.ip_proto_id, ot.ip_protocol);
                prop_assert_eq!((tt.start_port, tt.end_port), (ot.start_port, ot.end_port));
                let (ty, len, s, e) = match ot.addresses {
                    AddressRange::V4(s, e) => {
                        (7u8, 16u16, s.octets().to_vec(), e.octets().to_vec())
                    }
                    AddressRange::V6(s, e) => (8, 40, s.octets().to_vec(), e.octets().to_vec()),
                };
                prop_assert_eq!((tt.ts_type.0, tt.sel_length), (ty, len));
                prop_assert_eq!((tt.start_addr, tt.end_addr), (&s[..], &e[..]));
            }
        }
        (C::Encrypted(e), PayloadRepr::Encrypted { data, .. }) => prop_assert_eq!(e.0, &data[..]),
        (C::Unknown(u), PayloadRepr::Unknown { data, .. }) => prop_assert_eq!(*u, &data[..]),
        (t, o) => prop_assert!(
            false,
            "ipsec-parser read {:?} where we emitted {:?}",
            t,
            o.kind()
        ),
    }
    Ok(())
}
