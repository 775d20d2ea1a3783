//! Regression tests for defects a Windows program hits on its first day, found by using wsock
//! as a new user would (issue "The host core, ready for IPsec"). Each test names the defect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wsock_stack::stages::{DropReason, EgressAction, PacketStage, StageContext};
use wsock_stack::{Endpoint, Family, Host, Network, Scenario, StackError};

/// A generous bound on waits that should finish at once; never a timing assertion.
const SAFETY: Duration = Duration::from_secs(60);

fn net() -> (Network, Host, Host) {
    let net = Network::start(Scenario::default_scenario()).expect("network");
    let c = net.host("client").unwrap();
    let s = net.host("server").unwrap();
    (net, c, s)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn listener(host: &Host, at: &str, backlog: usize) -> Endpoint {
    let a = addr(at);
    let l = host.tcp(Family::of(&a));
    l.bind(a).unwrap();
    l.listen(backlog).unwrap();
    l
}

async fn connect(host: &Host, to: &str) -> Result<Endpoint, StackError> {
    let a = addr(to);
    let c = host.tcp(Family::of(&a));
    tokio::time::timeout(SAFETY, c.connect(a))
        .await
        .expect("safety timeout")?;
    Ok(c)
}

#[test]
fn ipv6_connect_never_reaches_an_ipv4_only_listener_and_the_reverse() {
    let (net, client, server) = net();
    let _v4 = listener(&server, "0.0.0.0:8100", 4);
    let _v6 = listener(&server, "[::]:8101", 4);
    net.runtime().unwrap().block_on(async {
        let e = connect(&client, "[fd00::2]:8100").await.err();
        assert_eq!(
            e,
            Some(StackError::ConnectionRefused),
            "v6 -> v4-only listener"
        );
        let e = connect(&client, "10.0.0.2:8101").await.err();
        assert_eq!(
            e,
            Some(StackError::ConnectionRefused),
            "v4 -> v6-only listener"
        );
        connect(&client, "10.0.0.2:8100").await.expect("v4 -> v4");
        connect(&client, "[fd00::2]:8101").await.expect("v6 -> v6");
    });
}

#[test]
fn closing_with_unread_data_resets_the_connection() {
    let (net, client, server) = net();
    let l = listener(&server, "0.0.0.0:8102", 4);
    net.runtime().unwrap().block_on(async {
        let c = connect(&client, "10.0.0.2:8102").await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        c.send(b"never read").await.unwrap();
        // Wait until the data is in the server's receive queue, then close without reading.
        let r = tokio::time::timeout(SAFETY, async {
            loop {
                if a.readiness().unwrap().readable {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(r.is_ok());
        a.close().unwrap();
        // RST is the next segment: the writer sees WSAECONNRESET, not a FIN.
        let mut buf = [0u8; 16];
        let got = tokio::time::timeout(SAFETY, c.recv(&mut buf))
            .await
            .expect("safety timeout");
        assert_eq!(got, Err(StackError::ConnectionReset));
    });
}

#[test]
fn two_hundred_concurrent_connects_to_a_slow_acceptor_all_succeed() {
    let (net, client, server) = net();
    let l = listener(&server, "0.0.0.0:8103", 200);
    net.runtime().unwrap().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                connect(&client, "10.0.0.2:8103").await
            }));
        }
        let mut ok = Vec::new();
        for t in tasks {
            ok.push(t.await.unwrap().expect("every connect succeeds"));
        }
        // Only now does the acceptor take them.
        for _ in 0..200 {
            tokio::time::timeout(SAFETY, l.accept())
                .await
                .expect("accept")
                .unwrap();
        }
        assert_eq!(ok.len(), 200);
    });
}

#[test]
fn a_full_backlog_refuses_with_a_reset() {
    let (net, client, server) = net();
    let _l = listener(&server, "0.0.0.0:8104", 2);
    net.runtime().unwrap().block_on(async {
        let _a = connect(&client, "10.0.0.2:8104").await.unwrap();
        let _b = connect(&client, "10.0.0.2:8104").await.unwrap();
        let e = connect(&client, "10.0.0.2:8104").await.err();
        assert_eq!(e, Some(StackError::ConnectionRefused));
    });
}

