//! Classification: compiled filters, the per-layer index, the linear reference scan and the
//! arbitration algorithm (reference §3.5).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::object::{filter_flags, Action, Filter, Lifetime};
use crate::tuple::{place, TupleIndex};
use crate::value::{Condition, FwpValue, IncomingValues, MatchType};
use crate::{Field, Guid, Layer};

/// Permit or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Traffic passes.
    Permit,
    /// Traffic is discarded.
    Block,
}

/// Which filter produced a decision: its id plus what classification knows without reading
/// the filter itself. The rest (`filterKey`, display name, provider context, `rawContext`) is
/// resolved through the engine: [`crate::Engine::resolve_filter`] (what net events and ALE do
/// to name the filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterRef {
    /// `filterId`.
    pub id: u64,
    /// Layer.
    pub layer: Layer,
    /// Sublayer key.
    pub sublayer: Guid,
    /// The filter's action.
    pub action: Action,
}

/// Per-sublayer results of one classification (up to two inline, without allocating).
pub type SublayerResults = crate::InlineVec<SublayerResult, 2>;

/// The terminating decision of one sublayer (like `terminatingFiltersInfo` of a net event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SublayerResult {
    /// Sublayer key.
    pub sublayer: Guid,
    /// The sublayer's decision.
    pub decision: Decision,
    /// Whether the write right was cleared (hard decision).
    pub hard: bool,
    /// The filter that decided within the sublayer.
    pub filter_id: u64,
}

/// A veto: a block returned (by a callout) after a higher sublayer made a hard permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto {
    /// The hard-permit filter that was overridden.
    pub vetoed_filter_id: u64,
    /// The filter whose callout vetoed.
    pub vetoing: FilterRef,
}

/// The result of one classification at one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifyResult {
    /// Layer classified.
    pub layer: Layer,
    /// Final decision (`Permit` when nothing matched: WFP is default-permit).
    pub decision: Decision,
    /// Whether the final decision is hard (write right cleared).
    pub hard: bool,
    /// The filter whose decision stands; `None` when no sublayer decided (default permit).
    pub decided_by: Option<FilterRef>,
    /// Set when a callout vetoed a hard permit.
    pub veto: Option<Veto>,
    /// Per-sublayer terminating decisions, in evaluation order.
    pub sublayer_results: SublayerResults,
    /// Number of filters whose conditions matched (including inspection callouts).
    pub matched_filters: usize,
}

impl ClassifyResult {
    /// Whether traffic is permitted.
    pub fn is_permit(&self) -> bool {
        self.decision == Decision::Permit
    }
    /// Whether traffic is blocked.
    pub fn is_block(&self) -> bool {
        self.decision == Decision::Block
    }
}

/// What a callout's classify returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalloutAction {
    /// `FWP_ACTION_PERMIT`.
    Permit,
    /// `FWP_ACTION_BLOCK`.
    Block,
    /// `FWP_ACTION_CONTINUE`: let lower-weight filters decide.
    Continue,
}

/// A callout's classify result (`FWPS_CLASSIFY_OUT0`, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalloutVerdict {
    /// The action.
    pub action: CalloutAction,
    /// Whether the callout cleared `FWPS_RIGHT_ACTION_WRITE` (makes its decision hard).
    pub clear_write_right: bool,
}

impl CalloutVerdict {
    /// Continue.
    pub const CONTINUE: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Continue,
        clear_write_right: false,
    };
    /// Soft permit.
    pub const PERMIT: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Permit,
        clear_write_right: false,
    };
    /// Soft block (write right left set).
    pub const BLOCK: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Block,
        clear_write_right: false,
    };
    /// Hard block (write right cleared).
    pub const HARD_BLOCK: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Block,
        clear_write_right: true,
    };
}

