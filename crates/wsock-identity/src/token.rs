//! [`Token`]: access tokens for authenticated peers, and the typed views of
//! `GetTokenInformation`.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::directory::{Account, Directory, SidNameUse};
use crate::error::IdentityError;
use crate::rights::{AccessMask, TOKEN_QUERY, TOKEN_QUERY_SOURCE};
use crate::sid::{well_known as wk, Sid};

/// A locally unique identifier (`LUID`: low u32, high i32), used for logon sessions
/// (authentication ids) and token ids.
///
/// # Examples
///
/// ```
/// use wsock_identity::Luid;
/// let a = Luid::allocate();
/// let b = Luid::allocate();
/// assert_ne!(a, b);
/// assert_eq!(Luid::from_u64(0x3e7), Luid::SYSTEM);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Luid {
    /// `LowPart`.
    pub low: u32,
    /// `HighPart`.
    pub high: i32,
}

/// The first LUID [`Luid::allocate`] hands out, well above the fixed system logon ids.
const FIRST_ALLOCATED_LUID: u64 = 0x0001_0000;
static NEXT_LUID: AtomicU64 = AtomicU64::new(FIRST_ALLOCATED_LUID);

impl Luid {
    /// `SYSTEM_LUID` (0x3e7): the logon session of Local System.
    pub const SYSTEM: Luid = Luid::from_u64(0x3e7);
    /// `ANONYMOUS_LOGON_LUID` (0x3e6).
    pub const ANONYMOUS_LOGON: Luid = Luid::from_u64(0x3e6);

    /// The LUID whose 64-bit value is `v` (high part = upper 32 bits).
    pub const fn from_u64(v: u64) -> Luid {
        Luid {
            low: v as u32,
            high: (v >> 32) as i32,
        }
    }

    /// The 64-bit value.
    pub const fn as_u64(self) -> u64 {
        ((self.high as u32 as u64) << 32) | self.low as u64
    }

    /// A LUID unique within this process (`AllocateLocallyUniqueId`), from a global counter
    /// starting at 0x10000.
    pub fn allocate() -> Luid {
        Luid::from_u64(NEXT_LUID.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for Luid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.as_u64())
    }
}

/// The attributes of a group in a token (`SE_GROUP_*` bits).
///
/// # Examples
///
/// ```
/// use wsock_identity::GroupAttributes as G;
/// let a = G::MANDATORY | G::ENABLED_BY_DEFAULT | G::ENABLED;
/// assert_eq!(a.bits(), 7);
/// assert!(a.contains(G::ENABLED));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GroupAttributes(pub u32);

impl GroupAttributes {
    /// No attribute.
    pub const NONE: GroupAttributes = GroupAttributes(0);
    /// `SE_GROUP_MANDATORY` (0x1): cannot be disabled.
    pub const MANDATORY: GroupAttributes = GroupAttributes(0x0000_0001);
    /// `SE_GROUP_ENABLED_BY_DEFAULT` (0x2).
    pub const ENABLED_BY_DEFAULT: GroupAttributes = GroupAttributes(0x0000_0002);
    /// `SE_GROUP_ENABLED` (0x4): counts in access checks.
    pub const ENABLED: GroupAttributes = GroupAttributes(0x0000_0004);
    /// `SE_GROUP_OWNER` (0x8): may be made the owner of new objects.
    pub const OWNER: GroupAttributes = GroupAttributes(0x0000_0008);
    /// `SE_GROUP_USE_FOR_DENY_ONLY` (0x10): matches deny ACEs only.
    pub const USE_FOR_DENY_ONLY: GroupAttributes = GroupAttributes(0x0000_0010);
    /// `SE_GROUP_INTEGRITY` (0x20): a mandatory integrity label.
    pub const INTEGRITY: GroupAttributes = GroupAttributes(0x0000_0020);
    /// `SE_GROUP_INTEGRITY_ENABLED` (0x40).
    pub const INTEGRITY_ENABLED: GroupAttributes = GroupAttributes(0x0000_0040);
    /// `SE_GROUP_RESOURCE` (0x20000000): a domain-local group.
    pub const RESOURCE: GroupAttributes = GroupAttributes(0x2000_0000);
    /// `SE_GROUP_LOGON_ID` (0xC0000000): the logon session SID.
    pub const LOGON_ID: GroupAttributes = GroupAttributes(0xC000_0000);
    /// The attributes of an ordinary group in a logon token: mandatory, enabled by default,
    /// enabled (7).
    pub const DEFAULT: GroupAttributes = GroupAttributes(0x7);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: GroupAttributes) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for GroupAttributes {
    type Output = GroupAttributes;
    fn bitor(self, rhs: GroupAttributes) -> GroupAttributes {
        GroupAttributes(self.0 | rhs.0)
    }
}

