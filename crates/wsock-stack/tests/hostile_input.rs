//! Parsers never panic, and a host survives hostile datagrams on its wire socket.

use proptest::prelude::*;
use wsock_stack::wire::{gre_decapsulate, gre_encapsulate, GreRepr, IpSummary};
use wsock_stack::{Family, Network, Scenario};

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn wire_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = GreRepr::parse(&bytes);
        let _ = gre_decapsulate(&bytes);
        if let Ok(s) = IpSummary::parse(&bytes) {
            let _ = s.ports(&bytes);
        }
    }

    #[test]
    fn gre_round_trips_any_ip_packet(mut body in proptest::collection::vec(any::<u8>(), 1..200), v6 in any::<bool>()) {
        body[0] = if v6 { 0x60 } else { 0x45 };
        let dg = gre_encapsulate(&body).unwrap();
        prop_assert_eq!(gre_decapsulate(&dg).unwrap(), &body[..]);
    }

    #[test]
    fn scenario_parser_never_panics(text in "\\PC{0,300}") {
        let _ = Scenario::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn scenario_parser_never_panics_on_near_valid_input(cut in 0usize..1200, byte in any::<u8>()) {
        let mut t = wsock_stack::scenario::DEFAULT_SCENARIO_TOML.as_bytes().to_vec();
        let i = cut % t.len();
        t[i] = byte;
        let text = String::from_utf8_lossy(&t).to_string();
        let _ = Scenario::from_toml_str(&text, "fuzz.toml");
    }
}

/// Garbage from the wire is counted and dropped; the host keeps serving.
#[test]
fn host_survives_hostile_datagrams() {
    let seed: u64 = std::env::var("WSOCK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let net = Network::start(Scenario::default_scenario()).unwrap();
    let server = net.host("server").unwrap();
    let client = net.host("client").unwrap();
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x = seed | 1;
    let mut sent = 0u64;
    for n in 0..2000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 1600) as usize;
        let mut d: Vec<u8> = (0..len)
            .map(|i| (x.rotate_left(i as u32 % 64) >> 3) as u8)
            .collect();
        // Some datagrams look like GRE carrying IPv4/IPv6 to the server, with garbage after.
        if n % 3 == 0 && d.len() > 44 {
            d[..4].copy_from_slice(&[0, 0, 0x08, 0x00]);
            d[4] = 0x45;
            d[20..24].copy_from_slice(&server.ipv4().octets());
        }
        if attacker.send_to(&d, server.wire_addr()).is_ok() {
            sent += 1;
        }
    }
    // Still works: a TCP exchange between the two hosts.
    let l = server.tcp(Family::V4);
    l.bind("0.0.0.0:17".parse().unwrap()).unwrap();
    l.listen(4).unwrap();
    net.runtime().unwrap().block_on(async {
        let c = client.tcp(Family::V4);
        c.connect("10.0.0.2:17".parse().unwrap()).await.unwrap();
        let (a, _) = l.accept().await.unwrap();
        c.send(b"still alive").await.unwrap();
        let mut b = [0u8; 11];
        let mut got = 0;
        while got < b.len() {
            got += a.recv(&mut b[got..]).await.unwrap();
        }
        assert_eq!(&b, b"still alive", "seed {seed}");
    });
    let stats = server.counters();
    assert!(
        stats.drops.total() > 0,
        "seed {seed}: malformed datagrams counted ({stats:?}, sent {sent})"
    );
}
