//! # wsock-cli: the `wsock` command (layer 4)
//!
//! The top of the wsock architecture (see `docs/architecture.md`). Commands:
//!
//! - `wsock demo [--scenario FILE] [--capture PCAP] [--keylog KEYS] [--seed N] [--quiet]`: a TCP
//!   echo and a UDP exchange between two hosts of the (embedded default) scenario, then a secure
//!   TCP echo through the secure socket extensions (IKEv2 + ESP, AES-GCM) with the SAs, the
//!   query result, the impersonated peer and an access check, printing each layer. `--keylog`
//!   writes the SA keys for Wireshark/tshark (with a warning; secret material).
//! - `wsock host NAME [--scenario FILE] [--control PATH | --no-control] [--control-tcp ADDR
//!   [--token-file FILE]] [--for-seconds N]`: runs one host and its services in this process
//!   and serves the JSON-lines control socket (see `control.rs`): on a Unix domain socket (mode
//!   0600, peers of another uid refused) at `--control PATH` or by default at
//!   `$XDG_RUNTIME_DIR/wsock/<scenario>-<host>.sock` (else `<tmp>/wsock-<uid>/...`), printing
//!   `control listening on PATH`; with `--control-tcp 127.0.0.1:PORT` (or the host's `control` in
//!   the scenario) also on loopback TCP behind a random token written to an owner-only file,
//!   printing `control listening on tcp ADDR, token in FILE`. Ctrl-C / SIGTERM stop it and remove
//!   both files.
//! - `wsock show filters|events [--scenario FILE] [--host NAME] [--json] [--control [PATH] |
//!   --control-tcp ADDR [--token-file FILE]]`: the WFP filters (id, layer, action, weight, name,
//!   conditions) or net events, as a table in the spirit of `netsh wfp show filters/state` or as
//!   JSON (`[{"host":..,"filters":[..]}]`). From a scenario file: its static filters (a file has
//!   no events); with `--control`: a running host's (no PATH: the default socket of `--host` in
//!   the scenario, which `--scenario` then only names).
//! - `wsock show sas [--scenario FILE] [--host NAME] [--json] [--control [PATH] | --control-tcp
//!   ADDR [--token-file FILE]]`: the IPsec SA databases, main mode (IKE) SAs (id, role, state,
//!   peer, SPIs) and quick mode (child) SAs (id, peer, SPIs in/out, suite, mode, encrypted,
//!   packets/bytes). From a running host over the control socket; from a scenario, after a
//!   small secure exchange run for the command (a file holds no SAs; see `sas.rs`).
//! - `wsock filter add --host NAME (--scenario FILE | --control [PATH] | --control-tcp ADDR) --layer L
//!   --action A --name N [--condition FIELD:MATCH:VALUE ..] [--weight W] [--sublayer S]
//!   [--description D] [--flags F,..] [--provider P] [--key GUID]`: adds a filter to a scenario file (a validated `[[host.filter]]`, the
//!   rest of the file untouched) or to a running host (prints the new id).
//!   `--flags F,..`, `--provider P` and `--key GUID` set the filter's flags (Windows or short
//!   names), provider and key.
//! - `wsock filter delete --host NAME (--scenario FILE | --control [PATH] | --control-tcp ADDR)
//!   (--id ID | --name N)`.
//! - `wsock scenario check FILE`, `wsock scenario default`.
//!
//! `--json` prints 64-bit filter ids and weights, event sequence numbers and the filter ids in
//! events as decimal strings (`"weight": "18446744073709551615"`), because JavaScript and other
//! double-based JSON readers round integers above 2^53. A reader that closes stdout early
//! (`wsock show events | head`) ends any command quietly with status 0 (see `out.rs`).
//!
//! Errors name the file and line, and for policy the `FWP_E_*` reason and HRESULT. Logging
//! follows `RUST_LOG` (or `--log`), e.g. `RUST_LOG=wsock=debug`.

/// Prints a line to stdout like `println!`, except that a closed stdout (`wsock show events |
/// head`) ends the process quietly with status 0 instead of a panic; see [`out::line`].
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::out::line(format_args!($($t)*))
    };
}

mod control;
mod demo;
mod out;
mod policy;
mod sas;
mod secure_demo;
mod trace_hook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use wsock::{Network, Scenario};

