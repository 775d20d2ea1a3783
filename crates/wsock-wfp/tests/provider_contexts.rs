//! Typed provider contexts through the engine API, and firewall rules: validation on add,
//! typed data round trips, lookups from IPsec policy filters, and bad input that never panics.

use proptest::prelude::*;
use wsock_wfp::firewall::{FirewallRuleSpec, PortSpec};
use wsock_wfp::*;

fn qm_gcm() -> IpsecQmPolicy {
    IpsecQmPolicy {
        proposals: vec![IpsecProposal::single(IpsecTransform::EspAuthAndCipher {
            auth: IpsecAuth::GcmAes256,
            cipher: IpsecCipher::GcmAes256,
        })],
        ..IpsecQmPolicy::windows_default()
    }
}

#[test]
fn typed_contexts_round_trip_and_are_named_by_policy_filters() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let mm_key = Guid::from_u128(0xA1);
    let qm_key = Guid::from_u128(0xA2);
    e.add_provider_context(
        s,
        &ProviderContext::authip_mm("mm", IkeMmPolicy::windows_default()).key(mm_key),
    )
    .unwrap();
    e.add_provider_context(
        s,
        &ProviderContext::ipsec_qm_transport("qm", qm_gcm()).key(qm_key),
    )
    .unwrap();
    e.add_filter(
        s,
        &Filter::new("mm", Layer::IKEEXT_V4, Action::Permit).provider_context(mm_key),
    )
    .unwrap();
    let qm_filter = e
        .add_filter(
            s,
            &Filter::new("qm", Layer::IPSEC_V4, Action::Permit).provider_context(qm_key),
        )
        .unwrap();
    // what the keying module does: match the traffic at the IPSEC layer, read the policy
    let r = e.classify(Layer::IPSEC_V4, &IncomingValues::new());
    let f = e.resolve_filter(&r.decided_by.unwrap()).unwrap().clone();
    assert_eq!(f.id, qm_filter);
    let ctx = e
        .get_provider_context_by_key(s, f.provider_context_key.unwrap())
        .unwrap();
    let qm = ctx.ipsec_qm_policy().unwrap();
    assert!(qm.proposals[0].encrypts());
    assert_eq!(
        qm.proposals[0].transforms[0].cipher(),
        Some(IpsecCipher::GcmAes256)
    );
    assert_eq!(ctx.ike_mm_policy(), None);
    assert_eq!(ctx.opaque_data(), None);
    let all = e.enum_provider_contexts(s).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].ike_mm_policy().unwrap(),
        &IkeMmPolicy::windows_default()
    );
    assert_eq!(all[0].context_type, provider_context_type::IPSEC_AUTHIP_MM);
}

#[test]
fn invalid_typed_contexts_are_refused_and_nothing_is_added() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let mut empty = qm_gcm();
    empty.proposals.clear();
    let mut zero = qm_gcm();
    zero.proposals[0].lifetime.seconds = 0;
    let mut ah_cipher = qm_gcm();
    ah_cipher.proposals[0].transforms = vec![
        IpsecTransform::Ah {
            auth: IpsecAuth::HmacSha256_128,
        },
        IpsecTransform::Ah {
            auth: IpsecAuth::HmacSha1_96,
        },
    ];
    let cases = [
        (
            ProviderContext::ipsec_qm_transport("empty", empty),
            WfpError::ZeroLengthArray,
        ),
        (
            ProviderContext::ipsec_qm_transport("zero", zero),
            WfpError::InvalidParameter,
        ),
        (
            ProviderContext::ipsec_qm_transport("2 ah", ah_cipher),
            WfpError::InvalidTransformCombination,
        ),
        // a quick-mode policy in a main-mode context
        (
            ProviderContext::ipsec_qm_transport("mismatch", qm_gcm())
                .context_type(provider_context_type::IPSEC_IKE_MM),
            WfpError::ProviderContextMismatch,
        ),
        // tunnel context without endpoints
        (
            ProviderContext::ipsec_qm_tunnel("tunnel", qm_gcm()),
            WfpError::InvalidTunnelEndpoint,
        ),
        // anonymous main mode in an IKE (not AuthIP) context
        (
            ProviderContext::ike_mm("anon", IkeMmPolicy::windows_default()),
            WfpError::IncompatibleAuthMethod,
        ),
    ];
    for (ctx, want) in cases {
        assert_eq!(e.add_provider_context(s, &ctx), Err(want), "{}", ctx.name);
        assert_eq!(ctx.validate().unwrap_err().error, want);
    }
    assert!(e.enum_provider_contexts(s).unwrap().is_empty());
    // opaque data is never validated, whatever the type (existing callers)
    e.add_provider_context(s, &ProviderContext::new("opaque qm", 1, vec![1, 2, 3]))
        .unwrap();
    assert_eq!(
        e.add_provider_context(s, &ProviderContext::new("type 15", 15, vec![])),
        Err(WfpError::InvalidParameter)
    );
}

