//! Scenario sections for IPsec and the firewall: `[ca]`, `[ipsec]`, `[[host.provider_context]]`,
//! `[[host.firewall_rule]]`, `[[host.psk]]`, `[host.certificate]`, `[host.ipsec]` and user
//! passwords; every bad value names the file and its line.

use std::time::Duration;

use wsock_stack::Scenario;
use wsock_wfp::firewall::{FirewallAction, FirewallDirection, FirewallSecurity};
use wsock_wfp::{
    provider_context_type, Engine, IkeAuthType, IkeCipher, IkeDhGroup, IpsecAuth, IpsecCipher,
    IpsecQmPolicy, IpsecTransform, Layer, WfpError,
};

const LAB: &str = r#"name = "lab"
[ca]
name = "WSOCK Lab CA"

[ipsec]
retransmit_initial_ms = 200
replay_window = 128

[[host]]
name = "client"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
[[host.user]]
name = "alice"
password = "Passw0rd!"
[[host.psk]]
peer = "server"
key = "lab secret"
[host.certificate]
[host.ipsec]
negotiation_timeout_ms = 1500
child_lifetime_seconds = 30

[[host.provider_context]]
key = "5d3c4f6e-0000-4000-8000-000000000001"
name = "lab mm"
type = "ike-mm"
auth = [{ method = "certificate", root_ca = "WSOCK Lab CA" }, { method = "psk" }]
[[host.provider_context.proposal]]
cipher = "IKEEXT_CIPHER_AES_GCM_128_16ICV"
integrity = "IKEEXT_INTEGRITY_SHA_256"
dh_group = "IKEEXT_DH_ECP_256"
lifetime_seconds = 3600

[[host.provider_context]]
key = "5d3c4f6e-0000-4000-8000-000000000002"
name = "lab qm"
type = "ipsec-qm-transport"
policy_flags = ["ND_SECURE"]
replay_window = 32
[[host.provider_context.proposal]]
lifetime_seconds = 300
lifetime_kilobytes = 1024
transforms = [{ type = "esp-auth-and-cipher", auth = "IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128", cipher = "IPSEC_CIPHER_TYPE_AES_GCM_128" }]
[[host.provider_context.proposal]]
transforms = [{ type = "esp-auth", auth = "IPSEC_AUTH_TYPE_SHA_256" }]
pfs_group = "IPSEC_PFS_ECP_256"

[[host.provider_context]]
name = "socket default qm"
type = "authip-qm-transport"
preset = "windows-default"

[[host]]
name = "server"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
machine = "SRV"
domain = "CORP"
[[host.user]]
name = "svc"
[[host.psk]]
peer = "client"
key = "lab secret"
[host.certificate]
dns_names = ["srv.corp.example"]

[[host.firewall_rule]]
name = "block echo"
direction = "in"
action = "block"
protocol = "tcp"
local_ports = [7]

[[host.firewall_rule]]
name = "echo from CLIENT, authenticated"
direction = "in"
action = "bypass"
protocol = "tcp"
local_ports = [7]
authorized_computers = ['WSOCK\CLIENT$']

[[host.firewall_rule]]
name = "web, encrypted"
direction = "in"
action = "allow-if-secure"
require_encryption = true
protocol = "tcp"
local_ports = ["80-81"]
remote_addresses = ["10.0.0.0/24"]
"#;

