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
    fn mismatched_gre_protocol_is_rejected() {
        let mut dg = gre_encapsulate(&[0x45; 20]).unwrap();
        dg[2..4].copy_from_slice(&GRE_PROTO_IPV6.to_be_bytes());
        assert!(matches!(gre_decapsulate(&dg), Err(WireError::Malformed(_))));
    }
}
