//! IKEv2 wire format (RFC 7296 §3): the fixed header, the generic payload chain, and every
//! payload the keying exchanges use.
//!
//! Two levels, in the smoltcp manner:
//! - zero-copy views: [`Message::parse`] checks the header and the length field and then hands
//!   out [`RawPayload`]s (type, critical bit, body slice) by walking the chain with
//!   [`Message::payloads`];
//! - owned representations: [`MessageRepr`] and [`PayloadRepr`] with `parse` and `emit`, where
//!   `parse(emit(x)) == x` for every representable `x`.
//!
//! Parsing never panics, whatever the input; every inconsistency (a length field that points
//! past the end, a count that disagrees with the data, a substructure flag out of place) is a
//! typed [`IpsecError`]: [`IpsecError::InvalidIkeHeader`], [`IpsecError::InvalidMajorVersion`] or
//! [`IpsecError::MalformedPayload`] naming the payload. Reserved fields are ignored on input and
//! sent as zero. Payloads this module does not know (CP, EAP, private types) are kept as
//! [`PayloadRepr::Unknown`] with their critical bit, so the exchange layer can answer
//! `UNSUPPORTED_CRITICAL_PAYLOAD`.
//!
//! The SK payload ([`PayloadRepr::Encrypted`]) is carried opaque (IV, ciphertext, ICV); its
//! "next payload" field names the first payload inside. `ike::crypto` opens it, and
//! [`parse_payload_chain`] then reads the inner chain.

mod consts;
mod payload;

pub use consts::*;
pub use payload::*;

use crate::error::IpsecError;

/// Length of the fixed IKE header.
pub const HEADER_LEN: usize = 28;
/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;
/// The version byte of IKEv2 (major 2, minor 0).
pub const VERSION_2_0: u8 = 0x20;

/// The header flags (RFC 7296 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Set in every message sent by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// The sender can speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// The message is a response.
    pub const RESPONSE: u8 = 0x20;

    /// Flags for a message of the original initiator (`initiator`) that is or is not a response.
    pub fn new(initiator: bool, response: bool) -> Self {
        let mut f = 0;
        if initiator {
            f |= Self::INITIATOR;
        }
        if response {
            f |= Self::RESPONSE;
        }
        Flags(f)
    }

    /// The I bit.
    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// The R bit.
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// The V bit.
    pub fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }
}

/// The fixed IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI (0 in the very first request).
    pub spi_r: u64,
    /// Type of the first payload.
    pub next_payload: PayloadType,
    /// Major version (2).
    pub major_version: u8,
    /// Minor version (0).
    pub minor_version: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// I, V, R flags.
    pub flags: Flags,
    /// Message id.
    pub message_id: u32,
    /// Total length of the message including this header.
    pub length: u32,
}

impl Header {
    /// Parses the first 28 bytes of `buf`.
    ///
    /// # Errors
    /// [`IpsecError::InvalidIkeHeader`] when `buf` is shorter than 28 bytes or the length field is
    /// below 28; [`IpsecError::InvalidMajorVersion`] when the major version is not 2.
    pub fn parse(buf: &[u8]) -> Result<Header, IpsecError> {
        let b: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(IpsecError::InvalidIkeHeader("shorter than 28 bytes"))?;
        let u64_at = |i: usize| {
            u64::from_be_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let major = b[17] >> 4;
        if major != 2 {
            return Err(IpsecError::InvalidMajorVersion(major));
        }
        let length = u32_at(24);
        if (length as usize) < HEADER_LEN {
            return Err(IpsecError::InvalidIkeHeader("length field below 28"));
        }
        Ok(Header {
            spi_i: u64_at(0),
            spi_r: u64_at(8),
            next_payload: PayloadType(b[16]),
            major_version: major,
            minor_version: b[17] & 0x0f,
            exchange: ExchangeType(b[18]),
            flags: Flags(b[19]),
            message_id: u32_at(20),
            length,
        })
    }

    /// Writes the header into the first 28 bytes of `out`.
    ///
    /// # Errors
    /// [`IpsecError::BufferTooSmall`] when `out` is shorter than 28 bytes.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), IpsecError> {
        let b = out
            .get_mut(..HEADER_LEN)
            .ok_or(IpsecError::BufferTooSmall { needed: HEADER_LEN })?;
        b[0..8].copy_from_slice(&self.spi_i.to_be_bytes());
        b[8..16].copy_from_slice(&self.spi_r.to_be_bytes());
        b[16] = self.next_payload.0;
        b[17] = (self.major_version << 4) | (self.minor_version & 0x0f);
        b[18] = self.exchange.0;
        b[19] = self.flags.0;
        b[20..24].copy_from_slice(&self.message_id.to_be_bytes());
        b[24..28].copy_from_slice(&self.length.to_be_bytes());
        Ok(())
    }
}