impl BitOrAssign for GroupAttributes {
    fn bitor_assign(&mut self, rhs: GroupAttributes) {
        self.0 |= rhs.0;
    }
}

/// A SID with its attributes (`SID_AND_ATTRIBUTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SidAndAttributes {
    /// The SID.
    pub sid: Sid,
    /// Its attributes (0 for the token's user unless it is deny-only).
    pub attributes: GroupAttributes,
}

/// `TOKEN_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TokenType {
    /// `TokenPrimary` (1): a process token.
    Primary = 1,
    /// `TokenImpersonation` (2): a thread may impersonate with it.
    Impersonation = 2,
}

/// `SECURITY_IMPERSONATION_LEVEL`, ordered from least to most power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum ImpersonationLevel {
    /// `SecurityAnonymous` (0): the server cannot identify the client.
    Anonymous = 0,
    /// `SecurityIdentification` (1): the server can identify and run access checks, not act.
    Identification = 1,
    /// `SecurityImpersonation` (2): the server can act as the client on the local system.
    Impersonation = 2,
    /// `SecurityDelegation` (3): the server can act as the client on remote systems too.
    Delegation = 3,
}

/// Whose identity a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A machine account (`DOMAIN\NAME$`): the peer computer (IKE main mode).
    Machine,
    /// A user account: the peer application's user (extended-mode authentication).
    User,
}

/// How the identity in a token was authenticated.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Kerberos (the Windows default for domain members).
    Kerberos,
    /// NTLM.
    Ntlm,
    /// An X.509 certificate mapped to the account.
    Certificate,
    /// A pre-shared key (identifies a machine only weakly: anyone with the key).
    PreSharedKey,
    /// A user name and password checked against the directory.
    Password,
}

/// Where a token's identity came from: which kind of principal, authenticated how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentitySource {
    /// Machine or user.
    pub principal: PrincipalKind,
    /// The authentication method.
    pub method: AuthMethod,
}

/// An access token: who a peer is (user SID, groups) and what may be done with that identity
/// (type and impersonation level).
///
/// Tokens are immutable values; handles to them live in a [`HandleTable`](crate::HandleTable).
/// Peer tokens (what `WSAQuerySocketSecurity` returns and `WSAImpersonateSocketPeer` uses) come
/// from [`Token::peer_machine`] and [`Token::peer_user`].
///
/// # Examples
///
/// ```
/// use wsock_identity::*;
/// let dir = DirectorySpec::new("WSOCK").machine("CLIENT").build()?;
/// let t = Token::peer_machine(&dir, "CLIENT", AuthMethod::Certificate)?;
/// assert_eq!(t.user().sid, dir.machine("CLIENT")?.sid());
/// assert!(t.is_member(&well_known::NETWORK));
/// assert_eq!(t.token_type(), TokenType::Impersonation);
/// # Ok::<(), IdentityError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    user: SidAndAttributes,
    groups: Vec<SidAndAttributes>,
    owner: Sid,
    primary_group: Sid,
    token_type: TokenType,
    level: ImpersonationLevel,
    authentication_id: Luid,
    token_id: Luid,
    modified_id: Luid,
    source: IdentitySource,
}

