//! The IKEv2 exchanges of `ike::sa`, driven in memory: two endpoints, a virtual clock, no
//! sockets. Every datagram either side emits is also read by this crate's wire parser and by
//! rusticata's `ipsec-parser` (the outer message always, the SK payload's content too when the
//! key log gives us the keys).

use std::net::SocketAddr;
use std::time::Duration;
use wsock_ipsec::esp::{EspSuite, Mode};
use wsock_ipsec::ike::crypto::{DhGroup, Prf, Role, SkCrypter, SkSuite};
use wsock_ipsec::ike::proposal::IkeSuite;
use wsock_ipsec::ike::sa::*;
use wsock_ipsec::ike::wire::{
    emit_payload_chain, ExchangeType, MessageRepr, NotifyType, PayloadRepr,
};
use wsock_ipsec::natt;
use wsock_ipsec::IpsecError;

const PSK: &[u8] = b"shared secret of the test hosts";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const A_IKE: &str = "127.0.0.1:10500";
const A_NATT: &str = "127.0.0.1:14500";
const B_IKE: &str = "127.0.0.2:10500";
const B_NATT: &str = "127.0.0.2:14500";

fn policy(id: &str) -> IkePolicy {
    IkePolicy::psk(Identity::Fqdn(id.into()), PSK)
}

fn endpoint(ike: &str, natt: &str, responder: Option<IkePolicy>, seed: u64) -> IkeEndpoint {
    println!("endpoint {ike}: SeededIkeRandom seed {seed}");
    let mut c = EndpointConfig::new(addr(ike), addr(natt));
    c.responder = responder;
    c.keylog = true;
    IkeEndpoint::new(c, Box::new(SeededIkeRandom::new(seed))).unwrap()
}

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    AtoB,
    BtoA,
}

/// One datagram on the virtual wire.
#[derive(Debug, Clone)]
struct Sent {
    at: Duration,
    dir: Dir,
    t: Transmit,
}

/// Two endpoints and the wire between them.
struct Pair {
    a: IkeEndpoint,
    b: IkeEndpoint,
    now: Duration,
    log: Vec<Sent>,
    /// Decides whether a datagram is lost (`true` = drop).
    #[allow(clippy::type_complexity)]
    lose: Box<dyn FnMut(&Sent) -> bool>,
    a_events: Vec<IkeEvent>,
    b_events: Vec<IkeEvent>,
}

impl Pair {
    fn new(a: IkeEndpoint, b: IkeEndpoint) -> Self {
        Pair {
            a,
            b,
            now: Duration::ZERO,
            log: Vec::new(),
            lose: Box::new(|_| false),
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    /// Moves every queued datagram once; returns whether anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.a.poll_transmit(self.now) {
            moved = true;
            self.deliver(Dir::AtoB, t);
        }
        while let Some(t) = self.b.poll_transmit(self.now) {
            moved = true;
            self.deliver(Dir::BtoA, t);
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
        moved
    }

    fn deliver(&mut self, dir: Dir, t: Transmit) {
        let (from_ep, to_ep) = match dir {
            Dir::AtoB => (&self.a, &self.b),
            Dir::BtoA => (&self.b, &self.a),
        };
        let from = match t.socket {
            WireSocket::Ike => from_ep.config().local_ike,
            WireSocket::Natt => from_ep.config().local_natt,
        };
        let socket = if t.destination == to_ep.config().local_ike {
            WireSocket::Ike
        } else if t.destination == to_ep.config().local_natt {
            WireSocket::Natt
        } else {
            panic!("datagram to an unknown address {}", t.destination)
        };
        assert_eq!(socket, t.socket, "both ends use the same kind of socket");
        check_decodes(&t, [&self.a, &self.b]);
        let sent = Sent {
            at: self.now,
            dir,
            t,
        };
        self.log.push(sent.clone());
        if (self.lose)(&sent) {
            return;
        }
        let to = match dir {
            Dir::AtoB => &mut self.b,
            Dir::BtoA => &mut self.a,
        };
        to.handle_datagram(self.now, from, socket, &sent.t.contents);
    }

    /// Runs until nothing moves, advancing the virtual clock to each deadline, up to `limit`.
    fn run(&mut self, limit: Duration) {
        loop {
            while self.step() {}
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= limit => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => break,
            }
        }
    }

    /// Delivers until quiet without moving the clock.
    fn settle(&mut self) {
        while self.step() {}
    }
}

/// The IKE message inside a datagram.
fn ike_bytes(t: &Transmit) -> &[u8] {
    match t.socket {
        WireSocket::Ike => &t.contents,
        WireSocket::Natt => match natt::classify(&t.contents).unwrap() {
            natt::NattDatagram::Ike(m) => m,
            other => panic!("not IKE on the NAT-T socket: {other:?}"),
        },
    }
}

/// Our parser and ipsec-parser both read the message; with the key log, the SK content too.
fn check_decodes(t: &Transmit, eps: [&IkeEndpoint; 2]) {
    let bytes = ike_bytes(t);
    let ours = MessageRepr::parse(bytes).expect("our parser reads what we emit");
    let (rest, (hdr, payloads)) =
        ipsec_parser::parse_ikev2_message(bytes).expect("ipsec-parser reads what we emit");
    assert!(rest.is_empty());
    assert_eq!(hdr.init_spi, ours.spi_i);
    assert_eq!(hdr.resp_spi, ours.spi_r);
    assert_eq!(hdr.exch_type.0, ours.exchange.0);
    assert_eq!(hdr.msg_id, ours.message_id);
    let payloads = payloads.expect("ipsec-parser reads the payload chain");
    assert_eq!(payloads.len(), ours.payloads.len() + 1);
    let Some(PayloadRepr::Encrypted { .. }) = ours.payloads.last() else {
        return;
    };
    // Open the SK payload with the keys either endpoint logged for this SA.
    for ep in eps {
        for id in 1..64 {
            let Some(rec) = ep.ike_key_record(IkeSaId(id)) else {
                continue;
            };
            if rec.spi_i != ours.spi_i || rec.spi_r != ours.spi_r {
                continue;
            }
            let (e, a) = if ours.flags.initiator() {
                (&rec.sk_ei, &rec.sk_ai)
            } else {
                (&rec.sk_er, &rec.sk_ar)
            };
            let c = SkCrypter::new(rec.suite, e, a).unwrap();
            let (_, inner) = c
                .open(bytes)
                .expect("the SK payload opens with the logged keys");
            // ipsec-parser 0.7 measures Delete bodies 4 bytes short (it subtracts the generic
            // header twice) and refuses them; our own parser read them above.
            if inner.iter().any(|p| matches!(p, PayloadRepr::Delete(_))) {
                return;
            }
            let mut chain = Vec::new();
            let first = emit_payload_chain(&inner, &mut chain).unwrap();
            let (_, list) = ipsec_parser::parse_ikev2_payload_list(
                &chain,
                ipsec_parser::IkePayloadType(first.0),
            )
            .expect("ipsec-parser reads the SK content");
            assert_eq!(list.expect("inner chain").len(), inner.len() + 1);
            return;
        }
    }
}

fn established(events: &[IkeEvent]) -> Option<(IkeSaId, u64, u64, Identity)> {
    events.iter().find_map(|e| match e {
        IkeEvent::IkeSaEstablished {
            sa,
            spi_i,
            spi_r,
            peer_id,
            ..
        } => Some((*sa, *spi_i, *spi_r, peer_id.clone())),
        _ => None,
    })
}

fn child(events: &[IkeEvent]) -> Option<ChildSa> {
    events.iter().find_map(|e| match e {
        IkeEvent::ChildSaReady(c) => Some((**c).clone()),
        _ => None,
    })
}

fn failure(events: &[IkeEvent]) -> Option<IpsecError> {
    events.iter().find_map(|e| match e {
        IkeEvent::Failed { error, .. } => Some(error.clone()),
        _ => None,
    })
}

