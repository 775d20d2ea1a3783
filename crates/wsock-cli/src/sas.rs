//! `wsock show sas`: the IPsec SA databases (IKE "main mode" SAs and child "quick mode" SAs).
//!
//! From a running `wsock host` (`--control` / `--control-tcp`): its SA database as it is now.
//! From a scenario (a file, or the embedded default): a scenario file holds policy, not SAs,
//! which exist only once hosts negotiate. So the command starts the scenario's hosts in this
//! process and runs one small secure exchange (a TCP connect with
//! `SOCKET_SETTINGS_GUARANTEE_ENCRYPTION` and the peer's target name, a few echoed bytes) from
//! the first host to each other host, then shows the SAs that negotiated: what this scenario's
//! hosts agree on (suite, mode, identities). Showing an empty table instead would tell nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use wsock::{Family, Host, Network, Scenario};
use wsock_stack::core::SETTINGS_GUARANTEE_ENCRYPTION;
use wsock_stack::SecuritySettings;

use crate::control;
use crate::policy::{print_json, print_table, s};

/// Where `show sas` reads from.
pub struct Source<'a> {
    /// Scenario file (`None` = the embedded default), used without `control`.
    pub scenario: Option<&'a std::path::Path>,
    /// Only this host.
    pub host: Option<&'a str>,
    /// A running host's control socket.
    pub control: Option<&'a control::Endpoint>,
}

/// How long one negotiation and echo of the scenario exchange may take.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(60);

const SCENARIO_NOTE: &str =
    "negotiated for this command: a secure TCP exchange from the first host to each other host";

/// The SAs as `[{"host": .., "sas": {"ike": [..], "child": [..]}}]`.
fn sas_json(src: &Source) -> Result<Value, String> {
    if let Some(ep) = src.control {
        let mut req = json!({ "op": "show_sas" });
        if let Some(h) = src.host {
            req["host"] = json!(h);
        }
        let v = control::request(ep, &req)?;
        return Ok(json!([{ "host": v["host"], "sas": v["sas"] }]));
    }
    let sc = match src.scenario {
        Some(p) => Scenario::from_file(p).map_err(|e| e.to_string())?,
        None => Scenario::default_scenario(),
    };
    if let Some(h) = src.host {
        if !sc.hosts.iter().any(|x| x.name == h) {
            return Err(format!("no host {h:?} in the scenario"));
        }
    }
    let net = Network::start(sc).map_err(|e| e.to_string())?;
    exchange(&net)?;
    let out: Vec<Value> = net
        .hosts()
        .into_iter()
        .filter(|h| src.host.is_none_or(|n| h.name() == n))
        .map(|h| {
            json!({
                "host": h.name(),
                "sas": h.security_associations(),
                "note": SCENARIO_NOTE,
            })
        })
        .collect();
    Ok(Value::Array(out))
}

/// The machine name a host's SPN names.
fn machine_of(h: &Host) -> String {
    h.spec()
        .machine
        .clone()
        .unwrap_or_else(|| h.name().to_ascii_uppercase())
}

