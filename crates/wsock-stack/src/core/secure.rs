//! The secure-socket operations of an endpoint: what `WSASetSocketSecurity`,
//! `WSASetSocketPeerTargetName`, `WSADeleteSocketPeerTargetName` and `WSAQuerySocketSecurity`
//! do below the API (winsock-api.md §2.1-§2.4). The settings live with the socket's ALE
//! endpoint; the packet path reads them ([`HostCore::ipsec_need`]) and refuses clear text for a
//! socket without `ALLOW_INSECURE`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wsock_ale::SecuritySettings;

use super::{Endpoint, HostCore, TcpState};
use crate::error::{Result, StackError};
use crate::types::Family;

/// What `WSAQuerySocketSecurity` reports for a socket and peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SecurityQuery {
    /// `SOCKET_INFO_CONNECTION_SECURED`: the traffic with the peer is IPsec-protected.
    pub secured: bool,
    /// `SOCKET_INFO_CONNECTION_ENCRYPTED`: with a cipher (not integrity only).
    pub encrypted: bool,
    /// `MmSaId` (0 when not secured).
    pub mm_sa_id: u64,
    /// `QmSaId` (0 when not secured).
    pub qm_sa_id: u64,
    /// `NegotiationWinerr`: the `ERROR_IPSEC_IKE_*` of the last failed negotiation, 0 if none.
    pub negotiation_winerr: u32,
    /// The peer machine as IKE authenticated it (its scenario machine name).
    pub peer_machine: Option<String>,
    /// The peer user authenticated at user level (RFC 4739), if any.
    pub peer_user: Option<String>,
    /// `SaLookupContext`: look the SA up with [`HostCore::sa_facts`] (the QM SA id).
    pub sa_lookup_context: u64,
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

