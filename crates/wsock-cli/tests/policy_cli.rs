//! `wsock show filters|events` and `wsock filter add|delete` as a user runs them: on scenario
//! files (static filters, edited in place) and through the control socket of a running
//! `wsock host` in another process.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

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

/// The filters of `host` in a `show filters --json` answer.
fn filters_of<'a>(v: &'a Value, host: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no host {host} in {v}"))["filters"]
        .as_array()
        .unwrap()
}

const POLICY: &str = r#"
[[host.filter]]
name = "no smtp"
layer = "FWPM_LAYER_ALE_AUTH_CONNECT_V4"
action = "block"
weight = 10
conditions = [{ field = "ip_remote_port", match = "equal", value = 25 }]

[[host.filter]]
name = "high ports in"
layer = "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4"
action = "permit"
conditions = [
  { field = "ip_local_port", match = "range", value = { low = 5000, high = 6000 } },
  { field = "ip_remote_address", match = "equal", value = "10.0.0.0/8" },
]
"#;

#[test]
fn show_filters_from_a_scenario_as_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("policy.toml");
    // The policy goes under the last host of the default scenario: the server.
    std::fs::write(
        &f,
        format!("{}{POLICY}", wsock_stack::scenario::DEFAULT_SCENARIO_TOML),
    )
    .unwrap();

    let table = ok(&["show", "filters", "--scenario", p(&f)]);
    for needle in [
        "host client: 0 filter(s)",
        "host server: 2 filter(s)",
        "ID",
        "LAYER",
        "ACTION",
        "WEIGHT",
        "CONDITIONS",
        "no smtp",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "IP_REMOTE_PORT == 25",
        "high ports in",
        "IP_LOCAL_PORT in 5000..6000 AND IP_REMOTE_ADDRESS == 10.0.0.0/8",
    ] {
        assert!(table.contains(needle), "table lacks {needle:?}:\n{table}");
    }

    let all = json(&["show", "filters", "--scenario", p(&f), "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    assert!(filters_of(&all, "client").is_empty());
    let server = json(&[
        "show",
        "filters",
        "--scenario",
        p(&f),
        "--host",
        "server",
        "--json",
    ]);
    assert_eq!(server.as_array().unwrap().len(), 1, "only --host");
    let rows = filters_of(&server, "server");
    assert_eq!(rows.len(), 2);
    let smtp = rows.iter().find(|r| r["name"] == "no smtp").unwrap();
    assert_eq!(smtp["layer"], "FWPM_LAYER_ALE_AUTH_CONNECT_V4");
    assert_eq!(smtp["weight"], "10", "64-bit weights are strings in --json");
    assert!(smtp["action"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("block"));
    assert!(smtp["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(smtp["conditions"].as_array().unwrap().len(), 1);
    let high = rows.iter().find(|r| r["name"] == "high ports in").unwrap();
    assert_eq!(high["conditions"].as_array().unwrap().len(), 2);

    // The embedded default scenario has no filters; events of a file are empty, and say why.
    let default = json(&["show", "filters", "--json"]);
    assert!(filters_of(&default, "server").is_empty());
    let events = json(&["show", "events", "--scenario", p(&f), "--json"]);
    for h in events.as_array().unwrap() {
        assert!(h["events"].as_array().unwrap().is_empty());
        assert!(h["note"].as_str().unwrap().contains("--control"));
    }
    let text = ok(&["show", "events", "--scenario", p(&f)]);
    assert!(text.contains("0 net event(s)"), "{text}");
    assert!(
        fails(&["show", "filters", "--scenario", p(&f), "--host", "nobody"]).contains("nobody")
    );
}

#[test]
fn filter_add_and_delete_round_trip_on_a_scenario_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lab.toml");
    let original = wsock_stack::scenario::DEFAULT_SCENARIO_TOML;
    std::fs::write(&f, original).unwrap();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "filter",
            "add",
            "--host",
            "client",
            "--scenario",
            p(&f),
            "--layer",
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "--action",
            "block",
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    let out = add(
        "no web",
        &[
            "--condition",
            "ip_remote_port:equal:80",
            "--condition",
            "ip_remote_address:equal:10.0.0.0/8",
            "--weight",
            "12",
            "--sublayer",
            "FWPM_SUBLAYER_UNIVERSAL",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("[[host.filter]]"), "{text}");
    assert!(
        text.starts_with("# The embedded default scenario"),
        "comments kept"
    );
    assert!(
        text.contains("[[host.service]]\nkind = \"udp-echo\""),
        "rest kept"
    );
    ok(&["scenario", "check", p(&f)]);
    let v = json(&["show", "filters", "--scenario", p(&f), "--json"]);
    let client = filters_of(&v, "client");
    assert_eq!(client.len(), 1, "{v}");
    assert_eq!(client[0]["name"], "no web");
    assert_eq!(client[0]["weight"], "12");
    assert_eq!(client[0]["conditions"].as_array().unwrap().len(), 2);
    assert!(filters_of(&v, "server").is_empty(), "under the right host");

    // Bad specs: the FWP_E_* reason, and the file is left exactly as it was.
    let before = std::fs::read(&f).unwrap();
    for (extra, reason) in [
        (
            &["--condition", "ip_remote_port:equal:70000"][..],
            "FWP_E_OUT_OF_BOUNDS",
        ),
        (
            &["--condition", "ip_remote_address:equal:fd00::1"][..],
            "FWP_E_TYPE_MISMATCH",
        ),
        (
            &["--condition", "no_such_field:equal:1"][..],
            "FWP_E_CONDITION_NOT_FOUND",
        ),
        (&["--weight", "range:99"][..], "FWP_E_INVALID_WEIGHT"),
    ] {
        let out = add("bad", extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(err.contains(reason), "{extra:?}: {err:?} lacks {reason}");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            before,
            "{extra:?} changed the file"
        );
    }
    for (layer, action, reason) in [
        ("FWPM_LAYER_NO_SUCH", "block", "FWP_E_LAYER_NOT_FOUND"),
        (
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "nope",
            "FWP_E_INVALID_ACTION_TYPE",
        ),
    ] {
        let err = fails(&[
            "filter",
            "add",
            "--host",
            "client",
            "--scenario",
            p(&f),
            "--layer",
            layer,
            "--action",
            action,
            "--name",
            "x",
        ]);
        assert!(err.contains(reason), "{err}");
    }
    let err = fails(&[
        "filter",
        "add",
        "--host",
        "nobody",
        "--scenario",
        p(&f),
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "x",
    ]);
    assert!(err.contains("nobody"), "{err}");
    let err = fails(&[
        "filter",
        "add",
        "--host",
        "client",
        "--scenario",
        p(&f),
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "x",
        "--condition",
        "no-colons",
    ]);
    assert!(err.contains("FIELD:MATCH:VALUE"), "{err}");
    assert_eq!(std::fs::read(&f).unwrap(), before);

    // Delete by name: the file is back to what it was, byte for byte.
    ok(&[
        "filter",
        "delete",
        "--host",
        "client",
        "--scenario",
        p(&f),
        "--name",
        "no web",
    ]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), original);
    let err = fails(&[
        "filter",
        "delete",
        "--host",
        "client",
        "--scenario",
        p(&f),
        "--name",
        "no web",
    ]);
    assert!(err.contains("FWP_E_FILTER_NOT_FOUND"), "{err}");

    // Delete by the id the filter gets at load.
    assert!(add("first", &["--condition", "ip_remote_port:equal:1"])
        .status
        .success());
    assert!(add("second", &["--condition", "ip_remote_port:equal:2"])
        .status
        .success());
    let v = json(&[
        "show",
        "filters",
        "--scenario",
        p(&f),
        "--host",
        "client",
        "--json",
    ]);
    let rows = filters_of(&v, "client");
    let id = rows.iter().find(|r| r["name"] == "first").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&[
        "filter",
        "delete",
        "--host",
        "client",
        "--scenario",
        p(&f),
        "--id",
        &id,
    ]);
    let v = json(&[
        "show",
        "filters",
        "--scenario",
        p(&f),
        "--host",
        "client",
        "--json",
    ]);
    let names: Vec<&str> = filters_of(&v, "client")
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["second"]);
}

fn free_udp_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `wsock host server` with its Unix control socket at `<dir>/ctl.sock`; returns the
/// process, its stdout (kept open) and the socket path.
fn spawn_server(file: &Path) -> (Reap, BufReader<ChildStdout>, String) {
    let sock = file.with_file_name("ctl.sock");
    let mut child = wsock()
        .args(["host", "server", "--for-seconds", "120", "--control"])
        .arg(&sock)
        .arg("--scenario")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reap = Reap(child);
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("host server up"), "server said {line:?}");
    line.clear();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("control listening on ")
        .unwrap_or_else(|| panic!("server said {line:?}"))
        .to_string();
    assert_eq!(addr, sock.to_str().unwrap());
    (reap, out, addr)
}

