//! Unit tests of the ESP SAs: known answers, every suite, replay, ESN, lifetimes.

use super::*;

const T0: Duration = Duration::ZERO;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn all_suites() -> Vec<EspSuite> {
    vec![
        EspSuite::AesGcm16 { key_bits: 128 },
        EspSuite::AesGcm16 { key_bits: 256 },
        EspSuite::ChaCha20Poly1305,
        EspSuite::NullAuthAesGmac { key_bits: 128 },
        EspSuite::NullAuthAesGmac { key_bits: 256 },
        EspSuite::Null(Integrity::HmacSha256_128),
        EspSuite::Null(Integrity::HmacSha1_96),
        EspSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha256_128,
        },
        EspSuite::AesCbc {
            key_bits: 256,
            integrity: Integrity::HmacSha1_96,
        },
    ]
}

fn keys(suite: EspSuite) -> (Vec<u8>, Vec<u8>) {
    let e = (0..suite.encr_key_len()).map(|i| i as u8 ^ 0x5a).collect();
    let a = (0..suite.integ_key_len()).map(|i| i as u8 ^ 0xa5).collect();
    (e, a)
}

fn pair(cfg: &SaConfig) -> (OutboundSa, InboundSa) {
    let (e, a) = keys(cfg.suite);
    (
        OutboundSa::new(cfg, &e, &a, T0).unwrap(),
        InboundSa::new(cfg, &e, &a, T0).unwrap(),
    )
}

/// RFC 7634 Appendix A: the ESP example (tunnel mode, inner ICMP echo), byte for byte.
#[test]
fn rfc7634_appendix_a_esp_example() {
    let keymat = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3");
    let iv = hex("1011121314151617");
    let inner = hex(
        "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10
         00073627 08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223
         2425262728292a2b2c2d2e2f3031323334353637",
    );
    assert_eq!(inner.len(), 84);
    let expected = [
        hex("01020304 00000005 1011121314151617"),
        hex(
            "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6
             14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3
             cbec163fac469b502773f6fb94e664da9165b82829f641e076aaa8266b7fb0f7
             b11b369907e1ad43",
        ),
    ]
    .concat();
    let crypto = EspCrypto::new(EspSuite::ChaCha20Poly1305, &keymat, &[]).unwrap();
    let mut buf = vec![0u8; 16];
    buf.extend_from_slice(&inner);
    crypto
        .seal_in_place(
            0x0102_0304,
            SeqInfo { seq: 5, esn: false },
            &iv,
            NEXT_HEADER_IPV4,
            &mut buf,
            0,
        )
        .unwrap();
    assert_eq!(buf, expected);

    // And the inbound SA opens it (the packet is sequence number 5).
    let mut cfg = SaConfig::new(0x0102_0304, EspSuite::ChaCha20Poly1305);
    cfg.mode = Mode::Tunnel;
    let mut rx = InboundSa::new(&cfg, &keymat, &[], T0).unwrap();
    let mut pkt = expected.clone();
    let o = rx.open(T0, &mut pkt).unwrap();
    assert_eq!((o.next_header, o.seq, &o.payload[..]), (4, 5, &inner[..]));
}

