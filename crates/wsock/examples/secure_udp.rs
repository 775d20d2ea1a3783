//! A secure UDP pair against the raw face, in the connectionless pattern of the secure-socket
//! reference pages: each side calls `WSASetSocketSecurity` right after `socket`; the client names
//! each peer with `WSASetSocketPeerTargetName` (a full address per name) before its first
//! `sendto`; the server, after `recvfrom` from a new peer, asks `WSAQuerySocketSecurity` with a
//! template carrying that peer's address and impersonates it with `WSAImpersonateSocketPeer`
//! (then `WSARevertImpersonation`); the client queries too and finally removes each name with
//! `WSADeleteSocketPeerTargetName`.
//!
//! [`run_server`] and [`run_client`] are Windows code (with `wsock::sys::*` for
//! `windows_sys::...::*`); `main` adds the simulated network (the embedded default scenario) and
//! each thread's host.
//!
//! ```sh
//! cargo run -p wsock --example secure_udp
//! ```

use std::mem::{size_of, zeroed};
use std::ptr::{null, null_mut};

use wsock::sys::*;

/// The server's port.
pub const PORT: u16 = 5000;

fn err(what: &str) -> String {
    format!("{what} failed with error: {}", unsafe { WSAGetLastError() })
}

fn sockaddr(ip: [u8; 4], port: u16) -> SOCKADDR_IN {
    let mut a: SOCKADDR_IN = unsafe { zeroed() };
    a.sin_family = AF_INET;
    a.sin_port = port.to_be();
    a.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip);
    a
}

/// A UDP socket with security set at once (guaranteed encryption).
///
/// # Safety
/// Winsock must be started on the calling thread's host.
unsafe fn secure_udp() -> Result<SOCKET, String> {
    let s = socket(AF_INET as i32, SOCK_DGRAM, IPPROTO_UDP);
    if s == INVALID_SOCKET {
        return Err(err("socket"));
    }
    let settings = SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    };
    let len = size_of::<SOCKET_SECURITY_SETTINGS>() as u32;
    if WSASetSocketSecurity(s, &settings, len, null(), None) == SOCKET_ERROR {
        let e = err("WSASetSocketSecurity");
        closesocket(s);
        return Err(e);
    }
    Ok(s)
}

/// `WSAQuerySocketSecurity` about `peer`: the flags.
///
/// # Safety
/// `s` must be a socket.
unsafe fn query_flags(s: SOCKET, peer: &SOCKADDR_IN) -> Result<u32, String> {
    let mut t: SOCKET_SECURITY_QUERY_TEMPLATE = zeroed();
    t.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_DEFAULT;
    std::ptr::copy_nonoverlapping(
        peer as *const SOCKADDR_IN as *const u8,
        &mut t.PeerAddress as *mut SOCKADDR_STORAGE as *mut u8,
        size_of::<SOCKADDR_IN>(),
    );
    let tlen = size_of::<SOCKET_SECURITY_QUERY_TEMPLATE>() as u32;
    let mut info: SOCKET_SECURITY_QUERY_INFO = zeroed();
    let mut len = size_of::<SOCKET_SECURITY_QUERY_INFO>() as u32;
    if WSAQuerySocketSecurity(s, &t, tlen, &mut info, &mut len, null(), None) == SOCKET_ERROR {
        return Err(err("WSAQuerySocketSecurity"));
    }
    Ok(info.Flags)
}

/// What the server saw of its one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSaw {
    /// The datagram.
    pub data: Vec<u8>,
    /// Query flags for the client.
    pub flags: u32,
    /// Whether impersonating the client gave the thread a token.
    pub impersonated: bool,
}

/// Receives one datagram, checks and impersonates its sender, answers it.
///
/// # Errors
/// The failing call and its code.
pub fn run_server(ready: &dyn Fn()) -> Result<ServerSaw, String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed with error: {rc}"));
        }
        let r = (|| {
            let s = secure_udp()?;
            let any = sockaddr([0, 0, 0, 0], PORT);
            let alen = size_of::<SOCKADDR_IN>() as i32;
            if bind(s, &any as *const SOCKADDR_IN as *const SOCKADDR, alen) == SOCKET_ERROR {
                return Err(err("bind"));
            }
            ready();
            let mut buf = [0u8; 512];
            let mut from: SOCKADDR_IN = zeroed();
            let mut flen = alen;
            let n = recvfrom(
                s,
                buf.as_mut_ptr(),
                buf.len() as i32,
                0,
                &mut from as *mut SOCKADDR_IN as *mut SOCKADDR,
                &mut flen,
            );
            if n == SOCKET_ERROR {
                return Err(err("recvfrom"));
            }
            let flags = query_flags(s, &from)?;
            let peer = &from as *const SOCKADDR_IN as *const SOCKADDR;
            if WSAImpersonateSocketPeer(s, peer, flen as u32) == SOCKET_ERROR {
                return Err(err("WSAImpersonateSocketPeer"));
            }
            let mut token: HANDLE = null_mut();
            let impersonated =
                OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &mut token) != 0;
            if impersonated {
                CloseHandle(token);
            }
            WSARevertImpersonation();
            let reply = b"pong";
            if sendto(s, reply.as_ptr(), reply.len() as i32, 0, peer, flen) == SOCKET_ERROR {
                return Err(err("sendto"));
            }
            closesocket(s);
            Ok(ServerSaw {
                data: buf[..n as usize].to_vec(),
                flags,
                impersonated,
            })
        })();
        WSACleanup();
        r
    }
}

