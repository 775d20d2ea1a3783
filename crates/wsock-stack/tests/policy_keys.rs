//! Generated filter keys differ per host and stay the same from run to run; views show the
//! flags, the provider and an app id's path.

use wsock_stack::{Network, Scenario};

const SC: &str = r#"
name = "keys"
[[host]]
name = "a"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
[[host.filter]]
name = "same spec"
layer = "FWPM_LAYER_ALE_AUTH_CONNECT_V4"
action = "block"
flags = ["FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT"]
conditions = [{ field = "ale_app_id", match = "equal", value = 'C:\Tools\x.exe' }]
[[host]]
name = "b"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
[[host.filter]]
name = "same spec"
layer = "FWPM_LAYER_ALE_AUTH_CONNECT_V4"
action = "block"
"#;

fn keys() -> (String, String, wsock_stack::policy::FilterRow) {
    let net = Network::builder(Scenario::from_toml_str(SC, "keys.toml").unwrap())
        .services(false)
        .start()
        .unwrap();
    let a = net.host("a").unwrap().filters();
    let b = net.host("b").unwrap().filters();
    (a[0].key.clone(), b[0].key.clone(), a[0].clone())
}

#[test]
fn generated_filter_keys_differ_per_host_and_repeat_per_run() {
    let (a1, b1, row) = keys();
    let (a2, b2, _) = keys();
    assert_ne!(a1, b1, "two hosts never share a generated key");
    assert_eq!((a1, b1), (a2, b2), "the same scenario gives the same keys");
    assert_eq!(
        row.flags,
        vec!["FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT".to_string()]
    );
    assert_eq!(
        row.conditions,
        vec![r#"ALE_APP_ID == "c:\tools\x.exe""#.to_string()]
    );
}
