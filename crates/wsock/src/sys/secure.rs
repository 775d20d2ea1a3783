//! The six secure-socket functions of `Fwpuclnt.dll` (`WSASetSocketSecurity`,
//! `WSASetSocketPeerTargetName`, `WSADeleteSocketPeerTargetName`, `WSAQuerySocketSecurity`,
//! `WSAImpersonateSocketPeer`, `WSARevertImpersonation`) and the four IOCTLs the first four
//! wrap.
//!
//! [`HANDLERS`] is the one table of per-code handlers: `WSAIoctl` dispatches
//! `SIO_SET_SECURITY`, `SIO_SET_PEER_TARGET_NAME`, `SIO_DELETE_PEER_TARGET_NAME` and
//! `SIO_QUERY_SECURITY` through it, and the four wrappers are nothing but `WSAIoctl` calls, so a
//! wrapper and its IOCTL behave identically by construction (overlapped arguments included).
//! The structures are parsed by [`crate::secure`], which never panics on hostile lengths.

use std::mem::{offset_of, size_of};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use windows_sys::Win32::System::IO::OVERLAPPED;
use wsock_stack::Family;

use super::{
    code, established, finish, guard, with_socket, WSAIoctl, LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    SIO_DELETE_PEER_TARGET_NAME, SIO_QUERY_SECURITY, SIO_SET_PEER_TARGET_NAME, SIO_SET_SECURITY,
    SOCKADDR, SOCKET, SOCKET_ERROR, SOCKET_PEER_TARGET_NAME,
    SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE, SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID,
    SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID, SOCKET_SECURITY_QUERY_INFO,
    SOCKET_SECURITY_QUERY_INFO_IPSEC2, SOCKET_SECURITY_QUERY_TEMPLATE,
    SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, SOCKET_SECURITY_SETTINGS,
    SOCKET_SECURITY_SETTINGS_IPSEC, WSAEFAULT, WSAEINVAL, WSAEMSGSIZE, WSAENETDOWN,
};
use crate::identity::Impersonation;
use crate::secure::{
    layout, parse_peer_target_name, parse_query_template, parse_settings, parse_sockaddr,
    unspecified, PeerAddress, QueryInfo, QueryInfoIpsec2, SecureError, SecurityInfo,
    SecurityProtocol,
};
use crate::stack_security as stack;
use crate::winsock::{self, SocketEntry, Winsock};

// ------------------------------------------------------------------ layouts (x64)

const _: () = {
    assert!(size_of::<SOCKET_SECURITY_SETTINGS>() == layout::SETTINGS_LEN);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS, SecurityFlags) == 4);

    assert!(size_of::<SOCKET_SECURITY_SETTINGS_IPSEC>() == layout::SETTINGS_IPSEC_LEN);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, SecurityFlags) == 4);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, IpsecFlags) == 8);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, AuthipMMPolicyKey) == 12);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, AuthipQMPolicyKey) == 28);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, Reserved) == 44);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, Reserved2) == 64);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, UserNameStringLen) == 72);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, DomainNameStringLen) == 76);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, PasswordStringLen) == 80);
    assert!(offset_of!(SOCKET_SECURITY_SETTINGS_IPSEC, AllStrings) == layout::SETTINGS_IPSEC_FIXED);

    assert!(size_of::<SOCKET_PEER_TARGET_NAME>() == layout::PEER_TARGET_NAME_LEN);
    assert!(offset_of!(SOCKET_PEER_TARGET_NAME, PeerAddress) == layout::PEER_ADDRESS_OFFSET);
    assert!(offset_of!(SOCKET_PEER_TARGET_NAME, PeerTargetNameStringLen) == 136);
    assert!(offset_of!(SOCKET_PEER_TARGET_NAME, AllStrings) == layout::PEER_TARGET_NAME_FIXED);

    assert!(size_of::<SOCKET_SECURITY_QUERY_TEMPLATE>() == layout::QUERY_TEMPLATE_LEN);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE, PeerAddress) == layout::PEER_ADDRESS_OFFSET);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE, PeerTokenAccessMask) == 136);

    assert!(
        size_of::<SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2>() == layout::QUERY_TEMPLATE_IPSEC2_LEN
    );
    assert!(offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, PeerTokenAccessMask) == 136);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, Flags) == 140);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_TEMPLATE_IPSEC2, FieldMask) == 144);

    assert!(size_of::<SOCKET_SECURITY_QUERY_INFO>() == layout::QUERY_INFO_LEN);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO, Flags) == 4);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO, PeerApplicationAccessTokenHandle) == 8);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO, PeerMachineAccessTokenHandle) == 16);

    assert!(size_of::<SOCKET_SECURITY_QUERY_INFO_IPSEC2>() == layout::QUERY_INFO_IPSEC2_LEN);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, MmSaId) == 24);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, QmSaId) == 32);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, NegotiationWinerr) == 40);
    assert!(offset_of!(SOCKET_SECURITY_QUERY_INFO_IPSEC2, SaLookupContext) == 44);
};

