//! Handshake rates: our IKEv2 (`wsock_ipsec::ike::sa::IkeEndpoint`, two endpoints on real
//! loopback UDP sockets, one thread, time from an `Instant`) against rustls TLS 1.3 (two
//! connections on real loopback TCP, one thread driving both non-blocking), in the same run.
//! Prints:
//! - `compare: handshake_full ours=.. hs/s peer(rustls-tls13)=.. hs/s ratio=..`: a new IKE SA and
//!   its first child SA (IKE_SA_INIT + IKE_AUTH), ECDSA P-256 certificates on both sides from one
//!   `wsock_ipsec::pki::CertAuthority`, RFC 7427 AUTH, the crate's default suites (X25519 first),
//!   against a full TLS 1.3 handshake with a client certificate (X25519, ECDSA P-256 server and
//!   client certificates issued by the same kind of CA, both chains verified by webpki);
//! - `compare: handshake_child ours=.. hs/s peer(rustls-tls13-resumed)=.. hs/s ratio=..`: an
//!   additional child SA on an established IKE SA (CREATE_CHILD_SA, the default policy: no PFS)
//!   against a resumed TLS 1.3 handshake (session ticket, psk_dhe_ke with X25519);
//! - `compare: handshake_child_pfs ...`: the same with PFS (a Curve25519 KE in CREATE_CHILD_SA,
//!   the closer match to psk_dhe_ke, which also runs an X25519 exchange), against the same peer.
//!
//! Higher is better; ratio = ours/peer. Only the handshake itself is timed: TCP connection
//! set-up (for TLS) and the tear-down of each IKE SA or child SA after it was measured (an
//! INFORMATIONAL delete exchange, so the endpoints stay at one live SA) are outside the clock.
//! Each figure is the median of three rounds of about `WSOCK_BENCH_SECS` (default 2) seconds of
//! timed handshakes per side. Every handshake is checked (both sides established, the peer's
//! identity, full vs resumed) so a broken handshake cannot pass as a fast one.
//! `WSOCK_BENCH_ONLY=full|child|child_pfs` runs one figure; for profiling,
//! `WSOCK_BENCH_SIDE=ours|peer` runs one side (then the line printed is `measure:`).

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig};
use rustls::{Connection, ServerConnection};
use wsock_ipsec::ike::cert::CertAuth;
use wsock_ipsec::ike::crypto::DhGroup;
use wsock_ipsec::ike::sa::{
    EndpointConfig, Identity, IkeEndpoint, IkeEvent, IkePolicy, IkeSaId, SystemIkeRandom,
    WireSocket,
};
use wsock_ipsec::pki::{CertAuthority, MachineCert, Validity};

const ROUNDS: usize = 3;

