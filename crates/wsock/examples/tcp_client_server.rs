//! The "Complete Winsock Server Code" and "Complete Winsock Client Code" of Microsoft's Winsock
//! documentation, in Rust against the raw face: the server resolves its listening address with
//! `getaddrinfo(NULL, port, AI_PASSIVE)`, binds, listens, accepts one client and echoes what it
//! receives until the client shuts down; the client resolves the server by host name or by
//! number with `getaddrinfo(AF_UNSPEC)`, tries each result until `connect` succeeds, sends,
//! shuts down sending and reads the echo until the server closes.
//!
//! [`run_server`] and [`run_client`] are the Windows code; the only change from Windows is the
//! import (`windows_sys::Win32::Networking::WinSock::*` becomes `wsock::sys::*`), plus the
//! `ready` callback the server calls once it listens (so the client does not race it). What
//! Windows does not need is in `main`: the simulated network (the embedded default scenario:
//! `client` 10.0.0.1, `server` 10.0.0.2) and each thread's host.
//!
//! ```sh
//! cargo run -p wsock --example tcp_client_server
//! ```

use std::mem::zeroed;
use std::ptr::null_mut;

use wsock::sys::*;

const DEFAULT_BUFLEN: usize = 512;

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The complete server: echoes one client's bytes back; returns how many it echoed.
///
/// # Errors
/// The failing call and its code.
pub fn run_server(port: &str, ready: &dyn Fn()) -> Result<usize, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed with error: {rc}"));
        }
        let mut hints: ADDRINFOA = zeroed();
        hints.ai_family = AF_INET as i32;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        hints.ai_flags = AI_PASSIVE as i32;
        let mut result: *mut ADDRINFOA = null_mut();
        let port_c = cstr(port);
        let rc = getaddrinfo(std::ptr::null(), port_c.as_ptr(), &hints, &mut result);
        if rc != 0 {
            WSACleanup();
            return Err(format!("getaddrinfo failed with error: {rc}"));
        }
        let listen_socket = socket(
            (*result).ai_family,
            (*result).ai_socktype,
            (*result).ai_protocol,
        );
        if listen_socket == INVALID_SOCKET {
            let e = WSAGetLastError();
            freeaddrinfo(result);
            WSACleanup();
            return Err(format!("socket failed with error: {e}"));
        }
        if bind(
            listen_socket,
            (*result).ai_addr,
            (*result).ai_addrlen as i32,
        ) == SOCKET_ERROR
        {
            let e = WSAGetLastError();
            freeaddrinfo(result);
            closesocket(listen_socket);
            WSACleanup();
            return Err(format!("bind failed with error: {e}"));
        }
        freeaddrinfo(result);
        if listen(listen_socket, SOMAXCONN as i32) == SOCKET_ERROR {
            let e = WSAGetLastError();
            closesocket(listen_socket);
            WSACleanup();
            return Err(format!("listen failed with error: {e}"));
        }
        ready();
        let client_socket = accept(listen_socket, null_mut(), null_mut());
        if client_socket == INVALID_SOCKET {
            let e = WSAGetLastError();
            closesocket(listen_socket);
            WSACleanup();
            return Err(format!("accept failed with error: {e}"));
        }
        closesocket(listen_socket);
        let mut recvbuf = [0u8; DEFAULT_BUFLEN];
        let mut echoed = 0usize;
        loop {
            let n = recv(
                client_socket,
                recvbuf.as_mut_ptr(),
                DEFAULT_BUFLEN as i32,
                0,
            );
            if n > 0 {
                let sent = send(client_socket, recvbuf.as_ptr(), n, 0);
                if sent == SOCKET_ERROR {
                    let e = WSAGetLastError();
                    closesocket(client_socket);
                    WSACleanup();
                    return Err(format!("send failed with error: {e}"));
                }
                echoed += sent as usize;
            } else if n == 0 {
                break; // Connection closing...
            } else {
                let e = WSAGetLastError();
                closesocket(client_socket);
                WSACleanup();
                return Err(format!("recv failed with error: {e}"));
            }
        }
        if shutdown(client_socket, SD_SEND) == SOCKET_ERROR {
            let e = WSAGetLastError();
            closesocket(client_socket);
            WSACleanup();
            return Err(format!("shutdown failed with error: {e}"));
        }
        closesocket(client_socket);
        WSACleanup();
        Ok(echoed)
    }
}