// ------------------------------------------------------------------ the handler table

/// The buffers of one `WSAIoctl` call.
pub(super) struct Args {
    pub(super) input: *const u8,
    pub(super) in_len: u32,
    pub(super) output: *mut u8,
    pub(super) out_len: u32,
}

/// A per-code handler: the socket, the buffers, and where to put the byte count (also on
/// failure: the query's size probe reports the size it needs there).
pub(super) type Handler =
    unsafe fn(&Arc<Winsock>, &Arc<SocketEntry>, &Args, &mut u32) -> Result<(), i32>;

/// The secure-socket IOCTLs and their handlers: the only place they are implemented.
pub(super) const HANDLERS: [(u32, Handler); 4] = [
    (SIO_SET_SECURITY, set_security),
    (SIO_SET_PEER_TARGET_NAME, set_peer_target_name),
    (SIO_DELETE_PEER_TARGET_NAME, delete_peer_target_name),
    (SIO_QUERY_SECURITY, query_security),
];

/// The handler of a control code, if it is a secure-socket IOCTL.
pub(super) fn handler(code: u32) -> Option<Handler> {
    HANDLERS.iter().find(|(c, _)| *c == code).map(|(_, h)| *h)
}

fn wsa(e: SecureError) -> i32 {
    tracing::debug!(target: "wsock::api", error = %e, "secure-socket call failed");
    e.wsa_code()
}

/// The caller's input bytes, at most `cap` of them (every structure needs at most that many,
/// so a huge length never becomes a huge slice); `None` for a null pointer.
///
/// # Safety
/// `a.input` must be valid for `a.in_len` bytes (the caller's duty, as on Windows).
unsafe fn input<'a>(a: &Args, cap: usize) -> Option<&'a [u8]> {
    if a.input.is_null() {
        return None;
    }
    Some(std::slice::from_raw_parts(
        a.input,
        (a.in_len as usize).min(cap),
    ))
}

/// Connected (TCP: established or connecting; UDP: a default peer set).
fn connected(e: &SocketEntry) -> bool {
    if e.stream {
        established(e)
            || (e.connecting.load(Ordering::SeqCst) && !e.connect_failed.load(Ordering::SeqCst))
    } else {
        e.endpoint.peer_addr().is_ok()
    }
}

/// The IP of `addr` as the socket's family takes it (an IPv4-mapped address on an IPv4
/// socket is its IPv4 address; wsock's IPv6 sockets are v6-only).
fn fit(e: &SocketEntry, addr: SocketAddr) -> Result<IpAddr, SecureError> {
    let v6 = e.endpoint.family() == Family::V6;
    match (v6, addr.ip()) {
        (false, IpAddr::V4(a)) => Ok(IpAddr::V4(a)),
        (false, IpAddr::V6(a)) => a
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .ok_or(SecureError::AddressFamily(23)),
        (true, IpAddr::V6(a)) => Ok(IpAddr::V6(a)),
        (true, IpAddr::V4(_)) => Err(SecureError::AddressFamily(2)),
    }
}

