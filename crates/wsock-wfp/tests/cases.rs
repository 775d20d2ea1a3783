//! Behavioural cases 1-9 and 11-25 of wfp-ale-ipsec.md §10.1 (case 10 and 26-31 live in
//! wsock-ale's tests, where socket events exist).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsock_wfp::*;

const L: Layer = Layer::ALE_AUTH_CONNECT_V4;

struct Setup {
    e: Engine,
    s: SessionId,
    hi: Guid,
    lo: Guid,
}

/// "SL-hi/SL-lo" = two user sublayers with weights 0x8000 / 0x1000 at ALE_AUTH_CONNECT_V4.
fn setup() -> Setup {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let hi = e.add_sublayer(s, &Sublayer::new("SL-hi", 0x8000)).unwrap();
    let lo = e.add_sublayer(s, &Sublayer::new("SL-lo", 0x1000)).unwrap();
    Setup { e, s, hi, lo }
}

/// "conn" = TCP connect from A 10.0.0.1:50000 to B 10.0.0.2:80.
fn conn() -> IncomingValues {
    tcp(80)
}

fn tcp(port: u16) -> IncomingValues {
    IncomingValues::new()
        .with(
            Field::IP_LOCAL_ADDRESS,
            FwpValue::Uint32(u32::from(Ipv4Addr::new(10, 0, 0, 1))),
        )
        .with(
            Field::IP_REMOTE_ADDRESS,
            FwpValue::Uint32(u32::from(Ipv4Addr::new(10, 0, 0, 2))),
        )
        .with(Field::IP_LOCAL_PORT, FwpValue::Uint16(50000))
        .with(Field::IP_REMOTE_PORT, FwpValue::Uint16(port))
        .with(Field::IP_PROTOCOL, FwpValue::Uint8(6))
}

fn to_b80(name: &str, action: Action, sublayer: Guid) -> Filter {
    Filter::new(name, L, action).sublayer(sublayer).condition(
        Field::IP_REMOTE_PORT,
        MatchType::Equal,
        FwpValue::Uint16(80),
    )
}

struct TestCallout {
    verdict: CalloutVerdict,
    calls: AtomicUsize,
    notes: Mutex<Vec<CalloutNotification>>,
}

impl TestCallout {
    fn new(verdict: CalloutVerdict) -> Arc<Self> {
        Arc::new(TestCallout {
            verdict,
            calls: AtomicUsize::new(0),
            notes: Mutex::new(Vec::new()),
        })
    }
}

impl Callout for TestCallout {
    fn classify(&self, _ctx: &CalloutClassify<'_>) -> CalloutVerdict {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.verdict
    }
    fn notify(&self, event: &CalloutNotification) {
        self.notes.lock().unwrap().push(event.clone());
    }
}

fn add_callout(t: &mut Setup, key: u128, verdict: CalloutVerdict) -> (Guid, Arc<TestCallout>) {
    let key = Guid::from_u128(key);
    t.e.add_callout(t.s, &CalloutObject::new("test callout", key, L))
        .unwrap();
    let c = TestCallout::new(verdict);
    t.e.register_callout(key, c.clone());
    (key, c)
}

// ------------------------------------------------------------------ arbitration

#[test]
fn case_01_block_in_lower_sublayer_overrides_soft_permit() {
    let mut t = setup();
    t.e.add_filter(t.s, &to_b80("hi permit", Action::Permit, t.hi))
        .unwrap();
    let lo =
        t.e.add_filter(t.s, &to_b80("lo block", Action::Block, t.lo))
            .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    assert_eq!(r.decided_by.as_ref().unwrap().id, lo);
    assert_eq!(r.sublayer_results.len(), 2, "both sublayers evaluated");
    t.e.record_classify(
        Duration::from_secs(5),
        &r,
        NetEventHeader::default(),
        false,
        0,
    );
    let ev: Vec<_> = t.e.net_events().collect();
    assert_eq!(ev.len(), 1);
    match &ev[0].kind {
        NetEventKind::ClassifyDrop(i) => {
            assert_eq!(i.filter_id, lo);
            assert_eq!(i.filter_name, "lo block");
            assert_eq!(i.layer, L);
            assert_eq!(i.sublayer, t.lo);
        }
        k => panic!("unexpected {k:?}"),
    }
    assert_eq!(ev[0].timestamp, Duration::from_secs(5));
}

