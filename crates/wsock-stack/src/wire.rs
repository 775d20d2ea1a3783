//! Wire formats of the clear path: GRE-in-UDP (RFC 8086) carrying a whole virtual IP packet, and a
//! read-only view of the virtual IP header the router needs.
//!
//! Views follow smoltcp's promise: parsing never panics; a short or malformed buffer is an
//! [`WireError`], never an index out of bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EtherType of IPv4 in a GRE header.
pub const GRE_PROTO_IPV4: u16 = 0x0800;
/// EtherType of IPv6 in a GRE header.
pub const GRE_PROTO_IPV6: u16 = 0x86DD;
/// Length of the GRE header wsock emits (no checksum, key or sequence number).
pub const GRE_HEADER_LEN: usize = 4;

/// Why a datagram or packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its header says.
    #[error("truncated packet")]
    Truncated,
    /// A field holds a value this implementation does not accept.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

/// A parsed GRE header (RFC 2784 with the RFC 2890 key and sequence extensions skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreRepr {
    /// The carried protocol's EtherType.
    pub protocol: u16,
    /// Offset of the payload in the datagram.
    pub payload_offset: usize,
}

impl GreRepr {
    /// Parses the GRE header at the start of `datagram`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when shorter than the header, [`WireError::Malformed`] for a
    /// non-zero version or routing bit.
    ///
    /// # Examples
    /// ```
    /// use wsock_stack::wire::GreRepr;
    /// let r = GreRepr::parse(&[0, 0, 0x08, 0x00, 0x45]).unwrap();
    /// assert_eq!((r.protocol, r.payload_offset), (0x0800, 4));
    /// ```
    pub fn parse(datagram: &[u8]) -> Result<GreRepr, WireError> {
        let hdr = datagram.get(..4).ok_or(WireError::Truncated)?;
        let flags = u16::from_be_bytes([hdr[0], hdr[1]]);
        if flags & 0x0007 != 0 {
            return Err(WireError::Malformed("GRE version is not 0"));
        }
        if flags & 0x4000 != 0 {
            return Err(WireError::Malformed("GRE routing bit set"));
        }
        let mut offset = 4;
        for bit in [0x8000u16, 0x2000, 0x1000] {
            if flags & bit != 0 {
                offset += 4;
            }
        }
        if datagram.len() < offset {
            return Err(WireError::Truncated);
        }
        Ok(GreRepr {
            protocol: u16::from_be_bytes([hdr[2], hdr[3]]),
            payload_offset: offset,
        })
    }

    /// Writes a 4-byte GRE header for `protocol` into the start of `buf`.
    ///
    /// # Errors
    /// [`WireError::Truncated`] when `buf` is shorter than 4 bytes.
    pub fn emit(protocol: u16, buf: &mut [u8]) -> Result<(), WireError> {
        let hdr = buf.get_mut(..4).ok_or(WireError::Truncated)?;
        hdr[0] = 0;
        hdr[1] = 0;
        hdr[2..4].copy_from_slice(&protocol.to_be_bytes());
        Ok(())
    }
}

/// The fields of a virtual IP packet's header that routing and policy look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number (6 TCP, 17 UDP), the first next header for IPv6.
    pub protocol: u8,
    /// Offset of the transport header.
    pub transport_offset: usize,
}

