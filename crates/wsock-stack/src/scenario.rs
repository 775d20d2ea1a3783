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
    /// The scenario's certificate authority (`[ca]`): its certificate and the hosts' machine
    /// certificates are made when the scenario starts. Absent: no certificates.
    #[serde(default)]
    pub ca: Option<CaSpec>,
    /// IKE/ESP knobs for every host (`[ipsec]`); a host's `[host.ipsec]` overrides them.
    #[serde(default)]
    pub ipsec: IpsecSpec,
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
    /// WFP provider contexts (IKE main-mode and IPsec quick-mode policies) of this host's
    /// engine, added before the filters so filters can name them.
    #[serde(default, rename = "provider_context")]
    pub provider_contexts: Vec<wsock_wfp::ProviderContextSpec>,
    /// Windows Firewall rules, expanded into filters ([`wsock_wfp::firewall`]).
    #[serde(default, rename = "firewall_rule")]
    pub firewall_rules: Vec<wsock_wfp::firewall::FirewallRuleSpec>,
    /// Pre-shared keys, one per peer host.
    #[serde(default, rename = "psk")]
    pub psks: Vec<PskSpec>,
    /// The machine certificate this host wants from the scenario CA (`[host.certificate]`);
    /// absent: none.
    #[serde(default)]
    pub certificate: Option<MachineCertSpec>,
    /// IKE/ESP knobs of this host, over the scenario's `[ipsec]`.
    #[serde(default)]
    pub ipsec: IpsecSpec,
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
    /// The domain password (used for user-level IPsec authentication, e.g. the credentials
    /// in `SOCKET_SECURITY_SETTINGS_IPSEC`). Absent: the user cannot authenticate by password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
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

/// The scenario's certificate authority (`[ca]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaSpec {
    /// The CA's subject common name (what `root_ca` in a main-mode policy names).
    pub name: String,
    /// Key type of the CA: `ecdsa-p256` (default; certificates signed ECDSA with SHA-256) or
    /// `ecdsa-p384` (signed ECDSA with SHA-384). Machine certificates hold P-256 keys either way.
    #[serde(default = "default_key_type")]
    pub key_type: String,
}

fn default_key_type() -> String {
    "ecdsa-p256".to_string()
}

/// Key types a scenario may ask for.
pub const KEY_TYPES: &[&str] = &["ecdsa-p256", "ecdsa-p384"];

/// A pre-shared key this host uses with one peer (`[[host.psk]]`). Each side lists its own
/// key; different keys on the two sides make authentication fail (a test of that failure).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PskSpec {
    /// The peer host's name.
    pub peer: String,
    /// The key (UTF-8 text, used as bytes).
    pub key: String,
}

/// The machine certificate of a host (`[host.certificate]`). With a scenario `[ca]`, every
/// host gets one unless its `[host.certificate]` says `wanted = false`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MachineCertSpec {
    /// Whether the host gets a machine certificate (default true; `false` makes a host
    /// without one, e.g. to test `ERROR_IPSEC_IKE_NO_CERT`).
    #[serde(default = "yes")]
    pub wanted: bool,
    /// DNS names (subject alternative names); absent: `<machine>` and `<machine>.<domain>`,
    /// lower case.
    #[serde(default)]
    pub dns_names: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl Default for MachineCertSpec {
    fn default() -> Self {
        MachineCertSpec {
            wanted: true,
            dns_names: None,
        }
    }
}

/// IKE/ESP knobs (`[ipsec]` and `[host.ipsec]`); every field optional, see
/// [`IpsecSettings`] for the defaults.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpsecSpec {
    /// Wait before the first IKE retransmission, in ms (doubling after each).
    #[serde(default)]
    pub retransmit_initial_ms: Option<u64>,
    /// Retransmissions before the initiator gives up.
    #[serde(default)]
    pub retransmit_max: Option<u32>,
    /// Main-mode (IKE SA) lifetime in seconds, when the main-mode policy does not say.
    #[serde(default)]
    pub mm_lifetime_seconds: Option<u64>,
    /// Child (quick-mode) SA lifetime in seconds, when the quick-mode policy does not say.
    #[serde(default)]
    pub child_lifetime_seconds: Option<u64>,
    /// Child SA lifetime in bytes, when the quick-mode policy does not say.
    #[serde(default)]
    pub child_lifetime_bytes: Option<u64>,
    /// Anti-replay window (0 disables the check), when the quick-mode policy does not say.
    #[serde(default)]
    pub replay_window: Option<u32>,
    /// How long a connect waits for IPsec negotiation before it fails with WSAETIMEDOUT, ms.
    #[serde(default)]
    pub negotiation_timeout_ms: Option<u64>,
}

