//! Certificate authentication of `ike::sa` (RFC 7296 §2.15, RFC 7427), driven in memory: two
//! endpoints on a virtual clock, certificates from `wsock_ipsec::pki`. Every datagram either
//! side emits is read by this crate's parser and by rusticata's `ipsec-parser` (the SK
//! content too, with the logged keys), so the CERT, CERTREQ and AUTH payloads are checked.

use rustls_pki_types::UnixTime;
use std::net::SocketAddr;
use std::time::Duration;
use wsock_ipsec::esp::Mode;
use wsock_ipsec::ike::cert::CertAuth;
use wsock_ipsec::ike::crypto::{Role, SkCrypter};
use wsock_ipsec::ike::sa::*;
use wsock_ipsec::ike::wire::{
    emit_payload_chain, AuthMethod, ExchangeType, MessageRepr, NotifyType, PayloadRepr,
};
use wsock_ipsec::natt;
use wsock_ipsec::pki::{CaKey, CertAuthority, MachineCert, Validity};
use wsock_ipsec::IpsecError;

/// The wall-clock time at the virtual clock's zero (2026-09-21).
const EPOCH_SECS: u64 = 1_790_000_000;

fn epoch() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(EPOCH_SECS))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const A_IKE: &str = "127.0.0.1:10500";
const A_NATT: &str = "127.0.0.1:14500";
const B_IKE: &str = "127.0.0.2:10500";
const B_NATT: &str = "127.0.0.2:14500";

/// A certificate policy for `id` with `cert`, trusting `anchors`.
fn cert_policy(id: &str, cert: &MachineCert, anchors: &[&CertAuthority]) -> IkePolicy {
    let auth = CertAuth::new(
        cert.chain.clone(),
        &cert.key_pkcs8,
        anchors.iter().map(|a| a.cert_der().to_vec()).collect(),
        epoch(),
    )
    .unwrap();
    IkePolicy::certificate(Identity::Fqdn(id.into()), auth)
}

fn endpoint(ike: &str, natt: &str, responder: Option<IkePolicy>, seed: u64) -> IkeEndpoint {
    println!("endpoint {ike}: SeededIkeRandom seed {seed}");
    let mut c = EndpointConfig::new(addr(ike), addr(natt));
    c.responder = responder;
    c.keylog = true;
    IkeEndpoint::new(c, Box::new(SeededIkeRandom::new(seed))).unwrap()
}

/// Two endpoints and the wire between them.
struct Pair {
    a: IkeEndpoint,
    b: IkeEndpoint,
    now: Duration,
    /// Every IKE message (outer and, where it opens, inner payloads), in order.
    log: Vec<(bool, ExchangeType, Vec<PayloadRepr>)>,
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
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.a.poll_transmit(self.now) {
            moved = true;
            self.deliver(true, t);
        }
        while let Some(t) = self.b.poll_transmit(self.now) {
            moved = true;
            self.deliver(false, t);
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
        moved
    }

    fn deliver(&mut self, a_to_b: bool, t: Transmit) {
        let (from_ep, to_ep) = if a_to_b {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        };
        let from = match t.socket {
            WireSocket::Ike => from_ep.config().local_ike,
            WireSocket::Natt => from_ep.config().local_natt,
        };
        assert!(
            t.destination == to_ep.config().local_ike || t.destination == to_ep.config().local_natt
        );
        let entry = decode(&t, [&self.a, &self.b]);
        self.log.push((a_to_b, entry.0, entry.1));
        let to = if a_to_b { &mut self.b } else { &mut self.a };
        to.handle_datagram(self.now, from, t.socket, &t.contents);
    }

    /// Delivers until quiet without moving the clock.
    fn settle(&mut self) {
        while self.step() {}
    }

    /// The payloads of the first message of `exchange` in the given direction.
    fn payloads(&self, a_to_b: bool, exchange: ExchangeType) -> Vec<PayloadRepr> {
        self.log
            .iter()
            .find(|(d, x, _)| *d == a_to_b && *x == exchange)
            .map(|(_, _, p)| p.clone())
            .expect("message logged")
    }
}

