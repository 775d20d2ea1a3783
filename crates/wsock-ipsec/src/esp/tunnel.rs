//! Tunnel-mode ESP (RFC 4303 §3.1.2): the protected payload is a whole inner IP packet, Next
//! Header 4 (IPv4) or 41 (IPv6).
//!
//! What this module adds to [`OutboundSa`] / [`InboundSa`]:
//! - [`OutboundSa::seal_tunnel`] checks that the inner packet is a well-formed IPv4 or IPv6
//!   packet and seals it with the Next Header its version calls for.
//! - [`InboundSa::open_tunnel`] opens a packet of a tunnel-mode SA and parses the inner packet:
//!   its addresses, its transport protocol and ports (ICMP type and code for ICMP, as RFC 7296
//!   §3.13.1 treats them), with any traffic-flow-confidentiality padding after the inner packet
//!   (RFC 4303 §2.4) cut off; dummy packets (Next Header 59) come back as `None`.
//! - [`InnerPacket::within`] is the inbound selector check of RFC 4301 §5.2 (step 4): an
//!   authentic inner packet whose addresses, protocol or ports lie outside the child SA's
//!   traffic selectors must be dropped.
//! - [`ipv4_packet`] and [`ipv6_packet`] build inner packets (header checksum included) for
//!   a host that originates tunnelled traffic itself.
//!
//! # Examples
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::Duration;
//! use wsock_ipsec::esp::tunnel::ipv4_packet;
//! use wsock_ipsec::esp::{EspSuite, InboundSa, Mode, OutboundSa, SaConfig};
//!
//! let mut cfg = SaConfig::new(0x0102_0304, EspSuite::AesGcm16 { key_bits: 128 });
//! cfg.mode = Mode::Tunnel;
//! let key = [9u8; 20];
//! let now = Duration::ZERO;
//! let mut tx = OutboundSa::new(&cfg, &key, &[], now).unwrap();
//! let mut rx = InboundSa::new(&cfg, &key, &[], now).unwrap();
//!
//! let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let udp = [0x30, 0x39, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, b'h', b'i'];
//! let inner = ipv4_packet(a, b, 17, 64, 1, &udp).unwrap();
//! let mut wire = Vec::new();
//! tx.seal_tunnel(now, &inner, &mut wire).unwrap();
//!
//! let got = rx.open_tunnel(now, &mut wire).unwrap().expect("not a dummy packet");
//! assert_eq!((got.src, got.dst, got.protocol), (a.into(), b.into(), 17));
//! assert_eq!((got.src_port, got.dst_port), (Some(12345), Some(7)));
//! assert_eq!(got.packet, &inner[..]);
//! ```

use super::{InboundSa, Mode, OutboundSa, NEXT_HEADER_DUMMY, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6};
use crate::error::IpsecError;
use crate::ike::wire::{AddressRange, TrafficSelector};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// IPv6 extension headers [`InnerPacket::parse`] walks over to find the transport protocol.
const IPV6_EXTENSIONS: [u8; 4] = [0, 43, 60, 135];
/// The IPv6 fragment header.
const IPV6_FRAGMENT: u8 = 44;

/// An inner IP packet of a tunnel-mode ESP payload, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Source port (TCP, UDP, SCTP...), or ICMP type and code as one 16-bit number; `None` for
    /// a non-first fragment or a protocol without ports.
    pub src_port: Option<u16>,
    /// Destination port, or ICMP type and code; `None` as for `src_port`.
    pub dst_port: Option<u16>,
    /// Offset of the transport header in `packet`.
    pub transport_offset: usize,
    /// The whole inner packet, without any padding that followed it.
    pub packet: &'a [u8],
}

/// `Some(ports)` for protocols whose first four bytes are a source and destination port.
fn ports_of(protocol: u8, transport: &[u8]) -> (Option<u16>, Option<u16>) {
    match protocol {
        // TCP, UDP, DCCP, SCTP, UDP-Lite.
        6 | 17 | 33 | 132 | 136 if transport.len() >= 4 => (
            Some(u16::from_be_bytes([transport[0], transport[1]])),
            Some(u16::from_be_bytes([transport[2], transport[3]])),
        ),
        // RFC 7296 §3.13.1: ICMP type and code as one 16-bit "port" (in both fields).
        IPPROTO_ICMP | IPPROTO_ICMPV6 if transport.len() >= 2 => {
            let t = u16::from_be_bytes([transport[0], transport[1]]);
            (Some(t), Some(t))
        }
        _ => (None, None),
    }
}

