//! The [`Engine`]: object store, sessions, transactions, subscriptions, classification.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::classify::{
    arbitrate, ArbitrationOptions, Callout, CalloutNotification, Cand, Cands, ClassifyResult,
    CompiledFilter, Decision, FilterRef, LayerIndex, SublayerKeys,
};
use crate::netevent::{
    ClassifyInfo, NetEvent, NetEventHeader, NetEventKind, NetEventLog, NetEventSubscription,
};
use crate::object::{
    effective_weight, filter_flags, Action, CalloutObject, Filter, Lifetime, Provider,
    ProviderContext, Sublayer,
};
use crate::schema::{BUILTIN_PROVIDERS, BUILTIN_SUBLAYERS, SUBLAYER_UNIVERSAL};
use crate::value::IncomingValues;
use crate::{Guid, Layer, WfpError};

/// A management session handle (`FwpmEngineOpen0`'s engine handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u32);

/// `FWPM_SESSION0`, the parts that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// `sessionKey`; nil = generated. Opening with a key already open -> `FWP_E_ALREADY_EXISTS`.
    pub key: Guid,
    /// Display name.
    pub name: String,
    /// `FWPM_SESSION_FLAG_DYNAMIC`: objects added by this session die with it.
    pub dynamic: bool,
    /// `txnWaitTimeoutInMSec` (default 15 s).
    pub txn_wait_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            key: Guid::NIL,
            name: String::new(),
            dynamic: false,
            txn_wait_timeout: Duration::from_secs(15),
        }
    }
}

/// Engine-wide options (`FwpmEngineSetOption0` and emulator switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Net-event ring capacity (events beyond it overwrite the oldest).
    pub net_event_capacity: usize,
    /// `FWPM_ENGINE_COLLECT_NET_EVENTS`.
    pub collect_net_events: bool,
    /// Also record allow events (off by default, as on Windows).
    pub collect_allow_events: bool,
    /// Arbitration switches.
    pub arbitration: ArbitrationOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            net_event_capacity: 4096,
            collect_net_events: true,
            collect_allow_events: false,
            arbitration: ArbitrationOptions::default(),
        }
    }
}

/// Kind of a managed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// Provider.
    Provider,
    /// Sublayer.
    Sublayer,
    /// Callout.
    Callout,
    /// Provider context.
    ProviderContext,
    /// Filter.
    Filter,
}

/// `FWPM_CHANGE_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeType {
    /// `FWPM_CHANGE_ADD` 1.
    Add = 1,
    /// `FWPM_CHANGE_DELETE` 2.
    Delete = 2,
}

/// A change notification (`FWPM_*_CHANGE0`), delivered after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Add or delete.
    pub change: ChangeType,
    /// Object kind.
    pub kind: ObjectKind,
    /// Object key.
    pub key: Guid,
    /// Object runtime id (0 for kinds without one).
    pub id: u64,
    /// Layer (filters and callouts).
    pub layer: Option<Layer>,
    /// Owning provider.
    pub provider_key: Option<Guid>,
    /// The callout a filter invokes.
    pub callout: Option<Guid>,
}

/// What a change subscription wants (`FWPM_*_SUBSCRIPTION0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    /// Object kinds (empty = all).
    pub kinds: Vec<ObjectKind>,
    /// `FWPM_SUBSCRIPTION_FLAG_NOTIFY_ON_ADD`.
    pub notify_on_add: bool,
    /// `FWPM_SUBSCRIPTION_FLAG_NOTIFY_ON_DELETE`.
    pub notify_on_delete: bool,
    /// Only objects at this layer.
    pub layer: Option<Layer>,
    /// Only objects of this provider.
    pub provider_key: Option<Guid>,
}

impl Default for SubscriptionSpec {
    fn default() -> Self {
        SubscriptionSpec {
            kinds: Vec::new(),
            notify_on_add: true,
            notify_on_delete: true,
            layer: None,
            provider_key: None,
        }
    }
}

/// Identifies a change subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(pub u64);

/// Filter enumeration template (`FWPM_FILTER_ENUM_TEMPLATE0`, the commonly used parts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterEnumTemplate {
    /// Only this layer.
    pub layer: Option<Layer>,
    /// Only this provider.
    pub provider_key: Option<Guid>,
    /// Only this sublayer.
    pub sublayer: Option<Guid>,
    /// Only filters whose action type is one of these `FWP_ACTION_*` values (empty = all).
    pub action_types: Vec<u32>,
    /// Only filters invoking this callout.
    pub callout_key: Option<Guid>,
    /// Only filters referencing this provider context.
    pub provider_context_key: Option<Guid>,
}

#[derive(Debug, Clone)]
struct Rec<T> {
    obj: T,
    lifetime: Lifetime,
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    providers: IndexMap<Guid, Rec<Provider>>,
    sublayers: IndexMap<Guid, (Rec<Sublayer>, u32)>,
    callouts: IndexMap<Guid, Rec<CalloutObject>>,
    contexts: IndexMap<Guid, Rec<ProviderContext>>,
    filter_keys: BTreeMap<Guid, u64>,
    filter_layer: BTreeMap<u64, Layer>,
    pub(crate) layers: Vec<LayerIndex>,
    next_filter_id: u64,
    next_callout_id: u32,
    next_context_id: u64,
    sublayer_seq: u32,
    key_seed: u64,
}

fn check_name(n: &str) -> Result<(), WfpError> {
    if n.is_empty() {
        Err(WfpError::NullDisplayName)
    } else if n.chars().any(|c| c.is_control() && c != '\t') {
        Err(WfpError::InvalidParameter)
    } else {
        Ok(())
    }
}

impl Store {
    fn new() -> Self {
        let mut s = Store {
            providers: IndexMap::new(),
            sublayers: IndexMap::new(),
            callouts: IndexMap::new(),
            contexts: IndexMap::new(),
            filter_keys: BTreeMap::new(),
            filter_layer: BTreeMap::new(),
            layers: (0..Layer::COUNT).map(|_| LayerIndex::default()).collect(),
            next_filter_id: 65_536,
            next_callout_id: 256,
            next_context_id: 1,
            sublayer_seq: 0,
            key_seed: 0,
        };
        for (name, key) in BUILTIN_PROVIDERS {
            let mut p = Provider::new(*name);
            p.key = *key;
            s.providers.insert(
                *key,
                Rec {
                    obj: p,
                    lifetime: Lifetime::Builtin,
                },
            );
        }
        for (name, key, weight) in BUILTIN_SUBLAYERS {
            let sl = Sublayer::new(*name, *weight).key(*key);
            s.sublayer_seq += 1;
            s.sublayers.insert(
                *key,
                (
                    Rec {
                        obj: sl,
                        lifetime: Lifetime::Builtin,
                    },
                    s.sublayer_seq,
                ),
            );
        }
        s
    }

    fn gen_key(&mut self) -> Guid {
        self.key_seed += 1;
        Guid::generated(self.key_seed)
    }