fn ike_bytes(t: &Transmit) -> &[u8] {
    match t.socket {
        WireSocket::Ike => &t.contents,
        WireSocket::Natt => match natt::classify(&t.contents).unwrap() {
            natt::NattDatagram::Ike(m) => m,
            other => panic!("not IKE on the NAT-T socket: {other:?}"),
        },
    }
}

/// Both parsers read the message; the SK content opens with the logged keys and ipsec-parser
/// reads it too. Returns the exchange and the (inner, where encrypted) payloads.
fn decode(t: &Transmit, eps: [&IkeEndpoint; 2]) -> (ExchangeType, Vec<PayloadRepr>) {
    let bytes = ike_bytes(t);
    let ours = MessageRepr::parse(bytes).expect("our parser reads what we emit");
    let (rest, (_, payloads)) =
        ipsec_parser::parse_ikev2_message(bytes).expect("ipsec-parser reads what we emit");
    assert!(rest.is_empty());
    assert_eq!(
        payloads.expect("payload chain").len(),
        ours.payloads.len() + 1
    );
    let Some(PayloadRepr::Encrypted { .. }) = ours.payloads.last() else {
        return (ours.exchange, ours.payloads);
    };
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
            let (_, inner) = c.open(bytes).expect("the SK payload opens");
            if !inner.iter().any(|p| matches!(p, PayloadRepr::Delete(_))) {
                let mut chain = Vec::new();
                let first = emit_payload_chain(&inner, &mut chain).unwrap();
                let (_, list) = ipsec_parser::parse_ikev2_payload_list(
                    &chain,
                    ipsec_parser::IkePayloadType(first.0),
                )
                .expect("ipsec-parser reads the SK content");
                assert_eq!(list.expect("inner chain").len(), inner.len() + 1);
            }
            return (ours.exchange, inner);
        }
    }
    (ours.exchange, Vec::new())
}