/// A secure TCP exchange from the first host to each other host (see the module docs).
fn exchange(net: &Network) -> Result<(), String> {
    let hosts = net.hosts();
    let Some((first, others)) = hosts.split_first() else {
        return Err("the scenario has no hosts".into());
    };
    let rt = net.runtime().map_err(|e| e.to_string())?;
    for peer in others {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "secure exchange {} -> {}: {what}: {e}",
                first.name(),
                peer.name()
            )
        };
        let settings = SecuritySettings {
            protocol: 0,
            flags: SETTINGS_GUARANTEE_ENCRYPTION,
            ..SecuritySettings::default()
        };
        let l = peer.tcp(Family::V4);
        l.set_security(Some(settings.clone()))
            .map_err(|e| fail("set security (listener)", &e))?;
        l.bind(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            0,
        ))
        .map_err(|e| fail("bind", &e))?;
        l.listen(1).map_err(|e| fail("listen", &e))?;
        let port = l
            .local_addr()
            .map_err(|e| fail("local address", &e))?
            .port();
        let to = SocketAddr::new(IpAddr::V4(peer.ipv4()), port);
        let spn = format!("host/{}", machine_of(peer));
        let r: Result<(), String> = rt.block_on(async {
            let c = first.tcp(Family::V4);
            c.set_security(Some(settings))
                .map_err(|e| fail("set security", &e))?;
            c.set_peer_target_name(to.ip(), &spn)
                .map_err(|e| fail("set peer target name", &e))?;
            tokio::time::timeout(EXCHANGE_LIMIT, c.connect(to))
                .await
                .map_err(|e| fail("connect", &e))?
                .map_err(|e| fail("connect", &e))?;
            let (a, _) = tokio::time::timeout(EXCHANGE_LIMIT, l.accept())
                .await
                .map_err(|e| fail("accept", &e))?
                .map_err(|e| fail("accept", &e))?;
            c.send(b"sas").await.map_err(|e| fail("send", &e))?;
            let mut buf = [0u8; 8];
            let n = tokio::time::timeout(EXCHANGE_LIMIT, a.recv(&mut buf))
                .await
                .map_err(|e| fail("recv", &e))?
                .map_err(|e| fail("recv", &e))?;
            if &buf[..n] != b"sas" {
                return Err(fail("recv", &"wrong bytes"));
            }
            let _ = c.close();
            let _ = a.close();
            Ok(())
        });
        let _ = l.close();
        r?;
    }
    Ok(())
}

/// `wsock show sas`.
///
/// # Errors
/// The control request's or the scenario run's failure.
pub fn show_sas(src: &Source, as_json: bool) -> Result<(), String> {
    let v = sas_json(src)?;
    if as_json {
        print_json(v);
        return Ok(());
    }
    for h in v.as_array().into_iter().flatten() {
        let ike = h["sas"]["ike"].as_array().cloned().unwrap_or_default();
        let child = h["sas"]["child"].as_array().cloned().unwrap_or_default();
        outln!(
            "host {}: {} main mode (IKE) SA(s), {} quick mode (child) SA(s)",
            s(&h["host"]),
            ike.len(),
            child.len()
        );
        if let Some(note) = h["note"].as_str() {
            outln!("  ({note})");
        }
        if !ike.is_empty() {
            let rows: Vec<Vec<String>> = ike
                .iter()
                .map(|m| {
                    vec![
                        s(&m["mm_sa_id"]),
                        s(&m["role"]),
                        s(&m["state"]),
                        s(&m["peer_wire"]),
                        m["peer_id"]
                            .as_str()
                            .unwrap_or("(unauthenticated)")
                            .to_string(),
                        format!("{}/{}", s(&m["spi_i"]), s(&m["spi_r"])),
                    ]
                })
                .collect();
            print_table(
                &["MM SA", "ROLE", "STATE", "PEER", "PEER ID", "SPI I/R"],
                &rows,
            );
        }
        if !child.is_empty() {
            if !ike.is_empty() {
                outln!();
            }
            let rows: Vec<Vec<String>> = child
                .iter()
                .map(|q| {
                    let spi = |k: &str| {
                        q[k].as_u64()
                            .map(|v| format!("{v:#010x}"))
                            .unwrap_or_else(|| s(&q[k]))
                    };
                    vec![
                        s(&q["qm_sa_id"]),
                        s(&q["mm_sa_id"]),
                        s(&q["peer"]),
                        spi("inbound_spi"),
                        spi("outbound_spi"),
                        s(&q["suite"]),
                        s(&q["mode"]),
                        if q["encrypted"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_string(),
                        format!("{}/{}", s(&q["out_packets"]), s(&q["out_bytes"])),
                        format!("{}/{}", s(&q["in_packets"]), s(&q["in_bytes"])),
                    ]
                })
                .collect();
            print_table(
                &[
                    "QM SA",
                    "MM SA",
                    "PEER",
                    "SPI IN",
                    "SPI OUT",
                    "SUITE",
                    "MODE",
                    "ENCRYPTED",
                    "OUT PKTS/B",
                    "IN PKTS/B",
                ],
                &rows,
            );
        }
    }
    Ok(())
}