#[derive(Parser)]
#[command(
    name = "wsock",
    version,
    about = "Windows secure-socket extensions, emulated in user space"
)]
struct Cli {
    /// Trace filter (overrides RUST_LOG), e.g. `info` or `wsock::stack=debug`.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Scenario file (TOML); the embedded default scenario when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Write every datagram that crosses the wire to this pcap file.
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Seed of every random decision (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a TCP echo, a UDP exchange and a secure (IPsec) TCP echo between two hosts,
    /// printing each layer.
    Demo {
        #[command(flatten)]
        run: RunArgs,
        /// Do not print each packet.
        #[arg(long)]
        quiet: bool,
        /// After the run, write the keys of every IKE and ESP SA to FILE (JSON: `decode_as`,
        /// `ikev2`, `esp_sa`, the format of Wireshark's UAT tables) so that a capture taken with
        /// --capture decrypts in Wireshark/tshark. Secret material: off by default, and a
        /// warning is printed when on.
        #[arg(long, value_name = "FILE")]
        keylog: Option<PathBuf>,
    },
    /// Runs one host of a scenario (and its services) in this process until stopped.
    Host {
        /// The host's name in the scenario.
        name: String,
        #[command(flatten)]
        run: RunArgs,
        /// Stop after this many seconds (default: run until killed).
        #[arg(long)]
        for_seconds: Option<u64>,
        /// Serve the control socket at this Unix socket path (default:
        /// `$XDG_RUNTIME_DIR/wsock/<scenario>-<host>.sock`, else `<tmp>/wsock-<uid>/...`).
        #[arg(long, conflicts_with = "no_control")]
        control: Option<PathBuf>,
        /// Serve no Unix control socket.
        #[arg(long)]
        no_control: bool,
        /// Also serve the control protocol on TCP at this loopback address (port 0 picks one),
        /// behind a random token written to an owner-only file. Default: the host's `control`
        /// in the scenario, else none.
        #[arg(long)]
        control_tcp: Option<SocketAddr>,
        /// Where to write the TCP token (default: next to the default socket, `.token`).
        #[arg(long, requires = "control_tcp")]
        token_file: Option<PathBuf>,
    },
    /// Shows WFP and IPsec state: filters, net events or SAs.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Adds or deletes WFP filters in a scenario file or on a running host.
    Filter {
        #[command(subcommand)]
        action: FilterAction,
    },
    /// Scenario files.
    Scenario {
        #[command(subcommand)]
        action: ScenarioAction,
    },
}

/// How `show` and `filter` reach a running `wsock host`.
#[derive(clap::Args, Clone)]
struct ControlArgs {
    /// Ask a running `wsock host` over its Unix control socket: at PATH, or (no value) at the
    /// default path of `--host NAME` in the scenario (`--scenario FILE` then only names it).
    #[arg(long, num_args = 0..=1, value_name = "PATH", conflicts_with = "control_tcp")]
    control: Option<Option<PathBuf>>,
    /// Ask a running `wsock host` over its token-protected TCP control socket at ADDR.
    #[arg(long, value_name = "ADDR")]
    control_tcp: Option<String>,
    /// The token file the host printed (default: the default token path of `--host NAME`).
    #[arg(long, requires = "control_tcp")]
    token_file: Option<PathBuf>,
}

impl ControlArgs {
    /// The endpoint these arguments name, if any.
    fn endpoint(
        &self,
        scenario: Option<&std::path::Path>,
        host: Option<&str>,
    ) -> Result<Option<control::Endpoint>, String> {
        let scenario_name = || -> Result<String, String> {
            match scenario {
                Some(p) => Scenario::from_file(p)
                    .map(|s| s.name)
                    .map_err(|e| e.to_string()),
                None => Ok(Scenario::default_scenario().name),
            }
        };
        let need_host = |what: &str| {
            host.ok_or_else(|| format!("{what} needs --host NAME to find the host's default path"))
        };
        match (&self.control, &self.control_tcp) {
            (Some(Some(path)), _) => {
                if path
                    .to_str()
                    .and_then(|t| t.parse::<SocketAddr>().ok())
                    .is_some()
                {
                    return Err(format!(
                        "--control takes a Unix socket path; {} is a TCP address: use --control-tcp ADDR (with --token-file)",
                        path.display()
                    ));
                }
                Ok(Some(control::Endpoint::Unix(path.clone())))
            }
            (Some(None), _) => {
                let h = need_host("--control without a PATH")?;
                control::verify_runtime_dir(&control::runtime_dir())?;
                Ok(Some(control::Endpoint::Unix(control::default_socket_path(
                    &scenario_name()?,
                    h,
                ))))
            }
            (None, Some(addr)) => {
                let file = match &self.token_file {
                    Some(f) => f.clone(),
                    None => {
                        let h = need_host("--control-tcp without --token-file")?;
                        control::verify_runtime_dir(&control::runtime_dir())?;
                        control::default_token_path(&scenario_name()?, h)
                    }
                };
                control::Endpoint::tcp(addr, &file).map(Some)
            }
            (None, None) => Ok(None),
        }
    }
}

#[derive(clap::Args)]
struct ShowArgs {
    /// Scenario file (TOML); the embedded default scenario when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Only this host.
    #[arg(long)]
    host: Option<String>,
    /// Print JSON instead of a table (64-bit ids and weights as decimal strings).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Subcommand)]
enum ShowWhat {
    /// The filters (id, layer, action, weight, name, conditions).
    Filters(ShowArgs),
    /// The net events (drops with the filter that caused them, IKE failures with their
    /// ERROR_IPSEC_IKE_* code).
    Events(ShowArgs),
    /// The IPsec SAs: main mode (IKE) SAs and quick mode (child) SAs. From a scenario: after a
    /// small secure exchange from the first host to each other host, run for this command.
    Sas(ShowArgs),
}

#[derive(clap::Args)]
struct Target {
    /// Edit this scenario file (with --control/--control-tcp: only names the scenario).
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[command(flatten)]
    control: ControlArgs,
}

impl Target {
    /// A running host's endpoint, else the scenario file to edit.
    fn resolve(&self, host: &str) -> Result<Result<control::Endpoint, PathBuf>, String> {
        match self
            .control
            .endpoint(self.scenario.as_deref(), Some(host))?
        {
            Some(ep) => Ok(Ok(ep)),
            None => self.scenario.clone().map(Err).ok_or_else(|| {
                "give --scenario FILE, --control [PATH] or --control-tcp ADDR".to_string()
            }),
        }
    }
}

#[derive(Subcommand)]
enum FilterAction {
    /// Adds a filter.
    Add {
        /// The host whose engine gets the filter.
        #[arg(long)]
        host: String,
        #[command(flatten)]
        target: Target,
        /// Layer, e.g. FWPM_LAYER_ALE_AUTH_CONNECT_V4.
        #[arg(long)]
        layer: String,
        /// permit, block, callout_terminating, ...
        #[arg(long)]
        action: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// FIELD:MATCH:VALUE, e.g. ip_remote_port:equal:80 or ip_remote_address:equal:10.0.0.0/8
        /// (VALUE `LOW..HIGH` is a range). Repeatable; AND'd across fields.
        #[arg(long = "condition")]
        conditions: Vec<String>,
        /// Exact weight (unsigned 64-bit number), `auto`, or `range:N` (N 0..=15).
        #[arg(long, allow_hyphen_values = true)]
        weight: Option<String>,
        /// Sublayer (built-in name, GUID or a scenario sublayer's name).
        #[arg(long)]
        sublayer: Option<String>,
        /// Provider (GUID, built-in name or a scenario provider's name).
        #[arg(long)]
        provider: Option<String>,
        /// Filter key (GUID). Default: on a running host a random one (as Windows generates),
        /// in a file the one the engine generates when the scenario loads.
        #[arg(long)]
        key: Option<String>,
        /// Filter flags by Windows name or short name, comma-separated or repeated, e.g.
        /// FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT, clear_action_right, persistent,
        /// permit_if_callout_unregistered.
        #[arg(
            long = "flags",
            alias = "flag",
            value_delimiter = ',',
            value_name = "FLAG"
        )]
        flags: Vec<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes a filter by id or by name.
    Delete {
        /// The host whose engine holds the filter.
        #[arg(long)]
        host: String,
        #[command(flatten)]
        target: Target,
        /// Filter id (on a file: the id it gets when the scenario loads).
        #[arg(long, conflicts_with = "name", required_unless_present = "name")]
        id: Option<u64>,
        /// Filter name (every filter of that name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum ScenarioAction {
    /// Checks a scenario file; errors name the file and line.
    Check { file: PathBuf },
    /// Prints the embedded default scenario.
    Default,
}

fn load(run: &RunArgs) -> Result<Scenario, String> {
    match &run.scenario {
        Some(p) => Scenario::from_file(p).map_err(|e| e.to_string()),
        None => Ok(Scenario::default_scenario()),
    }
}

fn start(run: &RunArgs, local: Option<&str>, keylog: bool) -> Result<Network, String> {
    let sc = load(run)?;
    let mut b = Network::builder(sc).keylog(keylog);
    if let Some(s) = run.seed {
        b = b.seed(s);
    }
    if let Some(c) = &run.capture {
        b = b.capture(c.clone());
    }
    if let Some(l) = local {
        b = b.local_hosts([l.to_string()]);
    }
    b.start().map_err(|e| e.to_string())
}

fn print_capture_hint(net: &Network, run: &RunArgs) {
    if let Some(c) = &run.capture {
        let _ = net.flush_capture();
        outln!("capture written to {}; dissect it with:", c.display());
        outln!(
            "  tshark -r {} {}",
            c.display(),
            net.decode_as_args().join(" ")
        );
    }
}

/// `wsock demo`: the run, then the capture hint and the key file (written even when the run
/// failed: that is when it helps most).
fn run_demo(run: &RunArgs, quiet: bool, keylog: Option<&std::path::Path>) -> Result<(), String> {
    if let Some(k) = keylog {
        eprintln!(
            "wsock: warning: --keylog writes the secret keys of every IKE and ESP SA of this run to {}; anyone with that file can decrypt the capture",
            k.display()
        );
    }
    let net = start(run, None, keylog.is_some())?;
    let r = demo::run(&net, !quiet);
    print_capture_hint(&net, run);
    if let Some(k) = keylog {
        write_key_file(k, &net.key_file_json())?;
        outln!("keys written to {}", k.display());
        if let Some(c) = &run.capture {
            outln!(
                "  check: python3 esp_pcap_check.py check --pcap {} --keys {}",
                c.display(),
                k.display()
            );
        }
    }
    r
}

/// Writes a key file readable by its owner only (mode 0600 from creation; an existing file is
/// truncated and narrowed).
fn write_key_file(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| format!("key file {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

fn filter_command(action: FilterAction) -> Result<(), String> {
    match action {
        FilterAction::Add {
            host,
            target,
            layer,
            action,
            name,
            conditions,
            weight,
            sublayer,
            provider,
            key,
            flags,
            description,
        } => {
            let mut spec = wsock_stack::wsock_wfp::FilterSpec {
                name: name.clone(),
                description: description.unwrap_or_default(),
                key,
                layer,
                sublayer,
                provider,
                flags: flags
                    .iter()
                    .map(|f| f.trim().replace('-', "_"))
                    .filter(|f| !f.is_empty())
                    .collect(),
                action,
                weight: weight.as_deref().map(policy::parse_weight),
                conditions: conditions
                    .iter()
                    .map(|c| policy::parse_condition(c))
                    .collect::<Result<_, _>>()?,
                ..Default::default()
            };
            match target.resolve(&host)? {
                Err(file) => {
                    policy::add_to_file(&file, &host, &spec)?;
                    outln!("added filter {name:?} to host {host} in {}", file.display());
                }
                Ok(ep) => {
                    if spec.key.is_none() {
                        spec.key = Some(policy::random_guid()?);
                    }
                    let id = policy::add_via_control(&ep, &host, &spec)?;
                    outln!("added filter id {id} ({name:?}) to host {host}");
                }
            }
            Ok(())
        }
        FilterAction::Delete {
            host,
            target,
            id,
            name,
        } => {
            match target.resolve(&host)? {
                Err(file) => {
                    let names = policy::delete_from_file(&file, &host, id, name.as_deref())?;
                    for n in names {
                        outln!(
                            "deleted filter {n:?} from host {host} in {}",
                            file.display()
                        );
                    }
                }
                Ok(ep) => {
                    for id in policy::delete_via_control(&ep, &host, id, name.as_deref())? {
                        outln!("deleted filter id {id} from host {host}");
                    }
                }
            }
            Ok(())
        }
    }
}

/// The arguments of `wsock host`.
struct HostArgs {
    name: String,
    run: RunArgs,
    for_seconds: Option<u64>,
    control: Option<PathBuf>,
    no_control: bool,
    control_tcp: Option<SocketAddr>,
    token_file: Option<PathBuf>,
}

/// Set by SIGINT/SIGTERM: `wsock host` stops, removing its socket and token files.
static STOP: AtomicBool = AtomicBool::new(false);

/// Turns SIGINT and SIGTERM into [`STOP`] (a thread with a small runtime of its own waits for
/// them), so that `wsock host` exits through its normal path and cleans up.
fn stop_on_signals() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("signal runtime: {e}"))?;
    let (mut int, mut term) = {
        let _g = rt.enter();
        (
            signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?,
            signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?,
        )
    };
    std::thread::Builder::new()
        .name("wsock-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            STOP.store(true, Ordering::SeqCst);
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn run_host(a: HostArgs) -> Result<(), String> {
    stop_on_signals()?;
    let net = start(&a.run, Some(&a.name), false)?;
    let name = &a.name;
    let host = net.host(name).ok_or_else(|| format!("no host {name:?}"))?;
    let w = host.wire_addrs();
    outln!(
        "host {} up: {} / {}, wire udp ike {} natt {} clear {}",
        host.name(),
        host.ipv4(),
        host.ipv6(),
        w.ike,
        w.natt,
        w.clear
    );
    let scenario = net.scenario().name.clone();
    // Dropped last: removes the socket and token files however this function returns.
    let mut cleanup = control::Cleanup::default();
    if !a.no_control {
        let path = match &a.control {
            Some(p) => {
                if p.to_str()
                    .and_then(|t| t.parse::<SocketAddr>().ok())
                    .is_some()
                {
                    return Err(format!(
                        "--control takes a Unix socket path; {} is a TCP address: use --control-tcp ADDR (token-protected)",
                        p.display()
                    ));
                }
                p.clone()
            }
            None => {
                control::ensure_runtime_dir()?;
                control::default_socket_path(&scenario, name)
            }
        };
        control::serve_unix(host.clone(), &path, &mut cleanup)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        outln!("control listening on {}", path.display());
    }
    if let Some(addr) = a.control_tcp.or(host.spec().control) {
        let token_file = match &a.token_file {
            Some(f) => f.clone(),
            None => {
                control::ensure_runtime_dir()?;
                control::default_token_path(&scenario, name)
            }
        };
        let bound = control::serve_tcp(host.clone(), addr, &token_file, &mut cleanup)
            .map_err(|e| format!("control socket {addr}: {e}"))?;
        outln!(
            "control listening on tcp {bound}, token in {}",
            token_file.display()
        );
    }
    let limit = a
        .for_seconds
        .map(Duration::from_secs)
        .unwrap_or(Duration::MAX);
    let started = std::time::Instant::now();
    while started.elapsed() < limit && !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100).min(limit.saturating_sub(started.elapsed())));
        let _ = net.flush_capture();
    }
    print_capture_hint(&net, &a.run);
    drop(cleanup);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = cli
        .log
        .clone()
        .map(tracing_subscriber::EnvFilter::new)
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let r = match cli.command {
        Command::Demo { run, quiet, keylog } => run_demo(&run, quiet, keylog.as_deref()),
        Command::Host {
            name,
            run,
            for_seconds,
            control,
            no_control,
            control_tcp,
            token_file,
        } => run_host(HostArgs {
            name,
            run,
            for_seconds,
            control,
            no_control,
            control_tcp,
            token_file,
        }),
        Command::Show { what } => {
            let args = match &what {
                ShowWhat::Filters(a) | ShowWhat::Events(a) | ShowWhat::Sas(a) => a,
            };
            let ep = match args
                .control
                .endpoint(args.scenario.as_deref(), args.host.as_deref())
            {
                Ok(ep) => ep,
                Err(e) => {
                    eprintln!("wsock: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let src = policy::Source {
                scenario: args.scenario.as_deref(),
                host: args.host.as_deref(),
                control: ep.as_ref(),
            };
            match what {
                ShowWhat::Filters(_) => policy::show_filters(&src, args.json),
                ShowWhat::Events(_) => policy::show_events(&src, args.json),
                ShowWhat::Sas(_) => sas::show_sas(
                    &sas::Source {
                        scenario: src.scenario,
                        host: src.host,
                        control: src.control,
                    },
                    args.json,
                ),
            }
        }
        Command::Filter { action } => filter_command(action),
        Command::Scenario { action } => match action {
            ScenarioAction::Check { file } => Scenario::from_file(&file)
                .map(|s| {
                    outln!(
                        "{}: ok ({} hosts, {} links)",
                        file.display(),
                        s.hosts.len(),
                        s.links.len()
                    )
                })
                .map_err(|e| e.to_string()),
            ScenarioAction::Default => {
                out::text(wsock_stack::scenario::DEFAULT_SCENARIO_TOML);
                Ok(())
            }
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsock: {e}");
            ExitCode::FAILURE
        }
    }
}