impl Token {
    /// The token of a network logon by the peer computer `machine` (name with or without `$`,
    /// bare or qualified), as IKE main-mode authentication produces it.
    ///
    /// Groups, in order (attributes mandatory | enabled by default | enabled unless said):
    /// the account's domain groups (Domain Computers first), `Everyone`, `BUILTIN\Users`
    /// (`BUILTIN\Administrators` too for members of Domain Admins), `NETWORK`,
    /// `Authenticated Users`, `This Organization`, the authentication SID of the method
    /// (`NTLM Authentication` S-1-5-64-10 for NTLM, `Authentication authority asserted
    /// identity` S-1-18-1 for Kerberos, none otherwise), the logon SID `S-1-5-5-x-y` (with
    /// `SE_GROUP_LOGON_ID`), and `Medium Mandatory Level` (integrity attributes only, so it never
    /// counts in access checks). Type impersonation, level `SecurityImpersonation`, a fresh
    /// logon session.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoSuchUser`] if the directory has no such machine.
    pub fn peer_machine(
        dir: &Directory,
        machine: &str,
        method: AuthMethod,
    ) -> Result<Token, IdentityError> {
        let account = dir.machine(machine)?;
        Token::network_logon(dir, account, method)
    }

    /// The token of a network logon by the peer user `user` (any name form of
    /// [`Directory::lookup_name`]), as extended-mode user authentication produces it. Groups
    /// as for [`Token::peer_machine`], with Domain Users as the primary group.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoSuchUser`] if the directory has no such user.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let dir = DirectorySpec::new("WSOCK").user(UserSpec::new("alice")).build()?;
    /// let t = Token::peer_user(&dir, "alice@WSOCK", AuthMethod::Kerberos)?;
    /// assert!(t.is_member(&dir.domain_rid(well_known::DOMAIN_GROUP_RID_USERS)?));
    /// assert_eq!(t.source().principal, PrincipalKind::User);
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn peer_user(
        dir: &Directory,
        user: &str,
        method: AuthMethod,
    ) -> Result<Token, IdentityError> {
        let account = dir.user(user)?;
        Token::network_logon(dir, account, method)
    }

    /// The network-logon token of any user or machine account of `dir`.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoSuchUser`] if `account` is not a user or machine account.
    pub fn network_logon(
        dir: &Directory,
        account: &Account,
        method: AuthMethod,
    ) -> Result<Token, IdentityError> {
        let principal = match account.kind() {
            SidNameUse::User => PrincipalKind::User,
            SidNameUse::Computer => PrincipalKind::Machine,
            _ => {
                return Err(IdentityError::NoSuchUser {
                    name: account.qualified_name(),
                })
            }
        };
        let logon = Luid::allocate();
        let mut groups: Vec<SidAndAttributes> = Vec::with_capacity(12);
        let mut add = |sid: Sid, attributes: GroupAttributes| {
            if !groups.iter().any(|g| g.sid == sid) {
                groups.push(SidAndAttributes { sid, attributes });
            }
        };
        let admins = dir.domain_rid(wk::DOMAIN_GROUP_RID_ADMINS)?;
        for &g in account.groups() {
            add(g, GroupAttributes::DEFAULT);
        }
        add(wk::EVERYONE, GroupAttributes::DEFAULT);
        if account.groups().contains(&admins) {
            add(wk::BUILTIN_ADMINISTRATORS, GroupAttributes::DEFAULT);
        }
        add(wk::BUILTIN_USERS, GroupAttributes::DEFAULT);
        add(wk::NETWORK, GroupAttributes::DEFAULT);
        add(wk::AUTHENTICATED_USERS, GroupAttributes::DEFAULT);
        add(wk::THIS_ORGANIZATION, GroupAttributes::DEFAULT);
        match method {
            AuthMethod::Ntlm => add(wk::NTLM_AUTHENTICATION, GroupAttributes::DEFAULT),
            AuthMethod::Kerberos => add(
                wk::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY,
                GroupAttributes::DEFAULT,
            ),
            AuthMethod::Certificate | AuthMethod::PreSharedKey | AuthMethod::Password => {}
        }
        add(
            wk::logon_sid(logon),
            GroupAttributes::DEFAULT | GroupAttributes::LOGON_ID,
        );
        add(
            wk::MEDIUM_MANDATORY_LEVEL,
            GroupAttributes::INTEGRITY | GroupAttributes::INTEGRITY_ENABLED,
        );
        let primary_group = account.primary_group().unwrap_or(wk::EVERYONE);
        Ok(Token {
            user: SidAndAttributes {
                sid: account.sid(),
                attributes: GroupAttributes::NONE,
            },
            groups,
            owner: account.sid(),
            primary_group,
            token_type: TokenType::Impersonation,
            level: ImpersonationLevel::Impersonation,
            authentication_id: logon,
            token_id: Luid::allocate(),
            modified_id: Luid::allocate(),
            source: IdentitySource { principal, method },
        })
    }

