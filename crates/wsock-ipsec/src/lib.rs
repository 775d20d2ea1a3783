//! # wsock-ipsec: IKEv2-shaped keying and the ESP data path (layer 1)
//!
//! In the wsock architecture (see `docs/architecture.md`) this crate protects packets with ESP
//! (RFC 4303) and negotiates the security associations with the peer host (IKEv2, RFC 7296) on
//! the host's IKE and NAT-T sockets. It sits on layer 1, beside `wsock-ale`, and is sans-IO: packets
//! come in as byte slices, time comes in as a [`std::time::Duration`] since an epoch the caller
//! chooses, and what must be sent comes out as values. Only `wsock-stack` owns sockets and timers.
//!
//! Modules:
//! - [`esp`]: outbound and inbound ESP SAs (seal/open, anti-replay with ESN, lifetimes), over
//!   AES-GCM-16, ChaCha20-Poly1305, AES-GMAC, NULL+HMAC and AES-CBC+HMAC.
//! - [`natt`]: the RFC 3948 demultiplexing of the NAT-T socket (keepalive / IKE / ESP).
//! - [`ike::wire`]: IKEv2 messages and payloads as typed views and `Repr`s, with parse and emit.
//! - [`ike::crypto`]: prf/prf+, SKEYSEED and key derivation, SK payload protection, and ephemeral
//!   Diffie-Hellman (P-256, P-384, X25519), PSK AUTH and NAT detection hashes.
//! - [`ike::proposal`]: SA proposals from suites and back, and the responder's choice.
//! - [`ike::cert`]: certificate authentication (CERT/CERTREQ, RFC 7427 ECDSA signatures, chain,
//!   EKU and name checks with rustls-webpki).
//! - [`ike::sa`]: the exchanges themselves (IKE_SA_INIT, IKE_AUTH with PSK or certificates,
//!   INFORMATIONAL) as a sans-IO [`ike::sa::IkeEndpoint`] with retransmission, response cache,
//!   cookies, INVALID_KE retry, NAT detection and typed failures.
//! - [`pki`]: a small CA (rcgen) issuing machine certificates for scenarios and tests.
//! - [`keylog`]: key records in the format tshark and the project's oracle read.
//!
//! Errors: one enum, [`IpsecError`], mapped once to the Windows `ERROR_IPSEC_*` codes by
//! [`IpsecError::win32_code`].
//!
//! Parsers are plain `fn parse(&[u8]) -> Result<..>` functions and never panic on any input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod esp;
pub mod ike;
pub mod keylog;
pub mod natt;
pub mod pki;

pub use error::{IpsecError, LifetimeKind};
