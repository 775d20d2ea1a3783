//! Identity state of each [`Network`]: the principals of its scenario, the table of token
//! handles, and who the calling thread or task is impersonating.
//!
//! `wsock-identity` models SIDs, directories, tokens, handle tables and access checks, and does
//! no I/O and knows no thread. This module gives that model its place in a running process, as
//! design §1 says only `wsock` knows threads and tasks:
//!
//! * **Principals per network.** Each domain named by a host of the network's scenario becomes
//!   one [`Directory`]: the machines (`HostSpec::machine`, by default the host name in upper
//!   case) and the users of every host of that domain. Same names on several hosts are one
//!   account. SIDs are deterministic (the domain SID comes from the domain name), so two
//!   processes running the same scenario agree on them.
//! * **Token handles per network.** Token handles are unique in the process (they come from one
//!   counter) and live in a [`HandleTable`] per network. The raw face's `CloseHandle`,
//!   `GetTokenInformation`, `AccessCheck` and `OpenThreadToken` find the table that holds a
//!   handle, so a handle routes by value from any thread, as sockets do.
//! * **Peer tokens.** [`peer_tokens`] is what the secure-socket query
//!   (`WSAQuerySocketSecurity` with a non-zero `PeerTokenAccessMask`) opens for the peer IKE
//!   authenticated; [`peer_impersonation`] is what `WSAImpersonateSocketPeer` puts on the
//!   calling thread.
//! * **Impersonation.** An [`Impersonation`] is a token together with the network it belongs to.
//!   The raw face keeps one per thread (`wsock::ext::impersonate`, `revert`); the async face
//!   keeps one per task (`wsock::net::impersonate`), never in a thread-local that would leak to
//!   the other tasks of a worker thread. [`current_impersonation`] sees the task's first, then
//!   the thread's.
//!
//! Handles that no caller closes stay open while their network's state lives: the state is
//! dropped when its last handle is closed (a later call builds it again from the scenario, with
//! the same SIDs).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use wsock_identity::{
    rights, AccessMask, AuthMethod, Directory, DirectorySpec, GenericMapping, Handle, HandleTable,
    IdentityError, Token, TokenType, UserSpec,
};
use wsock_stack::{Host, Network, Scenario};

/// The identity state of one network: its domains' directories and its token handle table.
pub(crate) struct NetIdentity {
    network_id: u64,
    /// One directory per domain, keyed by the upper-case domain name.
    directories: Vec<(String, Arc<Directory>)>,
    /// The domain of each host of the scenario (upper case), by host name.
    host_domains: HashMap<String, String>,
    pub(crate) handles: HandleTable,
}

impl fmt::Debug for NetIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetIdentity")
            .field("network", &self.network_id)
            .field(
                "domains",
                &self.directories.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .field("open_handles", &self.handles.len())
            .finish()
    }
}

impl NetIdentity {
    fn build(network_id: u64, scenario: &Scenario) -> Result<NetIdentity, IdentityError> {
        let mut specs: Vec<(String, DirectorySpec)> = Vec::new();
        let mut host_domains = HashMap::new();
        for h in &scenario.hosts {
            let domain = h.domain.to_uppercase();
            host_domains.insert(h.name.clone(), domain.clone());
            let i = match specs.iter().position(|(d, _)| *d == domain) {
                Some(i) => i,
                None => {
                    specs.push((domain.clone(), DirectorySpec::new(h.domain.clone())));
                    specs.len() - 1
                }
            };
            let spec = &mut specs[i].1;
            let machine = h.machine.clone().unwrap_or_else(|| h.name.to_uppercase());
            spec.add_machine(machine);
            for u in &h.users {
                spec.add_user(UserSpec::new(u.name.clone()))?;
            }
        }
        let mut directories = Vec::with_capacity(specs.len());
        for (d, spec) in specs {
            directories.push((d, Arc::new(spec.build()?)));
        }
        Ok(NetIdentity {
            network_id,
            directories,
            host_domains,
            handles: HandleTable::new(),
        })
    }

    /// The directory of `host`'s domain (the first domain if the host is unknown).
    fn home(&self, host: &str) -> Option<&Arc<Directory>> {
        let d = self.host_domains.get(host);
        self.directories
            .iter()
            .find(|(k, _)| Some(k) == d)
            .or_else(|| self.directories.first())
            .map(|(_, dir)| dir)
    }

