//! [`IdentityError`]: every failure of the identity layer, mapped once to its Win32 error code.

use std::fmt;

/// Win32 error codes this crate reports (winerror.h values).
///
/// They are what [`IdentityError::win32_code`] returns and what the raw face of the `wsock`
/// crate stores for `GetLastError`.
pub mod win32 {
    /// `ERROR_SUCCESS`: the operation completed.
    pub const ERROR_SUCCESS: u32 = 0;
    /// `ERROR_ACCESS_DENIED`.
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    /// `ERROR_INVALID_HANDLE`.
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    /// `ERROR_INVALID_PARAMETER`.
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    /// `ERROR_INSUFFICIENT_BUFFER`.
    pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    /// `ERROR_ALREADY_EXISTS`.
    pub const ERROR_ALREADY_EXISTS: u32 = 183;
    /// `ERROR_NO_IMPERSONATION_TOKEN`: a primary token was given where an impersonation token
    /// is required.
    pub const ERROR_NO_IMPERSONATION_TOKEN: u32 = 1309;
    /// `ERROR_PRIVILEGE_NOT_HELD`: the access asked for needs a privilege the token lacks.
    pub const ERROR_PRIVILEGE_NOT_HELD: u32 = 1314;
    /// `ERROR_NO_SUCH_USER`.
    pub const ERROR_NO_SUCH_USER: u32 = 1317;
    /// `ERROR_LOGON_FAILURE`: unknown user name or bad password.
    pub const ERROR_LOGON_FAILURE: u32 = 1326;
    /// `ERROR_NONE_MAPPED`: no mapping between account names and security IDs was done.
    pub const ERROR_NONE_MAPPED: u32 = 1332;
    /// `ERROR_INVALID_ACL`.
    pub const ERROR_INVALID_ACL: u32 = 1336;
    /// `ERROR_INVALID_SID`.
    pub const ERROR_INVALID_SID: u32 = 1337;
    /// `ERROR_INVALID_SECURITY_DESCR`.
    pub const ERROR_INVALID_SECURITY_DESCR: u32 = 1338;
    /// `ERROR_BAD_IMPERSONATION_LEVEL`.
    pub const ERROR_BAD_IMPERSONATION_LEVEL: u32 = 1346;
    /// `ERROR_GENERIC_NOT_MAPPED`: an access mask still holds generic rights.
    pub const ERROR_GENERIC_NOT_MAPPED: u32 = 1360;
}

/// Why a SID could not be parsed (from text or from bytes).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidErrorKind {
    /// The input is empty.
    Empty,
    /// The text does not start with `S-` (or `s-`).
    MissingPrefix,
    /// The revision is not 1.
    BadRevision,
    /// A number is missing, is not decimal (or `0x` hex for the authority), or overflows.
    BadNumber,
    /// The identifier authority does not fit in 48 bits.
    AuthorityTooLarge,
    /// More than 15 sub-authorities.
    TooManySubAuthorities,
    /// The bytes end before the SID does.
    Truncated,
    /// Bytes follow the end of the SID (only where the whole input must be one SID).
    TrailingData,
}

impl fmt::Display for SidErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SidErrorKind::Empty => "empty input",
            SidErrorKind::MissingPrefix => "missing the S- prefix",
            SidErrorKind::BadRevision => "revision is not 1",
            SidErrorKind::BadNumber => "not a valid number",
            SidErrorKind::AuthorityTooLarge => "identifier authority exceeds 48 bits",
            SidErrorKind::TooManySubAuthorities => "more than 15 sub-authorities",
            SidErrorKind::Truncated => "input ends inside the SID",
            SidErrorKind::TrailingData => "data after the end of the SID",
        })
    }
}