#[test]
fn case_02_hard_permit_beats_static_block_in_lower_sublayer() {
    let mut t = setup();
    let hi =
        t.e.add_filter(
            t.s,
            &to_b80("hard permit", Action::Permit, t.hi).flags(filter_flags::CLEAR_ACTION_RIGHT),
        )
        .unwrap();
    let lo =
        t.e.add_filter(t.s, &to_b80("static block", Action::Block, t.lo))
            .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_permit());
    assert!(r.hard);
    assert_eq!(r.decided_by.unwrap().id, hi);
    assert!(r.veto.is_none());
    // the documented switch: static blocks may veto
    let mut o = t.e.options();
    o.arbitration.static_block_veto = true;
    t.e.set_options(o);
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    assert_eq!(r.veto.unwrap().vetoed_filter_id, hi);
    assert_eq!(r.decided_by.unwrap().id, lo);
}

#[test]
fn case_03_hard_block_is_final() {
    let mut t = setup();
    let hi =
        t.e.add_filter(t.s, &to_b80("block", Action::Block, t.hi))
            .unwrap();
    t.e.add_filter(
        t.s,
        &to_b80("hard permit", Action::Permit, t.lo).flags(filter_flags::CLEAR_ACTION_RIGHT),
    )
    .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    assert!(r.hard);
    assert_eq!(r.decided_by.unwrap().id, hi);
}

#[test]
fn case_04_soft_callout_block_overridden_by_lower_permit() {
    let mut t = setup();
    let (key, c) = add_callout(&mut t, 0x1111, CalloutVerdict::BLOCK);
    t.e.add_filter(
        t.s,
        &to_b80("callout", Action::CalloutTerminating(key), t.hi),
    )
    .unwrap();
    let p =
        t.e.add_filter(t.s, &to_b80("permit", Action::Permit, t.lo))
            .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_permit());
    assert_eq!(r.decided_by.unwrap().id, p);
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.sublayer_results[0].decision, Decision::Block);
    assert!(!r.sublayer_results[0].hard);
}

#[test]
fn case_05_callout_veto_of_hard_permit() {
    let mut t = setup();
    let (key, c) = add_callout(&mut t, 0x2222, CalloutVerdict::BLOCK);
    let hp =
        t.e.add_filter(
            t.s,
            &to_b80("hard permit", Action::Permit, t.hi).flags(filter_flags::CLEAR_ACTION_RIGHT),
        )
        .unwrap();
    let cf =
        t.e.add_filter(
            t.s,
            &to_b80("vetoing callout", Action::CalloutTerminating(key), t.lo),
        )
        .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    let v = r.veto.clone().expect("veto");
    assert_eq!(v.vetoed_filter_id, hp);
    assert_eq!(v.vetoing.id, cf);
    let notes = c.notes.lock().unwrap().clone();
    assert!(notes.contains(&CalloutNotification::Veto {
        layer: L,
        vetoed_filter_id: hp,
        vetoing_filter_id: cf
    }));
    t.e.record_classify(Duration::ZERO, &r, NetEventHeader::default(), false, 0);
    assert!(t.e.net_events().any(|e| matches!(e.kind, NetEventKind::CalloutVeto { vetoed_filter_id, .. } if vetoed_filter_id == hp)));
    assert!(t
        .e
        .net_events()
        .any(|e| matches!(&e.kind, NetEventKind::ClassifyDrop(i) if i.filter_id == cf)));
}

#[test]
fn case_06_explicit_weights_order_one_sublayer() {
    let mut t = setup();
    let p =
        t.e.add_filter(
            t.s,
            &to_b80("permit", Action::Permit, t.hi).weight(Weight::Exact(10)),
        )
        .unwrap();
    let b =
        t.e.add_filter(
            t.s,
            &to_b80("block", Action::Block, t.hi).weight(Weight::Exact(5)),
        )
        .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_permit());
    assert_eq!(r.decided_by.unwrap().id, p);
    // swap weights
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &to_b80("permit", Action::Permit, t.hi).weight(Weight::Exact(5)),
    )
    .unwrap();
    let b2 =
        t.e.add_filter(
            t.s,
            &to_b80("block", Action::Block, t.hi).weight(Weight::Exact(10)),
        )
        .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    assert_eq!(r.decided_by.unwrap().id, b2);
    let _ = b;
}

