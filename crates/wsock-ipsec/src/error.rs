//! The one error type of the IPsec layer, mapped once to the Windows `ERROR_IPSEC_*` codes.
//!
//! Every fallible function of this crate returns [`IpsecError`]. The upper layers (the stack,
//! the API faces) never invent IPsec codes of their own: they call [`IpsecError::win32_code`],
//! which is the single place where the crate's failures meet the Win32 numbering of
//! `winerror.h` (the values Microsoft publishes there).

use crate::ike::wire::PayloadType;

/// Win32 `ERROR_INVALID_PARAMETER`: a caller handed the layer an unusable configuration.
pub const ERROR_INVALID_PARAMETER: u32 = 87;
/// Win32 `ERROR_INSUFFICIENT_BUFFER`: an output buffer was too small.
pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;

/// Win32 codes of the `ERROR_IPSEC_*` family that this crate produces.
pub mod win32 {
    /// `ERROR_IPSEC_IKE_AUTH_FAIL`.
    pub const IKE_AUTH_FAIL: u32 = 13801;
    /// `ERROR_IPSEC_IKE_TIMED_OUT`: no answer after the whole retransmission schedule.
    pub const IKE_TIMED_OUT: u32 = 13805;
    /// `ERROR_IPSEC_IKE_SA_DELETED`: the peer deleted the IKE SA before it was complete.
    pub const IKE_SA_DELETED: u32 = 13807;
    /// `ERROR_IPSEC_IKE_SA_REAPED`: a half-open IKE SA was dropped before it was complete.
    pub const IKE_SA_REAPED: u32 = 13808;
    /// `ERROR_IPSEC_IKE_DH_FAIL`: the Diffie-Hellman computation failed.
    pub const IKE_DH_FAIL: u32 = 13822;
    /// `ERROR_IPSEC_IKE_INVALID_HEADER`.
    pub const IKE_INVALID_HEADER: u32 = 13824;
    /// `ERROR_IPSEC_IKE_NO_POLICY`: no policy for the traffic (used for TS_UNACCEPTABLE).
    pub const IKE_NO_POLICY: u32 = 13825;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_SA`; the other per-payload codes follow it (13830..=13842).
    pub const IKE_PROCESS_ERR_SA: u32 = 13830;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_PROP`.
    pub const IKE_PROCESS_ERR_PROP: u32 = 13831;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_TRANS`.
    pub const IKE_PROCESS_ERR_TRANS: u32 = 13832;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_KE`.
    pub const IKE_PROCESS_ERR_KE: u32 = 13833;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_ID`.
    pub const IKE_PROCESS_ERR_ID: u32 = 13834;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_CERT`.
    pub const IKE_PROCESS_ERR_CERT: u32 = 13835;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_CERT_REQ`.
    pub const IKE_PROCESS_ERR_CERT_REQ: u32 = 13836;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_SIG` (used for a malformed AUTH payload).
    pub const IKE_PROCESS_ERR_SIG: u32 = 13838;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_NONCE`.
    pub const IKE_PROCESS_ERR_NONCE: u32 = 13839;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_NOTIFY`.
    pub const IKE_PROCESS_ERR_NOTIFY: u32 = 13840;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_DELETE`.
    pub const IKE_PROCESS_ERR_DELETE: u32 = 13841;
    /// `ERROR_IPSEC_IKE_PROCESS_ERR_VENDOR`.
    pub const IKE_PROCESS_ERR_VENDOR: u32 = 13842;
    /// `ERROR_IPSEC_IKE_INVALID_PAYLOAD`.
    pub const IKE_INVALID_PAYLOAD: u32 = 13843;
    /// `ERROR_IPSEC_IKE_INVALID_GROUP`: an unsupported Diffie-Hellman group.
    pub const IKE_INVALID_GROUP: u32 = 13865;
    /// `ERROR_IPSEC_IKE_ENCRYPT`: SK payload encryption failed.
    pub const IKE_ENCRYPT: u32 = 13866;
    /// `ERROR_IPSEC_IKE_DECRYPT`: SK payload decryption or its integrity check failed.
    pub const IKE_DECRYPT: u32 = 13867;
    /// `ERROR_IPSEC_IKE_POLICY_MATCH`: no acceptable proposal (NO_PROPOSAL_CHOSEN).
    pub const IKE_POLICY_MATCH: u32 = 13868;
    /// `ERROR_IPSEC_IKE_INVALID_HASH_ALG` (used for an unsupported PRF).
    pub const IKE_INVALID_HASH_ALG: u32 = 13871;
    /// `ERROR_IPSEC_IKE_INVALID_ENCRYPT_ALG`.
    pub const IKE_INVALID_ENCRYPT_ALG: u32 = 13873;
    /// `ERROR_IPSEC_IKE_INVALID_AUTH_ALG` (used for an unsupported integrity transform).
    pub const IKE_INVALID_AUTH_ALG: u32 = 13874;
    /// `ERROR_IPSEC_IKE_INVALID_MAJOR_VERSION`.
    pub const IKE_INVALID_MAJOR_VERSION: u32 = 13880;
    /// `ERROR_IPSEC_IKE_MM_EXPIRED`: the IKE SA was deleted (by us or by the peer's Delete).
    pub const IKE_MM_EXPIRED: u32 = 13885;
    /// `ERROR_IPSEC_IKE_PEER_MM_ASSUMED_INVALID`: an established peer stopped answering.
    pub const IKE_PEER_MM_ASSUMED_INVALID: u32 = 13886;
    /// `ERROR_IPSEC_IKE_UNEXPECTED_MESSAGE_ID`.
    pub const IKE_UNEXPECTED_MESSAGE_ID: u32 = 13888;
    /// `ERROR_IPSEC_IKE_DOS_COOKIE_SENT`: a cookie was demanded (benign).
    pub const IKE_DOS_COOKIE_SENT: u32 = 13890;
    /// `ERROR_IPSEC_IKE_ERROR`: an error notify without a more specific code.
    pub const IKE_ERROR: u32 = 13816;
    /// `ERROR_IPSEC_IKE_GENERAL_PROCESSING_ERROR`.
    pub const IKE_GENERAL_PROCESSING_ERROR: u32 = 13804;
    /// `ERROR_IPSEC_BAD_SPI`: the SPI matches no valid SA.
    pub const BAD_SPI: u32 = 13910;
    /// `ERROR_IPSEC_SA_LIFETIME_EXPIRED`: a packet on an expired SA.
    pub const SA_LIFETIME_EXPIRED: u32 = 13911;
    /// `ERROR_IPSEC_WRONG_SA`: the packet does not match the SA's traffic.
    pub const WRONG_SA: u32 = 13912;
    /// `ERROR_IPSEC_REPLAY_CHECK_FAILED`.
    pub const REPLAY_CHECK_FAILED: u32 = 13913;
    /// `ERROR_IPSEC_INVALID_PACKET`: a bad ESP header or trailer.
    pub const INVALID_PACKET: u32 = 13914;
    /// `ERROR_IPSEC_INTEGRITY_CHECK_FAILED`.
    pub const INTEGRITY_CHECK_FAILED: u32 = 13915;
}

/// Why an SA stopped (or will soon stop) being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeKind {
    /// The time limit (seconds since the SA was created).
    Time,
    /// The byte limit (payload bytes protected or accepted).
    Bytes,
    /// The packet limit.
    Packets,
    /// The sequence number space (2^32 - 1 without ESN, 2^64 - 1 with ESN) is used up.
    SequenceNumber,
}

/// Errors of the IPsec layer (ESP data path, NAT-T demultiplexing, IKEv2 wire format and crypto).
///
/// Map to Windows codes with [`IpsecError::win32_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpsecError {
    /// A configuration value is unusable (wrong key length, reserved SPI, window too large...).
    #[error("invalid IPsec configuration: {0}")]
    InvalidConfig(&'static str),
    /// The caller's output buffer cannot hold the result.
    #[error("output buffer too small: need {needed} bytes")]
    BufferTooSmall {
        /// Bytes that would have been needed.
        needed: usize,
    },
    /// The ESP packet carries another SPI than the SA it was handed to.
    #[error("ESP packet for SPI {spi:#010x} matches no SA")]
    BadSpi {
        /// The SPI found in the packet.
        spi: u32,
    },
    /// The SA reached a hard lifetime limit; it must be replaced.
    #[error("SA lifetime expired ({0:?})")]
    SaLifetimeExpired(LifetimeKind),
    /// The decrypted packet does not fit the SA (e.g. a transport protocol on a tunnel-mode SA).
    #[error("packet does not match the SA (next header {next_header})")]
    WrongSa {
        /// The Next Header value found.
        next_header: u8,
    },
    /// An authentic packet whose sequence number was already seen or lies left of the window.
    #[error("replay check failed for sequence number {seq}")]
    ReplayCheckFailed {
        /// The full (ESN-inferred) sequence number.
        seq: u64,
    },
    /// A malformed ESP packet or NAT-T datagram (too short, bad padding, bad alignment...).
    #[error("invalid IPsec packet: {0}")]
    InvalidPacket(&'static str),
    /// The ICV did not verify (wrong key, corrupted or forged packet).
    #[error("ESP integrity check failed")]
    IntegrityCheckFailed,
    /// The IKE header is malformed (bad length, reserved values).
    #[error("invalid IKE header: {0}")]
    InvalidIkeHeader(&'static str),
    /// The IKE message announces a major version other than 2.
    #[error("unsupported IKE major version {0}")]
    InvalidMajorVersion(u8),
    /// A payload (or the substructure of one) is malformed.
    #[error("malformed {payload:?} payload: {reason}")]
    MalformedPayload {
        /// The payload in which the problem was found.
        payload: PayloadType,
        /// What is wrong.
        reason: &'static str,
    },
    /// An encryption transform this crate does not implement.
    #[error("unsupported encryption transform {0}")]
    UnsupportedEncryption(u16),
    /// An integrity transform this crate does not implement.
    #[error("unsupported integrity transform {0}")]
    UnsupportedIntegrity(u16),
    /// A pseudo-random function this crate does not implement.
    #[error("unsupported PRF {0}")]
    UnsupportedPrf(u16),
    /// A Diffie-Hellman group this crate does not implement.
    #[error("unsupported Diffie-Hellman group {0}")]
    UnsupportedGroup(u16),
    /// The Diffie-Hellman computation failed (e.g. an invalid peer public value).
    #[error("Diffie-Hellman computation failed")]
    DhFailed,
    /// Encrypting an SK payload failed.
    #[error("SK payload encryption failed")]
    EncryptFailed,
    /// An SK payload did not decrypt or its ICV did not verify.
    #[error("SK payload decryption failed")]
    DecryptFailed,
    /// IKE authentication failed: a wrong pre-shared key (on either side), a missing AUTH
    /// payload, or the peer's AUTHENTICATION_FAILED notify.
    #[error("IKE authentication failed")]
    IkeAuthFailed,
    /// Our policy has a user to authenticate (RFC 4739 multiple authentication), but the peer
    /// did not announce `N(MULTIPLE_AUTH_SUPPORTED)`: the negotiation stops rather than going
    /// on without the user.
    #[error("the peer does not support a second (user) authentication")]
    IkeMultipleAuthUnsupported,
    /// The user of a second IKE_AUTH (RFC 4739) is not in the responder's directory.
    #[error("unknown user {0}")]
    IkeUnknownUser(String),
    /// The peer authenticated, but its identity is not the target name the policy names.
    #[error("peer identity {peer} does not match the target name {target}")]
    IkePeerIdMismatch {
        /// The peer's identity as received.
        peer: String,
        /// The target name it was compared with.
        target: String,
    },
    /// The peer's certificate authentication did not check out: an untrusted or expired chain,
    /// an unacceptable extended key usage, a signature that does not verify, an ID the
    /// certificate does not hold, or a signature where a pre-shared key was expected (and the
    /// reverse).
    #[error("peer certificate authentication refused: {0}")]
    IkeCertRejected(String),
    /// No answer after the whole retransmission schedule.
    #[error("IKE negotiation timed out after {sends} transmissions")]
    IkeTimedOut {
        /// How many times the request was sent.
        sends: u32,
    },
    /// An established peer stopped answering (a liveness check or another request timed out).
    #[error("IKE peer stopped responding")]
    IkePeerDead,
    /// No proposal was acceptable (NO_PROPOSAL_CHOSEN, sent or received).
    #[error("no acceptable proposal")]
    IkeNoProposalChosen,
    /// The traffic selectors were not acceptable (TS_UNACCEPTABLE, sent or received).
    #[error("traffic selectors unacceptable")]
    IkeTsUnacceptable,
    /// The responder asked for a Diffie-Hellman group we did not offer, or asked twice.
    #[error("Diffie-Hellman group {0} refused")]
    IkeInvalidGroup(u16),
    /// The peer answered with another error notify.
    #[error("peer sent error notify {0:?}")]
    IkePeerError(crate::ike::wire::NotifyType),
    /// The peer deleted the IKE SA (or a half-open SA was dropped) before it was complete.
    #[error("IKE SA deleted before it was complete")]
    IkeSaDeleted,
    /// The IKE SA was deleted after it was established (by us or by the peer).
    #[error("IKE SA deleted")]
    IkeSaExpired,
    /// A message broke the protocol (a missing payload, an answer that does not fit the request).
    #[error("IKE protocol violation: {0}")]
    IkeProtocol(&'static str),
    /// The operation does not fit the IKE SA's state (unknown SA, not yet established...).
    #[error("IKE SA in the wrong state: {0}")]
    IkeWrongState(&'static str),
}

impl IpsecError {
    /// The Win32 error code (`ERROR_IPSEC_*` and friends) this error stands for.
    ///
    /// # Examples
    /// ```
    /// use wsock_ipsec::IpsecError;
    /// assert_eq!(IpsecError::ReplayCheckFailed { seq: 7 }.win32_code(), 13913);
    /// assert_eq!(IpsecError::IntegrityCheckFailed.win32_code(), 13915);
    /// ```
    pub fn win32_code(&self) -> u32 {
        use win32::*;
        match self {
            IpsecError::InvalidConfig(_) => ERROR_INVALID_PARAMETER,
            IpsecError::BufferTooSmall { .. } => ERROR_INSUFFICIENT_BUFFER,
            IpsecError::BadSpi { .. } => BAD_SPI,
            IpsecError::SaLifetimeExpired(_) => SA_LIFETIME_EXPIRED,
            IpsecError::WrongSa { .. } => WRONG_SA,
            IpsecError::ReplayCheckFailed { .. } => REPLAY_CHECK_FAILED,
            IpsecError::InvalidPacket(_) => INVALID_PACKET,
            IpsecError::IntegrityCheckFailed => INTEGRITY_CHECK_FAILED,
            IpsecError::InvalidIkeHeader(_) => IKE_INVALID_HEADER,
            IpsecError::InvalidMajorVersion(_) => IKE_INVALID_MAJOR_VERSION,
            IpsecError::MalformedPayload { payload, .. } => payload_error_code(*payload),
            IpsecError::UnsupportedEncryption(_) => IKE_INVALID_ENCRYPT_ALG,
            IpsecError::UnsupportedIntegrity(_) => IKE_INVALID_AUTH_ALG,
            IpsecError::UnsupportedPrf(_) => IKE_INVALID_HASH_ALG,
            IpsecError::UnsupportedGroup(_) => IKE_INVALID_GROUP,
            IpsecError::DhFailed => IKE_DH_FAIL,
            IpsecError::EncryptFailed => IKE_ENCRYPT,
            IpsecError::DecryptFailed => IKE_DECRYPT,
            IpsecError::IkeAuthFailed
            | IpsecError::IkeMultipleAuthUnsupported
            | IpsecError::IkeUnknownUser(_)
            | IpsecError::IkePeerIdMismatch { .. }
            | IpsecError::IkeCertRejected(_) => IKE_AUTH_FAIL,
            IpsecError::IkeTimedOut { .. } => IKE_TIMED_OUT,
            IpsecError::IkePeerDead => IKE_PEER_MM_ASSUMED_INVALID,
            IpsecError::IkeNoProposalChosen => IKE_POLICY_MATCH,
            IpsecError::IkeTsUnacceptable => IKE_NO_POLICY,
            IpsecError::IkeInvalidGroup(_) => IKE_INVALID_GROUP,
            IpsecError::IkePeerError(_) => IKE_ERROR,
            IpsecError::IkeSaDeleted => IKE_SA_DELETED,
            IpsecError::IkeSaExpired => IKE_MM_EXPIRED,
            IpsecError::IkeProtocol(_) => IKE_INVALID_PAYLOAD,
            IpsecError::IkeWrongState(_) => IKE_GENERAL_PROCESSING_ERROR,
        }
    }
}

/// The `ERROR_IPSEC_IKE_PROCESS_ERR_*` code for a malformed payload of the given type.
fn payload_error_code(payload: PayloadType) -> u32 {
    use win32::*;
    match payload {
        PayloadType::SA => IKE_PROCESS_ERR_SA,
        PayloadType::PROPOSAL => IKE_PROCESS_ERR_PROP,
        PayloadType::TRANSFORM => IKE_PROCESS_ERR_TRANS,
        PayloadType::KE => IKE_PROCESS_ERR_KE,
        PayloadType::IDI | PayloadType::IDR => IKE_PROCESS_ERR_ID,
        PayloadType::CERT => IKE_PROCESS_ERR_CERT,
        PayloadType::CERTREQ => IKE_PROCESS_ERR_CERT_REQ,
        PayloadType::AUTH => IKE_PROCESS_ERR_SIG,
        PayloadType::NONCE => IKE_PROCESS_ERR_NONCE,
        PayloadType::NOTIFY => IKE_PROCESS_ERR_NOTIFY,
        PayloadType::DELETE => IKE_PROCESS_ERR_DELETE,
        PayloadType::VENDOR_ID => IKE_PROCESS_ERR_VENDOR,
        // TS, SK, CP, EAP and unknown payload types have no dedicated Windows code.
        _ => IKE_INVALID_PAYLOAD,
    }
}
