//! A packet-path stage that prints every outbound virtual packet in one line (for `wsock demo`).

use std::sync::atomic::{AtomicU64, Ordering};

use wsock_stack::stages::{EgressAction, PacketStage, StageContext};

/// Prints each packet as `[stack] host -> TCP a:p -> b:q [SYN,ACK] len`.
pub struct PrintPackets {
    pub printed: AtomicU64,
    pub limit: u64,
    /// Ports of secure sockets (GUARANTEE_ENCRYPTION): their packets cross the wire as
    /// ESP-in-UDP, never in clear.
    pub secure_ports: Vec<u16>,
}

fn tcp_flags(b: u8) -> String {
    let names = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x01, "FIN"),
        (0x04, "RST"),
    ];
    names
        .iter()
        .filter(|(m, _)| b & m != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

impl PacketStage for PrintPackets {
    fn egress(&mut self, ctx: &StageContext<'_>, packet: &mut Vec<u8>) -> EgressAction {
        let n = self.printed.fetch_add(1, Ordering::Relaxed);
        if n >= self.limit {
            if n == self.limit {
                outln!("[stack ] ... (further packets not printed)");
            }
            return EgressAction::Continue;
        }
        let s = ctx.summary;
        let off = s.transport_offset;
        let (proto, detail, payload) = match s.protocol {
            6 => {
                let flags = packet.get(off + 13).copied().unwrap_or(0);
                let hlen = packet
                    .get(off + 12)
                    .map(|b| usize::from(b >> 4) * 4)
                    .unwrap_or(20);
                (
                    "TCP",
                    format!("[{}]", tcp_flags(flags)),
                    packet.len().saturating_sub(off + hlen),
                )
            }
            17 => ("UDP", String::new(), packet.len().saturating_sub(off + 8)),
            _ => ("IP", String::new(), 0),
        };
        let (sp, dp) = s.ports(packet).unwrap_or((0, 0));
        let carrier = if self.secure_ports.contains(&sp) || self.secure_ports.contains(&dp) {
            "sealed in ESP-in-UDP"
        } else {
            "sent as GRE-in-UDP"
        };
        outln!(
            "[stack ] {:<6} {} {}:{} -> {}:{} {} payload {} B, {carrier}",
            ctx.host,
            proto,
            s.src,
            sp,
            s.dst,
            dp,
            detail,
            payload
        );
        EgressAction::Continue
    }
}
