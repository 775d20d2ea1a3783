//! Regression tests for CLI defects users found: broken pipes, JSON numbers JavaScript rounds,
//! how conditions combine, app ids as bytes, bare numbers as addresses, missing `filter add`
//! options, weights and flags refused with the wrong error, generated keys equal on every host,
//! and the demo's wording.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

fn wsock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsock"))
}

fn run(args: &[&str]) -> Output {
    wsock().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "wsock {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "wsock {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(args: &[&str]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const HOST: &str = "[[host]]\nname = \"server\"\nipv4 = \"10.0.0.2\"\nipv6 = \"fd00::2\"\n";

/// A one-host scenario named `name` with `policy` appended under its host.
fn scenario(dir: &Path, name: &str, policy: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, format!("name = \"{name}\"\n{HOST}{policy}")).unwrap();
    file
}

/// `wsock ARGS` with its stdout's reader gone before reading a byte: it must exit 0, quietly.
fn with_stdout_closed(args: &[&str]) {
    let mut child = wsock()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "wsock {args:?} panicked: {err}");
    assert!(
        status.success(),
        "wsock {args:?} with stdout closed: {status:?} {err}"
    );
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    // Far more than a pipe buffer (64 KiB), so the writer meets the closed pipe for sure.
    let mut policy = String::new();
    for i in 0..1500 {
        policy.push_str(&format!(
            "[[host.filter]]\nname = \"filter number {i} with a long enough name\"\n\
             layer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\n\
             conditions = [{{ field = \"ip_remote_port\", match = \"equal\", value = {} }}]\n",
            i + 1
        ));
    }
    let big = scenario(dir.path(), "big", &policy);
    with_stdout_closed(&["show", "filters", "--scenario", p(&big)]);
    with_stdout_closed(&["show", "filters", "--scenario", p(&big), "--json"]);
    with_stdout_closed(&["show", "events", "--scenario", p(&big)]);
    with_stdout_closed(&["show", "events", "--scenario", p(&big), "--json"]);
    with_stdout_closed(&["scenario", "default"]);
    with_stdout_closed(&["scenario", "check", p(&big)]);
    with_stdout_closed(&["demo"]);
}

#[test]
fn json_prints_64_bit_weights_and_ids_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "wide",
        "[[host.filter]]\nname = \"heavy\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\n\
         action = \"block\"\nweight = \"0xFFFFFFFFFFFFFFFF\"\n",
    );
    let v = json(&["show", "filters", "--scenario", p(&file), "--json"]);
    let f = &v[0]["filters"][0];
    assert_eq!(f["weight"], "18446744073709551615", "{v}");
    let id: u64 = f["id"].as_str().unwrap().parse().unwrap();
    assert!(id > 0);
    let text = ok(&["show", "filters", "--scenario", p(&file)]);
    assert!(text.contains("0xffffffffffffffff"), "{text}");
}

#[test]
fn show_filters_ors_conditions_on_one_field_and_ands_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "or",
        "[[host.filter]]\nname = \"web\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\n\
         conditions = [\n\
           { field = \"ip_remote_port\", match = \"equal\", value = 80 },\n\
           { field = \"ip_remote_address\", match = \"equal\", value = \"10.0.0.0/8\" },\n\
           { field = \"ip_remote_port\", match = \"equal\", value = 443 },\n]\n\
         [[host.filter]]\nname = \"ports only\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\n\
         conditions = [\n\
           { field = \"ip_remote_port\", match = \"equal\", value = 22 },\n\
           { field = \"ip_remote_port\", match = \"equal\", value = 23 },\n]\n",
    );
    let table = ok(&["show", "filters", "--scenario", p(&file)]);
    assert!(
        table.contains(
            "(IP_REMOTE_PORT == 80 OR IP_REMOTE_PORT == 443) AND IP_REMOTE_ADDRESS == 10.0.0.0/8"
        ),
        "{table}"
    );
    assert!(
        table.contains("IP_REMOTE_PORT == 22 OR IP_REMOTE_PORT == 23"),
        "{table}"
    );
    assert!(!table.contains("IP_REMOTE_PORT == 22 AND"), "{table}");
}

#[test]
fn app_ids_print_as_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "app",
        "[[host.filter]]\nname = \"no browser\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\n\
         conditions = [{ field = \"ale_app_id\", match = \"equal\", value = 'C:\\Program Files\\Browser\\browser.exe' }]\n",
    );
    let want = r#"ALE_APP_ID == "c:\program files\browser\browser.exe""#;
    let table = ok(&["show", "filters", "--scenario", p(&file)]);
    assert!(table.contains(want), "{table}");
    assert!(!table.contains("ByteBlob"), "{table}");
    let v = json(&["show", "filters", "--scenario", p(&file), "--json"]);
    assert_eq!(v[0]["filters"][0]["conditions"][0], want, "{v}");
}

const ADD: [&str; 8] = [
    "filter",
    "add",
    "--host",
    "server",
    "--layer",
    "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
    "--action",
    "block",
];

