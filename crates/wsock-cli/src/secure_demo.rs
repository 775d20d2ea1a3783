//! The secure part of `wsock demo`: a client and a server written against the raw Windows face
//! (`WSASetSocketSecurity`, `WSASetSocketPeerTargetName`, `WSAConnect`, `WSAQuerySocketSecurity`,
//! `WSAImpersonateSocketPeer`, `AccessCheck`, ...), as the secure-socket sample of Microsoft's
//! documentation does it, with what happened below printed layer by layer: ALE, the IKE (main
//! mode) and child (quick mode) SAs, the query result, the impersonated identity and the access
//! decision.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use wsock::sys::*;
use wsock::Host;

use crate::demo::AleTap;

/// The message the client sends and expects back.
const MESSAGE: &[u8] = b"secret: hello over IPsec from a Winsock client";

/// The port of the secure listener (the port of Microsoft's sample).
pub const SECURE_PORT: u16 = 27015;

/// How long the server waits for the client, at most.
const ACCEPT_LIMIT: Duration = Duration::from_secs(60);

/// The security descriptor of the server's data: read access for network logons (the peer's
/// tokens are network logons).
const SDDL: &str = "O:SYG:SYD:(A;;FR;;;NU)";

/// `FILE_READ_DATA`, the right the server checks.
const FILE_READ_DATA: u32 = 0x1;

/// What the client saw.
#[derive(Debug, Clone, Default)]
pub struct ClientSeen {
    /// The echoed bytes.
    pub echoed: Vec<u8>,
    /// `SOCKET_SECURITY_QUERY_INFO_IPSEC2.Flags`.
    pub flags: u32,
    /// `MmSaId`.
    pub mm_sa_id: u64,
    /// `QmSaId`.
    pub qm_sa_id: u64,
    /// `NegotiationWinerr`.
    pub winerr: u32,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct ServerSeen {
    /// `Flags` of its query on the accepted socket.
    pub flags: u32,
    /// The user SID of the thread while impersonating the peer.
    pub impersonated_sid: String,
    /// Its account name (as `LookupAccountSid` would give it), if the directory knows it.
    pub impersonated_name: Option<String>,
    /// The access check's answer.
    pub access_granted: bool,
}

/// The outcome of the secure exchange.
pub struct SecureOutcome {
    /// The client's side.
    pub client: ClientSeen,
    /// The server's side.
    pub server: ServerSeen,
}

fn err(what: &str) -> String {
    // SAFETY: WSAGetLastError reads a thread-local value.
    format!("{what} failed with WSA error {}", unsafe {
        WSAGetLastError()
    })
}

fn flags_text(flags: u32) -> String {
    let mut names = Vec::new();
    if flags & SOCKET_INFO_CONNECTION_SECURED != 0 {
        names.push("SOCKET_INFO_CONNECTION_SECURED");
    }
    if flags & SOCKET_INFO_CONNECTION_ENCRYPTED != 0 {
        names.push("SOCKET_INFO_CONNECTION_ENCRYPTED");
    }
    if flags & SOCKET_INFO_CONNECTION_IMPERSONATED != 0 {
        names.push("SOCKET_INFO_CONNECTION_IMPERSONATED");
    }
    if names.is_empty() {
        format!("{flags:#x} (not secured)")
    } else {
        format!("{flags:#x} ({})", names.join(" | "))
    }
}

fn sockaddr_v4(ip: Ipv4Addr, port: u16) -> SOCKADDR_IN {
    // SAFETY: SOCKADDR_IN is plain data; all zeroes is valid.
    let mut a: SOCKADDR_IN = unsafe { zeroed() };
    a.sin_family = AF_INET;
    a.sin_port = port.to_be();
    a.sin_addr.S_un.S_addr = u32::from_ne_bytes(ip.octets());
    a
}

/// The server's machine name as the client names it in its SPN: the scenario's `machine`, else
/// the host name in capitals (as the stack's IKE identities do).
fn machine_of(host: &Host) -> String {
    host.spec()
        .machine
        .clone()
        .unwrap_or_else(|| host.name().to_ascii_uppercase())
}

/// Runs the secure exchange between `client` and `server` and prints each layer.
///
/// # Errors
/// The failing call and its WSA code, as text.
pub fn run(client: &Host, server: &Host, tap: &mut AleTap) -> Result<SecureOutcome, String> {
    outln!();
    outln!("== secure sockets: WSASetSocketSecurity + IPsec (IKEv2 and ESP) ==");
    outln!("         IKE main mode (MM): the IKEv2 SA that authenticates both machines (IKE_SA_INIT + IKE_AUTH, certificates from the scenario's CA)");
    outln!("         IKE quick mode (QM): a child SA pair (ESP, one SPI each way) that protects the socket's traffic");
    if server.spec().services.iter().any(|s| s.port == SECURE_PORT) {
        return Err(format!(
            "host {:?} already has a service on port {SECURE_PORT}, which the secure demo uses",
            server.name()
        ));
    }
    let spn = format!("host/{}", machine_of(server));
    let server_ip = server.ipv4();
    let sd = wsock::ext::security_descriptor_from_sddl(SDDL, None, None)
        .map_err(|e| format!("security descriptor {SDDL}: {e}"))?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let give_up = Arc::new(AtomicBool::new(false));
    let srv = server.clone();
    let stop = give_up.clone();
    let server_thread = std::thread::Builder::new()
        .name("demo-secure-server".into())
        .spawn(move || {
            wsock::ext::set_thread_host(&srv);
            // SAFETY: the calls get pointers into live locals with the lengths passed.
            let r = unsafe { server_calls(&srv, &sd, &ready_tx, &stop) };
            if let Err(e) = &r {
                let _ = ready_tx.send(Err(e.clone()));
            }
            r
        })
        .map_err(|e| e.to_string())?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("secure server: {e}")),
        Err(_) => return Err("the secure server thread ended before listening".into()),
    }
    tap.flush(); // the listener's bind and listen
    let cl = client.clone();
    let client_result = std::thread::scope(|s| {
        s.spawn(|| {
            wsock::ext::set_thread_host(&cl);
            // SAFETY: as above.
            unsafe { client_calls(server_ip, &spn, tap) }
        })
        .join()
    })
    .map_err(|_| "the secure client thread panicked".to_string())?;
    if client_result.is_err() {
        give_up.store(true, Ordering::SeqCst);
    }
    let server_result = server_thread
        .join()
        .map_err(|_| "the secure server thread panicked".to_string())?;
    tap.flush();
    let client_seen = client_result?;
    let server_seen = server_result?;
    print_sas(client, server, &client_seen);
    Ok(SecureOutcome {
        client: client_seen,
        server: server_seen,
    })
}