fn established(events: &[IkeEvent]) -> Option<Identity> {
    events.iter().find_map(|e| match e {
        IkeEvent::IkeSaEstablished { peer_id, .. } => Some(peer_id.clone()),
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
    assert_eq!(x.mode, Mode::Transport);
    let payload = b"hello through ESP, certificate keyed".to_vec();
    for (from, to) in [(x, y), (y, x)] {
        let mut tx = from.outbound_sa(now).unwrap();
        let mut rx = to.inbound_sa(now).unwrap();
        let mut packet = Vec::new();
        tx.seal(now, 17, &payload, &mut packet).unwrap();
        let opened = rx.open(now, &mut packet).unwrap();
        assert_eq!(opened.next_header, 17);
        assert_eq!(&opened.payload[..], &payload[..]);
    }
}

/// Runs one negotiation of `a` (initiator, `policy`) with `b`; returns the pair afterwards.
fn negotiate(a: IkeEndpoint, b: IkeEndpoint, policy: IkePolicy) -> Pair {
    let mut p = Pair::new(a, b);
    p.a.connect(p.now, addr(B_IKE), Some(addr(B_NATT)), policy)
        .unwrap();
    p.settle();
    p
}

/// Both sides failed with `ERROR_IPSEC_IKE_AUTH_FAIL` (A the initiator); returns the two
/// errors (A's, B's).
fn both_fail_13801(p: &Pair) -> (IpsecError, IpsecError) {
    let ea = failure(&p.a_events).expect("A fails");
    let eb = failure(&p.b_events).expect("B fails");
    println!("A: {ea}; B: {eb}");
    assert_eq!(ea.win32_code(), 13801, "{ea:?}");
    assert_eq!(eb.win32_code(), 13801, "{eb:?}");
    // The initiator never gets there; a responder whose peer refuses it after its answer was
    // established for that moment and is failed by the peer's notify. Either way nothing is
    // left on either side.
    assert!(established(&p.a_events).is_none());
    assert!(child(&p.a_events).is_none());
    assert!(p.a.summaries().is_empty(), "A keeps no SA");
    assert!(p.b.summaries().is_empty(), "B keeps no SA");
    (ea, eb)
}

struct World {
    ca: CertAuthority,
    a: MachineCert,
    b: MachineCert,
}

fn world() -> World {
    let mut ca = CertAuthority::new("wsock test CA", Validity::default()).unwrap();
    let a = ca
        .issue_machine(&["a.example"], true, Validity::default())
        .unwrap();
    let b = ca
        .issue_machine(&["b.example", "b-alias.example"], true, Validity::default())
        .unwrap();
    World { ca, a, b }
}

#[test]
fn certificates_both_ways_with_esp() {
    let w = world();
    let a_pol = cert_policy("a.example", &w.a, &[&w.ca]);
    let b_pol = cert_policy("b.example", &w.b, &[&w.ca]);
    // A initiates, with the target name in SPN form and odd case.
    let mut pol = a_pol.clone();
    pol.target_name = Some("HOST/B.Example.".into());
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 11),
        endpoint(B_IKE, B_NATT, Some(b_pol.clone()), 12),
        pol,
    );
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("b.example".into()))
    );
    assert_eq!(
        established(&p.b_events),
        Some(Identity::Fqdn("a.example".into()))
    );
    let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
    assert_eq!(ca.outbound.spi, cb.inbound.spi);
    assert_eq!(ca.outbound_keys, cb.inbound_keys);
    esp_both_ways(&ca, &cb);
    // The wire: CERTREQ in the IKE_SA_INIT response; IDi, CERT, CERTREQ, AUTH (method 14) in
    // the IKE_AUTH request; IDr, CERT, AUTH in the response.
    let init_r = p.payloads(false, ExchangeType::IKE_SA_INIT);
    let certreq = init_r.iter().find_map(|x| match x {
        PayloadRepr::CertReq { encoding, data } => Some((encoding.0, data.len())),
        _ => None,
    });
    assert_eq!(certreq, Some((4, 20)), "one SHA-1 CA key hash");
    for (a_to_b, certreq) in [(true, true), (false, false)] {
        let auth = p.payloads(a_to_b, ExchangeType::IKE_AUTH);
        let kinds: Vec<&str> = auth
            .iter()
            .map(|x| match x {
                PayloadRepr::IdI(_) | PayloadRepr::IdR(_) => "ID",
                PayloadRepr::Cert { .. } => "CERT",
                PayloadRepr::CertReq { .. } => "CERTREQ",
                PayloadRepr::Auth { .. } => "AUTH",
                _ => "",
            })
            .filter(|k| !k.is_empty())
            .collect();
        let want: &[&str] = if certreq {
            &["ID", "CERT", "CERTREQ", "AUTH"]
        } else {
            &["ID", "CERT", "AUTH"]
        };
        assert_eq!(kinds, want);
        let (method, data) = auth
            .iter()
            .find_map(|x| match x {
                PayloadRepr::Auth { method, data } => Some((*method, data.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(method, AuthMethod::DIGITAL_SIGNATURE);
        assert_eq!(
            &data[..13],
            &[12, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
        );
    }

    // B initiates to A the other way, target in raw form.
    let mut pol = b_pol;
    pol.target_name = Some("a.example".into());
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, Some(a_pol), 13),
        endpoint(B_IKE, B_NATT, None, 14),
    );
    p.b.connect(p.now, addr(A_IKE), Some(addr(A_NATT)), pol)
        .unwrap();
    p.settle();
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("b.example".into()))
    );
    assert_eq!(
        established(&p.b_events),
        Some(Identity::Fqdn("a.example".into()))
    );
    let (ca, cb) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
    assert_eq!(ca.role, Role::Responder);
    esp_both_ways(&ca, &cb);
}

/// A P-384 CA (a scenario's `key_type = "ecdsa-p384"`): the certificates it issues are signed
/// ecdsa-with-SHA384 and hold P-256 keys; both sides verify the chain and authenticate.
#[test]
fn a_p384_ca_signs_machine_certificates_both_sides_accept() {
    let mut ca =
        CertAuthority::with_key("wsock P-384 CA", Validity::default(), CaKey::EcdsaP384).unwrap();
    let a = ca
        .issue_machine(&["a.example"], true, Validity::default())
        .unwrap();
    let b = ca
        .issue_machine(&["b.example"], true, Validity::default())
        .unwrap();
    // ecdsa-with-SHA384 (1.2.840.10045.4.3.3) signs the machine certificate.
    let sha384 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    assert!(a.chain[0].windows(sha384.len()).any(|w| w == sha384));
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 31),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &b, &[&ca])),
            32,
        ),
        cert_policy("a.example", &a, &[&ca]),
    );
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("b.example".into()))
    );
    let (ca_child, cb_child) = (child(&p.a_events).unwrap(), child(&p.b_events).unwrap());
    esp_both_ways(&ca_child, &cb_child);
}

