//! SA proposals: building them from suites, reading a chosen one back, and the responder's
//! choice among offered proposals (RFC 7296 §2.7, §3.3).
//!
//! A proposal offers, per transform type, one or more alternatives; the responder picks one
//! proposal and exactly one transform of each type from it, and answers with that reduced
//! proposal (keeping the proposal number, and its own SPI for ESP). These helpers stay purely
//! functional so the exchange state machines can use them from any state.

use crate::error::IpsecError;
use crate::esp::{EspSuite, Integrity};
use crate::ike::crypto::{DhGroup, Prf, SkSuite};
use crate::ike::wire::{
    transform as tid, PayloadType, Proposal, ProtocolId, Transform, TransformType,
};

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// SK payload protection (ENCR and, for CBC, INTEG).
    pub sk: SkSuite,
    /// The PRF.
    pub prf: Prf,
    /// The key exchange group.
    pub dh: DhGroup,
}

fn encr_transform(id: u16, key_bits: Option<u16>) -> Transform {
    match key_bits {
        Some(bits) => Transform::with_key_length(TransformType::ENCR, id, bits),
        None => Transform::new(TransformType::ENCR, id),
    }
}

fn sk_encr(sk: SkSuite) -> (u16, Option<u16>, Option<Integrity>) {
    match sk {
        SkSuite::AesGcm16 { key_bits } => (tid::ENCR_AES_GCM_16, Some(key_bits), None),
        SkSuite::ChaCha20Poly1305 => (tid::ENCR_CHACHA20_POLY1305, None, None),
        SkSuite::AesCbc {
            key_bits,
            integrity,
        } => (tid::ENCR_AES_CBC, Some(key_bits), Some(integrity)),
    }
}

/// The transforms that express an IKE suite (ENCR, PRF, INTEG if any, DH).
pub fn ike_transforms(suite: &IkeSuite) -> Vec<Transform> {
    let (encr, bits, integ) = sk_encr(suite.sk);
    let mut t = vec![
        encr_transform(encr, bits),
        Transform::new(TransformType::PRF, suite.prf.transform_id()),
    ];
    if let Some(i) = integ {
        t.push(Transform::new(TransformType::INTEG, i.transform_id()));
    }
    t.push(Transform::new(TransformType::DH, suite.dh.transform_id()));
    t
}

/// An IKE proposal (no SPI, as in IKE_SA_INIT) offering exactly `suite`.
pub fn ike_proposal(number: u8, suite: &IkeSuite) -> Proposal {
    Proposal {
        number,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms: ike_transforms(suite),
    }
}

/// The transforms that express an ESP suite (ENCR, INTEG if any, ESN).
pub fn esp_transforms(suite: EspSuite, esn: bool) -> Vec<Transform> {
    let mut t = vec![encr_transform(
        suite.encr_transform_id(),
        suite.key_length_attribute(),
    )];
    if let Some(i) = suite.integrity() {
        t.push(Transform::new(TransformType::INTEG, i.transform_id()));
    }
    let e = if esn { tid::ESN_ENABLED } else { tid::ESN_NONE };
    t.push(Transform::new(TransformType::ESN, e));
    t
}

/// An ESP proposal with our inbound SPI offering exactly `suite`.
pub fn esp_proposal(number: u8, spi: u32, suite: EspSuite, esn: bool) -> Proposal {
    Proposal {
        number,
        protocol: ProtocolId::ESP,
        spi: spi.to_be_bytes().to_vec(),
        transforms: esp_transforms(suite, esn),
    }
}

fn malformed(reason: &'static str) -> IpsecError {
    IpsecError::MalformedPayload {
        payload: PayloadType::PROPOSAL,
        reason,
    }
}

fn single(p: &Proposal, kind: TransformType) -> Result<Option<&Transform>, IpsecError> {
    let mut it = p.transforms.iter().filter(|t| t.kind == kind);
    let first = it.next();
    if it.next().is_some() {
        return Err(malformed(
            "a chosen proposal holds two transforms of one type",
        ));
    }
    Ok(first)
}

/// Reads the suite of a chosen IKE proposal (one transform per type).
///
/// # Errors
/// [`IpsecError::MalformedPayload`] when a type is missing or repeated; the `Unsupported*`
/// errors for algorithms this crate does not implement.
pub fn ike_suite_of(p: &Proposal) -> Result<IkeSuite, IpsecError> {
    if p.protocol != ProtocolId::IKE {
        return Err(malformed("not an IKE proposal"));
    }
    let encr = single(p, TransformType::ENCR)?.ok_or(malformed("no ENCR transform"))?;
    let prf = single(p, TransformType::PRF)?.ok_or(malformed("no PRF transform"))?;
    let dh = single(p, TransformType::DH)?.ok_or(malformed("no DH transform"))?;
    let integ = single(p, TransformType::INTEG)?.map(|t| t.id);
    Ok(IkeSuite {
        sk: SkSuite::from_transforms(encr.id, encr.key_length(), integ)?,
        prf: Prf::from_transform_id(prf.id)?,
        dh: DhGroup::from_transform_id(dh.id)?,
    })
}