/// Whether `WSASetSocketSecurity` may still be called on the socket.
pub(crate) fn check_settable(e: &SocketEntry) -> Result<(), SecureError> {
    if connected(e) {
        return Err(SecureError::IsConnected);
    }
    if e.listening.load(Ordering::SeqCst) {
        return Err(SecureError::InvalidState("the socket is listening"));
    }
    if e.security_set.load(Ordering::SeqCst) {
        return Err(SecureError::InvalidState("security is already set"));
    }
    if e.endpoint.local_addr().is_ok() {
        return Err(SecureError::InvalidState("the socket is bound"));
    }
    if e.endpoint.options().map(|o| o.reuse_addr).unwrap_or(false) {
        return Err(SecureError::InvalidState("SO_REUSEADDR is set"));
    }
    Ok(())
}

/// `SIO_SET_SECURITY`: a null buffer is the default policy.
unsafe fn set_security(
    _ws: &Arc<Winsock>,
    e: &Arc<SocketEntry>,
    a: &Args,
    _returned: &mut u32,
) -> Result<(), i32> {
    let settings = match input(a, layout::SETTINGS_MAX) {
        None => None,
        Some(b) => Some(parse_settings(b).map_err(wsa)?),
    };
    check_settable(e).map_err(wsa)?;
    tracing::debug!(target: "wsock::api", ?settings, "WSASetSocketSecurity");
    stack::set_security(&e.endpoint, settings).map_err(code)?;
    // "WSASetSocketSecurity function" (Remarks): the call sets SO_EXCLUSIVEADDRUSE itself.
    e.endpoint
        .set_options(|o| o.exclusive_addr = true)
        .map_err(code)?;
    e.security_set.store(true, Ordering::SeqCst);
    Ok(())
}

/// The IP a peer target name is stored under: the peer's for a connectionless socket; for a
/// connection-oriented one (where Windows ignores `PeerAddress`) the address if one is given,
/// else the unspecified address of the socket's family.
fn name_key(e: &SocketEntry, peer: &PeerAddress) -> Result<IpAddr, SecureError> {
    let v6 = e.endpoint.family() == Family::V6;
    if e.stream {
        return Ok(match peer {
            PeerAddress::Ip(a) => match fit(e, *a) {
                Ok(ip) => ip,
                Err(_) => unspecified(v6),
            },
            _ => unspecified(v6),
        });
    }
    match peer {
        PeerAddress::Unspecified => Err(SecureError::InvalidValue(
            "a connectionless socket needs the peer's address",
        )),
        PeerAddress::Other(f) => Err(SecureError::AddressFamily(*f)),
        PeerAddress::Ip(a) => {
            if a.ip().is_unspecified() && a.port() == 0 {
                return Err(SecureError::InvalidValue(
                    "a connectionless socket needs the peer's address",
                ));
            }
            fit(e, *a)
        }
    }
}

/// `SIO_SET_PEER_TARGET_NAME`.
unsafe fn set_peer_target_name(
    _ws: &Arc<Winsock>,
    e: &Arc<SocketEntry>,
    a: &Args,
    _returned: &mut u32,
) -> Result<(), i32> {
    let b = input(a, layout::PEER_TARGET_NAME_MAX).ok_or(WSAEFAULT)?;
    let p = parse_peer_target_name(b).map_err(wsa)?;
    if connected(e) {
        return Err(wsa(SecureError::IsConnected));
    }
    let ip = name_key(e, &p.peer).map_err(wsa)?;
    tracing::debug!(target: "wsock::api", %ip, name = %p.name, "WSASetSocketPeerTargetName");
    stack::set_peer_target_name(&e.endpoint, ip, &p.name).map_err(code)
}