    /// The same token in another logon session (for callers that give several tokens of one
    /// authenticated peer a shared authentication id). The logon SID group follows.
    pub fn with_authentication_id(mut self, logon: Luid) -> Token {
        let old = wk::logon_sid(self.authentication_id);
        for g in &mut self.groups {
            if g.sid == old {
                g.sid = wk::logon_sid(logon);
            }
        }
        self.authentication_id = logon;
        self
    }

    /// `DuplicateTokenEx`: a copy with a new token id, of type `token_type` at `level` (the
    /// level is ignored, and reported as the source's, for a primary token).
    ///
    /// # Errors
    ///
    /// [`IdentityError::BadImpersonationLevel`] when asking for a level above the source's
    /// (an impersonation token can only go down), or when making a primary token from an
    /// impersonation token below `SecurityImpersonation`.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let dir = DirectorySpec::new("W").machine("M").build()?;
    /// let t = Token::peer_machine(&dir, "M", AuthMethod::Kerberos)?;
    /// let id = t.duplicate(TokenType::Impersonation, ImpersonationLevel::Identification)?;
    /// assert_eq!(id.impersonation_level(), Some(ImpersonationLevel::Identification));
    /// assert!(id.duplicate(TokenType::Impersonation, ImpersonationLevel::Delegation).is_err());
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn duplicate(
        &self,
        token_type: TokenType,
        level: ImpersonationLevel,
    ) -> Result<Token, IdentityError> {
        let source_level = match self.token_type {
            // A primary token can be duplicated at any level.
            TokenType::Primary => ImpersonationLevel::Delegation,
            TokenType::Impersonation => self.level,
        };
        let level = match token_type {
            TokenType::Impersonation if level > source_level => {
                return Err(IdentityError::BadImpersonationLevel)
            }
            TokenType::Impersonation => level,
            TokenType::Primary if source_level < ImpersonationLevel::Impersonation => {
                return Err(IdentityError::BadImpersonationLevel)
            }
            TokenType::Primary => self.level,
        };
        let mut out = self.clone();
        out.token_type = token_type;
        out.level = level;
        out.token_id = Luid::allocate();
        Ok(out)
    }

    /// The user (`TokenUser`).
    pub fn user(&self) -> &SidAndAttributes {
        &self.user
    }

    /// The groups with their attributes (`TokenGroups`), in token order.
    pub fn groups(&self) -> &[SidAndAttributes] {
        &self.groups
    }

    /// The default owner of objects the token creates (`TokenOwner`): the user.
    pub fn owner(&self) -> Sid {
        self.owner
    }

    /// The primary group (`TokenPrimaryGroup`).
    pub fn primary_group(&self) -> Sid {
        self.primary_group
    }

    /// Primary or impersonation (`TokenType`).
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// The impersonation level (`TokenImpersonationLevel`); `None` for a primary token, which
    /// has none.
    pub fn impersonation_level(&self) -> Option<ImpersonationLevel> {
        match self.token_type {
            TokenType::Primary => None,
            TokenType::Impersonation => Some(self.level),
        }
    }

    /// The logon session (`AuthenticationId`).
    pub fn authentication_id(&self) -> Luid {
        self.authentication_id
    }

    /// This token's own id (`TokenId`), new for every duplicate.
    pub fn token_id(&self) -> Luid {
        self.token_id
    }

    /// Whose identity this is and how it was authenticated.
    pub fn source(&self) -> IdentitySource {
        self.source
    }

    /// `CheckTokenMembership`: whether `sid` is the token's user or one of its enabled groups
    /// (deny-only groups do not count).
    pub fn is_member(&self, sid: &Sid) -> bool {
        self.matches_allow(sid)
    }

