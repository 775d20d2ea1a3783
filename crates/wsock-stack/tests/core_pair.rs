//! Two host cores driven in memory on a virtual clock, step by step (the quinn-proto test-pair
//! shape): no sockets, no threads, no wall clock. A lossy transfer replays byte-identically from
//! its seed, an hour of virtual time runs in milliseconds, and the packet-path stages (hold,
//! release, wire sockets) are checked exactly.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{connect, tcp, transfer, wires, Pair};
use wsock_stack::stages::{
    DropReason, EgressAction, HoldKey, PacketStage, StageContext, WireSocket,
};
use wsock_stack::wsock_ale::{EndpointContext, Protocol as AleProtocol};
use wsock_stack::{Family, Faults, Protocol, StackError};

#[test]
fn lossy_transfer_replays_byte_identically_from_its_seed() {
    let faults = Faults {
        loss: 0.05,
        duplicate: 0.01,
        reorder: 0.05,
        ..Faults::default()
    };
    for seed in [7u64, 1234] {
        let (data, got, trace1, n1, t1) = transfer(seed, faults, 512 * 1024);
        assert!(got == data, "seed {seed}: the transfer arrived intact");
        let (_, got2, trace2, n2, t2) = transfer(seed, faults, 512 * 1024);
        assert!(got2 == data, "seed {seed}: the replay arrived intact");
        println!("seed {seed}: {n1} datagrams, virtual time {t1:?}, trace {trace1:#x}");
        assert_eq!(
            (trace1, n1, t1),
            (trace2, n2, t2),
            "seed {seed}: same seed, same datagrams in the same order at the same times"
        );
    }
    let (_, _, a, _, _) = transfer(1, faults, 64 * 1024);
    let (_, _, b, _, _) = transfer(2, faults, 64 * 1024);
    assert_ne!(a, b, "different seeds give different schedules");
}

#[test]
fn idle_connection_survives_an_hour_of_virtual_time_in_milliseconds() {
    let wall = std::time::Instant::now();
    let mut p = Pair::new(99, Faults::default());
    let (c, s) = connect(&mut p, 9001);
    let start = p.now;
    p.run_until(Duration::from_secs(4000), |p| {
        p.now >= start + Duration::from_secs(3600)
    });
    p.cores[0].touch(p.now);
    assert_eq!(p.cores[0].try_send(c, b"after an hour").unwrap(), Some(13));
    let mut buf = [0u8; 64];
    let mut got = None;
    p.run_until(p.now + Duration::from_secs(10), |p| {
        got = p.cores[1].try_recv(s, &mut buf, false).unwrap();
        got.is_some()
    });
    assert_eq!(&buf[..got.unwrap()], b"after an hour");
    println!(
        "an hour of virtual time took {:?} of wall time",
        wall.elapsed()
    );
}

/// Holds every outbound TCP packet under one key until the test releases it (what IPsec does
/// while an SA is negotiated).
struct HoldAll {
    open: Arc<AtomicBool>,
}

impl PacketStage for HoldAll {
    fn egress(&mut self, ctx: &StageContext<'_>, _: &mut Vec<u8>) -> EgressAction {
        if ctx.summary.protocol == 6 && !self.open.load(Ordering::SeqCst) {
            EgressAction::Hold {
                key: HoldKey(1),
                deadline: ctx.now + Duration::from_secs(5),
            }
        } else {
            EgressAction::Continue
        }
    }
}

