//! IKEv2 (RFC 7296): the wire format and the cryptography of the keying exchanges.
//!
//! The exchange state machines (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL) build on
//! these modules: [`wire`] turns bytes into typed payloads and back, [`crypto`] derives keys and
//! protects SK payloads, and [`proposal`] maps algorithm suites to SA proposals and chooses among
//! offered ones. None of them keeps protocol state.

pub mod crypto;
pub mod proposal;
pub mod wire;
