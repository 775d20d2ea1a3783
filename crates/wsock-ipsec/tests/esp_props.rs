//! Property tests of the ESP data path. proptest prints the failing input and persists the seed
//! under `proptest-regressions/` when a case fails.

use proptest::prelude::*;
use std::time::Duration;
use wsock_ipsec::esp::{EspSuite, InboundSa, Integrity, OutboundSa, SaConfig};
use wsock_ipsec::{natt, IpsecError};

const T0: Duration = Duration::ZERO;
const SPI: u32 = 0xc0de_0001;

fn suites() -> Vec<EspSuite> {
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

fn pair(suite: EspSuite, esn: bool, seed: u8) -> (OutboundSa, InboundSa) {
    let mut cfg = SaConfig::new(SPI, suite);
    cfg.esn = esn;
    let e: Vec<u8> = (0..suite.encr_key_len())
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let a: Vec<u8> = (0..suite.integ_key_len())
        .map(|i| (i as u8).wrapping_mul(17) ^ seed)
        .collect();
    (
        OutboundSa::new(&cfg, &e, &a, T0).unwrap(),
        InboundSa::new(&cfg, &e, &a, T0).unwrap(),
    )
}

fn suite_strategy() -> impl Strategy<Value = EspSuite> {
    (0..suites().len()).prop_map(|i| suites()[i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn open_inverts_seal(
        suite in suite_strategy(),
        esn in any::<bool>(),
        seed in any::<u8>(),
        next_header in any::<u8>(),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1600), 1..4),
    ) {
        let (mut tx, mut rx) = pair(suite, esn, seed);
        for payload in payloads {
            let mut pkt = Vec::new();
            let seq = tx.seal(T0, next_header, &payload, &mut pkt).unwrap();
            prop_assert_eq!(pkt.len(), suite.packet_len(payload.len()));
            let o = rx.open(T0, &mut pkt).unwrap();
            prop_assert_eq!(o.next_header, next_header);
            prop_assert_eq!(o.seq, seq);
            prop_assert_eq!(&o.payload[..], &payload[..]);
        }
    }

    #[test]
    fn any_flipped_bit_fails(
        suite in suite_strategy(),
        esn in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut tx, mut rx) = pair(suite, esn, 1);
        let mut pkt = Vec::new();
        tx.seal(T0, 6, &payload, &mut pkt).unwrap();
        let i = pos.index(pkt.len());
        pkt[i] ^= 1 << bit;
        let err = rx.open(T0, &mut pkt).unwrap_err();
        if i < 4 {
            prop_assert!(matches!(err, IpsecError::BadSpi { .. }), "{:?}", err);
        } else {
            prop_assert_eq!(err, IpsecError::IntegrityCheckFailed);
        }
    }

    #[test]
    fn replays_are_rejected(
        suite in suite_strategy(),
        esn in any::<bool>(),
        count in 1usize..20,
        pick in any::<prop::sample::Index>(),
    ) {
        let (mut tx, mut rx) = pair(suite, esn, 2);
        let mut sent = Vec::new();
        for i in 0..count {
            let mut pkt = Vec::new();
            let seq = tx.seal(T0, 17, &[i as u8; 33], &mut pkt).unwrap();
            let copy = pkt.clone();
            rx.open(T0, &mut pkt).unwrap();
            sent.push((seq, copy));
        }
        let (seq, mut again) = sent[pick.index(sent.len())].clone();
        prop_assert_eq!(rx.open(T0, &mut again).unwrap_err(), IpsecError::ReplayCheckFailed { seq });
    }

    #[test]
    fn random_bytes_never_panic(
        suite in suite_strategy(),
        esn in any::<bool>(),
        mut bytes in prop::collection::vec(any::<u8>(), 0..200),
        spi_matches in any::<bool>(),
    ) {
        let (_, mut rx) = pair(suite, esn, 3);
        if spi_matches && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&SPI.to_be_bytes());
        }
        let _ = natt::classify(&bytes);
        prop_assert!(rx.open(T0, &mut bytes).is_err());
    }
}