/// Prints both hosts' SA databases, marking the SAs the client's query named.
fn print_sas(client: &Host, server: &Host, seen: &ClientSeen) {
    for h in [client, server] {
        let db = h.security_associations();
        for mm in &db.ike {
            let mark = if h.name() == client.name() && mm.mm_sa_id == seen.mm_sa_id {
                "  <- MmSaId of the client's query"
            } else {
                ""
            };
            outln!(
                "[ipsec ] {}: MM SA {} ({}, {}) SPIs {}/{} with {} {}{mark}",
                h.name(),
                mm.mm_sa_id,
                mm.role,
                mm.state,
                mm.spi_i,
                mm.spi_r,
                mm.peer_wire,
                mm.peer_id.as_deref().unwrap_or("(unauthenticated)"),
            );
        }
        for qm in &db.child {
            let mark = if h.name() == client.name() && qm.qm_sa_id == seen.qm_sa_id {
                "  <- QmSaId of the client's query"
            } else {
                ""
            };
            outln!(
                "[ipsec ] {}: QM SA {} (of MM {}) with {}: ESP {} {}, SPI in {:#010x} / out {:#010x}, {} packets ({} B) out, {} ({} B) in{mark}",
                h.name(),
                qm.qm_sa_id,
                qm.mm_sa_id,
                qm.peer,
                qm.mode,
                qm.suite,
                qm.inbound_spi,
                qm.outbound_spi,
                qm.out_packets,
                qm.out_bytes,
                qm.in_packets,
                qm.in_bytes,
            );
        }
    }
}