#[test]
fn a_hosts_own_loopback_works_for_tcp_and_udp_both_families() {
    let (net, _client, server) = net();
    let l4 = listener(&server, "127.0.0.1:8105", 4);
    let l6 = listener(&server, "[::1]:8105", 4);
    net.runtime().unwrap().block_on(async {
        for (l, to) in [(&l4, "127.0.0.1:8105"), (&l6, "[::1]:8105")] {
            let c = connect(&server, to).await.expect("loopback connect");
            let (a, peer) = l.accept().await.unwrap();
            assert!(peer.ip().is_loopback(), "{peer}");
            c.send(b"lo").await.unwrap();
            let mut b = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                got += a.recv(&mut b[got..]).await.unwrap();
            }
            assert_eq!(&b, b"lo");
        }
        // The host's own virtual address works too, without touching the wire.
        let l = listener(&server, "0.0.0.0:8106", 4);
        connect(&server, "10.0.0.2:8106")
            .await
            .expect("own address");
        l.accept().await.unwrap();
        let u = server.udp(Family::V4);
        u.bind(addr("127.0.0.1:0")).unwrap();
        u.send_to(b"echo", Some(addr("127.0.0.1:7"))).await.unwrap();
        let mut b = [0u8; 8];
        let (n, _, from) = tokio::time::timeout(SAFETY, u.recv_from(&mut b))
            .await
            .expect("safety timeout")
            .unwrap();
        assert_eq!((&b[..n], from), (&b"echo"[..], addr("127.0.0.1:7")));
    });
    assert_eq!(
        server.counters().wire_sent,
        0,
        "loopback never crossed the wire"
    );
}

#[test]
fn scenario_services_run_in_any_network() {
    let (net, client, _server) = net();
    net.runtime().unwrap().block_on(async {
        let c = connect(&client, "10.0.0.2:7")
            .await
            .expect("the tcp-echo service answers");
        c.send(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            got += c.recv(&mut b[got..]).await.unwrap();
        }
        assert_eq!(&b, b"ping");
    });
    let off = Network::builder(Scenario::default_scenario())
        .services(false)
        .start()
        .unwrap();
    let s = off.host("server").unwrap();
    let _l = listener(&s, "0.0.0.0:7", 4); // port 7 is free when services are off
}

#[test]
fn dropping_a_connecting_endpoint_frees_it() {
    let (net, client, server) = net();
    let before = client.endpoint_count();
    // A listener whose SYNs are dropped: the connect hangs until cancelled.
    server.add_stage(Box::new(DropSyns));
    let _l = listener(&server, "0.0.0.0:8107", 4);
    net.runtime().unwrap().block_on(async {
        let r = tokio::time::timeout(Duration::from_millis(200), async {
            let c = client.tcp(Family::V4);
            c.connect(addr("10.0.0.2:8107")).await
        })
        .await;
        assert!(r.is_err(), "the connect was cancelled");
    });
    assert_eq!(
        client.endpoint_count(),
        before,
        "the cancelled connect's endpoint is freed"
    );
}

struct DropSyns;
impl PacketStage for DropSyns {
    fn ingress(
        &mut self,
        ctx: &StageContext<'_>,
        _: &wsock_stack::stages::IngressMeta,
        p: &mut Vec<u8>,
    ) -> wsock_stack::stages::IngressAction {
        let flags = p
            .get(ctx.summary.transport_offset + 13)
            .copied()
            .unwrap_or(0);
        if ctx.summary.protocol == 6 && flags & 0x12 == 0x02 {
            wsock_stack::stages::IngressAction::Drop(DropReason::Policy)
        } else {
            wsock_stack::stages::IngressAction::Accept
        }
    }
}

#[test]
fn inbound_lookup_prefers_the_specific_address_over_the_wildcard() {
    let (net, client, server) = net();
    let wild = server.tcp(Family::V4);
    wild.set_options(|o| o.reuse_addr = true).unwrap();
    wild.bind(addr("0.0.0.0:8108")).unwrap();
    wild.listen(4).unwrap();
    let specific = server.tcp(Family::V4);
    specific.set_options(|o| o.reuse_addr = true).unwrap();
    specific.bind(addr("10.0.0.2:8108")).unwrap();
    specific.listen(4).unwrap();
    net.runtime().unwrap().block_on(async {
        let _c = connect(&client, "10.0.0.2:8108").await.unwrap();
        tokio::time::timeout(SAFETY, specific.accept())
            .await
            .expect("the specific listener takes it")
            .unwrap();
        assert_eq!(wild.try_accept().err(), Some(StackError::WouldBlock));
        // Loopback goes to the wildcard: the specific one does not cover it.
        let _c = connect(&server, "127.0.0.1:8108").await.unwrap();
        tokio::time::timeout(SAFETY, wild.accept())
            .await
            .expect("wildcard")
            .unwrap();
    });
}