    fn provider_lifetime(&self, p: Option<Guid>) -> Result<Option<Lifetime>, WfpError> {
        match p {
            None => Ok(None),
            Some(k) => self
                .providers
                .get(&k)
                .map(|r| Some(r.lifetime))
                .ok_or(WfpError::ProviderNotFound),
        }
    }

    fn all_filters(&self) -> impl Iterator<Item = &Arc<CompiledFilter>> {
        self.layers.iter().flat_map(|l| l.all.values())
    }

    fn add_provider(
        &mut self,
        p: &Provider,
        lt: Lifetime,
        ch: &mut Vec<ChangeEvent>,
    ) -> Result<Guid, WfpError> {
        check_name(&p.name)?;
        if p.flags & !0x11 != 0 {
            return Err(WfpError::InvalidFlags);
        }
        if !p.key.is_nil() && self.providers.contains_key(&p.key) {
            return Err(WfpError::AlreadyExists);
        }
        let key = if p.key.is_nil() {
            self.gen_key()
        } else {
            p.key
        };
        let mut obj = p.clone();
        obj.key = key;
        self.providers.insert(key, Rec { obj, lifetime: lt });
        ch.push(ChangeEvent {
            change: ChangeType::Add,
            kind: ObjectKind::Provider,
            key,
            id: 0,
            layer: None,
            provider_key: None,
            callout: None,
        });
        Ok(key)
    }

    fn add_sublayer(
        &mut self,
        s: &Sublayer,
        lt: Lifetime,
        ch: &mut Vec<ChangeEvent>,
    ) -> Result<Guid, WfpError> {
        check_name(&s.name)?;
        if s.flags & !0x1 != 0 {
            return Err(WfpError::InvalidFlags);
        }
        if !s.key.is_nil() && self.sublayers.contains_key(&s.key) {
            return Err(WfpError::AlreadyExists);
        }
        if self.sublayers.len() >= 65_536 {
            return Err(WfpError::TooManySublayers);
        }
        if let Some(plt) = self.provider_lifetime(s.provider_key)? {
            if !lt.may_reference(plt) {
                return Err(WfpError::LifetimeMismatch);
            }
        }
        let key = if s.key.is_nil() {
            self.gen_key()
        } else {
            s.key
        };
        let mut obj = s.clone();
        obj.key = key;
        self.sublayer_seq += 1;
        self.sublayers
            .insert(key, (Rec { obj, lifetime: lt }, self.sublayer_seq));
        ch.push(ChangeEvent {
            change: ChangeType::Add,
            kind: ObjectKind::Sublayer,
            key,
            id: 0,
            layer: None,
            provider_key: s.provider_key,
            callout: None,
        });
        Ok(key)
    }

    fn add_callout(
        &mut self,
        c: &CalloutObject,
        lt: Lifetime,
        ch: &mut Vec<ChangeEvent>,
    ) -> Result<u32, WfpError> {
        check_name(&c.name)?;
        if !c.key.is_nil() && self.callouts.contains_key(&c.key) {
            return Err(WfpError::AlreadyExists);
        }
        if self.callouts.len() >= 100_000 {
            return Err(WfpError::TooManyCallouts);
        }
        if let Some(plt) = self.provider_lifetime(c.provider_key)? {
            if !lt.may_reference(plt) {
                return Err(WfpError::LifetimeMismatch);
            }
        }
        let key = if c.key.is_nil() {
            self.gen_key()
        } else {
            c.key
        };
        let mut obj = c.clone();
        obj.key = key;
        obj.id = self.next_callout_id;
        self.next_callout_id += 1;
        let id = obj.id;
        self.callouts.insert(key, Rec { obj, lifetime: lt });
        ch.push(ChangeEvent {
            change: ChangeType::Add,
            kind: ObjectKind::Callout,
            key,
            id: id.into(),
            layer: Some(c.applicable_layer),
            provider_key: c.provider_key,
            callout: None,
        });
        Ok(id)
    }

    fn add_context(
        &mut self,
        c: &ProviderContext,
        lt: Lifetime,
        ch: &mut Vec<ChangeEvent>,
    ) -> Result<u64, WfpError> {
        check_name(&c.name)?;
        if c.flags & !0x3 != 0 {
            return Err(WfpError::InvalidFlags);
        }
        if !c.key.is_nil() && self.contexts.contains_key(&c.key) {
            return Err(WfpError::AlreadyExists);
        }
        if c.context_type > crate::policy::provider_context_type::MAX {
            return Err(WfpError::InvalidParameter);
        }
        c.validate().map_err(|e| e.error)?;
        if let Some(plt) = self.provider_lifetime(c.provider_key)? {
            if !lt.may_reference(plt) {
                return Err(WfpError::LifetimeMismatch);
            }
        }
        let key = if c.key.is_nil() {
            self.gen_key()
        } else {
            c.key
        };
        let mut obj = c.clone();
        obj.key = key;
        obj.id = self.next_context_id;
        self.next_context_id += 1;
        let id = obj.id;
        self.contexts.insert(key, Rec { obj, lifetime: lt });
        ch.push(ChangeEvent {
            change: ChangeType::Add,
            kind: ObjectKind::ProviderContext,
            key,
            id,
            layer: None,
            provider_key: c.provider_key,
            callout: None,
        });
        Ok(id)
    }

    fn add_filter(
        &mut self,
        f: &Filter,
        lt: Lifetime,
        ch: &mut Vec<ChangeEvent>,
    ) -> Result<u64, WfpError> {
        use filter_flags as ff;
        check_name(&f.name)?;
        if f.flags & !ff::ALL != 0
            || (f.flags & ff::PERSISTENT != 0 && f.flags & ff::BOOTTIME != 0)
            || (f.flags & ff::PERMIT_IF_CALLOUT_UNREGISTERED != 0
                && !matches!(
                    f.action,
                    Action::CalloutTerminating(_) | Action::CalloutUnknown(_)
                ))
        {
            return Err(WfpError::InvalidFlags);
        }
        if !f.key.is_nil() && self.filter_keys.contains_key(&f.key) {
            return Err(WfpError::AlreadyExists);
        }
        let eff = effective_weight(f.weight, &f.conditions)?;
        let sl_key = if f.sublayer.is_nil() {
            SUBLAYER_UNIVERSAL
        } else {
            f.sublayer
        };
        let (sl, seq) = self
            .sublayers
            .get(&sl_key)
            .ok_or(WfpError::SublayerNotFound)?;
        let (sl_weight, sl_lt, seq) = (sl.obj.weight, sl.lifetime, *seq);
        let plt = self.provider_lifetime(f.provider_key)?;
        for c in &f.conditions {
            c.validate(f.layer)?;
        }
        let mut refs = vec![sl_lt];
        refs.extend(plt);
        if let Some(ck) = f.action.callout() {
            let co = self.callouts.get(&ck).ok_or(WfpError::CalloutNotFound)?;
            if co.obj.applicable_layer != f.layer {
                return Err(WfpError::IncompatibleLayer);
            }
            refs.push(co.lifetime);
        }
        if f.flags & ff::HAS_PROVIDER_CONTEXT != 0 || f.provider_context_key.is_some() {
            let k = f
                .provider_context_key
                .ok_or(WfpError::ProviderContextNotFound)?;
            let pc = self
                .contexts
                .get(&k)
                .ok_or(WfpError::ProviderContextNotFound)?;
            refs.push(pc.lifetime);
        }
        if refs.iter().any(|r| !lt.may_reference(*r)) {
            return Err(WfpError::LifetimeMismatch);
        }
        let key = if f.key.is_nil() {
            self.gen_key()
        } else {
            f.key
        };
        let id = self.next_filter_id;
        self.next_filter_id += 1;
        let mut obj = f.clone();
        obj.key = key;
        obj.id = id;
        obj.sublayer = sl_key;
        obj.effective_weight = eff;
        obj.flags &= !ff::DISABLED;
        if obj.provider_context_key.is_some() {
            obj.flags |= ff::HAS_PROVIDER_CONTEXT;
        }
        let cf = Arc::new(CompiledFilter::new(obj, sl_weight, seq, lt));
        self.filter_keys.insert(key, id);
        self.filter_layer.insert(id, f.layer);
        self.layers[f.layer.0 as usize].insert(cf);
        ch.push(ChangeEvent {
            change: ChangeType::Add,
            kind: ObjectKind::Filter,
            key,
            id,
            layer: Some(f.layer),
            provider_key: f.provider_key,
            callout: f.action.callout(),
        });
        Ok(id)
    }