impl<'a> InnerPacket<'a> {
    /// Parses an inner packet whose IP version the ESP Next Header names (4 or 41). Bytes after
    /// the length the IP header gives (TFC padding) are not part of [`InnerPacket::packet`].
    ///
    /// # Errors
    /// [`IpsecError::WrongSa`] for another Next Header or a packet of the other IP version;
    /// [`IpsecError::InvalidPacket`] for a truncated or inconsistent IP header.
    pub fn parse(next_header: u8, data: &'a [u8]) -> Result<Self, IpsecError> {
        match (next_header, data.first().map(|b| b >> 4)) {
            (NEXT_HEADER_IPV4, Some(4)) => Self::parse_v4(data),
            (NEXT_HEADER_IPV6, Some(6)) => Self::parse_v6(data),
            (NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6, None) => {
                Err(IpsecError::InvalidPacket("empty inner packet"))
            }
            _ => Err(IpsecError::WrongSa { next_header }),
        }
    }

    fn parse_v4(data: &'a [u8]) -> Result<Self, IpsecError> {
        let ihl = usize::from(data[0] & 0x0f) * 4;
        if ihl < 20 || data.len() < ihl {
            return Err(IpsecError::InvalidPacket("inner IPv4 header truncated"));
        }
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if total < ihl || total > data.len() {
            return Err(IpsecError::InvalidPacket("inner IPv4 total length"));
        }
        let packet = &data[..total];
        let frag_offset = u16::from_be_bytes([data[6], data[7]]) & 0x1fff;
        let protocol = data[9];
        let src = IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19]));
        let (src_port, dst_port) = if frag_offset == 0 {
            ports_of(protocol, &packet[ihl..])
        } else {
            (None, None)
        };
        Ok(InnerPacket {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            transport_offset: ihl,
            packet,
        })
    }

    fn parse_v6(data: &'a [u8]) -> Result<Self, IpsecError> {
        if data.len() < 40 {
            return Err(IpsecError::InvalidPacket("inner IPv6 header truncated"));
        }
        let total = 40 + usize::from(u16::from_be_bytes([data[4], data[5]]));
        if total > data.len() {
            return Err(IpsecError::InvalidPacket("inner IPv6 payload length"));
        }
        let packet = &data[..total];
        let addr = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&data[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        };
        let (src, dst) = (addr(8), addr(24));
        let mut next = data[6];
        let mut off = 40;
        let mut first_fragment = true;
        loop {
            if IPV6_EXTENSIONS.contains(&next) {
                let h = packet
                    .get(off..off + 2)
                    .ok_or(IpsecError::InvalidPacket("inner IPv6 extension truncated"))?;
                next = h[0];
                off += (usize::from(h[1]) + 1) * 8;
            } else if next == IPV6_FRAGMENT {
                let h = packet
                    .get(off..off + 8)
                    .ok_or(IpsecError::InvalidPacket("inner IPv6 fragment truncated"))?;
                first_fragment = u16::from_be_bytes([h[2], h[3]]) >> 3 == 0;
                next = h[0];
                off += 8;
            } else {
                break;
            }
            if off > packet.len() {
                return Err(IpsecError::InvalidPacket("inner IPv6 extension truncated"));
            }
        }
        let (src_port, dst_port) = if first_fragment {
            ports_of(next, &packet[off..])
        } else {
            (None, None)
        };
        Ok(InnerPacket {
            src,
            dst,
            protocol: next,
            src_port,
            dst_port,
            transport_offset: off,
            packet,
        })
    }

    /// Whether the packet lies within the selectors (RFC 4301 §5.2): its source within one of
    /// `src_ts` and its destination within one of `dst_ts`, protocol and ports included. A
    /// packet without ports (a non-first fragment, a protocol without ports) only fits a
    /// selector whose port range is the whole 0-65535. For an inbound packet of a child SA,
    /// `src_ts` are the peer's selectors and `dst_ts` ours.
    ///
    /// # Examples
    /// ```
    /// use std::net::Ipv4Addr;
    /// use wsock_ipsec::esp::tunnel::{ipv4_packet, InnerPacket};
    /// use wsock_ipsec::ike::sa::host_selector;
    /// let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    /// let p = ipv4_packet(a, b, 17, 64, 1, &[0, 1, 0, 2, 0, 8, 0, 0]).unwrap();
    /// let inner = InnerPacket::parse(4, &p).unwrap();
    /// assert!(inner.within(&[host_selector(a.into())], &[host_selector(b.into())]));
    /// assert!(!inner.within(&[host_selector(b.into())], &[host_selector(b.into())]));
    /// ```
    pub fn within(&self, src_ts: &[TrafficSelector], dst_ts: &[TrafficSelector]) -> bool {
        let fits = |addr: IpAddr, port: Option<u16>, ts: &TrafficSelector| {
            let proto = ts.ip_protocol == 0 || ts.ip_protocol == self.protocol;
            let port_ok = match port {
                Some(p) => ts.start_port <= p && p <= ts.end_port,
                None => ts.start_port == 0 && ts.end_port == u16::MAX,
            };
            let addr_ok = match (addr, ts.addresses) {
                (IpAddr::V4(a), AddressRange::V4(lo, hi)) => lo <= a && a <= hi,
                (IpAddr::V6(a), AddressRange::V6(lo, hi)) => lo <= a && a <= hi,
                _ => false,
            };
            proto && port_ok && addr_ok
        };
        src_ts.iter().any(|t| fits(self.src, self.src_port, t))
            && dst_ts.iter().any(|t| fits(self.dst, self.dst_port, t))
    }
}

