//! `wsock demo`: a TCP echo and a UDP exchange between the scenario's first two hosts, written
//! the way a Windows program is (the raw `wsock::sys` face), printed layer by layer.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use wsock::sys::*;
use wsock::{Host, Network};

use crate::secure_demo;
use crate::trace_hook::PrintPackets;

fn sockaddr(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; 16];
            b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; 28];
            b[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b
        }
    }
}

fn last_error(what: &str) -> String {
    // SAFETY: WSAGetLastError reads a thread-local value.
    let code = unsafe { WSAGetLastError() };
    format!("{what} failed with WSA error {code}")
}

/// Prints what ALE classified on both hosts since the last call, naming the host and the ALE
/// endpoint (the socket) of each classification, so the trace interleaves with the API calls
/// and the packets.
pub(crate) struct AleTap {
    hosts: Vec<(Host, usize)>,
}

impl AleTap {
    fn new(hosts: &[&Host]) -> AleTap {
        AleTap {
            hosts: hosts.iter().map(|h| ((*h).clone(), 0)).collect(),
        }
    }

    pub(crate) fn flush(&mut self) {
        for (host, seen) in &mut self.hosts {
            let records: Vec<String> = host.with_ale(|ale| {
                let all: Vec<_> = ale.trace().collect();
                if all.len() < *seen {
                    *seen = 0; // the trace ring wrapped
                }
                let new = all[*seen..]
                    .iter()
                    .map(|r| {
                        let by = r
                            .filter_id
                            .map(|f| format!("by filter {f}"))
                            .unwrap_or_else(|| "(no filter matched)".into());
                        let sock = r
                            .endpoint
                            .map(|e| format!(" socket(ALE endpoint {})", e.0))
                            .unwrap_or_default();
                        let flow = r.flow.map(|f| format!(" flow {}", f.0)).unwrap_or_default();
                        format!(
                            "{}{sock}{flow}: {} -> {} {by}",
                            host.name(),
                            r.layer,
                            format!("{:?}", r.decision).to_lowercase()
                        )
                    })
                    .collect();
                *seen = all.len();
                new
            });
            for line in records {
                outln!("[ale   ] {line}");
            }
        }
    }
}

/// The client side, in Winsock calls. Returns the echoed TCP bytes and UDP bytes.
#[allow(unsafe_code)]
fn client_calls(
    client: &Host,
    tap: &mut AleTap,
    server_addr: IpAddr,
    tcp_port: u16,
    udp_port: u16,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    wsock::ext::set_thread_host(client);
    // SAFETY: every pointer below points into live local buffers with the lengths passed.
    unsafe {
        let mut data: WSADATA = std::mem::zeroed();
        if WSAStartup(0x0202, &mut data) != 0 {
            return Err("WSAStartup failed".into());
        }
        outln!("[api   ] client: WSAStartup(2.2) = 0");
        let af = if server_addr.is_ipv4() {
            AF_INET
        } else {
            AF_INET6
        } as i32;
        let s = socket(af, SOCK_STREAM, IPPROTO_TCP);
        if s == INVALID_SOCKET {
            return Err(last_error("socket"));
        }
        let timeout: i32 = 10_000;
        setsockopt(
            s,
            SOL_SOCKET,
            SO_RCVTIMEO,
            &timeout as *const i32 as *const u8,
            4,
        );
        let to = SocketAddr::new(server_addr, tcp_port);
        let sa = sockaddr(to);
        outln!(
            "[api   ] client: socket(AF_INET{}, SOCK_STREAM) = {s:#x}; connect({to})",
            if server_addr.is_ipv4() { "" } else { "6" }
        );
        if connect(s, sa.as_ptr() as *const SOCKADDR, sa.len() as i32) != 0 {
            return Err(last_error("connect"));
        }
        tap.flush();
        let mut local = [0u8; 28];
        let mut len = local.len() as i32;
        getsockname(s, local.as_mut_ptr() as *mut SOCKADDR, &mut len);
        outln!(
            "[api   ] client: connect = 0 (local port {})",
            u16::from_be_bytes([local[2], local[3]])
        );
        let msg = b"hello from a Winsock client on wsock";
        let n = send(s, msg.as_ptr(), msg.len() as i32, 0);
        outln!("[api   ] client: send({} bytes) = {n}", msg.len());
        let mut buf = vec![0u8; msg.len()];
        let got = recv(s, buf.as_mut_ptr(), buf.len() as i32, MSG_WAITALL);
        if got < 0 {
            return Err(last_error("recv"));
        }
        buf.truncate(got as usize);
        outln!(
            "[api   ] client: recv(MSG_WAITALL) = {got}: {:?}",
            String::from_utf8_lossy(&buf)
        );
        shutdown(s, SD_SEND);
        let mut tail = [0u8; 16];
        let eof = recv(s, tail.as_mut_ptr(), tail.len() as i32, 0);
        outln!("[api   ] client: shutdown(SD_SEND); recv = {eof} (server closed its side)");
        closesocket(s);
        tap.flush();

        let u = socket(af, SOCK_DGRAM, IPPROTO_UDP);
        setsockopt(
            u,
            SOL_SOCKET,
            SO_RCVTIMEO,
            &timeout as *const i32 as *const u8,
            4,
        );
        let uto = sockaddr(SocketAddr::new(server_addr, udp_port));
        let dgram = b"one UDP datagram";
        let sent = sendto(
            u,
            dgram.as_ptr(),
            dgram.len() as i32,
            0,
            uto.as_ptr() as *const SOCKADDR,
            uto.len() as i32,
        );
        outln!("[api   ] client: socket(SOCK_DGRAM) = {u:#x}; sendto({}:{udp_port}, {} bytes) = {sent}", server_addr, dgram.len());
        tap.flush();
        let mut ubuf = vec![0u8; 1500];
        let mut from = [0u8; 28];
        let mut flen = from.len() as i32;
        let r = recvfrom(
            u,
            ubuf.as_mut_ptr(),
            ubuf.len() as i32,
            0,
            from.as_mut_ptr() as *mut SOCKADDR,
            &mut flen,
        );
        if r < 0 {
            return Err(last_error("recvfrom"));
        }
        ubuf.truncate(r as usize);
        outln!(
            "[api   ] client: recvfrom = {r}: {:?}",
            String::from_utf8_lossy(&ubuf)
        );
        closesocket(u);
        WSACleanup();
        tap.flush();
        Ok((buf, ubuf))
    }
}

