//! Cross-checks the IKEv2 key derivation, Diffie-Hellman and SK payload protection against an
//! independent implementation written with Python's `hmac`/`hashlib` and `cryptography` (the
//! same derivation the project's oracle `ikev2_probe.py` uses against strongSwan). Skips with a
//! message when python3 or `cryptography` is missing.

use std::io::Write;
use std::process::{Command, Stdio};
use wsock_ipsec::esp::{EspSuite, Integrity};
use wsock_ipsec::ike::crypto::*;
use wsock_ipsec::ike::wire::*;

/// Commands on stdin (hex values, `-` = empty), one answer line each:
/// `dh <group> <our public>` -> `<their public> <shared>`;
/// `keys <hash> <ni> <nr> <gir> <spii> <spir> <integ_len> <encr_len> <esp_len>` -> the seven
/// IKE SA keys and KEYMAT, space-separated;
/// `skgcm <sk_e> <msg>` and `skcbc <sk_e> <sk_a> <icv_len> <msg>` -> the inner payload chain;
/// `auth <psk> <msg> <nonce> <sk_p> <id_body>` -> the PSK AUTH data (SHA-256 PRF);
/// `natd <spii> <spir> <ip bytes> <port>` -> the NAT detection hash.
const PY: &str = r#"
import sys, hmac, hashlib
from cryptography.hazmat.primitives.asymmetric import x25519, ec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
H = lambda s: b"" if s == "-" else bytes.fromhex(s)
X = lambda b: b.hex() or "-"
def prf(h, k, d): return hmac.new(k, d, h).digest()
def prfplus(h, k, s, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = prf(h, k, t + s + bytes([i])); out += t; i += 1
    return out[:n]
for line in sys.stdin:
    f = line.split()
    if f[0] == "dh":
        g, peer = int(f[1]), H(f[2])
        if g == 31:
            k = x25519.X25519PrivateKey.generate()
            pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            shared = k.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
        else:
            curve = ec.SECP256R1() if g == 19 else ec.SECP384R1()
            k = ec.generate_private_key(curve)
            pub = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
            shared = k.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + peer))
        print(X(pub), X(shared))
    elif f[0] == "keys":
        h = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384}[f[1]]
        ni, nr, gir, spii, spir = map(H, f[2:7]); a, e, esp = int(f[7]), int(f[8]), int(f[9])
        d = h().digest_size
        seed = prf(h, ni + nr, gir)
        km = prfplus(h, seed, ni + nr + spii + spir, 3 * d + 2 * a + 2 * e)
        sizes = [d, a, a, e, e, d, d]; out, at = [], 0
        for s in sizes: out.append(km[at:at + s]); at += s
        keymat = prfplus(h, out[0], ni + nr, esp)
        print(" ".join(X(x) for x in [seed] + out + [keymat]))
    elif f[0] == "skgcm":
        k, m = H(f[1]), H(f[2])
        iv, body = m[32:40], m[40:]
        plain = AESGCM(k[:-4]).decrypt(k[-4:] + iv, body, m[:32])
        print(X(plain[:-1 - plain[-1]]))
    elif f[0] == "skcbc":
        k, a, n, m = H(f[1]), H(f[2]), int(f[3]), H(f[4])
        assert hmac.compare_digest(hmac.new(a, m[:-n], hashlib.sha256).digest()[:n], m[-n:])
        d = Cipher(algorithms.AES(k), modes.CBC(m[32:48])).decryptor()
        plain = d.update(m[48:-n]) + d.finalize()
        print(X(plain[:-1 - plain[-1]]))
    elif f[0] == "auth":
        psk, msg, nonce, skp, idb = map(H, f[1:6])
        h = hashlib.sha256
        print(X(prf(h, prf(h, psk, b"Key Pad for IKEv2"), msg + nonce + prf(h, skp, idb))))
    elif f[0] == "natd":
        print(X(hashlib.sha1(H(f[1]) + H(f[2]) + H(f[3]) + int(f[4]).to_bytes(2, "big")).digest()))
"#;

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import cryptography.hazmat.primitives.asymmetric.x25519",
        ])
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

