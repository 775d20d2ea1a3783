//! The project's external oracle: a capture built from this crate's own IKE and ESP output is
//! dissected and decrypted by tshark through `shared/oracles/esp_pcap_check.py check`, using the
//! key records of `wsock_ipsec::keylog`. Checks header layouts, the non-ESP marker, SK payload
//! AAD and ICV, ESP nonce/AAD/ICV for GCM, CBC+HMAC and NULL+HMAC, padding and next header.
//! Skips with a message when tshark, python3 `cryptography` or the oracle script is missing.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wsock_ipsec::esp::{EspSuite, Integrity, OutboundSa, SaConfig};
use wsock_ipsec::ike::crypto::*;
use wsock_ipsec::ike::wire::{transform as t, *};
use wsock_ipsec::keylog::{EspKeyRecord, IkeKeyRecord};
use wsock_ipsec::natt;

/// Source, destination, SPI, suite, encryption key, integrity key.
type SaSpec = (Ipv4Addr, Ipv4Addr, u32, EspSuite, Vec<u8>, Vec<u8>);

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn oracle() -> Option<PathBuf> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/esp_pcap_check.py");
    let have = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !script.exists() {
        println!("SKIPPED: oracle script {} not found", script.display());
        return None;
    }
    if !have("tshark", &["--version"]) {
        println!("SKIPPED: tshark not installed (apt-get install tshark)");
        return None;
    }
    if !have("python3", &["-c", "import cryptography"]) {
        println!("SKIPPED: python3 with `cryptography` not available");
        return None;
    }
    Some(script)
}

/// Ethernet / IPv4 / UDP framing of one datagram (UDP checksum 0, as RFC 3948 allows).
fn frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    ident: u16,
) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [
        0xa1b2_c3d4u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        4u16.to_le_bytes().to_vec(),
    ] {
        p.extend_from_slice(&v);
    }
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&65535u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        p.extend_from_slice(&1_800_000_000u32.to_le_bytes());
        p.extend_from_slice(&((i as u32) * 1000).to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(f);
    }
    p
}

fn ts(addr: Ipv4Addr) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        addresses: AddressRange::V4(addr, addr),
    }
}

