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
    AccessDenied(Denial),
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
    ConnectionAborted(Abort),
    /// ALE refused the call itself (a stale or closed endpoint or flow); the code is ALE's.
    #[error("ALE: {0}")]
    Ale(wsock_ale::AleError),
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

/// Why an operation was refused with `WSAEACCES`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// Another socket holds the address with `SO_EXCLUSIVEADDRUSE`.
    ExclusiveAddress,
    /// A WFP filter blocked the operation at an ALE layer (which filter and layer travel with it).
    Policy(Box<wsock_ale::AleBlock>),
    /// IPsec negotiation failed and policy does not allow clear text (the
    /// `ERROR_IPSEC_IKE_*` code; reported only when the scenario chose `WSAEACCES` for it).
    Ipsec(u32),
}

/// Why a connection was aborted locally (`WSAECONNABORTED`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Abort {
    /// Policy blocked the flow when it was established or re-authorized.
    Policy(Box<wsock_ale::AleBlock>),
    /// The application aborted it (e.g. a test or a management tool).
    Local,
    /// An IPsec SA id the connection's query selected changed (a rekey or a new negotiation
    /// replaced the SA) and the query asked for
    /// `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE`.
    SaChanged {
        /// The field that changed: `"MmSaId"` or `"QmSaId"`.
        field: &'static str,
        /// Its value at the query.
        was: u64,
        /// Its value now (0: no SA protects the connection any more).
        now: u64,
    },
}

fn describe_block(f: &mut std::fmt::Formatter<'_>, b: &wsock_ale::AleBlock) -> std::fmt::Result {
    write!(f, "blocked at {}", b.layer)?;
    if let Some(id) = b.filter_id {
        write!(f, " by filter {id}")?;
    }
    if let Some(name) = &b.filter_name {
        write!(f, " ({name:?})")?;
    }
    if b.reauth {
        f.write_str(" on re-authorization")?;
    }
    Ok(())
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::ExclusiveAddress => f.write_str("the address is held with SO_EXCLUSIVEADDRUSE"),
            Denial::Policy(b) => describe_block(f, b),
            Denial::Ipsec(code) => write!(f, "IPsec negotiation failed (error {code})"),
        }
    }
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abort::Policy(b) => describe_block(f, b),
            Abort::Local => f.write_str("aborted locally"),
            Abort::SaChanged { field, was, now } => write!(
                f,
                "the IPsec SA changed ({field} {was} -> {now}) and the query asked to abort then"
            ),
        }
    }
}

/// The Winsock error codes the stack's errors map to (the values of windows-sys's `WSAE*`).
pub mod wsa {
    #![allow(missing_docs)]
    pub const WSAEINVAL: i32 = 10022;
    pub const WSAEACCES: i32 = 10013;
    pub const WSAEWOULDBLOCK: i32 = 10035;
    pub const WSAEALREADY: i32 = 10037;
    pub const WSAENOTSOCK: i32 = 10038;
    pub const WSAEMSGSIZE: i32 = 10040;
    pub const WSAEOPNOTSUPP: i32 = 10045;
    pub const WSAEAFNOSUPPORT: i32 = 10047;
    pub const WSAEADDRINUSE: i32 = 10048;
    pub const WSAEADDRNOTAVAIL: i32 = 10049;
    pub const WSAENETDOWN: i32 = 10050;
    pub const WSAECONNABORTED: i32 = 10053;
    pub const WSAECONNRESET: i32 = 10054;
    pub const WSAENOBUFS: i32 = 10055;
    pub const WSAEISCONN: i32 = 10056;
    pub const WSAENOTCONN: i32 = 10057;
    pub const WSAESHUTDOWN: i32 = 10058;
    pub const WSAETIMEDOUT: i32 = 10060;
    pub const WSAECONNREFUSED: i32 = 10061;
    pub const WSAEHOSTUNREACH: i32 = 10065;
}

impl StackError {
    /// The WSA* code of this error: the one mapping of stack errors to Windows codes
    /// (exhaustive, no catch-all).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(wsock_stack::StackError::ConnectionRefused.wsa_code(), 10061);
    /// ```
    pub fn wsa_code(&self) -> i32 {
        use wsa::*;
        match self {
            StackError::AddrInUse => WSAEADDRINUSE,
            StackError::AccessDenied(_) => WSAEACCES,
            StackError::AddrNotAvailable => WSAEADDRNOTAVAIL,
            StackError::InvalidArgument(_) | StackError::NotListening | StackError::Scenario(_) => {
                WSAEINVAL
            }
            StackError::FamilyMismatch => WSAEAFNOSUPPORT,
            StackError::ConnectionRefused => WSAECONNREFUSED,
            StackError::ConnectionReset => WSAECONNRESET,
            StackError::ConnectionAborted(_) => WSAECONNABORTED,
            StackError::Ale(e) => e.wsa_error(),
            StackError::NotConnected => WSAENOTCONN,
            StackError::IsConnected => WSAEISCONN,
            StackError::AlreadyInProgress => WSAEALREADY,
            StackError::Shutdown => WSAESHUTDOWN,
            StackError::WouldBlock => WSAEWOULDBLOCK,
            StackError::TimedOut => WSAETIMEDOUT,
            StackError::MessageTooLong => WSAEMSGSIZE,
            StackError::HostUnreachable => WSAEHOSTUNREACH,
            StackError::NotSocket => WSAENOTSOCK,
            StackError::NoBufferSpace => WSAENOBUFS,
            StackError::NetworkDown | StackError::Io(_) => WSAENETDOWN,
            StackError::NotImplemented(_) => WSAEOPNOTSUPP,
        }
    }

    /// The ALE block behind a policy refusal or teardown, if this is one.
    pub fn policy_block(&self) -> Option<&wsock_ale::AleBlock> {
        match self {
            StackError::AccessDenied(Denial::Policy(b))
            | StackError::ConnectionAborted(Abort::Policy(b)) => Some(b),
            _ => None,
        }
    }
}

impl From<wsock_ale::AleError> for StackError {
    fn from(e: wsock_ale::AleError) -> Self {
        StackError::Ale(e)
    }
}

/// Result alias of the stack.
pub type Result<T> = std::result::Result<T, StackError>;
