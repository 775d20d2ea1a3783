//! The secure TCP server of Microsoft's "Using Secure Socket Extensions" sample (stcpserver), in
//! Rust against the raw face: `WSASetSocketSecurity` (guaranteed encryption) on the listening
//! socket before `bind`, `listen`, then for each client `WSAAccept`, `WSARecv` of its 8 bytes,
//! `WSAQuerySocketSecurity` with a token mask (the peer's tokens, for an access check against a
//! security descriptor), `WSAImpersonateSocketPeer` (who the thread now is, through
//! `OpenThreadToken` + `GetTokenInformation`), `WSARevertImpersonation`, `WSASend` of the
//! 11-byte reply, `closesocket`. Every token handle is closed.
//!
//! [`run_server`] is the Windows code (with `wsock::sys::*` for `windows_sys::...::*`); `main`
//! adds what Windows does not need: the simulated network (the embedded default scenario) and a
//! client, written with wsock's Rust face, that drives one round.
//!
//! ```sh
//! cargo run -p wsock --example secure_server
//! ```

use std::mem::{size_of, zeroed};
use std::ptr::{null, null_mut};

use wsock::sys::*;

/// The sample's port.
pub const PORT: u16 = 27015;
/// What the server sends back (the sample's "91011121314").
pub const REPLY: &[u8] = b"91011121314";

/// What the server learnt about one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The client's bytes.
    pub received: Vec<u8>,
    /// `SOCKET_SECURITY_QUERY_INFO.Flags`.
    pub flags: u32,
    /// Whether the peer's token passed the access check (read access to the service's data).
    pub access_granted: bool,
    /// The user SID the thread had while impersonating the peer (`S-1-5-21-...`).
    pub impersonated_sid: String,
}

fn err(what: &str) -> String {
    format!("{what} failed with error: {}", unsafe { WSAGetLastError() })
}

/// A SID as `ConvertSidToStringSidW` prints it.
///
/// # Safety
/// `sid` must point to a valid SID.
unsafe fn sid_string(sid: PSID) -> String {
    let s = sid as *const SID;
    let auth = (*s).IdentifierAuthority.Value;
    let authority = auth.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let mut out = format!("S-{}-{}", (*s).Revision, authority);
    let subs = std::ptr::addr_of!((*s).SubAuthority) as *const u32;
    for i in 0..(*s).SubAuthorityCount as usize {
        out.push_str(&format!("-{}", subs.add(i).read_unaligned()));
    }
    out
}

/// The user SID of a token handle (`GetTokenInformation(TokenUser)`, size probe first).
///
/// # Safety
/// `token` must be a token handle.
unsafe fn token_user(token: HANDLE) -> Result<String, String> {
    let mut len = 0u32;
    GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len);
    if GetLastError() != ERROR_INSUFFICIENT_BUFFER {
        return Err(format!("GetTokenInformation size: {}", GetLastError()));
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    if GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) == 0 {
        return Err(format!("GetTokenInformation: {}", GetLastError()));
    }
    let tu = buf.as_ptr() as *const TOKEN_USER;
    Ok(sid_string((*tu).User.Sid))
}

/// The access check a service makes: may the peer read its data? The descriptor allows
/// `FILE_GENERIC_READ` to network logons.
///
/// # Safety
/// `token` must be an impersonation token handle with `TOKEN_QUERY`.
unsafe fn may_read(token: HANDLE, sd: &[u8]) -> Result<bool, String> {
    let mapping = GENERIC_MAPPING {
        GenericRead: 0x0012_0089,
        GenericWrite: 0x0012_0116,
        GenericExecute: 0x0012_00a0,
        GenericAll: 0x001f_01ff,
    };
    let mut ps: PRIVILEGE_SET = zeroed();
    let mut ps_len = size_of::<PRIVILEGE_SET>() as u32;
    let (mut granted, mut status) = (0u32, 0);
    let ok = AccessCheck(
        sd.as_ptr() as PSECURITY_DESCRIPTOR,
        token,
        0x1, // FILE_READ_DATA
        &mapping,
        &mut ps,
        &mut ps_len,
        &mut granted,
        &mut status,
    );
    if ok == 0 {
        return Err(format!("AccessCheck failed with error: {}", GetLastError()));
    }
    Ok(status != 0)
}