fn lab() -> Scenario {
    Scenario::from_toml_str(LAB, "lab.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn credentials_and_ipsec_knobs() {
    let s = lab();
    assert_eq!(s.ca.as_ref().unwrap().name, "WSOCK Lab CA");
    assert_eq!(s.ca.as_ref().unwrap().key_type, "ecdsa-p256");
    let c = s.host("client").unwrap();
    let srv = s.host("server").unwrap();
    assert_eq!(c.psk_for("server"), Some(&b"lab secret"[..]));
    assert_eq!(c.psk_for("nobody"), None);
    assert_eq!(c.password_of("ALICE"), Some("Passw0rd!"));
    assert_eq!(srv.password_of("svc"), None);
    assert_eq!(
        c.certificate_dns_names(),
        vec!["client".to_string(), "client.wsock".to_string()]
    );
    assert_eq!(
        srv.certificate_dns_names(),
        vec!["srv.corp.example".to_string()]
    );
    assert!(s.wants_certificate("client") && s.wants_certificate("server"));
    assert!(!s.wants_certificate("nobody"));
    // with a [ca] every host gets a certificate unless it says no
    let t = format!("[ca]\nname = \"x\"\n{HEAD}{HEAD_B}[host.certificate]\nwanted = false\n");
    let n = Scenario::from_toml_str(&t, "t.toml").unwrap();
    assert!(n.wants_certificate("a") && !n.wants_certificate("b"));
    // without a [ca], nobody does, and `wanted = false` needs no CA
    let t = format!("{HEAD}[host.certificate]\nwanted = false\n");
    assert!(!Scenario::from_toml_str(&t, "t.toml")
        .unwrap()
        .wants_certificate("a"));
    // host knobs over scenario knobs over defaults
    let k = s.ipsec_settings("client");
    assert_eq!(k.retransmit_initial, Duration::from_millis(200));
    assert_eq!(k.replay_window, 128);
    assert_eq!(k.negotiation_timeout, Duration::from_millis(1500));
    assert_eq!(k.child_lifetime, Duration::from_secs(30));
    assert_eq!(k.retransmit_max, 7);
    let k = s.ipsec_settings("server");
    assert_eq!(k.negotiation_timeout, Duration::from_secs(21));
    assert_eq!(k.retransmit_initial, Duration::from_millis(200));
    assert_eq!(k.child_lifetime, Duration::from_secs(3600));
}

#[test]
fn provider_contexts_are_typed_and_land_in_the_engine() {
    let s = lab();
    let h = s.host("client").unwrap();
    let mut e = Engine::new();
    let sid = e.open_session(false);
    let ids = h.add_provider_contexts(&mut e, sid).unwrap();
    assert_eq!(ids.len(), 3);
    let mm = e.get_provider_context_by_id(sid, ids[0]).unwrap();
    assert_eq!(mm.context_type, provider_context_type::IPSEC_IKE_MM);
    assert_eq!(
        mm.key,
        "5d3c4f6e-0000-4000-8000-000000000001".parse().unwrap()
    );
    let p = mm.ike_mm_policy().unwrap();
    assert_eq!(p.auth_methods[0].method, IkeAuthType::Certificate);
    assert_eq!(p.auth_methods[0].root_ca.as_deref(), Some("WSOCK Lab CA"));
    assert_eq!(p.auth_methods[1].method, IkeAuthType::PresharedKey);
    assert_eq!(p.proposals[0].cipher, IkeCipher::AesGcm128);
    assert_eq!(p.proposals[0].dh_group, IkeDhGroup::Ecp256);
    assert_eq!(p.proposals[0].max_lifetime_seconds, 3600);
    let qm = e.get_provider_context_by_id(sid, ids[1]).unwrap();
    let q = qm.ipsec_qm_policy().unwrap();
    assert!(q.nd_secure() && !q.nd_boundary());
    assert_eq!(q.replay_window, 32);
    assert_eq!(
        q.proposals[0].transforms,
        vec![IpsecTransform::EspAuthAndCipher {
            auth: IpsecAuth::GcmAes128,
            cipher: IpsecCipher::GcmAes128
        }]
    );
    assert_eq!(q.proposals[0].lifetime.seconds, 300);
    assert_eq!(q.proposals[0].lifetime.kilobytes, 1024);
    assert!(!q.proposals[1].encrypts());
    assert_eq!(q.proposals[1].lifetime.seconds, 3600);
    let d = e.get_provider_context_by_id(sid, ids[2]).unwrap();
    assert_eq!(
        d.context_type,
        provider_context_type::IPSEC_AUTHIP_QM_TRANSPORT
    );
    assert_eq!(
        d.ipsec_qm_policy().unwrap(),
        &IpsecQmPolicy::windows_default()
    );
}

#[test]
fn firewall_rules_expand_into_filters() {
    let s = lab();
    let h = s.host("server").unwrap();
    let rules = h.firewall_rules().unwrap();
    assert_eq!(rules[1].action, FirewallAction::AllowBypass);
    assert_eq!(
        rules[2].security,
        FirewallSecurity::AuthenticateWithEncryption
    );
    assert_eq!(rules[2].direction, FirewallDirection::Inbound);
    let mut e = Engine::new();
    let sid = e.open_session(false);
    let ids = h.install_firewall_rules(&mut e, sid).unwrap();
    // block and bypass: v4 + v6 each; allow-if-secure with an IPv4 remote prefix: v4 only,
    // secure permit + "not secure" block
    assert_eq!(ids.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2]);
    let f = e.get_filter_by_id(sid, ids[2][0]).unwrap();
    assert_eq!(f.layer, Layer::ALE_AUTH_RECV_ACCEPT_V4);
    assert_eq!(f.raw_context, 0x20 | 0x8);
}

