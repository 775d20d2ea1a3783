//! Owned representations of the IKEv2 payloads (RFC 7296 §3.3-§3.14) with parse and emit.

use super::{consts::*, RawPayload};
use crate::error::IpsecError;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// Type/Value format (AF bit set): a 2-byte value, e.g. the Key Length.
    Tv {
        /// Attribute type (15 bits).
        kind: u16,
        /// Value.
        value: u16,
    },
    /// Type/Length/Value format.
    Tlv {
        /// Attribute type (15 bits).
        kind: u16,
        /// Value.
        value: Vec<u8>,
    },
}

/// A transform of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transform {
    /// ENCR, PRF, INTEG, DH or ESN.
    pub kind: TransformType,
    /// The transform id (see [`transform`]).
    pub id: u16,
    /// Attributes (in practice only the Key Length).
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(kind: TransformType, id: u16) -> Self {
        Transform {
            kind,
            id,
            attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute (in bits).
    pub fn with_key_length(kind: TransformType, id: u16, bits: u16) -> Self {
        Transform {
            kind,
            id,
            attributes: vec![Attribute::Tv {
                kind: ATTR_KEY_LENGTH,
                value: bits,
            }],
        }
    }

    /// The Key Length attribute, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv {
                kind: ATTR_KEY_LENGTH,
                value,
            } => Some(*value),
            _ => None,
        })
    }
}

/// A proposal of an SA payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Proposal number (the first is 1; the responder echoes the number it chose).
    pub number: u8,
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// The SPI (empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 bytes for ESP/AH).
    pub spi: Vec<u8>,
    /// The transforms.
    pub transforms: Vec<Transform>,
}

/// An identification (IDi / IDr) payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identification {
    /// The ID type.
    pub id_type: IdType,
    /// The identification data.
    pub data: Vec<u8>,
}

/// A Notify payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notify {
    /// Protocol of the SA the notify is about (0 / IKE for the IKE SA).
    pub protocol: ProtocolId,
    /// SPI of that SA (often empty).
    pub spi: Vec<u8>,
    /// Notify message type.
    pub kind: NotifyType,
    /// Notification data.
    pub data: Vec<u8>,
}

impl Notify {
    /// A notify about no particular SA (protocol 0, no SPI).
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Self {
        Notify {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            kind,
            data,
        }
    }
}

/// A Delete payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delete {
    /// IKE (no SPIs: the IKE SA of the message) or ESP/AH.
    pub protocol: ProtocolId,
    /// Size of each SPI (0 for IKE, 4 for ESP/AH).
    pub spi_size: u8,
    /// The SPIs to delete, each `spi_size` bytes.
    pub spis: Vec<Vec<u8>>,
}

/// An address range of a traffic selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressRange {
    /// TS_IPV4_ADDR_RANGE.
    V4(Ipv4Addr, Ipv4Addr),
    /// TS_IPV6_ADDR_RANGE.
    V6(Ipv6Addr, Ipv6Addr),
}

/// A traffic selector (RFC 7296 §3.13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol (0 = any).
    pub ip_protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// Address range.
    pub addresses: AddressRange,
}

/// One payload, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PayloadRepr {
    /// Security Association: the proposals.
    Sa(Vec<Proposal>),
    /// Key Exchange.
    Ke {
        /// The Diffie-Hellman group number.
        group: u16,
        /// The public value.
        data: Vec<u8>,
    },
    /// Identification - Initiator.
    IdI(Identification),
    /// Identification - Responder.
    IdR(Identification),
    /// Certificate.
    Cert {
        /// Encoding.
        encoding: CertEncoding,
        /// Certificate data.
        data: Vec<u8>,
    },
    /// Certificate Request.
    CertReq {
        /// Encoding.
        encoding: CertEncoding,
        /// Certification authority data (concatenated SHA-1 hashes of CA public keys).
        data: Vec<u8>,
    },
    /// Authentication.
    Auth {
        /// Authentication method.
        method: AuthMethod,
        /// Authentication data.
        data: Vec<u8>,
    },
    /// Nonce data.
    Nonce(Vec<u8>),
    /// Notify.
    Notify(Notify),
    /// Delete.
    Delete(Delete),
    /// Vendor ID.
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator.
    TsI(Vec<TrafficSelector>),
    /// Traffic Selector - Responder.
    TsR(Vec<TrafficSelector>),
    /// Encrypted and Authenticated (SK): IV, ciphertext and ICV, opaque here.
    Encrypted {
        /// Type of the first payload inside.
        first_inner: PayloadType,
        /// IV || ciphertext || ICV.
        data: Vec<u8>,
    },
    /// A payload type this module does not interpret (CP, EAP, private use...).
    Unknown {
        /// Its type.
        kind: PayloadType,
        /// Whether the sender marked it critical.
        critical: bool,
        /// Its body.
        data: Vec<u8>,
    },
}