/// The ESP Next Header for an inner packet (4 for IPv4, 41 for IPv6), after checking that it is
/// a whole, well-formed IP packet (header lengths and total length equal to `inner.len()`).
///
/// # Errors
/// [`IpsecError::InvalidPacket`] for anything else.
pub fn next_header_for(inner: &[u8]) -> Result<u8, IpsecError> {
    let nh = match inner.first().map(|b| b >> 4) {
        Some(4) => NEXT_HEADER_IPV4,
        Some(6) => NEXT_HEADER_IPV6,
        _ => {
            return Err(IpsecError::InvalidPacket(
                "inner packet is not IPv4 or IPv6",
            ))
        }
    };
    let parsed = InnerPacket::parse(nh, inner)?;
    if parsed.packet.len() != inner.len() {
        return Err(IpsecError::InvalidPacket(
            "inner packet longer than its IP length",
        ));
    }
    Ok(nh)
}

/// The Internet checksum (RFC 1071) of `data`, folded and complemented.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (20-byte header, no options, DF clear, header checksum set) around
/// `payload`. The transport checksum inside `payload` is the caller's.
///
/// # Errors
/// [`IpsecError::InvalidConfig`] when the packet would exceed 65535 bytes.
pub fn ipv4_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    identification: u16,
    payload: &[u8],
) -> Result<Vec<u8>, IpsecError> {
    let total = u16::try_from(20 + payload.len())
        .map_err(|_| IpsecError::InvalidConfig("inner IPv4 packet too long"))?;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&identification.to_be_bytes());
    p.extend_from_slice(&[0, 0, ttl, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = internet_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    Ok(p)
}

/// An IPv6 packet (fixed header only, traffic class and flow label zero) around `payload`.
///
/// # Errors
/// [`IpsecError::InvalidConfig`] when the payload exceeds 65535 bytes (no jumbograms).
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Result<Vec<u8>, IpsecError> {
    let len = u16::try_from(payload.len())
        .map_err(|_| IpsecError::InvalidConfig("inner IPv6 payload too long"))?;
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next_header, hop_limit]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    Ok(p)
}

impl OutboundSa {
    /// Seals a whole inner IPv4 or IPv6 packet on a tunnel-mode SA (Next Header 4 or 41 from
    /// the packet's version), appending the ESP packet to `out` as [`OutboundSa::seal`] does.
    ///
    /// # Errors
    /// [`IpsecError::WrongSa`] when the SA is in transport mode; [`IpsecError::InvalidPacket`]
    /// when `inner` is not one well-formed IP packet ([`next_header_for`]); otherwise as
    /// [`OutboundSa::seal`].
    pub fn seal_tunnel(
        &mut self,
        now: Duration,
        inner: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, IpsecError> {
        let next_header = next_header_for(inner)?;
        if self.config.mode != Mode::Tunnel {
            return Err(IpsecError::WrongSa { next_header });
        }
        self.seal(now, next_header, inner, out)
    }
}

impl InboundSa {
    /// Opens an ESP packet of a tunnel-mode SA ([`InboundSa::open`]) and parses the inner IP
    /// packet; `Ok(None)` for an authentic dummy packet (Next Header 59), which the caller
    /// discards. The selector check is the caller's ([`InnerPacket::within`]).
    ///
    /// # Errors
    /// As [`InboundSa::open`]; [`IpsecError::WrongSa`] on a transport-mode SA or for an inner
    /// packet of the wrong IP version; [`IpsecError::InvalidPacket`] for a malformed inner
    /// packet (the packet was authentic and the replay window has moved).
    pub fn open_tunnel<'a>(
        &mut self,
        now: Duration,
        packet: &'a mut [u8],
    ) -> Result<Option<InnerPacket<'a>>, IpsecError> {
        if self.config.mode != Mode::Tunnel {
            return Err(IpsecError::WrongSa {
                next_header: NEXT_HEADER_IPV4,
            });
        }
        let opened = self.open(now, packet)?;
        if opened.next_header == NEXT_HEADER_DUMMY {
            return Ok(None);
        }
        let next_header = opened.next_header;
        let payload: &'a [u8] = opened.payload;
        InnerPacket::parse(next_header, payload).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::{EspSuite, SaConfig};
    use crate::ike::sa::host_selector;

