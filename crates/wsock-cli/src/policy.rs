//! `wsock show filters|events` and `wsock filter add|delete`: on a scenario file (static
//! filters, edited in place with the rest of the file preserved) or, through the control socket,
//! on a running `wsock host`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table};
use wsock::Scenario;
use wsock_stack::policy::{build_ale, filter_rows};
use wsock_stack::scenario::HostSpec;
use wsock_stack::wsock_wfp::{
    ConditionSpec, Engine, Field, FieldKind, FilterSpec, ValueSpec, WeightSpec, WfpError,
};

use crate::control;

/// Where `show` reads from.
pub struct Source<'a> {
    /// Scenario file (`None` = the embedded default), used without `control`.
    pub scenario: Option<&'a Path>,
    /// Only this host.
    pub host: Option<&'a str>,
    /// A running host's control socket.
    pub control: Option<&'a control::Endpoint>,
}

fn load(path: Option<&Path>) -> Result<Scenario, String> {
    match path {
        Some(p) => Scenario::from_file(p).map_err(|e| e.to_string()),
        None => Ok(Scenario::default_scenario()),
    }
}

fn hosts<'s>(sc: &'s Scenario, only: Option<&str>) -> Result<Vec<&'s HostSpec>, String> {
    match only {
        None => Ok(sc.hosts.iter().collect()),
        Some(n) => sc
            .hosts
            .iter()
            .find(|h| h.name == n)
            .map(|h| vec![h])
            .ok_or_else(|| format!("no host {n:?} in the scenario")),
    }
}

/// The filters as `[{"host": .., "filters": [FilterRow..]}]`.
fn filters_json(src: &Source) -> Result<Value, String> {
    if let Some(addr) = src.control {
        let mut req = json!({ "op": "show_filters" });
        if let Some(h) = src.host {
            req["host"] = json!(h);
        }
        let v = control::request(addr, &req)?;
        let mut out = json!([{ "host": v["host"], "filters": v["filters"] }]);
        readable_conditions(&mut out);
        return Ok(out);
    }
    let sc = load(src.scenario)?;
    let mut out = Vec::new();
    for h in hosts(&sc, src.host)? {
        let (ale, admin) = build_ale(h).map_err(|(t, i, e)| {
            format!("host {}: [[{}]] #{}: {e}", h.name, t.toml_name(), i + 1)
        })?;
        out.push(json!({ "host": h.name, "filters": filter_rows(ale.engine(), admin) }));
    }
    let mut out = Value::Array(out);
    readable_conditions(&mut out);
    Ok(out)
}

/// Rewrites every filter's condition texts with [`readable_blobs`].
fn readable_conditions(hosts: &mut Value) {
    for h in hosts.as_array_mut().into_iter().flatten() {
        for f in h["filters"].as_array_mut().into_iter().flatten() {
            for c in f["conditions"].as_array_mut().into_iter().flatten() {
                if let Value::String(t) = c {
                    *t = readable_blobs(t);
                }
            }
        }
    }
}