/// A zero-copy view of one IKE message whose header and total length were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    header: Header,
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks the header of `buf` and that its length field equals `buf.len()`.
    ///
    /// # Errors
    /// As [`Header::parse`]; [`IpsecError::InvalidIkeHeader`] when the length field disagrees
    /// with the datagram.
    pub fn parse(buf: &'a [u8]) -> Result<Self, IpsecError> {
        let header = Header::parse(buf)?;
        if header.length as usize != buf.len() {
            return Err(IpsecError::InvalidIkeHeader(
                "length field does not match the datagram",
            ));
        }
        Ok(Message { header, bytes: buf })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Walks the payload chain. The SK payload, if present, ends the walk (its "next payload"
    /// names the first payload inside the ciphertext).
    pub fn payloads(&self) -> PayloadIter<'a> {
        PayloadIter {
            next: self.header.next_payload,
            rest: &self.bytes[HEADER_LEN..],
            offset: HEADER_LEN,
            done: false,
        }
    }
}

/// One payload as found in a chain: a view into the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// Its type (from the previous header's "next payload").
    pub kind: PayloadType,
    /// The critical bit.
    pub critical: bool,
    /// The "next payload" field (for SK: the first inner payload).
    pub next: PayloadType,
    /// The body after the 4-byte generic header.
    pub body: &'a [u8],
    /// Offset of the generic header from the start of the buffer the chain was read from.
    pub offset: usize,
}

/// Iterator over a payload chain; yields an error once and then stops on malformed input.
#[derive(Debug, Clone)]
pub struct PayloadIter<'a> {
    next: PayloadType,
    rest: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> PayloadIter<'a> {
    /// Walks a bare payload chain (e.g. the decrypted content of an SK payload) whose first
    /// payload has type `first`; offsets are relative to `buf`.
    pub fn new(first: PayloadType, buf: &'a [u8]) -> Self {
        PayloadIter {
            next: first,
            rest: buf,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = Result<RawPayload<'a>, IpsecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.next == PayloadType::NONE {
            self.done = true;
            if self.rest.is_empty() {
                return None;
            }
            return Some(Err(IpsecError::InvalidIkeHeader(
                "bytes after the last payload",
            )));
        }
        let kind = self.next;
        let fail = |reason| IpsecError::MalformedPayload {
            payload: kind,
            reason,
        };
        let res = (|| {
            let h = self
                .rest
                .get(..GENERIC_HEADER_LEN)
                .ok_or(fail("truncated generic header"))?;
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if len < GENERIC_HEADER_LEN {
                return Err(fail("payload length below 4"));
            }
            let whole = self
                .rest
                .get(..len)
                .ok_or(fail("payload length past the end"))?;
            let p = RawPayload {
                kind,
                critical: h[1] & 0x80 != 0,
                next: PayloadType(h[0]),
                body: &whole[GENERIC_HEADER_LEN..],
                offset: self.offset,
            };
            if kind == PayloadType::SK && len != self.rest.len() {
                return Err(fail("SK payload is not the last payload"));
            }
            self.rest = &self.rest[len..];
            self.offset += len;
            self.next = if kind == PayloadType::SK {
                PayloadType::NONE
            } else {
                p.next
            };
            Ok(p)
        })();
        if res.is_err() {
            self.done = true;
        }
        Some(res)
    }
}

