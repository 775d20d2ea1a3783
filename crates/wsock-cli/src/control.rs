//! The control socket of `wsock host`: one JSON request per line, one JSON response per line.
//! `wsock show` and `wsock filter` with `--control [PATH]` or `--control-tcp ADDR` are its
//! clients.
//!
//! # Who may change the policy
//!
//! On Windows only administrators may change WFP policy. Here the host's owner plays that part:
//!
//! - By default the host serves a **Unix domain socket** (see [`default_socket_path`]) with mode
//!   0600 in a 0700 directory, and checks each peer's uid on accept (`SO_PEERCRED` on Linux,
//!   `getpeereid` on macOS, through tokio's `UnixStream::peer_cred`): a uid other than the
//!   host's own effective uid gets one error reply (`E_ACCESSDENIED`, `0x80070005`), a log line,
//!   and the connection is closed. Root is no exception and no shortcut: a host run as root
//!   serves uid 0 only.
//! - TCP on loopback (`--control-tcp 127.0.0.1:PORT`, or the host's `control` in the scenario)
//!   is served only behind a token: 32 random bytes, hex, written to an owner-only (0600) file
//!   whose path the host prints. Every request on TCP carries it as `"token":"<hex>"`; a request
//!   with a missing or wrong token gets the same `E_ACCESSDENIED` reply and the connection is
//!   closed.
//!
//! The socket and token files are removed when the host exits (stopped with Ctrl-C / SIGTERM,
//! or at the end of `--for-seconds`); a stale socket left by a killed host is replaced at start,
//! while a live one is left alone (the second host refuses to start).
//!
//! # Requests
//!
//! (`host` is optional everywhere; when present it must name the served host):
//!
//! ```text
//! {"op":"show_filters"}
//! {"op":"show_events"}
//! {"op":"show_sas"}                                 ("sas" is accepted too)
//! {"op":"add_filter","spec":{"name":"no web","layer":"FWPM_LAYER_ALE_AUTH_CONNECT_V4","action":"block",
//!                            "conditions":[{"field":"ip_remote_port","match":"equal","value":80}]}}
//! {"op":"delete_filter","id":7}
//! {"op":"delete_filter","name":"no web"}
//! {"op":"show_filters","token":"9f0c..."}          (on TCP)
//! ```
//!
//! Responses: `{"host":"server","filters":[..]}`, `{"host":"server","events":[..]}`,
//! `{"host":"server","sas":{"ike":[..],"child":[..]}}` (the host's SA database),
//! `{"host":"server","id":7}`, `{"host":"server","deleted":[7]}`, and on any failure
//! `{"error":"...","name":"FWP_E_...","hresult":"0x8032...."}`. A malformed request gets an error
//! reply (`FWP_E_INVALID_PARAMETER`) and the connection stays usable; nothing a client sends can
//! stop the listener. (The protocol keeps 64-bit numbers as JSON numbers; it is `wsock show
//! --json` that prints them as strings.)

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use wsock::Host;
use wsock_stack::wsock_wfp::{FilterSpec, WfpError};

/// The longest request line accepted (bytes).
const MAX_LINE: u64 = 1 << 20;

/// `E_ACCESSDENIED`, what Windows answers a caller who may not open the engine for changes.
const E_ACCESSDENIED: u32 = 0x8007_0005;

/// The effective uid of this process (the "administrator" of the hosts it runs).
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `name` made safe as a file-name component (anything but `[A-Za-z0-9._-]` becomes `_`).
fn file_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// The directory of default control sockets and token files: `$XDG_RUNTIME_DIR/wsock`, else
/// `<temp dir>/wsock-<uid>`. Nothing is created.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("wsock"),
        None => std::env::temp_dir().join(format!("wsock-{}", own_uid())),
    }
}

/// Creates [`runtime_dir`] with mode 0700 if needed, and refuses one that is a symlink, not
/// ours or open to others (another user could have planted it in a shared temp directory).
///
/// # Errors
/// The creation error, or why an existing directory is refused.
pub fn ensure_runtime_dir() -> Result<PathBuf, String> {
    let dir = runtime_dir();
    if let Some(parent) = dir.parent() {
        if !parent.is_dir() {
            return Err(format!(
                "{}: no such directory for the control socket (set XDG_RUNTIME_DIR or pass --control PATH)",
                parent.display()
            ));
        }
    }
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    verify_runtime_dir(&dir)?;
    Ok(dir)
}

