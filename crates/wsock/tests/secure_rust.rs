//! The Rust face of the secure-socket extensions: `SecuritySettings`, secure TCP and UDP
//! sockets, `SecurityInfo`, peer tokens and task-scoped peer impersonation, and the raw face's
//! impersonation guard.

mod common;

use std::ptr::null_mut;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wsock::net::{TcpListener, TcpStream, UdpSocket};
use wsock::secure::{parse_settings, SecureError, SecuritySettings};
use wsock::sys::*;
use wsock::{Network, Scenario};

fn net() -> Network {
    Network::start(Scenario::default_scenario()).expect("network")
}

fn user_name(host: &wsock::Host, imp: &wsock::identity::Impersonation) -> String {
    let dir = wsock::identity::directory(host).unwrap();
    dir.lookup_sid(&imp.token().user().sid)
        .unwrap()
        .name()
        .to_string()
}

#[test]
fn settings_builder_matches_the_windows_structs() {
    // NULL settings.
    assert!(SecuritySettings::system_default().to_stack().is_none());
    assert!(SecuritySettings::system_default().to_bytes().is_empty());
    // The 8-byte protocol-neutral form.
    let b = SecuritySettings::new()
        .require_encryption()
        .allow_insecure()
        .to_bytes();
    assert_eq!(b, [0, 0, 0, 0, 3, 0, 0, 0]);
    // IPsec-only fields switch to SOCKET_SECURITY_SETTINGS_IPSEC, strings in bytes.
    let s = SecuritySettings::new()
        .require_encryption()
        .ipsec_flags(SOCKET_SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION)
        .qm_policy_key(0xaec2ef9c_3a4d_4d3e_8842_239942e39a47)
        .user_credentials("alice", Some("WSOCK"), Some("secret"));
    let b = s.to_bytes();
    assert_eq!(b.len(), 84 + 2 * (5 + 5 + 6));
    assert_eq!(&b[0..4], &1i32.to_le_bytes());
    assert_eq!(&b[72..84], &[10, 0, 0, 0, 10, 0, 0, 0, 12, 0, 0, 0]);
    // The GUID bytes are the Windows layout of SOCKET_DEFAULT2_QM_POLICY.
    let g = SOCKET_DEFAULT2_QM_POLICY;
    assert_eq!(&b[28..32], &g.data1.to_le_bytes());
    assert_eq!(&b[36..44], &g.data4);
    let parsed = parse_settings(&b).unwrap();
    assert_eq!(Some(parsed.clone()), s.to_stack());
    assert_eq!(parsed.user.as_deref(), Some("alice"));
    assert!(
        !format!("{s:?}").contains("secret"),
        "Debug hides the password"
    );
    assert_eq!(s.validate(), Ok(()));
    // A user name past the 65 534-byte limit is refused as the raw face would.
    let long = "a".repeat(40_000);
    let bad = SecuritySettings::ipsec().user_credentials(&long, None, None);
    assert!(matches!(bad.validate(), Err(SecureError::InvalidValue(_))));
}

