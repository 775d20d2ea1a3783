//! Tuple-space index of "pure" static filters: the fast path of indexed classification.
//!
//! A filter is *pure* when its action is a static `PERMIT`/`BLOCK` and every condition group is a
//! single condition on one of the 5-tuple fields in an indexable form:
//!
//! * remote/local address: `EQUAL` to an address, or to an address-and-mask (any mask, any
//!   prefix length, IPv4 or IPv6);
//! * remote/local port: `EQUAL`, or an interval (`RANGE`, `>=`, `>`, `<=`, `<`) — at most one
//!   interval field per filter;
//! * protocol: `EQUAL`.
//!
//! For a pure filter, "the packet's masked 5-tuple equals the filter's key (and the interval
//! field lies in the filter's interval)" is *exactly* its condition test, so a bucket never
//! holds a candidate that has to be verified. Filters are grouped by *shape* (which fields, which
//! masks, which field is an interval): one hash table per shape, keyed by the masked values
//! (the classic tuple-space search). A classification does one hash probe per shape.
//!
//! Arbitration only ever reaches the first filter of each sublayer among static filters (a static
//! action always terminates its sublayer), so a bucket does not return its matches: it returns
//! their *count* (for [`crate::ClassifyResult::matched_filters`]) and its *heads*, the first
//! filter of each sublayer in evaluation order. Both are precomputed: eagerly for exact buckets
//! (small), lazily for interval buckets (an elementary-segment table over the port space with a
//! count and heads per segment, built on first use after a change). The cost of a
//! classification is therefore independent of how many filters match.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::classify::{Cand, Cands, CompiledFilter, Rank};
use crate::object::Action;
use crate::value::{Condition, FwpValue, IncomingValues, MatchType};
use crate::Field;

/// How a shape constrains an address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrShape {
    Any,
    /// IPv4 (`UINT32` incoming) under this mask.
    V4(u32),
    /// IPv6 (`BYTE_ARRAY16` incoming) under this mask.
    V6(u128),
}

/// How a shape constrains a port field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortShape {
    Any,
    Exact,
    Interval,
}

/// Which fields a group of filters tests and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    ra: AddrShape,
    la: AddrShape,
    rp: PortShape,
    lp: PortShape,
    proto: bool,
}

/// The masked exact values of a shape (interval fields and absent fields are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ra: u128,
    la: u128,
    rest: u64,
}

impl Hash for Key {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        let x = (self.ra as u64)
            ^ ((self.ra >> 64) as u64).rotate_left(23)
            ^ (self.la as u64).rotate_left(32)
            ^ ((self.la >> 64) as u64).rotate_left(47)
            ^ self.rest.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h.write_u64(x);
    }
}

/// A hasher for [`Key`]: one folded word, finished with the splitmix64 mixer (the low bits
/// of the result, which pick the hash-table slot, depend on every input bit).
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = self.0.rotate_left(29) ^ i;
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0 = self.0.rotate_left(29) ^ (i as u64) ^ ((i >> 64) as u64).rotate_left(37);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Where a pure filter lives: its shape, its key and its interval (if its shape has one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    shape: Shape,
    key: Key,
    interval: (u16, u16),
}

fn v6mask(prefix_len: u8) -> u128 {
    // exactly as `value::equal` masks a V6_ADDR_MASK
    if prefix_len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix_len.min(128)))
    }
}

/// The interval of ports an indexable port condition accepts; `None` if not an interval
/// condition on `UINT16` values, or if it accepts nothing.
fn port_interval(c: &Condition) -> Option<(u16, u16)> {
    let u16_of = |v: &FwpValue| match v {
        FwpValue::Uint16(p) => Some(*p),
        _ => None,
    };
    let (lo, hi) = match c.match_type {
        MatchType::Range => match &c.value {
            FwpValue::Range(r) => (u16_of(&r.0)?, u16_of(&r.1)?),
            _ => return None,
        },
        MatchType::GreaterOrEqual => (u16_of(&c.value)?, u16::MAX),
        MatchType::LessOrEqual => (0, u16_of(&c.value)?),
        MatchType::Greater => (u16_of(&c.value)?.checked_add(1)?, u16::MAX),
        MatchType::Less => (0, u16_of(&c.value)?.checked_sub(1)?),
        _ => return None,
    };
    (lo <= hi).then_some((lo, hi))
}

