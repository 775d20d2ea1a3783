//! The stack's error enum. The `wsock` crate maps it once to WSA* codes at the API boundary.

/// Everything a socket operation on the simulated stack can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The local address is in use by another socket (WSAEADDRINUSE).
    #[error("address already in use")]
    AddrInUse,
    /// Refused: an exclusive-use address, or a policy decision (WSAEACCES).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The address is not one of this host's (WSAEADDRNOTAVAIL).
    #[error("address not available on this host")]
    AddrNotAvailable,
    /// An argument or a state the call does not accept (WSAEINVAL).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// An address of the other family (WSAEAFNOSUPPORT).
    #[error("address family does not match the socket")]
    FamilyMismatch,
    /// No listener at the remote port (WSAECONNREFUSED).
    #[error("connection refused")]
    ConnectionRefused,
    /// The peer reset the connection (WSAECONNRESET).
    #[error("connection reset by peer")]
    ConnectionReset,
    /// The connection was torn down locally, e.g. by policy (WSAECONNABORTED).
    #[error("connection aborted: {0}")]
    ConnectionAborted(String),
    /// The socket is not connected (WSAENOTCONN).
    #[error("socket is not connected")]
    NotConnected,
    /// The socket is already connected (WSAEISCONN).
    #[error("socket is already connected")]
    IsConnected,
    /// A non-blocking connect is still in progress (WSAEALREADY).
    #[error("operation already in progress")]
    AlreadyInProgress,
    /// Sending or receiving was shut down (WSAESHUTDOWN).
    #[error("socket has been shut down")]
    Shutdown,
    /// Nothing is ready on a non-blocking socket (WSAEWOULDBLOCK).
    #[error("operation would block")]
    WouldBlock,
    /// A deadline passed (WSAETIMEDOUT).
    #[error("timed out")]
    TimedOut,
    /// A datagram larger than the link allows, or a receive buffer too small (WSAEMSGSIZE).
    #[error("message too long")]
    MessageTooLong,
    /// No host of the scenario has the destination address (WSAEHOSTUNREACH).
    #[error("host unreachable")]
    HostUnreachable,
    /// The handle does not name a live socket (WSAENOTSOCK).
    #[error("not a socket")]
    NotSocket,
    /// The socket is not listening (WSAEINVAL for accept).
    #[error("socket is not listening")]
    NotListening,
    /// Out of ephemeral ports or buffers (WSAENOBUFS).
    #[error("no buffer space or ports left")]
    NoBufferSpace,
    /// The network has been shut down (WSAENETDOWN).
    #[error("network is down")]
    NetworkDown,
    /// The capability is not built yet; the message says which.
    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
    /// An I/O error of the real underlay (binding the wire socket, writing a capture).
    #[error("underlay I/O: {0}")]
    Io(String),
    /// The scenario cannot be run as asked.
    #[error("scenario: {0}")]
    Scenario(String),
}

/// Result alias of the stack.
pub type Result<T> = std::result::Result<T, StackError>;