    /// Whether `sid` counts for an access-allowed ACE: the user or an enabled group, and not
    /// deny-only.
    pub(crate) fn matches_allow(&self, sid: &Sid) -> bool {
        let counts = |e: &SidAndAttributes, is_user: bool| {
            e.sid == *sid
                && !e.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY)
                && (is_user || e.attributes.contains(GroupAttributes::ENABLED))
        };
        counts(&self.user, true) || self.groups.iter().any(|g| counts(g, false))
    }

    /// Whether `sid` counts for an access-denied ACE: the user, an enabled group or a
    /// deny-only group.
    pub(crate) fn matches_deny(&self, sid: &Sid) -> bool {
        self.user.sid == *sid
            || self.groups.iter().any(|g| {
                g.sid == *sid
                    && (g.attributes.contains(GroupAttributes::ENABLED)
                        || g.attributes.contains(GroupAttributes::USE_FOR_DENY_ONLY))
            })
    }

    /// Marks the group `sid` deny-only (as a restricted token does): it is disabled and then
    /// only matches deny ACEs. Returns whether the group was found.
    pub fn set_deny_only(&mut self, sid: &Sid) -> bool {
        let mut found = false;
        for g in self.groups.iter_mut().filter(|g| g.sid == *sid) {
            g.attributes = GroupAttributes(
                (g.attributes.0
                    & !(GroupAttributes::ENABLED.0 | GroupAttributes::ENABLED_BY_DEFAULT.0))
                    | GroupAttributes::USE_FOR_DENY_ONLY.0,
            );
            found = true;
        }
        if found {
            self.modified_id = Luid::allocate();
        }
        found
    }

    /// `TokenStatistics`.
    pub fn statistics(&self) -> TokenStatistics {
        TokenStatistics {
            token_id: self.token_id,
            authentication_id: self.authentication_id,
            expiration_time: i64::MAX,
            token_type: self.token_type,
            impersonation_level: self.level,
            dynamic_charged: DYNAMIC_CHARGED,
            dynamic_available: DYNAMIC_CHARGED,
            group_count: self.groups.len() as u32,
            privilege_count: 0,
            modified_id: self.modified_id,
        }
    }

    /// `GetTokenInformation`: the information of one class, as plain data. The raw face
    /// checks the caller's buffer with [`TokenInformation::required_size`] and lays it out.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidParameter`] for a class this crate does not model
    /// (privileges, default DACL, source, ...) and for `TokenImpersonationLevel` on a primary
    /// token.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let dir = DirectorySpec::new("W").user(UserSpec::new("bob")).build()?;
    /// let t = Token::peer_user(&dir, "bob", AuthMethod::Password)?;
    /// let info = t.information(TokenInformationClass::User)?;
    /// // TOKEN_USER (16 bytes) followed by the 28-byte SID S-1-5-21-a-b-c-1000.
    /// assert_eq!(info.required_size(), 44);
    /// assert!(matches!(info.check_buffer(43), Err(IdentityError::InsufficientBuffer { required: 44 })));
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn information(
        &self,
        class: TokenInformationClass,
    ) -> Result<TokenInformation, IdentityError> {
        Ok(match class {
            TokenInformationClass::User => TokenInformation::User(TokenUser { user: self.user }),
            TokenInformationClass::Groups => TokenInformation::Groups(TokenGroups {
                groups: self.groups.clone(),
            }),
            TokenInformationClass::Owner => TokenInformation::Owner(self.owner),
            TokenInformationClass::PrimaryGroup => {
                TokenInformation::PrimaryGroup(self.primary_group)
            }
            TokenInformationClass::Type => TokenInformation::Type(self.token_type),
            TokenInformationClass::ImpersonationLevel => match self.impersonation_level() {
                Some(l) => TokenInformation::ImpersonationLevel(l),
                None => {
                    return Err(IdentityError::InvalidParameter {
                        what: "TokenImpersonationLevel of a primary token",
                    })
                }
            },
            TokenInformationClass::Statistics => TokenInformation::Statistics(self.statistics()),
            TokenInformationClass::Privileges
            | TokenInformationClass::DefaultDacl
            | TokenInformationClass::Source => {
                return Err(IdentityError::InvalidParameter {
                    what: "token information class not modelled",
                })
            }
        })
    }
}

