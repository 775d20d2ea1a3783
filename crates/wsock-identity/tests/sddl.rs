//! The SDDL subset: what it reads, where it reports errors, round trips, and no panics.

use proptest::prelude::*;
use wsock_identity::rights::*;
use wsock_identity::{
    well_known, Ace, AceFlags, AceKind, Acl, DaclFlags, IdentityError, SddlErrorKind,
    SecurityDescriptor, Sid,
};

fn parse(text: &str) -> SecurityDescriptor {
    SecurityDescriptor::from_sddl(text, None).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str, domain: Option<&Sid>) -> (SddlErrorKind, usize) {
    match SecurityDescriptor::from_sddl(text, domain) {
        Err(IdentityError::InvalidSddl { kind, position }) => (kind, position),
        other => panic!("{text:?} should fail, got {other:?}"),
    }
}

#[test]
fn sddl_reads_owner_group_and_aces_in_order() {
    let sd = parse("O:BAG:SYD:(A;;GA;;;SY)(D;CIOI;0x8;;;AN)(A;;FR;;;S-1-5-21-1-2-3-1000)");
    assert_eq!(sd.owner, Some(well_known::BUILTIN_ADMINISTRATORS));
    assert_eq!(sd.group, Some(well_known::LOCAL_SYSTEM));
    let aces = &sd.dacl.unwrap().aces;
    assert_eq!(aces.len(), 3);
    assert_eq!(aces[0], Ace::allow(well_known::LOCAL_SYSTEM, GENERIC_ALL));
    assert_eq!(aces[1].kind, AceKind::Denied);
    assert_eq!(aces[1].flags, AceFlags(0x3));
    assert_eq!(aces[1].mask, TOKEN_QUERY);
    assert_eq!(aces[1].sid, well_known::ANONYMOUS);
    assert_eq!(aces[2].mask, FILE_GENERIC_READ);
    assert_eq!(aces[2].sid.to_string(), "S-1-5-21-1-2-3-1000");
}

#[test]
fn sddl_aliases_name_the_well_known_sids() {
    for (alias, sid) in [
        ("WD", well_known::EVERYONE),
        ("AU", well_known::AUTHENTICATED_USERS),
        ("NU", well_known::NETWORK),
        ("SY", well_known::LOCAL_SYSTEM),
        ("BA", well_known::BUILTIN_ADMINISTRATORS),
        ("BU", well_known::BUILTIN_USERS),
        ("OW", well_known::OWNER_RIGHTS),
    ] {
        assert_eq!(parse(&format!("O:{alias}")).owner, Some(sid), "{alias}");
    }
}

#[test]
fn sddl_domain_aliases_need_a_domain() {
    let domain = Sid::domain_from_name("WSOCK");
    let sd = SecurityDescriptor::from_sddl("O:DAG:DUD:(A;;GR;;;DC)", Some(&domain)).unwrap();
    assert_eq!(sd.owner, Some(domain.with_rid(512).unwrap()));
    assert_eq!(sd.group, Some(domain.with_rid(513).unwrap()));
    assert_eq!(sd.dacl.unwrap().aces[0].sid, domain.with_rid(515).unwrap());
    assert_eq!(
        error("O:SYG:DU", None),
        (SddlErrorKind::DomainAliasWithoutDomain, 6)
    );
}

#[test]
fn sddl_rights_as_hex_decimal_or_letter_codes() {
    let mask = |r: &str| parse(&format!("D:(A;;{r};;;WD)")).dacl.unwrap().aces[0].mask;
    assert_eq!(mask("0x1F01FF"), FILE_ALL_ACCESS);
    assert_eq!(mask("8"), 8);
    assert_eq!(mask("GRGW"), GENERIC_READ | GENERIC_WRITE);
    assert_eq!(mask("GX"), GENERIC_EXECUTE);
    assert_eq!(mask("FA"), FILE_ALL_ACCESS);
    assert_eq!(mask("KA"), KEY_ALL_ACCESS);
    assert_eq!(
        mask("RCWDWOSD"),
        READ_CONTROL | WRITE_DAC | WRITE_OWNER | DELETE
    );
}

#[test]
fn sddl_null_and_empty_dacls_differ() {
    assert_eq!(parse("O:SYD:NO_ACCESS_CONTROL").dacl, None);
    assert_eq!(parse("O:SYD:").dacl, Some(Acl::default()));
    assert_eq!(parse("O:SY").dacl, None, "no D: at all is no DACL");
    let p = parse("D:PAI(A;;GA;;;WD)");
    assert_eq!(
        p.dacl_flags,
        DaclFlags {
            protected: true,
            auto_inherited: true,
            auto_inherit_req: false
        }
    );
}

#[test]
fn sddl_components_may_come_in_any_order() {
    let a = parse("D:(A;;GA;;;WD)O:BAG:SY");
    let b = parse("O:BAG:SYD:(A;;GA;;;WD)");
    assert_eq!(a, b);
    assert_eq!(parse("O:S-1-5-32-544G:S-1-5-18"), parse("O:BAG:SY"));
}

