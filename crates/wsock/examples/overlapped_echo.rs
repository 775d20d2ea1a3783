//! Overlapped `WSASend` and `WSARecv` with an event, the pattern of Microsoft's "WSARecv
//! function" and "WSASend function" examples: a socket made with `WSA_FLAG_OVERLAPPED`, an
//! `OVERLAPPED` whose `hEvent` comes from `WSACreateEvent`, `WSA_IO_PENDING` handled by
//! `WSAWaitForMultipleEvents` and `WSAGetOverlappedResult`, `WSAResetEvent` between operations.
//!
//! [`run`] is the Windows code; only the imports changed (`OVERLAPPED` stays windows-sys's
//! `Win32::System::IO` type). `main` starts the simulated network and a TCP echo service.
//!
//! ```sh
//! cargo run -p wsock --example overlapped_echo
//! ```

use std::ffi::c_void;
use std::mem::{size_of, zeroed};
use std::ptr::null;

use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock::sys::*;

/// Waits for an overlapped operation begun with return value `rc` and reports its byte count.
unsafe fn complete(s: SOCKET, rc: i32, ov: &mut OVERLAPPED, what: &str) -> Result<u32, String> {
    if rc == SOCKET_ERROR && WSAGetLastError() != WSA_IO_PENDING {
        return Err(format!("{what} failed with error: {}", WSAGetLastError()));
    }
    let events = [ov.hEvent];
    let r = WSAWaitForMultipleEvents(1, events.as_ptr(), 1, 10_000, 0);
    if r == WSA_WAIT_FAILED || r == WSA_WAIT_TIMEOUT {
        return Err(format!("WSAWaitForMultipleEvents for {what} returned {r}"));
    }
    let (mut bytes, mut flags) = (0u32, 0u32);
    if WSAGetOverlappedResult(s, ov, &mut bytes, 0, &mut flags) == 0 {
        return Err(format!(
            "{what}: WSAGetOverlappedResult error {}",
            WSAGetLastError()
        ));
    }
    WSAResetEvent(ov.hEvent as WSAEVENT);
    Ok(bytes)
}

/// Sends `message` to `ip:port` and receives the echo, both overlapped.
///
/// # Errors
/// The failing call and its code.
pub fn run(ip: [u8; 4], port: u16, message: &[u8]) -> Result<Vec<u8>, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        if WSAStartup(0x0202, &mut wsa) != 0 {
            return Err("WSAStartup failed".into());
        }
        let s = WSASocketW(
            AF_INET as i32,
            SOCK_STREAM,
            IPPROTO_TCP,
            null(),
            0,
            WSA_FLAG_OVERLAPPED,
        );
        if s == INVALID_SOCKET {
            return Err(format!(
                "WSASocketW failed with error: {}",
                WSAGetLastError()
            ));
        }
        let mut addr: SOCKADDR_IN = zeroed();
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
        let r = (|| {
            if connect(
                s,
                &addr as *const SOCKADDR_IN as *const SOCKADDR,
                size_of::<SOCKADDR_IN>() as i32,
            ) != 0
            {
                return Err(format!("connect failed with error: {}", WSAGetLastError()));
            }
            let mut ov: OVERLAPPED = zeroed();
            ov.hEvent = WSACreateEvent() as *mut c_void;
            let send_buf = WSABUF {
                len: message.len() as u32,
                buf: message.as_ptr() as *mut u8,
            };
            let mut sent = 0u32;
            let rc = WSASend(s, &send_buf, 1, &mut sent, 0, &mut ov, None);
            let sent = complete(s, rc, &mut ov, "WSASend")?;
            let mut data = vec![0u8; 1024];
            let mut got = Vec::new();
            while got.len() < sent as usize {
                let recv_buf = WSABUF {
                    len: data.len() as u32,
                    buf: data.as_mut_ptr(),
                };
                let (mut n, mut flags) = (0u32, 0u32);
                let rc = WSARecv(s, &recv_buf, 1, &mut n, &mut flags, &mut ov, None);
                let n = complete(s, rc, &mut ov, "WSARecv")?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&data[..n as usize]);
            }
            WSACloseEvent(ov.hEvent as WSAEVENT);
            Ok(got)
        })();
        closesocket(s);
        WSACleanup();
        r
    }
}

fn main() -> std::process::ExitCode {
    let net = wsock::Network::start(wsock::Scenario::default_scenario()).expect("network");
    // The scenario's server runs its tcp-echo service on port 7 in any network.
    wsock::ext::set_thread_host(&net.host("client").expect("client"));
    match run([10, 0, 0, 2], 7, b"overlapped hello") {
        Ok(got) => {
            println!("echo: {:?}", String::from_utf8_lossy(&got));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
