//! Peer tokens: groups and attributes of network logons, information classes and their x64
//! sizes, duplication rules.

use wsock_identity::{
    impersonation_token, rights, well_known, AuthMethod, Directory, DirectorySpec,
    GroupAttributes as G, IdentityError, ImpersonationLevel, PrincipalKind, Sid, Token,
    TokenInformation, TokenInformationClass, TokenType, UserSpec,
};

fn dir() -> Directory {
    DirectorySpec::new("WSOCK")
        .machine("CLIENT")
        .group("Engineers")
        .user(UserSpec::new("alice").group("Engineers"))
        .user(UserSpec::new("root").group("Domain Admins"))
        .build()
        .unwrap()
}

fn attrs(t: &Token, sid: &Sid) -> Option<G> {
    t.groups()
        .iter()
        .find(|g| g.sid == *sid)
        .map(|g| g.attributes)
}

#[test]
fn peer_machine_token_has_network_logon_groups() {
    let d = dir();
    let t = Token::peer_machine(&d, "CLIENT", AuthMethod::Certificate).unwrap();
    assert_eq!(t.user().sid, d.machine("CLIENT").unwrap().sid());
    assert_eq!(t.user().attributes, G::NONE);
    let computers = d.domain_rid(515).unwrap();
    for sid in [
        computers,
        well_known::EVERYONE,
        well_known::NETWORK,
        well_known::AUTHENTICATED_USERS,
        well_known::THIS_ORGANIZATION,
        well_known::BUILTIN_USERS,
    ] {
        assert_eq!(
            attrs(&t, &sid),
            Some(G::MANDATORY | G::ENABLED_BY_DEFAULT | G::ENABLED),
            "{sid}"
        );
        assert!(t.is_member(&sid));
    }
    assert!(
        !t.is_member(&d.domain_rid(513).unwrap()),
        "machines are not Domain Users"
    );
    assert_eq!(t.primary_group(), computers);
    assert_eq!(t.owner(), t.user().sid);
    assert_eq!(t.source().principal, PrincipalKind::Machine);
    assert_eq!(t.source().method, AuthMethod::Certificate);
    assert_eq!(t.token_type(), TokenType::Impersonation);
    assert_eq!(
        t.impersonation_level(),
        Some(ImpersonationLevel::Impersonation)
    );
}

#[test]
fn peer_user_token_has_domain_users_and_declared_groups() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Kerberos).unwrap();
    let users = d.domain_rid(513).unwrap();
    let engineers = d.lookup_name("Engineers").unwrap().sid();
    assert_eq!(t.groups()[0].sid, users, "primary group first");
    assert!(t.is_member(&engineers));
    assert!(t.is_member(&well_known::NETWORK));
    assert!(!t.is_member(&well_known::BUILTIN_ADMINISTRATORS));
    assert_eq!(t.source().principal, PrincipalKind::User);
}

#[test]
fn domain_admins_are_builtin_administrators_on_members() {
    let d = dir();
    let t = Token::peer_user(&d, "root", AuthMethod::Kerberos).unwrap();
    assert!(t.is_member(&d.domain_rid(512).unwrap()));
    assert!(t.is_member(&well_known::BUILTIN_ADMINISTRATORS));
}

#[test]
fn logon_sid_matches_authentication_id_and_has_logon_id_attribute() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let logon = well_known::logon_sid(t.authentication_id());
    assert_eq!(&logon.sub_authorities()[..1], &[5]);
    let a = attrs(&t, &logon).unwrap();
    assert!(a.contains(G::LOGON_ID) && a.contains(G::ENABLED));
    // moving to another logon session moves the logon SID along
    let shared = wsock_identity::Luid::from_u64(0x1234_5678_9abc);
    let t2 = t.clone().with_authentication_id(shared);
    assert_eq!(t2.authentication_id(), shared);
    assert!(t2.is_member(&well_known::logon_sid(shared)));
    assert!(!t2.is_member(&logon));
}

#[test]
fn integrity_label_is_present_but_never_enabled() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let a = attrs(&t, &well_known::MEDIUM_MANDATORY_LEVEL).unwrap();
    assert_eq!(a, G::INTEGRITY | G::INTEGRITY_ENABLED);
    assert!(!t.is_member(&well_known::MEDIUM_MANDATORY_LEVEL));
}

#[test]
fn two_logons_of_one_peer_get_distinct_ids() {
    let d = dir();
    let a = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let b = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    assert_ne!(a.authentication_id(), b.authentication_id());
    assert_ne!(a.token_id(), b.token_id());
}

