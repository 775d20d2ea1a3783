//! Spec parsing: every bad input maps to the right FWP_E_* reason, and nothing panics.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use wsock_wfp::*;

fn base() -> FilterSpec {
    FilterSpec {
        name: "t".into(),
        layer: "FWPM_LAYER_ALE_AUTH_CONNECT_V4".into(),
        action: "block".into(),
        ..Default::default()
    }
}

fn with_cond(field: &str, m: &str, v: ValueSpec) -> FilterSpec {
    FilterSpec {
        conditions: vec![ConditionSpec::new(field, m, v)],
        ..base()
    }
}

fn err(spec: &FilterSpec) -> WfpError {
    let mut e = Engine::new();
    let s = e.open_session(false);
    e.add_spec(s, spec).unwrap_err().error
}

#[test]
fn good_spec_adds_and_classifies() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    e.add_sublayer_spec(
        s,
        &SublayerSpec {
            name: "admin".into(),
            weight: 0x9000,
            ..Default::default()
        },
    )
    .unwrap();
    let spec = FilterSpec {
        sublayer: Some("admin".into()),
        weight: Some(WeightSpec::Text("range:3".into())),
        flags: vec!["clear_action_right".into()],
        conditions: vec![
            ConditionSpec::new(
                "FWPM_CONDITION_IP_REMOTE_ADDRESS",
                "equal",
                ValueSpec::Str("10.0.0.0/8".into()),
            ),
            ConditionSpec::new(
                "ip_remote_port",
                "range",
                ValueSpec::Range {
                    low: Box::new(ValueSpec::Int(1000)),
                    high: Box::new(ValueSpec::Int(2000)),
                },
            ),
            ConditionSpec::new("ip_protocol", "equal", ValueSpec::Str("tcp".into())),
            ConditionSpec::new("ale_app_id", "prefix", ValueSpec::Str("\\App.exe".into())),
            ConditionSpec::new(
                "ale_user_id",
                "equal",
                ValueSpec::Sd {
                    allow: vec!["alice".into()],
                    deny: vec![],
                },
            ),
            ConditionSpec::new(
                "flags",
                "flags_none_set",
                ValueSpec::Str("is_loopback".into()),
            ),
        ],
        ..base()
    };
    let id = e.add_spec(s, &spec).unwrap();
    let f = e.get_filter_by_id(s, id).unwrap();
    assert!(f.effective_weight >= 3 << 60 && f.effective_weight < 4 << 60);
    let v = IncomingValues::new()
        .with(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(0x0A01_0203))
        .with(Field::IP_REMOTE_PORT, FwpValue::Uint16(1500))
        .with(Field::IP_PROTOCOL, FwpValue::Uint8(6))
        .with(Field::ALE_APP_ID, FwpValue::app_id("C:\\bin\\app.exe"))
        .with(Field::ALE_USER_ID, FwpValue::token(Token::user("alice")))
        .with(Field::FLAGS, FwpValue::Uint32(0));
    assert_eq!(
        e.classify(Layer::ALE_AUTH_CONNECT_V4, &v)
            .decided_by
            .unwrap()
            .id,
        id
    );
}

#[test]
fn spec_deserializes_from_toml() {
    #[derive(serde::Deserialize)]
    struct Scenario {
        filters: Vec<FilterSpec>,
    }
    let text = r#"
        [[filters]]
        name = "block web"
        layer = "FWPM_LAYER_ALE_AUTH_CONNECT_V4"
        action = "block"
        weight = { range = 3 }
        flags = ["clear_action_right"]
        conditions = [
          { field = "ip_remote_port", match = "equal", value = 80 },
          { field = "ip_remote_address", match = "equal", value = "10.0.0.0/8" },
          { field = "ip_local_port", match = "range", value = { low = 1000, high = 2000 } },
          { field = "ale_user_id", match = "equal", value = { allow = ["alice"] } },
          { field = "ip_arrival_interface", match = "equal", value = { type = "empty" } },
        ]
        [[filters]]
        name = "typed"
        layer = "ALE_AUTH_CONNECT_V4"
        action = "permit"
        weight = 7
        conditions = [ { field = "ip_local_port", match = "equal", value = { type = "uint32", value = 80 } } ]
    "#;
    let sc: Scenario = toml::from_str(text).unwrap();
    let mut e = Engine::new();
    let s = e.open_session(false);
    e.add_spec(s, &sc.filters[0]).unwrap();
    assert_eq!(
        e.add_spec(s, &sc.filters[1]).unwrap_err().error,
        WfpError::TypeMismatch
    );
    assert!(toml::from_str::<Scenario>("[[filters]]\nname = 1").is_err());
}