/// A condition text with each `ByteBlob([..])` that holds NUL-terminated UTF-16LE text (an
/// `ALE_APP_ID` path, a `utf16_blob`) shown as that text in quotes; other blobs are kept as
/// bytes.
fn readable_blobs(text: &str) -> String {
    const OPEN: &str = "ByteBlob([";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let Some(j) = after.find("])") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let bytes: Option<Vec<u8>> = after[..j]
            .split(',')
            .map(|b| b.trim().parse::<u8>().ok())
            .collect();
        match bytes.as_deref().and_then(utf16_text) {
            Some(t) => {
                out.push('"');
                out.push_str(&t);
                out.push('"');
            }
            None => out.push_str(&rest[i..i + OPEN.len() + j + 2]),
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// The text of a NUL-terminated UTF-16LE blob, if it is one (and holds no control characters).
fn utf16_text(b: &[u8]) -> Option<String> {
    if b.len() < 2 || b.len() % 2 != 0 {
        return None;
    }
    let mut units: Vec<u16> = b
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    String::from_utf16(&units)
        .ok()
        .filter(|t| !t.chars().any(char::is_control))
}

/// Keys whose values are 64-bit integers that can exceed 2^53 (filter ids and weights, event
/// sequence numbers and filter ids, SA ids): `--json` prints them as decimal strings, which JavaScript
/// and other double-based JSON readers cannot round.
const WIDE: [&str; 10] = [
    "id",
    "weight",
    "seq",
    "filter_id",
    "vetoed_filter_id",
    "vetoing_filter_id",
    "mm_filter_id",
    "qm_filter_id",
    "mm_sa_id",
    "qm_sa_id",
];

/// `v` with every [`WIDE`] number turned into its decimal string.
fn wide_as_strings(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if x.is_number() && WIDE.contains(&k.as_str()) {
                    *x = Value::String(x.to_string());
                } else {
                    wide_as_strings(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(wide_as_strings),
        _ => {}
    }
}

/// Prints `v` as pretty JSON, 64-bit ids and weights as strings.
pub(crate) fn print_json(mut v: Value) {
    wide_as_strings(&mut v);
    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

/// The conditions of a filter as WFP combines them: conditions on the same field OR'd (in
/// parentheses when there are other fields), groups of different fields AND'd.
fn conditions_text(conds: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in conds {
        let field = c.split_whitespace().next().unwrap_or("");
        match groups.iter_mut().find(|(f, _)| *f == field) {
            Some((_, g)) => g.push(c),
            None => groups.push((field, vec![c])),
        }
    }
    let single = groups.len() == 1;
    groups
        .iter()
        .map(|(_, g)| match g.as_slice() {
            [one] => one.to_string(),
            many if single => many.join(" OR "),
            many => format!("({})", many.join(" OR ")),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

const NO_EVENTS_NOTE: &str =
    "a scenario file has no net events; ask a running `wsock host` with --control";

/// The events as `[{"host": .., "events": [NetEvent..]}]` (plus a `note` from a file).
fn events_json(src: &Source) -> Result<Value, String> {
    if let Some(addr) = src.control {
        let mut req = json!({ "op": "show_events" });
        if let Some(h) = src.host {
            req["host"] = json!(h);
        }
        let v = control::request(addr, &req)?;
        let mut events = v["events"].clone();
        name_error_codes(&mut events);
        return Ok(json!([{ "host": v["host"], "events": events }]));
    }
    let sc = load(src.scenario)?;
    Ok(Value::Array(
        hosts(&sc, src.host)?
            .into_iter()
            .map(|h| json!({ "host": h.name, "events": [], "note": NO_EVENTS_NOTE }))
            .collect(),
    ))
}

/// Adds `error_name` (e.g. `"ERROR_IPSEC_IKE_AUTH_FAIL"`) next to the Win32 code of every IKE
/// failure and IPsec drop event, for `--json` readers.
fn name_error_codes(events: &mut Value) {
    for e in events.as_array_mut().into_iter().flatten() {
        let Some(kind) = e.get_mut("kind").and_then(Value::as_object_mut) else {
            continue;
        };
        for (k, body) in kind.iter_mut() {
            let key = match k.as_str() {
                "IkeMmFailure" | "IkeQmFailure" => "failure_error_code",
                "IpsecKernelDrop" => "failure_status",
                _ => continue,
            };
            let Some(code) = body.get(key).and_then(Value::as_u64) else {
                continue;
            };
            if let (Some(name), Some(obj)) = (winerr_name(code), body.as_object_mut()) {
                obj.insert("error_name".into(), json!(name));
            }
        }
    }
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(width.len()) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let text: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        outln!("  {}", text.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(width.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

/// `wsock show filters`.
pub fn show_filters(src: &Source, as_json: bool) -> Result<(), String> {
    let v = filters_json(src)?;
    if as_json {
        print_json(v);
        return Ok(());
    }
    for h in v.as_array().into_iter().flatten() {
        let filters = h["filters"].as_array().cloned().unwrap_or_default();
        outln!("host {}: {} filter(s)", s(&h["host"]), filters.len());
        if filters.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = filters
            .iter()
            .map(|f| {
                let conds: Vec<String> = f["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                vec![
                    s(&f["id"]),
                    s(&f["layer"]),
                    s(&f["action"]),
                    f["weight"]
                        .as_u64()
                        .map(|w| format!("0x{w:016x}"))
                        .unwrap_or_else(|| s(&f["weight"])),
                    s(&f["name"]),
                    if conds.is_empty() {
                        "(none)".to_string()
                    } else {
                        conditions_text(&conds)
                    },
                ]
            })
            .collect();
        print_table(
            &["ID", "LAYER", "ACTION", "WEIGHT", "NAME", "CONDITIONS"],
            &rows,
        );
    }
    Ok(())
}

/// `wsock show events`.
pub fn show_events(src: &Source, as_json: bool) -> Result<(), String> {
    let v = events_json(src)?;
    if as_json {
        print_json(v);
        return Ok(());
    }
    for h in v.as_array().into_iter().flatten() {
        let events = h["events"].as_array().cloned().unwrap_or_default();
        outln!("host {}: {} net event(s)", s(&h["host"]), events.len());
        if let Some(note) = h["note"].as_str() {
            outln!("  ({note})");
        }
        if events.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = events.iter().map(event_row).collect();
        print_table(
            &[
                "SEQ", "TIME", "TYPE", "LAYER", "FILTER", "PROTO", "LOCAL", "REMOTE", "APP",
                "REASON",
            ],
            &rows,
        );
    }
    Ok(())
}

fn event_row(e: &Value) -> Vec<String> {
    let t = &e["timestamp"];
    let time = match (t["secs"].as_u64(), t["nanos"].as_u64()) {
        (Some(sec), Some(ns)) => format!("{sec}.{:03}", ns / 1_000_000),
        _ => s(t),
    };
    let (kind, body) = match &e["kind"] {
        Value::Object(m) if m.len() == 1 => m
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default(),
        Value::String(k) => (k.clone(), Value::Null),
        other => (s(other), Value::Null),
    };
    let filter = match body
        .get("filter_id")
        .or_else(|| body.get("vetoing_filter_id"))
    {
        Some(id) => {
            let name = body.get("filter_name").map(s).unwrap_or_default();
            if name.is_empty() {
                s(id)
            } else {
                format!("{} \"{name}\"", s(id))
            }
        }
        None => String::new(),
    };
    let (filter, reason) = match kind.as_str() {
        "IkeMmFailure" | "IkeQmFailure" => {
            let id = body
                .get("mm_filter_id")
                .or_else(|| body.get("qm_filter_id"))
                .and_then(Value::as_u64)
                .filter(|id| *id != 0)
                .map(|id| id.to_string())
                .unwrap_or_default();
            let code = body.get("failure_error_code").and_then(Value::as_u64);
            let point = body.get("failure_point").and_then(Value::as_u64);
            (
                id,
                format!(
                    "{}, failure point {}",
                    winerr_text(code),
                    failure_point_text(point)
                ),
            )
        }
        "IpsecKernelDrop" => {
            let code = body.get("failure_status").and_then(Value::as_u64);
            let spi = match body.get("spi").and_then(Value::as_u64) {
                Some(0) | None => String::new(),
                Some(spi) => format!(", SPI {spi:#010x}"),
            };
            (filter, format!("{}{spi}", winerr_text(code)))
        }
        _ => (filter, body.get("reason").map(s).unwrap_or_default()),
    };
    let proto = match e["header"]["protocol"].as_u64() {
        Some(6) => "tcp".to_string(),
        Some(17) => "udp".to_string(),
        Some(p) => p.to_string(),
        None => String::new(),
    };
    vec![
        s(&e["seq"]),
        time,
        kind,
        body.get("layer").map(s).unwrap_or_default(),
        filter,
        proto,
        s(&e["header"]["local"]),
        s(&e["header"]["remote"]),
        s(&e["header"]["app_id"]),
        reason,
    ]
}

/// The Windows name of an `ERROR_IPSEC_*` code the stack records, with the number:
/// `ERROR_IPSEC_IKE_AUTH_FAIL (13801)`.
pub(crate) fn winerr_text(code: Option<u64>) -> String {
    match code {
        None => "(no error code)".into(),
        Some(c) => match winerr_name(c) {
            Some(name) => format!("{name} ({c})"),
            None => format!("error {c}"),
        },
    }
}

/// The Windows name of an `ERROR_IPSEC_*` code the stack records.
pub(crate) fn winerr_name(code: u64) -> Option<&'static str> {
    Some(match code {
        13801 => "ERROR_IPSEC_IKE_AUTH_FAIL",
        13804 => "ERROR_IPSEC_IKE_GENERAL_PROCESSING_ERROR",
        13805 => "ERROR_IPSEC_IKE_TIMED_OUT",
        13807 => "ERROR_IPSEC_IKE_SA_DELETED",
        13808 => "ERROR_IPSEC_IKE_SA_REAPED",
        13816 => "ERROR_IPSEC_IKE_ERROR",
        13822 => "ERROR_IPSEC_IKE_DH_FAIL",
        13824 => "ERROR_IPSEC_IKE_INVALID_HEADER",
        13825 => "ERROR_IPSEC_IKE_NO_POLICY",
        13830 => "ERROR_IPSEC_IKE_PROCESS_ERR_SA",
        13831 => "ERROR_IPSEC_IKE_PROCESS_ERR_PROP",
        13832 => "ERROR_IPSEC_IKE_PROCESS_ERR_TRANS",
        13833 => "ERROR_IPSEC_IKE_PROCESS_ERR_KE",
        13834 => "ERROR_IPSEC_IKE_PROCESS_ERR_ID",
        13835 => "ERROR_IPSEC_IKE_PROCESS_ERR_CERT",
        13836 => "ERROR_IPSEC_IKE_PROCESS_ERR_CERT_REQ",
        13838 => "ERROR_IPSEC_IKE_PROCESS_ERR_SIG",
        13839 => "ERROR_IPSEC_IKE_PROCESS_ERR_NONCE",
        13840 => "ERROR_IPSEC_IKE_PROCESS_ERR_NOTIFY",
        13841 => "ERROR_IPSEC_IKE_PROCESS_ERR_DELETE",
        13842 => "ERROR_IPSEC_IKE_PROCESS_ERR_VENDOR",
        13843 => "ERROR_IPSEC_IKE_INVALID_PAYLOAD",
        13865 => "ERROR_IPSEC_IKE_INVALID_GROUP",
        13866 => "ERROR_IPSEC_IKE_ENCRYPT",
        13867 => "ERROR_IPSEC_IKE_DECRYPT",
        13868 => "ERROR_IPSEC_IKE_POLICY_MATCH",
        13871 => "ERROR_IPSEC_IKE_INVALID_HASH_ALG",
        13873 => "ERROR_IPSEC_IKE_INVALID_ENCRYPT_ALG",
        13874 => "ERROR_IPSEC_IKE_INVALID_AUTH_ALG",
        13880 => "ERROR_IPSEC_IKE_INVALID_MAJOR_VERSION",
        13885 => "ERROR_IPSEC_IKE_MM_EXPIRED",
        13886 => "ERROR_IPSEC_IKE_PEER_MM_ASSUMED_INVALID",
        13888 => "ERROR_IPSEC_IKE_UNEXPECTED_MESSAGE_ID",
        13890 => "ERROR_IPSEC_IKE_DOS_COOKIE_SENT",
        13910 => "ERROR_IPSEC_BAD_SPI",
        13911 => "ERROR_IPSEC_SA_LIFETIME_EXPIRED",
        13912 => "ERROR_IPSEC_WRONG_SA",
        13913 => "ERROR_IPSEC_REPLAY_CHECK_FAILED",
        13914 => "ERROR_IPSEC_INVALID_PACKET",
        13915 => "ERROR_IPSEC_INTEGRITY_CHECK_FAILED",
        13916 => "ERROR_IPSEC_CLEAR_TEXT_DROP",
        _ => return None,
    })
}

/// `IPSEC_FAILURE_POINT`: where a negotiation failed.
fn failure_point_text(point: Option<u64>) -> String {
    match point {
        Some(0) => "none".into(),
        Some(1) => "local (IPSEC_FAILURE_ME)".into(),
        Some(2) => "peer (IPSEC_FAILURE_PEER)".into(),
        Some(p) => p.to_string(),
        None => "unknown".into(),
    }
}

/// `--condition FIELD:MATCH:VALUE`: the value is a number, `LOW..HIGH` (a range) or a string
/// (addresses, prefixes, app paths); IPv6 colons are fine because only the first two split. On
/// an address field a bare number is refused (it would silently mean `0.0.0.N`).
pub fn parse_condition(text: &str) -> Result<ConditionSpec, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(field), Some(m), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "condition {text:?} is not FIELD:MATCH:VALUE (e.g. ip_remote_port:equal:80)"
        ));
    };
    if field.trim().is_empty() || m.trim().is_empty() {
        return Err(format!(
            "condition {text:?} has an empty field or match type"
        ));
    }
    let field = field.trim();
    let value = parse_value(value);
    let is_address = Field::from_name(field).is_some_and(|f| f.kind() == FieldKind::Address);
    if is_address {
        let bare = match &value {
            ValueSpec::Int(n) => Some(*n),
            ValueSpec::Range { low, high } => match (&**low, &**high) {
                (ValueSpec::Int(n), _) | (_, ValueSpec::Int(n)) => Some(*n),
                _ => None,
            },
            _ => None,
        };
        if let Some(n) = bare {
            return Err(format!(
                "condition {text:?}: {field} is an address field and {n} is not an IP address; \
                 write an address or prefix such as 10.0.0.1 or 10.0.0.0/8 ({} 0x{:08X})",
                WfpError::TypeMismatch.name(),
                WfpError::TypeMismatch.hresult()
            ));
        }
    }
    Ok(ConditionSpec::new(field, m.trim(), value))
}

fn parse_value(v: &str) -> ValueSpec {
    if let Some((lo, hi)) = v.split_once("..") {
        if !lo.is_empty() && !hi.is_empty() {
            return ValueSpec::Range {
                low: Box::new(parse_scalar(lo)),
                high: Box::new(parse_scalar(hi)),
            };
        }
    }
    parse_scalar(v)
}

fn parse_scalar(v: &str) -> ValueSpec {
    match v.trim().parse::<i64>() {
        Ok(n) => ValueSpec::Int(n),
        Err(_) => ValueSpec::Str(v.to_string()),
    }
}

/// `--weight`: a number is an exact `FWP_UINT64` weight; anything else (`auto`, `range:3`)
/// goes to the engine as text.
pub fn parse_weight(w: &str) -> WeightSpec {
    match w.trim().parse::<u64>() {
        Ok(n) => WeightSpec::Exact(n),
        Err(_) => WeightSpec::Text(w.to_string()),
    }
}

/// A random version-4 GUID, as Windows generates for a filter added without a key.
///
/// # Errors
/// The OS has no randomness to give.
pub fn random_guid() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a filter key: {e}"))?;
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// `wsock filter add` through a control socket: returns the new filter's id.
pub fn add_via_control(
    addr: &control::Endpoint,
    host: &str,
    spec: &FilterSpec,
) -> Result<u64, String> {
    let spec_json = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let v = control::request(
        addr,
        &json!({ "op": "add_filter", "host": host, "spec": spec_json }),
    )?;
    v["id"]
        .as_u64()
        .ok_or_else(|| format!("control socket replied without an id: {v}"))
}

/// `wsock filter delete` through a control socket: returns the deleted ids.
pub fn delete_via_control(
    addr: &control::Endpoint,
    host: &str,
    id: Option<u64>,
    name: Option<&str>,
) -> Result<Vec<u64>, String> {
    let mut req = json!({ "op": "delete_filter", "host": host });
    if let Some(id) = id {
        req["id"] = json!(id);
    }
    if let Some(n) = name {
        req["name"] = json!(n);
    }
    let v = control::request(addr, &req)?;
    Ok(v["deleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect())
}

/// A scenario file opened for editing.
struct FileEdit {
    path: PathBuf,
    file: String,
    scenario: Scenario,
    doc: DocumentMut,
}

impl FileEdit {
    fn open(path: &Path) -> Result<FileEdit, String> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
        let scenario = Scenario::from_toml_str(&text, &file).map_err(|e| e.to_string())?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| format!("{file}: {e}"))?;
        Ok(FileEdit {
            path: path.to_path_buf(),
            file,
            scenario,
            doc,
        })
    }

    fn host_spec(&self, host: &str) -> Result<&HostSpec, String> {
        self.scenario
            .hosts
            .iter()
            .find(|h| h.name == host)
            .ok_or_else(|| format!("{}: no host {host:?}", self.file))
    }

    /// The `[[host]]` table named `host`.
    fn host_table(&mut self, host: &str) -> Result<&mut Table, String> {
        let file = self.file.clone();
        let not_aot = || format!("{file}: hosts are not written as [[host]] tables; edit by hand");
        let hosts = self
            .doc
            .get_mut("host")
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(not_aot)?;
        hosts
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(host))
            .ok_or_else(|| format!("{file}: no [[host]] named {host:?}"))
    }

    /// Checks the edited text loads, then replaces the file (write to a sibling, rename).
    fn commit(self) -> Result<(), String> {
        let text = self.doc.to_string();
        Scenario::from_toml_str(&text, &self.file)
            .map_err(|e| format!("the edit would not load, file left unchanged: {e}"))?;
        let tmp = self.path.with_extension("toml.wsock-tmp");
        std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", self.file)
        })
    }
}

/// `wsock filter add` on a scenario file: validates the filter against the host's policy
/// (nothing is written when the engine rejects it) and appends a `[[host.filter]]`.
pub fn add_to_file(path: &Path, host: &str, spec: &FilterSpec) -> Result<(), String> {
    let mut edit = FileEdit::open(path)?;
    let mut hs = edit.host_spec(host)?.clone();
    hs.filters.push(spec.clone());
    if let Err((t, i, e)) = build_ale(&hs) {
        return Err(format!(
            "{}: host {host}: [[{}]] #{}: {e}; file left unchanged",
            edit.file,
            t.toml_name(),
            i + 1
        ));
    }
    let table = spec_table(spec)?;
    let file = edit.file.clone();
    let t = edit.host_table(host)?;
    let filters = t
        .entry("filter")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| {
            format!("{file}: host {host}: `filter` is not written as [[host.filter]]; edit by hand")
        })?;
    filters.push(table);
    edit.commit()
}

/// `wsock filter delete` on a scenario file, by name (every filter of that name) or by the id
/// the filter gets when the scenario loads. Returns the names removed.
pub fn delete_from_file(
    path: &Path,
    host: &str,
    id: Option<u64>,
    name: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut edit = FileEdit::open(path)?;
    let hs = edit.host_spec(host)?.clone();
    let doomed: Vec<usize> = match (id, name) {
        (None, Some(n)) => hs
            .filters
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name == n)
            .map(|(i, _)| i)
            .collect(),
        (Some(id), None) => static_ids(&hs)?
            .iter()
            .position(|x| *x == id)
            .into_iter()
            .collect(),
        _ => return Err("give exactly one of --id and --name".into()),
    };
    if doomed.is_empty() {
        let what = name.map_or_else(|| format!("id {}", id.unwrap_or(0)), |n| format!("{n:?}"));
        return Err(format!(
            "{}: host {host} has no filter {what} ({} 0x{:08X})",
            edit.file,
            WfpError::FilterNotFound.name(),
            WfpError::FilterNotFound.hresult()
        ));
    }
    let file = edit.file.clone();
    let t = edit.host_table(host)?;
    let filters = t
        .get_mut("filter")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| {
            format!("{file}: host {host}: `filter` is not written as [[host.filter]]; edit by hand")
        })?;
    if filters.len() != hs.filters.len() {
        return Err(format!(
            "{file}: host {host}: the [[host.filter]] tables do not match the loaded filters"
        ));
    }
    for i in doomed.iter().rev() {
        filters.remove(*i);
    }
    if filters.is_empty() {
        t.remove("filter");
    }
    edit.commit()?;
    Ok(doomed.iter().map(|i| hs.filters[*i].name.clone()).collect())
}