/// Whether `cf` is pure, and where it goes.
pub(crate) fn place(cf: &CompiledFilter) -> Option<Placement> {
    if !matches!(cf.filter.action, Action::Permit | Action::Block) {
        return None;
    }
    let mut shape = Shape {
        ra: AddrShape::Any,
        la: AddrShape::Any,
        rp: PortShape::Any,
        lp: PortShape::Any,
        proto: false,
    };
    let mut key = Key {
        ra: 0,
        la: 0,
        rest: 0,
    };
    let mut interval = (0u16, u16::MAX);
    let mut have_interval = false;
    for (field, conds) in &cf.groups {
        let [c] = conds.as_slice() else {
            return None;
        };
        let field = *field;
        if field == Field::IP_REMOTE_ADDRESS || field == Field::IP_LOCAL_ADDRESS {
            if c.match_type != MatchType::Equal {
                return None;
            }
            let (s, k) = match &c.value {
                FwpValue::Uint32(a) => (AddrShape::V4(u32::MAX), u128::from(*a)),
                FwpValue::V4AddrMask { addr, mask } => {
                    (AddrShape::V4(*mask), u128::from(addr & mask))
                }
                FwpValue::ByteArray16(a) => (AddrShape::V6(u128::MAX), u128::from_be_bytes(*a)),
                FwpValue::V6AddrMask { addr, prefix_len } => {
                    let m = v6mask(*prefix_len);
                    (AddrShape::V6(m), u128::from_be_bytes(*addr) & m)
                }
                _ => return None,
            };
            if field == Field::IP_REMOTE_ADDRESS {
                shape.ra = s;
                key.ra = k;
            } else {
                shape.la = s;
                key.la = k;
            }
        } else if field == Field::IP_REMOTE_PORT || field == Field::IP_LOCAL_PORT {
            let shift = if field == Field::IP_REMOTE_PORT {
                0
            } else {
                16
            };
            let s = match (c.match_type, &c.value) {
                (MatchType::Equal, FwpValue::Uint16(p)) => {
                    key.rest |= u64::from(*p) << shift;
                    PortShape::Exact
                }
                _ => {
                    if have_interval {
                        return None;
                    }
                    interval = port_interval(c)?;
                    have_interval = true;
                    PortShape::Interval
                }
            };
            if field == Field::IP_REMOTE_PORT {
                shape.rp = s;
            } else {
                shape.lp = s;
            }
        } else if field == Field::IP_PROTOCOL {
            match (c.match_type, &c.value) {
                (MatchType::Equal, FwpValue::Uint8(p)) => {
                    key.rest |= u64::from(*p) << 32;
                    shape.proto = true;
                }
                _ => return None,
            }
        } else {
            return None;
        }
    }
    Some(Placement {
        shape,
        key,
        interval,
    })
}

/// A sublayer's identity in evaluation order (sublayer weight, sublayer sequence).
#[inline]
fn sublayer_of(cf: &CompiledFilter) -> (u16, u32) {
    cf.order.sublayer()
}

/// A hash key: the compact form (`u128`) for IPv4/any-address shapes, [`Key`] otherwise.
trait TupleKey: Copy + Eq + Hash + std::fmt::Debug {
    fn make(ra: u128, la: u128, rest: u64) -> Self;
    /// From the compact IPv4 form (`make` of IPv4 values as one `u128`).
    fn from_compact(k: u128) -> Self;
}

impl TupleKey for u128 {
    #[inline]
    fn from_compact(k: u128) -> Self {
        k
    }
    #[inline]
    fn make(ra: u128, la: u128, rest: u64) -> Self {
        // ra, la < 2^32 here; rest < 2^40
        ra | (la << 32) | (u128::from(rest) << 64)
    }
}