fn err(text: &str) -> wsock_stack::ScenarioError {
    Scenario::from_toml_str(text, "bad.toml").unwrap_err()
}

const HEAD: &str = "[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n";
const HEAD_B: &str = "[[host]]\nname = \"b\"\nipv4 = \"10.0.0.2\"\nipv6 = \"fd00::2\"\n";

#[test]
fn bad_values_name_file_and_line() {
    let cases: &[(String, usize, &str)] = &[
        // an unknown cipher name: the header line of the provider context
        (
            format!(
                "{HEAD}[[host.provider_context]]\nname = \"m\"\ntype = \"ike-mm\"\nauth = [{{ method = \"psk\" }}]\n[[host.provider_context.proposal]]\ncipher = \"IKEEXT_CIPHER_CHACHA\"\nintegrity = \"IKEEXT_INTEGRITY_SHA1\"\ndh_group = \"IKEEXT_DH_ECP_256\"\n"
            ),
            5,
            "IKEEXT_CIPHER_CHACHA",
        ),
        // an empty proposal list
        (
            format!("{HEAD}[[host.provider_context]]\nname = \"q\"\ntype = \"ipsec-qm-transport\"\n"),
            5,
            "FWP_E_ZERO_LENGTH_ARRAY",
        ),
        // a lifetime of 0
        (
            format!(
                "{HEAD}[[host.provider_context]]\nname = \"q\"\ntype = \"ipsec-qm-transport\"\n[[host.provider_context.proposal]]\nlifetime_seconds = 0\ntransforms = [{{ type = \"esp-auth\", auth = \"IPSEC_AUTH_TYPE_SHA_256\" }}]\n"
            ),
            5,
            "proposal[0].lifetime_seconds",
        ),
        // AH with a cipher
        (
            format!(
                "{HEAD}[[host.provider_context]]\nname = \"q\"\ntype = \"ipsec-qm-transport\"\n[[host.provider_context.proposal]]\ntransforms = [{{ type = \"ah\", auth = \"IPSEC_AUTH_TYPE_SHA_256\", cipher = \"IPSEC_CIPHER_TYPE_AES_128\" }}]\n"
            ),
            5,
            "FWP_E_INVALID_TRANSFORM_COMBINATION",
        ),
        // the second host's context: counted across hosts
        (
            format!(
                "{HEAD}[[host.provider_context]]\nname = \"ok\"\ntype = \"general\"\n{HEAD_B}[[host.provider_context]]\nname = \"q\"\ntype = \"bogus\"\n"
            ),
            12,
            "unknown provider context type",
        ),
        // psk for an unknown peer
        (
            format!("{HEAD}[[host.psk]]\npeer = \"nobody\"\nkey = \"k\"\n"),
            5,
            "not another host",
        ),
        // a machine certificate without a CA
        (format!("{HEAD}[host.certificate]\n"), 1, "no [ca]"),
        // a bad DNS name
        (
            format!("[ca]\nname = \"x\"\n{HEAD}[host.certificate]\ndns_names = [\"a..b\"]\n"),
            3,
            "DNS names",
        ),
        // bad CA key type
        (
            format!("[ca]\nname = \"x\"\nkey_type = \"rsa-512\"\n{HEAD}"),
            3,
            "key_type",
        ),
        // scenario knob out of range
        (
            format!("[ipsec]\nreplay_window = 100000\n{HEAD}"),
            2,
            "replay_window",
        ),
        // host knob out of range
        (
            format!("{HEAD}[host.ipsec]\nretransmit_initial_ms = 0\n"),
            6,
            "retransmit_initial_ms",
        ),
        // empty password
        (
            format!("{HEAD}[[host.user]]\nname = \"u\"\npassword = \"\"\n"),
            5,
            "empty password",
        ),
        // case 61 in a scenario: inbound bypass with users only
        (
            format!(
                "{HEAD}[[host.firewall_rule]]\nname = \"r\"\ndirection = \"in\"\naction = \"bypass\"\nauthorized_users = ['WSOCK\\alice']\n"
            ),
            5,
            "at least one computer",
        ),
        // an unknown key in a firewall rule (serde points at the key itself)
        (
            format!("{HEAD}[[host.firewall_rule]]\nname = \"r\"\ndirektion = \"in\"\n"),
            7,
            "direktion",
        ),
    ];
    for (text, line, needle) in cases {
        let e = err(text);
        assert_eq!(e.file, "bad.toml");
        assert_eq!(e.line, Some(*line), "{e}\n--- for ---\n{text}");
        assert!(e.to_string().contains(needle), "{e}\n--- wanted {needle:?}");
        assert!(
            e.to_string().starts_with(&format!("bad.toml:{line}: ")),
            "{e}"
        );
    }
}

