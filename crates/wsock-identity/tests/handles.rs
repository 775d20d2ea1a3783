//! The handle table: values, lifetime, access, duplication, thread safety.

use std::collections::HashSet;
use std::sync::Arc;

use wsock_identity::{
    rights, AuthMethod, DirectorySpec, GenericMapping, Handle, HandleTable, IdentityError, Token,
    INVALID_HANDLE_VALUE,
};

fn token() -> Token {
    let dir = DirectorySpec::new("W").machine("M").build().unwrap();
    Token::peer_machine(&dir, "M", AuthMethod::Kerberos).unwrap()
}

#[test]
fn handles_are_nonzero_multiples_of_four_and_never_invalid_handle_value() {
    let table: HandleTable = HandleTable::new();
    let t = Arc::new(token());
    for _ in 0..100 {
        let h = table.insert(Arc::clone(&t), rights::TOKEN_QUERY);
        assert_ne!(h.raw(), 0);
        assert_ne!(h.raw(), INVALID_HANDLE_VALUE);
        assert_eq!(h.raw() % 4, 0);
    }
    assert_eq!(table.len(), 100);
}

#[test]
fn handles_are_unique_across_tables() {
    let a: HandleTable = HandleTable::new();
    let b: HandleTable = HandleTable::new();
    let t = Arc::new(token());
    let ha = a.insert(Arc::clone(&t), 0);
    let hb = b.insert(Arc::clone(&t), 0);
    assert_ne!(ha, hb);
    // a handle of one table is not valid in the other
    assert_eq!(b.close(ha).unwrap_err().win32_code(), 6);
    assert!(a.get(ha).is_ok());
}

#[test]
fn double_close_is_error_invalid_handle() {
    let table: HandleTable = HandleTable::new();
    let h = table.insert(token(), rights::TOKEN_QUERY);
    table.close(h).unwrap();
    let e = table.close(h).unwrap_err();
    assert_eq!(e, IdentityError::InvalidHandle { handle: h.raw() });
    assert_eq!(e.win32_code(), 6);
    assert!(table.get(h).is_err());
}

#[test]
fn unknown_handles_are_error_invalid_handle() {
    let table: HandleTable = HandleTable::new();
    for raw in [0, 4, 0x1234, INVALID_HANDLE_VALUE] {
        let h = Handle::from_raw(raw);
        assert_eq!(table.close(h).unwrap_err().win32_code(), 6);
        assert_eq!(table.get(h).unwrap_err().win32_code(), 6);
        assert_eq!(table.duplicate(h, None).unwrap_err().win32_code(), 6);
    }
}

#[test]
fn query_without_token_query_access_is_access_denied() {
    let table: HandleTable = HandleTable::new();
    let h = table.insert(token(), rights::TOKEN_IMPERSONATE);
    let e = table.get_with_access(h, rights::TOKEN_QUERY).unwrap_err();
    assert_eq!(e.win32_code(), 5);
    assert!(table.get_with_access(h, rights::TOKEN_IMPERSONATE).is_ok());
}

#[test]
fn generic_and_maximum_allowed_access_are_mapped_on_insert() {
    let table: HandleTable = HandleTable::new();
    let t = Arc::new(token());
    let read = table.insert_mapped(Arc::clone(&t), rights::GENERIC_READ, &GenericMapping::TOKEN);
    assert_eq!(table.get(read).unwrap().granted_access, rights::TOKEN_READ);
    let max = table.insert_mapped(
        Arc::clone(&t),
        rights::MAXIMUM_ALLOWED,
        &GenericMapping::TOKEN,
    );
    assert_eq!(
        table.get(max).unwrap().granted_access,
        rights::TOKEN_ALL_ACCESS
    );
    assert_eq!(rights::TOKEN_ALL_ACCESS, 0xF01FF);
}

#[test]
fn duplicate_shares_the_object_and_survives_closing_the_source() {
    let table: HandleTable = HandleTable::new();
    let h = table.insert(token(), rights::TOKEN_QUERY | rights::TOKEN_DUPLICATE);
    let same = table.duplicate(h, None).unwrap();
    let narrower = table.duplicate(h, Some(rights::TOKEN_QUERY)).unwrap();
    assert_ne!(same, h);
    assert_eq!(
        table.get(same).unwrap().granted_access,
        rights::TOKEN_QUERY | rights::TOKEN_DUPLICATE
    );
    assert_eq!(
        table.get(narrower).unwrap().granted_access,
        rights::TOKEN_QUERY
    );
    assert!(Arc::ptr_eq(
        &table.get(h).unwrap().object,
        &table.get(same).unwrap().object
    ));
    let wider = table
        .duplicate(h, Some(rights::TOKEN_ALL_ACCESS))
        .unwrap_err();
    assert_eq!(wider.win32_code(), 5);
    table.close(h).unwrap();
    assert!(table.get_with_access(same, rights::TOKEN_QUERY).is_ok());
    assert_eq!(table.len(), 2);
}

#[test]
fn closing_every_handle_leaves_an_empty_table() {
    let table: HandleTable = HandleTable::new();
    let hs: Vec<Handle> = (0..10).map(|_| table.insert(token(), 0)).collect();
    assert_eq!(table.handles(), hs, "handles list in issue order");
    for h in &hs[..5] {
        table.close(*h).unwrap();
    }
    assert_eq!(table.len(), 5);
    assert_eq!(table.close_all(), 5);
    assert!(table.is_empty());
}

#[test]
fn concurrent_inserts_and_closes_never_collide() {
    let table: Arc<HandleTable> = Arc::new(HandleTable::new());
    let t = Arc::new(token());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let table = Arc::clone(&table);
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..500 {
                    let h = table.insert(Arc::clone(&t), rights::TOKEN_QUERY);
                    if i % 2 == 0 {
                        table.close(h).unwrap();
                    } else {
                        mine.push(h);
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = HashSet::new();
    for th in threads {
        for h in th.join().unwrap() {
            assert!(all.insert(h), "handle issued twice");
        }
    }
    assert_eq!(table.len(), 1000);
    assert_eq!(all.len(), 1000);
}

#[test]
fn token_information_through_a_handle_needs_token_query() {
    use wsock_identity::{TokenInformation, TokenInformationClass};
    let table: HandleTable = HandleTable::new();
    let t = token();
    let user_sid = t.user().sid;
    let q = table.insert(t.clone(), rights::TOKEN_QUERY);
    let none = table.insert(t, rights::TOKEN_IMPERSONATE);
    match table
        .token_information(q, TokenInformationClass::User)
        .unwrap()
    {
        TokenInformation::User(u) => assert_eq!(u.user.sid, user_sid),
        other => panic!("{other:?}"),
    }
    let e = table
        .token_information(none, TokenInformationClass::User)
        .unwrap_err();
    assert_eq!(e.win32_code(), 5);
    table.close(q).unwrap();
    let e = table
        .token_information(q, TokenInformationClass::User)
        .unwrap_err();
    assert_eq!(e.win32_code(), 6);
}