impl IpSummary {
    /// Reads the addresses and protocol of an IPv4 or IPv6 packet.
    ///
    /// # Errors
    /// [`WireError`] for a short buffer, an unknown version or a bad header length.
    ///
    /// # Examples
    /// ```
    /// use wsock_stack::wire::IpSummary;
    /// assert!(IpSummary::parse(&[0x45]).is_err());
    /// ```
    pub fn parse(packet: &[u8]) -> Result<IpSummary, WireError> {
        let first = *packet.first().ok_or(WireError::Truncated)?;
        match first >> 4 {
            4 => {
                let h = packet.get(..20).ok_or(WireError::Truncated)?;
                let ihl = usize::from(first & 0x0f) * 4;
                if ihl < 20 {
                    return Err(WireError::Malformed("IPv4 header length below 20"));
                }
                if packet.len() < ihl {
                    return Err(WireError::Truncated);
                }
                Ok(IpSummary {
                    src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
                    dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
                    protocol: h[9],
                    transport_offset: ihl,
                })
            }
            6 => {
                let h = packet.get(..40).ok_or(WireError::Truncated)?;
                let mut src = [0u8; 16];
                let mut dst = [0u8; 16];
                src.copy_from_slice(&h[8..24]);
                dst.copy_from_slice(&h[24..40]);
                Ok(IpSummary {
                    src: IpAddr::V6(Ipv6Addr::from(src)),
                    dst: IpAddr::V6(Ipv6Addr::from(dst)),
                    protocol: h[6],
                    transport_offset: 40,
                })
            }
            _ => Err(WireError::Malformed("IP version is neither 4 nor 6")),
        }
    }

    /// Source and destination ports when the transport is TCP or UDP and long enough.
    pub fn ports(&self, packet: &[u8]) -> Option<(u16, u16)> {
        if self.protocol != 6 && self.protocol != 17 {
            return None;
        }
        let t = packet.get(self.transport_offset..self.transport_offset + 4)?;
        Some((
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ))
    }
}

/// Wraps a virtual IP packet in GRE for the clear path.
///
/// # Errors
/// [`WireError`] when the packet is not IPv4 or IPv6.
pub fn gre_encapsulate(packet: &[u8]) -> Result<Vec<u8>, WireError> {
    let proto = match packet.first().map(|b| b >> 4) {
        Some(4) => GRE_PROTO_IPV4,
        Some(6) => GRE_PROTO_IPV6,
        _ => return Err(WireError::Malformed("IP version is neither 4 nor 6")),
    };
    let mut out = vec![0u8; GRE_HEADER_LEN + packet.len()];
    GreRepr::emit(proto, &mut out)?;
    out[GRE_HEADER_LEN..].copy_from_slice(packet);
    Ok(out)
}

/// Writes the GRE header into the first 4 bytes of `datagram`, whose IP packet follows them.
///
/// # Errors
/// [`WireError`] when what follows is not an IPv4 or IPv6 packet.
///
/// # Examples
/// ```
/// use wsock_stack::wire::{gre_decapsulate, gre_emit_header};
/// let mut dg = vec![0u8; 4];
/// dg.extend_from_slice(&[0x45u8; 20]);
/// gre_emit_header(&mut dg).unwrap();
/// assert_eq!(gre_decapsulate(&dg).unwrap(), &[0x45u8; 20][..]);
/// ```
pub fn gre_emit_header(datagram: &mut [u8]) -> Result<(), WireError> {
    let proto = match datagram.get(GRE_HEADER_LEN).map(|b| b >> 4) {
        Some(4) => GRE_PROTO_IPV4,
        Some(6) => GRE_PROTO_IPV6,
        _ => return Err(WireError::Malformed("IP version is neither 4 nor 6")),
    };
    GreRepr::emit(proto, datagram)
}

/// Wraps a virtual IP packet in GRE in its own buffer (the packet moves up by the 4-byte header;
/// no new buffer when the capacity allows, as buffers from the host core's pool do).
///
/// # Errors
/// [`WireError`] when the packet is not IPv4 or IPv6 (the buffer is left as it was).
///
/// # Examples
/// ```
/// use wsock_stack::wire::{gre_decapsulate, gre_encapsulate_in_place};
/// let mut buf = vec![0x45u8; 20];
/// gre_encapsulate_in_place(&mut buf).unwrap();
/// assert_eq!(gre_decapsulate(&buf).unwrap(), &[0x45u8; 20][..]);
/// ```
pub fn gre_encapsulate_in_place(packet: &mut Vec<u8>) -> Result<(), WireError> {
    let proto = match packet.first().map(|b| b >> 4) {
        Some(4) => GRE_PROTO_IPV4,
        Some(6) => GRE_PROTO_IPV6,
        _ => return Err(WireError::Malformed("IP version is neither 4 nor 6")),
    };
    let mut hdr = [0u8; GRE_HEADER_LEN];
    GreRepr::emit(proto, &mut hdr)?;
    packet.splice(0..0, hdr);
    Ok(())
}

