//! The scenario: which hosts exist, their virtual addresses, where their wire sockets live, their
//! users, the links between them with their faults, and the link MTU.
//!
//! A scenario is TOML (see `docs/scenario.md`). [`Scenario::default_scenario`] is embedded in the
//! binary so `wsock demo` needs nothing on disk. Every error names the file, the line and what is
//! wrong.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The embedded default scenario: two hosts, `client` and `server`, one clean link.
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("default_scenario.toml");

/// A whole simulated world.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for logs and captures.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of every random decision (faults, initial sequence numbers). `--seed` overrides it.
    #[serde(default)]
    pub seed: u64,
    /// Link MTU in bytes: the largest virtual IP packet a host sends (576..=65000).
    #[serde(default = "default_mtu")]
    pub mtu: usize,
    /// The hosts, in declaration order.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    /// Links with faults. A pair of hosts with no link entry talks over a clean link.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
}

fn default_name() -> String {
    "scenario".to_string()
}
fn default_mtu() -> usize {
    1500
}

/// One host of the scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Unique host name (what `wsock host NAME` and `Network::host` take).
    pub name: String,
    /// The host's virtual IPv4 address (what applications and filters see).
    pub ipv4: Ipv4Addr,
    /// The host's virtual IPv6 address.
    pub ipv6: Ipv6Addr,
    /// The UDP endpoint of the clear path (GRE-in-UDP). Port 0 lets the OS pick, which only works
    /// when every host lives in one process.
    #[serde(default = "default_wire")]
    pub wire: SocketAddr,
    /// The UDP endpoint of the IKE socket (the port-500 role). Defaults to the clear path's
    /// address with the next port (port 0: the OS picks).
    #[serde(default)]
    pub ike: Option<SocketAddr>,
    /// The UDP endpoint of the NAT-T socket (the port-4500 role: ESP-in-UDP). Defaults to the
    /// clear path's address with the port after the IKE one (port 0: the OS picks).
    #[serde(default)]
    pub natt: Option<SocketAddr>,
    /// NetBIOS-style machine name (the machine principal later). Defaults to the host name in
    /// upper case.
    #[serde(default)]
    pub machine: Option<String>,
    /// Domain of the machine and its users.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Local users. The first one owns sockets unless a socket says otherwise.
    #[serde(default, rename = "user")]
    pub users: Vec<UserSpec>,
    /// Application id (image path) that owns sockets created on this host.
    #[serde(default = "default_app")]
    pub app: String,
    /// Services that `wsock host` runs on this host.
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceSpec>,
    /// WFP providers of this host's filter engine.
    #[serde(default, rename = "provider")]
    pub providers: Vec<wsock_wfp::ProviderSpec>,
    /// WFP sublayers of this host's filter engine.
    #[serde(default, rename = "sublayer")]
    pub sublayers: Vec<wsock_wfp::SublayerSpec>,
    /// WFP filters of this host's filter engine (static: they live as long as the host).
    #[serde(default, rename = "filter")]
    pub filters: Vec<wsock_wfp::FilterSpec>,
    /// An extra control endpoint of `wsock host` over TCP on loopback (JSON lines), which
    /// requires the token from the owner-only token file; the default control endpoint is an
    /// owner-only Unix socket (see docs/scenario.md).
    #[serde(default)]
    pub control: Option<SocketAddr>,
}

impl HostSpec {
    /// The addresses the host's three wire sockets bind: `wire` is the clear socket; `ike` and
    /// `natt` default to its next two ports (or port 0 when `wire` has port 0).
    ///
    /// # Errors
    /// A message when a default port would pass 65535.
    ///
    /// # Examples
    /// ```
    /// let sc = wsock_stack::Scenario::from_toml_str(
    ///     "[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\nwire = \"127.0.0.1:4754\"\n",
    ///     "x.toml").unwrap();
    /// let w = sc.hosts[0].wire_plan().unwrap();
    /// assert_eq!((w.ike.port(), w.natt.port(), w.clear.port()), (4755, 4756, 4754));
    /// ```
    pub fn wire_plan(&self) -> Result<crate::stages::WireAddrs, String> {
        let next = |k: u16| -> Result<SocketAddr, String> {
            if self.wire.port() == 0 {
                return Ok(SocketAddr::new(self.wire.ip(), 0));
            }
            self.wire
                .port()
                .checked_add(k)
                .map(|p| SocketAddr::new(self.wire.ip(), p))
                .ok_or_else(|| {
                    format!(
                        "host {:?}: wire port {} leaves no room for the IKE and NAT-T sockets (set `ike` and `natt`)",
                        self.name,
                        self.wire.port()
                    )
                })
        };
        Ok(crate::stages::WireAddrs {
            ike: match self.ike {
                Some(a) => a,
                None => next(1)?,
            },
            natt: match self.natt {
                Some(a) => a,
                None => next(2)?,
            },
            clear: self.wire,
        })
    }
}