#[test]
fn unknown_peer_is_no_such_user() {
    let d = dir();
    let e = Token::peer_user(&d, "mallory", AuthMethod::Password).unwrap_err();
    assert_eq!(e.win32_code(), 1317);
    let e = Token::peer_machine(&d, "EVIL", AuthMethod::PreSharedKey).unwrap_err();
    assert!(matches!(e, IdentityError::NoSuchUser { .. }));
    // a group is neither
    let engineers = d.lookup_name("Engineers").unwrap();
    assert!(Token::network_logon(&d, engineers, AuthMethod::Kerberos).is_err());
}

#[test]
fn token_user_size_is_sixteen_plus_sid() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let info = t.information(TokenInformationClass::User).unwrap();
    assert_eq!(info.class(), TokenInformationClass::User);
    assert_eq!(info.required_size(), 16 + 28);
    assert_eq!(info.check_buffer(44), Ok(44));
    assert_eq!(
        info.check_buffer(0),
        Err(IdentityError::InsufficientBuffer { required: 44 })
    );
    assert_eq!(info.check_buffer(0).unwrap_err().win32_code(), 122);
}

#[test]
fn token_groups_size_is_header_array_and_sids() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let TokenInformation::Groups(g) = t.information(TokenInformationClass::Groups).unwrap() else {
        panic!("groups class answers with groups");
    };
    assert_eq!(g.groups, t.groups());
    let sids: usize = t.groups().iter().map(|g| g.sid.byte_len()).sum();
    assert_eq!(g.required_size(), 8 + 16 * t.groups().len() + sids);
    // hand-computed for this token: Domain Users (28) Engineers (28) Everyone (12)
    // BUILTIN\Users (16) NETWORK (12) AU (12) This Org (12) logon SID S-1-5-5-x-y (20)
    // Medium (12)
    assert_eq!(t.groups().len(), 9);
    assert_eq!(
        g.required_size(),
        8 + 16 * 9 + 28 + 28 + 12 + 16 + 12 + 12 + 12 + 20 + 12
    );
    // an empty list needs only the count (and its padding)
    let empty = wsock_identity::TokenGroups { groups: vec![] };
    assert_eq!(empty.required_size(), 8);
}

#[test]
fn fixed_size_classes_have_their_windows_sizes() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let size = |c| t.information(c).unwrap().required_size();
    assert_eq!(size(TokenInformationClass::Type), 4);
    assert_eq!(size(TokenInformationClass::ImpersonationLevel), 4);
    assert_eq!(size(TokenInformationClass::Statistics), 56);
    assert_eq!(size(TokenInformationClass::Owner), 8 + 28);
    assert_eq!(size(TokenInformationClass::PrimaryGroup), 8 + 28);
    let TokenInformation::Statistics(s) = t.information(TokenInformationClass::Statistics).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.token_id, t.token_id());
    assert_eq!(s.authentication_id, t.authentication_id());
    assert_eq!(s.group_count as usize, t.groups().len());
    assert_eq!(s.token_type, TokenType::Impersonation);
}

#[test]
fn impersonation_level_of_a_primary_token_is_invalid_parameter() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let p = t
        .duplicate(TokenType::Primary, ImpersonationLevel::Anonymous)
        .unwrap();
    assert_eq!(p.impersonation_level(), None);
    assert_eq!(
        p.information(TokenInformationClass::ImpersonationLevel)
            .unwrap_err()
            .win32_code(),
        87
    );
    assert_eq!(
        p.information(TokenInformationClass::Type).unwrap(),
        TokenInformation::Type(TokenType::Primary)
    );
}

#[test]
fn unmodelled_classes_are_invalid_parameter_and_raw_values_map() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    for raw in [3, 6, 7] {
        let c = TokenInformationClass::from_raw(raw).unwrap();
        assert_eq!(t.information(c).unwrap_err().win32_code(), 87);
    }
    assert_eq!(
        TokenInformationClass::from_raw(1),
        Some(TokenInformationClass::User)
    );
    assert_eq!(
        TokenInformationClass::from_raw(10),
        Some(TokenInformationClass::Statistics)
    );
    assert_eq!(TokenInformationClass::from_raw(0), None);
    assert_eq!(TokenInformationClass::from_raw(99), None);
    assert_eq!(
        TokenInformationClass::User.required_access(),
        rights::TOKEN_QUERY
    );
    assert_eq!(
        TokenInformationClass::Source.required_access(),
        rights::TOKEN_QUERY_SOURCE
    );
}

