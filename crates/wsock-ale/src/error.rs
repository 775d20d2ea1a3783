//! ALE's error type: what went wrong with a *call* (a stale or wrong id), as opposed to a
//! policy decision, which is always a verdict ([`crate::AleVerdict::Block`]).

use crate::{EndpointId, FlowId};

/// `WSAENOTSOCK` (10038).
const WSAENOTSOCK: i32 = 10038;
/// `WSAEINVAL` (10022).
const WSAEINVAL: i32 = 10022;
/// `WSAECONNABORTED` (10053).
const WSAECONNABORTED: i32 = 10053;
/// `WSAENOBUFS` (10055).
const WSAENOBUFS: i32 = 10055;

/// Why ALE could not act on a call. A *block* is never an error: it is
/// [`crate::AleVerdict::Block`]. Errors are about the call itself: an id ALE never issued, an
/// endpoint or flow that is gone, an operation the endpoint's state does not allow.
///
/// Map it once at the API boundary with [`AleError::wsa_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AleError {
    /// ALE never issued this endpoint id.
    #[error("unknown ALE endpoint {0:?}")]
    UnknownEndpoint(EndpointId),
    /// The endpoint existed and has been closed ([`crate::Ale::close_endpoint`]).
    #[error("ALE endpoint {0:?} is closed")]
    EndpointClosed(EndpointId),
    /// ALE never issued this flow id.
    #[error("unknown ALE flow {0:?}")]
    UnknownFlow(FlowId),
    /// The flow existed and is gone: closed, idle-expired, or torn down by a failed
    /// (re-)authorization.
    #[error("ALE flow {0:?} is closed or was torn down")]
    FlowClosed(FlowId),
    /// The operation needs a local address and the endpoint was never bound (e.g. a datagram
    /// received on an unbound endpoint).
    #[error("ALE endpoint {0:?} is not bound")]
    NotBound(EndpointId),
    /// The operation needs a listening TCP endpoint.
    #[error("ALE endpoint {0:?} is not a listening TCP endpoint")]
    NotListening(EndpointId),
    /// The flow belongs to another endpoint.
    #[error("ALE flow {flow:?} is not owned by endpoint {endpoint:?}")]
    FlowNotOwned {
        /// The flow.
        flow: FlowId,
        /// The endpoint the caller named.
        endpoint: EndpointId,
    },
    /// `accept` of a flow that is not an inbound TCP connection.
    #[error("ALE flow {0:?} is not an inbound TCP connection")]
    NotInboundConnection(FlowId),
    /// A per-endpoint table is full (e.g. peer target names); nothing was stored.
    #[error("ALE endpoint {0:?}: too many entries")]
    LimitExceeded(EndpointId),
}

impl AleError {
    /// The Winsock error an application would see: `WSAENOTSOCK` (10038) for an unknown or
    /// closed endpoint, `WSAECONNABORTED` (10053) for a flow that is gone, `WSAENOBUFS`
    /// (10055) for a full table, `WSAEINVAL` (10022) otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_ale::{AleError, EndpointId};
    /// assert_eq!(AleError::EndpointClosed(EndpointId(3)).wsa_error(), 10038);
    /// ```
    pub fn wsa_error(&self) -> i32 {
        match self {
            AleError::UnknownEndpoint(_) | AleError::EndpointClosed(_) => WSAENOTSOCK,
            AleError::FlowClosed(_) => WSAECONNABORTED,
            AleError::LimitExceeded(_) => WSAENOBUFS,
            _ => WSAEINVAL,
        }
    }
}