    fn filter(&self, id: u64) -> Result<&Arc<CompiledFilter>, WfpError> {
        let layer = self.filter_layer.get(&id).ok_or(WfpError::FilterNotFound)?;
        self.layers[layer.0 as usize]
            .all
            .get(&id)
            .ok_or(WfpError::FilterNotFound)
    }

    fn delete_filter(&mut self, id: u64, ch: &mut Vec<ChangeEvent>) -> Result<(), WfpError> {
        let layer = *self.filter_layer.get(&id).ok_or(WfpError::FilterNotFound)?;
        let cf = self.layers[layer.0 as usize]
            .remove(id)
            .ok_or(WfpError::FilterNotFound)?;
        self.filter_layer.remove(&id);
        self.filter_keys.remove(&cf.filter.key);
        ch.push(ChangeEvent {
            change: ChangeType::Delete,
            kind: ObjectKind::Filter,
            key: cf.filter.key,
            id,
            layer: Some(layer),
            provider_key: cf.filter.provider_key,
            callout: cf.filter.action.callout(),
        });
        Ok(())
    }

    fn delete_sublayer(&mut self, key: Guid, ch: &mut Vec<ChangeEvent>) -> Result<(), WfpError> {
        let (r, _) = self.sublayers.get(&key).ok_or(WfpError::SublayerNotFound)?;
        if r.lifetime == Lifetime::Builtin {
            return Err(WfpError::BuiltinObject);
        }
        if self.all_filters().any(|f| f.filter.sublayer == key) {
            return Err(WfpError::InUse);
        }
        let (r, _) = self
            .sublayers
            .shift_remove(&key)
            .ok_or(WfpError::SublayerNotFound)?;
        ch.push(ChangeEvent {
            change: ChangeType::Delete,
            kind: ObjectKind::Sublayer,
            key,
            id: 0,
            layer: None,
            provider_key: r.obj.provider_key,
            callout: None,
        });
        Ok(())
    }

    fn delete_callout(&mut self, key: Guid, ch: &mut Vec<ChangeEvent>) -> Result<(), WfpError> {
        if !self.callouts.contains_key(&key) {
            return Err(WfpError::CalloutNotFound);
        }
        if self
            .all_filters()
            .any(|f| f.filter.action.callout() == Some(key))
        {
            return Err(WfpError::InUse);
        }
        let r = self
            .callouts
            .shift_remove(&key)
            .ok_or(WfpError::CalloutNotFound)?;
        ch.push(ChangeEvent {
            change: ChangeType::Delete,
            kind: ObjectKind::Callout,
            key,
            id: r.obj.id.into(),
            layer: Some(r.obj.applicable_layer),
            provider_key: r.obj.provider_key,
            callout: None,
        });
        Ok(())
    }

    fn delete_context(&mut self, key: Guid, ch: &mut Vec<ChangeEvent>) -> Result<(), WfpError> {
        if !self.contexts.contains_key(&key) {
            return Err(WfpError::ProviderContextNotFound);
        }
        if self
            .all_filters()
            .any(|f| f.filter.provider_context_key == Some(key))
        {
            return Err(WfpError::InUse);
        }
        let r = self
            .contexts
            .shift_remove(&key)
            .ok_or(WfpError::ProviderContextNotFound)?;
        ch.push(ChangeEvent {
            change: ChangeType::Delete,
            kind: ObjectKind::ProviderContext,
            key,
            id: r.obj.id,
            layer: None,
            provider_key: r.obj.provider_key,
            callout: None,
        });
        Ok(())
    }

    fn delete_provider(&mut self, key: Guid, ch: &mut Vec<ChangeEvent>) -> Result<(), WfpError> {
        let r = self.providers.get(&key).ok_or(WfpError::ProviderNotFound)?;
        if r.lifetime == Lifetime::Builtin {
            return Err(WfpError::BuiltinObject);
        }
        let used = self
            .all_filters()
            .any(|f| f.filter.provider_key == Some(key))
            || self
                .sublayers
                .values()
                .any(|(s, _)| s.obj.provider_key == Some(key))
            || self
                .callouts
                .values()
                .any(|c| c.obj.provider_key == Some(key))
            || self
                .contexts
                .values()
                .any(|c| c.obj.provider_key == Some(key));
        if used {
            return Err(WfpError::InUse);
        }
        self.providers.shift_remove(&key);
        ch.push(ChangeEvent {
            change: ChangeType::Delete,
            kind: ObjectKind::Provider,
            key,
            id: 0,
            layer: None,
            provider_key: None,
            callout: None,
        });
        Ok(())
    }

    fn purge_dynamic(&mut self, sid: SessionId, ch: &mut Vec<ChangeEvent>) {
        let lt = Lifetime::Dynamic(sid);
        let ids: Vec<u64> = self
            .all_filters()
            .filter(|f| f.lifetime == lt)
            .map(|f| f.filter.id)
            .collect();
        for id in ids {
            let _ = self.delete_filter(id, ch);
        }
        let keys: Vec<Guid> = self
            .contexts
            .iter()
            .filter(|(_, r)| r.lifetime == lt)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let _ = self.delete_context(k, ch);
        }
        let keys: Vec<Guid> = self
            .callouts
            .iter()
            .filter(|(_, r)| r.lifetime == lt)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let _ = self.delete_callout(k, ch);
        }
        let keys: Vec<Guid> = self
            .sublayers
            .iter()
            .filter(|(_, (r, _))| r.lifetime == lt)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let _ = self.delete_sublayer(k, ch);
        }
        let keys: Vec<Guid> = self
            .providers
            .iter()
            .filter(|(_, r)| r.lifetime == lt)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let _ = self.delete_provider(k, ch);
        }
    }
}