#[test]
fn case_07_nothing_matches_permits() {
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &Filter::new("443 only", L, Action::Block)
            .sublayer(t.hi)
            .condition(
                Field::IP_REMOTE_PORT,
                MatchType::Equal,
                FwpValue::Uint16(443),
            ),
    )
    .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_permit());
    assert!(r.decided_by.is_none());
    assert_eq!(r.matched_filters, 0);
    // and an empty engine permits too
    assert!(Engine::new().classify(L, &conn()).is_permit());
}

#[test]
fn case_08_unregistered_callout_blocks_unless_permit_flag() {
    let mut t = setup();
    let key = Guid::from_u128(0x3333);
    t.e.add_callout(t.s, &CalloutObject::new("added, never registered", key, L))
        .unwrap();
    let f =
        t.e.add_filter(t.s, &to_b80("term", Action::CalloutTerminating(key), t.hi))
            .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_block());
    assert_eq!(r.decided_by.unwrap().id, f);
    t.e.delete_filter_by_id(t.s, f).unwrap();
    t.e.add_filter(
        t.s,
        &to_b80("term", Action::CalloutTerminating(key), t.hi)
            .flags(filter_flags::PERMIT_IF_CALLOUT_UNREGISTERED),
    )
    .unwrap();
    assert!(t.e.classify(L, &conn()).is_permit());
    // the flag is only for CALLOUT_TERMINATING / CALLOUT_UNKNOWN (emulator choice)
    let err = t.e.add_filter(
        t.s,
        &to_b80("static", Action::Block, t.hi).flags(filter_flags::PERMIT_IF_CALLOUT_UNREGISTERED),
    );
    assert_eq!(err, Err(WfpError::InvalidFlags));
    assert_eq!(WfpError::InvalidFlags.hresult(), 0x8032_001E);
}

#[test]
fn case_09_inspection_callout_sees_traffic_then_block_decides() {
    let mut t = setup();
    // an inspection callout that (wrongly) says permit is still only "continue"
    let (key, c) = add_callout(&mut t, 0x4444, CalloutVerdict::PERMIT);
    t.e.add_filter(
        t.s,
        &to_b80("inspect", Action::CalloutInspection(key), t.hi).weight(Weight::Exact(100)),
    )
    .unwrap();
    let b =
        t.e.add_filter(
            t.s,
            &to_b80("block", Action::Block, t.hi).weight(Weight::Exact(50)),
        )
        .unwrap();
    let r = t.e.classify(L, &conn());
    assert_eq!(
        c.calls.load(Ordering::SeqCst),
        1,
        "callout saw the classification"
    );
    assert!(r.is_block());
    assert_eq!(r.decided_by.unwrap().id, b);
    assert_eq!(r.matched_filters, 2);
}

// ------------------------------------------------------------------ weights and conditions

#[test]
fn case_11_uint8_weight_range() {
    let mut t = setup();
    let f = Filter::new("w", L, Action::Block).weight(Weight::Range(16));
    assert_eq!(t.e.add_filter(t.s, &f), Err(WfpError::InvalidWeight));
    assert_eq!(WfpError::InvalidWeight.hresult(), 0x8032_0025);
    let id =
        t.e.add_filter(
            t.s,
            &to_b80("w15", Action::Block, t.hi).weight(Weight::Range(15)),
        )
        .unwrap();
    let w = t.e.get_filter_by_id(t.s, id).unwrap().effective_weight;
    assert!(w >= 15u64 << 60, "{w:#x}");
}

#[test]
fn case_12_exact_weight_above_range_3() {
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &to_b80("block r3", Action::Block, t.hi).weight(Weight::Range(3)),
    )
    .unwrap();
    let p =
        t.e.add_filter(
            t.s,
            &to_b80("permit 2^62", Action::Permit, t.hi).weight(Weight::Exact(1 << 62)),
        )
        .unwrap();
    let r = t.e.classify(L, &conn());
    assert!(r.is_permit());
    assert_eq!(r.decided_by.unwrap().id, p);
}

