//! The control socket of `wsock host`: TCP on loopback, one JSON request per line, one JSON
//! response per line. `wsock show` and `wsock filter` with `--control ADDR` are its clients.
//!
//! Requests (`host` is optional everywhere; when present it must name the served host):
//!
//! ```text
//! {"op":"show_filters"}
//! {"op":"show_events"}
//! {"op":"add_filter","spec":{"name":"no web","layer":"FWPM_LAYER_ALE_AUTH_CONNECT_V4","action":"block",
//!                            "conditions":[{"field":"ip_remote_port","match":"equal","value":80}]}}
//! {"op":"delete_filter","id":7}
//! {"op":"delete_filter","name":"no web"}
//! ```
//!
//! Responses: `{"host":"server","filters":[..]}`, `{"host":"server","events":[..]}`,
//! `{"host":"server","id":7}`, `{"host":"server","deleted":[7]}`, and on any failure
//! `{"error":"...","name":"FWP_E_...","hresult":"0x8032...."}`. A malformed request gets an error
//! reply (`FWP_E_INVALID_PARAMETER`) and the connection stays usable; nothing a client sends can
//! stop the listener.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use wsock::Host;
use wsock_stack::wsock_wfp::{FilterSpec, WfpError};

/// The longest request line accepted (bytes).
const MAX_LINE: u64 = 1 << 20;

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

/// Starts serving `host` on `addr` (which must be a loopback address; port 0 picks one) in a
/// background thread, and returns the address actually bound.
///
/// # Errors
/// A non-loopback address, or the bind error.
pub fn serve(host: Host, addr: SocketAddr) -> io::Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("control address {addr} is not on loopback"),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("wsock-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let host = host.clone();
                        let spawned = std::thread::Builder::new()
                            .name("wsock-control-conn".into())
                            .spawn(move || serve_connection(&host, stream));
                        if let Err(e) = spawned {
                            tracing::warn!(target: "wsock::control", "cannot serve a connection: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "wsock::control", "accept: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(local)
}

fn serve_connection(host: &Host, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
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
        let reply = if too_long {
            error_reply(
                format!("request line longer than {MAX_LINE} bytes"),
                WfpError::InvalidParameter,
            )
        } else {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(host, &line)))
                .unwrap_or_else(|_| {
                    error_reply(
                        "internal error handling the request",
                        WfpError::InvalidParameter,
                    )
                })
        };
        let mut text = reply.to_string();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() || too_long {
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

/// Sends one request to a control socket and returns its reply.
///
/// # Errors
/// The connection failure, or the server's error reply as `message (FWP_E_... 0x...)`.
pub fn request(addr: &str, req: &Value) -> Result<Value, String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("control address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("control address {addr:?} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the control socket at {target}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut line = req.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("control socket {target}: {e}"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("control socket {target}: {e}"))?;
    if reply.trim().is_empty() {
        return Err(format!("control socket {target} closed without a reply"));
    }
    let v: Value = serde_json::from_str(&reply)
        .map_err(|e| format!("control socket {target} sent a bad reply: {e}"))?;
    if let Some(err) = v.get("error") {
        let err = err.as_str().unwrap_or("error");
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let hr = v.get("hresult").and_then(Value::as_str).unwrap_or("");
        return Err(format!("{err} ({name} {hr})"));
    }
    Ok(v)
}
