//! AccessCheck: ACE order, null and empty DACLs, owner rights, MAXIMUM_ALLOWED, deny-only and
//! disabled groups, generic mapping, and the calls that fail outright.

use wsock_identity::rights::*;
use wsock_identity::{
    access_check, well_known, Ace, AceFlags, AceKind, Acl, AuthMethod, Directory, DirectorySpec,
    GenericMapping, IdentityError, ImpersonationLevel, SecurityDescriptor, Sid, Token, TokenType,
    UserSpec,
};

const FILE: GenericMapping = GenericMapping::FILE;
const READ_DATA: AccessMask = 0x1;
const WRITE_DATA: AccessMask = 0x2;
const APPEND: AccessMask = 0x4;

fn dir() -> Directory {
    DirectorySpec::new("WSOCK")
        .machine("CLIENT")
        .user(UserSpec::new("alice"))
        .user(UserSpec::new("bob"))
        .build()
        .unwrap()
}

fn alice(d: &Directory) -> Token {
    Token::peer_user(d, "alice", AuthMethod::Kerberos).unwrap()
}

fn sd(owner: Sid, aces: Vec<Ace>) -> SecurityDescriptor {
    SecurityDescriptor {
        owner: Some(owner),
        group: Some(well_known::LOCAL_SYSTEM),
        dacl: Some(Acl { aces }),
        ..SecurityDescriptor::default()
    }
}

fn check(sd: &SecurityDescriptor, t: &Token, desired: AccessMask) -> (AccessMask, u32) {
    let o = access_check(sd, t, desired, &FILE).unwrap();
    assert_eq!(o.is_granted(), o.status == 0);
    (o.granted, o.status)
}

#[test]
fn access_check_deny_ace_before_allow_denies() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::deny(well_known::NETWORK, WRITE_DATA),
            Ace::allow(well_known::EVERYONE, READ_DATA | WRITE_DATA),
        ],
    );
    let o = access_check(&s, &t, WRITE_DATA, &FILE).unwrap();
    assert_eq!((o.granted, o.status, o.denied_by), (0, 5, Some(0)));
    // the deny ACE only takes the bits it names
    assert_eq!(check(&s, &t, READ_DATA), (READ_DATA, 0));
}

#[test]
fn access_check_allow_ace_before_deny_grants() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::allow(well_known::EVERYONE, READ_DATA | WRITE_DATA),
            Ace::deny(well_known::NETWORK, WRITE_DATA),
        ],
    );
    assert_eq!(check(&s, &t, WRITE_DATA), (WRITE_DATA, 0));
}

#[test]
fn access_check_allowed_bits_accumulate_across_aces() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::allow(well_known::EVERYONE, READ_DATA),
            Ace::allow(well_known::AUTHENTICATED_USERS, WRITE_DATA),
        ],
    );
    assert_eq!(
        check(&s, &t, READ_DATA | WRITE_DATA),
        (READ_DATA | WRITE_DATA, 0)
    );
    // a bit nobody grants denies the whole request, with no deciding ACE
    let o = access_check(&s, &t, READ_DATA | APPEND, &FILE).unwrap();
    assert_eq!((o.granted, o.status, o.denied_by), (0, 5, None));
}

#[test]
fn access_check_deny_after_everything_granted_is_not_reached() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::allow(well_known::EVERYONE, READ_DATA),
            Ace::deny(well_known::EVERYONE, READ_DATA | WRITE_DATA),
            Ace::allow(well_known::EVERYONE, WRITE_DATA),
        ],
    );
    assert_eq!(check(&s, &t, READ_DATA), (READ_DATA, 0));
    // but a request still wanting WRITE_DATA meets the deny
    assert_eq!(check(&s, &t, READ_DATA | WRITE_DATA).1, 5);
}

#[test]
fn access_check_aces_for_other_principals_do_not_apply() {
    let d = dir();
    let t = alice(&d);
    let bob = d.user("bob").unwrap().sid();
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::deny(bob, READ_DATA),
            Ace::deny(well_known::INTERACTIVE, READ_DATA),
            Ace::allow(t.user().sid, READ_DATA),
        ],
    );
    assert_eq!(check(&s, &t, READ_DATA), (READ_DATA, 0));
}