/// ESP from one child SA opens at the other and back.
fn esp_both_ways(x: &ChildSa, y: &ChildSa) {
    let now = Duration::from_secs(1);
    let mut tx = x.outbound_sa(now).unwrap();
    let mut rx = y.inbound_sa(now).unwrap();
    let next = if x.mode == Mode::Tunnel { 4 } else { 17 };
    let payload: Vec<u8> = if x.mode == Mode::Tunnel {
        // A minimal IPv4 header + 4 bytes.
        let mut p = vec![
            0x45, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(b"ping");
        p
    } else {
        b"hello through ESP".to_vec()
    };
    let mut packet = Vec::new();
    tx.seal(now, next, &payload, &mut packet).unwrap();
    let opened = rx.open(now, &mut packet).unwrap();
    assert_eq!(opened.next_header, next);
    assert_eq!(&opened.payload[..], &payload[..]);
    let mut tx = y.outbound_sa(now).unwrap();
    let mut rx = x.inbound_sa(now).unwrap();
    let mut packet = Vec::new();
    tx.seal(now, next, &payload, &mut packet).unwrap();
    assert_eq!(
        &rx.open(now, &mut packet).unwrap().payload[..],
        &payload[..]
    );
}

fn assert_children_match(x: &ChildSa, y: &ChildSa) {
    assert_eq!(x.outbound.spi, y.inbound.spi);
    assert_eq!(x.inbound.spi, y.outbound.spi);
    assert_eq!(x.outbound_keys, y.inbound_keys);
    assert_eq!(x.inbound_keys, y.outbound_keys);
    assert_eq!(x.outbound.suite, y.inbound.suite);
    assert_eq!(x.mode, y.mode);
    assert_eq!(x.local_ts, y.remote_ts);
    assert_eq!(x.remote_ts, y.local_ts);
}

#[test]
fn psk_happy_path_transport_mode() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 1),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 2),
    );
    let mut pol = policy("a.test");
    pol.target_name = Some("host/B.test".into());
    let sa =
        p.a.connect(p.now, addr(B_IKE), Some(addr(B_NATT)), pol)
            .unwrap();
    assert_eq!(p.a.sa_state(sa), Some(SaState::InitSent));
    p.settle();
    assert_eq!(p.a.sa_state(sa), Some(SaState::Established));
    let (a_sa, spi_i, spi_r, b_id) = established(&p.a_events).expect("A established");
    let (b_sa, spi_i2, spi_r2, a_id) = established(&p.b_events).expect("B established");
    assert_eq!(a_sa, sa);
    assert_eq!((spi_i, spi_r), (spi_i2, spi_r2));
    assert_eq!(b_id, Identity::Fqdn("b.test".into()));
    assert_eq!(a_id, Identity::Fqdn("a.test".into()));
    let ca = child(&p.a_events).expect("A child");
    let cb = child(&p.b_events).expect("B child");
    assert_eq!(ca.role, Role::Initiator);
    assert_eq!(cb.role, Role::Responder);
    assert_eq!(ca.mode, Mode::Transport);
    assert_eq!(ca.outbound.suite, EspSuite::AesGcm16 { key_bits: 128 });
    assert!(!ca.encapsulated);
    assert_children_match(&ca, &cb);
    esp_both_ways(&ca, &cb);
    // Four messages: IKE_SA_INIT and IKE_AUTH, request and response, on the IKE socket.
    let kinds: Vec<(Dir, u8)> = p
        .log
        .iter()
        .map(|s| {
            (
                s.dir,
                MessageRepr::parse(ike_bytes(&s.t)).unwrap().exchange.0,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (Dir::AtoB, 34),
            (Dir::BtoA, 34),
            (Dir::AtoB, 35),
            (Dir::BtoA, 35)
        ]
    );
    // The key log: both sides hold the same record, in tshark's format.
    let ra = p.a.ike_key_record(a_sa).unwrap();
    let rb = p.b.ike_key_record(b_sa).unwrap();
    assert_eq!(ra, rb);
    let uat = ra.tshark_uat().unwrap();
    let fields: Vec<&str> = uat.split(',').collect();
    assert_eq!(fields[0], format!("{spi_i:016x}"));
    assert_eq!(fields[1], format!("{spi_r:016x}"));
    assert_eq!(fields[2].len(), 72, "SK_ei: 32-byte key + 4-byte salt");
    assert_eq!(fields[4], "\"AES-GCM-256 with 16 octet ICV [RFC5282]\"");
    let esp = ca.esp_key_records(addr(A_IKE).ip());
    assert_eq!(esp[0].spi, cb.inbound.spi);
    assert!(esp[0]
        .tshark_uat()
        .unwrap()
        .contains("AES-GCM with 16 octet ICV"));
    assert_eq!(
        p.a.stats().dropped_malformed + p.b.stats().dropped_malformed,
        0
    );
}

#[test]
fn psk_happy_path_other_way_tunnel_mode_over_natt() {
    // B initiates this time, wants tunnel mode and always-on UDP encapsulation (strongSwan's
    // `encap = yes`), over P-256 and AES-CBC+HMAC for the SK payloads.
    let mut pb = policy("b.test");
    pb.mode = Mode::Tunnel;
    pb.force_encap = true;
    pb.ike_suites = vec![IkeSuite {
        sk: SkSuite::AesCbc {
            key_bits: 256,
            integrity: wsock_ipsec::esp::Integrity::HmacSha256_128,
        },
        prf: Prf::HmacSha256,
        dh: DhGroup::Ecp256,
    }];
    pb.local_ts = vec![host_selector("10.0.0.2".parse().unwrap())];
    pb.remote_ts = vec![host_selector("10.0.0.1".parse().unwrap())];
    let mut pa = policy("a.test");
    pa.ike_suites.extend(pb.ike_suites.clone());
    pa.target_name = Some("b.test".into());
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, Some(pa), 3),
        endpoint(B_IKE, B_NATT, None, 4),
    );
    p.b.connect(p.now, addr(A_IKE), Some(addr(A_NATT)), pb)
        .unwrap();
    p.settle();
    let ca = child(&p.a_events).expect("A child");
    let cb = child(&p.b_events).expect("B child");
    assert_eq!(cb.mode, Mode::Tunnel);
    assert!(ca.encapsulated && cb.encapsulated);
    assert_eq!(cb.peer, addr(A_NATT));
    assert_eq!(ca.peer, addr(B_NATT));
    assert_children_match(&ca, &cb);
    assert_eq!(
        cb.local_ts,
        vec![host_selector("10.0.0.2".parse().unwrap())]
    );
    esp_both_ways(&ca, &cb);
    // IKE_SA_INIT on the IKE sockets, IKE_AUTH on the NAT-T sockets with the marker.
    let sockets: Vec<WireSocket> = p.log.iter().map(|s| s.t.socket).collect();
    assert_eq!(
        sockets,
        [
            WireSocket::Ike,
            WireSocket::Ike,
            WireSocket::Natt,
            WireSocket::Natt
        ]
    );
    assert!(p.log[2].t.contents.starts_with(&[0, 0, 0, 0]));
}

/// A responder with a key per initiator (`IkePolicy::peer_psks`): an initiator that claims a
/// listed identity must hold that key (any ASCII case of the name), others the default key.
#[test]
fn a_responder_picks_the_pre_shared_key_of_the_initiator_it_names() {
    let mut pb = policy("b.test");
    pb.peer_psks = vec![(Identity::Fqdn("a.test".into()), b"key of a".to_vec())];
    let with_key = |id: &str, key: &[u8]| {
        let mut p = policy(id);
        p.psk = key.to_vec();
        p
    };
    for (seed, (initiator, ok)) in [
        (with_key("a.test", b"key of a"), true),
        (with_key("A.TEST", b"key of a"), true),
        (with_key("c.test", PSK), true),
        (with_key("a.test", PSK), false),
        (with_key("c.test", b"key of a"), false),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 300 + 2 * seed as u64;
        let name = format!("{:?}", initiator.local_id);
        let mut p = Pair::new(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(B_IKE, B_NATT, Some(pb.clone()), seed + 1),
        );
        p.a.connect(p.now, addr(B_IKE), None, initiator).unwrap();
        p.run(Duration::from_secs(60));
        if ok {
            assert!(
                child(&p.a_events).is_some() && child(&p.b_events).is_some(),
                "{name}: {:?}",
                p.a_events
            );
        } else {
            assert_eq!(
                failure(&p.a_events),
                Some(IpsecError::IkeAuthFailed),
                "{name}"
            );
            assert_eq!(
                failure(&p.b_events),
                Some(IpsecError::IkeAuthFailed),
                "{name}"
            );
        }
    }
}

#[test]
fn wrong_psk_fails_both_sides_with_auth_fail() {
    let mut pb = policy("b.test");
    pb.psk = b"another secret".to_vec();
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 5),
        endpoint(B_IKE, B_NATT, Some(pb), 6),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.run(Duration::from_secs(60));
    let ea = failure(&p.a_events).expect("A failed");
    let eb = failure(&p.b_events).expect("B failed");
    assert_eq!(ea, IpsecError::IkeAuthFailed);
    assert_eq!(eb, IpsecError::IkeAuthFailed);
    assert_eq!(ea.win32_code(), 13801);
    assert_eq!(eb.win32_code(), 13801);
    assert!(child(&p.a_events).is_none() && child(&p.b_events).is_none());
    assert_eq!(p.a.sa_state(sa), None);
    assert_eq!(p.b.half_open_count(), 0);
    // The responder's answer carried AUTHENTICATION_FAILED and nothing was retransmitted.
    assert_eq!(p.log.len(), 4);
    assert_eq!(p.a.stats().retransmissions, 0);
}

#[test]
fn target_name_mismatch_is_refused() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 7),
        endpoint(B_IKE, B_NATT, Some(policy("mallory.test")), 8),
    );
    let mut pa = policy("a.test");
    pa.target_name = Some("host/b.test".into());
    p.a.connect(p.now, addr(B_IKE), None, pa).unwrap();
    p.run(Duration::from_secs(60));
    let e = failure(&p.a_events).expect("A refused B");
    assert_eq!(
        e,
        IpsecError::IkePeerIdMismatch {
            peer: "mallory.test".into(),
            target: "host/b.test".into()
        }
    );
    assert_eq!(e.win32_code(), 13801);
    // The initiator told the responder, which dropped its SA.
    assert!(p
        .b_events
        .iter()
        .any(|e| matches!(e, IkeEvent::IkeSaDeleted { by_peer: true, .. })));
}

