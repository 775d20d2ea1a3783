//! The smoltcp device of a host core: two queues. What the wire delivered waits in `rx` for the
//! interface; what the interface emits lands in `tx` for the egress stages.
//!
//! Packet buffers come from a small pool: the interface writes each packet it emits into a
//! reused buffer behind room for the GRE header (so clear-path encapsulation moves no byte), a
//! packet the interface has consumed gives its buffer back, and so do the datagrams the driver
//! has sent ([`super::HostCore::recycle`]). A bulk transfer allocates nothing per packet.

use std::cell::RefCell;
use std::collections::VecDeque;

use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium};

use crate::wire::GRE_HEADER_LEN;

/// The pool keeps at most this many bytes of buffer capacity (a constant per host, whatever the
/// number of connections).
const POOL_BYTES: usize = 2 << 20;

/// Free packet buffers, each with room for an MTU-sized packet behind a GRE header.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
    /// The capacity every pooled buffer has.
    capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(mtu: usize) -> BufferPool {
        BufferPool {
            free: RefCell::new(Vec::new()),
            capacity: mtu + GRE_HEADER_LEN,
        }
    }

    /// An empty buffer with room for `len` bytes (and a GRE header when `len` fits the MTU).
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut b = self.take_dirty();
        b.clear();
        b.reserve(len + GRE_HEADER_LEN);
        b
    }

    /// A buffer of exactly `len` bytes whose contents are left from its last use, except the
    /// first `clean` bytes, which are zero (for a writer that fills every byte after them).
    fn take_sized(&self, len: usize, clean: usize) -> Vec<u8> {
        let mut b = self.take_dirty();
        if b.len() < len {
            b.resize(len, 0);
        } else {
            b.truncate(len);
        }
        b[..clean.min(len)].fill(0);
        b
    }

    fn take_dirty(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Gives a buffer back (kept only while the pool is under its byte budget).
    pub(crate) fn give(&self, buf: Vec<u8>) {
        if buf.capacity() < self.capacity || buf.capacity() > 2 * self.capacity {
            return;
        }
        let mut free = self.free.borrow_mut();
        if (free.len() + 1) * self.capacity <= POOL_BYTES {
            free.push(buf);
        }
    }
}

pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: Vec<Vec<u8>>,
    pub(crate) mtu: usize,
    pub(crate) pool: BufferPool,
}

impl QueueDevice {
    pub(crate) fn new(mtu: usize) -> QueueDevice {
        QueueDevice {
            rx: VecDeque::new(),
            tx: Vec::new(),
            mtu,
            pool: BufferPool::new(mtu),
        }
    }
}

pub(crate) struct RxTok<'a>(Vec<u8>, &'a BufferPool);
pub(crate) struct TxTok<'a>(&'a mut Vec<Vec<u8>>, &'a BufferPool);

impl smoltcp::phy::RxToken for RxTok<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.0);
        self.1.give(self.0);
        r
    }
}

/// Room left in front of every packet the interface emits, for the GRE header.
pub(crate) const HEADROOM: usize = GRE_HEADER_LEN;

impl smoltcp::phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp writes every byte of the payload it emits; headers (IPv6 40 + TCP 60 bytes at
        // most, where option padding may be skipped) start zeroed, so no byte of an earlier
        // packet leaves again.
        let mut buf = self.1.take_sized(HEADROOM + len, HEADROOM + 128);
        let r = f(&mut buf[HEADROOM..]);
        self.0.push(buf);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = RxTok<'a>;
    type TxToken<'a> = TxTok<'a>;
    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(RxTok<'_>, TxTok<'_>)> {
        let p = self.rx.pop_front()?;
        Some((RxTok(p, &self.pool), TxTok(&mut self.tx, &self.pool)))
    }
    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<TxTok<'_>> {
        Some(TxTok(&mut self.tx, &self.pool))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        // The packet path verifies every TCP and UDP checksum before ALE sees a packet
        // (`wire::transport_checksum_ok`, IPv6 extension headers included), so the interface
        // only computes them; IP header and ICMP checksums it still verifies.
        c.checksum.tcp = Checksum::Tx;
        c.checksum.udp = Checksum::Tx;
        c
    }
}