#[test]
fn udp_port_unreachable_reports_wsaeconnreset_unless_turned_off() {
    let (net, client, _server) = net();
    net.runtime().unwrap().block_on(async {
        let u = client.udp(Family::V4);
        u.bind(addr("0.0.0.0:0")).unwrap();
        u.send_to(b"anyone?", Some(addr("10.0.0.2:8109")))
            .await
            .unwrap();
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(SAFETY, u.recv_from(&mut b))
            .await
            .expect("safety");
        assert_eq!(r.err(), Some(StackError::ConnectionReset));

        // SIO_UDP_CONNRESET off: the ICMP error is ignored.
        let q = client.udp(Family::V4);
        q.set_options(|o| o.udp_connreset = false).unwrap();
        q.bind(addr("0.0.0.0:0")).unwrap();
        q.send_to(b"anyone?", Some(addr("10.0.0.2:8109")))
            .await
            .unwrap();
        let r = tokio::time::timeout(Duration::from_millis(300), q.recv_from(&mut b)).await;
        assert!(r.is_err(), "nothing to receive, no error: {r:?}");
    });
}

#[test]
fn first_ephemeral_port_varies_per_process_unless_fixed() {
    let port = |salt: Option<u64>| {
        let mut b = Network::builder(Scenario::default_scenario());
        if let Some(s) = salt {
            b = b.process_salt(s);
        }
        let net = b.start().unwrap();
        let u = net.host("client").unwrap().udp(Family::V4);
        u.bind(addr("0.0.0.0:0")).unwrap();
        u.local_addr().unwrap().port()
    };
    assert_eq!(
        port(Some(1)),
        port(Some(1)),
        "a fixed salt gives the same port"
    );
    let ports: std::collections::BTreeSet<u16> = (0..4).map(|_| port(None)).collect();
    assert!(ports.len() > 1, "runs differ: {ports:?}");
}

#[test]
fn a_new_connection_on_a_4_tuple_in_time_wait_is_accepted() {
    let (net, client, server) = net();
    let l = listener(&server, "0.0.0.0:8110", 4);
    net.runtime().unwrap().block_on(async {
        for round in 0..2 {
            let c = client.tcp(Family::V4);
            c.set_options(|o| o.reuse_addr = true).unwrap();
            c.bind(addr("10.0.0.1:40000")).unwrap();
            tokio::time::timeout(SAFETY, c.connect(addr("10.0.0.2:8110")))
                .await
                .expect("safety")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            let (a, _) = l.accept().await.unwrap();
            // The client closes first, so its side of this 4-tuple goes to TIME-WAIT.
            c.shutdown(wsock_stack::Shutdown::Send).unwrap();
            let mut b = [0u8; 1];
            assert_eq!(a.recv(&mut b).await.unwrap(), 0);
            a.close().unwrap();
            c.close().unwrap();
        }
    });
}

/// Counts the SYNs a host sends.
struct CountSyns(Arc<AtomicU64>);
impl PacketStage for CountSyns {
    fn egress(&mut self, ctx: &StageContext<'_>, p: &mut Vec<u8>) -> EgressAction {
        let flags = p
            .get(ctx.summary.transport_offset + 13)
            .copied()
            .unwrap_or(0);
        if ctx.summary.protocol == 6 && flags & 0x12 == 0x02 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        EgressAction::Continue
    }
}