/// Runs the demo on `net`. Returns an error message when an exchange fails.
pub fn run(net: &Network, print_packets: bool) -> Result<(), String> {
    let sc = net.scenario();
    outln!(
        "wsock demo: scenario {:?}, seed {}, link MTU {}",
        sc.name,
        net.seed(),
        net.mtu()
    );
    for h in net.hosts() {
        let w = h.wire_addrs();
        outln!(
            "  host {:<8} {} / {}  wire udp: ike {} natt {} clear {}",
            h.name(),
            h.ipv4(),
            h.ipv6(),
            w.ike,
            w.natt,
            w.clear
        );
    }
    let hosts = net.hosts();
    let (client, server) = match (hosts.first(), hosts.get(1)) {
        (Some(c), Some(s)) => (c.clone(), s.clone()),
        _ => return Err("the demo needs two hosts in the scenario".into()),
    };
    let svc = &server.spec().services;
    let tcp_port = svc
        .iter()
        .find(|s| s.kind == wsock_stack::scenario::ServiceKind::TcpEcho)
        .map(|s| s.port);
    let udp_port = svc
        .iter()
        .find(|s| s.kind == wsock_stack::scenario::ServiceKind::UdpEcho)
        .map(|s| s.port);
    let (Some(tcp_port), Some(udp_port)) = (tcp_port, udp_port) else {
        return Err(format!(
            "host {:?} needs a tcp-echo and a udp-echo service for the demo",
            server.name()
        ));
    };
    outln!("[api   ] server: tcp-echo listening on 0.0.0.0:{tcp_port}, udp-echo bound to 0.0.0.0:{udp_port} (the scenario's services, started with the network)");
    outln!("[ale   ] every socket event is classified by ALE against each host's WFP filters ({} on client, {} on server)", client.filters().len(), server.filters().len());
    outln!("         ALE (Application Layer Enforcement): the part of Windows' stack that asks the filter engine before a socket binds, connects, accepts or sends its first datagram");
    outln!("         WFP (Windows Filtering Platform): that filter engine; filters at each layer permit or block, ranked by sublayer and weight");
    outln!("[ipsec ] a clear socket's traffic crosses the wire in clear (GRE-in-UDP); a secure socket's as ESP-in-UDP after IKEv2");
    outln!("         GRE-in-UDP: each virtual IP packet travels in a GRE header inside a real UDP datagram on loopback (RFC 8086), which Wireshark dissects");
    if print_packets {
        for h in [&client, &server] {
            h.add_stage(Box::new(PrintPackets {
                printed: AtomicU64::new(0),
                limit: 40,
                secure_ports: vec![secure_demo::SECURE_PORT],
            }));
        }
    }
    outln!();
    outln!("== clear sockets: a TCP echo and a UDP exchange ==");
    let server_ip = IpAddr::V4(server.ipv4());
    let c = client.clone();
    let mut tap = AleTap::new(&[&client, &server]);
    tap.flush(); // the services' binds and listens
    let (tcp, udp, mut tap) = std::thread::spawn(move || {
        let r = client_calls(&c, &mut tap, server_ip, tcp_port, udp_port);
        std::thread::sleep(std::time::Duration::from_millis(20));
        tap.flush();
        r.map(|(t, u)| (t, u, tap))
    })
    .join()
    .map_err(|_| "the client thread panicked".to_string())??;
    let ok_tcp = tcp == b"hello from a Winsock client on wsock";
    let ok_udp = udp == b"one UDP datagram";
    let cs = client.counters();
    let ss = server.counters();
    outln!(
        "[wire  ] client sent {} / received {} datagrams; server sent {} / received {}",
        cs.wire_sent,
        cs.wire_received,
        ss.wire_sent,
        ss.wire_received
    );
    let secure =
        secure_demo::run(&client, &server, &mut tap).and_then(|o| secure_demo::check(&client, &o));
    if let Err(e) = &secure {
        outln!("[ipsec ] {e}");
        print_ike_failures(&client);
    }
    outln!();
    let blocked = blocked_connect(&client, server_ip, tcp_port)?;
    if ok_tcp && ok_udp && blocked && secure.is_ok() {
        outln!("demo ok: TCP echo and UDP exchange completed between {} and {}; a secure TCP echo ran over IPsec (AES-GCM); a WFP filter blocked a connect", client.name(), server.name());
        Ok(())
    } else {
        Err(format!(
            "demo failed: tcp echo ok {ok_tcp}, udp exchange ok {ok_udp}, secure exchange ok {}, block seen {blocked}",
            secure.is_ok()
        ))
    }
}

