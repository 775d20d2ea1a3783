//! Issue 6 ("the host core, ready for IPsec"), parts 4 and 5: ALE per packet and per flow,
//! what a deciding filter asks for beyond permit/block (IPsec callouts, raw contexts, provider
//! contexts), room for secure-socket state, typed errors, accepted sockets, selective
//! re-authorization and the local address of an implicitly bound connect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wsock_ale::*;
use wsock_wfp::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ale() -> (Ale, SessionId) {
    let mut a = Ale::new(Engine::new());
    let s = a.engine_mut().open_session(false);
    (a, s)
}

fn ctx(p: Protocol) -> EndpointContext {
    EndpointContext::new("C:\\Apps\\Client.exe", "HOSTA\\alice", p, false)
}

fn add(a: &mut Ale, s: SessionId, f: Filter) -> u64 {
    a.engine_mut().add_filter(s, &f).unwrap()
}

fn block_remote_port(a: &mut Ale, s: SessionId, layer: Layer, port: u16) -> u64 {
    add(
        a,
        s,
        Filter::new(format!("block {port}"), layer, Action::Block).condition(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(port),
        ),
    )
}

/// A connected, established TCP client flow.
fn tcp_client(a: &mut Ale, local: &str, remote: &str) -> (EndpointId, FlowId) {
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let f = a
        .connect(ep, sa(local), sa(remote), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    assert!(a.established(f, secs(1)).unwrap().is_permit());
    (ep, f)
}

/// A listening TCP server on `local`.
fn tcp_server(a: &mut Ale, local: &str) -> EndpointId {
    let srv = a.create_endpoint(EndpointContext::new(
        "C:\\srv.exe",
        "SYSTEM",
        Protocol::Tcp,
        false,
    ));
    let l = sa(local);
    assert!(a.bind(srv, l, l.port(), secs(0)).unwrap().is_permit());
    assert!(a.listen(srv, secs(0)).unwrap().is_permit());
    srv
}

fn syn(a: &mut Ale, srv: EndpointId, local: &str, remote: &str) -> FlowId {
    let f = a
        .inbound_connection(srv, sa(local), sa(remote), &InboundInfo::default(), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    assert!(a.established(f, secs(1)).unwrap().is_permit());
    f
}

// ------------------------------------------------------------------ 1. per packet, per flow

#[test]
fn flow_for_finds_tcp_and_udp_flows_by_five_tuple() {
    let (mut a, _) = ale();
    let (_, tcp) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    assert_eq!(
        a.flow_for(Protocol::Tcp, sa("10.0.0.1:50000"), sa("10.0.0.2:80")),
        Some(tcp)
    );
    assert_eq!(
        a.flow_for(Protocol::Udp, sa("10.0.0.1:50000"), sa("10.0.0.2:80")),
        None,
        "the protocol is part of the key"
    );
    // a UDP socket bound to the wildcard address: found with the concrete local address
    let u = a.create_endpoint(ctx(Protocol::Udp));
    a.bind(u, sa("0.0.0.0:5353"), 5353, secs(0)).unwrap();
    let uf = a
        .udp_recv(u, sa("10.0.0.7:5353"), &InboundInfo::default(), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    assert_eq!(
        a.flow_for(Protocol::Udp, sa("10.0.0.1:5353"), sa("10.0.0.7:5353")),
        Some(uf)
    );
    // deterministic order: by id
    let ids: Vec<FlowId> = a.flows().map(|f| f.id).collect();
    assert_eq!(ids, vec![tcp, uf]);
    a.close_flow(tcp, secs(2)).unwrap();
    assert_eq!(
        a.flow_for(Protocol::Tcp, sa("10.0.0.1:50000"), sa("10.0.0.2:80")),
        None
    );
}

#[test]
fn tcp_data_is_classified_per_packet_at_the_transport_layers() {
    let (mut a, s) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    // filters at both transport layers that permit this flow's packets
    add(
        &mut a,
        s,
        Filter::new("out", Layer::OUTBOUND_TRANSPORT_V4, Action::Permit),
    );
    add(
        &mut a,
        s,
        Filter::new("in", Layer::INBOUND_TRANSPORT_V4, Action::Permit),
    );
    for i in 0..3 {
        assert!(a
            .packet(f, Direction::Outbound, secs(2 + i))
            .unwrap()
            .is_permit());
        assert!(a
            .packet(f, Direction::Inbound, secs(2 + i))
            .unwrap()
            .is_permit());
    }
    assert_eq!(a.classify_count(Layer::OUTBOUND_TRANSPORT_V4), 3);
    assert_eq!(a.classify_count(Layer::INBOUND_TRANSPORT_V4), 3);
    // a transport block drops one data packet and keeps the flow
    let b = block_remote_port(&mut a, s, Layer::OUTBOUND_TRANSPORT_V4, 80);
    let v = a.packet(f, Direction::Outbound, secs(9)).unwrap();
    assert_eq!(
        (v.block().unwrap().filter_id, v.block().unwrap().effect),
        (Some(b), BlockEffect::PacketDropped)
    );
    assert!(a.flow(f).is_some());
}

#[test]
fn no_transport_filter_means_no_per_packet_classification() {
    let (mut a, _) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let n = a.trace().count();
    for d in [Direction::Outbound, Direction::Inbound, Direction::Outbound] {
        assert!(a.packet(f, d, secs(2)).unwrap().is_permit());
    }
    assert_eq!(a.trace().count(), n, "fast path: nothing classified");
    assert_eq!(a.flow(f).unwrap().last_activity, secs(2));
}

#[test]
fn packet_with_ipsec_secured_sets_the_flag_at_the_transport_layer() {
    let (mut a, s) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    add(
        &mut a,
        s,
        Filter::new("clear text in", Layer::INBOUND_TRANSPORT_V4, Action::Block).condition(
            Field::FLAGS,
            MatchType::FlagsNoneSet,
            FwpValue::Uint32(condition_flags::IS_IPSEC_SECURED),
        ),
    );
    let secured = PacketInfo {
        ipsec_secured: true,
    };
    assert!(a
        .packet_with(f, Direction::Inbound, &secured, secs(2))
        .unwrap()
        .is_permit());
    let r = a.trace().last().unwrap().clone();
    assert_ne!(r.flags & condition_flags::IS_IPSEC_SECURED, 0);
    assert!(!a
        .packet(f, Direction::Inbound, secs(2))
        .unwrap()
        .is_permit());
}

// ------------------------------------------------------------------ 2. protection requests

#[test]
fn outbound_transport_ipsec_callout_yields_a_protection_request() {
    let (mut a, s) = ale();
    a.install_ipsec_callouts(s).unwrap();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let mut out = Filter::new(
        "ipsec out",
        Layer::OUTBOUND_TRANSPORT_V4,
        Action::CalloutTerminating(callouts::IPSEC_OUTBOUND_TRANSPORT_V4),
    )
    .condition(
        Field::IP_REMOTE_PORT,
        MatchType::Equal,
        FwpValue::Uint16(80),
    );
    out.raw_context = contexts::IPSEC_OUTBOUND_NEGOTIATE_DISCOVER;
    let oid = add(&mut a, s, out);
    let mut inb = Filter::new(
        "ipsec in",
        Layer::INBOUND_TRANSPORT_V4,
        Action::CalloutTerminating(callouts::IPSEC_INBOUND_TRANSPORT_V4),
    );
    inb.raw_context = contexts::IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY;
    let iid = add(&mut a, s, inb);

    let v = a.packet(f, Direction::Outbound, secs(2)).unwrap();
    let p = *v.protection().expect("the callout filter decided");
    assert_eq!(p.layer, Layer::OUTBOUND_TRANSPORT_V4);
    assert_eq!(p.filter_id, oid);
    assert_eq!(p.callout, Some(callouts::IPSEC_OUTBOUND_TRANSPORT_V4));
    assert_eq!(p.ipsec_callout, Some(IpsecCallout::OutboundTransport));
    assert_eq!(p.raw_context, contexts::IPSEC_OUTBOUND_NEGOTIATE_DISCOVER);
    assert!(p.negotiate_discover());
    assert!(
        !p.requires_security(),
        "negotiation discovery: clear allowed"
    );
    assert_eq!(p.provider_context, None);

    let v = a.packet(f, Direction::Inbound, secs(2)).unwrap();
    let p = *v.protection().unwrap();
    assert_eq!(
        (p.filter_id, p.ipsec_callout),
        (iid, Some(IpsecCallout::InboundTransport))
    );
    assert!(p.persist_connection_security());
    assert!(p.requires_security());
    // the filter key is the one the engine generated
    let key = a.engine().get_filter_by_id(s, iid).unwrap().key;
    assert_eq!(p.filter_key, key);
}

#[test]
fn ale_connect_callout_require_encryption_rides_on_connect_flow_and_packets() {
    let (mut a, s) = ale();
    a.install_ipsec_callouts(s).unwrap();
    let mut f = Filter::new(
        "guaranteed encryption",
        Layer::ALE_AUTH_CONNECT_V4,
        Action::CalloutTerminating(callouts::IPSEC_ALE_CONNECT_V4),
    )
    .condition(
        Field::IP_REMOTE_PORT,
        MatchType::Equal,
        FwpValue::Uint16(445),
    );
    f.raw_context = contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY
        | contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION;
    let fid = add(&mut a, s, f);
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let v = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:445"), secs(1))
        .unwrap();
    let p = *v.protection().unwrap();
    assert_eq!(
        (p.layer, p.filter_id, p.ipsec_callout),
        (
            Layer::ALE_AUTH_CONNECT_V4,
            fid,
            Some(IpsecCallout::AleConnect)
        )
    );
    assert!(p.requires_security() && p.requires_encryption());
    let flow = v.flow().unwrap();
    assert_eq!(a.flow(flow).unwrap().protection, Some(p));
    // no transport filter: a data packet carries the flow's own request
    assert_eq!(
        a.packet(flow, Direction::Outbound, secs(2))
            .unwrap()
            .protection(),
        Some(&p)
    );
    // a plain connect elsewhere carries none
    let ep2 = a.create_endpoint(ctx(Protocol::Tcp));
    let v = a
        .connect(ep2, sa("10.0.0.1:50001"), sa("10.0.0.2:80"), secs(1))
        .unwrap();
    assert!(v.is_permit() && v.protection().is_none());
}

#[test]
fn inbound_initiate_secure_on_recv_accept_and_provider_context_on_a_plain_permit() {
    let (mut a, s) = ale();
    a.install_ipsec_callouts(s).unwrap();
    add(
        &mut a,
        s,
        Filter::new(
            "inbound must be secure",
            Layer::ALE_AUTH_RECV_ACCEPT_V4,
            Action::CalloutTerminating(callouts::IPSEC_INBOUND_INITIATE_SECURE_V4),
        ),
    );
    let srv = tcp_server(&mut a, "10.0.0.2:80");
    let v = a
        .inbound_connection(
            srv,
            sa("10.0.0.2:80"),
            sa("10.0.0.1:50000"),
            &InboundInfo::default(),
            secs(1),
        )
        .unwrap();
    let p = *v.protection().unwrap();
    assert_eq!(p.ipsec_callout, Some(IpsecCallout::InboundInitiateSecure));
    assert!(p.requires_security());

    // a permit filter naming a provider context carries it, with no callout
    let ctx_key = Guid::from_u128(0x77);
    a.engine_mut()
        .add_provider_context(s, &ProviderContext::new("qm", 1, vec![]).key(ctx_key))
        .unwrap();
    add(
        &mut a,
        s,
        Filter::new("with context", Layer::ALE_AUTH_CONNECT_V4, Action::Permit)
            .provider_context(ctx_key),
    );
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let v = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.9:80"), secs(1))
        .unwrap();
    let p = *v.protection().unwrap();
    assert_eq!((p.callout, p.provider_context), (None, Some(ctx_key)));
    assert!(!p.requires_security());
}

#[test]
fn ipsec_callout_added_but_not_registered_blocks() {
    let (mut a, s) = ale();
    // the callout object exists, its code is not registered: the filter acts as a block
    a.engine_mut()
        .add_callout(
            s,
            &CalloutObject::new(
                "FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4",
                callouts::IPSEC_OUTBOUND_TRANSPORT_V4,
                Layer::OUTBOUND_TRANSPORT_V4,
            ),
        )
        .unwrap();
    let fid = add(
        &mut a,
        s,
        Filter::new(
            "ipsec out",
            Layer::OUTBOUND_TRANSPORT_V4,
            Action::CalloutTerminating(callouts::IPSEC_OUTBOUND_TRANSPORT_V4),
        ),
    );
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let v = a.packet(f, Direction::Outbound, secs(2)).unwrap();
    assert_eq!(v.block().unwrap().filter_id, Some(fid));
    // installing the callouts (idempotent with respect to the existing object) fixes it
    a.install_ipsec_callouts(s).unwrap();
    a.install_ipsec_callouts(s).unwrap();
    assert!(a
        .packet(f, Direction::Outbound, secs(3))
        .unwrap()
        .protection()
        .is_some());
}

#[test]
fn ikeext_and_ipsec_policy_lookups_return_the_provider_context() {
    let (mut a, s) = ale();
    let (mm, qm, mm6) = (
        Guid::from_u128(0x11),
        Guid::from_u128(0x22),
        Guid::from_u128(0x33),
    );
    for (name, t, k) in [("mm", 6, mm), ("qm", 3, qm), ("mm6", 6, mm6)] {
        a.engine_mut()
            .add_provider_context(s, &ProviderContext::new(name, t, vec![]).key(k))
            .unwrap();
    }
    let mm_f = add(
        &mut a,
        s,
        Filter::new("mm to .2", Layer::IKEEXT_V4, Action::Permit)
            .condition(
                Field::IP_REMOTE_ADDRESS,
                MatchType::Equal,
                FwpValue::addr(ip("10.0.0.2")),
            )
            .provider_context(mm),
    );
    let qm_f = add(
        &mut a,
        s,
        Filter::new("qm tcp 80", Layer::IPSEC_V4, Action::Permit)
            .condition(
                Field::IP_REMOTE_PORT,
                MatchType::Equal,
                FwpValue::Uint16(80),
            )
            .condition(Field::IP_PROTOCOL, MatchType::Equal, FwpValue::Uint8(6))
            .provider_context(qm),
    );
    add(
        &mut a,
        s,
        Filter::new("mm v6", Layer::IKEEXT_V6, Action::Permit).provider_context(mm6),
    );

    let p = a
        .ikeext_policy(ip("10.0.0.1"), ip("10.0.0.2"), secs(1))
        .unwrap();
    assert_eq!(
        (p.layer, p.filter_id, p.provider_context),
        (Layer::IKEEXT_V4, mm_f, mm)
    );
    assert_eq!(
        a.ikeext_policy(ip("10.0.0.1"), ip("10.0.0.3"), secs(1)),
        None
    );
    // v4-mapped addresses stay at the V4 layer; real IPv6 goes to V6
    assert_eq!(
        a.ikeext_policy(ip("::ffff:10.0.0.1"), ip("::ffff:10.0.0.2"), secs(1))
            .map(|p| p.provider_context),
        Some(mm)
    );
    assert_eq!(
        a.ikeext_policy(ip("2001:db8::1"), ip("2001:db8::2"), secs(1))
            .map(|p| (p.layer, p.provider_context)),
        Some((Layer::IKEEXT_V6, mm6))
    );
    let q = a
        .ipsec_policy(
            Protocol::Tcp,
            sa("10.0.0.1:50000"),
            sa("10.0.0.2:80"),
            secs(1),
        )
        .unwrap();
    assert_eq!(
        (q.layer, q.filter_id, q.provider_context),
        (Layer::IPSEC_V4, qm_f, qm)
    );
    assert_eq!(
        a.ipsec_policy(
            Protocol::Udp,
            sa("10.0.0.1:50000"),
            sa("10.0.0.2:80"),
            secs(1)
        ),
        None
    );
    assert_eq!(a.classify_count(Layer::IPSEC_V4), 2);
    assert_eq!(
        a.engine().net_events().count(),
        0,
        "policy lookups are not drops"
    );
}

#[test]
fn ikeext_block_in_a_higher_sublayer_means_no_policy() {
    let (mut a, s) = ale();
    let mm = Guid::from_u128(0x11);
    a.engine_mut()
        .add_provider_context(s, &ProviderContext::new("mm", 6, vec![]).key(mm))
        .unwrap();
    let hi = a
        .engine_mut()
        .add_sublayer(s, &Sublayer::new("high", 0xfff0))
        .unwrap();
    add(
        &mut a,
        s,
        Filter::new("mm", Layer::IKEEXT_V4, Action::Permit).provider_context(mm),
    );
    assert!(a
        .ikeext_policy(ip("10.0.0.1"), ip("10.0.0.2"), secs(1))
        .is_some());
    add(
        &mut a,
        s,
        Filter::new("no ike", Layer::IKEEXT_V4, Action::Block).sublayer(hi),
    );
    assert_eq!(
        a.ikeext_policy(ip("10.0.0.1"), ip("10.0.0.2"), secs(1)),
        None
    );
}

// ------------------------------------------------------------------ 3. room for what comes next

#[test]
fn endpoint_security_settings_peer_names_and_owner_session() {
    let (mut a, _) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Udp));
    assert_eq!(a.security_settings(ep).unwrap(), None);
    let set = SecuritySettings {
        protocol: 1,
        flags: 0x2,
        ipsec_flags: 0x1,
        mm_policy_key: Some(Guid::from_u128(5)),
        qm_policy_key: None,
        user: Some("alice".into()),
        domain: Some("HOSTA".into()),
        password: Some("hunter2".into()),
    };
    assert_eq!(
        a.set_security_settings(ep, Some(set.clone())).unwrap(),
        None
    );
    assert_eq!(a.security_settings(ep).unwrap(), Some(&set));
    let shown = format!("{set:?}");
    assert!(!shown.contains("hunter2") && shown.contains("redacted"));

    // one name per peer address, v4-mapped stored as v4, listed in address order
    assert_eq!(
        a.set_peer_target_name(ep, ip("10.0.0.3"), "c.example")
            .unwrap(),
        None
    );
    a.set_peer_target_name(ep, ip("10.0.0.2"), "b.example")
        .unwrap();
    assert_eq!(
        a.set_peer_target_name(ep, ip("::ffff:10.0.0.2"), "b2.example")
            .unwrap()
            .as_deref(),
        Some("b.example")
    );
    let names: Vec<(IpAddr, String)> = a
        .peer_target_names(ep)
        .unwrap()
        .map(|(a, n)| (a, n.to_string()))
        .collect();
    assert_eq!(
        names,
        vec![
            (ip("10.0.0.2"), "b2.example".to_string()),
            (ip("10.0.0.3"), "c.example".to_string())
        ]
    );
    assert_eq!(
        a.delete_peer_target_name(ep, ip("10.0.0.3"))
            .unwrap()
            .as_deref(),
        Some("c.example")
    );
    assert_eq!(a.peer_target_name(ep, ip("10.0.0.3")).unwrap(), None);
    assert_eq!(a.delete_peer_target_name(ep, ip("10.0.0.3")).unwrap(), None);

    let dynamic = a.engine_mut().open_session(true);
    assert_eq!(a.set_owner_session(ep, Some(dynamic)).unwrap(), None);
    assert_eq!(a.owner_session(ep).unwrap(), Some(dynamic));

    a.close_endpoint(ep, secs(1)).unwrap();
    assert_eq!(
        a.security_settings(ep).err(),
        Some(AleError::EndpointClosed(ep))
    );
    assert_eq!(
        a.set_peer_target_name(ep, ip("10.0.0.2"), "x").err(),
        Some(AleError::EndpointClosed(ep))
    );
}

#[test]
fn peer_target_names_are_bounded_per_endpoint() {
    let (mut a, _) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Udp));
    for i in 0..MAX_PEER_TARGET_NAMES as u32 {
        let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        a.set_peer_target_name(ep, addr, "n").unwrap();
    }
    assert_eq!(
        a.set_peer_target_name(ep, ip("192.168.0.1"), "n"),
        Err(AleError::LimitExceeded(ep))
    );
    // replacing an existing entry is still allowed
    assert!(a.set_peer_target_name(ep, ip("10.0.0.0"), "m").is_ok());
}