/// The default scenario with fixed wire ports, so its two hosts can live in two processes.
fn two_process_scenario(dir: &Path) -> std::path::PathBuf {
    let ports = free_udp_ports(2);
    let mut sc = wsock_stack::scenario::DEFAULT_SCENARIO_TOML.to_string();
    for port in ports {
        sc = sc.replacen(
            "wire = \"127.0.0.1:0\"",
            &format!("wire = \"127.0.0.1:{port}\""),
            1,
        );
    }
    let file = dir.join("two.toml");
    std::fs::write(&file, &sc).unwrap();
    file
}

#[test]
fn filters_on_a_running_host_through_its_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_process_scenario(dir.path());
    let (_reap, _stdout, ctl) = spawn_server(&file);

    let before = json(&["show", "filters", "--control", &ctl, "--json"]);
    assert!(filters_of(&before, "server").is_empty(), "{before}");
    let added = ok(&[
        "filter",
        "add",
        "--host",
        "server",
        "--control",
        &ctl,
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "no web",
        "--condition",
        "ip_remote_port:equal:80",
    ]);
    let id: u64 = added
        .split("id ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no id in {added:?}"));
    let v = json(&[
        "show",
        "filters",
        "--control",
        &ctl,
        "--host",
        "server",
        "--json",
    ]);
    let rows = filters_of(&v, "server");
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["id"], id.to_string());
    assert_eq!(rows[0]["name"], "no web");
    let table = ok(&["show", "filters", "--control", &ctl]);
    assert!(table.contains("IP_REMOTE_PORT == 80"), "{table}");

    // Errors carry the FWP_E_* reason; the host is untouched.
    let err = fails(&[
        "filter",
        "add",
        "--host",
        "server",
        "--control",
        &ctl,
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "bad",
        "--condition",
        "ip_remote_port:equal:70000",
    ]);
    assert!(err.contains("FWP_E_OUT_OF_BOUNDS"), "{err}");
    let err = fails(&[
        "filter",
        "add",
        "--host",
        "client",
        "--control",
        &ctl,
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "x",
    ]);
    assert!(err.contains("not \"client\""), "wrong host named: {err}");

    ok(&[
        "filter",
        "delete",
        "--host",
        "server",
        "--control",
        &ctl,
        "--id",
        &id.to_string(),
    ]);
    let v = json(&["show", "filters", "--control", &ctl, "--json"]);
    assert!(filters_of(&v, "server").is_empty(), "{v}");
    let err = fails(&[
        "filter",
        "delete",
        "--host",
        "server",
        "--control",
        &ctl,
        "--id",
        &id.to_string(),
    ]);
    assert!(err.contains("FWP_E_FILTER_NOT_FOUND"), "{err}");

    // Malformed requests get error replies on the same connection, which keeps serving.
    let mut conn = UnixStream::connect(&ctl).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut replies = BufReader::new(conn.try_clone().unwrap());
    let mut ask = |line: &[u8]| -> Value {
        conn.write_all(line).unwrap();
        conn.write_all(b"\n").unwrap();
        let mut reply = String::new();
        replies.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply ({e}): {reply:?}"))
    };
    for bad in [
        &b"this is not json"[..],
        b"{\"op\":\"reboot\"}",
        b"{\"op\":\"add_filter\"}",
        b"{\"op\":\"add_filter\",\"spec\":{\"name\":\"x\",\"layer\":7}}",
        b"{\"op\":\"delete_filter\"}",
        b"{\"op\":\"delete_filter\",\"id\":-1}",
        b"[1,2,3]",
        b"\xff\xfe\x00{",
        b"{\"op\":\"show_filters\"",
    ] {
        let r = ask(bad);
        assert!(
            r["error"].is_string(),
            "{:?} got {r}",
            String::from_utf8_lossy(bad)
        );
        assert!(r["hresult"].as_str().unwrap().starts_with("0x8032"), "{r}");
    }
    let r = ask(br#"{"op":"add_filter","spec":{"name":"raw","layer":"FWPM_LAYER_ALE_AUTH_CONNECT_V4","action":"block","conditions":[{"field":"ip_remote_port","match":"equal","value":443}]}}"#);
    let raw_id = r["id"].as_u64().unwrap_or_else(|| panic!("{r}"));
    let r = ask(br#"{"op":"show_filters"}"#);
    assert_eq!(r["host"], "server");
    assert_eq!(r["filters"][0]["id"], raw_id, "{r}");
    let r = ask(br#"{"op":"delete_filter","name":"raw"}"#);
    assert_eq!(r["deleted"][0], raw_id, "{r}");
    let r = ask(br#"{"op":"delete_filter","name":"raw"}"#);
    assert_eq!(r["name"], "FWP_E_FILTER_NOT_FOUND", "{r}");
    // A client that sends garbage and hangs up does not stop the listener either.
    {
        let mut c = UnixStream::connect(&ctl).unwrap();
        let _ = c.write_all(b"{\"op\":");
    }
    let v = json(&["show", "filters", "--control", &ctl, "--json"]);
    assert!(filters_of(&v, "server").is_empty());
}

#[test]
fn a_drop_on_a_running_host_shows_in_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_process_scenario(dir.path());
    let (_reap, _stdout, ctl) = spawn_server(&file);
    let added = ok(&[
        "filter",
        "add",
        "--host",
        "server",
        "--control",
        &ctl,
        "--layer",
        "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4",
        "--action",
        "block",
        "--name",
        "no echo in",
        "--condition",
        "ip_local_port:equal:7",
    ]);
    let id: u64 = added
        .split("id ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no id in {added:?}"));

    // The client host lives in this process and sends to the server's UDP echo.
    let scenario = wsock::Scenario::from_file(&file).unwrap();
    let net = wsock::Network::builder(scenario)
        .local_hosts(["client"])
        .start()
        .unwrap();
    let client = net.host("client").unwrap();
    let server: SocketAddr = "10.0.0.2:7".parse().unwrap();
    let rt = net.runtime().unwrap();
    let u = wsock::net::UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
    let id_text = id.to_string();
    let drops = |v: &Value| -> usize {
        v[0]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"]["ClassifyDrop"]["filter_id"].as_str() == Some(id_text.as_str()))
            .count()
    };
    let mut events = Value::Null;
    for _ in 0..100 {
        let _ = rt.block_on(u.send_to(b"anyone?", server));
        events = json(&["show", "events", "--control", &ctl, "--json"]);
        if drops(&events) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(drops(&events) > 0, "a drop naming filter {id}: {events}");
    let table = ok(&["show", "events", "--control", &ctl]);
    assert!(table.contains("ClassifyDrop"), "{table}");
    assert!(table.contains("no echo in"), "{table}");
    assert!(
        table.contains("FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4"),
        "{table}"
    );

    // Deleting it by name lets the echo through.
    ok(&[
        "filter",
        "delete",
        "--host",
        "server",
        "--control",
        &ctl,
        "--name",
        "no echo in",
    ]);
    let echoed = rt.block_on(async {
        for _ in 0..50 {
            u.send_to(b"hello again", server).await.unwrap();
            let mut buf = [0u8; 64];
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), u.recv_from(&mut buf)).await
            {
                if &buf[..n] == b"hello again" {
                    return true;
                }
            }
        }
        false
    });
    assert!(echoed, "the echo answers once the filter is gone");
}

