//! Unit tests of the IKEv2 wire format: known layouts and rejection of bad lengths.

use super::*;

fn sa_init() -> MessageRepr {
    use transform as t;
    MessageRepr {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(true, false),
        message_id: 0,
        payloads: vec![
            PayloadRepr::Sa(vec![Proposal {
                number: 1,
                protocol: ProtocolId::IKE,
                spi: vec![],
                transforms: vec![
                    Transform::with_key_length(TransformType::ENCR, t::ENCR_AES_GCM_16, 256),
                    Transform::new(TransformType::PRF, t::PRF_HMAC_SHA2_256),
                    Transform::new(TransformType::DH, t::DH_CURVE25519),
                ],
            }]),
            PayloadRepr::Ke {
                group: t::DH_CURVE25519,
                data: vec![9; 32],
            },
            PayloadRepr::Nonce(vec![1; 32]),
            PayloadRepr::Notify(Notify::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                vec![2; 20],
            )),
        ],
    }
}

#[test]
fn known_layout_of_an_ike_sa_init_request() {
    let bytes = sa_init().emit().unwrap();
    // Header.
    assert_eq!(&bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(bytes[16], 33); // first payload: SA
    assert_eq!(bytes[17], 0x20); // version 2.0
    assert_eq!(bytes[18], 34); // IKE_SA_INIT
    assert_eq!(bytes[19], 0x08); // I flag
    assert_eq!(
        u32::from_be_bytes(bytes[24..28].try_into().unwrap()) as usize,
        bytes.len()
    );
    // SA payload: generic header (next = KE), one proposal of 3 transforms, 4+8+12+8+8 = 40.
    assert_eq!(&bytes[28..32], &[34, 0, 0, 40]);
    assert_eq!(&bytes[32..40], &[0, 0, 0, 36, 1, 1, 0, 3]);
    // First transform: more follow (3), length 12, ENCR 20 with key length attribute 0x800e 256.
    assert_eq!(
        &bytes[40..52],
        &[3, 0, 0, 12, 1, 0, 0, 20, 0x80, 0x0e, 1, 0]
    );
    // Last transform has "last" = 0.
    assert_eq!(&bytes[60..68], &[0, 0, 0, 8, 4, 0, 0, 31]);
    // KE: group 31, reserved.
    assert_eq!(&bytes[68..72], &[40, 0, 0, 40]);
    assert_eq!(&bytes[72..76], &[0, 31, 0, 0]);
    assert_eq!(MessageRepr::parse(&bytes).unwrap(), sa_init());
}

#[test]
fn header_checks() {
    let bytes = sa_init().emit().unwrap();
    assert_eq!(
        Header::parse(&bytes[..27]).unwrap_err(),
        IpsecError::InvalidIkeHeader("shorter than 28 bytes")
    );
    let mut v1 = bytes.clone();
    v1[17] = 0x10;
    assert_eq!(
        MessageRepr::parse(&v1).unwrap_err(),
        IpsecError::InvalidMajorVersion(1)
    );
    assert_eq!(IpsecError::InvalidMajorVersion(1).win32_code(), 13880);
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        MessageRepr::parse(&longer),
        Err(IpsecError::InvalidIkeHeader(_))
    ));
    let mut small = bytes.clone();
    small[24..28].copy_from_slice(&27u32.to_be_bytes());
    assert!(matches!(
        MessageRepr::parse(&small),
        Err(IpsecError::InvalidIkeHeader(_))
    ));
}

