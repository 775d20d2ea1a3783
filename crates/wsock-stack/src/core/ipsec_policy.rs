//! Main mode and quick mode policy from WFP: what the keying module offers is read from the
//! provider contexts that `FWPM_LAYER_IKEEXT_V4/V6` and `FWPM_LAYER_IPSEC_V4/V6` policy filters
//! name (or that a secure socket names with `AuthipMMPolicyKey` / `AuthipQMPolicyKey`), mapped
//! onto the IKEv2 transforms `wsock-ipsec` implements, in policy order. Proposals wsock cannot
//! negotiate (3DES, AES-192, MD5, DH groups 1/2/14/24, AH) are skipped; a policy left with none
//! fails the negotiation with the `ERROR_IPSEC_IKE_*` code Windows uses for "no policy".

use std::time::Duration;

use wsock_ipsec::esp::{EspSuite, Integrity, Lifetime, LifetimeLimits};
use wsock_ipsec::ike::crypto::{DhGroup, Prf, SkSuite};
use wsock_ipsec::ike::proposal::IkeSuite;
use wsock_wfp::{
    IkeCipher, IkeDhGroup, IkeIntegrity, IkeMmPolicy, IpsecAuth, IpsecCipher, IpsecPfsGroup,
    IpsecQmPolicy, IpsecTransform,
};

/// `ERROR_IPSEC_IKE_NO_MM_POLICY`: no main mode policy for the peer.
pub const ERROR_IPSEC_IKE_NO_MM_POLICY: u32 = 13850;
/// `ERROR_IPSEC_IKE_NO_POLICY`: no quick mode policy for the traffic.
pub const ERROR_IPSEC_IKE_NO_POLICY: u32 = 13825;

/// The IKE suites of a main mode policy wsock can negotiate, in policy order.
pub fn ike_suites(mm: &IkeMmPolicy) -> Vec<IkeSuite> {
    mm.proposals.iter().filter_map(ike_suite).collect()
}

/// The main mode SA lifetime (`maxLifetimeSeconds`) and quick mode limit (`quickModeLimit`, 0
/// = unlimited: `None`) of a policy's first proposal wsock can negotiate, the one it offers
/// first (a peer that picks a later one still gets these terms: an EMULATOR CHOICE, policies
/// normally give every proposal the same).
pub fn mm_terms(mm: &IkeMmPolicy) -> Option<(Duration, Option<u32>)> {
    let p = mm.proposals.iter().find(|p| ike_suite(p).is_some())?;
    Some((
        Duration::from_secs(u64::from(p.max_lifetime_seconds)),
        Some(p.quick_mode_limit).filter(|l| *l > 0),
    ))
}

fn ike_suite(p: &wsock_wfp::IkeProposal) -> Option<IkeSuite> {
    let dh = match p.dh_group {
        IkeDhGroup::Ecp256 => DhGroup::Ecp256,
        IkeDhGroup::Ecp384 => DhGroup::Ecp384,
        _ => return None,
    };
    let prf = match p.integrity {
        IkeIntegrity::Sha1 => Prf::HmacSha1,
        IkeIntegrity::Sha256 => Prf::HmacSha256,
        IkeIntegrity::Sha384 => Prf::HmacSha384,
        _ => return None,
    };
    let sk = match p.cipher {
        IkeCipher::AesGcm128 | IkeCipher::AesGcm256 => SkSuite::AesGcm16 {
            key_bits: p.cipher.key_bits(),
        },
        IkeCipher::Aes128 | IkeCipher::Aes256 => SkSuite::AesCbc {
            key_bits: p.cipher.key_bits(),
            integrity: match p.integrity {
                IkeIntegrity::Sha1 => Integrity::HmacSha1_96,
                IkeIntegrity::Sha256 => Integrity::HmacSha256_128,
                _ => return None,
            },
        },
        _ => return None,
    };
    Some(IkeSuite { sk, prf, dh })
}

fn integrity(a: IpsecAuth) -> Option<Integrity> {
    match a {
        IpsecAuth::HmacSha1_96 => Some(Integrity::HmacSha1_96),
        IpsecAuth::HmacSha256_128 => Some(Integrity::HmacSha256_128),
        _ => None,
    }
}

/// The ESP suites of a quick mode policy wsock can negotiate (one ESP transform per
/// proposal), in policy order, without ESN.
pub fn esp_suites(qm: &IpsecQmPolicy) -> Vec<(EspSuite, bool)> {
    qm.proposals
        .iter()
        .filter_map(|p| {
            let [t] = p.transforms.as_slice() else {
                return None;
            };
            let s = match *t {
                IpsecTransform::EspAuth { auth } => match auth {
                    IpsecAuth::GcmAes128 | IpsecAuth::GcmAes256 => EspSuite::NullAuthAesGmac {
                        key_bits: auth.gcm_key_bits()?,
                    },
                    _ => EspSuite::Null(integrity(auth)?),
                },
                IpsecTransform::EspAuthAndCipher { auth, cipher } => match cipher {
                    IpsecCipher::GcmAes128 | IpsecCipher::GcmAes256 => EspSuite::AesGcm16 {
                        key_bits: cipher.key_bits(),
                    },
                    IpsecCipher::CbcAes128 | IpsecCipher::CbcAes256 => EspSuite::AesCbc {
                        key_bits: cipher.key_bits(),
                        integrity: integrity(auth)?,
                    },
                    _ => return None,
                },
                _ => return None,
            };
            Some((s, false))
        })
        .collect()
}

/// The child SA lifetime of a quick mode policy (its first proposal's; soft at 90 %).
pub fn child_lifetime(qm: &IpsecQmPolicy) -> Option<Lifetime> {
    let p = qm.proposals.first()?;
    let hard = LifetimeLimits {
        time: Some(Duration::from_secs(p.lifetime.seconds.into())),
        bytes: Some(u64::from(p.lifetime.kilobytes) * 1024),
        packets: Some(p.lifetime.packets.into()).filter(|n| *n > 0),
    };
    Some(Lifetime::with_hard(hard))
}

/// The PFS group of a quick mode policy (`Mm`: the main mode group).
pub fn pfs(qm: &IpsecQmPolicy, mm_group: DhGroup) -> Option<DhGroup> {
    match qm.proposals.first()?.pfs_group {
        IpsecPfsGroup::Ecp256 => Some(DhGroup::Ecp256),
        IpsecPfsGroup::Ecp384 => Some(DhGroup::Ecp384),
        IpsecPfsGroup::Mm => Some(mm_group),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_defaults_map_onto_what_wsock_implements() {
        let mm = ike_suites(&IkeMmPolicy::windows_default());
        assert!(!mm.is_empty());
        let qm = esp_suites(&IpsecQmPolicy::windows_default());
        assert_eq!(
            qm[0].0,
            EspSuite::Null(Integrity::HmacSha1_96),
            "integrity first"
        );
        assert!(child_lifetime(&IpsecQmPolicy::windows_default()).is_some());
    }
}