/// `WSASetSocketPeerTargetName` for the peer at `peer`.
///
/// # Safety
/// `s` must be a socket.
unsafe fn name_peer(s: SOCKET, peer: &SOCKADDR_IN, spn: &str) -> Result<(), String> {
    let name: Vec<u16> = spn.encode_utf16().collect();
    let len = size_of::<SOCKET_PEER_TARGET_NAME>() + name.len() * 2;
    let mut buf = vec![0u64; len.div_ceil(8)];
    let t = buf.as_mut_ptr() as *mut SOCKET_PEER_TARGET_NAME;
    (*t).SecurityProtocol = SOCKET_SECURITY_PROTOCOL_DEFAULT;
    std::ptr::copy_nonoverlapping(
        peer as *const SOCKADDR_IN as *const u8,
        std::ptr::addr_of_mut!((*t).PeerAddress) as *mut u8,
        size_of::<SOCKADDR_IN>(),
    );
    (*t).PeerTargetNameStringLen = name.len() as u32;
    let w = std::ptr::addr_of_mut!((*t).AllStrings) as *mut u16;
    for (i, c) in name.iter().enumerate() {
        w.add(i).write_unaligned(*c);
    }
    if WSASetSocketPeerTargetName(s, t, len as u32, null(), None) == SOCKET_ERROR {
        return Err(err("WSASetSocketPeerTargetName"));
    }
    Ok(())
}

/// Names two peers (the server, and a second address it never talks to), sends to the server,
/// reads the answer, queries, and deletes both names. Returns the answer and the query flags.
///
/// # Errors
/// The failing call and its code.
pub fn run_client() -> Result<(Vec<u8>, u32), String> {
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed with error: {rc}"));
        }
        let r = (|| {
            let s = secure_udp()?;
            let server = sockaddr([10, 0, 0, 2], PORT);
            let other = sockaddr([10, 0, 0, 3], PORT);
            name_peer(s, &server, "host/server")?;
            name_peer(s, &other, "host/other")?;
            let alen = size_of::<SOCKADDR_IN>() as i32;
            let to = &server as *const SOCKADDR_IN as *const SOCKADDR;
            let msg = b"ping";
            if sendto(s, msg.as_ptr(), msg.len() as i32, 0, to, alen) == SOCKET_ERROR {
                return Err(err("sendto"));
            }
            let mut buf = [0u8; 512];
            let n = recvfrom(
                s,
                buf.as_mut_ptr(),
                buf.len() as i32,
                0,
                null_mut(),
                null_mut(),
            );
            if n == SOCKET_ERROR {
                return Err(err("recvfrom"));
            }
            let flags = query_flags(s, &server)?;
            for p in [&server, &other] {
                let a = p as *const SOCKADDR_IN as *const SOCKADDR;
                if WSADeleteSocketPeerTargetName(s, a, alen as u32, null(), None) == SOCKET_ERROR {
                    return Err(err("WSADeleteSocketPeerTargetName"));
                }
            }
            closesocket(s);
            Ok((buf[..n as usize].to_vec(), flags))
        })();
        WSACleanup();
        r
    }
}

/// Both sides on the simulated network.
///
/// # Errors
/// Either side's failure, as text.
pub fn demo(net: &wsock::Network) -> Result<(ServerSaw, Vec<u8>, u32), String> {
    let server = net.host("server").ok_or("no server host")?;
    let client = net.host("client").ok_or("no client host")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        run_server(&|| {
            let _ = tx.send(());
        })
    });
    if rx.recv().is_err() {
        return Err(t
            .join()
            .map_err(|_| "server panicked")?
            .err()
            .unwrap_or_default());
    }
    wsock::ext::set_thread_host(&client);
    let (reply, flags) = run_client()?;
    let saw = t.join().map_err(|_| "server panicked")??;
    Ok((saw, reply, flags))
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let net = match wsock::Network::start(wsock::Scenario::default_scenario()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("setup: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match demo(&net) {
        Ok((saw, reply, flags)) => {
            println!(
                "server: received {:?}, peer flags {:#x}, impersonated: {}",
                String::from_utf8_lossy(&saw.data),
                saw.flags,
                saw.impersonated
            );
            println!(
                "client: received {:?}, peer flags {flags:#x}",
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
