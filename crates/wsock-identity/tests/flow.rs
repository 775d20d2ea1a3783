//! The identity half of a secure connection, end to end: a directory from scenario data, peer
//! tokens after IKE, handles handed out by WSAQuerySocketSecurity, GetTokenInformation with
//! the size probe, impersonation choice, AccessCheck, and CloseHandle leaving nothing behind.

use wsock_identity::*;

fn directory() -> Directory {
    let mut spec = DirectorySpec::new("WSOCK").dns_name("wsock.test");
    spec.add_machine("CLIENT");
    spec.add_machine("SERVER");
    spec.add_user(UserSpec::new("alice").password("pw"))
        .unwrap();
    spec.build().unwrap()
}

/// What WSAQuerySocketSecurity does with PeerTokenAccessMask: 0 means no handles.
fn query(
    table: &HandleTable,
    user: Option<&Token>,
    machine: &Token,
    access: AccessMask,
) -> (u64, u64) {
    if access == 0 {
        return (0, 0);
    }
    let u = user.map_or(0, |t| {
        table
            .insert_mapped(t.clone(), access, &GenericMapping::TOKEN)
            .raw()
    });
    let m = table
        .insert_mapped(machine.clone(), access, &GenericMapping::TOKEN)
        .raw();
    (u, m)
}

#[test]
fn peer_token_access_mask_zero_returns_no_handles() {
    let d = directory();
    let table: HandleTable = HandleTable::new();
    let machine = Token::peer_machine(&d, "CLIENT", AuthMethod::Certificate).unwrap();
    assert_eq!(query(&table, None, &machine, 0), (0, 0));
    assert!(table.is_empty());
}

#[test]
fn token_query_handles_are_queried_then_each_closed_once() {
    let d = directory();
    let table: HandleTable = HandleTable::new();
    let machine = Token::peer_machine(&d, "CLIENT", AuthMethod::Certificate).unwrap();
    d.check_password("alice@wsock.test", "pw").unwrap();
    let user = Token::peer_user(&d, "alice@wsock.test", AuthMethod::Password).unwrap();
    let (hu, hm) = query(&table, Some(&user), &machine, rights::TOKEN_QUERY);
    assert!(hu != 0 && hm != 0 && hu != hm);
    assert_eq!(table.len(), 2);

    // GetTokenInformation(TokenUser): probe with an empty buffer, then read.
    let info = table
        .token_information(Handle::from_raw(hu), TokenInformationClass::User)
        .unwrap();
    let needed = match info.check_buffer(0) {
        Err(IdentityError::InsufficientBuffer { required }) => required,
        other => panic!("{other:?}"),
    };
    assert_eq!(info.check_buffer(needed), Ok(needed));
    let TokenInformation::User(u) = info else {
        panic!()
    };
    let account = d.lookup_sid(&u.user.sid).unwrap();
    assert_eq!(account.qualified_name(), "WSOCK\\alice");

    // The peer's machine token names the machine account.
    let m = table
        .token_information(Handle::from_raw(hm), TokenInformationClass::User)
        .unwrap();
    let TokenInformation::User(mu) = m else {
        panic!()
    };
    assert_eq!(d.lookup_sid(&mu.user.sid).unwrap().name(), "CLIENT$");

    // Handles were not opened for impersonation.
    assert_eq!(
        table
            .get_with_access(Handle::from_raw(hu), rights::TOKEN_IMPERSONATE)
            .unwrap_err()
            .win32_code(),
        5
    );

    for h in [hu, hm] {
        table.close(Handle::from_raw(h)).unwrap();
        assert_eq!(
            table.close(Handle::from_raw(h)).unwrap_err().win32_code(),
            6
        );
    }
    assert!(table.is_empty());
}

#[test]
fn impersonated_peer_is_authorized_with_access_check() {
    let d = directory();
    let machine = Token::peer_machine(&d, "CLIENT", AuthMethod::Kerberos).unwrap();
    let user = Token::peer_user(&d, "alice", AuthMethod::Kerberos).unwrap();
    // Only alice may write; the machine (and anyone from the network) may read.
    let alice_sid = d.user("alice").unwrap().sid();
    let sd = SecurityDescriptor::from_sddl(
        &format!("O:SYG:SYD:(A;;0x3;;;{alice_sid})(A;;0x1;;;NU)"),
        None,
    )
    .unwrap();
    let as_user = impersonation_token(Some(&user), Some(&machine)).unwrap();
    let as_machine = impersonation_token(None, Some(&machine)).unwrap();
    let write = |t: &Token| {
        access_check(&sd, t, 0x2, &GenericMapping::FILE)
            .unwrap()
            .is_granted()
    };
    assert!(write(as_user));
    assert!(!write(as_machine));
    let max = access_check(
        &sd,
        as_machine,
        rights::MAXIMUM_ALLOWED,
        &GenericMapping::FILE,
    )
    .unwrap();
    assert_eq!(max.granted, 0x1);
}

#[test]
fn identity_types_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Directory>();
    shared::<Token>();
    shared::<HandleTable>();
    shared::<SecurityDescriptor>();
    shared::<IdentityError>();
}