    /// Looks `name` up with `find` in `host`'s domain first, then in the other domains.
    fn find<T>(
        &self,
        host: &str,
        find: impl Fn(&Directory) -> Result<T, IdentityError>,
    ) -> Result<T, IdentityError> {
        let home = self.home(host).ok_or(IdentityError::NoSuchUser {
            name: String::new(),
        })?;
        let first = find(home);
        if first.is_ok() {
            return first;
        }
        for (_, dir) in &self.directories {
            if !Arc::ptr_eq(dir, home) {
                if let Ok(v) = find(dir) {
                    return Ok(v);
                }
            }
        }
        first
    }
}

fn registry() -> MutexGuard<'static, HashMap<u64, Arc<NetIdentity>>> {
    static R: OnceLock<Mutex<HashMap<u64, Arc<NetIdentity>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn with_state<T>(
    net: &Network,
    f: impl FnOnce(&Arc<NetIdentity>) -> Result<T, IdentityError>,
) -> Result<T, IdentityError> {
    let mut reg = registry();
    let state = match reg.get(&net.id()) {
        Some(s) => s.clone(),
        None => {
            let s = Arc::new(NetIdentity::build(net.id(), net.scenario())?);
            reg.insert(net.id(), s.clone());
            s
        }
    };
    // Under the registry lock, so a concurrent close cannot drop the state while a handle is
    // being opened in it.
    f(&state)
}

/// The network state holding `handle`, if any network's table has it open.
pub(crate) fn state_of_handle(handle: u64) -> Option<Arc<NetIdentity>> {
    let reg = registry();
    reg.values()
        .find(|s| s.handles.get(Handle::from_raw(handle)).is_ok())
        .cloned()
}

/// `CloseHandle` on a token handle: closes it in the table that holds it, and drops that
/// network's state when its last handle is closed.
pub(crate) fn close_handle(handle: u64) -> Result<(), IdentityError> {
    let mut reg = registry();
    let mut closed = None;
    for (id, s) in reg.iter() {
        if s.handles.close(Handle::from_raw(handle)).is_ok() {
            closed = Some((*id, s.handles.is_empty()));
            break;
        }
    }
    match closed {
        Some((id, true)) => {
            reg.remove(&id);
            Ok(())
        }
        Some(_) => Ok(()),
        None => Err(IdentityError::InvalidHandle { handle }),
    }
}

/// Opens a handle to `token` in `state`'s table, with `access` mapped as the token mapping
/// says (`MAXIMUM_ALLOWED` becomes `TOKEN_ALL_ACCESS`).
pub(crate) fn open_in(state: &NetIdentity, token: Arc<Token>, access: AccessMask) -> u64 {
    state
        .handles
        .insert_mapped(token, access, &GenericMapping::TOKEN)
        .raw()
}

/// The directory of `host`'s domain, built from its network's scenario.
///
/// # Errors
///
/// What building the directory reports (e.g. a user and a machine of one domain with the same
/// account name).
///
/// # Examples
///
/// ```
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// let dir = wsock::identity::directory(&net.host("server").unwrap())?;
/// assert_eq!(dir.domain(), "WSOCK");
/// assert_eq!(dir.machine("CLIENT")?.name(), "CLIENT$");
/// assert_eq!(dir.user("alice")?.qualified_name(), "WSOCK\\alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn directory(host: &Host) -> Result<Arc<Directory>, IdentityError> {
    with_state(host.network(), |s| {
        s.home(host.name())
            .cloned()
            .ok_or(IdentityError::NoSuchUser {
                name: host.name().to_string(),
            })
    })
}

/// The directories of every domain of `net`'s scenario, in the order the hosts name them.
///
/// # Errors
///
/// As [`directory`].
pub fn directories(net: &Network) -> Result<Vec<Arc<Directory>>, IdentityError> {
    with_state(net, |s| {
        Ok(s.directories.iter().map(|(_, d)| d.clone()).collect())
    })
}

/// The number of token handles open in `net`'s table (for leak tests: after every handle was
/// closed with `CloseHandle`, it is 0).
pub fn open_handles(net: &Network) -> usize {
    registry().get(&net.id()).map_or(0, |s| s.handles.len())
}

/// Opens a handle to `token` in `net`'s table with `access` (generic rights and
/// `MAXIMUM_ALLOWED` mapped with the token mapping), as `OpenProcessToken` or a query would.
/// The caller closes it with `CloseHandle`.
///
/// # Errors
///
/// As [`directory`] (the network's state is built on first use).
pub fn open_token(net: &Network, token: Token, access: AccessMask) -> Result<u64, IdentityError> {
    with_state(net, |s| Ok(open_in(s, Arc::new(token), access)))
}