/// The `DynamicCharged`/`DynamicAvailable` figure reported in [`TokenStatistics`] (Windows'
/// default dynamic part of a token, 1 KiB; nothing reads it).
const DYNAMIC_CHARGED: u32 = 1024;

/// The x64 size of a pointer (`PSID`).
const PTR: usize = 8;
/// `sizeof(SID_AND_ATTRIBUTES)` on x64: PSID (8) + DWORD (4) + padding (4).
pub const SID_AND_ATTRIBUTES_SIZE: usize = 16;
/// `sizeof(TOKEN_USER)` on x64.
pub const TOKEN_USER_SIZE: usize = SID_AND_ATTRIBUTES_SIZE;
/// Offset of `Groups` in `TOKEN_GROUPS` on x64 (`GroupCount` u32 + 4 bytes padding).
pub const TOKEN_GROUPS_HEADER: usize = 8;
/// `sizeof(TOKEN_GROUPS)` on x64 (with its one-element `ANYSIZE_ARRAY`).
pub const TOKEN_GROUPS_SIZE: usize = TOKEN_GROUPS_HEADER + SID_AND_ATTRIBUTES_SIZE;
/// `sizeof(TOKEN_STATISTICS)` (56 on x64).
pub const TOKEN_STATISTICS_SIZE: usize = 56;

/// `TOKEN_INFORMATION_CLASS` values this crate knows (Windows numbering).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TokenInformationClass {
    /// `TokenUser` (1).
    User = 1,
    /// `TokenGroups` (2).
    Groups = 2,
    /// `TokenPrivileges` (3): not modelled.
    Privileges = 3,
    /// `TokenOwner` (4).
    Owner = 4,
    /// `TokenPrimaryGroup` (5).
    PrimaryGroup = 5,
    /// `TokenDefaultDacl` (6): not modelled.
    DefaultDacl = 6,
    /// `TokenSource` (7): not modelled.
    Source = 7,
    /// `TokenType` (8).
    Type = 8,
    /// `TokenImpersonationLevel` (9).
    ImpersonationLevel = 9,
    /// `TokenStatistics` (10).
    Statistics = 10,
}

impl TokenInformationClass {
    /// The class with Windows value `raw`, if known.
    pub fn from_raw(raw: u32) -> Option<TokenInformationClass> {
        use TokenInformationClass::*;
        Some(match raw {
            1 => User,
            2 => Groups,
            3 => Privileges,
            4 => Owner,
            5 => PrimaryGroup,
            6 => DefaultDacl,
            7 => Source,
            8 => Type,
            9 => ImpersonationLevel,
            10 => Statistics,
            _ => return None,
        })
    }

    /// The handle access `GetTokenInformation` needs for this class: `TOKEN_QUERY_SOURCE` for
    /// `TokenSource`, `TOKEN_QUERY` for the others.
    pub fn required_access(self) -> AccessMask {
        match self {
            TokenInformationClass::Source => TOKEN_QUERY_SOURCE,
            _ => TOKEN_QUERY,
        }
    }
}

/// `TOKEN_USER` as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUser {
    /// The user SID (attributes 0 unless deny-only).
    pub user: SidAndAttributes,
}

impl TokenUser {
    /// Bytes `GetTokenInformation(TokenUser)` needs on x64: the 16-byte `TOKEN_USER`, then
    /// the SID.
    pub fn required_size(&self) -> usize {
        TOKEN_USER_SIZE + self.user.sid.byte_len()
    }
}

/// `TOKEN_GROUPS` as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGroups {
    /// The groups, in token order.
    pub groups: Vec<SidAndAttributes>,
}

impl TokenGroups {
    /// Bytes `GetTokenInformation(TokenGroups)` needs on x64: the offset of `Groups` (count and
    /// padding, 8), one 16-byte `SID_AND_ATTRIBUTES` per group, then the SIDs one after another
    /// (each a multiple of 4 bytes, so they stay aligned).
    pub fn required_size(&self) -> usize {
        TOKEN_GROUPS_HEADER
            + SID_AND_ATTRIBUTES_SIZE * self.groups.len()
            + self.groups.iter().map(|g| g.sid.byte_len()).sum::<usize>()
    }
}