#[test]
fn unknown_layer() {
    assert_eq!(
        err(&FilterSpec {
            layer: "FWPM_LAYER_NOPE".into(),
            ..base()
        }),
        WfpError::LayerNotFound
    );
}

#[test]
fn unknown_field() {
    assert_eq!(
        err(&with_cond("ip_remote_prot", "equal", ValueSpec::Int(1))),
        WfpError::ConditionNotFound
    );
}

#[test]
fn field_not_at_layer() {
    let s = FilterSpec {
        layer: "ALE_RESOURCE_ASSIGNMENT_V4".into(),
        ..with_cond("ip_remote_port", "equal", ValueSpec::Int(1))
    };
    assert_eq!(err(&s), WfpError::ConditionNotFound);
}

#[test]
fn wrong_value_types() {
    let typed = |t: &str, v: ValueSpec| ValueSpec::Typed {
        ty: t.into(),
        value: Some(Box::new(v)),
    };
    assert_eq!(
        err(&with_cond(
            "ip_local_port",
            "equal",
            typed("uint32", ValueSpec::Int(80))
        )),
        WfpError::TypeMismatch
    );
    assert_eq!(
        err(&with_cond(
            "ip_local_port",
            "equal",
            ValueSpec::Str("http".into())
        )),
        WfpError::TypeMismatch
    );
    assert_eq!(
        err(&with_cond(
            "ip_remote_address",
            "equal",
            ValueSpec::Str("::1".into())
        )),
        WfpError::TypeMismatch
    );
    assert_eq!(
        err(&with_cond(
            "ip_remote_address",
            "equal",
            ValueSpec::Str("not an ip".into())
        )),
        WfpError::TypeMismatch
    );
    assert_eq!(
        err(&with_cond("ip_local_port", "equal", ValueSpec::Int(70000))),
        WfpError::OutOfBounds
    );
    assert_eq!(
        err(&with_cond(
            "ip_remote_address",
            "equal",
            ValueSpec::Str("10.0.0.0/33".into())
        )),
        WfpError::InvalidNetMask
    );
    assert_eq!(
        err(&with_cond(
            "ip_remote_address",
            "equal",
            ValueSpec::Str("10.0.0.0/255.0.255.0".into())
        )),
        WfpError::InvalidNetMask
    );
    let r = ValueSpec::Range {
        low: Box::new(ValueSpec::Int(9)),
        high: Box::new(ValueSpec::Int(1)),
    };
    assert_eq!(
        err(&with_cond("ip_local_port", "range", r)),
        WfpError::InvalidRange
    );
    assert_eq!(
        err(&with_cond("ip_local_port", "range", ValueSpec::Int(1))),
        WfpError::MatchTypeMismatch
    );
    assert_eq!(
        err(&with_cond(
            "ale_package_family_name",
            "flags_all_set",
            ValueSpec::Str("x".into())
        )),
        WfpError::MatchTypeMismatch
    );
    assert_eq!(
        err(&with_cond(
            "ip_local_port",
            "equal",
            typed("float128", ValueSpec::Int(1))
        )),
        WfpError::InvalidParameter
    );
}