#[test]
fn case_13_same_field_ored_different_fields_anded() {
    let mut t = setup();
    let f = Filter::new("80|443 tcp", L, Action::Block)
        .condition(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(80),
        )
        .condition(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(443),
        )
        .condition(Field::IP_PROTOCOL, MatchType::Equal, FwpValue::Uint8(6));
    t.e.add_filter(t.s, &f).unwrap();
    assert!(t.e.classify(L, &tcp(80)).is_block());
    assert!(t.e.classify(L, &tcp(443)).is_block());
    assert!(t.e.classify(L, &tcp(22)).is_permit());
    let udp443 = tcp(443).with(Field::IP_PROTOCOL, FwpValue::Uint8(17));
    assert!(t.e.classify(L, &udp443).is_permit());
    assert_eq!(t.e.classify(L, &udp443), t.e.classify_linear(L, &udp443));
}

#[test]
fn case_14_prefix_match_is_a_suffix_match() {
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &Filter::new("app", L, Action::Block).condition(
            Field::ALE_APP_ID,
            MatchType::Prefix,
            FwpValue::utf16_blob("\\app.exe"),
        ),
    )
    .unwrap();
    let v = conn().with(
        Field::ALE_APP_ID,
        FwpValue::utf16_blob("\\device\\harddiskvolume1\\bin\\app.exe"),
    );
    assert!(t.e.classify(L, &v).is_block());
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &Filter::new("dev", L, Action::Block).condition(
            Field::ALE_APP_ID,
            MatchType::Prefix,
            FwpValue::utf16_blob("\\device\\"),
        ),
    )
    .unwrap();
    assert!(
        t.e.classify(L, &v).is_permit(),
        "PREFIX does not test the start"
    );
}

#[test]
fn case_15_no_implicit_conversion() {
    let mut t = setup();
    let f = Filter::new("u32 port", L, Action::Block).condition(
        Field::IP_LOCAL_PORT,
        MatchType::Equal,
        FwpValue::Uint32(80),
    );
    assert_eq!(t.e.add_filter(t.s, &f), Err(WfpError::TypeMismatch));
    assert_eq!(WfpError::TypeMismatch.hresult(), 0x8032_0027);
    let f = Filter::new("flags on string", L, Action::Block).condition(
        Field::ALE_PACKAGE_FAMILY_NAME,
        MatchType::FlagsAllSet,
        FwpValue::UnicodeString("x".into()),
    );
    assert_eq!(t.e.add_filter(t.s, &f), Err(WfpError::MatchTypeMismatch));
    assert_eq!(WfpError::MatchTypeMismatch.hresult(), 0x8032_0026);
}

#[test]
fn case_16_address_mask_and_inclusive_port_range() {
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &Filter::new("10/8", L, Action::Block).condition(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::V4AddrMask {
                addr: 0x0A00_0000,
                mask: 0xFF00_0000,
            },
        ),
    )
    .unwrap();
    let at = |a: Ipv4Addr| {
        IncomingValues::new().with(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(a.into()))
    };
    assert!(t.e.classify(L, &at(Ipv4Addr::new(10, 1, 2, 3))).is_block());
    assert!(t.e.classify(L, &at(Ipv4Addr::new(11, 0, 0, 1))).is_permit());
    let mut t = setup();
    t.e.add_filter(
        t.s,
        &Filter::new("1000-2000", L, Action::Block).condition(
            Field::IP_REMOTE_PORT,
            MatchType::Range,
            FwpValue::range(FwpValue::Uint16(1000), FwpValue::Uint16(2000)),
        ),
    )
    .unwrap();
    assert!(t.e.classify(L, &tcp(1000)).is_block());
    assert!(t.e.classify(L, &tcp(2000)).is_block());
    assert!(t.e.classify(L, &tcp(2001)).is_permit());
    assert!(t.e.classify(L, &tcp(999)).is_permit());
}

#[test]
fn case_17_field_not_in_layer() {
    let mut t = setup();
    let f = Filter::new("x", Layer::ALE_RESOURCE_ASSIGNMENT_V4, Action::Block).condition(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::Uint32(1),
    );
    assert_eq!(t.e.add_filter(t.s, &f), Err(WfpError::ConditionNotFound));
    assert_eq!(WfpError::ConditionNotFound.hresult(), 0x8032_0002);
}

// ------------------------------------------------------------------ management API

#[test]
fn case_18_persistent_and_boottime_invalid() {
    let mut t = setup();
    let f = Filter::new("pb", L, Action::Block)
        .flags(filter_flags::PERSISTENT | filter_flags::BOOTTIME);
    assert_eq!(t.e.add_filter(t.s, &f), Err(WfpError::InvalidFlags));
    assert_eq!(WfpError::InvalidFlags.hresult(), 0x8032_001E);
}