    fn pair(mode: Mode) -> (OutboundSa, InboundSa) {
        let mut cfg = SaConfig::new(0x0a0b_0c0d, EspSuite::AesGcm16 { key_bits: 128 });
        cfg.mode = mode;
        let key = [3u8; 20];
        (
            OutboundSa::new(&cfg, &key, &[], Duration::ZERO).unwrap(),
            InboundSa::new(&cfg, &key, &[], Duration::ZERO).unwrap(),
        )
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4_packet(A, B, IPPROTO_ICMP, 64, 0x1234, &[8, 0, 0, 0]).unwrap();
        assert_eq!(p.len(), 24);
        assert_eq!(internet_checksum(&p[..20]), 0);
        assert_eq!(&p[2..4], &24u16.to_be_bytes());
    }

    #[test]
    fn tunnel_round_trip_v4_and_v6_with_tfc_padding() {
        let (mut tx, mut rx) = pair(Mode::Tunnel);
        let icmp = [8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
        let inner = ipv4_packet(A, B, IPPROTO_ICMP, 64, 7, &icmp).unwrap();
        let mut wire = Vec::new();
        tx.seal_tunnel(Duration::ZERO, &inner, &mut wire).unwrap();
        let got = rx.open_tunnel(Duration::ZERO, &mut wire).unwrap().unwrap();
        assert_eq!(got.packet, &inner[..]);
        assert_eq!(
            (got.protocol, got.src_port, got.dst_port),
            (1, Some(0x0800), Some(0x0800))
        );
        assert_eq!(got.transport_offset, 20);

        // TFC padding after the inner packet is cut off by its IP length.
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0u8; 13]);
        let mut wire = Vec::new();
        tx.seal(Duration::ZERO, NEXT_HEADER_IPV4, &padded, &mut wire)
            .unwrap();
        let got = rx.open_tunnel(Duration::ZERO, &mut wire).unwrap().unwrap();
        assert_eq!(got.packet, &inner[..]);