/// Resolved IKE/ESP knobs of one host: its `[host.ipsec]`, else the scenario's `[ipsec]`,
/// else the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IpsecSettings {
    /// Wait before the first retransmission (default 1 s, doubling).
    pub retransmit_initial: std::time::Duration,
    /// Retransmissions before giving up (default 7, the AuthIP rule of MS-AIPS 3.1.6.1).
    pub retransmit_max: u32,
    /// IKE SA lifetime (default 2 h, the secure-socket default main mode).
    pub mm_lifetime: std::time::Duration,
    /// Child SA lifetime (default 1 h, the secure-socket default quick mode).
    pub child_lifetime: std::time::Duration,
    /// Child SA byte lifetime (default 55 GiB, the secure-socket default "55 GB").
    pub child_lifetime_bytes: u64,
    /// Anti-replay window (default 64).
    pub replay_window: u32,
    /// Connect's wait for negotiation (default 21 s, a blocking connect's SYN retries).
    pub negotiation_timeout: std::time::Duration,
}

impl Default for IpsecSettings {
    fn default() -> Self {
        use std::time::Duration;
        IpsecSettings {
            retransmit_initial: Duration::from_secs(1),
            retransmit_max: 7,
            mm_lifetime: Duration::from_secs(7200),
            child_lifetime: Duration::from_secs(3600),
            child_lifetime_bytes: 55 * 1024 * 1024 * 1024,
            replay_window: 64,
            negotiation_timeout: Duration::from_secs(21),
        }
    }
}

impl IpsecSpec {
    fn over(self, base: IpsecSpec) -> IpsecSpec {
        IpsecSpec {
            retransmit_initial_ms: self.retransmit_initial_ms.or(base.retransmit_initial_ms),
            retransmit_max: self.retransmit_max.or(base.retransmit_max),
            mm_lifetime_seconds: self.mm_lifetime_seconds.or(base.mm_lifetime_seconds),
            child_lifetime_seconds: self.child_lifetime_seconds.or(base.child_lifetime_seconds),
            child_lifetime_bytes: self.child_lifetime_bytes.or(base.child_lifetime_bytes),
            replay_window: self.replay_window.or(base.replay_window),
            negotiation_timeout_ms: self.negotiation_timeout_ms.or(base.negotiation_timeout_ms),
        }
    }

    fn resolve(self) -> IpsecSettings {
        use std::time::Duration;
        let d = IpsecSettings::default();
        IpsecSettings {
            retransmit_initial: self
                .retransmit_initial_ms
                .map_or(d.retransmit_initial, Duration::from_millis),
            retransmit_max: self.retransmit_max.unwrap_or(d.retransmit_max),
            mm_lifetime: self
                .mm_lifetime_seconds
                .map_or(d.mm_lifetime, Duration::from_secs),
            child_lifetime: self
                .child_lifetime_seconds
                .map_or(d.child_lifetime, Duration::from_secs),
            child_lifetime_bytes: self.child_lifetime_bytes.unwrap_or(d.child_lifetime_bytes),
            replay_window: self.replay_window.unwrap_or(d.replay_window),
            negotiation_timeout: self
                .negotiation_timeout_ms
                .map_or(d.negotiation_timeout, Duration::from_millis),
        }
    }