#[test]
fn case_19_null_display_name() {
    let mut t = setup();
    assert_eq!(
        t.e.add_filter(t.s, &Filter::new("", L, Action::Block)),
        Err(WfpError::NullDisplayName)
    );
    assert_eq!(WfpError::NullDisplayName.hresult(), 0x8032_0023);
}

#[test]
fn case_20_transaction_state_errors() {
    let mut t = setup();
    t.e.begin_transaction(t.s, false, Duration::ZERO).unwrap();
    assert_eq!(
        t.e.begin_transaction(t.s, false, Duration::ZERO),
        Err(WfpError::TxnInProgress)
    );
    assert_eq!(WfpError::TxnInProgress.hresult(), 0x8032_000E);
    t.e.commit_transaction(t.s).unwrap();
    assert_eq!(t.e.commit_transaction(t.s), Err(WfpError::NoTxnInProgress));
    assert_eq!(WfpError::NoTxnInProgress.hresult(), 0x8032_000D);
    t.e.begin_transaction(t.s, true, Duration::ZERO).unwrap();
    assert_eq!(
        t.e.add_filter(t.s, &Filter::new("ro", L, Action::Block)),
        Err(WfpError::IncompatibleTxn)
    );
    assert_eq!(WfpError::IncompatibleTxn.hresult(), 0x8032_0011);
    t.e.abort_transaction(t.s).unwrap();
}

#[test]
fn case_21_failed_call_does_not_doom_transaction() {
    let mut t = setup();
    let f1 = Filter::new("F1", L, Action::Block).key(Guid::from_u128(0xF1));
    let f2 = Filter::new("F2", L, Action::Block)
        .key(Guid::from_u128(0xF2))
        .weight(Weight::Range(99));
    t.e.begin_transaction(t.s, false, Duration::ZERO).unwrap();
    t.e.add_filter(t.s, &f1).unwrap();
    assert_eq!(t.e.add_filter(t.s, &f2), Err(WfpError::InvalidWeight));
    assert!(
        t.e.classify(L, &conn()).is_permit(),
        "uncommitted changes are not enforced"
    );
    t.e.commit_transaction(t.s).unwrap();
    assert!(t.e.get_filter_by_key(t.s, f1.key).is_ok());
    assert_eq!(
        t.e.get_filter_by_key(t.s, f2.key),
        Err(WfpError::FilterNotFound)
    );
    assert!(t.e.classify(L, &conn()).is_block());

    let mut t = setup();
    t.e.begin_transaction(t.s, false, Duration::ZERO).unwrap();
    t.e.add_filter(t.s, &f1).unwrap();
    assert!(t.e.add_filter(t.s, &f2).is_err());
    t.e.abort_transaction(t.s).unwrap();
    assert_eq!(
        t.e.get_filter_by_key(t.s, f1.key),
        Err(WfpError::FilterNotFound)
    );
    assert_eq!(
        t.e.get_filter_by_key(t.s, f2.key),
        Err(WfpError::FilterNotFound)
    );
    assert_eq!(t.e.filter_count(), 0);
}

#[test]
fn case_22_writer_lock_wait_times_out() {
    let mut e = Engine::new();
    let a = e.open_session(false);
    let b = e
        .open_session_with(SessionOptions {
            txn_wait_timeout: Duration::from_millis(100),
            ..Default::default()
        })
        .unwrap();
    let t0 = Duration::from_secs(10);
    e.begin_transaction(a, false, t0).unwrap();
    assert_eq!(
        e.begin_transaction(b, false, t0),
        Err(WfpError::WouldBlock {
            retry_deadline: t0 + Duration::from_millis(100)
        })
    );
    assert!(matches!(
        e.begin_transaction(b, false, t0 + Duration::from_millis(99)),
        Err(WfpError::WouldBlock { .. })
    ));
    let r = e.begin_transaction(b, false, t0 + Duration::from_millis(100));
    assert_eq!(r, Err(WfpError::Timeout));
    assert_eq!(r.unwrap_err().hresult(), 0x8032_0012);
    // read-only transactions do not wait
    e.begin_transaction(b, true, t0).unwrap();
    e.commit_transaction(b).unwrap();
    // once A commits, B gets the lock
    e.commit_transaction(a).unwrap();
    e.begin_transaction(b, false, t0 + Duration::from_secs(1))
        .unwrap();
}

