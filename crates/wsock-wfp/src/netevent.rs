//! Net events (`FWPM_NET_EVENT*`): a bounded ring of drop/allow records with subscriptions.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::{Guid, Layer};

/// The common header of a net event (`FWPM_NET_EVENT_HEADER`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct NetEventHeader {
    /// IP protocol (6 TCP, 17 UDP, ...), 0 if unknown.
    pub protocol: u8,
    /// Local address and port.
    pub local: Option<SocketAddr>,
    /// Remote address and port.
    pub remote: Option<SocketAddr>,
    /// Application id (path).
    pub app_id: Option<String>,
    /// User (SID or name).
    pub user_id: Option<String>,
}

/// Why something was dropped or allowed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClassifyInfo {
    /// Layer id and name.
    pub layer: Layer,
    /// The deciding filter id (0 = default permit, no filter).
    pub filter_id: u64,
    /// The deciding filter key.
    pub filter_key: Guid,
    /// The deciding filter name.
    pub filter_name: String,
    /// Sublayer of the deciding filter.
    pub sublayer: Guid,
    /// Whether this was a re-authorization.
    pub is_reauth: bool,
    /// Direction: 0 outbound, 1 inbound (`FWP_DIRECTION`).
    pub direction: u32,
    /// Free-text reason for humans.
    pub reason: String,
}

/// The kind of a net event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum NetEventKind {
    /// `FWPM_NET_EVENT_TYPE_CLASSIFY_DROP`.
    ClassifyDrop(ClassifyInfo),
    /// `FWPM_NET_EVENT_TYPE_CLASSIFY_ALLOW` (only when allow events are collected).
    ClassifyAllow(ClassifyInfo),
    /// A callout vetoed a hard permit (Windows audit 5151/5153 style).
    CalloutVeto {
        /// Layer.
        layer: Layer,
        /// Overridden hard-permit filter.
        vetoed_filter_id: u64,
        /// Vetoing filter.
        vetoing_filter_id: u64,
    },
    /// IKE/AuthIP main-mode failure (filled in by the IPsec issue).
    IkeMmFailure {
        /// Win32 error code (e.g. 13801).
        failure_error_code: u32,
        /// Failure point (IKEEXT_FAILURE_POINT).
        failure_point: u32,
        /// The MM filter id, if any.
        mm_filter_id: u64,
    },
    /// IKE quick-mode failure.
    IkeQmFailure {
        /// Win32 error code.
        failure_error_code: u32,
        /// Failure point.
        failure_point: u32,
        /// The QM filter id, if any.
        qm_filter_id: u64,
    },
    /// IPsec kernel drop (e.g. 13916 clear-text drop).
    IpsecKernelDrop {
        /// Win32 error code.
        failure_status: u32,
        /// SPI, if any.
        spi: u32,
        /// Filter id.
        filter_id: u64,
        /// Layer.
        layer: Layer,
    },
}

impl serde::Serialize for Layer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One net event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetEvent {
    /// Monotonic sequence number (never reused, even after the ring wraps).
    pub seq: u64,
    /// The time passed in by the caller.
    pub timestamp: Duration,
    /// Header.
    pub header: NetEventHeader,
    /// Kind.
    pub kind: NetEventKind,
}

/// Identifies a net-event subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetEventSubscription(pub u64);

#[derive(Debug)]
pub(crate) struct NetEventLog {
    pub capacity: usize,
    pub ring: VecDeque<NetEvent>,
    pub next_seq: u64,
    pub overwritten: u64,
    pub subs: BTreeMap<u64, VecDeque<NetEvent>>,
    pub next_sub: u64,
}

impl NetEventLog {
    pub fn new(capacity: usize) -> Self {
        NetEventLog {
            capacity: capacity.max(1),
            ring: VecDeque::new(),
            next_seq: 1,
            overwritten: 0,
            subs: BTreeMap::new(),
            next_sub: 1,
        }
    }

    pub fn push(&mut self, timestamp: Duration, header: NetEventHeader, kind: NetEventKind) {
        let ev = NetEvent {
            seq: self.next_seq,
            timestamp,
            header,
            kind,
        };
        self.next_seq += 1;
        for q in self.subs.values_mut() {
            if q.len() >= self.capacity {
                q.pop_front();
            }
            q.push_back(ev.clone());
        }
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
            self.overwritten += 1;
        }
        self.ring.push_back(ev);
    }
}
