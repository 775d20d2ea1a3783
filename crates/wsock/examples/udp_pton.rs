//! A UDP echo client written the way Microsoft's Winsock documentation teaches it
//! ("Getting Started with Winsock"; the `inet_pton`, `htons`, `sendto`, `recvfrom` and
//! `inet_ntop` pages): fill a `SOCKADDR_IN` with `inet_pton` and `htons`, `sendto` the server,
//! `recvfrom` the reply, print the sender with `inet_ntop` and `ntohs`.
//!
//! The Windows code is [`run`]; the only change from Windows is the import
//! (`windows_sys::Win32::Networking::WinSock::*` becomes `wsock::sys::*`). What Windows does not
//! need is in `main`: starting the simulated network (the embedded default scenario: `client`
//! 10.0.0.1, `server` 10.0.0.2), the server's udp-echo service on port 7 (what
//! `wsock host server` runs), and choosing the host this thread's sockets live on.
//!
//! ```sh
//! cargo run -p wsock --example udp_pton
//! ```

use std::ffi::c_void;
use std::mem::{size_of, zeroed};

use wsock::sys::*;

/// Sends `message` to `server` (dotted IPv4 text) at UDP `port` and returns the reply and its
/// sender as `a.b.c.d:port` text. Plain Winsock, as on Windows.
///
/// # Errors
/// The failing call and its `WSAGetLastError` code.
pub fn run(server: &str, port: u16, message: &[u8]) -> Result<(String, Vec<u8>), String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed: {rc}"));
        }
        let result = exchange(server, port, message);
        WSACleanup();
        result
    }
}

unsafe fn exchange(server: &str, port: u16, message: &[u8]) -> Result<(String, Vec<u8>), String> {
    let s = socket(AF_INET as i32, SOCK_DGRAM, IPPROTO_UDP);
    if s == INVALID_SOCKET {
        return Err(format!("socket failed: {}", WSAGetLastError()));
    }
    let result = talk(s, server, port, message);
    closesocket(s);
    result
}

unsafe fn talk(
    s: SOCKET,
    server: &str,
    port: u16,
    message: &[u8],
) -> Result<(String, Vec<u8>), String> {
    // A receive timeout, so a lost datagram is an error rather than a hang.
    let timeout_ms: u32 = 5000;
    setsockopt(
        s,
        SOL_SOCKET,
        SO_RCVTIMEO,
        &timeout_ms as *const u32 as *const u8,
        size_of::<u32>() as i32,
    );

    let mut to: SOCKADDR_IN = zeroed();
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    let text = format!("{server}\0");
    let rc = inet_pton(
        AF_INET as i32,
        text.as_ptr(),
        &mut to.sin_addr as *mut IN_ADDR as *mut c_void,
    );
    if rc != 1 {
        return Err(format!("inet_pton({server}) returned {rc}"));
    }

    let sent = sendto(
        s,
        message.as_ptr(),
        message.len() as i32,
        0,
        &to as *const SOCKADDR_IN as *const SOCKADDR,
        size_of::<SOCKADDR_IN>() as i32,
    );
    if sent == SOCKET_ERROR {
        return Err(format!("sendto failed: {}", WSAGetLastError()));
    }

    let mut buf = [0u8; 512];
    let mut from: SOCKADDR_IN = zeroed();
    let mut fromlen = size_of::<SOCKADDR_IN>() as i32;
    let n = recvfrom(
        s,
        buf.as_mut_ptr(),
        buf.len() as i32,
        0,
        &mut from as *mut SOCKADDR_IN as *mut SOCKADDR,
        &mut fromlen,
    );
    if n == SOCKET_ERROR {
        return Err(format!("recvfrom failed: {}", WSAGetLastError()));
    }

    let mut ip = [0u8; INET_ADDRSTRLEN as usize];
    let p = inet_ntop(
        AF_INET as i32,
        &from.sin_addr as *const IN_ADDR as *const c_void,
        ip.as_mut_ptr(),
        ip.len(),
    );
    if p.is_null() {
        return Err(format!("inet_ntop failed: {}", WSAGetLastError()));
    }
    let len = ip.iter().position(|&b| b == 0).unwrap_or(ip.len());
    let sender = format!(
        "{}:{}",
        String::from_utf8_lossy(&ip[..len]),
        ntohs(from.sin_port)
    );
    Ok((sender, buf[..n as usize].to_vec()))
}

fn main() -> std::process::ExitCode {
    let setup = || -> wsock::Result<wsock::Network> {
        let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
        // The scenario's server runs its udp-echo service on port 7 in any network.
        let client = net
            .host("client")
            .ok_or_else(|| wsock::Error::NoSuchHost("client".into()))?;
        wsock::ext::set_thread_host(&client);
        Ok(net)
    };
    let _net = match setup() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("setup: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run("10.0.0.2", 7, b"hello, winsock") {
        Ok((sender, reply)) => {
            println!(
                "received {} bytes from {sender}: {}",
                reply.len(),
                String::from_utf8_lossy(&reply)
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