/// What a callout is told when it is asked to classify.
#[derive(Debug)]
pub struct CalloutClassify<'a> {
    /// The layer.
    pub layer: Layer,
    /// Incoming values.
    pub values: &'a IncomingValues,
    /// The filter that invoked the callout.
    pub filter: &'a Filter,
    /// Whether `FWPS_RIGHT_ACTION_WRITE` is currently set (a higher sublayer has not made a
    /// hard decision).
    pub write_right: bool,
}

/// Notifications delivered to a callout's `notify` (`notifyFn`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CalloutNotification {
    /// A filter that invokes this callout was added.
    FilterAdded {
        /// Filter id.
        filter_id: u64,
        /// Filter key.
        filter_key: Guid,
    },
    /// A filter that invokes this callout was deleted.
    FilterDeleted {
        /// Filter id.
        filter_id: u64,
        /// Filter key.
        filter_key: Guid,
    },
    /// This callout vetoed a hard permit (a configuration conflict).
    Veto {
        /// Layer.
        layer: Layer,
        /// The overridden hard-permit filter.
        vetoed_filter_id: u64,
        /// The filter that invoked this callout.
        vetoing_filter_id: u64,
    },
}

/// An in-process callout (the `FwpsCalloutRegister` half): Rust code that classifies.
///
/// Implementations must be deterministic for a given input if the indexed and linear
/// classifiers are to agree (both call the callout in the same order).
pub trait Callout: Send + Sync {
    /// Classifies; inspection callouts should return [`CalloutVerdict::CONTINUE`] (anything else
    /// is treated as continue for `FWP_ACTION_CALLOUT_INSPECTION` filters).
    fn classify(&self, ctx: &CalloutClassify<'_>) -> CalloutVerdict;
    /// Receives notifications (filter add/delete, veto). Default: ignore.
    fn notify(&self, _event: &CalloutNotification) {}
}

/// `Rank::hot`: the filter has a static action (`PERMIT`/`BLOCK`); the other bits are valid.
pub(crate) const HOT_STATIC: u8 = 1;
/// `Rank::hot`: static `BLOCK` (else static `PERMIT`).
pub(crate) const HOT_BLOCK: u8 = 2;
/// `Rank::hot`: the static decision is hard (block, or permit with `CLEAR_ACTION_RIGHT`).
pub(crate) const HOT_HARD: u8 = 4;

/// A filter's evaluation-order key plus what arbitration needs to know about a static filter,
/// in 24 bytes: kept inline wherever filters are collected, so arbitration reaches a decision
/// without touching the (cold, large) [`CompiledFilter`].
///
/// Ascending = evaluation order: (sublayer weight desc, sublayer sequence, effective weight
/// desc, filter id). `hot` comes last and never decides a comparison (ids are unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rank {
    /// `u16::MAX - sublayer weight`.
    pub sw: u16,
    /// Sublayer sequence (unique per sublayer within a store).
    pub seq: u32,
    /// `u64::MAX - effective weight`.
    pub w: u64,
    /// Filter id.
    pub id: u64,
    /// `HOT_*` bits.
    pub hot: u8,
}

impl Rank {
    /// The sublayer's identity in evaluation order.
    #[inline]
    pub fn sublayer(&self) -> (u16, u32) {
        (self.sw, self.seq)
    }
}

/// A matching filter as arbitration sees it: its rank (with the static-decision bits) and the
/// filter itself (read only for callout filters, the final `decided_by` and the reference path).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand<'a> {
    pub rank: Rank,
    pub cf: &'a CompiledFilter,
}

impl<'a> Cand<'a> {
    /// With the static-decision bits (the indexed path).
    #[inline]
    pub fn of(cf: &'a CompiledFilter) -> Self {
        Cand { rank: cf.order, cf }
    }
    /// Without them: arbitration reads everything from the filter (the reference path).
    #[inline]
    pub fn slow(cf: &'a CompiledFilter) -> Self {
        Cand {
            rank: Rank { hot: 0, ..cf.order },
            cf,
        }
    }

