//! IKEv2 (RFC 7296): the wire format and the cryptography of the keying exchanges.
//!
//! The exchange state machines (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL) build on
//! these two modules: [`wire`] turns bytes into typed payloads and back, and `crypto` derives
//! keys and protects SK payloads. Neither keeps protocol state.

pub mod crypto;
pub mod wire;
