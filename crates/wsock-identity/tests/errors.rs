//! Each error variant maps to its one Win32 code.

use wsock_identity::{win32, IdentityError, SddlErrorKind, SidErrorKind};

#[test]
fn every_variant_maps_to_its_win32_code() {
    let cases = [
        (
            IdentityError::InvalidSid {
                kind: SidErrorKind::Empty,
                position: 0,
            },
            1337,
        ),
        (
            IdentityError::InvalidSddl {
                kind: SddlErrorKind::BadRights,
                position: 3,
            },
            87,
        ),
        (IdentityError::NoneMapped { name: "x".into() }, 1332),
        (IdentityError::NoSuchUser { name: "x".into() }, 1317),
        (IdentityError::LogonFailure, 1326),
        (IdentityError::AccountExists { name: "x".into() }, 183),
        (IdentityError::InvalidHandle { handle: 4 }, 6),
        (IdentityError::AccessDenied { needed: 8, held: 0 }, 5),
        (IdentityError::InsufficientBuffer { required: 44 }, 122),
        (IdentityError::InvalidParameter { what: "x" }, 87),
        (IdentityError::NoImpersonationToken, 1309),
        (IdentityError::BadImpersonationLevel, 1346),
        (
            IdentityError::InvalidSecurityDescriptor { what: "no owner" },
            1338,
        ),
        (IdentityError::GenericNotMapped { mask: 0x8000_0000 }, 1360),
        (
            IdentityError::InvalidAcl {
                what: "x",
                position: 2,
            },
            1336,
        ),
    ];
    for (e, code) in cases {
        assert_eq!(e.win32_code(), code, "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn named_constants_match_winerror_h() {
    assert_eq!(win32::ERROR_ACCESS_DENIED, 5);
    assert_eq!(win32::ERROR_INVALID_HANDLE, 6);
    assert_eq!(win32::ERROR_INVALID_PARAMETER, 87);
    assert_eq!(win32::ERROR_INSUFFICIENT_BUFFER, 122);
    assert_eq!(win32::ERROR_NO_SUCH_USER, 1317);
    assert_eq!(win32::ERROR_NONE_MAPPED, 1332);
    assert_eq!(win32::ERROR_INVALID_SID, 1337);
}

#[test]
fn error_messages_name_the_position() {
    let e = IdentityError::InvalidSid {
        kind: SidErrorKind::BadNumber,
        position: 6,
    };
    assert_eq!(e.to_string(), "invalid SID at byte 6: not a valid number");
    let e = IdentityError::InvalidSddl {
        kind: SddlErrorKind::UnknownSidAlias,
        position: 2,
    };
    assert_eq!(e.to_string(), "invalid SDDL at byte 2: unknown SID alias");
}