    /// The first bad knob: (key, message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        let range = |key: &'static str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err((key, format!("{key} = {v} is outside {lo}..={hi}")))
            }
            _ => Ok(()),
        };
        range(
            "retransmit_initial_ms",
            self.retransmit_initial_ms,
            1,
            60_000,
        )?;
        range("retransmit_max", self.retransmit_max.map(u64::from), 0, 20)?;
        range(
            "mm_lifetime_seconds",
            self.mm_lifetime_seconds,
            1,
            u64::from(u32::MAX),
        )?;
        range(
            "child_lifetime_seconds",
            self.child_lifetime_seconds,
            1,
            u64::from(u32::MAX),
        )?;
        range(
            "child_lifetime_bytes",
            self.child_lifetime_bytes,
            1024,
            u64::MAX,
        )?;
        range(
            "replay_window",
            self.replay_window.map(u64::from),
            0,
            u64::from(wsock_wfp::MAX_REPLAY_WINDOW),
        )?;
        range(
            "negotiation_timeout_ms",
            self.negotiation_timeout_ms,
            1,
            600_000,
        )?;
        Ok(())
    }
}

fn valid_dns_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl HostSpec {
    /// The machine name: `machine`, else the host name in upper case.
    pub fn machine_name(&self) -> String {
        self.machine
            .clone()
            .unwrap_or_else(|| self.name.to_uppercase())
    }

    /// The DNS names of the host's machine certificate: `[host.certificate] dns_names`, else
    /// `<machine>` and `<machine>.<domain>` in lower case. Whether the host gets a certificate
    /// at all: [`Scenario::wants_certificate`].
    ///
    /// # Examples
    /// ```
    /// let sc = wsock_stack::Scenario::from_toml_str(
    ///     "[ca]\nname = \"Lab CA\"\n[[host]]\nname = \"a\"\nipv4 = \"10.0.0.1\"\nipv6 = \"fd00::1\"\n",
    ///     "x.toml").unwrap();
    /// assert_eq!(sc.hosts[0].certificate_dns_names(), ["a", "a.wsock"]);
    /// assert!(sc.wants_certificate("a"));
    /// ```
    pub fn certificate_dns_names(&self) -> Vec<String> {
        match self.certificate.as_ref().and_then(|c| c.dns_names.clone()) {
            Some(n) => n,
            None => {
                let m = self.machine_name().to_lowercase();
                vec![m.clone(), format!("{m}.{}", self.domain.to_lowercase())]
            }
        }
    }

    /// How many entries the host has in the array of tables `toml_name` (`"host.filter"`,
    /// `"host.provider_context"`, ...); 0 for an unknown name.
    pub fn table_len(&self, toml_name: &str) -> usize {
        match toml_name {
            "host.provider" => self.providers.len(),
            "host.sublayer" => self.sublayers.len(),
            "host.filter" => self.filters.len(),
            "host.provider_context" => self.provider_contexts.len(),
            "host.firewall_rule" => self.firewall_rules.len(),
            "host.psk" => self.psks.len(),
            "host.user" => self.users.len(),
            "host.service" => self.services.len(),
            _ => 0,
        }
    }

    /// The pre-shared key this host uses with `peer`.
    pub fn psk_for(&self, peer: &str) -> Option<&[u8]> {
        self.psks
            .iter()
            .find(|p| p.peer == peer)
            .map(|p| p.key.as_bytes())
    }

    /// The password of local user `user`.
    pub fn password_of(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(user))
            .and_then(|u| u.password.as_deref())
    }

    /// The provider contexts of `[[host.provider_context]]`, built and validated (no engine
    /// needed; a `provider` is resolved only by [`HostSpec::add_provider_contexts`]).
    ///
    /// # Errors
    /// The index of the first bad entry and why.
    pub fn provider_contexts(
        &self,
    ) -> Result<Vec<wsock_wfp::ProviderContext>, (usize, wsock_wfp::SpecError)> {
        self.provider_contexts
            .iter()
            .enumerate()
            .map(|(i, c)| c.build().map_err(|e| (i, e)))
            .collect()
    }

    /// The firewall rules of `[[host.firewall_rule]]`, built and validated.
    ///
    /// # Errors
    /// The index of the first bad entry and why.
    pub fn firewall_rules(
        &self,
    ) -> Result<Vec<wsock_wfp::firewall::FirewallRule>, (usize, wsock_wfp::SpecError)> {
        self.firewall_rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.build().map_err(|e| (i, e)))
            .collect()
    }

    /// Adds the host's provider contexts to `engine` through `sid` (call it after the
    /// providers and before the filters, which may name a context).
    ///
    /// # Errors
    /// The index of the first context that failed and why.
    pub fn add_provider_contexts(
        &self,
        engine: &mut wsock_wfp::Engine,
        sid: wsock_wfp::SessionId,
    ) -> Result<Vec<u64>, (usize, wsock_wfp::SpecError)> {
        self.provider_contexts
            .iter()
            .enumerate()
            .map(|(i, c)| engine.add_provider_context_spec(sid, c).map_err(|e| (i, e)))
            .collect()
    }

    /// Expands the host's firewall rules into filters of `engine` through `sid`; returns the
    /// filter ids of each rule.
    ///
    /// # Errors
    /// The index of the first rule that failed and why (its own filters are not left behind).
    pub fn install_firewall_rules(
        &self,
        engine: &mut wsock_wfp::Engine,
        sid: wsock_wfp::SessionId,
    ) -> Result<Vec<Vec<u64>>, (usize, wsock_wfp::SpecError)> {
        let rules = self.firewall_rules()?;
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| wsock_wfp::firewall::install(engine, sid, r).map_err(|e| (i, e)))
            .collect()
    }
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