#[test]
fn every_suite_round_trips_and_detects_tampering() {
    for suite in all_suites() {
        for esn in [false, true] {
            let mut cfg = SaConfig::new(0xc001_0001, suite);
            cfg.esn = esn;
            let (mut tx, mut rx) = pair(&cfg);
            for len in [0usize, 1, 2, 3, 13, 14, 15, 16, 17, 100, 1400] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let mut pkt = Vec::new();
                let seq = tx.seal(T0, 6, &payload, &mut pkt).unwrap();
                assert_eq!(pkt.len(), suite.packet_len(len), "{suite:?}");
                assert_eq!(
                    (pkt.len() - suite.header_len() - suite.icv_len()) % suite.block_align(),
                    0
                );
                if suite.is_encrypting() && len >= 16 {
                    assert!(
                        !pkt.windows(16).any(|w| w == &payload[..16]),
                        "{suite:?} leaks"
                    );
                }
                // A flipped bit anywhere fails integrity (or the SPI check for the first bytes).
                for pos in [0, 5, 8, pkt.len() / 2, pkt.len() - 1] {
                    let mut bad = pkt.clone();
                    bad[pos] ^= 0x10;
                    let err = rx.open(T0, &mut bad).unwrap_err();
                    assert!(
                        matches!(
                            err,
                            IpsecError::IntegrityCheckFailed | IpsecError::BadSpi { .. }
                        ),
                        "{suite:?} pos {pos}: {err:?}"
                    );
                }
                let mut good = pkt.clone();
                let o = rx.open(T0, &mut good).unwrap();
                assert_eq!(
                    (o.next_header, o.seq, &o.payload[..]),
                    (6, seq, &payload[..])
                );
                // The same packet again is an authentic replay.
                let mut again = pkt.clone();
                assert_eq!(
                    rx.open(T0, &mut again).unwrap_err(),
                    IpsecError::ReplayCheckFailed { seq }
                );
            }
        }
    }
}

#[test]
fn padding_is_self_describing() {
    let cfg = SaConfig::new(0x1000, EspSuite::Null(Integrity::HmacSha256_128));
    let (mut tx, _) = pair(&cfg);
    let mut pkt = Vec::new();
    tx.seal(T0, 17, &[0xEE; 5], &mut pkt).unwrap();
    // 5 payload bytes + pad length + next header = 7, aligned to 4 -> one pad byte (1).
    assert_eq!(&pkt[8..16], &[0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 1, 1, 17]);
    let mut pkt = Vec::new();
    tx.seal(T0, 17, &[0xEE; 6], &mut pkt).unwrap();
    // 6 + 2 = 8: no padding at all.
    assert_eq!(&pkt[8..16], &[0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0, 17]);
    let cfg = SaConfig::new(
        0x1000,
        EspSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha1_96,
        },
    );
    let (e, a) = keys(cfg.suite);
    let crypto = EspCrypto::new(cfg.suite, &e, &a).unwrap();
    let mut buf = vec![0u8; 24];
    buf.extend_from_slice(&[0xEE; 5]);
    crypto
        .seal_in_place(
            0x1000,
            SeqInfo { seq: 1, esn: false },
            &[0; 16],
            6,
            &mut buf,
            0,
        )
        .unwrap();
    let mut rx = InboundSa::new(&cfg, &e, &a, T0).unwrap();
    let o = rx.open(T0, &mut buf).unwrap();
    assert_eq!(&o.payload[..], &[0xEE; 5]);
    // 5 + 2 = 7 -> 16: nine pad bytes 1..=9 precede the pad length 9.
    let n = buf.len() - 12;
    assert_eq!(&buf[24 + 5..n], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 6]);
}

#[test]
fn bad_padding_is_rejected_after_the_icv() {
    // Build a NULL packet whose padding is wrong but whose ICV is right: the crypto layer signs
    // what we give it, so forge the trailer before sealing by hand.
    let suite = EspSuite::Null(Integrity::HmacSha256_128);
    let (e, a) = keys(suite);
    let crypto = EspCrypto::new(suite, &e, &a).unwrap();
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(&[1, 2, 9, 9]); // payload [1,2], then "padding" 9, 9 ...
    crypto
        .seal_in_place(0x1000, SeqInfo { seq: 1, esn: false }, &[], 6, &mut buf, 0)
        .unwrap();
    // The sealer added 2 bytes of padding (1, 2) + pad len 2 + nh: trailer fine. Corrupt the
    // pad length inside the authenticated region and re-sign.
    let mut raw = buf[..buf.len() - 16].to_vec();
    let n = raw.len();
    raw[n - 2] = 4; // claims 4 pad bytes: 9, 9, 1, 2 -> not 1, 2, 3, 4
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &a), &raw);
    raw.extend_from_slice(&tag.as_ref()[..16]);
    let cfg = SaConfig::new(0x1000, suite);
    let (_, mut rx) = pair(&cfg);
    assert_eq!(
        rx.open(T0, &mut raw).unwrap_err(),
        IpsecError::InvalidPacket("padding is not 1, 2, 3, ...")
    );
    // The window did not move: the packet number is still acceptable.
    assert!(rx.window().check(1).is_ok());
}

