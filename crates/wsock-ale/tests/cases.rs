//! Behavioural cases 10 and 26-31 of wfp-ale-ipsec.md §10.1, plus the socket effects of a
//! block (unconfirmed-resolved.md item 8).

use std::net::SocketAddr;
use std::time::Duration;

use wsock_ale::*;
use wsock_wfp::*;

fn sa(s: &str) -> SocketAddr {
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

fn block_port(a: &mut Ale, s: SessionId, layer: Layer, port: u16) -> u64 {
    a.engine_mut()
        .add_filter(
            s,
            &Filter::new(format!("block {port}"), layer, Action::Block).condition(
                Field::IP_REMOTE_PORT,
                MatchType::Equal,
                FwpValue::Uint16(port),
            ),
        )
        .unwrap()
}

#[test]
fn case_10_no_cross_layer_arbitration() {
    let (mut a, s) = ale();
    a.engine_mut()
        .add_filter(
            s,
            &Filter::new("permit", Layer::ALE_AUTH_CONNECT_V4, Action::Permit)
                .flags(filter_flags::CLEAR_ACTION_RIGHT),
        )
        .unwrap();
    let b = block_port(&mut a, s, Layer::OUTBOUND_TRANSPORT_V4, 80);
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let v = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:80"), secs(1))
        .unwrap();
    let flow = v.flow().expect("connect permitted at ALE_AUTH_CONNECT");
    // the SYN goes out through OUTBOUND_TRANSPORT, where it is dropped
    let syn = a.packet(flow, Direction::Outbound, secs(1)).unwrap();
    let blk = syn.block().expect("SYN dropped");
    assert_eq!(blk.layer, Layer::OUTBOUND_TRANSPORT_V4);
    assert_eq!(blk.filter_id, Some(b));
    assert_eq!(blk.effect, BlockEffect::PacketDropped);
}

#[test]
fn case_26_udp_classified_once_per_remote() {
    let (mut a, _) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Udp));
    let local = sa("10.0.0.1:40000");
    for i in 0..3 {
        assert!(a
            .udp_send(ep, local, sa("10.0.0.2:53"), secs(i))
            .unwrap()
            .is_permit());
    }
    assert!(a
        .udp_send(ep, local, sa("10.0.0.3:53"), secs(4))
        .unwrap()
        .is_permit());
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), 2);
    assert_eq!(a.classify_count(Layer::ALE_FLOW_ESTABLISHED_V4), 2);
    assert_eq!(
        a.classify_count(Layer::ALE_RESOURCE_ASSIGNMENT_V4),
        1,
        "one implicit bind"
    );
}

#[test]
fn case_27_udp_flow_idle_expiry() {
    let (mut a, _) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Udp));
    let (local, b) = (sa("10.0.0.1:40000"), sa("10.0.0.2:53"));
    a.udp_send(ep, local, b, secs(100)).unwrap();
    a.udp_send(ep, local, b, secs(159)).unwrap(); // idle 59 s: cached
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), 1);
    a.udp_send(ep, local, b, secs(220)).unwrap(); // idle 61 s: a new flow
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), 2);
    let last = a
        .trace()
        .filter(|r| r.layer == Layer::ALE_AUTH_CONNECT_V4)
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last.flags & condition_flags::IS_REAUTHORIZE,
        0,
        "a new flow, not a reauth"
    );
    assert_eq!(last.reauth_reason, 0);
    // receive side and expire()
    assert_eq!(a.expire(secs(281)).len(), 1);
    assert_eq!(a.flows().count(), 0);
}