/// Why an SDDL string could not be parsed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SddlErrorKind {
    /// Expected a component tag `O:`, `G:`, `D:` (`S:` SACLs are not supported).
    UnknownComponent,
    /// The same component (`O:`, `G:` or `D:`) appears twice.
    DuplicateComponent,
    /// Expected `(` to open an ACE, a DACL flag, or the end of the DACL.
    ExpectedAce,
    /// An ACE is not closed by `)`.
    UnterminatedAce,
    /// An ACE has fewer or more than the six `;`-separated fields.
    WrongFieldCount,
    /// An ACE type other than `A` (allow) or `D` (deny).
    UnsupportedAceType,
    /// An unknown ACE flag (the known ones are `CI OI NP IO ID`).
    UnknownAceFlag,
    /// A rights field that is neither a number nor a list of known two-letter rights.
    BadRights,
    /// Object ACE GUID fields are not supported: they must be empty.
    ObjectAceNotSupported,
    /// An unknown two-letter SID alias.
    UnknownSidAlias,
    /// A domain-relative alias (`DU`, `DA`, `DC`) without a domain to resolve it against.
    DomainAliasWithoutDomain,
    /// A literal `S-1-...` SID that does not parse.
    BadSid(SidErrorKind),
}

impl fmt::Display for SddlErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SddlErrorKind::UnknownComponent => f.write_str("expected O:, G: or D:"),
            SddlErrorKind::DuplicateComponent => f.write_str("component given twice"),
            SddlErrorKind::ExpectedAce => f.write_str("expected an ACE '('"),
            SddlErrorKind::UnterminatedAce => f.write_str("ACE not closed by ')'"),
            SddlErrorKind::WrongFieldCount => f.write_str("an ACE has six ';'-separated fields"),
            SddlErrorKind::UnsupportedAceType => f.write_str("ACE type must be A or D"),
            SddlErrorKind::UnknownAceFlag => f.write_str("unknown ACE flag"),
            SddlErrorKind::BadRights => f.write_str("bad access rights"),
            SddlErrorKind::ObjectAceNotSupported => f.write_str("object ACE GUIDs not supported"),
            SddlErrorKind::UnknownSidAlias => f.write_str("unknown SID alias"),
            SddlErrorKind::DomainAliasWithoutDomain => {
                f.write_str("domain-relative alias needs a domain SID")
            }
            SddlErrorKind::BadSid(k) => write!(f, "bad SID: {k}"),
        }
    }
}