#[test]
fn context_spec_resolves_its_provider_and_reports_the_path() {
    let mut e = Engine::new();
    let s = e.open_session(false);
    e.add_provider_spec(
        s,
        &ProviderSpec {
            name: "lab".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let spec: ProviderContextSpec = toml::from_str(
        r#"
        name = "mm"
        type = "ikev2-mm"
        provider = "lab"
        auth = [{ method = "IKEEXT_CERTIFICATE_ECDSA_P256", root_ca = "Lab CA" }]
        [[proposal]]
        cipher = "IKEEXT_CIPHER_AES_256"
        integrity = "IKEEXT_INTEGRITY_SHA_384"
        dh_group = "IKEEXT_DH_ECP_384"
        "#,
    )
    .unwrap();
    let id = e.add_provider_context_spec(s, &spec).unwrap();
    let c = e.get_provider_context_by_id(s, id).unwrap();
    assert!(c.provider_key.is_some());
    let p = c.ike_mm_policy().unwrap();
    assert_eq!(p.proposals[0].max_lifetime_seconds, 28800);
    assert_eq!(p.proposals[0].dh_group.iana(), Some(20));
    // a quick-mode field in a main-mode proposal
    let mut bad = spec.clone();
    bad.name = "bad".into();
    bad.proposal[0].pfs_group = Some("IPSEC_PFS_MM".into());
    let err = e.add_provider_context_spec(s, &bad).unwrap_err();
    assert_eq!(
        (err.error, err.path.as_str()),
        (WfpError::InvalidParameter, "proposal[0].pfs_group")
    );
    // unknown provider
    let mut bad = spec.clone();
    bad.name = "bad2".into();
    bad.provider = Some("nobody".into());
    assert_eq!(
        e.add_provider_context_spec(s, &bad).unwrap_err().error,
        WfpError::ProviderNotFound
    );
    // opaque data
    let spec = ProviderContextSpec {
        name: "general".into(),
        context_type: "FWPM_GENERAL_CONTEXT".into(),
        data: Some("de ad be ef".into()),
        ..Default::default()
    };
    let id = e.add_provider_context_spec(s, &spec).unwrap();
    assert_eq!(
        e.get_provider_context_by_id(s, id).unwrap().opaque_data(),
        Some(&[0xde, 0xad, 0xbe, 0xef][..])
    );
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("aes-128".to_string()),
        Just("IKEEXT_DH_ECP_256".to_string()),
        Just("IPSEC_AUTH_TYPE_SHA_256".to_string()),
        Just("IPSEC_CIPHER_TYPE_AES_GCM_128".to_string()),
        Just("esp-auth-and-cipher".to_string()),
        Just("ah".to_string()),
        Just("ike-mm".to_string()),
        Just("ipsec-qm-tunnel".to_string()),
        Just("windows-default".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

fn transform() -> impl Strategy<Value = TransformSpec> {
    (
        word(),
        proptest::option::of(word()),
        proptest::option::of(word()),
    )
        .prop_map(|(kind, auth, cipher)| TransformSpec { kind, auth, cipher })
}

fn proposal() -> impl Strategy<Value = ProposalSpec> {
    (
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::option::of(0u32..5),
        proptest::collection::vec(transform(), 0..3),
        proptest::option::of(word()),
    )
        .prop_map(
            |(cipher, integrity, dh_group, lifetime_seconds, transforms, pfs_group)| ProposalSpec {
                cipher,
                integrity,
                dh_group,
                lifetime_seconds,
                transforms,
                pfs_group,
                ..Default::default()
            },
        )
}

proptest! {
    // Random specs never panic: they build or fail with a typed error and a path.
    #[test]
    fn random_context_specs_never_panic(
        name in word(),
        ty in prop_oneof![word(), Just("authip-qm-transport".to_string()), Just("authip-mm".to_string())],
        preset in proptest::option::of(word()),
        auth in proptest::collection::vec((word(), proptest::option::of(word())), 0..3),
        proposals in proptest::collection::vec(proposal(), 0..3),
        flags in proptest::option::of(proptest::collection::vec(word(), 0..2)),
        replay in proptest::option::of(any::<u32>()),
        data in proptest::option::of(word()),
    ) {
        let spec = ProviderContextSpec {
            name,
            context_type: ty,
            preset,
            auth: auth.into_iter().map(|(method, root_ca)| IkeAuthMethodSpec { method, root_ca }).collect(),
            proposal: proposals,
            policy_flags: flags,
            replay_window: replay,
            data,
            ..Default::default()
        };
        let mut e = Engine::new();
        let s = e.open_session(false);
        match e.add_provider_context_spec(s, &spec) {
            Ok(id) => {
                let c = e.get_provider_context_by_id(s, id).unwrap();
                prop_assert!(c.validate().is_ok());
            }
            Err(err) => prop_assert!(err.hresult() >> 16 == 0x8032, "{err}"),
        }
    }

    #[test]
    fn random_firewall_specs_never_panic(
        name in word(),
        direction in prop_oneof![Just("in".to_string()), Just("out".to_string()), word()],
        action in prop_oneof![Just("allow".to_string()), Just("block".to_string()),
            Just("allow-if-secure".to_string()), Just("bypass".to_string()), word()],
        enc in any::<bool>(),
        proto in proptest::option::of(prop_oneof![(-3i64..300).prop_map(PortSpec::Num), word().prop_map(PortSpec::Text)]),
        ports in proptest::collection::vec(prop_oneof![(-3i64..70000).prop_map(PortSpec::Num), word().prop_map(PortSpec::Text), Just(PortSpec::Text("10-5".into()))], 0..3),
        addrs in proptest::collection::vec(prop_oneof![Just("10.0.0.0/8".to_string()), Just("fd00::1/129".to_string()), word()], 0..3),
        computers in proptest::collection::vec(word(), 0..2),
        users in proptest::collection::vec(word(), 0..2),
    ) {
        let spec = FirewallRuleSpec {
            name, direction, action, require_encryption: enc, protocol: proto,
            local_ports: ports, remote_addresses: addrs,
            authorized_computers: computers, authorized_users: users,
            ..Default::default()
        };
        let mut e = Engine::new();
        let s = e.open_session(false);
        match spec.build() {
            Ok(rule) => match firewall::install(&mut e, s, &rule) {
                Ok(ids) => prop_assert_eq!(ids.len(), e.filter_count()),
                Err(err) => {
                    prop_assert_eq!(e.filter_count(), 0);
                    prop_assert!(err.hresult() >> 16 == 0x8032, "{}", err);
                }
            },
            Err(err) => prop_assert!(err.hresult() >> 16 == 0x8032, "{}", err),
        }
    }
}