/// The client, in Winsock calls: secure, name the peer, connect, query, echo.
///
/// # Safety
/// Call on a thread whose wsock host is the client.
unsafe fn client_calls(
    server_ip: Ipv4Addr,
    spn: &str,
    tap: &mut AleTap,
) -> Result<ClientSeen, String> {
    let mut data: WSADATA = zeroed();
    if WSAStartup(0x0202, &mut data) != 0 {
        return Err("WSAStartup failed".into());
    }
    let s = WSASocketW(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, null(), 0, 0);
    if s == INVALID_SOCKET {
        let e = err("WSASocket");
        WSACleanup();
        return Err(e);
    }
    let r = client_on(s, server_ip, spn, tap);
    closesocket(s);
    WSACleanup();
    r
}

/// # Safety
/// `s` must be a fresh TCP socket of the calling thread's host.
unsafe fn client_on(
    s: SOCKET,
    server_ip: Ipv4Addr,
    spn: &str,
    tap: &mut AleTap,
) -> Result<ClientSeen, String> {
    let timeout: i32 = 30_000;
    setsockopt(
        s,
        SOL_SOCKET,
        SO_RCVTIMEO,
        &timeout as *const i32 as *const u8,
        4,
    );
    let settings = SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    };
    if WSASetSocketSecurity(
        s,
        &settings,
        size_of::<SOCKET_SECURITY_SETTINGS>() as u32,
        null(),
        None,
    ) == SOCKET_ERROR
    {
        return Err(err("WSASetSocketSecurity"));
    }
    outln!("[api   ] client: WSASocketW(AF_INET, SOCK_STREAM) = {s:#x}; WSASetSocketSecurity(DEFAULT, SOCKET_SETTINGS_GUARANTEE_ENCRYPTION) = 0");
    // SOCKET_PEER_TARGET_NAME with the SPN after its fixed part, length in characters.
    let name: Vec<u16> = spn.encode_utf16().collect();
    let len = size_of::<SOCKET_PEER_TARGET_NAME>() + name.len() * 2;
    let mut buf = vec![0u64; len.div_ceil(8)];
    let target = buf.as_mut_ptr() as *mut SOCKET_PEER_TARGET_NAME;
    (*target).SecurityProtocol = SOCKET_SECURITY_PROTOCOL_DEFAULT;
    (*target).PeerTargetNameStringLen = name.len() as u32;
    let strings = std::ptr::addr_of_mut!((*target).AllStrings) as *mut u16;
    for (i, c) in name.iter().enumerate() {
        strings.add(i).write_unaligned(*c);
    }
    if WSASetSocketPeerTargetName(s, target, len as u32, null(), None) == SOCKET_ERROR {
        return Err(err("WSASetSocketPeerTargetName"));
    }
    outln!("[api   ] client: WSASetSocketPeerTargetName({spn:?}) = 0 (the server must prove it is that machine)");
    let to = sockaddr_v4(server_ip, SECURE_PORT);
    outln!(
        "[api   ] client: WSAConnect({}) ... (the SYN waits while IKE negotiates)",
        SocketAddr::from((server_ip, SECURE_PORT))
    );
    if WSAConnect(
        s,
        &to as *const SOCKADDR_IN as *const SOCKADDR,
        size_of::<SOCKADDR_IN>() as i32,
        null(),
        null_mut(),
        null(),
        null(),
    ) == SOCKET_ERROR
    {
        let e = err("WSAConnect");
        tap.flush();
        return Err(e);
    }
    outln!("[api   ] client: WSAConnect = 0");
    tap.flush();
    // The IPSEC2 query: the SA ids as well as the flags.
    let mut template: SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2 = zeroed();
    template.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC2;
    template.FieldMask =
        SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID | SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID;
    let mut info: SOCKET_SECURITY_QUERY_INFO_IPSEC2 = zeroed();
    let mut ilen = size_of::<SOCKET_SECURITY_QUERY_INFO_IPSEC2>() as u32;
    if WSAQuerySocketSecurity(
        s,
        &template as *const SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2
            as *const SOCKET_SECURITY_QUERY_TEMPLATE,
        size_of::<SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2>() as u32,
        &mut info as *mut SOCKET_SECURITY_QUERY_INFO_IPSEC2 as *mut SOCKET_SECURITY_QUERY_INFO,
        &mut ilen,
        null(),
        None,
    ) == SOCKET_ERROR
    {
        return Err(err("WSAQuerySocketSecurity"));
    }
    outln!(
        "[api   ] client: WSAQuerySocketSecurity(IPSEC2) = 0: Flags {}, MmSaId {}, QmSaId {}, NegotiationWinerr {}",
        flags_text(info.Flags),
        info.MmSaId,
        info.QmSaId,
        info.NegotiationWinerr
    );
    let wb = WSABUF {
        len: MESSAGE.len() as u32,
        buf: MESSAGE.as_ptr() as *mut u8,
    };
    let mut sent = 0u32;
    if WSASend(s, &wb, 1, &mut sent, 0, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSASend"));
    }
    outln!(
        "[api   ] client: WSASend({} bytes) = 0, sent {sent} (crosses the wire as ESP)",
        MESSAGE.len()
    );
    let mut echoed = vec![0u8; MESSAGE.len()];
    let rb = WSABUF {
        len: echoed.len() as u32,
        buf: echoed.as_mut_ptr(),
    };
    let (mut got, mut rflags) = (0u32, MSG_WAITALL as u32);
    if WSARecv(s, &rb, 1, &mut got, &mut rflags, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSARecv"));
    }
    echoed.truncate(got as usize);
    outln!(
        "[api   ] client: WSARecv(MSG_WAITALL) = 0, {got} bytes: {:?}",
        String::from_utf8_lossy(&echoed)
    );
    shutdown(s, SD_SEND);
    Ok(ClientSeen {
        echoed,
        flags: info.Flags,
        mm_sa_id: info.MmSaId,
        qm_sa_id: info.QmSaId,
        winerr: info.NegotiationWinerr,
    })
}