#[test]
fn case_23_dynamic_session_objects_die_with_session() {
    let mut e = Engine::new();
    let admin = e.open_session(false);
    let dynamic = e.open_session(true);
    let other = e.open_session(false);
    let d = e
        .add_filter(dynamic, &Filter::new("dyn", L, Action::Block))
        .unwrap();
    let st = e
        .add_filter(other, &Filter::new("static", L, Action::Permit))
        .unwrap();
    e.close_session(dynamic).unwrap();
    let all: Vec<u64> = e
        .enum_filters(admin, &FilterEnumTemplate::default())
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert!(!all.contains(&d));
    e.close_session(other).unwrap();
    let all: Vec<u64> = e
        .enum_filters(admin, &FilterEnumTemplate::default())
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(all, vec![st]);
}

#[test]
fn case_24_in_use_and_lifetime_mismatch() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let pc = e
        .add_provider_context(
            s,
            &ProviderContext::new("qm policy", 1, vec![1, 2, 3]).key(Guid::from_u128(0xC0)),
        )
        .unwrap();
    let _ = pc;
    e.add_filter(
        s,
        &Filter::new("uses ctx", Layer::IPSEC_V4, Action::Permit)
            .provider_context(Guid::from_u128(0xC0)),
    )
    .unwrap();
    assert_eq!(
        e.delete_provider_context_by_key(s, Guid::from_u128(0xC0)),
        Err(WfpError::InUse)
    );
    assert_eq!(WfpError::InUse.hresult(), 0x8032_000A);
    let dynamic = e.open_session(true);
    e.add_provider_context(
        dynamic,
        &ProviderContext::new("dyn ctx", 1, vec![]).key(Guid::from_u128(0xC1)),
    )
    .unwrap();
    let r = e.add_filter(
        s,
        &Filter::new("static -> dynamic", Layer::IPSEC_V4, Action::Permit)
            .provider_context(Guid::from_u128(0xC1)),
    );
    assert_eq!(r, Err(WfpError::LifetimeMismatch));
    assert_eq!(WfpError::LifetimeMismatch.hresult(), 0x8032_0016);
    // the dynamic session itself may reference its own context
    e.add_filter(
        dynamic,
        &Filter::new("dyn -> dyn", Layer::IPSEC_V4, Action::Permit)
            .provider_context(Guid::from_u128(0xC1)),
    )
    .unwrap();
}

#[test]
fn case_25_duplicate_key_and_builtin_object() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let f = Filter::new("k", L, Action::Block).key(Guid::from_u128(0xABC));
    e.add_filter(s, &f).unwrap();
    assert_eq!(e.add_filter(s, &f), Err(WfpError::AlreadyExists));
    assert_eq!(WfpError::AlreadyExists.hresult(), 0x8032_0009);
    assert_eq!(
        e.delete_sublayer_by_key(s, SUBLAYER_UNIVERSAL),
        Err(WfpError::BuiltinObject)
    );
    assert_eq!(WfpError::BuiltinObject.hresult(), 0x8032_0017);
}

// ------------------------------------------------------------------ extra engine behaviour

#[test]
fn auto_weight_more_specific_weighs_more() {
    use std::net::Ipv4Addr as A;
    let exact = vec![Condition::new(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::Uint32(1),
    )];
    let p24 = vec![Condition::new(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::v4_prefix(A::new(10, 0, 0, 0), 24),
    )];
    let p8 = vec![Condition::new(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::v4_prefix(A::new(10, 0, 0, 0), 8),
    )];
    let port = vec![Condition::new(
        Field::IP_REMOTE_PORT,
        MatchType::Equal,
        FwpValue::Uint16(80),
    )];
    let narrow = vec![Condition::new(
        Field::IP_REMOTE_PORT,
        MatchType::Range,
        FwpValue::range(FwpValue::Uint16(80), FwpValue::Uint16(90)),
    )];
    let wide = vec![Condition::new(
        Field::IP_REMOTE_PORT,
        MatchType::Range,
        FwpValue::range(FwpValue::Uint16(0), FwpValue::Uint16(65535)),
    )];
    let mut both = p8.clone();
    both.extend(port.clone());
    assert!(auto_weight(&exact) > auto_weight(&p24));
    assert!(auto_weight(&p24) > auto_weight(&p8));
    assert!(auto_weight(&p8) > auto_weight(&port));
    assert!(auto_weight(&both) > auto_weight(&p8));
    assert!(auto_weight(&port) > auto_weight(&narrow));
    assert!(auto_weight(&narrow) > auto_weight(&wide));
    assert_eq!(auto_weight(&[]), 0);
    assert!(auto_weight(&exact) <= AUTO_WEIGHT_MAX);
    // a specific auto-weight filter beats a general one in the same sublayer
    let mut e = Engine::new();
    let s = e.open_session(false);
    e.add_filter(
        s,
        &Filter::new("general block", L, Action::Block).condition(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(80),
        ),
    )
    .unwrap();
    let p = e
        .add_filter(
            s,
            &Filter::new("specific permit", L, Action::Permit)
                .condition(
                    Field::IP_REMOTE_PORT,
                    MatchType::Equal,
                    FwpValue::Uint16(80),
                )
                .condition(
                    Field::IP_REMOTE_ADDRESS,
                    MatchType::Equal,
                    FwpValue::Uint32(u32::from(A::new(10, 0, 0, 2))),
                ),
        )
        .unwrap();
    assert_eq!(e.classify(L, &conn()).decided_by.unwrap().id, p);
}