impl TupleKey for Key {
    #[inline]
    fn from_compact(k: u128) -> Self {
        Key {
            ra: k & 0xFFFF_FFFF,
            la: (k >> 32) & 0xFFFF_FFFF,
            rest: (k >> 64) as u64,
        }
    }
    #[inline]
    fn make(ra: u128, la: u128, rest: u64) -> Self {
        Key { ra, la, rest }
    }
}

/// A filter's evaluation-order key with its decision bits ([`CompiledFilter::order`]).
type Order = Rank;

/// A head: a filter with its order key inline, so heads are compared without touching the
/// filter itself (at 100,000 filters every filter touched is a likely cache miss).
type Head = (Order, Arc<CompiledFilter>);

/// The heads of one set of matching filters (first of each sublayer, in evaluation order),
/// the first two inline so the common case touches no further memory.
#[derive(Debug, Clone, Default)]
struct Heads {
    count: u32,
    h0: Option<Head>,
    h1: Option<Head>,
    more: Box<[Head]>,
}

impl Heads {
    /// From filters in evaluation order (`count` = how many match in all).
    fn from_sorted<'a>(count: u32, sorted: impl Iterator<Item = &'a Arc<CompiledFilter>>) -> Heads {
        let mut hs: Vec<Head> = Vec::new();
        let mut prev = None;
        for cf in sorted {
            let s = sublayer_of(cf);
            if prev != Some(s) {
                hs.push((cf.order, cf.clone()));
                prev = Some(s);
            }
        }
        let mut it = hs.into_iter();
        Heads {
            count,
            h0: it.next(),
            h1: it.next(),
            more: it.collect(),
        }
    }

    #[inline]
    fn offer_to<'a>(&'a self, w: &mut Winners<'a>) -> usize {
        if let Some((o, h)) = &self.h0 {
            w.offer(*o, h);
            if let Some((o, h)) = &self.h1 {
                w.offer(*o, h);
                for (o, h) in self.more.iter() {
                    w.offer(*o, h);
                }
            }
        }
        self.count as usize
    }
}

