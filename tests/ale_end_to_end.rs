//! ALE and WFP through the socket API: filters decide at socket events, blocks reach the
//! application as Windows codes, and each drop is a net event naming its filter.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsock::net::{TcpListener, TcpStream, UdpSocket};
use wsock::{Network, Scenario};
use wsock_stack::wsock_wfp::{ConditionSpec, FilterSpec, NetEventKind, ValueSpec};

fn net() -> Network {
    Network::start(Scenario::default_scenario()).expect("network")
}

fn block(name: &str, layer: &str, field: &str, port: i64) -> FilterSpec {
    FilterSpec {
        name: name.into(),
        layer: layer.into(),
        action: "block".into(),
        conditions: vec![ConditionSpec::new(field, "equal", ValueSpec::Int(port))],
        ..Default::default()
    }
}

fn drops_by(host: &wsock::Host, filter: u64) -> usize {
    host.net_events()
        .iter()
        .filter(|e| matches!(&e.kind, NetEventKind::ClassifyDrop(c) if c.filter_id == filter))
        .count()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn block_on_remote_port_fails_connect_with_wsaeacces_and_names_the_filter_until_removed() {
    let net = net();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let _listener = TcpListener::bind(&server, addr("0.0.0.0:80")).unwrap();
    let id = client
        .add_filter(&block(
            "no port 80",
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "ip_remote_port",
            80,
        ))
        .unwrap();
    let rt = net.runtime().unwrap();
    let err = rt
        .block_on(TcpStream::connect(&client, addr("10.0.0.2:80")))
        .unwrap_err();
    assert_eq!(err.wsa_code(), 10013, "WSAEACCES, got {err}");
    assert!(
        err.to_string().contains("no port 80"),
        "the error names the filter: {err}"
    );
    assert_eq!(
        drops_by(&client, id),
        1,
        "one drop event naming filter {id}"
    );
    let ev = client
        .net_events()
        .into_iter()
        .find(|e| matches!(&e.kind, NetEventKind::ClassifyDrop(_)))
        .unwrap();
    assert_eq!(ev.header.remote, Some(addr("10.0.0.2:80")));
    assert_eq!(ev.header.protocol, 6);
    // No SYN left the client: the server never saw a packet.
    assert_eq!(server.counters().wire_received, 0);

    // The raw face reports the same code.
    wsock::ext::set_thread_host(&client);
    // SAFETY: pointers point into live locals with the lengths passed.
    unsafe {
        use wsock::sys::*;
        let mut d: WSADATA = std::mem::zeroed();
        assert_eq!(WSAStartup(0x202, &mut d), 0);
        let s = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
        let mut sa = [0u8; 16];
        sa[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        sa[2..4].copy_from_slice(&80u16.to_be_bytes());
        sa[4..8].copy_from_slice(&[10, 0, 0, 2]);
        assert_eq!(connect(s, sa.as_ptr() as *const SOCKADDR, 16), SOCKET_ERROR);
        assert_eq!(WSAGetLastError(), WSAEACCES);
        closesocket(s);
        WSACleanup();
    }
    assert_eq!(drops_by(&client, id), 2);

    client.delete_filter(id).unwrap();
    let ok = rt.block_on(TcpStream::connect(&client, addr("10.0.0.2:80")));
    assert!(
        ok.is_ok(),
        "after removing the filter the next connect goes through: {ok:?}"
    );
}

#[test]
fn a_policy_change_tears_down_an_established_flow() {
    let net = net();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let listener = TcpListener::bind(&server, addr("0.0.0.0:81")).unwrap();
    let rt = net.runtime().unwrap();
    let (mut c, mut s) = rt.block_on(async {
        let c = TcpStream::connect(&client, addr("10.0.0.2:81"))
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        (c, s)
    });
    rt.block_on(async {
        c.write_all(b"before").await.unwrap();
        let mut b = [0u8; 6];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"before");
    });
    let id = client
        .add_filter(&block(
            "cut 81",
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "ip_remote_port",
            81,
        ))
        .unwrap();
    let err = rt.block_on(c.write_all(b"after")).unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<wsock::Error>())
        .expect("a wsock error");
    assert_eq!(inner.wsa_code(), 10053, "WSAECONNABORTED, got {inner}");
    assert!(
        drops_by(&client, id) >= 1,
        "the re-authorization drop names filter {id}"
    );
    // The peer sees the connection end (reset), not the data.
    let mut b = [0u8; 16];
    let r =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), s.read(&mut b)).await });
    match r {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("the server should see the flow end, got {other:?}"),
    }
}

#[test]
fn a_blocked_inbound_connection_never_reaches_accept() {
    let net = net();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let listener = server.tcp(wsock::Family::V4);
    listener.bind(addr("0.0.0.0:82")).unwrap();
    listener.listen(4).unwrap();
    let id = server
        .add_filter(&block(
            "no inbound 82",
            "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4",
            "ip_local_port",
            82,
        ))
        .unwrap();
    let conn = client.tcp(wsock::Family::V4);
    conn.start_connect(addr("10.0.0.2:82")).unwrap();
    // Wait (bounded) until the server has dropped at least two SYNs (the first and a retransmit).
    let mut waited = 0;
    while drops_by(&server, id) < 2 && waited < 200 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    assert!(
        drops_by(&server, id) >= 2,
        "the server drops the SYN and its retransmission, naming filter {id}"
    );
    assert_eq!(
        listener.try_accept().unwrap_err(),
        wsock::StackError::WouldBlock,
        "nothing reaches accept"
    );
    assert_eq!(
        conn.connect_status(),
        Ok(false),
        "the client gets no answer (no RST): still connecting"
    );
    // Removing the filter lets the retransmitted SYN through.
    server.delete_filter(id).unwrap();
    let rt = net.runtime().unwrap();
    rt.block_on(async {
        let (_s, peer) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .expect("accepted after removal")
            .unwrap();
        assert_eq!(peer.ip(), client.ipv4());
    });
}