#[derive(Debug)]
struct Txn {
    read_only: bool,
    work: Option<Box<Store>>,
    pending: Vec<ChangeEvent>,
}

#[derive(Debug)]
struct Session {
    opts: SessionOptions,
    txn: Option<Txn>,
}

struct Sub {
    session: SessionId,
    spec: SubscriptionSpec,
    queue: VecDeque<ChangeEvent>,
}

/// The filter engine (the BFE + kernel filter engine of Windows, in one sans-IO value).
///
/// # Examples
///
/// ```
/// use wsock_wfp::*;
/// let mut engine = Engine::new();
/// let s = engine.open_session(false);
/// let id = engine
///     .add_filter(
///         s,
///         &Filter::new("no 443", Layer::ALE_AUTH_CONNECT_V4, Action::Block)
///             .condition(Field::IP_REMOTE_PORT, MatchType::Equal, FwpValue::Uint16(443)),
///     )
///     .unwrap();
/// let v = IncomingValues::new().with(Field::IP_REMOTE_PORT, FwpValue::Uint16(443));
/// let r = engine.classify(Layer::ALE_AUTH_CONNECT_V4, &v);
/// assert!(r.is_block());
/// assert_eq!(r.decided_by.unwrap().id, id);
/// ```
pub struct Engine {
    store: Store,
    sessions: BTreeMap<SessionId, Session>,
    next_session: u32,
    write_lock: Option<SessionId>,
    waiting: BTreeMap<SessionId, Duration>,
    callouts: BTreeMap<Guid, Arc<dyn Callout>>,
    subs: BTreeMap<SubscriptionId, Sub>,
    next_sub: u64,
    events: NetEventLog,
    options: EngineOptions,
    layer_gen: Vec<u64>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("filters", &self.store.filter_layer.len())
            .field("sessions", &self.sessions.len())
            .field(
                "callouts_registered",
                &self.callouts.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Engine {
    /// A fresh engine with the built-in layers, sublayers and providers and default options.
    pub fn new() -> Self {
        Self::with_options(EngineOptions::default())
    }

    /// Seeds the keys this engine generates for objects added with a nil key (filters,
    /// providers, sublayers, callouts, provider contexts). A fresh engine starts from seed 0, so
    /// two engines given the same objects generate the same keys; give each engine its own seed
    /// (one engine per host: a hash of the host's name) and their generated keys differ, while
    /// staying reproducible run after run. Keys already generated are kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_wfp::*;
    /// let f = Filter::new("f", Layer::ALE_AUTH_CONNECT_V4, Action::Block);
    /// let (mut a, mut b) = (Engine::new(), Engine::new());
    /// b.set_key_seed(0x5345_5256_4552);
    /// let (sa, sb) = (a.open_session(false), b.open_session(false));
    /// let (ia, ib) = (a.add_filter(sa, &f).unwrap(), b.add_filter(sb, &f).unwrap());
    /// assert_ne!(a.get_filter_by_id(sa, ia).unwrap().key, b.get_filter_by_id(sb, ib).unwrap().key);
    /// ```
    pub fn set_key_seed(&mut self, seed: u64) {
        self.store.key_seed = seed;
    }

    /// A fresh engine with options.
    pub fn with_options(options: EngineOptions) -> Self {
        Engine {
            store: Store::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            write_lock: None,
            waiting: BTreeMap::new(),
            callouts: BTreeMap::new(),
            subs: BTreeMap::new(),
            next_sub: 1,
            events: NetEventLog::new(options.net_event_capacity),
            options,
            layer_gen: vec![0; Layer::COUNT],
        }
    }

    /// Current options.
    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// Changes options (`FwpmEngineSetOption0`); a new ring capacity applies to later events.
    pub fn set_options(&mut self, options: EngineOptions) {
        self.events.capacity = options.net_event_capacity.max(1);
        self.options = options;
    }

    // ---------------------------------------------------------------- sessions

    /// Opens a session (`FwpmEngineOpen0`); `dynamic` = `FWPM_SESSION_FLAG_DYNAMIC`.
    pub fn open_session(&mut self, dynamic: bool) -> SessionId {
        let opts = SessionOptions {
            dynamic,
            ..SessionOptions::default()
        };
        // cannot fail: the key is generated
        self.open_session_with(opts).unwrap_or(SessionId(0))
    }

    /// Opens a session with explicit options.
    ///
    /// # Errors
    ///
    /// `FWP_E_ALREADY_EXISTS` if a session with the same non-nil key is open.
    pub fn open_session_with(&mut self, mut opts: SessionOptions) -> Result<SessionId, WfpError> {
        if !opts.key.is_nil() && self.sessions.values().any(|s| s.opts.key == opts.key) {
            return Err(WfpError::AlreadyExists);
        }
        let id = SessionId(self.next_session);
        self.next_session += 1;
        if opts.key.is_nil() {
            opts.key = Guid::generated(0x5E55_1000_0000 + u64::from(id.0));
        }
        self.sessions.insert(id, Session { opts, txn: None });
        Ok(id)
    }

    /// Closes a session (`FwpmEngineClose0`): aborts its transaction, drops its subscriptions
    /// and, for a dynamic session, deletes every object it added.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn close_session(&mut self, sid: SessionId) -> Result<(), WfpError> {
        let s = self
            .sessions
            .remove(&sid)
            .ok_or(WfpError::InvalidParameter)?;
        if self.write_lock == Some(sid) {
            self.write_lock = None;
        }
        self.waiting.remove(&sid);
        self.subs.retain(|_, sub| sub.session != sid);
        if s.opts.dynamic {
            let mut ch = Vec::new();
            self.store.purge_dynamic(sid, &mut ch);
            self.dispatch(ch);
        }
        Ok(())
    }

    fn session(&self, sid: SessionId) -> Result<&Session, WfpError> {
        self.sessions.get(&sid).ok_or(WfpError::InvalidParameter)
    }

    // ---------------------------------------------------------------- transactions

    /// Begins a transaction (`FwpmTransactionBegin0`). Read-only transactions never wait.
    ///
    /// The engine has no clock: when another session holds the write lock, the first call
    /// records `now` as the start of the wait and returns [`WfpError::WouldBlock`] with the
    /// deadline (`now + txn_wait_timeout`); the caller waits (or advances its virtual clock)
    /// and calls again; a call at or after the deadline returns `FWP_E_TIMEOUT`.
    ///
    /// # Errors
    ///
    /// `FWP_E_TXN_IN_PROGRESS` if this session already has one; `WouldBlock` / `FWP_E_TIMEOUT`
    /// as above.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsock_wfp::*;
    /// let mut e = Engine::new();
    /// let a = e.open_session(false);
    /// let b = e
    ///     .open_session_with(SessionOptions { txn_wait_timeout: Duration::from_millis(100), ..Default::default() })
    ///     .unwrap();
    /// e.begin_transaction(a, false, Duration::ZERO).unwrap();
    /// assert!(matches!(e.begin_transaction(b, false, Duration::ZERO), Err(WfpError::WouldBlock { .. })));
    /// assert_eq!(e.begin_transaction(b, false, Duration::from_millis(100)), Err(WfpError::Timeout));
    /// ```
    pub fn begin_transaction(
        &mut self,
        sid: SessionId,
        read_only: bool,
        now: Duration,
    ) -> Result<(), WfpError> {
        let s = self.session(sid)?;
        if s.txn.is_some() {
            return Err(WfpError::TxnInProgress);
        }
        let timeout = s.opts.txn_wait_timeout;
        if !read_only {
            if let Some(holder) = self.write_lock {
                if holder != sid {
                    let start = *self.waiting.entry(sid).or_insert(now);
                    let deadline = start + timeout;
                    if now >= deadline {
                        self.waiting.remove(&sid);
                        return Err(WfpError::Timeout);
                    }
                    return Err(WfpError::WouldBlock {
                        retry_deadline: deadline,
                    });
                }
            }
            self.waiting.remove(&sid);
            self.write_lock = Some(sid);
        }
        let work = (!read_only).then(|| Box::new(self.store.clone()));
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.txn = Some(Txn {
                read_only,
                work,
                pending: Vec::new(),
            });
        }
        Ok(())
    }

