//! Built-in layers, condition fields and sublayers, with their real Windows names and GUIDs.

use crate::Guid;

/// The data kind a condition field carries at classify time (`FWP_DATA_TYPE` family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// An IP address: `FWP_UINT32` (host order) at V4 layers, `FWP_BYTE_ARRAY16_TYPE` at V6
    /// layers; conditions may also use `FWP_V4_ADDR_MASK` / `FWP_V6_ADDR_MASK`.
    Address,
    /// `FWP_UINT8`.
    Uint8,
    /// `FWP_UINT16`.
    Uint16,
    /// `FWP_UINT32`.
    Uint32,
    /// `FWP_UINT64`.
    Uint64,
    /// `FWP_BYTE_ARRAY16_TYPE`.
    ByteArray16,
    /// `FWP_BYTE_BLOB_TYPE` (application ids: NUL-terminated UTF-16LE device path).
    ByteBlob,
    /// `FWP_UNICODE_STRING_TYPE`.
    UnicodeString,
    /// `FWP_SID`.
    Sid,
    /// A token field: conditions carry `FWP_SECURITY_DESCRIPTOR_TYPE`, classify carries a token.
    Token,
}

macro_rules! fields {
    ($( $(#[$m:meta])* $konst:ident = $idx:literal, $name:literal, $guid:literal, $kind:ident; )*) => {
        /// A condition field (`FWPM_CONDITION_*`), a small index into the built-in field table.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct Field(pub(crate) u8);

        impl Field {
            $( $(#[$m])* pub const $konst: Field = Field($idx); )*
            /// Number of known fields (the size of [`crate::IncomingValues`]).
            pub const COUNT: usize = [$($idx),*].len();
            const TABLE: &'static [(&'static str, Guid, FieldKind)] = &[
                $( ($name, Guid::from_u128($guid), FieldKind::$kind), )*
            ];
            /// All known fields.
            pub fn all() -> impl Iterator<Item = Field> {
                (0..Self::COUNT as u8).map(Field)
            }
        }
    };
}

fields! {
    /// `FWPM_CONDITION_IP_REMOTE_ADDRESS`.
    IP_REMOTE_ADDRESS = 0, "FWPM_CONDITION_IP_REMOTE_ADDRESS", 0xb235ae9a_1d64_49b8_a44c_5ff3d9095045, Address;
    /// `FWPM_CONDITION_IP_LOCAL_ADDRESS`.
    IP_LOCAL_ADDRESS = 1, "FWPM_CONDITION_IP_LOCAL_ADDRESS", 0xd9ee00de_c1ef_4617_bfe3_ffd8f5a08957, Address;
    /// `FWPM_CONDITION_IP_REMOTE_PORT`.
    IP_REMOTE_PORT = 2, "FWPM_CONDITION_IP_REMOTE_PORT", 0xc35a604d_d22b_4e1a_91b4_68f674ee674b, Uint16;
    /// `FWPM_CONDITION_IP_LOCAL_PORT`.
    IP_LOCAL_PORT = 3, "FWPM_CONDITION_IP_LOCAL_PORT", 0x0c1ba1af_5765_453f_af22_a8f791ac775b, Uint16;
    /// `FWPM_CONDITION_IP_PROTOCOL`.
    IP_PROTOCOL = 4, "FWPM_CONDITION_IP_PROTOCOL", 0x3971ef2b_623e_4f9a_8cb1_6e79b806b9a7, Uint8;
    /// `FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE` (NL_ADDRESS_TYPE).
    IP_LOCAL_ADDRESS_TYPE = 5, "FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE", 0x6ec7f6c4_376b_45d7_9e9c_d337cedcd237, Uint8;
    /// `FWPM_CONDITION_IP_DESTINATION_ADDRESS_TYPE`.
    IP_DESTINATION_ADDRESS_TYPE = 6, "FWPM_CONDITION_IP_DESTINATION_ADDRESS_TYPE", 0x1ec1b7c9_4eea_4f5e_b9ef_76beaaaf17ee, Uint8;
    /// `FWPM_CONDITION_IP_LOCAL_INTERFACE` (interface LUID).
    IP_LOCAL_INTERFACE = 7, "FWPM_CONDITION_IP_LOCAL_INTERFACE", 0x4cd62a49_59c3_4969_b7f3_bda5d32890a4, Uint64;
    /// `FWPM_CONDITION_IP_ARRIVAL_INTERFACE` (interface LUID).
    IP_ARRIVAL_INTERFACE = 8, "FWPM_CONDITION_IP_ARRIVAL_INTERFACE", 0x618a9b6d_386b_4136_ad6e_b51587cfb1cd, Uint64;
    /// `FWPM_CONDITION_ARRIVAL_INTERFACE_INDEX`.
    ARRIVAL_INTERFACE_INDEX = 9, "FWPM_CONDITION_ARRIVAL_INTERFACE_INDEX", 0xcc088db3_1792_4a71_b0f9_037d21cd828b, Uint32;
    /// `FWPM_CONDITION_INTERFACE_TYPE`.
    INTERFACE_TYPE = 10, "FWPM_CONDITION_INTERFACE_TYPE", 0xdaf8cd14_e09e_4c93_a5ae_c5c13b73ffca, Uint32;
    /// `FWPM_CONDITION_ALE_APP_ID`.
    ALE_APP_ID = 11, "FWPM_CONDITION_ALE_APP_ID", 0xd78e1e87_8644_4ea5_9437_d809ecefc971, ByteBlob;
    /// `FWPM_CONDITION_ALE_USER_ID`.
    ALE_USER_ID = 12, "FWPM_CONDITION_ALE_USER_ID", 0xaf043a0a_b34d_4f86_979c_c90371af6e66, Token;
    /// `FWPM_CONDITION_ALE_REMOTE_USER_ID`.
    ALE_REMOTE_USER_ID = 13, "FWPM_CONDITION_ALE_REMOTE_USER_ID", 0xf63073b7_0189_4ab0_95a4_6123cbfab862, Token;
    /// `FWPM_CONDITION_ALE_REMOTE_MACHINE_ID`.
    ALE_REMOTE_MACHINE_ID = 14, "FWPM_CONDITION_ALE_REMOTE_MACHINE_ID", 0x1aa47f51_7f93_4508_a271_81abb00c9cab, Token;
    /// `FWPM_CONDITION_ALE_PACKAGE_ID`.
    ALE_PACKAGE_ID = 15, "FWPM_CONDITION_ALE_PACKAGE_ID", 0x71bc78fa_f17c_4997_a602_6abb261f351c, Sid;
    /// `FWPM_CONDITION_ALE_PACKAGE_FAMILY_NAME`.
    ALE_PACKAGE_FAMILY_NAME = 16, "FWPM_CONDITION_ALE_PACKAGE_FAMILY_NAME", 0x81bc78fb_f28d_4886_a604_6acc261f261b, UnicodeString;
    /// `FWPM_CONDITION_ALE_PROMISCUOUS_MODE`.
    ALE_PROMISCUOUS_MODE = 17, "FWPM_CONDITION_ALE_PROMISCUOUS_MODE", 0x1c974776_7182_46e9_afd3_b02910e30334, Uint8;
    /// `FWPM_CONDITION_FLAGS` (`FWP_CONDITION_FLAG_*`).
    FLAGS = 18, "FWPM_CONDITION_FLAGS", 0x632ce23b_5167_435c_86d7_e903684aa80c, Uint32;
    /// `FWPM_CONDITION_DIRECTION` (FWP_DIRECTION: outbound 0, inbound 1).
    DIRECTION = 19, "FWPM_CONDITION_DIRECTION", 0x8784c146_ca97_44d6_9fd1_19fb1840cbf7, Uint32;
    /// `FWPM_CONDITION_PEER_NAME`.
    PEER_NAME = 20, "FWPM_CONDITION_PEER_NAME", 0x9b539082_eb90_4186_a6cc_de5b63235016, ByteBlob;
    /// `FWPM_CONDITION_REAUTHORIZE_REASON`.
    REAUTHORIZE_REASON = 21, "FWPM_CONDITION_REAUTHORIZE_REASON", 0x11205e8c_11ae_457a_8a44_477026dd764a, Uint32;
    /// `FWPM_CONDITION_CURRENT_PROFILE_ID`.
    CURRENT_PROFILE_ID = 22, "FWPM_CONDITION_CURRENT_PROFILE_ID", 0xab3033c9_c0e3_4759_937d_5758c65d4ae3, Uint32;
    /// `FWPM_CONDITION_ORIGINAL_PROFILE_ID`.
    ORIGINAL_PROFILE_ID = 23, "FWPM_CONDITION_ORIGINAL_PROFILE_ID", 0x46ea1551_2255_492b_8019_aabeee349f40, Uint32;
    /// `FWPM_CONDITION_REMOTE_ID` (KM_AUTHORIZATION).
    REMOTE_ID = 24, "FWPM_CONDITION_REMOTE_ID", 0xf68166fd_0682_4c89_b8f5_86436c7ef9b7, Token;
    /// `FWPM_CONDITION_AUTHENTICATION_TYPE`.
    AUTHENTICATION_TYPE = 25, "FWPM_CONDITION_AUTHENTICATION_TYPE", 0xeb458cd5_da7b_4ef9_8d43_7b0a840332f2, Uint32;
    /// `FWPM_CONDITION_KM_TYPE`.
    KM_TYPE = 26, "FWPM_CONDITION_KM_TYPE", 0xff0f5f49_0ceb_481b_8638_1479791f3f2c, Uint32;
    /// `FWPM_CONDITION_KM_MODE`.
    KM_MODE = 27, "FWPM_CONDITION_KM_MODE", 0xfeef4582_ef8f_4f7b_858b_9077d122de47, Uint32;
    /// `FWPM_CONDITION_IPSEC_POLICY_KEY`.
    IPSEC_POLICY_KEY = 28, "FWPM_CONDITION_IPSEC_POLICY_KEY", 0xad37dee3_722f_45cc_a4e3_068048124452, ByteArray16;
    /// `FWPM_CONDITION_QM_MODE`.
    QM_MODE = 29, "FWPM_CONDITION_QM_MODE", 0xf64fc6d1_f9cb_43d2_8a5f_e13bc894f265, Uint32;
}

impl Field {
    /// Windows name, e.g. `"FWPM_CONDITION_IP_REMOTE_PORT"`.
    pub fn name(self) -> &'static str {
        Self::TABLE[self.0 as usize].0
    }
    /// Windows GUID of the field key.
    pub fn guid(self) -> Guid {
        Self::TABLE[self.0 as usize].1
    }
    /// Data kind at classify time.
    pub fn kind(self) -> FieldKind {
        Self::TABLE[self.0 as usize].2
    }
    /// Index into [`crate::IncomingValues`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
    /// Looks a field up by Windows name; the `FWPM_CONDITION_` prefix is optional and case is
    /// ignored (`"ip_remote_port"` works).
    pub fn from_name(name: &str) -> Option<Field> {
        let n = name.trim();
        Field::all().find(|f| {
            let full = f.name();
            full.eq_ignore_ascii_case(n) || full["FWPM_CONDITION_".len()..].eq_ignore_ascii_case(n)
        })
    }
    /// Looks a field up by GUID.
    pub fn from_guid(g: Guid) -> Option<Field> {
        Field::all().find(|f| f.guid() == g)
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Address family of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 layer (`_V4`).
    V4,
    /// IPv6 layer (`_V6`).
    V6,
    /// Not an address-family layer (e.g. `FWPM_LAYER_KM_AUTHORIZATION`).
    None,
}

/// What a layer is for (one kind, two families).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerKind {
    /// `ALE_RESOURCE_ASSIGNMENT`: bind (explicit or implicit).
    ResourceAssignment,
    /// `ALE_AUTH_LISTEN`: TCP listen.
    AuthListen,
    /// `ALE_AUTH_RECV_ACCEPT`: inbound connection / first datagram from a new remote.
    AuthRecvAccept,
    /// `ALE_AUTH_CONNECT`: outbound connect / first datagram to a new remote.
    AuthConnect,
    /// `ALE_FLOW_ESTABLISHED`.
    FlowEstablished,
    /// `ALE_ENDPOINT_CLOSURE`.
    EndpointClosure,
    /// `ALE_RESOURCE_RELEASE`.
    ResourceRelease,
    /// `ALE_CONNECT_REDIRECT`.
    ConnectRedirect,
    /// `ALE_BIND_REDIRECT`.
    BindRedirect,
    /// `INBOUND_TRANSPORT`.
    InboundTransport,
    /// `OUTBOUND_TRANSPORT`.
    OutboundTransport,
    /// `IKEEXT` (main-mode policy).
    Ikeext,
    /// `IPSEC` (quick-mode policy).
    Ipsec,
    /// `KM_AUTHORIZATION`.
    KmAuthorization,
}

use Field as F;
const ALE_ID: &[Field] = &[
    F::ALE_APP_ID,
    F::ALE_USER_ID,
    F::ALE_PACKAGE_ID,
    F::ALE_PACKAGE_FAMILY_NAME,
    F::FLAGS,
];
const AUTH: &[Field] = &[
    F::ALE_REMOTE_USER_ID,
    F::ALE_REMOTE_MACHINE_ID,
    F::INTERFACE_TYPE,
    F::IP_DESTINATION_ADDRESS_TYPE,
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
    F::IP_REMOTE_ADDRESS,
    F::IP_REMOTE_PORT,
    F::IP_ARRIVAL_INTERFACE,
    F::ARRIVAL_INTERFACE_INDEX,
    F::REAUTHORIZE_REASON,
    F::PEER_NAME,
    F::CURRENT_PROFILE_ID,
    F::ORIGINAL_PROFILE_ID,
];
const RES: &[Field] = &[
    F::ALE_PROMISCUOUS_MODE,
    F::INTERFACE_TYPE,
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
];
const LISTEN: &[Field] = &[
    F::INTERFACE_TYPE,
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
];
const FLOW: &[Field] = &[
    F::ALE_REMOTE_USER_ID,
    F::ALE_REMOTE_MACHINE_ID,
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_DESTINATION_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
    F::IP_REMOTE_ADDRESS,
    F::IP_REMOTE_PORT,
    F::DIRECTION,
];
const FIVE_TUPLE: &[Field] = &[
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
    F::IP_REMOTE_ADDRESS,
    F::IP_REMOTE_PORT,
];
const BINDISH: &[Field] = &[
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
];
const TRANSPORT: &[Field] = &[
    F::IP_LOCAL_ADDRESS,
    F::IP_LOCAL_ADDRESS_TYPE,
    F::IP_DESTINATION_ADDRESS_TYPE,
    F::IP_LOCAL_INTERFACE,
    F::IP_LOCAL_PORT,
    F::IP_PROTOCOL,
    F::IP_REMOTE_ADDRESS,
    F::IP_REMOTE_PORT,
    F::IP_ARRIVAL_INTERFACE,
    F::FLAGS,
    F::INTERFACE_TYPE,
    F::CURRENT_PROFILE_ID,
];
const IKE: &[Field] = &[
    F::IP_LOCAL_ADDRESS,
    F::IP_REMOTE_ADDRESS,
    F::IP_LOCAL_INTERFACE,
    F::CURRENT_PROFILE_ID,
];
const IPSEC: &[Field] = &[
    F::IP_LOCAL_ADDRESS,
    F::IP_REMOTE_ADDRESS,
    F::IP_LOCAL_PORT,
    F::IP_REMOTE_PORT,
    F::IP_PROTOCOL,
    F::IP_LOCAL_INTERFACE,
    F::CURRENT_PROFILE_ID,
];
const KMA: &[Field] = &[
    F::REMOTE_ID,
    F::AUTHENTICATION_TYPE,
    F::KM_TYPE,
    F::DIRECTION,
    F::KM_MODE,
    F::IPSEC_POLICY_KEY,
];

struct LayerDef {
    name: &'static str,
    guid: Guid,
    kind: LayerKind,
    family: Family,
    fields: &'static [&'static [Field]],
}

