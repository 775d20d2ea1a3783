//! Interop smoke check: `shared/oracles/ikev2_probe.py`, an IKEv2 initiator nobody on this
//! crate wrote (Python `cryptography`), negotiates with our responder over real loopback UDP:
//! IKE_SA_INIT on our IKE socket, IKE_AUTH (PSK) on our NAT-T socket with the non-ESP marker, a
//! tunnel-mode child SA with AES-GCM-16-128, an ICMP echo through ESP-in-UDP that this test
//! answers through our own child SA, and a Delete of the IKE SA. The keys the probe derived
//! (its `--keys-out` file) must equal ours.
//!
//! Skips with a message when python3, its `cryptography` module or the probe is missing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wsock_ipsec::esp::{InboundSa, Mode, OutboundSa, NEXT_HEADER_IPV4};
use wsock_ipsec::ike::sa::*;
use wsock_ipsec::natt::{self, NattDatagram};

const PSK: &str = "oracle-lab-psk-0123456789abcdef";

fn probe() -> Option<PathBuf> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/ikev2_probe.py");
    if !script.exists() {
        println!("SKIPPED: probe {} not found", script.display());
        return None;
    }
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIPPED: python3 with the `cryptography` module is not available");
        return None;
    }
    Some(script)
}

/// A local port P such that P and P + 4000 are free (the probe binds both).
fn free_port_pair() -> u16 {
    for p in (21000..29000).step_by(97) {
        let a = UdpSocket::bind(("127.0.0.1", p));
        let b = UdpSocket::bind(("127.0.0.1", p + 4000));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
    panic!("no free UDP port pair on loopback")
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo reply to an IPv4 ICMP echo request, or `None` for anything else.
fn echo_reply(ip: &[u8]) -> Option<Vec<u8>> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip.len() < ihl + 8 || ip[9] != 1 || ip[ihl] != 8 {
        return None;
    }
    let mut r = ip.to_vec();
    r[12..16].copy_from_slice(&ip[16..20]);
    r[16..20].copy_from_slice(&ip[12..16]);
    r[10] = 0;
    r[11] = 0;
    let c = checksum(&r[..ihl]);
    r[10..12].copy_from_slice(&c.to_be_bytes());
    r[ihl] = 0;
    r[ihl + 2] = 0;
    r[ihl + 3] = 0;
    let c = checksum(&r[ihl..]);
    r[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
    Some(r)
}

#[test]
fn python_probe_establishes_with_our_responder() {
    let Some(script) = probe() else { return };
    let ike = UdpSocket::bind("127.0.0.1:0").unwrap();
    let natt_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&ike, &natt_sock] {
        s.set_nonblocking(true).unwrap();
    }
    let mut policy = IkePolicy::psk(Identity::Fqdn("a.lab".into()), PSK);
    policy.target_name = Some("b.lab".into());
    let mut cfg = EndpointConfig::new(ike.local_addr().unwrap(), natt_sock.local_addr().unwrap());
    cfg.responder = Some(policy);
    cfg.keylog = true;
    let mut ep = IkeEndpoint::new(cfg, Box::new(SystemIkeRandom::new())).unwrap();

    let port = free_port_pair();
    let keys_out =
        std::env::temp_dir().join(format!("wsock-probe-keys-{}.json", std::process::id()));
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--local", "127.0.0.1", "--remote", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args([
            "--remote-port",
            &ike.local_addr().unwrap().port().to_string(),
        ])
        .args([
            "--remote-natt-port",
            &natt_sock.local_addr().unwrap().port().to_string(),
        ])
        .args(["--id", "b.lab", "--psk", PSK])
        .arg("--keys-out")
        .arg(&keys_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let start = Instant::now();
    let mut events = Vec::new();
    let mut sas: Option<(ChildSa, InboundSa, OutboundSa)> = None;
    let mut echoed = 0;
    let mut buf = vec![0u8; 65536];
    let status = loop {
        let now = start.elapsed();
        let mut idle = true;
        for (sock, kind) in [(&ike, WireSocket::Ike), (&natt_sock, WireSocket::Natt)] {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                idle = false;
                let d = &buf[..n];
                if kind == WireSocket::Natt {
                    if let Ok(NattDatagram::Esp { .. }) = natt::classify(d) {
                        // The data path: open, answer pings, seal.
                        let Some((c, rx, tx)) = &mut sas else {
                            continue;
                        };
                        let mut packet = d.to_vec();
                        let Ok(opened) = rx.open(now, &mut packet) else {
                            continue;
                        };
                        if opened.next_header != NEXT_HEADER_IPV4 {
                            continue;
                        }
                        if let Some(reply) = echo_reply(opened.payload) {
                            let mut out = Vec::new();
                            tx.seal(now, NEXT_HEADER_IPV4, &reply, &mut out).unwrap();
                            natt_sock.send_to(&out, c.peer).unwrap();
                            echoed += 1;
                        }
                        continue;
                    }
                }
                ep.handle_datagram(now, from, kind, d);
            }
        }
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
        while let Some(t) = ep.poll_transmit(now) {
            let sock = match t.socket {
                WireSocket::Ike => &ike,
                WireSocket::Natt => &natt_sock,
            };
            sock.send_to(&t.contents, t.destination).unwrap();
        }
        while let Some(e) = ep.poll_event() {
            if let IkeEvent::ChildSaReady(c) = &e {
                let rx = c.inbound_sa(now).unwrap();
                let tx = c.outbound_sa(now).unwrap();
                sas = Some(((**c).clone(), rx, tx));
            }
            events.push(e);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "probe did not finish"
        );
        if idle {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("probe stdout:\n{stdout}");
    println!("probe stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    println!("our events: {events:#?}");
    assert!(status.success(), "probe failed: {status}");
    assert!(stdout.contains("responder AUTH verified: True IDr: a.lab"));
    assert!(stdout.contains("ICMP echo reply through charon's ESP: True"));
    assert!(stdout.contains("INFORMATIONAL response received: True"));
    assert_eq!(echoed, 1);

    let (sa, spi_i, spi_r) = events
        .iter()
        .find_map(|e| match e {
            IkeEvent::IkeSaEstablished {
                sa,
                spi_i,
                spi_r,
                peer_id,
                role,
                ..
            } => {
                assert_eq!(*peer_id, Identity::Fqdn("b.lab".into()));
                assert_eq!(*role, wsock_ipsec::ike::crypto::Role::Responder);
                Some((*sa, *spi_i, *spi_r))
            }
            _ => None,
        })
        .expect("IKE SA established");
    assert!(events.contains(&IkeEvent::IkeSaDeleted { sa, by_peer: true }));
    let (c, ..) = sas.expect("child SA");
    assert_eq!(c.mode, Mode::Tunnel);
    assert!(c.encapsulated);

    // The probe's keys are ours.
    let keys = std::fs::read_to_string(&keys_out).unwrap();
    let _ = std::fs::remove_file(&keys_out);
    let rec = ep.ike_key_record(sa).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(keys.contains(&format!("\"spii\": \"{spi_i:016x}\"")));
    assert!(keys.contains(&format!("\"spir\": \"{spi_r:016x}\"")));
    assert!(keys.contains(&format!("\"sk_ei\": \"{}\"", hex(&rec.sk_ei))));
    assert!(keys.contains(&format!("\"sk_er\": \"{}\"", hex(&rec.sk_er))));
    // ESP: the probe's initiator-to-responder key is our inbound key, and the other way round.
    assert!(keys.contains(&format!("\"enc_key\": \"0x{}\"", hex(&c.inbound_keys.encr))));
    assert!(keys.contains(&format!(
        "\"enc_key\": \"0x{}\"",
        hex(&c.outbound_keys.encr)
    )));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(c.esp_key_records(local)[1].spi, c.inbound.spi);
    let _: SocketAddr = c.peer;
}
