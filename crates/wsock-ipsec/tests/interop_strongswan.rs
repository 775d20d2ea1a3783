//! Interop with strongSwan's charon, an IKEv2 implementation nobody on this project wrote.
//!
//! Each test runs in a network namespace of its own: the test binary re-executes itself (just
//! that test) under `unshare --net --mount`, with a private tmpfs on `/run` (charon's pidfile
//! path is compiled in) and only `lo` up. Inside, charon listens on 127.0.0.1 ports 10500 (IKE)
//! and 14500 (NAT-T), with kernel-libipsec as its ESP data plane (userspace ESP on a TUN
//! device: tunnel mode only, always UDP-encapsulated) and the inner address 10.99.1.1 on `lo`.
//! Our [`IkeEndpoint`] binds 127.0.0.2 ports 500 and 4500 with real UDP sockets, driven by a
//! small loop (time from an [`Instant`]); our inner address is 10.99.1.2, which exists only in
//! our own tunnel-mode ESP code.
//!
//! What each test proves (the lab, a scenario function and charon's log are in each test's
//! output; on failure the whole charon log is printed):
//! - `our_initiator_psk_with_tunnel_traffic`: our initiator, PSK; the tunnel-mode child SA
//!   carries ICMP echoes we send to charon's kernel and UDP datagrams a client on charon's side
//!   sends to us (answered by us), charon's packet counters agree, then our Delete takes the
//!   IKE SA down on both sides.
//! - `our_initiator_ecdsa_certificates`: our initiator, ECDSA certificates from our own
//!   [`CertAuthority`] (charon gets the CA and its certificate and key in its swanctl
//!   directories), RFC 7427 signatures both ways, traffic both ways.
//! - `charon_initiator_our_responder`: `swanctl --initiate` against our responder (PSK), traffic
//!   both ways, then charon's Delete.
//! - `charon_initiator_with_default_proposals`: charon's default proposal lists.
//! - `charon_initiator_ecdsa_certificates_rfc4754`: charon initiates with certificates and RFC
//!   7427 off; both sides sign with RFC 4754 method 9.
//! - `child_deletes_replays_and_rfc7427_responder`: certificates with charon initiating (our
//!   responder's method 14 AUTH), charon's ESP replayed and corrupted (13913, 13915), child SA
//!   deletes both ways, CREATE_CHILD_SA from the original responder.
//! - `certificate_chains_through_issuing_cas`: each side's certificate comes from a different
//!   issuing CA under a common root; both chains are sent and built.
//! - `charon_with_a_distinguished_name_identity`: charon's IDr is its certificate's subject DN.
//! - `charon_childless_ike_sa_then_create_child`: RFC 6023 childless IKE_AUTH from charon, then
//!   CREATE_CHILD_SA.
//! - `charon_initiator_wide_selectors_narrowed`: charon offers subnets, we narrow them.
//! - `lifetimes_drive_rekeys_on_both_sides_under_traffic`: our ESP soft lifetimes and charon's
//!   IKE SA lifetime trigger the rekeys during 7 s of traffic; nothing lost.
//! - `child_rekeys_under_traffic_lose_nothing`: 400 UDP datagrams from charon's side while
//!   the child SA is rekeyed six times by either side; none lost ([`ChildSa::send_at_once`]).
//! - `rekeys_and_liveness_both_ways`: child SA rekeys with PFS and IKE SA rekeys initiated by
//!   either side, liveness checks both ways (charon's DPD), traffic after each step.
//! - `child_rekey_colliding_with_charon_ike_rekey`: charon's TEMPORARY_FAILURE, our retry.
//! - `simultaneous_child_rekey_with_charon`, `simultaneous_ike_rekey_with_charon`: both sides
//!   rekey at once (our request held until charon's arrives); one SA left, the same on both.
//! - `algorithm_matrix_our_initiator`: ChaCha20-Poly1305, AES-GCM-128 with PRF-SHA384 and
//!   P-384, AES-CBC with HMAC-SHA256 and with HMAC-SHA1/PRF-SHA1, NULL with HMAC-SHA256, and
//!   Windows' default policy (AES-CBC-128/SHA-1/P-256, integrity-only ESP with HMAC-SHA1).
//! - `cookies_and_invalid_ke_both_ways`: COOKIE and INVALID_KE_PAYLOAD, each side asking.
//! - `initial_contact_both_ways`: INITIAL_CONTACT after charon restarts and after we do.
//! - `wrong_psk_and_wrong_target_fail_13801`: authentication failures on either side.
//! - `rfc4739_user_password_our_initiator`, `rfc4739_user_password_charon_initiator`: RFC 4739
//!   multiple authentication both ways: the machine by PSK, then the user `alice@wsock` by her
//!   password (shared-key MIC); our responder reports her as the peer's user.
//! - `transport_mode_child_refused_by_libipsec_ike_sa_stays`: transport mode (libipsec cannot).
//! - `ipv6_outer_and_inner_with_charon`: IPv6 outside and inside the tunnel.
//! - `tshark_decrypts_a_live_exchange_with_charon`: a live capture decrypted by tshark with our
//!   logged keys (also skips when tshark/dumpcap or the oracle script is absent).
//!
//! Skips (passing, with a printed reason) when not root, when charon, its kernel-libipsec, gcm
//! or openssl plugin, swanctl, unshare, setpriv, python3 or `/dev/net/tun` is missing, or when
//! network namespaces cannot be made. `.ci/run` installs the Debian packages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wsock_ipsec::esp::tunnel::{
    ipv4_packet, ipv6_packet, InnerPacket, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_UDP,
};
use wsock_ipsec::esp::{EspSuite, InboundSa, Lifetime, LifetimeLimits, Mode, OutboundSa, SaEvent};
use wsock_ipsec::ike::cert::CertAuth;
use wsock_ipsec::ike::crypto::{DhGroup, Role};
use wsock_ipsec::ike::proposal::IkeSuite;
use wsock_ipsec::ike::sa::*;
use wsock_ipsec::ike::wire::{ExchangeType, Message};
use wsock_ipsec::natt::{self, NattDatagram};
use wsock_ipsec::pki::{CertAuthority, Validity};
use wsock_ipsec::IpsecError;

const INNER_ENV: &str = "WSOCK_STRONGSWAN_INNER";
const CHARON: &str = "/usr/lib/ipsec/charon";
const PSK: &str = "wsock-interop-psk-0123456789abcdef";
/// The password of the user `alice@wsock` (RFC 4739 second authentication, shared-key MIC).
const ALICE_PASSWORD: &str = "alice's interop password";
const CHARON_INNER: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
const OUR_INNER: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 2);
const CHARON_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CHARON_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
const OUR_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 2);
const CHARON_INNER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1);
const OUR_INNER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2);
/// How long one scenario may take inside its namespace before it fails.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

fn charon_ike() -> SocketAddr {
    SocketAddr::new(CHARON_IP.into(), 10500)
}
fn charon_natt() -> SocketAddr {
    SocketAddr::new(CHARON_IP.into(), 14500)
}

// ---------------------------------------------------------------------------------------------
// Namespace plumbing
// ---------------------------------------------------------------------------------------------

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (network namespaces, TUN device)".into());
    }
    if !Path::new(CHARON).exists() {
        return Some(format!(
            "{CHARON} not found (apt-get install strongswan-charon libcharon-extra-plugins \
             libstrongswan-standard-plugins)"
        ));
    }
    for plugin in ["kernel-libipsec", "gcm", "openssl"] {
        let so = format!("/usr/lib/ipsec/plugins/libstrongswan-{plugin}.so");
        if !Path::new(&so).exists() {
            return Some(format!(
                "{so} not found (apt-get install libcharon-extra-plugins \
                 libstrongswan-standard-plugins)"
            ));
        }
    }
    for tool in ["swanctl", "unshare", "setpriv", "ip", "mount", "python3"] {
        if !on_path(tool) {
            return Some(format!("`{tool}` not found"));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is absent (kernel-libipsec needs a TUN device)".into());
    }
    let ns = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status();
    if !ns.is_ok_and(|s| s.success()) {
        return Some("cannot create network/mount namespaces (unshare failed)".into());
    }
    None
}

/// Runs `scenario` in a fresh network namespace (re-executing this test there), or, when this
/// process is already that re-execution, runs it here.
fn in_namespace(name: &str, charon_extra: &str, scenario: fn(&mut Lab)) {
    if std::env::var(INNER_ENV).as_deref() == Ok(name) {
        let mut lab = Lab::start(name, charon_extra);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&mut lab)));
        if result.is_err() {
            lab.dump();
        } else {
            lab.dump_exchanges();
        }
        drop(lab);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        println!("STRONGSWAN INTEROP OK: {name}");
        return;
    }
    if let Some(why) = missing_prerequisite() {
        println!("SKIPPED: strongSwan interop ({name}): {why}");
        return;
    }
    let exe = std::env::current_exe().expect("test executable path");
    let script = format!(
        "mount -t tmpfs tmpfs /run && ip link set lo up && \
         ip addr add {CHARON_INNER}/32 dev lo && \
         ip -6 addr add {CHARON_IP6}/128 dev lo nodad && \
         ip -6 addr add {OUR_IP6}/128 dev lo nodad && \
         ip -6 addr add {CHARON_INNER6}/128 dev lo nodad && exec \"$@\""
    );
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .args(["sh", "-c", &script, "sh"])
        .arg(exe)
        .args([
            name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(INNER_ENV, name)
        .output()
        .expect("run the test in a namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- namespace run of {name} ---\n{stdout}");
    println!("{stderr}");
    // The panic message comes last so that a log cut in the middle still shows it.
    let reason = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "{name} failed in its namespace:\n{reason}"
    );
    assert!(
        stdout.contains(&format!("STRONGSWAN INTEROP OK: {name}")),
        "{name} did not run in its namespace"
    );
}

// ---------------------------------------------------------------------------------------------
// charon
// ---------------------------------------------------------------------------------------------

