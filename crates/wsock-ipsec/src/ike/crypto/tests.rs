//! Unit tests of the IKEv2 cryptography.

use super::*;
use crate::ike::wire::{ExchangeType, Flags, Notify, NotifyType, ProtocolId};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 7634 Appendix B: an INFORMATIONAL request protected with ChaCha20-Poly1305, byte for byte.
#[test]
fn rfc7634_appendix_b_ikev2_example() {
    let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3");
    let outer = MessageRepr {
        spi_i: 0xc0c1_c2c3_c4c5_c6c7,
        spi_r: 0xd0d1_d2d3_d4d5_d6d7,
        exchange: ExchangeType::INFORMATIONAL,
        flags: Flags(0),
        message_id: 9,
        payloads: vec![],
    };
    let inner = vec![PayloadRepr::Notify(Notify::new(
        NotifyType::SET_WINDOW_SIZE,
        vec![0, 0, 0, 0x0a],
    ))];
    let expected = [
        hex("c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045 29000029"),
        hex("1011121314151617"),
        hex("610394701f8d017f7c12924889 6b71bfe25236efd7cdc67066906315b2"),
    ]
    .concat();
    let sk = SkCrypter::new(SkSuite::ChaCha20Poly1305, &key, &[]).unwrap();
    let bytes = sk
        .seal_with_iv(&outer, &inner, &hex("1011121314151617"))
        .unwrap();
    assert_eq!(bytes, expected);
    let (o, i) = sk.open(&expected).unwrap();
    assert_eq!((o, i), (outer, inner));
}

fn suites() -> Vec<SkSuite> {
    vec![
        SkSuite::AesGcm16 { key_bits: 128 },
        SkSuite::AesGcm16 { key_bits: 256 },
        SkSuite::ChaCha20Poly1305,
        SkSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha256_128,
        },
        SkSuite::AesCbc {
            key_bits: 256,
            integrity: Integrity::HmacSha256_128,
        },
        SkSuite::AesCbc {
            key_bits: 256,
            integrity: Integrity::HmacSha1_96,
        },
    ]
}

#[test]
fn sk_round_trip_and_tamper_detection() {
    for suite in suites() {
        let e: Vec<u8> = (0..suite.encr_key_len()).map(|i| i as u8).collect();
        let a: Vec<u8> = (0..suite.integ_key_len()).map(|i| 0x80 | i as u8).collect();
        let mut tx = SkCrypter::new(suite, &e, &a).unwrap();
        let rx = SkCrypter::new(suite, &e, &a).unwrap();
        let outer = MessageRepr {
            spi_i: 1,
            spi_r: 2,
            exchange: ExchangeType::IKE_AUTH,
            flags: Flags::new(true, false),
            message_id: 1,
            payloads: vec![],
        };
        for n in [0usize, 1, 15, 16, 100] {
            let inner = vec![
                PayloadRepr::Nonce(vec![7; n]),
                PayloadRepr::Notify(Notify {
                    protocol: ProtocolId::ESP,
                    spi: vec![1, 2, 3, 4],
                    kind: NotifyType::USE_TRANSPORT_MODE,
                    data: vec![],
                }),
            ];
            let bytes = tx.seal(&outer, &inner).unwrap();
            assert_eq!(
                rx.open(&bytes).unwrap(),
                (outer.clone(), inner.clone()),
                "{suite:?}"
            );
            for pos in [0, 17, 19, 30, 40, bytes.len() - 1] {
                let mut bad = bytes.clone();
                bad[pos] ^= 1;
                assert!(rx.open(&bad).is_err(), "{suite:?} pos {pos}");
            }
            let mut bad = bytes.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            assert_eq!(rx.open(&bad).unwrap_err(), IpsecError::DecryptFailed);
            assert_eq!(IpsecError::DecryptFailed.win32_code(), 13867);
        }
        // Wrong key: decryption fails.
        let other: Vec<u8> = e.iter().map(|b| b ^ 1).collect();
        let wrong = SkCrypter::new(suite, &other, &a).unwrap();
        let bytes = tx.seal(&outer, &[PayloadRepr::Nonce(vec![1; 16])]).unwrap();
        assert!(wrong.open(&bytes).is_err());
    }
}