#[test]
fn match_types_semantics() {
    let c = |m, v| Condition::new(Field::IP_REMOTE_PORT, m, v);
    let p = FwpValue::Uint16(100);
    assert!(c(MatchType::Greater, FwpValue::Uint16(99)).matches(&p));
    assert!(!c(MatchType::Greater, FwpValue::Uint16(100)).matches(&p));
    assert!(c(MatchType::GreaterOrEqual, FwpValue::Uint16(100)).matches(&p));
    assert!(c(MatchType::Less, FwpValue::Uint16(101)).matches(&p));
    assert!(c(MatchType::LessOrEqual, FwpValue::Uint16(100)).matches(&p));
    assert!(c(MatchType::NotEqual, FwpValue::Uint16(1)).matches(&p));
    assert!(!c(MatchType::NotEqual, FwpValue::Uint16(100)).matches(&p));
    let f = |m, v: u32| Condition::new(Field::FLAGS, m, FwpValue::Uint32(v));
    let flags = FwpValue::Uint32(0b0110);
    assert!(f(MatchType::FlagsAllSet, 0b0110).matches(&flags));
    assert!(!f(MatchType::FlagsAllSet, 0b0111).matches(&flags));
    assert!(f(MatchType::FlagsAnySet, 0b0011).matches(&flags));
    assert!(f(MatchType::FlagsNoneSet, 0b1001).matches(&flags));
    let s = |m, v: &str| {
        Condition::new(
            Field::ALE_PACKAGE_FAMILY_NAME,
            m,
            FwpValue::UnicodeString(v.into()),
        )
    };
    let name = FwpValue::UnicodeString("Contoso.App_8wekyb".into());
    assert!(s(MatchType::EqualCaseInsensitive, "contoso.app_8WEKYB").matches(&name));
    assert!(s(MatchType::Prefix, "_8wekyb").matches(&name));
    assert!(s(MatchType::NotPrefix, "Contoso").matches(&name));
    // EMPTY
    assert!(Condition::new(
        Field::IP_ARRIVAL_INTERFACE,
        MatchType::Equal,
        FwpValue::Empty
    )
    .matches(&FwpValue::Empty));
    assert!(!Condition::new(
        Field::IP_ARRIVAL_INTERFACE,
        MatchType::Equal,
        FwpValue::Empty
    )
    .matches(&FwpValue::Uint64(3)));
    // tokens vs security descriptors
    let sd = Condition::new(
        Field::ALE_USER_ID,
        MatchType::Equal,
        FwpValue::sd(SecurityDescriptor::allow(["alice"])),
    );
    assert!(sd.matches(&FwpValue::token(Token::user("alice"))));
    assert!(!sd.matches(&FwpValue::token(Token::user("bob"))));
    // v6 prefix
    let v6 = Condition::new(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::V6AddrMask {
            addr: "fe80::".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            prefix_len: 10,
        },
    );
    assert!(v6.validate(Layer::ALE_AUTH_CONNECT_V6).is_ok());
    assert_eq!(
        v6.validate(Layer::ALE_AUTH_CONNECT_V4),
        Err(WfpError::TypeMismatch)
    );
    assert!(v6.matches(&FwpValue::addr("fe80::1".parse().unwrap())));
    assert!(!v6.matches(&FwpValue::addr("2001::1".parse().unwrap())));
}