    /// The filter's [`FilterRef`]: from the inline bits for a static filter (no read of the
    /// filter), else from the filter.
    #[inline]
    fn to_ref(self, layer: Layer, sublayer: Guid) -> FilterRef {
        let hot = self.rank.hot;
        let action = if hot & HOT_STATIC != 0 {
            if hot & HOT_BLOCK != 0 {
                Action::Block
            } else {
                Action::Permit
            }
        } else {
            self.cf.filter.action
        };
        FilterRef {
            id: self.rank.id,
            layer,
            sublayer,
            action,
        }
    }
}

/// The matching filters a lookup hands to arbitration (a few inline, without allocating).
pub(crate) type Cands<'a> = crate::InlineVec<Cand<'a>, 4>;

/// A filter prepared for classification.
#[derive(Debug)]
pub(crate) struct CompiledFilter {
    pub filter: Filter,
    pub groups: Vec<(Field, Vec<Condition>)>,
    /// Sort key: ascending = evaluation order.
    pub order: Rank,
    pub lifetime: Lifetime,
}

impl CompiledFilter {
    pub fn new(
        filter: Filter,
        sublayer_weight: u16,
        sublayer_seq: u32,
        lifetime: Lifetime,
    ) -> Self {
        let mut groups: BTreeMap<Field, Vec<Condition>> = BTreeMap::new();
        for c in &filter.conditions {
            groups.entry(c.field).or_default().push(c.clone());
        }
        let hot = match filter.action {
            Action::Block => HOT_STATIC | HOT_BLOCK | HOT_HARD,
            Action::Permit if filter.flags & filter_flags::CLEAR_ACTION_RIGHT != 0 => {
                HOT_STATIC | HOT_HARD
            }
            Action::Permit => HOT_STATIC,
            _ => 0,
        };
        let order = Rank {
            sw: u16::MAX - sublayer_weight,
            seq: sublayer_seq,
            w: u64::MAX - filter.effective_weight,
            id: filter.id,
            hot,
        };
        CompiledFilter {
            filter,
            groups: groups.into_iter().collect(),
            order,
            lifetime,
        }
    }

    #[inline]
    pub fn matches(&self, v: &IncomingValues) -> bool {
        self.groups.iter().all(|(f, cs)| {
            let x = v.get(*f);
            cs.iter().any(|c| c.matches(x))
        })
    }
}

/// FxHash: fast, deterministic, non-cryptographic (keys here are filter operands, not
/// attacker-chosen at classify time).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);
impl Fx {
    #[inline]
    fn add(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i.into())
    }
    fn write_u16(&mut self, i: u16) {
        self.add(i.into())
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i.into())
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    fn finish(&self) -> u64 {
        // the multiply leaves the low bits (which pick the hash-table slot) depending only on
        // the low input bits; prefix keys have zero low bits, so rotate the high bits down
        self.0.rotate_left(26)
    }
}
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
type Bucket = Vec<Arc<CompiledFilter>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IKey {
    Exact4(u8, u32),
    Prefix4(u8, u8, u32),
    Exact6(u8, u128),
    Prefix6(u8, u8, u128),
    Port(u8, u16),
    PortRange(u8, u8, u8),
    Proto(u8),
}

const PORT_RANGE_MAX_BUCKETS: u16 = 16;

fn v6mask(p: u8) -> u128 {
    if p == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(p.min(128)))
    }
}

