//! # wsock-cli: the `wsock` command (layer 4)
//!
//! The top of the wsock architecture (see `docs/architecture.md`). Commands:
//!
//! - `wsock demo [--scenario FILE] [--capture PCAP] [--seed N] [--quiet]`: a TCP echo and a UDP
//!   exchange between two hosts of the (embedded default) scenario, printing each layer.
//! - `wsock host NAME [--scenario FILE] [--control ADDR] [--for-seconds N]`: runs one host and
//!   its services in this process; with a control address (`--control`, or the host's `control`
//!   in the scenario; loopback only, port 0 picks one) it serves the JSON-lines control socket
//!   (see `control.rs`) and prints `control listening on ADDR`.
//! - `wsock show filters|events [--scenario FILE] [--host NAME] [--json] [--control ADDR]`: the
//!   WFP filters (id, layer, action, weight, name, conditions) or net events, as a table in the
//!   spirit of `netsh wfp show filters/state` or as JSON (`[{"host":..,"filters":[..]}]`). From a
//!   scenario file: its static filters (a file has no events); with `--control`: a running host's.
//! - `wsock filter add --host NAME (--scenario FILE | --control ADDR) --layer L --action A --name N
//!   [--condition FIELD:MATCH:VALUE ..] [--weight W] [--sublayer S] [--description D]`: adds a
//!   filter to a scenario file (a validated `[[host.filter]]`, the rest of the file untouched) or
//!   to a running host (prints the new id).
//! - `wsock filter delete --host NAME (--scenario FILE | --control ADDR) (--id ID | --name N)`.
//! - `wsock scenario check FILE`, `wsock scenario default`.
//!
//! Errors name the file and line, and for policy the `FWP_E_*` reason and HRESULT. Logging
//! follows `RUST_LOG` (or `--log`), e.g. `RUST_LOG=wsock=debug`.

mod control;
mod demo;
mod policy;
mod trace_hook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
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
    /// Runs a TCP echo and a UDP exchange between two hosts, printing each layer.
    Demo {
        #[command(flatten)]
        run: RunArgs,
        /// Do not print each packet.
        #[arg(long)]
        quiet: bool,
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
        /// Serve the control socket here (loopback; port 0 picks one). Default: the host's
        /// `control` in the scenario, else none.
        #[arg(long)]
        control: Option<SocketAddr>,
    },
    /// Shows WFP state: filters or net events.
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

#[derive(clap::Args)]
struct ShowArgs {
    /// Scenario file (TOML); the embedded default scenario when absent.
    #[arg(long, conflicts_with = "control")]
    scenario: Option<PathBuf>,
    /// Only this host.
    #[arg(long)]
    host: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Ask a running `wsock host` at this control address instead of reading a file.
    #[arg(long)]
    control: Option<String>,
}

#[derive(Subcommand)]
enum ShowWhat {
    /// The filters (id, layer, action, weight, name, conditions).
    Filters(ShowArgs),
    /// The net events (drops with the filter that caused them).
    Events(ShowArgs),
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Target {
    /// Edit this scenario file.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Talk to a running `wsock host` at this control address.
    #[arg(long)]
    control: Option<String>,
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
        /// Exact weight (number), `auto`, or `range:N`.
        #[arg(long)]
        weight: Option<String>,
        /// Sublayer (built-in name, GUID or a scenario sublayer's name).
        #[arg(long)]
        sublayer: Option<String>,
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

fn start(run: &RunArgs, local: Option<&str>) -> Result<Network, String> {
    let sc = load(run)?;
    let mut b = Network::builder(sc);
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
        println!("capture written to {}; dissect it with:", c.display());
        println!(
            "  tshark -r {} {}",
            c.display(),
            net.decode_as_args().join(" ")
        );
    }
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
            description,
        } => {
            let spec = wsock_stack::wsock_wfp::FilterSpec {
                name: name.clone(),
                description: description.unwrap_or_default(),
                layer,
                sublayer,
                action,
                weight: weight.as_deref().map(policy::parse_weight),
                conditions: conditions
                    .iter()
                    .map(|c| policy::parse_condition(c))
                    .collect::<Result<_, _>>()?,
                ..Default::default()
            };
            match (&target.scenario, &target.control) {
                (Some(file), _) => {
                    policy::add_to_file(file, &host, &spec)?;
                    println!("added filter {name:?} to host {host} in {}", file.display());
                }
                (None, Some(addr)) => {
                    let id = policy::add_via_control(addr, &host, &spec)?;
                    println!("added filter id {id} ({name:?}) to host {host}");
                }
                (None, None) => return Err("give --scenario FILE or --control ADDR".into()),
            }
            Ok(())
        }
        FilterAction::Delete {
            host,
            target,
            id,
            name,
        } => {
            match (&target.scenario, &target.control) {
                (Some(file), _) => {
                    let names = policy::delete_from_file(file, &host, id, name.as_deref())?;
                    for n in names {
                        println!(
                            "deleted filter {n:?} from host {host} in {}",
                            file.display()
                        );
                    }
                }
                (None, Some(addr)) => {
                    for id in policy::delete_via_control(addr, &host, id, name.as_deref())? {
                        println!("deleted filter id {id} from host {host}");
                    }
                }
                (None, None) => return Err("give --scenario FILE or --control ADDR".into()),
            }
            Ok(())
        }
    }
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
        Command::Demo { run, quiet } => start(&run, None).and_then(|net| {
            let r = demo::run(&net, !quiet);
            print_capture_hint(&net, &run);
            r
        }),
        Command::Host {
            name,
            run,
            for_seconds,
            control,
        } => start(&run, Some(&name)).and_then(|net| {
            let host = net.host(&name).ok_or_else(|| format!("no host {name:?}"))?;
            println!(
                "host {} up: {} / {}, wire udp {}",
                host.name(),
                host.ipv4(),
                host.ipv6(),
                host.wire_addr()
            );
            if let Some(addr) = control.or(host.spec().control) {
                let bound = control::serve(host.clone(), addr)
                    .map_err(|e| format!("control socket {addr}: {e}"))?;
                println!("control listening on {bound}");
            }
            let limit = for_seconds
                .map(Duration::from_secs)
                .unwrap_or(Duration::MAX);
            let started = std::time::Instant::now();
            while started.elapsed() < limit {
                std::thread::sleep(
                    Duration::from_millis(200).min(limit.saturating_sub(started.elapsed())),
                );
                let _ = net.flush_capture();
            }
            print_capture_hint(&net, &run);
            Ok(())
        }),
        Command::Show { what } => {
            let (args, filters) = match &what {
                ShowWhat::Filters(a) => (a, true),
                ShowWhat::Events(a) => (a, false),
            };
            let src = policy::Source {
                scenario: args.scenario.as_deref(),
                host: args.host.as_deref(),
                control: args.control.as_deref(),
            };
            if filters {
                policy::show_filters(&src, args.json)
            } else {
                policy::show_events(&src, args.json)
            }
        }
        Command::Filter { action } => filter_command(action),
        Command::Scenario { action } => match action {
            ScenarioAction::Check { file } => Scenario::from_file(&file)
                .map(|s| {
                    println!(
                        "{}: ok ({} hosts, {} links)",
                        file.display(),
                        s.hosts.len(),
                        s.links.len()
                    )
                })
                .map_err(|e| e.to_string()),
            ScenarioAction::Default => {
                print!("{}", wsock_stack::scenario::DEFAULT_SCENARIO_TOML);
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