impl HostCore {
    /// `WSASetSocketSecurity` on endpoint `id`: `None` = the default settings (a NULL
    /// `SecuritySettings`). Sets `SO_EXCLUSIVEADDRUSE` as Windows does.
    ///
    /// # Errors
    /// `NotSocket`; `IsConnected` on a connected (or connecting) socket; `InvalidArgument`
    /// when settings are already set, the socket is bound or listening, or `SO_REUSEADDR` is
    /// set (unconfirmed-resolved.md item 2: `WSAEINVAL`).
    pub fn set_security(&mut self, id: u64, settings: Option<SecuritySettings>) -> Result<()> {
        let (ale, bound, connected, reuse) = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => (
                t.ale,
                t.local.is_some(),
                matches!(
                    t.state,
                    TcpState::Connected { .. } | TcpState::Connecting { .. }
                ),
                t.opts.reuse_addr,
            ),
            Endpoint::Udp(u) => (
                u.ale,
                u.local.is_some(),
                u.connected.is_some(),
                u.opts.reuse_addr,
            ),
        };
        if connected {
            return Err(StackError::IsConnected);
        }
        if bound {
            return Err(StackError::InvalidArgument(
                "security settings must be set before bind, connect or listen",
            ));
        }
        if reuse {
            return Err(StackError::InvalidArgument(
                "security settings on a socket with SO_REUSEADDR",
            ));
        }
        if self.ale.security_settings(ale)?.is_some() {
            return Err(StackError::InvalidArgument(
                "security settings are set once per socket",
            ));
        }
        let settings = settings.unwrap_or_default();
        self.ale.set_security_settings(ale, Some(settings))?;
        match self.ep_mut(id)? {
            Endpoint::Tcp(t) => t.opts.exclusive_addr = true,
            Endpoint::Udp(u) => u.opts.exclusive_addr = true,
        }
        Ok(())
    }

    /// `WSASetSocketPeerTargetName`: the name the peer at `peer` must authenticate as (for TCP
    /// an unspecified address means "the peer this socket connects to").
    ///
    /// # Errors
    /// `NotSocket`; `IsConnected` on a connected socket; `InvalidArgument` for an empty name;
    /// `NoBufferSpace` when the socket holds too many names.
    pub fn set_peer_target_name(&mut self, id: u64, peer: IpAddr, name: &str) -> Result<()> {
        let (ale, connected) = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => (
                t.ale,
                matches!(
                    t.state,
                    TcpState::Connected { .. } | TcpState::Connecting { .. }
                ),
            ),
            Endpoint::Udp(u) => (u.ale, u.connected.is_some()),
        };
        if connected {
            return Err(StackError::IsConnected);
        }
        if name.is_empty() {
            return Err(StackError::InvalidArgument("empty peer target name"));
        }
        match self.ale.set_peer_target_name(ale, peer, name) {
            Ok(_) => Ok(()),
            Err(wsock_ale::AleError::LimitExceeded(_)) => Err(StackError::NoBufferSpace),
            Err(e) => Err(e.into()),
        }
    }

    /// `WSADeleteSocketPeerTargetName`. Deleting a name that was never set succeeds (Windows
    /// leaves it unspecified; docs/windows-differences.md §3.9).
    ///
    /// # Errors
    /// `NotSocket`.
    pub fn delete_peer_target_name(&mut self, id: u64, peer: IpAddr) -> Result<()> {
        let ale = self.ale_of(id)?;
        self.ale.delete_peer_target_name(ale, peer)?;
        Ok(())
    }

    /// The peer target name that applies to traffic of ALE endpoint `ep` with `remote`.
    pub(crate) fn target_name_for(
        &self,
        ep: wsock_ale::EndpointId,
        remote: IpAddr,
    ) -> Option<String> {
        let family = if remote.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        self.ale
            .peer_target_name(ep, remote)
            .ok()
            .flatten()
            .or_else(|| {
                self.ale
                    .peer_target_name(ep, unspecified(family))
                    .ok()
                    .flatten()
            })
            .map(str::to_string)
    }

    /// `WSAQuerySocketSecurity` for endpoint `id` and `peer` (`None`: a connected socket's
    /// peer).
    ///
    /// # Errors
    /// `NotSocket`; `NotConnected` when no peer is given and the socket has none;
    /// `ConnectionReset` for a reset connection.
    pub fn query_security(&mut self, id: u64, peer: Option<SocketAddr>) -> Result<SecurityQuery> {
        let (ale, flow, own_peer, reset) = match self.ep_mut(id)? {
            Endpoint::Tcp(t) => {
                let p = match t.state {
                    TcpState::Connected { peer, .. } | TcpState::Connecting { peer, .. } => {
                        Some(peer)
                    }
                    _ => None,
                };
                (t.ale, t.flow, p, t.aborted.is_some())
            }
            Endpoint::Udp(u) => (u.ale, None, u.connected, u.conn_reset),
        };
        if reset {
            return Err(StackError::ConnectionReset);
        }
        let peer = match peer.filter(|p| !p.ip().is_unspecified()).or(own_peer) {
            Some(p) => p,
            None => return Err(StackError::NotConnected),
        };
        let flow = flow.or_else(|| {
            self.ale
                .endpoint_flows(ale)
                .ok()?
                .into_iter()
                .find(|f| self.ale.flow(*f).is_some_and(|i| i.remote == peer))
        });
        let sec = flow
            .and_then(|f| self.ale.flow_security(f).ok())
            .unwrap_or_default();
        let mut q = SecurityQuery {
            negotiation_winerr: sec.negotiation_winerr,
            ..SecurityQuery::default()
        };
        if let (Some(mm), Some(qm)) = (sec.mm_sa_id, sec.qm_sa_id) {
            let facts = self
                .flow_pair(mm, qm, peer.ip())
                .and_then(|(mm, qm)| self.sa_facts(mm, qm));
            if let Some(f) = facts {
                q.secured = true;
                q.encrypted = f.encrypted;
                q.mm_sa_id = f.mm_sa_id;
                q.qm_sa_id = f.qm_sa_id;
                q.peer_machine = f.peer_machine.or(f.peer_id);
                q.peer_user = f.peer_user;
                q.sa_lookup_context = f.qm_sa_id;
            }
        }
        if q.negotiation_winerr == 0 && !q.secured {
            q.negotiation_winerr = self.negotiation_failure(peer.ip()).unwrap_or(0);
        }
        Ok(q)
    }
}

/// The SA ids a query selects with its `FieldMask` (`SOCKET_QUERY_IPSEC2_FIELD_MASK_MM_SA_ID`,
/// `SOCKET_QUERY_IPSEC2_FIELD_MASK_QM_SA_ID`), for
/// [`HostCore::query_security_watching`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaFields {
    /// Watch the main mode (IKE) SA id.
    pub mm: bool,
    /// Watch the quick mode (child) SA id: every quick mode rekey changes it.
    pub qm: bool,
}

