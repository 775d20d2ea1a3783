//! Property test: the indexed classifier always agrees with the linear reference, on random
//! filter sets (with deletions) and random packets. Seeded, so runs are reproducible; on a
//! failure proptest prints the minimal failing case.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use wsock_wfp::*;

const L: Layer = Layer::ALE_AUTH_CONNECT_V4;

fn addr() -> impl Strategy<Value = u32> {
    // a small universe so filters and packets collide often
    prop_oneof![
        Just(0x0A00_0001u32),
        Just(0x0A00_0102),
        Just(0x0A01_0203),
        Just(0xC0A8_0001),
        Just(0x0B00_0001),
        any::<u32>()
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(22u16),
        Just(53),
        Just(80),
        Just(443),
        Just(1000),
        Just(2000),
        Just(2001),
        Just(50000),
        any::<u16>()
    ]
}

fn cond() -> impl Strategy<Value = Condition> {
    prop_oneof![
        addr().prop_map(|a| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::Uint32(a)
        )),
        (addr(), 0u8..=32).prop_map(|(a, l)| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::v4_prefix(a.into(), l)
        )),
        (addr(), 8u8..=32).prop_map(|(a, l)| Condition::new(
            Field::IP_LOCAL_ADDRESS,
            MatchType::Equal,
            FwpValue::v4_prefix(a.into(), l)
        )),
        (addr(), addr()).prop_map(|(a, b)| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Range,
            FwpValue::range(FwpValue::Uint32(a.min(b)), FwpValue::Uint32(a.max(b)))
        )),
        addr().prop_map(|a| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::NotEqual,
            FwpValue::Uint32(a)
        )),
        port().prop_map(|p| Condition::new(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(p)
        )),
        port().prop_map(|p| Condition::new(
            Field::IP_LOCAL_PORT,
            MatchType::Equal,
            FwpValue::Uint16(p)
        )),
        (port(), 0u16..5000).prop_map(|(p, w)| Condition::new(
            Field::IP_LOCAL_PORT,
            MatchType::Range,
            FwpValue::range(FwpValue::Uint16(p), FwpValue::Uint16(p.saturating_add(w)))
        )),
        (port(), 0u16..300).prop_map(|(p, w)| Condition::new(
            Field::IP_REMOTE_PORT,
            MatchType::Range,
            FwpValue::range(FwpValue::Uint16(p), FwpValue::Uint16(p.saturating_add(w)))
        )),
        port().prop_map(|p| Condition::new(
            Field::IP_REMOTE_PORT,
            MatchType::GreaterOrEqual,
            FwpValue::Uint16(p)
        )),
        prop_oneof![Just(6u8), Just(17), Just(1)].prop_map(|p| Condition::new(
            Field::IP_PROTOCOL,
            MatchType::Equal,
            FwpValue::Uint8(p)
        )),
        (0u32..16).prop_map(|f| Condition::new(
            Field::FLAGS,
            MatchType::FlagsAnySet,
            FwpValue::Uint32(f)
        )),
        Just(Condition::new(
            Field::IP_ARRIVAL_INTERFACE,
            MatchType::Equal,
            FwpValue::Empty
        )),
    ]
}

#[derive(Debug, Clone)]
struct FSpec {
    conds: Vec<Condition>,
    permit: bool,
    hard: bool,
    sublayer: usize,
    weight: Weight,
}

fn fspec() -> impl Strategy<Value = FSpec> {
    (
        prop::collection::vec(cond(), 0..4),
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        prop_oneof![
            Just(Weight::Auto),
            (0u8..=15).prop_map(Weight::Range),
            (0u64..4).prop_map(Weight::Exact)
        ],
    )
        .prop_map(|(conds, permit, hard, sublayer, weight)| FSpec {
            conds,
            permit,
            hard,
            sublayer,
            weight,
        })
}

fn packet() -> impl Strategy<Value = IncomingValues> {
    (
        addr(),
        addr(),
        port(),
        port(),
        prop_oneof![Just(6u8), Just(17), Just(1)],
        0u32..16,
        any::<bool>(),
    )
        .prop_map(|(ra, la, rp, lp, pr, fl, arr)| {
            let mut v = IncomingValues::new()
                .with(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(ra))
                .with(Field::IP_LOCAL_ADDRESS, FwpValue::Uint32(la))
                .with(Field::IP_REMOTE_PORT, FwpValue::Uint16(rp))
                .with(Field::IP_LOCAL_PORT, FwpValue::Uint16(lp))
                .with(Field::IP_PROTOCOL, FwpValue::Uint8(pr))
                .with(Field::FLAGS, FwpValue::Uint32(fl));
            if arr {
                v.set(Field::IP_ARRIVAL_INTERFACE, FwpValue::Uint64(1));
            }
            v
        })
}