#[test]
fn silent_responder_times_out_after_the_schedule() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 9),
        endpoint(B_IKE, B_NATT, None, 10),
    );
    p.lose = Box::new(|_| true);
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.run(Duration::from_secs(120));
    let times: Vec<u128> = p.log.iter().map(|s| s.at.as_millis()).collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500]);
    // Every copy is the same datagram.
    assert!(p.log.iter().all(|s| s.t == p.log[0].t));
    let e = failure(&p.a_events).expect("timed out");
    assert_eq!(e, IpsecError::IkeTimedOut { sends: 5 });
    assert_eq!(e.win32_code(), 13805);
    assert_eq!(p.now, Duration::from_millis(15_500));
    assert_eq!(p.a.stats().retransmissions, 4);
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn lost_responses_are_answered_from_the_cache() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 11),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 12),
    );
    // Lose the first IKE_SA_INIT response and the first IKE_AUTH response.
    let mut lost = Vec::new();
    p.lose = Box::new(move |s: &Sent| {
        let ex = MessageRepr::parse(ike_bytes(&s.t)).unwrap().exchange;
        if s.dir == Dir::BtoA && !lost.contains(&ex) {
            lost.push(ex);
            return true;
        }
        false
    });
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.run(Duration::from_secs(60));
    assert!(child(&p.a_events).is_some() && child(&p.b_events).is_some());
    assert_children_match(&child(&p.a_events).unwrap(), &child(&p.b_events).unwrap());
    let by = |dir: Dir, ex: ExchangeType| -> Vec<Sent> {
        p.log
            .iter()
            .filter(|s| s.dir == dir && MessageRepr::parse(ike_bytes(&s.t)).unwrap().exchange == ex)
            .cloned()
            .collect()
    };
    for ex in [ExchangeType::IKE_SA_INIT, ExchangeType::IKE_AUTH] {
        let req = by(Dir::AtoB, ex);
        let resp = by(Dir::BtoA, ex);
        assert_eq!(req.len(), 2, "{ex:?} request sent twice");
        assert_eq!(
            req[0].t, req[1].t,
            "{ex:?} retransmission is byte-identical"
        );
        assert_eq!(req[1].at - req[0].at, Duration::from_millis(500));
        assert_eq!(resp.len(), 2);
        assert_eq!(
            resp[0].t, resp[1].t,
            "{ex:?} cached response is byte-identical"
        );
    }
    assert_eq!(p.b.stats().responses_from_cache, 2);
    assert_eq!(p.a.stats().retransmissions, 2);
}

#[test]
fn invalid_ke_payload_retry_with_the_group_asked_for() {
    let p256 = IkeSuite {
        sk: SkSuite::AesGcm16 { key_bits: 256 },
        prf: Prf::HmacSha256,
        dh: DhGroup::Ecp256,
    };
    let mut pb = policy("b.test");
    pb.ike_suites = vec![p256];
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 13),
        endpoint(B_IKE, B_NATT, Some(pb), 14),
    );
    // A guesses Curve25519 first (the default policy's first suite).
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.settle();
    assert!(child(&p.a_events).is_some());
    assert_eq!(p.b.stats().invalid_ke_sent, 1);
    let msgs: Vec<MessageRepr> = p
        .log
        .iter()
        .map(|s| MessageRepr::parse(ike_bytes(&s.t)).unwrap())
        .collect();
    let ke_group = |m: &MessageRepr| {
        m.payloads.iter().find_map(|p| match p {
            PayloadRepr::Ke { group, .. } => Some(*group),
            _ => None,
        })
    };
    assert_eq!(ke_group(&msgs[0]), Some(31));
    let PayloadRepr::Notify(n) = &msgs[1].payloads[0] else {
        panic!("INVALID_KE answer")
    };
    assert_eq!(
        (n.kind, &n.data[..]),
        (NotifyType::INVALID_KE_PAYLOAD, &[0u8, 19][..])
    );
    assert_eq!(msgs[1].spi_r, 0, "the answer keeps no state");
    assert_eq!(ke_group(&msgs[2]), Some(19));
    assert_eq!(msgs[2].spi_i, msgs[0].spi_i);

    // A responder asking for a group the initiator never offered fails it with 13865.
    let mut a = endpoint(A_IKE, A_NATT, None, 15);
    let sa = a
        .connect(Duration::ZERO, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    let req = MessageRepr::parse(&a.poll_transmit(Duration::ZERO).unwrap().contents).unwrap();
    let answer = MessageRepr {
        spi_i: req.spi_i,
        spi_r: 0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: wsock_ipsec::ike::wire::Flags::new(false, true),
        message_id: 0,
        payloads: vec![PayloadRepr::Notify(wsock_ipsec::ike::wire::Notify::new(
            NotifyType::INVALID_KE_PAYLOAD,
            20u16.to_be_bytes().to_vec(),
        ))],
    };
    a.handle_datagram(
        Duration::ZERO,
        addr(B_IKE),
        WireSocket::Ike,
        &answer.emit().unwrap(),
    );
    let e = failure(&std::iter::from_fn(|| a.poll_event()).collect::<Vec<_>>()).unwrap();
    assert_eq!(e, IpsecError::IkeInvalidGroup(20));
    assert_eq!(e.win32_code(), 13865);
    assert_eq!(a.sa_state(sa), None);
}

#[test]
fn cookies_under_an_init_flood_and_existing_sas_keep_working() {
    let mut cfg = EndpointConfig::new(addr(B_IKE), addr(B_NATT));
    cfg.responder = Some(policy("b.test"));
    cfg.cookie_threshold = 4;
    cfg.keylog = true;
    println!("responder: SeededIkeRandom seed 17");
    let b = IkeEndpoint::new(cfg, Box::new(SeededIkeRandom::new(17))).unwrap();
    let mut p = Pair::new(endpoint(A_IKE, A_NATT, None, 18), b);
    // An SA established before the flood.
    let old =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    assert_eq!(p.a.sa_state(old), Some(SaState::Established));
    // The flood: 20 initiators that never complete (their answers go nowhere).
    println!("flood: SeededIkeRandom seed 19");
    let mut flooder = IkeEndpoint::new(
        EndpointConfig::new(addr("127.0.0.9:500"), addr("127.0.0.9:4500")),
        Box::new(SeededIkeRandom::new(19)),
    )
    .unwrap();
    for _ in 0..20 {
        flooder
            .connect(p.now, addr(B_IKE), None, policy("flood.test"))
            .unwrap();
    }
    let mut answers = Vec::new();
    while let Some(t) = flooder.poll_transmit(p.now) {
        p.b.handle_datagram(p.now, addr("127.0.0.9:500"), WireSocket::Ike, &t.contents);
        while let Some(r) = p.b.poll_transmit(p.now) {
            answers.push(MessageRepr::parse(&r.contents).unwrap());
        }
    }
    assert_eq!(p.b.half_open_count(), 4);
    assert_eq!(p.b.stats().cookies_sent, 16);
    let cookies = answers
        .iter()
        .filter(
            |m| matches!(&m.payloads[..], [PayloadRepr::Notify(n)] if n.kind == NotifyType::COOKIE),
        )
        .count();
    assert_eq!(cookies, 16);
    // A new, honest initiator is asked for a cookie, repeats with it, and gets through.
    let new =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    assert_eq!(p.a.sa_state(new), Some(SaState::Established));
    let retry = p
        .log
        .iter()
        .rev()
        .filter(|s| s.dir == Dir::AtoB)
        .map(|s| MessageRepr::parse(ike_bytes(&s.t)).unwrap())
        .find(|m| m.exchange == ExchangeType::IKE_SA_INIT)
        .unwrap();
    assert!(
        matches!(&retry.payloads[0], PayloadRepr::Notify(n) if n.kind == NotifyType::COOKIE),
        "COOKIE first in the repeated request"
    );
    // The old SA still answers.
    p.a.check_liveness(p.now, old).unwrap();
    p.settle();
    assert!(p
        .a_events
        .contains(&IkeEvent::LivenessConfirmed { sa: old }));
    // The flood's half-open SAs are reaped after the timeout.
    p.now += Duration::from_secs(31);
    p.b.handle_timeout(p.now);
    assert_eq!(p.b.half_open_count(), 0);
    assert_eq!(p.b.stats().half_open_reaped, 4);
}

#[test]
fn delete_child_then_ike_sa() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 20),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 21),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let ca = child(&p.a_events).unwrap();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    // An unknown SPI is refused without touching the wire.
    assert!(matches!(
        p.a.delete_child(p.now, sa, ca.inbound.spi ^ 1),
        Err(IpsecError::IkeWrongState(_))
    ));
    p.a.delete_child(p.now, sa, ca.inbound.spi).unwrap();
    p.settle();
    let deleted = |events: &[IkeEvent]| {
        events.iter().find_map(|e| match e {
            IkeEvent::ChildSaDeleted {
                inbound_spi,
                outbound_spi,
                by_peer,
                ..
            } => Some((*inbound_spi, *outbound_spi, *by_peer)),
            _ => None,
        })
    };
    assert_eq!(
        deleted(&p.a_events),
        Some((ca.inbound.spi, ca.outbound.spi, false))
    );
    assert_eq!(
        deleted(&p.b_events),
        Some((ca.outbound.spi, ca.inbound.spi, true))
    );
    // Liveness, then the IKE SA goes.
    p.b.check_liveness(p.now, b_sa).unwrap();
    p.settle();
    assert!(p
        .b_events
        .contains(&IkeEvent::LivenessConfirmed { sa: b_sa }));
    p.a.delete_ike_sa(p.now, sa).unwrap();
    p.settle();
    assert!(p
        .a_events
        .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: false }));
    assert!(p.b_events.contains(&IkeEvent::IkeSaDeleted {
        sa: b_sa,
        by_peer: true
    }));
    assert_eq!(p.a.sa_state(sa), None);
    assert_eq!(p.b.sa_state(b_sa), None);
    assert!(p.a.check_liveness(p.now, sa).is_err());
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn a_dead_peer_fails_the_established_sa() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 22),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 23),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    p.lose = Box::new(|_| true);
    p.a.check_liveness(p.now, sa).unwrap();
    p.run(Duration::from_secs(120));
    let e = failure(&p.a_events).unwrap();
    assert_eq!(e, IpsecError::IkePeerDead);
    assert_eq!(e.win32_code(), 13886);
}