/// `SIO_DELETE_PEER_TARGET_NAME`: the input is a `SOCKADDR`.
unsafe fn delete_peer_target_name(
    _ws: &Arc<Winsock>,
    e: &Arc<SocketEntry>,
    a: &Args,
    _returned: &mut u32,
) -> Result<(), i32> {
    let b = input(a, layout::SOCKADDR_STORAGE_LEN).ok_or(WSAEFAULT)?;
    let addr = parse_sockaddr(b).map_err(wsa)?;
    let ip = fit(e, addr).map_err(wsa)?;
    tracing::debug!(target: "wsock::api", %ip, "WSADeleteSocketPeerTargetName");
    stack::delete_peer_target_name(&e.endpoint, ip).map_err(code)
}

/// The peer a query or impersonation is about: `None` on a connected TCP socket, the full
/// address (IP and port) on a UDP socket.
fn query_peer(e: &SocketEntry, peer: &PeerAddress) -> Result<Option<SocketAddr>, SecureError> {
    if e.stream {
        if !established(e) {
            return Err(SecureError::NotConnected);
        }
        return Ok(None);
    }
    match peer {
        PeerAddress::Unspecified => Err(SecureError::InvalidValue(
            "a connectionless socket's query needs the peer's address and port",
        )),
        PeerAddress::Other(f) => Err(SecureError::AddressFamily(*f)),
        PeerAddress::Ip(a) => {
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(SecureError::InvalidValue(
                    "a connectionless socket's query needs the peer's address and port",
                ));
            }
            let ip = fit(e, *a)?;
            Ok(Some(SocketAddr::new(ip, a.port())))
        }
    }
}

/// `SIO_QUERY_SECURITY`: template in, `SOCKET_SECURITY_QUERY_INFO(_IPSEC2)` out.
unsafe fn query_security(
    ws: &Arc<Winsock>,
    e: &Arc<SocketEntry>,
    a: &Args,
    returned: &mut u32,
) -> Result<(), i32> {
    let template = match input(a, layout::QUERY_TEMPLATE_IPSEC2_LEN) {
        None => None,
        Some([]) => None,
        Some(b) => Some(parse_query_template(b).map_err(wsa)?),
    };
    // A template is optional on TCP only ("WSAQuerySocketSecurity function", Parameters).
    if template.is_none() && !e.stream {
        return Err(WSAEMSGSIZE);
    }
    let peer = query_peer(e, &template.map_or(PeerAddress::Unspecified, |t| t.peer));
    // Argument errors come before the size probe; the connection state after it.
    if let Err(err @ (SecureError::AddressFamily(_) | SecureError::InvalidValue(_))) = &peer {
        return Err(wsa(err.clone()));
    }
    let need = template.map_or(layout::QUERY_INFO_LEN, |t| t.info_len());
    if a.output.is_null() || (a.out_len as usize) < need {
        *returned = need as u32;
        return Err(match template {
            Some(_) => WSAEMSGSIZE,
            None => ws.null_template_probe_error.load(Ordering::Relaxed),
        });
    }
    let peer = peer.map_err(wsa)?;
    let watch = match template.map_or(0, |t| t.flags) {
        0 => None,
        SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE => {
            let mask = template.map_or(0, |t| t.field_mask);
            Some(wsock_stack::SaFields {
                mm: mask & SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID != 0,
                qm: mask & SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID != 0,
            })
        }
        // No other flag is defined (the template parser refuses them first).
        _ => return Err(WSAEINVAL),
    };
    let q = stack::query_security(&e.endpoint, peer).map_err(code)?;
    let info = SecurityInfo::from(q);
    let mask = template.map_or(0, |t| t.access_mask);
    let tokens = if mask != 0 && info.secured && info.peer_machine.is_some() {
        let host = winsock::host_of(ws, e).ok_or(WSAENETDOWN)?;
        crate::secure::tokens(&host, &info, mask).map_err(wsa)?
    } else {
        crate::identity::PeerTokens::default()
    };
    let ipsec2 = template.is_some_and(|t| t.protocol == SecurityProtocol::Ipsec2);
    let field_mask = template.map_or(0, |t| t.field_mask);
    let answer = QueryInfo {
        protocol: if ipsec2 {
            SecurityProtocol::Ipsec2.raw()
        } else if info.secured {
            SecurityProtocol::Ipsec.raw()
        } else {
            SecurityProtocol::Default.raw()
        },
        flags: info.flags(),
        application_token: tokens.application,
        machine_token: tokens.machine,
        ipsec2: ipsec2.then_some(QueryInfoIpsec2 {
            mm_sa_id: if field_mask & 0x1 != 0 {
                info.mm_sa_id
            } else {
                0
            },
            qm_sa_id: if field_mask & 0x2 != 0 {
                info.qm_sa_id
            } else {
                0
            },
            negotiation_winerr: info.negotiation_winerr,
            sa_lookup_context: info.sa_lookup_context as u128,
        }),
    };
    let out = std::slice::from_raw_parts_mut(a.output, need);
    let n = answer.emit(out).map_err(wsa)?;
    // The watch starts only with a call that succeeded.
    if let Some(fields) = watch {
        stack::query_security_watching(&e.endpoint, peer, fields).map_err(code)?;
    }
    *returned = n as u32;
    Ok(())
}