/// What a watched connection's query reported, for the fields it selected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaWatch {
    mm: Option<u64>,
    qm: Option<u64>,
}

impl HostCore {
    /// `WSAQuerySocketSecurity` with `SOCKET_QUERY_IPSEC2_ABORT_CONNECTION_ON_FIELD_CHANGE`:
    /// the query, and from then on a TCP connection that was secured at the query is aborted
    /// (the peer gets a reset, the socket `WSAECONNABORTED`, [`crate::error::Abort::SaChanged`])
    /// as soon as a selected SA id differs from what the query reported: a main mode rekey or a
    /// new main mode changes `MmSaId`, a quick mode rekey `QmSaId`; a quick mode SA deleted
    /// (idle, expired) with none to replace it changes `QmSaId`, and `MmSaId` once that main
    /// mode SA is gone too. A query of a connection that
    /// is not secured, of a UDP socket, or with no field selected watches nothing. A later
    /// watching query replaces the earlier one.
    ///
    /// # Errors
    /// As [`HostCore::query_security`].
    pub fn query_security_watching(
        &mut self,
        id: u64,
        peer: Option<SocketAddr>,
        fields: SaFields,
    ) -> Result<SecurityQuery> {
        let q = self.query_security(id, peer)?;
        let tcp = matches!(self.endpoints.get(&id), Some(Endpoint::Tcp(_)));
        if tcp && q.secured && (fields.mm || fields.qm) {
            self.sa_watches.insert(
                id,
                SaWatch {
                    mm: fields.mm.then_some(q.mm_sa_id),
                    qm: fields.qm.then_some(q.qm_sa_id),
                },
            );
        }
        Ok(q)
    }

    /// The SA ids protecting TCP endpoint `id`'s connection now, `(MmSaId, QmSaId)`, or `None`
    /// when no pair to its peer exists.
    fn current_sa_ids(&self, id: u64) -> Option<(u64, u64)> {
        let Some(Endpoint::Tcp(t)) = self.endpoints.get(&id) else {
            return None;
        };
        let TcpState::Connected { peer, .. } = t.state else {
            return None;
        };
        let flow = t.flow.or_else(|| {
            self.ale
                .endpoint_flows(t.ale)
                .ok()?
                .into_iter()
                .find(|f| self.ale.flow(*f).is_some_and(|i| i.remote == peer))
        })?;
        let s = self.ale.flow_security(flow).ok()?;
        self.flow_pair(s.mm_sa_id?, s.qm_sa_id?, peer.ip())
    }

    /// Aborts the watched connections whose selected SA ids changed; forgets the watches of
    /// endpoints that are closed or no longer connected.
    pub(crate) fn check_sa_watches(&mut self) {
        if self.sa_watches.is_empty() {
            return;
        }
        let mut aborts = Vec::new();
        let mut gone = Vec::new();
        for (&id, w) in &self.sa_watches {
            let live = matches!(
                self.endpoints.get(&id),
                Some(Endpoint::Tcp(t)) if t.aborted.is_none()
                    && matches!(t.state, TcpState::Connected { .. })
            );
            if !live {
                gone.push(id);
                continue;
            }
            let change = match self.current_sa_ids(id) {
                Some((mm, qm)) => match (w.mm, w.qm) {
                    (Some(was), _) if was != mm => Some(("MmSaId", was, mm)),
                    (_, Some(was)) if was != qm => Some(("QmSaId", was, qm)),
                    _ => None,
                },
                // No pair to the peer now (deleted idle, expired): the quick mode SA is gone;
                // the main mode SA only if it is no longer established.
                None => match (w.mm, w.qm) {
                    (_, Some(was)) => Some(("QmSaId", was, 0)),
                    (Some(was), None) if !self.ike_sa_established(was) => Some(("MmSaId", was, 0)),
                    _ => None,
                },
            };
            if let Some((field, was, now)) = change {
                aborts.push((id, field, was, now));
            }
        }
        for id in gone {
            self.sa_watches.remove(&id);
        }
        for (id, field, was, now) in aborts {
            self.sa_watches.remove(&id);
            tracing::info!(target: "wsock::ipsec", endpoint = id, field, was, now, "SA changed: connection aborted (ABORT_CONNECTION_ON_FIELD_CHANGE)");
            let reason =
                StackError::ConnectionAborted(crate::error::Abort::SaChanged { field, was, now });
            let _ = self.abort(id, reason);
        }
    }
}