    /// Commits (`FwpmTransactionCommit0`): the transaction's changes become visible to
    /// classification at once, and change notifications are delivered.
    ///
    /// # Errors
    ///
    /// `FWP_E_NO_TXN_IN_PROGRESS` without an open transaction.
    pub fn commit_transaction(&mut self, sid: SessionId) -> Result<(), WfpError> {
        let s = self
            .sessions
            .get_mut(&sid)
            .ok_or(WfpError::InvalidParameter)?;
        let txn = s.txn.take().ok_or(WfpError::NoTxnInProgress)?;
        if let Some(work) = txn.work {
            self.store = *work;
            self.write_lock = None;
            self.dispatch(txn.pending);
        }
        Ok(())
    }

    /// Aborts (`FwpmTransactionAbort0`): nothing the transaction did remains.
    ///
    /// # Errors
    ///
    /// `FWP_E_NO_TXN_IN_PROGRESS` without an open transaction.
    pub fn abort_transaction(&mut self, sid: SessionId) -> Result<(), WfpError> {
        let s = self
            .sessions
            .get_mut(&sid)
            .ok_or(WfpError::InvalidParameter)?;
        let txn = s.txn.take().ok_or(WfpError::NoTxnInProgress)?;
        if !txn.read_only {
            self.write_lock = None;
        }
        Ok(())
    }

    fn write<R>(
        &mut self,
        sid: SessionId,
        f: impl FnOnce(&mut Store, Lifetime, &mut Vec<ChangeEvent>) -> Result<R, WfpError>,
        persistent: bool,
    ) -> Result<R, WfpError> {
        let s = self
            .sessions
            .get_mut(&sid)
            .ok_or(WfpError::InvalidParameter)?;
        let lt = if s.opts.dynamic {
            if persistent {
                return Err(WfpError::DynamicSessionInProgress);
            }
            Lifetime::Dynamic(sid)
        } else if persistent {
            Lifetime::Persistent
        } else {
            Lifetime::Static
        };
        if let Some(txn) = &mut s.txn {
            return match &mut txn.work {
                None => Err(WfpError::IncompatibleTxn),
                Some(work) => f(work, lt, &mut txn.pending),
            };
        }
        if self.write_lock.is_some_and(|h| h != sid) {
            // implicit transactions do not wait (no clock); see begin_transaction
            return Err(WfpError::Timeout);
        }
        let mut ch = Vec::new();
        let r = f(&mut self.store, lt, &mut ch)?;
        self.dispatch(ch);
        Ok(r)
    }

    fn view(&self, sid: SessionId) -> Result<&Store, WfpError> {
        let s = self.session(sid)?;
        Ok(match s.txn.as_ref().and_then(|t| t.work.as_deref()) {
            Some(w) => w,
            None => &self.store,
        })
    }

    fn dispatch(&mut self, changes: Vec<ChangeEvent>) {
        for c in changes {
            if c.kind == ObjectKind::Filter {
                if let Some(l) = c.layer {
                    self.layer_gen[l.0 as usize] += 1;
                }
                if let Some(k) = c.callout {
                    if let Some(co) = self.callouts.get(&k) {
                        co.notify(&match c.change {
                            ChangeType::Add => CalloutNotification::FilterAdded {
                                filter_id: c.id,
                                filter_key: c.key,
                            },
                            ChangeType::Delete => CalloutNotification::FilterDeleted {
                                filter_id: c.id,
                                filter_key: c.key,
                            },
                        });
                    }
                }
            }
            for sub in self.subs.values_mut() {
                let sp = &sub.spec;
                let want = (sp.kinds.is_empty() || sp.kinds.contains(&c.kind))
                    && match c.change {
                        ChangeType::Add => sp.notify_on_add,
                        ChangeType::Delete => sp.notify_on_delete,
                    }
                    && sp.layer.is_none_or(|l| c.layer == Some(l))
                    && sp.provider_key.is_none_or(|p| c.provider_key == Some(p));
                if want {
                    sub.queue.push_back(c.clone());
                }
            }
        }
    }

    // ---------------------------------------------------------------- adds

    /// `FwpmProviderAdd0`. Returns the key (generated if nil).
    ///
    /// # Errors
    ///
    /// `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_ALREADY_EXISTS`, `FWP_E_INVALID_FLAGS`,
    /// `FWP_E_INCOMPATIBLE_TXN` (read-only transaction).
    pub fn add_provider(&mut self, sid: SessionId, p: &Provider) -> Result<Guid, WfpError> {
        self.write(sid, |s, lt, ch| s.add_provider(p, lt, ch), p.flags & 1 != 0)
    }

    /// `FwpmSubLayerAdd0`. Returns the key (generated if nil).
    ///
    /// # Errors
    ///
    /// `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_ALREADY_EXISTS`, `FWP_E_PROVIDER_NOT_FOUND`,
    /// `FWP_E_LIFETIME_MISMATCH`, `FWP_E_TOO_MANY_SUBLAYERS`, `FWP_E_INCOMPATIBLE_TXN`.
    pub fn add_sublayer(&mut self, sid: SessionId, sl: &Sublayer) -> Result<Guid, WfpError> {
        self.write(
            sid,
            |s, lt, ch| s.add_sublayer(sl, lt, ch),
            sl.flags & 1 != 0,
        )
    }