/// Unwraps a GRE-in-UDP datagram and returns the carried IP packet.
///
/// # Errors
/// [`WireError`] when the datagram is not GRE carrying IPv4 or IPv6, or the carried packet's
/// version disagrees with the GRE protocol type.
pub fn gre_decapsulate(datagram: &[u8]) -> Result<&[u8], WireError> {
    let gre = GreRepr::parse(datagram)?;
    let inner = &datagram[gre.payload_offset..];
    let version = inner.first().map(|b| b >> 4).ok_or(WireError::Truncated)?;
    match (gre.protocol, version) {
        (GRE_PROTO_IPV4, 4) | (GRE_PROTO_IPV6, 6) => Ok(inner),
        _ => Err(WireError::Malformed(
            "GRE protocol type does not match the carried packet",
        )),
    }
}

/// The end of the IP packet inside `packet` (the IPv4 total length or IPv6 payload length,
/// bounded by the buffer).
fn ip_end(packet: &[u8], summary: &IpSummary) -> usize {
    let declared = match summary.src {
        IpAddr::V4(_) => packet
            .get(2..4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        IpAddr::V6(_) => packet
            .get(4..6)
            .map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
    };
    declared.unwrap_or(0).min(packet.len())
}

/// The ones'-complement sum of `data` (RFC 1071), folded to 16 bits.
///
/// Sums 32-bit big-endian words into a 64-bit accumulator (RFC 1071 §2(B): the sum is
/// independent of the word size once folded), 4x fewer steps than 16-bit words.
fn sum16(acc: u32, data: &[u8]) -> u32 {
    let mut wide = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        wide += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        wide += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        wide += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        wide += u64::from(*b) << 8;
    }
    while wide > 0xffff {
        wide = (wide & 0xffff) + (wide >> 16);
    }
    wide as u32
}

/// The pseudo-header sum of a transport segment (RFC 793 / RFC 8200 §8.1).
fn pseudo_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let mut acc = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            acc = sum16(acc, &s.octets());
            acc = sum16(acc, &d.octets());
        }
        _ => {}
    }
    acc += u32::from(protocol);
    acc += (len as u32) & 0xffff;
    acc += (len as u32) >> 16;
    acc
}

/// Whether the TCP or UDP checksum of a packet verifies (other protocols: true). An IPv4 UDP
/// checksum of zero means "none" (RFC 768).
///
/// # Examples
/// ```
/// use wsock_stack::wire::{transport_checksum_ok, IpSummary};
/// let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
///                  0, 7, 0, 7, 0, 8, 0, 0];
/// let s = IpSummary::parse(&p).unwrap();
/// assert!(transport_checksum_ok(&p, &s)); // zero UDP checksum: none
/// p[26] = 1;
/// assert!(!transport_checksum_ok(&p, &s));
/// ```
///
/// IPv6 extension headers (hop-by-hop, routing, destination options) are walked to the upper
/// layer, so a TCP or UDP segment behind them is verified too (the host's smoltcp interface
/// relies on this check and does not verify TCP and UDP checksums again); a truncated chain
/// fails.
pub fn transport_checksum_ok(packet: &[u8], summary: &IpSummary) -> bool {
    let (protocol, offset) = match upper_layer(packet, summary) {
        Some(x) => x,
        None => return false,
    };
    if protocol != 6 && protocol != 17 {
        return true;
    }
    let end = ip_end(packet, summary);
    let Some(seg) = packet.get(offset..end) else {
        return false;
    };
    let min = if protocol == 6 { 20 } else { 8 };
    if seg.len() < min {
        return false;
    }
    if protocol == 17 && summary.src.is_ipv4() && seg[6] == 0 && seg[7] == 0 {
        return true;
    }
    let acc = sum16(
        pseudo_sum(summary.src, summary.dst, protocol, seg.len()),
        seg,
    );
    acc == 0xffff
}