/// `SOCKET_SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION`.
pub const SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION: u32 = 0x1;

/// Which socket event instantiates the filters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Instantiate {
    /// A connect (TCP) or the first datagram to a peer (UDP): ALE_AUTH_CONNECT for that peer.
    Connect {
        local: SocketAddr,
        remote: SocketAddr,
        protocol: u8,
    },
    /// A listen (TCP) or a bind (UDP): ALE_AUTH_RECV_ACCEPT for the local port.
    Accept { local: SocketAddr, protocol: u8 },
}

impl HostCore {
    /// Filter instantiation: turns a secure socket's settings into socket-owned filters in
    /// `FWPM_SUBLAYER_SECURE_SOCKET` (a permit with `REQUIRE_IPSEC_SECURITY`, plus
    /// `REQUIRE_IPSEC_ENCRYPTION` when encryption is guaranteed; a plain permit with
    /// `ALLOW_INSECURE`), so ALE's classification carries the protection request and views show
    /// the filters. Nothing when the socket has no settings or asked to skip instantiation.
    pub(crate) fn instantiate_secure_filters(&mut self, id: u64, what: Instantiate) {
        use wsock_ale::contexts;
        use wsock_wfp::{Action, Field, Filter, FwpValue, Layer, MatchType};
        let Ok(ale) = self.ale_of(id) else {
            return;
        };
        let Some(s) = self.ale.security_settings(ale).ok().flatten().cloned() else {
            return;
        };
        if s.ipsec_flags & SETTINGS_IPSEC_SKIP_FILTER_INSTANTIATION != 0 {
            return;
        }
        let mut raw = 0;
        if s.flags & super::SETTINGS_ALLOW_INSECURE == 0 {
            raw |= contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY;
            if s.flags & super::SETTINGS_GUARANTEE_ENCRYPTION != 0 {
                raw |= contexts::ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION;
            }
        }
        let (layer, name, conds) = match what {
            Instantiate::Connect {
                local,
                remote,
                protocol,
            } => (
                if remote.is_ipv4() {
                    Layer::ALE_AUTH_CONNECT_V4
                } else {
                    Layer::ALE_AUTH_CONNECT_V6
                },
                format!("secure socket {} -> {remote}", local.port()),
                vec![
                    (Field::IP_LOCAL_PORT, FwpValue::Uint16(local.port())),
                    (Field::IP_REMOTE_ADDRESS, FwpValue::addr(remote.ip())),
                    (Field::IP_PROTOCOL, FwpValue::Uint8(protocol)),
                ],
            ),
            Instantiate::Accept { local, protocol } => (
                if local.is_ipv4() {
                    Layer::ALE_AUTH_RECV_ACCEPT_V4
                } else {
                    Layer::ALE_AUTH_RECV_ACCEPT_V6
                },
                format!("secure socket {} accept", local.port()),
                vec![
                    (Field::IP_LOCAL_PORT, FwpValue::Uint16(local.port())),
                    (Field::IP_PROTOCOL, FwpValue::Uint8(protocol)),
                ],
            ),
        };
        let mut f =
            Filter::new(name, layer, Action::Permit).sublayer(wsock_wfp::SUBLAYER_SECURE_SOCKET);
        for (field, v) in conds {
            f = f.condition(field, MatchType::Equal, v);
        }
        f.raw_context = raw;
        let admin = self.admin;
        match self.ale.engine_mut().add_filter(admin, &f) {
            Ok(fid) => {
                tracing::debug!(target: "wsock::ale", filter = fid, layer = %layer, raw_context = raw, "secure socket filter instantiated");
                self.secure_filters.entry(id).or_default().push(fid);
            }
            Err(e) => {
                tracing::warn!(target: "wsock::ale", error = %e, "secure socket filter not instantiated");
            }
        }
    }

    /// Removes the filters a socket's settings instantiated (its close).
    pub(crate) fn remove_secure_filters(&mut self, id: u64) {
        let Some(ids) = self.secure_filters.remove(&id) else {
            return;
        };
        let admin = self.admin;
        for fid in ids {
            let _ = self.ale.engine_mut().delete_filter_by_id(admin, fid);
        }
    }
}