#[test]
fn closing_an_endpoint_closes_its_owner_dynamic_session_and_its_filters() {
    let (mut a, _) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let dynamic = a.engine_mut().open_session(true);
    add(
        &mut a,
        dynamic,
        Filter::new("socket filter", Layer::ALE_AUTH_CONNECT_V4, Action::Permit)
            .sublayer(SUBLAYER_SECURE_SOCKET),
    );
    assert_eq!(a.engine().filter_count(), 1);
    a.set_owner_session(ep, Some(dynamic)).unwrap();
    a.close_endpoint(ep, secs(1)).unwrap();
    assert_eq!(a.engine().filter_count(), 0, "dynamic filters removed");
}

#[test]
fn flows_keep_sa_ids_and_negotiation_result() {
    let (mut a, _) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    assert_eq!(a.flow_security(f).unwrap(), FlowSecurity::default());
    let sec = FlowSecurity {
        mm_sa_id: Some(7),
        qm_sa_id: Some(9),
        negotiation_winerr: 0,
    };
    a.set_flow_security(f, sec).unwrap();
    assert_eq!(a.flow(f).unwrap().security, sec);
    let failed = FlowSecurity {
        negotiation_winerr: 13801, // ERROR_IPSEC_IKE_AUTH_FAIL
        ..FlowSecurity::default()
    };
    a.set_flow_security(f, failed).unwrap();
    assert_eq!(a.flow_security(f).unwrap().negotiation_winerr, 13801);
    a.close_flow(f, secs(2)).unwrap();
    assert_eq!(a.flow_security(f), Err(AleError::FlowClosed(f)));
}

