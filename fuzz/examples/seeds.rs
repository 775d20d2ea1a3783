//! Writes the starting seeds of every fuzz target into `<dir>/<target>/` (usage:
//! `cargo run --example seeds -- <dir>`): genuine messages of a real PSK exchange, sealed ESP
//! packets of every suite, and one input per mode of the structured targets. The fuzzer then
//! grows and `cargo fuzz cmin` minimizes the committed corpus from them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wsock_ipsec::esp::{OutboundSa, SaConfig};
use wsock_ipsec::ike::crypto::SkCrypter;
use wsock_ipsec::ike::sa::{
    EndpointConfig, Identity, IkeEndpoint, IkePolicy, SeededIkeRandom, WireSocket,
};
use wsock_ipsec::ike::wire::{emit_payload_chain, MessageRepr, PayloadRepr};
use wsock_ipsec::natt;
use wsock_ipsec_fuzz::harness::{
    connect, esp_keys, established_pair, initiator, responder, ESP_SUITES,
};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create seed directory");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn rec(out: &mut Vec<u8>, op: u8, seq: u32, bytes: &[u8]) {
    out.push(op);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn framed(flags: u8, d: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&(d.len() as u16).to_be_bytes());
    v.extend_from_slice(d);
    v
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds".into()));
    let a_ike: SocketAddr = "127.0.0.1:10500".parse().unwrap();
    let b_ike: SocketAddr = "127.0.0.2:10500".parse().unwrap();
    let b_natt: SocketAddr = "127.0.0.2:14500".parse().unwrap();

    // A genuine PSK exchange between the harness's initiator and responder.
    let mut cfg = EndpointConfig::new(a_ike, "127.0.0.1:14500".parse().unwrap());
    cfg.keylog = true;
    let mut init = IkeEndpoint::new(cfg, Box::new(SeededIkeRandom::new(1))).unwrap();
    let mut resp = responder();
    let now = Duration::ZERO;
    init.connect(
        now,
        b_ike,
        Some(b_natt),
        IkePolicy::psk(
            Identity::Fqdn("a.example".into()),
            &b"fuzz pre-shared key"[..],
        ),
    )
    .unwrap();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for _ in 0..4 {
        while let Some(t) = init.poll_transmit(now) {
            messages.push(t.contents.clone());
            resp.handle_datagram(now, a_ike, t.socket, &t.contents);
        }
        while let Some(t) = resp.poll_transmit(now) {
            messages.push(t.contents.clone());
            let from = if t.socket == WireSocket::Ike {
                b_ike
            } else {
                b_natt
            };
            init.handle_datagram(now, from, t.socket, &t.contents);
        }
    }
    assert!(
        messages.len() >= 4,
        "the exchange ran: {} messages",
        messages.len()
    );
    let sa = resp.summaries()[0].id;
    let keys = resp.ike_key_record(sa).unwrap().clone();
    let from_i = SkCrypter::new(keys.suite, &keys.sk_ei, &keys.sk_ai).unwrap();
    let from_r = SkCrypter::new(keys.suite, &keys.sk_er, &keys.sk_ar).unwrap();
    let mut inner_chains = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let ike = match natt::classify(m) {
            Ok(natt::NattDatagram::Ike(x)) if m.starts_with(&[0, 0, 0, 0]) => x.to_vec(),
            _ => m.clone(),
        };
        write(&dir, "ike_message", &format!("exchange-{i}"), &ike);
        write(&dir, "natt_classify", &format!("ike-{i}"), &{
            let mut d = Vec::new();
            natt::emit_ike(&ike, &mut d);
            d
        });
        write(&dir, "ike_responder", &format!("datagram-{i}"), &{
            let mut v = vec![0];
            v.extend(framed(0, &ike));
            v
        });
        let parsed = MessageRepr::parse(&ike).unwrap();
        let crypter = if parsed.flags.initiator() {
            &from_i
        } else {
            &from_r
        };
        if let Ok((_, inner)) = crypter.open(&ike) {
            let mut chain = Vec::new();
            let first = emit_payload_chain(&inner, &mut chain).unwrap();
            let mut v = vec![first.0];
            v.extend_from_slice(&chain);
            write(&dir, "ike_message", &format!("inner-{i}"), &v);
            inner_chains.push((parsed.flags.initiator(), v));
        }
    }
    for (i, (from_initiator, chain)) in inner_chains.iter().enumerate() {
        if *from_initiator {
            let mut v = vec![1];
            v.extend_from_slice(chain);
            write(&dir, "ike_responder", &format!("auth-inner-{i}"), &v);
        }
    }
    if let Some(auth) = messages.get(2) {
        let mut v = vec![2];
        v.extend_from_slice(auth);
        write(&dir, "ike_responder", "auth-raw", &v);
    }
    // Deeper IKE: genuine requests and responses of an established IKE SA, as the inner
    // chains modes 3 of ike_responder and 2 of ike_initiator take.
    for (sel, name) in [
        "create-child",
        "liveness",
        "rekey-ike",
        "delete-child",
        "delete-ike",
        "rekey-child",
    ]
    .iter()
    .enumerate()
    {
        let (mut init, mut resp) = established_pair(now);
        let sa = init.summaries()[0].id;
        let child = init.summaries()[0].children[0].0;
        match sel {
            0 => init.create_child(now, sa),
            1 => init.check_liveness(now, sa),
            2 => init.rekey_ike_sa(now, sa),
            3 => init.delete_child(now, sa, child),
            4 => init.delete_ike_sa(now, sa),
            _ => init.rekey_child(now, sa, child),
        }
        .unwrap();
        let keys = resp.ike_key_record(resp.summaries()[0].id).unwrap().clone();
        let from_i = SkCrypter::new(keys.suite, &keys.sk_ei, &keys.sk_ai).unwrap();
        let from_r = SkCrypter::new(keys.suite, &keys.sk_er, &keys.sk_ar).unwrap();
        let request = init.poll_transmit(now).unwrap();
        resp.handle_datagram(now, a_ike, request.socket, &request.contents);
        let response = resp.poll_transmit(now).unwrap();
        let chain_of = |c: &SkCrypter, m: &[u8]| {
            let (outer, inner) = c.open(m).unwrap();
            let mut chain = Vec::new();
            let first = emit_payload_chain(&inner, &mut chain).unwrap();
            (outer.exchange, first, chain)
        };
        let (ex, first, chain) = chain_of(&from_i, &request.contents);
        let sel_ex = match ex.0 {
            36 => 0u8,
            37 => 1,
            other => other,
        };
        let mut v = vec![3, sel_ex, first.0];
        v.extend_from_slice(&(chain.len() as u16).to_be_bytes());
        v.extend_from_slice(&chain);
        write(&dir, "ike_responder", &format!("established-{name}"), &v);
        write(&dir, "ike_message", &format!("inner-{name}"), &{
            let mut m = vec![first.0];
            m.extend_from_slice(&chain);
            m
        });
        let (_, first, chain) = chain_of(&from_r, &response.contents);
        let mut v = vec![2, sel as u8, first.0];
        v.extend_from_slice(&chain);
        write(&dir, "ike_initiator", &format!("response-{name}"), &v);
    }
    // The initiator's view of IKE_SA_INIT and IKE_AUTH answers.
    {
        let mut init = initiator();
        let mut resp = responder();
        connect(&mut init, now);
        let req = init.poll_transmit(now).unwrap();
        resp.handle_datagram(now, a_ike, req.socket, &req.contents);
        let reply = resp.poll_transmit(now).unwrap();
        let mut v = vec![0];
        v.extend(framed(0, &reply.contents));
        write(&dir, "ike_initiator", "init-reply", &v);
        let mut v = vec![0];
        v.extend(framed(2, &reply.contents));
        write(&dir, "ike_initiator", "init-reply-patched", &v);
        init.handle_datagram(now, b_ike, reply.socket, &reply.contents);
        let auth = init.poll_transmit(now).unwrap();
        resp.handle_datagram(now, a_ike, auth.socket, &auth.contents);
        let auth_reply = resp.poll_transmit(now).unwrap();
        let keys = resp.ike_key_record(resp.summaries()[0].id).unwrap().clone();
        let from_r = SkCrypter::new(keys.suite, &keys.sk_er, &keys.sk_ar).unwrap();
        let (_, inner) = from_r.open(&auth_reply.contents).unwrap();
        let mut chain = Vec::new();
        let first = emit_payload_chain(&inner, &mut chain).unwrap();
        let mut v = vec![1, first.0];
        v.extend_from_slice(&chain);
        write(&dir, "ike_initiator", "auth-reply", &v);
    }

    let every = MessageRepr {
        spi_i: 1,
        spi_r: 2,
        exchange: wsock_ipsec::ike::wire::ExchangeType::INFORMATIONAL,
        flags: wsock_ipsec::ike::wire::Flags::new(true, false),
        message_id: 3,
        payloads: vec![
            PayloadRepr::Delete(wsock_ipsec::ike::wire::Delete {
                protocol: wsock_ipsec::ike::wire::ProtocolId::ESP,
                spi_size: 4,
                spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
            }),
            PayloadRepr::VendorId(b"wsock".to_vec()),
            PayloadRepr::Unknown {
                kind: wsock_ipsec::ike::wire::PayloadType::CP,
                critical: true,
                data: vec![1, 0, 0, 0],
            },
        ],
    };
    write(&dir, "ike_message", "informational", &every.emit().unwrap());

    // NAT-T odds and ends.
    write(&dir, "natt_classify", "keepalive", &natt::KEEPALIVE);
    write(&dir, "natt_classify", "short", &[1, 2, 3]);

    // ESP: per suite, a sealed packet (op 1), a forged region (op 2), and a genuine packet
    // from an outbound SA as received (op 0).
    for (i, suite) in ESP_SUITES.iter().enumerate() {
        let (e, a) = esp_keys(*suite);
        let cfg = SaConfig::new(0xc0de_0001, *suite);
        let mut tx = OutboundSa::new(&cfg, &e, &a, now).unwrap();
        let mut genuine = Vec::new();
        tx.seal(now, 17, b"a datagram", &mut genuine).unwrap();
        let mut v = vec![i as u8];
        rec(&mut v, 17 << 2 | 1, 5, b"payload of a sealed packet");
        rec(&mut v, 2, 6, &[0xaa, 0xbb, 1, 2, 2, 17]);
        rec(&mut v, 0, 0, &genuine);
        rec(&mut v, 17 << 2 | 1, 5, b"the same sequence number again");
        write(&dir, "esp_open", &format!("suite-{i}"), &v);
        write(&dir, "natt_classify", &format!("esp-{i}"), &genuine);
        let mut t = vec![i as u8 | 0x30];
        rec(&mut t, 4 << 2 | 1, 1, &[0x45, 0, 0, 20]);
        rec(&mut t, 6 << 2 | 1, 2, b"not an IP packet");
        write(&dir, "esp_open", &format!("tunnel-esn-{i}"), &t);
    }

    // Tunnel mode: inner packets (UDP over IPv4 with TFC padding, TCP over IPv6 behind a
    // hop-by-hop header and a fragment header), builder fields, and a packet to seal.
    {
        use std::net::{Ipv4Addr, Ipv6Addr};
        use wsock_ipsec::esp::tunnel::{ipv4_packet, ipv6_packet};
        let udp = [0x30, 0x39, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, b'h', b'i'];
        let p4 = ipv4_packet(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            64,
            7,
            &udp,
        )
        .unwrap();
        let mut v = vec![0, 4];
        v.extend_from_slice(&p4);
        v.extend_from_slice(&[0; 6]);
        write(&dir, "esp_tunnel", "v4-udp-padded", &v);
        let mut ext = vec![44, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop, then a fragment header
        ext.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 1]);
        ext.extend_from_slice(&[0x01, 0xbb, 0xc0, 0x00, 0, 0, 0, 0]);
        let p6 = ipv6_packet(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, 0, 64, &ext).unwrap();
        let mut v = vec![0, 41];
        v.extend_from_slice(&p6);
        write(&dir, "esp_tunnel", "v6-extensions", &v);
        let mut v = vec![1, 1];
        v.extend_from_slice(&[0x20; 16]);
        v.extend_from_slice(&[0x21; 16]);
        v.extend_from_slice(&[58, 64, 0, 1, 128, 0, 0, 0]);
        write(&dir, "esp_tunnel", "build-icmpv6", &v);
        let mut v = vec![2];
        v.extend_from_slice(&p4);
        write(&dir, "esp_tunnel", "seal-v4", &v);
    }

    // Certificates: one seed per mode.
    write(
        &dir,
        "cert_verify",
        "chain-raw",
        &[0, 0, 3, 0x30, 0x01, 0x00],
    );
    write(&dir, "cert_verify", "chain-edit", &[4, 0, 10, 0xff]);
    write(&dir, "cert_verify", "forged-auth", &{
        let mut v = vec![1, 14, 2, 9];
        v.extend_from_slice(b"b.example");
        v.extend_from_slice(&[12; 80]);
        v
    });
    write(&dir, "cert_verify", "id-target", &{
        let mut v = vec![2, 2, 9];
        v.extend_from_slice(b"b.example");
        v.push(1);
        v.extend_from_slice(b"host/B.Example");
        v
    });
    write(
        &dir,
        "cert_verify",
        "credential",
        &[3, 0, 2, 0x30, 0x00, 0x30, 0x00],
    );
    println!("seeds written under {}", dir.display());
}
