//! [`WfpError`]: every failure of the engine, mapped once to its `FWP_E_*` HRESULT.

macro_rules! wfp_errors {
    ($( $(#[$m:meta])* $variant:ident = $code:literal, $name:literal, $msg:literal; )*) => {
        /// Every failure of the filter engine and its management API.
        ///
        /// Each variant maps to exactly one Windows `FWP_E_*` HRESULT (see [`WfpError::hresult`]);
        /// the mapping is written once, here.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
        pub enum WfpError {
            $( $(#[$m])* #[error($msg)] $variant, )*
            /// The transaction lock is held by another session and the caller's wait has not yet
            /// reached its `txn_wait_timeout`: retry at or after `retry_deadline` (the sans-IO
            /// model of "FwpmTransactionBegin0 blocks"). Maps to `E_PENDING` (0x8000000A), never
            /// returned by Windows itself.
            #[error("transaction lock busy; retry until {retry_deadline:?}")]
            WouldBlock {
                /// The instant (same clock as the `now` passed in) at which the wait times out.
                retry_deadline: std::time::Duration,
            },
        }

        impl WfpError {
            /// The Windows HRESULT value of this error (e.g. `0x80320009` for `FWP_E_ALREADY_EXISTS`).
            pub const fn hresult(self) -> u32 {
                match self {
                    $( WfpError::$variant => $code, )*
                    WfpError::WouldBlock { .. } => 0x8000_000A,
                }
            }

            /// The Windows symbolic name (e.g. `"FWP_E_ALREADY_EXISTS"`).
            pub const fn name(self) -> &'static str {
                match self {
                    $( WfpError::$variant => $name, )*
                    WfpError::WouldBlock { .. } => "E_PENDING",
                }
            }

            /// The error whose HRESULT is `code`, if it is one of ours.
            pub fn from_hresult(code: u32) -> Option<WfpError> {
                match code {
                    $( $code => Some(WfpError::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

wfp_errors! {
    /// The callout does not exist.
    CalloutNotFound = 0x8032_0001, "FWP_E_CALLOUT_NOT_FOUND", "FWP_E_CALLOUT_NOT_FOUND: the callout does not exist";
    /// The filter condition (field) does not exist, or is not available at the layer.
    ConditionNotFound = 0x8032_0002, "FWP_E_CONDITION_NOT_FOUND", "FWP_E_CONDITION_NOT_FOUND: the filter condition does not exist at this layer";
    /// The filter does not exist.
    FilterNotFound = 0x8032_0003, "FWP_E_FILTER_NOT_FOUND", "FWP_E_FILTER_NOT_FOUND: the filter does not exist";
    /// The layer does not exist.
    LayerNotFound = 0x8032_0004, "FWP_E_LAYER_NOT_FOUND", "FWP_E_LAYER_NOT_FOUND: the layer does not exist";
    /// The provider does not exist.
    ProviderNotFound = 0x8032_0005, "FWP_E_PROVIDER_NOT_FOUND", "FWP_E_PROVIDER_NOT_FOUND: the provider does not exist";
    /// The provider context does not exist.
    ProviderContextNotFound = 0x8032_0006, "FWP_E_PROVIDER_CONTEXT_NOT_FOUND", "FWP_E_PROVIDER_CONTEXT_NOT_FOUND: the provider context does not exist";
    /// The sublayer does not exist.
    SublayerNotFound = 0x8032_0007, "FWP_E_SUBLAYER_NOT_FOUND", "FWP_E_SUBLAYER_NOT_FOUND: the sublayer does not exist";
    /// The object does not exist.
    NotFound = 0x8032_0008, "FWP_E_NOT_FOUND", "FWP_E_NOT_FOUND: the object does not exist";
    /// An object with that GUID or LUID already exists.
    AlreadyExists = 0x8032_0009, "FWP_E_ALREADY_EXISTS", "FWP_E_ALREADY_EXISTS: an object with that GUID or LUID already exists";
    /// The object is referenced by other objects so cannot be deleted.
    InUse = 0x8032_000A, "FWP_E_IN_USE", "FWP_E_IN_USE: the object is referenced by other objects";
    /// The call is not allowed from within a dynamic session.
    DynamicSessionInProgress = 0x8032_000B, "FWP_E_DYNAMIC_SESSION_IN_PROGRESS", "FWP_E_DYNAMIC_SESSION_IN_PROGRESS";
    /// The call was made from the wrong session.
    WrongSession = 0x8032_000C, "FWP_E_WRONG_SESSION", "FWP_E_WRONG_SESSION: the call was made from the wrong session";
    /// The call must be made from within an explicit transaction.
    NoTxnInProgress = 0x8032_000D, "FWP_E_NO_TXN_IN_PROGRESS", "FWP_E_NO_TXN_IN_PROGRESS: no explicit transaction is open";
    /// The call is not allowed from within an explicit transaction.
    TxnInProgress = 0x8032_000E, "FWP_E_TXN_IN_PROGRESS", "FWP_E_TXN_IN_PROGRESS: a transaction is already open on this session";
    /// The explicit transaction has been forcibly cancelled.
    TxnAborted = 0x8032_000F, "FWP_E_TXN_ABORTED", "FWP_E_TXN_ABORTED: the transaction was forcibly cancelled";
    /// The session has been cancelled.
    SessionAborted = 0x8032_0010, "FWP_E_SESSION_ABORTED", "FWP_E_SESSION_ABORTED: the session has been cancelled";
    /// The call is not allowed from within a read-only transaction.
    IncompatibleTxn = 0x8032_0011, "FWP_E_INCOMPATIBLE_TXN", "FWP_E_INCOMPATIBLE_TXN: not allowed in a read-only transaction";
    /// The call timed out while waiting to acquire the transaction lock.
    Timeout = 0x8032_0012, "FWP_E_TIMEOUT", "FWP_E_TIMEOUT: timed out waiting for the transaction lock";
    /// Collection of network diagnostic events is disabled.
    NetEventsDisabled = 0x8032_0013, "FWP_E_NET_EVENTS_DISABLED", "FWP_E_NET_EVENTS_DISABLED";
    /// The operation is not supported by the specified layer.
    IncompatibleLayer = 0x8032_0014, "FWP_E_INCOMPATIBLE_LAYER", "FWP_E_INCOMPATIBLE_LAYER: not supported by the layer";
    /// The call is allowed for kernel-mode callers only.
    KmClientsOnly = 0x8032_0015, "FWP_E_KM_CLIENTS_ONLY", "FWP_E_KM_CLIENTS_ONLY";
    /// The call tried to associate two objects with incompatible lifetimes.
    LifetimeMismatch = 0x8032_0016, "FWP_E_LIFETIME_MISMATCH", "FWP_E_LIFETIME_MISMATCH: objects with incompatible lifetimes";
    /// The object is built in so cannot be deleted.
    BuiltinObject = 0x8032_0017, "FWP_E_BUILTIN_OBJECT", "FWP_E_BUILTIN_OBJECT: built-in objects cannot be added or deleted";
    /// The maximum number of callouts has been reached.
    TooManyCallouts = 0x8032_0018, "FWP_E_TOO_MANY_CALLOUTS", "FWP_E_TOO_MANY_CALLOUTS";
    /// A notification could not be delivered because a message queue is at its maximum capacity.
    NotificationDropped = 0x8032_0019, "FWP_E_NOTIFICATION_DROPPED", "FWP_E_NOTIFICATION_DROPPED";
    /// The traffic parameters do not match those for the security association context.
    TrafficMismatch = 0x8032_001A, "FWP_E_TRAFFIC_MISMATCH", "FWP_E_TRAFFIC_MISMATCH";
    /// The call is not allowed for the current security association state.
    IncompatibleSaState = 0x8032_001B, "FWP_E_INCOMPATIBLE_SA_STATE", "FWP_E_INCOMPATIBLE_SA_STATE";
    /// A required pointer (here: value) is null.
    NullPointer = 0x8032_001C, "FWP_E_NULL_POINTER", "FWP_E_NULL_POINTER";
    /// An enumerator is not valid.
    InvalidEnumerator = 0x8032_001D, "FWP_E_INVALID_ENUMERATOR", "FWP_E_INVALID_ENUMERATOR";
    /// The flags field contains an invalid value.
    InvalidFlags = 0x8032_001E, "FWP_E_INVALID_FLAGS", "FWP_E_INVALID_FLAGS: invalid flags";
    /// A network mask is not valid.
    InvalidNetMask = 0x8032_001F, "FWP_E_INVALID_NET_MASK", "FWP_E_INVALID_NET_MASK: invalid network mask";
    /// An FWP_RANGE is not valid.
    InvalidRange = 0x8032_0020, "FWP_E_INVALID_RANGE", "FWP_E_INVALID_RANGE: invalid range (low > high or mixed types)";
    /// The time interval is not valid.
    InvalidInterval = 0x8032_0021, "FWP_E_INVALID_INTERVAL", "FWP_E_INVALID_INTERVAL";
    /// An array that must contain at least one element is zero-length.
    ZeroLengthArray = 0x8032_0022, "FWP_E_ZERO_LENGTH_ARRAY", "FWP_E_ZERO_LENGTH_ARRAY";
    /// The displayData.name field cannot be null.
    NullDisplayName = 0x8032_0023, "FWP_E_NULL_DISPLAY_NAME", "FWP_E_NULL_DISPLAY_NAME: display name is required";
    /// The action type is not one of the allowed action types for a filter.
    InvalidActionType = 0x8032_0024, "FWP_E_INVALID_ACTION_TYPE", "FWP_E_INVALID_ACTION_TYPE: invalid action type";
    /// The filter weight is not valid.
    InvalidWeight = 0x8032_0025, "FWP_E_INVALID_WEIGHT", "FWP_E_INVALID_WEIGHT: invalid filter weight";
    /// A filter condition contains a match type that is not compatible with the operands.
    MatchTypeMismatch = 0x8032_0026, "FWP_E_MATCH_TYPE_MISMATCH", "FWP_E_MATCH_TYPE_MISMATCH: match type not compatible with the value type";
    /// An FWP_VALUE or FWPM_CONDITION_VALUE is of the wrong type.
    TypeMismatch = 0x8032_0027, "FWP_E_TYPE_MISMATCH", "FWP_E_TYPE_MISMATCH: value of the wrong type for the field";
    /// An integer value is outside the allowed range.
    OutOfBounds = 0x8032_0028, "FWP_E_OUT_OF_BOUNDS", "FWP_E_OUT_OF_BOUNDS: integer value outside the allowed range";
    /// A reserved field is nonzero.
    Reserved = 0x8032_0029, "FWP_E_RESERVED", "FWP_E_RESERVED";
    /// A filter cannot contain multiple conditions operating on a single field.
    DuplicateCondition = 0x8032_002A, "FWP_E_DUPLICATE_CONDITION", "FWP_E_DUPLICATE_CONDITION";
    /// A policy cannot contain the same keying module more than once.
    DuplicateKeymod = 0x8032_002B, "FWP_E_DUPLICATE_KEYMOD", "FWP_E_DUPLICATE_KEYMOD";
    /// The action type is not compatible with the layer.
    ActionIncompatibleWithLayer = 0x8032_002C, "FWP_E_ACTION_INCOMPATIBLE_WITH_LAYER", "FWP_E_ACTION_INCOMPATIBLE_WITH_LAYER";
    /// The action type is not compatible with the sublayer.
    ActionIncompatibleWithSublayer = 0x8032_002D, "FWP_E_ACTION_INCOMPATIBLE_WITH_SUBLAYER", "FWP_E_ACTION_INCOMPATIBLE_WITH_SUBLAYER";
    /// The raw context or the provider context is not compatible with the layer.
    ContextIncompatibleWithLayer = 0x8032_002E, "FWP_E_CONTEXT_INCOMPATIBLE_WITH_LAYER", "FWP_E_CONTEXT_INCOMPATIBLE_WITH_LAYER";
    /// The raw context or the provider context is not compatible with the callout.
    ContextIncompatibleWithCallout = 0x8032_002F, "FWP_E_CONTEXT_INCOMPATIBLE_WITH_CALLOUT", "FWP_E_CONTEXT_INCOMPATIBLE_WITH_CALLOUT";
    /// The authentication method is not compatible with the policy type.
    IncompatibleAuthMethod = 0x8032_0030, "FWP_E_INCOMPATIBLE_AUTH_METHOD", "FWP_E_INCOMPATIBLE_AUTH_METHOD";
    /// The Diffie-Hellman group is not compatible with the policy type.
    IncompatibleDhGroup = 0x8032_0031, "FWP_E_INCOMPATIBLE_DH_GROUP", "FWP_E_INCOMPATIBLE_DH_GROUP";
    /// An IKE policy cannot contain an Extended Mode policy.
    EmNotSupported = 0x8032_0032, "FWP_E_EM_NOT_SUPPORTED", "FWP_E_EM_NOT_SUPPORTED";
    /// The enumeration template or subscription will never match any objects.
    NeverMatch = 0x8032_0033, "FWP_E_NEVER_MATCH", "FWP_E_NEVER_MATCH";
    /// The provider context is of the wrong type.
    ProviderContextMismatch = 0x8032_0034, "FWP_E_PROVIDER_CONTEXT_MISMATCH", "FWP_E_PROVIDER_CONTEXT_MISMATCH";
    /// The parameter is incorrect.
    InvalidParameter = 0x8032_0035, "FWP_E_INVALID_PARAMETER", "FWP_E_INVALID_PARAMETER: the parameter is incorrect";
    /// The maximum number of sublayers has been reached.
    TooManySublayers = 0x8032_0036, "FWP_E_TOO_MANY_SUBLAYERS", "FWP_E_TOO_MANY_SUBLAYERS";
    /// The notification function for a callout returned an error.
    CalloutNotificationFailed = 0x8032_0037, "FWP_E_CALLOUT_NOTIFICATION_FAILED", "FWP_E_CALLOUT_NOTIFICATION_FAILED";
    /// The IPsec authentication transform is not valid.
    InvalidAuthTransform = 0x8032_0038, "FWP_E_INVALID_AUTH_TRANSFORM", "FWP_E_INVALID_AUTH_TRANSFORM";
    /// The IPsec cipher transform is not valid.
    InvalidCipherTransform = 0x8032_0039, "FWP_E_INVALID_CIPHER_TRANSFORM", "FWP_E_INVALID_CIPHER_TRANSFORM";
    /// The IPsec cipher transform is not compatible with the policy.
    IncompatibleCipherTransform = 0x8032_003A, "FWP_E_INCOMPATIBLE_CIPHER_TRANSFORM", "FWP_E_INCOMPATIBLE_CIPHER_TRANSFORM";
    /// The combination of IPsec transform types is not valid.
    InvalidTransformCombination = 0x8032_003B, "FWP_E_INVALID_TRANSFORM_COMBINATION", "FWP_E_INVALID_TRANSFORM_COMBINATION";
    /// A policy cannot contain the same auth method more than once.
    DuplicateAuthMethod = 0x8032_003C, "FWP_E_DUPLICATE_AUTH_METHOD", "FWP_E_DUPLICATE_AUTH_METHOD";
    /// A tunnel endpoint configuration is invalid.
    InvalidTunnelEndpoint = 0x8032_003D, "FWP_E_INVALID_TUNNEL_ENDPOINT", "FWP_E_INVALID_TUNNEL_ENDPOINT";
    /// The WFP MAC layers are not ready.
    L2DriverNotReady = 0x8032_003E, "FWP_E_L2_DRIVER_NOT_READY", "FWP_E_L2_DRIVER_NOT_READY";
    /// A key manager capable of key dictation is already registered.
    KeyDictatorAlreadyRegistered = 0x8032_003F, "FWP_E_KEY_DICTATOR_ALREADY_REGISTERED", "FWP_E_KEY_DICTATOR_ALREADY_REGISTERED";
    /// A key manager dictated invalid keys.
    KeyDictationInvalidKeyingMaterial = 0x8032_0040, "FWP_E_KEY_DICTATION_INVALID_KEYING_MATERIAL", "FWP_E_KEY_DICTATION_INVALID_KEYING_MATERIAL";
    /// The BFE IPsec connection tracking is disabled.
    ConnectionsDisabled = 0x8032_0041, "FWP_E_CONNECTIONS_DISABLED", "FWP_E_CONNECTIONS_DISABLED";
    /// The DNS name is invalid.
    InvalidDnsName = 0x8032_0042, "FWP_E_INVALID_DNS_NAME", "FWP_E_INVALID_DNS_NAME";
    /// The engine option is still enabled due to other configuration settings.
    StillOn = 0x8032_0043, "FWP_E_STILL_ON", "FWP_E_STILL_ON";
    /// The IKEEXT service is not running.
    IkeextNotRunning = 0x8032_0044, "FWP_E_IKEEXT_NOT_RUNNING", "FWP_E_IKEEXT_NOT_RUNNING";
    /// The packet should be dropped, no ICMP should be sent.
    DropNoIcmp = 0x8032_0104, "FWP_E_DROP_NOICMP", "FWP_E_DROP_NOICMP";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(WfpError::AlreadyExists.hresult(), 0x8032_0009);
        assert_eq!(WfpError::FilterNotFound.hresult(), 0x8032_0003);
        assert_eq!(WfpError::InvalidWeight.hresult(), 0x8032_0025);
        assert_eq!(WfpError::from_hresult(0x8032_0012), Some(WfpError::Timeout));
        assert_eq!(WfpError::TypeMismatch.name(), "FWP_E_TYPE_MISMATCH");
    }
}