        let (s6, d6): (Ipv6Addr, Ipv6Addr) =
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        // A hop-by-hop header (8 bytes) before UDP 1000 -> 53.
        let mut payload = vec![IPPROTO_UDP, 0, 0, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&[0x03, 0xe8, 0, 53, 0, 8, 0, 0]);
        let inner6 = ipv6_packet(s6, d6, 0, 64, &payload).unwrap();
        let mut wire = Vec::new();
        tx.seal_tunnel(Duration::ZERO, &inner6, &mut wire).unwrap();
        let got = rx.open_tunnel(Duration::ZERO, &mut wire).unwrap().unwrap();
        assert_eq!((got.src, got.dst), (IpAddr::V6(s6), IpAddr::V6(d6)));
        assert_eq!(
            (got.protocol, got.src_port, got.dst_port),
            (17, Some(1000), Some(53))
        );
        assert_eq!(got.transport_offset, 48);
    }

    #[test]
    fn dummy_packets_are_none_and_wrong_versions_refused() {
        let (mut tx, mut rx) = pair(Mode::Tunnel);
        let mut wire = Vec::new();
        tx.seal(Duration::ZERO, NEXT_HEADER_DUMMY, &[0u8; 16], &mut wire)
            .unwrap();
        assert_eq!(rx.open_tunnel(Duration::ZERO, &mut wire), Ok(None));

        // An IPv4 packet under Next Header 41.
        let inner = ipv4_packet(A, B, IPPROTO_UDP, 64, 1, &[0; 8]).unwrap();
        let mut wire = Vec::new();
        tx.seal(Duration::ZERO, NEXT_HEADER_IPV6, &inner, &mut wire)
            .unwrap();
        assert_eq!(
            rx.open_tunnel(Duration::ZERO, &mut wire),
            Err(IpsecError::WrongSa { next_header: 41 })
        );

        // Truncated: the IP length claims more than there is.
        let mut short = inner.clone();
        short.truncate(24);
        let mut wire = Vec::new();
        tx.seal(Duration::ZERO, NEXT_HEADER_IPV4, &short, &mut wire)
            .unwrap();
        assert!(matches!(
            rx.open_tunnel(Duration::ZERO, &mut wire),
            Err(IpsecError::InvalidPacket(_))
        ));
    }

    #[test]
    fn seal_tunnel_checks_mode_and_packet() {
        let (mut tx, mut rx) = pair(Mode::Transport);
        let inner = ipv4_packet(A, B, IPPROTO_UDP, 64, 1, &[0; 8]).unwrap();
        let mut wire = Vec::new();
        assert_eq!(
            tx.seal_tunnel(Duration::ZERO, &inner, &mut wire),
            Err(IpsecError::WrongSa { next_header: 4 })
        );
        assert!(wire.is_empty());
        let mut some = vec![0u8; 40];
        assert!(matches!(
            rx.open_tunnel(Duration::ZERO, &mut some),
            Err(IpsecError::WrongSa { .. })
        ));

        let (mut tx, _) = pair(Mode::Tunnel);
        for bad in [&[][..], &[0x45][..], &[0x20; 30][..], &inner[..27]] {
            assert!(matches!(
                tx.seal_tunnel(Duration::ZERO, bad, &mut wire),
                Err(IpsecError::InvalidPacket(_))
            ));
        }
        let mut long = inner.clone();
        long.push(0);
        assert!(tx.seal_tunnel(Duration::ZERO, &long, &mut wire).is_err());
        assert!(wire.is_empty());
    }

    #[test]
    fn selectors_admit_and_refuse() {
        let tcp = [
            0x9c, 0x40, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0,
        ];
        let p = ipv4_packet(A, B, IPPROTO_TCP, 64, 1, &tcp).unwrap();
        let inner = InnerPacket::parse(4, &p).unwrap();
        let any_a = host_selector(A.into());
        let any_b = host_selector(B.into());
        assert!(inner.within(&[any_a], &[any_b]));
        let mut web = any_b;
        web.ip_protocol = IPPROTO_TCP;
        web.start_port = 80;
        web.end_port = 80;
        assert!(inner.within(&[any_a], &[web]));
        web.ip_protocol = IPPROTO_UDP;
        assert!(!inner.within(&[any_a], &[web]));
        web.ip_protocol = IPPROTO_TCP;
        web.start_port = 81;
        web.end_port = 90;
        assert!(!inner.within(&[any_a], &[web]));
        assert!(!inner.within(&[], &[any_b]));

        // A non-first fragment has no ports: only full port ranges admit it.
        let mut frag = p.clone();
        frag[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
        let c = {
            frag[10] = 0;
            frag[11] = 0;
            internet_checksum(&frag[..20])
        };
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        let inner = InnerPacket::parse(4, &frag).unwrap();
        assert_eq!(inner.dst_port, None);
        assert!(inner.within(&[any_a], &[any_b]));
        web.start_port = 0;
        web.end_port = 80;
        assert!(!inner.within(&[any_a], &[web]));
    }

    #[test]
    fn parse_never_panics_on_prefixes() {
        let inner = ipv4_packet(A, B, IPPROTO_UDP, 64, 1, &[1, 2, 3, 4, 0, 8, 0, 0]).unwrap();
        let s6: Ipv6Addr = "fd00::1".parse().unwrap();
        let mut ext = vec![60, 0, 0, 0, 0, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[17, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 2, 0, 8, 0, 0]);
        let inner6 = ipv6_packet(s6, s6, 0, 1, &ext).unwrap();
        for (nh, p) in [(4u8, &inner), (41, &inner6)] {
            for n in 0..=p.len() {
                let _ = InnerPacket::parse(nh, &p[..n]);
                let mut m = p[..n].to_vec();
                for i in 0..m.len() {
                    m[i] = !m[i];
                    let _ = InnerPacket::parse(nh, &m);
                }
            }
        }
        let got = InnerPacket::parse(41, &inner6).unwrap();
        assert_eq!((got.protocol, got.src_port), (17, None));
    }
}