/// Refuses a runtime directory that is a symlink, not ours, or open to others: a client looking
/// for a default socket must not talk to one another user planted.
///
/// # Errors
/// Why `dir` is refused (or cannot be read).
pub fn verify_runtime_dir(dir: &Path) -> Result<(), String> {
    let md = fs::symlink_metadata(dir).map_err(|e| {
        format!(
            "{}: {e} (no `wsock host` of yours has served a default control socket here)",
            dir.display()
        )
    })?;
    let uid = own_uid();
    if !md.file_type().is_dir() {
        return Err(format!(
            "{}: not a directory; refusing to use it",
            dir.display()
        ));
    }
    if md.uid() != uid {
        return Err(format!(
            "{}: owned by uid {}, not by uid {uid}; refusing to use it",
            dir.display(),
            md.uid()
        ));
    }
    if md.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: mode {:o} lets others in (want 700); refusing to use it",
            dir.display(),
            md.mode() & 0o777
        ));
    }
    Ok(())
}

/// The default control socket of host `host` of scenario `scenario`:
/// `<runtime dir>/<scenario>-<host>.sock` (see [`runtime_dir`]). `wsock show` and
/// `wsock filter` with `--control` (no value) and `--host NAME` look there.
pub fn default_socket_path(scenario: &str, host: &str) -> PathBuf {
    runtime_dir().join(format!("{}-{}.sock", file_part(scenario), file_part(host)))
}

/// The default token file of a host's TCP control socket: `<runtime dir>/<scenario>-<host>.token`.
pub fn default_token_path(scenario: &str, host: &str) -> PathBuf {
    runtime_dir().join(format!("{}-{}.token", file_part(scenario), file_part(host)))
}

/// Files a serving host owns; removed when dropped (the host's exit).
#[derive(Default)]
pub struct Cleanup {
    files: Vec<PathBuf>,
}

impl Cleanup {
    /// Removes `path` when this is dropped.
    pub fn push(&mut self, path: PathBuf) {
        self.files.push(path);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in &self.files {
            match fs::remove_file(f) {
                Ok(()) => tracing::debug!(target: "wsock::control", "removed {}", f.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(target: "wsock::control", "cannot remove {}: {e}", f.display())
                }
            }
        }
    }
}

