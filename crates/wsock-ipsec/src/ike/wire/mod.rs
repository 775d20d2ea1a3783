//! IKEv2 wire format (RFC 7296 §3).
mod consts;
pub use consts::*;
