//! # wsock-identity: principals, SIDs, tokens, handles and access checks (layer 0)
//!
//! On Windows, a secure socket does not only encrypt: once IPsec has authenticated the peer,
//! the application can ask *who* the peer is. `WSAQuerySocketSecurity` hands back handles to
//! access tokens for the peer computer and, after user-level authentication, the peer user;
//! `WSAImpersonateSocketPeer` makes the calling thread run as that peer; and the application
//! authorizes it with `GetTokenInformation` and `AccessCheck`.
//!
//! This crate is the box that answers "who is who" for wsock. It sits at layer 0 of the
//! architecture (see `docs/architecture.md`), beside `wsock-wfp`, and does no I/O, reads no
//! clock and starts no thread. Above it:
//!
//! * `wsock-ipsec` turns the identity a peer proved in IKE (certificate, PSK, user
//!   credentials) into a [`Token`] through a [`Directory`];
//! * `wsock-stack` builds each host's [`Directory`] from its scenario (domain, machine, users)
//!   with the plain-data [`DirectorySpec`];
//! * `wsock` keeps a [`HandleTable`] per `Network` and gives the raw face its Windows shapes:
//!   `GetTokenInformation` ([`HandleTable::token_information`], sizes from
//!   [`TokenInformation::required_size`]), `CloseHandle` ([`HandleTable::close`]),
//!   `AccessCheck` ([`access_check`], descriptors read with
//!   [`SecurityDescriptor::from_self_relative`]) and thread- or task-scoped impersonation
//!   (the token from [`impersonation_token`]).
//!
//! What it models:
//!
//! * [`Sid`]: security identifiers in text (`S-1-5-32-544`) and binary form, well-known ones
//!   in [`well_known`], and deterministic domain SIDs ([`Sid::domain_from_name`]).
//! * [`Directory`]: a domain's users, machines (`NAME$`) and groups, looked up by name
//!   (`DOMAIN\name`, `name@domain`, bare) or SID, with password checks.
//! * [`Token`]: user, groups with `SE_GROUP_*` attributes, type, impersonation level, logon
//!   session, and where the identity came from; network-logon constructors for peers.
//! * [`HandleTable`]: process-unique handles (multiples of 4) with granted access.
//! * [`SecurityDescriptor`] and [`access_check`]: owner, group, DACL of allow/deny ACEs,
//!   evaluated in order as Windows does; a small SDDL subset ([`SecurityDescriptor::from_sddl`]).
//! * [`binary`]: the Windows binary forms of ACLs and self-relative security descriptors.
//! * [`rights`]: access-right constants with their Windows values, and [`GenericMapping`].
//! * [`IdentityError`]: one error enum, each variant mapped once to a Win32 error code.
//!
//! Every parser here (SID text and bytes, SDDL, binary ACLs and descriptors) is total: bad
//! input gives a typed error with a position, never a panic.
//!
//! ```
//! use wsock_identity::*;
//!
//! // The server's view of the domain, built from plain data.
//! let dir = DirectorySpec::new("WSOCK")
//!     .machine("CLIENT")
//!     .user(UserSpec::new("alice").password("pw").group("Domain Admins"))
//!     .build()?;
//!
//! // IKE authenticated the client machine, then the user: two peer tokens.
//! let machine = Token::peer_machine(&dir, "CLIENT", AuthMethod::Certificate)?;
//! let user = Token::peer_user(&dir, "WSOCK\\alice", AuthMethod::Password)?;
//!
//! // WSAQuerySocketSecurity with PeerTokenAccessMask = TOKEN_QUERY hands out handles.
//! let handles: HandleTable = HandleTable::new();
//! let h = handles.insert_mapped(user, rights::TOKEN_QUERY, &GenericMapping::TOKEN);
//!
//! // GetTokenInformation(TokenUser): probe the size, then read.
//! let info = handles.token_information(h, TokenInformationClass::User)?;
//! assert!(info.check_buffer(0).is_err());
//! let token = handles.get(h)?.object;
//!
//! // AccessCheck against a descriptor written in SDDL.
//! let sd = SecurityDescriptor::from_sddl("O:BAG:BAD:(A;;FA;;;BA)(A;;FR;;;AU)", None)?;
//! let full = access_check(&sd, &token, rights::FILE_ALL_ACCESS, &GenericMapping::FILE)?;
//! assert!(full.is_granted()); // Domain Admins are BUILTIN\Administrators on members
//! let mach = access_check(&sd, &machine, rights::FILE_ALL_ACCESS, &GenericMapping::FILE)?;
//! assert_eq!(mach.status, 5); // ERROR_ACCESS_DENIED
//!
//! handles.close(h)?;
//! assert!(handles.is_empty());
//! # Ok::<(), IdentityError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binary;
mod directory;
mod error;
mod handle;
pub mod rights;
mod sddl;
mod security;
mod sid;
mod token;

pub use directory::{
    Account, Directory, DirectorySpec, GroupSpec, MachineSpec, SidNameUse, UserSpec,
};
pub use error::{win32, IdentityError, SddlErrorKind, SidErrorKind};
pub use handle::{Handle, HandleEntry, HandleTable, INVALID_HANDLE_VALUE};
pub use rights::{AccessMask, GenericMapping};
pub use security::{
    access_check, AccessCheckOutcome, Ace, AceFlags, AceKind, Acl, DaclFlags, SecurityDescriptor,
};
pub use sid::{well_known, Sid, MAX_AUTHORITY, SECURITY_MAX_SID_SIZE, SID_MAX_SUB_AUTHORITIES};
pub use token::{
    impersonation_token, AuthMethod, GroupAttributes, IdentitySource, ImpersonationLevel, Luid,
    PrincipalKind, SidAndAttributes, Token, TokenGroups, TokenInformation, TokenInformationClass,
    TokenStatistics, TokenType, TokenUser, SID_AND_ATTRIBUTES_SIZE, TOKEN_GROUPS_HEADER,
    TOKEN_GROUPS_SIZE, TOKEN_STATISTICS_SIZE, TOKEN_USER_SIZE,
};
