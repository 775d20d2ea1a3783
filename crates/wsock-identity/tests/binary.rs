//! Binary ACLs and self-relative security descriptors: exact layouts, typed errors, round
//! trips, and readers that never panic.

use proptest::prelude::*;
use wsock_identity::binary::control;
use wsock_identity::rights::*;
use wsock_identity::{
    well_known, Ace, AceFlags, AceKind, Acl, DaclFlags, IdentityError, SecurityDescriptor, Sid,
};

#[test]
fn acl_bytes_have_the_windows_layout() {
    let mut deny = Ace::deny(well_known::NETWORK, 0x116);
    deny.flags = AceFlags::CONTAINER_INHERIT;
    let acl = Acl {
        aces: vec![
            deny,
            Ace::allow(well_known::BUILTIN_USERS, FILE_GENERIC_READ),
        ],
    };
    let b = acl.to_bytes().unwrap();
    // header: revision 2, size 8 + 20 + 24 = 52, two ACEs
    assert_eq!(&b[..8], &[2, 0, 52, 0, 2, 0, 0, 0]);
    // first ACE: denied, CI, size 8 + 12, mask 0x116, S-1-5-2
    assert_eq!(&b[8..16], &[1, 2, 20, 0, 0x16, 0x01, 0, 0]);
    assert_eq!(&b[16..28], &well_known::NETWORK.to_bytes()[..]);
    // second ACE: allowed, no flags, size 8 + 16, mask 0x120089
    assert_eq!(&b[28..36], &[0, 0, 24, 0, 0x89, 0x00, 0x12, 0]);
    assert_eq!(b.len(), 52);
    assert_eq!(Acl::size_from_header(&b).unwrap(), 52);
    assert_eq!(Acl::from_bytes(&b).unwrap(), acl);
}

#[test]
fn self_relative_descriptor_has_header_then_dacl_owner_group() {
    let sd = SecurityDescriptor::from_sddl("O:BAG:SYD:P(A;;0x1;;;WD)", None).unwrap();
    let b = sd.to_self_relative().unwrap();
    let control_bits = u16::from_le_bytes([b[2], b[3]]);
    assert_eq!(
        control_bits,
        control::SE_SELF_RELATIVE | control::SE_DACL_PRESENT | control::SE_DACL_PROTECTED
    );
    let off = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let (owner, group, sacl, dacl) = (off(4), off(8), off(12), off(16));
    assert_eq!(sacl, 0);
    assert_eq!(dacl, 20);
    assert_eq!(owner, 20 + 8 + 20, "after the 28-byte DACL");
    assert_eq!(group, owner + 16, "after BA (16 bytes)");
    assert_eq!(b.len(), group + 12);
    assert_eq!(SecurityDescriptor::from_self_relative(&b).unwrap(), sd);
}

#[test]
fn null_dacl_is_present_with_offset_zero_and_absent_dacl_reads_as_null() {
    let sd = SecurityDescriptor::from_sddl("O:SYG:SY", None).unwrap();
    let b = sd.to_self_relative().unwrap();
    assert_eq!(u32::from_le_bytes([b[16], b[17], b[18], b[19]]), 0);
    assert_eq!(
        SecurityDescriptor::from_self_relative(&b).unwrap().dacl,
        None
    );
    // clear SE_DACL_PRESENT: still a null DACL
    let mut absent = b.clone();
    absent[2] &= !(control::SE_DACL_PRESENT as u8);
    assert_eq!(
        SecurityDescriptor::from_self_relative(&absent)
            .unwrap()
            .dacl,
        None
    );
}

#[test]
fn sacl_is_skipped_when_reading() {
    let sd = SecurityDescriptor::from_sddl("O:SYG:SYD:(A;;0x1;;;WD)", None).unwrap();
    let mut b = sd.to_self_relative().unwrap();
    // append an (empty) SACL and point to it
    let at = b.len() as u32;
    b.extend_from_slice(&[2, 0, 8, 0, 0, 0, 0, 0]);
    b[2] |= control::SE_SACL_PRESENT as u8;
    b[12..16].copy_from_slice(&at.to_le_bytes());
    assert_eq!(SecurityDescriptor::from_self_relative(&b).unwrap(), sd);
}

