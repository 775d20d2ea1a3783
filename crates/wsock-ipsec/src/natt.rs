//! The NAT-T socket's three kinds of datagrams (RFC 3948 §2, RFC 7296 §2.23).
//!
//! The port-4500-role socket carries, in one UDP flow:
//! - NAT-keepalives: a single `0xFF` byte, to be ignored (and not taken as liveness);
//! - IKE messages, prefixed by the 4-byte non-ESP marker (all zeros);
//! - ESP packets, starting directly with their non-zero SPI.
//!
//! [`classify`] tells them apart without copying; [`emit_ike`] and [`KEEPALIVE`] build the
//! non-ESP ones (an ESP packet is sent as [`crate::esp::OutboundSa::seal`] made it).

use crate::error::IpsecError;

/// The non-ESP marker that precedes IKE messages on the NAT-T socket.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The NAT-keepalive datagram.
pub const KEEPALIVE: [u8; 1] = [0xFF];
/// RFC 3948 §4's default interval between keepalives when nothing else was sent.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);

/// What a datagram received on the NAT-T socket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NattDatagram<'a> {
    /// A NAT-keepalive (one `0xFF` byte).
    Keepalive,
    /// An IKE message (marker removed).
    Ike(&'a [u8]),
    /// An ESP packet (the whole datagram; its first four bytes are the SPI).
    Esp {
        /// The SPI, for the SA lookup.
        spi: u32,
        /// The ESP packet.
        packet: &'a [u8],
    },
}

/// Classifies a NAT-T datagram.
///
/// # Errors
/// [`IpsecError::InvalidPacket`] for an empty datagram, a one-byte datagram other than `0xFF`,
/// and anything shorter than an ESP header that is not a marker-prefixed IKE message.
///
/// # Examples
/// ```
/// use wsock_ipsec::natt::{classify, NattDatagram};
/// assert_eq!(classify(&[0xFF]).unwrap(), NattDatagram::Keepalive);
/// assert_eq!(classify(&[0, 0, 0, 0, 1, 2]).unwrap(), NattDatagram::Ike(&[1, 2]));
/// assert!(matches!(classify(&[0, 0, 1, 0, 0, 0, 0, 1]).unwrap(), NattDatagram::Esp { spi: 256, .. }));
/// ```
pub fn classify(datagram: &[u8]) -> Result<NattDatagram<'_>, IpsecError> {
    match datagram {
        [] => Err(IpsecError::InvalidPacket("empty NAT-T datagram")),
        [0xFF] => Ok(NattDatagram::Keepalive),
        [_] => Err(IpsecError::InvalidPacket(
            "one-byte datagram that is not a keepalive",
        )),
        [0, 0, 0, 0, rest @ ..] => Ok(NattDatagram::Ike(rest)),
        [a, b, c, d, _, _, _, _, ..] => Ok(NattDatagram::Esp {
            spi: u32::from_be_bytes([*a, *b, *c, *d]),
            packet: datagram,
        }),
        _ => Err(IpsecError::InvalidPacket(
            "NAT-T datagram shorter than an ESP header",
        )),
    }
}

/// Appends the non-ESP marker and `ike_message` to `out` (the datagram to send on the NAT-T
/// socket).
///
/// # Examples
/// ```
/// let mut d = Vec::new();
/// wsock_ipsec::natt::emit_ike(&[9, 9], &mut d);
/// assert_eq!(d, [0, 0, 0, 0, 9, 9]);
/// ```
pub fn emit_ike(ike_message: &[u8], out: &mut Vec<u8>) {
    out.reserve(4 + ike_message.len());
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(ike_message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_every_kind() {
        assert!(classify(&[]).is_err());
        assert!(classify(&[0]).is_err());
        assert!(classify(&[1, 2, 3]).is_err());
        assert_eq!(classify(&[0, 0, 0, 0]).unwrap(), NattDatagram::Ike(&[]));
        let esp = [0xc0, 1, 0, 1, 0, 0, 0, 1, 0xaa];
        assert_eq!(
            classify(&esp).unwrap(),
            NattDatagram::Esp {
                spi: 0xc001_0001,
                packet: &esp
            }
        );
        let mut d = Vec::new();
        emit_ike(b"ike", &mut d);
        assert_eq!(classify(&d).unwrap(), NattDatagram::Ike(b"ike"));
        assert_eq!(classify(&KEEPALIVE).unwrap(), NattDatagram::Keepalive);
    }
}