/// Serves one client on `client` (an accepted socket).
///
/// # Safety
/// `client` must be an accepted socket.
unsafe fn serve(client: SOCKET, sd: &[u8]) -> Result<Served, String> {
    // Receive the client's 8 bytes.
    let mut data = [0u8; 8];
    let mut got = 0usize;
    while got < data.len() {
        let wb = WSABUF {
            len: (data.len() - got) as u32,
            buf: data[got..].as_mut_ptr(),
        };
        let (mut n, mut flags) = (0u32, 0u32);
        if WSARecv(client, &wb, 1, &mut n, &mut flags, null_mut(), None) == SOCKET_ERROR {
            return Err(err("WSARecv"));
        }
        if n == 0 {
            return Err("the client closed early".into());
        }
        got += n as usize;
    }
    // The peer's tokens: size probe with the template, then the query.
    let mut template: SOCKET_SECURITY_QUERY_TEMPLATE = zeroed();
    template.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_DEFAULT;
    template.PeerTokenAccessMask = TOKEN_QUERY;
    let tlen = size_of::<SOCKET_SECURITY_QUERY_TEMPLATE>() as u32;
    let mut len = 0u32;
    let rc = WSAQuerySocketSecurity(client, &template, tlen, null_mut(), &mut len, null(), None);
    if rc != SOCKET_ERROR || WSAGetLastError() != WSAEMSGSIZE {
        return Err(err("WSAQuerySocketSecurity (size)"));
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    let info = buf.as_mut_ptr() as *mut SOCKET_SECURITY_QUERY_INFO;
    if WSAQuerySocketSecurity(client, &template, tlen, info, &mut len, null(), None) == SOCKET_ERROR
    {
        return Err(err("WSAQuerySocketSecurity"));
    }
    let flags = (*info).Flags;
    let app = (*info).PeerApplicationAccessTokenHandle as HANDLE;
    let machine = (*info).PeerMachineAccessTokenHandle as HANDLE;
    let access = if app.is_null() {
        Ok(false)
    } else {
        may_read(app, sd)
    };
    for h in [app, machine] {
        if !h.is_null() && CloseHandle(h) == 0 {
            return Err(format!("CloseHandle failed with error: {}", GetLastError()));
        }
    }
    let access_granted = access?;
    // Impersonate the peer, see who the thread is, revert.
    if WSAImpersonateSocketPeer(client, null(), 0) == SOCKET_ERROR {
        return Err(err("WSAImpersonateSocketPeer"));
    }
    let mut token: HANDLE = null_mut();
    let seen = if OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &mut token) == 0 {
        Err(format!(
            "OpenThreadToken failed with error: {}",
            GetLastError()
        ))
    } else {
        let s = token_user(token);
        CloseHandle(token);
        s
    };
    if WSARevertImpersonation() == SOCKET_ERROR {
        return Err(err("WSARevertImpersonation"));
    }
    let impersonated_sid = seen?;
    // Reply and close.
    let wb = WSABUF {
        len: REPLY.len() as u32,
        buf: REPLY.as_ptr() as *mut u8,
    };
    let mut sent = 0u32;
    if WSASend(client, &wb, 1, &mut sent, 0, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSASend"));
    }
    Ok(Served {
        received: data.to_vec(),
        flags,
        access_granted,
        impersonated_sid,
    })
}

/// The sample server: serves `clients` clients one at a time on port [`PORT`], calling
/// `ready` once it listens.
///
/// # Errors
/// The failing call and its code.
pub fn run_server(clients: usize, ready: &dyn Fn()) -> Result<Vec<Served>, String> {
    // The service's data is readable by network logons (the peer's tokens are network logons).
    let sd = wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(A;;FR;;;NU)", None, None)
        .map_err(|e| e.to_string())?;
    unsafe {
        let mut wsa: WSADATA = zeroed();
        let rc = WSAStartup(0x0202, &mut wsa);
        if rc != 0 {
            return Err(format!("WSAStartup failed with error: {rc}"));
        }
        let listener = WSASocketW(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, null(), 0, 0);
        if listener == INVALID_SOCKET {
            let e = err("WSASocket");
            WSACleanup();
            return Err(e);
        }
        let result = (|| {
            let settings = SOCKET_SECURITY_SETTINGS {
                SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
                SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
            };
            let len = size_of::<SOCKET_SECURITY_SETTINGS>() as u32;
            if WSASetSocketSecurity(listener, &settings, len, null(), None) == SOCKET_ERROR {
                return Err(err("WSASetSocketSecurity"));
            }
            let mut addr: SOCKADDR_IN = zeroed();
            addr.sin_family = AF_INET;
            addr.sin_port = PORT.to_be();
            let alen = size_of::<SOCKADDR_IN>() as i32;
            if bind(
                listener,
                &addr as *const SOCKADDR_IN as *const SOCKADDR,
                alen,
            ) == SOCKET_ERROR
            {
                return Err(err("bind"));
            }
            if listen(listener, 10) == SOCKET_ERROR {
                return Err(err("listen"));
            }
            ready();
            let mut served = Vec::new();
            for _ in 0..clients {
                let client = WSAAccept(listener, null_mut(), null_mut(), None, 0);
                if client == INVALID_SOCKET {
                    return Err(err("WSAAccept"));
                }
                let r = serve(client, &sd);
                closesocket(client);
                served.push(r?);
            }
            Ok(served)
        })();
        closesocket(listener);
        WSACleanup();
        result
    }
}

/// The network, the server on its own thread, and one client round through the Rust face.
///
/// # Errors
/// Setup, server or client failures, as text.
pub fn demo(net: &wsock::Network) -> Result<(Served, Vec<u8>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = net.host("server").ok_or("no server host")?;
    let client = net.host("client").ok_or("no client host")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        wsock::ext::set_thread_host(&server);
        run_server(1, &|| {
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
    let reply = net.runtime().map_err(|e| e.to_string())?.block_on(async {
        let settings = wsock::secure::SecuritySettings::new().require_encryption();
        let to = std::net::SocketAddr::from(([10, 0, 0, 2], PORT));
        let mut s =
            wsock::net::TcpStream::connect_secure(&client, to, &settings, Some("host/server"))
                .await
                .map_err(|e| e.to_string())?;
        s.write_all(b"12345678").await.map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(reply)
    })?;
    let mut served = t.join().map_err(|_| "server panicked")??;
    Ok((served.remove(0), reply))
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
        Ok((served, reply)) => {
            println!(
                "server: received {:?}, flags {:#x} (secured{}), access check {}, impersonated {}",
                String::from_utf8_lossy(&served.received),
                served.flags,
                if served.flags & 0x2 != 0 {
                    ", encrypted"
                } else {
                    ""
                },
                if served.access_granted {
                    "granted"
                } else {
                    "denied"
                },
                served.impersonated_sid
            );
            println!("client: received {:?}", String::from_utf8_lossy(&reply));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