#[test]
fn udp_send_block_is_wsaeacces_and_receive_block_drops_the_datagram() {
    let net = net();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let rt = net.runtime().unwrap();
    let srv = UdpSocket::bind(&server, addr("0.0.0.0:53")).unwrap();
    let a = UdpSocket::bind(&client, addr("0.0.0.0:4000")).unwrap();
    let b = UdpSocket::bind(&client, addr("0.0.0.0:4001")).unwrap();
    let send_block = client
        .add_filter(&block(
            "no dns out",
            "FWPM_LAYER_ALE_AUTH_CONNECT_V4",
            "ip_remote_port",
            54,
        ))
        .unwrap();
    let err = rt
        .block_on(a.send_to(b"x", addr("10.0.0.2:54")))
        .unwrap_err();
    assert_eq!(err.wsa_code(), 10013);
    assert_eq!(drops_by(&client, send_block), 1);
    // The server refuses datagrams from the client's port 4000; 4001 gets through.
    let recv_block = server
        .add_filter(&block(
            "no 4000 in",
            "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4",
            "ip_remote_port",
            4000,
        ))
        .unwrap();
    rt.block_on(async {
        a.send_to(b"DROP me", addr("10.0.0.2:53")).await.unwrap();
        b.send_to(b"keep me", addr("10.0.0.2:53")).await.unwrap();
        let mut buf = [0u8; 32];
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), srv.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from.port()), (&b"keep me"[..], 4001));
    });
    assert_eq!(
        drops_by(&server, recv_block),
        1,
        "the dropped datagram is a net event naming the filter"
    );
}

#[test]
fn blocked_bind_is_wsaeacces_at_resource_assignment() {
    let net = net();
    let server = net.host("server").unwrap();
    let id = server
        .add_filter(&block(
            "no 8080",
            "FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4",
            "ip_local_port",
            8080,
        ))
        .unwrap();
    let err = TcpListener::bind(&server, addr("0.0.0.0:8080")).unwrap_err();
    assert_eq!(err.wsa_code(), 10013);
    assert_eq!(drops_by(&server, id), 1);
    // The port was not kept: after removing the filter the same bind works.
    server.delete_filter(id).unwrap();
    assert!(TcpListener::bind(&server, addr("0.0.0.0:8080")).is_ok());
}

#[test]
fn scenario_filters_apply_and_bad_ones_name_file_line_and_reason() {
    let mut text = wsock_stack::scenario::DEFAULT_SCENARIO_TOML.to_string();
    text.push_str(
        "\n[[host.filter]]\nname = \"no echo in\"\nlayer = \"FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4\"\naction = \"block\"\nconditions = [{ field = \"ip_local_port\", match_type = \"equal\", value = 7 }]\n",
    );
    let sc = Scenario::from_toml_str(&text, "lab.toml").unwrap();
    let net = Network::start(sc).unwrap();
    let server = net.host("server").unwrap();
    assert!(server.filters().iter().any(|f| f.name == "no echo in"));

    let bad = text.replace("FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4", "FWPM_LAYER_NO_SUCH");
    let err = Scenario::from_toml_str(&bad, "lab.toml").unwrap_err();
    let line = bad
        .lines()
        .position(|l| l.trim() == "[[host.filter]]")
        .unwrap()
        + 1;
    assert_eq!(err.line, Some(line), "{err}");
    assert!(err.to_string().contains("FWP_E_"), "{err}");
}

#[test]
fn connect_to_an_address_no_host_has_is_wsaehostunreach() {
    let net = net();
    let client = net.host("client").unwrap();
    let err = net
        .runtime()
        .unwrap()
        .block_on(TcpStream::connect(&client, addr("10.9.9.9:80")))
        .unwrap_err();
    assert_eq!(err.wsa_code(), 10065, "{err}");
}

#[test]
fn a_transport_layer_filter_drops_the_data_of_an_established_connection() {
    // ALE per packet: once a connection is established, its segments are classified at the
    // transport layers. A block on the server's inbound transport layer for the client's data
    // stops the stream (nothing is delivered), and each drop is a net event naming the filter.
    let net = net();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let rt = net.runtime().unwrap();
    let listener = TcpListener::bind(&server, addr("0.0.0.0:8200")).unwrap();
    rt.block_on(async {
        let mut c = TcpStream::connect(&client, addr("10.0.0.2:8200"))
            .await
            .unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        c.write_all(b"before").await.unwrap();
        let mut buf = [0u8; 6];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"before");
        let f = server
            .add_filter(&block(
                "no data in",
                "FWPM_LAYER_INBOUND_TRANSPORT_V4",
                "ip_local_port",
                8200,
            ))
            .unwrap();
        c.write_all(b"after").await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "nothing arrives while the transport filter blocks: {r:?}"
        );
        assert!(drops_by(&server, f) >= 1, "the drops name the filter");
        server.delete_filter(f).unwrap();
        // Retransmission delivers the held-back bytes once the filter is gone.
        let mut got = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut got))
            .await
            .expect("delivered after the filter is deleted")
            .unwrap();
        assert_eq!(&got, b"after");
    });
}