/// Parses a whole payload chain starting with a payload of type `first`.
///
/// # Errors
/// [`IpsecError::MalformedPayload`] (or [`IpsecError::InvalidIkeHeader`] for trailing bytes) at
/// the first malformed payload.
pub fn parse_payload_chain(first: PayloadType, buf: &[u8]) -> Result<Vec<PayloadRepr>, IpsecError> {
    PayloadIter::new(first, buf)
        .map(|raw| raw.and_then(|r| PayloadRepr::parse(&r)))
        .collect()
}

/// Appends the payload chain to `out` and returns the type of its first payload (for the
/// enclosing header's "next payload"). An [`PayloadRepr::Encrypted`] payload must be last.
///
/// # Errors
/// [`IpsecError::InvalidConfig`] when a payload would exceed 65535 bytes, an SK payload is not
/// last, or a payload's fields are inconsistent (e.g. a Delete SPI of the wrong size).
pub fn emit_payload_chain(
    payloads: &[PayloadRepr],
    out: &mut Vec<u8>,
) -> Result<PayloadType, IpsecError> {
    for (i, p) in payloads.iter().enumerate() {
        let next = match (p, payloads.get(i + 1)) {
            (PayloadRepr::Encrypted { first_inner, .. }, None) => *first_inner,
            (PayloadRepr::Encrypted { .. }, Some(_)) => {
                return Err(IpsecError::InvalidConfig(
                    "the SK payload must be the last payload",
                ))
            }
            (_, Some(n)) => n.kind(),
            (_, None) => PayloadType::NONE,
        };
        p.emit(next, out)?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NONE, PayloadRepr::kind))
}

/// An owned IKE message: header fields and the payload chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRepr {
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI.
    pub spi_r: u64,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message id.
    pub message_id: u32,
    /// The payloads, in order (an SK payload, if any, last).
    pub payloads: Vec<PayloadRepr>,
}

impl MessageRepr {
    /// Parses a whole message.
    ///
    /// # Errors
    /// As [`Message::parse`] and [`PayloadRepr::parse`].
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::ike::wire::*;
    /// let msg = MessageRepr {
    ///     spi_i: 1, spi_r: 0, exchange: ExchangeType::IKE_SA_INIT,
    ///     flags: Flags::new(true, false), message_id: 0,
    ///     payloads: vec![PayloadRepr::Nonce(vec![7; 32])],
    /// };
    /// let bytes = msg.emit().unwrap();
    /// assert_eq!(MessageRepr::parse(&bytes).unwrap(), msg);
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Self, IpsecError> {
        let m = Message::parse(buf)?;
        let payloads = m
            .payloads()
            .map(|raw| raw.and_then(|r| PayloadRepr::parse(&r)))
            .collect::<Result<Vec<_>, _>>()?;
        let h = m.header();
        Ok(MessageRepr {
            spi_i: h.spi_i,
            spi_r: h.spi_r,
            exchange: h.exchange,
            flags: h.flags,
            message_id: h.message_id,
            payloads,
        })
    }

    /// Emits the message (version 2.0, length filled in).
    ///
    /// # Errors
    /// As [`emit_payload_chain`].
    pub fn emit(&self) -> Result<Vec<u8>, IpsecError> {
        let mut out = Vec::with_capacity(256);
        self.emit_into(&mut out)?;
        Ok(out)
    }

    /// Appends the message to `out` (e.g. after a non-ESP marker).
    ///
    /// # Errors
    /// As [`emit_payload_chain`].
    pub fn emit_into(&self, out: &mut Vec<u8>) -> Result<(), IpsecError> {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let first = emit_payload_chain(&self.payloads, out)?;
        let length = u32::try_from(out.len() - start)
            .map_err(|_| IpsecError::InvalidConfig("IKE message longer than 4 GiB"))?;
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: first,
            major_version: 2,
            minor_version: 0,
            exchange: self.exchange,
            flags: self.flags,
            message_id: self.message_id,
            length,
        }
        .emit(&mut out[start..])
    }
}

#[cfg(test)]
mod tests;