proptest! {
    #![proptest_config(Config { cases: 3000, rng_seed: RngSeed::Fixed(0x5753_4F43_4B57_4650), failure_persistence: None, ..Config::default() })]

    #[test]
    fn indexed_classifier_equals_linear_reference(
        filters in prop::collection::vec(fspec(), 0..40),
        deletions in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        packets in prop::collection::vec(packet(), 1..24),
    ) {
        let mut e = Engine::new();
        let s = e.open_session(false);
        let subs = [
            SUBLAYER_UNIVERSAL,
            e.add_sublayer(s, &Sublayer::new("hi", 0x9000)).unwrap(),
            e.add_sublayer(s, &Sublayer::new("lo", 0x1000)).unwrap(),
            e.add_sublayer(s, &Sublayer::new("tie", 0x8000)).unwrap(),
        ];
        let mut ids = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            let mut flt = Filter::new(format!("f{i}"), L, if f.permit { Action::Permit } else { Action::Block })
                .sublayer(subs[f.sublayer])
                .weight(f.weight);
            if f.hard { flt = flt.flags(filter_flags::CLEAR_ACTION_RIGHT); }
            flt.conditions = f.conds.clone();
            ids.push(e.add_filter(s, &flt).unwrap());
        }
        for d in &deletions {
            if !ids.is_empty() {
                let id = ids.remove(d.index(ids.len()));
                e.delete_filter_by_id(s, id).unwrap();
            }
        }
        for p in &packets {
            prop_assert_eq!(e.classify(L, p), e.classify_linear(L, p));
        }
    }
}

/// Filters the tuple-space fast path indexes ("pure": 5-tuple fields only, static actions),
/// with heavy port-range overlap, many equal weights, arbitrary (non-prefix) masks and IPv6.
fn pure_cond() -> impl Strategy<Value = Condition> {
    prop_oneof![
        addr().prop_map(|a| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::Uint32(a)
        )),
        (addr(), 0u8..=32).prop_map(|(a, l)| Condition::new(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::v4_prefix(a.into(), l)
        )),
        (
            addr(),
            prop_oneof![Just(0xFF00_FF00u32), Just(0x0000_FFFF), any::<u32>()]
        )
            .prop_map(|(a, m)| Condition::new(
                Field::IP_LOCAL_ADDRESS,
                MatchType::Equal,
                FwpValue::V4AddrMask { addr: a, mask: m }
            )),
        (prop_oneof![Just(0u8), Just(1), any::<u8>()], 0u8..=130).prop_map(|(b, l)| {
            Condition::new(
                Field::IP_REMOTE_ADDRESS,
                MatchType::Equal,
                FwpValue::V6AddrMask {
                    addr: [b; 16],
                    prefix_len: l,
                },
            )
        }),
        port().prop_map(|p| Condition::new(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(p)
        )),
        (0u16..64, 0u16..64).prop_map(|(a, w)| Condition::new(
            Field::IP_LOCAL_PORT,
            MatchType::Range,
            FwpValue::range(
                FwpValue::Uint16(a * 32),
                FwpValue::Uint16((a * 32).wrapping_add(w * 16))
            )
        )),
        (
            port(),
            prop_oneof![
                Just(MatchType::Greater),
                Just(MatchType::Less),
                Just(MatchType::GreaterOrEqual),
                Just(MatchType::LessOrEqual)
            ]
        )
            .prop_map(|(p, m)| Condition::new(
                Field::IP_REMOTE_PORT,
                m,
                FwpValue::Uint16(p)
            )),
        prop_oneof![Just(0u16), Just(u16::MAX)].prop_map(|p| Condition::new(
            Field::IP_LOCAL_PORT,
            MatchType::Less,
            FwpValue::Uint16(p)
        )),
        prop_oneof![Just(6u8), Just(17)].prop_map(|p| Condition::new(
            Field::IP_PROTOCOL,
            MatchType::Equal,
            FwpValue::Uint8(p)
        )),
    ]
}

fn pure_packet() -> impl Strategy<Value = IncomingValues> {
    (
        packet(),
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(FwpValue::ByteArray16([0; 16]))),
            1 => Just(Some(FwpValue::ByteArray16([1; 16]))),
            1 => Just(Some(FwpValue::Empty)),
            // unusual types in index fields force the scan fallback
            1 => Just(Some(FwpValue::V4AddrMask { addr: 0x0A00_0001, mask: u32::MAX })),
            1 => Just(Some(FwpValue::Uint64(5))),
        ],
        0u16..2100,
    )
        .prop_map(|(mut v, ra, lp)| {
            if let Some(ra) = ra {
                v.set(Field::IP_REMOTE_ADDRESS, ra);
            }
            v.set(Field::IP_LOCAL_PORT, FwpValue::Uint16(lp));
            v
        })
}

