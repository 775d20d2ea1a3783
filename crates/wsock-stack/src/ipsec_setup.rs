//! How the hosts of a network get their IPsec credentials.
//!
//! When every host of the scenario runs in this process, the network makes a certification
//! authority for the scenario at start (rcgen, ECDSA P-256) and a machine certificate for each
//! host (DNS names `<machine>` and `<machine>.<domain>`, lowercase, with the IPsec-IKE EKU);
//! hosts authenticate with RFC 7427 signatures and verify each other with rustls-webpki. A
//! scenario split across processes cannot share a CA made at start, so its hosts use a
//! pre-shared key derived from the scenario's name and seed instead (weaker: anyone with the
//! scenario file has it; documented in docs/windows-differences.md §6).

use std::collections::BTreeMap;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use wsock_ipsec::ike::cert::CertAuth;
use wsock_ipsec::ike::sa::{Identity, Retransmit};
use wsock_ipsec::pki::{CaKey, CertAuthority, Validity};

use crate::core::{IpsecCredential, IpsecSetup, PeerPsk};
use crate::error::{Result, StackError};
use crate::scenario::{HostSpec, Scenario};

/// The IKE identity of a host: ID_FQDN of its machine name, lowercase.
pub fn host_identity(h: &HostSpec) -> Identity {
    Identity::Fqdn(machine_name(h).to_ascii_lowercase())
}

fn machine_name(h: &HostSpec) -> String {
    h.machine
        .clone()
        .unwrap_or_else(|| h.name.to_ascii_uppercase())
}

/// Machine names by lowercase identity (short and with the domain).
fn machines(sc: &Scenario) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for h in &sc.hosts {
        let name = machine_name(h);
        let lc = name.to_ascii_lowercase();
        m.insert(
            format!("{lc}.{}", h.domain.to_ascii_lowercase()),
            name.clone(),
        );
        m.insert(lc, name);
    }
    m
}

/// The setups of the `local` hosts. `epoch`: the wall-clock time of the cores' time zero.
///
/// # Errors
/// [`StackError::Scenario`] when a key or certificate cannot be made.
pub fn setups(
    sc: &Scenario,
    local: &[String],
    keylog: bool,
    epoch: UnixTime,
) -> Result<BTreeMap<String, IpsecSetup>> {
    let all_local = sc.hosts.iter().all(|h| local.contains(&h.name));
    let err = |e: wsock_ipsec::IpsecError| StackError::Scenario(format!("IPsec credentials: {e}"));
    let names = machines(sc);
    let mut out = BTreeMap::new();
    let validity = Validity::starting(
        UnixTime::since_unix_epoch(Duration::from_secs(
            epoch.as_secs().saturating_sub(24 * 3600),
        )),
        Duration::from_secs(2 * 365 * 24 * 3600),
    );
    // A CA made at start: the scenario's `[ca]` (a fresh key when every host is local, else
    // one derived from the scenario), or one for the scenario when every host is local.
    let ca_name = match &sc.ca {
        Some(c) => Some(c.name.clone()),
        None if all_local => Some(format!("wsock scenario {} CA", sc.name)),
        None => None,
    };
    let mut ca = match ca_name {
        Some(n) => {
            // The scenario loader accepts only the key types CaKey names.
            let key = sc
                .ca
                .as_ref()
                .and_then(|c| CaKey::from_name(&c.key_type))
                .unwrap_or_default();
            let ca = if all_local {
                CertAuthority::with_key(&n, validity, key)
            } else {
                // Hosts split across processes: every process derives the same CA key from
                // the scenario's name and the CA's (not the seed, which `--seed` may change
                // per process), so their certificates verify across processes (a lab key:
                // anyone with the scenario file can derive it).
                let seed = format!("wsock-ca:{}:{n}", sc.name);
                CertAuthority::derived(&n, validity, key, seed.as_bytes())
            };
            Some(ca.map_err(err)?)
        }
        None => None,
    };
    for h in sc.hosts.iter().filter(|h| local.contains(&h.name)) {
        let id = host_identity(h);
        let wants_cert = if sc.ca.is_some() {
            sc.wants_certificate(&h.name)
        } else {
            true
        };
        let credential = match ca.as_mut().filter(|_| wants_cert) {
            Some(ca) => {
                let names: Vec<String> = if sc.ca.is_some() {
                    h.certificate_dns_names()
                } else {
                    let lc = machine_name(h).to_ascii_lowercase();
                    vec![
                        lc.clone(),
                        format!("{lc}.{}", h.domain.to_ascii_lowercase()),
                    ]
                };
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let cert = ca.issue_machine(&refs, true, validity).map_err(err)?;
                let auth = CertAuth::new(
                    cert.chain,
                    &cert.key_pkcs8,
                    vec![ca.cert_der().to_vec()],
                    epoch,
                )
                .map_err(err)?;
                IpsecCredential::Certificate { id, cert: auth }
            }
            // A key per peer from `[[host.psk]]`; peers without one share the scenario's key.
            None => IpsecCredential::Psk {
                id,
                key: scenario_psk(sc),
                peers: h
                    .psks
                    .iter()
                    .filter_map(|p| {
                        let peer = sc.hosts.iter().find(|x| x.name == p.peer)?;
                        Some(PeerPsk {
                            id: host_identity(peer),
                            addrs: vec![peer.ipv4.into(), peer.ipv6.into()],
                            key: p.key.as_bytes().to_vec(),
                        })
                    })
                    .collect(),
            },
        };
        let knobs = sc.ipsec_settings(&h.name);
        let mut s = IpsecSetup::new(credential);
        s.retransmit = Retransmit {
            initial: knobs.retransmit_initial,
            max_sends: knobs.retransmit_max.saturating_add(1),
        };
        s.child_lifetime = crate::core::child_lifetime(
            Some(knobs.child_lifetime),
            Some(knobs.child_lifetime_bytes),
        );
        s.ike_lifetime = Some(knobs.mm_lifetime);
        s.replay_window = knobs.replay_window;
        s.failure_delay = knobs.negotiation_timeout;
        s.keylog = keylog;
        s.machines = names.clone();
        // The domain's users with a password, for the user-level authentication.
        s.users = sc
            .hosts
            .iter()
            .flat_map(|h| {
                h.users.iter().filter_map(move |u| {
                    h.password_of(&u.name).map(|pw| {
                        (
                            crate::core::user_identity(&u.name, &h.domain).to_string(),
                            pw.as_bytes().to_vec(),
                        )
                    })
                })
            })
            .collect();
        out.insert(h.name.clone(), s);
    }
    Ok(out)
}

/// The pre-shared key of a scenario split across processes.
fn scenario_psk(sc: &Scenario) -> Vec<u8> {
    let d = ring_like_digest(format!("wsock-psk:{}:{}", sc.name, sc.seed).as_bytes());
    d.to_vec()
}

/// FNV-1a widened to 32 bytes (a key derivation of public inputs: the point is agreement
/// between processes, not secrecy).
fn ring_like_digest(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (i as u64);
        for b in data {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_be_bytes());
    }
    out
}