#[test]
fn forged_packets_never_move_the_window() {
    let cfg = SaConfig::new(0x2000, EspSuite::AesGcm16 { key_bits: 128 });
    let (mut tx, mut rx) = pair(&cfg);
    let mut pkt = Vec::new();
    tx.seal(T0, 6, b"abc", &mut pkt).unwrap();
    let mut forged = pkt.clone();
    forged[4..8].copy_from_slice(&1000u32.to_be_bytes());
    assert_eq!(
        rx.open(T0, &mut forged).unwrap_err(),
        IpsecError::IntegrityCheckFailed
    );
    assert_eq!(rx.window().top(), 0);
    assert!(rx.open(T0, &mut pkt).is_ok());
}

#[test]
fn out_of_order_delivery_within_the_window() {
    let cfg = SaConfig::new(0x3000, EspSuite::ChaCha20Poly1305);
    let (mut tx, mut rx) = pair(&cfg);
    let pkts: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut p = Vec::new();
            tx.seal(T0, 17, &[i as u8; 10], &mut p).unwrap();
            p
        })
        .collect();
    let mut p = pkts[99].clone();
    rx.open(T0, &mut p).unwrap();
    // 99 - 64 = 35: packets with seq >= 37 (index >= 36) are still inside the window.
    let mut p = pkts[40].clone();
    assert!(rx.open(T0, &mut p).is_ok());
    let mut p = pkts[10].clone();
    assert_eq!(
        rx.open(T0, &mut p).unwrap_err(),
        IpsecError::ReplayCheckFailed { seq: 11 }
    );
}

#[test]
fn wrong_spi_and_short_packets() {
    let cfg = SaConfig::new(0x4000, EspSuite::AesGcm16 { key_bits: 256 });
    let (mut tx, mut rx) = pair(&cfg);
    let mut pkt = Vec::new();
    tx.seal(T0, 6, b"x", &mut pkt).unwrap();
    pkt[3] ^= 1;
    assert_eq!(
        rx.open(T0, &mut pkt).unwrap_err(),
        IpsecError::BadSpi { spi: 0x4001 }
    );
    for len in 0..40 {
        let mut short = vec![0u8; len];
        if len >= 4 {
            short[..4].copy_from_slice(&0x4000u32.to_be_bytes());
        }
        assert!(rx.open(T0, &mut short).is_err());
    }
    assert!(OutboundSa::new(&SaConfig::new(255, cfg.suite), &[0; 36], &[], T0).is_err());
    assert!(OutboundSa::new(&cfg, &[0; 35], &[], T0).is_err());
    assert!(OutboundSa::new(
        &SaConfig::new(0x4000, EspSuite::AesGcm16 { key_bits: 192 }),
        &[0; 28],
        &[],
        T0
    )
    .is_err());
}

#[test]
fn tunnel_mode_rejects_non_ip_payloads() {
    let mut cfg = SaConfig::new(0x5000, EspSuite::AesGcm16 { key_bits: 128 });
    cfg.mode = Mode::Tunnel;
    let (mut tx, mut rx) = pair(&cfg);
    let mut pkt = Vec::new();
    tx.seal(T0, 6, b"tcp", &mut pkt).unwrap();
    assert_eq!(
        rx.open(T0, &mut pkt).unwrap_err(),
        IpsecError::WrongSa { next_header: 6 }
    );
    let mut pkt = Vec::new();
    tx.seal(T0, NEXT_HEADER_IPV6, b"ip6", &mut pkt).unwrap();
    assert!(rx.open(T0, &mut pkt).is_ok());
}

