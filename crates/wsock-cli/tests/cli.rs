//! The `wsock` binary as a user runs it: the demo, its capture dissected by stock tshark, a host
//! in a second process, and scenario errors that name the file and line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn wsock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsock"))
}

#[test]
fn demo_exits_zero_and_reports_each_layer() {
    let out = wsock().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[api   ] client: connect = 0",
        "[stack ] client TCP",
        "[SYN]",
        "recvfrom = 16",
        "FWPM_LAYER_ALE_AUTH_CONNECT_V4 -> permit",
        "WSAGetLastError() = 10013",
        "net event: drop at FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        "demo ok",
    ] {
        assert!(
            text.contains(needle),
            "demo output lacks {needle:?}:\n{text}"
        );
    }
}

fn tshark() -> Option<String> {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| "tshark".to_string())
}

#[test]
fn demo_capture_dissects_in_tshark_without_malformed_frames() {
    let Some(tshark) = tshark() else {
        eprintln!("SKIPPED: tshark is not installed (apt-get install tshark; .ci/run installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("demo.pcap");
    let out = wsock()
        .args(["demo", "--quiet", "--capture"])
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    // The CLI prints the decode-as rules next to the capture; use exactly those.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("tshark -r"))
        .expect("decode-as hint printed");
    let args: Vec<&str> = line.split_whitespace().skip(3).collect();
    let run = |filter: &str| {
        let o = Command::new(&tshark)
            .arg("-r")
            .arg(&pcap)
            .args(&args)
            .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let all = run("frame");
    let gre_tcp = run("udp && gre && tcp");
    let gre_udp = run("gre && udp.port == 7");
    let malformed = run("_ws.malformed || _ws.expert.severity == error");
    assert!(all >= 10, "capture has {all} frames");
    assert!(
        gre_tcp >= 8,
        "tshark sees TCP inside GRE-in-UDP in {gre_tcp} frames"
    );
    assert!(
        gre_udp >= 2,
        "tshark sees the UDP exchange inside GRE in {gre_udp} frames"
    );
    assert_eq!(malformed, 0, "malformed frames in the demo capture");
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
fn tcp_and_udp_echo_across_two_processes() {
    let ports = free_udp_ports(2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.toml");
    let mut sc = wsock_stack::scenario::DEFAULT_SCENARIO_TOML.to_string();
    sc = sc.replacen(
        "wire = \"127.0.0.1:0\"",
        &format!("wire = \"127.0.0.1:{}\"", ports[0]),
        1,
    );
    sc = sc.replacen(
        "wire = \"127.0.0.1:0\"",
        &format!("wire = \"127.0.0.1:{}\"", ports[1]),
        1,
    );
    std::fs::write(&file, &sc).unwrap();
    // The server host runs in its own process, with its echo services.
    // Its default control socket goes under this test's own runtime directory.
    let mut child = wsock()
        .env("XDG_RUNTIME_DIR", dir.path())
        .args(["host", "server", "--for-seconds", "120", "--scenario"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _reap = Reap(child);
    let mut first = String::new();
    // Kept open for the whole test: the host keeps printing.
    let mut stdout = BufReader::new(stdout);
    stdout.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("host server up"),
        "server process said {first:?}"
    );
    // The client host runs here.
    let scenario = wsock::Scenario::from_file(&file).unwrap();
    let net = wsock::Network::builder(scenario)
        .local_hosts(["client"])
        .start()
        .unwrap();
    let client = net.host("client").unwrap();
    assert!(
        net.host("server").is_none(),
        "the server is not in this process"
    );
    let server: SocketAddr = "10.0.0.2:7".parse().unwrap();
    net.runtime().unwrap().block_on(async {
        let mut s = wsock::net::TcpStream::connect(&client, server)
            .await
            .unwrap();
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg, "TCP echo across processes");
        let u = wsock::net::UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
        u.send_to(b"across processes", server).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = u.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"across processes"[..], server));
    });
}

#[test]
fn bad_scenario_file_names_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("name = \"x\"\n[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\nmtu_typo = 3\n", 6, "unknown field"),
        ("mtu = 100\n[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n", 0, "mtu"),
        ("[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n[[host]]\nname = \"b\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::2\"\n", 7, "ipv4"),
        ("[[host]]\nname = \"a\"\nipv4 = \"10.0.0.300\"\nipv6 = \"fd00::1\"\n", 3, "invalid"),
        ("[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n[[link]]\na = \"a\"\nb = \"zz\"\n", 7, "not a host"),
    ];
    for (i, (text, line, what)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&f, text).unwrap();
        let out = wsock()
            .args(["scenario", "check"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} accepted");
        let prefix = if *line > 0 {
            format!("{}:{}:", f.display(), line)
        } else {
            format!("{}:", f.display())
        };
        assert!(err.contains(&prefix), "case {i}: {err:?} lacks {prefix:?}");
        assert!(err.contains(what), "case {i}: {err:?} lacks {what:?}");
    }
    let ok = wsock().args(["scenario", "default"]).output().unwrap();
    let f = dir.path().join("default.toml");
    std::fs::write(&f, &ok.stdout).unwrap();
    assert!(wsock()
        .args(["scenario", "check"])
        .arg(&f)
        .status()
        .unwrap()
        .success());
}

#[test]
fn host_refuses_a_remote_host_without_a_fixed_port() {
    let out = wsock()
        .args(["host", "client", "--for-seconds", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("fixed port"), "{err}");
}