    /// `FwpmCalloutAdd0`. Returns the callout id.
    ///
    /// # Errors
    ///
    /// `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_ALREADY_EXISTS`, `FWP_E_PROVIDER_NOT_FOUND`,
    /// `FWP_E_LIFETIME_MISMATCH`, `FWP_E_INCOMPATIBLE_TXN`.
    pub fn add_callout(&mut self, sid: SessionId, c: &CalloutObject) -> Result<u32, WfpError> {
        self.write(
            sid,
            |s, lt, ch| s.add_callout(c, lt, ch),
            c.flags & 0x10000 != 0,
        )
    }

    /// `FwpmProviderContextAdd0`. Returns the provider context id.
    ///
    /// # Errors
    ///
    /// `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_ALREADY_EXISTS`, `FWP_E_PROVIDER_NOT_FOUND`,
    /// `FWP_E_LIFETIME_MISMATCH`, `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_INVALID_PARAMETER` (type
    /// above 14), and for typed policies whatever [`ProviderContext::validate`] reports
    /// (`FWP_E_ZERO_LENGTH_ARRAY`, `FWP_E_INVALID_TRANSFORM_COMBINATION`,
    /// `FWP_E_PROVIDER_CONTEXT_MISMATCH`, ...; call it first for the field path).
    pub fn add_provider_context(
        &mut self,
        sid: SessionId,
        c: &ProviderContext,
    ) -> Result<u64, WfpError> {
        self.write(sid, |s, lt, ch| s.add_context(c, lt, ch), c.flags & 1 != 0)
    }

    /// `FwpmFilterAdd0`. Returns the filter id. The filter's `id` and `effective_weight` are
    /// ignored; a nil key is replaced by a generated one; a nil sublayer means UNIVERSAL.
    ///
    /// # Errors
    ///
    /// `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_INVALID_FLAGS` (unknown bits, PERSISTENT|BOOTTIME,
    /// PERMIT_IF_CALLOUT_UNREGISTERED on a non-callout filter), `FWP_E_ALREADY_EXISTS`,
    /// `FWP_E_INVALID_WEIGHT`, `FWP_E_SUBLAYER_NOT_FOUND`, `FWP_E_PROVIDER_NOT_FOUND`,
    /// `FWP_E_CONDITION_NOT_FOUND`, `FWP_E_TYPE_MISMATCH`, `FWP_E_MATCH_TYPE_MISMATCH`,
    /// `FWP_E_INVALID_NET_MASK`, `FWP_E_INVALID_RANGE`, `FWP_E_CALLOUT_NOT_FOUND`,
    /// `FWP_E_INCOMPATIBLE_LAYER`, `FWP_E_PROVIDER_CONTEXT_NOT_FOUND`,
    /// `FWP_E_LIFETIME_MISMATCH`, `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_DYNAMIC_SESSION_IN_PROGRESS`
    /// (persistent filter from a dynamic session).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_wfp::*;
    /// let mut e = Engine::new();
    /// let s = e.open_session(false);
    /// let bad = Filter::new("w", Layer::ALE_AUTH_CONNECT_V4, Action::Block).weight(Weight::Range(16));
    /// assert_eq!(e.add_filter(s, &bad), Err(WfpError::InvalidWeight));
    /// ```
    pub fn add_filter(&mut self, sid: SessionId, f: &Filter) -> Result<u64, WfpError> {
        self.write(
            sid,
            |s, lt, ch| s.add_filter(f, lt, ch),
            f.flags & filter_flags::PERSISTENT != 0,
        )
    }

    // ---------------------------------------------------------------- deletes

    /// `FwpmFilterDeleteById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_FILTER_NOT_FOUND`, `FWP_E_INCOMPATIBLE_TXN`.
    pub fn delete_filter_by_id(&mut self, sid: SessionId, id: u64) -> Result<(), WfpError> {
        self.write(sid, |s, _, ch| s.delete_filter(id, ch), false)
    }

    /// `FwpmFilterDeleteByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_FILTER_NOT_FOUND`, `FWP_E_INCOMPATIBLE_TXN`.
    pub fn delete_filter_by_key(&mut self, sid: SessionId, key: Guid) -> Result<(), WfpError> {
        self.write(
            sid,
            |s, _, ch| {
                let id = *s.filter_keys.get(&key).ok_or(WfpError::FilterNotFound)?;
                s.delete_filter(id, ch)
            },
            false,
        )
    }

    /// `FwpmSubLayerDeleteByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_SUBLAYER_NOT_FOUND`, `FWP_E_BUILTIN_OBJECT`, `FWP_E_IN_USE` (filters in it).
    pub fn delete_sublayer_by_key(&mut self, sid: SessionId, key: Guid) -> Result<(), WfpError> {
        self.write(sid, |s, _, ch| s.delete_sublayer(key, ch), false)
    }

    /// `FwpmProviderDeleteByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_NOT_FOUND`, `FWP_E_BUILTIN_OBJECT`, `FWP_E_IN_USE`.
    pub fn delete_provider_by_key(&mut self, sid: SessionId, key: Guid) -> Result<(), WfpError> {
        self.write(sid, |s, _, ch| s.delete_provider(key, ch), false)
    }

    /// `FwpmCalloutDeleteByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_CALLOUT_NOT_FOUND`, `FWP_E_IN_USE` (filters invoke it).
    pub fn delete_callout_by_key(&mut self, sid: SessionId, key: Guid) -> Result<(), WfpError> {
        self.write(sid, |s, _, ch| s.delete_callout(key, ch), false)
    }

    /// `FwpmCalloutDeleteById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_CALLOUT_NOT_FOUND`, `FWP_E_IN_USE`.
    pub fn delete_callout_by_id(&mut self, sid: SessionId, id: u32) -> Result<(), WfpError> {
        let key = self.get_callout_by_id(sid, id)?.key;
        self.delete_callout_by_key(sid, key)
    }

    /// `FwpmProviderContextDeleteByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_CONTEXT_NOT_FOUND`, `FWP_E_IN_USE` (filters reference it).
    pub fn delete_provider_context_by_key(
        &mut self,
        sid: SessionId,
        key: Guid,
    ) -> Result<(), WfpError> {
        self.write(sid, |s, _, ch| s.delete_context(key, ch), false)
    }

    /// `FwpmProviderContextDeleteById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_CONTEXT_NOT_FOUND`, `FWP_E_IN_USE`.
    pub fn delete_provider_context_by_id(
        &mut self,
        sid: SessionId,
        id: u64,
    ) -> Result<(), WfpError> {
        let key = self.get_provider_context_by_id(sid, id)?.key;
        self.delete_provider_context_by_key(sid, key)
    }

    // ---------------------------------------------------------------- gets / enums

    /// `FwpmFilterGetById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_FILTER_NOT_FOUND`.
    pub fn get_filter_by_id(&self, sid: SessionId, id: u64) -> Result<Filter, WfpError> {
        Ok(self.view(sid)?.filter(id)?.filter.clone())
    }