/// SplitMix64, for the mutations below.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn hostile_datagrams_are_dropped_and_counted() {
    let seed = 0x05ee_d1ce;
    println!("mutation seed {seed:#x}");
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 24),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 25),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let genuine: Vec<Sent> = p.log.clone();
    let mut s = seed;
    for i in 0..3000u32 {
        let g = &genuine[(next(&mut s) % genuine.len() as u64) as usize];
        let mut d = g.t.contents.clone();
        match i % 4 {
            0 => {
                let at = (next(&mut s) % d.len() as u64) as usize;
                d[at] ^= 1 << (next(&mut s) % 8);
            }
            1 => d.truncate((next(&mut s) % d.len() as u64) as usize),
            2 => {
                d = (0..(next(&mut s) % 300))
                    .map(|_| next(&mut s) as u8)
                    .collect()
            }
            _ => {
                let at = (next(&mut s) % d.len() as u64) as usize;
                d[at] = next(&mut s) as u8;
                d.extend((0..next(&mut s) % 8).map(|_| next(&mut s) as u8));
            }
        }
        let (to, from) = match g.dir {
            Dir::AtoB => (&mut p.b, addr(A_IKE)),
            Dir::BtoA => (&mut p.a, addr(B_IKE)),
        };
        let socket = if i % 7 == 0 {
            WireSocket::Natt
        } else {
            g.t.socket
        };
        to.handle_datagram(p.now, from, socket, &d);
        while to.poll_transmit(p.now).is_some() {}
    }
    let dropped = |st: &IkeStats| {
        st.dropped_malformed
            + st.dropped_unknown_sa
            + st.dropped_unexpected
            + st.dropped_unauthentic
    };
    let (sa_, sb) = (*p.a.stats(), *p.b.stats());
    println!("A {sa_:?}\nB {sb:?}");
    assert!(dropped(&sa_) + dropped(&sb) > 2000);
    assert!(sb.dropped_malformed > 0 && sb.dropped_unexpected > 0);
    assert!(sa_.dropped_malformed > 0 && sa_.dropped_unexpected > 0);
    // The established SA survived all of it.
    assert_eq!(p.a.sa_state(sa), Some(SaState::Established));
    while p.a.poll_event().is_some() {}
    while p.b.poll_event().is_some() {}
    p.a_events.clear();
    // A request in the window whose SK payload was tampered with is dropped as unauthentic.
    p.a.check_liveness(p.now, sa).unwrap();
    let genuine = p.a.poll_transmit(p.now).unwrap();
    let mut forged = genuine.contents.clone();
    *forged.last_mut().unwrap() ^= 0x80;
    let before = p.b.stats().dropped_unauthentic;
    p.b.handle_datagram(p.now, addr(A_IKE), WireSocket::Ike, &forged);
    assert_eq!(p.b.stats().dropped_unauthentic, before + 1);
    assert!(p.b.poll_transmit(p.now).is_none(), "no answer to a forgery");
    p.deliver(Dir::AtoB, genuine);
    p.settle();
    assert!(p.a_events.contains(&IkeEvent::LivenessConfirmed { sa }));
}

#[test]
fn identities_and_target_names() {
    let f = Identity::Fqdn("Host.Example".into());
    assert!(f.matches_target("HOST/host.example."));
    assert!(!f.matches_target("host/"));
    assert!(!f.matches_target("example"));
    let v6 = Identity::Ipv6("2001:db8::1".parse().unwrap());
    assert!(v6.matches_target("2001:db8:0::1"));
    assert!(!v6.matches_target("2001:db8::2"));
    for id in [
        f,
        v6,
        Identity::Rfc822("u@example".into()),
        Identity::KeyId(vec![1, 2]),
    ] {
        assert_eq!(Identity::from_wire(&id.to_wire()), id);
    }
}

#[test]
fn api_misuse_is_a_typed_error() {
    let mut a = endpoint(A_IKE, A_NATT, None, 26);
    let mut empty = policy("a.test");
    empty.esp_suites.clear();
    assert!(matches!(
        a.connect(Duration::ZERO, addr(B_IKE), None, empty),
        Err(IpsecError::InvalidConfig(_))
    ));
    let sa = a
        .connect(Duration::ZERO, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    // Not established yet: no INFORMATIONAL.
    assert_eq!(
        a.check_liveness(Duration::ZERO, sa),
        Err(IpsecError::IkeWrongState("IKE SA not established"))
    );
    assert!(a.delete_ike_sa(Duration::ZERO, IkeSaId(999)).is_err());
}

fn all_children(events: &[IkeEvent]) -> Vec<ChildSa> {
    events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::ChildSaReady(c) => Some((**c).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn additional_child_sas_from_either_side() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 30),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 31),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    // Window size 1: the second request waits for the first answer.
    p.a.create_child(p.now, sa).unwrap();
    p.a.check_liveness(p.now, sa).unwrap();
    assert!(p.a.poll_transmit(p.now).is_some());
    assert!(p.a.poll_transmit(p.now).is_none(), "one request in flight");
    // (That request was taken off the wire: the retransmission brings it back.)
    p.run(Duration::from_secs(10));
    assert!(p.a_events.contains(&IkeEvent::LivenessConfirmed { sa }));
    // The original responder asks for one too.
    p.b.create_child(p.now, b_sa).unwrap();
    p.settle();
    let ca = all_children(&p.a_events);
    let cb = all_children(&p.b_events);
    assert_eq!((ca.len(), cb.len()), (3, 3));
    for (x, y) in ca.iter().zip(&cb) {
        assert_children_match(x, y);
        esp_both_ways(x, y);
        assert_eq!(x.replaces, None);
    }
    let listed = p.a.summaries();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, sa);
    assert_eq!(listed[0].state, SaState::Established);
    assert_eq!(listed[0].peer_id, Some(Identity::Fqdn("b.test".into())));
    assert_eq!(
        listed[0].children,
        ca.iter()
            .map(|c| (c.inbound.spi, c.outbound.spi))
            .collect::<Vec<_>>()
    );
    // Fresh SPIs and fresh keys for every pair.
    assert_ne!(ca[0].inbound.spi, ca[1].inbound.spi);
    assert_ne!(ca[0].outbound_keys, ca[1].outbound_keys);
    assert_ne!(ca[1].outbound_keys, ca[2].outbound_keys);
    // Requester and responder roles of the exchanges.
    assert_eq!(ca[1].role, Role::Initiator);
    assert_eq!(ca[2].role, Role::Responder);
    // Message ids: A's requests 0, 1 (IKE_SA_INIT, IKE_AUTH), 2 (CREATE_CHILD_SA), 3 (liveness);
    // B's first request is 0.
    let ids: Vec<(Dir, u8, u32, bool)> = p
        .log
        .iter()
        .map(|s| {
            let m = MessageRepr::parse(ike_bytes(&s.t)).unwrap();
            (s.dir, m.exchange.0, m.message_id, m.flags.response())
        })
        .filter(|(_, _, _, resp)| !resp)
        .collect();
    assert_eq!(
        ids,
        [
            (Dir::AtoB, 34, 0, false),
            (Dir::AtoB, 35, 1, false),
            // The first copy was taken off the wire above; this is the retransmission.
            (Dir::AtoB, 36, 2, false),
            (Dir::AtoB, 37, 3, false),
            (Dir::BtoA, 36, 0, false),
        ]
    );
}

#[test]
fn child_rekey_replaces_and_deletes_the_old_pair() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 32),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 33),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let old_a = child(&p.a_events).unwrap();
    let old_b = child(&p.b_events).unwrap();
    assert!(p.a.rekey_child(p.now, sa, 12345).is_err());
    p.a.rekey_child(p.now, sa, old_a.inbound.spi).unwrap();
    p.settle();
    let new_a = all_children(&p.a_events).pop().unwrap();
    let new_b = all_children(&p.b_events).pop().unwrap();
    assert_children_match(&new_a, &new_b);
    esp_both_ways(&new_a, &new_b);
    assert_eq!(new_a.replaces, Some(old_a.inbound.spi));
    assert_eq!(new_b.replaces, Some(old_b.inbound.spi));
    assert_ne!(new_a.outbound_keys, old_a.outbound_keys);
    let deleted = |events: &[IkeEvent]| -> Vec<(u32, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                IkeEvent::ChildSaDeleted {
                    inbound_spi,
                    by_peer,
                    ..
                } => Some((*inbound_spi, *by_peer)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(deleted(&p.a_events), [(old_a.inbound.spi, false)]);
    assert_eq!(deleted(&p.b_events), [(old_b.inbound.spi, true)]);
    // The new pair can be rekeyed in turn, and the old SPI is gone.
    assert!(p.a.rekey_child(p.now, sa, old_a.inbound.spi).is_err());
    p.a.rekey_child(p.now, sa, new_a.inbound.spi).unwrap();
    p.settle();
    assert_eq!(all_children(&p.a_events).len(), 3);
}

// ------------------------------------------------------------------------------------------------
// tshark as the oracle: a whole conversation of ours, decrypted with the key log.

/// Ethernet / IPv4 / UDP framing (UDP checksum 0, as RFC 3948 allows for ESP-in-UDP).
fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8], ident: u16) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only here")
    };
    let mut f = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(28 + payload.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&s.ip().octets());
    ip.extend_from_slice(&d.ip().octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&s.port().to_be_bytes());
    f.extend_from_slice(&d.port().to_be_bytes());
    f.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A classic pcap file (Ethernet link type), one frame per millisecond.
fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&4u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&65535u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap();
        p.extend_from_slice(&1_800_000_000u32.to_le_bytes());
        p.extend_from_slice(&(u32::try_from(i).unwrap() * 1000).to_le_bytes());
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(f);
    }
    p
}