#[test]
fn tshark_dissects_and_decrypts_our_ike_and_esp() {
    let Some(script) = oracle() else { return };
    let mut frames = Vec::new();
    let (spi_i, spi_r) = (0x1122_3344_5566_7788u64, 0x99aa_bbcc_ddee_ff00u64);
    let (ni, nr) = (vec![0x4e; 32], vec![0x52; 32]);
    let ke_i = KeyExchange::generate(DhGroup::Curve25519).unwrap();
    let ke_r = KeyExchange::generate(DhGroup::Curve25519).unwrap();
    let sa_ike = PayloadRepr::Sa(vec![Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: vec![],
        transforms: vec![
            Transform::with_key_length(TransformType::ENCR, t::ENCR_AES_GCM_16, 256),
            Transform::new(TransformType::PRF, t::PRF_HMAC_SHA2_256),
            Transform::new(TransformType::DH, t::DH_CURVE25519),
        ],
    }]);
    let natd = |r, ip: Ipv4Addr| nat_detection_hash(spi_i, r, IpAddr::V4(ip), 500).to_vec();
    let init = |resp: bool, ke: &KeyExchange, n: &[u8]| MessageRepr {
        spi_i,
        spi_r: if resp { spi_r } else { 0 },
        exchange: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(!resp, resp),
        message_id: 0,
        payloads: vec![
            sa_ike.clone(),
            PayloadRepr::Ke {
                group: t::DH_CURVE25519,
                data: ke.public_value().to_vec(),
            },
            PayloadRepr::Nonce(n.to_vec()),
            PayloadRepr::Notify(Notify::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                natd(if resp { spi_r } else { 0 }, A),
            )),
            PayloadRepr::Notify(Notify::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                natd(if resp { spi_r } else { 0 }, B),
            )),
        ],
    };
    let m1 = init(false, &ke_i, &ni).emit().unwrap();
    let m2 = init(true, &ke_r, &nr).emit().unwrap();
    frames.push(frame(A, B, 500, 500, &m1, 1));
    frames.push(frame(B, A, 500, 500, &m2, 2));

    let pub_r = ke_r.public_value().to_vec();
    let g_ir = ke_i.agree(&pub_r).unwrap();
    let sk_suite = SkSuite::AesGcm16 { key_bits: 256 };
    let prf = Prf::HmacSha256;
    let keys = IkeSaKeys::derive(
        prf,
        &skeyseed(prf, &ni, &nr, &g_ir),
        &ni,
        &nr,
        spi_i,
        spi_r,
        sk_suite,
    )
    .unwrap();
    let mut sk_i = SkCrypter::new(sk_suite, &keys.sk_ei, &[]).unwrap();
    let mut sk_r = SkCrypter::new(sk_suite, &keys.sk_er, &[]).unwrap();

    // IKE_AUTH both ways, on the NAT-T port with the non-ESP marker.
    let esp_suite = EspSuite::AesGcm16 { key_bits: 128 };
    let (esp_spi_i, esp_spi_r) = (0xc001_0001u32, 0xc002_0002u32);
    for (resp, spi) in [(false, esp_spi_i), (true, esp_spi_r)] {
        let id = Identification {
            id_type: IdType::FQDN,
            data: if resp {
                b"b.test".to_vec()
            } else {
                b"a.test".to_vec()
            },
        };
        let id_body = [&[id.id_type.0, 0, 0, 0][..], &id.data].concat();
        let (first, nonce, skp) = if resp {
            (&m2, &ni, &keys.sk_pr)
        } else {
            (&m1, &nr, &keys.sk_pi)
        };
        let auth = psk_auth(
            prf,
            b"psk",
            &signed_octets(prf, first, nonce, skp, &id_body),
        );
        let inner = vec![
            if resp {
                PayloadRepr::IdR(id)
            } else {
                PayloadRepr::IdI(id)
            },
            PayloadRepr::Auth {
                method: AuthMethod::SHARED_KEY_MIC,
                data: auth,
            },
            PayloadRepr::Notify(Notify::new(NotifyType::USE_TRANSPORT_MODE, vec![])),
            PayloadRepr::Sa(vec![Proposal {
                number: 1,
                protocol: ProtocolId::ESP,
                spi: spi.to_be_bytes().to_vec(),
                transforms: vec![
                    Transform::with_key_length(TransformType::ENCR, t::ENCR_AES_GCM_16, 128),
                    Transform::new(TransformType::ESN, t::ESN_NONE),
                ],
            }]),
            PayloadRepr::TsI(vec![ts(A)]),
            PayloadRepr::TsR(vec![ts(B)]),
        ];
        let outer = MessageRepr {
            spi_i,
            spi_r,
            exchange: ExchangeType::IKE_AUTH,
            flags: Flags::new(!resp, resp),
            message_id: 1,
            payloads: vec![],
        };
        let msg = if resp {
            sk_r.seal(&outer, &inner)
        } else {
            sk_i.seal(&outer, &inner)
        }
        .unwrap();
        let mut d = Vec::new();
        natt::emit_ike(&msg, &mut d);
        let (s, dst) = if resp { (B, A) } else { (A, B) };
        frames.push(frame(s, dst, 4500, 4500, &d, 3 + u16::from(resp)));
    }
    frames.push(frame(A, B, 4500, 4500, &natt::KEEPALIVE, 5));

    // ESP: the negotiated GCM child SA both ways, plus CBC+HMAC and NULL+HMAC SAs.
    let child = ChildSaKeys::derive(prf, &keys.sk_d, None, &ni, &nr, esp_suite).unwrap();
    let mut records = Vec::new();
    let mut esp_frames = 0;
    let udp_inner = |sp: u16, dp: u16, data: &[u8]| {
        let mut u = sp.to_be_bytes().to_vec();
        u.extend_from_slice(&dp.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    };
    let tcp_syn = |sp: u16, dp: u16| {
        let mut h = sp.to_be_bytes().to_vec();
        h.extend_from_slice(&dp.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
        h
    };
    let sas: Vec<SaSpec> = vec![
        (
            A,
            B,
            esp_spi_r,
            esp_suite,
            child.encr_i.clone(),
            child.integ_i.clone(),
        ),
        (
            B,
            A,
            esp_spi_i,
            esp_suite,
            child.encr_r.clone(),
            child.integ_r.clone(),
        ),
        (
            A,
            B,
            0xc003_0003,
            EspSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
            vec![0x31; 16],
            vec![0x32; 32],
        ),
        (
            A,
            B,
            0xc004_0004,
            EspSuite::Null(Integrity::HmacSha1_96),
            vec![],
            vec![0x41; 20],
        ),
    ];
    for (src, dst, spi, suite, ek, ak) in sas {
        let mut tx = OutboundSa::new(&SaConfig::new(spi, suite), &ek, &ak, Duration::ZERO).unwrap();
        for (nh, payload) in [
            (6u8, tcp_syn(40000, 7)),
            (17, udp_inner(40001, 9999, b"hello esp")),
        ] {
            let mut pkt = Vec::new();
            tx.seal(Duration::ZERO, nh, &payload, &mut pkt).unwrap();
            frames.push(frame(src, dst, 4500, 4500, &pkt, 10 + esp_frames));
            esp_frames += 1;
        }
        records.push(
            EspKeyRecord {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                spi,
                suite,
                encr_key: ek,
                integ_key: ak,
            }
            .json()
            .unwrap(),
        );
    }

    let ike = IkeKeyRecord::new(spi_i, spi_r, sk_suite, &keys)
        .json()
        .unwrap();
    let keyfile = format!(
        "{{\"esp_sa\": [{}], \"ikev2\": [{ike}], \"check_checksums\": false, \"expect\": {{\"frames\": {}, \"ike_sa_init\": 2, \"ike_auth_decrypted\": 2, \"keepalive\": 1, \"esp_decrypted\": {esp_frames}, \"inner_tcp_ports\": [[40000, 7]], \"inner_udp_ports\": [[40001, 9999]]}}}}",
        records.join(", "),
        frames.len()
    );
    let dir = std::env::temp_dir().join(format!("wsock-ipsec-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap_path, key_path) = (dir.join("ours.pcap"), dir.join("keys.json"));
    std::fs::write(&pcap_path, pcap(&frames)).unwrap();
    std::fs::write(&key_path, keyfile).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args(["check", "--pcap"])
        .arg(&pcap_path)
        .arg("--keys")
        .arg(&key_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && text.contains("ORACLE OK"),
        "tshark oracle failed:\n{text}"
    );
}
