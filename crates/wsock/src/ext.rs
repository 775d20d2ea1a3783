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