fn oracle() -> Option<std::path::PathBuf> {
    use std::process::Command;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/oracles/esp_pcap_check.py");
    let have = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !script.exists() {
        println!("SKIPPED: oracle script {} not found", script.display());
        return None;
    }
    if !have("tshark", &["--version"]) {
        println!("SKIPPED: tshark not installed (apt-get install tshark)");
        return None;
    }
    if !have("python3", &["-c", "import cryptography"]) {
        println!("SKIPPED: python3 with `cryptography` not available");
        return None;
    }
    Some(script)
}

/// Runs a whole conversation (IKE_SA_INIT, IKE_AUTH on NAT-T, ESP both ways, CREATE_CHILD_SA,
/// a child rekey, liveness, an IKE SA rekey, Delete) and has tshark decrypt every SK payload and every ESP frame.
fn tshark_conversation(label: &str, ike: IkeSuite, esp: EspSuite, seed: u64) {
    let Some(script) = oracle() else { return };
    const A: &str = "127.0.0.1:500";
    const AN: &str = "127.0.0.1:4500";
    const B: &str = "127.0.0.2:500";
    const BN: &str = "127.0.0.2:4500";
    let mut pa = policy("a.test");
    pa.force_encap = true;
    pa.ike_suites = vec![ike];
    pa.esp_suites = vec![(esp, false)];
    let mut pb = policy("b.test");
    pb.ike_suites = vec![ike];
    pb.esp_suites = vec![(esp, false)];
    let mut p = Pair::new(
        endpoint(A, AN, None, seed),
        endpoint(B, BN, Some(pb), seed + 1),
    );
    let sa = p.a.connect(p.now, addr(B), Some(addr(BN)), pa).unwrap();
    p.settle();
    p.a.create_child(p.now, sa).unwrap();
    p.settle();
    let first = child(&p.a_events).unwrap();
    p.a.rekey_child(p.now, sa, first.inbound.spi).unwrap();
    p.settle();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    p.b.check_liveness(p.now, b_sa).unwrap();
    p.settle();
    // Rekey the IKE SA; the new one carries on.
    p.a.rekey_ike_sa(p.now, sa).unwrap();
    p.settle();
    let sa2 = p.a.summaries()[0].id;
    assert_ne!(sa2, sa);
    let b_sa2 = p.b.summaries()[0].id;
    p.b.check_liveness(p.now, b_sa2).unwrap();
    p.settle();
    // Frames in order: every IKE datagram, then ESP on every child pair, both ways.
    let from = |s: &Sent| -> (SocketAddr, SocketAddr) {
        let (src, dst) = match (s.dir, s.t.socket) {
            (Dir::AtoB, WireSocket::Ike) => (A, B),
            (Dir::AtoB, WireSocket::Natt) => (AN, BN),
            (Dir::BtoA, WireSocket::Ike) => (B, A),
            (Dir::BtoA, WireSocket::Natt) => (BN, AN),
        };
        (addr(src), addr(dst))
    };
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for (i, s) in p.log.iter().enumerate() {
        let (src, dst) = from(s);
        frames.push(udp_frame(src, dst, &s.t.contents, i as u16));
    }
    let ca = all_children(&p.a_events);
    let cb = all_children(&p.b_events);
    assert_eq!((ca.len(), cb.len()), (3, 3));
    let mut records = Vec::new();
    let mut esp_frames = 0;
    // Inner UDP 40001 -> 9999 with a payload (transport mode, checksum 0).
    let mut inner = vec![0x9c, 0x41, 0x27, 0x0f, 0, 18, 0, 0];
    inner.extend_from_slice(b"hello esp!");
    let a_to_b = ca.iter().map(|x| (x, addr(AN), addr(BN)));
    let b_to_a = cb.iter().map(|x| (x, addr(BN), addr(AN)));
    for (x, xa, ya) in a_to_b.chain(b_to_a) {
        let mut tx = x.outbound_sa(p.now).unwrap();
        let mut pkt = Vec::new();
        tx.seal(p.now, 17, &inner, &mut pkt).unwrap();
        frames.push(udp_frame(xa, ya, &pkt, 1000 + esp_frames));
        esp_frames += 1;
        records.push(x.esp_key_records(xa.ip())[0].json().unwrap());
    }
    // Delete the IKE SA last.
    let before = p.log.len();
    p.a.delete_ike_sa(p.now, sa2).unwrap();
    p.settle();
    for (i, s) in p.log[before..].iter().enumerate() {
        let (src, dst) = from(s);
        frames.push(udp_frame(src, dst, &s.t.contents, 2000 + i as u16));
    }
    assert!(p.b_events.contains(&IkeEvent::IkeSaDeleted {
        sa: b_sa2,
        by_peer: true
    }));
    let ike_rec = [sa, sa2]
        .map(|id| p.a.ike_key_record(id).unwrap().json().unwrap())
        .join(", ");
    let keyfile = format!(
        "{{\"esp_sa\": [{}], \"ikev2\": [{ike_rec}], \"check_checksums\": false, \"expect\": {{\"frames\": {}, \"ike_sa_init\": 2, \"ike_auth_decrypted\": 2, \"esp_decrypted\": {esp_frames}, \"inner_udp_ports\": [[40001, 9999]]}}}}",
        records.join(", "),
        frames.len()
    );
    let dir = std::env::temp_dir().join(format!("wsock-ike-tshark-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap_path, key_path) = (dir.join("ike.pcap"), dir.join("keys.json"));
    std::fs::write(&pcap_path, pcap_file(&frames)).unwrap();
    std::fs::write(&key_path, &keyfile).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(["check", "--pcap"])
        .arg(&pcap_path)
        .arg("--keys")
        .arg(&key_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && text.contains("ORACLE OK"),
        "tshark oracle failed ({label}):\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every exchange type we speak is in the capture.
    for ex in [
        "IKE_SA_INIT",
        "IKE_AUTH",
        "CREATE_CHILD_SA",
        "INFORMATIONAL",
    ] {
        assert!(text.contains(ex), "{ex} missing from the dissection");
    }
}

#[test]
fn tshark_decrypts_a_whole_conversation_gcm() {
    tshark_conversation(
        "gcm",
        IkeSuite {
            sk: SkSuite::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha256,
            dh: DhGroup::Curve25519,
        },
        EspSuite::AesGcm16 { key_bits: 128 },
        40,
    );
}

#[test]
fn tshark_decrypts_a_whole_conversation_cbc() {
    let integrity = wsock_ipsec::esp::Integrity::HmacSha256_128;
    tshark_conversation(
        "cbc",
        IkeSuite {
            sk: SkSuite::AesCbc {
                key_bits: 128,
                integrity,
            },
            prf: Prf::HmacSha256,
            dh: DhGroup::Ecp256,
        },
        EspSuite::AesCbc {
            key_bits: 128,
            integrity,
        },
        42,
    );
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes, on either socket, to a responder and to an initiator waiting for
        /// IKE_SA_INIT (optionally dressed with the SA's SPI and a valid header): never a
        /// panic, every datagram counted, and plain noise changes nothing.
        #[test]
        fn arbitrary_datagrams_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            natt in any::<bool>(),
            header in any::<bool>(),
        ) {
            let mut b = endpoint(B_IKE, B_NATT, Some(policy("b.test")), 50);
            let mut a = endpoint(A_IKE, A_NATT, None, 51);
            let sa = a.connect(Duration::ZERO, addr(B_IKE), None, policy("a.test")).unwrap();
            let (spi_i, _) = a.spis(sa).unwrap();
            let mut d = data.clone();
            if header && d.len() >= 28 {
                // Make it look like an IKEv2 message for the SA: SPI, version, length.
                d[..8].copy_from_slice(&spi_i.to_be_bytes());
                d[17] = 0x20;
                let len = d.len() as u32;
                d[24..28].copy_from_slice(&len.to_be_bytes());
            }
            if natt {
                let mut m = vec![0, 0, 0, 0];
                m.extend_from_slice(&d);
                d = m;
            }
            let socket = if natt { WireSocket::Natt } else { WireSocket::Ike };
            b.handle_datagram(Duration::ZERO, addr(A_IKE), socket, &d);
            a.handle_datagram(Duration::ZERO, addr(B_IKE), socket, &d);
            prop_assert_eq!(a.stats().received, 1);
            prop_assert_eq!(b.stats().received, 1);
            // Random bytes are never mistaken for an answer: the initiator keeps waiting.
            if !header {
                prop_assert!(a.poll_event().is_none());
                prop_assert_eq!(a.sa_state(sa), Some(SaState::InitSent));
                prop_assert_eq!(b.half_open_count(), 0);
            }
        }
    }
}

#[test]
fn simultaneous_rekey_keeps_exactly_one_new_pair() {
    let mut winners = Vec::new();
    for seed in [60u64, 62, 64, 66, 68, 70] {
        let mut p = Pair::new(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(B_IKE, B_NATT, Some(policy("b.test")), seed + 1),
        );
        let sa =
            p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
                .unwrap();
        p.settle();
        let (b_sa, ..) = established(&p.b_events).unwrap();
        let old_a = child(&p.a_events).unwrap();
        let old_b = child(&p.b_events).unwrap();
        // Both sides rekey the same pair at once.
        p.a.rekey_child(p.now, sa, old_a.inbound.spi).unwrap();
        p.b.rekey_child(p.now, b_sa, old_b.inbound.spi).unwrap();
        p.settle();
        let pairs = |ep: &IkeEndpoint| ep.summaries()[0].children.clone();
        let (la, lb) = (pairs(&p.a), pairs(&p.b));
        assert_eq!(la.len(), 1, "seed {seed}: one pair left on A: {la:?}");
        assert_eq!(lb.len(), 1, "seed {seed}: one pair left on B: {lb:?}");
        assert_eq!(la[0], (lb[0].1, lb[0].0), "both keep the same pair");
        assert_ne!(la[0].0, old_a.inbound.spi);
        // It carries traffic.
        let survivor = |events: &[IkeEvent], spi: u32| {
            all_children(events)
                .into_iter()
                .find(|c| c.inbound.spi == spi)
                .unwrap()
        };
        let (sa_, sb) = (
            survivor(&p.a_events, la[0].0),
            survivor(&p.b_events, lb[0].0),
        );
        assert_children_match(&sa_, &sb);
        esp_both_ways(&sa_, &sb);
        // Whose exchange survived (the one that did not use the lowest nonce).
        winners.push(sa_.role);
    }
    println!("surviving exchange initiated by A: {winners:?}");
    assert!(winners.contains(&Role::Initiator) && winners.contains(&Role::Responder));
}

#[test]
fn ike_sa_rekey_from_either_side_moves_the_children() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 80),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 81),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
    let old_keys = p.a.ike_key_record(sa).unwrap().clone();
    // A rekeys the IKE SA.
    p.a.rekey_ike_sa(p.now, sa).unwrap();
    p.settle();
    let rekeyed = |events: &[IkeEvent], old: IkeSaId| {
        events.iter().find_map(|e| match e {
            IkeEvent::IkeSaRekeyed { old: o, new } if *o == old => Some(*new),
            _ => None,
        })
    };
    let a2 = rekeyed(&p.a_events, sa).expect("A rekeyed");
    let b2 = rekeyed(&p.b_events, b_sa).expect("B rekeyed");
    // The old SAs are gone, the new ones hold the child SA, with new SPIs and keys.
    assert_eq!(p.a.sa_state(sa), None);
    assert_eq!(p.b.sa_state(b_sa), None);
    assert!(p
        .a_events
        .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: false }));
    assert!(p.b_events.contains(&IkeEvent::IkeSaDeleted {
        sa: b_sa,
        by_peer: true
    }));
    let (sa2, sb2) = (&p.a.summaries()[0], &p.b.summaries()[0]);
    assert_eq!((sa2.id, sb2.id), (a2, b2));
    assert_eq!((sa2.spi_i, sa2.spi_r), (sb2.spi_i, sb2.spi_r));
    assert_eq!(sa2.children, [(ca.inbound.spi, ca.outbound.spi)]);
    assert_eq!(sb2.children, [(cb.inbound.spi, cb.outbound.spi)]);
    let new_keys = p.a.ike_key_record(a2).unwrap();
    assert_eq!(new_keys, p.b.ike_key_record(b2).unwrap());
    assert_ne!(new_keys.sk_ei, old_keys.sk_ei);
    assert_ne!(new_keys.spi_i, old_keys.spi_i);
    // The new SA works both ways; the old child SA still carries traffic.
    p.a.check_liveness(p.now, a2).unwrap();
    p.b.check_liveness(p.now, b2).unwrap();
    p.settle();
    assert!(p.a_events.contains(&IkeEvent::LivenessConfirmed { sa: a2 }));
    assert!(p.b_events.contains(&IkeEvent::LivenessConfirmed { sa: b2 }));
    esp_both_ways(&ca, &cb);
    // Now B (the original responder) rekeys: it becomes the initiator of the newest SA.
    p.b.rekey_ike_sa(p.now, b2).unwrap();
    p.settle();
    let a3 = rekeyed(&p.a_events, a2).expect("A rekeyed again");
    let b3 = rekeyed(&p.b_events, b2).expect("B rekeyed again");
    let (sa3, sb3) = (&p.a.summaries()[0], &p.b.summaries()[0]);
    assert_eq!((sa3.id, sb3.id), (a3, b3));
    assert_eq!(sb3.role, Role::Initiator);
    assert_eq!(sa3.role, Role::Responder);
    // Children can still be made and deleted under the newest SA, from either side.
    p.a.create_child(p.now, a3).unwrap();
    p.settle();
    p.b.delete_child(p.now, b3, cb.inbound.spi).unwrap();
    p.settle();
    assert_eq!(p.a.summaries()[0].children.len(), 1);
    assert_eq!(p.b.summaries()[0].children.len(), 1);
    assert_eq!(p.a.summaries().len(), 1);
    assert_eq!(p.b.summaries().len(), 1);
}

