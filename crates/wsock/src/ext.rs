//! wsock's extensions to the raw face: which host a thread's `socket()` calls create sockets on.
//! Windows has one host per process; wsock has many, so the choice lives here, outside `sys`.
//!
//! Order of choice: the thread's host set with [`set_thread_host`]; else the process default
//! from the environment (`WSOCK_HOST`, the host name, and `WSOCK_SCENARIO`, a scenario file in
//! which only that host runs in this process; when unset, every host of the embedded default
//! scenario runs in this process); else `WSAStartup` fails with `WSASYSNOTREADY` and
//! [`last_setup_error`] says why.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};

use wsock_stack::{Endpoint, Host, Network, Scenario};

use crate::winsock::{self, Winsock};

/// Environment variable naming the host of the process default.
pub const HOST_ENV: &str = "WSOCK_HOST";
/// Environment variable naming the scenario file of the process default.
pub const SCENARIO_ENV: &str = "WSOCK_SCENARIO";

thread_local! {
    static THREAD_HOST: RefCell<Option<(Host, Arc<Winsock>)>> = const { RefCell::new(None) };
}

static PROCESS_DEFAULT: OnceLock<Result<(Host, Arc<Winsock>), String>> = OnceLock::new();
static SETUP_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Makes `socket()` on this thread create sockets on `host`.
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// wsock::ext::set_thread_host(&net.host("client").unwrap());
/// assert_eq!(wsock::ext::thread_host().unwrap().name(), "client");
/// # Ok::<(), wsock::Error>(())
/// ```
pub fn set_thread_host(host: &Host) {
    let ws = winsock::for_network(host.network());
    THREAD_HOST.with(|t| *t.borrow_mut() = Some((host.clone(), ws)));
}

/// Forgets this thread's host.
pub fn clear_thread_host() {
    THREAD_HOST.with(|t| *t.borrow_mut() = None);
}

/// The host `socket()` uses on this thread, if any.
pub fn thread_host() -> Option<Host> {
    current().ok().map(|(h, _)| h)
}

/// Why the last host selection failed (for a `WSASYSNOTREADY`).
pub fn last_setup_error() -> Option<String> {
    SETUP_ERROR.lock().ok().and_then(|g| g.clone())
}

fn process_default() -> Result<(Host, Arc<Winsock>), String> {
    PROCESS_DEFAULT
        .get_or_init(|| {
            let name = std::env::var(HOST_ENV).map_err(|_| {
                format!("no host selected: call wsock::ext::set_thread_host or set {HOST_ENV} (and optionally {SCENARIO_ENV})")
            })?;
            // With a scenario file, only this host runs here (the others are other processes,
            // at fixed ports); with the embedded default scenario, every host runs in this
            // process, so the default's port-0 wire endpoints work.
            let net = match std::env::var(SCENARIO_ENV) {
                Ok(path) => {
                    let scenario = Scenario::from_file(path.as_ref()).map_err(|e| e.to_string())?;
                    Network::builder(scenario).local_hosts([name.clone()]).start()
                }
                Err(_) => Network::start(Scenario::default_scenario()),
            }
            .map_err(|e| e.to_string())?;
            let host = net.host(&name).ok_or_else(|| format!("{HOST_ENV}={name} is not a host of the scenario"))?;
            let ws = winsock::for_network(&net);
            Ok((host, ws))
        })
        .clone()
}

pub(crate) fn current() -> Result<(Host, Arc<Winsock>), String> {
    if let Some(v) = THREAD_HOST.with(|t| t.borrow().clone()) {
        return Ok(v);
    }
    let r = process_default();
    if let Err(e) = &r {
        if let Ok(mut g) = SETUP_ERROR.lock() {
            *g = Some(e.clone());
        }
    }
    r
}

/// The stack endpoint behind a raw `SOCKET` handle (for tests and tools).
pub fn endpoint_of(socket: usize) -> Option<Endpoint> {
    winsock::lookup(socket)
        .ok()
        .map(|(_, e)| e.endpoint.clone())
}

// ------------------------------------------------------------------ impersonation (raw face)

pub use crate::identity::{current_impersonation, Impersonation};

/// Makes the calling thread impersonate `imp` (replacing any impersonation it had), as
/// `WSAImpersonateSocketPeer` and `ImpersonateLoggedOnUser` do. It lasts until [`revert`] (or
/// `RevertToSelf`, or later `WSARevertImpersonation`) on this thread; other threads never see
/// it. Tasks of the async face use [`crate::net::impersonate`] instead: a thread's
/// impersonation would leak to every task its worker thread polls.
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// let server = net.host("server").unwrap();
/// let peer = wsock::identity::peer_impersonation(&server, "CLIENT", Some("alice"))?;
/// wsock::ext::impersonate(peer);
/// let now = wsock::ext::current_impersonation().unwrap();
/// let dir = wsock::identity::directory(&server)?;
/// assert_eq!(now.token().user().sid, dir.user("alice")?.sid());
/// wsock::ext::revert();
/// assert!(wsock::ext::current_impersonation().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn impersonate(imp: Impersonation) {
    crate::identity::set_thread(Some(imp));
}

/// Ends the calling thread's impersonation. Without one it does nothing (as
/// `WSARevertImpersonation` documents).
pub fn revert() {
    crate::identity::set_thread(None);
}

