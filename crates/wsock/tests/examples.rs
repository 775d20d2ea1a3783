//! Each program of `crates/wsock/examples/` written from Microsoft's Winsock documentation runs
//! here against the simulated network (issue 7, "Done when").

#[path = "../examples/tcp_client_server.rs"]
#[allow(dead_code)]
mod tcp_client_server;

#[path = "../examples/nonblocking_connect.rs"]
#[allow(dead_code)]
mod nonblocking_connect;

#[path = "../examples/event_select_server.rs"]
#[allow(dead_code)]
mod event_select_server;

#[path = "../examples/overlapped_echo.rs"]
#[allow(dead_code)]
mod overlapped_echo;

#[path = "../examples/hostname.rs"]
#[allow(dead_code)]
mod hostname;

#[path = "../examples/ipv6_unspec.rs"]
#[allow(dead_code)]
mod ipv6_unspec;

#[path = "../examples/secure_server.rs"]
#[allow(dead_code)]
mod secure_server;

#[path = "../examples/secure_client.rs"]
#[allow(dead_code)]
mod secure_client;

#[path = "../examples/secure_udp.rs"]
#[allow(dead_code)]
mod secure_udp;

use wsock::{Network, Scenario};

fn net() -> Network {
    Network::start(Scenario::default_scenario()).expect("network")
}

/// "Complete Winsock Server Code" + "Complete Winsock Client Code", the server named by host
/// name (resolved by `getaddrinfo`, IPv6 tried first and refused, then IPv4).
#[test]
fn example_tcp_client_server_by_host_name() {
    let n = net();
    let (echoed, got) = tcp_client_server::demo(&n, "server", "27015", b"this is a test").unwrap();
    assert_eq!(echoed, 14);
    assert_eq!(got, b"this is a test");
}

/// The same, the server named by number.
#[test]
fn example_tcp_client_server_by_number() {
    let n = net();
    let (echoed, got) = tcp_client_server::demo(&n, "10.0.0.2", "27016", b"by number").unwrap();
    assert_eq!(echoed, 9);
    assert_eq!(got, b"by number");
}

/// Non-blocking connect with `select` and `FD_ISSET`: connected, then refused.
#[test]
fn example_nonblocking_connect_reports_success_and_refusal() {
    let n = net();
    let server = n.host("server").unwrap();
    let _l = wsock::net::TcpListener::bind(&server, "0.0.0.0:8080".parse().unwrap()).unwrap();
    wsock::ext::set_thread_host(&n.host("client").unwrap());
    assert_eq!(nonblocking_connect::run([10, 0, 0, 2], 8080), Ok(()));
    assert_eq!(
        nonblocking_connect::run([10, 0, 0, 2], 8081),
        Err(wsock::sys::WSAECONNREFUSED)
    );
}

/// The `WSAEventSelect` server serves three clients.
#[test]
fn example_event_select_server_echoes_three_clients() {
    let n = net();
    let (echoed, echoes) = event_select_server::demo(&n, 27020, 3).unwrap();
    assert_eq!(echoes.len(), 3);
    for (i, e) in echoes.iter().enumerate() {
        assert_eq!(e, format!("hello from client {i}").as_bytes());
    }
    assert_eq!(echoed, echoes.iter().map(Vec::len).sum::<usize>());
}

/// Overlapped `WSASend`/`WSARecv` with an event against a TCP echo service.
#[test]
fn example_overlapped_echo_round_trips() {
    let n = net();
    wsock::ext::set_thread_host(&n.host("client").unwrap());
    let got = overlapped_echo::run([10, 0, 0, 2], 7, b"overlapped hello").unwrap();
    assert_eq!(got, b"overlapped hello");
}

/// `gethostname` + `getnameinfo`.
#[test]
fn example_hostname_names_this_host_and_the_server() {
    let n = net();
    wsock::ext::set_thread_host(&n.host("client").unwrap());
    let names = hostname::run([10, 0, 0, 2], 80).unwrap();
    assert!(names.host.eq_ignore_ascii_case("client"), "{names:?}");
    assert!(
        names.name.0.to_ascii_lowercase().starts_with("server"),
        "{names:?}"
    );
    assert_eq!(names.numeric, ("10.0.0.2".to_string(), "80".to_string()));
}

/// IPv6 with `AF_UNSPEC`: the server listens on `[::]`, the client reaches it over IPv6.
/// getaddrinfo lists 10.0.0.2 before fd00::2 (RFC 6724 ranks IPv4 above ULA); the IPv6-only
/// listener refuses the IPv4 attempt, as on Windows, and fd00::2 answers.
#[test]
fn example_ipv6_unspec_connects_over_ipv6() {
    let n = net();
    wsock::ext::set_thread_host(&n.host("server").unwrap());
    let _l = ipv6_unspec::listen_v6(27030).unwrap();
    wsock::ext::set_thread_host(&n.host("client").unwrap());
    let a = ipv6_unspec::run_client("server", "27030").unwrap();
    assert_eq!(a, "fd00::2");
}

/// The secure server of Microsoft's secure-socket sample: one client's 8 bytes, an encrypted
/// connection, a granted access check with the peer's token, the peer impersonated, the 11-byte
/// reply; every token handle closed.
#[test]
fn example_secure_server_serves_a_secure_client() {
    let n = net();
    let (served, reply) = secure_server::demo(&n).unwrap();
    assert_eq!(served.received, b"12345678");
    assert_eq!(served.flags & 0x3, 0x3, "secured and encrypted");
    assert!(served.access_granted);
    assert!(
        served.impersonated_sid.starts_with("S-1-5-21-"),
        "{served:?}"
    );
    assert_eq!(reply, secure_server::REPLY);
    assert_eq!(
        wsock::identity::open_handles(&n),
        0,
        "no token handle leaks"
    );
}

/// The secure client of the sample against a Rust-face server that impersonates it.
#[test]
fn example_secure_client_talks_to_a_secure_server() {
    let n = net();
    let (outcome, who) = secure_client::demo(&n).unwrap();
    assert_eq!(outcome.flags & 0x3, 0x3);
    assert_eq!(outcome.reply, b"91011121314");
    assert_eq!(who, "WSOCK\\CLIENT$");
}

/// Secure-socket reference case 51: the sample client and the sample server, both raw-face
/// Windows code, end to end on the scenario's addresses.
#[test]
fn case_51_sample_client_and_server_end_to_end() {
    let n = net();
    let server = n.host("server").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        secure_server::run_server(1, &|| {
            let _ = tx.send(());
        })
    });
    rx.recv().expect("server listens");
    wsock::ext::set_thread_host(&n.host("client").unwrap());
    let outcome = secure_client::run_client("server").unwrap();
    let served = t.join().unwrap().unwrap();
    assert_eq!(outcome.reply, b"91011121314");
    assert_eq!(outcome.flags & 0x3, 0x3);
    assert_eq!(served[0].received, b"12345678");
    assert!(served[0].access_granted);
    assert_eq!(wsock::identity::open_handles(&n), 0);
}

/// The secure UDP pair: names per peer, query and impersonation by peer address.
#[test]
fn example_secure_udp_pair() {
    let n = net();
    let (saw, reply, flags) = secure_udp::demo(&n).unwrap();
    assert_eq!(saw.data, b"ping");
    assert_eq!(saw.flags & 0x3, 0x3);
    assert!(saw.impersonated);
    assert_eq!(reply, b"pong");
    assert_eq!(flags & 0x3, 0x3);
    assert_eq!(wsock::identity::open_handles(&n), 0);
}
