//! The IPsec rekey soak (issue 8, "Done when"): a large transfer over one secured TCP connection
//! between the default scenario's two hosts, with child SA byte lifetimes short enough to force
//! many quick mode rekeys, under 2% loss on the link (IKE messages are lost too, and recovered
//! by IKE retransmission). Checks that:
//! - the data arrives byte-identical (SHA-256 of what was sent and of what was received, and the
//!   byte count);
//! - the client created at least 21 quick mode SAs (the first one and >= 20 rekeys), counted from
//!   the sequential QM SA ids the SA database reports, and corroborated by the key log (two
//!   `esp_sa` records per child SA);
//! - the traffic was ESP (child SAs sealed bytes) and nothing failed integrity.
//!
//! Outcomes only: no timing is asserted (throughput is printed). Seeds are printed at the start
//! and in every assertion message. `WSOCK_SOAK_REKEY_MB` overrides the size for local runs.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};
use wsock_stack::core::child_lifetime;
use wsock_stack::stages::DropReason;
use wsock_stack::{
    Endpoint, Family, Faults, Host, Network, Scenario, SecuritySettings, Shutdown, SocketOptions,
};

/// Network seed (link faults, IKE randomness of the scenario's hosts).
const NET_SEED: u64 = 0x5eed_2026;
/// Seed of the byte stream.
const DATA_SEED: u64 = 0xda7a_0008;
/// Transfer size. 256 MiB is what the issue asks for; see the module docs for the override.
const TOTAL_MIB: usize = 256;
/// Child SAs the transfer must create at least (the first one and 20 rekeys).
const MIN_CHILD_SAS: u64 = 21;
/// Link MTU: large, so each ESP packet carries a big TCP segment.
const MTU: usize = 65000;
/// Whole-test safety net (the soak must end well under 10 minutes).
const SAFETY: Duration = Duration::from_secs(480);
const CHUNK: usize = 256 * 1024;

/// A deterministic byte stream (xorshift64*).
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn opts(o: &mut SocketOptions) {
    // Large buffers: many segments in flight, so fast retransmit repairs most losses.
    o.recv_buffer = 4 << 20;
    o.send_buffer = 4 << 20;
}

/// Default settings (NULL `SOCKET_SECURITY_SETTINGS`: integrity first, as Windows).
fn secure() -> Option<SecuritySettings> {
    Some(SecuritySettings {
        protocol: 0,
        flags: 0,
        ..SecuritySettings::default()
    })
}