fn round_budget() -> Duration {
    let secs: f64 = std::env::var("WSOCK_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Adds up only the timed parts of a round.
#[derive(Default)]
struct Stopwatch {
    timed: Duration,
    count: u64,
}

impl Stopwatch {
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.timed += t.elapsed();
        self.count += 1;
        r
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.timed.as_secs_f64()
    }
}

// ----------------------------------------------------------------------------------------------
// Ours: two IKE endpoints on loopback UDP.

/// One endpoint and its two bound sockets (IKE and NAT-T).
struct Side {
    ep: IkeEndpoint,
    ike: UdpSocket,
    natt: UdpSocket,
    events: Vec<IkeEvent>,
    /// IKE bytes sent so far.
    sent: usize,
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback UDP");
    s.set_nonblocking(true).unwrap();
    s
}

impl Side {
    fn new(responder: Option<IkePolicy>) -> Side {
        let (ike, natt) = (bind(), bind());
        let mut c = EndpointConfig::new(ike.local_addr().unwrap(), natt.local_addr().unwrap());
        c.responder = responder;
        let ep = IkeEndpoint::new(c, Box::new(SystemIkeRandom::new())).expect("endpoint");
        Side {
            ep,
            ike,
            natt,
            events: Vec::new(),
            sent: 0,
        }
    }

    /// Sends what the endpoint has queued; returns whether anything went.
    fn flush(&mut self, now: Duration) -> bool {
        let mut moved = false;
        while let Some(t) = self.ep.poll_transmit(now) {
            let sock = match t.socket {
                WireSocket::Ike => &self.ike,
                WireSocket::Natt => &self.natt,
            };
            sock.send_to(&t.contents, t.destination).expect("send_to");
            self.sent += t.contents.len();
            moved = true;
        }
        moved
    }

    /// Reads every datagram waiting on both sockets into the endpoint.
    fn receive(&mut self, now: Duration, buf: &mut [u8]) -> bool {
        let mut moved = false;
        for which in [WireSocket::Ike, WireSocket::Natt] {
            loop {
                let sock = match which {
                    WireSocket::Ike => &self.ike,
                    WireSocket::Natt => &self.natt,
                };
                match sock.recv_from(buf) {
                    Ok((n, from)) => {
                        self.ep.handle_datagram(now, from, which, &buf[..n]);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv_from: {e}"),
                }
            }
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
        moved
    }
}

struct IkePair {
    a: Side,
    b: Side,
    clock: Instant,
    buf: Vec<u8>,
}

impl IkePair {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Moves datagrams both ways until `done` holds for the two event lists (IKE timers are
    /// served too; a lost loopback datagram would be retransmitted, not hang the bench).
    fn pump_until(&mut self, what: &str, done: impl Fn(&[IkeEvent], &[IkeEvent]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.now();
            self.a.flush(now);
            self.b.flush(now);
            self.a.receive(now, &mut self.buf);
            self.b.receive(now, &mut self.buf);
            for s in [&self.a, &self.b] {
                if let Some(e) = s.events.iter().find_map(|e| match e {
                    IkeEvent::Failed { error, .. } | IkeEvent::ChildSaFailed { error, .. } => {
                        Some(error)
                    }
                    _ => None,
                }) {
                    panic!("{what}: negotiation failed: {e}");
                }
            }
            if done(&self.a.events, &self.b.events) {
                return;
            }
            for s in [&mut self.a, &mut self.b] {
                if s.ep.poll_timeout().is_some_and(|t| t <= now) {
                    s.ep.handle_timeout(now);
                }
            }
            assert!(Instant::now() < deadline, "{what}: no progress in 30 s");
        }
    }

    fn clear_events(&mut self) {
        self.a.events.clear();
        self.b.events.clear();
    }
}

fn established(ev: &[IkeEvent]) -> Option<(IkeSaId, &Identity)> {
    ev.iter().find_map(|e| match e {
        IkeEvent::IkeSaEstablished { sa, peer_id, .. } => Some((*sa, peer_id)),
        _ => None,
    })
}

fn child_ready(ev: &[IkeEvent]) -> Option<u32> {
    ev.iter().find_map(|e| match e {
        IkeEvent::ChildSaReady(c) => Some(c.inbound.spi),
        _ => None,
    })
}

fn deleted_ike(ev: &[IkeEvent]) -> bool {
    ev.iter()
        .any(|e| matches!(e, IkeEvent::IkeSaDeleted { .. } | IkeEvent::Failed { .. }))
}

fn deleted_child(ev: &[IkeEvent]) -> bool {
    ev.iter()
        .any(|e| matches!(e, IkeEvent::ChildSaDeleted { .. }))
}

struct Pki {
    ca: CertAuthority,
    ike_a: MachineCert,
    ike_b: MachineCert,
    tls_server: MachineCert,
    tls_client: MachineCert,
}

fn tls_cert(
    ca: &mut CertAuthority,
    name: &str,
    eku: rcgen::ExtendedKeyUsagePurpose,
) -> MachineCert {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    ca.issue_with_params(params).expect("TLS certificate")
}

fn pki() -> Pki {
    let mut ca = CertAuthority::new("wsock bench CA", Validity::default()).expect("CA");
    let ike_a = ca
        .issue_machine(&["a.example"], true, Validity::default())
        .unwrap();
    let ike_b = ca
        .issue_machine(&["b.example"], true, Validity::default())
        .unwrap();
    let tls_server = tls_cert(
        &mut ca,
        "server.example",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let tls_client = tls_cert(
        &mut ca,
        "client.example",
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki {
        ca,
        ike_a,
        ike_b,
        tls_server,
        tls_client,
    }
}

fn ike_policy(pki: &Pki, name: &str, cert: &MachineCert) -> IkePolicy {
    let auth = CertAuth::new(
        cert.chain.clone(),
        &cert.key_pkcs8,
        vec![pki.ca.cert_der().to_vec()],
        UnixTime::now(),
    )
    .expect("certificate credential");
    let mut p = IkePolicy::certificate(Identity::Fqdn(name.into()), auth);
    // The initiator checks the responder's name, as TLS checks the server name.
    if name == "a.example" {
        p.target_name = Some("host/b.example".into());
    }
    p
}

fn ike_pair(pki: &Pki) -> (IkePair, IkePolicy) {
    let b = Side::new(Some(ike_policy(pki, "b.example", &pki.ike_b)));
    let a = Side::new(None);
    let pair = IkePair {
        a,
        b,
        clock: Instant::now(),
        buf: vec![0u8; 65536],
    };
    (pair, ike_policy(pki, "a.example", &pki.ike_a))
}

/// One full IKE handshake (IKE SA + first child SA), checked; returns the initiator's SA id.
fn ike_full_once(p: &mut IkePair, policy: &IkePolicy) -> IkeSaId {
    p.clear_events();
    let now = p.now();
    let to = (
        p.b.ike.local_addr().unwrap(),
        p.b.natt.local_addr().unwrap(),
    );
    p.a.ep
        .connect(now, to.0, Some(to.1), policy.clone())
        .expect("connect");
    p.pump_until("full handshake", |a, b| {
        child_ready(a).is_some() && child_ready(b).is_some()
    });
    let (sa, peer) = established(&p.a.events).expect("initiator established");
    assert_eq!(peer, &Identity::Fqdn("b.example".into()));
    let (_, peer) = established(&p.b.events).expect("responder established");
    assert_eq!(peer, &Identity::Fqdn("a.example".into()));
    sa
}

fn ours_full(pki: &Pki, budget: Duration) -> f64 {
    let (mut p, policy) = ike_pair(pki);
    // One untimed warm-up.
    let sa = ike_full_once(&mut p, &policy);
    drop_ike(&mut p, sa);
    let mut sw = Stopwatch::default();
    while sw.timed < budget {
        let sa = sw.time(|| ike_full_once(&mut p, &policy));
        drop_ike(&mut p, sa);
    }
    assert!(p.a.ep.summaries().is_empty() && p.b.ep.summaries().is_empty());
    sw.rate()
}

fn drop_ike(p: &mut IkePair, sa: IkeSaId) {
    p.clear_events();
    let now = p.now();
    p.a.ep.delete_ike_sa(now, sa).expect("delete IKE SA");
    p.pump_until("IKE SA delete", |a, b| deleted_ike(a) && deleted_ike(b));
}

/// Child SAs per second on one IKE SA, and the IKE bytes one CREATE_CHILD_SA exchange sends
/// (both directions; a PFS exchange carries two KE payloads more).
fn ours_child(pki: &Pki, budget: Duration, pfs: Option<DhGroup>) -> (f64, usize) {
    let (mut p, mut policy) = ike_pair(pki);
    policy.pfs = pfs;
    let sa = ike_full_once(&mut p, &policy);
    let once = |p: &mut IkePair| -> u32 {
        p.clear_events();
        let now = p.now();
        p.a.ep.create_child(now, sa).expect("create_child");
        p.pump_until("create child", |a, b| {
            child_ready(a).is_some() && child_ready(b).is_some()
        });
        child_ready(&p.a.events).unwrap()
    };
    let drop_child = |p: &mut IkePair, spi: u32| {
        p.clear_events();
        let now = p.now();
        p.a.ep.delete_child(now, sa, spi).expect("delete child");
        p.pump_until("child delete", |a, b| deleted_child(a) && deleted_child(b));
    };
    let before = p.a.sent + p.b.sent;
    let spi = once(&mut p);
    let exchange_bytes = p.a.sent + p.b.sent - before;
    drop_child(&mut p, spi);
    let mut sw = Stopwatch::default();
    while sw.timed < budget {
        let spi = sw.time(|| once(&mut p));
        drop_child(&mut p, spi);
    }
    // The IKE SA still has exactly its first child SA: nothing piled up during the round.
    let s = p.a.ep.summaries();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].children.len(), 1, "{:?}", s[0].children);
    (sw.rate(), exchange_bytes)
}

// ----------------------------------------------------------------------------------------------
// Peer: rustls TLS 1.3 on loopback TCP.

struct Tls {
    full_client: Arc<ClientConfig>,
    resume_client: Arc<ClientConfig>,
    full_server: Arc<ServerConfig>,
    resume_server: Arc<ServerConfig>,
}

fn key_der(c: &MachineCert) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pkcs8.clone()))
}

fn chain(c: &MachineCert) -> Vec<CertificateDer<'static>> {
    c.chain
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect()
}