/// Hosts in two processes, each with its own CA object derived from the same seed (a scenario
/// split across processes): each side trusts only its own CA certificate, yet the peer's
/// certificate, issued by the other object, verifies, for both key types. A CA derived from
/// another seed is another CA: refused with 13801.
#[test]
fn derived_cas_from_one_seed_are_one_ca_across_processes() {
    for (i, key) in [CaKey::EcdsaP256, CaKey::EcdsaP384].into_iter().enumerate() {
        let derive =
            |seed: &[u8]| CertAuthority::derived("Lab CA", Validity::default(), key, seed).unwrap();
        let (mut ca_a, mut ca_b) = (derive(b"lab seed"), derive(b"lab seed"));
        assert_ne!(ca_a.cert_der(), ca_b.cert_der(), "two self-signatures");
        let a = ca_a
            .issue_machine(&["a.example"], true, Validity::default())
            .unwrap();
        let b = ca_b
            .issue_machine(&["b.example"], true, Validity::default())
            .unwrap();
        let seed = 40 + 4 * i as u64;
        let p = negotiate(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(
                B_IKE,
                B_NATT,
                Some(cert_policy("b.example", &b, &[&ca_b])),
                seed + 1,
            ),
            cert_policy("a.example", &a, &[&ca_a]),
        );
        assert!(child(&p.a_events).is_some(), "{key:?}: {:?}", p.a_events);
        assert!(child(&p.b_events).is_some(), "{key:?}");
        // Another seed: another CA.
        let other = derive(b"another lab");
        let p = negotiate(
            endpoint(A_IKE, A_NATT, None, seed + 2),
            endpoint(
                B_IKE,
                B_NATT,
                Some(cert_policy("b.example", &b, &[&other])),
                seed + 3,
            ),
            cert_policy("a.example", &a, &[&ca_a]),
        );
        both_fail_13801(&p);
    }
}

#[test]
fn a_chain_from_another_ca_is_refused_on_either_side() {
    let w = world();
    let mut rogue_ca = CertAuthority::new("rogue CA", Validity::default()).unwrap();
    let rogue_b = rogue_ca
        .issue_machine(&["b.example"], true, Validity::default())
        .unwrap();
    // B's certificate is untrusted: A (the initiator) detects it and tells B.
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 21),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &rogue_b, &[&w.ca])),
            22,
        ),
        cert_policy("a.example", &w.a, &[&w.ca]),
    );
    let (ea, eb) = both_fail_13801(&p);
    assert!(
        matches!(ea, IpsecError::IkeCertRejected(ref r) if r.contains("UnknownIssuer")),
        "{ea:?}"
    );
    assert_eq!(eb, IpsecError::IkeAuthFailed);
    // A's certificate is untrusted: B (the responder) detects it and answers
    // AUTHENTICATION_FAILED.
    let rogue_a = rogue_ca
        .issue_machine(&["a.example"], true, Validity::default())
        .unwrap();
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 23),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &w.b, &[&w.ca])),
            24,
        ),
        cert_policy("a.example", &rogue_a, &[&w.ca]),
    );
    let (ea, eb) = both_fail_13801(&p);
    assert_eq!(ea, IpsecError::IkeAuthFailed);
    assert!(matches!(eb, IpsecError::IkeCertRejected(_)), "{eb:?}");
    // Trusting both CAs, the rogue-issued certificate is fine.
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 25),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &w.b, &[&w.ca])),
            26,
        ),
        cert_policy("a.example", &rogue_a, &[&rogue_ca, &w.ca]),
    );
    assert!(failure(&p.b_events).is_some(), "B still trusts only its CA");
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 27),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &w.b, &[&w.ca, &rogue_ca])),
            28,
        ),
        cert_policy("a.example", &rogue_a, &[&rogue_ca, &w.ca]),
    );
    assert!(established(&p.a_events).is_some() && established(&p.b_events).is_some());
}