// ------------------------------------------------------------------ 4. typed errors

#[test]
fn stale_and_unknown_ids_are_typed_errors_not_blocks() {
    let (mut a, s) = ale();
    let never = EndpointId(999);
    assert_eq!(
        a.listen(never, secs(0)),
        Err(AleError::UnknownEndpoint(never))
    );
    assert_eq!(
        a.connect(never, sa("10.0.0.1:1"), sa("10.0.0.2:2"), secs(0)),
        Err(AleError::UnknownEndpoint(never))
    );
    assert_eq!(
        a.packet(FlowId(42), Direction::Inbound, secs(0)),
        Err(AleError::UnknownFlow(FlowId(42)))
    );
    assert_eq!(
        a.close_flow(FlowId(42), secs(0)),
        Err(AleError::UnknownFlow(FlowId(42)))
    );
    assert_eq!(
        a.close_endpoint(never, secs(0)),
        Err(AleError::UnknownEndpoint(never))
    );

    let u = a.create_endpoint(ctx(Protocol::Udp));
    assert_eq!(
        a.udp_recv(u, sa("10.0.0.2:53"), &InboundInfo::default(), secs(0)),
        Err(AleError::NotBound(u))
    );
    let t = a.create_endpoint(ctx(Protocol::Tcp));
    assert_eq!(
        a.inbound_connection(
            t,
            sa("10.0.0.1:80"),
            sa("10.0.0.2:5"),
            &InboundInfo::default(),
            secs(0)
        ),
        Err(AleError::NotListening(t))
    );
    a.close_endpoint(u, secs(1)).unwrap();
    a.close_endpoint(u, secs(1)).unwrap(); // idempotent
    let e = a
        .udp_send(u, sa("10.0.0.1:4000"), sa("10.0.0.2:53"), secs(1))
        .unwrap_err();
    assert_eq!(e, AleError::EndpointClosed(u));
    assert_eq!(e.wsa_error(), 10038);

    // a flow torn down by reauthorization is gone, not blocked
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 80);
    assert_eq!(
        a.packet(f, Direction::Outbound, secs(2))
            .unwrap()
            .block()
            .unwrap()
            .effect,
        BlockEffect::FlowTornDown
    );
    let e = a.established(f, secs(3)).unwrap_err();
    assert_eq!(e, AleError::FlowClosed(f));
    assert_eq!(e.wsa_error(), 10053);
    assert_eq!(
        a.flow_for(Protocol::Tcp, sa("10.0.0.1:50000"), sa("10.0.0.2:80")),
        None
    );
}