#[test]
fn esn_carries_across_the_32_bit_boundary() {
    for suite in all_suites() {
        let mut cfg = SaConfig::new(0x6000, suite);
        cfg.esn = true;
        let (mut tx, mut rx) = pair(&cfg);
        tx.set_last_sequence(u64::from(u32::MAX) - 3);
        let mut seqs = Vec::new();
        for _ in 0..8 {
            let mut p = Vec::new();
            let seq = tx.seal(T0, 6, b"esn", &mut p).unwrap();
            // Only the low half is on the wire.
            assert_eq!(&p[4..8], &(seq as u32).to_be_bytes());
            // The receiver starts "late": jump its window as if it had seen the earlier packets.
            if seqs.is_empty() {
                rx.window.record(seq - 1);
            }
            let o = rx.open(T0, &mut p).unwrap();
            assert_eq!(o.seq, seq, "{suite:?}");
            seqs.push(seq);
        }
        assert!(seqs.last().unwrap() >> 32 == 1);
    }
}

#[test]
fn sequence_numbers_never_wrap_without_esn() {
    let cfg = SaConfig::new(0x7000, EspSuite::AesGcm16 { key_bits: 128 });
    let (mut tx, _) = pair(&cfg);
    tx.set_last_sequence(u64::from(u32::MAX) - 1);
    let mut p = Vec::new();
    assert_eq!(
        tx.seal(T0, 6, b"last", &mut p).unwrap(),
        u64::from(u32::MAX)
    );
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::SoftExpired(LifetimeKind::SequenceNumber))
    );
    let before = p.len();
    assert_eq!(
        tx.seal(T0, 6, b"one more", &mut p).unwrap_err(),
        IpsecError::SaLifetimeExpired(LifetimeKind::SequenceNumber)
    );
    assert_eq!(p.len(), before, "a failed seal leaves the output untouched");
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::HardExpired(LifetimeKind::SequenceNumber))
    );
    assert!(tx.is_expired());
    assert_eq!(
        IpsecError::SaLifetimeExpired(LifetimeKind::SequenceNumber).win32_code(),
        13911
    );
}

#[test]
fn lifetimes_fire_soft_then_hard() {
    let mut cfg = SaConfig::new(0x8000, EspSuite::AesGcm16 { key_bits: 128 });
    cfg.lifetime = Lifetime::with_hard(LifetimeLimits {
        time: Some(Duration::from_secs(100)),
        bytes: None,
        packets: Some(10),
    });
    let (mut tx, mut rx) = pair(&cfg);
    assert_eq!(tx.poll_timeout(), Some(Duration::from_secs(90)));
    let mut p = Vec::new();
    for i in 0..9 {
        p.clear();
        tx.seal(T0, 6, b"x", &mut p).unwrap();
        rx.open(T0, &mut p).unwrap();
        if i < 8 {
            assert_eq!(tx.poll_event(), None);
        }
    }
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::SoftExpired(LifetimeKind::Packets))
    );
    assert_eq!(
        rx.poll_event(),
        Some(SaEvent::SoftExpired(LifetimeKind::Packets))
    );
    p.clear();
    tx.seal(T0, 6, b"x", &mut p).unwrap(); // the 10th packet still goes ...
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::HardExpired(LifetimeKind::Packets))
    );
    assert!(tx.seal(T0, 6, b"x", &mut p).is_err()); // ... the 11th does not.
    assert_eq!(tx.poll_timeout(), None);

    // Time limits with a virtual clock.
    let (mut tx, _) = pair(&cfg);
    tx.handle_timeout(Duration::from_secs(89));
    assert_eq!(tx.poll_event(), None);
    tx.handle_timeout(Duration::from_secs(90));
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::SoftExpired(LifetimeKind::Time))
    );
    assert_eq!(tx.poll_timeout(), Some(Duration::from_secs(100)));
    let mut p = Vec::new();
    assert_eq!(
        tx.seal(Duration::from_secs(100), 6, b"late", &mut p)
            .unwrap_err(),
        IpsecError::SaLifetimeExpired(LifetimeKind::Time)
    );
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::HardExpired(LifetimeKind::Time))
    );
}