/// Reads the suite, ESN choice and SPI of a chosen ESP proposal.
///
/// # Errors
/// As [`ike_suite_of`]; also when the SPI is not 4 bytes.
pub fn esp_suite_of(p: &Proposal) -> Result<(EspSuite, bool, u32), IpsecError> {
    if p.protocol != ProtocolId::ESP {
        return Err(malformed("not an ESP proposal"));
    }
    let spi: [u8; 4] = p
        .spi
        .as_slice()
        .try_into()
        .map_err(|_| malformed("ESP SPI is not 4 bytes"))?;
    let encr = single(p, TransformType::ENCR)?.ok_or(malformed("no ENCR transform"))?;
    let integ = single(p, TransformType::INTEG)?.map(|t| t.id);
    let esn = match single(p, TransformType::ESN)?.map(|t| t.id) {
        None | Some(tid::ESN_NONE) => false,
        Some(tid::ESN_ENABLED) => true,
        Some(_) => return Err(malformed("unknown ESN transform")),
    };
    Ok((
        EspSuite::from_transforms(encr.id, encr.key_length(), integ)?,
        esn,
        u32::from_be_bytes(spi),
    ))
}

/// Whether `offered` (a proposal with alternatives) contains every transform of `wanted`.
fn offers(offered: &Proposal, wanted: &[Transform]) -> bool {
    wanted.iter().all(|w| {
        offered
            .transforms
            .iter()
            .any(|o| o.kind == w.kind && o.id == w.id && o.key_length() == w.key_length())
    })
}

/// The responder's choice for IKE: the first offered proposal (in the peer's order) that
/// contains one of our acceptable suites (tried in our order). Returns the reduced proposal to
/// send back and the suite.
pub fn select_ike(offered: &[Proposal], acceptable: &[IkeSuite]) -> Option<(Proposal, IkeSuite)> {
    offered
        .iter()
        .filter(|p| p.protocol == ProtocolId::IKE)
        .find_map(|p| {
            acceptable
                .iter()
                .find(|s| offers(p, &ike_transforms(s)))
                .map(|s| {
                    (
                        Proposal {
                            number: p.number,
                            protocol: ProtocolId::IKE,
                            spi: p.spi.clone(),
                            transforms: ike_transforms(s),
                        },
                        *s,
                    )
                })
        })
}

/// The responder's choice for ESP, as [`select_ike`]; `acceptable` pairs a suite with an ESN
/// choice. Returns the reduced proposal carrying `our_spi`, the suite, the ESN choice and the
/// peer's SPI (where we send).
pub fn select_esp(
    offered: &[Proposal],
    acceptable: &[(EspSuite, bool)],
    our_spi: u32,
) -> Option<(Proposal, EspSuite, bool, u32)> {
    offered
        .iter()
        .filter(|p| p.protocol == ProtocolId::ESP && p.spi.len() == 4)
        .find_map(|p| {
            let peer_spi = u32::from_be_bytes([p.spi[0], p.spi[1], p.spi[2], p.spi[3]]);
            acceptable
                .iter()
                .find(|(s, e)| offers(p, &esp_transforms(*s, *e)))
                .map(|(s, e)| (esp_proposal(p.number, our_spi, *s, *e), *s, *e, peer_spi))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_read_and_select() {
        let gcm = IkeSuite {
            sk: SkSuite::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha256,
            dh: DhGroup::Curve25519,
        };
        let cbc = IkeSuite {
            sk: SkSuite::AesCbc {
                key_bits: 128,
                integrity: Integrity::HmacSha256_128,
            },
            prf: Prf::HmacSha256,
            dh: DhGroup::Ecp256,
        };
        assert_eq!(ike_suite_of(&ike_proposal(1, &gcm)).unwrap(), gcm);
        assert_eq!(ike_suite_of(&ike_proposal(1, &cbc)).unwrap(), cbc);
        // A proposal with alternatives: the responder picks what it accepts.
        let mut both = ike_proposal(1, &gcm);
        both.transforms.extend(ike_transforms(&cbc));
        assert!(ike_suite_of(&both).is_err());
        let (chosen, suite) = select_ike(&[both.clone()], &[cbc, gcm]).unwrap();
        assert_eq!(suite, cbc);
        assert_eq!(ike_suite_of(&chosen).unwrap(), cbc);
        let chacha = IkeSuite {
            sk: SkSuite::ChaCha20Poly1305,
            ..gcm
        };
        assert!(select_ike(&[both], &[chacha]).is_none());

        let esp = EspSuite::AesGcm16 { key_bits: 128 };
        let offer = esp_proposal(2, 0xc000_0001, esp, false);
        assert_eq!(esp_suite_of(&offer).unwrap(), (esp, false, 0xc000_0001));
        let (chosen, s, e, peer) = select_esp(
            &[offer],
            &[(EspSuite::ChaCha20Poly1305, false), (esp, false)],
            0xd000_0001,
        )
        .unwrap();
        assert_eq!((s, e, peer, chosen.number), (esp, false, 0xc000_0001, 2));
        assert_eq!(esp_suite_of(&chosen).unwrap(), (esp, false, 0xd000_0001));
        // Key length matters: an offer of GCM-128 does not satisfy GCM-256.
        let offer = esp_proposal(1, 0xc000_0001, esp, false);
        assert!(select_esp(
            &[offer],
            &[(EspSuite::AesGcm16 { key_bits: 256 }, false)],
            1
        )
        .is_none());
    }
}
