//! Who may manage a running `wsock host`'s policy (Windows: administrators only; here: the
//! host's owner). The Unix control socket is 0600 and checks each peer's uid; TCP needs the
//! token from an owner-only file; the socket and token files go away when the host stops.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn wsock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsock"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scenario with one host, `server`, and two static filters.
fn one_host_scenario(dir: &Path) -> PathBuf {
    let file = dir.join("one.toml");
    std::fs::write(
        &file,
        "name = \"one\"\n[[host]]\nname = \"server\"\nipv4 = \"10.0.0.2\"\nipv6 = \"fd00::2\"\n\
         [[host.filter]]\nname = \"no smtp\"\nlayer = \"FWPM_LAYER_ALE_AUTH_CONNECT_V4\"\n\
         action = \"block\"\nconditions = [{ field = \"ip_remote_port\", match = \"equal\", value = 25 }]\n",
    )
    .unwrap();
    file
}

/// Starts `wsock host server` with `args` (and `XDG_RUNTIME_DIR=runtime`, stderr to
/// `<runtime>/host.log`); returns it, its stdout, and the `control listening on` lines.
fn spawn_host(
    runtime: &Path,
    file: &Path,
    args: &[&str],
    control_lines: usize,
) -> (Reap, BufReader<ChildStdout>, Vec<String>) {
    let log = std::fs::File::create(runtime.join("host.log")).unwrap();
    let mut child = wsock()
        .env("XDG_RUNTIME_DIR", runtime)
        .args(["host", "server", "--for-seconds", "120", "--scenario"])
        .arg(file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reap = Reap(child);
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("host server up"), "host said {line:?}");
    let mut lines = Vec::new();
    for _ in 0..control_lines {
        line.clear();
        out.read_line(&mut line).unwrap();
        lines.push(
            line.trim()
                .strip_prefix("control listening on ")
                .unwrap_or_else(|| panic!("host said {line:?}"))
                .to_string(),
        );
    }
    (reap, out, lines)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_owner_manages_a_host_over_its_default_unix_socket_which_is_0600_and_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_host_scenario(dir.path());
    let (mut reap, _out, lines) = spawn_host(dir.path(), &file, &[], 1);
    let sock = dir.path().join("wsock/one-server.sock");
    assert_eq!(lines, [sock.display().to_string()]);
    assert_eq!(mode(&sock), 0o600, "socket file mode");
    assert_eq!(
        mode(&dir.path().join("wsock")),
        0o700,
        "socket directory mode"
    );

    // `show` and `filter` find it by scenario and host name.
    let show = |extra: &[&str]| {
        wsock()
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
            .args(extra)
            .output()
            .unwrap()
    };
    let out = show(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no smtp"), "{}", text(&out));
    let out = wsock()
        .env("XDG_RUNTIME_DIR", dir.path())
        .args([
            "filter",
            "add",
            "--host",
            "server",
            "--control",
            "--layer",
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "--action",
            "block",
            "--name",
            "owner's filter",
            "--scenario",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&show(&[])).contains("owner's filter"));
    // Without --host there is no default path to look at.
    let out = wsock()
        .env("XDG_RUNTIME_DIR", dir.path())
        .args(["show", "filters", "--control"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("--host"), "{}", text(&out));

    // SIGTERM stops the host cleanly and the socket file goes with it.
    let pid = reap.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = reap.0.wait().unwrap();
    assert!(status.success(), "host exit after SIGTERM: {status:?}");
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
fn a_stale_socket_is_replaced_but_a_live_one_or_a_regular_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_host_scenario(dir.path());
    let sock = dir.path().join("ctl.sock");
    // A socket nobody listens on any more (a killed host's).
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let (_reap, _out, lines) =
        spawn_host(dir.path(), &file, &["--control", sock.to_str().unwrap()], 1);
    assert_eq!(lines, [sock.display().to_string()]);
    let out = wsock()
        .args(["show", "filters", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&sock), 0o600);

    // A second host on the same path refuses to start and leaves the first one serving.
    let second = wsock()
        .args(["host", "server", "--for-seconds", "1", "--scenario"])
        .arg(&file)
        .arg("--control")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        text(&second).contains("another wsock host"),
        "{}",
        text(&second)
    );
    let out = wsock()
        .args(["show", "filters", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // A regular file is never removed to make room.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "keep me").unwrap();
    let out = wsock()
        .args(["host", "server", "--for-seconds", "1", "--scenario"])
        .arg(&file)
        .arg("--control")
        .arg(&plain)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("not a socket"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn has_setpriv() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `wsock ARGS` run as user `nobody` (through `setpriv`).
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            env!("CARGO_BIN_EXE_wsock"),
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_client_of_another_uid_is_refused_by_the_uid_check() {
    if !is_root() || !has_setpriv() {
        eprintln!(
            "SKIPPED: needs root and setpriv (util-linux) to run a client as `nobody`; \
             root: {}, setpriv: {}",
            is_root(),
            has_setpriv()
        );
        return;
    }
    // A directory others may enter, so that file modes alone would not stop `nobody`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = one_host_scenario(dir.path());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sock = dir.path().join("ctl.sock");
    let s = sock.to_str().unwrap();
    let (_reap, _out, _lines) = spawn_host(dir.path(), &file, &["--control", s], 1);

    // As created (0600), the file mode already keeps `nobody` out.
    let out = as_nobody(&["show", "filters", "--control", s]);
    assert!(!out.status.success());
    assert!(text(&out).contains("ermission denied"), "{}", text(&out));

    // Open the file mode wide: now only the uid check stands in the way.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["show", "filters", "--control", s]);
    assert!(!out.status.success(), "nobody was served: {}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("E_ACCESSDENIED") && t.contains("0x80070005"),
        "{t}"
    );
    assert!(t.contains("uid 65534"), "{t}");
    let out = as_nobody(&[
        "filter",
        "add",
        "--host",
        "server",
        "--control",
        s,
        "--layer",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "--action",
        "block",
        "--name",
        "intruder",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("E_ACCESSDENIED"), "{}", text(&out));

    // The owner is still served, and nobody's filter is not there; the refusal was logged.
    let out = wsock()
        .args(["show", "filters", "--control", s])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("intruder"));
    assert!(text(&out).contains("no smtp"));
    let log = std::fs::read_to_string(dir.path().join("host.log")).unwrap();
    assert!(
        log.contains("refused control connection from uid 65534"),
        "host log: {log}"
    );
}

#[test]
fn tcp_control_needs_the_token_from_an_owner_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_host_scenario(dir.path());
    let token_file = dir.path().join("tok");
    let (_reap, _out, lines) = spawn_host(
        dir.path(),
        &file,
        &[
            "--no-control",
            "--control-tcp",
            "127.0.0.1:0",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        1,
    );
    let addr = lines[0]
        .strip_prefix("tcp ")
        .and_then(|r| r.strip_suffix(&format!(", token in {}", token_file.display())))
        .unwrap_or_else(|| panic!("host said {lines:?}"))
        .to_string();
    assert_eq!(mode(&token_file), 0o600, "token file mode");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");

    // With the token file: served.
    let out = wsock()
        .args(["show", "filters", "--control-tcp", &addr, "--token-file"])
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no smtp"));

    // Without a token, or with a wrong one: refused, and the connection is closed.
    let ask = |line: &str, wait_close: bool| -> (Value, bool) {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(line.as_bytes()).unwrap();
        c.write_all(b"\n").unwrap();
        let mut r = BufReader::new(c);
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        let mut rest = String::new();
        let closed = wait_close && matches!(r.read_line(&mut rest), Ok(0));
        (
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}")),
            closed,
        )
    };
    for bad in [
        r#"{"op":"show_filters"}"#.to_string(),
        r#"{"op":"show_filters","token":"00"}"#.to_string(),
        format!(r#"{{"op":"show_filters","token":"{}"}}"#, "0".repeat(64)),
        r#"{"op":"add_filter","spec":{"name":"x","layer":"FWPM_LAYER_ALE_AUTH_CONNECT_V4","action":"block"}}"#.to_string(),
        "not json".to_string(),
    ] {
        let (r, closed) = ask(&bad, true);
        assert_eq!(r["name"], "E_ACCESSDENIED", "{bad}: {r}");
        assert_eq!(r["hresult"], "0x80070005", "{bad}: {r}");
        assert!(r.get("filters").is_none(), "{bad}: {r}");
        assert!(closed, "{bad}: connection left open");
    }
    let (r, _) = ask(
        &format!(r#"{{"op":"show_filters","token":"{token}"}}"#),
        false,
    );
    assert_eq!(r["filters"][0]["name"], "no smtp", "{r}");

    // A client with the wrong token file is refused; without a token file at all it says so.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "f".repeat(64)).unwrap();
    let out = wsock()
        .args(["show", "filters", "--control-tcp", &addr, "--token-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("wrong control token"), "{}", text(&out));
    // No --token-file: the default one, in a runtime directory that must be the user's own.
    let default_lookup = || {
        wsock()
            .env("XDG_RUNTIME_DIR", dir.path())
            .args([
                "show",
                "filters",
                "--host",
                "server",
                "--control-tcp",
                &addr,
            ])
            .arg("--scenario")
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = default_lookup();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no `wsock host` of yours"),
        "{}",
        text(&out)
    );
    let rt = dir.path().join("wsock");
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = default_lookup();
    assert!(!out.status.success());
    assert!(text(&out).contains("lets others in"), "{}", text(&out));
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = default_lookup();
    assert!(!out.status.success());
    assert!(text(&out).contains("token file"), "{}", text(&out));
    std::fs::copy(&token_file, rt.join("one-server.token")).unwrap();
    let out = default_lookup();
    assert!(out.status.success(), "{}", text(&out));
}