proptest! {
    #![proptest_config(Config { cases: 1500, rng_seed: RngSeed::Fixed(0x5753_4F43_4B57_4651), failure_persistence: None, ..Config::default() })]

    #[test]
    fn pure_filters_index_equals_linear(
        filters in prop::collection::vec(
            (prop::collection::vec(pure_cond(), 0..4), any::<bool>(), any::<bool>(), 0usize..3, 0u64..3),
            0..80,
        ),
        deletions in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        packets in prop::collection::vec(pure_packet(), 1..24),
    ) {
        let mut e = Engine::new();
        let s = e.open_session(false);
        let subs = [
            SUBLAYER_UNIVERSAL,
            e.add_sublayer(s, &Sublayer::new("hi", 0x9000)).unwrap(),
            e.add_sublayer(s, &Sublayer::new("lo", 0x1000)).unwrap(),
        ];
        let mut ids = Vec::new();
        for (i, (conds, permit, hard, sub, w)) in filters.iter().enumerate() {
            // few distinct exact weights: many ties, broken by filter id
            let mut flt = Filter::new(format!("p{i}"), L, if *permit { Action::Permit } else { Action::Block })
                .sublayer(subs[*sub])
                .weight(Weight::Exact(*w));
            if *hard { flt = flt.flags(filter_flags::CLEAR_ACTION_RIGHT); }
            flt.conditions = conds.clone();
            if let Ok(id) = e.add_filter(s, &flt) {
                ids.push(id);
            }
        }
        for p in packets.iter().take(4) {
            prop_assert_eq!(e.classify(L, p), e.classify_linear(L, p));
        }
        for d in &deletions {
            if !ids.is_empty() {
                let id = ids.remove(d.index(ids.len()));
                e.delete_filter_by_id(s, id).unwrap();
            }
        }
        for p in &packets {
            prop_assert_eq!(e.classify(L, p), e.classify_linear(L, p));
        }
    }
}

/// The indexed path names a static winner's sublayer from a per-layer table keyed on the
/// sublayer's (weight, sequence) instead of reading the filter. A sublayer sequence number
/// comes back after an aborted transaction (the transaction worked on a copy of the store),
/// so a different sublayer with the same weight can get the same sequence: the table must
/// not remember the aborted one.
#[test]
fn sublayer_names_survive_aborted_transaction() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let pkt = IncomingValues::new()
        .with(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(0x0A00_0002))
        .with(Field::IP_REMOTE_PORT, FwpValue::Uint16(80))
        .with(Field::IP_PROTOCOL, FwpValue::Uint8(6));
    let pure = |sl: Guid| {
        Filter::new("pure", L, Action::Block)
            .sublayer(sl)
            .condition(
                Field::IP_REMOTE_ADDRESS,
                MatchType::Equal,
                FwpValue::Uint32(0x0A00_0002),
            )
            .condition(
                Field::IP_REMOTE_PORT,
                MatchType::Equal,
                FwpValue::Uint16(80),
            )
    };
    e.begin_transaction(s, false, std::time::Duration::ZERO)
        .unwrap();
    let gone = e
        .add_sublayer(
            s,
            &Sublayer::new("gone", 0x4000).key(Guid::from_u128(0x006f_6e65)),
        )
        .unwrap();
    e.add_filter(s, &pure(gone)).unwrap();
    e.abort_transaction(s).unwrap();
    let kept = e
        .add_sublayer(
            s,
            &Sublayer::new("kept", 0x4000).key(Guid::from_u128(0x6b65_7074)),
        )
        .unwrap();
    assert_ne!(gone, kept);
    e.add_filter(s, &pure(kept)).unwrap();
    let r = e.classify(L, &pkt);
    assert_eq!(r, e.classify_linear(L, &pkt));
    assert_eq!(r.sublayer_results.len(), 1);
    assert_eq!(r.sublayer_results[0].sublayer, kept);
    assert_eq!(r.decided_by.as_ref().map(|f| f.sublayer), Some(kept));
}

/// A port-range bucket large enough for the direct port -> segment map (>= 1024 segments),
/// with filters in two sublayers and deletions: every port agrees with the linear reference.
#[test]
fn large_port_range_bucket_agrees_with_linear() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let hi = e.add_sublayer(s, &Sublayer::new("hi", 0x9000)).unwrap();
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ids = Vec::new();
    for i in 0..900 {
        let lo = (next() % 65_000) as u16;
        let hi_port = lo.saturating_add((next() % 700) as u16);
        let mut f = Filter::new(
            format!("r{i}"),
            L,
            if next() % 3 == 0 {
                Action::Permit
            } else {
                Action::Block
            },
        )
        .condition(
            Field::IP_LOCAL_PORT,
            MatchType::Range,
            FwpValue::range(FwpValue::Uint16(lo), FwpValue::Uint16(hi_port)),
        )
        .condition(Field::IP_PROTOCOL, MatchType::Equal, FwpValue::Uint8(6));
        if next() % 4 == 0 {
            f = f.sublayer(hi);
        }
        ids.push(e.add_filter(s, &f).unwrap());
    }
    let check = |e: &Engine| {
        for port in (0..=u16::MAX)
            .step_by(13)
            .chain([0, 1, u16::MAX - 1, u16::MAX])
        {
            let v = IncomingValues::new()
                .with(Field::IP_LOCAL_PORT, FwpValue::Uint16(port))
                .with(Field::IP_PROTOCOL, FwpValue::Uint8(6));
            assert_eq!(e.classify(L, &v), e.classify_linear(L, &v), "port {port}");
        }
    };
    check(&e);
    for id in ids.iter().step_by(3) {
        e.delete_filter_by_id(s, *id).unwrap();
    }
    check(&e);
}
