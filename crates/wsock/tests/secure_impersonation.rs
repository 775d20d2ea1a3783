//! Two peers impersonated at once, on real secured connections: two threads of the raw face and
//! two tasks of the async face on one worker thread never see each other's identity.

mod common;

use std::mem::zeroed;
use std::ptr::{null, null_mut};
use std::sync::{Arc, Barrier};

use wsock::secure::SecuritySettings;
use wsock::sys::*;
use wsock::{Host, Network, Scenario};

/// The default scenario with a second client host.
const THREE_HOSTS: &str = r#"
name = "three"
seed = 3
mtu = 1500

[[host]]
name = "client"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
wire = "127.0.0.1:0"
machine = "CLIENT"
domain = "WSOCK"
app = 'C:\client.exe'

[[host]]
name = "client2"
ipv4 = "10.0.0.3"
ipv6 = "fd00::3"
wire = "127.0.0.1:0"
machine = "CLIENT2"
domain = "WSOCK"
app = 'C:\client.exe'

[[host]]
name = "server"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
wire = "127.0.0.1:0"
machine = "SERVER"
domain = "WSOCK"
app = 'C:\server.exe'
"#;

fn net() -> Network {
    let s = Scenario::from_toml_str(THREE_HOSTS, "three.toml").expect("scenario");
    Network::start(s).expect("network")
}

fn name_of(server: &Host) -> Option<String> {
    let me = wsock::ext::current_impersonation()?;
    let dir = wsock::identity::directory(server).ok()?;
    Some(
        dir.lookup_sid(&me.token().user().sid)
            .ok()?
            .name()
            .to_string(),
    )
}

/// A secured connection from `from` to the server's listener `l`; returns the accepted socket.
fn secured_connection(from: &Host, server: &Host, l: SOCKET) -> (SOCKET, SOCKET) {
    wsock::ext::set_thread_host(from);
    let c = common::tcp();
    let st = SOCKET_SECURITY_SETTINGS {
        SecurityProtocol: SOCKET_SECURITY_PROTOCOL_DEFAULT,
        SecurityFlags: SOCKET_SETTINGS_GUARANTEE_ENCRYPTION,
    };
    assert_eq!(unsafe { WSASetSocketSecurity(c, &st, 8, null(), None) }, 0);
    let to = common::v4([10, 0, 0, 2], 27015);
    assert_eq!(
        unsafe { connect(c, common::sa(&to), common::SIN_LEN) },
        0,
        "connect: {}",
        common::last_error()
    );
    wsock::ext::set_thread_host(server);
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET);
    (c, a)
}

#[test]
fn two_threads_impersonating_two_peers_never_see_each_other() {
    let n = net();
    let (c1, c2, server) = (
        n.host("client").unwrap(),
        n.host("client2").unwrap(),
        n.host("server").unwrap(),
    );
    for h in [&c1, &c2, &server] {
        wsock::ext::set_thread_host(h);
        let mut data: WSADATA = unsafe { zeroed() };
        assert_eq!(unsafe { WSAStartup(0x0202, &mut data) }, 0);
    }
    wsock::ext::set_thread_host(&server);
    let l = common::tcp();
    assert_eq!(
        unsafe { WSASetSocketSecurity(l, null(), 0, null(), None) },
        0
    );
    common::bind_v4(l, [0, 0, 0, 0], 27015);
    assert_eq!(unsafe { listen(l, 4) }, 0);
    let (_k1, a1) = secured_connection(&c1, &server, l);
    let (_k2, a2) = secured_connection(&c2, &server, l);
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [(a1, "CLIENT$"), (a2, "CLIENT2$")]
        .into_iter()
        .map(|(s, expect)| {
            let (b, srv) = (barrier.clone(), server.clone());
            std::thread::spawn(move || {
                assert_eq!(unsafe { WSAImpersonateSocketPeer(s, null(), 0) }, 0);
                b.wait(); // both impersonate at once
                let mid = name_of(&srv);
                b.wait(); // neither reverts before both looked
                assert_eq!(unsafe { WSARevertImpersonation() }, 0);
                (mid, expect, name_of(&srv))
            })
        })
        .collect();
    for t in threads {
        let (mid, expect, after) = t.join().unwrap();
        assert_eq!(mid.as_deref(), Some(expect));
        assert_eq!(after, None);
    }
    assert_eq!(name_of(&server), None, "the test thread never impersonated");
}

#[test]
fn two_tasks_on_one_worker_impersonating_two_peers_never_see_each_other() {
    let n = net();
    let (c1, c2, server) = (
        n.host("client").unwrap(),
        n.host("client2").unwrap(),
        n.host("server").unwrap(),
    );
    let settings = SecuritySettings::new().require_encryption();
    let l =
        wsock::net::TcpListener::bind_secure(&server, "0.0.0.0:27015".parse().unwrap(), &settings)
            .unwrap();
    let rt = n.runtime().unwrap();
    let to: std::net::SocketAddr = "10.0.0.2:27015".parse().unwrap();
    let (k1, a1, k2, a2) = rt.block_on(async {
        let k1 = wsock::net::TcpStream::connect_secure(&c1, to, &settings, None)
            .await
            .unwrap();
        let (a1, _) = l.accept().await.unwrap();
        let k2 = wsock::net::TcpStream::connect_secure(&c2, to, &settings, None)
            .await
            .unwrap();
        let (a2, _) = l.accept().await.unwrap();
        (k1, a1, k2, a2)
    });
    // One worker thread: the two tasks interleave at every yield.
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = tokio::task::LocalSet::new().block_on(&local, async {
        let check = |a: wsock::net::TcpStream, srv: Host| async move {
            a.impersonate_peer(async {
                let mut names = Vec::new();
                for _ in 0..20 {
                    names.push(name_of(&srv));
                    tokio::task::yield_now().await;
                }
                names
            })
            .await
            .unwrap()
        };
        let t1 = tokio::task::spawn_local(check(a1, server.clone()));
        let t2 = tokio::task::spawn_local(check(a2, server.clone()));
        (t1.await.unwrap(), t2.await.unwrap(), name_of(&server))
    });
    drop((k1, k2));
    assert!(
        seen.0.iter().all(|n| n.as_deref() == Some("CLIENT$")),
        "{:?}",
        seen.0
    );
    assert!(
        seen.1.iter().all(|n| n.as_deref() == Some("CLIENT2$")),
        "{:?}",
        seen.1
    );
    assert_eq!(seen.2, None);
}