#[test]
fn a_block_is_cheap_to_clone_and_shares_the_filter_name() {
    let (mut a, s) = ale();
    let fid = block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 443);
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let v1 = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:443"), secs(1))
        .unwrap();
    let v2 = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.3:443"), secs(1))
        .unwrap();
    let (b1, b2) = (v1.block().unwrap(), v2.block().unwrap());
    assert_eq!(
        (b1.layer, b1.filter_id),
        (Layer::ALE_AUTH_CONNECT_V4, Some(fid))
    );
    assert_eq!(b1.filter_name.as_deref(), Some("block 443"));
    assert!(Arc::ptr_eq(
        b1.filter_name.as_ref().unwrap(),
        b2.filter_name.as_ref().unwrap()
    ));
    let c = b1.clone();
    assert_eq!(&c, b1);
}

// ------------------------------------------------------------------ 5. accepted connections

#[test]
fn accept_gives_the_accepted_socket_its_own_endpoint_inheriting_the_listener() {
    let (mut a, _) = ale();
    let srv = tcp_server(&mut a, "10.0.0.2:80");
    let settings = SecuritySettings {
        protocol: 1,
        flags: 0x1,
        ..SecuritySettings::default()
    };
    a.set_security_settings(srv, Some(settings.clone()))
        .unwrap();
    a.set_peer_target_name(srv, ip("10.0.0.1"), "client.example")
        .unwrap();
    let f = syn(&mut a, srv, "10.0.0.2:80", "10.0.0.1:50000");
    assert_eq!(a.endpoint_flows(srv).unwrap(), vec![f]);
    let acc = a.accept(srv, f, secs(2)).unwrap();
    assert_ne!(acc, srv);
    assert_eq!(
        a.endpoint_context(acc).unwrap(),
        a.endpoint_context(srv).unwrap()
    );
    assert_eq!(a.endpoint_local(acc), Some(sa("10.0.0.2:80")));
    assert_eq!(a.security_settings(acc).unwrap(), Some(&settings));
    assert_eq!(
        a.peer_target_name(acc, ip("10.0.0.1")).unwrap(),
        Some("client.example")
    );
    assert_eq!(a.flow(f).unwrap().endpoint, acc);
    assert_eq!(a.endpoint_flows(acc).unwrap(), vec![f]);
    assert!(a.endpoint_flows(srv).unwrap().is_empty());
    // the flow still works through the new owner, with no extra classification
    let n = a.trace().count();
    assert!(a
        .packet(f, Direction::Inbound, secs(3))
        .unwrap()
        .is_permit());
    assert_eq!(a.trace().count(), n);
}