/// Index keys of one condition, with a selectivity score; `None` if not indexable.
fn cond_key(field: Field, c: &Condition) -> Option<(u32, IKey)> {
    let f = field.0;
    let is_addr = field == Field::IP_REMOTE_ADDRESS || field == Field::IP_LOCAL_ADDRESS;
    let is_port = field == Field::IP_REMOTE_PORT || field == Field::IP_LOCAL_PORT;
    match (c.match_type, &c.value) {
        (MatchType::Equal, FwpValue::Uint32(a)) if is_addr => Some((100, IKey::Exact4(f, *a))),
        (MatchType::Equal, FwpValue::V4AddrMask { addr, mask }) if is_addr => {
            let p = mask.leading_ones() as u8;
            Some((
                (40 + u32::from(p) * 2).min(99),
                IKey::Prefix4(f, p, addr & mask),
            ))
        }
        (MatchType::Equal, FwpValue::ByteArray16(a)) if is_addr => {
            Some((100, IKey::Exact6(f, u128::from_be_bytes(*a))))
        }
        (MatchType::Equal, FwpValue::V6AddrMask { addr, prefix_len }) if is_addr => {
            let p = (*prefix_len).min(128);
            Some((
                u32::from(p) * 3 / 4,
                IKey::Prefix6(f, p, u128::from_be_bytes(*addr) & v6mask(p)),
            ))
        }
        (MatchType::Equal, FwpValue::Uint16(p)) if is_port => Some((60, IKey::Port(f, *p))),
        (MatchType::Range, FwpValue::Range(r)) if is_port => match (&r.0, &r.1) {
            (FwpValue::Uint16(lo), FwpValue::Uint16(hi)) if lo <= hi => {
                let (bl, bh) = (lo >> 8, hi >> 8);
                (bh - bl < PORT_RANGE_MAX_BUCKETS)
                    .then_some((30, IKey::PortRange(f, bl as u8, bh as u8)))
            }
            _ => None,
        },
        (MatchType::Equal, FwpValue::Uint8(p)) if field == Field::IP_PROTOCOL => {
            Some((5, IKey::Proto(*p)))
        }
        _ => None,
    }
}

fn choose_keys(cf: &CompiledFilter) -> Option<Vec<IKey>> {
    let mut best: Option<(u32, Vec<IKey>)> = None;
    for (field, conds) in &cf.groups {
        let mut keys = Vec::with_capacity(conds.len());
        let mut score = u32::MAX;
        for c in conds {
            let (s, k) = cond_key(*field, c)?;
            score = score.min(s);
            keys.push(k);
        }
        // an OR group of many keys is less selective
        let score = score.saturating_sub(keys.len() as u32 - 1);
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, keys));
        }
    }
    best.filter(|(s, _)| *s >= 5).map(|(_, k)| k)
}

/// The per-layer filter store and index.
///
/// Pure static filters (see [`crate::tuple`]) live in the tuple-space index, which yields match
/// counts and per-sublayer heads without visiting each match; the rest (callouts, OR groups,
/// other fields and match types) live in the candidate index below, whose buckets are verified
/// filter by filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerIndex {
    pub all: BTreeMap<u64, Arc<CompiledFilter>>,
    pure: TupleIndex,
    exact4: FxMap<(u8, u32), Bucket>,
    prefix4: Vec<(u8, u8, FxMap<u32, Bucket>)>,
    exact6: FxMap<(u8, u128), Bucket>,
    prefix6: Vec<(u8, u8, FxMap<u128, Bucket>)>,
    port: FxMap<(u8, u16), Bucket>,
    port_range: Vec<(u8, Vec<Bucket>)>,
    proto: FxMap<u8, Bucket>,
    unindexed: Bucket,
    /// Number of filters in the candidate index.
    impure: usize,
    /// Sublayer keys of the filters ever inserted.
    pub sublayers: SublayerKeys,
}

