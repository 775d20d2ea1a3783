//! Plain types shared by the host core and the API handles: address family, protocol,
//! shutdown direction, socket options and readiness.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::StackError;

/// Address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`), v6-only as Windows sockets are by default.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Transport protocol of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Which directions `shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `SD_RECEIVE`.
    Receive,
    /// `SD_SEND`: a FIN is sent once queued data has gone.
    Send,
    /// `SD_BOTH`.
    Both,
}

/// Per-socket options that the stack honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// `SO_EXCLUSIVEADDRUSE`.
    pub exclusive_addr: bool,
    /// `SO_LINGER`: `Some(0)` makes close send a reset.
    pub linger: Option<Duration>,
    /// `SO_RCVBUF` in bytes. A value the application set sizes the TCP receive buffer and
    /// window of connections made after it (1 KiB to 16 MiB); while it holds the default (64 KiB,
    /// what Windows reports), the stack picks the buffer itself
    /// ([`crate::core::AUTO_RECV_BUFFER`]), as Windows auto-tunes the window of such a socket.
    pub recv_buffer: usize,
    /// `SO_SNDBUF` in bytes; the default likewise leaves the size to the stack
    /// ([`crate::core::AUTO_SEND_BUFFER`]).
    pub send_buffer: usize,
    /// `TCP_NODELAY` (Nagle off).
    pub nodelay: bool,
    /// Whether an ICMP port unreachable answering one of this UDP socket's datagrams makes the
    /// next receive fail with `WSAECONNRESET` (Windows' default; `SIO_UDP_CONNRESET` turns it off).
    pub udp_connreset: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            reuse_addr: false,
            exclusive_addr: false,
            linger: None,
            recv_buffer: 64 * 1024,
            send_buffer: 64 * 1024,
            nodelay: false,
            udp_connreset: true,
        }
    }
}

/// What `poll`-style readiness reports for a socket (for `WSAPoll`/`select`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Data, a pending connection or end-of-stream can be read without blocking.
    pub readable: bool,
    /// Data can be written (or a non-blocking connect completed).
    pub writable: bool,
    /// The connection failed or was reset.
    pub error: Option<StackError>,
    /// The peer closed its side.
    pub hangup: bool,
}