macro_rules! layers {
    ($( $(#[$m:meta])* $konst:ident = $idx:literal, $name:literal, $guid:literal, $kind:ident, $fam:ident, [$($fs:ident),*]; )*) => {
        /// A built-in filtering layer (`FWPM_LAYER_*`). Layers cannot be added or deleted.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct Layer(pub(crate) u16);
        impl Layer {
            $( $(#[$m])* pub const $konst: Layer = Layer($idx); )*
            /// Number of built-in layers.
            pub const COUNT: usize = [$($idx),*].len();
            const TABLE: &'static [LayerDef] = &[
                $( LayerDef { name: $name, guid: Guid::from_u128($guid), kind: LayerKind::$kind,
                              family: Family::$fam, fields: &[$($fs),*] }, )*
            ];
        }
    };
}

layers! {
    /// `FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4`.
    ALE_RESOURCE_ASSIGNMENT_V4 = 0, "FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4", 0x1247d66d_0b60_4a15_8d44_7155d0f53a0c, ResourceAssignment, V4, [ALE_ID, RES];
    /// `FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V6`.
    ALE_RESOURCE_ASSIGNMENT_V6 = 1, "FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V6", 0x55a650e1_5f0a_4eca_a653_88f53b26aa8c, ResourceAssignment, V6, [ALE_ID, RES];
    /// `FWPM_LAYER_ALE_AUTH_LISTEN_V4`.
    ALE_AUTH_LISTEN_V4 = 2, "FWPM_LAYER_ALE_AUTH_LISTEN_V4", 0x88bb5dad_76d7_4227_9c71_df0a3ed7be7e, AuthListen, V4, [ALE_ID, LISTEN];
    /// `FWPM_LAYER_ALE_AUTH_LISTEN_V6`.
    ALE_AUTH_LISTEN_V6 = 3, "FWPM_LAYER_ALE_AUTH_LISTEN_V6", 0x7ac9de24_17dd_4814_b4bd_a9fbc95a321b, AuthListen, V6, [ALE_ID, LISTEN];
    /// `FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4`.
    ALE_AUTH_RECV_ACCEPT_V4 = 4, "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4", 0xe1cd9fe7_f4b5_4273_96c0_592e487b8650, AuthRecvAccept, V4, [ALE_ID, AUTH];
    /// `FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6`.
    ALE_AUTH_RECV_ACCEPT_V6 = 5, "FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6", 0xa3b42c97_9f04_4672_b87e_cee9c483257f, AuthRecvAccept, V6, [ALE_ID, AUTH];
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V4`.
    ALE_AUTH_CONNECT_V4 = 6, "FWPM_LAYER_ALE_AUTH_CONNECT_V4", 0xc38d57d1_05a7_4c33_904f_7fbceee60e82, AuthConnect, V4, [ALE_ID, AUTH];
    /// `FWPM_LAYER_ALE_AUTH_CONNECT_V6`.
    ALE_AUTH_CONNECT_V6 = 7, "FWPM_LAYER_ALE_AUTH_CONNECT_V6", 0x4a72393b_319f_44bc_84c3_ba54dcb3b6b4, AuthConnect, V6, [ALE_ID, AUTH];
    /// `FWPM_LAYER_ALE_FLOW_ESTABLISHED_V4`.
    ALE_FLOW_ESTABLISHED_V4 = 8, "FWPM_LAYER_ALE_FLOW_ESTABLISHED_V4", 0xaf80470a_5596_4c13_9992_539e6fe57967, FlowEstablished, V4, [ALE_ID, FLOW];
    /// `FWPM_LAYER_ALE_FLOW_ESTABLISHED_V6`.
    ALE_FLOW_ESTABLISHED_V6 = 9, "FWPM_LAYER_ALE_FLOW_ESTABLISHED_V6", 0x7021d2b3_dfa4_406e_afeb_6afaf7e70efd, FlowEstablished, V6, [ALE_ID, FLOW];
    /// `FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V4`.
    ALE_ENDPOINT_CLOSURE_V4 = 10, "FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V4", 0xb4766427_e2a2_467a_bd7e_dbcd1bd85a09, EndpointClosure, V4, [ALE_ID, FIVE_TUPLE];
    /// `FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V6`.
    ALE_ENDPOINT_CLOSURE_V6 = 11, "FWPM_LAYER_ALE_ENDPOINT_CLOSURE_V6", 0xbb536ccd_4755_4ba9_9ff7_f9edf8699c7b, EndpointClosure, V6, [ALE_ID, FIVE_TUPLE];
    /// `FWPM_LAYER_ALE_RESOURCE_RELEASE_V4`.
    ALE_RESOURCE_RELEASE_V4 = 12, "FWPM_LAYER_ALE_RESOURCE_RELEASE_V4", 0x74365cce_ccb0_401a_bfc1_b89934ad7e15, ResourceRelease, V4, [ALE_ID, BINDISH];
    /// `FWPM_LAYER_ALE_RESOURCE_RELEASE_V6`.
    ALE_RESOURCE_RELEASE_V6 = 13, "FWPM_LAYER_ALE_RESOURCE_RELEASE_V6", 0xf4e5ce80_edcc_4e13_8a2f_b91454bb057b, ResourceRelease, V6, [ALE_ID, BINDISH];
    /// `FWPM_LAYER_ALE_CONNECT_REDIRECT_V4`.
    ALE_CONNECT_REDIRECT_V4 = 14, "FWPM_LAYER_ALE_CONNECT_REDIRECT_V4", 0xc6e63c8c_b784_4562_aa7d_0a67cfcaf9a3, ConnectRedirect, V4, [ALE_ID, FIVE_TUPLE];
    /// `FWPM_LAYER_ALE_CONNECT_REDIRECT_V6`.
    ALE_CONNECT_REDIRECT_V6 = 15, "FWPM_LAYER_ALE_CONNECT_REDIRECT_V6", 0x587e54a7_8046_42ba_a0aa_b716250fc7fd, ConnectRedirect, V6, [ALE_ID, FIVE_TUPLE];
    /// `FWPM_LAYER_ALE_BIND_REDIRECT_V4`.
    ALE_BIND_REDIRECT_V4 = 16, "FWPM_LAYER_ALE_BIND_REDIRECT_V4", 0x66978cad_c704_42ac_86ac_7c1a231bd253, BindRedirect, V4, [ALE_ID, BINDISH];
    /// `FWPM_LAYER_ALE_BIND_REDIRECT_V6`.
    ALE_BIND_REDIRECT_V6 = 17, "FWPM_LAYER_ALE_BIND_REDIRECT_V6", 0xbef02c9c_606b_4536_8c26_1c2fc7b631d4, BindRedirect, V6, [ALE_ID, BINDISH];
    /// `FWPM_LAYER_INBOUND_TRANSPORT_V4`.
    INBOUND_TRANSPORT_V4 = 18, "FWPM_LAYER_INBOUND_TRANSPORT_V4", 0x5926dfc8_e3cf_4426_a283_dc393f5d0f9d, InboundTransport, V4, [TRANSPORT];
    /// `FWPM_LAYER_INBOUND_TRANSPORT_V6`.
    INBOUND_TRANSPORT_V6 = 19, "FWPM_LAYER_INBOUND_TRANSPORT_V6", 0x634a869f_fc23_4b90_b0c1_bf620a36ae6f, InboundTransport, V6, [TRANSPORT];
    /// `FWPM_LAYER_OUTBOUND_TRANSPORT_V4`.
    OUTBOUND_TRANSPORT_V4 = 20, "FWPM_LAYER_OUTBOUND_TRANSPORT_V4", 0x09e61aea_d214_46e2_9b21_b26b0b2f28c8, OutboundTransport, V4, [TRANSPORT];
    /// `FWPM_LAYER_OUTBOUND_TRANSPORT_V6`.
    OUTBOUND_TRANSPORT_V6 = 21, "FWPM_LAYER_OUTBOUND_TRANSPORT_V6", 0xe1735bde_013f_4655_b351_a49e15762df0, OutboundTransport, V6, [TRANSPORT];
    /// `FWPM_LAYER_IKEEXT_V4`.
    IKEEXT_V4 = 22, "FWPM_LAYER_IKEEXT_V4", 0xb14b7bdb_dbbd_473e_bed4_8b4708d4f270, Ikeext, V4, [IKE];
    /// `FWPM_LAYER_IKEEXT_V6`.
    IKEEXT_V6 = 23, "FWPM_LAYER_IKEEXT_V6", 0xb64786b3_f687_4eb9_89d2_8ef32acdabe2, Ikeext, V6, [IKE];
    /// `FWPM_LAYER_IPSEC_V4`.
    IPSEC_V4 = 24, "FWPM_LAYER_IPSEC_V4", 0xeda65c74_610d_4bc5_948f_3c4f89556867, Ipsec, V4, [IPSEC];
    /// `FWPM_LAYER_IPSEC_V6`.
    IPSEC_V6 = 25, "FWPM_LAYER_IPSEC_V6", 0x13c48442_8d87_4261_9a29_59d2abc348b4, Ipsec, V6, [IPSEC];
    /// `FWPM_LAYER_KM_AUTHORIZATION`.
    KM_AUTHORIZATION = 26, "FWPM_LAYER_KM_AUTHORIZATION", 0x4aa226e9_9020_45fb_956a_c0249d841195, KmAuthorization, None, [KMA];
}

impl Layer {
    fn def(self) -> &'static LayerDef {
        &Self::TABLE[self.0 as usize]
    }
    /// Windows name, e.g. `"FWPM_LAYER_ALE_AUTH_CONNECT_V4"`.
    pub fn name(self) -> &'static str {
        self.def().name
    }
    /// Windows GUID (`layerKey`).
    pub fn guid(self) -> Guid {
        self.def().guid
    }
    /// Runtime layer id (`layerId`, the `FWPS_LAYER_*` style u16). Ours are table indexes.
    pub fn id(self) -> u16 {
        self.0
    }
    /// What the layer is for.
    pub fn kind(self) -> LayerKind {
        self.def().kind
    }
    /// Address family.
    pub fn family(self) -> Family {
        self.def().family
    }
    /// Whether `field` is available at this layer.
    pub fn has_field(self, field: Field) -> bool {
        self.def().fields.iter().any(|g| g.contains(&field))
    }
    /// All fields available at this layer.
    pub fn fields(self) -> impl Iterator<Item = Field> {
        Field::all().filter(move |f| self.has_field(*f))
    }
    /// All built-in layers.
    pub fn all() -> impl Iterator<Item = Layer> {
        (0..Self::COUNT as u16).map(Layer)
    }
    /// The layer of `kind` for the family (`v6` = IPv6). `None` if there is no such layer.
    pub fn of(kind: LayerKind, v6: bool) -> Option<Layer> {
        let fam = if v6 { Family::V6 } else { Family::V4 };
        Layer::all().find(|l| l.kind() == kind && (l.family() == fam || l.family() == Family::None))
    }
    /// Looks a layer up by Windows name (`FWPM_LAYER_` prefix optional, case-insensitive).
    pub fn from_name(name: &str) -> Option<Layer> {
        let n = name.trim();
        Layer::all().find(|l| {
            let full = l.name();
            full.eq_ignore_ascii_case(n) || full["FWPM_LAYER_".len()..].eq_ignore_ascii_case(n)
        })
    }
    /// Looks a layer up by GUID.
    pub fn from_guid(g: Guid) -> Option<Layer> {
        Layer::all().find(|l| l.guid() == g)
    }
    /// Looks a layer up by runtime id.
    pub fn from_id(id: u16) -> Option<Layer> {
        ((id as usize) < Self::COUNT).then_some(Layer(id))
    }
    /// Whether re-authorization applies at this layer (ALE_AUTH_CONNECT / ALE_AUTH_RECV_ACCEPT).
    pub fn is_reauth_layer(self) -> bool {
        matches!(
            self.kind(),
            LayerKind::AuthConnect | LayerKind::AuthRecvAccept
        )
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Built-in sublayers: (Windows name, GUID, weight). The numeric weights are not documented by
/// Microsoft; these are our fixed choice (INSPECTION lowest, as documented; UNIVERSAL in the
/// middle so admin sublayers can sit above or below it).
pub const BUILTIN_SUBLAYERS: &[(&str, Guid, u16)] = &[
    (
        "FWPM_SUBLAYER_IPSEC_SECURITY_REALM",
        Guid::from_u128(0x37a57701_5884_4964_92b8_3e704688b0ad),
        0x9400,
    ),
    (
        "FWPM_SUBLAYER_IPSEC_DOSP",
        Guid::from_u128(0xe076d572_5d3d_48ef_802b_909eddb098bd),
        0x9300,
    ),
    (
        "FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL",
        Guid::from_u128(0xa5082e73_8f71_4559_8a9a_101cea04ef87),
        0x9200,
    ),
    (
        "FWPM_SUBLAYER_IPSEC_TUNNEL",
        Guid::from_u128(0x83f299ed_9ff4_4967_aff4_c309f4dab827),
        0x9100,
    ),
    (
        "FWPM_SUBLAYER_UNIVERSAL",
        Guid::from_u128(0xeebecc03_ced4_4380_819a_2734397b2b74),
        0x8000,
    ),
    (
        "FWPM_SUBLAYER_SECURE_SOCKET",
        Guid::from_u128(0x15a66e17_3f3c_4f7b_aa6c_812aa613dd82),
        0x7000,
    ),
    (
        "FWPM_SUBLAYER_LIPS",
        Guid::from_u128(0x1b75c0ce_ff60_4711_a70f_b4958cc3b2d0),
        0x6000,
    ),
    (
        "FWPM_SUBLAYER_RPC_AUDIT",
        Guid::from_u128(0x758c84f4_fb48_4de9_9aeb_3ed9551ab1fd),
        0x5000,
    ),
    (
        "FWPM_SUBLAYER_TCP_CHIMNEY_OFFLOAD",
        Guid::from_u128(0x337608b9_b7d5_4d5f_82f9_3618618bc058),
        0x4200,
    ),
    (
        "FWPM_SUBLAYER_TCP_TEMPLATES",
        Guid::from_u128(0x24421dcf_0ac5_4caa_9e14_50f6e3636af0),
        0x4100,
    ),
    (
        "FWPM_SUBLAYER_TEREDO",
        Guid::from_u128(0xba69dc66_5176_4979_9c89_26a7b46a8327),
        0x4000,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_QUARANTINE",
        Guid::from_u128(0xb3cdd441_af90_41ba_a745_7c6008ff2302),
        0x2100,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_WSH",
        Guid::from_u128(0xb3cdd441_af90_41ba_a745_7c6008ff2300),
        0x2000,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_WF",
        Guid::from_u128(0xb3cdd441_af90_41ba_a745_7c6008ff2301),
        0x1F00,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_APP_ISOLATION",
        Guid::from_u128(0xffe221c3_92a8_4564_a59f_dafb70756020),
        0x1E00,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_EDP",
        Guid::from_u128(0x09a47e38_fa97_471b_b123_18bcd7e65071),
        0x1D00,
    ),
    (
        "FWPM_SUBLAYER_MPSSVC_TENANT_RESTRICTIONS",
        Guid::from_u128(0x1ec6c7e1_fdd9_478a_b55f_ff8ba1d2c17d),
        0x1C00,
    ),
    (
        "FWPM_SUBLAYER_INSPECTION",
        Guid::from_u128(0x877519e1_e6a9_41a5_81b4_8c4f118e4a60),
        0x0000,
    ),
];

/// `FWPM_SUBLAYER_UNIVERSAL`, the default sublayer of filters added with a nil sublayer key.
pub const SUBLAYER_UNIVERSAL: Guid = Guid::from_u128(0xeebecc03_ced4_4380_819a_2734397b2b74);
/// `FWPM_SUBLAYER_SECURE_SOCKET`.
pub const SUBLAYER_SECURE_SOCKET: Guid = Guid::from_u128(0x15a66e17_3f3c_4f7b_aa6c_812aa613dd82);
/// `FWPM_SUBLAYER_INSPECTION`.
pub const SUBLAYER_INSPECTION: Guid = Guid::from_u128(0x877519e1_e6a9_41a5_81b4_8c4f118e4a60);
/// `FWPM_SUBLAYER_IPSEC_SECURITY_REALM`.
pub const SUBLAYER_IPSEC_SECURITY_REALM: Guid =
    Guid::from_u128(0x37a57701_5884_4964_92b8_3e704688b0ad);
/// `FWPM_SUBLAYER_RPC_AUDIT`.
pub const SUBLAYER_RPC_AUDIT: Guid = Guid::from_u128(0x758c84f4_fb48_4de9_9aeb_3ed9551ab1fd);

/// Built-in providers: (Windows name, GUID).
pub const BUILTIN_PROVIDERS: &[(&str, Guid)] = &[
    (
        "FWPM_PROVIDER_IKEEXT",
        Guid::from_u128(0x10ad9216_ccde_456c_8b16_e9f04e60a90b),
    ),
    (
        "FWPM_PROVIDER_IPSEC_DOSP_CONFIG",
        Guid::from_u128(0x3c6c05a9_c05c_4bb9_8338_2327814ce8bf),
    ),
    (
        "FWPM_PROVIDER_MPSSVC_WF",
        Guid::from_u128(0xdecc16ca_3f33_4346_be1e_8fb4ae0f3d62),
    ),
    (
        "FWPM_PROVIDER_MPSSVC_WSH",
        Guid::from_u128(0x4b153735_1049_4480_aab4_d1b9bdc03710),
    ),
    (
        "FWPM_PROVIDER_TCP_CHIMNEY_OFFLOAD",
        Guid::from_u128(0x896aa19e_9a34_4bcb_ae79_beb9127c84b9),
    ),
    (
        "FWPM_PROVIDER_TCP_TEMPLATES",
        Guid::from_u128(0x76cfcd30_3394_432d_bed3_441ae50e63c3),
    ),
];

/// `FWP_CONDITION_FLAG_*` bits of `FWPM_CONDITION_FLAGS`.
pub mod condition_flags {
    #![allow(missing_docs)]
    pub const IS_LOOPBACK: u32 = 0x1;
    pub const IS_IPSEC_SECURED: u32 = 0x2;
    pub const IS_REAUTHORIZE: u32 = 0x4;
    pub const IS_WILDCARD_BIND: u32 = 0x8;
    pub const IS_RAW_ENDPOINT: u32 = 0x10;
    pub const IS_FRAGMENT: u32 = 0x20;
    pub const IS_FRAGMENT_GROUP: u32 = 0x40;
    pub const IS_IPSEC_NATT_RECLASSIFY: u32 = 0x80;
    pub const REQUIRES_ALE_CLASSIFY: u32 = 0x100;
    pub const IS_IMPLICIT_BIND: u32 = 0x200;
    pub const IS_REASSEMBLED: u32 = 0x400;
    pub const IS_NAME_APP_SPECIFIED: u32 = 0x4000;
    pub const IS_PROMISCUOUS: u32 = 0x8000;
    pub const IS_AUTH_FW: u32 = 0x10000;
    pub const IS_RECLASSIFY: u32 = 0x20000;
    pub const IS_OUTBOUND_PASS_THRU: u32 = 0x40000;
    pub const IS_INBOUND_PASS_THRU: u32 = 0x80000;
    pub const IS_CONNECTION_REDIRECTED: u32 = 0x100000;
}

/// `FWP_CONDITION_REAUTHORIZE_REASON_*` bits of `FWPM_CONDITION_REAUTHORIZE_REASON`.
pub mod reauth_reason {
    #![allow(missing_docs)]
    pub const POLICY_CHANGE: u32 = 0x1;
    pub const NEW_ARRIVAL_INTERFACE: u32 = 0x2;
    pub const NEW_NEXTHOP_INTERFACE: u32 = 0x4;
    pub const PROFILE_CROSSING: u32 = 0x8;
    pub const CLASSIFY_COMPLETION: u32 = 0x10;
    pub const IPSEC_PROPERTIES_CHANGED: u32 = 0x20;
    pub const MID_STREAM_INSPECTION: u32 = 0x40;
    pub const SOCKET_PROPERTY_CHANGED: u32 = 0x80;
    pub const NEW_INBOUND_MCAST_BCAST_PACKET: u32 = 0x100;
    pub const EDP_POLICY_CHANGED: u32 = 0x200;
    pub const PROXY_HANDLE_CHANGED: u32 = 0x4000;
    pub const CHECK_OFFLOAD: u32 = 0x10000;
}
