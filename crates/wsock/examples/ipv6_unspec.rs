//! IPv6 with `AF_UNSPEC`, as Microsoft's "IPv6 Guide for Windows Sockets Applications"
//! teaches: resolve the server with `getaddrinfo(AF_UNSPEC)`, try every address (IPv6 and
//! IPv4) until `connect` succeeds, and print the peer with `inet_ntop`; the server listens on
//! an `AF_INET6` socket at `in6addr_any`.
//!
//! [`run_client`] and [`listen_v6`] are the Windows code; only the import changed. `main`
//! starts the simulated network (`server` has fd00::2 and 10.0.0.2).
//!
//! ```sh
//! cargo run -p wsock --example ipv6_unspec
//! ```

use std::ffi::c_void;
use std::mem::{size_of, zeroed};
use std::ptr::null_mut;

use wsock::sys::*;

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A listening `AF_INET6` socket on `[::]:port`.
///
/// # Errors
/// The failing call and its code.
pub fn listen_v6(port: u16) -> Result<SOCKET, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        WSAStartup(0x0202, &mut wsa);
        let s = socket(AF_INET6 as i32, SOCK_STREAM, IPPROTO_TCP);
        let mut sa: SOCKADDR_IN6 = zeroed();
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        if bind(
            s,
            &sa as *const SOCKADDR_IN6 as *const SOCKADDR,
            size_of::<SOCKADDR_IN6>() as i32,
        ) != 0
            || listen(s, SOMAXCONN as i32) != 0
        {
            return Err(format!(
                "bind/listen failed with error: {}",
                WSAGetLastError()
            ));
        }
        Ok(s)
    }
}

/// Connects to `server` (any family) at `port`; returns the address that answered as text.
///
/// # Errors
/// The failing call and its code.
pub fn run_client(server: &str, port: &str) -> Result<String, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        if WSAStartup(0x0202, &mut wsa) != 0 {
            return Err("WSAStartup failed".into());
        }
        let mut hints: ADDRINFOA = zeroed();
        hints.ai_family = AF_UNSPEC as i32;
        hints.ai_socktype = SOCK_STREAM;
        let mut result: *mut ADDRINFOA = null_mut();
        let (node, serv) = (cstr(server), cstr(port));
        let rc = getaddrinfo(node.as_ptr(), serv.as_ptr(), &hints, &mut result);
        if rc != 0 {
            WSACleanup();
            return Err(format!("getaddrinfo failed with error: {rc}"));
        }
        let mut answer = Err("Unable to connect to server!".to_string());
        let mut ai = result;
        while !ai.is_null() {
            let s = socket((*ai).ai_family, (*ai).ai_socktype, (*ai).ai_protocol);
            if s != INVALID_SOCKET {
                if connect(s, (*ai).ai_addr, (*ai).ai_addrlen as i32) == 0 {
                    let mut text = [0u8; 64];
                    let addr: *const c_void = if (*ai).ai_family == AF_INET6 as i32 {
                        &(*((*ai).ai_addr as *const SOCKADDR_IN6)).sin6_addr as *const IN6_ADDR
                            as *const c_void
                    } else {
                        &(*((*ai).ai_addr as *const SOCKADDR_IN)).sin_addr as *const IN_ADDR
                            as *const c_void
                    };
                    inet_ntop((*ai).ai_family, addr, text.as_mut_ptr(), text.len());
                    let n = text.iter().position(|&b| b == 0).unwrap_or(0);
                    answer = Ok(String::from_utf8_lossy(&text[..n]).into_owned());
                    closesocket(s);
                    break;
                }
                closesocket(s);
            }
            ai = (*ai).ai_next;
        }
        freeaddrinfo(result);
        WSACleanup();
        answer
    }
}

fn main() -> std::process::ExitCode {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).expect("network");
    wsock::ext::set_thread_host(&net.host("server").expect("server"));
    let l = match listen_v6(27030) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    let r = run_client("server", "27030");
    let _ = l;
    match r {
        Ok(a) => {
            println!("connected to {a}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