/// Who may talk to a listener.
#[derive(Clone)]
enum Gate {
    /// Unix socket: the peer's uid was checked on accept.
    PeerChecked,
    /// TCP: requests carrying this token.
    Token(Arc<str>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    ShowFilters {
        #[serde(default)]
        host: Option<String>,
    },
    ShowEvents {
        #[serde(default)]
        host: Option<String>,
    },
    #[serde(alias = "sas")]
    ShowSas {
        #[serde(default)]
        host: Option<String>,
    },
    AddFilter {
        #[serde(default)]
        host: Option<String>,
        spec: Box<FilterSpec>,
    },
    DeleteFilter {
        #[serde(default)]
        host: Option<String>,
        #[serde(default)]
        id: Option<u64>,
        #[serde(default)]
        name: Option<String>,
    },
}

/// An error reply.
pub fn error_reply(message: impl std::fmt::Display, e: WfpError) -> Value {
    json!({
        "error": message.to_string(),
        "name": e.name(),
        "hresult": format!("0x{:08X}", e.hresult()),
    })
}

/// The reply refusing a peer that may not manage the host's policy.
fn access_denied(message: impl std::fmt::Display) -> Value {
    json!({
        "error": message.to_string(),
        "name": "E_ACCESSDENIED",
        "hresult": format!("0x{E_ACCESSDENIED:08X}"),
    })
}

/// Serves `host` on a Unix domain socket at `path` in a background thread: the socket file is
/// mode 0600 from the moment it is visible at `path` (bound in a private 0700 directory next to
/// it, chmod-ed, then renamed into place), and only peers with this process's effective uid are
/// served. A stale socket at `path` (nobody listening) is replaced; a live one, or anything that
/// is not a socket, is left alone and is an error. The socket file is added to `cleanup`.
///
/// # Errors
/// `path` is taken (live socket or not a socket), has no parent directory, or the bind error.
pub fn serve_unix(host: Host, path: &Path, cleanup: &mut Cleanup) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the control socket path has no file name",
        )
    })?;
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another wsock host is serving this socket (stop it, or pass another --control PATH)",
                ))
            }
            Err(_) => {
                tracing::info!(target: "wsock::control", "removing stale control socket {}", path.display());
                fs::remove_file(path)?;
            }
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; refusing to replace it",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let private = tempfile::Builder::new()
        .prefix(".wsock-ctl-")
        .tempdir_in(&parent)?;
    // A short name: the staging path must fit in sun_path whenever `path` does.
    let staging = private.path().join("s");
    let listener = UnixListener::bind(&staging)?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o600))?;
    fs::rename(&staging, path)?;
    drop(private);
    cleanup.push(path.to_path_buf());
    let owner = own_uid();
    std::thread::Builder::new()
        .name("wsock-control".into())
        .spawn(move || {
            // A small reactor of our own, only to read peer credentials through tokio's safe API.
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(target: "wsock::control", "control socket: no runtime: {e}");
                    return;
                }
            };
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let (stream, uid) = match peer_uid(&rt, stream) {
                            Ok(x) => x,
                            Err(e) => {
                                tracing::warn!(target: "wsock::control", "control connection without credentials refused: {e}");
                                continue;
                            }
                        };
                        if uid != owner {
                            tracing::warn!(target: "wsock::control",
                                "refused control connection from uid {uid}: only uid {owner} (the host's owner) may manage its policy");
                            refuse(stream, uid, owner);
                            continue;
                        }
                        spawn_connection(&host, Gate::PeerChecked, stream);
                    }
                    Err(e) => {
                        tracing::warn!(target: "wsock::control", "accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(())
}

/// Answers a peer of the wrong uid: reads (and ignores) its first request line, so that the
/// client is not cut off mid-write, replies `E_ACCESSDENIED` and closes. In a thread of its own
/// so that a slow peer does not hold up the accept loop.
fn refuse(stream: UnixStream, uid: u32, owner: u32) {
    let r = std::thread::Builder::new()
        .name("wsock-control-refuse".into())
        .spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            if let Ok(read_half) = stream.try_clone() {
                let mut ignored = Vec::new();
                let _ = BufReader::new(read_half.take(MAX_LINE)).read_until(b'\n', &mut ignored);
            }
            let mut text = access_denied(format!(
                "uid {uid} may not manage this host's WFP policy: only its owner (uid {owner}) may"
            ))
            .to_string();
            text.push('\n');
            let mut s = stream;
            let _ = s.write_all(text.as_bytes());
            let _ = s.shutdown(std::net::Shutdown::Both);
        });
    if let Err(e) = r {
        tracing::warn!(target: "wsock::control", "cannot answer a refused connection: {e}");
    }
}

/// The peer's effective uid, read with tokio's `UnixStream::peer_cred` (SO_PEERCRED /
/// getpeereid); the stream comes back in blocking mode.
fn peer_uid(rt: &tokio::runtime::Runtime, stream: UnixStream) -> io::Result<(UnixStream, u32)> {
    let _enter = rt.enter();
    stream.set_nonblocking(true)?;
    let t = tokio::net::UnixStream::from_std(stream)?;
    let cred = t.peer_cred();
    let stream = t.into_std()?;
    stream.set_nonblocking(false)?;
    Ok((stream, cred?.uid()))
}

/// A new random token: 32 bytes from the OS, as 64 hex digits.
fn new_token() -> io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Writes `token` to `path`, created with mode 0600 (never wider): a stale regular file of ours
/// is replaced, anything else is an error.
fn write_token_file(path: &Path, token: &str) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_file() && md.uid() == own_uid() => fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{}: exists and is not our token file; refusing to replace it",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