/// The first pure filter of each sublayer seen so far (the only pure filters arbitration can
/// reach: a static action terminates its sublayer).
struct Winners<'a> {
    fixed: [Option<(Order, &'a CompiledFilter)>; 4],
    spill: Vec<(Order, &'a CompiledFilter)>,
}

impl<'a> Winners<'a> {
    fn new() -> Self {
        Winners {
            fixed: [None; 4],
            spill: Vec::new(),
        }
    }

    #[inline]
    fn offer(&mut self, o: Order, cf: &'a CompiledFilter) {
        for slot in &mut self.fixed {
            match slot {
                None => {
                    *slot = Some((o, cf));
                    return;
                }
                Some((so, scf)) => {
                    if so.sublayer() == o.sublayer() {
                        if o < *so {
                            *so = o;
                            *scf = cf;
                        }
                        return;
                    }
                }
            }
        }
        for (so, scf) in &mut self.spill {
            if so.sublayer() == o.sublayer() {
                if o < *so {
                    *so = o;
                    *scf = cf;
                }
                return;
            }
        }
        self.spill.push((o, cf));
    }

    /// Pushes the winners to `out` in evaluation order (sorted on the inline keys).
    fn push_to(&mut self, out: &mut Cands<'a>) {
        if self.spill.is_empty() {
            let n = self.fixed.iter().take_while(|s| s.is_some()).count();
            let fixed = self.fixed.get_mut(..n).unwrap_or_default();
            // one winner per sublayer, so the sublayer alone orders them (insertion sort:
            // n <= 4, usually 1 or 2)
            let key = |s: Option<&Option<(Order, &CompiledFilter)>>| {
                s.copied()
                    .flatten()
                    .map(|(o, _)| (u64::from(o.sw) << 32) | u64::from(o.seq))
            };
            for i in 1..fixed.len() {
                let mut j = i;
                while j > 0 && key(fixed.get(j)) < key(fixed.get(j - 1)) {
                    fixed.swap(j, j - 1);
                    j -= 1;
                }
            }
            for (rank, cf) in fixed.iter().flatten() {
                out.push(Cand { rank: *rank, cf });
            }
        } else {
            self.spill.extend(self.fixed.iter().flatten());
            self.spill.sort_unstable_by_key(|(o, _)| *o);
            for (rank, cf) in &self.spill {
                out.push(Cand { rank: *rank, cf });
            }
        }
    }
}

/// A bucket of a shape with an interval field: filters (unordered) with their intervals, and a
/// lazily built segment table.
#[derive(Debug, Clone, Default)]
struct Ranged {
    filters: Vec<(u16, u16, Arc<CompiledFilter>)>,
    table: OnceLock<SegmentTable>,
}

/// Elementary segments of the port space: within one segment the set of covering intervals is
/// constant, so its count and heads are precomputed.
#[derive(Debug, Clone, Default)]
struct SegmentTable {
    /// First port of each segment, ascending, `starts[0] == 0`.
    starts: Vec<u16>,
    /// Per segment: count and heads.
    segs: Vec<Heads>,
    /// `port >> 4` -> segment containing `port & !15` (only for large tables).
    dir: Vec<u32>,
    /// `port` -> its segment (only for very large tables: one dependent load, no scan;
    /// segments start at distinct ports, so an index fits in `u16`).
    full: Vec<u16>,
}

const DIR_SHIFT: u32 = 4;
const DIR_MIN_SEGMENTS: usize = 32;
const FULL_MIN_SEGMENTS: usize = 1024;

impl SegmentTable {
    fn build(filters: &[(u16, u16, Arc<CompiledFilter>)]) -> SegmentTable {
        let mut sorted: Vec<&(u16, u16, Arc<CompiledFilter>)> = filters.iter().collect();
        sorted.sort_unstable_by_key(|f| f.2.order);
        // runs of equal sublayer in rank space
        let mut runs: Vec<(u32, u32)> = Vec::new();
        let mut prev = None;
        for (r, f) in sorted.iter().enumerate() {
            let s = sublayer_of(&f.2);
            if prev != Some(s) {
                if let Some(last) = runs.last_mut() {
                    last.1 = r as u32;
                }
                runs.push((r as u32, sorted.len() as u32));
                prev = Some(s);
            }
        }
        // events: (position, is_add, rank); removals sort before additions at one position
        let mut events: Vec<(u32, bool, u32)> = Vec::with_capacity(filters.len() * 2);
        for (r, (lo, hi, _)) in sorted.iter().enumerate() {
            events.push((u32::from(*lo), true, r as u32));
            if *hi < u16::MAX {
                events.push((u32::from(*hi) + 1, false, r as u32));
            }
        }
        events.sort_unstable();
        let mut t = SegmentTable::default();
        let mut active: BTreeSet<u32> = BTreeSet::new();
        let mut e = 0;
        let mut pos = 0u32;
        loop {
            while let Some(&(p, add, r)) = events.get(e) {
                if p != pos {
                    break;
                }
                if add {
                    active.insert(r);
                } else {
                    active.remove(&r);
                }
                e += 1;
            }
            t.starts.push(pos as u16);
            let firsts = runs
                .iter()
                .filter_map(|&(a, b)| active.range(a..b).next())
                .filter_map(|&r| sorted.get(r as usize).map(|f| &f.2));
            t.segs.push(Heads::from_sorted(active.len() as u32, firsts));
            match events.get(e) {
                Some(&(p, _, _)) => pos = p,
                None => break,
            }
        }
        if t.starts.len() >= FULL_MIN_SEGMENTS {
            let mut seg = 0usize;
            t.full = (0..=u16::MAX)
                .map(|port| {
                    while t.starts.get(seg + 1).is_some_and(|&s| s <= port) {
                        seg += 1;
                    }
                    u16::try_from(seg).unwrap_or(u16::MAX)
                })
                .collect();
        } else if t.starts.len() >= DIR_MIN_SEGMENTS {
            let blocks = 1usize << (16 - DIR_SHIFT);
            t.dir = (0..blocks)
                .map(|b| {
                    let q = (b << DIR_SHIFT) as u16;
                    t.starts.partition_point(|&s| s <= q).saturating_sub(1) as u32
                })
                .collect();
        }
        t
    }

    /// The segment containing `port`.
    #[inline]
    fn find(&self, port: u16) -> Option<&Heads> {
        if let Some(&i) = self.full.get(usize::from(port)) {
            return self.segs.get(usize::from(i));
        }
        let i = match self.dir.get((port >> DIR_SHIFT) as usize) {
            Some(&d) => {
                let mut i = d as usize;
                while self.starts.get(i + 1).is_some_and(|&s| s <= port) {
                    i += 1;
                }
                i
            }
            None => self
                .starts
                .partition_point(|&s| s <= port)
                .saturating_sub(1),
        };
        self.segs.get(i)
    }
}

/// All pure filters of one shape.
#[derive(Debug, Clone)]
struct Tuple<K> {
    shape: Shape,
    /// Exact shapes: per key, the heads (the hot part, probed by classification) ...
    flat: KeyMap<K, Heads>,
    /// ... and the filters in evaluation order (touched only by insert/remove).
    members: KeyMap<K, Vec<Arc<CompiledFilter>>>,
    /// Interval shapes: per key, the filters and their segment table.
    ranged: KeyMap<K, Ranged>,
    /// Whether the interval (if any) is on the local port.
    interval_local: bool,
    /// Whether the shape has an interval field.
    has_interval: bool,
    /// IPv4/any-address shapes: the packet fields the shape needs ([`Packet::present`] bits)
    /// and the mask that turns a packet's [`Packet::key4`] into this shape's key.
    need: u8,
    mask4: u128,
    /// Whether the shape is probed through [`TupleIndex::ra32`] (see [`via_ra32`]) rather
    /// than by itself.
    via_ra32: bool,
    len: usize,
}

impl<K: TupleKey> Tuple<K> {
    fn new(shape: Shape) -> Self {
        Tuple {
            shape,
            flat: KeyMap::default(),
            members: KeyMap::default(),
            ranged: KeyMap::default(),
            interval_local: shape.lp == PortShape::Interval,
            has_interval: shape.lp == PortShape::Interval || shape.rp == PortShape::Interval,
            need: need_bits(&shape),
            mask4: mask4(&shape),
            via_ra32: via_ra32(&shape),
            len: 0,
        }
    }

    fn insert(&mut self, p: &Placement, cf: Arc<CompiledFilter>) {
        let key = K::make(p.key.ra, p.key.la, p.key.rest);
        self.len += 1;
        if self.has_interval {
            let b = self.ranged.entry(key).or_default();
            b.filters.push((p.interval.0, p.interval.1, cf));
            b.table = OnceLock::new();
        } else {
            let m = self.members.entry(key).or_default();
            let at = m.partition_point(|x| x.order < cf.order);
            m.insert(at, cf);
            self.flat
                .insert(key, Heads::from_sorted(m.len() as u32, m.iter()));
        }
    }

    /// Removes filter `id`; returns whether it was there.
    fn remove(&mut self, p: &Placement, id: u64) -> bool {
        let key = K::make(p.key.ra, p.key.la, p.key.rest);
        let mut removed = false;
        if let Some(b) = self.ranged.get_mut(&key) {
            if let Some(i) = b.filters.iter().position(|x| x.2.filter.id == id) {
                b.filters.swap_remove(i);
                b.table = OnceLock::new();
                removed = true;
            }
            if b.filters.is_empty() {
                self.ranged.remove(&key);
            }
        }
        if let Some(m) = self.members.get_mut(&key) {
            if let Some(i) = m.iter().position(|x| x.filter.id == id) {
                m.remove(i);
                removed = true;
            }
            if m.is_empty() {
                self.members.remove(&key);
                self.flat.remove(&key);
            } else {
                self.flat
                    .insert(key, Heads::from_sorted(m.len() as u32, m.iter()));
            }
        }
        if removed {
            self.len = self.len.saturating_sub(1);
        }
        removed
    }

    /// [`Tuple::lookup`] for an IPv4/any-address shape: the key is the packet's compact key
    /// under this shape's mask.
    #[inline(always)]
    fn lookup4<'a>(&'a self, pk: &Packet, w: &mut Winners<'a>) -> usize {
        if self.need & !pk.present != 0 {
            return 0;
        }
        let key = K::from_compact(pk.key4 & self.mask4);
        self.probe(key, pk, w)
    }

    #[inline(always)]
    fn probe<'a>(&'a self, key: K, pk: &Packet, w: &mut Winners<'a>) -> usize {
        if self.has_interval {
            let Some(b) = self.ranged.get(&key) else {
                return 0;
            };
            let Some(p) = (if self.interval_local { pk.lp } else { pk.rp }) else {
                return 0;
            };
            let table = b.table.get_or_init(|| SegmentTable::build(&b.filters));
            match table.find(p) {
                Some(h) => h.offer_to(w),
                None => 0,
            }
        } else {
            match self.flat.get(&key) {
                Some(h) => h.offer_to(w),
                None => 0,
            }
        }
    }

    #[inline]
    fn lookup<'a>(&'a self, pk: &Packet, w: &mut Winners<'a>) -> usize {
        let s = &self.shape;
        let Some(kra) = masked(s.ra, pk.ra) else {
            return 0;
        };
        let Some(kla) = masked(s.la, pk.la) else {
            return 0;
        };
        let mut rest = 0u64;
        for (ps, pv, shift) in [(s.rp, pk.rp, 0), (s.lp, pk.lp, 16)] {
            match (ps, pv) {
                (PortShape::Any, _) => {}
                (_, None) => return 0,
                (PortShape::Exact, Some(p)) => rest |= u64::from(p) << shift,
                (PortShape::Interval, Some(_)) => {}
            }
        }
        if s.proto {
            match pk.proto {
                Some(p) => rest |= u64::from(p) << 32,
                None => return 0,
            }
        }
        self.probe(K::make(kra, kla, rest), pk, w)
    }
}