#[test]
fn case_28_policy_change_reauthorizes_and_tears_down_tcp_flow() {
    let (mut a, s) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let flow = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:80"), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    assert!(a.established(flow, secs(1)).unwrap().is_permit());
    assert!(a
        .packet(flow, Direction::Inbound, secs(2))
        .unwrap()
        .is_permit());
    let before = a.classify_count(Layer::ALE_AUTH_CONNECT_V4);
    let f = block_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 80);
    // the next packet, an inbound ACK, is reauthorized at AUTH_CONNECT
    let v = a.packet(flow, Direction::Inbound, secs(3)).unwrap();
    let b = v.block().expect("reauth blocks");
    assert_eq!(
        (b.layer, b.filter_id, b.reauth, b.effect),
        (
            Layer::ALE_AUTH_CONNECT_V4,
            Some(f),
            true,
            BlockEffect::FlowTornDown
        )
    );
    assert_eq!(a.classify_count(Layer::ALE_AUTH_CONNECT_V4), before + 1);
    let r = a.trace().last().unwrap();
    assert_eq!(r.layer, Layer::ALE_AUTH_CONNECT_V4);
    assert_ne!(r.flags & condition_flags::IS_REAUTHORIZE, 0);
    assert_eq!(r.reauth_reason, reauth_reason::POLICY_CHANGE);
    // torn down: further data dropped
    assert!(a.flow(flow).is_none());
    assert_eq!(
        a.packet(flow, Direction::Outbound, secs(4)),
        Err(AleError::FlowClosed(flow))
    );
    // the drop is a net event naming the filter, marked as reauth
    assert!(a.engine().net_events().any(
        |e| matches!(&e.kind, NetEventKind::ClassifyDrop(i) if i.filter_id == f && i.is_reauth)
    ));
}

#[test]
fn case_28b_eager_reauthorize_reports_flows_to_tear_down() {
    // Windows' scope: every flow at the changed layer is re-authorized
    let mut a = Ale::with_config(
        Engine::new(),
        AleConfig {
            reauth_scope: ReauthScope::Layer,
            ..AleConfig::default()
        },
    );
    let s = a.engine_mut().open_session(false);
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let f80 = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:80"), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    let ep2 = a.create_endpoint(ctx(Protocol::Tcp));
    let f81 = a
        .connect(ep2, sa("10.0.0.1:50001"), sa("10.0.0.2:81"), secs(1))
        .unwrap()
        .flow()
        .unwrap();
    let fid = block_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 80);
    let out = a.reauthorize(secs(2));
    assert_eq!(out.len(), 2);
    let v80 = &out.iter().find(|(f, _)| *f == f80).unwrap().1;
    assert_eq!(v80.block().unwrap().filter_id, Some(fid));
    assert!(out.iter().find(|(f, _)| *f == f81).unwrap().1.is_permit());
    assert!(a.reauthorize(secs(3)).is_empty(), "nothing changed since");
    // removing the filter lets the next connect through
    a.engine_mut().delete_filter_by_id(s, fid).unwrap();
    assert!(a
        .connect(ep, sa("10.0.0.1:50002"), sa("10.0.0.2:80"), secs(4))
        .unwrap()
        .is_permit());
}

#[test]
fn case_29_outbound_packet_reauth_at_recv_accept_has_empty_arrival_interface() {
    let (mut a, s) = ale();
    let srv = a.create_endpoint(EndpointContext::new(
        "C:\\srv.exe",
        "SYSTEM",
        Protocol::Tcp,
        false,
    ));
    assert!(a
        .bind(srv, sa("10.0.0.2:80"), 80, secs(0))
        .unwrap()
        .is_permit());
    assert!(a.listen(srv, secs(0)).unwrap().is_permit());
    let info = InboundInfo {
        interface: 7,
        ..Default::default()
    };
    let f1 = a
        .inbound_connection(srv, sa("10.0.0.2:80"), sa("10.0.0.1:50000"), &info, secs(1))
        .unwrap()
        .flow()
        .unwrap();
    let f2 = a
        .inbound_connection(srv, sa("10.0.0.2:80"), sa("10.0.0.1:50001"), &info, secs(1))
        .unwrap()
        .flow()
        .unwrap();
    a.established(f1, secs(1)).unwrap();
    a.established(f2, secs(1)).unwrap();
    let fid = a
        .engine_mut()
        .add_filter(
            s,
            &Filter::new(
                "arrival empty",
                Layer::ALE_AUTH_RECV_ACCEPT_V4,
                Action::Block,
            )
            .condition(
                Field::IP_ARRIVAL_INTERFACE,
                MatchType::Equal,
                FwpValue::Empty,
            ),
        )
        .unwrap();
    // inbound packet: arrival interface known -> the filter does not match
    assert!(a
        .packet(f1, Direction::Inbound, secs(2))
        .unwrap()
        .is_permit());
    let r = a.trace().last().unwrap().clone();
    assert_eq!(
        (r.layer, r.flags & condition_flags::IS_REAUTHORIZE),
        (
            Layer::ALE_AUTH_RECV_ACCEPT_V4,
            condition_flags::IS_REAUTHORIZE
        )
    );
    // outbound packet: reauthorized at AUTH_RECV_ACCEPT with arrival interface EMPTY -> torn down
    let v = a.packet(f2, Direction::Outbound, secs(2)).unwrap();
    let b = v.block().unwrap();
    assert_eq!(
        (b.layer, b.filter_id, b.effect),
        (
            Layer::ALE_AUTH_RECV_ACCEPT_V4,
            Some(fid),
            BlockEffect::FlowTornDown
        )
    );
    assert!(a.flow(f2).is_none());
}

