//! The API's error type, and the one place where errors of the layers below become Windows
//! error codes (WSA*).

use wsock_stack::{ScenarioError, StackError};

/// Winsock error codes used by wsock (the values of windows-sys's `WSA_ERROR` constants).
pub mod codes {
    pub use windows_sys::Win32::Networking::WinSock::{
        WSAEACCES, WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAEAFNOSUPPORT, WSAEALREADY, WSAECONNABORTED,
        WSAECONNREFUSED, WSAECONNRESET, WSAEFAULT, WSAEHOSTUNREACH, WSAEINVAL, WSAEISCONN,
        WSAEMSGSIZE, WSAENETDOWN, WSAENOBUFS, WSAENOPROTOOPT, WSAENOTCONN, WSAENOTSOCK,
        WSAEOPNOTSUPP, WSAEPROTONOSUPPORT, WSAEPROTOTYPE, WSAESHUTDOWN, WSAESOCKTNOSUPPORT,
        WSAETIMEDOUT, WSAEWOULDBLOCK, WSANOTINITIALISED, WSASYSNOTREADY, WSAVERNOTSUPPORTED,
    };
}

/// The WSA* code for a stack error. This is the only mapping of stack errors to Windows codes.
///
/// # Examples
/// ```
/// use wsock::{error::wsa_code_of, StackError};
/// assert_eq!(wsa_code_of(&StackError::ConnectionRefused), 10061);
/// ```
pub fn wsa_code_of(e: &StackError) -> i32 {
    e.wsa_code()
}

/// Errors of the Rust API face.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed in the stack.
    #[error("{0} (WSA error {code})", code = wsa_code_of(.0))]
    Socket(#[from] StackError),
    /// A scenario could not be read.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// No host of that name runs in this process.
    #[error("no host named {0:?} in this network")]
    NoSuchHost(String),
    /// A secure-socket call failed (settings, peer target names, queries, impersonation).
    #[error("{0} (WSA error {code})", code = .0.wsa_code())]
    Secure(#[from] crate::secure::SecureError),
}

impl Error {
    /// The Winsock error code a Windows application would see.
    ///
    /// # Examples
    /// ```
    /// let e = wsock::Error::from(wsock::StackError::TimedOut);
    /// assert_eq!(e.wsa_code(), 10060);
    /// ```
    pub fn wsa_code(&self) -> i32 {
        match self {
            Error::Socket(e) => wsa_code_of(e),
            Error::Scenario(_) | Error::NoSuchHost(_) => codes::WSAEINVAL,
            Error::Secure(e) => e.wsa_code(),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind as K;
        let kind = match &e {
            Error::Socket(s) => match s {
                StackError::AddrInUse => K::AddrInUse,
                StackError::AccessDenied(_) => K::PermissionDenied,
                StackError::AddrNotAvailable => K::AddrNotAvailable,
                StackError::ConnectionRefused => K::ConnectionRefused,
                StackError::ConnectionReset => K::ConnectionReset,
                StackError::ConnectionAborted(_) => K::ConnectionAborted,
                StackError::NotConnected => K::NotConnected,
                StackError::WouldBlock => K::WouldBlock,
                StackError::TimedOut => K::TimedOut,
                StackError::Shutdown => K::BrokenPipe,
                StackError::InvalidArgument(_) => K::InvalidInput,
                _ => K::Other,
            },
            _ => K::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}

/// Result alias of the Rust API face.
pub type Result<T> = std::result::Result<T, Error>;