#[test]
fn create_child_with_pfs() {
    let ke_in = |s: &Sent| {
        MessageRepr::parse(ike_bytes(&s.t))
            .ok()
            .filter(|m| m.exchange == ExchangeType::CREATE_CHILD_SA)
            .map(|m| m.message_id)
    };
    // Both sides want PFS with P-256.
    let mut pa = policy("a.test");
    pa.pfs = Some(DhGroup::Ecp256);
    let mut pb = policy("b.test");
    pb.pfs = Some(DhGroup::Ecp256);
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 90),
        endpoint(B_IKE, B_NATT, Some(pb), 91),
    );
    let sa = p.a.connect(p.now, addr(B_IKE), None, pa).unwrap();
    p.settle();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    p.a.create_child(p.now, sa).unwrap();
    p.settle();
    p.b.create_child(p.now, b_sa).unwrap();
    p.settle();
    let (ca, cb) = (all_children(&p.a_events), all_children(&p.b_events));
    assert_eq!((ca.len(), cb.len()), (3, 3));
    for (x, y) in ca.iter().zip(&cb) {
        assert_children_match(x, y);
        esp_both_ways(x, y);
    }
    assert_eq!(p.log.iter().filter_map(ke_in).count(), 4);
    // The KE payloads really travel (decrypt with the key log and look).
    let rec = p.a.ike_key_record(sa).unwrap();
    let kes = p
        .log
        .iter()
        .filter(|s| ke_in(s).is_some())
        .filter(|s| {
            let (e, a) = if s.dir == Dir::AtoB {
                (&rec.sk_ei, &rec.sk_ai)
            } else {
                (&rec.sk_er, &rec.sk_ar)
            };
            let (_, inner) = SkCrypter::new(rec.suite, e, a)
                .unwrap()
                .open(ike_bytes(&s.t))
                .unwrap();
            inner
                .iter()
                .any(|p| matches!(p, PayloadRepr::Ke { group: 19, data } if data.len() == 64))
        })
        .count();
    assert_eq!(kes, 4);

    // A responder that wants PFS refuses a request without it.
    let mut pb = policy("b.test");
    pb.pfs = Some(DhGroup::Ecp256);
    let mut q = Pair::new(
        endpoint(A_IKE, A_NATT, None, 92),
        endpoint(B_IKE, B_NATT, Some(pb), 93),
    );
    let sa =
        q.a.connect(q.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    q.settle();
    q.a.create_child(q.now, sa).unwrap();
    q.settle();
    assert!(q.a_events.contains(&IkeEvent::ChildSaFailed {
        sa,
        error: IpsecError::IkeNoProposalChosen
    }));
    assert_eq!(q.a.summaries()[0].children.len(), 1);
    assert_eq!(q.b.summaries()[0].children.len(), 1);

    // A responder without a PFS policy answers one that offers it.
    let mut pa = policy("a.test");
    pa.pfs = Some(DhGroup::Curve25519);
    let mut r = Pair::new(
        endpoint(A_IKE, A_NATT, None, 94),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 95),
    );
    let sa = r.a.connect(r.now, addr(B_IKE), None, pa).unwrap();
    r.settle();
    r.a.rekey_child(r.now, sa, child(&r.a_events).unwrap().inbound.spi)
        .unwrap();
    r.settle();
    let (x, y) = (
        all_children(&r.a_events).pop().unwrap(),
        all_children(&r.b_events).pop().unwrap(),
    );
    assert!(x.replaces.is_some());
    assert_children_match(&x, &y);
    esp_both_ways(&x, &y);
}

#[test]
fn ike_sa_lifetime_rekeys_at_90_percent_and_expires_at_100() {
    let life = Some(Duration::from_secs(100));
    let mut pa = policy("a.test");
    pa.ike_lifetime = life;
    let mut pb = policy("b.test");
    pb.ike_lifetime = life;
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 100),
        endpoint(B_IKE, B_NATT, Some(pb), 101),
    );
    let sa = p.a.connect(p.now, addr(B_IKE), None, pa).unwrap();
    p.settle();
    assert_eq!(p.a.poll_timeout(), Some(Duration::from_secs(90)));
    p.run(Duration::from_secs(95));
    assert_eq!(p.now, Duration::from_secs(90), "the rekey happened at 90 s");
    let new = p.a.summaries()[0].id;
    assert_ne!(new, sa);
    assert!(p
        .a_events
        .contains(&IkeEvent::IkeSaRekeyed { old: sa, new }));
    assert_eq!(p.b.summaries().len(), 1);
    // The new SA lives another 90 s before its own rekey.
    assert_eq!(p.a.poll_timeout(), Some(Duration::from_secs(180)));

    // A responder with a lifetime (and an initiator without) deletes the SA at 100 %.
    let mut pb = policy("b.test");
    pb.ike_lifetime = life;
    let mut q = Pair::new(
        endpoint(A_IKE, A_NATT, None, 102),
        endpoint(B_IKE, B_NATT, Some(pb), 103),
    );
    let sa =
        q.a.connect(q.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    q.settle();
    q.run(Duration::from_secs(200));
    assert_eq!(q.now, Duration::from_secs(100));
    assert!(q
        .a_events
        .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: true }));
    assert!(q.b.summaries().is_empty() && q.a.summaries().is_empty());
}