#[test]
fn null_dacl_grants_everything() {
    let d = dir();
    let t = alice(&d);
    let s = SecurityDescriptor {
        owner: Some(well_known::LOCAL_SYSTEM),
        group: Some(well_known::LOCAL_SYSTEM),
        dacl: None,
        ..SecurityDescriptor::default()
    };
    assert_eq!(check(&s, &t, FILE_ALL_ACCESS), (FILE_ALL_ACCESS, 0));
    assert_eq!(check(&s, &t, MAXIMUM_ALLOWED), (FILE_ALL_ACCESS, 0));
    // MAXIMUM_ALLOWED on a null DACL is bounded by the mapping's GenericAll, plus the owner's
    // implicit rights
    let o = access_check(&s, &t, MAXIMUM_ALLOWED, &GenericMapping::TOKEN).unwrap();
    assert_eq!(o.granted, TOKEN_ALL_ACCESS);
    let owned = SecurityDescriptor {
        owner: Some(t.user().sid),
        ..s.clone()
    };
    let narrow = GenericMapping {
        read: READ_DATA,
        write: WRITE_DATA,
        execute: 0,
        all: READ_DATA | WRITE_DATA,
    };
    let o = access_check(&owned, &t, MAXIMUM_ALLOWED, &narrow).unwrap();
    assert_eq!(o.granted, READ_DATA | WRITE_DATA | READ_CONTROL | WRITE_DAC);
}

#[test]
fn empty_dacl_denies_everything_to_non_owners() {
    let d = dir();
    let t = alice(&d);
    let s = sd(well_known::LOCAL_SYSTEM, vec![]);
    assert_eq!(check(&s, &t, READ_DATA), (0, 5));
    assert_eq!(check(&s, &t, READ_CONTROL), (0, 5));
    assert_eq!(check(&s, &t, MAXIMUM_ALLOWED), (0, 5));
}

#[test]
fn owner_gets_read_control_and_write_dac_even_with_empty_dacl_or_deny() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        t.user().sid,
        vec![Ace::deny(
            well_known::EVERYONE,
            READ_CONTROL | WRITE_DAC | READ_DATA,
        )],
    );
    assert_eq!(
        check(&s, &t, READ_CONTROL | WRITE_DAC),
        (READ_CONTROL | WRITE_DAC, 0)
    );
    assert_eq!(check(&s, &t, READ_DATA).1, 5);
    assert_eq!(
        check(&s, &t, MAXIMUM_ALLOWED),
        (READ_CONTROL | WRITE_DAC, 0)
    );
    // ownership through an enabled group counts too
    let g = sd(well_known::AUTHENTICATED_USERS, vec![]);
    assert_eq!(check(&g, &t, WRITE_DAC), (WRITE_DAC, 0));
    // but not WRITE_OWNER
    assert_eq!(check(&g, &t, WRITE_OWNER).1, 5);
}

#[test]
fn owner_rights_ace_replaces_the_implicit_owner_rights() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        t.user().sid,
        vec![Ace::allow(well_known::OWNER_RIGHTS, READ_CONTROL)],
    );
    assert_eq!(check(&s, &t, READ_CONTROL), (READ_CONTROL, 0));
    assert_eq!(check(&s, &t, WRITE_DAC).1, 5);
    assert_eq!(check(&s, &t, MAXIMUM_ALLOWED), (READ_CONTROL, 0));
    // an OWNER RIGHTS ACE does nothing for a non-owner
    let bob = Token::peer_user(&d, "bob", AuthMethod::Kerberos).unwrap();
    assert_eq!(check(&s, &bob, READ_CONTROL).1, 5);
}

#[test]
fn maximum_allowed_returns_every_right_allowed_before_denied() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::allow(well_known::EVERYONE, READ_DATA),
            Ace::deny(well_known::NETWORK, WRITE_DATA | READ_DATA),
            Ace::allow(well_known::AUTHENTICATED_USERS, WRITE_DATA | APPEND),
        ],
    );
    assert_eq!(check(&s, &t, MAXIMUM_ALLOWED), (READ_DATA | APPEND, 0));
    assert_eq!(
        check(&s, &t, MAXIMUM_ALLOWED | APPEND),
        (READ_DATA | APPEND, 0)
    );
    let o = access_check(&s, &t, MAXIMUM_ALLOWED | WRITE_DATA, &FILE).unwrap();
    assert_eq!((o.granted, o.status, o.denied_by), (0, 5, Some(1)));
}