/// The tuple-space index of the pure filters of one layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct TupleIndex {
    /// Shapes whose addresses are IPv4 or absent (compact keys).
    v4: Vec<Tuple<u128>>,
    /// The first level for the shapes keyed on an exact IPv4 remote address (and nothing
    /// else but exact ports and protocol, see [`via_ra32`]): per remote address, the
    /// [`ra_tag`]s of its keys in those shapes. One probe on the packet's remote address
    /// replaces one probe per such shape; a tag that matches the packet names the shape
    /// (by its `need` bits) and key whose heads apply.
    ra32: KeyMap<u32, crate::InlineVec<u64, 2>>,
    /// Whether `ra32` is probed instead of its shapes: only when it replaces at least two
    /// probes (with one such shape, probing the shape itself is as cheap and touches less).
    ra32_on: bool,
    /// Shapes with an IPv6 address.
    v6: Vec<Tuple<Key>>,
}

/// A packet's address value as the index sees it.
#[derive(Clone, Copy)]
enum PAddr {
    None,
    V4(u32),
    V6(u128),
}

/// The index fields of a packet.
struct Packet {
    ra: PAddr,
    la: PAddr,
    rp: Option<u16>,
    lp: Option<u16>,
    proto: Option<u8>,
    /// `P_*` bits: which fields are present (addresses: as IPv4).
    present: u8,
    /// The IPv4 fields in the compact key layout ([`TupleKey::make`] for `u128`), absent
    /// fields 0.
    key4: u128,
}

