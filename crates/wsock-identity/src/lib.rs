//! # wsock-identity: principals, SIDs, tokens and impersonation (layer 0)
//!
//! In the wsock architecture (see `docs/architecture.md`) this crate holds who is who: machine and
//! user principals, their security identifiers, the access tokens handed to applications for an
//! authenticated peer, impersonation and access checks. It does no I/O and reads no clock.
//!
//! **Status:** not built yet. It is filled by the "secure socket functions" work on the roadmap;
//! until then every entry point returns [`IdentityError::NotImplemented`].
#![forbid(unsafe_code)]

/// Errors of the identity layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The named capability is not built yet.
    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
}

/// Looks up the access token of an authenticated peer.
///
/// # Errors
/// Always [`IdentityError::NotImplemented`] until peer tokens are built.
///
/// # Examples
/// ```
/// assert!(wsock_identity::peer_token("client").is_err());
/// ```
pub fn peer_token(_principal: &str) -> Result<u64, IdentityError> {
    Err(IdentityError::NotImplemented("peer access tokens"))
}