/// A host's packet drops by reason (nonzero ones).
fn drops(h: &Host) -> Vec<(DropReason, u64)> {
    let d = h.counters().drops;
    DropReason::ALL
        .iter()
        .map(|r| (*r, d.get(*r)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// QM SA ids of a host's SA database right now.
fn qm_ids(h: &Host) -> Vec<u64> {
    h.security_associations()
        .child
        .iter()
        .map(|c| c.qm_sa_id)
        .collect()
}

struct Outcome {
    received: usize,
    sent_digest: Vec<u8>,
    recv_digest: Vec<u8>,
    client_qm_seen: BTreeSet<u64>,
    elapsed: Duration,
}

async fn run(net: &Network, total: usize, ctx: &str) -> Outcome {
    let client = net.host("client").unwrap();
    let server = net.host("server").unwrap();
    let listen_at: SocketAddr = "0.0.0.0:5101".parse().unwrap();
    let l = server.tcp(Family::V4);
    l.set_options(opts).unwrap();
    l.set_security(secure()).unwrap();
    l.bind(listen_at).unwrap();
    l.listen(4).unwrap();

    let c: Endpoint = client.tcp(Family::V4);
    c.set_options(opts).unwrap();
    c.set_security(secure()).unwrap();
    let start = Instant::now();
    c.connect("10.0.0.2:5101".parse().unwrap())
        .await
        .unwrap_or_else(|e| panic!("{ctx}: secure connect failed: {e:?}"));
    let (a, _) = l.accept().await.expect("accept");
    let q = c.query_security(None).unwrap();
    assert!(q.secured, "{ctx}: the connection is IPsec-protected: {q:?}");

    let sender = tokio::spawn(async move {
        let mut gen = Bytes(DATA_SEED);
        let mut buf = vec![0u8; CHUNK];
        let mut hash = Context::new(&SHA256);
        let mut sent = 0usize;
        while sent < total {
            let n = CHUNK.min(total - sent);
            gen.fill(&mut buf[..n]);
            hash.update(&buf[..n]);
            let mut off = 0;
            while off < n {
                off += c.send(&buf[off..n]).await.expect("send");
            }
            sent += n;
        }
        c.shutdown(Shutdown::Send).expect("shutdown");
        // Keep the socket until the receiver has read everything (it closes first).
        let mut rest = [0u8; 1];
        let _ = c.recv(&mut rest).await;
        hash.finish().as_ref().to_vec()
    });

    let mut hash = Context::new(&SHA256);
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0usize;
    let mut seen = BTreeSet::new();
    let mut next_report = 0usize;
    let mut next_poll = 0usize;
    loop {
        let n = a.recv(&mut buf).await.expect("recv");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        got += n;
        if got >= next_poll {
            seen.extend(qm_ids(&client));
            next_poll = got + (512 << 10);
        }
        if got >= next_report {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{ctx}: {:>4} MiB received, {:>6.1} s, {:>6.2} MB/s, client QM SA ids seen {} (max {})",
                got >> 20,
                secs,
                got as f64 / 1e6 / secs,
                seen.len(),
                seen.last().copied().unwrap_or(0)
            );
            next_report = got + (16 << 20);
        }
    }
    seen.extend(qm_ids(&client));
    let elapsed = start.elapsed();
    drop(a);
    let sent_digest = sender.await.expect("sender task");
    Outcome {
        received: got,
        sent_digest,
        recv_digest: hash.finish().as_ref().to_vec(),
        client_qm_seen: seen,
        elapsed,
    }
}

/// The soak. On the 2-core development machine, in the debug test build (dependencies optimized,
/// see the root Cargo.toml) with other builds running beside it, the 256 MiB took 25-80 s
/// (3.4-10.5 MB/s) and created 30-32 child SAs; the figures are printed at the end of each run.
/// Also printed: drops by reason. There are none without loss. With loss, a lost
/// CREATE_CHILD_SA message (retransmitted after the IKE schedule's first wait) outlasts the 10%
/// between the soft and the hard byte limit, so a few packets are lost around some rekeys
/// (seen: `HoldOverflow` on the sending host while its traffic waits for the new SA). TCP
/// repairs them, so they are reported here, not asserted.
#[test]
fn ipsec_transfer_under_loss_with_many_child_sa_rekeys_arrives_intact() {
    let mib = std::env::var("WSOCK_SOAK_REKEY_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(TOTAL_MIB);
    let total = mib << 20;
    // Soft lifetime (90 % of hard) every total/28 bytes: ~28 rekeys expected for the data
    // direction, margin above the 20 asked for.
    let lifetime_bytes = (total / 28) as u64 * 10 / 9;
    let ctx = format!(
        "net seed {NET_SEED:#x}, data seed {DATA_SEED:#x}, {mib} MiB, child SA byte lifetime {lifetime_bytes}"
    );
    eprintln!("{ctx}: starting (2% loss both ways, MTU {MTU})");

    let net = Network::builder(Scenario::default_scenario())
        .seed(NET_SEED)
        .mtu(MTU)
        .keylog(true)
        .ipsec_setup(move |_, s| {
            s.child_lifetime = child_lifetime(None, Some(lifetime_bytes));
        })
        .start()
        .expect("network starts");
    let faults = Faults {
        loss: 0.02,
        ..Faults::default()
    };
    net.set_faults("client", "server", faults).unwrap();
    net.set_faults("server", "client", faults).unwrap();

    let rt = net.runtime().unwrap();
    let out = rt
        .block_on(async { tokio::time::timeout(SAFETY, run(&net, total, &ctx)).await })
        .unwrap_or_else(|_| panic!("{ctx}: the transfer did not finish within {SAFETY:?}"));

    let client = net.host("client").unwrap();
    let server = net.host("server").unwrap();
    let sas = client.security_associations();
    let keylog = client.key_log();
    let cc = client.counters();
    let created = out.client_qm_seen.last().copied().unwrap_or(0);
    eprintln!(
        "{ctx}: {} bytes in {:.1} s ({:.2} MB/s); sha256 sent {} received {}",
        out.received,
        out.elapsed.as_secs_f64(),
        out.received as f64 / 1e6 / out.elapsed.as_secs_f64(),
        hex(&out.sent_digest),
        hex(&out.recv_digest)
    );
    eprintln!(
        "{ctx}: client QM SA ids seen {} (highest {created}), esp_sa key records {}, \
         client wire sent {} fault-dropped {}, ESP errors client {:?} server {:?}, \
         drops client {:?} server {:?}",
        out.client_qm_seen.len(),
        keylog.esp_sa.len(),
        cc.wire_sent,
        cc.fault_dropped,
        client.esp_errors(),
        server.esp_errors(),
        drops(&client),
        drops(&server)
    );

    assert_eq!(out.received, total, "{ctx}: byte count");
    assert_eq!(
        hex(&out.recv_digest),
        hex(&out.sent_digest),
        "{ctx}: SHA-256 of the received stream"
    );
    assert!(
        cc.fault_dropped > 0,
        "{ctx}: the link really dropped datagrams"
    );
    // QM SA ids are handed out 1, 2, 3, ... per host as child SAs are created.
    assert!(
        created >= MIN_CHILD_SAS,
        "{ctx}: only {created} quick mode SAs were created (>= {MIN_CHILD_SAS} wanted, i.e. >= 20 rekeys)"
    );
    assert!(
        keylog.esp_sa.len() as u64 >= 2 * MIN_CHILD_SAS,
        "{ctx}: key log holds {} esp_sa records, want two per child SA",
        keylog.esp_sa.len()
    );
    // The SA database still holds an SA (the latest) and it carried ESP.
    assert!(
        sas.child.iter().any(|c| c.qm_sa_id >= MIN_CHILD_SAS),
        "{ctx}: the live child SA is a rekeyed one: {sas:?}"
    );
    assert!(
        sas.child.iter().any(|c| c.out_bytes > 0 || c.in_bytes > 0),
        "{ctx}: the live child SA carried ESP: {sas:?}"
    );
    assert_eq!(
        client.esp_errors().get(&13807).copied().unwrap_or(0)
            + server.esp_errors().get(&13807).copied().unwrap_or(0),
        0,
        "{ctx}: no ESP packet failed integrity (a lossy link drops, it does not corrupt)"
    );
}
