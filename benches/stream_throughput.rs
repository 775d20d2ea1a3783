//! One TCP stream between two emulated hosts (wsock Rust face, smoltcp over GRE-in-UDP on
//! loopback) against plain tokio TCP over loopback, in the same run. Prints:
//! `compare: stream_throughput ours=.. MB/s peer(tokio-tcp)=.. MB/s ratio=..` at the best link MTU
//! and `compare: stream_throughput_mtu1500 ...` at 1500.
//!
//! `WSOCK_BENCH_MB` sets the transfer size (default 256 MiB at the large MTU, a quarter at 1500).
//! For profiling: `WSOCK_BENCH_ONLY=best|mtu1500` runs one figure, `WSOCK_BENCH_SIDE=ours|peer`
//! one side (then the line printed is `measure:`, not `compare:`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 256 * 1024;

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn ours(total: usize, mtu: usize) -> Duration {
    let net = wsock::Network::builder(wsock::Scenario::default_scenario())
        .mtu(mtu)
        .start()
        .expect("network");
    let client = net.host("client").unwrap();
    let server = net.host("server").unwrap();
    let opts = wsock::SocketOptions {
        recv_buffer: 4 << 20,
        send_buffer: 4 << 20,
        nodelay: true,
        ..Default::default()
    };
    let listener =
        wsock::net::TcpListener::bind_with(&server, "0.0.0.0:5001".parse().unwrap(), opts).unwrap();
    net.runtime().unwrap().block_on(async move {
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0usize;
            while got < total {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "early end of stream");
                got += n;
            }
            got
        });
        let start = Instant::now();
        let mut c =
            wsock::net::TcpStream::connect_with(&client, "10.0.0.2:5001".parse().unwrap(), opts)
                .await
                .unwrap();
        let buf = vec![0x5au8; CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            c.write_all(&buf[..n]).await.unwrap();
            sent += n;
        }
        assert_eq!(reader.await.unwrap(), total);
        start.elapsed()
    })
}

fn peer(total: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0usize;
            while got < total {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got += n;
            }
            got
        });
        let start = Instant::now();
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        let buf = vec![0x5au8; CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            c.write_all(&buf[..n]).await.unwrap();
            sent += n;
        }
        assert_eq!(reader.await.unwrap(), total);
        start.elapsed()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn compare(figure: &str, total: usize, mtu: usize) {
    let rounds = 3;
    let side = std::env::var("WSOCK_BENCH_SIDE").unwrap_or_default();
    let mut o = Vec::new();
    let mut p = Vec::new();
    for _ in 0..rounds {
        if side != "peer" {
            o.push(mb_per_s(total, ours(total, mtu)));
        }
        if side != "ours" {
            p.push(mb_per_s(total, peer(total)));
        }
    }
    if !side.is_empty() {
        let (name, v) = if side == "peer" {
            ("tokio-tcp", p)
        } else {
            ("ours", o)
        };
        println!("measure: {figure} {name}={:.1} MB/s", median(v));
        return;
    }
    let (o, p) = (median(o), median(p));
    println!(
        "compare: {figure} ours={o:.1} MB/s peer(tokio-tcp)={p:.1} MB/s ratio={:.3}",
        o / p
    );
}

fn main() {
    let mb: usize = std::env::var("WSOCK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let only = std::env::var("WSOCK_BENCH_ONLY").unwrap_or_default();
    if only != "mtu1500" {
        compare("stream_throughput", mb << 20, 65000);
    }
    if only != "best" {
        compare("stream_throughput_mtu1500", (mb / 4).max(1) << 20, 1500);
    }
}
