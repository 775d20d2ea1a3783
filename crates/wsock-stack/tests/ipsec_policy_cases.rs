//! Main mode and quick mode policy from WFP (issue 8 §5; wfp-ale-ipsec.md §4.1 and case 49):
//! the keying module offers what the provider contexts named by `FWPM_LAYER_IKEEXT_V4` and
//! `FWPM_LAYER_IPSEC_V4` filters hold; no matching policy fails with the Windows code.

use std::net::SocketAddr;
use std::time::Duration;

use wsock_stack::wsock_wfp::NetEventKind;
use wsock_stack::{Family, Network, Scenario, SecuritySettings, StackError};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The default scenario's two hosts; the client gets an MM policy for `mm_remote` and a QM
/// policy for traffic to port `qm_port`.
fn scenario(mm_remote: &str, qm_port: u16) -> Scenario {
    Scenario::from_toml_str(&scenario_text(mm_remote, qm_port), "policy.toml").expect("scenario")
}

fn scenario_text(mm_remote: &str, qm_port: u16) -> String {
    format!(
        r#"
name = "policy"
[ipsec]
retransmit_initial_ms = 50
retransmit_max = 3
negotiation_timeout_ms = 1500

[[host]]
name = "client"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
wire = "127.0.0.1:0"
machine = "CLIENT"
domain = "WSOCK"

[[host.provider_context]]
name = "lab main mode"
type = "ike-mm"
auth = [{{ method = "certificate" }}]
[[host.provider_context.proposal]]
cipher = "IKEEXT_CIPHER_AES_GCM_256_16ICV"
integrity = "IKEEXT_INTEGRITY_SHA_256"
dh_group = "IKEEXT_DH_ECP_256"

[[host.provider_context]]
name = "lab quick mode"
type = "ipsec-qm-transport"
[[host.provider_context.proposal]]
transforms = [{{ type = "esp-auth-and-cipher", auth = "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128", cipher = "IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128" }}]
[[host.provider_context.proposal]]
transforms = [{{ type = "esp-auth", auth = "IPSEC_AUTH_TYPE_SHA_256" }}]

[[host.filter]]
name = "main mode policy"
layer = "FWPM_LAYER_IKEEXT_V4"
action = "permit"
provider_context = "lab main mode"
conditions = [{{ field = "ip_remote_address", match = "equal", value = "{mm_remote}" }}]

[[host.filter]]
name = "quick mode policy"
layer = "FWPM_LAYER_IPSEC_V4"
action = "permit"
provider_context = "lab quick mode"
conditions = [{{ field = "ip_remote_port", match = "equal", value = {qm_port} }}]

[[host]]
name = "server"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
wire = "127.0.0.1:0"
machine = "SERVER"
domain = "WSOCK"
"#
    )
}

/// Connects a secure client socket (default settings) to the server's `port`.
fn secure_connect(
    net: &Network,
    port: u16,
) -> (Result<(), StackError>, wsock_stack::SecurityQuery) {
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let l = server.tcp(Family::V4);
    l.bind(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
    l.listen(4).unwrap();
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(SecuritySettings::default())).unwrap();
        let to = addr(&format!("10.0.0.2:{port}"));
        let r = tokio::time::timeout(Duration::from_secs(60), c.connect(to))
            .await
            .expect("safety");
        let q = c.query_security(Some(to)).unwrap();
        (r, q)
    })
}

#[test]
fn policy_from_ikeext_and_ipsec_layer_filters_decides_the_suites() {
    let net = Network::start(scenario("10.0.0.2", 6000)).expect("network");
    let (r, q) = secure_connect(&net, 6000);
    r.expect("connect under the lab policy");
    assert!(q.secured, "{q:?}");
    assert!(
        q.encrypted,
        "the QM policy offers AES-GCM first, unlike the default integrity-first policy: {q:?}"
    );
    let sas = net.host("client").unwrap().security_associations();
    assert_eq!(sas.child[0].suite, "aes-gcm-128", "{sas:?}");
}