// ------------------------------------------------------------------ the six functions

/// Turns security on for a socket (`SIO_SET_SECURITY`): `securitysettings` null applies the
/// default policy; otherwise a `SOCKET_SECURITY_SETTINGS` (protocol DEFAULT, 8 bytes) or a
/// `SOCKET_SECURITY_SETTINGS_IPSEC` (protocol IPSEC or IPSEC2, 84 bytes plus its strings).
/// Sets `SO_EXCLUSIVEADDRUSE` on the socket, as Windows does. Call before bind, connect or
/// listen, once. The overlapped arguments are ignored on a socket made without
/// `WSA_FLAG_OVERLAPPED`; on an overlapped socket the call completes at once and its completion
/// is indicated (event signalled or routine queued), as for every `WSAIoctl`.
///
/// # Safety
/// `securitysettings` must be valid for `securitysettingslen` bytes; an `OVERLAPPED` must stay
/// valid until the completion is indicated, and is written (its `Internal` fields, as Windows
/// writes them) although windows-sys types it `*const`: pass a pointer to a mutable place
/// (`&raw mut ov`), not one made from a shared reference.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEMSGSIZE` (short buffer), `WSAEINVAL` (bad protocol or
/// flags, an IPsec structure with protocol DEFAULT, called twice, after bind or listen, with
/// `SO_REUSEADDR` set), `WSAEISCONN`.
pub unsafe extern "system" fn WSASetSocketSecurity(
    socket: SOCKET,
    securitysettings: *const SOCKET_SECURITY_SETTINGS,
    securitysettingslen: u32,
    overlapped: *const OVERLAPPED,
    completionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    let mut n = 0u32;
    WSAIoctl(
        socket,
        SIO_SET_SECURITY,
        securitysettings.cast(),
        securitysettingslen,
        std::ptr::null_mut(),
        0,
        &mut n,
        overlapped.cast_mut(),
        completionroutine,
    )
}

/// Names the principal the peer must authenticate as (`SIO_SET_PEER_TARGET_NAME`).
/// `PeerTargetNameStringLen` counts UTF-16 units for protocols DEFAULT/IPSEC and bytes for
/// IPSEC2. On a UDP socket `PeerAddress` names the peer (one name per peer address); on TCP it
/// is ignored when zero. Overlapped arguments as [`WSASetSocketSecurity`].
///
/// # Safety
/// `peertargetname` must be valid for `peertargetnamelen` bytes.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (null), `WSAEMSGSIZE` (shorter than 140 bytes
/// plus the name), `WSAEINVAL` (bad protocol, empty name, a UDP peer address of IP and port
/// zero), `WSAEAFNOSUPPORT`, `WSAEISCONN`.
pub unsafe extern "system" fn WSASetSocketPeerTargetName(
    socket: SOCKET,
    peertargetname: *const SOCKET_PEER_TARGET_NAME,
    peertargetnamelen: u32,
    overlapped: *const OVERLAPPED,
    completionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    let mut n = 0u32;
    WSAIoctl(
        socket,
        SIO_SET_PEER_TARGET_NAME,
        peertargetname.cast(),
        peertargetnamelen,
        std::ptr::null_mut(),
        0,
        &mut n,
        overlapped.cast_mut(),
        completionroutine,
    )
}