#[test]
fn sddl_errors_carry_kind_and_byte_position() {
    use SddlErrorKind::*;
    let cases: &[(&str, SddlErrorKind, usize)] = &[
        ("X:SY", UnknownComponent, 0),
        ("O:SYO:BA", DuplicateComponent, 4),
        ("O:XX", UnknownSidAlias, 2),
        ("O:", UnknownSidAlias, 2),
        ("D:(A;;GA;;;WD", UnterminatedAce, 2),
        ("D:(A;;GA;;WD)", WrongFieldCount, 2),
        ("D:(A;;GA;;;WD;)", WrongFieldCount, 2),
        ("D:(AU;;GA;;;WD)", UnsupportedAceType, 3),
        ("D:(A;XX;GA;;;WD)", UnknownAceFlag, 5),
        ("D:(A;CIX;GA;;;WD)", UnknownAceFlag, 5),
        ("D:(A;;GZ;;;WD)", BadRights, 6),
        ("D:(A;;GAZZ;;;WD)", BadRights, 8),
        ("D:(A;;0xZ;;;WD)", BadRights, 6),
        ("D:(A;;0x100000000;;;WD)", BadRights, 6),
        ("D:(A;;;;;WD)", BadRights, 6),
        ("D:(A;;GA;1234;;WD)", ObjectAceNotSupported, 9),
        ("D:(A;;GA;;;QQ)", UnknownSidAlias, 11),
        ("D:(A;;GA;;;WD)x", ExpectedAce, 14),
        ("D:NO_ACCESS_CONTROL(A;;GA;;;WD)", ExpectedAce, 19),
    ];
    for &(text, kind, pos) in cases {
        assert_eq!(error(text, None), (kind, pos), "{text}");
    }
    // A bad literal SID inside an ACE points into the SID.
    assert_eq!(
        error("D:(A;;GA;;;S-1-5-x)", None),
        (BadSid(wsock_identity::SidErrorKind::BadNumber), 17)
    );
    let e = SecurityDescriptor::from_sddl("O:??", None).unwrap_err();
    assert_eq!(e.win32_code(), 87);
}

#[test]
fn sddl_writes_aliases_and_reads_back() {
    let domain = Sid::domain_from_name("WSOCK");
    let sd = SecurityDescriptor {
        owner: Some(domain.with_rid(512).unwrap()),
        group: Some(well_known::LOCAL_SYSTEM),
        dacl: Some(Acl {
            aces: vec![
                Ace::deny(well_known::NETWORK, 0x116),
                Ace::allow(domain.with_rid(513).unwrap(), GENERIC_READ),
            ],
        }),
        dacl_flags: DaclFlags::default(),
    };
    let text = sd.to_sddl(Some(&domain));
    assert_eq!(text, "O:DAG:SYD:(D;;0x116;;;NU)(A;;GR;;;DU)");
    assert_eq!(
        SecurityDescriptor::from_sddl(&text, Some(&domain)).unwrap(),
        sd
    );
    // Without the domain, domain SIDs are written literally.
    let literal = sd.to_sddl(None);
    assert!(literal.starts_with(&format!("O:{}", domain.with_rid(512).unwrap())));
    assert_eq!(SecurityDescriptor::from_sddl(&literal, None).unwrap(), sd);
}

fn any_sid() -> impl Strategy<Value = Sid> {
    prop_oneof![
        Just(well_known::EVERYONE),
        Just(well_known::NETWORK),
        Just(well_known::BUILTIN_USERS),
        Just(Sid::domain_from_name("WSOCK").with_rid(513).unwrap()),
        (
            0u64..=wsock_identity::MAX_AUTHORITY,
            prop::collection::vec(any::<u32>(), 0..=15)
        )
            .prop_map(|(a, s)| Sid::new(a, &s).unwrap()),
    ]
}

fn any_ace() -> impl Strategy<Value = Ace> {
    (any::<bool>(), 0u8..0x20, any::<u32>(), any_sid()).prop_map(|(allow, flags, mask, sid)| Ace {
        kind: if allow {
            AceKind::Allowed
        } else {
            AceKind::Denied
        },
        flags: AceFlags(flags),
        mask,
        sid,
    })
}

fn any_sd() -> impl Strategy<Value = SecurityDescriptor> {
    (
        prop::option::of(any_sid()),
        prop::option::of(any_sid()),
        prop::option::of(prop::collection::vec(any_ace(), 0..6)),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(|(owner, group, aces, (p, ai, ar))| SecurityDescriptor {
            owner,
            group,
            dacl: aces.map(|aces| Acl { aces }),
            dacl_flags: DaclFlags {
                protected: p,
                auto_inherited: ai,
                auto_inherit_req: ar,
            },
        })
}

proptest! {
    #[test]
    fn sddl_round_trips(sd in any_sd(), with_domain in any::<bool>()) {
        let domain = Sid::domain_from_name("WSOCK");
        let d = with_domain.then_some(&domain);
        let text = sd.to_sddl(d);
        let back = SecurityDescriptor::from_sddl(&text, d);
        prop_assert_eq!(back, Ok(sd), "{}", text);
    }

    #[test]
    fn sddl_parser_never_panics(text in ".{0,120}") {
        let _ = SecurityDescriptor::from_sddl(&text, None);
    }

    #[test]
    fn sddl_parser_never_panics_on_near_sddl(
        text in "([OGD]:|\\(|\\)|;|A|D|GA|0x[0-9A-F]{0,9}|S-1-[0-9-]{0,12}|WD|DU|CI|NO_ACCESS_CONTROL|P|AI|é|€){0,24}"
    ) {
        let domain = Sid::domain_from_name("X");
        if let Err(IdentityError::InvalidSddl { position, .. }) =
            SecurityDescriptor::from_sddl(&text, Some(&domain))
        {
            prop_assert!(position <= text.len());
        }
    }
}

#[test]
fn sddl_display_and_from_str_round_trip() {
    let sd: SecurityDescriptor = "O:BAG:SYD:P(A;;FA;;;BA)".parse().unwrap();
    assert_eq!(sd.to_string(), "O:BAG:SYD:P(A;;FA;;;BA)");
    assert!("O:nope".parse::<SecurityDescriptor>().is_err());
}
