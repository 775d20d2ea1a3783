//! A non-blocking connect, the way Microsoft's pages teach it ("ioctlsocket", "connect",
//! "select"): `ioctlsocket(FIONBIO)`, `connect` answering `WSAEWOULDBLOCK`, then `select` on a
//! write set (connected) and an except set (failed), tested with `FD_ISSET` (windows-sys's
//! `__WSAFDIsSet`), and `getsockopt(SO_ERROR)` for the reason of a failure.
//!
//! [`run`] is the Windows code; only the import changed. `main` starts the simulated network
//! and a listener on the server.
//!
//! ```sh
//! cargo run -p wsock --example nonblocking_connect
//! ```

use std::mem::{size_of, zeroed};

use wsock::sys::*;

/// Connects to `ip:port` without blocking; `Ok(())` when `select` reports the socket
/// writable, `Err(code)` with the `SO_ERROR` code when it reports it in the except set.
///
/// # Errors
/// The Winsock error code of the failed step.
pub fn run(ip: [u8; 4], port: u16) -> Result<(), i32> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        if WSAStartup(0x0202, &mut wsa) != 0 {
            return Err(WSASYSNOTREADY);
        }
        let r = connect_nonblocking(ip, port);
        WSACleanup();
        r
    }
}

unsafe fn connect_nonblocking(ip: [u8; 4], port: u16) -> Result<(), i32> {
    let s = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
    if s == INVALID_SOCKET {
        return Err(WSAGetLastError());
    }
    let mut mode: u32 = 1; // non-blocking
    if ioctlsocket(s, FIONBIO, &mut mode) != 0 {
        let e = WSAGetLastError();
        closesocket(s);
        return Err(e);
    }
    let mut addr: SOCKADDR_IN = zeroed();
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
    let rc = connect(
        s,
        &addr as *const SOCKADDR_IN as *const SOCKADDR,
        size_of::<SOCKADDR_IN>() as i32,
    );
    if rc == SOCKET_ERROR && WSAGetLastError() != WSAEWOULDBLOCK {
        let e = WSAGetLastError();
        closesocket(s);
        return Err(e);
    }
    // FD_ZERO / FD_SET
    let mut write: FD_SET = zeroed();
    let mut except: FD_SET = zeroed();
    write.fd_array[0] = s;
    write.fd_count = 1;
    except.fd_array[0] = s;
    except.fd_count = 1;
    let timeout = TIMEVAL {
        tv_sec: 10,
        tv_usec: 0,
    };
    let n = select(0, std::ptr::null_mut(), &mut write, &mut except, &timeout);
    let result = if n == SOCKET_ERROR {
        Err(WSAGetLastError())
    } else if n == 0 {
        Err(WSAETIMEDOUT)
    } else if __WSAFDIsSet(s, &mut write) != 0 {
        Ok(())
    } else if __WSAFDIsSet(s, &mut except) != 0 {
        let mut err: i32 = 0;
        let mut len = size_of::<i32>() as i32;
        getsockopt(
            s,
            SOL_SOCKET,
            SO_ERROR,
            &mut err as *mut i32 as *mut u8,
            &mut len,
        );
        Err(err)
    } else {
        Err(WSAEINVAL)
    };
    closesocket(s);
    result
}

fn main() -> std::process::ExitCode {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).expect("network");
    let server = net.host("server").expect("server");
    let listener =
        wsock::net::TcpListener::bind(&server, "0.0.0.0:8080".parse().unwrap()).expect("listener");
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    let ok = run([10, 0, 0, 2], 8080);
    println!("connect to 10.0.0.2:8080 -> {ok:?}");
    let refused = run([10, 0, 0, 2], 8081);
    println!("connect to 10.0.0.2:8081 -> {refused:?} (WSAECONNREFUSED is {WSAECONNREFUSED})");
    drop(listener);
    if ok.is_ok() && refused == Err(WSAECONNREFUSED) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