#[test]
fn case_49_no_mm_policy_fails_13850_and_no_qm_policy_fails_13825() {
    let net = Network::start(scenario("10.9.9.9", 6000)).expect("network");
    let (r, q) = secure_connect(&net, 6000);
    assert_eq!(r.err(), Some(StackError::TimedOut));
    assert_eq!(
        q.negotiation_winerr, 13850,
        "ERROR_IPSEC_IKE_NO_MM_POLICY: {q:?}"
    );
    let client = net.host("client").unwrap();
    assert!(client.net_events().iter().any(|e| matches!(
        e.kind,
        NetEventKind::IkeMmFailure {
            failure_error_code: 13850,
            ..
        }
    )));
    assert_eq!(client.with_core(|c| c.ipsec_counters()).clear_sent, 0);
    drop(net);

    let net = Network::start(scenario("10.0.0.2", 6000)).expect("network");
    let (r, q) = secure_connect(&net, 6001);
    assert_eq!(r.err(), Some(StackError::TimedOut));
    assert_eq!(
        q.negotiation_winerr, 13825,
        "ERROR_IPSEC_IKE_NO_POLICY: {q:?}"
    );
}

/// The main mode policy's `quickModeLimit` (here 2) and `maxLifetimeSeconds` are what the
/// host uses, not its own defaults: the third quick mode to the server needs a new main mode
/// SA (a 13884 event), and the IKE SA lives the policy's lifetime.
#[test]
fn the_mm_policy_quick_mode_limit_and_lifetime_apply() {
    let text = scenario_text("10.0.0.2", 6100).replace(
        "dh_group = \"IKEEXT_DH_ECP_256\"\n",
        "dh_group = \"IKEEXT_DH_ECP_256\"\nquick_mode_limit = 2\nlifetime_seconds = 600\n",
    );
    assert!(text.contains("quick_mode_limit = 2"));
    let sc = Scenario::from_toml_str(&text, "policy.toml").expect("scenario");
    let net = Network::builder(sc)
        .ipsec_setup(|_, s| s.idle_timeout = Some(Duration::from_secs(1)))
        .start()
        .expect("network");
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let l = server.tcp(Family::V4);
    l.bind(addr("0.0.0.0:6100")).unwrap();
    l.listen(4).unwrap();
    let seen = net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(SecuritySettings::default())).unwrap();
        tokio::time::timeout(Duration::from_secs(60), c.connect(addr("10.0.0.2:6100")))
            .await
            .expect("safety")
            .unwrap();
        let (a, _) = l.accept().await.unwrap();
        let mut seen = vec![c.query_security(None).unwrap()];
        for round in 0..2u8 {
            // Idle until the pair is deleted; the next send negotiates a new quick mode.
            let t = std::time::Instant::now();
            while !client.security_associations().child.is_empty() {
                assert!(t.elapsed() < Duration::from_secs(60), "the idle pair goes");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            c.send(&[round; 4]).await.unwrap();
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                got += tokio::time::timeout(Duration::from_secs(60), a.recv(&mut buf[got..]))
                    .await
                    .expect("safety")
                    .unwrap();
            }
            assert_eq!(buf, [round; 4]);
            seen.push(c.query_security(None).unwrap());
        }
        seen
    });
    let ids: Vec<(u64, u64)> = seen.iter().map(|q| (q.mm_sa_id, q.qm_sa_id)).collect();
    println!("(mm, qm) per quick mode: {ids:?}");
    assert!(seen.iter().all(|q| q.secured), "{seen:?}");
    assert_eq!(
        ids[0].0, ids[1].0,
        "the second quick mode runs under the first MM SA"
    );
    assert_ne!(ids[1].0, ids[2].0, "the third needs a new MM SA (limit 2)");
    assert!(client.net_events().iter().any(|e| matches!(
        e.kind,
        NetEventKind::IkeQmFailure {
            failure_error_code: 13884,
            ..
        }
    )));
    let sas = client.security_associations();
    assert!(
        sas.ike.iter().all(|s| s.lifetime_seconds == Some(600)),
        "{sas:?}"
    );
}