/// Regression (found against strongSwan, whose `swanctl --initiate --ike` sends IKE_AUTH
/// without SA, TSi and TSr): our responder answered `N(NO_PROPOSAL_CHOSEN)` and reported a
/// failed child SA for a child nobody asked for. Now it announces RFC 6023
/// `N(CHILDLESS_IKEV2_SUPPORTED)` in IKE_SA_INIT, establishes the IKE SA alone, and a child SA
/// follows by CREATE_CHILD_SA.
#[test]
fn childless_ike_auth_establishes_the_ike_sa_alone() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 71),
        endpoint(B_IKE, B_NATT, Some(policy("b.example")), 72),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), Some(addr(B_NATT)), policy("a.example"))
            .unwrap();
    let t = p.a.poll_transmit(p.now).unwrap();
    p.deliver(Dir::AtoB, t);
    let t = p.b.poll_transmit(p.now).unwrap();
    let init_r = MessageRepr::parse(ike_bytes(&t)).unwrap();
    assert!(init_r.payloads.iter().any(|x| matches!(
        x,
        PayloadRepr::Notify(n) if n.kind == NotifyType::CHILDLESS_IKEV2_SUPPORTED
    )));
    p.deliver(Dir::BtoA, t);

    // A's IKE_AUTH request, rewritten without SA, TSi, TSr (the AUTH does not cover them).
    let mut t = p.a.poll_transmit(p.now).unwrap();
    let rec = p.a.ike_key_record(sa).unwrap().clone();
    let opener = SkCrypter::new(rec.suite, &rec.sk_ei, &rec.sk_ai).unwrap();
    let (mut outer, inner) = opener.open(ike_bytes(&t)).unwrap();
    let inner: Vec<PayloadRepr> = inner
        .into_iter()
        .filter(|x| {
            !matches!(
                x,
                PayloadRepr::Sa(_) | PayloadRepr::TsI(_) | PayloadRepr::TsR(_)
            ) && !matches!(x, PayloadRepr::Notify(n) if n.kind == NotifyType::USE_TRANSPORT_MODE)
        })
        .collect();
    outer.payloads.clear();
    let sealer = SkCrypter::new(rec.suite, &rec.sk_ei, &rec.sk_ai).unwrap();
    let iv = vec![0x5a; rec.suite.iv_len()];
    let sealed = sealer.seal_with_iv(&outer, &inner, &iv).unwrap();
    t.contents = match t.socket {
        WireSocket::Ike => sealed,
        WireSocket::Natt => {
            let mut d = Vec::new();
            natt::emit_ike(&sealed, &mut d);
            d
        }
    };
    p.deliver(Dir::AtoB, t);
    p.step();

    // B: the IKE SA, no child SA event; its answer holds IDr and AUTH only.
    assert!(p.b_events.iter().any(|e| matches!(
        e,
        IkeEvent::IkeSaEstablished {
            role: Role::Responder,
            ..
        }
    )));
    assert!(!p.b_events.iter().any(|e| matches!(
        e,
        IkeEvent::ChildSaReady(_) | IkeEvent::ChildSaFailed { .. }
    )));
    let b_sa = p.b.summaries()[0].clone();
    assert!(b_sa.children.is_empty());
    assert_eq!(b_sa.state, SaState::Established);

    // A child SA by CREATE_CHILD_SA.
    p.a.create_child(p.now, sa).unwrap();
    p.run(Duration::from_secs(1));
    let ready = p
        .b_events
        .iter()
        .filter(|e| matches!(e, IkeEvent::ChildSaReady(_)))
        .count();
    assert_eq!(ready, 1);
    assert_eq!(p.b.summaries()[0].children.len(), 1);
}

/// Regression (found against strongSwan): when both sides rekeyed the IKE SA at once, each
/// side moved the child SAs to the IKE SA of the exchange it saw complete first and deleted
/// the old IKE SA, but nobody deleted the redundant new one, and when the peer later deleted
/// the one holding our child SAs they went with it. Now RFC 7296 §2.8.2: of the two new IKE
/// SAs, the one whose exchange used the lowest of the four nonces is deleted by its initiator,
/// the other takes over the child SAs, and its initiator deletes the old IKE SA.
#[test]
fn simultaneous_ike_sa_rekey_keeps_exactly_one_new_ike_sa() {
    let mut winners = Vec::new();
    for seed in [90u64, 92, 94, 96, 98, 100] {
        let mut p = Pair::new(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(B_IKE, B_NATT, Some(policy("b.test")), seed + 1),
        );
        let sa =
            p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
                .unwrap();
        p.settle();
        let (b_sa, ..) = established(&p.b_events).unwrap();
        let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
        // Both sides rekey the IKE SA at once.
        p.a.rekey_ike_sa(p.now, sa).unwrap();
        p.b.rekey_ike_sa(p.now, b_sa).unwrap();
        p.settle();
        let (la, lb) = (p.a.summaries(), p.b.summaries());
        assert_eq!(la.len(), 1, "seed {seed}: one IKE SA left on A: {la:?}");
        assert_eq!(lb.len(), 1, "seed {seed}: one IKE SA left on B: {lb:?}");
        assert_eq!((la[0].spi_i, la[0].spi_r), (lb[0].spi_i, lb[0].spi_r));
        assert_ne!(la[0].id, sa);
        assert_eq!(la[0].state, SaState::Established);
        // The child SA pair lives on under it, on both sides.
        assert_eq!(la[0].children, vec![(ca.inbound.spi, ca.outbound.spi)]);
        assert_eq!(lb[0].children, vec![(cb.inbound.spi, cb.outbound.spi)]);
        // Each side announced exactly one rekey, to the survivor.
        for (events, survivor) in [(&p.a_events, la[0].id), (&p.b_events, lb[0].id)] {
            let rekeys: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    IkeEvent::IkeSaRekeyed { new, .. } => Some(*new),
                    _ => None,
                })
                .collect();
            assert_eq!(rekeys, vec![survivor], "seed {seed}");
        }
        // And it works: a liveness check each way.
        let (a_id, b_id) = (la[0].id, lb[0].id);
        p.a.check_liveness(p.now, a_id).unwrap();
        p.b.check_liveness(p.now, b_id).unwrap();
        p.settle();
        assert!(p
            .a_events
            .contains(&IkeEvent::LivenessConfirmed { sa: a_id }));
        assert!(p
            .b_events
            .contains(&IkeEvent::LivenessConfirmed { sa: b_id }));
        winners.push(la[0].role);
    }
    println!("surviving IKE SA initiated by A: {winners:?}");
    assert!(winners.contains(&Role::Initiator) && winners.contains(&Role::Responder));
}

/// Regression (found against strongSwan, one run in four): both sides rekey the IKE SA, but the
/// peer takes our answer to its rekey before it sees our request, so on its side there is no
/// collision: it moves the child SAs to its new IKE SA and deletes the old one while our
/// request is still in flight. We had answered its rekey as one half of a collision (the child
/// SAs waiting for our exchange to decide), so the Delete took the child SAs with the old IKE
/// SA. Now the peer's new IKE SA takes them over and our exchange is abandoned.
#[test]
fn peer_ike_rekey_completing_before_it_sees_ours_keeps_the_child_sas() {
    for seed in [120u64, 122, 124, 126] {
        let mut p = Pair::new(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(B_IKE, B_NATT, Some(policy("b.test")), seed + 1),
        );
        let sa =
            p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
                .unwrap();
        p.settle();
        let (b_sa, ..) = established(&p.b_events).unwrap();
        let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
        // A's rekey request leaves but is late; B's overtakes it and A answers it.
        p.a.rekey_ike_sa(p.now, sa).unwrap();
        let late = p.a.poll_transmit(p.now).expect("A's rekey request");
        p.b.rekey_ike_sa(p.now, b_sa).unwrap();
        // B's exchange completes, B deletes the old IKE SA, all before A's request arrives.
        p.settle();
        assert!(
            p.a_events
                .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: true }),
            "seed {seed}: B deleted the old IKE SA: {:?}",
            p.a_events
        );
        p.deliver(Dir::AtoB, late);
        p.settle();
        let (la, lb) = (p.a.summaries(), p.b.summaries());
        assert_eq!(la.len(), 1, "seed {seed}: one IKE SA left on A: {la:?}");
        assert_eq!(lb.len(), 1, "seed {seed}: one IKE SA left on B: {lb:?}");
        assert_eq!((la[0].spi_i, la[0].spi_r), (lb[0].spi_i, lb[0].spi_r));
        assert_eq!(la[0].role, Role::Responder, "seed {seed}: B's new IKE SA");
        assert_eq!(la[0].children, vec![(ca.inbound.spi, ca.outbound.spi)]);
        assert_eq!(lb[0].children, vec![(cb.inbound.spi, cb.outbound.spi)]);
        assert!(
            !p.a_events
                .iter()
                .any(|e| matches!(e, IkeEvent::ChildSaDeleted { .. })),
            "seed {seed}: {:?}",
            p.a_events
        );
        let rekeys: Vec<_> = p
            .a_events
            .iter()
            .filter_map(|e| match e {
                IkeEvent::IkeSaRekeyed { new, .. } => Some(*new),
                _ => None,
            })
            .collect();
        assert_eq!(rekeys, vec![la[0].id], "seed {seed}");
        let (a_id, b_id) = (la[0].id, lb[0].id);
        p.a.check_liveness(p.now, a_id).unwrap();
        p.b.check_liveness(p.now, b_id).unwrap();
        p.settle();
        assert!(p
            .a_events
            .contains(&IkeEvent::LivenessConfirmed { sa: a_id }));
        assert!(p
            .b_events
            .contains(&IkeEvent::LivenessConfirmed { sa: b_id }));
    }
}