const P_RA4: u8 = 1;
const P_LA4: u8 = 2;
const P_RP: u8 = 4;
const P_LP: u8 = 8;
const P_PROTO: u8 = 16;

/// The port and protocol bits of a compact key (`rest`).
const REST_BITS: u64 = (1 << 40) - 1;

/// Whether a shape is served by [`TupleIndex::ra32`]: an exact IPv4 remote address, no local
/// address, no interval (so its key is the address plus the exact ports and protocol its
/// [`need_bits`] name).
fn via_ra32(s: &Shape) -> bool {
    s.ra == AddrShape::V4(u32::MAX)
        && s.la == AddrShape::Any
        && s.rp != PortShape::Interval
        && s.lp != PortShape::Interval
}

/// A key of a [`via_ra32`] shape without its address: the shape's `need` bits over the
/// key's `rest` (ports and protocol).
fn ra_tag(p: &Placement) -> u64 {
    (u64::from(need_bits(&p.shape)) << 40) | (p.key.rest & REST_BITS)
}

/// The `rest` bits a [`via_ra32`] shape with these `need` bits keys on.
#[inline]
fn rest_mask(need: u8) -> u64 {
    let mut m = 0;
    if need & P_RP != 0 {
        m |= 0xFFFF;
    }
    if need & P_LP != 0 {
        m |= 0xFFFF << 16;
    }
    if need & P_PROTO != 0 {
        m |= 0xFF << 32;
    }
    m
}