#[test]
fn a_trusted_man_in_the_middle_is_refused_by_the_target_name() {
    let mut w = world();
    let mallory =
        w.ca.issue_machine(&["mallory.example"], true, Validity::default())
            .unwrap();
    // Mallory answers in B's place with her own valid certificate and her own name.
    let mut pol = cert_policy("a.example", &w.a, &[&w.ca]);
    pol.target_name = Some("host/b.example".into());
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 31),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("mallory.example", &mallory, &[&w.ca])),
            32,
        ),
        pol.clone(),
    );
    let (ea, _) = both_fail_13801(&p);
    assert!(
        matches!(ea, IpsecError::IkePeerIdMismatch { ref target, .. } if target == "host/b.example"),
        "{ea:?}"
    );
    // Mallory claims B's name with her certificate: the ID is not in the certificate.
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 33),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &mallory, &[&w.ca])),
            34,
        ),
        pol.clone(),
    );
    let (ea, _) = both_fail_13801(&p);
    assert!(matches!(ea, IpsecError::IkeCertRejected(_)), "{ea:?}");
    // Without a target name, Mallory's certificate would do (the check is the target name's).
    let mut open = pol;
    open.target_name = None;
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 35),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("mallory.example", &mallory, &[&w.ca])),
            36,
        ),
        open,
    );
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("mallory.example".into()))
    );
    // The responder checks its target name too: the second name of B's certificate matches.
    let mut b_pol = cert_policy("b.example", &w.b, &[&w.ca]);
    b_pol.target_name = Some("host/b-alias.example".into());
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 37),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("mallory.example", &mallory, &[&w.ca])),
            38,
        ),
        {
            let mut x = cert_policy("a.example", &w.a, &[&w.ca]);
            x.target_name = Some("b-alias.example".into());
            x
        },
    );
    both_fail_13801(&p);
    let mut w2 = world();
    let m2 = w2
        .ca
        .issue_machine(&["mallory.example"], true, Validity::default())
        .unwrap();
    let mut b_pol2 = cert_policy("b.example", &w2.b, &[&w2.ca]);
    b_pol2.target_name = Some("host/a.example".into());
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 39),
        endpoint(B_IKE, B_NATT, Some(b_pol2), 40),
        cert_policy("mallory.example", &m2, &[&w2.ca]),
    );
    let (_, eb) = both_fail_13801(&p);
    assert!(matches!(eb, IpsecError::IkePeerIdMismatch { .. }), "{eb:?}");
    let _ = b_pol;
}

#[test]
fn certificates_without_the_ike_eku_are_accepted_other_purposes_are_not() {
    let mut w = world();
    let plain_b =
        w.ca.issue_machine(&["b.example"], false, Validity::default())
            .unwrap();
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 41),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &plain_b, &[&w.ca])),
            42,
        ),
        cert_policy("a.example", &w.a, &[&w.ca]),
    );
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("b.example".into()))
    );
    assert!(child(&p.a_events).is_some() && child(&p.b_events).is_some());
    // TLS purposes (as Windows machine certificates often have) are accepted too.
    let mut params = rcgen::CertificateParams::new(vec!["b.example".to_string()]).unwrap();
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let tls_b = w.ca.issue_with_params(params).unwrap();
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 43),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &tls_b, &[&w.ca])),
            44,
        ),
        cert_policy("a.example", &w.a, &[&w.ca]),
    );
    assert!(established(&p.a_events).is_some());
    // A certificate whose EKU names only code signing is not for IKE.
    let mut params = rcgen::CertificateParams::new(vec!["b.example".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let code_b = w.ca.issue_with_params(params).unwrap();
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 45),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &code_b, &[&w.ca])),
            46,
        ),
        cert_policy("a.example", &w.a, &[&w.ca]),
    );
    let (ea, _) = both_fail_13801(&p);
    assert!(
        matches!(ea, IpsecError::IkeCertRejected(ref r) if r.contains("RequiredEkuNotFound")),
        "{ea:?}"
    );
}