fn add_to(file: &Path, name: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = ADD.to_vec();
    args.extend_from_slice(&["--scenario", p(file), "--name", name]);
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_bare_number_is_not_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "addr", "");
    let before = std::fs::read(&file).unwrap();
    for cond in [
        "ip_local_address:equal:80",
        "IP_REMOTE_ADDRESS:range:10.0.0.1..5",
    ] {
        let out = add_to(&file, "x", &["--condition", cond]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cond} accepted");
        let field = cond.split(':').next().unwrap();
        assert!(err.contains(field), "{cond}: {err}");
        assert!(err.contains("not an IP address"), "{cond}: {err}");
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }
    // Written as an address it is fine.
    let out = add_to(
        &file,
        "ok",
        &["--condition", "ip_local_address:equal:0.0.0.80"],
    );
    assert!(out.status.success(), "{out:?}");
    // In a scenario file too, a bare number on an address field is refused, naming the field.
    let bad = scenario(
        dir.path(),
        "addr2",
        "[[host.filter]]\nname = \"x\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\n\
         conditions = [{ field = \"ip_local_address\", match = \"equal\", value = 80 }]\n",
    );
    let err = fails(&["show", "filters", "--scenario", p(&bad)]);
    assert!(err.contains("FWP_E_TYPE_MISMATCH"), "{err}");
    assert!(err.contains("IP_LOCAL_ADDRESS"), "{err}");
}

#[test]
fn filter_add_takes_flags_provider_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "opts", "[[host.provider]]\nname = \"acme\"\n");
    let key = "6a5e1f0c-1b2d-4c3e-8f4a-5b6c7d8e9f01";
    let out = add_to(
        &file,
        "hard",
        &[
            "--flags",
            "FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT",
            "--provider",
            "acme",
            "--key",
            key,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = add_to(&file, "short", &["--flags", "clear-action-right"]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("flags = [\"FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT\"]"),
        "{text}"
    );
    assert!(text.contains("flags = [\"clear_action_right\"]"), "{text}");
    assert!(text.contains("provider = \"acme\""), "{text}");
    assert!(text.contains(&format!("key = \"{key}\"")), "{text}");
    let v = json(&["show", "filters", "--scenario", p(&file), "--json"]);
    let hard = v[0]["filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "hard")
        .unwrap();
    assert_eq!(hard["key"], key, "{v}");

    let before = std::fs::read(&file).unwrap();
    for (extra, reason) in [
        (&["--flags", "no_such_flag"][..], "FWP_E_INVALID_FLAGS"),
        (&["--provider", "nobody"][..], "FWP_E_PROVIDER_NOT_FOUND"),
        (&["--key", "not-a-guid"][..], "FWP_E_INVALID_PARAMETER"),
        (&["--key", key][..], "FWP_E_ALREADY_EXISTS"),
    ] {
        let out = add_to(&file, "bad", extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(err.contains(reason), "{extra:?}: {err}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{extra:?}");
    }
}

#[test]
fn a_negative_weight_and_the_disabled_flag_are_refused_with_their_fwp_e_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "w", "");
    let before = std::fs::read(&file).unwrap();
    for extra in [&["--weight", "-5"][..], &["--weight=-1"][..]] {
        let out = add_to(&file, "neg", extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(
            err.contains("FWP_E_INVALID_WEIGHT") && err.contains("0x80320025"),
            "{extra:?}: {err}"
        );
    }
    let out = add_to(&file, "off", &["--flags", "disabled"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("FWP_E_INVALID_FLAGS") && err.contains("output only"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // In a scenario file: the FWP_E code, not a deserializer's message.
    let bad = scenario(
        dir.path(),
        "w2",
        "[[host.filter]]\nname = \"x\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\naction = \"block\"\nweight = -5\n",
    );
    let err = fails(&["show", "filters", "--scenario", p(&bad)]);
    assert!(err.contains("FWP_E_INVALID_WEIGHT"), "{err}");
    assert!(!err.contains("untagged"), "{err}");
}

struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `wsock host server` of `file` with its control socket at `sock`.
fn spawn_host(file: &Path, sock: &Path) -> (Reap, BufReader<ChildStdout>) {
    let mut child = wsock()
        .args(["host", "server", "--for-seconds", "120", "--scenario"])
        .arg(file)
        .arg("--control")
        .arg(sock)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let reap = Reap(child);
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
    }
    (reap, out)
}

#[test]
fn filters_added_on_two_running_hosts_get_different_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    let mut hosts = Vec::new();
    for name in ["first", "second"] {
        let file = scenario(dir.path(), name, "");
        let sock = dir.path().join(format!("{name}.sock"));
        hosts.push(spawn_host(&file, &sock));
        let mut args: Vec<&str> = ADD.to_vec();
        args.extend_from_slice(&["--control", p(&sock), "--name", "same filter"]);
        ok(&args);
        let v = json(&["show", "filters", "--control", p(&sock), "--json"]);
        keys.push(v[0]["filters"][0]["key"].as_str().unwrap().to_string());
        // A negative weight through the control socket is FWP_E_INVALID_WEIGHT too.
        let mut args: Vec<&str> = ADD.to_vec();
        args.extend_from_slice(&["--control", p(&sock), "--name", "neg", "--weight", "-3"]);
        assert!(fails(&args).contains("FWP_E_INVALID_WEIGHT"));
    }
    assert_ne!(keys[0], keys[1], "both hosts generated the same key");
}

#[test]
fn the_demo_prints_addresses_and_explains_ale_wfp_and_gre_in_udp_once() {
    let text = ok(&["demo"]);
    assert!(!text.contains("Some("), "{text}");
    assert!(text.contains(", remote 10.0.0.2:7"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for (term, explanation) in [
        ("ALE", "ALE (Application Layer Enforcement):"),
        ("WFP", "WFP (Windows Filtering Platform):"),
        ("GRE-in-UDP", "GRE-in-UDP:"),
    ] {
        let first = lines.iter().position(|l| l.contains(term)).unwrap();
        let explained: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(explanation))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            explained.len(),
            1,
            "{term} explained {explained:?}:\n{text}"
        );
        assert!(
            explained[0] > first && explained[0] <= first + 3,
            "{term} first at line {first}, explained at {}:\n{text}",
            explained[0]
        );
    }
}
