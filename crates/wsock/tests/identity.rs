//! Identity at the raw and async faces (issue 9, part 6): peer tokens in the network's handle
//! table, `GetTokenInformation` with the size probe and the x64 layouts, `CloseHandle`,
//! `AccessCheck` with SDDL descriptors, per-thread and per-task impersonation, leaks and
//! hostile arguments. Every raw call asserts its return value and the last error.
//!
//! Each test starts its own network of the default scenario (`client` = machine `CLIENT` with
//! user `alice`, `server` = machine `SERVER` with user `svc`, domain `WSOCK`) and acts as the
//! server, whose peer is the client.

use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::{null, null_mut};
use std::sync::{Arc, Barrier};

use wsock::identity::{self, PeerTokens};
use wsock::sys::Win32::Foundation::*;
use wsock::sys::Win32::Security::*;
use wsock::sys::Win32::System::Threading::{GetCurrentThread, OpenThreadToken};
use wsock::sys::{WSAGetLastError, BOOL};
use wsock::wsock_identity::{
    rights, AuthMethod, Directory, GenericMapping, ImpersonationLevel, Sid, Token,
    TokenType as IdTokenType,
};
use wsock::{Host, Network, Scenario};

fn start() -> (Network, Host) {
    let net = Network::start(Scenario::default_scenario()).unwrap();
    let server = net.host("server").unwrap();
    (net, server)
}

fn dir(host: &Host) -> Arc<Directory> {
    identity::directory(host).unwrap()
}

fn h(raw: u64) -> HANDLE {
    raw as usize as HANDLE
}

fn last() -> u32 {
    unsafe { GetLastError() }
}

/// Reads the SID a `PSID` points at (as `ConvertSidToStringSidW` would).
unsafe fn sid_at(p: PSID) -> Sid {
    let count = *(p as *const u8).add(1) as usize;
    let bytes = std::slice::from_raw_parts(p as *const u8, 8 + 4 * count);
    Sid::from_bytes(bytes).unwrap()
}