#[test]
fn bad_masks_and_ranges() {
    let mask = Condition::new(
        Field::IP_REMOTE_ADDRESS,
        MatchType::Equal,
        FwpValue::V4AddrMask {
            addr: 0,
            mask: 0xFF00_FF00,
        },
    );
    assert_eq!(mask.validate(L), Err(WfpError::InvalidNetMask));
    let r = Condition::new(
        Field::IP_REMOTE_PORT,
        MatchType::Range,
        FwpValue::range(FwpValue::Uint16(9), FwpValue::Uint16(1)),
    );
    assert_eq!(r.validate(L), Err(WfpError::InvalidRange));
    let r = Condition::new(Field::IP_REMOTE_PORT, MatchType::Range, FwpValue::Uint16(9));
    assert_eq!(r.validate(L), Err(WfpError::MatchTypeMismatch));
}

#[test]
fn change_subscriptions_and_enum_templates() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let sub = e
        .subscribe_changes(
            s,
            SubscriptionSpec {
                kinds: vec![ObjectKind::Filter],
                layer: Some(L),
                ..Default::default()
            },
        )
        .unwrap();
    let a = e
        .add_filter(s, &Filter::new("a", L, Action::Block))
        .unwrap();
    e.add_filter(
        s,
        &Filter::new("other layer", Layer::ALE_AUTH_RECV_ACCEPT_V4, Action::Block),
    )
    .unwrap();
    e.begin_transaction(s, false, Duration::ZERO).unwrap();
    e.delete_filter_by_id(s, a).unwrap();
    assert!(
        e.drain_changes(sub).len() == 1,
        "delivered only after commit"
    );
    e.commit_transaction(s).unwrap();
    let ch = e.drain_changes(sub);
    assert_eq!(ch.len(), 1);
    assert_eq!((ch[0].change, ch[0].id), (ChangeType::Delete, a));
    let t = FilterEnumTemplate {
        layer: Some(Layer::ALE_AUTH_RECV_ACCEPT_V4),
        ..Default::default()
    };
    assert_eq!(e.enum_filters(s, &t).unwrap().len(), 1);
    assert_eq!(
        e.enum_filters(
            s,
            &FilterEnumTemplate {
                action_types: vec![0x1002],
                ..Default::default()
            }
        )
        .unwrap()
        .len(),
        0
    );
}

#[test]
fn layer_and_field_lookups_carry_windows_guids() {
    assert_eq!(Layer::from_name("FWPM_LAYER_ALE_AUTH_CONNECT_V4"), Some(L));
    assert_eq!(L.guid().to_string(), "c38d57d1-05a7-4c33-904f-7fbceee60e82");
    assert_eq!(
        Layer::from_guid("4a72393b-319f-44bc-84c3-ba54dcb3b6b4".parse().unwrap()),
        Some(Layer::ALE_AUTH_CONNECT_V6)
    );
    assert_eq!(
        Field::from_name("ip_remote_port"),
        Some(Field::IP_REMOTE_PORT)
    );
    assert_eq!(
        Field::IP_REMOTE_ADDRESS.guid().to_string(),
        "b235ae9a-1d64-49b8-a44c-5ff3d9095045"
    );
    assert_eq!(
        Layer::of(LayerKind::AuthRecvAccept, true),
        Some(Layer::ALE_AUTH_RECV_ACCEPT_V6)
    );
    let e = Engine::new();
    let names: Vec<String> = e
        .enum_sublayers(SessionId(0))
        .map(|v| v.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "unknown session -> error");
}

#[test]
fn net_event_ring_is_bounded_and_subscribable() {
    let mut e = Engine::with_options(EngineOptions {
        net_event_capacity: 3,
        ..Default::default()
    });
    let s = e.open_session(false);
    e.add_filter(s, &Filter::new("b", L, Action::Block))
        .unwrap();
    let sub = e.net_event_subscribe();
    for i in 0..5u64 {
        let r = e.classify(L, &conn());
        e.record_classify(
            Duration::from_secs(i),
            &r,
            NetEventHeader::default(),
            false,
            0,
        );
    }
    let seqs: Vec<u64> = e.net_events().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(e.net_events_overwritten(), 2);
    assert_eq!(e.net_event_drain(sub).len(), 3);
    assert!(e.net_event_drain(sub).is_empty());
}
