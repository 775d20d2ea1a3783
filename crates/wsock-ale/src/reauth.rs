//! Which policy changes can matter to which flows.
//!
//! The engine tells ALE *that* a layer changed (a generation counter per layer) and, through a
//! change subscription, *which* filters were added or deleted. ALE keeps, for every live filter
//! at a re-authorization layer, the conditions it has on the 5-tuple, and a bounded log of the
//! changes per layer. A flow whose layer changed is re-classified only if one of the changes
//! since its last authorization could match its 5-tuple; a filter that cannot match the flow
//! cannot change its decision, whether added or deleted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use wsock_wfp::{
    Action, ChangeType, Condition, Engine, Field, FilterEnumTemplate, FilterRef, Guid,
    IncomingValues, Layer, ObjectKind, SessionId, SubscriptionId, SubscriptionSpec,
};

/// Fields a scope looks at.
const SCOPE_FIELDS: [Field; 5] = [
    Field::IP_PROTOCOL,
    Field::IP_LOCAL_ADDRESS,
    Field::IP_LOCAL_PORT,
    Field::IP_REMOTE_ADDRESS,
    Field::IP_REMOTE_PORT,
];

/// Changes kept per layer; flows older than the log are re-classified conservatively.
const LOG_CAP: usize = 4096;

/// What a changed filter could match.
#[derive(Debug)]
pub(crate) enum Scope {
    /// Unknown: may match anything.
    Any,
    /// Nothing any flow ever saw (added and deleted between two looks at the engine, with no
    /// classification in between).
    Never,
    /// Its conditions on the 5-tuple fields.
    Conds(Vec<Condition>),
}

impl Scope {
    fn of(conds: &[Condition]) -> Scope {
        Scope::Conds(
            conds
                .iter()
                .filter(|c| SCOPE_FIELDS.contains(&c.field))
                .cloned()
                .collect(),
        )
    }

    /// Whether a filter with these conditions could match `v` (same field: OR; different
    /// fields: AND, as the engine evaluates; other fields are assumed to match).
    pub(crate) fn may_match(&self, v: &IncomingValues) -> bool {
        let conds = match self {
            Scope::Any => return true,
            Scope::Never => return false,
            Scope::Conds(c) => c,
        };
        SCOPE_FIELDS.iter().all(|f| {
            let mut group = conds.iter().filter(|c| c.field == *f).peekable();
            if group.peek().is_none() {
                return true;
            }
            let x = v.get(*f);
            group.any(|c| c.matches(x))
        })
    }
}

#[derive(Debug, Default)]
struct LayerLog {
    /// Generation after the newest logged change.
    gen: u64,
    /// (generation after the change, scope of the changed filter), oldest first.
    entries: VecDeque<(u64, Arc<Scope>)>,
}

/// The change log.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    subs: Vec<SubscriptionId>,
    scopes: BTreeMap<u64, Arc<Scope>>,
    layers: BTreeMap<Layer, LayerLog>,
}

fn reauth_layers() -> impl Iterator<Item = Layer> {
    [
        Layer::ALE_AUTH_CONNECT_V4,
        Layer::ALE_AUTH_CONNECT_V6,
        Layer::ALE_AUTH_RECV_ACCEPT_V4,
        Layer::ALE_AUTH_RECV_ACCEPT_V6,
    ]
    .into_iter()
}

impl ChangeLog {
    /// Subscribes to filter changes at the re-authorization layers through `session` and
    /// records the filters already there. On any engine error the log stays empty and every
    /// policy change re-classifies (the safe default).
    pub(crate) fn attach(engine: &mut Engine, session: SessionId) -> ChangeLog {
        let mut log = ChangeLog::default();
        for layer in reauth_layers() {
            let spec = SubscriptionSpec {
                kinds: vec![ObjectKind::Filter],
                layer: Some(layer),
                ..SubscriptionSpec::default()
            };
            let Ok(sub) = engine.subscribe_changes(session, spec) else {
                return ChangeLog::default();
            };
            log.subs.push(sub);
            let t = FilterEnumTemplate {
                layer: Some(layer),
                ..FilterEnumTemplate::default()
            };
            if let Ok(fs) = engine.enum_filters(session, &t) {
                for f in fs {
                    log.scopes.insert(f.id, Arc::new(Scope::of(&f.conditions)));
                }
            }
            log.layers.insert(
                layer,
                LayerLog {
                    gen: engine.layer_generation(layer),
                    entries: VecDeque::new(),
                },
            );
        }
        log
    }

    /// Takes the engine's queued changes into the log.
    pub(crate) fn sync(&mut self, engine: &mut Engine) {
        for i in 0..self.subs.len() {
            let sub = self.subs[i];
            for c in engine.drain_changes(sub) {
                let Some(layer) = c.layer else { continue };
                let scope = match c.change {
                    ChangeType::Add => {
                        let r = FilterRef {
                            id: c.id,
                            layer,
                            sublayer: Guid::NIL,
                            action: Action::Permit,
                        };
                        // ALE syncs before handing the engine out and before recording a new
                        // flow, so a filter already gone here was added and deleted with no
                        // classification at its layer in between
                        let s = Arc::new(
                            engine
                                .resolve_filter(&r)
                                .map(|f| Scope::of(&f.conditions))
                                .unwrap_or(Scope::Never),
                        );
                        self.scopes.insert(c.id, s.clone());
                        s
                    }
                    ChangeType::Delete => self
                        .scopes
                        .remove(&c.id)
                        .unwrap_or_else(|| Arc::new(Scope::Any)),
                };
                let l = self.layers.entry(layer).or_default();
                l.gen += 1;
                l.entries.push_back((l.gen, scope));
                if l.entries.len() > LOG_CAP {
                    l.entries.pop_front();
                }
            }
        }
    }

    /// Whether any change at `layer` after generation `since` (up to `current`) could match a
    /// flow whose re-authorization values are `v`. `true` when the log cannot tell.
    pub(crate) fn may_affect(
        &self,
        layer: Layer,
        since: u64,
        current: u64,
        v: &IncomingValues,
    ) -> bool {
        let Some(l) = self.layers.get(&layer) else {
            return true;
        };
        if l.gen != current {
            return true;
        }
        match l.entries.front() {
            Some((first, _)) if *first <= since.saturating_add(1) => {}
            _ => return true,
        }
        l.entries
            .iter()
            .filter(|(g, _)| *g > since)
            .any(|(_, s)| s.may_match(v))
    }
}