/// The upper-layer protocol and its offset: for IPv6, past the hop-by-hop (0), routing (43)
/// and destination-options (60) headers. A fragment header (44) ends the walk (its payload is
/// not a whole segment). `None` when the chain runs past the packet.
fn upper_layer(packet: &[u8], summary: &IpSummary) -> Option<(u8, usize)> {
    let (mut protocol, mut offset) = (summary.protocol, summary.transport_offset);
    if summary.src.is_ipv6() {
        while matches!(protocol, 0 | 43 | 60) {
            let h = packet.get(offset..offset + 2)?;
            protocol = h[0];
            offset += (usize::from(h[1]) + 1) * 8;
        }
        if offset > packet.len() {
            return None;
        }
    }
    Some((protocol, offset))
}

fn put_checksum(acc: u32) -> [u8; 2] {
    let v = !(acc as u16);
    v.to_be_bytes()
}

/// The reset a host answers a connection request with when nothing listens for it (as a TCP
/// stack does for a SYN to a closed port): RST+ACK acknowledging the SYN. `None` when `packet`
/// is not a TCP segment without RST.
pub fn tcp_reset_for(packet: &[u8], summary: &IpSummary) -> Option<Vec<u8>> {
    if summary.protocol != 6 {
        return None;
    }
    let end = ip_end(packet, summary);
    let seg = packet.get(summary.transport_offset..end)?;
    if seg.len() < 20 {
        return None;
    }
    let flags = seg[13];
    if flags & 0x04 != 0 {
        return None; // never answer a reset
    }
    let data_off = usize::from(seg[12] >> 4) * 4;
    let payload = seg.len().saturating_sub(data_off) as u32;
    let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
    let syn_fin = u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
    let (ack_flag, seq_out, ack_out) = if flags & 0x10 != 0 {
        // An ACK gets a plain reset at its acknowledgment number (RFC 793 §3.4).
        (
            0x04u8,
            u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]),
            0,
        )
    } else {
        (0x14u8, 0, seq.wrapping_add(payload + syn_fin))
    };
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&seg[2..4]);
    tcp[2..4].copy_from_slice(&seg[0..2]);
    tcp[4..8].copy_from_slice(&seq_out.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack_out.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = ack_flag;
    let acc = sum16(pseudo_sum(summary.dst, summary.src, 6, 20), &tcp);
    tcp[16..18].copy_from_slice(&put_checksum(acc));
    let mut out = Vec::with_capacity(60);
    match (summary.dst, summary.src) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&40u16.to_be_bytes());
            h[8] = 64;
            h[9] = 6;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = put_checksum(sum16(0, &h));
            h[10..12].copy_from_slice(&c);
            out.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&20u16.to_be_bytes());
            h[6] = 6;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            out.extend_from_slice(&h);
        }
        _ => return None,
    }
    out.extend_from_slice(&tcp);
    Some(out)
}

/// What an ICMP "port unreachable" says about the datagram that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortUnreachable {
    /// Source of the original UDP datagram (a socket of this host).
    pub original_src: std::net::SocketAddr,
    /// Destination of the original datagram (where nothing listened).
    pub original_dst: std::net::SocketAddr,
}