/// `TOKEN_STATISTICS` as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStatistics {
    /// `TokenId`.
    pub token_id: Luid,
    /// `AuthenticationId` (the logon session).
    pub authentication_id: Luid,
    /// `ExpirationTime` (never: `i64::MAX`, as Windows reports).
    pub expiration_time: i64,
    /// `TokenType`.
    pub token_type: TokenType,
    /// `ImpersonationLevel` (meaningless for primary tokens).
    pub impersonation_level: ImpersonationLevel,
    /// `DynamicCharged`.
    pub dynamic_charged: u32,
    /// `DynamicAvailable`.
    pub dynamic_available: u32,
    /// `GroupCount`.
    pub group_count: u32,
    /// `PrivilegeCount` (0: privileges are not modelled).
    pub privilege_count: u32,
    /// `ModifiedId`.
    pub modified_id: Luid,
}

/// The answer of `GetTokenInformation` for one class, as plain data.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInformation {
    /// `TokenUser`.
    User(TokenUser),
    /// `TokenGroups`.
    Groups(TokenGroups),
    /// `TokenOwner` (`TOKEN_OWNER { PSID }` then the SID).
    Owner(Sid),
    /// `TokenPrimaryGroup` (`TOKEN_PRIMARY_GROUP { PSID }` then the SID).
    PrimaryGroup(Sid),
    /// `TokenType` (a 4-byte `TOKEN_TYPE`).
    Type(TokenType),
    /// `TokenImpersonationLevel` (a 4-byte `SECURITY_IMPERSONATION_LEVEL`).
    ImpersonationLevel(ImpersonationLevel),
    /// `TokenStatistics`.
    Statistics(TokenStatistics),
}

impl TokenInformation {
    /// The class this answers.
    pub fn class(&self) -> TokenInformationClass {
        match self {
            TokenInformation::User(_) => TokenInformationClass::User,
            TokenInformation::Groups(_) => TokenInformationClass::Groups,
            TokenInformation::Owner(_) => TokenInformationClass::Owner,
            TokenInformation::PrimaryGroup(_) => TokenInformationClass::PrimaryGroup,
            TokenInformation::Type(_) => TokenInformationClass::Type,
            TokenInformation::ImpersonationLevel(_) => TokenInformationClass::ImpersonationLevel,
            TokenInformation::Statistics(_) => TokenInformationClass::Statistics,
        }
    }

    /// The buffer size in bytes `GetTokenInformation` needs for this answer in the x64 Windows
    /// layout (what it stores in `*ReturnLength`).
    pub fn required_size(&self) -> usize {
        match self {
            TokenInformation::User(u) => u.required_size(),
            TokenInformation::Groups(g) => g.required_size(),
            TokenInformation::Owner(s) | TokenInformation::PrimaryGroup(s) => PTR + s.byte_len(),
            TokenInformation::Type(_) | TokenInformation::ImpersonationLevel(_) => 4,
            TokenInformation::Statistics(_) => TOKEN_STATISTICS_SIZE,
        }
    }

    /// The size-probe protocol: `Ok(required)` if a buffer of `buffer_len` bytes is enough.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InsufficientBuffer`] (`ERROR_INSUFFICIENT_BUFFER`) carrying the
    /// required size otherwise (a probe with length 0 always gets it).
    pub fn check_buffer(&self, buffer_len: usize) -> Result<usize, IdentityError> {
        let required = self.required_size();
        if buffer_len < required {
            Err(IdentityError::InsufficientBuffer { required })
        } else {
            Ok(required)
        }
    }
}

/// The token `WSAImpersonateSocketPeer` uses: the peer user's token when there is one,
/// otherwise the peer machine's.
pub fn impersonation_token<'a>(
    user: Option<&'a Token>,
    machine: Option<&'a Token>,
) -> Option<&'a Token> {
    user.or(machine)
}