#[test]
fn byte_lifetime_counts_payload_bytes() {
    let mut cfg = SaConfig::new(0x9000, EspSuite::ChaCha20Poly1305);
    cfg.lifetime.hard.bytes = Some(1000);
    let (mut tx, _) = pair(&cfg);
    let mut p = Vec::new();
    tx.seal(T0, 6, &[0; 999], &mut p).unwrap();
    assert_eq!(tx.counters(), (999, 1));
    tx.seal(T0, 6, &[0; 1], &mut p).unwrap();
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::HardExpired(LifetimeKind::Bytes))
    );
}

#[test]
fn seal_in_place_uses_caller_headroom() {
    let cfg = SaConfig::new(0xa000, EspSuite::AesGcm16 { key_bits: 256 });
    let (mut tx, mut rx) = pair(&cfg);
    // A 4-byte prefix (e.g. a marker or UDP header) stays untouched.
    let mut buf = vec![0xAB; 4];
    buf.resize(4 + tx.header_len(), 0);
    buf.extend_from_slice(b"in place");
    tx.seal_in_place(T0, 17, &mut buf, 4).unwrap();
    assert_eq!(&buf[..4], &[0xAB; 4]);
    let o = rx.open(T0, &mut buf[4..]).unwrap();
    assert_eq!(&o.payload[..], b"in place");
}

#[test]
fn gcm_iv_is_the_sequence_number() {
    let cfg = SaConfig::new(0xb000, EspSuite::AesGcm16 { key_bits: 128 });
    let (mut tx, _) = pair(&cfg);
    let mut a = Vec::new();
    let mut b = Vec::new();
    tx.seal(T0, 6, b"same", &mut a).unwrap();
    tx.seal(T0, 6, b"same", &mut b).unwrap();
    assert_eq!(&a[8..16], &1u64.to_be_bytes());
    assert_eq!(&b[8..16], &2u64.to_be_bytes());
    assert_ne!(a[16..], b[16..]);
}

#[test]
fn cbc_ivs_are_random() {
    let cfg = SaConfig::new(
        0xc000,
        EspSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha256_128,
        },
    );
    let (mut tx, _) = pair(&cfg);
    let mut a = Vec::new();
    let mut b = Vec::new();
    tx.seal(T0, 6, b"same", &mut a).unwrap();
    tx.seal(T0, 6, b"same", &mut b).unwrap();
    assert_ne!(&a[8..24], &b[8..24]);
}

#[test]
fn suite_from_transform_ids() {
    use crate::ike::wire::transform as t;
    assert_eq!(
        EspSuite::from_transforms(t::ENCR_AES_GCM_16, Some(256), None).unwrap(),
        EspSuite::AesGcm16 { key_bits: 256 }
    );
    assert_eq!(
        EspSuite::from_transforms(t::ENCR_AES_CBC, Some(128), Some(t::AUTH_HMAC_SHA1_96)).unwrap(),
        EspSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha1_96
        }
    );
    assert!(EspSuite::from_transforms(t::ENCR_AES_GCM_16, None, None).is_err());
    assert_eq!(
        EspSuite::from_transforms(3, None, None).unwrap_err(),
        IpsecError::UnsupportedEncryption(3)
    );
    for s in all_suites() {
        let again = EspSuite::from_transforms(
            s.encr_transform_id(),
            s.key_length_attribute(),
            s.integrity().map(Integrity::transform_id),
        )
        .unwrap();
        assert_eq!(again, s);
    }
}

#[test]
fn sa_types_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OutboundSa>();
    assert_send_sync::<InboundSa>();
    assert_send_sync::<crate::ike::crypto::SkCrypter>();
    assert_send_sync::<crate::ike::crypto::KeyExchange>();
}

#[test]
fn esp_header_view() {
    assert!(EspHeader::parse(&[0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    assert!(EspHeader::parse(&[1, 2, 3]).is_err());
    let cfg = SaConfig::new(0xd000, EspSuite::ChaCha20Poly1305);
    let (mut tx, _) = pair(&cfg);
    let mut p = Vec::new();
    tx.seal(T0, 6, b"x", &mut p).unwrap();
    assert_eq!(
        EspHeader::parse(&p).unwrap(),
        EspHeader {
            spi: 0xd000,
            seq_lo: 1
        }
    );
}