/// Every failure of the identity layer.
///
/// Each variant maps to exactly one Win32 error code through [`IdentityError::win32_code`];
/// the mapping is written once, there, with no catch-all arm.
///
/// # Examples
///
/// ```
/// use wsock_identity::{IdentityError, Sid};
/// let err = Sid::parse_str("S-2-5").unwrap_err();
/// assert_eq!(err.win32_code(), 1337); // ERROR_INVALID_SID
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A SID (text or binary) is malformed. `position` is the byte offset where parsing failed.
    #[error("invalid SID at byte {position}: {kind}")]
    InvalidSid {
        /// What is wrong.
        kind: SidErrorKind,
        /// Byte offset into the input.
        position: usize,
    },
    /// An SDDL string is malformed. `position` is the byte offset where parsing failed.
    #[error("invalid SDDL at byte {position}: {kind}")]
    InvalidSddl {
        /// What is wrong.
        kind: SddlErrorKind,
        /// Byte offset into the SDDL text.
        position: usize,
    },
    /// A name or SID has no account in the directory (`LookupAccountName`/`LookupAccountSid`).
    #[error("no account maps to {name:?}")]
    NoneMapped {
        /// The name or SID (as text) that was looked up.
        name: String,
    },
    /// The named user (or machine) account does not exist, where one is required to build a
    /// token.
    #[error("no such user: {name:?}")]
    NoSuchUser {
        /// The name that was asked for.
        name: String,
    },
    /// Unknown user, account without a password, or wrong password (deliberately one error,
    /// as Windows does, so the answer does not reveal which accounts exist).
    #[error("logon failure: unknown user name or bad password")]
    LogonFailure,
    /// Two accounts of a directory have the same name (names compare case-insensitively).
    #[error("account {name:?} already exists")]
    AccountExists {
        /// The duplicated name.
        name: String,
    },
    /// A handle that is not open in this table (never issued, or already closed).
    #[error("invalid handle {handle:#x}")]
    InvalidHandle {
        /// The raw handle value.
        handle: u64,
    },
    /// The handle was not opened with the access the operation needs, or an access check
    /// denied the request.
    #[error("access denied (needed {needed:#x}, held {held:#x})")]
    AccessDenied {
        /// The access rights the operation needs.
        needed: u32,
        /// The access rights that are held.
        held: u32,
    },
    /// The caller's buffer is too small: `required` bytes are needed (the size-probe protocol
    /// of `GetTokenInformation`).
    #[error("buffer too small: {required} bytes needed")]
    InsufficientBuffer {
        /// The size in bytes that is needed.
        required: usize,
    },
    /// An argument is out of range or malformed.
    #[error("invalid parameter: {what}")]
    InvalidParameter {
        /// Which argument, and why.
        what: &'static str,
    },
    /// A primary token was given where an impersonation token is required (`AccessCheck`).
    #[error("an impersonation token is required")]
    NoImpersonationToken,
    /// The token's impersonation level does not allow the operation (e.g. an anonymous token
    /// in `AccessCheck`, or raising the level in a duplicate).
    #[error("bad impersonation level")]
    BadImpersonationLevel,
    /// A security descriptor lacks its owner or group (required by `AccessCheck`), or its
    /// binary (self-relative) form is malformed.
    #[error("invalid security descriptor: {what}")]
    InvalidSecurityDescriptor {
        /// What is missing or wrong.
        what: &'static str,
    },
    /// The binary form of an ACL is malformed, or holds an ACE type this crate does not model.
    /// `position` is the byte offset of the problem in the input.
    #[error("invalid ACL at byte {position}: {what}")]
    InvalidAcl {
        /// What is wrong.
        what: &'static str,
        /// Byte offset into the input.
        position: usize,
    },
    /// A desired access mask still holds generic rights; map it with
    /// [`GenericMapping::map`](crate::GenericMapping::map) first, as Windows requires.
    #[error("generic access rights not mapped: {mask:#x}")]
    GenericNotMapped {
        /// The offending mask.
        mask: u32,
    },
}

impl IdentityError {
    /// The Win32 error code of this error (what `GetLastError` returns on Windows).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::IdentityError;
    /// assert_eq!(IdentityError::InvalidHandle { handle: 4 }.win32_code(), 6);
    /// assert_eq!(IdentityError::InsufficientBuffer { required: 44 }.win32_code(), 122);
    /// ```
    pub const fn win32_code(&self) -> u32 {
        use win32::*;
        match self {
            IdentityError::InvalidSid { .. } => ERROR_INVALID_SID,
            IdentityError::InvalidSddl { .. } => ERROR_INVALID_PARAMETER,
            IdentityError::NoneMapped { .. } => ERROR_NONE_MAPPED,
            IdentityError::NoSuchUser { .. } => ERROR_NO_SUCH_USER,
            IdentityError::LogonFailure => ERROR_LOGON_FAILURE,
            IdentityError::AccountExists { .. } => ERROR_ALREADY_EXISTS,
            IdentityError::InvalidHandle { .. } => ERROR_INVALID_HANDLE,
            IdentityError::AccessDenied { .. } => ERROR_ACCESS_DENIED,
            IdentityError::InsufficientBuffer { .. } => ERROR_INSUFFICIENT_BUFFER,
            IdentityError::InvalidParameter { .. } => ERROR_INVALID_PARAMETER,
            IdentityError::NoImpersonationToken => ERROR_NO_IMPERSONATION_TOKEN,
            IdentityError::BadImpersonationLevel => ERROR_BAD_IMPERSONATION_LEVEL,
            IdentityError::InvalidSecurityDescriptor { .. } => ERROR_INVALID_SECURITY_DESCR,
            IdentityError::InvalidAcl { .. } => ERROR_INVALID_ACL,
            IdentityError::GenericNotMapped { .. } => ERROR_GENERIC_NOT_MAPPED,
        }
    }
}