/// The [`Packet::present`] bits an IPv4/any-address shape needs.
fn need_bits(s: &Shape) -> u8 {
    let mut n = 0;
    if s.ra != AddrShape::Any {
        n |= P_RA4;
    }
    if s.la != AddrShape::Any {
        n |= P_LA4;
    }
    if s.rp != PortShape::Any {
        n |= P_RP;
    }
    if s.lp != PortShape::Any {
        n |= P_LP;
    }
    if s.proto {
        n |= P_PROTO;
    }
    n
}

/// The mask of an IPv4/any-address shape over [`Packet::key4`] (interval fields are not part
/// of the key).
fn mask4(s: &Shape) -> u128 {
    let a = |x: AddrShape| match x {
        AddrShape::V4(m) => u128::from(m),
        _ => 0,
    };
    let p = |x: PortShape| -> u64 {
        match x {
            PortShape::Exact => 0xFFFF,
            _ => 0,
        }
    };
    let proto: u64 = if s.proto { 0xFF } else { 0 };
    a(s.ra) | (a(s.la) << 32) | (u128::from(p(s.rp) | (p(s.lp) << 16) | (proto << 32)) << 64)
}

#[inline]
fn masked(s: AddrShape, a: PAddr) -> Option<u128> {
    match (s, a) {
        (AddrShape::Any, _) => Some(0),
        (AddrShape::V4(m), PAddr::V4(x)) => Some(u128::from(x & m)),
        (AddrShape::V6(m), PAddr::V6(x)) => Some(x & m),
        _ => None,
    }
}

fn is_v6(s: &Shape) -> bool {
    matches!(s.ra, AddrShape::V6(_)) || matches!(s.la, AddrShape::V6(_))
}