fn tls(pki: &Pki) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca.cert_der().to_vec()))
        .unwrap();
    let roots = Arc::new(roots);
    let client = |resumption: Resumption| {
        let mut c = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain(&pki.tls_client), key_der(&pki.tls_client))
            .unwrap();
        c.resumption = resumption;
        Arc::new(c)
    };
    let server = |tickets: usize| {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .unwrap();
        let mut s = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain(&pki.tls_server), key_der(&pki.tls_server))
            .unwrap();
        // Full handshakes send no tickets (IKE has nothing like them); the resumed runs get
        // the default two, from rustls' stateful in-memory session store.
        s.send_tls13_tickets = tickets;
        Arc::new(s)
    };
    Tls {
        full_client: client(Resumption::disabled()),
        resume_client: client(Resumption::in_memory_sessions(256)),
        full_server: server(0),
        resume_server: server(2),
    }
}

/// A connected loopback TCP pair (client, server), non-blocking.
fn tcp_pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    for x in [&c, &s] {
        x.set_nodelay(true).unwrap();
        x.set_nonblocking(true).unwrap();
    }
    (c, s)
}

/// Writes what `conn` has and reads what its socket has; returns whether bytes moved.
fn io(conn: &mut Connection, sock: &mut TcpStream) -> bool {
    let mut moved = false;
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(n) => moved |= n > 0,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write_tls: {e}"),
        }
    }
    loop {
        match conn.read_tls(sock) {
            Ok(0) => break,
            Ok(_) => {
                moved = true;
                conn.process_new_packets().expect("TLS handshake");
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("read_tls: {e}"),
        }
    }
    moved
}