/// A process's stdout and stderr, without swanctl's complaints about plugins that Debian does
/// not ship (it reads the system strongswan.conf).
fn without_plugin_noise(out: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    for l in String::from_utf8_lossy(&out.stderr).lines() {
        if !l.starts_with("plugin '") {
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}
// ---------------------------------------------------------------------------------------------

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for c in der.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                text.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// charon with the lab's strongswan.conf, killed if this thread goes away.
fn spawn_charon(dir: &Path) -> Child {
    let stdout = std::fs::File::create(dir.join("charon.stdout")).unwrap();
    Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(CHARON)
        .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
        .stdout(stdout.try_clone().unwrap())
        .stderr(stdout)
        .spawn()
        .expect("start charon")
}

/// Our credential from `c`, trusting its root, at the system clock.
fn cert_auth(c: &OurCert) -> CertAuth {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    CertAuth::new(
        c.chain.clone(),
        &c.key,
        vec![c.ca.clone()],
        rustls_pki_types::UnixTime::since_unix_epoch(epoch),
    )
    .unwrap()
}

/// Our side's credential for the certificate scenario.
struct OurCert {
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

/// charon running in this namespace, with its files in a temporary directory.
struct Lab {
    dir: PathBuf,
    charon: Child,
    our_cert: OurCert,
    /// Ours from an issuing CA under the root (chain: ours, the issuing CA's).
    our_im_cert: OurCert,
}

impl Lab {
    /// Starts charon with the lab's configuration; `charon_extra` goes into its `charon {}`
    /// section.
    fn start(name: &str, charon_extra: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("wsock-ss-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["swanctl/x509", "swanctl/x509ca", "swanctl/pkcs8"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // PKI from our own module: charon trusts the CA and holds a.lab; we hold b.lab.
        let mut ca = CertAuthority::new("wsock interop CA", Validity::default()).unwrap();
        let charon_cert = ca
            .issue_machine(&["a.lab"], true, Validity::default())
            .unwrap();
        let ours = ca
            .issue_machine(&["b.lab", "c.lab"], true, Validity::default())
            .unwrap();
        // Two issuing CAs under the root: charon's certificate for `im` comes from one (which
        // charon holds), ours from the other (which only our CERT payloads carry).
        let mut issuing_a = ca
            .issue_intermediate("wsock issuing CA A", Validity::default())
            .unwrap();
        let mut issuing_b = ca
            .issue_intermediate("wsock issuing CA B", Validity::default())
            .unwrap();
        let charon_im = issuing_a
            .issue_machine(&["a2.lab"], false, Validity::default())
            .unwrap();
        let ours_im = issuing_b
            .issue_machine(&["im.b.lab"], false, Validity::default())
            .unwrap();
        let write = |rel: &str, text: &str| std::fs::write(dir.join(rel), text).unwrap();
        write("swanctl/x509ca/ca.crt", &pem("CERTIFICATE", ca.cert_der()));
        write(
            "swanctl/x509ca/issuing-a.crt",
            &pem("CERTIFICATE", issuing_a.cert_der()),
        );
        write(
            "swanctl/x509/a2.crt",
            &pem("CERTIFICATE", &charon_im.chain[0]),
        );
        write(
            "swanctl/pkcs8/a2.key",
            &pem("PRIVATE KEY", &charon_im.key_pkcs8),
        );
        write(
            "swanctl/x509/a.crt",
            &pem("CERTIFICATE", &charon_cert.chain[0]),
        );
        write(
            "swanctl/pkcs8/a.key",
            &pem("PRIVATE KEY", &charon_cert.key_pkcs8),
        );
        let d = dir.display();
        write(
            "strongswan.conf",
            &format!(
                r#"charon {{
  port = 10500
  port_nat_t = 14500
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints gcm aes sha1 sha2 hmac kdf kernel-libipsec kernel-netlink socket-default vici
  retransmit_tries = 3
  {charon_extra}
  plugins {{
    vici {{ socket = unix://{d}/charon.vici }}
  }}
  filelog {{
    lab {{
      path = {d}/charon.log
      time_format = %H:%M:%S
      flush_line = yes
      append = no
      default = 1
      ike = 2
      cfg = 1
      enc = 1
      esp = 2
    }}
  }}
  syslog {{ daemon {{ default = -1 }} auth {{ default = -1 }} }}
}}
"#
            ),
        );
        let matrix = matrix_conns();
        let matrix_ids: String = (0..self::matrix().len())
            .map(|i| format!("    id-m{i} = m{i}.b.lab\n"))
            .collect();
        write(
            "swanctl/swanctl.conf",
            &format!(
                r#"connections {{
  psk {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519, aes128gcm16-prfsha256-ecp256
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = psk.b.lab
    }}
    children {{
      psk-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16, aes256gcm16
      }}
    }}
  }}
  cert {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519, aes128gcm16-prfsha256-ecp256
    encap = yes
    local {{
      auth = pubkey
      certs = a.crt
      id = a.lab
    }}
    remote {{
      auth = pubkey
      id = b.lab
    }}
    children {{
      cert-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  rekey {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    dpd_delay = 1s
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = rekey.b.lab
    }}
    children {{
      rekey-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16-x25519
      }}
    }}
  }}
  to-wsock-cert {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-ecp256
    encap = yes
    local {{
      auth = pubkey
      certs = a.crt
      id = a.lab
    }}
    remote {{
      auth = pubkey
      id = c.lab
    }}
    children {{
      to-wsock-cert-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes256gcm16
      }}
    }}
  }}
{matrix}
  ke {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256-sha256-prfsha384-ecp384
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = ke.b.lab
    }}
    children {{
      ke-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  to-wsock-ke {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519-ecp384
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = c.wsock
    }}
    children {{
      to-wsock-ke-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  v6 {{
    version = 2
    local_addrs = {CHARON_IP6}
    remote_addrs = {OUR_IP6}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = v6.b.lab
    }}
    children {{
      v6-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER6}/128
        remote_ts = {OUR_INNER6}/128
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  tp {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = tp.b.lab
    }}
    children {{
      tp-transport {{
        mode = transport
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  to-wsock-wide {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = c.wsock
    }}
    children {{
      to-wsock-wide-tunnel {{
        mode = tunnel
        local_ts = 10.99.1.0/24
        remote_ts = 10.99.1.0/24
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  life {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    rekey_time = 4s
    over_time = 10s
    rand_time = 0s
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = life.b.lab
    }}
    children {{
      life-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
        rekey_time = 3s
        life_time = 20s
        rand_time = 0s
      }}
    }}
  }}
  dn {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = pubkey
      certs = a.crt
    }}
    remote {{
      auth = pubkey
      id = c.lab
    }}
    children {{
      dn-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  im {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = pubkey
      certs = a2.crt
      id = a2.lab
    }}
    remote {{
      auth = pubkey
      id = im.b.lab
    }}
    children {{
      im-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  to-wsock-default {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = default
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = c.wsock
    }}
    children {{
      to-wsock-default-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = default
      }}
    }}
  }}
  to-wsock {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = c.wsock
    }}
    children {{
      to-wsock-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  user {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote-1 {{
      auth = psk
      id = user.b.lab
    }}
    remote-2 {{
      auth = psk
      id = alice@wsock
    }}
    children {{
      user-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
  from-user {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = aes256gcm16-prfsha256-x25519
    encap = yes
    local-1 {{
      auth = psk
      id = ua.lab
    }}
    local-2 {{
      auth = psk
      id = alice@wsock
    }}
    remote {{
      auth = psk
      id = u.wsock
    }}
    children {{
      from-user-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = aes128gcm16
      }}
    }}
  }}
}}
secrets {{
  ike-alice {{
    id-1 = alice@wsock
    id-2 = a.lab
    id-3 = u.wsock
    secret = "{ALICE_PASSWORD}"
  }}
  ike-wsock {{
    id-1 = a.lab
    id-2 = psk.b.lab
    id-3 = c.wsock
    id-4 = rekey.b.lab
    id-5 = ke.b.lab
    id-6 = v6.b.lab
    id-7 = tp.b.lab
    id-8 = life.b.lab
    id-9 = user.b.lab
    id-10 = ua.lab
    id-11 = u.wsock
{matrix_ids}
    secret = "{PSK}"
  }}
}}
"#
            ),
        );
        let charon = spawn_charon(&dir);
        let mut lab = Lab {
            dir,
            charon,
            our_cert: OurCert {
                chain: ours.chain,
                key: ours.key_pkcs8,
                ca: ca.cert_der().to_vec(),
            },
            our_im_cert: OurCert {
                chain: ours_im.chain,
                key: ours_im.key_pkcs8,
                ca: ca.cert_der().to_vec(),
            },
        };
        lab.load();
        lab
    }

    /// Waits for charon's vici socket and loads the configuration.
    fn load(&mut self) {
        let vici = self.dir.join("charon.vici");
        let t0 = Instant::now();
        while !vici.exists() {
            if t0.elapsed() > Duration::from_secs(10) || self.charon.try_wait().unwrap().is_some() {
                self.dump();
                panic!("charon did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.swanctl(&["--load-all", "--noprompt"]);
        assert!(
            out.contains("loaded connection 'to-wsock'") && out.contains("loaded ike secret"),
            "swanctl --load-all: {out}"
        );
    }

    /// charon crashes and starts again: every SA it had is forgotten.
    fn restart(&mut self) {
        let _ = self.charon.kill();
        let _ = self.charon.wait();
        let _ = std::fs::remove_file(self.dir.join("charon.vici"));
        let _ = std::fs::remove_file("/run/charon.pid");
        let log = std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default();
        std::fs::write(self.dir.join("charon.log.1"), log).unwrap();
        self.charon = spawn_charon(&self.dir);
        self.load();
    }

    fn swanctl_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("swanctl");
        c.args(args)
            .arg("--uri")
            .arg(format!("unix://{}", self.dir.join("charon.vici").display()))
            .env("SWANCTL_DIR", self.dir.join("swanctl"));
        c
    }

    /// Runs swanctl to completion (only for commands that need nothing from our side).
    fn swanctl(&self, args: &[&str]) -> String {
        let out = self.swanctl_command(args).output().expect("run swanctl");
        without_plugin_noise(&out)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    fn dump(&self) {
        println!("--- charon.log ---\n{}", self.log());
        let stdout = std::fs::read_to_string(self.dir.join("charon.stdout")).unwrap_or_default();
        println!("--- charon stdout ---\n{stdout}");
    }

    /// The exchanges as charon logged them (message contents, authentication, SAs).
    fn dump_exchanges(&self) {
        println!("--- charon.log (exchanges) ---");
        for l in self.log().lines() {
            if ["[ENC]", "[IKE]", "selected proposal"]
                .iter()
                .any(|k| l.contains(k))
                && !l.contains("state change")
            {
                println!("{l}");
            }
        }
    }

    fn our_cert_auth(&self) -> CertAuth {
        cert_auth(&self.our_cert)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.charon.kill();
        let _ = self.charon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Our side: the endpoint on real sockets, and the tunnel-mode ESP data path
// ---------------------------------------------------------------------------------------------

struct ChildPair {
    sa: ChildSa,
    rx: InboundSa,
    tx: OutboundSa,
    /// Whether we send on it ([`ChildSa::send_at_once`], else from the first packet it brings
    /// or the deletion of the pair it replaces).
    sending: bool,
}

struct Driver {
    ep: IkeEndpoint,
    ike: UdpSocket,
    natt: UdpSocket,
    start: Instant,
    events: Vec<IkeEvent>,
    children: Vec<ChildPair>,
    /// Inner packets that arrived through ESP and that the driver did not answer itself.
    received: Vec<Vec<u8>>,
    /// UDP datagrams to port 7 we echoed back through the tunnel.
    udp_echoed: usize,
    /// ESP packets we could not open or whose inner packet broke the child SA's selectors.
    esp_refused: Vec<String>,
    /// Whether a failed negotiation is what the scenario expects (else it panics).
    failures_expected: bool,
    /// While `Some`, our datagrams are kept here instead of sent.
    hold: Option<Vec<Transmit>>,
    /// Every ESP datagram charon sent us, as received.
    esp_seen: Vec<Vec<u8>>,
    /// Exchange types of the requests the peer sent us, in order.
    peer_requests: Vec<ExchangeType>,
    /// Rekey child SAs whose outbound SA reaches its soft lifetime (the owner's duty).
    auto_rekey: bool,
    /// Inbound SPIs of child SAs waiting for their rekey to be started.
    want_rekey: Vec<u32>,
    /// Lifetime events of the ESP SAs: (inbound SPI of the pair, event).
    sa_events: Vec<(u32, SaEvent)>,
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn icmp_echo(kind: u8, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

impl Driver {
    fn new(responder: Option<IkePolicy>) -> Driver {
        Driver::with_config(responder, |_| {})
    }

    fn with_config(
        responder: Option<IkePolicy>,
        adjust: impl FnOnce(&mut EndpointConfig),
    ) -> Driver {
        Driver::bound(OUR_IP.into(), responder, adjust)
    }

    /// Our endpoint on `ip`, ports 500 and 4500.
    fn bound(
        ip: IpAddr,
        responder: Option<IkePolicy>,
        adjust: impl FnOnce(&mut EndpointConfig),
    ) -> Driver {
        let ike = UdpSocket::bind((ip, 500)).unwrap();
        let natt = UdpSocket::bind((ip, 4500)).unwrap();
        for s in [&ike, &natt] {
            s.set_nonblocking(true).unwrap();
        }
        let mut cfg = EndpointConfig::new(ike.local_addr().unwrap(), natt.local_addr().unwrap());
        cfg.responder = responder;
        cfg.keylog = true;
        adjust(&mut cfg);
        Driver {
            ep: IkeEndpoint::new(cfg, Box::new(SystemIkeRandom::new())).unwrap(),
            ike,
            natt,
            start: Instant::now(),
            events: Vec::new(),
            children: Vec::new(),
            received: Vec::new(),
            udp_echoed: 0,
            esp_refused: Vec::new(),
            failures_expected: false,
            hold: None,
            esp_seen: Vec::new(),
            peer_requests: Vec::new(),
            auto_rekey: false,
            want_rekey: Vec::new(),
            sa_events: Vec::new(),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Seals an inner packet on the newest child SA we send on and sends it to the peer's NAT-T
    /// socket.
    fn send_inner(&mut self, inner: &[u8]) {
        let now = self.now();
        let c = self
            .children
            .iter_mut()
            .rev()
            .find(|c| c.sending)
            .expect("a child SA");
        assert!(c.sa.encapsulated, "charon's libipsec always encapsulates");
        let mut out = Vec::new();
        c.tx.seal_tunnel(now, inner, &mut out).unwrap();
        self.natt.send_to(&out, c.sa.peer).unwrap();
    }

    fn on_esp(&mut self, datagram: &[u8]) {
        self.esp_seen.push(datagram.to_vec());
        let now = self.now();
        let spi = u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
        let Some(c) = self.children.iter_mut().find(|c| c.sa.inbound.spi == spi) else {
            self.esp_refused.push(format!("unknown SPI {spi:#010x}"));
            return;
        };
        let mut packet = datagram.to_vec();
        let opened = c.rx.open_tunnel(now, &mut packet);
        if opened.is_ok() {
            c.sending = true;
        }
        let inner = match opened {
            Ok(Some(inner)) => inner,
            Ok(None) => return,
            Err(e) => {
                self.esp_refused.push(format!("open: {e}"));
                return;
            }
        };
        if !inner.within(&c.sa.remote_ts, &c.sa.local_ts) {
            self.esp_refused
                .push(format!("outside the selectors: {:?}", inner));
            return;
        }
        let reply = match (inner.protocol, inner.dst_port, inner.src, inner.dst) {
            (IPPROTO_UDP, Some(7), IpAddr::V4(src), IpAddr::V4(dst)) => {
                let udp = &inner.packet[inner.transport_offset..];
                let mut r = Vec::with_capacity(udp.len());
                r.extend_from_slice(&udp[2..4]);
                r.extend_from_slice(&udp[0..2]);
                r.extend_from_slice(&udp[4..6]);
                r.extend_from_slice(&[0, 0]); // no UDP checksum (IPv4)
                r.extend_from_slice(&udp[8..]);
                Some(ipv4_packet(dst, src, IPPROTO_UDP, 64, 1, &r).unwrap())
            }
            _ => None,
        };
        match reply {
            Some(r) => {
                self.udp_echoed += 1;
                self.send_inner(&r);
            }
            None => self.received.push(inner.packet.to_vec()),
        }
    }

    /// One round: receive everything pending, run timers, send, collect events. Returns whether
    /// anything happened.
    fn pump(&mut self) -> bool {
        let mut busy = false;
        let mut buf = vec![0u8; 65536];
        for kind in [WireSocket::Ike, WireSocket::Natt] {
            loop {
                let sock = match kind {
                    WireSocket::Ike => &self.ike,
                    WireSocket::Natt => &self.natt,
                };
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    break;
                };
                busy = true;
                let d = &buf[..n];
                if kind == WireSocket::Natt {
                    match natt::classify(d) {
                        Ok(NattDatagram::Esp { .. }) => {
                            self.on_esp(d);
                            continue;
                        }
                        Ok(NattDatagram::Keepalive) | Err(_) => continue,
                        Ok(NattDatagram::Ike(_)) => {}
                    }
                }
                let ike = if kind == WireSocket::Natt { &d[4..] } else { d };
                if let Ok(m) = Message::parse(ike) {
                    if !m.header().flags.response() {
                        self.peer_requests.push(m.header().exchange);
                    }
                }
                let now = self.now();
                self.ep.handle_datagram(now, from, kind, d);
            }
        }
        let now = self.now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        // The ESP SAs' lifetimes: a soft expiry of the sending direction asks for a rekey.
        for c in &mut self.children {
            let spi = c.sa.inbound.spi;
            if c.tx.poll_timeout().is_some_and(|t| t <= now) {
                c.tx.handle_timeout(now);
            }
            if c.rx.poll_timeout().is_some_and(|t| t <= now) {
                c.rx.handle_timeout(now);
            }
            while let Some(e) = c.tx.poll_event() {
                if matches!(e, SaEvent::SoftExpired(_)) && self.auto_rekey {
                    self.want_rekey.push(spi);
                }
                self.sa_events.push((spi, e));
            }
            while let Some(e) = c.rx.poll_event() {
                self.sa_events.push((spi, e));
            }
        }
        let summaries = self.ep.summaries();
        self.want_rekey.retain(|spi| {
            let Some(owner) = summaries.iter().find(|s| {
                s.state == SaState::Established && s.children.iter().any(|c| c.0 == *spi)
            }) else {
                return false; // gone (rekeyed or deleted by the peer meanwhile)
            };
            self.ep.rekey_child(now, owner.id, *spi).is_err()
        });
        while let Some(t) = self.ep.poll_transmit(now) {
            busy = true;
            if let Some(held) = &mut self.hold {
                held.push(t);
                continue;
            }
            let sock = match t.socket {
                WireSocket::Ike => &self.ike,
                WireSocket::Natt => &self.natt,
            };
            sock.send_to(&t.contents, t.destination).unwrap();
        }
        while let Some(e) = self.ep.poll_event() {
            busy = true;
            println!("[{:>7.3}s] our event: {e:?}", now.as_secs_f64());
            match &e {
                IkeEvent::ChildSaReady(c) => self.children.push(ChildPair {
                    sa: (**c).clone(),
                    rx: c.inbound_sa(now).unwrap(),
                    tx: c.outbound_sa(now).unwrap(),
                    sending: c.send_at_once(),
                }),
                IkeEvent::ChildSaDeleted { inbound_spi, .. } => {
                    self.children.retain(|c| c.sa.inbound.spi != *inbound_spi);
                    for c in &mut self.children {
                        if c.sa.replaces == Some(*inbound_spi) {
                            c.sending = true;
                        }
                    }
                }
                IkeEvent::Failed { error, .. } | IkeEvent::ChildSaFailed { error, .. }
                    if !self.failures_expected =>
                {
                    panic!(
                        "negotiation failed on our side: {error} (code {})",
                        error.win32_code()
                    )
                }
                _ => {}
            }
            self.events.push(e);
        }
        busy
    }

    /// Pumps until `done` holds; panics after `limit`.
    fn run_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&mut Driver) -> bool,
    ) {
        let t0 = Instant::now();
        loop {
            let busy = self.pump();
            if done(self) {
                return;
            }
            assert!(
                t0.elapsed() < limit && self.start.elapsed() < SCENARIO_LIMIT,
                "timed out waiting for {what}"
            );
            if !busy {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Pumps while an external process runs; returns its output.
    fn run_process(&mut self, what: &str, mut child: Child, limit: Duration) -> (bool, String) {
        let t0 = Instant::now();
        loop {
            let busy = self.pump();
            if child.try_wait().unwrap().is_some() {
                let out = child.wait_with_output().unwrap();
                let text = without_plugin_noise(&out);
                println!("--- {what} ---\n{text}");
                return (out.status.success(), text);
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} did not finish: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Sends what was held and stops holding.
    fn release(&mut self) {
        for t in self.hold.take().unwrap_or_default() {
            let sock = match t.socket {
                WireSocket::Ike => &self.ike,
                WireSocket::Natt => &self.natt,
            };
            sock.send_to(&t.contents, t.destination).unwrap();
        }
    }

    fn failure(&self) -> Option<IpsecError> {
        self.events.iter().find_map(|e| match e {
            IkeEvent::Failed { error, .. } => Some(error.clone()),
            _ => None,
        })
    }

    fn established(&self) -> Option<(IkeSaId, Role, Identity)> {
        self.events.iter().find_map(|e| match e {
            IkeEvent::IkeSaEstablished {
                sa, role, peer_id, ..
            } => Some((*sa, *role, peer_id.clone())),
            _ => None,
        })
    }
}

fn tunnel_policy(policy: &mut IkePolicy) {
    policy.mode = Mode::Tunnel;
    policy.local_ts = vec![host_selector(OUR_INNER.into())];
    policy.remote_ts = vec![host_selector(CHARON_INNER.into())];
}

/// The child SA as both sides see it, then traffic both ways through it.
fn check_child_and_traffic(lab: &Lab, d: &mut Driver) {
    let c = &d.children.last().expect("a child SA").sa;
    assert_eq!(c.mode, Mode::Tunnel);
    assert!(c.encapsulated);
    assert_eq!(c.peer, charon_natt());
    assert_eq!(c.local_ts, vec![host_selector(OUR_INNER.into())]);
    assert_eq!(c.remote_ts, vec![host_selector(CHARON_INNER.into())]);
    let (in_spi, out_spi) = (c.inbound.spi, c.outbound.spi);
    let sas = lab.swanctl(&["--list-sas"]);
    println!("--- swanctl --list-sas ---\n{sas}");
    assert!(sas.contains("ESTABLISHED"), "charon lists no IKE SA: {sas}");
    assert!(
        sas.contains("INSTALLED, TUNNEL-in-UDP"),
        "charon installed no tunnel-mode child SA: {sas}"
    );
    // charon's inbound SPI is our outbound one and the reverse.
    assert!(sas.contains(&format!("in  {out_spi:08x}")), "{sas}");
    assert!(sas.contains(&format!("out {in_spi:08x}")), "{sas}");

    // Us -> charon: ICMP echo requests to charon's inner address; its kernel answers through
    // charon's ESP.
    for seq in 1..=3u16 {
        ping(d, seq);
    }
    udp_from_charon(d);

    let sas = lab.swanctl(&["--list-sas"]);
    // 3 ICMP replies + 3 UDP datagrams left charon, 3 ICMP requests + 3 UDP echoes came in.
    let counted = |dir: &str| {
        sas.lines()
            .find(|l| l.trim_start().starts_with(dir))
            .and_then(|l| l.split(',').nth(2))
            .and_then(|f| f.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert_eq!(counted("in "), Some(6), "{sas}");
    assert_eq!(counted("out "), Some(6), "{sas}");
}

/// One ICMP echo to charon's inner address through the newest child SA, and its reply.
fn ping(d: &mut Driver, seq: u16) {
    let data = format!("wsock-echo-{seq}");
    let icmp = icmp_echo(8, 0x5753, seq, data.as_bytes());
    let req = ipv4_packet(OUR_INNER, CHARON_INNER, IPPROTO_ICMP, 64, seq, &icmp).unwrap();
    d.send_inner(&req);
    let want = icmp_echo(0, 0x5753, seq, data.as_bytes());
    d.run_until(
        "an ICMP echo reply through charon's ESP",
        Duration::from_secs(5),
        |d| {
            d.received.iter().any(|p| {
                let Ok(inner) = InnerPacket::parse(4, p) else {
                    return false;
                };
                inner.src == IpAddr::V4(CHARON_INNER)
                    && inner.dst == IpAddr::V4(OUR_INNER)
                    && inner.protocol == IPPROTO_ICMP
                    && inner.packet[inner.transport_offset..] == want[..]
            })
        },
    );
}

/// charon -> us: a UDP client on charon's side sends three datagrams to our inner address,
/// port 7; we echo them.
fn udp_from_charon(d: &mut Driver) {
    let client = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(3)
ok = 0
for i in range(3):
    msg = b"from-charon-%d" % i
    s.sendto(msg, (sys.argv[2], 7))
    data, peer = s.recvfrom(2000)
    assert data == msg and peer == (sys.argv[2], 7), (data, peer)
    ok += 1
print("udp echo ok", ok)
"#;
    let before = d.udp_echoed;
    let child = Command::new("python3")
        .args([
            "-c",
            client,
            &CHARON_INNER.to_string(),
            &OUR_INNER.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process(
        "UDP client on charon's side",
        child,
        Duration::from_secs(15),
    );
    assert!(ok && text.contains("udp echo ok 3"), "{text}");
    assert_eq!(d.udp_echoed - before, 3);
    assert!(d.esp_refused.is_empty(), "ESP refused: {:?}", d.esp_refused);
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn our_initiator(lab: &mut Lab, mut policy: IkePolicy, child_name: &str) {
    tunnel_policy(&mut policy);
    policy.target_name = Some("host/a.lab".into());
    let mut d = Driver::new(None);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(20),
        |d| !d.children.is_empty(),
    );
    let (id, role, peer) = d.established().expect("IKE SA established");
    assert_eq!((id, role), (sa, Role::Initiator));
    assert_eq!(peer, Identity::Fqdn("a.lab".into()));
    let log = lab.log();
    assert!(log.contains("IKE_SA "), "{log}");
    assert!(
        log.contains(&format!("CHILD_SA {child_name}{{1}} established")),
        "charon did not log the child SA"
    );
    check_child_and_traffic(lab, &mut d);

    // Our Delete takes the IKE SA down on both sides.
    let now = d.now();
    d.ep.delete_ike_sa(now, sa).unwrap();
    d.run_until("the Delete answered", Duration::from_secs(10), |d| {
        d.events
            .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: false })
    });
    let t0 = Instant::now();
    while !lab.log().contains("received DELETE for IKE_SA") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "charon saw no Delete"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn psk_initiator(lab: &mut Lab) {
    let policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    our_initiator(lab, policy, "psk-tunnel");
    let log = lab.log();
    assert!(log.contains("authentication of 'a.lab' (myself) with pre-shared key"));
    assert!(log.contains("authentication of 'psk.b.lab' with pre-shared key successful"));
}

fn cert_initiator(lab: &mut Lab) {
    let policy = IkePolicy::certificate(Identity::Fqdn("b.lab".into()), lab.our_cert_auth());
    our_initiator(lab, policy, "cert-tunnel");
    // RFC 7427 both ways: both sides announced SHA2-256, so both sign with method 14.
    let log = lab.log();
    assert!(
        log.contains("authentication of 'b.lab' with ECDSA_WITH_SHA256_DER successful"),
        "charon did not verify our RFC 7427 signature"
    );
    assert!(
        log.contains("authentication of 'a.lab' (myself) with ECDSA_WITH_SHA256_DER successful"),
        "charon did not sign with RFC 7427"
    );
}

/// charon initiates with certificates, RFC 7427 switched off on its side
/// (`signature_authentication = no`): it announces no hash algorithms, so we sign with RFC 4754
/// method 9, which it verifies, and we verify its method 9 signature.
fn charon_initiator_cert(lab: &mut Lab) {
    let mut policy = IkePolicy::certificate(Identity::Fqdn("c.lab".into()), lab.our_cert_auth());
    policy.target_name = Some("a.lab".into());
    charon_initiates(lab, policy, "to-wsock-cert");
    let log = lab.log();
    assert!(
        log.contains("authentication of 'c.lab' with ECDSA-256 signature successful"),
        "charon did not verify our RFC 4754 signature"
    );
    assert!(log.contains("authentication of 'a.lab' (myself) with ECDSA-256 signature"));
}

/// RFC 4739: our initiator authenticates the machine (`user.b.lab`, PSK) and then the user
/// `alice@wsock` with her password; charon's `user` connection demands both rounds.
fn user_initiator(lab: &mut Lab) {
    let mut policy = IkePolicy::psk(Identity::Fqdn("user.b.lab".into()), PSK);
    policy.user = Some(UserCredential {
        id: Identity::Rfc822("alice@wsock".into()),
        proof: UserProof::Password(ALICE_PASSWORD.into()),
    });
    our_initiator(lab, policy, "user-tunnel");
    let log = lab.log();
    assert!(
        log.contains("authentication of 'user.b.lab' with pre-shared key successful"),
        "charon did not verify our machine"
    );
    assert!(
        log.contains("authentication of 'alice@wsock' with pre-shared key successful"),
        "charon did not verify our user"
    );
}

/// RFC 4739 the other way: charon's `from-user` connection authenticates its machine
/// (`ua.lab`) and then `alice@wsock` to our responder, which verifies her password from its
/// user directory and reports her as the peer's user.
fn user_responder(lab: &mut Lab) {
    let mut policy = IkePolicy::psk(Identity::Fqdn("u.wsock".into()), PSK);
    tunnel_policy(&mut policy);
    policy.target_name = Some("ua.lab".into());
    let mut d = Driver::with_config(Some(policy), |c| {
        let mut users = UserDirectory::new();
        users.insert(
            Identity::Rfc822("alice@wsock".into()),
            UserSecret::Password(ALICE_PASSWORD.into()),
        );
        c.user_directory = Some(users);
    });
    let initiate = lab
        .swanctl_command(&[
            "--initiate",
            "--ike",
            "from-user",
            "--child",
            "from-user-tunnel",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --initiate", initiate, Duration::from_secs(25));
    assert!(ok, "swanctl --initiate failed: {text}");
    assert!(text.contains("initiate completed successfully"), "{text}");
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    let user = d.events.iter().find_map(|e| match e {
        IkeEvent::IkeSaEstablished {
            role: Role::Responder,
            peer_id,
            peer_user,
            ..
        } => Some((peer_id.clone(), peer_user.clone())),
        _ => None,
    });
    assert_eq!(
        user,
        Some((
            Identity::Fqdn("ua.lab".into()),
            Some(Identity::Rfc822("alice@wsock".into()))
        ))
    );
    check_child_and_traffic(lab, &mut d);
}

fn charon_initiator(lab: &mut Lab) {
    let policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
    charon_initiates(lab, policy, "to-wsock");
}

/// charon initiates `conn` (child `<conn>-tunnel`) to our responder with `policy`, traffic
/// both ways, then charon deletes the IKE SA.
fn charon_initiates(lab: &mut Lab, mut policy: IkePolicy, conn: &str) {
    tunnel_policy(&mut policy);
    if policy.target_name.is_none() {
        policy.target_name = Some("a.lab".into());
    }
    let mut d = Driver::new(Some(policy));
    let initiate = lab
        .swanctl_command(&[
            "--initiate",
            "--ike",
            conn,
            "--child",
            &format!("{conn}-tunnel"),
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --initiate", initiate, Duration::from_secs(25));
    assert!(ok, "swanctl --initiate failed: {text}");
    assert!(text.contains("initiate completed successfully"), "{text}");
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    let (sa, role, peer) = d.established().expect("IKE SA established");
    assert_eq!(role, Role::Responder);
    assert_eq!(peer, Identity::Fqdn("a.lab".into()));
    assert!(lab
        .log()
        .contains(&format!("CHILD_SA {conn}-tunnel{{1}} established")));
    check_child_and_traffic(lab, &mut d);

    // charon deletes the IKE SA; we learn it from its Delete.
    let terminate = lab
        .swanctl_command(&["--terminate", "--ike", conn, "--timeout", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --terminate", terminate, Duration::from_secs(15));
    assert!(ok, "swanctl --terminate failed: {text}");
    d.run_until("charon's Delete", Duration::from_secs(5), |d| {
        d.events
            .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: true })
    });
}

/// One row of the algorithm matrix: charon's proposal strings, our suites, and the proposals
/// charon must log as selected.
struct Suites {
    charon_ike: &'static str,
    charon_esp: &'static str,
    ike: IkeSuite,
    esp: EspSuite,
    esn: bool,
    selected_ike: &'static str,
    selected_esp: &'static str,
}

/// (kernel-libipsec refuses ESN, "IPsec SA: ESN not supported", and ENCR_NULL_AUTH_AES_GMAC,
/// "unsupported AEAD algorithm NULL_AES_GMAC", so no row has them; both are checked against
/// an independent decryptor in `esp_python_crosscheck`.)
fn matrix() -> Vec<Suites> {
    use wsock_ipsec::esp::Integrity::{HmacSha1_96, HmacSha256_128};
    use wsock_ipsec::ike::crypto::{Prf, SkSuite};
    let ike = |sk, prf, dh| IkeSuite { sk, prf, dh };
    vec![
        Suites {
            charon_ike: "chacha20poly1305-prfsha256-x25519",
            charon_esp: "chacha20poly1305",
            ike: ike(
                SkSuite::ChaCha20Poly1305,
                Prf::HmacSha256,
                DhGroup::Curve25519,
            ),
            esp: EspSuite::ChaCha20Poly1305,
            esn: false,
            selected_ike: "IKE:CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519",
            selected_esp: "ESP:CHACHA20_POLY1305/NO_EXT_SEQ",
        },
        Suites {
            charon_ike: "aes128gcm16-prfsha384-ecp384",
            charon_esp: "aes256gcm16",
            ike: ike(
                SkSuite::AesGcm16 { key_bits: 128 },
                Prf::HmacSha384,
                DhGroup::Ecp384,
            ),
            esp: EspSuite::AesGcm16 { key_bits: 256 },
            esn: false,
            selected_ike: "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_384/ECP_384",
            selected_esp: "ESP:AES_GCM_16_256/NO_EXT_SEQ",
        },
        Suites {
            charon_ike: "aes128-sha256-prfsha256-ecp256",
            charon_esp: "aes128-sha256",
            ike: ike(
                SkSuite::AesCbc {
                    key_bits: 128,
                    integrity: HmacSha256_128,
                },
                Prf::HmacSha256,
                DhGroup::Ecp256,
            ),
            esp: EspSuite::AesCbc {
                key_bits: 128,
                integrity: HmacSha256_128,
            },
            esn: false,
            selected_ike: "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256",
            selected_esp: "ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        },
        Suites {
            charon_ike: "aes256-sha1-prfsha1-ecp256",
            charon_esp: "aes256-sha1",
            ike: ike(
                SkSuite::AesCbc {
                    key_bits: 256,
                    integrity: HmacSha1_96,
                },
                Prf::HmacSha1,
                DhGroup::Ecp256,
            ),
            esp: EspSuite::AesCbc {
                key_bits: 256,
                integrity: HmacSha1_96,
            },
            esn: false,
            selected_ike: "IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256",
            selected_esp: "ESP:AES_CBC_256/HMAC_SHA1_96/NO_EXT_SEQ",
        },
        Suites {
            charon_ike: "aes256gcm16-prfsha256-x25519",
            charon_esp: "null-sha256",
            ike: ike(
                SkSuite::AesGcm16 { key_bits: 256 },
                Prf::HmacSha256,
                DhGroup::Curve25519,
            ),
            esp: EspSuite::Null(HmacSha256_128),
            esn: false,
            selected_ike: "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519",
            selected_esp: "ESP:NULL/HMAC_SHA2_256_128/NO_EXT_SEQ",
        },
        // Windows' default policy: main mode AES-CBC-128 / HMAC-SHA1 / ECP-256, quick mode
        // integrity only with HMAC-SHA1.
        Suites {
            charon_ike: "aes128-sha1-prfsha1-ecp256",
            charon_esp: "null-sha1",
            ike: ike(
                SkSuite::AesCbc {
                    key_bits: 128,
                    integrity: HmacSha1_96,
                },
                Prf::HmacSha1,
                DhGroup::Ecp256,
            ),
            esp: EspSuite::Null(HmacSha1_96),
            esn: false,
            selected_ike: "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256",
            selected_esp: "ESP:NULL/HMAC_SHA1_96/NO_EXT_SEQ",
        },
    ]
}

/// charon's connections of the matrix: `m<i>` answers the ID `m<i>.b.lab` with row i's
/// proposals only.
fn matrix_conns() -> String {
    let mut out = String::new();
    for (i, m) in matrix().iter().enumerate() {
        out.push_str(&format!(
            r#"  m{i} {{
    version = 2
    local_addrs = {CHARON_IP}
    remote_addrs = {OUR_IP}
    proposals = {}
    encap = yes
    local {{
      auth = psk
      id = a.lab
    }}
    remote {{
      auth = psk
      id = m{i}.b.lab
    }}
    children {{
      m{i}-tunnel {{
        mode = tunnel
        local_ts = {CHARON_INNER}/32
        remote_ts = {OUR_INNER}/32
        esp_proposals = {}
      }}
    }}
  }}
"#,
            m.charon_ike, m.charon_esp
        ));
    }
    out
}

/// Every row of the matrix: we initiate with exactly its suites, charon selects them, an ICMP
/// echo crosses the tunnel, and we delete the IKE SA.
fn algorithm_matrix(lab: &mut Lab) {
    let mut d = Driver::new(None);
    for (i, m) in matrix().iter().enumerate() {
        println!("=== matrix row {i}: {} / {}", m.charon_ike, m.charon_esp);
        let mut policy = IkePolicy::psk(Identity::Fqdn(format!("m{i}.b.lab")), PSK);
        tunnel_policy(&mut policy);
        policy.ike_suites = vec![m.ike];
        policy.esp_suites = vec![(m.esp, m.esn)];
        let now = d.now();
        let sa =
            d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
                .unwrap();
        d.run_until(
            "the IKE SA and its child SA",
            Duration::from_secs(10),
            |d| d.children.iter().any(|c| c.sa.ike_sa == sa),
        );
        let c = &d.children.last().unwrap().sa;
        assert_eq!((c.outbound.suite, c.outbound.esn), (m.esp, m.esn));
        await_log(
            lab,
            &mut d,
            &format!("selected proposal: {}", m.selected_ike),
            1,
        );
        await_log(
            lab,
            &mut d,
            &format!("selected proposal: {}", m.selected_esp),
            1,
        );
        ping(&mut d, 100 + i as u16);
        let now = d.now();
        d.ep.delete_ike_sa(now, sa).unwrap();
        d.run_until("the Delete answered", Duration::from_secs(5), |d| {
            d.events
                .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: false })
        });
        d.children.clear();
        d.received.clear();
    }
    assert!(d.esp_refused.is_empty(), "ESP refused: {:?}", d.esp_refused);
}

/// Waits until charon's log has `needle` (at least `count` times).
fn await_log(lab: &Lab, d: &mut Driver, needle: &str, count: usize) {
    let what = format!("charon to log {needle:?} {count}x");
    d.run_until(&what, Duration::from_secs(10), |_| {
        lab.log().matches(needle).count() >= count
    });
}

/// CREATE_CHILD_SA both ways (child rekeys with PFS, IKE SA rekeys) and liveness checks both
/// ways, with traffic through the child SA after each step.
fn rekeys_and_liveness(lab: &mut Lab) {
    let mut policy = IkePolicy::psk(Identity::Fqdn("rekey.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    policy.pfs = Some(DhGroup::Curve25519);
    let mut d = Driver::new(None);
    let now = d.now();
    let first =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(20),
        |d| !d.children.is_empty(),
    );
    ping(&mut d, 1);

    // Our liveness check.
    let now = d.now();
    d.ep.check_liveness(now, first).unwrap();
    d.run_until("our liveness check answered", Duration::from_secs(5), |d| {
        d.events
            .contains(&IkeEvent::LivenessConfirmed { sa: first })
    });

    // We rekey the child SA (CREATE_CHILD_SA with N(REKEY_SA) and a KE for PFS).
    let old = d.children[0].sa.inbound.spi;
    let now = d.now();
    d.ep.rekey_child(now, first, old).unwrap();
    d.run_until("our child rekey", Duration::from_secs(10), |d| {
        d.children.len() == 1 && d.children[0].sa.replaces == Some(old)
    });
    await_log(lab, &mut d, "CHILD_SA rekey-tunnel{2} established", 1);
    ping(&mut d, 2);

    // charon rekeys the child SA.
    let old = d.children[0].sa.inbound.spi;
    let out = lab.swanctl(&["--rekey", "--child", "rekey-tunnel"]);
    assert!(out.contains("rekey completed successfully"), "{out}");
    d.run_until("charon's child rekey", Duration::from_secs(10), |d| {
        d.children.len() == 1 && d.children[0].sa.replaces == Some(old)
    });
    await_log(lab, &mut d, "CHILD_SA rekey-tunnel{3} established", 1);
    ping(&mut d, 3);

    // We rekey the IKE SA; the child SA carries on under the new one.
    let now = d.now();
    d.ep.rekey_ike_sa(now, first).unwrap();
    let mut second = None;
    d.run_until("our IKE SA rekey", Duration::from_secs(10), |d| {
        second = d.events.iter().find_map(|e| match e {
            IkeEvent::IkeSaRekeyed { old, new } if *old == first => Some(*new),
            _ => None,
        });
        second.is_some()
    });
    let second = second.unwrap();
    await_log(lab, &mut d, "IKE_SA rekey[2] rekeyed", 1);
    ping(&mut d, 4);

    // charon rekeys the IKE SA.
    let out = lab.swanctl(&["--rekey", "--ike", "rekey"]);
    assert!(out.contains("rekey completed successfully"), "{out}");
    let mut third = None;
    d.run_until("charon's IKE SA rekey", Duration::from_secs(10), |d| {
        third = d.events.iter().find_map(|e| match e {
            IkeEvent::IkeSaRekeyed { old, new } if *old == second => Some(*new),
            _ => None,
        });
        third.is_some()
    });
    let third = third.unwrap();
    await_log(lab, &mut d, "IKE_SA rekey[3] rekeyed", 1);
    ping(&mut d, 5);

    // charon's dead-peer detection (dpd_delay = 1s) finds us alive: wait for two checks.
    await_log(lab, &mut d, "sending DPD request", 2);
    udp_from_charon(&mut d);

    let log = lab.log();
    assert!(!log.contains("retransmit"), "charon had to retransmit");
    let sas = lab.swanctl(&["--list-sas"]);
    println!("--- swanctl --list-sas ---\n{sas}");
    assert_eq!(sas.matches("ESTABLISHED").count(), 1, "{sas}");
    assert_eq!(sas.matches("INSTALLED, TUNNEL-in-UDP").count(), 1, "{sas}");
    assert_eq!(d.ep.sa_state(third), Some(SaState::Established));
    assert_eq!(d.ep.sa_state(first), None);
    assert_eq!(d.ep.sa_state(second), None);
    let c = &d.children[0].sa;
    assert!(
        sas.contains(&format!("in  {:08x}", c.outbound.spi)),
        "{sas}"
    );
    assert!(sas.contains(&format!("out {:08x}", c.inbound.spi)), "{sas}");
}

#[test]
fn rekeys_and_liveness_both_ways() {
    in_namespace("rekeys_and_liveness_both_ways", "", rekeys_and_liveness);
}

#[test]
fn algorithm_matrix_our_initiator() {
    in_namespace("algorithm_matrix_our_initiator", "", algorithm_matrix);
}

/// A wrong pre-shared key fails with `ERROR_IPSEC_IKE_AUTH_FAIL` (13801) whichever side has
/// it, and a correctly authenticated peer that is not the target name is refused (13801).
fn authentication_failures(lab: &mut Lab) {
    // Our initiator with the wrong key: charon refuses our AUTH.
    let mut d = Driver::new(None);
    d.failures_expected = true;
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), "not the key");
    tunnel_policy(&mut policy);
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until("our failure", Duration::from_secs(10), |d| {
        d.failure().is_some()
    });
    let e = d.failure().unwrap();
    assert_eq!(e, IpsecError::IkeAuthFailed);
    assert_eq!(e.win32_code(), 13801);
    assert!(d.established().is_none());
    await_log(lab, &mut d, "MAC mismatched", 1);
    await_log(lab, &mut d, "N(AUTH_FAILED)", 1);
    drop(d);

    // A target name the (correctly authenticated) responder does not have.
    let mut d = Driver::new(None);
    d.failures_expected = true;
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    policy.target_name = Some("host/other.lab".into());
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until("our failure", Duration::from_secs(10), |d| {
        d.failure().is_some()
    });
    let e = d.failure().unwrap();
    assert!(matches!(e, IpsecError::IkePeerIdMismatch { .. }), "{e:?}");
    assert_eq!(e.win32_code(), 13801);
    assert!(d.ep.summaries().is_empty(), "no SA left on our side");
    // charon had established its side; our Delete takes it down.
    await_log(lab, &mut d, "received DELETE for IKE_SA psk[2]", 1);
    drop(d);

    // charon initiates to our responder, which holds the wrong key: we refuse charon's AUTH.
    let mut policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), "not the key");
    tunnel_policy(&mut policy);
    let mut d = Driver::new(Some(policy));
    d.failures_expected = true;
    let initiate = lab
        .swanctl_command(&["--initiate", "--ike", "to-wsock", "--timeout", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --initiate", initiate, Duration::from_secs(15));
    assert!(!ok, "charon established with a wrong key: {text}");
    assert!(
        text.contains("received AUTHENTICATION_FAILED notify error"),
        "{text}"
    );
    let e = d.failure().expect("our responder failed");
    assert_eq!(e, IpsecError::IkeAuthFailed);
    assert_eq!(e.win32_code(), 13801);
    assert!(d.established().is_none());
    assert!(d.ep.summaries().is_empty(), "no SA left on our side");
}

/// Cookies (RFC 7296 §2.6) and INVALID_KE_PAYLOAD (§1.2) both ways. charon demands cookies
/// from one half-open SA on (`cookie_threshold = 1`) and accepts only P-384 from us, whose KE is
/// for the X25519 suite we offer first; we demand cookies always (threshold 0) and accept only P-384 from charon, who
/// sends an X25519 KE first.
fn cookies_and_invalid_ke(lab: &mut Lab) {
    let gcm = |dh| IkeSuite {
        sk: wsock_ipsec::ike::crypto::SkSuite::AesGcm16 { key_bits: 256 },
        prf: wsock_ipsec::ike::crypto::Prf::HmacSha256,
        dh,
    };
    // A half-open IKE SA at charon: another endpoint of ours sends IKE_SA_INIT and never goes
    // on. (From our IKE port: charon takes IKE from other source ports for ESP.)
    let flood = UdpSocket::bind((OUR_IP, 500)).unwrap();
    let here = flood.local_addr().unwrap();
    let mut ep = IkeEndpoint::new(
        EndpointConfig::new(here, here),
        Box::new(SystemIkeRandom::new()),
    )
    .unwrap();
    let policy = IkePolicy::psk(Identity::Fqdn("ke.b.lab".into()), PSK);
    ep.connect(Duration::ZERO, charon_ike(), None, policy)
        .unwrap();
    let t = ep.poll_transmit(Duration::ZERO).unwrap();
    flood.send_to(&t.contents, t.destination).unwrap();
    let t0 = Instant::now();
    while !lab.log().contains("IKE_SA_INIT response 0 [ N(INVAL_KE) ]")
        && !lab.log().contains("IKE_SA_INIT response 0 [ SA KE")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "charon did not answer"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(flood);
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("ke.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    // A suite only charon's `ke` connection accepts (charon picks the IKE configuration by the
    // proposals of IKE_SA_INIT, so no other connection may match the first offer).
    let cbc = |dh| IkeSuite {
        sk: wsock_ipsec::ike::crypto::SkSuite::AesCbc {
            key_bits: 256,
            integrity: wsock_ipsec::esp::Integrity::HmacSha256_128,
        },
        prf: wsock_ipsec::ike::crypto::Prf::HmacSha384,
        dh,
    };
    policy.ike_suites = vec![cbc(DhGroup::Curve25519), cbc(DhGroup::Ecp384)];
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    await_log(lab, &mut d, "IKE_SA_INIT response 0 [ N(COOKIE) ]", 1);
    await_log(lab, &mut d, "IKE_SA_INIT response 0 [ N(INVAL_KE) ]", 1);
    await_log(
        lab,
        &mut d,
        "selected proposal: IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_384/ECP_384",
        1,
    );
    ping(&mut d, 1);
    drop(d);

    // The other way round.
    let mut policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
    tunnel_policy(&mut policy);
    policy.ike_suites = vec![gcm(DhGroup::Ecp384)];
    let mut d = Driver::with_config(Some(policy), |c| c.cookie_threshold = 0);
    let initiate = lab
        .swanctl_command(&[
            "--initiate",
            "--ike",
            "to-wsock-ke",
            "--child",
            "to-wsock-ke-tunnel",
            "--timeout",
            "15",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --initiate", initiate, Duration::from_secs(20));
    assert!(ok, "{text}");
    assert!(
        text.contains("parsed IKE_SA_INIT response 0 [ N(COOKIE) ]"),
        "{text}"
    );
    assert!(
        text.contains("parsed IKE_SA_INIT response 0 [ N(INVAL_KE) ]"),
        "{text}"
    );
    assert!(
        text.contains("selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_384"),
        "{text}"
    );
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    assert!(d.ep.stats().cookies_sent >= 1);
    assert!(d.ep.stats().invalid_ke_sent >= 1);
    ping(&mut d, 2);
}

/// charon initiates an IKE SA without a child SA (RFC 6023, which our responder announces),
/// then adds the tunnel child SA with CREATE_CHILD_SA.
fn childless_then_create_child(lab: &mut Lab) {
    let mut policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
    tunnel_policy(&mut policy);
    let mut d = Driver::new(Some(policy));
    let initiate = lab
        .swanctl_command(&["--initiate", "--ike", "to-wsock", "--timeout", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process(
        "swanctl --initiate --ike",
        initiate,
        Duration::from_secs(15),
    );
    assert!(ok, "{text}");
    assert!(text.contains("N(CHDLESS_SUP)"), "{text}");
    assert!(
        text.contains("parsed IKE_AUTH response 1 [ IDr AUTH ]"),
        "{text}"
    );
    let (sa, role, _) = d.established().expect("IKE SA established");
    assert_eq!(role, Role::Responder);
    assert!(d.children.is_empty());
    let initiate = lab
        .swanctl_command(&[
            "--initiate",
            "--child",
            "to-wsock-tunnel",
            "--timeout",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process(
        "swanctl --initiate --child",
        initiate,
        Duration::from_secs(15),
    );
    assert!(ok, "{text}");
    assert!(text.contains("CREATE_CHILD_SA"), "{text}");
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    assert_eq!(d.children[0].sa.ike_sa, sa);
    ping(&mut d, 1);
    udp_from_charon(&mut d);
    assert!(!d
        .events
        .iter()
        .any(|e| matches!(e, IkeEvent::ChildSaFailed { .. })));
}

#[test]
fn charon_childless_ike_sa_then_create_child() {
    in_namespace(
        "charon_childless_ike_sa_then_create_child",
        "",
        childless_then_create_child,
    );
}

/// dumpcap on `lo` of the namespace, stopped with SIGINT (so it flushes).
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(dir: &Path) -> Capture {
        let file = dir.join("capture.pcapng");
        let log = dir.join("dumpcap.out");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("dumpcap")
            .args(["-q", "-i", "lo", "-w"])
            .arg(&file)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start dumpcap");
        let t0 = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "dumpcap did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // "Capturing on" comes a moment before packets are: send marker datagrams (to a socket
        // of ours, so nothing answers) until the file grows.
        let sink = UdpSocket::bind("127.0.0.3:0").unwrap();
        let probe = UdpSocket::bind("127.0.0.3:0").unwrap();
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();
        while size() == before {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "dumpcap captures nothing"
            );
            probe
                .send_to(b"capture marker", sink.local_addr().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        Capture { child, file }
    }

    fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tshark (through `shared/oracles/esp_pcap_check.py check`) dissects a live capture of our
/// initiator with charon and decrypts every IKE SK payload and every ESP packet of both
/// directions with the keys our endpoint logged, ICVs checked.
fn tshark_on_live_capture(lab: &mut Lab) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/esp_pcap_check.py");
    let cap = Capture::start(&lab.dir);
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    for seq in 1..=3 {
        ping(&mut d, seq);
    }
    udp_from_charon(&mut d);
    let now = d.now();
    d.ep.delete_ike_sa(now, sa).unwrap();
    d.run_until("the Delete answered", Duration::from_secs(5), |d| {
        d.events
            .contains(&IkeEvent::IkeSaDeleted { sa, by_peer: false })
    });
    let pcap = cap.stop();

    let ike = d.ep.ike_key_record(sa).unwrap().json().unwrap();
    let esp: Vec<String> = d.children[0]
        .sa
        .esp_key_records(OUR_IP.into())
        .iter()
        .map(|r| r.json().unwrap())
        .collect();
    // IKE_SA_INIT and IKE_AUTH each way; 12 ESP packets (3 echo requests and replies, 3 UDP
    // datagrams and echoes), of which the oracle counts those with inner TCP/UDP as decrypted;
    // all 12 must have a good ICV.
    let keys = format!(
        "{{\"esp_sa\": [{}], \"ikev2\": [{ike}], \"check_checksums\": false, \
         \"decode_as\": [\"udp.port==10500,isakmp\", \"udp.port==14500,udpencap\"], \
         \"expect\": {{\"ike_sa_init\": 2, \"ike_auth_decrypted\": 2, \"esp_decrypted\": 6, \
         \"inner_udp_ports\": []}}}}",
        esp.join(", ")
    );
    let key_file = lab.dir.join("keys.json");
    std::fs::write(&key_file, keys).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args(["check", "--pcap"])
        .arg(&pcap)
        .arg("--keys")
        .arg(&key_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("ORACLE OK"),
        "tshark oracle failed"
    );
    assert!(
        text.contains("ESP=12 (inner TCP/UDP seen 6, ICV good 12)"),
        "{text}"
    );
    assert!(text.contains("SK-payload msgs=4 (decrypted 4)"), "{text}");
}

#[test]
fn tshark_decrypts_a_live_exchange_with_charon() {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/esp_pcap_check.py");
    if std::env::var(INNER_ENV).is_err() {
        if !script.exists() {
            println!("SKIPPED: oracle {} not found", script.display());
            return;
        }
        if !on_path("dumpcap") || !on_path("tshark") {
            println!("SKIPPED: dumpcap/tshark not installed (apt-get install tshark)");
            return;
        }
    }
    in_namespace(
        "tshark_decrypts_a_live_exchange_with_charon",
        "",
        tshark_on_live_capture,
    );
}

/// Both sides rekey the same child SA at once (RFC 7296 §2.8.1): our CREATE_CHILD_SA request is
/// held back until charon's has arrived, so each side sees the other's rekey while its own is
/// in flight. Afterwards exactly one child SA pair is left on both sides, the same one, and it
/// carries traffic.
fn simultaneous_child_rekey(lab: &mut Lab) {
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    ping(&mut d, 1);

    let old = d.children[0].sa.inbound.spi;
    d.hold = Some(Vec::new());
    let now = d.now();
    d.ep.rekey_child(now, sa, old).unwrap();
    d.pump();
    let out = lab.swanctl(&["--rekey", "--child", "psk-tunnel"]);
    assert!(out.contains("rekey completed successfully"), "{out}");
    d.run_until("charon's CREATE_CHILD_SA", Duration::from_secs(5), |d| {
        d.peer_requests.contains(&ExchangeType::CREATE_CHILD_SA)
    });
    assert!(
        d.hold.as_ref().is_some_and(|h| !h.is_empty()),
        "our rekey request is held"
    );
    d.release();

    // Both exchanges complete, the redundant pair and the old one go; wait until both sides
    // agree on one pair.
    let mut sas = String::new();
    d.run_until(
        "one child SA pair on both sides",
        Duration::from_secs(10),
        |d| {
            sas = lab.swanctl(&["--list-sas"]);
            d.children.len() == 1
                && d.ep.summaries()[0].children.len() == 1
                && sas.matches("INSTALLED").count() == 1
                && sas.contains(&format!("in  {:08x}", d.children[0].sa.outbound.spi))
                && sas.contains(&format!("out {:08x}", d.children[0].sa.inbound.spi))
        },
    );
    println!("--- swanctl --list-sas ---\n{sas}");
    assert_ne!(d.children[0].sa.inbound.spi, old);
    assert!(d.children[0].sa.replaces == Some(old));
    ping(&mut d, 2);
    udp_from_charon(&mut d);
}

/// Both sides rekey the IKE SA at once (RFC 7296 §2.8.2), forced as for the child SA.
/// Afterwards one IKE SA is left on both sides, the same one, it still owns the child SA, and
/// both liveness checks and traffic work.
fn simultaneous_ike_rekey(lab: &mut Lab) {
    ike_rekeys_collide(lab, Collision::AsSent);
}

fn ike_rekey_in_flight_on_deleted_ike_sa(lab: &mut Lab) {
    ike_rekeys_collide(lab, Collision::AnswerFirst);
}

/// Both sides rekey the IKE SA at once. As sent, each side sees a collision (RFC 7296 §2.8.2)
/// or charon takes our answer first; answer first, charon sees none, completes its rekey and
/// deletes the old IKE SA with our request in flight, and its new IKE SA keeps the child SAs.
fn ike_rekeys_collide(lab: &mut Lab, order: Collision) {
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    ping(&mut d, 1);

    d.hold = Some(Vec::new());
    let now = d.now();
    d.ep.rekey_ike_sa(now, sa).unwrap();
    d.pump();
    let out = lab.swanctl(&["--rekey", "--ike", "psk"]);
    assert!(out.contains("rekey completed successfully"), "{out}");
    d.run_until("charon's CREATE_CHILD_SA", Duration::from_secs(5), |d| {
        d.peer_requests.contains(&ExchangeType::CREATE_CHILD_SA)
    });
    release_in_order(&mut d, order, sa);

    let mut sas = String::new();
    d.run_until("one IKE SA on both sides", Duration::from_secs(10), |d| {
        sas = lab.swanctl(&["--list-sas"]);
        let ours = d.ep.summaries();
        ours.len() == 1
            && ours[0].state == SaState::Established
            && sas.matches("ESTABLISHED").count() == 1
            && sas.contains(&format!("{:016x}_i", ours[0].spi_i))
            && sas.contains(&format!("{:016x}_r", ours[0].spi_r))
    });
    println!("--- swanctl --list-sas ---\n{sas}");
    let ours = d.ep.summaries();
    assert_ne!(ours[0].id, sa);
    assert_eq!(ours[0].children.len(), 1);
    assert_eq!(sas.matches("INSTALLED").count(), 1, "{sas}");
    let now = d.now();
    let id = ours[0].id;
    d.ep.check_liveness(now, id).unwrap();
    d.run_until("our liveness check answered", Duration::from_secs(5), |d| {
        d.events.contains(&IkeEvent::LivenessConfirmed { sa: id })
    });
    ping(&mut d, 2);
    udp_from_charon(&mut d);
}

// Once flaky (one run in four): when charon took our answer to its rekey before our request, our
// endpoint lost the child SAs with the old IKE SA. Fixed in the endpoint; the answer-first order
// has its own test below, and `peer_ike_rekey_completing_before_it_sees_ours_keeps_the_child_sas`
// pins it in memory.
#[test]
fn simultaneous_ike_rekey_with_charon() {
    in_namespace(
        "simultaneous_ike_rekey_with_charon",
        "",
        simultaneous_ike_rekey,
    );
}

#[test]
fn ike_rekey_in_flight_on_an_ike_sa_charon_deleted() {
    in_namespace(
        "ike_rekey_in_flight_on_an_ike_sa_charon_deleted",
        "",
        ike_rekey_in_flight_on_deleted_ike_sa,
    );
}

/// Which of our two held packets charon gets first when a child rekey of ours meets its IKE
/// rekey.
#[derive(Clone, Copy, PartialEq)]
enum Collision {
    /// Both at once, our request first; charon's worker threads decide the order.
    AsSent,
    /// Our answer to charon's IKE rekey, and our request only once charon has deleted the old
    /// IKE SA: the request is left in flight on a deleted IKE SA.
    AnswerFirst,
}

/// Releases what we held during a collision: all at once, or our answer to charon's IKE rekey
/// first and our own request only once charon has deleted the old IKE SA `sa`.
fn release_in_order(d: &mut Driver, order: Collision, sa: IkeSaId) {
    match order {
        Collision::AsSent => d.release(),
        Collision::AnswerFirst => {
            let held = d.hold.take().unwrap_or_default();
            let request = held[0].contents.clone();
            let (ours, answers): (Vec<_>, Vec<_>) =
                held.into_iter().partition(|t| t.contents == request);
            d.hold = Some(ours);
            for t in answers {
                let sock = match t.socket {
                    WireSocket::Ike => &d.ike,
                    WireSocket::Natt => &d.natt,
                };
                sock.send_to(&t.contents, t.destination).unwrap();
            }
            // Anything we send from now on is held behind the stale request, then released in
            // order once the old IKE SA is gone.
            d.run_until(
                "charon deleting the old IKE SA",
                Duration::from_secs(5),
                |d| {
                    d.events.iter().any(|e| {
                        matches!(e, IkeEvent::IkeSaDeleted { sa: gone, by_peer: true } if *gone == sa)
                    })
                },
            );
            d.release();
        }
    }
}

fn child_rekey_meets_ike_rekey(lab: &mut Lab) {
    child_rekey_collides(lab, Collision::AsSent);
}

fn child_rekey_in_flight_on_deleted_ike_sa(lab: &mut Lab) {
    child_rekey_collides(lab, Collision::AnswerFirst);
}

/// Our child SA rekey and charon's IKE SA rekey cross (our request held until charon's has
/// arrived). charon answers TEMPORARY_FAILURE and we rekey the child again after a moment (RFC
/// 7296 §2.25), or charon deletes the old IKE SA with our request unanswered and we make it
/// again on the new one. Afterwards one IKE SA and one child SA pair are left on both sides, the
/// same, and traffic flows.
fn child_rekey_collides(lab: &mut Lab, order: Collision) {
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    ping(&mut d, 1);
    let old = d.children[0].sa.inbound.spi;
    d.hold = Some(Vec::new());
    let now = d.now();
    d.ep.rekey_child(now, sa, old).unwrap();
    d.pump();
    let out = lab.swanctl(&["--rekey", "--ike", "psk"]);
    assert!(out.contains("rekey completed successfully"), "{out}");
    d.run_until("charon's CREATE_CHILD_SA", Duration::from_secs(5), |d| {
        d.peer_requests.contains(&ExchangeType::CREATE_CHILD_SA)
    });
    release_in_order(&mut d, order, sa);
    // Two outcomes are correct, and which one happens depends on the order in which charon's
    // worker threads take the two packets we just released. Either charon sees our child rekey
    // while its IKE rekey is still open and answers TEMPORARY_FAILURE (we make the request again
    // 1 to 2 s later, on the new IKE SA), or it takes our answer to its IKE rekey first and
    // deletes the old IKE SA with our request unanswered (we make it again at once, on the new
    // IKE SA). Both end in the same state, checked below.
    let mut sas = String::new();
    d.run_until(
        "the child rekeyed, one IKE SA and one pair on both sides",
        Duration::from_secs(10),
        |d| {
            sas = lab.swanctl(&["--list-sas"]);
            let ours = d.ep.summaries();
            d.children.len() == 1
                && d.children[0].sa.replaces == Some(old)
                && ours.len() == 1
                && ours[0].state == SaState::Established
                && ours[0].children.len() == 1
                && sas.matches("ESTABLISHED").count() == 1
                && sas.matches("INSTALLED").count() == 1
                && sas.contains(&format!("{:016x}_i", ours[0].spi_i))
                && sas.contains(&format!("in  {:08x}", ours[0].children[0].1))
        },
    );
    println!("--- swanctl --list-sas ---\n{sas}");
    let temp_fail = lab.log().contains("N(TEMP_FAIL)");
    let old_ike_deleted_first = d
        .events
        .iter()
        .any(|e| matches!(e, IkeEvent::IkeSaDeleted { sa: gone, by_peer: true } if *gone == sa));
    println!(
        "collision outcome: {}",
        if temp_fail {
            "TEMPORARY_FAILURE, request made again"
        } else {
            "old IKE SA deleted with our request in flight, request made again"
        }
    );
    if order == Collision::AnswerFirst {
        assert!(!temp_fail && old_ike_deleted_first, "{:?}", d.events);
    }
    assert!(
        temp_fail || old_ike_deleted_first,
        "our child rekey was neither refused with TEMPORARY_FAILURE nor left in flight on a \
         deleted IKE SA: {:?}",
        d.events
    );
    let rekeyed_on = d.children[0].sa.ike_sa;
    assert_ne!(rekeyed_on, sa, "the child rekey finished on the old IKE SA");
    ping(&mut d, 2);
    udp_from_charon(&mut d);
}

#[test]
fn child_rekey_colliding_with_charon_ike_rekey() {
    in_namespace(
        "child_rekey_colliding_with_charon_ike_rekey",
        "",
        child_rekey_meets_ike_rekey,
    );
}

#[test]
fn child_rekey_in_flight_on_an_ike_sa_charon_deleted() {
    in_namespace(
        "child_rekey_in_flight_on_an_ike_sa_charon_deleted",
        "",
        child_rekey_in_flight_on_deleted_ike_sa,
    );
}

#[test]
fn simultaneous_child_rekey_with_charon() {
    in_namespace(
        "simultaneous_child_rekey_with_charon",
        "",
        simultaneous_child_rekey,
    );
}

/// IPv6 outside and inside: IKE and ESP-in-UDP between fd00:10::2 (us) and fd00:10::1
/// (charon), NAT detection hashes over IPv6 addresses, and ICMPv6 echoes between the inner
/// addresses fd00:99::2 and fd00:99::1 through a tunnel-mode child SA (Next Header 41).
fn ipv6(lab: &mut Lab) {
    let mut d = Driver::bound(OUR_IP6.into(), None, |_| {});
    let mut policy = IkePolicy::psk(Identity::Fqdn("v6.b.lab".into()), PSK);
    policy.mode = Mode::Tunnel;
    policy.local_ts = vec![host_selector(OUR_INNER6.into())];
    policy.remote_ts = vec![host_selector(CHARON_INNER6.into())];
    let (ike, natt) = (
        SocketAddr::new(CHARON_IP6.into(), 10500),
        SocketAddr::new(CHARON_IP6.into(), 14500),
    );
    let now = d.now();
    d.ep.connect(now, ike, Some(natt), policy).unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    assert_eq!(d.children[0].sa.peer, natt);
    await_log(lab, &mut d, "CHILD_SA v6-tunnel{1} established", 1);
    for seq in 1..=3u16 {
        let data = format!("wsock-echo6-{seq}");
        let req = icmpv6_echo(128, OUR_INNER6, CHARON_INNER6, seq, data.as_bytes());
        let packet = ipv6_packet(OUR_INNER6, CHARON_INNER6, IPPROTO_ICMPV6, 64, &req).unwrap();
        d.send_inner(&packet);
        let want = icmpv6_echo(129, CHARON_INNER6, OUR_INNER6, seq, data.as_bytes());
        d.run_until("an ICMPv6 echo reply", Duration::from_secs(5), |d| {
            d.received.iter().any(|p| {
                let Ok(inner) = InnerPacket::parse(41, p) else {
                    return false;
                };
                inner.src == IpAddr::V6(CHARON_INNER6)
                    && inner.protocol == IPPROTO_ICMPV6
                    && inner.packet[inner.transport_offset..] == want[..]
            })
        });
    }
    assert!(d.esp_refused.is_empty(), "ESP refused: {:?}", d.esp_refused);
    let sas = lab.swanctl(&["--list-sas"]);
    println!("--- swanctl --list-sas ---\n{sas}");
    assert!(sas.contains("INSTALLED, TUNNEL-in-UDP"), "{sas}");
    assert!(sas.contains("3 packets"), "{sas}");
}

/// An ICMPv6 echo message (type 128 request, 129 reply) with its checksum over the
/// pseudo-header of `src` and `dst`.
fn icmpv6_echo(kind: u8, src: Ipv6Addr, dst: Ipv6Addr, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0, 0x57, 0x53];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(m.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6]);
    pseudo.extend_from_slice(&m);
    let c = checksum(&pseudo);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn ipv6_outer_and_inner_with_charon() {
    in_namespace("ipv6_outer_and_inner_with_charon", "", ipv6);
}

/// Transport mode: charon's kernel-libipsec has tunnel mode only, so charon negotiates the
/// transport-mode child SA (our USE_TRANSPORT_MODE), fails to install it and answers
/// `N(NO_PROPOSAL_CHOSEN)`; the IKE SA is what interoperates, and it stays up.
fn transport_mode(lab: &mut Lab) {
    let mut d = Driver::new(None);
    d.failures_expected = true;
    let policy = IkePolicy::psk(Identity::Fqdn("tp.b.lab".into()), PSK);
    assert_eq!(policy.mode, Mode::Transport);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until("the child SA's fate", Duration::from_secs(10), |d| {
        d.events
            .iter()
            .any(|e| matches!(e, IkeEvent::ChildSaFailed { .. }))
    });
    let error = d
        .events
        .iter()
        .find_map(|e| match e {
            IkeEvent::ChildSaFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(error, IpsecError::IkeNoProposalChosen);
    assert_eq!(error.win32_code(), 13868);
    assert!(d.established().is_some());
    await_log(lab, &mut d, "unsupported mode", 1);
    let now = d.now();
    d.ep.check_liveness(now, sa).unwrap();
    d.run_until("our liveness check answered", Duration::from_secs(5), |d| {
        d.events.contains(&IkeEvent::LivenessConfirmed { sa })
    });
    assert_eq!(d.ep.sa_state(sa), Some(SaState::Established));
}

#[test]
fn transport_mode_child_refused_by_libipsec_ike_sa_stays() {
    in_namespace(
        "transport_mode_child_refused_by_libipsec_ike_sa_stays",
        "",
        transport_mode,
    );
}

/// INITIAL_CONTACT (RFC 7296 §2.4) both ways. charon restarts (losing its SAs) and initiates
/// again: its INITIAL_CONTACT makes us drop the stale IKE SA and child SA. Then we restart
/// (a new endpoint) and initiate again: our INITIAL_CONTACT makes charon drop ours.
fn initial_contact(lab: &mut Lab) {
    let responder = || {
        let mut policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
        tunnel_policy(&mut policy);
        policy
    };
    let initiate = |lab: &Lab| {
        lab.swanctl_command(&[
            "--initiate",
            "--ike",
            "to-wsock",
            "--child",
            "to-wsock-tunnel",
            "--timeout",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let mut d = Driver::new(Some(responder()));
    let (ok, text) = d.run_process("swanctl --initiate", initiate(lab), Duration::from_secs(15));
    assert!(ok, "{text}");
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    let (stale, ..) = d.established().unwrap();

    lab.restart();
    let (ok, text) = d.run_process("swanctl --initiate", initiate(lab), Duration::from_secs(15));
    assert!(ok, "{text}");
    assert!(text.contains("N(INIT_CONTACT)"), "{text}");
    d.run_until("the stale IKE SA gone", Duration::from_secs(5), |d| {
        d.events.contains(&IkeEvent::IkeSaDeleted {
            sa: stale,
            by_peer: true,
        })
    });
    let ours = d.ep.summaries();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_ne!(ours[0].id, stale);
    d.children.retain(|c| c.sa.ike_sa != stale);
    ping(&mut d, 1);
    drop(d);

    // We restart: a new endpoint that knows nothing of the IKE SA charon holds with us.
    for round in 0..2 {
        let mut d = Driver::new(None);
        let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
        tunnel_policy(&mut policy);
        let now = d.now();
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
        d.run_until(
            "the IKE SA and its child SA",
            Duration::from_secs(10),
            |d| !d.children.is_empty(),
        );
        ping(&mut d, 2 + round);
        let sas = lab.swanctl(&["--list-sas", "--ike", "psk"]);
        assert_eq!(
            sas.matches("ESTABLISHED").count(),
            1,
            "round {round}: charon kept a stale IKE SA: {sas}"
        );
    }
    assert!(lab
        .log()
        .contains("destroying duplicate IKE_SA for peer 'psk.b.lab', received INITIAL_CONTACT"));
}

#[test]
fn initial_contact_both_ways() {
    in_namespace("initial_contact_both_ways", "", initial_contact);
}

#[test]
fn cookies_and_invalid_ke_both_ways() {
    in_namespace(
        "cookies_and_invalid_ke_both_ways",
        "cookie_threshold = 1",
        cookies_and_invalid_ke,
    );
}

#[test]
fn wrong_psk_and_wrong_target_fail_13801() {
    in_namespace(
        "wrong_psk_and_wrong_target_fail_13801",
        "",
        authentication_failures,
    );
}

#[test]
fn our_initiator_psk_with_tunnel_traffic() {
    in_namespace("our_initiator_psk_with_tunnel_traffic", "", psk_initiator);
}

#[test]
fn our_initiator_ecdsa_certificates() {
    in_namespace("our_initiator_ecdsa_certificates", "", cert_initiator);
}

#[test]
fn charon_initiator_ecdsa_certificates_rfc4754() {
    in_namespace(
        "charon_initiator_ecdsa_certificates_rfc4754",
        "signature_authentication = no",
        charon_initiator_cert,
    );
}

/// charon proposes subnets (10.99.1.0/24 both ways); our responder narrows them to its host
/// selectors (RFC 7296 §2.9) and charon installs the narrowed child SA.
fn charon_initiator_wide(lab: &mut Lab) {
    let policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
    charon_initiates(lab, policy, "to-wsock-wide");
    assert!(lab
        .log()
        .contains("CHILD_SA to-wsock-wide-tunnel{1} established with SPIs"));
    assert!(lab.log().contains("TS 10.99.1.1/32 === 10.99.1.2/32"));
}

#[test]
fn charon_initiator_wide_selectors_narrowed() {
    in_namespace(
        "charon_initiator_wide_selectors_narrowed",
        "",
        charon_initiator_wide,
    );
}

/// Child SA deletes both ways, replayed and corrupted ESP packets of charon refused by us
/// (13913, 13915) without disturbing the SA, and RFC 7427 on our responder (charon, as
/// initiator, announces SHA2-256, so our AUTH is method 14).
fn deletes_and_bad_esp(lab: &mut Lab) {
    let mut policy = IkePolicy::certificate(Identity::Fqdn("c.lab".into()), lab.our_cert_auth());
    tunnel_policy(&mut policy);
    policy.target_name = Some("a.lab".into());
    let mut d = Driver::new(Some(policy));
    let initiate = lab
        .swanctl_command(&[
            "--initiate",
            "--ike",
            "to-wsock-cert",
            "--child",
            "to-wsock-cert-tunnel",
            "--timeout",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process("swanctl --initiate", initiate, Duration::from_secs(15));
    assert!(ok, "{text}");
    assert!(
        text.contains("authentication of 'c.lab' with ECDSA_WITH_SHA256_DER successful"),
        "{text}"
    );
    d.run_until("our child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    let (sa, ..) = d.established().unwrap();
    ping(&mut d, 1);

    // charon's last ESP packet again: a replay; then a copy with one bit flipped.
    let last = d.esp_seen.last().unwrap().clone();
    let now = d.now();
    let c = &mut d.children[0];
    let mut copy = last.clone();
    let replay = c.rx.open_tunnel(now, &mut copy).unwrap_err();
    assert_eq!(replay.win32_code(), 13913, "{replay:?}");
    let mut flipped = last.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 0x01;
    let forged = c.rx.open_tunnel(now, &mut flipped).unwrap_err();
    assert_eq!(forged, IpsecError::IntegrityCheckFailed);
    assert_eq!(forged.win32_code(), 13915);
    ping(&mut d, 2);

    // charon deletes the child SA; we learn it.
    let inbound = d.children[0].sa.inbound.spi;
    let terminate = lab
        .swanctl_command(&[
            "--terminate",
            "--child",
            "to-wsock-cert-tunnel",
            "--timeout",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process(
        "swanctl --terminate --child",
        terminate,
        Duration::from_secs(10),
    );
    assert!(
        ok && text.contains("terminate completed successfully"),
        "{text}"
    );
    d.run_until("charon's child Delete", Duration::from_secs(5), |d| {
        d.events.iter().any(|e| {
            matches!(e, IkeEvent::ChildSaDeleted { inbound_spi, by_peer: true, .. } if *inbound_spi == inbound)
        })
    });
    assert!(d.children.is_empty());

    // A new child SA from our side (CREATE_CHILD_SA as requester on charon's IKE SA), then our
    // Delete of it.
    let now = d.now();
    d.ep.create_child(now, sa).unwrap();
    d.run_until("our new child SA", Duration::from_secs(5), |d| {
        !d.children.is_empty()
    });
    ping(&mut d, 3);
    let inbound = d.children[0].sa.inbound.spi;
    let now = d.now();
    d.ep.delete_child(now, sa, inbound).unwrap();
    d.run_until("our child Delete answered", Duration::from_secs(5), |d| {
        d.events.iter().any(|e| {
            matches!(e, IkeEvent::ChildSaDeleted { inbound_spi, by_peer: false, .. } if *inbound_spi == inbound)
        })
    });
    let sas = lab.swanctl(&["--list-sas"]);
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    assert!(
        !sas.contains("INSTALLED"),
        "charon still has a child SA: {sas}"
    );
}

#[test]
fn child_deletes_replays_and_rfc7427_responder() {
    in_namespace(
        "child_deletes_replays_and_rfc7427_responder",
        "",
        deletes_and_bad_esp,
    );
}

/// Child SA rekeys by either side while traffic flows: a UDP client on charon's side sends 400
/// datagrams one after the other (each waits for its echo) while the child SA is rekeyed six
/// times, alternately by us and by charon; every datagram comes back.
fn rekeys_under_traffic(lab: &mut Lab) {
    let mut d = Driver::new(None);
    let mut policy = IkePolicy::psk(Identity::Fqdn("psk.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let now = d.now();
    let sa =
        d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
            .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    let client = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(2)
lost = 0
for i in range(400):
    msg = b"stream-%d" % i
    s.sendto(msg, (sys.argv[2], 7))
    try:
        while True:
            data, peer = s.recvfrom(2000)
            if data == msg:
                break
    except socket.timeout:
        lost += 1
print("lost", lost)
"#;
    let mut child = Command::new("python3")
        .args([
            "-c",
            client,
            &CHARON_INNER.to_string(),
            &OUR_INNER.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut rekeys = 0;
    let status = loop {
        let busy = d.pump();
        if rekeys < 6 && d.udp_echoed >= 50 * (rekeys + 1) {
            if rekeys % 2 == 0 {
                let spi = d.children.last().unwrap().sa.inbound.spi;
                let now = d.now();
                d.ep.rekey_child(now, sa, spi).unwrap();
            } else {
                let _ = lab
                    .swanctl_command(&["--rekey", "--child", "psk-tunnel"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
                    .wait();
            }
            rekeys += 1;
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the stream did not end"
        );
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("client: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(status.success());
    assert_eq!(rekeys, 6);
    let rekeyed = d
        .events
        .iter()
        .filter(|e| matches!(e, IkeEvent::ChildSaReady(c) if c.replaces.is_some()))
        .count();
    assert_eq!(rekeyed, 6, "six rekeys completed");
    assert!(
        text.contains("lost 0"),
        "datagrams lost across rekeys: {text}"
    );
    assert!(d.esp_refused.is_empty(), "ESP refused: {:?}", d.esp_refused);
}

#[test]
fn child_rekeys_under_traffic_lose_nothing() {
    in_namespace(
        "child_rekeys_under_traffic_lose_nothing",
        "",
        rekeys_under_traffic,
    );
}

/// Lifetimes drive the rekeys while traffic flows for 7 s: our child SAs have a soft lifetime
/// of 2.5 s (the driver rekeys on the soft expiry of the sending SA, as an owner must), so ours
/// come before charon's 3 s; charon rekeys the IKE SA after 4 s, before our IKE lifetime of
/// 6 s (rekey at 90 %) does. Nothing is lost, and one IKE SA and one child SA pair are left,
/// the same on both sides.
fn lifetimes(lab: &mut Lab) {
    let mut d = Driver::new(None);
    d.auto_rekey = true;
    let mut policy = IkePolicy::psk(Identity::Fqdn("life.b.lab".into()), PSK);
    tunnel_policy(&mut policy);
    let secs = |s: f64| Some(Duration::from_secs_f64(s));
    policy.child_lifetime = Lifetime {
        soft: LifetimeLimits {
            time: secs(2.5),
            bytes: None,
            packets: None,
        },
        hard: LifetimeLimits {
            time: secs(30.0),
            bytes: None,
            packets: None,
        },
    };
    policy.ike_lifetime = Some(Duration::from_secs(6));
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    let client = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(1)
lost = sent = 0
end = time.time() + 7
while time.time() < end:
    msg = b"life-%d" % sent
    sent += 1
    s.sendto(msg, (sys.argv[2], 7))
    try:
        while True:
            data, peer = s.recvfrom(2000)
            if data == msg:
                break
    except socket.timeout:
        lost += 1
    time.sleep(0.01)
print("sent", sent, "lost", lost)
"#;
    let child = Command::new("python3")
        .args([
            "-c",
            client,
            &CHARON_INNER.to_string(),
            &OUR_INNER.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, text) = d.run_process(
        "UDP stream from charon's side",
        child,
        Duration::from_secs(30),
    );
    assert!(ok, "{text}");
    let child_rekeys = d
        .events
        .iter()
        .filter(|e| matches!(e, IkeEvent::ChildSaReady(c) if c.replaces.is_some()))
        .count();
    let ike_rekeys = d
        .events
        .iter()
        .filter(|e| matches!(e, IkeEvent::IkeSaRekeyed { .. }))
        .count();
    println!("child rekeys {child_rekeys}, IKE SA rekeys {ike_rekeys}");
    assert!(child_rekeys >= 2, "{child_rekeys} child rekeys");
    assert!(d
        .sa_events
        .iter()
        .any(|(_, e)| matches!(e, SaEvent::SoftExpired(_))));
    assert!(ike_rekeys >= 1, "{ike_rekeys} IKE SA rekeys");
    assert!(
        lab.log().contains("initiating IKE_SA life[2]"),
        "charon's IKE SA rekey"
    );
    assert!(text.contains("lost 0"), "datagrams lost: {text}");
    assert!(d.esp_refused.is_empty(), "ESP refused: {:?}", d.esp_refused);
    assert!(!d
        .sa_events
        .iter()
        .any(|(_, e)| matches!(e, SaEvent::HardExpired(_))));
    // Settled: one IKE SA with one pair, the same at charon.
    let mut sas = String::new();
    d.run_until(
        "one IKE SA and one pair on both sides",
        Duration::from_secs(10),
        |d| {
            sas = lab.swanctl(&["--list-sas", "--ike", "life"]);
            let ours = d.ep.summaries();
            ours.len() == 1
                && ours[0].children.len() == 1
                && sas.matches("ESTABLISHED").count() == 1
                && sas.matches("INSTALLED").count() == 1
                && sas.contains(&format!("{:016x}_i", ours[0].spi_i))
                && sas.contains(&format!("in  {:08x}", ours[0].children[0].1))
        },
    );
    println!("--- swanctl --list-sas ---\n{sas}");
}

#[test]
fn lifetimes_drive_rekeys_on_both_sides_under_traffic() {
    in_namespace(
        "lifetimes_drive_rekeys_on_both_sides_under_traffic",
        "",
        lifetimes,
    );
}

/// charon's identity is its certificate's subject (ID_DER_ASN1_DN, strongSwan's default when a
/// certificate authenticates and no id is configured); we check it against the certificate and
/// our target name against the certificate's DNS names.
fn distinguished_name_identity(lab: &mut Lab) {
    let mut policy = IkePolicy::certificate(Identity::Fqdn("c.lab".into()), lab.our_cert_auth());
    tunnel_policy(&mut policy);
    policy.target_name = Some("host/a.lab".into());
    let mut d = Driver::new(None);
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    let (_, _, peer) = d.established().unwrap();
    match &peer {
        Identity::Other(t, der) => {
            assert_eq!(*t, wsock_ipsec::ike::wire::IdType::DER_ASN1_DN);
            assert!(der.windows(5).any(|w| w == b"a.lab"), "{peer:?}");
        }
        other => panic!("expected a DN identity, got {other:?}"),
    }
    await_log(lab, &mut d, "CHILD_SA dn-tunnel{1} established", 1);
    ping(&mut d, 1);
}

#[test]
fn charon_with_a_distinguished_name_identity() {
    in_namespace(
        "charon_with_a_distinguished_name_identity",
        "",
        distinguished_name_identity,
    );
}

/// Certificates from two different issuing CAs under one root (and no IPsec-IKE EKU): each
/// side sends its issuing CA's certificate after its own, and the other builds the chain to
/// the root it trusts.
fn intermediate_chains(lab: &mut Lab) {
    let mut policy = IkePolicy::certificate(
        Identity::Fqdn("im.b.lab".into()),
        cert_auth(&lab.our_im_cert),
    );
    tunnel_policy(&mut policy);
    policy.target_name = Some("a2.lab".into());
    let mut d = Driver::new(None);
    let now = d.now();
    d.ep.connect(now, charon_ike(), Some(charon_natt()), policy)
        .unwrap();
    d.run_until(
        "the IKE SA and its child SA",
        Duration::from_secs(10),
        |d| !d.children.is_empty(),
    );
    let log = lab.log();
    assert!(
        log.contains("authentication of 'im.b.lab' with ECDSA_WITH_SHA256_DER successful"),
        "charon did not verify our chain"
    );
    assert!(
        log.contains("received issuer cert \"CN=wsock issuing CA B\""),
        "our issuing CA"
    );
    assert!(
        log.contains("sending issuer cert \"CN=wsock issuing CA A\""),
        "charon's"
    );
    ping(&mut d, 1);
}

#[test]
fn certificate_chains_through_issuing_cas() {
    in_namespace(
        "certificate_chains_through_issuing_cas",
        "",
        intermediate_chains,
    );
}

/// charon initiates with its default proposals (many transforms per proposal, AEAD and
/// classic ones apart); our responder picks from them by its own preference.
fn charon_default_proposals(lab: &mut Lab) {
    let policy = IkePolicy::psk(Identity::Fqdn("c.wsock".into()), PSK);
    charon_initiates(lab, policy, "to-wsock-default");
    let log = lab.log();
    let selected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("selected proposal"))
        .collect();
    println!("{selected:#?}");
    assert!(selected.iter().any(|l| l.contains("IKE:")), "{selected:?}");
    assert!(selected.iter().any(|l| l.contains("ESP:")), "{selected:?}");
}

#[test]
fn charon_initiator_with_default_proposals() {
    in_namespace(
        "charon_initiator_with_default_proposals",
        "",
        charon_default_proposals,
    );
}

#[test]
fn charon_initiator_our_responder() {
    in_namespace("charon_initiator_our_responder", "", charon_initiator);
}

#[test]
fn rfc4739_user_password_our_initiator() {
    in_namespace("rfc4739_user_password_our_initiator", "", user_initiator);
}

#[test]
fn rfc4739_user_password_charon_initiator() {
    in_namespace("rfc4739_user_password_charon_initiator", "", user_responder);
}
