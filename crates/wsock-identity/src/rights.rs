//! Access rights (`ACCESS_MASK` bits) with their Windows values, and [`GenericMapping`].
//!
//! An access mask is a plain `u32`, as on Windows: bits 0-15 are object-specific rights, 16-20
//! standard rights, 24 `ACCESS_SYSTEM_SECURITY`, 25 `MAXIMUM_ALLOWED`, 28-31 generic rights.

/// An `ACCESS_MASK`: a set of access rights.
pub type AccessMask = u32;

/// `DELETE`: delete the object.
pub const DELETE: AccessMask = 0x0001_0000;
/// `READ_CONTROL`: read the security descriptor (not the SACL).
pub const READ_CONTROL: AccessMask = 0x0002_0000;
/// `WRITE_DAC`: change the DACL.
pub const WRITE_DAC: AccessMask = 0x0004_0000;
/// `WRITE_OWNER`: change the owner.
pub const WRITE_OWNER: AccessMask = 0x0008_0000;
/// `SYNCHRONIZE`: wait on the object.
pub const SYNCHRONIZE: AccessMask = 0x0010_0000;
/// `STANDARD_RIGHTS_REQUIRED`: DELETE | READ_CONTROL | WRITE_DAC | WRITE_OWNER.
pub const STANDARD_RIGHTS_REQUIRED: AccessMask = 0x000F_0000;
/// `STANDARD_RIGHTS_READ` (= READ_CONTROL).
pub const STANDARD_RIGHTS_READ: AccessMask = READ_CONTROL;
/// `STANDARD_RIGHTS_WRITE` (= READ_CONTROL).
pub const STANDARD_RIGHTS_WRITE: AccessMask = READ_CONTROL;
/// `STANDARD_RIGHTS_EXECUTE` (= READ_CONTROL).
pub const STANDARD_RIGHTS_EXECUTE: AccessMask = READ_CONTROL;
/// `STANDARD_RIGHTS_ALL`: all standard rights including SYNCHRONIZE.
pub const STANDARD_RIGHTS_ALL: AccessMask = 0x001F_0000;
/// `SPECIFIC_RIGHTS_ALL`: the 16 object-specific bits.
pub const SPECIFIC_RIGHTS_ALL: AccessMask = 0x0000_FFFF;
/// `ACCESS_SYSTEM_SECURITY`: read/write the SACL (needs a privilege wsock tokens never hold).
pub const ACCESS_SYSTEM_SECURITY: AccessMask = 0x0100_0000;
/// `MAXIMUM_ALLOWED`: ask for every right the caller can get.
pub const MAXIMUM_ALLOWED: AccessMask = 0x0200_0000;
/// `GENERIC_ALL`.
pub const GENERIC_ALL: AccessMask = 0x1000_0000;
/// `GENERIC_EXECUTE`.
pub const GENERIC_EXECUTE: AccessMask = 0x2000_0000;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: AccessMask = 0x4000_0000;
/// `GENERIC_READ`.
pub const GENERIC_READ: AccessMask = 0x8000_0000;
/// The four generic bits together.
pub const GENERIC_ANY: AccessMask = GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ;

/// `TOKEN_ASSIGN_PRIMARY`.
pub const TOKEN_ASSIGN_PRIMARY: AccessMask = 0x0001;
/// `TOKEN_DUPLICATE`.
pub const TOKEN_DUPLICATE: AccessMask = 0x0002;
/// `TOKEN_IMPERSONATE`.
pub const TOKEN_IMPERSONATE: AccessMask = 0x0004;
/// `TOKEN_QUERY`: needed by `GetTokenInformation` for every class but `TokenSource`.
pub const TOKEN_QUERY: AccessMask = 0x0008;
/// `TOKEN_QUERY_SOURCE`: needed by `GetTokenInformation(TokenSource)`.
pub const TOKEN_QUERY_SOURCE: AccessMask = 0x0010;
/// `TOKEN_ADJUST_PRIVILEGES`.
pub const TOKEN_ADJUST_PRIVILEGES: AccessMask = 0x0020;
/// `TOKEN_ADJUST_GROUPS`.
pub const TOKEN_ADJUST_GROUPS: AccessMask = 0x0040;
/// `TOKEN_ADJUST_DEFAULT`.
pub const TOKEN_ADJUST_DEFAULT: AccessMask = 0x0080;
/// `TOKEN_ADJUST_SESSIONID`.
pub const TOKEN_ADJUST_SESSIONID: AccessMask = 0x0100;
/// `TOKEN_ALL_ACCESS` (0xF01FF): STANDARD_RIGHTS_REQUIRED and every token-specific right.
pub const TOKEN_ALL_ACCESS: AccessMask = STANDARD_RIGHTS_REQUIRED
    | TOKEN_ASSIGN_PRIMARY
    | TOKEN_DUPLICATE
    | TOKEN_IMPERSONATE
    | TOKEN_QUERY
    | TOKEN_QUERY_SOURCE
    | TOKEN_ADJUST_PRIVILEGES
    | TOKEN_ADJUST_GROUPS
    | TOKEN_ADJUST_DEFAULT
    | TOKEN_ADJUST_SESSIONID;