#[test]
fn closing_the_listener_leaves_accepted_connections_alone() {
    let (mut a, _) = ale();
    let srv = tcp_server(&mut a, "10.0.0.2:80");
    let accepted = syn(&mut a, srv, "10.0.0.2:80", "10.0.0.1:50000");
    let pending = syn(&mut a, srv, "10.0.0.2:80", "10.0.0.1:50001");
    let acc = a.accept(srv, accepted, secs(2)).unwrap();
    a.close_endpoint(srv, secs(3)).unwrap();
    // the listener's own closure + the connection still in its backlog
    assert_eq!(a.classify_count(Layer::ALE_ENDPOINT_CLOSURE_V4), 2);
    assert_eq!(a.classify_count(Layer::ALE_RESOURCE_RELEASE_V4), 1);
    assert!(a.flow(pending).is_none(), "backlog connection reset");
    assert!(a.flow(accepted).is_some(), "accepted connection lives on");
    assert!(a
        .packet(accepted, Direction::Outbound, secs(4))
        .unwrap()
        .is_permit());
    // closing the accepted socket: one closure for its connection, no RESOURCE_RELEASE (it
    // never went through RESOURCE_ASSIGNMENT)
    a.close_endpoint(acc, secs(5)).unwrap();
    assert_eq!(a.classify_count(Layer::ALE_ENDPOINT_CLOSURE_V4), 3);
    assert_eq!(a.classify_count(Layer::ALE_RESOURCE_RELEASE_V4), 1);
    assert_eq!(a.flows().count(), 0);
}

