//! The IPsec policy, SA and wire-protocol cases of the reference (wfp-ale-ipsec.md §10.1, cases
//! 43-59), each a test named after its case, through the emulated hosts of one network (and,
//! where the case is about one protocol rule, through the sans-IO keying and ESP of
//! `wsock-ipsec` that the hosts run).
//!
//! Cases written with Windows' port numbers use the hosts' own IKE and NAT-T sockets (the
//! port-500 and port-4500 roles); cases written with 127.x peers use the scenario's addresses.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use wsock_stack::core::{child_lifetime, SETTINGS_GUARANTEE_ENCRYPTION};
use wsock_stack::stages::DropReason;
use wsock_stack::wsock_ale::contexts;
use wsock_stack::wsock_wfp::{ConditionSpec, FilterSpec, NetEventKind, ValueSpec};
use wsock_stack::{Endpoint, Family, Host, Network, Scenario, SecuritySettings};

const SAFETY: Duration = Duration::from_secs(60);

fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net_with(
    f: impl Fn(&str, &mut wsock_stack::core::IpsecSetup) + Send + Sync + 'static,
) -> (Network, Host, Host) {
    trace();
    let net = Network::builder(Scenario::default_scenario())
        .ipsec_setup(f)
        .start()
        .expect("network");
    let c = net.host("client").unwrap();
    let s = net.host("server").unwrap();
    (net, c, s)
}

fn encrypted() -> SecuritySettings {
    SecuritySettings {
        flags: SETTINGS_GUARANTEE_ENCRYPTION,
        ..SecuritySettings::default()
    }
}

fn listener(host: &Host, at: &str, secure: bool) -> Endpoint {
    let a = addr(at);
    let l = host.tcp(Family::of(&a));
    if secure {
        l.set_security(None).unwrap();
    }
    l.bind(a).unwrap();
    l.listen(8).unwrap();
    l
}

fn require_filter(name: &str, layer: &str, conds: Vec<ConditionSpec>) -> FilterSpec {
    FilterSpec {
        name: name.into(),
        layer: layer.into(),
        action: "permit".into(),
        conditions: conds,
        raw_context: contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY,
        ..Default::default()
    }
}

async fn exchange(c: &Endpoint, a: &Endpoint, n: usize, fill: u8) {
    let data = vec![fill; n];
    c.send(&data).await.unwrap();
    let mut got = vec![0u8; n];
    let mut k = 0;
    while k < n {
        k += a.recv(&mut got[k..]).await.unwrap();
    }
    assert_eq!(got, data);
}

#[test]
fn case_43_require_mode_policy_drops_a_clear_syn_with_13916_and_no_rst() {
    let (net, client, server) = net_with(|_, _| {});
    server
        .add_filter(&require_filter(
            "require IPsec on 8043",
            "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4",
            vec![ConditionSpec::new(
                "ip_local_port",
                "equal",
                ValueSpec::Int(8043),
            )],
        ))
        .unwrap();
    let _l = listener(&server, "0.0.0.0:8043", false);
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        let r =
            tokio::time::timeout(Duration::from_secs(3), c.connect(addr("10.0.0.2:8043"))).await;
        assert!(
            r.is_err(),
            "the clear SYN must go unanswered (no RST): {r:?}"
        );
    });
    assert!(server.counters().drops.get(DropReason::ClearTextDrop) >= 1);
    assert!(server.net_events().iter().any(|e| matches!(
        e.kind,
        NetEventKind::IpsecKernelDrop {
            failure_status: 13916,
            ..
        }
    )));
}