fn python(script: String) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn python_agrees_on_dh_key_derivation_and_sk_payloads() {
    if !python_available() {
        return;
    }
    // 1. Diffie-Hellman with every group.
    let groups = [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Curve25519];
    let ours: Vec<KeyExchange> = groups
        .iter()
        .map(|g| KeyExchange::generate(*g).unwrap())
        .collect();
    let script: String = ours
        .iter()
        .map(|k| {
            format!(
                "dh {} {}\n",
                k.group().transform_id(),
                hex(k.public_value())
            )
        })
        .collect();
    let answers = python(script);
    let mut shared = Vec::new();
    for (k, line) in ours.into_iter().zip(&answers) {
        let mut it = line.split(' ');
        let (theirs, their_shared) = (unhex(it.next().unwrap()), unhex(it.next().unwrap()));
        let s = k.agree(&theirs).unwrap();
        assert_eq!(s, their_shared);
        shared.push(s);
    }

    // 2. SKEYSEED, the seven IKE SA keys and child KEYMAT, for each PRF and two SK suites.
    let (ni, nr) = ([0x11u8; 32], [0x22u8; 24]);
    let (spi_i, spi_r) = (0x0102_0304_0506_0708u64, 0x1112_1314_1516_1718u64);
    let esp = EspSuite::AesGcm16 { key_bits: 128 };
    let esp_len = 2 * (esp.encr_key_len() + esp.integ_key_len());
    let mut script = String::new();
    let mut ours = Vec::new();
    for (prf, name) in [
        (Prf::HmacSha1, "sha1"),
        (Prf::HmacSha256, "sha256"),
        (Prf::HmacSha384, "sha384"),
    ] {
        for sk in [
            SkSuite::AesGcm16 { key_bits: 256 },
            SkSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
        ] {
            for g in &shared {
                script += &format!(
                    "keys {name} {} {} {} {} {} {} {} {esp_len}\n",
                    hex(&ni),
                    hex(&nr),
                    hex(g),
                    hex(&spi_i.to_be_bytes()),
                    hex(&spi_r.to_be_bytes()),
                    sk.integ_key_len(),
                    sk.encr_key_len()
                );
                let seed = skeyseed(prf, &ni, &nr, g);
                let k = IkeSaKeys::derive(prf, &seed, &ni, &nr, spi_i, spi_r, sk).unwrap();
                let c = ChildSaKeys::derive(prf, &k.sk_d, None, &ni, &nr, esp).unwrap();
                let keymat = [
                    c.encr_i.clone(),
                    c.integ_i.clone(),
                    c.encr_r.clone(),
                    c.integ_r.clone(),
                ]
                .concat();
                ours.push(
                    [
                        &seed, &k.sk_d, &k.sk_ai, &k.sk_ar, &k.sk_ei, &k.sk_er, &k.sk_pi, &k.sk_pr,
                        &keymat,
                    ]
                    .iter()
                    .map(|v| hex(v))
                    .collect::<Vec<_>>()
                    .join(" "),
                );
            }
        }
    }
    assert_eq!(python(script), ours);

    // 3. SK payloads we seal, Python opens.
    let outer = MessageRepr {
        spi_i,
        spi_r,
        exchange: ExchangeType::IKE_AUTH,
        flags: Flags::new(true, false),
        message_id: 1,
        payloads: vec![],
    };
    let inner = vec![
        PayloadRepr::IdI(Identification {
            id_type: IdType::FQDN,
            data: b"initiator.test".to_vec(),
        }),
        PayloadRepr::Auth {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![0x42; 32],
        },
        PayloadRepr::Notify(Notify::new(NotifyType::USE_TRANSPORT_MODE, vec![])),
    ];
    let mut chain = Vec::new();
    emit_payload_chain(&inner, &mut chain).unwrap();
    let gcm_key: Vec<u8> = (0..36).collect();
    let cbc_key: Vec<u8> = (0..32).map(|i| i ^ 0x33).collect();
    let mac_key: Vec<u8> = (0..32).map(|i| i ^ 0x77).collect();
    let mut gcm = SkCrypter::new(SkSuite::AesGcm16 { key_bits: 256 }, &gcm_key, &[]).unwrap();
    let cbc_suite = SkSuite::AesCbc {
        key_bits: 256,
        integrity: Integrity::HmacSha256_128,
    };
    let mut cbc = SkCrypter::new(cbc_suite, &cbc_key, &mac_key).unwrap();
    let m1 = gcm.seal(&outer, &inner).unwrap();
    let m2 = cbc.seal(&outer, &inner).unwrap();
    let script = format!(
        "skgcm {} {}\nskcbc {} {} 16 {}\n",
        hex(&gcm_key),
        hex(&m1),
        hex(&cbc_key),
        hex(&mac_key),
        hex(&m2)
    );
    assert_eq!(python(script), vec![hex(&chain), hex(&chain)]);

    // 4. PSK AUTH and NAT detection hashes.
    let id_body = [&[2u8, 0, 0, 0][..], b"initiator.test"].concat();
    let sk_pi = [0x5au8; 32];
    let octets = signed_octets(Prf::HmacSha256, &m1, &nr, &sk_pi, &id_body);
    let auth = psk_auth(Prf::HmacSha256, b"secret", &octets);
    let v4 = std::net::IpAddr::from([10, 99, 0, 1]);
    let v6 = std::net::IpAddr::from([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let script = format!(
        "auth {} {} {} {} {}\nnatd {} {} {} 4500\nnatd {} {} {} 500\n",
        hex(b"secret"),
        hex(&m1),
        hex(&nr),
        hex(&sk_pi),
        hex(&id_body),
        hex(&spi_i.to_be_bytes()),
        hex(&[0; 8]),
        hex(&[10, 99, 0, 1]),
        hex(&spi_i.to_be_bytes()),
        hex(&spi_r.to_be_bytes()),
        hex(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    );
    assert_eq!(
        python(script),
        vec![
            hex(&auth),
            hex(&nat_detection_hash(spi_i, 0, v4, 4500)),
            hex(&nat_detection_hash(spi_i, spi_r, v6, 500)),
        ]
    );
}
