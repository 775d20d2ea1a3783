//! The secure TCP client of Microsoft's "Using Secure Socket Extensions" sample (stcpclient), in
//! Rust against the raw face: resolve the server with `getaddrinfo`, build its SPN
//! (`host/<name>`), `WSASocket`, `WSASetSocketSecurity` with guaranteed encryption,
//! `WSASetSocketPeerTargetName` (a `SOCKET_PEER_TARGET_NAME` of `sizeof` + the name, its length
//! in characters, the address left zero), `WSAConnect`, `WSAQuerySocketSecurity` (size probe
//! with a null template, then the flags), `WSASend` of 8 bytes, `WSARecv(MSG_WAITALL)` of up to
//! 256 bytes, which returns the server's 11 when it closes, `closesocket`.
//!
//! [`run_client`] is the Windows code (with `wsock::sys::*` for `windows_sys::...::*`); `main`
//! adds what Windows does not need: the simulated network (the embedded default scenario) and a
//! server, written with wsock's Rust face, for it to talk to.
//!
//! ```sh
//! cargo run -p wsock --example secure_client
//! ```

use std::mem::{size_of, zeroed};
use std::ptr::{null, null_mut};

use wsock::sys::*;

/// The sample's port.
pub const PORT: &str = "27015";

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `SOCKET_SECURITY_QUERY_INFO.Flags` after connect.
    pub flags: u32,
    /// The server's reply.
    pub reply: Vec<u8>,
}

fn err(what: &str) -> String {
    format!("{what} failed with error: {}", unsafe { WSAGetLastError() })
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Secures, names and connects `sock` to `addr`, then exchanges the sample's messages.
///
/// # Safety
/// `addr` must be a valid address of `addrlen` bytes.
unsafe fn talk(
    sock: SOCKET,
    spn: &str,
    addr: *const SOCKADDR,
    addrlen: i32,
) -> Result<Outcome, String> {
    let settings = SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    };
    let slen = size_of::<SOCKET_SECURITY_SETTINGS>() as u32;
    if WSASetSocketSecurity(sock, &settings, slen, null(), None) == SOCKET_ERROR {
        return Err(err("WSASetSocketSecurity"));
    }
    // SOCKET_PEER_TARGET_NAME with the SPN after its fixed part (the sample allocates
    // sizeof + the name's bytes, zeroed).
    let name: Vec<u16> = spn.encode_utf16().collect();
    let len = size_of::<SOCKET_PEER_TARGET_NAME>() + name.len() * 2;
    let mut buf = vec![0u64; len.div_ceil(8)];
    let target = buf.as_mut_ptr() as *mut SOCKET_PEER_TARGET_NAME;
    (*target).SecurityProtocol = settings.SecurityProtocol;
    (*target).PeerTargetNameStringLen = name.len() as u32;
    let strings = std::ptr::addr_of_mut!((*target).AllStrings) as *mut u16;
    for (i, c) in name.iter().enumerate() {
        strings.add(i).write_unaligned(*c);
    }
    if WSASetSocketPeerTargetName(sock, target, len as u32, null(), None) == SOCKET_ERROR {
        return Err(err("WSASetSocketPeerTargetName"));
    }
    if WSAConnect(sock, addr, addrlen, null(), null_mut(), null(), null()) == SOCKET_ERROR {
        return Err(err("WSAConnect"));
    }
    // "Querying the Security on a Socket": size probe with a null template, then the query.
    let mut qlen = 0u32;
    let rc = WSAQuerySocketSecurity(sock, null(), 0, null_mut(), &mut qlen, null(), None);
    if rc != SOCKET_ERROR || WSAGetLastError() != WSAEFAULT {
        return Err(err("WSAQuerySocketSecurity (size)"));
    }
    let mut qbuf = vec![0u64; (qlen as usize).div_ceil(8)];
    let info = qbuf.as_mut_ptr() as *mut SOCKET_SECURITY_QUERY_INFO;
    if WSAQuerySocketSecurity(sock, null(), 0, info, &mut qlen, null(), None) == SOCKET_ERROR {
        return Err(err("WSAQuerySocketSecurity"));
    }
    let flags = (*info).Flags;
    let msg = b"12345678";
    let wb = WSABUF {
        len: msg.len() as u32,
        buf: msg.as_ptr() as *mut u8,
    };
    let mut sent = 0u32;
    if WSASend(sock, &wb, 1, &mut sent, 0, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSASend"));
    }
    let mut reply = vec![0u8; 256];
    let wb = WSABUF {
        len: reply.len() as u32,
        buf: reply.as_mut_ptr(),
    };
    let (mut got, mut rflags) = (0u32, MSG_WAITALL as u32);
    if WSARecv(sock, &wb, 1, &mut got, &mut rflags, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSARecv"));
    }
    reply.truncate(got as usize);
    Ok(Outcome { flags, reply })
}

/// The sample client: connects securely to `server` (a host name or number) on [`PORT`].
///
/// # Errors
/// The failing call and its code.
pub fn run_client(server: &str) -> Result<Outcome, String> {
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
        let mut result: *mut ADDRINFOA = null_mut();
        let (host_c, port_c) = (cstr(server), cstr(PORT));
        let rc = getaddrinfo(host_c.as_ptr(), port_c.as_ptr(), &hints, &mut result);
        if rc != 0 {
            WSACleanup();
            return Err(format!("getaddrinfo failed with error: {rc}"));
        }
        // DsMakeSpn("host", server): the server's SPN.
        let spn = format!("host/{server}");
        let sock = WSASocketW(
            (*result).ai_family,
            (*result).ai_socktype,
            (*result).ai_protocol,
            null(),
            0,
            0,
        );
        let r = if sock == INVALID_SOCKET {
            Err(err("WSASocket"))
        } else {
            let r = talk(sock, &spn, (*result).ai_addr, (*result).ai_addrlen as i32);
            closesocket(sock);
            r
        };
        freeaddrinfo(result);
        WSACleanup();
        r
    }
}

/// The network, a secure server through the Rust face, and the sample client.
///
/// # Errors
/// Setup, server or client failures, as text.
pub fn demo(net: &wsock::Network) -> Result<(Outcome, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = net.host("server").ok_or("no server host")?;
    let client = net.host("client").ok_or("no client host")?;
    let settings = wsock::secure::SecuritySettings::new().require_encryption();
    let listener =
        wsock::net::TcpListener::bind_secure(&server, "0.0.0.0:27015".parse().unwrap(), &settings)
            .map_err(|e| e.to_string())?;
    let rt = net.runtime().map_err(|e| e.to_string())?;
    let srv = server.clone();
    let served = rt.spawn(async move {
        let (mut s, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        let who = s
            .impersonate_peer(async {
                let me = wsock::net::current_impersonation().ok_or("not impersonating")?;
                let dir = wsock::identity::directory(&srv).map_err(|e| e.to_string())?;
                let name = dir
                    .lookup_sid(&me.token().user().sid)
                    .map_err(|e| e.to_string())?
                    .qualified_name();
                Ok::<_, String>(name)
            })
            .await
            .map_err(|e| e.to_string())??;
        s.write_all(b"91011121314")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(who)
    });
    wsock::ext::set_thread_host(&client);
    let outcome = run_client("server")?;
    let who = rt
        .block_on(served)
        .map_err(|e| format!("server task: {e}"))??;
    Ok((outcome, who))
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
        Ok((o, who)) => {
            println!(
                "client: connection flags {:#x}, received {:?}",
                o.flags,
                String::from_utf8_lossy(&o.reply)
            );
            println!("server: the client is {who}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
