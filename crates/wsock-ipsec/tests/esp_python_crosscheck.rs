//! Cross-checks the ESP packet format against an independent implementation: Python's
//! `cryptography` package (AES-GCM, ChaCha20-Poly1305, AES-GMAC, AES-CBC, HMAC), both ways:
//! Python opens packets we sealed, and we open packets Python sealed. Skips (with a message) when
//! python3 or the module is missing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use wsock_ipsec::esp::{EspSuite, InboundSa, Integrity, OutboundSa, SaConfig};

/// Independent ESP in Python: `open <suite> <ekey> <akey> <esn> <seq> <packet>` prints
/// `<nh> <payload>`; `seal <suite> <ekey> <akey> <esn> <seq> <spi> <nh> <payload> <iv>` prints the
/// packet. All binary values are hex; `-` is the empty string.
const PY: &str = r#"
import sys, hmac, hashlib, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
H = lambda s: b"" if s == "-" else bytes.fromhex(s)
def icvlen(s): return {"gcm": 16, "chacha": 16, "gmac": 16, "null-sha256": 16, "null-sha1": 12, "cbc-sha256": 16, "cbc-sha1": 12}[s]
def ivlen(s): return 0 if s.startswith("null") else (16 if s.startswith("cbc") else 8)
def mac(s, k, d):
    h = hashlib.sha256 if s.endswith("sha256") else hashlib.sha1
    return hmac.new(k, d, h).digest()[:icvlen(s)]
def hi(esn, seq): return struct.pack("!I", seq >> 32) if esn else b""
def aad(spi4, esn, seq): return spi4 + (struct.pack("!Q", seq) if esn else struct.pack("!I", seq & 0xffffffff))
def aead(s, k): return ChaCha20Poly1305(k[:-4]) if s == "chacha" else AESGCM(k[:-4])
for line in sys.stdin:
    f = line.split()
    op, s, ek, ak, esn, seq = f[0], f[1], H(f[2]), H(f[3]), f[4] == "1", int(f[5])
    if op == "open":
        p = H(f[6]); n = ivlen(s); iv = p[8:8 + n]
        if s in ("gcm", "chacha"):
            plain = aead(s, ek).decrypt(ek[-4:] + iv, p[8 + n:], aad(p[:4], esn, seq))
        elif s == "gmac":
            body = p[:4] + hi(esn, seq) + p[4:-16]
            assert AESGCM(ek[:-4]).encrypt(ek[-4:] + iv, b"", body) == p[-16:]
            plain = p[8 + n:-16]
        else:
            assert hmac.compare_digest(mac(s, ak, p[:-icvlen(s)] + hi(esn, seq)), p[-icvlen(s):])
            plain = p[8 + n:-icvlen(s)]
            if s.startswith("cbc"):
                d = Cipher(algorithms.AES(ek), modes.CBC(iv)).decryptor()
                plain = d.update(plain) + d.finalize()
        pad = plain[-2]
        assert list(plain[-2 - pad:-2]) == list(range(1, pad + 1))
        print(plain[-1], plain[:-2 - pad].hex() or "-")
    else:
        spi, nh, payload, iv = int(f[6]), int(f[7]), H(f[8]), H(f[9])
        align = 16 if s.startswith("cbc") else 4
        pad = (-(len(payload) + 2)) % align
        plain = payload + bytes(range(1, pad + 1)) + bytes([pad, nh])
        head = struct.pack("!II", spi, seq & 0xffffffff)
        if s in ("gcm", "chacha"):
            out = head + iv + aead(s, ek).encrypt(ek[-4:] + iv, plain, aad(head[:4], esn, seq))
        elif s == "gmac":
            body = head + iv + plain
            out = body + AESGCM(ek[:-4]).encrypt(ek[-4:] + iv, b"", head[:4] + hi(esn, seq) + body[4:])
        else:
            if s.startswith("cbc"):
                e = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor()
                plain = e.update(plain) + e.finalize()
            body = head + iv + plain
            out = body + mac(s, ak, body + hi(esn, seq))
        print(out.hex())
