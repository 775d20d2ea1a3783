//! ESP seal + open throughput against raw ring AES-256-GCM on the same buffers.
//!
//! Both sides do, per packet: copy the payload into a reused buffer, seal, open. Ours adds the
//! ESP header, padding, trailer, sequence numbers, lifetime accounting and the anti-replay
//! window. Runs are interleaved and the median of several is printed as
//! `compare: esp_<size> ours=<MB/s> MB/s peer(ring-aead)=<MB/s> MB/s ratio=<ours/peer>`.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::hint::black_box;
use std::time::{Duration, Instant};
use wsock_ipsec::esp::{EspSuite, InboundSa, OutboundSa, SaConfig};

const ROUNDS: usize = 9;

fn ours(size: usize, iters: usize) -> f64 {
    let suite = EspSuite::AesGcm16 { key_bits: 256 };
    let key = [0x42u8; 36];
    let mut cfg = SaConfig::new(0xc000_0001, suite);
    cfg.esn = true; // a long benchmark must not run out of 32-bit sequence numbers
    let now = Duration::ZERO;
    let mut tx = OutboundSa::new(&cfg, &key, &[], now).unwrap();
    let mut rx = InboundSa::new(&cfg, &key, &[], now).unwrap();
    let payload = vec![0xA5u8; size];
    let mut buf = Vec::with_capacity(tx.packet_len(size));
    let hdr = tx.header_len();
    let start = Instant::now();
    for _ in 0..iters {
        buf.clear();
        buf.resize(hdr, 0);
        buf.extend_from_slice(&payload);
        tx.seal_in_place(now, 6, &mut buf, 0).unwrap();
        let o = rx.open(now, &mut buf).unwrap();
        black_box(o.payload.len());
    }
    (size * iters) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn peer(size: usize, iters: usize) -> f64 {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42u8; 32]).unwrap());
    let payload = vec![0xA5u8; size];
    let mut buf = Vec::with_capacity(size + 16);
    let start = Instant::now();
    for i in 0..iters as u64 {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&i.to_be_bytes());
        let aad = [0u8, 0, 0, 1, 0, 0, 0, 1];
        buf.clear();
        buf.extend_from_slice(&payload);
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::from(aad), &mut buf)
            .unwrap();
        buf.extend_from_slice(tag.as_ref());
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(aad), &mut buf)
            .unwrap();
        black_box(plain.len());
    }
    (size * iters) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    for (size, iters) in [(1400usize, 20_000usize), (65536, 500)] {
        // Warm up both.
        ours(size, iters / 4);
        peer(size, iters / 4);
        let mut o = Vec::new();
        let mut p = Vec::new();
        for _ in 0..ROUNDS {
            o.push(ours(size, iters));
            p.push(peer(size, iters));
        }
        let (o, p) = (median(o), median(p));
        println!(
            "compare: esp_{size} ours={o:.0} MB/s peer(ring-aead)={p:.0} MB/s ratio={:.3}",
            o / p
        );
    }
}
