//! IKEv2 (RFC 7296): the wire format and the cryptography of the keying exchanges.
//!
//! The exchange state machines ([`sa`]: IKE_SA_INIT, IKE_AUTH, INFORMATIONAL) build on the
//! other modules: [`wire`] turns bytes into typed payloads and back, [`crypto`] derives keys and
//! protects SK payloads, and [`proposal`] maps algorithm suites to SA proposals and chooses among
//! offered ones. None of those keeps protocol state; [`sa`] does.

pub mod cert;
pub mod crypto;
pub mod proposal;
pub mod sa;
pub mod wire;