/// Serves `host` on TCP `addr` (which must be a loopback address; port 0 picks one) in a
/// background thread, behind a fresh random token written to `token_file` (mode 0600, added to
/// `cleanup`). Returns the address actually bound.
///
/// # Errors
/// A non-loopback address, the token file error, or the bind error.
pub fn serve_tcp(
    host: Host,
    addr: SocketAddr,
    token_file: &Path,
    cleanup: &mut Cleanup,
) -> io::Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("control address {addr} is not on loopback"),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let token = new_token()?;
    write_token_file(token_file, &token)?;
    cleanup.push(token_file.to_path_buf());
    let gate = Gate::Token(token.into());
    std::thread::Builder::new()
        .name("wsock-control-tcp".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => spawn_connection(&host, gate.clone(), stream),
                    Err(e) => {
                        tracing::warn!(target: "wsock::control", "accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(local)
}

/// A stream the control protocol runs on.
trait Conn: Read + Write + Send + Sized + 'static {
    fn duplicate(&self) -> io::Result<Self>;
    fn peer(&self) -> String;
}

impl Conn for TcpStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn peer(&self) -> String {
        self.peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into())
    }
}

impl Conn for UnixStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn peer(&self) -> String {
        "unix socket".into()
    }
}

fn spawn_connection<S: Conn>(host: &Host, gate: Gate, stream: S) {
    let host = host.clone();
    let spawned = std::thread::Builder::new()
        .name("wsock-control-conn".into())
        .spawn(move || serve_connection(&host, &gate, stream));
    if let Err(e) = spawned {
        tracing::warn!(target: "wsock::control", "cannot serve a connection: {e}");
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks and strips the token of a TCP request. `Err` is the refusal reply.
fn check_token(line: &[u8], token: &str) -> Result<Vec<u8>, Value> {
    let mut v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(_) => {
            return Err(access_denied(
                "a request on TCP must be a JSON object carrying \"token\"",
            ))
        }
    };
    let given = v
        .as_object_mut()
        .and_then(|m| m.remove("token"))
        .and_then(|t| t.as_str().map(str::to_owned));
    match given {
        Some(t) if same_token(t.as_bytes(), token.as_bytes()) => {
            Ok(serde_json::to_vec(&v).unwrap_or_default())
        }
        Some(_) => Err(access_denied("wrong control token")),
        None => Err(access_denied(
            "missing control token: a TCP control request carries \"token\" (the host printed its token file; clients pass --token-file)",
        )),
    }
}

fn serve_connection<S: Conn>(host: &Host, gate: &Gate, stream: S) {
    let Ok(read_half) = stream.duplicate() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let mut line = Vec::new();
        match reader
            .by_ref()
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = line.len() as u64 > MAX_LINE && line.last() != Some(&b'\n');
        let mut refused = false;
        let reply = if too_long {
            error_reply(
                format!("request line longer than {MAX_LINE} bytes"),
                WfpError::InvalidParameter,
            )
        } else {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let checked = match gate {
                Gate::PeerChecked => Ok(line),
                Gate::Token(t) => check_token(&line, t),
            };
            match checked {
                Ok(line) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(host, &line)))
                        .unwrap_or_else(|_| {
                            error_reply(
                                "internal error handling the request",
                                WfpError::InvalidParameter,
                            )
                        })
                }
                Err(reply) => {
                    tracing::warn!(target: "wsock::control", "refused a TCP control request from {}: {}", out.peer(), reply["error"].as_str().unwrap_or(""));
                    refused = true;
                    reply
                }
            }
        };
        let mut text = reply.to_string();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() || too_long || refused {
            return;
        }
    }
}