/// An 8-byte aligned buffer of at least `len` bytes.
fn buffer(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

/// `GetTokenInformation` with the size probe: (required length, buffer).
fn query(token: u64, class: TOKEN_INFORMATION_CLASS) -> (u32, Vec<u64>) {
    unsafe {
        let mut len = 0u32;
        assert_eq!(
            GetTokenInformation(h(token), class, null_mut(), 0, &mut len),
            FALSE
        );
        assert_eq!(last(), ERROR_INSUFFICIENT_BUFFER);
        assert!(len > 0);
        let mut buf = buffer(len as usize);
        let mut len2 = 0u32;
        assert_eq!(
            GetTokenInformation(h(token), class, buf.as_mut_ptr().cast(), len, &mut len2),
            TRUE
        );
        assert_eq!(len2, len);
        (len, buf)
    }
}

fn close(raw: u64) {
    unsafe { assert_eq!(CloseHandle(h(raw)), TRUE) }
}

fn close_all(t: PeerTokens) {
    close(t.application);
    close(t.machine);
}

// ---------------------------------------------------------------- peer tokens

#[test]
fn peer_token_access_mask_zero_opens_nothing() {
    let (net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), 0).unwrap();
    assert_eq!(t, PeerTokens::default());
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn peer_without_user_gets_the_machine_token_as_application_token() {
    let (net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", None, TOKEN_QUERY).unwrap();
    assert!(t.application != 0 && t.machine != 0 && t.application != t.machine);
    let machine_sid = dir(&server).machine("CLIENT").unwrap().sid();
    for raw in [t.application, t.machine] {
        let (_, buf) = query(raw, TokenUser);
        let tu = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
        assert_eq!(unsafe { sid_at(tu.User.Sid) }, machine_sid);
    }
    close_all(t);
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn unknown_peer_names_are_refused() {
    let (_net, server) = start();
    let e = identity::peer_tokens(&server, "NOBODY", None, TOKEN_QUERY).unwrap_err();
    assert_eq!(e.win32_code(), 1317); // ERROR_NO_SUCH_USER
    let e = identity::peer_tokens(&server, "CLIENT", Some("mallory"), TOKEN_QUERY).unwrap_err();
    assert_eq!(e.win32_code(), 1317);
}

#[test]
fn directory_follows_the_scenario() {
    let (net, server) = start();
    let d = dir(&server);
    assert_eq!(d.domain(), "WSOCK");
    assert_eq!(d.machine("SERVER").unwrap().name(), "SERVER$");
    assert_eq!(d.user("WSOCK\\svc").unwrap().name(), "svc");
    assert_eq!(identity::directories(&net).unwrap().len(), 1);
    // Deterministic: another network of the same scenario has the same SIDs.
    let (_net2, server2) = start();
    assert_eq!(
        dir(&server2).user("alice").unwrap().sid(),
        d.user("alice").unwrap().sid()
    );
}

// ---------------------------------------------------------------- GetTokenInformation

#[test]
fn token_user_size_probe_then_fill_reads_the_sid_through_the_psid() {
    let (net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let (len, buf) = query(t.application, TokenUser);
    let alice = dir(&server).user("alice").unwrap().sid();
    assert_eq!(len as usize, size_of::<TOKEN_USER>() + alice.byte_len());
    let tu = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    // The SID follows the struct, inside the caller's buffer.
    let base = buf.as_ptr() as usize;
    assert_eq!(tu.User.Sid as usize, base + size_of::<TOKEN_USER>());
    assert_eq!(tu.User.Attributes, 0);
    let sid = unsafe { sid_at(tu.User.Sid) };
    assert_eq!(sid, alice);
    assert!(sid.to_string().starts_with("S-1-5-21-"));
    assert_eq!(sid.to_string(), alice.to_string());
    close_all(t);
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn token_groups_size_probe_then_fill_places_sids_after_the_array() {
    let (_net, server) = start();
    let d = dir(&server);
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let (len, buf) = query(t.application, TokenGroups);
    let expected = Token::peer_user(&d, "alice", AuthMethod::Kerberos).unwrap();
    let tg = buf.as_ptr() as *const TOKEN_GROUPS;
    let count = unsafe { (*tg).GroupCount } as usize;
    assert_eq!(count, expected.groups().len());
    let groups = unsafe {
        std::slice::from_raw_parts(
            std::ptr::addr_of!((*tg).Groups) as *const SID_AND_ATTRIBUTES,
            count,
        )
    };
    let base = buf.as_ptr() as usize;
    let sids_start = base + 8 + count * size_of::<SID_AND_ATTRIBUTES>();
    let mut next = sids_start;
    for (g, want) in groups.iter().zip(expected.groups()) {
        assert_eq!(
            g.Sid as usize, next,
            "SIDs follow one another after the array"
        );
        let sid = unsafe { sid_at(g.Sid) };
        next += sid.byte_len();
        assert_eq!(g.Attributes, want.attributes.bits());
        // The logon SID differs per logon session; every other group is the same.
        if !sid.to_string().starts_with("S-1-5-5-") {
            assert_eq!(sid, want.sid);
        }
    }
    assert_eq!(next, base + len as usize);
    let names: Vec<String> = groups
        .iter()
        .map(|g| unsafe { sid_at(g.Sid) }.to_string())
        .collect();
    assert!(names.contains(&"S-1-1-0".to_string())); // Everyone
    assert!(names.contains(&"S-1-5-2".to_string())); // NETWORK
    assert!(names.contains(&d.domain_rid(513).unwrap().to_string())); // Domain Users
    close_all(t);
}

#[test]
fn token_type_level_and_statistics() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", None, TOKEN_QUERY).unwrap();
    let (len, buf) = query(t.machine, TokenType);
    assert_eq!(len, 4);
    assert_eq!(buf[0] as u32 as i32, TokenImpersonation);
    let (len, buf) = query(t.machine, TokenImpersonationLevel);
    assert_eq!(len, 4);
    assert_eq!(buf[0] as u32 as i32, SecurityImpersonation);
    let (len, buf) = query(t.machine, TokenStatistics);
    assert_eq!(len as usize, size_of::<TOKEN_STATISTICS>());
    let st = unsafe { &*(buf.as_ptr() as *const TOKEN_STATISTICS) };
    assert_eq!(st.TokenType, TokenImpersonation);
    assert_eq!(st.ImpersonationLevel, SecurityImpersonation);
    assert_eq!(st.ExpirationTime, i64::MAX);
    assert_eq!(st.PrivilegeCount, 0);
    assert!(st.GroupCount > 5);
    // Two handles to one token: same token id and logon session.
    let (_, buf2) = query(t.application, TokenStatistics);
    let st2 = unsafe { &*(buf2.as_ptr() as *const TOKEN_STATISTICS) };
    assert_eq!(
        (st.TokenId.LowPart, st.AuthenticationId.LowPart),
        (st2.TokenId.LowPart, st2.AuthenticationId.LowPart)
    );
    let (_, owner) = query(t.machine, TokenOwner);
    let to = unsafe { &*(owner.as_ptr() as *const TOKEN_OWNER) };
    assert_eq!(
        unsafe { sid_at(to.Owner) },
        dir(&server).machine("CLIENT").unwrap().sid()
    );
    close_all(t);
}

#[test]
fn short_buffers_fail_with_the_required_length_and_are_not_written() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    unsafe {
        for class in [TokenUser, TokenGroups, TokenType, TokenStatistics] {
            let mut need = 0u32;
            GetTokenInformation(h(t.application), class, null_mut(), 0, &mut need);
            let mut buf = vec![0xAAu8; need as usize + 8];
            let mut got = 0u32;
            assert_eq!(
                GetTokenInformation(
                    h(t.application),
                    class,
                    buf.as_mut_ptr().cast(),
                    need - 1,
                    &mut got
                ),
                FALSE
            );
            assert_eq!(last(), ERROR_INSUFFICIENT_BUFFER);
            assert_eq!(got, need);
            assert!(buf.iter().all(|&b| b == 0xAA), "nothing written on failure");
            // A larger buffer than needed is fine and reports the needed size.
            assert_eq!(
                GetTokenInformation(
                    h(t.application),
                    class,
                    buf.as_mut_ptr().cast(),
                    need + 8,
                    &mut got
                ),
                TRUE
            );
            assert_eq!(got, need);
        }
    }
    close_all(t);
}

// ---------------------------------------------------------------- CloseHandle and the last error

#[test]
fn close_handle_double_close_fails_with_error_invalid_handle() {
    let (net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    assert_eq!(identity::open_handles(&net), 2);
    unsafe {
        assert_eq!(CloseHandle(h(t.application)), TRUE);
        assert_eq!(CloseHandle(h(t.application)), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        // The other handle still works.
        let mut len = 0;
        GetTokenInformation(h(t.machine), TokenUser, null_mut(), 0, &mut len);
        assert_eq!(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
        assert_eq!(CloseHandle(h(t.machine)), TRUE);
        assert_eq!(CloseHandle(h(t.machine)), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        // A closed handle no longer answers queries.
        assert_eq!(
            GetTokenInformation(h(t.machine), TokenUser, null_mut(), 0, &mut len),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn close_handle_of_unknown_values_fails_with_error_invalid_handle() {
    unsafe {
        for v in [0usize, 1, 3, 0x7fff_fff0, usize::MAX, usize::MAX - 1] {
            assert_eq!(CloseHandle(v as HANDLE), FALSE, "{v:#x}");
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        }
    }
}

#[test]
fn get_last_error_and_wsa_get_last_error_are_one_value() {
    unsafe {
        SetLastError(ERROR_NO_TOKEN);
        assert_eq!(WSAGetLastError(), ERROR_NO_TOKEN as i32);
        wsock::sys::WSASetLastError(10054);
        assert_eq!(GetLastError(), 10054);
        CloseHandle(null_mut());
        assert_eq!(WSAGetLastError(), ERROR_INVALID_HANDLE as i32);
    }
}

// ---------------------------------------------------------------- AccessCheck

struct Check {
    ok: BOOL,
    error: u32,
    granted: u32,
    status: BOOL,
}

fn access_check(sd: &[u8], token: u64, desired: u32) -> Check {
    let mapping = GENERIC_MAPPING {
        GenericRead: rights::FILE_GENERIC_READ,
        GenericWrite: rights::FILE_GENERIC_WRITE,
        GenericExecute: rights::FILE_GENERIC_EXECUTE,
        GenericAll: rights::FILE_ALL_ACCESS,
    };
    let mut ps: PRIVILEGE_SET = unsafe { std::mem::zeroed() };
    let mut ps_len = size_of::<PRIVILEGE_SET>() as u32;
    let (mut granted, mut status) = (0xdead_u32, -1);
    unsafe {
        SetLastError(0);
        let ok = AccessCheck(
            sd.as_ptr() as PSECURITY_DESCRIPTOR,
            h(token),
            desired,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
        );
        Check {
            ok,
            error: GetLastError(),
            granted,
            status,
        }
    }
}

#[test]
fn access_check_allows_and_denies_by_sddl_with_impersonation_tokens() {
    let (_net, server) = start();
    let d = dir(&server);
    let alice = d.user("alice").unwrap().sid();
    // alice may read and write; the network (so the machine too) may only read.
    let sd = wsock::ext::security_descriptor_from_sddl(
        &format!("O:SYG:SYD:(A;;FA;;;{alice})(A;;FR;;;NU)"),
        Some(&server),
        None,
    )
    .unwrap();
    let user = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let machine = identity::peer_tokens(&server, "CLIENT", None, TOKEN_QUERY).unwrap();

    let c = access_check(&sd, user.application, rights::FILE_GENERIC_WRITE);
    assert_eq!(
        (c.ok, c.status, c.granted),
        (TRUE, TRUE, rights::FILE_GENERIC_WRITE)
    );
    assert_eq!(c.error, 0);

    let c = access_check(&sd, machine.application, rights::FILE_GENERIC_WRITE);
    assert_eq!((c.ok, c.status, c.granted), (TRUE, FALSE, 0));
    assert_eq!(c.error, ERROR_ACCESS_DENIED);

    let c = access_check(&sd, machine.machine, rights::FILE_GENERIC_READ);
    assert_eq!((c.ok, c.status), (TRUE, TRUE));

    let c = access_check(&sd, machine.machine, rights::MAXIMUM_ALLOWED);
    assert_eq!(
        (c.ok, c.status, c.granted),
        (TRUE, TRUE, rights::FILE_GENERIC_READ)
    );

    // Generic rights must be mapped first, as on Windows.
    let c = access_check(&sd, user.application, GENERIC_READ);
    assert_eq!((c.ok, c.error), (FALSE, ERROR_GENERIC_NOT_MAPPED));

    // Generic rights in the ACEs are mapped when asked (the SDDL helper's mapping).
    let sd_generic = wsock::ext::security_descriptor_from_sddl(
        "O:SYG:SYD:(A;;GR;;;AU)",
        None,
        Some(&GenericMapping::FILE),
    )
    .unwrap();
    let c = access_check(&sd_generic, user.application, rights::FILE_GENERIC_READ);
    assert_eq!((c.ok, c.status), (TRUE, TRUE));

    close_all(user);
    close_all(machine);
}

#[test]
fn access_check_with_a_primary_token_fails_with_error_no_impersonation_token() {
    let (net, server) = start();
    let primary = Token::peer_user(&dir(&server), "alice", AuthMethod::Kerberos)
        .unwrap()
        .duplicate(IdTokenType::Primary, ImpersonationLevel::Impersonation)
        .unwrap();
    let raw = identity::open_token(&net, primary, TOKEN_QUERY).unwrap();
    let sd =
        wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(A;;FA;;;WD)", None, None).unwrap();
    let c = access_check(&sd, raw, rights::FILE_GENERIC_READ);
    assert_eq!((c.ok, c.error), (FALSE, ERROR_NO_IMPERSONATION_TOKEN));
    let (_, buf) = query(raw, TokenType);
    assert_eq!(buf[0] as u32 as i32, TokenPrimary);
    // A primary token has no impersonation level.
    unsafe {
        let mut len = 0;
        let mut b = [0u32; 1];
        assert_eq!(
            GetTokenInformation(
                h(raw),
                TokenImpersonationLevel,
                b.as_mut_ptr().cast(),
                4,
                &mut len
            ),
            FALSE
        );
        assert_eq!(last(), ERROR_INVALID_PARAMETER);
    }
    close(raw);
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn access_check_privilege_set_length_is_checked_and_reported() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let sd =
        wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(A;;FA;;;WD)", None, None).unwrap();
    let mapping = GENERIC_MAPPING {
        GenericRead: 1,
        GenericWrite: 2,
        GenericExecute: 4,
        GenericAll: 7,
    };
    unsafe {
        let (mut granted, mut status) = (0u32, 0);
        for short in [0u32, 1, 19] {
            let mut ps_len = short;
            let mut ps: PRIVILEGE_SET = std::mem::zeroed();
            assert_eq!(
                AccessCheck(
                    sd.as_ptr() as _,
                    h(t.application),
                    1,
                    &mapping,
                    &mut ps,
                    &mut ps_len,
                    &mut granted,
                    &mut status
                ),
                FALSE
            );
            assert_eq!(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
            assert_eq!(ps_len, 20);
        }
        // Enough room: an empty privilege set comes back.
        let mut ps: PRIVILEGE_SET = std::mem::zeroed();
        ps.PrivilegeCount = 9;
        let mut ps_len = 20;
        assert_eq!(
            AccessCheck(
                sd.as_ptr() as _,
                h(t.application),
                1,
                &mapping,
                &mut ps,
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!((ps.PrivilegeCount, granted, status), (0, 1, TRUE));
        // A larger one is fine and its length is left alone.
        let mut big = [0u64; 8];
        let mut ps_len = 21;
        let t_app = h(t.application);
        let sdp = sd.as_ptr() as PSECURITY_DESCRIPTOR;
        assert_eq!(
            AccessCheck(
                sdp,
                t_app,
                1,
                &mapping,
                big.as_mut_ptr().cast(),
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!(ps_len, 21);
        // Wine's advapi32 test_AccessCheck records Windows: a null privilege set with length
        // 0 is ERROR_INSUFFICIENT_BUFFER (length set to 20); with any other length it is
        // ERROR_NOACCESS and the length is left alone; out values are untouched on failure.
        let mut ps_len = 0;
        let (mut g, mut st) = (0x1abe11ed_u32, 0x1abe11ed);
        assert_eq!(
            AccessCheck(
                sdp,
                t_app,
                1,
                &mapping,
                null_mut(),
                &mut ps_len,
                &mut g,
                &mut st
            ),
            FALSE
        );
        assert_eq!((GetLastError(), ps_len), (ERROR_INSUFFICIENT_BUFFER, 20));
        for len in [1u32, 19, 20, 300] {
            let mut ps_len = len;
            assert_eq!(
                AccessCheck(
                    sdp,
                    t_app,
                    1,
                    &mapping,
                    null_mut(),
                    &mut ps_len,
                    &mut g,
                    &mut st
                ),
                FALSE
            );
            assert_eq!((GetLastError(), ps_len), (ERROR_NOACCESS, len));
        }
        assert_eq!((g, st), (0x1abe11ed, 0x1abe11ed));
        // Success leaves the last error alone; a denial sets it.
        SetLastError(0xdeadbeef);
        let mut ps_len = 20;
        assert_eq!(
            AccessCheck(
                sdp,
                t_app,
                1,
                &mapping,
                &mut ps,
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!(GetLastError(), 0xdeadbeef);
        let deny = wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(D;;0x1;;;WD)", None, None)
            .unwrap();
        assert_eq!(
            AccessCheck(
                deny.as_ptr() as _,
                t_app,
                1,
                &mapping,
                &mut ps,
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!(
            (GetLastError(), granted, status),
            (ERROR_ACCESS_DENIED, 0, FALSE)
        );
        // ACCESS_SYSTEM_SECURITY needs a privilege no wsock token holds.
        assert_eq!(
            AccessCheck(
                sdp,
                t_app,
                0x0100_0000,
                &mapping,
                &mut ps,
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!((GetLastError(), status), (1314, FALSE)); // ERROR_PRIVILEGE_NOT_HELD
    }
    close_all(t);
}

// ---------------------------------------------------------------- impersonation

fn user_sid_of_current() -> Option<Sid> {
    wsock::ext::current_impersonation().map(|i| i.token().user().sid)
}

#[test]
fn two_threads_impersonating_different_peers_never_see_each_other() {
    let (_net, server) = start();
    let d = dir(&server);
    let alice = identity::peer_impersonation(&server, "CLIENT", Some("alice")).unwrap();
    let machine = identity::peer_impersonation(&server, "SERVER", None).unwrap();
    let (alice_sid, machine_sid) = (
        d.user("alice").unwrap().sid(),
        d.machine("SERVER").unwrap().sid(),
    );
    let barrier = Arc::new(Barrier::new(2));
    let run = |imp: wsock::ext::Impersonation, want: Sid, b: Arc<Barrier>| {
        std::thread::spawn(move || {
            assert_eq!(user_sid_of_current(), None);
            wsock::ext::impersonate(imp);
            b.wait(); // both impersonate now
            for _ in 0..200 {
                assert_eq!(user_sid_of_current(), Some(want));
                // OpenThreadToken gives this thread's token, not the other's.
                let mut th: HANDLE = null_mut();
                unsafe {
                    assert_eq!(
                        OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, FALSE, &mut th),
                        TRUE
                    );
                }
                let (_, buf) = query(th as usize as u64, TokenUser);
                let tu = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
                assert_eq!(unsafe { sid_at(tu.User.Sid) }, want);
                close(th as usize as u64);
                std::thread::yield_now();
            }
            b.wait(); // the other thread's revert does not end ours
            assert_eq!(user_sid_of_current(), Some(want));
            b.wait();
            wsock::ext::revert();
            assert_eq!(user_sid_of_current(), None);
        })
    };
    let a = run(alice, alice_sid, barrier.clone());
    let m = run(machine, machine_sid, barrier);
    a.join().unwrap();
    m.join().unwrap();
    assert_eq!(user_sid_of_current(), None);
}

#[test]
fn two_tasks_on_one_worker_impersonating_different_peers_never_see_each_other() {
    let (_net, server) = start();
    let d = dir(&server);
    let alice = identity::peer_impersonation(&server, "CLIENT", Some("alice")).unwrap();
    let machine = identity::peer_impersonation(&server, "CLIENT", None).unwrap();
    let (alice_sid, machine_sid) = (
        d.user("alice").unwrap().sid(),
        d.machine("CLIENT").unwrap().sid(),
    );
    // One worker thread: the two tasks interleave on it at every yield.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let task = |imp, want: Sid| {
            tokio::spawn(wsock::net::impersonate(imp, async move {
                for _ in 0..200 {
                    assert_eq!(user_sid_of_current(), Some(want));
                    tokio::task::yield_now().await;
                }
                // A revert in one task ends only its own impersonation.
                assert!(wsock::net::revert());
                tokio::task::yield_now().await;
                assert_eq!(user_sid_of_current(), None);
            }))
        };
        let plain = tokio::spawn(async {
            for _ in 0..200 {
                assert_eq!(
                    user_sid_of_current(),
                    None,
                    "a task outside any scope sees nothing"
                );
                tokio::task::yield_now().await;
            }
        });
        let a = task(alice, alice_sid);
        let m = task(machine, machine_sid);
        a.await.unwrap();
        m.await.unwrap();
        plain.await.unwrap();
    });
    assert_eq!(user_sid_of_current(), None);
}

#[test]
fn tasks_on_a_multi_thread_runtime_keep_their_identity_across_threads() {
    let (_net, server) = start();
    let d = dir(&server);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut joins = Vec::new();
    for (machine, user) in [
        ("CLIENT", Some("alice")),
        ("SERVER", Some("svc")),
        ("CLIENT", None),
        ("SERVER", None),
    ] {
        let imp = identity::peer_impersonation(&server, machine, user).unwrap();
        let want = match user {
            Some(u) => d.user(u).unwrap().sid(),
            None => d.machine(machine).unwrap().sid(),
        };
        joins.push(rt.spawn(wsock::net::impersonate(imp, async move {
            for _ in 0..100 {
                assert_eq!(user_sid_of_current(), Some(want));
                tokio::task::yield_now().await;
            }
        })));
    }
    rt.block_on(async {
        for j in joins {
            j.await.unwrap();
        }
    });
}

#[test]
fn task_scope_shadows_the_thread_and_nests() {
    let (_net, server) = start();
    let d = dir(&server);
    let alice = identity::peer_impersonation(&server, "CLIENT", Some("alice")).unwrap();
    let svc = identity::peer_impersonation(&server, "SERVER", Some("svc")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _thread = wsock::ext::impersonate_scoped(svc.clone());
    let (a, s) = (d.user("alice").unwrap().sid(), d.user("svc").unwrap().sid());
    rt.block_on(wsock::net::impersonate(alice, async {
        assert_eq!(user_sid_of_current(), Some(a));
        wsock::net::impersonate(svc, async {
            assert_eq!(user_sid_of_current(), Some(s));
        })
        .await;
        assert_eq!(user_sid_of_current(), Some(a));
        wsock::net::as_self(async {
            assert_eq!(user_sid_of_current(), None);
        })
        .await;
        wsock::net::revert();
        // Reverted in the scope: not the thread's identity either.
        assert_eq!(user_sid_of_current(), None);
    }));
    // The thread's own impersonation was never touched.
    assert_eq!(user_sid_of_current(), Some(s));
}

#[test]
fn dropping_an_impersonating_future_ends_the_impersonation() {
    let (_net, server) = start();
    let alice = identity::peer_impersonation(&server, "CLIENT", Some("alice")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let never = wsock::net::impersonate(alice, std::future::pending::<()>());
        let r = tokio::time::timeout(std::time::Duration::from_millis(10), never).await;
        assert!(r.is_err());
        assert_eq!(user_sid_of_current(), None);
    });
}

#[test]
fn revert_without_impersonation_is_a_no_op() {
    assert_eq!(user_sid_of_current(), None);
    wsock::ext::revert();
    assert!(!wsock::net::revert());
    unsafe {
        SetLastError(1234);
        assert_eq!(RevertToSelf(), TRUE);
        let mut th: HANDLE = 1 as HANDLE;
        assert_eq!(
            OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &mut th),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NO_TOKEN);
        assert!(th.is_null());
    }
    assert_eq!(user_sid_of_current(), None);
}

#[test]
fn impersonate_logged_on_user_needs_impersonate_rights() {
    let (net, server) = start();
    let q = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let qi = identity::peer_tokens(
        &server,
        "CLIENT",
        Some("alice"),
        TOKEN_QUERY | TOKEN_IMPERSONATE,
    )
    .unwrap();
    unsafe {
        assert_eq!(ImpersonateLoggedOnUser(h(q.application)), FALSE);
        assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
        assert_eq!(ImpersonateLoggedOnUser(h(qi.application)), TRUE);
        assert_eq!(
            user_sid_of_current(),
            Some(dir(&server).user("alice").unwrap().sid())
        );
        // Closing the handle does not end the impersonation (the thread holds the token).
        close_all(qi);
        assert!(user_sid_of_current().is_some());
        let mut th: HANDLE = null_mut();
        assert_eq!(
            OpenThreadToken(GetCurrentThread(), MAXIMUM_ALLOWED_MASK, FALSE, &mut th),
            TRUE
        );
        assert_eq!(identity::open_handles(&net), 3);
        close(th as usize as u64);
        assert_eq!(RevertToSelf(), TRUE);
        assert_eq!(user_sid_of_current(), None);
        assert_eq!(ImpersonateLoggedOnUser(h(0x7777_0000)), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
    }
    close_all(q);
    assert_eq!(identity::open_handles(&net), 0);
}

const MAXIMUM_ALLOWED_MASK: u32 = rights::MAXIMUM_ALLOWED;

// ---------------------------------------------------------------- leaks

#[test]
fn every_handle_closed_leaves_the_table_empty() {
    let (net, server) = start();
    let mut opened = Vec::new();
    for i in 0..50 {
        let user = if i % 2 == 0 { Some("alice") } else { None };
        let t = identity::peer_tokens(&server, "CLIENT", user, TOKEN_QUERY | TOKEN_IMPERSONATE)
            .unwrap();
        opened.push(t.application);
        opened.push(t.machine);
    }
    // Thread tokens opened while impersonating count too.
    unsafe {
        assert_eq!(ImpersonateLoggedOnUser(h(opened[0])), TRUE);
        for _ in 0..10 {
            let mut th: HANDLE = null_mut();
            assert_eq!(
                OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, FALSE, &mut th),
                TRUE
            );
            opened.push(th as usize as u64);
        }
        RevertToSelf();
    }
    assert_eq!(identity::open_handles(&net), 110);
    let mut unique = opened.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), opened.len(), "handles are unique");
    assert!(opened.iter().all(|h| h % 4 == 0 && *h != 0));
    for h in &opened {
        close(*h);
    }
    assert_eq!(identity::open_handles(&net), 0);
    // And nothing more closes.
    unsafe {
        assert_eq!(CloseHandle(h(opened[0])), FALSE);
    }
}

#[test]
fn handles_of_one_network_are_not_valid_in_another() {
    let (net_a, server_a) = start();
    let (net_b, _server_b) = start();
    let t = identity::peer_tokens(&server_a, "CLIENT", None, TOKEN_QUERY).unwrap();
    assert_eq!(identity::open_handles(&net_a), 2);
    assert_eq!(identity::open_handles(&net_b), 0);
    close_all(t);
}

// ---------------------------------------------------------------- hostile arguments

#[test]
fn get_token_information_hostile_arguments_return_documented_codes() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let no_query = identity::peer_tokens(&server, "CLIENT", None, TOKEN_IMPERSONATE).unwrap();
    let mut buf = buffer(256);
    let p = buf.as_mut_ptr() as *mut c_void;
    unsafe {
        let mut len = 0u32;
        // Invalid handles.
        for bad in [0usize, 4, usize::MAX, 0xdead_beef] {
            assert_eq!(
                GetTokenInformation(bad as HANDLE, TokenUser, p, 256, &mut len),
                FALSE
            );
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE, "{bad:#x}");
        }
        // Bogus or unmodelled classes.
        for class in [
            0,
            -1,
            11,
            999,
            i32::MIN,
            i32::MAX,
            3, /* TokenPrivileges */
            6,
        ] {
            assert_eq!(
                GetTokenInformation(h(t.application), class, p, 256, &mut len),
                FALSE
            );
            assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER, "class {class}");
        }
        // TokenSource needs TOKEN_QUERY_SOURCE, checked before anything else.
        assert_eq!(
            GetTokenInformation(h(t.application), 7, p, 256, &mut len),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
        // A handle without TOKEN_QUERY.
        assert_eq!(
            GetTokenInformation(h(no_query.machine), TokenUser, p, 256, &mut len),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
        // Null ReturnLength; null buffer with a length.
        assert_eq!(
            GetTokenInformation(h(t.application), TokenUser, p, 256, null_mut()),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        assert_eq!(
            GetTokenInformation(h(t.application), TokenUser, null_mut(), 256, &mut len),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
        // Short lengths.
        for short in [1u32, 4, 15, 16] {
            assert_eq!(
                GetTokenInformation(h(t.application), TokenUser, p, short, &mut len),
                FALSE
            );
            assert_eq!(GetLastError(), ERROR_INSUFFICIENT_BUFFER);
        }
    }
    close_all(t);
    close_all(no_query);
}

#[test]
fn access_check_hostile_arguments_return_documented_codes() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let no_query = identity::peer_tokens(&server, "CLIENT", None, TOKEN_IMPERSONATE).unwrap();
    let sd =
        wsock::ext::security_descriptor_from_sddl("O:SYG:SYD:(A;;FA;;;WD)", None, None).unwrap();
    let mapping = GENERIC_MAPPING {
        GenericRead: 1,
        GenericWrite: 2,
        GenericExecute: 4,
        GenericAll: 7,
    };
    let mut ps: PRIVILEGE_SET = unsafe { std::mem::zeroed() };
    let (mut granted, mut status) = (0u32, 0);
    unsafe {
        let mut ps_len = 20u32;
        macro_rules! check {
            ($sd:expr, $tok:expr, $desired:expr, $map:expr, $ps:expr, $len:expr, $g:expr, $s:expr, $code:expr) => {
                assert_eq!(
                    AccessCheck($sd, $tok, $desired, $map, $ps, $len, $g, $s),
                    FALSE
                );
                assert_eq!(GetLastError(), $code);
            };
        }
        let good = sd.as_ptr() as PSECURITY_DESCRIPTOR;
        let tok = h(t.application);
        // Null, garbage, absolute (no SE_SELF_RELATIVE) and truncated-offset descriptors.
        check!(
            null_mut(),
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_SECURITY_DESCR
        );
        let garbage = [0xffu8; 64];
        check!(
            garbage.as_ptr() as _,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_SECURITY_DESCR
        );
        let mut absolute = sd.clone();
        absolute[3] &= 0x7f; // clear SE_SELF_RELATIVE (0x8000)
        check!(
            absolute.as_ptr() as _,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_SECURITY_DESCR
        );
        let mut far = sd.clone();
        far[4..8].copy_from_slice(&0x4000_0000u32.to_le_bytes()); // owner offset far away
        check!(
            far.as_ptr() as _,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_SECURITY_DESCR
        );
        let no_owner =
            wsock::ext::security_descriptor_from_sddl("G:SYD:(A;;FA;;;WD)", None, None).unwrap();
        check!(
            no_owner.as_ptr() as _,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_SECURITY_DESCR
        );
        // Invalid token handles and a handle without TOKEN_QUERY.
        check!(
            good,
            null_mut(),
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_HANDLE
        );
        check!(
            good,
            h(0xdead_beec),
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_INVALID_HANDLE
        );
        check!(
            good,
            h(no_query.machine),
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_ACCESS_DENIED
        );
        // Null out-pointers and mapping.
        check!(
            good,
            tok,
            1,
            null(),
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_NOACCESS
        );
        check!(
            good,
            tok,
            1,
            &mapping,
            &mut ps,
            null_mut(),
            &mut granted,
            &mut status,
            ERROR_NOACCESS
        );
        check!(
            good,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            null_mut(),
            &mut status,
            ERROR_NOACCESS
        );
        check!(
            good,
            tok,
            1,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            null_mut(),
            ERROR_NOACCESS
        );
        // Generic rights left in the desired access.
        check!(
            good,
            tok,
            GENERIC_ALL,
            &mapping,
            &mut ps,
            &mut ps_len,
            &mut granted,
            &mut status,
            ERROR_GENERIC_NOT_MAPPED
        );
        // And the good call still works afterwards.
        assert_eq!(
            AccessCheck(
                good,
                tok,
                1,
                &mapping,
                &mut ps,
                &mut ps_len,
                &mut granted,
                &mut status
            ),
            TRUE
        );
        assert_eq!((granted, status), (1, TRUE));
    }
    close_all(t);
    close_all(no_query);
}

#[test]
fn open_thread_token_hostile_arguments_return_documented_codes() {
    unsafe {
        let mut th: HANDLE = null_mut();
        assert_eq!(
            OpenThreadToken(null_mut(), TOKEN_QUERY, FALSE, &mut th),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(
            OpenThreadToken(1234 as HANDLE, TOKEN_QUERY, FALSE, &mut th),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_HANDLE);
        assert_eq!(
            OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, FALSE, null_mut()),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_NOACCESS);
    }
}

#[test]
fn machine_names_default_to_the_host_name_and_domains_stay_apart() {
    let toml = r#"
[[host]]
name = "web"
ipv4 = "10.0.0.1"
ipv6 = "fd00::1"
domain = "CORP"
[[host.user]]
name = "bob"

[[host]]
name = "db"
ipv4 = "10.0.0.2"
ipv6 = "fd00::2"
machine = "DATABASE"
domain = "LAB"
[[host.user]]
name = "carol"
"#;
    let net = Network::start(Scenario::from_toml_str(toml, "two-domains.toml").unwrap()).unwrap();
    let (web, db) = (net.host("web").unwrap(), net.host("db").unwrap());
    let (corp, lab) = (dir(&web), dir(&db));
    assert_eq!((corp.domain(), lab.domain()), ("CORP", "LAB"));
    assert_eq!(corp.machine("WEB").unwrap().name(), "WEB$");
    assert_eq!(lab.machine("DATABASE").unwrap().name(), "DATABASE$");
    assert!(corp.user("carol").is_err());
    assert_ne!(corp.domain_sid(), lab.domain_sid());
    assert_eq!(identity::directories(&net).unwrap().len(), 2);
    // The peer may be in another domain of the scenario: its SID is that domain's.
    let t = identity::peer_tokens(&web, "DATABASE", Some("LAB\\carol"), TOKEN_QUERY).unwrap();
    let (_, buf) = query(t.application, TokenUser);
    let tu = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    assert_eq!(
        unsafe { sid_at(tu.User.Sid) },
        lab.user("carol").unwrap().sid()
    );
    close_all(t);
    assert_eq!(identity::open_handles(&net), 0);
}

#[test]
fn random_get_token_information_calls_never_panic_and_answer_known_codes() {
    let (_net, server) = start();
    let t = identity::peer_tokens(&server, "CLIENT", Some("alice"), TOKEN_QUERY).unwrap();
    let handles = [t.application, t.machine, 0, 4, 0xdead_bee0, u64::MAX];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut buf = buffer(4096);
    for _ in 0..5000 {
        let handle = handles[(next() % handles.len() as u64) as usize];
        let class = (next() % 24) as i32 - 4;
        let len = (next() % 4097) as u32;
        let null_buf = next() % 5 == 0;
        let p = if null_buf {
            null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        let mut ret_len = 0xffff_ffff_u32;
        let ok = unsafe { GetTokenInformation(h(handle), class, p, len, &mut ret_len) };
        if ok == TRUE {
            assert!(ret_len <= len);
        } else {
            let e = last();
            assert!(
                [
                    ERROR_INVALID_HANDLE,
                    ERROR_INVALID_PARAMETER,
                    ERROR_ACCESS_DENIED,
                    ERROR_NOACCESS,
                    ERROR_INSUFFICIENT_BUFFER
                ]
                .contains(&e),
                "unexpected {e}"
            );
            if e == ERROR_INSUFFICIENT_BUFFER {
                assert!(ret_len > len || null_buf);
            }
        }
    }
    close_all(t);
}