impl LayerIndex {
    fn buckets_for(&mut self, k: IKey) -> Vec<&mut Bucket> {
        match k {
            IKey::Exact4(f, a) => vec![self.exact4.entry((f, a)).or_default()],
            IKey::Exact6(f, a) => vec![self.exact6.entry((f, a)).or_default()],
            IKey::Port(f, p) => vec![self.port.entry((f, p)).or_default()],
            IKey::Proto(p) => vec![self.proto.entry(p).or_default()],
            IKey::Prefix4(f, p, a) => {
                let i = match self
                    .prefix4
                    .iter()
                    .position(|(ff, pp, _)| *ff == f && *pp == p)
                {
                    Some(i) => i,
                    None => {
                        self.prefix4.push((f, p, FxMap::default()));
                        // longest prefixes first (not required for correctness)
                        self.prefix4.sort_by(|a, b| (a.0, b.1).cmp(&(b.0, a.1)));
                        self.prefix4
                            .iter()
                            .position(|(ff, pp, _)| *ff == f && *pp == p)
                            .unwrap_or(0)
                    }
                };
                vec![self.prefix4[i].2.entry(a).or_default()]
            }
            IKey::Prefix6(f, p, a) => {
                let i = match self
                    .prefix6
                    .iter()
                    .position(|(ff, pp, _)| *ff == f && *pp == p)
                {
                    Some(i) => i,
                    None => {
                        self.prefix6.push((f, p, FxMap::default()));
                        self.prefix6.len() - 1
                    }
                };
                vec![self.prefix6[i].2.entry(a).or_default()]
            }
            IKey::PortRange(f, lo, hi) => {
                let i = match self.port_range.iter().position(|(ff, _)| *ff == f) {
                    Some(i) => i,
                    None => {
                        self.port_range.push((f, vec![Vec::new(); 256]));
                        self.port_range.len() - 1
                    }
                };
                self.port_range[i].1[lo as usize..=hi as usize]
                    .iter_mut()
                    .collect()
            }
        }
    }

    pub fn insert(&mut self, cf: Arc<CompiledFilter>) {
        self.sublayers.note(&cf);
        self.all.insert(cf.filter.id, cf.clone());
        if let Some(p) = place(&cf) {
            self.pure.insert(p, cf);
            return;
        }
        self.impure += 1;
        match choose_keys(&cf) {
            None => self.unindexed.push(cf),
            Some(keys) => {
                for k in keys {
                    for b in self.buckets_for(k) {
                        if !b.iter().any(|x| x.filter.id == cf.filter.id) {
                            b.push(cf.clone());
                        }
                    }
                }
            }
        }
    }

