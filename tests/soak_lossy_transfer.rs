//! Long transfers over faulty links (the soak target; CI runs it, see `.ci/run`):
//! - 64 MiB over TCP under 5% loss, 5% reordering and 1% duplication arrives byte-identical, for
//!   three seeds;
//! - a partition stops a transfer and a repair lets it finish intact.
//!
//! Outcomes only: no timing is asserted. Every seed is printed on failure.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsock::net::{TcpListener, TcpStream};
use wsock::{Faults, Network, Scenario};

/// A deterministic byte stream (xorshift64*), so the receiver can check every byte.
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

fn lossy_network(seed: u64, mtu: usize) -> Network {
    let net = Network::builder(Scenario::default_scenario())
        .seed(seed)
        .mtu(mtu)
        .start()
        .expect("network starts");
    let faults = Faults {
        loss: 0.05,
        reorder: 0.05,
        duplicate: 0.01,
        ..Faults::default()
    };
    net.set_faults("client", "server", faults).unwrap();
    net.set_faults("server", "client", faults).unwrap();
    net
}

/// Sends `total` bytes client -> server; returns (bytes received, first mismatch offset).
async fn transfer(
    net: &Network,
    total: usize,
    seed: u64,
    port: u16,
    on_progress: impl Fn(usize) + Send + 'static,
) -> (usize, Option<usize>) {
    let client = net.host("client").unwrap();
    let server = net.host("server").unwrap();
    // 4 MiB buffers: many segments in flight, so fast retransmit (not the 1 s minimum RTO)
    // repairs most losses.
    let opts = wsock::SocketOptions {
        recv_buffer: 4 << 20,
        send_buffer: 4 << 20,
        ..Default::default()
    };
    let listener =
        TcpListener::bind_with(&server, format!("0.0.0.0:{port}").parse().unwrap(), opts).unwrap();
    let addr = format!("10.0.0.2:{port}").parse().unwrap();
    let sender = tokio::spawn(async move {
        let mut s = TcpStream::connect_with(&client, addr, opts)
            .await
            .expect("connect");
        let mut gen = Bytes(seed | 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0usize;
        while sent < total {
            let n = buf.len().min(total - sent);
            gen.fill(&mut buf[..n]);
            s.write_all(&buf[..n]).await.expect("write");
            sent += n;
        }
        s.shutdown().await.expect("shutdown");
        // Keep the stream open until the receiver has read everything.
        let mut rest = [0u8; 1];
        let _ = s.read(&mut rest).await;
    });
    let (mut r, _) = listener.accept().await.expect("accept");
    // The receiver regenerates the stream in the sender's 256 KiB chunks and compares.
    let mut gen = Bytes(seed | 1);
    let mut buf = vec![0u8; 256 * 1024];
    let mut want = vec![0u8; 256 * 1024];
    let mut want_pos = want.len();
    let mut got = 0usize;
    let mut mismatch = None;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            if want_pos == want.len() {
                let k = want.len().min(total.saturating_sub(got));
                if k == 0 {
                    // More bytes than were sent.
                    mismatch.get_or_insert(got);
                    break;
                }
                gen.fill(&mut want[..k]);
                want.truncate(k);
                want_pos = 0;
            }
            let k = (n - off).min(want.len() - want_pos);
            if mismatch.is_none() && buf[off..off + k] != want[want_pos..want_pos + k] {
                mismatch = Some(got);
            }
            got += k;
            off += k;
            want_pos += k;
        }
        if off < n {
            got += n - off;
        }
        on_progress(got);
    }
    drop(r);
    let _ = sender.await;
    (got, mismatch)
}

#[test]
fn tcp_64mib_under_loss_reorder_and_duplication_arrives_intact_for_three_seeds() {
    const TOTAL: usize = 64 << 20;
    for seed in [11u64, 22, 33] {
        let net = lossy_network(seed, 65000);
        let rt = net.runtime().unwrap();
        let (got, mismatch) = rt.block_on(transfer(&net, TOTAL, seed, 5001, |_| {}));
        let c = net.host("client").unwrap().counters();
        eprintln!(
            "seed {seed}: received {got} bytes; client wire sent {} fault-dropped {}",
            c.wire_sent, c.fault_dropped
        );
        assert_eq!(got, TOTAL, "seed {seed}: byte count");
        assert_eq!(mismatch, None, "seed {seed}: first differing offset");
        assert!(
            c.fault_dropped > 0,
            "seed {seed}: the link really dropped datagrams"
        );
    }
}

#[test]
fn partition_stops_the_transfer_and_repair_resumes_it() {
    let seed = 5u64;
    const TOTAL: usize = 8 << 20;
    let net = Network::builder(Scenario::default_scenario())
        .seed(seed)
        .mtu(9000)
        .start()
        .unwrap();
    let rt = net.runtime().unwrap();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p2 = progress.clone();
    let net2 = net.clone();
    let job = rt.spawn(async move {
        transfer(&net2, TOTAL, seed, 5002, move |n| {
            p2.store(n, std::sync::atomic::Ordering::SeqCst)
        })
        .await
    });
    // Let some data through, then partition.
    while progress.load(std::sync::atomic::Ordering::SeqCst) < (1 << 20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    net.set_partitioned("client", "server", true).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let during = progress.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    let after_wait = progress.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        during, after_wait,
        "seed {seed}: no byte crosses a partitioned link"
    );
    assert!(
        after_wait < TOTAL,
        "seed {seed}: the partition came before the end"
    );
    net.set_partitioned("client", "server", false).unwrap();
    let (got, mismatch) = rt.block_on(job).unwrap();
    assert_eq!(
        got, TOTAL,
        "seed {seed}: transfer resumed and completed after repair"
    );
    assert_eq!(mismatch, None, "seed {seed}: data intact");
}

#[test]
fn corruption_delay_and_jitter_do_not_change_a_byte() {
    let seed = 77u64;
    let net = Network::builder(Scenario::default_scenario())
        .seed(seed)
        .mtu(9000)
        .start()
        .unwrap();
    let faults = Faults {
        corrupt: 0.03,
        delay_ms: 1,
        jitter_ms: 2,
        ..Faults::default()
    };
    net.set_faults("client", "server", faults).unwrap();
    net.set_faults("server", "client", faults).unwrap();
    const TOTAL: usize = 4 << 20;
    let (got, mismatch) =
        net.runtime()
            .unwrap()
            .block_on(transfer(&net, TOTAL, seed, 5003, |_| {}));
    assert_eq!(got, TOTAL, "seed {seed}");
    assert_eq!(
        mismatch, None,
        "seed {seed}: corrupted packets are caught by checksums, never delivered"
    );
}