#[test]
fn case_30_wildcard_bind_has_flag_and_empty_local_address() {
    let (mut a, s) = ale();
    let ep = a.create_endpoint(ctx(Protocol::Udp));
    assert!(a
        .bind(ep, sa("0.0.0.0:0"), 49152, secs(0))
        .unwrap()
        .is_permit());
    let r = a.trace().last().unwrap().clone();
    assert_eq!(r.layer, Layer::ALE_RESOURCE_ASSIGNMENT_V4);
    assert_ne!(r.flags & condition_flags::IS_WILDCARD_BIND, 0);
    // a filter matching an EMPTY local address proves the field was empty
    let fid = a
        .engine_mut()
        .add_filter(
            s,
            &Filter::new(
                "empty local",
                Layer::ALE_RESOURCE_ASSIGNMENT_V4,
                Action::Block,
            )
            .condition(Field::IP_LOCAL_ADDRESS, MatchType::Equal, FwpValue::Empty),
        )
        .unwrap();
    let ep2 = a.create_endpoint(ctx(Protocol::Udp));
    let v = a.bind(ep2, sa("0.0.0.0:0"), 49153, secs(1)).unwrap();
    assert_eq!(v.block().unwrap().filter_id, Some(fid));
    assert_eq!(
        v.block().unwrap().effect,
        BlockEffect::BindFailed {
            wsa_error: WSAEACCES
        }
    );
    let ep3 = a.create_endpoint(ctx(Protocol::Udp));
    assert!(
        a.bind(ep3, sa("10.0.0.1:5000"), 5000, secs(1))
            .unwrap()
            .is_permit(),
        "specific address is not EMPTY"
    );
    let r = a.trace().last().unwrap().clone();
    assert_eq!(r.flags & condition_flags::IS_WILDCARD_BIND, 0);
}

#[test]
fn case_31_tcp_server_layer_order_and_single_closure() {
    let (mut a, _) = ale();
    let srv = a.create_endpoint(EndpointContext::new(
        "C:\\srv.exe",
        "SYSTEM",
        Protocol::Tcp,
        false,
    ));
    a.bind(srv, sa("10.0.0.2:80"), 80, secs(0)).unwrap();
    a.listen(srv, secs(0)).unwrap();
    let n0 = a.trace().count();
    let flow = a
        .inbound_connection(
            srv,
            sa("10.0.0.2:80"),
            sa("10.0.0.1:50000"),
            &InboundInfo::default(),
            secs(1),
        )
        .unwrap()
        .flow()
        .unwrap();
    let layers: Vec<Layer> = a.trace().skip(n0).map(|r| r.layer).collect();
    assert_eq!(
        layers,
        vec![Layer::INBOUND_TRANSPORT_V4, Layer::ALE_AUTH_RECV_ACCEPT_V4]
    );
    assert_eq!(
        a.classify_count(Layer::ALE_FLOW_ESTABLISHED_V4),
        0,
        "not before the final ACK"
    );
    a.packet(flow, Direction::Outbound, secs(1)).unwrap(); // SYN-ACK
    assert_eq!(a.classify_count(Layer::ALE_FLOW_ESTABLISHED_V4), 0);
    a.established(flow, secs(1)).unwrap(); // final ACK
    assert_eq!(a.classify_count(Layer::ALE_FLOW_ESTABLISHED_V4), 1);
    let n1 = a.trace().count();
    // data, FIN, RST: no classification
    for d in [Direction::Inbound, Direction::Outbound, Direction::Inbound] {
        assert!(a.packet(flow, d, secs(2)).unwrap().is_permit());
    }
    assert_eq!(a.trace().count(), n1);
    a.close_flow(flow, secs(3)).unwrap();
    a.close_flow(flow, secs(3)).unwrap();
    assert_eq!(a.classify_count(Layer::ALE_ENDPOINT_CLOSURE_V4), 1);
}