/// A bounds-checked reader over a payload body.
struct Reader<'a> {
    buf: &'a [u8],
    payload: PayloadType,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> IpsecError {
        IpsecError::MalformedPayload {
            payload: self.payload,
            reason,
        }
    }

    fn take(&mut self, n: usize, reason: &'static str) -> Result<&'a [u8], IpsecError> {
        if self.buf.len() < n {
            return Err(self.err(reason));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn u8(&mut self, reason: &'static str) -> Result<u8, IpsecError> {
        Ok(self.take(1, reason)?[0])
    }

    fn u16(&mut self, reason: &'static str) -> Result<u16, IpsecError> {
        let b = self.take(2, reason)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

fn too_long() -> IpsecError {
    IpsecError::InvalidConfig("IKE payload or substructure longer than 65535 bytes")
}

fn put_len(out: &mut [u8], at: usize, len: usize) -> Result<(), IpsecError> {
    let l = u16::try_from(len).map_err(|_| too_long())?;
    out[at..at + 2].copy_from_slice(&l.to_be_bytes());
    Ok(())
}

impl PayloadRepr {
    /// The payload type.
    pub fn kind(&self) -> PayloadType {
        match self {
            PayloadRepr::Sa(_) => PayloadType::SA,
            PayloadRepr::Ke { .. } => PayloadType::KE,
            PayloadRepr::IdI(_) => PayloadType::IDI,
            PayloadRepr::IdR(_) => PayloadType::IDR,
            PayloadRepr::Cert { .. } => PayloadType::CERT,
            PayloadRepr::CertReq { .. } => PayloadType::CERTREQ,
            PayloadRepr::Auth { .. } => PayloadType::AUTH,
            PayloadRepr::Nonce(_) => PayloadType::NONCE,
            PayloadRepr::Notify(_) => PayloadType::NOTIFY,
            PayloadRepr::Delete(_) => PayloadType::DELETE,
            PayloadRepr::VendorId(_) => PayloadType::VENDOR_ID,
            PayloadRepr::TsI(_) => PayloadType::TSI,
            PayloadRepr::TsR(_) => PayloadType::TSR,
            PayloadRepr::Encrypted { .. } => PayloadType::SK,
            PayloadRepr::Unknown { kind, .. } => *kind,
        }
    }

    /// Interprets a raw payload.
    ///
    /// # Errors
    /// [`IpsecError::MalformedPayload`] when the body does not match its type's layout.
    pub fn parse(raw: &RawPayload<'_>) -> Result<Self, IpsecError> {
        let mut r = Reader {
            buf: raw.body,
            payload: raw.kind,
        };
        let p = match raw.kind {
            PayloadType::SA => PayloadRepr::Sa(parse_proposals(raw.body)?),
            PayloadType::KE => {
                let group = r.u16("truncated KE header")?;
                r.take(2, "truncated KE header")?;
                PayloadRepr::Ke {
                    group,
                    data: r.rest().to_vec(),
                }
            }
            PayloadType::IDI | PayloadType::IDR => {
                let id_type = IdType(r.u8("truncated ID header")?);
                r.take(3, "truncated ID header")?;
                let id = Identification {
                    id_type,
                    data: r.rest().to_vec(),
                };
                if raw.kind == PayloadType::IDI {
                    PayloadRepr::IdI(id)
                } else {
                    PayloadRepr::IdR(id)
                }
            }
            PayloadType::CERT | PayloadType::CERTREQ => {
                let encoding = CertEncoding(r.u8("missing certificate encoding")?);
                let data = r.rest().to_vec();
                if raw.kind == PayloadType::CERT {
                    PayloadRepr::Cert { encoding, data }
                } else {
                    PayloadRepr::CertReq { encoding, data }
                }
            }
            PayloadType::AUTH => {
                let method = AuthMethod(r.u8("truncated AUTH header")?);
                r.take(3, "truncated AUTH header")?;
                PayloadRepr::Auth {
                    method,
                    data: r.rest().to_vec(),
                }
            }
            PayloadType::NONCE => PayloadRepr::Nonce(r.rest().to_vec()),
            PayloadType::NOTIFY => {
                let protocol = ProtocolId(r.u8("truncated Notify header")?);
                let spi_size = r.u8("truncated Notify header")?;
                let kind = NotifyType(r.u16("truncated Notify header")?);
                let spi = r
                    .take(usize::from(spi_size), "SPI size past the end")?
                    .to_vec();
                PayloadRepr::Notify(Notify {
                    protocol,
                    spi,
                    kind,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::DELETE => {
                let protocol = ProtocolId(r.u8("truncated Delete header")?);
                let spi_size = r.u8("truncated Delete header")?;
                let count = r.u16("truncated Delete header")?;
                let size = usize::from(spi_size);
                if r.buf.len() != size * usize::from(count) {
                    return Err(r.err("SPI count and size disagree with the length"));
                }
                let spis = if size == 0 {
                    // A count with zero-sized SPIs would be meaningless: RFC 7296 §3.11 wants 0.
                    if count != 0 {
                        return Err(r.err("SPIs of size 0"));
                    }
                    Vec::new()
                } else {
                    r.buf.chunks(size).map(<[u8]>::to_vec).collect()
                };
                PayloadRepr::Delete(Delete {
                    protocol,
                    spi_size,
                    spis,
                })
            }
            PayloadType::VENDOR_ID => PayloadRepr::VendorId(r.rest().to_vec()),
            PayloadType::TSI | PayloadType::TSR => {
                let ts = parse_selectors(&mut r)?;
                if raw.kind == PayloadType::TSI {
                    PayloadRepr::TsI(ts)
                } else {
                    PayloadRepr::TsR(ts)
                }
            }
            PayloadType::SK => PayloadRepr::Encrypted {
                first_inner: raw.next,
                data: raw.body.to_vec(),
            },
            kind => PayloadRepr::Unknown {
                kind,
                critical: raw.critical,
                data: raw.body.to_vec(),
            },
        };
        Ok(p)
    }

    /// Appends the payload (generic header with `next` as "next payload", then the body).
    ///
    /// # Errors
    /// [`IpsecError::InvalidConfig`] when the payload would exceed 65535 bytes or its fields
    /// are inconsistent.
    pub fn emit(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), IpsecError> {
        let start = out.len();
        let critical = matches!(self, PayloadRepr::Unknown { critical: true, .. });
        out.extend_from_slice(&[next.0, if critical { 0x80 } else { 0 }, 0, 0]);
        match self {
            PayloadRepr::Sa(proposals) => emit_proposals(proposals, out)?,
            PayloadRepr::Ke { group, data } => {
                out.extend_from_slice(&group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(data);
            }
            PayloadRepr::IdI(id) | PayloadRepr::IdR(id) => {
                out.extend_from_slice(&[id.id_type.0, 0, 0, 0]);
                out.extend_from_slice(&id.data);
            }
            PayloadRepr::Cert { encoding, data } | PayloadRepr::CertReq { encoding, data } => {
                out.push(encoding.0);
                out.extend_from_slice(data);
            }
            PayloadRepr::Auth { method, data } => {
                out.extend_from_slice(&[method.0, 0, 0, 0]);
                out.extend_from_slice(data);
            }
            PayloadRepr::Nonce(d) | PayloadRepr::VendorId(d) => out.extend_from_slice(d),
            PayloadRepr::Notify(n) => {
                let spi_size = u8::try_from(n.spi.len())
                    .map_err(|_| IpsecError::InvalidConfig("Notify SPI longer than 255 bytes"))?;
                out.extend_from_slice(&[n.protocol.0, spi_size]);
                out.extend_from_slice(&n.kind.0.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            PayloadRepr::Delete(d) => {
                if d.spis.iter().any(|s| s.len() != usize::from(d.spi_size))
                    || (d.spi_size == 0 && !d.spis.is_empty())
                {
                    return Err(IpsecError::InvalidConfig("Delete SPI of the wrong size"));
                }
                let count = u16::try_from(d.spis.len()).map_err(|_| too_long())?;
                out.extend_from_slice(&[d.protocol.0, d.spi_size]);
                out.extend_from_slice(&count.to_be_bytes());
                for s in &d.spis {
                    out.extend_from_slice(s);
                }
            }
            PayloadRepr::TsI(ts) | PayloadRepr::TsR(ts) => emit_selectors(ts, out)?,
            PayloadRepr::Encrypted { data, .. } | PayloadRepr::Unknown { data, .. } => {
                out.extend_from_slice(data)
            }
        }
        let len = out.len() - start;
        put_len(out, start + 2, len)
    }
}

fn parse_proposals(body: &[u8]) -> Result<Vec<Proposal>, IpsecError> {
    let mut r = Reader {
        buf: body,
        payload: PayloadType::PROPOSAL,
    };
    let mut proposals = Vec::new();
    if body.is_empty() {
        return Err(IpsecError::MalformedPayload {
            payload: PayloadType::SA,
            reason: "no proposals",
        });
    }
    loop {
        let last = r.u8("truncated proposal header")?;
        r.take(1, "truncated proposal header")?;
        let len = usize::from(r.u16("truncated proposal header")?);
        if len < 8 {
            return Err(r.err("proposal length below 8"));
        }
        let mut p = Reader {
            buf: r.take(len - 4, "proposal length past the end")?,
            payload: PayloadType::PROPOSAL,
        };
        let number = p.u8("truncated proposal header")?;
        let protocol = ProtocolId(p.u8("truncated proposal header")?);
        let spi_size = p.u8("truncated proposal header")?;
        let count = p.u8("truncated proposal header")?;
        let spi = p
            .take(usize::from(spi_size), "SPI size past the end")?
            .to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        for i in 0..count {
            transforms.push(parse_transform(&mut p, i + 1 == count)?);
        }
        if !p.buf.is_empty() {
            return Err(p.err("bytes after the last transform"));
        }
        proposals.push(Proposal {
            number,
            protocol,
            spi,
            transforms,
        });
        match (last, r.buf.is_empty()) {
            (0, true) => return Ok(proposals),
            (2, false) => {}
            _ => return Err(r.err("last-substructure flag disagrees with the length")),
        }
    }
}

fn parse_transform(p: &mut Reader<'_>, is_last: bool) -> Result<Transform, IpsecError> {
    let mut t = Reader {
        buf: p.buf,
        payload: PayloadType::TRANSFORM,
    };
    let last = t.u8("truncated transform header")?;
    if last != if is_last { 0 } else { 3 } {
        return Err(t.err("last-substructure flag disagrees with the transform count"));
    }
    t.take(1, "truncated transform header")?;
    let len = usize::from(t.u16("truncated transform header")?);
    if len < 8 {
        return Err(t.err("transform length below 8"));
    }
    let mut body = Reader {
        buf: t.take(len - 4, "transform length past the end")?,
        payload: PayloadType::TRANSFORM,
    };
    p.buf = t.buf;
    let kind = TransformType(body.u8("truncated transform header")?);
    body.take(1, "truncated transform header")?;
    let id = body.u16("truncated transform header")?;
    let mut attributes = Vec::new();
    while !body.buf.is_empty() {
        let ty = body.u16("truncated attribute")?;
        if ty & 0x8000 != 0 {
            attributes.push(Attribute::Tv {
                kind: ty & 0x7fff,
                value: body.u16("truncated attribute")?,
            });
        } else {
            let l = usize::from(body.u16("truncated attribute")?);
            attributes.push(Attribute::Tlv {
                kind: ty,
                value: body.take(l, "attribute length past the end")?.to_vec(),
            });
        }
    }
    Ok(Transform {
        kind,
        id,
        attributes,
    })
}

fn emit_proposals(proposals: &[Proposal], out: &mut Vec<u8>) -> Result<(), IpsecError> {
    for (i, p) in proposals.iter().enumerate() {
        let start = out.len();
        let last = if i + 1 == proposals.len() { 0 } else { 2 };
        let spi_size = u8::try_from(p.spi.len()).map_err(|_| too_long())?;
        let count = u8::try_from(p.transforms.len())
            .map_err(|_| IpsecError::InvalidConfig("more than 255 transforms"))?;
        out.extend_from_slice(&[last, 0, 0, 0, p.number, p.protocol.0, spi_size, count]);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let tstart = out.len();
            let tlast = if j + 1 == p.transforms.len() { 0 } else { 3 };
            out.extend_from_slice(&[tlast, 0, 0, 0, t.kind.0, 0]);
            out.extend_from_slice(&t.id.to_be_bytes());
            for a in &t.attributes {
                match a {
                    Attribute::Tv { kind, value } => {
                        if *kind > 0x7fff {
                            return Err(IpsecError::InvalidConfig("attribute type above 0x7fff"));
                        }
                        out.extend_from_slice(&(kind | 0x8000).to_be_bytes());
                        out.extend_from_slice(&value.to_be_bytes());
                    }
                    Attribute::Tlv { kind, value } => {
                        if *kind > 0x7fff {
                            return Err(IpsecError::InvalidConfig("attribute type above 0x7fff"));
                        }
                        let l = u16::try_from(value.len()).map_err(|_| too_long())?;
                        out.extend_from_slice(&kind.to_be_bytes());
                        out.extend_from_slice(&l.to_be_bytes());
                        out.extend_from_slice(value);
                    }
                }
            }
            let tlen = out.len() - tstart;
            put_len(out, tstart + 2, tlen)?;
        }
        let len = out.len() - start;
        put_len(out, start + 2, len)?;
    }
    Ok(())
}

fn parse_selectors(r: &mut Reader<'_>) -> Result<Vec<TrafficSelector>, IpsecError> {
    let count = r.u8("truncated TS header")?;
    r.take(3, "truncated TS header")?;
    let mut out = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let ts_type = TsType(r.u8("truncated traffic selector")?);
        let ip_protocol = r.u8("truncated traffic selector")?;
        let len = usize::from(r.u16("truncated traffic selector")?);
        let start_port = r.u16("truncated traffic selector")?;
        let end_port = r.u16("truncated traffic selector")?;
        let addresses = match (ts_type, len) {
            (TsType::IPV4_ADDR_RANGE, 16) => {
                let a = r.take(8, "truncated IPv4 range")?;
                AddressRange::V4(
                    Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                    Ipv4Addr::new(a[4], a[5], a[6], a[7]),
                )
            }
            (TsType::IPV6_ADDR_RANGE, 40) => {
                let a = r.take(32, "truncated IPv6 range")?;
                let mut s = [0u8; 16];
                let mut e = [0u8; 16];
                s.copy_from_slice(&a[..16]);
                e.copy_from_slice(&a[16..]);
                AddressRange::V6(Ipv6Addr::from(s), Ipv6Addr::from(e))
            }
            (TsType::IPV4_ADDR_RANGE | TsType::IPV6_ADDR_RANGE, _) => {
                return Err(r.err("selector length does not fit its type"))
            }
            _ => return Err(r.err("unsupported traffic selector type")),
        };
        out.push(TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            addresses,
        });
    }
    if !r.buf.is_empty() {
        return Err(r.err("bytes after the last traffic selector"));
    }
    Ok(out)
}

fn emit_selectors(ts: &[TrafficSelector], out: &mut Vec<u8>) -> Result<(), IpsecError> {
    let count =
        u8::try_from(ts.len()).map_err(|_| IpsecError::InvalidConfig("more than 255 selectors"))?;
    out.extend_from_slice(&[count, 0, 0, 0]);
    for t in ts {
        let (ty, len) = match t.addresses {
            AddressRange::V4(..) => (TsType::IPV4_ADDR_RANGE, 16u16),
            AddressRange::V6(..) => (TsType::IPV6_ADDR_RANGE, 40u16),
        };
        out.extend_from_slice(&[ty.0, t.ip_protocol]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&t.start_port.to_be_bytes());
        out.extend_from_slice(&t.end_port.to_be_bytes());
        match t.addresses {
            AddressRange::V4(s, e) => {
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&e.octets());
            }
            AddressRange::V6(s, e) => {
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&e.octets());
            }
        }
    }
    Ok(())
}