/// Reads an ICMPv4 destination-unreachable/port (type 3 code 3) or ICMPv6
/// destination-unreachable/port (type 1 code 4) that quotes a UDP datagram.
pub fn icmp_port_unreachable(packet: &[u8], summary: &IpSummary) -> Option<PortUnreachable> {
    let icmp = packet.get(summary.transport_offset..)?;
    let ok = match summary.protocol {
        1 => icmp.first() == Some(&3) && icmp.get(1) == Some(&3),
        58 => icmp.first() == Some(&1) && icmp.get(1) == Some(&4),
        _ => false,
    };
    if !ok {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let inner = IpSummary::parse(quoted).ok()?;
    if inner.protocol != 17 {
        return None;
    }
    let udp = quoted.get(inner.transport_offset..inner.transport_offset + 4)?;
    Some(PortUnreachable {
        original_src: std::net::SocketAddr::new(inner.src, u16::from_be_bytes([udp[0], udp[1]])),
        original_dst: std::net::SocketAddr::new(inner.dst, u16::from_be_bytes([udp[2], udp[3]])),
    })
}

/// The end of the IP payload (the total or payload length field, bounded by the buffer).
///
/// # Examples
/// ```
/// use wsock_stack::wire::{ip_payload_end, IpSummary};
/// let mut p = Vec::new();
/// wsock_stack::wire::emit_ip_header("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 17, 8, &mut p).unwrap();
/// p.extend_from_slice(&[0; 8]);
/// p.extend_from_slice(&[0xEE; 3]); // trailing bytes beyond the total length
/// assert_eq!(ip_payload_end(&p, &IpSummary::parse(&p).unwrap()), 28);
/// ```
pub fn ip_payload_end(packet: &[u8], summary: &IpSummary) -> usize {
    ip_end(packet, summary)
}

/// Appends an IPv4 header (no options, TTL 64, checksum filled in) or an IPv6 header (hop
/// limit 64, no extension headers) for a payload of `payload_len` bytes of `protocol`.
/// The receiver of a transport-mode ESP packet rebuilds the packet's IP header with it.
///
/// # Errors
/// [`WireError::Malformed`] when the addresses are of different families or the payload is
/// too long for the header's length field.
pub fn emit_ip_header(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(payload_len + 20)
                .map_err(|_| WireError::Malformed("IPv4 packet longer than 65535 bytes"))?;
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64;
            h[9] = protocol;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = put_checksum(sum16(0, &h));
            h[10..12].copy_from_slice(&c);
            out.extend_from_slice(&h);
            Ok(())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = u16::try_from(payload_len)
                .map_err(|_| WireError::Malformed("IPv6 payload longer than 65535 bytes"))?;
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&len.to_be_bytes());
            h[6] = protocol;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            out.extend_from_slice(&h);
            Ok(())
        }
        _ => Err(WireError::Malformed(
            "source and destination of different families",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_never_panic_on_any_short_prefix() {
        let mut pkt = vec![0x45u8; 64];
        pkt[0] = 0x45;
        let dg = gre_encapsulate(&pkt).unwrap();
        for n in 0..dg.len() {
            let _ = gre_decapsulate(&dg[..n]);
            let _ = IpSummary::parse(&pkt[..n.min(pkt.len())]);
        }
        assert_eq!(gre_decapsulate(&dg).unwrap(), &pkt[..]);
    }

    #[test]
    fn reset_answers_a_syn_with_a_valid_checksum() {
        // A SYN 10.0.0.1:40000 -> 10.0.0.2:7, seq 1000, built by hand with a valid checksum.
        let mut syn = vec![0u8; 40];
        syn[0] = 0x45;
        syn[2..4].copy_from_slice(&40u16.to_be_bytes());
        syn[8] = 64;
        syn[9] = 6;
        syn[12..16].copy_from_slice(&[10, 0, 0, 1]);
        syn[16..20].copy_from_slice(&[10, 0, 0, 2]);
        syn[20..22].copy_from_slice(&40000u16.to_be_bytes());
        syn[22..24].copy_from_slice(&7u16.to_be_bytes());
        syn[24..28].copy_from_slice(&1000u32.to_be_bytes());
        syn[32] = 5 << 4;
        syn[33] = 0x02;
        let s = IpSummary::parse(&syn).unwrap();
        let acc = sum16(pseudo_sum(s.src, s.dst, 6, 20), &syn[20..]);
        syn[36..38].copy_from_slice(&put_checksum(acc));
        assert!(transport_checksum_ok(&syn, &s));
        let rst = tcp_reset_for(&syn, &s).unwrap();
        let r = IpSummary::parse(&rst).unwrap();
        assert_eq!((r.src, r.dst), (s.dst, s.src));
        assert!(transport_checksum_ok(&rst, &r));
        assert_eq!(rst[33], 0x14);
        assert_eq!(
            u32::from_be_bytes([rst[28], rst[29], rst[30], rst[31]]),
            1001
        );
        assert!(
            tcp_reset_for(&rst, &r).is_none(),
            "a reset is never answered"
        );
        let mut bad = syn.clone();
        bad[39] ^= 1;
        assert!(!transport_checksum_ok(&bad, &s));
    }

    #[test]
    fn wide_checksum_matches_the_rfc1071_reference() {
        fn reference(mut acc: u32, data: &[u8]) -> u32 {
            let mut chunks = data.chunks_exact(2);
            for c in &mut chunks {
                acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
            if let [b] = chunks.remainder() {
                acc += u32::from(*b) << 8;
            }
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut data = Vec::new();
        for len in (0..200).chain([1499, 1500, 65000]) {
            data.clear();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push(x as u8);
            }
            for acc in [0, 1, 0xffff, 0x1_fffe] {
                assert_eq!(sum16(acc, &data), reference(acc, &data), "len {len}");
            }
        }
        assert_eq!(sum16(0, &[0xff; 64]), reference(0, &[0xff; 64]));
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_the_segment() {
        // fd00::1 -> fd00::2, hop-by-hop (8 bytes) then UDP 7 -> 7 with 4 payload bytes.
        let mut p = vec![0u8; 40 + 8 + 12];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = 0; // hop-by-hop
        p[7] = 64;
        p[8] = 0xfd;
        p[23] = 1;
        p[24] = 0xfd;
        p[39] = 2;
        p[40] = 17; // next header: UDP
        p[41] = 0; // 8 bytes
        p[48..50].copy_from_slice(&7u16.to_be_bytes());
        p[50..52].copy_from_slice(&7u16.to_be_bytes());
        p[52..54].copy_from_slice(&12u16.to_be_bytes());
        p[56..60].copy_from_slice(b"ping");
        let s = IpSummary::parse(&p).unwrap();
        let acc = sum16(pseudo_sum(s.src, s.dst, 17, 12), &p[48..]);
        p[54..56].copy_from_slice(&put_checksum(acc));
        assert!(transport_checksum_ok(&p, &s));
        p[59] ^= 1;
        assert!(
            !transport_checksum_ok(&p, &s),
            "a bad UDP checksum behind hop-by-hop"
        );
        // A chain that runs past the packet fails.
        p[41] = 200;
        assert!(!transport_checksum_ok(&p, &s));
    }

    #[test]
    fn in_place_encapsulation_matches_the_copying_one() {
        for pkt in [vec![0x45u8; 40], vec![0x60u8; 60]] {
            let mut buf = pkt.clone();
            gre_encapsulate_in_place(&mut buf).unwrap();
            assert_eq!(buf, gre_encapsulate(&pkt).unwrap());
        }
        let mut bad = vec![0x15u8; 20];
        assert!(gre_encapsulate_in_place(&mut bad).is_err());
        assert_eq!(bad, vec![0x15u8; 20]);
    }

    #[test]
    fn mismatched_gre_protocol_is_rejected() {
        let mut dg = gre_encapsulate(&[0x45; 20]).unwrap();
        dg[2..4].copy_from_slice(&GRE_PROTO_IPV6.to_be_bytes());
        assert!(matches!(gre_decapsulate(&dg), Err(WireError::Malformed(_))));
    }
}