/// `TOKEN_READ` (0x20008): STANDARD_RIGHTS_READ | TOKEN_QUERY.
pub const TOKEN_READ: AccessMask = STANDARD_RIGHTS_READ | TOKEN_QUERY;
/// `TOKEN_WRITE` (0x200E0): STANDARD_RIGHTS_WRITE | the three adjust rights.
pub const TOKEN_WRITE: AccessMask =
    STANDARD_RIGHTS_WRITE | TOKEN_ADJUST_PRIVILEGES | TOKEN_ADJUST_GROUPS | TOKEN_ADJUST_DEFAULT;
/// `TOKEN_EXECUTE` (0x20000): STANDARD_RIGHTS_EXECUTE.
pub const TOKEN_EXECUTE: AccessMask = STANDARD_RIGHTS_EXECUTE;

/// `FILE_ALL_ACCESS` (SDDL `FA`).
pub const FILE_ALL_ACCESS: AccessMask = 0x001F_01FF;
/// `FILE_GENERIC_READ` (SDDL `FR`).
pub const FILE_GENERIC_READ: AccessMask = 0x0012_0089;
/// `FILE_GENERIC_WRITE` (SDDL `FW`).
pub const FILE_GENERIC_WRITE: AccessMask = 0x0012_0116;
/// `FILE_GENERIC_EXECUTE` (SDDL `FX`).
pub const FILE_GENERIC_EXECUTE: AccessMask = 0x0012_00A0;
/// `KEY_ALL_ACCESS` (SDDL `KA`).
pub const KEY_ALL_ACCESS: AccessMask = 0x000F_003F;
/// `KEY_READ` (SDDL `KR`).
pub const KEY_READ: AccessMask = 0x0002_0019;
/// `KEY_WRITE` (SDDL `KW`).
pub const KEY_WRITE: AccessMask = 0x0002_0006;
/// `KEY_EXECUTE` (SDDL `KX`, same value as `KEY_READ`).
pub const KEY_EXECUTE: AccessMask = 0x0002_0019;

/// A `GENERIC_MAPPING`: what each generic right means for one object type.
///
/// # Examples
///
/// ```
/// use wsock_identity::{GenericMapping, rights::*};
/// let m = GenericMapping::TOKEN;
/// assert_eq!(m.map(GENERIC_READ), TOKEN_READ);
/// assert_eq!(m.map(GENERIC_ALL | TOKEN_QUERY), TOKEN_ALL_ACCESS);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenericMapping {
    /// Rights that `GENERIC_READ` stands for.
    pub read: AccessMask,
    /// Rights that `GENERIC_WRITE` stands for.
    pub write: AccessMask,
    /// Rights that `GENERIC_EXECUTE` stands for.
    pub execute: AccessMask,
    /// Rights that `GENERIC_ALL` stands for.
    pub all: AccessMask,
}

impl GenericMapping {
    /// The mapping of access token objects (TOKEN_READ / TOKEN_WRITE / TOKEN_EXECUTE /
    /// TOKEN_ALL_ACCESS).
    pub const TOKEN: GenericMapping = GenericMapping {
        read: TOKEN_READ,
        write: TOKEN_WRITE,
        execute: TOKEN_EXECUTE,
        all: TOKEN_ALL_ACCESS,
    };

    /// The mapping of file objects (FILE_GENERIC_* / FILE_ALL_ACCESS).
    pub const FILE: GenericMapping = GenericMapping {
        read: FILE_GENERIC_READ,
        write: FILE_GENERIC_WRITE,
        execute: FILE_GENERIC_EXECUTE,
        all: FILE_ALL_ACCESS,
    };

    /// `MapGenericMask`: replaces each generic bit of `mask` by the rights it stands for and
    /// clears the generic bits. Other bits (including `MAXIMUM_ALLOWED`) are kept.
    pub const fn map(&self, mask: AccessMask) -> AccessMask {
        let mut out = mask & !GENERIC_ANY;
        if mask & GENERIC_READ != 0 {
            out |= self.read;
        }
        if mask & GENERIC_WRITE != 0 {
            out |= self.write;
        }
        if mask & GENERIC_EXECUTE != 0 {
            out |= self.execute;
        }
        if mask & GENERIC_ALL != 0 {
            out |= self.all;
        }
        out
    }
}