/// The complete client: connects to `server` (a host name or a number), sends `message`,
/// shuts down sending and returns everything received until the server closed.
///
/// # Errors
/// The failing call and its code.
pub fn run_client(server: &str, port: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed with error: {rc}"));
        }
        let mut hints: ADDRINFOA = zeroed();
        hints.ai_family = AF_UNSPEC as i32;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        let mut result: *mut ADDRINFOA = null_mut();
        let (node, port_c) = (cstr(server), cstr(port));
        let rc = getaddrinfo(node.as_ptr(), port_c.as_ptr(), &hints, &mut result);
        if rc != 0 {
            WSACleanup();
            return Err(format!("getaddrinfo failed with error: {rc}"));
        }
        // Attempt to connect to an address until one succeeds.
        let mut connect_socket = INVALID_SOCKET;
        let mut ptr = result;
        while !ptr.is_null() {
            connect_socket = socket((*ptr).ai_family, (*ptr).ai_socktype, (*ptr).ai_protocol);
            if connect_socket == INVALID_SOCKET {
                let e = WSAGetLastError();
                WSACleanup();
                return Err(format!("socket failed with error: {e}"));
            }
            if connect(connect_socket, (*ptr).ai_addr, (*ptr).ai_addrlen as i32) == SOCKET_ERROR {
                closesocket(connect_socket);
                connect_socket = INVALID_SOCKET;
                ptr = (*ptr).ai_next;
                continue;
            }
            break;
        }
        freeaddrinfo(result);
        if connect_socket == INVALID_SOCKET {
            WSACleanup();
            return Err("Unable to connect to server!".into());
        }
        if send(connect_socket, message.as_ptr(), message.len() as i32, 0) == SOCKET_ERROR {
            let e = WSAGetLastError();
            closesocket(connect_socket);
            WSACleanup();
            return Err(format!("send failed with error: {e}"));
        }
        if shutdown(connect_socket, SD_SEND) == SOCKET_ERROR {
            let e = WSAGetLastError();
            closesocket(connect_socket);
            WSACleanup();
            return Err(format!("shutdown failed with error: {e}"));
        }
        let mut received = Vec::new();
        let mut recvbuf = [0u8; DEFAULT_BUFLEN];
        loop {
            let n = recv(
                connect_socket,
                recvbuf.as_mut_ptr(),
                DEFAULT_BUFLEN as i32,
                0,
            );
            if n > 0 {
                received.extend_from_slice(&recvbuf[..n as usize]);
            } else if n == 0 {
                break; // Connection closed
            } else {
                let e = WSAGetLastError();
                closesocket(connect_socket);
                WSACleanup();
                return Err(format!("recv failed with error: {e}"));
            }
        }
        closesocket(connect_socket);
        WSACleanup();
        Ok(received)
    }
}

/// Runs the server on the `server` host (a thread) and the client on `client`, the client
/// naming the server by `name`. Returns (bytes the server echoed, what the client received).
pub fn demo(
    net: &wsock::Network,
    name: &str,
    port: &str,
    message: &[u8],
) -> Result<(usize, Vec<u8>), String> {
    let server = net.host("server").ok_or("no server host")?;
    let client = net.host("client").ok_or("no client host")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let port_s = port.to_string();
    let t = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        run_server(&port_s, &|| {
            let _ = tx.send(());
        })
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .map_err(|_| "the server did not start listening".to_string())?;
    wsock::ext::set_thread_host(&client);
    let got = run_client(name, port, message)?;
    let echoed = t.join().map_err(|_| "server thread panicked")??;
    Ok((echoed, got))
}

fn main() -> std::process::ExitCode {
    let net = match wsock::Network::start(wsock::Scenario::default_scenario()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("setup: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for (name, port) in [("server", "27015"), ("10.0.0.2", "27016")] {
        match demo(&net, name, port, b"this is a test") {
            Ok((echoed, got)) => println!(
                "{name}: server echoed {echoed} bytes, client received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Err(e) => {
                eprintln!("{name}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