fn default_wire() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}
fn default_domain() -> String {
    "WSOCK".to_string()
}
fn default_app() -> String {
    "C:\\Program Files\\wsock\\app.exe".to_string()
}

/// A user account on a host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Account name.
    pub name: String,
}

/// A service a standalone host runs (`wsock host`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// What it does.
    pub kind: ServiceKind,
    /// The port it listens on.
    pub port: u16,
}

/// The kinds of built-in services.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Echoes every TCP byte back until the peer closes.
    TcpEcho,
    /// Echoes every UDP datagram back to its sender.
    UdpEcho,
}

/// Faults of one direction of a link. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Probability that a datagram is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a datagram is sent twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a datagram is held back so later ones overtake it.
    #[serde(default)]
    pub reorder: f64,
    /// Probability that one byte of the carried packet is flipped.
    #[serde(default)]
    pub corrupt: f64,
    /// Fixed delay added to every datagram, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// Extra random delay, uniform in `0..=jitter_ms`.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Start partitioned (every datagram dropped until repaired).
    #[serde(default)]
    pub partitioned: bool,
}

impl Faults {
    /// True when this direction does nothing to datagrams.
    pub fn is_clean(&self) -> bool {
        *self == Faults::default()
    }
}

/// A link between two hosts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end.
    pub a: String,
    /// The other end.
    pub b: String,
    /// Faults in both directions (overridden by `a_to_b` / `b_to_a`).
    #[serde(default, flatten)]
    pub both: Faults,
    /// Faults from `a` to `b` only.
    #[serde(default)]
    pub a_to_b: Option<Faults>,
    /// Faults from `b` to `a` only.
    #[serde(default)]
    pub b_to_a: Option<Faults>,
}

/// A scenario that could not be read: the file, the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or `<embedded>`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Finds the line of `key = ...` inside the `index`-th `[[table]]` block, for semantic errors.
fn line_of_table_key(text: &str, table: &str, index: usize, key: Option<&str>) -> Option<usize> {
    let header = format!("[[{table}]]");
    let mut seen = 0usize;
    let mut in_block = false;
    let mut block_line = None;
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            if in_block
                && !l.starts_with(&format!("[{table}."))
                && !l.starts_with(&format!("[[{table}."))
            {
                break;
            }
            if l == header {
                if seen == index {
                    in_block = true;
                    block_line = Some(n + 1);
                }
                seen += 1;
                continue;
            }
        }
        if in_block {
            if let Some(k) = key {
                if l.split('=').next().map(str::trim) == Some(k) {
                    return Some(n + 1);
                }
            }
        }
    }
    block_line
}