    pub fn remove(&mut self, id: u64) -> Option<Arc<CompiledFilter>> {
        let cf = self.all.remove(&id)?;
        if let Some(p) = place(&cf) {
            self.pure.remove(p, id);
            return Some(cf);
        }
        self.impure = self.impure.saturating_sub(1);
        match choose_keys(&cf) {
            None => self.unindexed.retain(|x| x.filter.id != id),
            Some(keys) => {
                for k in keys {
                    for b in self.buckets_for(k) {
                        b.retain(|x| x.filter.id != id);
                    }
                }
            }
        }
        Some(cf)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Via the index: pushes, in evaluation order, every filter arbitration can reach (all
    /// matching impure filters, the first matching pure filter of each sublayer, possibly more
    /// pure ones) and returns how many filters match in all.
    pub fn lookup<'a>(&'a self, v: &IncomingValues, out: &mut Cands<'a>) -> usize {
        let mut count = 0;
        if self.impure > 0 {
            self.lookup_impure(v, out);
            count = out.len();
        }
        let impure_matched = count;
        if !self.pure.is_empty() {
            // pure winners arrive sorted among themselves
            match self.pure.lookup(v, out) {
                Some(n) => count += n,
                None => {
                    // an index field holds a value of an unexpected type: scan
                    out.clear();
                    let mut m = Vec::new();
                    self.scan(v, &mut m);
                    out.extend(m.into_iter().map(Cand::of));
                    return out.len();
                }
            }
        }
        if impure_matched > 0 && out.len() > impure_matched {
            out.sort_unstable_by_key(|c| c.rank);
        }
        count
    }

    /// Matching impure filters in evaluation order, via the candidate index.
    fn lookup_impure<'a>(&'a self, v: &IncomingValues, out: &mut Cands<'a>) {
        let push = |b: Option<&'a Bucket>, out: &mut Cands<'a>| {
            if let Some(b) = b {
                for cf in b {
                    if cf.matches(v) {
                        out.push(Cand::of(cf));
                    }
                }
            }
        };
        for field in [Field::IP_REMOTE_ADDRESS, Field::IP_LOCAL_ADDRESS] {
            let f = field.0;
            match v.get(field) {
                FwpValue::Uint32(a) => {
                    if !self.exact4.is_empty() {
                        push(self.exact4.get(&(f, *a)), out);
                    }
                    for (ff, p, m) in &self.prefix4 {
                        if *ff == f {
                            let mask = if *p == 0 {
                                0
                            } else {
                                u32::MAX << (32 - u32::from(*p))
                            };
                            if !m.is_empty() {
                                push(m.get(&(a & mask)), out);
                            }
                        }
                    }
                }
                FwpValue::ByteArray16(a) => {
                    let a = u128::from_be_bytes(*a);
                    if !self.exact6.is_empty() {
                        push(self.exact6.get(&(f, a)), out);
                    }
                    for (ff, p, m) in &self.prefix6 {
                        if *ff == f {
                            push(m.get(&(a & v6mask(*p))), out);
                        }
                    }
                }
                _ => {}
            }
        }
        for field in [Field::IP_REMOTE_PORT, Field::IP_LOCAL_PORT] {
            if let FwpValue::Uint16(p) = v.get(field) {
                if !self.port.is_empty() {
                    push(self.port.get(&(field.0, *p)), out);
                }
                for (ff, buckets) in &self.port_range {
                    if *ff == field.0 {
                        push(Some(&buckets[(*p >> 8) as usize]), out);
                    }
                }
            }
        }
        if let FwpValue::Uint8(p) = v.get(Field::IP_PROTOCOL) {
            if !self.proto.is_empty() {
                push(self.proto.get(p), out);
            }
        }
        push(Some(&self.unindexed), out);
        out.sort_unstable_by_key(|c| c.rank);
        out.dedup_by_key(|c| c.rank.id);
    }

    /// Matching filters in evaluation order, by scanning every filter (the reference).
    pub fn scan<'a>(&'a self, v: &IncomingValues, out: &mut Vec<&'a CompiledFilter>) {
        for cf in self.all.values() {
            if cf.matches(v) {
                out.push(cf);
            }
        }
        out.sort_unstable_by_key(|cf| cf.order);
    }
}

/// Sublayer keys by evaluation-order identity (`(u16::MAX - weight, sequence)`), so arbitration
/// names a static filter's sublayer without reading the filter. Insert-only: a sequence number
/// is never reused within a store (a transaction works on a clone), so entries never go stale.
#[derive(Debug, Clone, Default)]
pub(crate) struct SublayerKeys(Vec<((u16, u32), Guid)>);

impl SublayerKeys {
    fn note(&mut self, cf: &CompiledFilter) {
        let s = cf.order.sublayer();
        if !self.0.iter().any(|(k, _)| *k == s) {
            self.0.push((s, cf.filter.sublayer));
        }
    }
    /// The key of sublayer `s`, if noted.
    #[inline]
    pub fn key(&self, s: (u16, u32)) -> Option<Guid> {
        self.0.iter().find(|(k, _)| *k == s).map(|(_, g)| *g)
    }
}

/// Engine switches that change arbitration where Windows is undocumented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArbitrationOptions {
    /// Whether a static BLOCK filter in a lower sublayer vetoes a hard permit (default `false`:
    /// only callouts veto, as Microsoft's "Filter Arbitration" page is read; see
    /// docs/windows-differences.md §2.5).
    pub static_block_veto: bool,
}

