//! Two host cores driven in memory on a virtual clock, step by step (the quinn-proto test-pair
//! shape): no sockets, no threads, no wall clock. A lossy transfer replays byte-identically from
//! its seed, an hour of virtual time runs in milliseconds, and the packet-path stages (hold,
//! release, wire sockets) are checked exactly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wsock_stack::core::{CoreConfig, HostCore, Routes};
use wsock_stack::faults;
use wsock_stack::stages::{
    DropReason, EgressAction, HoldKey, PacketStage, StageContext, Transmit, WireAddrs, WireSocket,
};
use wsock_stack::wsock_ale::{EndpointContext, Protocol as AleProtocol};
use wsock_stack::{Family, Faults, Protocol, Scenario, StackError};

const LATENCY: Duration = Duration::from_micros(300);

fn wires(n: u8) -> WireAddrs {
    let a = |p: u16| SocketAddr::from(([127, 0, 0, n], p));
    WireAddrs {
        ike: a(500),
        natt: a(4500),
        clear: a(4754),
    }
}

/// Two cores, the datagrams in flight between them, and a trace of what crossed the wire.
struct Pair {
    cores: [HostCore; 2],
    now: Duration,
    in_flight: BTreeMap<(Duration, u64), (usize, Transmit, SocketAddr)>,
    seq: u64,
    seed: u64,
    faults: Faults,
    sent: [u64; 2],
    /// FNV-1a over every datagram that crossed the wire, in order.
    trace: u64,
    datagrams: u64,
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl Pair {
    fn new(seed: u64, faults: Faults) -> Pair {
        let sc = Scenario::default_scenario();
        let mut routes = Routes::default();
        for (i, h) in sc.hosts.iter().enumerate() {
            routes.insert(&h.name, h.ipv4, h.ipv6, wires(i as u8 + 1));
        }
        let routes = Arc::new(routes);
        let core = |i: usize| {
            HostCore::new(
                sc.hosts[i].clone(),
                CoreConfig {
                    mtu: 1500,
                    random_seed: seed.wrapping_add(i as u64),
                    routes: routes.clone(),
                    wires: wires(i as u8 + 1),
                },
            )
            .expect("core")
        };
        Pair {
            cores: [core(0), core(1)],
            now: Duration::ZERO,
            in_flight: BTreeMap::new(),
            seq: 0,
            seed,
            faults,
            sent: [0; 2],
            trace: 0xcbf2_9ce4_8422_2325,
            datagrams: 0,
        }
    }

    /// Moves what the cores want to send into flight, through the link's seeded faults.
    fn collect(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.cores[i].poll_transmit(self.now) {
                let index = self.sent[i];
                self.sent[i] += 1;
                let d = faults::decide(self.seed, 1, i as u8, index, &self.faults);
                self.trace = fnv(self.trace, &t.bytes);
                self.datagrams += 1;
                if d.drop {
                    continue;
                }
                let extra = if d.reorder {
                    Duration::from_millis(3)
                } else {
                    Duration::ZERO
                };
                let from = self.cores[i].wires().get(t.socket);
                let copies = if d.duplicate { 2 } else { 1 };
                for _ in 0..copies {
                    self.seq += 1;
                    self.in_flight.insert(
                        (self.now + LATENCY + extra, self.seq),
                        (1 - i, t.clone(), from),
                    );
                }
            }
        }
    }

    /// Advances the virtual clock to the next event and handles it. Returns false when nothing
    /// is scheduled at all.
    fn step(&mut self) -> bool {
        self.collect();
        let mut next = self.in_flight.keys().next().map(|k| k.0);
        for c in &mut self.cores {
            if let Some(t) = c.poll_timeout() {
                next = Some(next.map_or(t, |n: Duration| n.min(t)));
            }
        }
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, t, from) = entry.remove();
            self.cores[to].handle_datagram(self.now, t.socket, from, &t.bytes);
        }
        for c in &mut self.cores {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        true
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Pair) -> bool) {
        while !done(self) {
            assert!(
                self.now < limit,
                "seed {}: not done by {:?}",
                self.seed,
                limit
            );
            if !self.step() {
                panic!("seed {}: nothing scheduled", self.seed);
            }
        }
    }
}

fn tcp(core: &mut HostCore) -> u64 {
    let ctx = EndpointContext::new("app.exe", "WSOCK\\alice", AleProtocol::Tcp, false);
    core.create(Protocol::Tcp, Family::V4, ctx)
}

/// Connects client (core 0) to a listener on server (core 1); returns (client id, accepted id).
fn connect(p: &mut Pair, port: u16) -> (u64, u64) {
    let l = tcp(&mut p.cores[1]);
    p.cores[1]
        .bind(l, SocketAddr::from(([0, 0, 0, 0], port)))
        .unwrap();
    p.cores[1].listen(l, 8).unwrap();
    let c = tcp(&mut p.cores[0]);
    let now = p.now;
    p.cores[0].touch(now);
    p.cores[0]
        .start_connect(c, SocketAddr::from(([10, 0, 0, 2], port)))
        .unwrap();
    let mut accepted = None;
    p.run_until(Duration::from_secs(60), |p| {
        if accepted.is_none() {
            accepted = p.cores[1].try_accept(l).unwrap().map(|(id, _)| id);
        }
        accepted.is_some() && p.cores[0].connect_status(c).unwrap().is_some()
    });
    (c, accepted.unwrap())
}

/// Sends `len` pseudo-random bytes from core 0 to core 1 and returns what arrived.
fn transfer(seed: u64, faults: Faults, len: usize) -> (Vec<u8>, Vec<u8>, u64, u64, Duration) {
    let mut p = Pair::new(seed, faults);
    let (c, s) = connect(&mut p, 9000);
    let data: Vec<u8> = (0..len)
        .map(|i| (faults::splitmix(seed ^ i as u64) >> 7) as u8)
        .collect();
    let mut sent = 0;
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0u8; 65536];
    p.run_until(Duration::from_secs(3600), |p| {
        let now = p.now;
        if sent < data.len() {
            p.cores[0].touch(now);
            if let Some(n) = p.cores[0].try_send(c, &data[sent..]).unwrap() {
                sent += n;
            }
        }
        p.cores[1].touch(now);
        while let Some(n) = p.cores[1].try_recv(s, &mut buf, false).unwrap() {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= data.len()
    });
    (data, got, p.trace, p.datagrams, p.now)
}

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