/// Impersonates `imp` on the calling thread until the returned guard drops, which restores
/// what the thread had before (its previous impersonation or none). The guard cannot leave the
/// thread (it is not `Send`).
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// let peer = wsock::identity::peer_impersonation(&net.host("server").unwrap(), "CLIENT", None)?;
/// {
///     let _as_peer = wsock::ext::impersonate_scoped(peer);
///     assert!(wsock::ext::current_impersonation().is_some());
/// }
/// assert!(wsock::ext::current_impersonation().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn impersonate_scoped(imp: Impersonation) -> ThreadImpersonationGuard {
    ThreadImpersonationGuard {
        previous: crate::identity::set_thread(Some(imp)),
        _not_send: std::marker::PhantomData,
    }
}

/// Restores the thread's previous impersonation on drop (see [`impersonate_scoped`]).
#[must_use = "the impersonation ends when the guard drops"]
#[derive(Debug)]
pub struct ThreadImpersonationGuard {
    previous: Option<Impersonation>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ThreadImpersonationGuard {
    fn drop(&mut self) {
        crate::identity::set_thread(self.previous.take());
    }
}

/// Impersonates the authenticated peer of raw socket `socket` on the calling thread until the
/// returned guard drops (the guard form of `WSAImpersonateSocketPeer` +
/// `WSARevertImpersonation`): on TCP the connection's peer, on UDP the peer at `peer`.
///
/// # Errors
/// The WSA code `WSAImpersonateSocketPeer` would give: `WSAENOTSOCK`, `WSAENOTCONN` (TCP not
/// connected), `WSAEFAULT` (UDP without `peer`), `WSAEINVAL` (non-blocking socket, no
/// authenticated peer), `WSAEAFNOSUPPORT`.
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// wsock::ext::set_thread_host(&net.host("client").unwrap());
/// let mut data = unsafe { std::mem::zeroed() };
/// assert_eq!(unsafe { wsock::sys::WSAStartup(0x202, &mut data) }, 0);
/// let s = unsafe { wsock::sys::socket(2, 1, 6) };
/// // Not connected: nothing to impersonate.
/// assert_eq!(wsock::ext::impersonate_socket_peer(s, None).unwrap_err(), 10057);
/// # Ok::<(), wsock::Error>(())
/// ```
pub fn impersonate_socket_peer(
    socket: usize,
    peer: Option<std::net::SocketAddr>,
) -> Result<ThreadImpersonationGuard, i32> {
    let imp = crate::sys::secure_impersonation_for(socket, peer)?;
    Ok(impersonate_scoped(imp))
}

/// Chooses the error `WSAQuerySocketSecurity` gives for its size probe on a TCP socket with a
/// null template (the Microsoft sample expects `WSAEFAULT`, the default; Project Zero's tools,
/// which always pass a template, see `WSAEMSGSIZE`). Per network; other codes are refused.
///
/// # Errors
/// `Err(code)` with `WSAEINVAL` for a code other than `WSAEFAULT` (10014) or `WSAEMSGSIZE`
/// (10040).
///
/// # Examples
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// wsock::ext::set_null_template_probe_error(&net, 10040).unwrap();
/// assert!(wsock::ext::set_null_template_probe_error(&net, 1).is_err());
/// # Ok::<(), wsock::Error>(())
/// ```
pub fn set_null_template_probe_error(net: &Network, code: i32) -> Result<(), i32> {
    use crate::error::codes::{WSAEFAULT, WSAEINVAL, WSAEMSGSIZE};
    if code != WSAEFAULT && code != WSAEMSGSIZE {
        return Err(WSAEINVAL);
    }
    winsock::for_network(net)
        .null_template_probe_error
        .store(code, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// A self-relative security descriptor (the bytes `AccessCheck` reads through its
/// `PSECURITY_DESCRIPTOR`) from SDDL, as `ConvertStringSecurityDescriptorToSecurityDescriptorW`
/// makes one. Domain aliases (`DA`, `DU`, ...) resolve in `host`'s domain; with `None` they are
/// an error. Generic rights in the ACEs are mapped with `mapping` when given (the step Windows
/// does when a descriptor is assigned to an object), else left as written.
///
/// Keep the `Vec` alive (and do not move its buffer) while a pointer to it is in use.
///
/// # Errors
/// [`wsock_identity::IdentityError::InvalidSddl`] for text outside the supported subset.
///
/// # Examples
/// ```
/// let sd = wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(A;;FR;;;NU)", None, None)?;
/// assert_eq!(sd[0], 1); // SECURITY_DESCRIPTOR_REVISION
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn security_descriptor_from_sddl(
    sddl: &str,
    host: Option<&Host>,
    mapping: Option<&wsock_identity::GenericMapping>,
) -> Result<Vec<u8>, wsock_identity::IdentityError> {
    let domain = match host {
        Some(h) => Some(crate::identity::directory(h)?.domain_sid()),
        None => None,
    };
    let mut sd = wsock_identity::SecurityDescriptor::from_sddl(sddl, domain.as_ref())?;
    if let Some(m) = mapping {
        sd.map_generic(m);
    }
    sd.to_self_relative()
}