/// Runs §3.5 over the matching filters (already in evaluation order). `matched` must hold
/// every matching filter arbitration can reach (it may omit static filters that follow another
/// static filter of their sublayer); `matched_count` is the number of all matching filters.
#[inline]
pub(crate) fn arbitrate(
    layer: Layer,
    values: &IncomingValues,
    matched: &[Cand<'_>],
    matched_count: usize,
    sublayers: &SublayerKeys,
    callouts: &BTreeMap<Guid, Arc<dyn Callout>>,
    opts: ArbitrationOptions,
) -> ClassifyResult {
    if matched.is_empty() {
        // nothing matched: default permit (what both loops below return for no input)
        return ClassifyResult {
            layer,
            decision: Decision::Permit,
            hard: false,
            decided_by: None,
            veto: None,
            sublayer_results: SublayerResults::new(),
            matched_filters: matched_count,
        };
    }
    if !opts.static_block_veto && matched.iter().all(|c| c.rank.hot & HOT_STATIC != 0) {
        return arbitrate_static(layer, matched, matched_count, sublayers);
    }
    arbitrate_general(
        layer,
        values,
        matched,
        matched_count,
        sublayers,
        callouts,
        opts,
    )
}

/// [`arbitrate`] for any input (callouts, vetoes).
#[inline(never)]
fn arbitrate_general(
    layer: Layer,
    values: &IncomingValues,
    matched: &[Cand<'_>],
    matched_count: usize,
    sublayers: &SublayerKeys,
    callouts: &BTreeMap<Guid, Arc<dyn Callout>>,
    opts: ArbitrationOptions,
) -> ClassifyResult {
    let mut decision: Option<(Decision, bool, &Cand<'_>, Guid)> = None;
    let mut writable = true;
    let mut veto = None;
    let mut sublayer_results = SublayerResults::new();
    let mut i = 0;
    while i < matched.len() {
        let sub = matched[i].rank.sublayer();
        let mut j = i;
        while j < matched.len() && matched[j].rank.sublayer() == sub {
            j += 1;
        }
        // walk one sublayer: first terminating action wins
        let mut sub_result: Option<(Decision, bool, &Cand<'_>, bool)> = None;
        for c in &matched[i..j] {
            let hot = c.rank.hot;
            let r = if hot & HOT_STATIC != 0 {
                // static action: decided from the inline bits
                let d = if hot & HOT_BLOCK != 0 {
                    Decision::Block
                } else {
                    Decision::Permit
                };
                Some((d, hot & HOT_HARD != 0, false))
            } else {
                let f = &c.cf.filter;
                match f.action {
                    Action::Permit => Some((
                        Decision::Permit,
                        f.flags & filter_flags::CLEAR_ACTION_RIGHT != 0,
                        false,
                    )),
                    Action::Block => Some((Decision::Block, true, false)),
                    Action::CalloutTerminating(key)
                    | Action::CalloutUnknown(key)
                    | Action::CalloutInspection(key) => match callouts.get(&key) {
                        None => {
                            if matches!(f.action, Action::CalloutInspection(_)) {
                                None
                            } else if f.flags & filter_flags::PERMIT_IF_CALLOUT_UNREGISTERED != 0 {
                                Some((Decision::Permit, false, false))
                            } else {
                                // an added-but-unregistered callout behaves as a static block
                                Some((Decision::Block, true, false))
                            }
                        }
                        Some(co) => {
                            let out = co.classify(&CalloutClassify {
                                layer,
                                values,
                                filter: f,
                                write_right: writable,
                            });
                            if matches!(f.action, Action::CalloutInspection(_)) {
                                None
                            } else {
                                match out.action {
                                    CalloutAction::Continue => None,
                                    CalloutAction::Permit => {
                                        Some((Decision::Permit, out.clear_write_right, true))
                                    }
                                    CalloutAction::Block => {
                                        Some((Decision::Block, out.clear_write_right, true))
                                    }
                                }
                            }
                        }
                    },
                }
            };
            if let Some((d, hard, from_callout)) = r {
                sub_result = Some((d, hard, c, from_callout));
                break;
            }
        }
        if let Some((d, hard, c, from_callout)) = sub_result {
            let skey = sublayers.key(sub).unwrap_or(c.cf.filter.sublayer);
            sublayer_results.push(SublayerResult {
                sublayer: skey,
                decision: d,
                hard,
                filter_id: c.rank.id,
            });
            if writable {
                decision = Some((d, hard, c, skey));
                writable = !hard;
            } else if let Some((Decision::Permit, _, permit, _)) = decision {
                // hard permit in place: only a veto can change it
                if d == Decision::Block && (from_callout || opts.static_block_veto) {
                    veto = Some(Veto {
                        vetoed_filter_id: permit.rank.id,
                        vetoing: c.to_ref(layer, skey),
                    });
                    if let Some(key) = c.cf.filter.action.callout() {
                        if let Some(co) = callouts.get(&key) {
                            co.notify(&CalloutNotification::Veto {
                                layer,
                                vetoed_filter_id: permit.rank.id,
                                vetoing_filter_id: c.rank.id,
                            });
                        }
                    }
                    decision = Some((Decision::Block, true, c, skey));
                }
            }
            // a hard block is final; later sublayers are still walked so inspection
            // callouts see the traffic, but nothing can change the result.
        }
        i = j;
    }
    match decision {
        Some((d, hard, c, skey)) => ClassifyResult {
            layer,
            decision: d,
            hard,
            decided_by: Some(c.to_ref(layer, skey)),
            veto,
            sublayer_results,
            matched_filters: matched_count,
        },
        None => ClassifyResult {
            layer,
            decision: Decision::Permit,
            hard: false,
            decided_by: None,
            veto: None,
            sublayer_results,
            matched_filters: matched_count,
        },
    }
}

/// §3.5 when every matching filter has a static action and static blocks do not veto (the
/// common case): each sublayer is decided by its first filter, from the inline rank bits; a
/// hard decision stands, a soft one is overridden by the next sublayer's. Agrees with the
/// general loop of [`arbitrate`] on such input (no callouts, so no vetoes).
#[inline(never)]
fn arbitrate_static(
    layer: Layer,
    matched: &[Cand<'_>],
    matched_count: usize,
    sublayers: &SublayerKeys,
) -> ClassifyResult {
    let mut results = SublayerResults::new();
    // the deciding filter (index into `matched`) and its sublayer key; a hard decision stands
    let mut decided: Option<(usize, Guid)> = None;
    let mut hard_seen = false;
    let mut prev: Option<(u16, u32)> = None;
    for (i, c) in matched.iter().enumerate() {
        let sub = c.rank.sublayer();
        if prev == Some(sub) {
            // a static action terminated this sublayer already
            continue;
        }
        prev = Some(sub);
        let hot = c.rank.hot;
        let skey = sublayers.key(sub).unwrap_or(c.cf.filter.sublayer);
        results.push(SublayerResult {
            sublayer: skey,
            decision: static_decision(hot),
            hard: hot & HOT_HARD != 0,
            filter_id: c.rank.id,
        });
        if !hard_seen {
            decided = Some((i, skey));
            hard_seen = hot & HOT_HARD != 0;
        }
    }
    match decided.and_then(|(i, k)| Some((matched.get(i)?, k))) {
        Some((c, skey)) => ClassifyResult {
            layer,
            decision: static_decision(c.rank.hot),
            hard: c.rank.hot & HOT_HARD != 0,
            decided_by: Some(c.to_ref(layer, skey)),
            veto: None,
            sublayer_results: results,
            matched_filters: matched_count,
        },
        None => ClassifyResult {
            layer,
            decision: Decision::Permit,
            hard: false,
            decided_by: None,
            veto: None,
            sublayer_results: results,
            matched_filters: matched_count,
        },
    }
}

/// The decision of a static filter from its `HOT_*` bits.
#[inline]
fn static_decision(hot: u8) -> Decision {
    if hot & HOT_BLOCK != 0 {
        Decision::Block
    } else {
        Decision::Permit
    }
}