/// Removes the peer target name of a peer address (`SIO_DELETE_PEER_TARGET_NAME`). Deleting a
/// name that was never set succeeds. Overlapped arguments as [`WSASetSocketSecurity`].
///
/// # Safety
/// `peeraddr` must be valid for `peeraddrlen` bytes.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (null), `WSAEMSGSIZE` (shorter than the
/// family's `SOCKADDR`), `WSAEAFNOSUPPORT`.
pub unsafe extern "system" fn WSADeleteSocketPeerTargetName(
    socket: SOCKET,
    peeraddr: *const SOCKADDR,
    peeraddrlen: u32,
    overlapped: *const OVERLAPPED,
    completionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    let mut n = 0u32;
    WSAIoctl(
        socket,
        SIO_DELETE_PEER_TARGET_NAME,
        peeraddr.cast(),
        peeraddrlen,
        std::ptr::null_mut(),
        0,
        &mut n,
        overlapped.cast_mut(),
        completionroutine,
    )
}

/// Asks how a connection (TCP) or a peer (UDP, named in the template) is secured
/// (`SIO_QUERY_SECURITY`). The template may be null on TCP only. A null or short
/// `securityqueryinfo` fails and stores the size needed in `*securityqueryinfolen` (24, or 64
/// for an IPSEC2 template): `WSAEMSGSIZE` with a template; with a null template on TCP,
/// `WSAEFAULT` as the Microsoft sample expects (configurable per network with
/// [`crate::ext::set_null_template_probe_error`]). On success `*securityqueryinfolen` is the
/// bytes written. Token handles are returned when `PeerTokenAccessMask` is non-zero and the
/// peer authenticated; close each with `CloseHandle`. With
/// `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE` in an IPSEC2 template's `Flags`, a
/// secured TCP connection is aborted (`WSAECONNABORTED` on the socket, a reset to the peer)
/// once an SA id that `FieldMask` selects changes (a rekey, a new negotiation, the SA gone).
///
/// # Safety
/// The buffers must be valid for the lengths given.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (null `securityqueryinfolen`, and the size
/// probe above), `WSAEMSGSIZE`, `WSAEINVAL` (also an undefined bit in the template's
/// `Flags`), `WSAEAFNOSUPPORT`, `WSAENOTCONN` (TCP not connected).
pub unsafe extern "system" fn WSAQuerySocketSecurity(
    socket: SOCKET,
    securityquerytemplate: *const SOCKET_SECURITY_QUERY_TEMPLATE,
    securityquerytemplatelen: u32,
    securityqueryinfo: *mut SOCKET_SECURITY_QUERY_INFO,
    securityqueryinfolen: *mut u32,
    overlapped: *const OVERLAPPED,
    completionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
) -> i32 {
    // *SecurityQueryInfoLen is both cbOutBuffer and lpcbBytesReturned; without it the call is
    // WSAEFAULT, so the overlapped path (which tolerates a null count) is not taken.
    let (cap, overlapped) = if securityqueryinfolen.is_null() {
        (0, std::ptr::null_mut())
    } else {
        (
            std::ptr::read_unaligned(securityqueryinfolen),
            overlapped.cast_mut(),
        )
    };
    WSAIoctl(
        socket,
        SIO_QUERY_SECURITY,
        securityquerytemplate.cast(),
        securityquerytemplatelen,
        securityqueryinfo.cast(),
        cap,
        securityqueryinfolen,
        overlapped,
        completionroutine,
    )
}