/// The server, in Winsock calls: a secure listener; for its one client: receive, query the
/// peer's tokens and check access, impersonate the peer, echo.
///
/// # Safety
/// Call on a thread whose wsock host is the server.
unsafe fn server_calls(
    host: &Host,
    sd: &[u8],
    ready: &mpsc::Sender<Result<(), String>>,
    give_up: &AtomicBool,
) -> Result<ServerSeen, String> {
    let mut data: WSADATA = zeroed();
    if WSAStartup(0x0202, &mut data) != 0 {
        return Err("WSAStartup failed".into());
    }
    let l = WSASocketW(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP, null(), 0, 0);
    if l == INVALID_SOCKET {
        let e = err("WSASocket");
        WSACleanup();
        return Err(e);
    }
    let r = listen_and_serve(host, l, sd, ready, give_up);
    closesocket(l);
    WSACleanup();
    r
}

/// # Safety
/// `l` must be a fresh TCP socket of the calling thread's host.
unsafe fn listen_and_serve(
    host: &Host,
    l: SOCKET,
    sd: &[u8],
    ready: &mpsc::Sender<Result<(), String>>,
    give_up: &AtomicBool,
) -> Result<ServerSeen, String> {
    let settings = SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    };
    if WSASetSocketSecurity(
        l,
        &settings,
        size_of::<SOCKET_SECURITY_SETTINGS>() as u32,
        null(),
        None,
    ) == SOCKET_ERROR
    {
        return Err(err("WSASetSocketSecurity"));
    }
    let at = sockaddr_v4(Ipv4Addr::UNSPECIFIED, SECURE_PORT);
    if bind(
        l,
        &at as *const SOCKADDR_IN as *const SOCKADDR,
        size_of::<SOCKADDR_IN>() as i32,
    ) == SOCKET_ERROR
    {
        return Err(err("bind"));
    }
    if listen(l, 4) == SOCKET_ERROR {
        return Err(err("listen"));
    }
    outln!("[api   ] server: WSASocketW = {l:#x}; WSASetSocketSecurity(DEFAULT, SOCKET_SETTINGS_GUARANTEE_ENCRYPTION) = 0; bind(0.0.0.0:{SECURE_PORT}) = 0; listen = 0");
    let _ = ready.send(Ok(()));
    // Wait for the client with select, so that a client that gave up does not leave the
    // server blocked in accept.
    let started = Instant::now();
    loop {
        let mut set: FD_SET = zeroed();
        set.fd_count = 1;
        set.fd_array[0] = l;
        let tv = TIMEVAL {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        let n = select(0, &mut set, null_mut(), null_mut(), &tv);
        if n == SOCKET_ERROR {
            return Err(err("select"));
        }
        if n > 0 {
            break;
        }
        if give_up.load(Ordering::SeqCst) {
            return Err("the client gave up before connecting".into());
        }
        if started.elapsed() > ACCEPT_LIMIT {
            return Err(format!(
                "no client connected within {} s",
                ACCEPT_LIMIT.as_secs()
            ));
        }
    }
    let c = WSAAccept(l, null_mut(), null_mut(), None, 0);
    if c == INVALID_SOCKET {
        return Err(err("WSAAccept"));
    }
    outln!("[api   ] server: WSAAccept = {c:#x}");
    let r = serve(host, c, sd);
    closesocket(c);
    r
}