#[test]
fn deny_only_groups_match_deny_aces_but_not_allow_aces() {
    let d = dir();
    let mut t = alice(&d);
    t.set_deny_only(&well_known::NETWORK);
    let allow = sd(
        well_known::LOCAL_SYSTEM,
        vec![Ace::allow(well_known::NETWORK, READ_DATA)],
    );
    assert_eq!(check(&allow, &t, READ_DATA).1, 5);
    let deny = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::deny(well_known::NETWORK, READ_DATA),
            Ace::allow(well_known::EVERYONE, READ_DATA),
        ],
    );
    assert_eq!(check(&deny, &t, READ_DATA).1, 5);
}

#[test]
fn integrity_label_group_never_matches_an_ace() {
    let d = dir();
    let t = alice(&d);
    let s = sd(
        well_known::LOCAL_SYSTEM,
        vec![Ace::allow(well_known::MEDIUM_MANDATORY_LEVEL, READ_DATA)],
    );
    assert_eq!(check(&s, &t, READ_DATA).1, 5);
}

#[test]
fn inherit_only_aces_are_skipped() {
    let d = dir();
    let t = alice(&d);
    let mut deny = Ace::deny(well_known::EVERYONE, READ_DATA);
    deny.flags = AceFlags(AceFlags::INHERIT_ONLY.0 | AceFlags::CONTAINER_INHERIT.0);
    let mut inherited_allow = Ace::allow(well_known::EVERYONE, READ_DATA);
    inherited_allow.flags = AceFlags::INHERITED;
    let s = sd(well_known::LOCAL_SYSTEM, vec![deny, inherited_allow]);
    assert_eq!(check(&s, &t, READ_DATA), (READ_DATA, 0));
}

#[test]
fn unmapped_generic_rights_in_aces_grant_nothing_as_on_windows() {
    let d = dir();
    let t = alice(&d);
    let mut s = sd(
        well_known::LOCAL_SYSTEM,
        vec![
            Ace::deny(well_known::NETWORK, GENERIC_WRITE),
            Ace::allow(well_known::EVERYONE, GENERIC_READ | GENERIC_WRITE),
        ],
    );
    assert_eq!(check(&s, &t, FILE_GENERIC_READ).1, 5);
    assert_eq!(check(&s, &t, MAXIMUM_ALLOWED), (0, 5));
    // once mapped (as assigning the descriptor to an object does), they work
    s.map_generic(&FILE);
    assert_eq!(check(&s, &t, READ_DATA), (READ_DATA, 0));
    assert_eq!(
        check(&s, &t, WRITE_DATA).1,
        5,
        "the mapped deny still comes first"
    );
    let mut token_sd = sd(
        well_known::LOCAL_SYSTEM,
        vec![Ace::allow(well_known::EVERYONE, GENERIC_ALL)],
    );
    token_sd.map_generic(&GenericMapping::TOKEN);
    let o = access_check(&token_sd, &t, MAXIMUM_ALLOWED, &GenericMapping::TOKEN).unwrap();
    assert_eq!(o.granted, TOKEN_ALL_ACCESS);
}

#[test]
fn generic_rights_in_desired_access_are_error_generic_not_mapped() {
    let d = dir();
    let t = alice(&d);
    let s = sd(well_known::LOCAL_SYSTEM, vec![]);
    let e = access_check(&s, &t, GENERIC_READ, &FILE).unwrap_err();
    assert_eq!(e, IdentityError::GenericNotMapped { mask: GENERIC_READ });
    assert_eq!(e.win32_code(), 1360);
    // mapped first, it runs
    assert!(access_check(&s, &t, FILE.map(GENERIC_READ), &FILE).is_ok());
}

#[test]
fn primary_token_is_error_no_impersonation_token() {
    let d = dir();
    let p = alice(&d)
        .duplicate(TokenType::Primary, ImpersonationLevel::Impersonation)
        .unwrap();
    let s = sd(well_known::LOCAL_SYSTEM, vec![]);
    assert_eq!(
        access_check(&s, &p, READ_DATA, &FILE)
            .unwrap_err()
            .win32_code(),
        1309
    );
}

#[test]
fn anonymous_level_token_is_error_bad_impersonation_level() {
    let d = dir();
    let a = alice(&d)
        .duplicate(TokenType::Impersonation, ImpersonationLevel::Anonymous)
        .unwrap();
    let s = sd(well_known::LOCAL_SYSTEM, vec![]);
    assert_eq!(
        access_check(&s, &a, READ_DATA, &FILE)
            .unwrap_err()
            .win32_code(),
        1346
    );
    // identification level is enough to check access
    let i = alice(&d)
        .duplicate(TokenType::Impersonation, ImpersonationLevel::Identification)
        .unwrap();
    assert!(access_check(&s, &i, READ_DATA, &FILE).is_ok());
}

