//! # wsock-ipsec: IKEv2-shaped keying and the ESP data path (layer 1)
//!
//! In the wsock architecture (see `docs/architecture.md`) this crate negotiates security
//! associations with the peer host (IKEv2, RFC 7296) and protects packets with ESP (RFC 4303) on
//! the host's IKE and NAT-T sockets. It is sans-IO: packets come in as byte slices, time comes in
//! as an argument, and what must be sent comes out as values.
//!
//! **Status:** not built yet. Until the IPsec work lands, every entry point returns
//! [`IpsecError::NotImplemented`], and the stack never sends protected traffic: a socket that asks
//! for security gets a clear error rather than silent clear text.
#![forbid(unsafe_code)]

/// Errors of the IPsec layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpsecError {
    /// The named capability is not built yet.
    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
}

/// Starts negotiating a main mode SA with a peer.
///
/// # Errors
/// Always [`IpsecError::NotImplemented`] until IKEv2 keying is built.
///
/// # Examples
/// ```
/// assert!(wsock_ipsec::initiate("server").is_err());
/// ```
pub fn initiate(_peer: &str) -> Result<(), IpsecError> {
    Err(IpsecError::NotImplemented("IKEv2 keying"))
}
