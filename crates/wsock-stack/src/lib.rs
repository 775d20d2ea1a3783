//! # wsock-stack: simulated hosts, their sockets, the packet path and the wire (layer 2)
//!
//! In the wsock architecture (see `docs/architecture.md`), this crate is the network. Each host
//! of a [`Scenario`] gets a real user-space TCP/IP stack (smoltcp) with its virtual IPv4 and IPv6
//! addresses, and a real UDP socket on the underlay (loopback by default). A packet a host's stack
//! emits runs the outbound [hooks](hooks) (where ALE and IPsec attach), crosses the link's
//! deterministic [faults], and leaves as GRE-in-UDP (RFC 8086) on the host's clear-path socket;
//! the receiving host runs the inbound hooks before its stack sees the packet. Every datagram can
//! be written to a pcap [capture] that stock tshark dissects.
//!
//! This is the only crate below the API that owns sockets, tasks and timers; the policy and
//! keying crates under it are sans-IO. Winsock semantics that smoltcp lacks (port sharing rules,
//! backlog, shutdown, error codes, non-blocking calls) are built here on top of it, and reported
//! as [`StackError`], which the `wsock` crate maps once to WSA* codes.
//!
//! ```
//! use wsock_stack::{Family, Network, Scenario};
//! let net = Network::start(Scenario::default_scenario())?;
//! let rt = net.runtime()?;
//! let (client, server) = (net.host("client").unwrap(), net.host("server").unwrap());
//! let listener = server.tcp(Family::V4);
//! listener.bind("0.0.0.0:17".parse().unwrap())?;
//! listener.listen(4)?;
//! let server_addr = std::net::SocketAddr::new(server.ipv4().into(), 17);
//! rt.block_on(async {
//!     let conn = client.tcp(Family::V4);
//!     conn.connect(server_addr).await?;
//!     let (accepted, _) = listener.accept().await?;
//!     conn.send(b"hello").await?;
//!     let mut buf = [0u8; 5];
//!     let n = accepted.recv(&mut buf).await?;
//!     assert_eq!(&buf[..n], b"hello");
//!     Ok::<(), wsock_stack::StackError>(())
//! })?;
//! # Ok::<(), wsock_stack::StackError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod core;
mod error;
pub mod faults;
pub mod ipsec_setup;
mod network;
pub mod policy;
pub mod scenario;
mod services;
mod shared;
mod socket;
pub mod stages;
mod types;
pub mod wire;

pub use crate::core::HostCore;
pub use core::{KeyLog, SaDatabase, SaFields, SecurityQuery};
pub use error::{Abort, Result, StackError};
pub use network::{Network, NetworkBuilder};
pub use scenario::{Faults, Scenario, ScenarioError};
pub use socket::{Endpoint, Host, HostStats};
pub use types::{Family, Protocol, Readiness, Shutdown, SocketOptions};
pub use wsock_ale;
pub use wsock_ale::SecuritySettings;
pub use wsock_ipsec;
pub use wsock_wfp;