// ------------------------------------------------------------------ socket effects (item 8)

#[test]
fn blocked_connect_is_wsaeacces_and_names_the_filter() {
    let (mut a, s) = ale();
    let f = block_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 443);
    let ep = a.create_endpoint(ctx(Protocol::Tcp));
    let v = a
        .connect(ep, sa("10.0.0.1:50000"), sa("10.0.0.2:443"), secs(9))
        .unwrap();
    let b = v.block().unwrap();
    assert_eq!(b.effect, BlockEffect::ConnectFailed { wsa_error: 10013 });
    assert_eq!(b.filter_name.as_deref(), Some("block 443"));
    let ev = a.engine().net_events().last().unwrap().clone();
    match ev.kind {
        NetEventKind::ClassifyDrop(i) => {
            assert_eq!(i.filter_id, f);
            assert_eq!(i.layer, Layer::ALE_AUTH_CONNECT_V4);
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ev.header.remote, Some(sa("10.0.0.2:443")));
    assert_eq!(ev.header.app_id.as_deref(), Some("C:\\Apps\\Client.exe"));
    assert_eq!(ev.header.user_id.as_deref(), Some("HOSTA\\alice"));
    assert_eq!(ev.timestamp, secs(9));
}

#[test]
fn blocked_listen_inbound_udp_effects() {
    let (mut a, s) = ale();
    a.engine_mut()
        .add_filter(
            s,
            &Filter::new("no listen", Layer::ALE_AUTH_LISTEN_V4, Action::Block).condition(
                Field::IP_LOCAL_PORT,
                MatchType::Equal,
                FwpValue::Uint16(8080),
            ),
        )
        .unwrap();
    let l = a.create_endpoint(ctx(Protocol::Tcp));
    a.bind(l, sa("0.0.0.0:8080"), 8080, secs(0)).unwrap();
    assert_eq!(
        a.listen(l, secs(0)).unwrap().block().unwrap().effect,
        BlockEffect::ListenFailed {
            wsa_error: WSAEACCES
        }
    );

    a.engine_mut()
        .add_filter(
            s,
            &Filter::new(
                "no inbound 22",
                Layer::ALE_AUTH_RECV_ACCEPT_V4,
                Action::Block,
            )
            .condition(Field::IP_LOCAL_PORT, MatchType::Equal, FwpValue::Uint16(22)),
        )
        .unwrap();
    let srv = a.create_endpoint(ctx(Protocol::Tcp));
    a.bind(srv, sa("10.0.0.2:22"), 22, secs(0)).unwrap();
    a.listen(srv, secs(0)).unwrap();
    let v = a
        .inbound_connection(
            srv,
            sa("10.0.0.2:22"),
            sa("10.0.0.9:1234"),
            &InboundInfo::default(),
            secs(1),
        )
        .unwrap();
    assert_eq!(v.block().unwrap().effect, BlockEffect::SilentDrop);
    assert_eq!(a.flows().count(), 0, "never reaches accept");

    block_port(&mut a, s, Layer::ALE_AUTH_CONNECT_V4, 53);
    let u = a.create_endpoint(ctx(Protocol::Udp));
    assert_eq!(
        a.udp_send(u, sa("10.0.0.1:4000"), sa("10.0.0.2:53"), secs(1))
            .unwrap()
            .block()
            .unwrap()
            .effect,
        BlockEffect::SendFailed {
            wsa_error: WSAEACCES
        }
    );

    a.engine_mut()
        .add_filter(
            s,
            &Filter::new("no dns in", Layer::ALE_AUTH_RECV_ACCEPT_V4, Action::Block).condition(
                Field::IP_REMOTE_PORT,
                MatchType::Equal,
                FwpValue::Uint16(5353),
            ),
        )
        .unwrap();
    let u2 = a.create_endpoint(ctx(Protocol::Udp));
    a.bind(u2, sa("10.0.0.1:5353"), 5353, secs(1)).unwrap();
    assert_eq!(
        a.udp_recv(u2, sa("10.0.0.7:5353"), &InboundInfo::default(), secs(1))
            .unwrap()
            .block()
            .unwrap()
            .effect,
        BlockEffect::DatagramDropped
    );
    assert!(a
        .udp_recv(u2, sa("10.0.0.7:9999"), &InboundInfo::default(), secs(1))
        .unwrap()
        .is_permit());
}