/// One TLS handshake on a fresh connection, driven until both sides are done and nothing more
/// is in flight (so the client has stored the tickets a resuming server sent). The sockets
/// come back so that closing them is not timed.
fn tls_once(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    socks: &mut (TcpStream, TcpStream),
) -> (Connection, Connection) {
    let (cs, ss) = socks;
    let name = ServerName::try_from("server.example").unwrap();
    let mut c = Connection::Client(ClientConnection::new(client.clone(), name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(server.clone()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let moved = io(&mut c, cs) | io(&mut s, ss);
        if !moved
            && !c.is_handshaking()
            && !s.is_handshaking()
            && !c.wants_write()
            && !s.wants_write()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TLS handshake: no progress in 30 s"
        );
    }
    (c, s)
}

fn peer_rate(t: &Tls, resumed: bool, budget: Duration) -> f64 {
    let (client, server) = if resumed {
        (&t.resume_client, &t.resume_server)
    } else {
        (&t.full_client, &t.full_server)
    };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // Warm-up (and, for resumption, the first tickets), untimed.
    tls_once(client, server, &mut tcp_pair(&l));
    let mut sw = Stopwatch::default();
    while sw.timed < budget {
        let mut socks = tcp_pair(&l);
        let (c, s) = sw.time(|| tls_once(client, server, &mut socks));
        let want = if resumed {
            HandshakeKind::Resumed
        } else {
            HandshakeKind::Full
        };
        assert_eq!(c.handshake_kind(), Some(want));
        assert_eq!(s.handshake_kind(), Some(want));
        if !resumed {
            // The server verified the client's certificate.
            let Connection::Server(s) = &s else {
                unreachable!("built as a server connection")
            };
            assert_eq!(s.peer_certificates().map(|c| c.len()), Some(1));
        }
    }
    sw.rate()
}

// ----------------------------------------------------------------------------------------------

fn compare(
    figure: &str,
    peer_name: &str,
    mut ours: impl FnMut() -> f64,
    mut peer: impl FnMut() -> f64,
) {
    let side = std::env::var("WSOCK_BENCH_SIDE").unwrap_or_default();
    let mut o = Vec::new();
    let mut p = Vec::new();
    for _ in 0..ROUNDS {
        if side != "peer" {
            o.push(ours());
        }
        if side != "ours" {
            p.push(peer());
        }
    }
    if !side.is_empty() {
        let (name, v) = if side == "peer" {
            (peer_name, p)
        } else {
            ("ours", o)
        };
        println!("measure: {figure} {name}={:.1} hs/s", median(v));
        return;
    }
    let (o, p) = (median(o), median(p));
    println!(
        "compare: {figure} ours={o:.1} hs/s peer({peer_name})={p:.1} hs/s ratio={:.3}",
        o / p
    );
}

fn main() {
    let pki = pki();
    let tls = tls(&pki);
    let budget = round_budget();
    let only = std::env::var("WSOCK_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "full" {
        compare(
            "handshake_full",
            "rustls-tls13",
            || ours_full(&pki, budget),
            || peer_rate(&tls, false, budget),
        );
    }
    let bytes = std::cell::Cell::new([0usize; 2]);
    for (i, (figure, pfs)) in [
        ("handshake_child", None),
        ("handshake_child_pfs", Some(DhGroup::Curve25519)),
    ]
    .into_iter()
    .enumerate()
    {
        if only.is_empty() || figure.strip_prefix("handshake_") == Some(only.as_str()) {
            compare(
                figure,
                "rustls-tls13-resumed",
                || {
                    let (rate, b) = ours_child(&pki, budget, pfs);
                    let mut v = bytes.get();
                    v[i] = b;
                    bytes.set(v);
                    rate
                },
                || peer_rate(&tls, true, budget),
            );
        }
    }
    // When both ran: PFS really added a KE payload each way (32-byte X25519 value + header).
    let [plain, pfs] = bytes.get();
    if plain > 0 && pfs > 0 {
        assert!(
            pfs >= plain + 2 * (32 + 8),
            "CREATE_CHILD_SA with PFS sent {pfs} bytes, without {plain}"
        );
    }
}
