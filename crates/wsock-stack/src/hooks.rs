//! Hook points of the packet path: outbound after the stack has built a packet and before it
//! reaches the wire, inbound after it left the wire and before the stack sees it. ALE and IPsec
//! attach here; tests attach counting and dropping hooks.

use crate::wire::IpSummary;

/// Which way a packet travels through the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From this host's stack towards the wire.
    Outbound,
    /// From the wire towards this host's stack.
    Inbound,
}

/// What a hook sees beside the packet bytes.
#[derive(Debug, Clone, Copy)]
pub struct PacketContext<'a> {
    /// Name of the host whose packet path this is.
    pub host: &'a str,
    /// Direction through the path.
    pub direction: Direction,
    /// Addresses and protocol of the packet.
    pub summary: IpSummary,
}

/// A hook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookVerdict {
    /// Let the (possibly rewritten) packet continue.
    Pass,
    /// Drop the packet; the reason is logged.
    Drop(String),
}

/// A hook on the packet path. Hooks run in the order they were added; the first `Drop` wins.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use wsock_stack::hooks::{HookVerdict, PacketContext, PacketHook};
/// struct Count(AtomicU64);
/// impl PacketHook for Count {
///     fn on_packet(&self, _: &PacketContext<'_>, _: &mut Vec<u8>) -> HookVerdict {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         HookVerdict::Pass
///     }
/// }
/// ```
pub trait PacketHook: Send + Sync {
    /// Inspects (and may rewrite) one packet.
    fn on_packet(&self, ctx: &PacketContext<'_>, packet: &mut Vec<u8>) -> HookVerdict;
}
