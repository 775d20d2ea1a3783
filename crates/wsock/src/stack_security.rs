//! The secure-socket down-calls into the stack, in one place: both faces call these four
//! functions, and only this module knows how `wsock_stack::Endpoint` spells them.

use std::net::{IpAddr, SocketAddr};

use wsock_stack::wsock_ale::SecuritySettings;
use wsock_stack::{Endpoint, StackError};

/// What the stack knows about a socket's security (`WSAQuerySocketSecurity`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SecurityQuery {
    pub(crate) secured: bool,
    pub(crate) encrypted: bool,
    pub(crate) mm_sa_id: u64,
    pub(crate) qm_sa_id: u64,
    pub(crate) negotiation_winerr: u32,
    pub(crate) peer_machine: Option<String>,
    pub(crate) peer_user: Option<String>,
    pub(crate) sa_lookup_context: u64,
}

/// `WSASetSocketSecurity`: `None` is the NULL settings (the default policy).
pub(crate) fn set_security(
    ep: &Endpoint,
    settings: Option<SecuritySettings>,
) -> Result<(), StackError> {
    ep.set_security(settings)
}

/// `WSASetSocketPeerTargetName` for the peer `peer` (for TCP, the unspecified address names
/// the peer the socket connects to).
pub(crate) fn set_peer_target_name(
    ep: &Endpoint,
    peer: IpAddr,
    name: &str,
) -> Result<(), StackError> {
    ep.set_peer_target_name(peer, name)
}

/// `WSADeleteSocketPeerTargetName` for the peer `peer`.
pub(crate) fn delete_peer_target_name(ep: &Endpoint, peer: IpAddr) -> Result<(), StackError> {
    ep.delete_peer_target_name(peer)
}

/// `WSAQuerySocketSecurity`: `peer` is the template's address (`None` on a connected socket).
pub(crate) fn query_security(
    ep: &Endpoint,
    peer: Option<SocketAddr>,
) -> Result<SecurityQuery, StackError> {
    ep.query_security(peer).map(from_stack)
}

/// `WSAQuerySocketSecurity` with `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE` for the
/// SA ids `fields` selects.
pub(crate) fn query_security_watching(
    ep: &Endpoint,
    peer: Option<SocketAddr>,
    fields: wsock_stack::SaFields,
) -> Result<SecurityQuery, StackError> {
    ep.query_security_watching(peer, fields).map(from_stack)
}

fn from_stack(q: wsock_stack::SecurityQuery) -> SecurityQuery {
    SecurityQuery {
        secured: q.secured,
        encrypted: q.encrypted,
        mm_sa_id: q.mm_sa_id,
        qm_sa_id: q.qm_sa_id,
        negotiation_winerr: q.negotiation_winerr,
        peer_machine: q.peer_machine,
        peer_user: q.peer_user,
        sa_lookup_context: q.sa_lookup_context,
    }
}