#[test]
fn bad_match_action_flags_weight_sublayer_name() {
    assert_eq!(
        err(&with_cond(
            "ip_local_port",
            "approximately",
            ValueSpec::Int(1)
        )),
        WfpError::InvalidParameter
    );
    assert_eq!(
        err(&FilterSpec {
            action: "drop".into(),
            ..base()
        }),
        WfpError::InvalidActionType
    );
    assert_eq!(
        err(&FilterSpec {
            action: "callout_terminating".into(),
            ..base()
        }),
        WfpError::CalloutNotFound
    );
    assert_eq!(
        err(&FilterSpec {
            flags: vec!["sticky".into()],
            ..base()
        }),
        WfpError::InvalidFlags
    );
    assert_eq!(
        err(&FilterSpec {
            flags: vec!["persistent".into(), "boottime".into()],
            ..base()
        }),
        WfpError::InvalidFlags
    );
    assert_eq!(
        err(&FilterSpec {
            weight: Some(WeightSpec::Table {
                range: Some(16),
                exact: None
            }),
            ..base()
        }),
        WfpError::InvalidWeight
    );
    assert_eq!(
        err(&FilterSpec {
            weight: Some(WeightSpec::Text("heavy".into())),
            ..base()
        }),
        WfpError::InvalidWeight
    );
    assert_eq!(
        err(&FilterSpec {
            sublayer: Some("nope".into()),
            ..base()
        }),
        WfpError::SublayerNotFound
    );
    assert_eq!(
        err(&FilterSpec {
            provider: Some("nope".into()),
            ..base()
        }),
        WfpError::ProviderNotFound
    );
    assert_eq!(
        err(&FilterSpec {
            provider_context: Some("nope".into()),
            ..base()
        }),
        WfpError::ProviderContextNotFound
    );
    assert_eq!(
        err(&FilterSpec {
            key: Some("xyz".into()),
            ..base()
        }),
        WfpError::InvalidParameter
    );
    assert_eq!(
        err(&FilterSpec {
            name: String::new(),
            ..base()
        }),
        WfpError::NullDisplayName
    );
    let mut e = Engine::new();
    let s = e.open_session(false);
    let se = e
        .add_spec(
            s,
            &with_cond("ip_local_port", "equal", ValueSpec::Int(70000)),
        )
        .unwrap_err();
    assert_eq!(se.path, "conditions[0].value");
    assert_eq!(se.hresult(), 0x8032_0028);
    assert!(se.to_string().contains("FWP_E_OUT_OF_BOUNDS"));
}

#[test]
fn builtin_sublayer_by_name_and_v6_values() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let spec = FilterSpec {
        layer: "ALE_AUTH_CONNECT_V6".into(),
        sublayer: Some("FWPM_SUBLAYER_SECURE_SOCKET".into()),
        conditions: vec![
            ConditionSpec::new(
                "ip_remote_address",
                "equal",
                ValueSpec::Str("fe80::/10".into()),
            ),
            ConditionSpec::new(
                "ip_remote_address",
                "equal",
                ValueSpec::Str("10.0.0.0/8".into()),
            ),
        ],
        ..base()
    };
    let id = e.add_spec(s, &spec).unwrap();
    assert_eq!(
        e.get_filter_by_id(s, id).unwrap().sublayer,
        SUBLAYER_SECURE_SOCKET
    );
    let mapped = FwpValue::addr("::ffff:10.1.2.3".parse().unwrap());
    let v = IncomingValues::new().with(Field::IP_REMOTE_ADDRESS, mapped);
    assert!(e.classify(Layer::ALE_AUTH_CONNECT_V6, &v).is_block());
}

fn any_value() -> impl Strategy<Value = ValueSpec> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(ValueSpec::Int),
        ".{0,12}".prop_map(ValueSpec::Str)
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| ValueSpec::Range {
                low: Box::new(a),
                high: Box::new(b)
            }),
            ("[a-z0-9_]{0,14}", prop::option::of(inner)).prop_map(|(t, v)| ValueSpec::Typed {
                ty: t,
                value: v.map(Box::new)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(Config { cases: 2000, rng_seed: RngSeed::Fixed(7), failure_persistence: None, ..Config::default() })]

    #[test]
    fn spec_validation_never_panics(
        layer in prop_oneof![Just("ALE_AUTH_CONNECT_V4".to_string()), Just("ALE_AUTH_CONNECT_V6".to_string()), Just("ALE_RESOURCE_ASSIGNMENT_V4".to_string()), ".{0,10}"],
        field in prop_oneof![Just("ip_remote_address".to_string()), Just("ip_local_port".to_string()), Just("ale_app_id".to_string()), Just("flags".to_string()), Just("ale_user_id".to_string()), Just("ip_protocol".to_string()), ".{0,10}"],
        m in prop_oneof![Just("equal".to_string()), Just("range".to_string()), Just("prefix".to_string()), Just("flags_all_set".to_string()), Just("not_equal".to_string()), ".{0,6}"],
        value in any_value(),
        weight in prop::option::of(prop_oneof![any::<u64>().prop_map(WeightSpec::Exact), ".{0,8}".prop_map(WeightSpec::Text)]),
    ) {
        let mut e = Engine::new();
        let s = e.open_session(false);
        let spec = FilterSpec { layer, weight, conditions: vec![ConditionSpec::new(&field, &m, value)], ..base() };
        if let Err(se) = e.add_spec(s, &spec) {
            prop_assert_eq!(se.error.hresult() & 0xFFFF_0000, 0x8032_0000);
        }
    }
}
