//! Classification cost at ALE_AUTH_CONNECT_V4 with 10 .. 100,000 realistic 5-tuple filters:
//! the indexed classifier (ours) against the linear reference scan (peer) in the same run.
//!
//! Prints `compare: classify_<n> ours=<ns> ns peer(linear)=<ns> ns ratio=<ours/peer>` per N,
//! then our cost at 100,000 relative to our cost at 10. Arguments cargo passes (`--bench`)
//! are ignored.
//!
//! Profiling: `WFP_BENCH_PROFILE=<n>` builds only the n-filter engine and runs only the indexed
//! classifier for about 5 s (for `perf record` / `valgrind --tool=callgrind`), printing nothing
//! but its cost.

use std::hint::black_box;
use std::time::Instant;

use wsock_wfp::*;

const L: Layer = Layer::ALE_AUTH_CONNECT_V4;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PORTS: [u16; 8] = [22, 25, 53, 80, 443, 3389, 8080, 8443];

fn build(n: usize, rng: &mut Rng) -> Engine {
    let mut e = Engine::new();
    let s = e.open_session(false);
    let hi = e.add_sublayer(s, &Sublayer::new("admin", 0x9000)).unwrap();
    for i in 0..n {
        let kind = rng.below(10);
        // remote hosts live in 10.0.0.0/8
        let host = 0x0A00_0000 | (rng.below(1 << 24) as u32);
        let mut f = Filter::new(
            format!("f{i}"),
            L,
            if rng.below(3) == 0 {
                Action::Permit
            } else {
                Action::Block
            },
        );
        if rng.below(4) == 0 {
            f = f.sublayer(hi);
        }
        f = match kind {
            // exact host + port + protocol
            0..=4 => f
                .condition(
                    Field::IP_REMOTE_ADDRESS,
                    MatchType::Equal,
                    FwpValue::Uint32(host),
                )
                .condition(
                    Field::IP_REMOTE_PORT,
                    MatchType::Equal,
                    FwpValue::Uint16(PORTS[rng.below(8) as usize]),
                )
                .condition(
                    Field::IP_PROTOCOL,
                    MatchType::Equal,
                    FwpValue::Uint8(if rng.below(4) == 0 { 17 } else { 6 }),
                ),
            // subnet (/24 or /16) + port
            5..=7 => {
                let len = if rng.below(2) == 0 { 24 } else { 16 };
                f.condition(
                    Field::IP_REMOTE_ADDRESS,
                    MatchType::Equal,
                    FwpValue::v4_prefix(host.into(), len),
                )
                .condition(
                    Field::IP_REMOTE_PORT,
                    MatchType::Equal,
                    FwpValue::Uint16(PORTS[rng.below(8) as usize]),
                )
            }
            // local port range + protocol
            8 => {
                let lo = 1024 + rng.below(60000) as u16;
                f.condition(
                    Field::IP_LOCAL_PORT,
                    MatchType::Range,
                    FwpValue::range(
                        FwpValue::Uint16(lo),
                        FwpValue::Uint16(lo.saturating_add(rng.below(512) as u16)),
                    ),
                )
                .condition(
                    Field::IP_PROTOCOL,
                    MatchType::Equal,
                    FwpValue::Uint8(6),
                )
            }
            // exact host only
            _ => f.condition(
                Field::IP_REMOTE_ADDRESS,
                MatchType::Equal,
                FwpValue::Uint32(host),
            ),
        };
        e.add_filter(s, &f).unwrap();
    }
    e
}

fn packets(count: usize, rng: &mut Rng, engine_hosts: &[u32]) -> Vec<IncomingValues> {
    (0..count)
        .map(|i| {
            let ra = if i % 2 == 0 && !engine_hosts.is_empty() {
                engine_hosts[rng.below(engine_hosts.len() as u64) as usize]
            } else {
                0x0A00_0000 | (rng.below(1 << 24) as u32)
            };
            IncomingValues::new()
                .with(Field::IP_REMOTE_ADDRESS, FwpValue::Uint32(ra))
                .with(Field::IP_LOCAL_ADDRESS, FwpValue::Uint32(0x0A00_0001))
                .with(
                    Field::IP_REMOTE_PORT,
                    FwpValue::Uint16(PORTS[rng.below(8) as usize]),
                )
                .with(
                    Field::IP_LOCAL_PORT,
                    FwpValue::Uint16(1024 + rng.below(64000) as u16),
                )
                .with(
                    Field::IP_PROTOCOL,
                    FwpValue::Uint8(if rng.below(4) == 0 { 17 } else { 6 }),
                )
                .with(Field::ALE_APP_ID, FwpValue::app_id("c:\\apps\\client.exe"))
                .with(Field::FLAGS, FwpValue::Uint32(0))
        })
        .collect()
}

fn time_ns(
    e: &Engine,
    pk: &[IncomingValues],
    linear: bool,
    min_iters: usize,
    budget_ms: u128,
) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    loop {
        for p in pk {
            let r = if linear {
                e.classify_linear(L, p)
            } else {
                e.classify(L, p)
            };
            black_box(r.decision);
            n += 1;
        }
        if n >= min_iters && start.elapsed().as_millis() >= budget_ms {
            break;
        }
        if linear && start.elapsed().as_millis() >= budget_ms * 4 {
            break;
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The engine with `n` filters and the 1024 packets classified against it.
fn setup(n: usize) -> (Engine, Vec<IncomingValues>) {
    let mut rng = Rng(0x5EED_0000 + n as u64);
    let e = build(n, &mut rng);
    let hosts: Vec<u32> = e
        .enum_filters(
            e_session(&e),
            &FilterEnumTemplate {
                layer: Some(L),
                ..Default::default()
            },
        )
        .map(|v| {
            v.iter()
                .filter_map(|f| match f.conditions.first().map(|c| &c.value) {
                    Some(FwpValue::Uint32(a)) => Some(*a),
                    Some(FwpValue::V4AddrMask { addr, .. }) => Some(*addr | 7),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let pk = packets(1024, &mut rng, &hosts);
    (e, pk)
}

fn main() {
    if let Some(n) = std::env::var("WFP_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let (e, pk) = setup(n);
        println!(
            "profile: classify_{n} ours={:.0} ns",
            time_ns(&e, &pk, false, 1, 5000)
        );
        return;
    }
    let mut ours_at = Vec::new();
    for &n in &[10usize, 1_000, 10_000, 100_000] {
        let (e, pk) = setup(n);
        // correctness spot check
        for p in pk.iter().take(64) {
            assert_eq!(e.classify(L, p), e.classify_linear(L, p));
        }
        let ours = time_ns(&e, &pk, false, 20_000, 1500);
        let peer = time_ns(&e, &pk, true, if n >= 10_000 { 200 } else { 5_000 }, 1500);
        println!(
            "compare: classify_{n} ours={ours:.0} ns peer(linear)={peer:.0} ns ratio={:.4}",
            ours / peer
        );
        ours_at.push(ours);
    }
    let (first, last) = (ours_at[0], ours_at[ours_at.len() - 1]);
    println!(
        "compare: classify_100000_vs_10 ours={last:.0} ns peer(ours_at_10)={first:.0} ns ratio={:.2} (target <= 3.00: {})",
        last / first,
        if last / first <= 3.0 { "met" } else { "missed" }
    );
}

fn e_session(_e: &Engine) -> SessionId {
    // enum_filters needs a session; the engine built in `build` opened session 1
    SessionId(1)
}