/// Regression (found against strongSwan): a peer that restarted and authenticated again left
/// its stale IKE SA and child SAs with us forever, since INITIAL_CONTACT was neither sent nor
/// honoured. Now (RFC 7296 §2.4) an initiator with no other IKE SA to the peer's address sends
/// it, and on receipt every other IKE SA between the same two identities is dropped.
#[test]
fn initial_contact_drops_the_stale_ike_sa_of_a_restarted_peer() {
    let b = endpoint(B_IKE, B_NATT, Some(policy("b.test")), 111);
    let mut p = Pair::new(endpoint(A_IKE, A_NATT, None, 110), b);
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.settle();
    let (b_first, ..) = established(&p.b_events).unwrap();
    // A second IKE SA from the same A (which still holds the first): no INITIAL_CONTACT, both
    // stay.
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.settle();
    assert_eq!(p.b.summaries().len(), 2);
    let auth_requests = |p: &Pair| {
        p.log
            .iter()
            .filter(|s| s.dir == Dir::AtoB)
            .filter_map(|s| {
                let m = MessageRepr::parse(ike_bytes(&s.t)).ok()?;
                (m.exchange == ExchangeType::IKE_AUTH).then_some(s.t.clone())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(auth_requests(&p).len(), 2);
    let has_initial_contact = |ep: &IkeEndpoint, t: &Transmit| {
        let bytes = ike_bytes(t);
        let m = MessageRepr::parse(bytes).unwrap();
        (1..16).any(|id| {
            ep.ike_key_record(IkeSaId(id)).is_some_and(|rec| {
                rec.spi_i == m.spi_i
                    && SkCrypter::new(rec.suite, &rec.sk_ei, &rec.sk_ai)
                        .unwrap()
                        .open(bytes)
                        .unwrap()
                        .1
                        .iter()
                        .any(|x| matches!(x, PayloadRepr::Notify(n) if n.kind == NotifyType::INITIAL_CONTACT))
            })
        })
    };
    let reqs = auth_requests(&p);
    assert!(
        has_initial_contact(&p.a, &reqs[0]),
        "the first contact says so"
    );
    assert!(!has_initial_contact(&p.a, &reqs[1]), "the second does not");

    // A restarts: a new endpoint on the same address, same identity.
    p.a = endpoint(A_IKE, A_NATT, None, 112);
    p.b_events.clear();
    p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
        .unwrap();
    p.settle();
    let left = p.b.summaries();
    assert_eq!(left.len(), 1, "{left:?}");
    let deleted: Vec<IkeSaId> = p
        .b_events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::IkeSaDeleted { sa, by_peer: true } => Some(*sa),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.contains(&b_first));
    assert!(!deleted.contains(&left[0].id));
    assert_eq!(left[0].children.len(), 1);
}

/// Regression (found against strongSwan, whose initiators commonly propose subnets): our
/// responder refused any offered selector wider than its policy with TS_UNACCEPTABLE. Now it
/// narrows (RFC 7296 §2.9) to the intersection and answers with that; only an offer that
/// shares nothing with the policy is refused.
#[test]
fn responder_narrows_wide_traffic_selectors() {
    use std::net::Ipv4Addr;
    use wsock_ipsec::ike::wire::{AddressRange, TrafficSelector};
    let net = |third: u8| TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        addresses: AddressRange::V4(
            Ipv4Addr::new(10, 9, third, 0),
            Ipv4Addr::new(10, 9, third, 255),
        ),
    };
    let host = |third: u8, last: u8| host_selector(Ipv4Addr::new(10, 9, third, last).into());
    let responder = || {
        let mut b = policy("b.test");
        b.mode = Mode::Tunnel;
        b.local_ts = vec![host(2, 2)];
        b.remote_ts = vec![host(1, 1)];
        b
    };
    // A offers the two /24 subnets; B narrows to its hosts.
    let mut a = policy("a.test");
    a.mode = Mode::Tunnel;
    a.local_ts = vec![net(1)];
    a.remote_ts = vec![net(2)];
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 120),
        endpoint(B_IKE, B_NATT, Some(responder()), 121),
    );
    p.a.connect(p.now, addr(B_IKE), None, a).unwrap();
    p.settle();
    let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
    assert_eq!(ca.local_ts, vec![host(1, 1)]);
    assert_eq!(ca.remote_ts, vec![host(2, 2)]);
    assert_eq!(
        (cb.local_ts.clone(), cb.remote_ts.clone()),
        (ca.remote_ts.clone(), ca.local_ts.clone())
    );

    // Disjoint: refused.
    let mut a = policy("a.test");
    a.mode = Mode::Tunnel;
    a.local_ts = vec![net(3)];
    a.remote_ts = vec![net(2)];
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 122),
        endpoint(B_IKE, B_NATT, Some(responder()), 123),
    );
    p.a.connect(p.now, addr(B_IKE), None, a).unwrap();
    p.settle();
    let failed = p.a_events.iter().find_map(|e| match e {
        IkeEvent::ChildSaFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(failed, Some(IpsecError::IkeTsUnacceptable));
    assert!(established(&p.a_events).is_some(), "the IKE SA stays");
}

/// Regression (found against strongSwan, which answers a child SA rekey that crosses its own
/// IKE SA rekey with TEMPORARY_FAILURE): we reported a failed child SA (and an owner might
/// take the peer for unreachable). Now (RFC 7296 §2.25) the request is made again after 1 to
/// 2 s, on whichever IKE SA owns the child SA by then, and nothing is reported as failed.
#[test]
fn temporary_failure_makes_the_rekey_again_later() {
    use wsock_ipsec::ike::wire::{Flags, Notify};
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 130),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 131),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let old = child(&p.a_events).unwrap();
    p.a.rekey_child(p.now, sa, old.inbound.spi).unwrap();
    // B is busy: its answer is TEMPORARY_FAILURE (forged here with B's logged keys; B sees
    // the request, so the message IDs stay in step, and its real answer is thrown away).
    let t = p.a.poll_transmit(p.now).unwrap();
    let request = MessageRepr::parse(ike_bytes(&t)).unwrap();
    assert_eq!(request.exchange, ExchangeType::CREATE_CHILD_SA);
    p.b.handle_datagram(p.now, p.a.config().local_ike, t.socket, &t.contents);
    while p.b.poll_transmit(p.now).is_some() {}
    let rec = p.a.ike_key_record(sa).unwrap().clone();
    let outer = MessageRepr {
        spi_i: request.spi_i,
        spi_r: request.spi_r,
        exchange: ExchangeType::CREATE_CHILD_SA,
        flags: Flags::new(false, true),
        message_id: request.message_id,
        payloads: Vec::new(),
    };
    let answer = SkCrypter::new(rec.suite, &rec.sk_er, &rec.sk_ar)
        .unwrap()
        .seal_with_iv(
            &outer,
            &[PayloadRepr::Notify(Notify::new(
                NotifyType::TEMPORARY_FAILURE,
                Vec::new(),
            ))],
            &vec![0x77; rec.suite.iv_len()],
        )
        .unwrap();
    let from = p.b.config().local_ike;
    p.a.handle_datagram(p.now, from, WireSocket::Ike, &answer);
    p.settle();
    assert!(
        !p.a_events
            .iter()
            .any(|e| matches!(e, IkeEvent::ChildSaFailed { .. })),
        "a busy peer is no failure"
    );
    let retry = p.a.poll_timeout().expect("a retry is scheduled");
    assert!(
        retry >= p.now + Duration::from_secs(1) && retry < p.now + Duration::from_secs(2),
        "{retry:?}"
    );
    // The retry goes to B for real and succeeds.
    p.run(p.now + Duration::from_secs(3));
    let rekeyed = all_children(&p.a_events)
        .into_iter()
        .find(|c| c.replaces == Some(old.inbound.spi))
        .expect("the child SA was rekeyed on the second try");
    assert_eq!(
        p.a.summaries()[0].children,
        vec![(rekeyed.inbound.spi, rekeyed.outbound.spi)]
    );
}

/// Regression (found against strongSwan under load): a child SA rekey still in flight on an
/// IKE SA that the peer rekeyed and then deleted was lost without a word, leaving the child
/// SA unrekeyed. Now the request is made again on the IKE SA that took over.
#[test]
fn a_child_rekey_in_flight_survives_the_peers_ike_sa_rekey() {
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 140),
        endpoint(B_IKE, B_NATT, Some(policy("b.test")), 141),
    );
    let sa =
        p.a.connect(p.now, addr(B_IKE), None, policy("a.test"))
            .unwrap();
    p.settle();
    let (b_sa, ..) = established(&p.b_events).unwrap();
    let old = child(&p.a_events).unwrap();
    // A's child rekey goes out and is lost; meanwhile B rekeys the IKE SA and deletes the old.
    p.a.rekey_child(p.now, sa, old.inbound.spi).unwrap();
    assert!(p.a.poll_transmit(p.now).is_some());
    p.b.rekey_ike_sa(p.now, b_sa).unwrap();
    p.settle();
    assert!(p
        .a_events
        .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: true }));
    p.run(p.now + Duration::from_secs(2));
    let rekeyed = all_children(&p.a_events)
        .into_iter()
        .find(|c| c.replaces == Some(old.inbound.spi))
        .expect("the child SA rekey was made again on the new IKE SA");
    let ours = p.a.summaries();
    assert_eq!(ours.len(), 1);
    assert_ne!(ours[0].id, sa);
    assert_eq!(
        ours[0].children,
        vec![(rekeyed.inbound.spi, rekeyed.outbound.spi)]
    );
    let theirs = p.b.summaries();
    assert_eq!(
        theirs[0].children,
        vec![(rekeyed.outbound.spi, rekeyed.inbound.spi)]
    );
}