#[test]
fn accept_rejects_foreign_outbound_and_already_accepted_flows() {
    let (mut a, _) = ale();
    let srv = tcp_server(&mut a, "10.0.0.2:80");
    let other = tcp_server(&mut a, "10.0.0.2:81");
    let f = syn(&mut a, srv, "10.0.0.2:80", "10.0.0.1:50000");
    assert_eq!(
        a.accept(other, f, secs(2)),
        Err(AleError::FlowNotOwned {
            flow: f,
            endpoint: other
        })
    );
    let (client, out) = tcp_client(&mut a, "10.0.0.1:50001", "10.0.0.3:80");
    assert_eq!(
        a.accept(client, out, secs(2)),
        Err(AleError::NotListening(client))
    );
    assert!(a.accept(srv, f, secs(2)).is_ok());
    assert_eq!(
        a.accept(srv, f, secs(2)),
        Err(AleError::FlowNotOwned {
            flow: f,
            endpoint: srv
        })
    );
    assert_eq!(
        a.accept(srv, FlowId(77), secs(2)),
        Err(AleError::UnknownFlow(FlowId(77)))
    );
}

// ------------------------------------------------------------------ 6. selective reauth

#[test]
fn an_unrelated_filter_does_not_reclassify_other_flows() {
    let (mut a, s) = ale();
    let (_, f80) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let (_, f443) = tcp_client(&mut a, "10.0.0.1:50001", "10.0.0.2:443");
    let before = a.classify_count(Layer::ALE_AUTH_CONNECT_V4);
    let f22 = block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 22);
    assert!(a.reauthorize(secs(2)).is_empty());
    for f in [f80, f443] {
        assert!(a
            .packet(f, Direction::Outbound, secs(2))
            .unwrap()
            .is_permit());
    }
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before);
    assert_eq!(a.reauth_skipped(), 2);
    // deleting it is just as unrelated
    a.engine_mut().delete_filter_by_id(s, f22).unwrap();
    assert!(a.reauthorize(secs(3)).is_empty());
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before);

    // a filter that matches one flow re-classifies that flow only
    let b443 = block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 443);
    let out = a.reauthorize(secs(4));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, f443);
    assert_eq!(out[0].1.block().unwrap().filter_id, Some(b443));
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before + 1);
    assert!(a.flow(f80).is_some() && a.flow(f443).is_none());
}