#[test]
fn prf_plus_structure() {
    for prf in [Prf::HmacSha1, Prf::HmacSha256, Prf::HmacSha384] {
        let h = prf.output_len();
        let out = prf.prf_plus(b"K", b"S", 3 * h).unwrap();
        let t1 = prf.prf(b"K", b"S\x01");
        let t2 = prf.prf_parts(b"K", &[&t1, b"S", &[2]]);
        let t3 = prf.prf_parts(b"K", &[&t2, b"S", &[3]]);
        assert_eq!(out, [t1, t2, t3].concat());
        assert!(prf.prf_plus(b"K", b"S", 255 * h).is_ok());
        assert!(prf.prf_plus(b"K", b"S", 255 * h + 1).is_err());
        assert_eq!(Prf::from_transform_id(prf.transform_id()).unwrap(), prf);
    }
    assert_eq!(
        Prf::from_transform_id(7).unwrap_err(),
        IpsecError::UnsupportedPrf(7)
    );
}

#[test]
fn key_lengths_follow_the_suites() {
    let seed = skeyseed(Prf::HmacSha256, &[1; 32], &[2; 32], &[3; 32]);
    let k = IkeSaKeys::derive(
        Prf::HmacSha256,
        &seed,
        &[1; 32],
        &[2; 32],
        5,
        6,
        SkSuite::AesGcm16 { key_bits: 256 },
    )
    .unwrap();
    assert_eq!(
        [
            k.sk_d.len(),
            k.sk_ai.len(),
            k.sk_ar.len(),
            k.sk_ei.len(),
            k.sk_er.len(),
            k.sk_pi.len(),
            k.sk_pr.len()
        ],
        [32, 0, 0, 36, 36, 32, 32]
    );
    let k = IkeSaKeys::derive(
        Prf::HmacSha384,
        &seed,
        &[1; 32],
        &[2; 32],
        5,
        6,
        SkSuite::AesCbc {
            key_bits: 128,
            integrity: Integrity::HmacSha256_128,
        },
    )
    .unwrap();
    assert_eq!(
        [k.sk_d.len(), k.sk_ai.len(), k.sk_ei.len(), k.sk_pr.len()],
        [48, 32, 16, 48]
    );
    let c = ChildSaKeys::derive(
        Prf::HmacSha256,
        &k.sk_d,
        None,
        &[1; 16],
        &[2; 16],
        EspSuite::AesGcm16 { key_bits: 128 },
    )
    .unwrap();
    assert_eq!(
        (c.encr_i.len(), c.integ_i.len(), c.encr_r.len()),
        (20, 0, 20)
    );
    assert_eq!(c.outbound(Role::Initiator), c.inbound(Role::Responder));
    let pfs = ChildSaKeys::derive(
        Prf::HmacSha256,
        &k.sk_d,
        Some(&[9; 32]),
        &[1; 16],
        &[2; 16],
        EspSuite::AesGcm16 { key_bits: 128 },
    )
    .unwrap();
    assert_ne!(pfs, c);
}

#[test]
fn dh_both_sides_agree() {
    for group in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Curve25519] {
        let a = KeyExchange::generate(group).unwrap();
        let b = KeyExchange::generate(group).unwrap();
        assert_eq!(a.public_value().len(), group.public_len());
        let (pa, pb) = (a.public_value().to_vec(), b.public_value().to_vec());
        let sa = a.agree(&pb).unwrap();
        let sb = b.agree(&pa).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(sa.len(), if group == DhGroup::Ecp384 { 48 } else { 32 });
        // Garbage and wrong lengths are refused.
        let c = KeyExchange::generate(group).unwrap();
        assert_eq!(c.agree(&pa[1..]).unwrap_err(), IpsecError::DhFailed);
        let d = KeyExchange::generate(group).unwrap();
        if group != DhGroup::Curve25519 {
            assert!(d.agree(&vec![0x11; group.public_len()]).is_err());
        } else {
            // The all-zero point gives the all-zero secret, which must be refused.
            assert!(d.agree(&[0; 32]).is_err());
        }
        assert_eq!(
            DhGroup::from_transform_id(group.transform_id()).unwrap(),
            group
        );
    }
    assert_eq!(
        DhGroup::from_transform_id(14).unwrap_err().win32_code(),
        13865
    );
}