/// Answers one request line.
fn handle(host: &Host, line: &[u8]) -> Value {
    let req: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            return error_reply(
                format!("malformed request: {e}"),
                WfpError::InvalidParameter,
            )
        }
    };
    let named = match &req {
        Request::ShowFilters { host }
        | Request::ShowEvents { host }
        | Request::ShowSas { host }
        | Request::AddFilter { host, .. }
        | Request::DeleteFilter { host, .. } => host.as_deref(),
    };
    if let Some(n) = named {
        if n != host.name() {
            return error_reply(
                format!(
                    "this control socket serves host {:?}, not {n:?}",
                    host.name()
                ),
                WfpError::InvalidParameter,
            );
        }
    }
    let name = host.name();
    match req {
        Request::ShowFilters { .. } => json!({ "host": name, "filters": host.filters() }),
        Request::ShowEvents { .. } => json!({ "host": name, "events": host.net_events() }),
        Request::ShowSas { .. } => json!({ "host": name, "sas": host.security_associations() }),
        Request::AddFilter { spec, .. } => match host.add_filter(&spec) {
            Ok(id) => json!({ "host": name, "id": id }),
            Err(e) => error_reply(format!("{}: {}", e.path, e.message), e.error),
        },
        Request::DeleteFilter {
            id, name: fname, ..
        } => {
            let ids: Vec<u64> = match (id, fname) {
                (Some(id), None) => vec![id],
                (None, Some(n)) => {
                    let ids: Vec<u64> = host
                        .filters()
                        .into_iter()
                        .filter(|r| r.name == n)
                        .map(|r| r.id)
                        .collect();
                    if ids.is_empty() {
                        return error_reply(
                            format!("no filter named {n:?}"),
                            WfpError::FilterNotFound,
                        );
                    }
                    ids
                }
                _ => {
                    return error_reply(
                        "delete_filter takes exactly one of \"id\" and \"name\"",
                        WfpError::InvalidParameter,
                    )
                }
            };
            for id in &ids {
                if let Err(e) = host.delete_filter(*id) {
                    let text = e.to_string();
                    let text = text
                        .strip_prefix(&format!("{}: ", e.name()))
                        .unwrap_or(&text)
                        .to_string();
                    return error_reply(format!("filter {id}: {text}"), e);
                }
            }
            json!({ "host": name, "deleted": ids })
        }
    }
}

/// Where a client finds a running host's control socket.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// TCP, with the token read from the host's token file.
    Tcp {
        /// `127.0.0.1:PORT`.
        addr: String,
        /// The token.
        token: String,
    },
}

impl Endpoint {
    /// A TCP endpoint whose token is read from `token_file`.
    ///
    /// # Errors
    /// The token file cannot be read or is empty.
    pub fn tcp(addr: &str, token_file: &Path) -> Result<Endpoint, String> {
        let token = fs::read_to_string(token_file)
            .map_err(|e| format!("token file {}: {e}", token_file.display()))?;
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(format!("token file {} is empty", token_file.display()));
        }
        Ok(Endpoint::Tcp {
            addr: addr.to_string(),
            token,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp { addr, .. } => write!(f, "tcp {addr}"),
        }
    }
}

fn exchange<S: Read + Write>(mut stream: S, req: &Value, at: &Endpoint) -> Result<Value, String> {
    let mut line = req.to_string();
    line.push('\n');
    // A server that refuses us may answer and close before reading: keep its reply.
    let written = stream.write_all(line.as_bytes());
    let mut reply = String::new();
    let read = BufReader::new(stream).read_line(&mut reply);
    if reply.trim().is_empty() {
        return Err(match (written, read) {
            (Err(e), _) | (_, Err(e)) => format!("control socket {at}: {e}"),
            _ => format!("control socket {at} closed without a reply"),
        });
    }
    let v: Value = serde_json::from_str(&reply)
        .map_err(|e| format!("control socket {at} sent a bad reply: {e}"))?;
    if let Some(err) = v.get("error") {
        let err = err.as_str().unwrap_or("error");
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let hr = v.get("hresult").and_then(Value::as_str).unwrap_or("");
        return Err(format!("{err} ({name} {hr})"));
    }
    Ok(v)
}

/// Sends one request to a control socket and returns its reply.
///
/// # Errors
/// The connection failure, or the server's error reply as `message (FWP_E_... 0x...)`.
pub fn request(at: &Endpoint, req: &Value) -> Result<Value, String> {
    match at {
        Endpoint::Unix(path) => {
            let stream = UnixStream::connect(path).map_err(|e| {
                format!(
                    "cannot reach the control socket at {}: {e} (is `wsock host` running? it prints its socket path)",
                    path.display()
                )
            })?;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            exchange(stream, req, at)
        }
        Endpoint::Tcp { addr, token } => {
            let target = addr
                .to_socket_addrs()
                .map_err(|e| format!("control address {addr:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("control address {addr:?} resolves to nothing"))?;
            let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                .map_err(|e| format!("cannot reach the control socket at {target}: {e}"))?;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let mut req = req.clone();
            if let Some(m) = req.as_object_mut() {
                m.insert("token".into(), json!(token));
            }
            exchange(stream, &req, at)
        }
    }
}