"#;

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.ciphers.aead"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("SKIPPED: python3 with the `cryptography` module is not available");
    }
    ok
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cases() -> Vec<(&'static str, EspSuite)> {
    vec![
        ("gcm", EspSuite::AesGcm16 { key_bits: 128 }),
        ("gcm", EspSuite::AesGcm16 { key_bits: 256 }),
        ("chacha", EspSuite::ChaCha20Poly1305),
        ("gmac", EspSuite::NullAuthAesGmac { key_bits: 128 }),
        ("gmac", EspSuite::NullAuthAesGmac { key_bits: 256 }),
        ("null-sha256", EspSuite::Null(Integrity::HmacSha256_128)),
        ("null-sha1", EspSuite::Null(Integrity::HmacSha1_96)),
        (
            "cbc-sha256",
            EspSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
        ),
        (
            "cbc-sha1",
            EspSuite::AesCbc {
                key_bits: 256,
                integrity: Integrity::HmacSha1_96,
            },
        ),
    ]
}

#[test]
fn python_cryptography_agrees_both_ways() {
    if !python_available() {
        return;
    }
    const SPI: u32 = 0xc001_0203;
    let t0 = Duration::ZERO;
    let mut script = String::new();
    let mut expected_open = Vec::new();
    let mut sealed_by_python = Vec::new();
    for (name, suite) in cases() {
        for esn in [false, true] {
            let ek: Vec<u8> = (0..suite.encr_key_len())
                .map(|i| (i * 11 + 3) as u8)
                .collect();
            let ak: Vec<u8> = (0..suite.integ_key_len())
                .map(|i| (i * 13 + 5) as u8)
                .collect();
            let mut cfg = SaConfig::new(SPI, suite);
            cfg.esn = esn;
            let mut tx = OutboundSa::new(&cfg, &ek, &ak, t0).unwrap();
            for len in [0usize, 1, 15, 16, 17, 64, 1399] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 3 + len) as u8).collect();
                let mut pkt = Vec::new();
                let seq = tx.seal(t0, 6, &payload, &mut pkt).unwrap();
                script += &format!(
                    "open {name} {} {} {} {seq} {}\n",
                    hex(&ek),
                    hex(&ak),
                    u8::from(esn),
                    hex(&pkt)
                );
                expected_open.push(format!("6 {}", hex(&payload)));
                // Python seals one too. (Under ESN its high half is 0, which a fresh window
                // infers; the 12-byte AAD / appended seq_hi still differ from the non-ESN form.)
                let pseq: u64 = 9;
                let iv: Vec<u8> = (0..suite.iv_len())
                    .map(|i| (i as u8) ^ (len as u8))
                    .collect();
                script += &format!(
                    "seal {name} {} {} {} {pseq} {SPI} 17 {} {}\n",
                    hex(&ek),
                    hex(&ak),
                    u8::from(esn),
                    hex(&payload),
                    hex(&iv)
                );
                sealed_by_python.push((cfg, ek.clone(), ak.clone(), pseq, payload));
            }
        }
    }
    let mut child = Command::new("python3")
        .args(["-c", PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    // Feed stdin from another thread: Python answers while we write, and a full stdout pipe
    // would otherwise deadlock both sides.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let mut opened = 0;
    for (i, exp) in expected_open.iter().enumerate() {
        assert_eq!(
            lines.next().unwrap(),
            exp,
            "python opened our packet {i} differently"
        );
        let pkt = unhex(lines.next().unwrap());
        let (cfg, ek, ak, pseq, payload) = &sealed_by_python[i];
        let mut rx = InboundSa::new(cfg, ek, ak, t0).unwrap();
        let mut pkt = pkt;
        let o = rx.open(t0, &mut pkt).unwrap();
        assert_eq!(
            (o.next_header, o.seq, &o.payload[..]),
            (17, *pseq, &payload[..])
        );
        opened += 1;
    }
    assert!(opened > 0);
}