    /// `FwpmFilterGetByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_FILTER_NOT_FOUND`.
    pub fn get_filter_by_key(&self, sid: SessionId, key: Guid) -> Result<Filter, WfpError> {
        let st = self.view(sid)?;
        let id = st.filter_keys.get(&key).ok_or(WfpError::FilterNotFound)?;
        Ok(st.filter(*id)?.filter.clone())
    }

    /// `FwpmSubLayerGetByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_SUBLAYER_NOT_FOUND`.
    pub fn get_sublayer_by_key(&self, sid: SessionId, key: Guid) -> Result<Sublayer, WfpError> {
        self.view(sid)?
            .sublayers
            .get(&key)
            .map(|(r, _)| r.obj.clone())
            .ok_or(WfpError::SublayerNotFound)
    }

    /// `FwpmProviderGetByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_NOT_FOUND`.
    pub fn get_provider_by_key(&self, sid: SessionId, key: Guid) -> Result<Provider, WfpError> {
        self.view(sid)?
            .providers
            .get(&key)
            .map(|r| r.obj.clone())
            .ok_or(WfpError::ProviderNotFound)
    }

    /// `FwpmCalloutGetByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_CALLOUT_NOT_FOUND`.
    pub fn get_callout_by_key(&self, sid: SessionId, key: Guid) -> Result<CalloutObject, WfpError> {
        let mut c = self
            .view(sid)?
            .callouts
            .get(&key)
            .map(|r| r.obj.clone())
            .ok_or(WfpError::CalloutNotFound)?;
        if self.callouts.contains_key(&key) {
            c.flags |= 0x40000;
        }
        Ok(c)
    }

    /// `FwpmCalloutGetById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_CALLOUT_NOT_FOUND`.
    pub fn get_callout_by_id(&self, sid: SessionId, id: u32) -> Result<CalloutObject, WfpError> {
        let key = self
            .view(sid)?
            .callouts
            .values()
            .find(|r| r.obj.id == id)
            .map(|r| r.obj.key)
            .ok_or(WfpError::CalloutNotFound)?;
        self.get_callout_by_key(sid, key)
    }

    /// `FwpmProviderContextGetByKey0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_CONTEXT_NOT_FOUND`.
    pub fn get_provider_context_by_key(
        &self,
        sid: SessionId,
        key: Guid,
    ) -> Result<ProviderContext, WfpError> {
        self.view(sid)?
            .contexts
            .get(&key)
            .map(|r| r.obj.clone())
            .ok_or(WfpError::ProviderContextNotFound)
    }

    /// `FwpmProviderContextGetById0`.
    ///
    /// # Errors
    ///
    /// `FWP_E_PROVIDER_CONTEXT_NOT_FOUND`.
    pub fn get_provider_context_by_id(
        &self,
        sid: SessionId,
        id: u64,
    ) -> Result<ProviderContext, WfpError> {
        self.view(sid)?
            .contexts
            .values()
            .find(|r| r.obj.id == id)
            .map(|r| r.obj.clone())
            .ok_or(WfpError::ProviderContextNotFound)
    }