/// The token handles `WSAQuerySocketSecurity` returns in `SOCKET_SECURITY_QUERY_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerTokens {
    /// `PeerApplicationAccessTokenHandle`: the peer user's token (user-level authentication),
    /// or, when the peer authenticated only as a machine, a second handle to the machine
    /// token. 0 when no handle was asked for.
    pub application: u64,
    /// `PeerMachineAccessTokenHandle`: the peer computer's token. 0 when no handle was asked
    /// for.
    pub machine: u64,
}

/// The peer's tokens as values: the machine's, and the user's after user-level
/// authentication. Both are impersonation tokens of a network logon (Kerberos, as AuthIP
/// authenticates domain members by default).
fn peer_token_values(
    s: &NetIdentity,
    local: &Host,
    peer_machine: &str,
    peer_user: Option<&str>,
) -> Result<(Arc<Token>, Option<Arc<Token>>), IdentityError> {
    let machine = s.find(local.name(), |d| {
        Token::peer_machine(d, peer_machine, AuthMethod::Kerberos)
    })?;
    let user = match peer_user {
        Some(u) => Some(Arc::new(s.find(local.name(), |d| {
            Token::peer_user(d, u, AuthMethod::Kerberos)
        })?)),
        None => None,
    };
    Ok((Arc::new(machine), user))
}

/// Opens handles to the tokens of an authenticated peer, in the table of `local`'s network:
/// what the secure-socket query opens once IKE has authenticated the peer computer
/// `peer_machine` (and, after user-level authentication, the user `peer_user`). Names are
/// looked up in `local`'s domain first, then in the scenario's other domains; any form
/// [`Directory::lookup_name`] takes works (`CLIENT`, `CLIENT$`, `WSOCK\alice`, `alice@WSOCK`).
///
/// `access` is `PeerTokenAccessMask`: 0 opens nothing and returns two zero handles (as the
/// query does); otherwise both handles are opened with it (generic rights and
/// `MAXIMUM_ALLOWED` mapped). Without a user, the application handle is a second handle to
/// the machine token. The caller closes each handle with `CloseHandle`.
///
/// # Errors
///
/// [`IdentityError::NoSuchUser`] if a name is in no domain of the scenario.
///
/// # Examples
///
/// ```
/// use wsock::sys::Win32::Foundation::CloseHandle;
/// let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
/// let server = net.host("server").unwrap();
/// let t = wsock::identity::peer_tokens(&server, "CLIENT", Some("alice"), 0x8)?; // TOKEN_QUERY
/// assert!(t.application != 0 && t.machine != 0);
/// assert_eq!(wsock::identity::open_handles(&net), 2);
/// unsafe {
///     assert_eq!(CloseHandle(t.application as _), 1);
///     assert_eq!(CloseHandle(t.machine as _), 1);
/// }
/// assert_eq!(wsock::identity::open_handles(&net), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn peer_tokens(
    local: &Host,
    peer_machine: &str,
    peer_user: Option<&str>,
    access: AccessMask,
) -> Result<PeerTokens, IdentityError> {
    with_state(local.network(), |s| {
        let (machine, user) = peer_token_values(s, local, peer_machine, peer_user)?;
        if access == 0 {
            return Ok(PeerTokens::default());
        }
        let app = user.unwrap_or_else(|| machine.clone());
        Ok(PeerTokens {
            application: open_in(s, app, access),
            machine: open_in(s, machine, access),
        })
    })
}

/// The impersonation `WSAImpersonateSocketPeer` starts: the peer user's token when the
/// peer authenticated a user, otherwise the peer machine's (as Windows documents).
///
/// # Errors
///
/// As [`peer_tokens`].
pub fn peer_impersonation(
    local: &Host,
    peer_machine: &str,
    peer_user: Option<&str>,
) -> Result<Impersonation, IdentityError> {
    with_state(local.network(), |s| {
        let (machine, user) = peer_token_values(s, local, peer_machine, peer_user)?;
        Ok(Impersonation {
            token: user.unwrap_or(machine),
            state: s.clone(),
        })
    })
}

/// Who a thread or task is impersonating: a token and the network it belongs to.
///
/// Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct Impersonation {
    token: Arc<Token>,
    state: Arc<NetIdentity>,
}

