//! Capture of what crosses the wire, as a classic pcap file (LINKTYPE_RAW) that stock tshark and
//! Wireshark open. Each datagram is written with a synthesized IPv4/IPv6 + UDP header carrying the
//! real wire endpoints, so decode-as rules on the UDP ports apply.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// LINKTYPE_RAW: each record is a raw IPv4 or IPv6 packet.
const LINKTYPE_RAW: u32 = 101;

/// A pcap file being written. Cheap to share behind an `Arc`.
pub struct Capture {
    out: Mutex<BufWriter<File>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture")
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds the synthesized IP + UDP packet for one wire datagram.
pub fn frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&(udp_len.min(65535) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // checksum 0: "not computed" (IPv4); see below for IPv6
    udp.extend_from_slice(payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + udp_len).min(65535) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = ipv4_checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(&udp);
            h
        }
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V4(v) => v.to_ipv6_mapped(),
                IpAddr::V6(v) => v,
            };
            let (s, d) = (to6(s), to6(d));
            // IPv6 requires a UDP checksum.
            let mut sum: u32 = 0;
            for chunk in s.octets().chunks(2).chain(d.octets().chunks(2)) {
                sum += u32::from(u16::from_be_bytes([chunk[0], chunk[1]]));
            }
            sum += udp_len as u32 + 17;
            for c in udp.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            let mut c = !(sum as u16);
            if c == 0 {
                c = 0xffff;
            }
            udp[6..8].copy_from_slice(&c.to_be_bytes());
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(udp_len.min(65535) as u16).to_be_bytes());
            h.extend_from_slice(&[17, 64]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h.extend_from_slice(&udp);
            h
        }
    }
}

impl Capture {
    /// Creates (truncates) a pcap file.
    ///
    /// # Errors
    /// The I/O error of creating the file or writing its header.
    pub fn create(path: &Path) -> std::io::Result<Capture> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&LINKTYPE_RAW.to_le_bytes())?;
        Ok(Capture {
            out: Mutex::new(out),
        })
    }

    /// Records one UDP datagram that crossed the wire from `src` to `dst`.
    pub fn record(&self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let pkt = frame(src, dst, payload);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let len = pkt.len() as u32;
        let res = (|| {
            out.write_all(&(now.as_secs() as u32).to_le_bytes())?;
            out.write_all(&now.subsec_micros().to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&pkt)
        })();
        if let Err(e) = res {
            tracing::warn!(target: "wsock::stack", error = %e, "capture write failed");
        }
    }

    /// Flushes buffered records to the file.
    ///
    /// # Errors
    /// The I/O error of the flush.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut g) => g.flush(),
            Err(p) => p.into_inner().flush(),
        }
    }
}
