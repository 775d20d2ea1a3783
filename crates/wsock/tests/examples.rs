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