#[test]
fn case_44_negotiation_discovery_clear_first_then_esp_never_clear_again() {
    let (net, client, server) = net_with(|_, _| {});
    client
        .add_filter(&FilterSpec {
            name: "negotiation discovery to the server".into(),
            layer: "FWPM_LAYER_OUTBOUND_TRANSPORT_V4".into(),
            action: "callout_terminating".into(),
            callout: Some(
                wsock_stack::wsock_ale::callouts::IPSEC_OUTBOUND_TRANSPORT_V4.to_string(),
            ),
            conditions: vec![ConditionSpec::new(
                "ip_remote_address",
                "equal",
                ValueSpec::Str("10.0.0.2".into()),
            )],
            raw_context: contexts::IPSEC_OUTBOUND_NEGOTIATE_DISCOVER,
            ..Default::default()
        })
        .unwrap();
    let l = listener(&server, "0.0.0.0:8044", false);
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:8044")))
            .await
            .unwrap()
            .expect("discovery connects at once, in clear");
        let (a, _) = l.accept().await.unwrap();
        exchange(&c, &a, 100, 1).await;
        // Wait for the SA negotiated in the background.
        tokio::time::timeout(SAFETY, async {
            while client.security_associations().child.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                exchange(&c, &a, 10, 2).await;
            }
        })
        .await
        .expect("the SA is negotiated while clear text flows");
        exchange(&c, &a, 100, 3).await;
        let q = c.query_security(None).unwrap();
        assert!(q.secured, "after discovery the flow is secured: {q:?}");
        // The peer forgets its SAs: the flow must never fall back to clear text.
        server.with_core(|core| core.forget_security_associations());
        client.with_core(|core| core.forget_security_associations());
        exchange(&c, &a, 100, 4).await;
        let q = c.query_security(None).unwrap();
        assert!(q.secured, "renegotiated, never downgraded: {q:?}");
    });
    let counters = client.with_core(|core| core.ipsec_counters());
    assert!(
        counters.clear_sent > 0,
        "discovery sent the first packets in clear"
    );
    assert!(counters.esp_sent > 0);
    assert_eq!(
        counters.downgrades_refused, 0,
        "no packet of the flow even tried to leave in clear once secured"
    );
}

#[test]
fn case_45_ike_is_exempt_and_a_clear_udp_datagram_is_dropped() {
    let (net, client, server) = net_with(|_, _| {});
    server
        .add_filter(&require_filter(
            "require IPsec for all UDP",
            "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4",
            vec![ConditionSpec::new(
                "ip_protocol",
                "equal",
                ValueSpec::Int(17),
            )],
        ))
        .unwrap();
    let sink = server.udp(Family::V4);
    sink.bind(addr("0.0.0.0:9999")).unwrap();
    net.runtime().unwrap().block_on(async {
        // A clear datagram to B:9999 is dropped.
        let plain = client.udp(Family::V4);
        plain
            .send_to(b"clear", Some(addr("10.0.0.2:9999")))
            .await
            .unwrap();
        // A secure socket's datagram goes through after IKE (itself never subject to policy).
        let secure = client.udp(Family::V4);
        secure.set_security(Some(encrypted())).unwrap();
        secure
            .send_to(b"protected", Some(addr("10.0.0.2:9999")))
            .await
            .unwrap();
        let mut b = [0u8; 32];
        let (n, _, from) = tokio::time::timeout(SAFETY, sink.recv_from(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"protected");
        assert_eq!(from.ip(), addr("10.0.0.1:1").ip());
    });
    assert_eq!(server.security_associations().ike.len(), 1, "IKE passed");
    assert!(server.counters().drops.get(DropReason::ClearTextDrop) >= 1);
}

#[test]
fn case_46_qm_lifetime_rekeys_with_no_data_loss_and_the_old_spi_is_refused() {
    let (net, client, server) =
        net_with(|_, s| s.child_lifetime = child_lifetime(Some(Duration::from_secs(2)), None));
    let l = listener(&server, "0.0.0.0:8046", true);
    let (first_qm, old_spi) = net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(encrypted())).unwrap();
        c.connect(addr("10.0.0.2:8046")).await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        exchange(&c, &a, 1000, 1).await;
        let first = c.query_security(None).unwrap();
        let old_spi = server.security_associations().child[0].inbound_spi;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut i = 0u8;
        loop {
            exchange(&c, &a, 2000, i).await;
            i = i.wrapping_add(1);
            let q = c.query_security(None).unwrap();
            if q.qm_sa_id != first.qm_sa_id && q.secured {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no rekey within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the old SA reach its hard limit, then keep going.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        exchange(&c, &a, 2000, 99).await;
        (first.qm_sa_id, old_spi)
    });
    let now = client.security_associations();
    assert!(now.child.iter().all(|c| c.qm_sa_id != first_qm), "{now:?}");
    // A packet on the old inbound SPI is refused with a typed error.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut esp = old_spi.to_be_bytes().to_vec();
    esp.extend_from_slice(&[
        0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    ]);
    probe.send_to(&esp, server.wire_addrs().natt).unwrap();
    let t = std::time::Instant::now();
    while server.esp_errors().get(&13910).copied().unwrap_or(0) == 0 {
        assert!(
            t.elapsed() < SAFETY,
            "the stale SPI was not counted: {:?}",
            server.esp_errors()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn case_48_lifetime_kilobytes_rekeys_after_64_kib() {
    let (net, client, server) =
        net_with(|_, s| s.child_lifetime = child_lifetime(None, Some(64 * 1024)));
    let l = listener(&server, "0.0.0.0:8048", true);
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(encrypted())).unwrap();
        c.connect(addr("10.0.0.2:8048")).await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        let first = c.query_security(None).unwrap().qm_sa_id;
        for i in 0..30u8 {
            exchange(&c, &a, 8 * 1024, i).await; // 240 KiB in all
        }
        let q = c.query_security(None).unwrap();
        assert!(
            q.secured && q.qm_sa_id > first,
            "bytes alone rekeyed: {first} -> {q:?}"
        );
    });
}

