//! A program that sends, calls closesocket and WSACleanup, and exits at once must not lose
//! data: wsock's stack lives in the process, so the last `WSACleanup` waits (bounded) until
//! graceful closes have delivered their queued data and FIN.

use std::mem::size_of;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use wsock::sys::*;
use wsock::{Network, Scenario};

#[test]
fn last_wsacleanup_delivers_queued_data_and_fin_before_returning() {
    let net = Network::start(Scenario::default_scenario()).unwrap();
    let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
    let listener = wsock::net::TcpListener::bind(&server, "0.0.0.0:8300".parse().unwrap()).unwrap();
    // The server reads as the data comes (its window is 64 KiB): what it has read when the
    // link is cut below was delivered before WSACleanup returned.
    let reader = net.runtime().unwrap().spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut got))
            .await
            .map(|r| r.map(|_| got))
    });
    wsock::ext::set_thread_host(&client);
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    unsafe {
        let mut wsa: WSADATA = std::mem::zeroed();
        assert_eq!(WSAStartup(0x0202, &mut wsa), 0);
        let s = socket(AF_INET as i32, SOCK_STREAM, IPPROTO_TCP);
        let big: i32 = 4 << 20;
        assert_eq!(
            setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big as *const i32 as *const u8, 4),
            0
        );
        let mut to: SOCKADDR_IN = std::mem::zeroed();
        to.sin_family = AF_INET;
        to.sin_port = htons(8300);
        to.sin_addr.S_un.S_addr = u32::from_ne_bytes([10, 0, 0, 2]);
        assert_eq!(
            connect(
                s,
                &to as *const _ as *const SOCKADDR,
                size_of::<SOCKADDR_IN>() as i32
            ),
            0
        );
        assert_eq!(
            send(s, data.as_ptr(), data.len() as i32, 0),
            data.len() as i32
        );
        assert_eq!(closesocket(s), 0);
        assert_eq!(WSACleanup(), 0);
    }
    // From here on nothing crosses the link any more: whatever the server gets was delivered
    // before WSACleanup returned.
    net.set_partitioned("client", "server", true).unwrap();
    let got = net
        .runtime()
        .unwrap()
        .block_on(reader)
        .unwrap()
        .expect("the FIN had arrived before the link was cut")
        .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}