#[test]
fn an_expired_certificate_is_refused_on_the_virtual_clock() {
    let mut w = world();
    // Valid for one hour from the virtual clock's zero.
    let short =
        w.ca.issue_machine(
            &["b.example"],
            true,
            Validity::starting(epoch(), Duration::from_secs(3600)),
        )
        .unwrap();
    let b_pol = cert_policy("b.example", &short, &[&w.ca]);
    let pol = cert_policy("a.example", &w.a, &[&w.ca]);
    let run = |at: Duration, seed: u64| {
        let mut p = Pair::new(
            endpoint(A_IKE, A_NATT, None, seed),
            endpoint(B_IKE, B_NATT, Some(b_pol.clone()), seed + 1),
        );
        p.now = at;
        p.a.connect(p.now, addr(B_IKE), Some(addr(B_NATT)), pol.clone())
            .unwrap();
        p.settle();
        p
    };
    // At 30 minutes it is valid.
    let p = run(Duration::from_secs(1800), 51);
    assert!(established(&p.a_events).is_some(), "valid at 30 min");
    // At two hours it has expired: A refuses it, B learns it from A's notify.
    let p = run(Duration::from_secs(7200), 53);
    let (ea, eb) = both_fail_13801(&p);
    assert!(
        matches!(ea, IpsecError::IkeCertRejected(ref r) if r.contains("Expired")),
        "{ea:?}"
    );
    assert_eq!(eb, IpsecError::IkeAuthFailed);
}

#[test]
fn mixed_psk_and_certificates_are_refused_cleanly() {
    let w = world();
    let psk = |id: &str| IkePolicy::psk(Identity::Fqdn(id.into()), *b"a shared secret");
    // A uses a PSK, B wants certificates: B refuses A's AUTH.
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 61),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &w.b, &[&w.ca])),
            62,
        ),
        psk("a.example"),
    );
    let (ea, eb) = both_fail_13801(&p);
    assert_eq!(ea, IpsecError::IkeAuthFailed);
    assert!(matches!(eb, IpsecError::IkeCertRejected(_)), "{eb:?}");
    // A uses certificates, B a PSK: B refuses A's signature.
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 63),
        endpoint(B_IKE, B_NATT, Some(psk("b.example")), 64),
        cert_policy("a.example", &w.a, &[&w.ca]),
    );
    let (ea, eb) = both_fail_13801(&p);
    assert_eq!(ea, IpsecError::IkeAuthFailed);
    assert!(matches!(eb, IpsecError::IkeCertRejected(_)), "{eb:?}");
}

/// The data of the `N(SIGNATURE_HASH_ALGORITHMS)` among `payloads`, if any.
fn hash_algorithms(payloads: &[PayloadRepr]) -> Option<Vec<u8>> {
    payloads.iter().find_map(|x| match x {
        PayloadRepr::Notify(n) if n.kind == NotifyType::SIGNATURE_HASH_ALGORITHMS => {
            Some(n.data.clone())
        }
        _ => None,
    })
}