#[test]
fn descriptor_without_owner_or_group_is_error_invalid_security_descr() {
    let d = dir();
    let t = alice(&d);
    let mut s = sd(well_known::LOCAL_SYSTEM, vec![]);
    s.group = None;
    assert_eq!(
        access_check(&s, &t, READ_DATA, &FILE)
            .unwrap_err()
            .win32_code(),
        1338
    );
    s.group = Some(well_known::LOCAL_SYSTEM);
    s.owner = None;
    assert_eq!(
        access_check(&s, &t, READ_DATA, &FILE)
            .unwrap_err()
            .win32_code(),
        1338
    );
}

#[test]
fn asking_for_nothing_is_denied_and_for_system_security_needs_a_privilege() {
    let d = dir();
    let t = alice(&d);
    let s = SecurityDescriptor {
        owner: Some(t.user().sid),
        group: Some(t.user().sid),
        dacl: None,
        ..SecurityDescriptor::default()
    };
    assert_eq!(check(&s, &t, 0), (0, 5));
    assert_eq!(check(&s, &t, ACCESS_SYSTEM_SECURITY), (0, 1314));
    assert!(
        !access_check(&s, &t, ACCESS_SYSTEM_SECURITY | READ_CONTROL, &FILE)
            .unwrap()
            .is_granted()
    );
}

#[test]
fn machine_and_user_tokens_are_told_apart_by_domain_groups() {
    let d = dir();
    let machine = Token::peer_machine(&d, "CLIENT", AuthMethod::Kerberos).unwrap();
    let user = alice(&d);
    let s =
        SecurityDescriptor::from_sddl("O:SYG:SYD:(A;;FR;;;DU)(A;;0x1;;;DC)", Some(&d.domain_sid()))
            .unwrap();
    assert_eq!(check(&s, &user, FILE_GENERIC_READ).1, 0);
    assert_eq!(check(&s, &machine, FILE_GENERIC_READ).1, 5);
    assert_eq!(check(&s, &machine, MAXIMUM_ALLOWED), (READ_DATA, 0));
    assert_eq!(
        s.dacl.as_ref().unwrap().aces[0].kind,
        AceKind::Allowed,
        "SDDL A is an allow ACE"
    );
}

#[test]
fn access_right_constants_have_windows_values() {
    assert_eq!(TOKEN_ASSIGN_PRIMARY, 0x1);
    assert_eq!(TOKEN_DUPLICATE, 0x2);
    assert_eq!(TOKEN_IMPERSONATE, 0x4);
    assert_eq!(TOKEN_QUERY, 0x8);
    assert_eq!(TOKEN_QUERY_SOURCE, 0x10);
    assert_eq!(TOKEN_ADJUST_PRIVILEGES, 0x20);
    assert_eq!(TOKEN_ADJUST_GROUPS, 0x40);
    assert_eq!(TOKEN_ADJUST_DEFAULT, 0x80);
    assert_eq!(TOKEN_ADJUST_SESSIONID, 0x100);
    assert_eq!(TOKEN_ALL_ACCESS, 0xF01FF);
    assert_eq!(TOKEN_READ, 0x20008);
    assert_eq!(TOKEN_WRITE, 0x200E0);
    assert_eq!(TOKEN_EXECUTE, 0x20000);
    assert_eq!(DELETE, 0x10000);
    assert_eq!(READ_CONTROL, 0x20000);
    assert_eq!(WRITE_DAC, 0x40000);
    assert_eq!(WRITE_OWNER, 0x80000);
    assert_eq!(SYNCHRONIZE, 0x100000);
    assert_eq!(ACCESS_SYSTEM_SECURITY, 0x0100_0000);
    assert_eq!(MAXIMUM_ALLOWED, 0x0200_0000);
    assert_eq!(GENERIC_ALL, 0x1000_0000);
    assert_eq!(GENERIC_EXECUTE, 0x2000_0000);
    assert_eq!(GENERIC_WRITE, 0x4000_0000);
    assert_eq!(GENERIC_READ, 0x8000_0000);
    assert_eq!(FILE_ALL_ACCESS, 0x1F01FF);
    assert_eq!(KEY_ALL_ACCESS, 0xF003F);
}
