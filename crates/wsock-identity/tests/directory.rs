//! The directory: RIDs, name and SID lookups, machine accounts, duplicates, password checks.

use wsock_identity::{
    well_known, DirectorySpec, GroupSpec, IdentityError, MachineSpec, Sid, SidNameUse, UserSpec,
};

fn sample() -> DirectorySpec {
    DirectorySpec::new("WSOCK")
        .dns_name("wsock.test")
        .machine("SERVER")
        .machine("CLIENT")
        .group("Engineers")
        .user(UserSpec::new("carol"))
        .user(
            UserSpec::new("alice")
                .password("correct horse")
                .group("Engineers"),
        )
        .user(UserSpec::new("Bob").group("Domain Admins"))
}

#[test]
fn users_get_rids_from_1000_in_name_order_then_machines_then_groups() {
    let dir = sample().build().unwrap();
    let rid = |n: &str| dir.lookup_name(n).unwrap().sid().rid().unwrap();
    assert_eq!(rid("alice"), 1000);
    assert_eq!(rid("bob"), 1001);
    assert_eq!(rid("carol"), 1002);
    assert_eq!(rid("CLIENT$"), 1003);
    assert_eq!(rid("SERVER$"), 1004);
    assert_eq!(rid("Engineers"), 1005);
    assert_eq!(rid("Domain Admins"), 512);
    assert_eq!(rid("Domain Users"), 513);
    assert_eq!(rid("Domain Computers"), 515);
}