#[test]
fn deleting_a_filter_that_matched_reclassifies_the_flows_it_matched() {
    let (mut a, s) = ale();
    let permit = add(
        &mut a,
        s,
        Filter::new("permit 80", Layer::ALE_AUTH_CONNECT_V4, Action::Permit).condition(
            Field::IP_REMOTE_PORT,
            MatchType::Equal,
            FwpValue::Uint16(80),
        ),
    );
    let (_, f80) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let (_, f81) = tcp_client(&mut a, "10.0.0.1:50001", "10.0.0.2:81");
    assert_eq!(a.flow(f80).unwrap().decided_by.unwrap().id, permit);
    a.engine_mut().delete_filter_by_id(s, permit).unwrap();
    let out = a.reauthorize(secs(2));
    assert_eq!(
        out.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        vec![f80],
        "only the flow the deleted filter could match"
    );
    assert!(out[0].1.is_permit());
    assert_eq!(a.flow(f80).unwrap().decided_by, None, "default permit now");
    assert!(a.flow(f81).is_some());
}

#[test]
fn reauth_scope_uses_address_local_port_and_protocol_conditions() {
    let (mut a, s) = ale();
    let (_, t) = tcp_client(&mut a, "10.0.0.1:50000", "192.168.1.9:80");
    let u = a.create_endpoint(ctx(Protocol::Udp));
    let uf = a
        .udp_send(u, sa("10.0.0.1:4000"), sa("10.0.0.2:53"), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    let before = a.classify_count(Layer::ALE_AUTH_CONNECT_V4);
    // remote address prefix matching neither flow
    add(
        &mut a,
        s,
        Filter::new("172.16/12", Layer::ALE_AUTH_CONNECT_V4, Action::Block).condition(
            Field::IP_REMOTE_ADDRESS,
            MatchType::Equal,
            FwpValue::v4_prefix("172.16.0.0".parse().unwrap(), 12),
        ),
    );
    // local port of neither flow
    add(
        &mut a,
        s,
        Filter::new("local 9999", Layer::ALE_AUTH_CONNECT_V4, Action::Block).condition(
            Field::IP_LOCAL_PORT,
            MatchType::Equal,
            FwpValue::Uint16(9999),
        ),
    );
    // ICMP only
    add(
        &mut a,
        s,
        Filter::new("icmp", Layer::ALE_AUTH_CONNECT_V4, Action::Block).condition(
            Field::IP_PROTOCOL,
            MatchType::Equal,
            FwpValue::Uint8(1),
        ),
    );
    // the V6 layer: another family, another layer
    add(
        &mut a,
        s,
        Filter::new("v6", Layer::ALE_AUTH_CONNECT_V6, Action::Block),
    );
    assert!(a.reauthorize(secs(2)).is_empty());
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before);
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V6), 0);
    // a UDP-only block at the same layer reaches the UDP flow, not the TCP one
    let udp_block = add(
        &mut a,
        s,
        Filter::new("udp", Layer::ALE_AUTH_CONNECT_V4, Action::Block).condition(
            Field::IP_PROTOCOL,
            MatchType::Equal,
            FwpValue::Uint8(17),
        ),
    );
    let out = a.reauthorize(secs(3));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0, out[0].1.block().unwrap().filter_id),
        (uf, Some(udp_block))
    );
    assert!(a.flow(t).is_some());
}