#[test]
fn duplicate_cannot_raise_the_impersonation_level() {
    let d = dir();
    let t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let e = t
        .duplicate(TokenType::Impersonation, ImpersonationLevel::Delegation)
        .unwrap_err();
    assert_eq!(e.win32_code(), 1346);
    let ident = t
        .duplicate(TokenType::Impersonation, ImpersonationLevel::Identification)
        .unwrap();
    assert_ne!(ident.token_id(), t.token_id());
    assert_eq!(ident.authentication_id(), t.authentication_id());
    // an identification-level token cannot become a primary token
    assert_eq!(
        ident
            .duplicate(TokenType::Primary, ImpersonationLevel::Identification)
            .unwrap_err(),
        IdentityError::BadImpersonationLevel
    );
    // a primary token can become an impersonation token at any level
    let p = t
        .duplicate(TokenType::Primary, ImpersonationLevel::Impersonation)
        .unwrap();
    let back = p
        .duplicate(TokenType::Impersonation, ImpersonationLevel::Delegation)
        .unwrap();
    assert_eq!(
        back.impersonation_level(),
        Some(ImpersonationLevel::Delegation)
    );
}

#[test]
fn impersonation_prefers_the_user_token_over_the_machine_token() {
    let d = dir();
    let m = Token::peer_machine(&d, "CLIENT", AuthMethod::Kerberos).unwrap();
    let u = Token::peer_user(&d, "alice", AuthMethod::Kerberos).unwrap();
    assert_eq!(impersonation_token(Some(&u), Some(&m)), Some(&u));
    assert_eq!(impersonation_token(None, Some(&m)), Some(&m));
    assert_eq!(impersonation_token(None, None), None);
}

#[test]
fn group_attribute_values_are_windows_values() {
    assert_eq!(G::MANDATORY.bits(), 0x1);
    assert_eq!(G::ENABLED_BY_DEFAULT.bits(), 0x2);
    assert_eq!(G::ENABLED.bits(), 0x4);
    assert_eq!(G::OWNER.bits(), 0x8);
    assert_eq!(G::USE_FOR_DENY_ONLY.bits(), 0x10);
    assert_eq!(G::INTEGRITY.bits(), 0x20);
    assert_eq!(G::INTEGRITY_ENABLED.bits(), 0x40);
    assert_eq!(G::RESOURCE.bits(), 0x2000_0000);
    assert_eq!(G::LOGON_ID.bits(), 0xC000_0000);
    assert_eq!(TokenType::Primary as u32, 1);
    assert_eq!(TokenType::Impersonation as u32, 2);
    assert_eq!(ImpersonationLevel::Anonymous as u32, 0);
    assert_eq!(ImpersonationLevel::Delegation as u32, 3);
}

#[test]
fn deny_only_group_is_no_longer_a_membership() {
    let d = dir();
    let mut t = Token::peer_user(&d, "alice", AuthMethod::Password).unwrap();
    let before = t.statistics().modified_id;
    assert!(t.set_deny_only(&well_known::NETWORK));
    assert!(!t.is_member(&well_known::NETWORK));
    assert_eq!(
        attrs(&t, &well_known::NETWORK).unwrap(),
        G::MANDATORY | G::USE_FOR_DENY_ONLY
    );
    assert_ne!(t.statistics().modified_id, before);
    assert!(!t.set_deny_only(&well_known::LOCAL_SYSTEM));
}

#[test]
fn authentication_method_adds_its_package_sid() {
    let d = dir();
    let ntlm = Token::peer_user(&d, "alice", AuthMethod::Ntlm).unwrap();
    assert!(ntlm.is_member(&well_known::NTLM_AUTHENTICATION));
    assert!(!ntlm.is_member(&well_known::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY));
    let krb = Token::peer_user(&d, "alice", AuthMethod::Kerberos).unwrap();
    assert!(krb.is_member(&well_known::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY));
    assert!(!krb.is_member(&well_known::NTLM_AUTHENTICATION));
    let cert = Token::peer_machine(&d, "CLIENT", AuthMethod::Certificate).unwrap();
    assert!(!cert.is_member(&well_known::NTLM_AUTHENTICATION));
    assert!(!cert.is_member(&well_known::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY));
    assert_eq!(well_known::NTLM_AUTHENTICATION.to_string(), "S-1-5-64-10");
    assert_eq!(
        well_known::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY.to_string(),
        "S-1-18-1"
    );
}

#[test]
fn every_token_group_resolves_by_sid_except_the_logon_sid() {
    let d = dir();
    for method in [
        AuthMethod::Kerberos,
        AuthMethod::Ntlm,
        AuthMethod::Certificate,
    ] {
        for t in [
            Token::peer_user(&d, "root", method).unwrap(),
            Token::peer_machine(&d, "CLIENT", method).unwrap(),
        ] {
            assert!(d.lookup_sid(&t.user().sid).is_ok());
            let logon = well_known::logon_sid(t.authentication_id());
            for g in t.groups() {
                if g.sid == logon {
                    assert!(d.lookup_sid(&g.sid).is_err());
                } else {
                    assert!(d.lookup_sid(&g.sid).is_ok(), "{}", g.sid);
                }
            }
        }
    }
}
