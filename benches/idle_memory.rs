//! Idle memory per TCP connection: N idle connections between the default scenario's client and
//! server hosts (both ends in this process) against N tokio TCP connections over loopback (both
//! ends in this process too). A counting global allocator measures user-space heap bytes; kernel
//! socket buffers are excluded on both sides (tokio's sockets keep their data in the kernel,
//! ours in user space, which is why the comparison favours the peer). Prints
//! `compare: idle_conn_bytes ours=.. B peer(tokio-tcp)=.. B ratio=..` (bytes per connection,
//! both ends together), and the bytes still held after every connection closed.
//!
//! `WSOCK_BENCH_CONNS` sets N (default 10,000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Connections are opened this many at a time.
const WAVE: usize = 200;

/// Bytes per connection (both ends) and bytes still held after closing, for our stack.
fn ours(n: usize) -> (f64, isize) {
    let net = wsock::Network::builder(wsock::Scenario::default_scenario())
        .services(false)
        .start()
        .expect("network");
    let client = net.host("client").unwrap();
    let server = net.host("server").unwrap();
    let rt = net.runtime().unwrap();
    let listener = wsock::net::TcpListener::bind_with_backlog(
        &server,
        "0.0.0.0:5002".parse().unwrap(),
        wsock::SocketOptions::default(),
        WAVE * 2,
    )
    .unwrap();
    // Warm up: one connection opened and closed, so lazily built state is not counted.
    rt.block_on(async {
        let c = wsock::net::TcpStream::connect(&client, "10.0.0.2:5002".parse().unwrap());
        let (c, a) = tokio::join!(c, listener.accept());
        drop((c.unwrap(), a.unwrap()));
    });
    assert!(net.drain(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(600));
    let before = live();
    let mut conns = Vec::with_capacity(n);
    rt.block_on(async {
        while conns.len() < n {
            let k = WAVE.min(n - conns.len());
            let mut connects = Vec::with_capacity(k);
            for _ in 0..k {
                let client = client.clone();
                connects.push(tokio::spawn(async move {
                    wsock::net::TcpStream::connect(&client, "10.0.0.2:5002".parse().unwrap()).await
                }));
            }
            let mut accepted = Vec::with_capacity(k);
            for _ in 0..k {
                accepted.push(listener.accept().await.expect("accept").0);
            }
            for (c, a) in connects.into_iter().zip(accepted) {
                conns.push((c.await.unwrap().expect("connect"), a));
            }
        }
    });
    // Let handshakes' last ACKs and timers settle.
    std::thread::sleep(Duration::from_millis(300));
    let per_conn = (live() - before) as f64 / n as f64;
    drop(conns);
    assert!(
        net.drain(Duration::from_secs(30)),
        "connections did not close"
    );
    // TIME-WAIT is freed after a short grace; orphans are reaped by the driver's housekeeping.
    let deadline = Instant::now() + Duration::from_secs(10);
    while net.endpoint_count() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let held = live() - before;
    drop(listener);
    drop(rt);
    drop((client, server));
    drop(net);
    (per_conn, held)
}

/// The same for tokio TCP over loopback.
fn peer(n: usize) -> (f64, isize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (c, a) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        drop((c.unwrap(), a.unwrap()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = live();
        let mut conns = Vec::with_capacity(n);
        while conns.len() < n {
            let k = WAVE.min(n - conns.len());
            let mut connects = Vec::with_capacity(k);
            for _ in 0..k {
                connects.push(tokio::spawn(tokio::net::TcpStream::connect(addr)));
            }
            let mut accepted = Vec::with_capacity(k);
            for _ in 0..k {
                accepted.push(listener.accept().await.expect("accept").0);
            }
            for (c, a) in connects.into_iter().zip(accepted) {
                conns.push((c.await.unwrap().expect("connect"), a));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let per_conn = (live() - before) as f64 / n as f64;
        drop(conns);
        tokio::time::sleep(Duration::from_millis(300)).await;
        (per_conn, live() - before)
    });
    drop(rt);
    r
}

/// Raises the open-file limit so both ends of `n` connections fit (best effort).
fn raise_fd_limit(n: usize) -> usize {
    let want = (2 * n + 256) as libc::rlim_t;
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return n;
        }
        if r.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: r.rlim_max.max(want),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                let soft = libc::rlimit {
                    rlim_cur: r.rlim_max,
                    rlim_max: r.rlim_max,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                return n.min((r.rlim_cur as usize).saturating_sub(256) / 2);
            }
        }
    }
    n
}

fn main() {
    let n: usize = std::env::var("WSOCK_BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (o, o_held) = ours(n);
    let peer_n = raise_fd_limit(n);
    let (p, p_held) = peer(peer_n);
    println!(
        "note: user-space heap bytes (counting allocator), kernel socket buffers excluded on both sides; {n} connections (peer: {peer_n}), both ends in this process"
    );
    println!(
        "compare: idle_conn_bytes ours={o:.0} B peer(tokio-tcp)={p:.0} B ratio={:.2}",
        o / p
    );
    println!(
        "released: after closing every connection, ours holds {o_held} B more than before them ({:.1} B per connection), peer(tokio-tcp) {p_held} B",
        o_held as f64 / n as f64
    );
}
