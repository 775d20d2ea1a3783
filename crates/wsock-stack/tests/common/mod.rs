//! The in-memory pair of host cores shared by the virtual-clock tests: two cores, the
//! datagrams in flight between them with the link's seeded faults, and a trace of the wire.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wsock_stack::core::{CoreConfig, HostCore, Routes};
use wsock_stack::faults;
use wsock_stack::stages::{Transmit, WireAddrs};
use wsock_stack::wsock_ale::{EndpointContext, Protocol as AleProtocol};
use wsock_stack::{Family, Faults, Protocol, Scenario};

pub const LATENCY: Duration = Duration::from_micros(300);

pub fn wires(n: u8) -> WireAddrs {
    let a = |p: u16| SocketAddr::from(([127, 0, 0, n], p));
    WireAddrs {
        ike: a(500),
        natt: a(4500),
        clear: a(4754),
    }
}

/// Two cores, the datagrams in flight between them, and a trace of what crossed the wire.
pub struct Pair {
    pub cores: [HostCore; 2],
    pub now: Duration,
    pub in_flight: BTreeMap<(Duration, u64), (usize, Transmit, SocketAddr)>,
    pub seq: u64,
    pub seed: u64,
    pub faults: Faults,
    pub sent: [u64; 2],
    /// FNV-1a over every datagram that crossed the wire, in order.
    pub trace: u64,
    pub datagrams: u64,
    /// Drops a datagram before the link's faults when it returns `true` (sender index, datagram).
    #[allow(clippy::type_complexity)]
    pub drop_if: Option<Box<dyn FnMut(usize, &Transmit) -> bool>>,
}

pub fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl Pair {
    pub fn new(seed: u64, faults: Faults) -> Pair {
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
            drop_if: None,
        }
    }

    /// Moves what the cores want to send into flight, through the link's seeded faults.
    pub fn collect(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.cores[i].poll_transmit(self.now) {
                let index = self.sent[i];
                self.sent[i] += 1;
                if let Some(f) = self.drop_if.as_mut() {
                    if f(i, &t) {
                        continue;
                    }
                }
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
    pub fn step(&mut self) -> bool {
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

    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Pair) -> bool) {
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

pub fn tcp(core: &mut HostCore) -> u64 {
    let ctx = EndpointContext::new("app.exe", "WSOCK\\alice", AleProtocol::Tcp, false);
    core.create(Protocol::Tcp, Family::V4, ctx)
}

/// Connects client (core 0) to a listener on server (core 1); returns (client id, accepted id).
pub fn connect(p: &mut Pair, port: u16) -> (u64, u64) {
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
pub fn transfer(seed: u64, faults: Faults, len: usize) -> (Vec<u8>, Vec<u8>, u64, u64, Duration) {
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

impl Pair {
    /// A pair whose cores run IPsec with the scenario's CA and machine certificates;
    /// `tweak` adjusts each host's setup.
    pub fn with_ipsec(
        seed: u64,
        faults: Faults,
        tweak: impl Fn(&str, &mut wsock_stack::core::IpsecSetup),
    ) -> Pair {
        let mut p = Pair::new(seed, faults);
        let sc = Scenario::default_scenario();
        let names: Vec<String> = sc.hosts.iter().map(|h| h.name.clone()).collect();
        let mut setups =
            wsock_stack::ipsec_setup::setups(&sc, &names, false, rustls_pki_types::UnixTime::now())
                .expect("credentials");
        for (i, name) in names.iter().enumerate() {
            let mut s = setups.remove(name).expect("setup");
            tweak(name, &mut s);
            p.cores[i].enable_ipsec(s).expect("ipsec");
        }
        p
    }
}

/// A secure connect: both sockets set `settings` first. Returns (client id, accepted id).
pub fn secure_connect(
    p: &mut Pair,
    port: u16,
    settings: wsock_stack::SecuritySettings,
) -> (u64, u64) {
    let l = tcp(&mut p.cores[1]);
    p.cores[1].set_security(l, Some(settings.clone())).unwrap();
    p.cores[1]
        .bind(l, SocketAddr::from(([0, 0, 0, 0], port)))
        .unwrap();
    p.cores[1].listen(l, 8).unwrap();
    let c = tcp(&mut p.cores[0]);
    p.cores[0].set_security(c, Some(settings)).unwrap();
    let now = p.now;
    p.cores[0].touch(now);
    p.cores[0]
        .start_connect(c, SocketAddr::from(([10, 0, 0, 2], port)))
        .unwrap();
    let mut accepted = None;
    p.run_until(p.now + Duration::from_secs(120), |p| {
        if accepted.is_none() {
            accepted = p.cores[1].try_accept(l).unwrap().map(|(id, _)| id);
        }
        accepted.is_some() && p.cores[0].connect_status(c).unwrap().is_some()
    });
    (c, accepted.unwrap())
}

/// Sends `data` from host 0's endpoint `c` (one try, which must take it all) and waits up to a
/// virtual minute until host 1's endpoint `s` receives it; asserts it arrived as sent.
pub fn send_and_receive(p: &mut Pair, c: u64, s: u64, data: &[u8]) {
    let now = p.now;
    p.cores[0].touch(now);
    assert_eq!(p.cores[0].try_send(c, data).unwrap(), Some(data.len()));
    let mut buf = vec![0u8; data.len() + 16];
    let mut got = None;
    p.run_until(p.now + Duration::from_secs(60), |p| {
        got = p.cores[1].try_recv(s, &mut buf, false).unwrap();
        got.is_some()
    });
    assert_eq!(&buf[..got.expect("the data arrived")], data);
}