#[test]
fn held_packets_leave_when_released_and_expire_at_their_deadline() {
    // Released: the SYN waits in the held queue, then the connect completes.
    let mut p = Pair::new(5, Faults::default());
    let open = Arc::new(AtomicBool::new(false));
    p.cores[0].add_stage(Box::new(HoldAll { open: open.clone() }));
    let l = tcp(&mut p.cores[1]);
    p.cores[1].bind(l, "0.0.0.0:80".parse().unwrap()).unwrap();
    p.cores[1].listen(l, 4).unwrap();
    let c = tcp(&mut p.cores[0]);
    p.cores[0]
        .start_connect(c, "10.0.0.2:80".parse().unwrap())
        .unwrap();
    while p.now < Duration::from_secs(2) {
        p.step();
    }
    assert!(p.cores[0].held_count() >= 1, "the SYN is held");
    assert_eq!(p.datagrams, 0, "nothing crossed the wire while held");
    open.store(true, Ordering::SeqCst);
    let released = p.cores[0].release_held(HoldKey(1), p.now);
    assert!(released >= 1);
    p.run_until(Duration::from_secs(30), |p| {
        p.cores[0].connect_status(c).unwrap().is_some()
    });

    // Never released: the held packets expire and are counted; the connect times out.
    let mut p = Pair::new(6, Faults::default());
    p.cores[0].add_stage(Box::new(HoldAll {
        open: Arc::new(AtomicBool::new(false)),
    }));
    let c = tcp(&mut p.cores[0]);
    p.cores[0]
        .start_connect(c, "10.0.0.2:81".parse().unwrap())
        .unwrap();
    p.run_until(Duration::from_secs(120), |p| {
        matches!(p.cores[0].connect_status(c), Err(StackError::TimedOut))
    });
    let drops = p.cores[0].drops();
    assert!(drops.get(DropReason::HoldExpired) >= 1, "{drops:?}");
    assert_eq!(p.datagrams, 0);
}

/// Sends every outbound UDP packet as an opaque datagram on the NAT-T socket (what ESP does).
struct ToNatT;

impl PacketStage for ToNatT {
    fn egress(&mut self, ctx: &StageContext<'_>, packet: &mut Vec<u8>) -> EgressAction {
        if ctx.summary.protocol == 17 {
            let mut d = b"ESP?".to_vec();
            d.extend_from_slice(packet);
            EgressAction::Wire {
                socket: WireSocket::NatT,
                datagram: d,
            }
        } else {
            EgressAction::Continue
        }
    }
}

#[test]
fn a_stage_sends_on_the_natt_socket_and_the_peer_counts_what_it_cannot_key() {
    let mut p = Pair::new(8, Faults::default());
    p.cores[0].add_stage(Box::new(ToNatT));
    let ctx = EndpointContext::new("app.exe", "WSOCK\\alice", AleProtocol::Udp, false);
    let u = p.cores[0].create(Protocol::Udp, Family::V4, ctx);
    p.cores[0]
        .try_send_to(u, b"hello", Some("10.0.0.2:9999".parse().unwrap()))
        .unwrap();
    p.cores[0].touch(Duration::ZERO);
    let t = p.cores[0]
        .poll_transmit(Duration::ZERO)
        .expect("a datagram");
    assert_eq!(t.socket, WireSocket::NatT);
    assert_eq!(t.to, wires(2).natt);
    assert_eq!(&*t.to_host, "server");
    assert_eq!(&t.bytes[..4], b"ESP?");
    // No keying module on the server: the datagram is counted and dropped.
    p.cores[1].handle_datagram(p.now, WireSocket::NatT, wires(1).natt, &t.bytes);
    assert_eq!(p.cores[1].drops().get(DropReason::NoKeying), 1);
    p.cores[1].handle_datagram(p.now, WireSocket::Ike, wires(1).ike, b"not ike");
    assert_eq!(p.cores[1].drops().get(DropReason::NoKeying), 2);
}

#[test]
fn a_full_backlog_of_completed_connections_refuses_the_next_with_a_reset() {
    let mut p = Pair::new(11, Faults::default());
    let l = tcp(&mut p.cores[1]);
    p.cores[1].bind(l, "0.0.0.0:90".parse().unwrap()).unwrap();
    p.cores[1].listen(l, 2).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = tcp(&mut p.cores[0]);
        p.cores[0]
            .start_connect(c, "10.0.0.2:90".parse().unwrap())
            .unwrap();
        p.run_until(Duration::from_secs(30), |p| {
            !matches!(p.cores[0].connect_status(c), Ok(None))
        });
        clients.push(p.cores[0].connect_status(c).map(|_| ()));
    }
    assert_eq!(
        clients,
        vec![Ok(()), Ok(()), Err(StackError::ConnectionRefused)],
        "{:?} {:?} {:?}",
        p.cores[1].describe(),
        p.cores[0].describe(),
        p.cores[1].drops()
    );
}