#[test]
fn a_filter_added_and_deleted_unseen_reclassifies_nothing() {
    let (mut a, s) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let before = a.classify_count(Layer::ALE_AUTH_CONNECT_V4);
    let e = a.engine_mut();
    let id = e
        .add_filter(
            s,
            &Filter::new("blink", Layer::ALE_AUTH_CONNECT_V4, Action::Block),
        )
        .unwrap();
    e.delete_filter_by_id(s, id).unwrap();
    assert!(a.reauthorize(secs(2)).is_empty());
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before);
    assert!(a.flow(f).is_some());
}

#[test]
fn a_filter_on_other_fields_reclassifies_conservatively() {
    let (mut a, s) = ale();
    let (_, f) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let before = a.classify_count(Layer::ALE_AUTH_CONNECT_V4);
    // conditions ALE does not scope on (application id) are assumed to match
    add(
        &mut a,
        s,
        Filter::new("other app", Layer::ALE_AUTH_CONNECT_V4, Action::Block).condition(
            Field::ALE_APP_ID,
            MatchType::Equal,
            FwpValue::app_id("C:\\Other.exe"),
        ),
    );
    let out = a.reauthorize(secs(2));
    assert_eq!(out.len(), 1);
    assert!(out[0].1.is_permit(), "classified, and still permitted");
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before + 1);
    assert!(a.flow(f).is_some());
}

#[test]
fn filters_added_in_a_transaction_are_scoped_after_commit() {
    let (mut a, s) = ale();
    let (_, f80) = tcp_client(&mut a, "10.0.0.1:50000", "10.0.0.2:80");
    let (_, f81) = tcp_client(&mut a, "10.0.0.1:50001", "10.0.0.2:81");
    a.engine_mut().begin_transaction(s, false, secs(2)).unwrap();
    block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 81);
    block_remote_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 9);
    assert!(a.reauthorize(secs(2)).is_empty(), "nothing committed yet");
    a.engine_mut().commit_transaction(s).unwrap();
    let out = a.reauthorize(secs(3));
    assert_eq!(out.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec![f81]);
    assert!(a.flow(f80).is_some());
}

// ------------------------------------------------------------------ 7. implicit bind + connect

#[test]
fn connect_after_implicit_bind_is_classified_with_the_chosen_local_address_and_port() {
    let (mut a, s) = ale();
    let fid = add(
        &mut a,
        s,
        Filter::new(
            "no local port 50123",
            Layer::ALE_AUTH_CONNECT_V4,
            Action::Block,
        )
        .condition(
            Field::IP_LOCAL_PORT,
            MatchType::Equal,
            FwpValue::Uint16(50123),
        )
        .condition(
            Field::IP_LOCAL_ADDRESS,
            MatchType::Equal,
            FwpValue::addr(ip("10.0.0.1")),
        ),
    );
    // never explicitly bound: the stack picked 10.0.0.1:50123
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let n = a.trace().count();
    let v = a
        .connect(ep, sa("10.0.0.1:50123"), sa("10.0.0.2:80"), secs(1))
        .unwrap();
    let b = v.block().expect("the local-port filter blocks the connect");
    assert_eq!(
        (b.layer, b.filter_id, b.effect),
        (
            Layer::ALE_AUTH_CONNECT_V4,
            Some(fid),
            BlockEffect::ConnectFailed {
                wsa_error: WSAEACCES
            }
        )
    );
    let recs: Vec<ClassifyRecord> = a.trace().skip(n).cloned().collect();
    assert_eq!(
        recs.iter().map(|r| r.layer).collect::<Vec<_>>(),
        vec![
            Layer::ALE_RESOURCE_ASSIGNMENT_V4,
            Layer::ALE_AUTH_CONNECT_V4
        ]
    );
    assert_ne!(recs[0].flags & condition_flags::IS_IMPLICIT_BIND, 0);
    // another implicit bind with a different port goes through
    let ep2 = a.create_endpoint(ctx(Protocol::Tcp));
    assert!(a
        .connect(ep2, sa("10.0.0.1:50124"), sa("10.0.0.2:80"), secs(1))
        .unwrap()
        .is_permit());
}

#[test]
fn connect_completes_a_port_zero_local_from_the_bound_port() {
    let (mut a, s) = ale();
    let fid = add(
        &mut a,
        s,
        Filter::new(
            "no local port 49200",
            Layer::ALE_AUTH_CONNECT_V4,
            Action::Block,
        )
        .condition(
            Field::IP_LOCAL_PORT,
            MatchType::Equal,
            FwpValue::Uint16(49200),
        ),
    );
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    a.bind(ep, sa("0.0.0.0:0"), 49200, secs(0)).unwrap();
    let v = a
        .connect(ep, sa("10.0.0.1:0"), sa("10.0.0.2:80"), secs(1))
        .unwrap();
    assert_eq!(v.block().unwrap().filter_id, Some(fid));
}