/// # Safety
/// `c` must be an accepted socket of the calling thread's host.
unsafe fn serve(host: &Host, c: SOCKET, sd: &[u8]) -> Result<ServerSeen, String> {
    let timeout: i32 = 30_000;
    setsockopt(
        c,
        SOL_SOCKET,
        SO_RCVTIMEO,
        &timeout as *const i32 as *const u8,
        4,
    );
    let mut data = vec![0u8; MESSAGE.len()];
    let mut got = 0usize;
    while got < data.len() {
        let wb = WSABUF {
            len: (data.len() - got) as u32,
            buf: data[got..].as_mut_ptr(),
        };
        let (mut n, mut flags) = (0u32, 0u32);
        if WSARecv(c, &wb, 1, &mut n, &mut flags, null_mut(), None) == SOCKET_ERROR {
            return Err(err("WSARecv"));
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    data.truncate(got);
    outln!("[api   ] server: WSARecv = {got} bytes (decrypted from ESP)");
    // The peer's tokens: size probe with the template, then the query.
    let mut template: SOCKET_SECURITY_QUERY_TEMPLATE = zeroed();
    template.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_DEFAULT;
    template.PeerTokenAccessMask = TOKEN_QUERY;
    let tlen = size_of::<SOCKET_SECURITY_QUERY_TEMPLATE>() as u32;
    let mut len = 0u32;
    let rc = WSAQuerySocketSecurity(c, &template, tlen, null_mut(), &mut len, null(), None);
    if rc != SOCKET_ERROR || len == 0 {
        return Err(err("WSAQuerySocketSecurity (size probe)"));
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    let info = buf.as_mut_ptr() as *mut SOCKET_SECURITY_QUERY_INFO;
    if WSAQuerySocketSecurity(c, &template, tlen, info, &mut len, null(), None) == SOCKET_ERROR {
        return Err(err("WSAQuerySocketSecurity"));
    }
    let flags = (*info).Flags;
    let app = (*info).PeerApplicationAccessTokenHandle as HANDLE;
    let machine = (*info).PeerMachineAccessTokenHandle as HANDLE;
    outln!(
        "[api   ] server: WSAQuerySocketSecurity(PeerTokenAccessMask TOKEN_QUERY) = 0: Flags {}, peer application token {:#x}, peer machine token {:#x}",
        flags_text(flags),
        app as usize,
        machine as usize
    );
    let access = if app.is_null() {
        Ok(false)
    } else {
        may_read(app, sd)
    };
    for h in [app, machine] {
        if !h.is_null() && CloseHandle(h) == 0 {
            return Err(format!("CloseHandle failed with error {}", GetLastError()));
        }
    }
    let access_granted = access?;
    outln!(
        "[access] server: AccessCheck(peer token, {SDDL}, FILE_READ_DATA) = {} (the descriptor allows reading to network logons)",
        if access_granted { "granted" } else { "denied" }
    );
    if WSAImpersonateSocketPeer(c, null(), 0) == SOCKET_ERROR {
        return Err(err("WSAImpersonateSocketPeer"));
    }
    let mut token: HANDLE = null_mut();
    let seen = if OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &mut token) == 0 {
        Err(format!(
            "OpenThreadToken failed with error {}",
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
    let impersonated_name = account_name(host, &impersonated_sid);
    outln!(
        "[api   ] server: WSAImpersonateSocketPeer = 0; the thread's token user is {impersonated_sid} ({}); WSARevertImpersonation = 0",
        impersonated_name.as_deref().unwrap_or("not in the directory")
    );
    let wb = WSABUF {
        len: data.len() as u32,
        buf: data.as_ptr() as *mut u8,
    };
    let mut sent = 0u32;
    if WSASend(c, &wb, 1, &mut sent, 0, null_mut(), None) == SOCKET_ERROR {
        return Err(err("WSASend"));
    }
    outln!("[api   ] server: WSASend(echo, {} bytes) = 0", data.len());
    shutdown(c, SD_SEND);
    Ok(ServerSeen {
        flags,
        impersonated_sid,
        impersonated_name,
        access_granted,
    })
}

/// `LookupAccountSid` on the server's directory: `DOMAIN\name`.
fn account_name(host: &Host, sid: &str) -> Option<String> {
    let sid: wsock::wsock_identity::Sid = sid.parse().ok()?;
    let dir = wsock::identity::directory(host).ok()?;
    dir.lookup_sid(&sid).ok().map(|a| a.qualified_name())
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
    for i in 0..usize::from((*s).SubAuthorityCount) {
        out.push_str(&format!("-{}", subs.add(i).read_unaligned()));
    }
    out
}

/// The user SID of a token (`GetTokenInformation(TokenUser)`, size probe first).
///
/// # Safety
/// `token` must be a token handle opened with `TOKEN_QUERY`.
unsafe fn token_user(token: HANDLE) -> Result<String, String> {
    let mut len = 0u32;
    GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len);
    if GetLastError() != ERROR_INSUFFICIENT_BUFFER {
        return Err(format!(
            "GetTokenInformation (size) failed with error {}",
            GetLastError()
        ));
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    if GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) == 0 {
        return Err(format!(
            "GetTokenInformation failed with error {}",
            GetLastError()
        ));
    }
    let tu = buf.as_ptr() as *const TOKEN_USER;
    Ok(sid_string((*tu).User.Sid))
}

/// May the token read the server's data? (`AccessCheck` for `FILE_READ_DATA`.)
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
    if AccessCheck(
        sd.as_ptr() as PSECURITY_DESCRIPTOR,
        token,
        FILE_READ_DATA,
        &mapping,
        &mut ps,
        &mut ps_len,
        &mut granted,
        &mut status,
    ) == 0
    {
        return Err(format!("AccessCheck failed with error {}", GetLastError()));
    }
    Ok(status != 0)
}

/// Whether the outcome is what the demo promises: the echo arrived, both sides saw an
/// encrypted connection, the query's SA ids are in the client's SA database with an AES-GCM
/// child SA, the impersonated identity is the client machine's account and access was granted.
pub fn check(client: &Host, o: &SecureOutcome) -> Result<(), String> {
    let want = SOCKET_INFO_CONNECTION_SECURED | SOCKET_INFO_CONNECTION_ENCRYPTED;
    let mut problems = Vec::new();
    if o.client.echoed != MESSAGE {
        problems.push(format!(
            "echo {:?}",
            String::from_utf8_lossy(&o.client.echoed)
        ));
    }
    if o.client.flags & want != want {
        problems.push(format!("client flags {}", flags_text(o.client.flags)));
    }
    if o.server.flags & want != want {
        problems.push(format!("server flags {}", flags_text(o.server.flags)));
    }
    let db = client.security_associations();
    if !db.ike.iter().any(|m| m.mm_sa_id == o.client.mm_sa_id) {
        problems.push(format!(
            "MmSaId {} not in the SA database",
            o.client.mm_sa_id
        ));
    }
    match db.child.iter().find(|q| q.qm_sa_id == o.client.qm_sa_id) {
        Some(q) if q.encrypted && q.suite.contains("gcm") => {}
        Some(q) => problems.push(format!("QM SA {} uses {}", q.qm_sa_id, q.suite)),
        None => problems.push(format!(
            "QmSaId {} not in the SA database",
            o.client.qm_sa_id
        )),
    }
    if o.client.winerr != 0 {
        problems.push(format!("NegotiationWinerr {}", o.client.winerr));
    }
    if !o.server.impersonated_sid.starts_with("S-1-") {
        problems.push(format!("impersonated SID {:?}", o.server.impersonated_sid));
    }
    if !o.server.access_granted {
        problems.push("access denied".into());
    }
    let machine = machine_of(client);
    match &o.server.impersonated_name {
        Some(n) if n.to_ascii_uppercase().ends_with(&format!("\\{machine}$")) => {}
        other => problems.push(format!("impersonated {:?}", other)),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("secure exchange: {}", problems.join("; ")))
    }
}