/// Sends raw datagrams to the server's NAT-T socket and waits until `check` holds.
fn natt_probe(server: &Host, datagrams: &[&[u8]]) {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        probe.send_to(d, server.wire_addrs().natt).unwrap();
    }
}

#[test]
fn case_59_natt_demux_marker_is_ike_spi_is_esp_keepalive_is_ignored() {
    let (_net, _client, server) = net_with(|_, _| {});
    let before = server.counters().drops;
    natt_probe(&server, &[&[0xFF]]);
    natt_probe(&server, &[&[0, 0, 0, 0, 1, 2, 3]]); // marker + junk: parsed as IKE, dropped there
    natt_probe(
        &server,
        &[&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 9, 9, 9, 9]],
    ); // unknown SPI
    let t = std::time::Instant::now();
    while server.esp_errors().get(&13910).copied().unwrap_or(0) == 0 {
        assert!(t.elapsed() < SAFETY, "unknown SPI not counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = server.counters().drops;
    assert_eq!(
        after.get(DropReason::Ipsec) - before.get(DropReason::Ipsec),
        1,
        "only the unknown SPI is an ESP drop; the keepalive is ignored and the marker went to IKE"
    );
    assert_eq!(
        after.get(DropReason::Malformed),
        before.get(DropReason::Malformed)
    );
    assert!(server.security_associations().ike.is_empty());
}

#[test]
fn case_50_km_authorization_block_refuses_the_sa_with_13905() {
    let (net, client, server) = net_with(|_, s| s.failure_delay = Duration::from_millis(1500));
    server
        .add_filter(&FilterSpec {
            name: "no SAs for CLIENT".into(),
            layer: "FWPM_LAYER_KM_AUTHORIZATION".into(),
            action: "block".into(),
            conditions: vec![ConditionSpec::new(
                "remote_id",
                "equal",
                ValueSpec::Sd {
                    allow: vec!["CLIENT".into()],
                    deny: vec![],
                },
            )],
            ..Default::default()
        })
        .unwrap();
    let _l = listener(&server, "0.0.0.0:8050", true);
    let r = net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(encrypted())).unwrap();
        let r = tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:8050")))
            .await
            .expect("safety");
        (r, c.query_security(Some(addr("10.0.0.2:8050"))).unwrap())
    });
    assert_eq!(r.0.err(), Some(wsock_stack::StackError::TimedOut));
    assert!(!r.1.secured);
    assert_eq!(r.1.negotiation_winerr, 13905, "{:?}", r.1);
    assert!(server.net_events().iter().any(|e| matches!(
        e.kind,
        NetEventKind::IkeMmFailure {
            failure_error_code: 13905,
            ..
        }
    )));
    assert!(server.security_associations().child.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Wire-protocol cases on the keying module the hosts run (sans-IO, two endpoints in memory).

mod wire_cases {
    use std::net::SocketAddr;
    use std::time::Duration;

    use wsock_stack::wsock_ipsec::esp::{
        EspSuite, InboundSa, Lifetime, Mode, OutboundSa, SaConfig,
    };
    use wsock_stack::wsock_ipsec::ike::crypto::{DhGroup, Prf, SkSuite};
    use wsock_stack::wsock_ipsec::ike::proposal::IkeSuite;
    use wsock_stack::wsock_ipsec::ike::sa::{
        EndpointConfig, Identity, IkeEndpoint, IkeEvent, IkePolicy, SeededIkeRandom, WireSocket,
    };

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn endpoint(ike: &str, natt: &str, responder: Option<IkePolicy>, seed: u64) -> IkeEndpoint {
        let mut c = EndpointConfig::new(a(ike), a(natt));
        c.responder = responder;
        c.keylog = true;
        println!("endpoint {ike}: seed {seed}");
        IkeEndpoint::new(c, Box::new(SeededIkeRandom::new(seed))).unwrap()
    }

    fn suite(dh: DhGroup) -> IkeSuite {
        IkeSuite {
            sk: SkSuite::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha256,
            dh,
        }
    }

    /// Every datagram sent (`true`: from the initiator) and the events of each side.
    type Run = (Vec<(bool, Vec<u8>)>, Vec<IkeEvent>, Vec<IkeEvent>);

    /// Moves datagrams between the two endpoints until quiet.
    fn run(x: &mut IkeEndpoint, y: &mut IkeEndpoint) -> Run {
        let (mut log, mut ex, mut ey) = (Vec::new(), Vec::new(), Vec::new());
        let now = Duration::ZERO;
        loop {
            let mut moved = false;
            while let Some(t) = x.poll_transmit(now) {
                moved = true;
                let from = match t.socket {
                    WireSocket::Ike => x.config().local_ike,
                    WireSocket::Natt => x.config().local_natt,
                };
                log.push((true, t.contents.clone()));
                y.handle_datagram(now, from, t.socket, &t.contents);
            }
            while let Some(t) = y.poll_transmit(now) {
                moved = true;
                let from = match t.socket {
                    WireSocket::Ike => y.config().local_ike,
                    WireSocket::Natt => y.config().local_natt,
                };
                log.push((false, t.contents.clone()));
                x.handle_datagram(now, from, t.socket, &t.contents);
            }
            while let Some(e) = x.poll_event() {
                ex.push(e);
            }
            while let Some(e) = y.poll_event() {
                ey.push(e);
            }
            if !moved {
                return (log, ex, ey);
            }
        }
    }

    #[test]
    fn case_54_invalid_ke_payload_then_retry_with_group_19_and_identical_keys() {
        let mut init = IkePolicy::psk(Identity::Fqdn("client".into()), b"k".to_vec());
        init.ike_suites = vec![suite(DhGroup::Curve25519), suite(DhGroup::Ecp256)];
        let mut resp = IkePolicy::psk(Identity::Fqdn("server".into()), b"k".to_vec());
        resp.ike_suites = vec![suite(DhGroup::Ecp256)];
        let mut x = endpoint("127.0.0.1:500", "127.0.0.1:4500", None, 54);
        let mut y = endpoint("127.0.0.2:500", "127.0.0.2:4500", Some(resp), 55);
        let sa = x
            .connect(
                Duration::ZERO,
                a("127.0.0.2:500"),
                Some(a("127.0.0.2:4500")),
                init,
            )
            .unwrap();
        let (log, ex, ey) = run(&mut x, &mut y);
        // The responder's first answer is N(INVALID_KE_PAYLOAD) with the group it wants (19).
        let first_answer = &log.iter().find(|(from_init, _)| !from_init).unwrap().1;
        let wanted = [0x00, 0x13];
        assert!(
            first_answer.windows(2).any(|w| w == wanted) && first_answer.len() < 100,
            "a short answer carrying group 0x0013"
        );
        assert_eq!(y.stats().invalid_ke_sent, 1);
        assert!(ex
            .iter()
            .any(|e| matches!(e, IkeEvent::IkeSaEstablished { .. })));
        assert!(ey
            .iter()
            .any(|e| matches!(e, IkeEvent::IkeSaEstablished { .. })));
        let kx = x.ike_key_record(sa).expect("initiator keys");
        let ysa = y.summaries()[0].id;
        let ky = y.ike_key_record(ysa).expect("responder keys");
        assert_eq!(
            (&kx.sk_ei, &kx.sk_er),
            (&ky.sk_ei, &ky.sk_er),
            "identical SK_*"
        );
    }

    #[test]
    fn case_57_aes_gcm_256_keys_have_the_rfc_lengths() {
        let mut init = IkePolicy::psk(Identity::Fqdn("client".into()), b"k".to_vec());
        init.ike_suites = vec![suite(DhGroup::Ecp256)];
        init.esp_suites = vec![(EspSuite::AesGcm16 { key_bits: 256 }, false)];
        let resp = IkePolicy::psk(Identity::Fqdn("server".into()), b"k".to_vec());
        let mut x = endpoint("127.0.0.1:500", "127.0.0.1:4500", None, 57);
        let mut y = endpoint("127.0.0.2:500", "127.0.0.2:4500", Some(resp), 58);
        let sa = x
            .connect(
                Duration::ZERO,
                a("127.0.0.2:500"),
                Some(a("127.0.0.2:4500")),
                init,
            )
            .unwrap();
        let (_, ex, _) = run(&mut x, &mut y);
        let k = x.ike_key_record(sa).unwrap();
        assert!(
            k.sk_ai.is_empty() && k.sk_ar.is_empty(),
            "no separate integrity keys"
        );
        assert_eq!(
            (k.sk_ei.len(), k.sk_er.len()),
            (36, 36),
            "32-byte key + 4-byte salt"
        );
        let child = ex
            .iter()
            .find_map(|e| match e {
                IkeEvent::ChildSaReady(c) => Some(c.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(child.outbound_keys.encr.len(), 36);
        assert_eq!(child.inbound_keys.encr.len(), 36);
        assert!(child.outbound_keys.integ.is_empty());
    }

    #[test]
    fn case_58_esp_sequence_numbers_and_the_anti_replay_window() {
        let mut cfg = SaConfig::new(0x1000, EspSuite::AesGcm16 { key_bits: 128 });
        cfg.mode = Mode::Transport;
        cfg.replay_window = 64;
        cfg.lifetime = Lifetime::unlimited();
        let key = [7u8; 20];
        let now = Duration::ZERO;
        let mut out = OutboundSa::new(&cfg, &key, &[], now).unwrap();
        let mut inb = InboundSa::new(&cfg, &key, &[], now).unwrap();
        let mut packets = Vec::new();
        for i in 0..200u8 {
            let mut p = Vec::new();
            let seq = out.seal(now, 17, &[i; 10], &mut p).unwrap();
            if i == 0 {
                assert_eq!(seq, 1, "the first packet has SN 1");
            }
            packets.push(p);
        }
        // Accept up to N = 150 (SNs 1..=150), skipping SN 87 (= N - 63).
        for (i, p) in packets.iter().enumerate().take(150) {
            if i + 1 == 87 {
                continue;
            }
            inb.open(now, &mut p.clone()).unwrap();
        }
        let n = 150usize;
        let code = |e: wsock_stack::wsock_ipsec::IpsecError| e.win32_code();
        assert_eq!(
            code(inb.open(now, &mut packets[n - 64 - 1].clone()).unwrap_err()),
            13913,
            "SN N-64 is outside the window"
        );
        inb.open(now, &mut packets[n - 63 - 1].clone())
            .expect("an unseen N-63 is accepted");
        assert_eq!(
            code(inb.open(now, &mut packets[n - 1].clone()).unwrap_err()),
            13913,
            "a repeat of N is a replay"
        );
        // A flipped ciphertext bit fails integrity and does not move the window.
        let mut bad = packets[160].clone();
        bad[20] ^= 1;
        assert_eq!(code(inb.open(now, &mut bad).unwrap_err()), 13915);
        inb.open(now, &mut packets[160].clone())
            .expect("the genuine packet with that SN still arrives");
    }
}

#[test]
fn case_51_remote_identity_authorization_lets_alice_in_and_blocks_bob() {
    let mut sc = Scenario::default_scenario();
    let client = sc.hosts.iter_mut().find(|h| h.name == "client").unwrap();
    client.users.push(wsock_stack::scenario::UserSpec {
        name: "bob".into(),
        password: Some("bob-demo-password".into()),
    });
    let net = Network::builder(sc)
        .ipsec_setup(|_, s| s.failure_delay = Duration::from_millis(1500))
        .start()
        .expect("network");
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    // RECV_ACCEPT on port 80: alice (authenticated at user level) through the
    // INITIATE_SECURE callout; a lower-weight block for everyone else.
    server
        .add_filter(&FilterSpec {
            name: "alice may connect".into(),
            layer: "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4".into(),
            action: "callout_terminating".into(),
            callout: Some(
                wsock_stack::wsock_ale::callouts::IPSEC_INBOUND_INITIATE_SECURE_V4.to_string(),
            ),
            weight: Some(wsock_stack::wsock_wfp::WeightSpec::Exact(10)),
            conditions: vec![
                ConditionSpec::new("ip_local_port", "equal", ValueSpec::Int(80)),
                ConditionSpec::new(
                    "ale_remote_user_id",
                    "equal",
                    ValueSpec::Sd {
                        allow: vec!["WSOCK\\alice".into()],
                        deny: vec![],
                    },
                ),
            ],
            ..Default::default()
        })
        .unwrap();
    server
        .add_filter(&FilterSpec {
            name: "nobody else on 80".into(),
            layer: "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4".into(),
            action: "block".into(),
            weight: Some(wsock_stack::wsock_wfp::WeightSpec::Exact(1)),
            conditions: vec![ConditionSpec::new(
                "ip_local_port",
                "equal",
                ValueSpec::Int(80),
            )],
            ..Default::default()
        })
        .unwrap();
    let l = listener(&server, "0.0.0.0:80", false);
    let as_user = |user: &str, pw: &str| SecuritySettings {
        protocol: 1,
        flags: SETTINGS_GUARANTEE_ENCRYPTION,
        user: Some(user.into()),
        domain: Some("WSOCK".into()),
        password: Some(pw.into()),
        ..SecuritySettings::default()
    };
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(as_user("alice", "alice-demo-password")))
            .unwrap();
        tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:80")))
            .await
            .unwrap()
            .expect("alice connects");
        let (a, _) = l.accept().await.unwrap();
        assert_eq!(
            a.query_security(None).unwrap().peer_user.as_deref(),
            Some("alice@WSOCK")
        );
        let b = client.tcp(Family::V4);
        b.set_security(Some(as_user("bob", "bob-demo-password")))
            .unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), b.connect(addr("10.0.0.2:80"))).await;
        assert!(!matches!(r, Ok(Ok(()))), "bob is blocked: {r:?}");
    });
}