/// Line of the `n`-th `[[table]]` header in the text.
fn nth_header_line(text: &str, table: &str, n: usize) -> Option<usize> {
    let header = format!("[[{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(n)
        .map(|(i, _)| i + 1)
}

impl Scenario {
    /// The embedded default scenario (two hosts, `client` and `server`).
    ///
    /// # Examples
    /// ```
    /// let s = wsock_stack::Scenario::default_scenario();
    /// assert_eq!(s.hosts.len(), 2);
    /// ```
    pub fn default_scenario() -> Scenario {
        Scenario::from_toml_str(DEFAULT_SCENARIO_TOML, "<embedded>")
            .expect("the embedded default scenario is valid (checked by a test)")
    }

    /// Reads a scenario file.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the file and line when the file cannot be read, is not TOML,
    /// has an unknown or mistyped key, or breaks a rule (duplicate names, bad MTU, ...).
    ///
    /// # Examples
    /// ```no_run
    /// let s = wsock_stack::Scenario::from_file("lab.toml".as_ref())?;
    /// # Ok::<(), wsock_stack::ScenarioError>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Scenario::from_toml_str(&text, &file)
    }

    /// Parses a scenario from TOML text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Scenario::from_file`].
    ///
    /// # Examples
    /// ```
    /// let err = wsock_stack::Scenario::from_toml_str("mtu = \"big\"", "x.toml").unwrap_err();
    /// assert_eq!(err.line, Some(1));
    /// ```
    pub fn from_toml_str(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        scenario
            .validate()
            .map_err(|(table, index, key, message)| ScenarioError {
                file: file.to_string(),
                line: table.and_then(|t| line_of_table_key(text, t, index, key)),
                message,
            })?;
        for (hi, h) in scenario.hosts.iter().enumerate() {
            if let Err((table, index, err)) = crate::policy::build_ale(h) {
                let before: usize = scenario.hosts[..hi]
                    .iter()
                    .map(|p| match table {
                        crate::policy::PolicyTable::Provider => p.providers.len(),
                        crate::policy::PolicyTable::Sublayer => p.sublayers.len(),
                        crate::policy::PolicyTable::Filter => p.filters.len(),
                    })
                    .sum();
                return Err(ScenarioError {
                    file: file.to_string(),
                    line: nth_header_line(text, table.toml_name(), before + index),
                    message: format!(
                        "host {:?}: [[{}]] #{}: {err}",
                        h.name,
                        table.toml_name(),
                        index + 1
                    ),
                });
            }
        }
        Ok(scenario)
    }

    #[allow(clippy::type_complexity)]
    fn validate(&self) -> Result<(), (Option<&'static str>, usize, Option<&'static str>, String)> {
        if !(576..=65000).contains(&self.mtu) {
            return Err((
                None,
                0,
                None,
                format!("mtu {} is outside 576..=65000", self.mtu),
            ));
        }
        if self.hosts.is_empty() {
            return Err((None, 0, None, "the scenario has no [[host]]".into()));
        }
        let mut names = BTreeSet::new();
        let mut v4 = BTreeSet::new();
        let mut v6 = BTreeSet::new();
        let mut wires = BTreeSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.name.is_empty()
                || !h
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err((
                    Some("host"),
                    i,
                    Some("name"),
                    format!(
                        "host name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
                        h.name
                    ),
                ));
            }
            if !names.insert(h.name.clone()) {
                return Err((
                    Some("host"),
                    i,
                    Some("name"),
                    format!("host name {:?} is used twice", h.name),
                ));
            }
            if h.ipv4.is_unspecified()
                || h.ipv4.is_multicast()
                || h.ipv4.is_broadcast()
                || !v4.insert(h.ipv4)
            {
                return Err((
                    Some("host"),
                    i,
                    Some("ipv4"),
                    format!(
                        "ipv4 {} must be a unicast address no other host has",
                        h.ipv4
                    ),
                ));
            }
            if h.ipv6.is_unspecified() || h.ipv6.is_multicast() || !v6.insert(h.ipv6) {
                return Err((
                    Some("host"),
                    i,
                    Some("ipv6"),
                    format!(
                        "ipv6 {} must be a unicast address no other host has",
                        h.ipv6
                    ),
                ));
            }
            let plan = h
                .wire_plan()
                .map_err(|m| (Some("host"), i, Some("wire"), m))?;
            for (field, addr) in [("ike", plan.ike), ("natt", plan.natt), ("wire", plan.clear)] {
                if addr.port() != 0 && !wires.insert(addr) {
                    return Err((
                        Some("host"),
                        i,
                        Some(field),
                        format!("wire endpoint {addr} ({field} socket) is used twice"),
                    ));
                }
            }
            let mut svc = BTreeSet::new();
            for s in &h.services {
                if !svc.insert((s.kind, s.port)) || s.port == 0 {
                    return Err((
                        Some("host"),
                        i,
                        Some("service"),
                        format!(
                            "service {:?} on port {} is listed twice or has port 0",
                            s.kind, s.port
                        ),
                    ));
                }
            }
        }
        for (i, l) in self.links.iter().enumerate() {
            for end in [&l.a, &l.b] {
                if !names.contains(end) {
                    return Err((
                        Some("link"),
                        i,
                        Some(if end == &l.a { "a" } else { "b" }),
                        format!("link end {end:?} is not a host of this scenario"),
                    ));
                }
            }
            if l.a == l.b {
                return Err((
                    Some("link"),
                    i,
                    Some("b"),
                    "a link joins two different hosts".into(),
                ));
            }
            for f in [Some(l.both), l.a_to_b, l.b_to_a].into_iter().flatten() {
                for (what, p) in [
                    ("loss", f.loss),
                    ("duplicate", f.duplicate),
                    ("reorder", f.reorder),
                    ("corrupt", f.corrupt),
                ] {
                    if !(0.0..=1.0).contains(&p) {
                        return Err((
                            Some("link"),
                            i,
                            Some(what),
                            format!("{what} = {p} is not a probability in 0.0..=1.0"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The faults from host `from` to host `to` and the index of their link (0 when clean).
    pub fn faults(&self, from: &str, to: &str) -> (usize, Faults) {
        for (i, l) in self.links.iter().enumerate() {
            if l.a == from && l.b == to {
                return (i + 1, l.a_to_b.unwrap_or(l.both));
            }
            if l.b == from && l.a == to {
                return (i + 1, l.b_to_a.unwrap_or(l.both));
            }
        }
        (0, Faults::default())
    }
}