#[test]
fn typed_context_errors_carry_the_windows_code() {
    let e = err(&format!(
        "{HEAD}[[host.provider_context]]\nname = \"m\"\ntype = \"ike-mm\"\nauth = [{{ method = \"anonymous\" }}]\n[[host.provider_context.proposal]]\ncipher = \"aes-128\"\nintegrity = \"sha1\"\ndh_group = \"ecp-256\"\n"
    ));
    assert!(
        e.message.contains(WfpError::IncompatibleAuthMethod.name()),
        "{e}"
    );
}

#[test]
fn the_default_scenario_has_no_security_sections_and_windows_defaults() {
    let s = Scenario::default_scenario();
    assert!(s.ca.is_none());
    assert!(s.hosts.iter().all(|h| h.provider_contexts.is_empty()
        && h.firewall_rules.is_empty()
        && h.psks.is_empty()
        && h.certificate.is_none()));
    let k = s.ipsec_settings("server");
    assert_eq!(k, wsock_stack::scenario::IpsecSettings::default());
    assert_eq!(k.negotiation_timeout, Duration::from_secs(21));
    assert_eq!(k.child_lifetime_bytes, 55 * 1024 * 1024 * 1024);
}

/// The TOML examples of docs/scenario.md's IPsec and firewall sections are valid scenarios
/// (after a `[[host]]` header where they start with a host sub-table).
#[test]
fn docs_examples_parse() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenario.md");
    let Ok(doc) = std::fs::read_to_string(&path) else {
        println!("skipped: {} is absent", path.display());
        return;
    };
    let mut checked = 0;
    for block in doc.split("```toml").skip(1) {
        let Some((toml, _)) = block.split_once("```") else {
            continue;
        };
        let wanted = [
            "[ca]",
            "[[host.provider_context]]",
            "[[host.firewall_rule]]",
        ];
        if !wanted.iter().any(|w| toml.contains(w)) {
            continue;
        }
        let mut text = toml.to_string();
        if text.trim_start().starts_with("[[host.") {
            text = format!("{HEAD}{text}");
        }
        if !text.contains("name = \"server\"") {
            text.push_str(HEAD_B.replace("\"b\"", "\"server\"").as_str());
        }
        Scenario::from_toml_str(&text, "scenario.md").unwrap_or_else(|e| panic!("{e}\n{text}"));
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected the docs' IPsec and firewall examples, found {checked}"
    );
}

#[test]
fn a_machine_name_that_is_no_dns_name_needs_explicit_dns_names() {
    let host = "[[host]]\nname = \"my_host\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n";
    let e = err(&format!("[ca]\nname = \"x\"\n{host}"));
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("dns_names"), "{e}");
    let ok = format!("[ca]\nname = \"x\"\n{host}[host.certificate]\ndns_names = [\"my-host\"]\n");
    assert!(Scenario::from_toml_str(&ok, "ok.toml").is_ok());
    // without a [ca] the machine name does not matter
    assert!(Scenario::from_toml_str(host, "ok.toml").is_ok());
}