#[test]
fn spec_order_does_not_change_any_sid() {
    let a = sample().build().unwrap();
    let mut reversed = sample();
    reversed.users.reverse();
    reversed.machines.reverse();
    let b = reversed.build().unwrap();
    let sids = |d: &wsock_identity::Directory| {
        d.accounts()
            .map(|a| (a.qualified_name(), a.sid()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sids(&a), sids(&b));
}

#[test]
fn account_sids_live_in_the_domain_derived_from_its_name() {
    let dir = sample().build().unwrap();
    assert_eq!(dir.domain_sid(), Sid::domain_from_name("wsock"));
    let alice = dir.user("alice").unwrap();
    assert!(alice.sid().is_in_domain(&dir.domain_sid()));
    assert_eq!(alice.kind(), SidNameUse::User);
}

#[test]
fn lookup_accepts_qualified_upn_and_bare_names_case_insensitively() {
    let dir = sample().build().unwrap();
    let sid = dir.user("alice").unwrap().sid();
    for name in [
        "alice",
        "ALICE",
        "WSOCK\\alice",
        "wsock\\Alice",
        "alice@WSOCK",
        "alice@wsock.test",
        "Alice@WSOCK.TEST",
    ] {
        assert_eq!(dir.lookup_name(name).unwrap().sid(), sid, "{name}");
    }
    for name in ["OTHER\\alice", "alice@other.test", "alicia", "", "\\", "@"] {
        assert!(
            matches!(dir.lookup_name(name), Err(IdentityError::NoneMapped { .. })),
            "{name}"
        );
    }
    assert_eq!(dir.lookup_name("nobody").unwrap_err().win32_code(), 1332);
}

#[test]
fn lookup_by_sid_gives_account_and_domain_like_lookup_account_sid() {
    let dir = sample().build().unwrap();
    let alice = dir.user("alice").unwrap();
    let back = dir.lookup_sid(&alice.sid()).unwrap();
    assert_eq!(back.qualified_name(), "WSOCK\\alice");
    let everyone = dir.lookup_sid(&well_known::EVERYONE).unwrap();
    assert_eq!((everyone.domain(), everyone.name()), ("", "Everyone"));
    assert_eq!(everyone.kind(), SidNameUse::WellKnownGroup);
    let admins = dir.lookup_sid(&well_known::BUILTIN_ADMINISTRATORS).unwrap();
    assert_eq!(admins.qualified_name(), "BUILTIN\\Administrators");
    assert_eq!(admins.kind(), SidNameUse::Alias);
    let domain = dir.lookup_sid(&dir.domain_sid()).unwrap();
    assert_eq!(domain.kind(), SidNameUse::Domain);
    let unknown = dir.domain_sid().with_rid(4242).unwrap();
    assert_eq!(dir.lookup_sid(&unknown).unwrap_err().win32_code(), 1332);
}

#[test]
fn bare_well_known_names_resolve_before_domain_accounts() {
    let dir = sample().build().unwrap();
    assert_eq!(
        dir.lookup_name("network").unwrap().sid(),
        well_known::NETWORK
    );
    assert_eq!(
        dir.lookup_name("NT AUTHORITY\\Authenticated Users")
            .unwrap()
            .sid(),
        well_known::AUTHENTICATED_USERS
    );
    assert_eq!(
        dir.lookup_name("Users").unwrap().sid(),
        well_known::BUILTIN_USERS
    );
}

#[test]
fn machine_accounts_are_named_with_a_dollar() {
    let dir = sample().build().unwrap();
    let m = dir.machine("client").unwrap();
    assert_eq!(m.qualified_name(), "WSOCK\\CLIENT$");
    assert_eq!(m.kind(), SidNameUse::Computer);
    for name in [
        "CLIENT",
        "client$",
        "WSOCK\\CLIENT$",
        "WSOCK\\client",
        "client@wsock.test",
    ] {
        assert_eq!(dir.machine(name).unwrap().sid(), m.sid(), "{name}");
    }
    // A machine account is not a user, and a user is not a machine.
    assert_eq!(dir.user("CLIENT$").unwrap_err().win32_code(), 1317);
    assert_eq!(dir.machine("alice").unwrap_err().win32_code(), 1317);
    // A trailing $ given in the spec is not doubled.
    let d2 = DirectorySpec::new("D").machine("M$").build().unwrap();
    assert_eq!(d2.machine("M").unwrap().name(), "M$");
}

#[test]
fn primary_groups_are_domain_users_and_domain_computers() {
    let dir = sample().build().unwrap();
    let users = dir.domain_rid(513).unwrap();
    let computers = dir.domain_rid(515).unwrap();
    let engineers = dir.lookup_name("Engineers").unwrap().sid();
    let alice = dir.user("alice").unwrap();
    assert_eq!(alice.primary_group(), Some(users));
    assert_eq!(alice.groups(), &[users, engineers]);
    assert_eq!(dir.machine("SERVER").unwrap().groups(), &[computers]);
}

#[test]
fn duplicate_account_names_are_rejected_case_insensitively() {
    let e = DirectorySpec::new("D")
        .user(UserSpec::new("alice"))
        .user(UserSpec::new("ALICE"))
        .build()
        .unwrap_err();
    assert!(matches!(e, IdentityError::AccountExists { .. }));
    assert_eq!(e.win32_code(), 183);
    // a user named like a machine account
    assert!(DirectorySpec::new("D")
        .machine("box")
        .user(UserSpec::new("BOX$"))
        .build()
        .is_err());
    // a group named like a built-in domain group
    assert!(DirectorySpec::new("D")
        .group("domain users")
        .build()
        .is_err());
}

#[test]
fn unknown_group_membership_is_none_mapped() {
    let e = DirectorySpec::new("D")
        .user(UserSpec::new("alice").group("Nope"))
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        IdentityError::NoneMapped {
            name: "Nope".into()
        }
    );
    // Built-in aliases can be named as groups.
    let dir = DirectorySpec::new("D")
        .user(UserSpec::new("alice").group("administrators"))
        .build()
        .unwrap();
    assert!(dir
        .user("alice")
        .unwrap()
        .groups()
        .contains(&well_known::BUILTIN_ADMINISTRATORS));
}

#[test]
fn bad_names_are_invalid_parameter() {
    for bad in ["", "a\\b", "a@b", "x*", "tab\t", "...", "a:b"] {
        let e = DirectorySpec::new("D")
            .user(UserSpec::new(bad))
            .build()
            .unwrap_err();
        assert_eq!(e.win32_code(), 87, "{bad:?}");
    }
    assert_eq!(DirectorySpec::new("").build().unwrap_err().win32_code(), 87);
    assert_eq!(
        DirectorySpec::new("A\\B").build().unwrap_err().win32_code(),
        87
    );
    let e = DirectorySpec {
        domain: "D".into(),
        groups: vec![GroupSpec { name: "a,b".into() }],
        machines: vec![MachineSpec::new("$")],
        ..DirectorySpec::default()
    }
    .build()
    .unwrap_err();
    assert_eq!(e.win32_code(), 87);
}

#[test]
fn password_check_accepts_only_the_exact_password() {
    let dir = sample().build().unwrap();
    let ok = dir.check_password("WSOCK\\alice", "correct horse").unwrap();
    assert_eq!(ok.name(), "alice");
    for (user, pw) in [
        ("alice", "Correct horse"),
        ("alice", "correct hors"),
        ("alice", "correct horse "),
        ("alice", ""),
        ("carol", ""),    // no password set
        ("nobody", "x"),  // unknown user
        ("CLIENT$", "x"), // machine account
    ] {
        let e = dir.check_password(user, pw).unwrap_err();
        assert_eq!(e, IdentityError::LogonFailure, "{user}/{pw}");
        assert_eq!(e.win32_code(), 1326);
    }
    assert!(dir.user("alice").unwrap().has_password());
    assert!(!dir.user("carol").unwrap().has_password());
}

#[test]
fn debug_output_never_shows_passwords() {
    let spec = sample();
    let dir = spec.clone().build().unwrap();
    assert!(!format!("{spec:?}").contains("correct horse"));
    assert!(!format!("{dir:?}").contains("correct horse"));
}

#[test]
fn accounts_iterate_in_sid_order() {
    let dir = sample().build().unwrap();
    let sids: Vec<Sid> = dir.accounts().map(|a| a.sid()).collect();
    let mut sorted = sids.clone();
    sorted.sort();
    assert_eq!(sids, sorted);
    // and every listed account is found again by its qualified name
    for a in dir.accounts() {
        assert_eq!(dir.lookup_name(&a.qualified_name()).unwrap().sid(), a.sid());
    }
}

#[test]
fn add_user_merges_same_named_users_from_several_hosts() {
    let mut spec = DirectorySpec::new("WSOCK");
    spec.add_machine("CLIENT");
    spec.add_machine("client$");
    spec.add_machine("SERVER");
    spec.add_user(UserSpec::new("alice").group("Domain Admins"))
        .unwrap();
    spec.add_user(UserSpec::new("ALICE").password("pw").group("domain admins"))
        .unwrap();
    spec.add_user(UserSpec::new("Alice").password("pw"))
        .unwrap();
    assert_eq!(spec.machines.len(), 2);
    assert_eq!(spec.users.len(), 1);
    assert_eq!(spec.users[0].groups.len(), 1);
    let e = spec
        .add_user(UserSpec::new("alice").password("other"))
        .unwrap_err();
    assert!(matches!(e, IdentityError::AccountExists { .. }));
    let dir = spec.build().unwrap();
    assert!(dir.check_password("alice", "pw").is_ok());
    assert!(dir
        .user("alice")
        .unwrap()
        .groups()
        .contains(&dir.domain_rid(512).unwrap()));
}

#[test]
fn well_known_domain_names_are_reserved() {
    for name in ["BUILTIN", "nt authority", "Mandatory Label"] {
        let e = DirectorySpec::new(name).build().unwrap_err();
        assert_eq!(e.win32_code(), 87, "{name}");
    }
}