impl fmt::Debug for Impersonation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Impersonation")
            .field("network", &self.state.network_id)
            .field("user", &self.token.user().sid)
            .finish()
    }
}

impl Impersonation {
    /// The impersonation of an open token handle, as `ImpersonateLoggedOnUser` takes it: the
    /// handle needs `TOKEN_QUERY` and `TOKEN_IMPERSONATE` (an impersonation token) or
    /// `TOKEN_QUERY` and `TOKEN_DUPLICATE` (a primary token, impersonated through a copy at
    /// `SecurityImpersonation`). The handle stays open; the impersonation keeps the token.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`] if no network has `handle` open;
    /// [`IdentityError::AccessDenied`] if it lacks the rights.
    pub fn from_handle(handle: u64) -> Result<Impersonation, IdentityError> {
        let state = state_of_handle(handle).ok_or(IdentityError::InvalidHandle { handle })?;
        let entry = state.handles.get(Handle::from_raw(handle))?;
        let needed = match entry.object.token_type() {
            TokenType::Impersonation => rights::TOKEN_QUERY | rights::TOKEN_IMPERSONATE,
            TokenType::Primary => rights::TOKEN_QUERY | rights::TOKEN_DUPLICATE,
        };
        if entry.granted_access & needed != needed {
            return Err(IdentityError::AccessDenied {
                needed,
                held: entry.granted_access,
            });
        }
        let token = match entry.object.token_type() {
            TokenType::Impersonation => entry.object,
            TokenType::Primary => Arc::new(entry.object.duplicate(
                TokenType::Impersonation,
                wsock_identity::ImpersonationLevel::Impersonation,
            )?),
        };
        Ok(Impersonation { token, state })
    }

    /// The token the thread or task acts with.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The token, shared.
    pub fn token_arc(&self) -> Arc<Token> {
        self.token.clone()
    }

    /// The id of the network the token belongs to ([`Network::id`]).
    pub fn network_id(&self) -> u64 {
        self.state.network_id
    }

    /// Opens a new handle to the impersonated token in its network's table (what
    /// `OpenThreadToken` returns).
    pub(crate) fn open(&self, access: AccessMask) -> u64 {
        // Under the registry lock, and re-registering the state if its last handle was closed
        // meanwhile, so the new handle is always reachable by value.
        let mut reg = registry();
        let state = reg
            .entry(self.state.network_id)
            .or_insert_with(|| self.state.clone())
            .clone();
        open_in(&state, self.token.clone(), access)
    }
}

thread_local! {
    static THREAD_IMPERSONATION: RefCell<Option<Impersonation>> = const { RefCell::new(None) };
}

tokio::task_local! {
    static TASK_IMPERSONATION: RefCell<Option<Impersonation>>;
}

/// Sets (or with `None` ends) the calling thread's impersonation.
pub(crate) fn set_thread(imp: Option<Impersonation>) -> Option<Impersonation> {
    THREAD_IMPERSONATION
        .try_with(|t| std::mem::replace(&mut *t.borrow_mut(), imp))
        .ok()
        .flatten()
}

/// The calling thread's impersonation (ignoring any task scope).
pub(crate) fn thread_impersonation() -> Option<Impersonation> {
    THREAD_IMPERSONATION
        .try_with(|t| t.borrow().clone())
        .ok()
        .flatten()
}

/// Inside a task scope of [`crate::net::impersonate`]: `Some(current)`; outside: `None`.
fn task_impersonation() -> Option<Option<Impersonation>> {
    TASK_IMPERSONATION.try_with(|t| t.borrow().clone()).ok()
}

/// Ends the impersonation of the current task scope, if the caller is in one. Returns whether
/// it was.
pub(crate) fn revert_task() -> bool {
    TASK_IMPERSONATION
        .try_with(|t| *t.borrow_mut() = None)
        .is_ok()
}

/// The effective impersonation of the caller: inside a [`crate::net::impersonate`] scope, the
/// task's (even if it reverted); otherwise the thread's.
pub fn current_impersonation() -> Option<Impersonation> {
    match task_impersonation() {
        Some(task) => task,
        None => thread_impersonation(),
    }
}

/// Runs `fut` as a task scope impersonating `imp` (see [`crate::net::impersonate`]).
pub(crate) async fn scope<F: std::future::Future>(imp: Option<Impersonation>, fut: F) -> F::Output {
    TASK_IMPERSONATION.scope(RefCell::new(imp), fut).await
}