#[test]
fn v6_sockets_classify_at_v6_layers_with_v4_mapped_peers() {
    let (mut a, s) = ale();
    let f = a
        .engine_mut()
        .add_spec(
            s,
            &FilterSpec {
                name: "block 10/8 on v6".into(),
                layer: "ALE_AUTH_CONNECT_V6".into(),
                action: "block".into(),
                conditions: vec![ConditionSpec::new(
                    "ip_remote_address",
                    "equal",
                    ValueSpec::Str("10.0.0.0/8".into()),
                )],
                ..Default::default()
            },
        )
        .unwrap();
    let ep = a.create_endpoint(EndpointContext::new("c:\\x.exe", "u", Protocol::Tcp, true));
    let v = a
        .connect(
            ep,
            sa("[::ffff:10.0.0.1]:50000"),
            sa("10.0.0.2:80"),
            secs(1),
        )
        .unwrap();
    assert_eq!(v.block().unwrap().filter_id, Some(f));
    assert_eq!(v.block().unwrap().layer, Layer::ALE_AUTH_CONNECT_V6);
    assert!(a
        .connect(ep, sa("[::1]:50001"), sa("[2001:db8::1]:80"), secs(1))
        .unwrap()
        .is_permit());
}

#[test]
fn app_and_user_conditions() {
    let (mut a, s) = ale();
    a.engine_mut()
        .add_filter(
            s,
            &Filter::new(
                "only alice's browser",
                Layer::ALE_AUTH_CONNECT_V4,
                Action::Block,
            )
            .condition(
                Field::ALE_APP_ID,
                MatchType::Equal,
                FwpValue::app_id("C:\\Apps\\Browser.exe"),
            )
            .condition(
                Field::ALE_USER_ID,
                MatchType::Equal,
                FwpValue::sd(SecurityDescriptor::allow(["HOSTA\\alice"])),
            ),
        )
        .unwrap();
    let browser_alice = a.create_endpoint(EndpointContext::new(
        "c:\\apps\\browser.exe",
        "HOSTA\\alice",
        Protocol::Tcp,
        false,
    ));
    let browser_bob = a.create_endpoint(EndpointContext::new(
        "c:\\apps\\browser.exe",
        "HOSTA\\bob",
        Protocol::Tcp,
        false,
    ));
    let other_alice = a.create_endpoint(ctx(Protocol::Tcp));
    assert!(!a
        .connect(browser_alice, sa("10.0.0.1:1"), sa("10.0.0.2:80"), secs(0))
        .unwrap()
        .is_permit());
    assert!(a
        .connect(browser_bob, sa("10.0.0.1:2"), sa("10.0.0.2:80"), secs(0))
        .unwrap()
        .is_permit());
    assert!(a
        .connect(other_alice, sa("10.0.0.1:3"), sa("10.0.0.2:80"), secs(0))
        .unwrap()
        .is_permit());
}

#[test]
fn close_endpoint_udp_single_closure_and_release() {
    let (mut a, _) = ale();
    let u = a.create_endpoint(ctx(Protocol::Udp));
    a.udp_send(u, sa("10.0.0.1:4000"), sa("10.0.0.2:53"), secs(0))
        .unwrap();
    a.udp_send(u, sa("10.0.0.1:4000"), sa("10.0.0.3:53"), secs(0))
        .unwrap();
    a.close_endpoint(u, secs(1)).unwrap();
    assert_eq!(a.classify_count(Layer::ALE_ENDPOINT_CLOSURE_V4), 1);
    assert_eq!(a.classify_count(Layer::ALE_RESOURCE_RELEASE_V4), 1);
    assert_eq!(a.flows().count(), 0);
}