/// One's-complement sum (RFC 1071).
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// A GRE-in-UDP datagram carrying a SYN from `src` to `dst` (IPv4), checksum valid or not.
fn spoofed_syn(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, good: bool) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.0);
    p[16..20].copy_from_slice(&dst.0);
    let h = !(sum16(0, &p[..20]) as u16);
    p[10..12].copy_from_slice(&h.to_be_bytes());
    p[20..22].copy_from_slice(&src.1.to_be_bytes());
    p[22..24].copy_from_slice(&dst.1.to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = 0x02;
    p[34..36].copy_from_slice(&8192u16.to_be_bytes());
    let mut acc = sum16(0, &src.0);
    acc = sum16(acc, &dst.0);
    acc += 6 + 20;
    let c = !(sum16(acc, &p[20..]) as u16);
    let c = if good { c } else { c ^ 0x5a5a };
    p[36..38].copy_from_slice(&c.to_be_bytes());
    let mut d = vec![0, 0, 0x08, 0x00];
    d.extend_from_slice(&p);
    d
}

#[test]
fn a_syn_flood_neither_takes_a_listener_down_nor_grows_state() {
    let seed: u64 = std::env::var("WSOCK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xf100d);
    let n: u32 = std::env::var("WSOCK_SYN_FLOOD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let (net, client, server) = net();
    let l = listener(&server, "0.0.0.0:8111", 16);
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x = seed | 1;
    let before_flows = server.with_ale(|a| a.flows().count());
    let mut sent = 0u64;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = (
            [10, 9, (x >> 8) as u8, x as u8],
            1024 + (x >> 20) as u16 % 60000,
        );
        // One in ten has a bad checksum: dropped before ALE, never a flow.
        let d = spoofed_syn(src, ([10, 0, 0, 2], 8111), x as u32, i % 10 != 0);
        while attacker.send_to(&d, server.wire_addr()).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
        sent += 1;
        if i % 500 == 499 {
            // Let the host keep up, so loopback's buffers do not drop the flood.
            let waited = std::time::Instant::now();
            while sent.saturating_sub(server.counters().wire_received) > 2000
                && waited.elapsed() < SAFETY
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    // Wait for the host to have read (or the kernel to have dropped) the flood.
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let r = server.counters().wire_received;
        if r == last {
            break;
        }
        last = r;
    }
    let stats = server.counters();
    let flows = server.with_ale(|a| a.flows().count());
    println!(
        "seed {seed}: sent {sent} spoofed SYNs, received {}, drops {:?}, flows {before_flows} -> {flows}",
        stats.wire_received, stats.drops
    );
    assert!(
        stats.wire_received >= sent * 9 / 10,
        "seed {seed}: the host read the flood ({} of {sent})",
        stats.wire_received
    );
    assert!(stats.drops.get(DropReason::BadChecksum) > 0, "seed {seed}");
    assert!(stats.drops.get(DropReason::BacklogFull) > 0, "seed {seed}");
    assert!(
        flows <= before_flows + 16,
        "seed {seed}: ALE flows stay bounded by the backlog ({flows})"
    );
    // A real client gets in on its first SYN.
    let syns = Arc::new(AtomicU64::new(0));
    client.add_stage(Box::new(CountSyns(syns.clone())));
    net.runtime().unwrap().block_on(async {
        let _c = connect(&client, "10.0.0.2:8111")
            .await
            .expect("seed {seed}: real connect");
        tokio::time::timeout(SAFETY, async {
            loop {
                if let Ok((_, peer)) = l.try_accept() {
                    if peer.ip() == addr("10.0.0.1:0").ip() {
                        break;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .await
        .expect("the real connection is accepted");
    });
    assert_eq!(
        syns.load(Ordering::SeqCst),
        1,
        "seed {seed}: no SYN retransmission"
    );
}

#[test]
fn writing_100_kb_to_an_echo_service_before_reading_does_not_deadlock() {
    // Default buffers must hold what an ordinary program leaves in flight: a client that writes
    // all its data before reading the echo (small default buffers deadlocked this).
    let (net, client, _server) = net();
    net.runtime().unwrap().block_on(async {
        let c = connect(&client, "10.0.0.2:7").await.unwrap();
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < msg.len() {
            off += tokio::time::timeout(SAFETY, c.send(&msg[off..]))
                .await
                .expect("the write completes")
                .unwrap();
        }
        let mut back = vec![0u8; msg.len()];
        let mut got = 0;
        while got < back.len() {
            got += tokio::time::timeout(SAFETY, c.recv(&mut back[got..]))
                .await
                .expect("the echo arrives")
                .unwrap();
        }
        assert!(back == msg);
    });
}
