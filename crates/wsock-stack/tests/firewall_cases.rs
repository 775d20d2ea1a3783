//! Windows Firewall semantics on top of WFP (wfp-ale-ipsec.md §10.1, cases 60-62), end to end:
//! rules expanded into filters on the server host, traffic from the client with and without
//! IPsec, integrity-only and with a cipher.

use std::net::SocketAddr;
use std::time::Duration;

use wsock_stack::core::SETTINGS_GUARANTEE_ENCRYPTION;
use wsock_stack::wsock_wfp::firewall::{
    install, FirewallAction, FirewallDirection, FirewallRule, FirewallSecurity,
};
use wsock_stack::{Family, Host, Network, Scenario, SecuritySettings};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net() -> (Network, Host, Host) {
    let net = Network::builder(Scenario::default_scenario())
        .ipsec_setup(|_, s| {
            s.retransmit.initial = Duration::from_millis(50);
            s.retransmit.max_sends = 4;
        })
        .start()
        .expect("network");
    let c = net.host("client").unwrap();
    let s = net.host("server").unwrap();
    (net, c, s)
}

fn rule(h: &Host, r: FirewallRule) {
    let ids = h
        .with_ale(|ale| {
            let admin = ale.engine_mut().open_session(false);
            install(ale.engine_mut(), admin, &r)
        })
        .expect("rule installs");
    assert!(!ids.is_empty());
}

/// Whether a connect from the client to `port` succeeds within a short wait, with the client
/// socket's security `flags` (`None`: a plain socket).
fn connects(net: &Network, client: &Host, server: &Host, port: u16, flags: Option<u32>) -> bool {
    let l = server.tcp(Family::V4);
    l.bind(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
    l.listen(4).unwrap();
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        if let Some(f) = flags {
            c.set_security(Some(SecuritySettings {
                flags: f,
                ..SecuritySettings::default()
            }))
            .unwrap();
        }
        let to = addr(&format!("10.0.0.2:{port}"));
        match tokio::time::timeout(Duration::from_secs(3), c.connect(to)).await {
            Ok(Ok(())) => {
                let accepted = tokio::time::timeout(Duration::from_secs(5), l.accept()).await;
                accepted.is_ok_and(|a| a.is_ok())
            }
            _ => false,
        }
    })
}

fn inbound(name: &str, action: FirewallAction, port: u16) -> FirewallRule {
    FirewallRule::new(name, FirewallDirection::Inbound, action)
        .protocol(6)
        .local_port(port)
}

#[test]
fn case_60_authenticated_bypass_overrides_block_only_for_authorized_computers() {
    let (net, client, server) = net();
    rule(&server, inbound("block 80", FirewallAction::Block, 80));
    rule(
        &server,
        inbound("bypass 80", FirewallAction::AllowBypass, 80)
            .security(FirewallSecurity::Authenticate)
            .authorize_computer("CLIENT"),
    );
    assert!(
        connects(&net, &client, &server, 80, Some(0)),
        "IPsec-authenticated traffic from an authorized computer is permitted"
    );
    assert!(
        !connects(&net, &client, &server, 80, None),
        "unauthenticated traffic is blocked"
    );
    // A bypass for another computer does not help this one.
    rule(&server, inbound("block 81", FirewallAction::Block, 81));
    rule(
        &server,
        inbound("bypass 81", FirewallAction::AllowBypass, 81)
            .security(FirewallSecurity::Authenticate)
            .authorize_computer("OTHER"),
    );
    assert!(!connects(&net, &client, &server, 81, Some(0)));
    // A plain allow does not override a block.
    rule(&server, inbound("block 82", FirewallAction::Block, 82));
    rule(&server, inbound("allow 82", FirewallAction::Allow, 82));
    assert!(!connects(&net, &client, &server, 82, Some(0)));
    assert!(!connects(&net, &client, &server, 82, None));
}

#[test]
fn case_61_inbound_bypass_with_users_but_no_computers_is_rejected_at_add() {
    let (_net, _client, server) = net();
    let r = inbound("bypass users", FirewallAction::AllowBypass, 90)
        .security(FirewallSecurity::Authenticate)
        .authorize_user("WSOCK\\alice");
    let before = server.filters().len();
    let res = server.with_ale(|ale| {
        let admin = ale.engine_mut().open_session(false);
        install(ale.engine_mut(), admin, &r)
    });
    assert!(res.is_err(), "rejected: {res:?}");
    assert_eq!(
        server.filters().len(),
        before,
        "nothing of the rule was added"
    );
}

#[test]
fn case_62_allow_if_secure_and_require_encryption() {
    let (net, client, server) = net();
    rule(
        &server,
        inbound("secure 70", FirewallAction::Allow, 70).security(FirewallSecurity::Authenticate),
    );
    assert!(
        !connects(&net, &client, &server, 70, None),
        "no IPsec: blocked"
    );
    assert!(
        connects(&net, &client, &server, 70, Some(0)),
        "an integrity-only SA is enough to authenticate"
    );
    rule(
        &server,
        inbound("encrypted 71", FirewallAction::Allow, 71)
            .security(FirewallSecurity::AuthenticateWithEncryption),
    );
    assert!(
        !connects(&net, &client, &server, 71, Some(0)),
        "integrity-only SA where encryption is required: blocked"
    );
    assert!(
        connects(
            &net,
            &client,
            &server,
            71,
            Some(SETTINGS_GUARANTEE_ENCRYPTION)
        ),
        "ESP with a cipher: allowed"
    );
}