/// Prints the client's IKE failure net events (why a secure connect failed).
fn print_ike_failures(client: &Host) {
    use wsock_stack::wsock_wfp::NetEventKind;
    for e in client.net_events() {
        if let NetEventKind::IkeMmFailure {
            failure_error_code, ..
        }
        | NetEventKind::IkeQmFailure {
            failure_error_code, ..
        } = e.kind
        {
            let remote = e
                .header
                .remote
                .map_or_else(|| "unknown".to_string(), |a| a.to_string());
            outln!(
                "[wfp   ] client: net event: IKE negotiation with {remote} failed: {}",
                crate::policy::winerr_text(Some(u64::from(failure_error_code)))
            );
        }
    }
}

/// Adds a BLOCK filter for the server's echo port on the client, shows `connect` failing with
/// WSAEACCES and the net event naming the filter, then removes the filter.
#[allow(unsafe_code)]
fn blocked_connect(client: &Host, server_ip: IpAddr, port: u16) -> Result<bool, String> {
    use wsock_stack::wsock_wfp::{ConditionSpec, FilterSpec, NetEventKind, ValueSpec};
    let spec = FilterSpec {
        name: format!("demo: block TCP to port {port}"),
        layer: "FWPM_LAYER_ALE_AUTH_CONNECT_V4".into(),
        action: "block".into(),
        conditions: vec![ConditionSpec::new(
            "ip_remote_port",
            "equal",
            ValueSpec::Int(i64::from(port)),
        )],
        ..Default::default()
    };
    let id = client.add_filter(&spec).map_err(|e| e.to_string())?;
    outln!(
        "[wfp   ] client: added filter {id} {:?} at FWPM_LAYER_ALE_AUTH_CONNECT_V4",
        spec.name
    );
    let c = client.clone();
    let code = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&c);
        // SAFETY: pointers point into live locals with the lengths passed.
        unsafe {
            let mut data: WSADATA = std::mem::zeroed();
            WSAStartup(0x0202, &mut data);
            let s = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
            let sa = sockaddr(SocketAddr::new(server_ip, port));
            let r = connect(s, sa.as_ptr() as *const SOCKADDR, sa.len() as i32);
            let code = if r == 0 { 0 } else { WSAGetLastError() };
            closesocket(s);
            WSACleanup();
            code
        }
    })
    .join()
    .map_err(|_| "the client thread panicked".to_string())?;
    let result = if code == 0 {
        "0".to_string()
    } else {
        format!("SOCKET_ERROR, WSAGetLastError() = {code}")
    };
    outln!("[api   ] client: connect({server_ip}:{port}) = {result} (WSAEACCES is {WSAEACCES})");
    let event = client
        .net_events()
        .into_iter()
        .rev()
        .find_map(|e| match e.kind {
            NetEventKind::ClassifyDrop(c) if c.filter_id == id => {
                Some((c.layer.to_string(), c.filter_name, e.header.remote))
            }
            _ => None,
        });
    if let Some((layer, name, remote)) = &event {
        let remote = remote.map_or_else(|| "unknown".to_string(), |a| a.to_string());
        outln!(
            "[wfp   ] client: net event: drop at {layer} by filter {id} {name:?}, remote {remote}"
        );
    }
    client.delete_filter(id).map_err(|e| e.to_string())?;
    outln!("[wfp   ] client: filter {id} deleted");
    Ok(code == WSAEACCES && event.is_some())
}
