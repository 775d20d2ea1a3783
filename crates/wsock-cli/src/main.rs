//! # wsock-cli: the `wsock` command (layer 4)
//!
//! The top of the wsock architecture (see `docs/architecture.md`): runs the demo on the embedded
//! default scenario, runs one host of a scenario as a process (`wsock host`), and checks
//! scenario files. Logging follows `RUST_LOG` (or `--log`), e.g. `RUST_LOG=wsock=debug`.

mod demo;
mod services;
mod trace_hook;

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
    },
    /// Scenario files.
    Scenario {
        #[command(subcommand)]
        action: ScenarioAction,
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
        } => start(&run, Some(&name)).and_then(|net| {
            let host = net.host(&name).ok_or_else(|| format!("no host {name:?}"))?;
            services::start(&host).map_err(|e| e.to_string())?;
            println!(
                "host {} up: {} / {}, wire udp {}",
                host.name(),
                host.ipv4(),
                host.ipv6(),
                host.wire_addr()
            );
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