    /// `FwpmFilterEnum0` with a template. Order: by layer, then evaluation order (sublayer
    /// weight, effective weight, then filter id), which is deterministic.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn enum_filters(
        &self,
        sid: SessionId,
        t: &FilterEnumTemplate,
    ) -> Result<Vec<Filter>, WfpError> {
        let st = self.view(sid)?;
        let mut out: Vec<&Arc<CompiledFilter>> = st
            .layers
            .iter()
            .enumerate()
            .filter(|(i, _)| t.layer.is_none_or(|l| l.0 as usize == *i))
            .flat_map(|(_, l)| l.all.values())
            .filter(|cf| {
                let f = &cf.filter;
                t.provider_key.is_none_or(|p| f.provider_key == Some(p))
                    && t.sublayer.is_none_or(|s| f.sublayer == s)
                    && (t.action_types.is_empty()
                        || t.action_types.contains(&f.action.type_value()))
                    && t.callout_key.is_none_or(|c| f.action.callout() == Some(c))
                    && t.provider_context_key
                        .is_none_or(|c| f.provider_context_key == Some(c))
            })
            .collect();
        out.sort_by_key(|cf| (cf.filter.layer, cf.order));
        Ok(out.into_iter().map(|cf| cf.filter.clone()).collect())
    }

    /// `FwpmSubLayerEnum0`, ordered by weight (highest first), ties by insertion.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn enum_sublayers(&self, sid: SessionId) -> Result<Vec<Sublayer>, WfpError> {
        let mut v: Vec<_> = self
            .view(sid)?
            .sublayers
            .values()
            .map(|(r, seq)| (r.obj.clone(), *seq))
            .collect();
        v.sort_by_key(|(s, seq)| (u16::MAX - s.weight, *seq));
        Ok(v.into_iter().map(|(s, _)| s).collect())
    }

    /// `FwpmProviderEnum0`, in insertion order.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn enum_providers(&self, sid: SessionId) -> Result<Vec<Provider>, WfpError> {
        Ok(self
            .view(sid)?
            .providers
            .values()
            .map(|r| r.obj.clone())
            .collect())
    }

    /// `FwpmCalloutEnum0`, in insertion order.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn enum_callouts(&self, sid: SessionId) -> Result<Vec<CalloutObject>, WfpError> {
        Ok(self
            .view(sid)?
            .callouts
            .values()
            .map(|r| r.obj.clone())
            .collect())
    }

    /// `FwpmProviderContextEnum0`, in insertion order.
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session.
    pub fn enum_provider_contexts(&self, sid: SessionId) -> Result<Vec<ProviderContext>, WfpError> {
        Ok(self
            .view(sid)?
            .contexts
            .values()
            .map(|r| r.obj.clone())
            .collect())
    }

    /// Number of filters (committed).
    pub fn filter_count(&self) -> usize {
        self.store.filter_layer.len()
    }

    /// Whether any committed filter exists at `layer` (cheap; lets callers skip classifying
    /// packet layers nobody filters).
    pub fn layer_has_filters(&self, layer: Layer) -> bool {
        !self.store.layers[layer.0 as usize].is_empty()
    }

    /// A counter bumped whenever a filter is added to or deleted from `layer` (committed).
    /// ALE compares it with the value a flow was authorized under to detect policy changes.
    pub fn layer_generation(&self, layer: Layer) -> u64 {
        self.layer_gen[layer.0 as usize]
    }

    // ---------------------------------------------------------------- subscriptions

    /// `FwpmFilterSubscribeChanges0` and friends: changes are queued for [`Engine::drain_changes`].
    ///
    /// # Errors
    ///
    /// `FWP_E_INVALID_PARAMETER` for an unknown session; `FWP_E_NEVER_MATCH` if neither add nor
    /// delete is requested.
    pub fn subscribe_changes(
        &mut self,
        sid: SessionId,
        spec: SubscriptionSpec,
    ) -> Result<SubscriptionId, WfpError> {
        self.session(sid)?;
        if !spec.notify_on_add && !spec.notify_on_delete {
            return Err(WfpError::NeverMatch);
        }
        let id = SubscriptionId(self.next_sub);
        self.next_sub += 1;
        self.subs.insert(
            id,
            Sub {
                session: sid,
                spec,
                queue: VecDeque::new(),
            },
        );
        Ok(id)
    }

    /// Ends a subscription.
    ///
    /// # Errors
    ///
    /// `FWP_E_NOT_FOUND` for an unknown subscription.
    pub fn unsubscribe_changes(&mut self, id: SubscriptionId) -> Result<(), WfpError> {
        self.subs.remove(&id).map(|_| ()).ok_or(WfpError::NotFound)
    }

    /// Takes the queued change events of a subscription (empty if unknown).
    pub fn drain_changes(&mut self, id: SubscriptionId) -> Vec<ChangeEvent> {
        self.subs
            .get_mut(&id)
            .map(|s| s.queue.drain(..).collect())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- callouts (Fwps side)

    /// Registers a callout's code (`FwpsCalloutRegister`). A filter whose callout is added but
    /// not registered acts as a (hard) block unless `PERMIT_IF_CALLOUT_UNREGISTERED`.
    pub fn register_callout(&mut self, key: Guid, callout: Arc<dyn Callout>) {
        self.callouts.insert(key, callout);
    }

    /// Unregisters a callout's code (`FwpsCalloutUnregisterByKey`). Returns whether it was registered.
    pub fn unregister_callout(&mut self, key: Guid) -> bool {
        self.callouts.remove(&key).is_some()
    }

    // ---------------------------------------------------------------- classification

    /// Classifies at `layer` with the index (the production path). Pure apart from callouts.
    pub fn classify(&self, layer: Layer, values: &IncomingValues) -> ClassifyResult {
        let idx = &self.store.layers[layer.0 as usize];
        let mut m = Cands::new();
        let n = if idx.is_empty() {
            0
        } else {
            idx.lookup(values, &mut m)
        };
        arbitrate(
            layer,
            values,
            &m,
            n,
            &idx.sublayers,
            &self.callouts,
            self.options.arbitration,
        )
    }

    /// The filter `id` of `layer` (a sublayer result names its deciding filter by id); `None`
    /// once the filter has been deleted.
    pub fn filter_in_layer(&self, layer: Layer, id: u64) -> Option<&Filter> {
        self.store
            .layers
            .get(layer.0 as usize)?
            .all
            .get(&id)
            .map(|cf| &cf.filter)
    }

    /// The filter a [`FilterRef`] (a classification's `decided_by`, a veto's `vetoing`) names,
    /// for its key, display name, provider context and `rawContext`; `None` once the filter
    /// has been deleted (or, for a ref from another engine, if no such filter exists).
    pub fn resolve_filter(&self, f: &FilterRef) -> Option<&Filter> {
        self.store
            .layers
            .get(f.layer.0 as usize)?
            .all
            .get(&f.id)
            .map(|cf| &cf.filter)
    }

    /// Classifies at `layer` by scanning every filter: the plain reference classifier the
    /// index is checked against (tests, benchmarks). Always equal to [`Engine::classify`].
    pub fn classify_linear(&self, layer: Layer, values: &IncomingValues) -> ClassifyResult {
        let mut m = Vec::new();
        self.store.layers[layer.0 as usize].scan(values, &mut m);
        let n = m.len();
        // the reference reads every filter (no inline decision bits, no sublayer table)
        let m: Vec<Cand<'_>> = m.into_iter().map(Cand::slow).collect();
        arbitrate(
            layer,
            values,
            &m,
            n,
            &SublayerKeys::default(),
            &self.callouts,
            self.options.arbitration,
        )
    }

    // ---------------------------------------------------------------- net events

    /// Records the net events a classification implies: a drop (always, if collection is on),
    /// an allow (if allow collection is on) and a veto event.
    pub fn record_classify(
        &mut self,
        now: Duration,
        result: &ClassifyResult,
        header: NetEventHeader,
        is_reauth: bool,
        direction: u32,
    ) {
        if !self.options.collect_net_events {
            return;
        }
        if let Some(v) = &result.veto {
            self.events.push(
                now,
                header.clone(),
                NetEventKind::CalloutVeto {
                    layer: result.layer,
                    vetoed_filter_id: v.vetoed_filter_id,
                    vetoing_filter_id: v.vetoing.id,
                },
            );
        }
        let info = || {
            let (id, key, name, sub) = match &result.decided_by {
                Some(f) => {
                    let (key, name) = match self.resolve_filter(f) {
                        Some(x) => (x.key, x.name.clone()),
                        None => (Guid::NIL, String::new()),
                    };
                    (f.id, key, name, f.sublayer)
                }
                None => (0, Guid::NIL, String::new(), Guid::NIL),
            };
            ClassifyInfo {
                layer: result.layer,
                filter_id: id,
                filter_key: key,
                filter_name: name,
                sublayer: sub,
                is_reauth,
                direction,
                reason: match (&result.decision, &result.decided_by, &result.veto) {
                    (_, _, Some(_)) => "callout veto of a hard permit".into(),
                    (Decision::Block, Some(_), _) => "blocked by filter".into(),
                    (Decision::Permit, Some(_), _) => "permitted by filter".into(),
                    (_, None, _) => "no filter matched (default permit)".into(),
                },
            }
        };
        match result.decision {
            Decision::Block => self
                .events
                .push(now, header, NetEventKind::ClassifyDrop(info())),
            Decision::Permit if self.options.collect_allow_events => {
                self.events
                    .push(now, header, NetEventKind::ClassifyAllow(info()))
            }
            Decision::Permit => {}
        }
    }

    /// Records an arbitrary net event (used by IPsec for IKE failures).
    pub fn record_net_event(&mut self, now: Duration, header: NetEventHeader, kind: NetEventKind) {
        if self.options.collect_net_events {
            self.events.push(now, header, kind);
        }
    }

    /// `FwpmNetEventEnum`: the events in the ring, oldest first.
    pub fn net_events(&self) -> impl Iterator<Item = &NetEvent> {
        self.events.ring.iter()
    }

    /// How many events were overwritten because the ring was full.
    pub fn net_events_overwritten(&self) -> u64 {
        self.events.overwritten
    }

    /// `FwpmNetEventSubscribe`: new events are queued for [`Engine::net_event_drain`].
    pub fn net_event_subscribe(&mut self) -> NetEventSubscription {
        let id = self.events.next_sub;
        self.events.next_sub += 1;
        self.events.subs.insert(id, VecDeque::new());
        NetEventSubscription(id)
    }

    /// Ends a net-event subscription. Returns whether it existed.
    pub fn net_event_unsubscribe(&mut self, sub: NetEventSubscription) -> bool {
        self.events.subs.remove(&sub.0).is_some()
    }

    /// Takes the queued events of a subscription (empty if unknown).
    pub fn net_event_drain(&mut self, sub: NetEventSubscription) -> Vec<NetEvent> {
        self.events
            .subs
            .get_mut(&sub.0)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }
}
