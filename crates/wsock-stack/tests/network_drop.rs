//! A dropped `Network` frees its hosts, sockets and threads; a process that sends, closes and
//! exits at once still delivers its data. One test binary of its own: `live_cores` counts
//! process-wide.

use std::time::Duration;

use wsock_stack::core::live_cores;
use wsock_stack::{Family, Network, Scenario};

const FIXED: &str = r#"
name = "fixed"
seed = 3
mtu = 9000

[[host]]
name = "client"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
wire = "127.0.0.1:47610"

[[host]]
name = "server"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
wire = "127.0.0.1:47620"
"#;

#[test]
fn dropped_networks_are_freed_and_data_survives_an_immediate_exit() {
    let before = live_cores();
    for i in 0..50 {
        let net = Network::start(Scenario::default_scenario()).unwrap();
        let c = net.host("client").unwrap();
        net.runtime()
            .unwrap()
            .block_on(async {
                let s = c.tcp(Family::V4);
                s.connect("10.0.0.2:7".parse().unwrap()).await?;
                s.send(b"x").await
            })
            .unwrap_or_else(|e| panic!("network {i}: {e}"));
    }
    assert_eq!(
        live_cores(),
        before,
        "every dropped network freed its hosts"
    );

    // A fixed-port scenario starts twice in one process: the first run's sockets are gone.
    let sc = Scenario::from_toml_str(FIXED, "fixed.toml").unwrap();
    for _ in 0..2 {
        let net = Network::start(sc.clone()).unwrap();
        drop(net);
    }

    // The client lives in a network of its own, sends 4 MiB, closes, and is dropped at once
    // (what a process exit does). Its drop waits until the data and FIN are delivered.
    let server_net = Network::builder(sc.clone())
        .local_hosts(["server"])
        .start()
        .unwrap();
    let server = server_net.host("server").unwrap();
    let l = server.tcp(Family::V4);
    l.bind("0.0.0.0:9000".parse().unwrap()).unwrap();
    l.listen(4).unwrap();
    let reader = server_net.runtime().unwrap().spawn(async move {
        let (a, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match a.recv(&mut buf).await {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("server read: {e}"),
            }
        }
        got
    });
    let data: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    {
        let client_net = Network::builder(sc)
            .local_hosts(["client"])
            .start()
            .unwrap();
        let client = client_net.host("client").unwrap();
        client_net.runtime().unwrap().block_on(async {
            let c = client.tcp(Family::V4);
            c.set_options(|o| o.send_buffer = 8 << 20).unwrap();
            c.connect("10.0.0.2:9000".parse().unwrap()).await.unwrap();
            let mut off = 0;
            while off < data.len() {
                off += c.send(&data[off..]).await.unwrap();
            }
            c.close().unwrap();
        });
        // `client` and `client_net` drop here, with most of the data still queued.
    }
    let got = server_net
        .runtime()
        .unwrap()
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), reader).await })
        .expect("the server saw the end of the stream")
        .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "every byte arrived in order");
}