#[test]
fn host_serves_the_scenario_control_address_on_tcp_behind_a_token_and_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"one\"\n[[host]]\nname = \"server\"\nipv4 = \"10.0.0.2\"\nipv6 = \"fd00::2\"\ncontrol = \"127.0.0.1:0\"\n{POLICY}"
        ),
    )
    .unwrap();
    let mut child = wsock()
        .env("XDG_RUNTIME_DIR", dir.path())
        .args(["host", "server", "--for-seconds", "120", "--scenario"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _reap = Reap(child);
    let mut out = BufReader::new(stdout);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_string());
    }
    let sock = dir.path().join("wsock/one-server.sock");
    assert_eq!(
        lines[1],
        format!("control listening on {}", sock.display()),
        "{lines:?}"
    );
    let token_file = dir.path().join("wsock/one-server.token");
    let tcp = lines[2]
        .strip_prefix("control listening on tcp ")
        .and_then(|r| r.strip_suffix(&format!(", token in {}", token_file.display())))
        .unwrap_or_else(|| panic!("server said {lines:?}"))
        .to_string();
    // The running host serves the scenario's static filters, on TCP with the token...
    let v = json(&[
        "show",
        "filters",
        "--control-tcp",
        &tcp,
        "--token-file",
        p(&token_file),
        "--json",
    ]);
    let names: Vec<&str> = filters_of(&v, "server")
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{v}");
    assert!(names.contains(&"no smtp") && names.contains(&"high ports in"));
    // ... and over its Unix socket, found by scenario and host name.
    let out = wsock()
        .env("XDG_RUNTIME_DIR", dir.path())
        .args([
            "show",
            "filters",
            "--host",
            "server",
            "--control",
            "--scenario",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 filter(s)"));

    let err = fails(&[
        "host",
        "server",
        "--for-seconds",
        "1",
        "--no-control",
        "--control-tcp",
        "0.0.0.0:0",
        "--scenario",
        p(&file),
    ]);
    assert!(err.contains("loopback"), "{err}");
    // A TCP address given to --control points at --control-tcp.
    let err = fails(&["show", "filters", "--control", "127.0.0.1:5000"]);
    assert!(err.contains("--control-tcp"), "{err}");
}