#[test]
fn secure_tcp_connection_reports_security_tokens_and_impersonation() {
    let n = net();
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    let settings = SecuritySettings::new().require_encryption();
    let listener =
        TcpListener::bind_secure(&server, "0.0.0.0:27015".parse().unwrap(), &settings).unwrap();
    n.runtime().unwrap().block_on(async {
        let mut c = TcpStream::connect_secure(
            &client,
            "10.0.0.2:27015".parse().unwrap(),
            &settings,
            Some("host/SERVER"),
        )
        .await
        .unwrap();
        let (mut a, _) = listener.accept().await.unwrap();
        c.write_all(b"12345678").await.unwrap();
        let mut buf = [0u8; 8];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"12345678");

        let info = c.security_info().unwrap();
        assert!(info.secured && info.encrypted, "{info:?}");
        assert_eq!(info.flags() & 0x3, 0x3);
        assert!(info.mm_sa_id != 0 && info.qm_sa_id != 0);
        assert_eq!(info.peer_machine.as_deref(), Some("SERVER"));
        let sinfo = a.security_info().unwrap();
        assert!(sinfo.secured && sinfo.encrypted);
        assert_eq!(sinfo.peer_machine.as_deref(), Some("CLIENT"));

        // Tokens: none without access, two closable handles with TOKEN_QUERY, no leak.
        assert_eq!(a.peer_tokens(0).unwrap(), Default::default());
        let t = a.peer_tokens(TOKEN_QUERY).unwrap();
        assert!(t.application != 0 && t.machine != 0);
        assert_eq!(wsock::identity::open_handles(&n), 2);
        unsafe {
            assert_eq!(CloseHandle(t.application as HANDLE), 1);
            assert_eq!(CloseHandle(t.machine as HANDLE), 1);
        }
        assert_eq!(wsock::identity::open_handles(&n), 0);

        // Task-scoped impersonation of the peer (its machine: no user authenticated).
        let who = a
            .impersonate_peer(async {
                let me = wsock::net::current_impersonation().expect("impersonating");
                user_name(&server, &me)
            })
            .await
            .unwrap();
        assert_eq!(who, "CLIENT$");
        assert!(wsock::net::current_impersonation().is_none());
    });
}

#[test]
fn clear_text_streams_have_no_peer_identity() {
    let n = net();
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    let listener = TcpListener::bind(&server, "0.0.0.0:27016".parse().unwrap()).unwrap();
    n.runtime().unwrap().block_on(async {
        let c = TcpStream::connect(&client, "10.0.0.2:27016".parse().unwrap())
            .await
            .unwrap();
        let (_a, _) = listener.accept().await.unwrap();
        let info = c.security_info().unwrap();
        assert!(!info.secured && !info.encrypted);
        assert_eq!(info.flags(), 0);
        assert_eq!(c.peer_tokens(TOKEN_QUERY).unwrap(), Default::default());
        let e = c.impersonate_peer(async {}).await.unwrap_err();
        assert_eq!(e.wsa_code(), WSAEINVAL);
    });
}

#[test]
fn secure_udp_pair_with_a_target_name_per_peer() {
    let n = net();
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    let settings = SecuritySettings::new().require_encryption();
    let srv = UdpSocket::bind_secure(&server, "0.0.0.0:5000".parse().unwrap(), &settings).unwrap();
    let cli = UdpSocket::bind_secure(&client, "0.0.0.0:0".parse().unwrap(), &settings).unwrap();
    let to = "10.0.0.2:5000".parse().unwrap();
    cli.set_peer_target_name(to, "host/SERVER").unwrap();
    // A second peer gets its own name; a zero address is refused.
    cli.set_peer_target_name("10.0.0.3:5000".parse().unwrap(), "host/OTHER")
        .unwrap();
    let zero = cli
        .set_peer_target_name("0.0.0.0:0".parse().unwrap(), "host/X")
        .unwrap_err();
    assert_eq!(zero.wsa_code(), WSAEINVAL);
    n.runtime().unwrap().block_on(async {
        cli.send_to(b"hello", to).await.unwrap();
        let mut buf = [0u8; 16];
        let (k, from) = srv.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..k], b"hello");
        let info = cli.security_info(to).unwrap();
        assert!(info.secured && info.encrypted, "{info:?}");
        let sinfo = srv.security_info(from).unwrap();
        assert!(sinfo.secured);
        let who = srv
            .impersonate_peer(from, async {
                user_name(&server, &wsock::net::current_impersonation().unwrap())
            })
            .await
            .unwrap();
        assert_eq!(who, "CLIENT$");
        // The same as a thread guard.
        {
            let _g = wsock::ext::impersonate_scoped(srv.peer_impersonation(from).unwrap());
            assert_eq!(
                user_name(&server, &wsock::ext::current_impersonation().unwrap()),
                "CLIENT$"
            );
        }
        assert!(wsock::ext::current_impersonation().is_none());
    });
    cli.delete_peer_target_name(to).unwrap();
    assert_eq!(
        cli.security_info("0.0.0.0:5000".parse().unwrap())
            .unwrap_err()
            .wsa_code(),
        WSAEINVAL
    );
}