impl TupleIndex {
    pub fn insert(&mut self, p: Placement, cf: Arc<CompiledFilter>) {
        if is_v6(&p.shape) {
            insert_into(&mut self.v6, &p, cf);
        } else {
            insert_into(&mut self.v4, &p, cf);
            if via_ra32(&p.shape) {
                let tag = ra_tag(&p);
                let tags = self.ra32.entry(p.key.ra as u32).or_default();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            self.ra32_on = self.v4.iter().filter(|t| t.via_ra32).count() >= 2;
        }
    }

    pub fn remove(&mut self, p: Placement, id: u64) {
        if is_v6(&p.shape) {
            remove_from(&mut self.v6, &p, id);
        } else {
            remove_from(&mut self.v4, &p, id);
            if via_ra32(&p.shape) {
                let key = u128::make(p.key.ra, p.key.la, p.key.rest);
                let still = self
                    .v4
                    .iter()
                    .any(|t| t.shape == p.shape && t.flat.contains_key(&key));
                let ra = p.key.ra as u32;
                if !still {
                    let tag = ra_tag(&p);
                    if let Some(tags) = self.ra32.get_mut(&ra) {
                        *tags = tags.iter().copied().filter(|&t| t != tag).collect();
                        if tags.is_empty() {
                            self.ra32.remove(&ra);
                        }
                    }
                }
            }
            self.ra32_on = self.v4.iter().filter(|t| t.via_ra32).count() >= 2;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Pushes the first matching pure filter of each sublayer to `out` (in evaluation order) and returns
    /// how many pure filters match; `None` if an index field of the packet holds a value of a type the index
    /// does not reason about (the caller then scans).
    pub fn lookup<'a>(&'a self, v: &IncomingValues, out: &mut Cands<'a>) -> Option<usize> {
        let addr = |f: Field| match v.get(f) {
            FwpValue::Empty => Some(PAddr::None),
            FwpValue::Uint32(a) => Some(PAddr::V4(*a)),
            FwpValue::ByteArray16(a) => Some(PAddr::V6(u128::from_be_bytes(*a))),
            _ => None,
        };
        let port = |f: Field| match v.get(f) {
            FwpValue::Empty => Some(None),
            FwpValue::Uint16(p) => Some(Some(*p)),
            _ => None,
        };
        let ra = addr(Field::IP_REMOTE_ADDRESS)?;
        let la = addr(Field::IP_LOCAL_ADDRESS)?;
        let rp = port(Field::IP_REMOTE_PORT)?;
        let lp = port(Field::IP_LOCAL_PORT)?;
        let proto = match v.get(Field::IP_PROTOCOL) {
            FwpValue::Empty => None,
            FwpValue::Uint8(p) => Some(*p),
            _ => return None,
        };
        let v4 = |a: PAddr| match a {
            PAddr::V4(x) => (true, u128::from(x)),
            _ => (false, 0),
        };
        let ((has_ra, ra4), (has_la, la4)) = (v4(ra), v4(la));
        let present = (u8::from(has_ra) * P_RA4)
            | (u8::from(has_la) * P_LA4)
            | (u8::from(rp.is_some()) * P_RP)
            | (u8::from(lp.is_some()) * P_LP)
            | (u8::from(proto.is_some()) * P_PROTO);
        let rest = u64::from(rp.unwrap_or(0))
            | (u64::from(lp.unwrap_or(0)) << 16)
            | (u64::from(proto.unwrap_or(0)) << 32);
        let pk = Packet {
            ra,
            la,
            rp,
            lp,
            proto,
            present,
            key4: ra4 | (la4 << 32) | (u128::from(rest) << 64),
        };
        let mut count = 0usize;
        let mut w = Winners::new();
        let ra32_on = self.ra32_on;
        for t in &self.v4 {
            if !(ra32_on && t.via_ra32) {
                count += t.lookup4(&pk, &mut w);
            }
        }
        if ra32_on && pk.present & P_RA4 != 0 {
            let ra = pk.key4 as u32;
            if let Some(tags) = self.ra32.get(&ra) {
                let rest = (pk.key4 >> 64) as u64;
                for &tag in tags.iter() {
                    let need = (tag >> 40) as u8;
                    if need & !pk.present != 0 || rest & rest_mask(need) != tag & REST_BITS {
                        continue;
                    }
                    let key = u128::from(ra) | (u128::from(tag & REST_BITS) << 64);
                    if let Some(t) = self.v4.iter().find(|t| t.via_ra32 && t.need == need) {
                        count += t.probe(key, &pk, &mut w);
                    }
                }
            }
        }
        for t in &self.v6 {
            count += t.lookup(&pk, &mut w);
        }
        w.push_to(out);
        Some(count)
    }
}

fn insert_into<K: TupleKey>(tuples: &mut Vec<Tuple<K>>, p: &Placement, cf: Arc<CompiledFilter>) {
    let i = match tuples.iter().position(|t| t.shape == p.shape) {
        Some(i) => i,
        None => {
            tuples.push(Tuple::new(p.shape));
            tuples.len() - 1
        }
    };
    if let Some(t) = tuples.get_mut(i) {
        t.insert(p, cf);
    }
}

fn remove_from<K: TupleKey>(tuples: &mut Vec<Tuple<K>>, p: &Placement, id: u64) {
    if let Some(i) = tuples.iter().position(|t| t.shape == p.shape) {
        if let Some(t) = tuples.get_mut(i) {
            t.remove(p, id);
            if t.len == 0 {
                tuples.swap_remove(i);
            }
        }
    }
}