#[test]
fn malformed_acls_give_typed_errors_with_positions() {
    let good = Acl {
        aces: vec![Ace::allow(well_known::EVERYONE, 1)],
    }
    .to_bytes()
    .unwrap();
    let err = |b: &[u8]| match Acl::from_bytes(b) {
        Err(IdentityError::InvalidAcl { position, .. }) => position,
        other => panic!("{b:?}: {other:?}"),
    };
    assert_eq!(err(&good[..5]), 5, "truncated header");
    assert_eq!(err(&good[..20]), 20, "shorter than AclSize");
    let mut b = good.clone();
    b[0] = 1;
    assert_eq!(err(&b), 0, "revision 1");
    let mut b = good.clone();
    b[2] = 7;
    assert_eq!(err(&b), 2, "AclSize not a multiple of 4");
    let mut b = good.clone();
    b[8] = 2; // SYSTEM_AUDIT_ACE_TYPE
    assert_eq!(err(&b), 8, "unsupported ACE type");
    let mut b = good.clone();
    b[10] = 40; // AceSize past AclSize
    assert_eq!(err(&b), 10);
    let mut b = good.clone();
    b[4] = 2; // two ACEs claimed, one present
    assert_eq!(err(&b), 28);
    let mut b = good.clone();
    b[16] = 9; // SID revision inside the ACE
    assert_eq!(
        Acl::from_bytes(&b).unwrap_err(),
        IdentityError::InvalidSid {
            kind: wsock_identity::SidErrorKind::BadRevision,
            position: 16
        }
    );
    assert_eq!(Acl::from_bytes(&good[..3]).unwrap_err().win32_code(), 1336);
}

#[test]
fn malformed_descriptors_give_typed_errors() {
    let good = SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;0x1;;;WD)", None)
        .unwrap()
        .to_self_relative()
        .unwrap();
    let code = |b: &[u8]| {
        SecurityDescriptor::from_self_relative(b)
            .unwrap_err()
            .win32_code()
    };
    assert_eq!(code(&good[..19]), 1338);
    let mut b = good.clone();
    b[0] = 2;
    assert_eq!(code(&b), 1338);
    let mut b = good.clone();
    b[3] &= 0x7f; // absolute form
    assert_eq!(code(&b), 1338);
    let mut b = good.clone();
    b[4..8].copy_from_slice(&4u32.to_le_bytes()); // owner inside the header
    assert_eq!(code(&b), 1338);
    let mut b = good.clone();
    b[8..12].copy_from_slice(&(good.len() as u32).to_le_bytes()); // group past the end
    assert_eq!(code(&b), 1338);
    // a broken ACL inside reports its position in the whole descriptor
    let mut b = good.clone();
    b[20] = 9;
    assert_eq!(
        SecurityDescriptor::from_self_relative(&b).unwrap_err(),
        IdentityError::InvalidAcl {
            what: "ACL revision not in 2..=4",
            position: 20
        }
    );
}

#[test]
fn descriptor_read_back_from_bytes_checks_access_the_same() {
    use wsock_identity::{
        access_check, AuthMethod, DirectorySpec, GenericMapping, Token, UserSpec,
    };
    let dir = DirectorySpec::new("W")
        .user(UserSpec::new("u"))
        .build()
        .unwrap();
    let t = Token::peer_user(&dir, "u", AuthMethod::Kerberos).unwrap();
    let sd = SecurityDescriptor::from_sddl("O:SYG:SYD:(D;;0x2;;;NU)(A;;0x3;;;WD)", None).unwrap();
    let back = SecurityDescriptor::from_self_relative(&sd.to_self_relative().unwrap()).unwrap();
    for desired in [0x1, 0x2, 0x3, MAXIMUM_ALLOWED] {
        assert_eq!(
            access_check(&sd, &t, desired, &GenericMapping::FILE).unwrap(),
            access_check(&back, &t, desired, &GenericMapping::FILE).unwrap()
        );
    }
}

fn any_sid() -> impl Strategy<Value = Sid> {
    (
        0u64..=wsock_identity::MAX_AUTHORITY,
        prop::collection::vec(any::<u32>(), 0..=15),
    )
        .prop_map(|(a, s)| Sid::new(a, &s).unwrap())
}

fn any_sd() -> impl Strategy<Value = SecurityDescriptor> {
    let ace =
        (any::<bool>(), any::<u8>(), any::<u32>(), any_sid()).prop_map(|(a, f, m, sid)| Ace {
            kind: if a { AceKind::Allowed } else { AceKind::Denied },
            flags: AceFlags(f),
            mask: m,
            sid,
        });
    (
        prop::option::of(any_sid()),
        prop::option::of(any_sid()),
        prop::option::of(prop::collection::vec(ace, 0..8)),
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
    fn self_relative_bytes_round_trip(sd in any_sd()) {
        let bytes = sd.to_self_relative().unwrap();
        prop_assert_eq!(SecurityDescriptor::from_self_relative(&bytes).unwrap(), sd);
    }

    #[test]
    fn acl_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Acl::from_bytes(&bytes);
        let _ = Acl::size_from_header(&bytes);
    }

    #[test]
    fn descriptor_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = SecurityDescriptor::from_self_relative(&bytes);
    }

    #[test]
    fn descriptor_reader_never_panics_on_mutated_descriptors(
        sd in any_sd(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = sd.to_self_relative().unwrap();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        let _ = SecurityDescriptor::from_self_relative(&bytes);
    }
}