#[test]
fn bad_payload_lengths_are_typed_errors() {
    let bytes = sa_init().emit().unwrap();
    // SA payload length pointing past the end.
    let mut b = bytes.clone();
    b[30..32].copy_from_slice(&0xffffu16.to_be_bytes());
    let e = MessageRepr::parse(&b).unwrap_err();
    assert_eq!(
        e,
        IpsecError::MalformedPayload {
            payload: PayloadType::SA,
            reason: "payload length past the end"
        }
    );
    assert_eq!(e.win32_code(), 13830);
    // Length below the generic header.
    let mut b = bytes.clone();
    b[30..32].copy_from_slice(&3u16.to_be_bytes());
    assert!(matches!(
        MessageRepr::parse(&b),
        Err(IpsecError::MalformedPayload {
            payload: PayloadType::SA,
            ..
        })
    ));
    // Transform count larger than the proposal holds.
    let mut b = bytes.clone();
    b[39] = 4;
    assert!(matches!(
        MessageRepr::parse(&b),
        Err(IpsecError::MalformedPayload {
            payload: PayloadType::TRANSFORM,
            ..
        })
    ));
    // Last-proposal flag says "more follow" but nothing does.
    let mut b = bytes.clone();
    b[32] = 2;
    let e = MessageRepr::parse(&b).unwrap_err();
    assert_eq!(e.win32_code(), 13831);
    // Trailing bytes after the last payload: extend the message and its length.
    let mut b = bytes.clone();
    b.extend_from_slice(&[0, 0, 0, 0]);
    let l = b.len() as u32;
    b[24..28].copy_from_slice(&l.to_be_bytes());
    assert!(matches!(
        MessageRepr::parse(&b),
        Err(IpsecError::InvalidIkeHeader(_))
    ));
}

#[test]
fn every_payload_kind_round_trips() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let msg = MessageRepr {
        spi_i: 7,
        spi_r: 8,
        exchange: ExchangeType::IKE_AUTH,
        flags: Flags::new(false, true),
        message_id: 1,
        payloads: vec![
            PayloadRepr::IdI(Identification {
                id_type: IdType::FQDN,
                data: b"a.lab".to_vec(),
            }),
            PayloadRepr::IdR(Identification {
                id_type: IdType::IPV4_ADDR,
                data: vec![10, 0, 0, 1],
            }),
            PayloadRepr::Cert {
                encoding: CertEncoding::X509_SIGNATURE,
                data: vec![0x30, 0x82],
            },
            PayloadRepr::CertReq {
                encoding: CertEncoding::X509_SIGNATURE,
                data: vec![0xab; 20],
            },
            PayloadRepr::Auth {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![5; 32],
            },
            PayloadRepr::Notify(Notify::new(NotifyType::USE_TRANSPORT_MODE, vec![])),
            PayloadRepr::Notify(Notify::new(
                NotifyType::INVALID_KE_PAYLOAD,
                19u16.to_be_bytes().to_vec(),
            )),
            PayloadRepr::Notify(Notify {
                protocol: ProtocolId::ESP,
                spi: vec![1, 2, 3, 4],
                kind: NotifyType::REKEY_SA,
                data: vec![],
            }),
            PayloadRepr::Delete(Delete {
                protocol: ProtocolId::ESP,
                spi_size: 4,
                spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
            }),
            PayloadRepr::Delete(Delete {
                protocol: ProtocolId::IKE,
                spi_size: 0,
                spis: vec![],
            }),
            PayloadRepr::VendorId(b"wsock".to_vec()),
            PayloadRepr::TsI(vec![TrafficSelector {
                ip_protocol: 6,
                start_port: 40000,
                end_port: 40000,
                addresses: AddressRange::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 1)),
            }]),
            PayloadRepr::TsR(vec![TrafficSelector {
                ip_protocol: 0,
                start_port: 0,
                end_port: 65535,
                addresses: AddressRange::V6(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from([0xff; 16])),
            }]),
            PayloadRepr::Unknown {
                kind: PayloadType::CP,
                critical: true,
                data: vec![1, 0, 0, 0],
            },
            PayloadRepr::Encrypted {
                first_inner: PayloadType::IDI,
                data: vec![0xee; 40],
            },
        ],
    };
    let bytes = msg.emit().unwrap();
    assert_eq!(MessageRepr::parse(&bytes).unwrap(), msg);
    // The view walks the same chain.
    let kinds: Vec<_> = Message::parse(&bytes)
        .unwrap()
        .payloads()
        .map(|p| p.unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        msg.payloads
            .iter()
            .map(PayloadRepr::kind)
            .collect::<Vec<_>>()
    );
    // The SK payload must be last on emit, too.
    let mut bad = msg.clone();
    bad.payloads.swap(0, 14);
    assert!(bad.emit().is_err());
}