/// The impersonation of a socket's authenticated peer: on TCP the connection's peer
/// (`peer` ignored), on UDP the peer at `peer`.
pub(crate) fn peer_impersonation_of(
    ws: &Arc<Winsock>,
    e: &Arc<SocketEntry>,
    peer: Option<SocketAddr>,
) -> Result<Impersonation, SecureError> {
    if e.nonblocking.load(Ordering::SeqCst) {
        return Err(SecureError::InvalidState(
            "impersonation needs a blocking socket",
        ));
    }
    let peer = match peer {
        Some(a) => query_peer(e, &PeerAddress::Ip(a))?,
        None => query_peer(e, &PeerAddress::Unspecified)?,
    };
    let info = SecurityInfo::from(stack::query_security(&e.endpoint, peer)?);
    let machine = match (&info.peer_machine, info.secured) {
        (Some(m), true) => m.clone(),
        _ => return Err(SecureError::NoPeerIdentity),
    };
    let host =
        winsock::host_of(ws, e).ok_or(SecureError::Stack(wsock_stack::StackError::NetworkDown))?;
    Ok(crate::identity::peer_impersonation(
        &host,
        &machine,
        info.peer_user.as_deref(),
    )?)
}

/// Reads the `SOCKADDR` of `WSAImpersonateSocketPeer` on a UDP socket.
unsafe fn impersonate_addr(peeraddr: *const SOCKADDR, len: u32) -> Result<SocketAddr, SecureError> {
    if peeraddr.is_null() {
        return Err(SecureError::NullPointer);
    }
    let b = std::slice::from_raw_parts(
        peeraddr as *const u8,
        (len as usize).min(layout::SOCKADDR_STORAGE_LEN),
    );
    parse_sockaddr(b)
}

/// Makes the calling thread impersonate the socket's authenticated peer: the peer user's token
/// when the peer authenticated a user, else the peer computer's. On TCP `peeraddr` is ignored
/// (the sample passes null); on UDP it names the peer. Lasts until [`WSARevertImpersonation`]
/// (or `RevertToSelf`) on this thread; other threads never see it.
///
/// # Safety
/// `peeraddr` must be valid for `peeraddrlen` bytes.
///
/// # Errors
/// `WSANOTINITIALISED`, `WSAENOTSOCK`, `WSAEFAULT` (UDP: null address), `WSAEMSGSIZE` (short
/// address), `WSAEAFNOSUPPORT`, `WSAENOTCONN` (TCP not connected), `WSAEINVAL` (a non-blocking
/// socket; no authenticated peer).
pub unsafe extern "system" fn WSAImpersonateSocketPeer(
    socket: SOCKET,
    peeraddr: *const SOCKADDR,
    peeraddrlen: u32,
) -> i32 {
    guard(SOCKET_ERROR, || {
        finish(with_socket(socket, |ws, e| {
            let peer = if e.stream {
                None
            } else {
                Some(impersonate_addr(peeraddr, peeraddrlen).map_err(wsa)?)
            };
            let imp = peer_impersonation_of(ws, e, peer).map_err(wsa)?;
            crate::ext::impersonate(imp);
            Ok(0)
        }))
    })
}

/// Ends the calling thread's socket-peer impersonation; without one it does nothing. Returns 0.
///
/// # Safety
/// None: no pointers.
///
/// # Errors
/// None (Windows documents only `WSASYSCALLFAILURE`, which wsock never has).
pub unsafe extern "system" fn WSARevertImpersonation() -> i32 {
    crate::ext::revert();
    finish(Ok(0))
}

/// For [`crate::ext::impersonate_socket_peer`]: the peer impersonation of a raw socket.
pub(crate) fn impersonation_for(
    socket: SOCKET,
    peer: Option<SocketAddr>,
) -> Result<Impersonation, i32> {
    with_socket(socket, |ws, e| {
        let peer = if e.stream {
            None
        } else {
            Some(peer.ok_or(WSAEFAULT)?)
        };
        peer_impersonation_of(ws, e, peer).map_err(wsa)
    })
}