/// The raw face's guard: `WSAImpersonateSocketPeer` until the guard drops.
#[test]
fn raw_socket_impersonation_guard_reverts_on_drop() {
    let (_n, client, server) = common::started();
    wsock::ext::set_thread_host(&server);
    let l = common::tcp();
    assert_eq!(
        unsafe { WSASetSocketSecurity(l, std::ptr::null(), 0, std::ptr::null(), None) },
        0
    );
    common::bind_v4(l, [0, 0, 0, 0], 27015);
    assert_eq!(unsafe { listen(l, 4) }, 0);
    wsock::ext::set_thread_host(&client);
    let c = common::tcp();
    assert_eq!(
        unsafe { WSASetSocketSecurity(c, std::ptr::null(), 0, std::ptr::null(), None) },
        0
    );
    let to = common::v4([10, 0, 0, 2], 27015);
    assert_eq!(
        unsafe { connect(c, common::sa(&to), common::SIN_LEN) },
        0,
        "connect: {}",
        common::last_error()
    );
    let a = unsafe { accept(l, null_mut(), null_mut()) };
    assert_ne!(a, INVALID_SOCKET);
    assert!(wsock::ext::current_impersonation().is_none());
    {
        let _g = wsock::ext::impersonate_socket_peer(a, None).unwrap();
        let me = wsock::ext::current_impersonation().unwrap();
        assert_eq!(user_name(&server, &me), "CLIENT$");
    }
    assert!(wsock::ext::current_impersonation().is_none());
    // UDP needs the peer's address.
    let u = common::udp();
    assert_eq!(
        wsock::ext::impersonate_socket_peer(u, None).unwrap_err(),
        WSAEFAULT
    );
}

/// `TcpStream::security_info_watching` (the Rust face of
/// `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE`): watching `QmSaId`, the first quick
/// mode rekey (2 s lifetimes) aborts the connection; reads fail with `ConnectionAborted`
/// (WSAECONNABORTED), the peer's with `ConnectionReset`. Watching `MmSaId` only, a connection lives through quick mode rekeys.
#[test]
fn a_watching_query_aborts_the_stream_at_a_quick_mode_rekey() {
    let n = Network::builder(Scenario::default_scenario())
        .ipsec_setup(|_, s| {
            s.child_lifetime =
                wsock_stack::core::child_lifetime(Some(std::time::Duration::from_secs(2)), None);
        })
        .start()
        .expect("network");
    let (client, server) = (n.host("client").unwrap(), n.host("server").unwrap());
    let settings = SecuritySettings::new().require_encryption();
    let listener =
        TcpListener::bind_secure(&server, "0.0.0.0:27015".parse().unwrap(), &settings).unwrap();
    n.runtime().unwrap().block_on(async {
        let connect = || {
            TcpStream::connect_secure(
                &client,
                "10.0.0.2:27015".parse().unwrap(),
                &settings,
                Some("host/SERVER"),
            )
        };
        let mut qm_watcher = connect().await.unwrap();
        let (mut qm_peer, _) = listener.accept().await.unwrap();
        let mut mm_watcher = connect().await.unwrap();
        let (mut mm_peer, _) = listener.accept().await.unwrap();
        let info = qm_watcher
            .security_info_watching(wsock::secure::SaFields {
                mm: false,
                qm: true,
            })
            .unwrap();
        assert!(info.secured && info.qm_sa_id != 0, "{info:?}");
        mm_watcher
            .security_info_watching(wsock::secure::SaFields {
                mm: true,
                qm: false,
            })
            .unwrap();
        let mut buf = [0u8; 16];
        let deadline = std::time::Duration::from_secs(60);
        let err = tokio::time::timeout(deadline, qm_watcher.read(&mut buf))
            .await
            .expect("the rekey came")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted, "{err}");
        assert!(err.to_string().contains("QmSaId"), "{err}");
        let err = tokio::time::timeout(deadline, qm_peer.read(&mut buf))
            .await
            .expect("the reset came")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        mm_watcher.write_all(b"still here").await.unwrap();
        mm_peer.read_exact(&mut buf[..10]).await.unwrap();
        assert_eq!(&buf[..10], b"still here");
    });
}
