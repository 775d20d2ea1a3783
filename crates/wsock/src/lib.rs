//! # wsock: Windows secure-socket extensions, emulated in user space (layer 3, the API)
//!
//! This crate is what an application calls. Below it, `wsock-stack` runs simulated hosts on a
//! real user-space TCP/IP stack whose packets cross real UDP sockets on loopback; ALE and the
//! WFP filter engine decide at every socket event; IPsec protects what policy says to protect
//! (see `docs/architecture.md` for the whole picture).
//!
//! Two faces call the same stack:
//! - [`sys`], the raw face: Winsock functions with the names, signatures and types of
//!   windows-sys 0.61 (`socket`, `connect`, `WSARecv`, `WSAIoctl`, ...), also under
//!   `wsock::sys::Win32::Networking::WinSock`, so Windows code ports by swapping the crate name.
//!   Which host a thread's sockets live on is chosen with [`ext`].
//! - [`net`], the Rust face: async [`net::TcpListener`], [`net::TcpStream`] and
//!   [`net::UdpSocket`] on a [`Host`] of a [`Network`], with errors that carry their WSA code.
//!
//! The secure-socket extensions are on both faces: `sys::WSASetSocketSecurity`,
//! `WSASetSocketPeerTargetName`, `WSADeleteSocketPeerTargetName`, `WSAQuerySocketSecurity`,
//! `WSAImpersonateSocketPeer`, `WSARevertImpersonation` (and their four `WSAIoctl` codes) on the
//! raw face; [`secure::SecuritySettings`], [`secure::SecurityInfo`] and the `*_secure`
//! constructors, queries and task-scoped peer impersonation of [`net`] on the Rust face.
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let net = wsock::Network::start(wsock::Scenario::default_scenario())?;
//! let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
//! let listener = wsock::net::TcpListener::bind(&server, "0.0.0.0:17".parse().unwrap())?;
//! net.runtime()?.block_on(async {
//!     let mut c = wsock::net::TcpStream::connect(&client, "10.0.0.2:17".parse().unwrap()).await?;
//!     let (mut s, _) = listener.accept().await?;
//!     c.write_all(b"ping").await.unwrap();
//!     let mut buf = [0u8; 4];
//!     s.read_exact(&mut buf).await.unwrap();
//!     assert_eq!(&buf, b"ping");
//!     Ok::<(), wsock::Error>(())
//! })?;
//! # Ok::<(), wsock::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
pub mod error;
pub mod ext;
pub mod identity;
pub mod net;
pub mod secure;
mod stack_security;
#[allow(unsafe_code)]
pub mod sys;
mod winsock;

pub use error::{Error, Result};
/// The identity model (SIDs, directories, tokens, security descriptors) the raw and Rust faces
/// hand out.
pub use wsock_identity;
pub use wsock_stack::{
    Family, Faults, Host, Network, NetworkBuilder, Scenario, ScenarioError, SocketOptions,
    StackError,
};
