//! The secure-socket cases of the reference (wfp-ale-ipsec.md §10.1, cases 35-42) that are
//! about what the stack does below the API: negotiation failures, encryption guarantees, peer
//! names, filter instantiation. (The argument-level cases are the `wsock` crate's.)

use std::net::SocketAddr;
use std::time::Duration;

use wsock_stack::core::IpsecSetup;
use wsock_stack::core::{
    SETTINGS_ALLOW_INSECURE, SETTINGS_GUARANTEE_ENCRYPTION,
    SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION, SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION,
};
use wsock_stack::wsock_ipsec::esp::{EspSuite, Integrity};
use wsock_stack::wsock_wfp::{NetEventKind, SUBLAYER_SECURE_SOCKET};
use wsock_stack::{Endpoint, Family, Host, Network, Scenario, SecuritySettings, StackError};

const SAFETY: Duration = Duration::from_secs(60);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net_with(f: impl Fn(&str, &mut IpsecSetup) + Send + Sync + 'static) -> (Network, Host, Host) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = Network::builder(Scenario::default_scenario())
        .ipsec_setup(move |n, s| {
            // Fail fast: retransmissions every 50 ms, connects give up 1 s after a failure.
            s.retransmit.initial = Duration::from_millis(50);
            s.retransmit.max_sends = 4;
            s.failure_delay = Duration::from_secs(1);
            f(n, s)
        })
        .start()
        .expect("network");
    let c = net.host("client").unwrap();
    let s = net.host("server").unwrap();
    (net, c, s)
}

fn settings(flags: u32, ipsec_flags: u32) -> SecuritySettings {
    SecuritySettings {
        protocol: if ipsec_flags != 0 { 1 } else { 0 },
        flags,
        ipsec_flags,
        ..SecuritySettings::default()
    }
}

fn listener(host: &Host, at: &str, s: Option<SecuritySettings>) -> Endpoint {
    let a = addr(at);
    let l = host.tcp(Family::of(&a));
    if let Some(s) = s {
        l.set_security(Some(s)).unwrap();
    }
    l.bind(a).unwrap();
    l.listen(8).unwrap();
    l
}

fn secure_sublayer_filters(h: &Host) -> usize {
    h.filters()
        .iter()
        .filter(|f| {
            f.sublayer.contains("SECURE_SOCKET") || f.sublayer == SUBLAYER_SECURE_SOCKET.to_string()
        })
        .count()
}

#[test]
fn case_35_no_responder_no_clear_text_connect_times_out_with_13805() {
    let (net, client, server) = net_with(|_, _| {});
    server.with_core(|c| c.disable_ipsec());
    let _l = listener(&server, "0.0.0.0:80", None);
    let r = net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(None).unwrap();
        tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:80")))
            .await
            .expect("safety")
    });
    assert_eq!(r.err(), Some(StackError::TimedOut));
    let counters = client.with_core(|c| c.ipsec_counters());
    assert_eq!(
        counters.clear_sent, 0,
        "zero clear-text packets from A to B:80"
    );
    assert!(client.net_events().iter().any(|e| matches!(
        e.kind,
        NetEventKind::IkeMmFailure {
            failure_error_code: 13805,
            ..
        }
    )));
}

#[test]
fn case_38_guaranteed_encryption_against_an_integrity_only_peer_fails() {
    let (net, client, server) = net_with(|name, s| {
        if name == "server" {
            s.responder_esp = Some(vec![(EspSuite::Null(Integrity::HmacSha1_96), false)]);
        }
    });
    let _l = listener(&server, "0.0.0.0:81", Some(settings(0, 0)));
    let r = net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(settings(SETTINGS_GUARANTEE_ENCRYPTION, 0)))
            .unwrap();
        let r = tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:81")))
            .await
            .expect("safety");
        (r, c.query_security(Some(addr("10.0.0.2:81"))))
    });
    assert_eq!(r.0.err(), Some(StackError::TimedOut), "no SA, no data");
    let q = r.1.unwrap();
    assert!(!q.secured);
    assert!(
        matches!(q.negotiation_winerr, 13868 | 13802 | 13825),
        "a policy-mismatch code: {q:?}"
    );
    assert_eq!(client.with_core(|c| c.ipsec_counters()).clear_sent, 0);
}

#[test]
fn case_39_wrong_peer_name_fails_13801_optional_verification_succeeds() {
    let (net, client, server) = net_with(|_, _| {});
    let _l = listener(&server, "0.0.0.0:82", Some(settings(0, 0)));
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(settings(0, 0))).unwrap();
        c.set_peer_target_name(addr("10.0.0.2:0").ip(), "hostA")
            .unwrap();
        let r = tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:82")))
            .await
            .expect("safety");
        assert_eq!(r.err(), Some(StackError::TimedOut));
        let q = c.query_security(Some(addr("10.0.0.2:82"))).unwrap();
        assert_eq!(q.negotiation_winerr, 13801, "{q:?}");

        let c = client.tcp(Family::V4);
        c.set_security(Some(settings(
            0,
            SETTINGS_IPSEC_OPTIONAL_PEER_NAME_VERIFICATION,
        )))
        .unwrap();
        c.set_peer_target_name(addr("10.0.0.2:0").ip(), "hostA")
            .unwrap();
        tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:82")))
            .await
            .expect("safety")
            .expect("optional verification tolerates the name");
        assert!(c.query_security(None).unwrap().secured);
    });
}

#[test]
fn case_41_secure_socket_filters_exist_while_connected_and_go_with_the_socket() {
    let (net, client, server) = net_with(|_, _| {});
    let before = secure_sublayer_filters(&client);
    let l = listener(&server, "0.0.0.0:83", Some(settings(0, 0)));
    assert!(
        secure_sublayer_filters(&server) >= 1,
        "the listener's filter"
    );
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(settings(SETTINGS_GUARANTEE_ENCRYPTION, 0)))
            .unwrap();
        c.connect(addr("10.0.0.2:83")).await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        assert!(secure_sublayer_filters(&client) > before);
        c.send(b"last words").await.unwrap();
        c.close().unwrap();
        let mut b = [0u8; 16];
        let n = a.recv(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"last words");
    });
    assert!(net.drain(Duration::from_secs(5)));
    assert_eq!(
        secure_sublayer_filters(&client),
        before,
        "none remain after close"
    );
}

#[test]
fn case_42_skip_filter_instantiation_without_admin_policy_flows_in_clear() {
    let (net, client, server) = net_with(|_, _| {});
    let l = listener(&server, "0.0.0.0:84", None);
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(settings(0, SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION)))
            .unwrap();
        c.connect(addr("10.0.0.2:84")).await.unwrap();
        let (_a, _) = l.accept().await.unwrap();
        assert!(!c.query_security(None).unwrap().secured);
    });
    assert_eq!(secure_sublayer_filters(&client), 0, "no filters added");
    assert!(client.with_core(|c| c.ipsec_counters()).clear_sent > 0);
    let _ = SETTINGS_ALLOW_INSECURE;
}
