//! A `WSAEventSelect` echo server, the pattern of Microsoft's "WSAEventSelect function" and
//! "WSAWaitForMultipleEvents function" pages: one event per socket, `WSAWaitForMultipleEvents`
//! over all of them, `WSAEnumNetworkEvents` on the signalled one, then `FD_ACCEPT` (accept and
//! register the new socket for `FD_READ | FD_CLOSE`), `FD_READ` (echo) and `FD_CLOSE` (close
//! and forget).
//!
//! [`run_server`] is the Windows code; only the import changed (plus the `ready` callback).
//! `main` starts the simulated network and runs clients on the `client` host.
//!
//! ```sh
//! cargo run -p wsock --example event_select_server
//! ```

use std::ffi::c_void;
use std::mem::{size_of, zeroed};
use std::ptr::null_mut;

use wsock::sys::*;

/// Serves `clients` connections on `port` (echoing), then returns the bytes echoed.
///
/// # Errors
/// The failing call and its code.
pub fn run_server(port: u16, clients: usize, ready: &dyn Fn()) -> Result<usize, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        if WSAStartup(0x0202, &mut wsa) != 0 {
            return Err("WSAStartup failed".into());
        }
        let r = serve(port, clients, ready);
        WSACleanup();
        r
    }
}

unsafe fn serve(port: u16, clients: usize, ready: &dyn Fn()) -> Result<usize, String> {
    let listen_socket = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
    let mut addr: SOCKADDR_IN = zeroed();
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.S_un.S_addr = htonl(INADDR_ANY);
    if bind(
        listen_socket,
        &addr as *const SOCKADDR_IN as *const SOCKADDR,
        size_of::<SOCKADDR_IN>() as i32,
    ) == SOCKET_ERROR
        || listen(listen_socket, SOMAXCONN as i32) == SOCKET_ERROR
    {
        return Err(format!(
            "bind/listen failed with error: {}",
            WSAGetLastError()
        ));
    }
    let listen_event = WSACreateEvent();
    if WSAEventSelect(listen_socket, listen_event, (FD_ACCEPT | FD_CLOSE) as i32) == SOCKET_ERROR {
        return Err(format!(
            "WSAEventSelect failed with error: {}",
            WSAGetLastError()
        ));
    }
    ready();
    let mut sockets: Vec<SOCKET> = vec![listen_socket];
    let mut events: Vec<*mut c_void> = vec![listen_event as *mut c_void];
    let (mut accepted, mut closed, mut echoed) = (0usize, 0usize, 0usize);
    while closed < clients {
        let index = WSAWaitForMultipleEvents(events.len() as u32, events.as_ptr(), 0, 10_000, 0);
        if index == WSA_WAIT_FAILED || index == WSA_WAIT_TIMEOUT {
            return Err(format!("WSAWaitForMultipleEvents returned {index}"));
        }
        let i = (index - WSA_WAIT_EVENT_0 as u32) as usize;
        let mut ne: WSANETWORKEVENTS = zeroed();
        if WSAEnumNetworkEvents(sockets[i], events[i] as WSAEVENT, &mut ne) == SOCKET_ERROR {
            return Err(format!(
                "WSAEnumNetworkEvents failed with error: {}",
                WSAGetLastError()
            ));
        }
        let fired = ne.lNetworkEvents as u32;
        if fired & FD_ACCEPT != 0 && accepted < clients {
            let s = accept(sockets[i], null_mut(), null_mut());
            if s != INVALID_SOCKET {
                let ev = WSACreateEvent();
                WSAEventSelect(s, ev, (FD_READ | FD_CLOSE) as i32);
                sockets.push(s);
                events.push(ev as *mut c_void);
                accepted += 1;
            }
        }
        if fired & FD_READ != 0 {
            let mut buf = [0u8; 512];
            let n = recv(sockets[i], buf.as_mut_ptr(), buf.len() as i32, 0);
            if n > 0 {
                let sent = send(sockets[i], buf.as_ptr(), n, 0);
                if sent > 0 {
                    echoed += sent as usize;
                }
            }
        }
        if fired & FD_CLOSE != 0 && i > 0 {
            // Read what is left, then close.
            let mut buf = [0u8; 512];
            loop {
                let n = recv(sockets[i], buf.as_mut_ptr(), buf.len() as i32, 0);
                if n <= 0 {
                    break;
                }
                let sent = send(sockets[i], buf.as_ptr(), n, 0);
                if sent > 0 {
                    echoed += sent as usize;
                }
            }
            closesocket(sockets[i]);
            WSACloseEvent(events[i] as WSAEVENT);
            sockets.remove(i);
            events.remove(i);
            closed += 1;
        }
    }
    closesocket(listen_socket);
    WSACloseEvent(listen_event);
    Ok(echoed)
}

/// A blocking client: sends `message`, reads the echo, closes.
///
/// # Errors
/// The failing call and its code.
pub fn run_client(port: u16, message: &[u8]) -> Result<Vec<u8>, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        WSAStartup(0x0202, &mut wsa);
        let s = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
        let timeout: u32 = 5000;
        setsockopt(
            s,
            SOL_SOCKET,
            SO_RCVTIMEO,
            &timeout as *const u32 as *const u8,
            4,
        );
        let mut addr: SOCKADDR_IN = zeroed();
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.S_un.S_addr = u32::from_ne_bytes([10, 0, 0, 2]);
        let r = (|| {
            if connect(
                s,
                &addr as *const SOCKADDR_IN as *const SOCKADDR,
                size_of::<SOCKADDR_IN>() as i32,
            ) != 0
            {
                return Err(format!("connect failed with error: {}", WSAGetLastError()));
            }
            send(s, message.as_ptr(), message.len() as i32, 0);
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while got.len() < message.len() {
                let n = recv(s, buf.as_mut_ptr(), buf.len() as i32, 0);
                if n <= 0 {
                    return Err(format!("recv returned {n}, error {}", WSAGetLastError()));
                }
                got.extend_from_slice(&buf[..n as usize]);
            }
            Ok(got)
        })();
        closesocket(s);
        WSACleanup();
        r
    }
}

/// Runs the server on `server` and `n` clients on `client`; returns each client's echo.
pub fn demo(net: &wsock::Network, port: u16, n: usize) -> Result<(usize, Vec<Vec<u8>>), String> {
    let server = net.host("server").ok_or("no server")?;
    let client = net.host("client").ok_or("no client")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        run_server(port, n, &|| {
            let _ = tx.send(());
        })
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .map_err(|_| "server did not start")?;
    let mut echoes = Vec::new();
    for i in 0..n {
        let client = client.clone();
        let msg = format!("hello from client {i}");
        let h = std::thread::spawn(move || {
            wsock::ext::set_thread_host(&client);
            run_client(port, msg.as_bytes())
        });
        echoes.push(h.join().map_err(|_| "client panicked")??);
    }
    let echoed = t.join().map_err(|_| "server panicked")??;
    Ok((echoed, echoes))
}

fn main() -> std::process::ExitCode {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).expect("network");
    match demo(&net, 27020, 3) {
        Ok((echoed, echoes)) => {
            for e in echoes {
                println!("client got {:?}", String::from_utf8_lossy(&e));
            }
            println!("server echoed {echoed} bytes");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