/// The ids the host's static filters get when the scenario loads, in file order.
fn static_ids(hs: &HostSpec) -> Result<Vec<u64>, String> {
    let mut engine = Engine::new();
    let admin = engine.open_session(false);
    let bad = |e: &dyn std::fmt::Display| format!("host {}: {e}", hs.name);
    for p in &hs.providers {
        engine.add_provider_spec(admin, p).map_err(|e| bad(&e))?;
    }
    for sl in &hs.sublayers {
        engine.add_sublayer_spec(admin, sl).map_err(|e| bad(&e))?;
    }
    hs.filters
        .iter()
        .map(|f| engine.add_spec(admin, f).map_err(|e| bad(&e)))
        .collect()
}

/// The `[[host.filter]]` table of a spec, keys in a readable order, defaults left out.
fn spec_table(spec: &FilterSpec) -> Result<Table, String> {
    let v = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let Value::Object(map) = v else {
        return Err("filter spec is not a table".into());
    };
    const ORDER: [&str; 13] = [
        "name",
        "description",
        "key",
        "layer",
        "sublayer",
        "provider",
        "action",
        "callout",
        "weight",
        "flags",
        "provider_context",
        "raw_context",
        "conditions",
    ];
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let mut t = Table::new();
    for k in keys {
        let val = &map[k.as_str()];
        let default = match val {
            Value::Null => true,
            Value::String(s) => s.is_empty() && k != "name",
            Value::Array(a) => a.is_empty(),
            Value::Number(n) => k == "raw_context" && n.as_u64() == Some(0),
            _ => false,
        };
        if default {
            continue;
        }
        let mut tv = toml_value(val).map_err(|e| format!("{k}: {e}"))?;
        if let toml_edit::Value::Array(a) = &mut tv {
            if k == "conditions" {
                for item in a.iter_mut() {
                    item.decor_mut().set_prefix("\n  ");
                }
                a.set_trailing("\n");
                a.set_trailing_comma(true);
            }
        }
        t.insert(k, Item::Value(tv));
    }
    Ok(t)
}