/// Regression (found against strongSwan): we signed AUTH with RFC 7427 method 14 without
/// announcing RFC 7427 and without the peer having announced it, so charon answered with
/// RFC 4754 method 9. Now certificate policies announce SHA2-256 in
/// `N(SIGNATURE_HASH_ALGORITHMS)` (a responder only when the initiator did), and sign with
/// method 14 only for a peer that announced SHA2-256, else with method 9.
#[test]
fn rfc7427_is_announced_and_method_9_is_used_with_a_peer_that_does_not() {
    let w = world();
    let a_pol = cert_policy("a.example", &w.a, &[&w.ca]);
    let b_pol = cert_policy("b.example", &w.b, &[&w.ca]);

    // Both announce: SHA2-256 (2) both ways, method 14 both ways (checked in
    // certificates_both_ways_with_esp).
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 31),
        endpoint(B_IKE, B_NATT, Some(b_pol.clone()), 32),
        a_pol.clone(),
    );
    assert!(established(&p.a_events).is_some());
    for a_to_b in [true, false] {
        let init = p.payloads(a_to_b, ExchangeType::IKE_SA_INIT);
        assert_eq!(hash_algorithms(&init), Some(vec![0, 2]));
    }

    // PSK policies announce nothing.
    let psk = |id: &str| IkePolicy::psk(Identity::Fqdn(id.into()), *b"shared secret key");
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 33),
        endpoint(B_IKE, B_NATT, Some(psk("b.example")), 34),
        psk("a.example"),
    );
    assert!(established(&p.a_events).is_some());
    for a_to_b in [true, false] {
        let init = p.payloads(a_to_b, ExchangeType::IKE_SA_INIT);
        assert_eq!(hash_algorithms(&init), None);
    }

    // A responder that does not announce RFC 7427 (the notify removed from B's IKE_SA_INIT
    // response on the wire): A signs with method 9, fixed 64-byte r || s, and B verifies it.
    let mut p = Pair::new(
        endpoint(A_IKE, A_NATT, None, 35),
        endpoint(B_IKE, B_NATT, Some(b_pol), 36),
    );
    p.a.connect(p.now, addr(B_IKE), Some(addr(B_NATT)), a_pol)
        .unwrap();
    let t = p.a.poll_transmit(p.now).unwrap();
    p.deliver(true, t);
    let mut t = p.b.poll_transmit(p.now).unwrap();
    let mut msg = MessageRepr::parse(&t.contents).unwrap();
    let before = msg.payloads.len();
    msg.payloads.retain(
        |x| !matches!(x, PayloadRepr::Notify(n) if n.kind == NotifyType::SIGNATURE_HASH_ALGORITHMS),
    );
    assert_eq!(msg.payloads.len(), before - 1, "B announced RFC 7427");
    t.contents = msg.emit().unwrap();
    p.deliver(false, t);
    let t = p.a.poll_transmit(p.now).unwrap();
    p.deliver(true, t);
    while let Some(e) = p.b.poll_event() {
        p.b_events.push(e);
    }
    let auth = p.payloads(true, ExchangeType::IKE_AUTH);
    let (method, data) = auth
        .iter()
        .find_map(|x| match x {
            PayloadRepr::Auth { method, data } => Some((*method, data.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(method, AuthMethod::ECDSA_SHA256_P256);
    assert_eq!(data.len(), 64);
    assert_eq!(
        established(&p.b_events),
        Some(Identity::Fqdn("a.example".into())),
        "B verified the method 9 signature"
    );
}

/// Certificates from two issuing CAs under one root: each side sends its chain (its own
/// certificate, then its issuing CA's) and verifies the other's up to the root alone.
#[test]
fn chains_through_issuing_cas_verify_to_the_root() {
    let mut root = CertAuthority::new("wsock test root", Validity::default()).unwrap();
    let mut ia = root
        .issue_intermediate("issuing A", Validity::default())
        .unwrap();
    let mut ib = root
        .issue_intermediate("issuing B", Validity::default())
        .unwrap();
    let a = ia
        .issue_machine(&["a.example"], true, Validity::default())
        .unwrap();
    let b = ib
        .issue_machine(&["b.example"], false, Validity::default())
        .unwrap();
    assert_eq!(a.chain.len(), 2);
    assert_eq!(b.chain[1], ib.cert_der());
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 51),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &b, &[&root])),
            52,
        ),
        cert_policy("a.example", &a, &[&root]),
    );
    assert_eq!(
        established(&p.a_events),
        Some(Identity::Fqdn("b.example".into()))
    );
    let certs = p
        .payloads(true, ExchangeType::IKE_AUTH)
        .iter()
        .filter(|x| matches!(x, PayloadRepr::Cert { .. }))
        .count();
    assert_eq!(certs, 2, "A sends its certificate and its issuing CA's");

    // Without the issuing CA in the chain, the root alone cannot vouch for the certificate.
    let mut lone = a.clone();
    lone.chain.truncate(1);
    let p = negotiate(
        endpoint(A_IKE, A_NATT, None, 53),
        endpoint(
            B_IKE,
            B_NATT,
            Some(cert_policy("b.example", &b, &[&root])),
            54,
        ),
        cert_policy("a.example", &lone, &[&root]),
    );
    both_fail_13801(&p);
}