/// Line of `key = ...` in the `section` table (e.g. `[host.ipsec]`) of the `host`-th
/// `[[host]]`.
fn line_in_host_section(text: &str, host: usize, section: &str, key: &str) -> Option<usize> {
    let mut seen = 0usize;
    let mut inside = false;
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l == "[[host]]" {
            seen += 1;
            inside = false;
        } else if l.starts_with('[') {
            inside = seen == host + 1 && l == section;
        } else if inside && l.split('=').next().map(str::trim) == Some(key) {
            return Some(n + 1);
        }
    }
    None
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
        scenario.validate_security(text, file)?;
        for (hi, h) in scenario.hosts.iter().enumerate() {
            if let Err((table, index, err)) = crate::policy::build_ale(h) {
                let before: usize = scenario.hosts[..hi]
                    .iter()
                    .map(|p| p.table_len(table.toml_name()))
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

    /// The IKE/ESP knobs of host `name` (its `[host.ipsec]` over the scenario's `[ipsec]`
    /// over the defaults); the scenario defaults for an unknown host.
    ///
    /// # Examples
    /// ```
    /// let s = wsock_stack::Scenario::default_scenario();
    /// assert_eq!(s.ipsec_settings("client").replay_window, 64);
    /// ```
    pub fn ipsec_settings(&self, name: &str) -> IpsecSettings {
        match self.host(name) {
            Some(h) => h.ipsec.over(self.ipsec).resolve(),
            None => self.ipsec.resolve(),
        }
    }

    /// Checks `[ca]`, `[ipsec]` and each host's credentials, provider contexts and firewall
    /// rules (the latter two against a scratch engine holding the host's providers, as the
    /// host will build them).
    fn validate_security(&self, text: &str, file: &str) -> Result<(), ScenarioError> {
        let err = |line: Option<usize>, message: String| ScenarioError {
            file: file.to_string(),
            line,
            message,
        };
        let top_line = |key: &str| {
            text.lines()
                .position(|l| l.trim().split('=').next().map(str::trim) == Some(key))
                .map(|n| n + 1)
        };
        let section_line = |header: &str, key: &str| -> Option<usize> {
            let mut inside = false;
            let mut at = None;
            for (n, raw) in text.lines().enumerate() {
                let l = raw.trim();
                if l.starts_with('[') {
                    inside = l == header;
                    if inside {
                        at = Some(n + 1);
                    }
                    continue;
                }
                if inside && l.split('=').next().map(str::trim) == Some(key) {
                    return Some(n + 1);
                }
            }
            at
        };
        if let Some(ca) = &self.ca {
            if ca.name.trim().is_empty() {
                return Err(err(
                    section_line("[ca]", "name"),
                    "[ca] name is empty".into(),
                ));
            }
            if !KEY_TYPES.contains(&ca.key_type.as_str()) {
                return Err(err(
                    section_line("[ca]", "key_type"),
                    format!(
                        "[ca] key_type {:?} is not one of {}",
                        ca.key_type,
                        KEY_TYPES.join(", ")
                    ),
                ));
            }
        }
        if let Err((key, m)) = self.ipsec.check() {
            return Err(err(section_line("[ipsec]", key).or(top_line(key)), m));
        }
        let mut counts = [0usize; 4]; // provider_context, firewall_rule, psk, user
        for (hi, h) in self.hosts.iter().enumerate() {
            let host_line = |key: Option<&'static str>| line_of_table_key(text, "host", hi, key);
            let nth = |table: &str, idx: usize| nth_header_line(text, table, idx);
            if let Err((key, m)) = h.ipsec.check() {
                return Err(err(
                    line_in_host_section(text, hi, "[host.ipsec]", key).or(host_line(None)),
                    format!("host {:?}: [host.ipsec] {m}", h.name),
                ));
            }
            if h.certificate.as_ref().is_some_and(|c| c.wanted) && self.ca.is_none() {
                return Err(err(
                    host_line(None),
                    format!(
                        "host {:?} wants a machine certificate but the scenario has no [ca]",
                        h.name
                    ),
                ));
            }
            if self.wants_certificate(&h.name) {
                let names = h.certificate_dns_names();
                if names.is_empty() || names.iter().any(|n| !valid_dns_name(n)) {
                    return Err(err(
                        host_line(None),
                        format!(
                            "host {:?}: certificate DNS names {names:?} must be non-empty DNS \
                             names (set [host.certificate] dns_names when the machine name is \
                             not one)",
                            h.name
                        ),
                    ));
                }
            }
            let mut peers = BTreeSet::new();
            for (i, p) in h.psks.iter().enumerate() {
                let line = nth("host.psk", counts[2] + i);
                if self.host(&p.peer).is_none() || p.peer == h.name {
                    return Err(err(
                        line,
                        format!(
                            "host {:?}: psk peer {:?} is not another host of this scenario",
                            h.name, p.peer
                        ),
                    ));
                }
                if !peers.insert(&p.peer) {
                    return Err(err(
                        line,
                        format!("host {:?}: two psk entries for peer {:?}", h.name, p.peer),
                    ));
                }
                if p.key.is_empty() {
                    return Err(err(
                        line,
                        format!("host {:?}: the psk for {:?} is empty", h.name, p.peer),
                    ));
                }
            }
            let mut users = BTreeSet::new();
            for (i, u) in h.users.iter().enumerate() {
                let line = nth("host.user", counts[3] + i);
                if u.name.trim().is_empty() || !users.insert(u.name.to_lowercase()) {
                    return Err(err(
                        line,
                        format!(
                            "host {:?}: user name {:?} is empty or listed twice",
                            h.name, u.name
                        ),
                    ));
                }
                if u.password.as_deref() == Some("") {
                    return Err(err(
                        line,
                        format!("host {:?}: user {:?} has an empty password", h.name, u.name),
                    ));
                }
            }
            // provider contexts and firewall rules, against the host's providers
            let mut engine = wsock_wfp::Engine::new();
            let sid = engine.open_session(false);
            for p in &h.providers {
                // errors here are reported by the policy build with their own line
                let _ = engine.add_provider_spec(sid, p);
            }
            if let Err((i, e)) = h.add_provider_contexts(&mut engine, sid) {
                return Err(err(
                    nth("host.provider_context", counts[0] + i),
                    format!(
                        "host {:?}: [[host.provider_context]] #{}: {e}",
                        h.name,
                        i + 1
                    ),
                ));
            }
            if let Err((i, e)) = h.install_firewall_rules(&mut engine, sid) {
                return Err(err(
                    nth("host.firewall_rule", counts[1] + i),
                    format!("host {:?}: [[host.firewall_rule]] #{}: {e}", h.name, i + 1),
                ));
            }
            counts[0] += h.provider_contexts.len();
            counts[1] += h.firewall_rules.len();
            counts[2] += h.psks.len();
            counts[3] += h.users.len();
        }
        Ok(())
    }

    /// Whether host `name` gets a machine certificate from the scenario's `[ca]`: there is a
    /// `[ca]` and the host's `[host.certificate]` (if any) does not say `wanted = false`.
    pub fn wants_certificate(&self, name: &str) -> bool {
        self.ca.is_some()
            && self
                .host(name)
                .is_some_and(|h| h.certificate.as_ref().is_none_or(|c| c.wanted))
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