fn toml_value(v: &Value) -> Result<toml_edit::Value, String> {
    Ok(match v {
        Value::Null => return Err("null has no TOML form".into()),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(_)) if n.as_u64().is_some() => {
                return Err(format!(
                    "{n} is too large for TOML; write it as a hex string"
                ))
            }
            (None, Some(f)) => f.into(),
            (None, None) => return Err(format!("{n} has no TOML form")),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for x in a {
                arr.push(toml_value(x)?);
            }
            toml_edit::Value::Array(arr)
        }
        Value::Object(m) => {
            const ORDER: [&str; 10] = [
                "field", "match", "type", "value", "low", "high", "range", "exact", "allow", "deny",
            ];
            let mut keys: Vec<(&String, &Value)> = m.iter().collect();
            keys.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
            let mut t = InlineTable::new();
            for (k, x) in keys {
                if x.is_null() {
                    continue;
                }
                t.insert(k, toml_value(x)?);
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

#[cfg(test)]
mod ike_event_tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use wsock_stack::core::SETTINGS_GUARANTEE_ENCRYPTION;
    use wsock_stack::{Family, Network, Scenario, SecuritySettings};

    use super::*;

    /// A real IKE failure (the server cannot prove the name the client asked for) recorded on
    /// the client, read back over the control socket, as `wsock show events` prints it.
    #[test]
    fn ike_failures_show_their_error_ipsec_ike_code() {
        let net = Network::builder(Scenario::default_scenario())
            .ipsec_setup(|_, s| s.failure_delay = Duration::from_millis(1500))
            .start()
            .expect("network");
        let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
        let l = server.tcp(Family::V4);
        l.bind("0.0.0.0:5004".parse().unwrap()).unwrap();
        l.listen(4).unwrap();
        let r = net.runtime().unwrap().block_on(async {
            let c = client.tcp(Family::V4);
            c.set_security(Some(SecuritySettings {
                protocol: 0,
                flags: SETTINGS_GUARANTEE_ENCRYPTION,
                ..SecuritySettings::default()
            }))
            .unwrap();
            c.set_peer_target_name("10.0.0.2".parse().unwrap(), "host/MALLORY")
                .unwrap();
            let to: SocketAddr = "10.0.0.2:5004".parse().unwrap();
            tokio::time::timeout(Duration::from_secs(60), c.connect(to))
                .await
                .expect("the connect gives up by itself")
        });
        assert!(r.is_err(), "a connect to the wrong machine succeeded");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.sock");
        let mut cleanup = control::Cleanup::default();
        control::serve_unix(client.clone(), &path, &mut cleanup).unwrap();
        let ep = control::Endpoint::Unix(path);
        let src = Source {
            scenario: None,
            host: Some("client"),
            control: Some(&ep),
        };
        let v = events_json(&src).unwrap();
        let events = v[0]["events"].as_array().unwrap();
        let rows: Vec<Vec<String>> = events.iter().map(event_row).collect();
        let ike = rows
            .iter()
            .find(|r| r[2] == "IkeMmFailure")
            .unwrap_or_else(|| panic!("no IKE failure among {rows:?}"));
        assert_eq!(
            ike[9], "ERROR_IPSEC_IKE_AUTH_FAIL (13801), failure point local (IPSEC_FAILURE_ME)",
            "{ike:?}"
        );
        assert_eq!(ike[5], "udp", "{ike:?}");
        assert_eq!(ike[7], "10.0.0.2:500", "{ike:?}");
        let json_event = events
            .iter()
            .find_map(|e| e["kind"].get("IkeMmFailure"))
            .unwrap();
        assert_eq!(json_event["error_name"], "ERROR_IPSEC_IKE_AUTH_FAIL");
        assert_eq!(json_event["failure_error_code"], 13801);
    }

    #[test]
    fn error_codes_are_named_and_unknown_ones_kept() {
        assert_eq!(
            winerr_text(Some(13805)),
            "ERROR_IPSEC_IKE_TIMED_OUT (13805)"
        );
        assert_eq!(
            winerr_text(Some(13916)),
            "ERROR_IPSEC_CLEAR_TEXT_DROP (13916)"
        );
        assert_eq!(winerr_text(Some(1)), "error 1");
        assert_eq!(winerr_text(None), "(no error code)");
        assert_eq!(failure_point_text(Some(2)), "peer (IPSEC_FAILURE_PEER)");
    }
}
