//! The IPsec views of the `wsock` binary: the secure demo, its capture and key file checked by
//! the project's ESP oracle (tshark decrypting every IKE SK payload and ESP frame), and
//! `wsock show sas` from a scenario run and from a running host's control socket.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wsock_stack::core::SETTINGS_GUARANTEE_ENCRYPTION;
use wsock_stack::{Family, SecuritySettings};

fn wsock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsock"))
}

fn oracle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/esp_pcap_check.py")
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The number right after `prefix` in the oracle's summary line.
fn count_after(summary: &str, prefix: &str) -> Option<usize> {
    let at = summary.find(prefix)? + prefix.len();
    let digits: String = summary[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn demo_runs_the_secure_exchange_and_prints_each_layer() {
    let out = wsock().args(["demo", "--quiet"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "WSASetSocketSecurity(DEFAULT, SOCKET_SETTINGS_GUARANTEE_ENCRYPTION) = 0",
        "WSASetSocketPeerTargetName(\"host/SERVER\") = 0",
        "[api   ] client: WSAConnect = 0",
        "SOCKET_INFO_CONNECTION_SECURED | SOCKET_INFO_CONNECTION_ENCRYPTED",
        "<- MmSaId of the client's query",
        "<- QmSaId of the client's query",
        "aes-gcm-128",
        "WSAImpersonateSocketPeer = 0",
        "\\CLIENT$",
        "FILE_READ_DATA) = granted",
        "WSARevertImpersonation = 0",
        "secure TCP echo ran over IPsec",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks {needle:?}:\n{text}"
        );
    }
    // The ALE tap saw the secure listener and connect too.
    assert!(
        text.lines()
            .any(|l| l.starts_with("[ale   ] server") && l.contains("LISTEN")),
        "{text}"
    );
    // --keylog is off by default: no warning.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--keylog"));
}

#[test]
fn demo_capture_and_keylog_pass_the_esp_oracle() {
    let oracle = oracle();
    if !oracle.is_file() {
        eprintln!(
            "SKIPPED: the ESP oracle {} is absent (it lives in the project's shared/oracles)",
            oracle.display()
        );
        return;
    }
    if !have("tshark", "--version") {
        eprintln!("SKIPPED: tshark is not installed (apt-get install tshark; .ci/run installs it)");
        return;
    }
    if !have("python3", "--version") {
        eprintln!("SKIPPED: python3 is not installed (the ESP oracle is a Python script)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("demo.pcap");
    let keys = dir.path().join("keys.json");
    let out = wsock()
        .args(["demo", "--quiet", "--capture"])
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keys)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "demo failed: {text}\n{err}");
    assert!(
        err.contains("warning: --keylog writes the secret keys"),
        "no warning on stderr: {err}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is secret material");
    }
    let key_text = std::fs::read_to_string(&keys).unwrap();
    let kf: serde_json::Value = serde_json::from_str(&key_text).unwrap();
    assert!(
        !kf["ikev2"].as_array().unwrap().is_empty(),
        "no IKE keys: {key_text}"
    );
    assert!(
        !kf["esp_sa"].as_array().unwrap().is_empty(),
        "no ESP keys: {key_text}"
    );
    let check = Command::new("python3")
        .arg(&oracle)
        .args(["check", "--pcap"])
        .arg(&pcap)
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.status.success() && report.contains("ORACLE OK"),
        "the ESP oracle refused the demo's capture:\n{report}"
    );
    let summary = report
        .lines()
        .find(|l| l.starts_with("IKE_SA_INIT="))
        .unwrap_or_else(|| panic!("no summary line:\n{report}"));
    let n = |prefix: &str| {
        count_after(summary, prefix).unwrap_or_else(|| panic!("{prefix:?} in {summary:?}"))
    };
    assert!(n("IKE_SA_INIT=") >= 2, "{summary}");
    assert!(n("SK-payload msgs=") >= 2, "no IKE SK payloads: {summary}");
    assert_eq!(n("SK-payload msgs="), n("(decrypted "), "{summary}");
    assert!(n("ESP=") >= 4, "too few ESP frames: {summary}");
    assert_eq!(n("ESP="), n("ICV good "), "ESP ICVs: {summary}");
}

#[test]
fn show_sas_from_the_default_scenario_negotiates_and_lists_both_sides() {
    let out = wsock().args(["show", "sas"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "host client: 1 main mode (IKE) SA(s), 1 quick mode (child) SA(s)",
        "host server: 1 main mode (IKE) SA(s), 1 quick mode (child) SA(s)",
        "MM SA",
        "QM SA",
        "initiator",
        "responder",
        "aes-gcm-128",
        "negotiated for this command",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }
    let out = wsock()
        .args(["show", "sas", "--json", "--host", "server"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = v.as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["host"], "server");
    let ike = hosts[0]["sas"]["ike"].as_array().unwrap();
    assert_eq!(ike.len(), 1, "{v}");
    assert_eq!(ike[0]["role"], "responder");
    assert!(ike[0]["mm_sa_id"].is_string(), "64-bit ids as strings: {v}");
    let child = hosts[0]["sas"]["child"].as_array().unwrap();
    assert!(!child.is_empty());
    for c in child {
        assert_eq!(c["encrypted"], true, "{c}");
        assert_eq!(c["mm_sa_id"], ike[0]["mm_sa_id"], "{c}");
        assert!(c["in_packets"].as_u64().unwrap() + c["out_packets"].as_u64().unwrap() > 0);
    }
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

#[test]
fn show_sas_from_a_running_host_over_its_control_socket() {
    let ports = free_udp_ports(2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.toml");
    let mut sc = wsock_stack::scenario::DEFAULT_SCENARIO_TOML.to_string();
    for p in &ports {
        sc = sc.replacen(
            "wire = \"127.0.0.1:0\"",
            &format!("wire = \"127.0.0.1:{p}\""),
            1,
        );
    }
    std::fs::write(&file, &sc).unwrap();
    let sock = dir.path().join("server.sock");
    let mut child = wsock()
        .args(["host", "server", "--for-seconds", "120", "--control"])
        .arg(&sock)
        .arg("--scenario")
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _reap = Reap(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    while !line.contains("control listening on") {
        line.clear();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "host exited");
    }
    let show = |json: bool| {
        let mut c = wsock();
        c.args(["show", "sas", "--host", "server", "--control"])
            .arg(&sock);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Nothing negotiated yet.
    let before: serde_json::Value = serde_json::from_str(&show(true)).unwrap();
    assert_eq!(
        before[0]["sas"]["ike"].as_array().unwrap().len(),
        0,
        "{before}"
    );
    // The client host runs here and talks securely to the server's echo service.
    let scenario = wsock::Scenario::from_file(&file).unwrap();
    let net = wsock::Network::builder(scenario)
        .local_hosts(["client"])
        .start()
        .unwrap();
    let client = net.host("client").unwrap();
    let to: SocketAddr = "10.0.0.2:7".parse().unwrap();
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.set_security(Some(SecuritySettings {
            protocol: 0,
            flags: SETTINGS_GUARANTEE_ENCRYPTION,
            ..SecuritySettings::default()
        }))
        .unwrap();
        tokio::time::timeout(Duration::from_secs(60), c.connect(to))
            .await
            .expect("secure connect within 60 s")
            .expect("secure connect");
        c.send(b"over the control socket").await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(30), c.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"over the control socket");
        let q = c.query_security(None).unwrap();
        assert!(q.secured && q.encrypted, "{q:?}");
    });
    let ours = client.security_associations();
    let text = show(false);
    assert!(
        text.contains("host server: 1 main mode (IKE) SA(s)"),
        "{text}"
    );
    assert!(text.contains("responder"), "{text}");
    assert!(text.contains("aes-gcm-128"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&show(true)).unwrap();
    let ike = v[0]["sas"]["ike"].as_array().unwrap();
    assert_eq!(ike.len(), 1, "{v}");
    assert_eq!(ike[0]["role"], "responder");
    // The server's SPIs are the client's, seen from the other side.
    assert_eq!(ike[0]["spi_i"], ours.ike[0].spi_i.as_str(), "{v}");
    assert_eq!(ike[0]["spi_r"], ours.ike[0].spi_r.as_str(), "{v}");
    let child = v[0]["sas"]["child"].as_array().unwrap();
    assert!(!child.is_empty(), "{v}");
    for c in child {
        let inbound = c["inbound_spi"].as_u64().unwrap() as u32;
        assert!(
            ours.child.iter().any(|o| o.outbound_spi == inbound),
            "server inbound SPI {inbound:#x} is not a client outbound SPI: {v}"
        );
        assert_eq!(c["suite"], "aes-gcm-128");
    }
    // The protocol also takes the short op name.
    let raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut w = raw.try_clone().unwrap();
    std::io::Write::write_all(&mut w, b"{\"op\":\"sas\"}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(raw).read_line(&mut reply).unwrap();
    let r: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(r["host"], "server", "{reply}");
    assert_eq!(r["sas"]["ike"].as_array().map(Vec::len), Some(1), "{reply}");
}
