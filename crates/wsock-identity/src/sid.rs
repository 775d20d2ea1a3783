//! [`Sid`]: Windows security identifiers, their text and binary forms, and the well-known ones.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{IdentityError, SidErrorKind};

/// The largest number of sub-authorities a SID can hold (`SID_MAX_SUB_AUTHORITIES`).
pub const SID_MAX_SUB_AUTHORITIES: usize = 15;
/// The only SID revision there is (`SID_REVISION`).
pub const SID_REVISION: u8 = 1;
/// The largest identifier authority (48 bits).
pub const MAX_AUTHORITY: u64 = (1 << 48) - 1;
/// The size in bytes of the largest SID (`SECURITY_MAX_SID_SIZE`, 68).
pub const SECURITY_MAX_SID_SIZE: usize = 8 + 4 * SID_MAX_SUB_AUTHORITIES;

/// A security identifier: revision 1, a 48-bit identifier authority and up to 15 32-bit
/// sub-authorities, the last of which is, for accounts, the relative identifier (RID).
///
/// Text form (`ConvertSidToStringSid`): `S-1-<authority>-<sub1>-<sub2>...`, the authority in
/// decimal below 2^32 and as `0x` + 12 hex digits above. Binary form (the Windows `SID`
/// structure, what `GetLengthSid` measures): revision (u8), sub-authority count (u8), authority
/// (6 bytes big-endian), then each sub-authority as a little-endian u32.
///
/// Parsing never panics: bad input gives [`IdentityError::InvalidSid`] with the byte offset.
/// `Sid` is a `Copy` value with no heap allocation, ordered by authority, then sub-authorities.
///
/// # Examples
///
/// ```
/// use wsock_identity::Sid;
/// let sid = Sid::parse_str("S-1-5-32-544")?;
/// assert_eq!(sid, wsock_identity::well_known::BUILTIN_ADMINISTRATORS);
/// assert_eq!(sid.to_string(), "S-1-5-32-544");
/// assert_eq!(sid.to_bytes(), [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0]);
/// assert_eq!(Sid::from_bytes(&sid.to_bytes())?, sid);
/// # Ok::<(), wsock_identity::IdentityError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Sid {
    authority: u64,
    count: u8,
    subs: [u32; SID_MAX_SUB_AUTHORITIES],
}

impl Sid {
    /// Builds a SID for constants. Panics (at compile time, when used in a `const`) on more than
    /// 15 sub-authorities or an authority above 48 bits; runtime callers use [`Sid::new`].
    pub(crate) const fn from_const(authority: u64, subs: &[u32]) -> Sid {
        assert!(subs.len() <= SID_MAX_SUB_AUTHORITIES && authority <= MAX_AUTHORITY);
        let mut out = [0u32; SID_MAX_SUB_AUTHORITIES];
        let mut i = 0;
        while i < subs.len() {
            out[i] = subs[i];
            i += 1;
        }
        Sid {
            authority,
            count: subs.len() as u8,
            subs: out,
        }
    }

    /// Builds a SID from its identifier authority and sub-authorities.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSid`] if the authority exceeds 48 bits or there are more than 15
    /// sub-authorities.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::Sid;
    /// let everyone = Sid::new(1, &[0])?;
    /// assert_eq!(everyone.to_string(), "S-1-1-0");
    /// assert!(Sid::new(5, &[0; 16]).is_err());
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Result<Sid, IdentityError> {
        if authority > MAX_AUTHORITY {
            return Err(invalid(SidErrorKind::AuthorityTooLarge, 0));
        }
        if sub_authorities.len() > SID_MAX_SUB_AUTHORITIES {
            return Err(invalid(SidErrorKind::TooManySubAuthorities, 0));
        }
        Ok(Sid::from_const(authority, sub_authorities))
    }

    /// The revision (always 1).
    pub const fn revision(&self) -> u8 {
        SID_REVISION
    }

    /// The 48-bit identifier authority (5 = NT AUTHORITY, 1 = World, 16 = Mandatory Label...).
    pub const fn authority(&self) -> u64 {
        self.authority
    }

    /// The sub-authorities, in order.
    pub fn sub_authorities(&self) -> &[u32] {
        &self.subs[..usize::from(self.count)]
    }

    /// The last sub-authority (the RID of an account SID), if there is one.
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities().last().copied()
    }

    /// This SID with `rid` appended (a domain SID plus a RID gives an account SID).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSid`] if the SID already has 15 sub-authorities.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::Sid;
    /// let domain = Sid::parse_str("S-1-5-21-1-2-3")?;
    /// assert_eq!(domain.with_rid(513)?.to_string(), "S-1-5-21-1-2-3-513");
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn with_rid(&self, rid: u32) -> Result<Sid, IdentityError> {
        let n = usize::from(self.count);
        if n >= SID_MAX_SUB_AUTHORITIES {
            return Err(invalid(SidErrorKind::TooManySubAuthorities, 0));
        }
        let mut out = *self;
        out.subs[n] = rid;
        out.count += 1;
        Ok(out)
    }

    /// The SID without its last sub-authority (the domain of an account SID), if it has one.
    pub fn parent(&self) -> Option<Sid> {
        let n = usize::from(self.count);
        if n == 0 {
            return None;
        }
        let mut out = *self;
        out.subs[n - 1] = 0;
        out.count -= 1;
        Some(out)
    }

    /// The size in bytes of the binary form (`GetLengthSid`): 8 + 4 per sub-authority.
    pub const fn byte_len(&self) -> usize {
        8 + 4 * self.count as usize
    }

    /// The binary form, in the Windows `SID` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.byte_len());
        self.write_bytes(&mut out);
        out
    }

    /// Appends the binary form to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        out.push(SID_REVISION);
        out.push(self.count);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in self.sub_authorities() {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Reads a SID that must fill `bytes` exactly.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSid`]: empty, truncated, bad revision, more than 15
    /// sub-authorities, or bytes left over after the SID.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::Sid;
    /// let sid = Sid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])?;
    /// assert_eq!(sid.to_string(), "S-1-1-0");
    /// assert!(Sid::from_bytes(&[1, 1, 0, 0]).is_err());
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Sid, IdentityError> {
        let (sid, used) = Sid::from_prefix(bytes)?;
        if used != bytes.len() {
            return Err(invalid(SidErrorKind::TrailingData, used));
        }
        Ok(sid)
    }

    /// Reads a SID from the start of `bytes` and returns it with the number of bytes it used
    /// (for SIDs embedded in larger structures).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSid`]: empty, truncated, bad revision, or more than 15
    /// sub-authorities.
    pub fn from_prefix(bytes: &[u8]) -> Result<(Sid, usize), IdentityError> {
        let Some(&revision) = bytes.first() else {
            return Err(invalid(SidErrorKind::Empty, 0));
        };
        if revision != SID_REVISION {
            return Err(invalid(SidErrorKind::BadRevision, 0));
        }
        let Some(&count) = bytes.get(1) else {
            return Err(invalid(SidErrorKind::Truncated, 1));
        };
        let n = usize::from(count);
        if n > SID_MAX_SUB_AUTHORITIES {
            return Err(invalid(SidErrorKind::TooManySubAuthorities, 1));
        }
        let len = 8 + 4 * n;
        if bytes.len() < len {
            return Err(invalid(SidErrorKind::Truncated, bytes.len()));
        }
        let mut auth = [0u8; 8];
        auth[2..].copy_from_slice(&bytes[2..8]);
        let mut subs = [0u32; SID_MAX_SUB_AUTHORITIES];
        for (i, chunk) in bytes[8..len].chunks_exact(4).enumerate() {
            subs[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok((
            Sid {
                authority: u64::from_be_bytes(auth),
                count,
                subs,
            },
            len,
        ))
    }

    /// Parses the text form (`ConvertStringSidToSid`): `S-1-<authority>(-<sub>)*`. The `S` may be
    /// lower case; the authority may be decimal or `0x` hex; sub-authorities are decimal u32.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSid`] with the byte offset of the first bad component.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::Sid;
    /// assert_eq!(Sid::parse_str("S-1-5-18")?, wsock_identity::well_known::LOCAL_SYSTEM);
    /// assert!(Sid::parse_str("S-1-5-x").is_err());
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn parse_str(text: &str) -> Result<Sid, IdentityError> {
        if text.is_empty() {
            return Err(invalid(SidErrorKind::Empty, 0));
        }
        let b = text.as_bytes();
        if b.len() < 2 || !(b[0] == b'S' || b[0] == b's') || b[1] != b'-' {
            return Err(invalid(SidErrorKind::MissingPrefix, 0));
        }
        let mut pos = 2;
        let mut parts = text[2..].split('-');
        // revision
        let rev = parts.next().unwrap_or("");
        if parse_dec(rev) != Some(1) {
            let kind = if rev.is_empty() || parse_dec(rev).is_none() {
                SidErrorKind::BadNumber
            } else {
                SidErrorKind::BadRevision
            };
            return Err(invalid(kind, pos));
        }
        pos += rev.len() + 1;
        // authority
        let Some(auth_text) = parts.next() else {
            return Err(invalid(SidErrorKind::BadNumber, text.len()));
        };
        let authority = parse_authority(auth_text).map_err(|k| invalid(k, pos))?;
        pos += auth_text.len() + 1;
        let mut subs = [0u32; SID_MAX_SUB_AUTHORITIES];
        let mut count = 0usize;
        for part in parts {
            if count == SID_MAX_SUB_AUTHORITIES {
                return Err(invalid(SidErrorKind::TooManySubAuthorities, pos));
            }
            let v = parse_dec(part).ok_or_else(|| invalid(SidErrorKind::BadNumber, pos))?;
            let v = u32::try_from(v).map_err(|_| invalid(SidErrorKind::BadNumber, pos))?;
            subs[count] = v;
            count += 1;
            pos += part.len() + 1;
        }
        Ok(Sid {
            authority,
            count: count as u8,
            subs,
        })
    }

    /// Derives the SID `S-1-5-21-a-b-c` of a domain from its name, deterministically.
    ///
    /// Real Windows picks the three sub-authorities at random when a domain (or machine) is
    /// installed. wsock has no randomness source in this layer and wants the same SIDs on every
    /// run and in every process of a scenario, so it derives them from the name: the name is
    /// upper-cased (Unicode simple upper case, as Windows compares account names), and
    /// sub-authority `i` (i = 0, 1, 2) is the 32-bit FNV-1a hash of the byte `i` followed by the
    /// UTF-8 bytes of that upper-cased name. A value below 1000 gets 1000 added, so the numbers
    /// look like real ones; collisions between different names are possible in principle and
    /// harmless in a test network.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::Sid;
    /// let a = Sid::domain_from_name("WSOCK");
    /// assert_eq!(a, Sid::domain_from_name("wsock"));
    /// assert!(a.to_string().starts_with("S-1-5-21-"));
    /// assert_eq!(a.sub_authorities().len(), 4);
    /// ```
    pub fn domain_from_name(name: &str) -> Sid {
        let upper = name.to_uppercase();
        let mut subs = [21u32, 0, 0, 0];
        for (i, slot) in subs[1..].iter_mut().enumerate() {
            let mut h: u32 = 0x811C_9DC5;
            for &byte in std::iter::once(&(i as u8)).chain(upper.as_bytes()) {
                h ^= u32::from(byte);
                h = h.wrapping_mul(0x0100_0193);
            }
            *slot = if h < 1000 { h + 1000 } else { h };
        }
        Sid::from_const(5, &subs)
    }

    /// Whether this SID is `domain` plus exactly one RID.
    pub fn is_in_domain(&self, domain: &Sid) -> bool {
        self.parent().as_ref() == Some(domain)
    }
}

fn invalid(kind: SidErrorKind, position: usize) -> IdentityError {
    IdentityError::InvalidSid { kind, position }
}

/// Decimal digits only, no sign, fits u64.
fn parse_dec(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_authority(s: &str) -> Result<u64, SidErrorKind> {
    let v = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SidErrorKind::BadNumber);
        }
        u64::from_str_radix(hex, 16).map_err(|_| SidErrorKind::AuthorityTooLarge)?
    } else {
        parse_dec(s).ok_or(if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            SidErrorKind::AuthorityTooLarge
        } else {
            SidErrorKind::BadNumber
        })?
    };
    if v > MAX_AUTHORITY {
        return Err(SidErrorKind::AuthorityTooLarge);
    }
    Ok(v)
}

impl PartialEq for Sid {
    fn eq(&self, other: &Sid) -> bool {
        self.authority == other.authority && self.sub_authorities() == other.sub_authorities()
    }
}
impl Eq for Sid {}

impl Hash for Sid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.authority.hash(state);
        self.sub_authorities().hash(state);
    }
}

impl Ord for Sid {
    fn cmp(&self, other: &Sid) -> Ordering {
        self.authority
            .cmp(&other.authority)
            .then_with(|| self.sub_authorities().cmp(other.sub_authorities()))
    }
}
impl PartialOrd for Sid {
    fn partial_cmp(&self, other: &Sid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.authority <= u64::from(u32::MAX) {
            write!(f, "S-1-{}", self.authority)?;
        } else {
            write!(f, "S-1-0x{:012X}", self.authority)?;
        }
        for s in self.sub_authorities() {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Sid, IdentityError> {
        Sid::parse_str(s)
    }
}

/// Well-known SIDs (the values of `WELL_KNOWN_SID_TYPE` that matter for network logons) and
/// domain-relative RIDs.
pub mod well_known {
    use super::Sid;

    /// NULL SID, `S-1-0-0`.
    pub const NULL: Sid = Sid::from_const(0, &[0]);
    /// Everyone (World), `S-1-1-0`.
    pub const EVERYONE: Sid = Sid::from_const(1, &[0]);
    /// LOCAL, `S-1-2-0`.
    pub const LOCAL: Sid = Sid::from_const(2, &[0]);
    /// CREATOR OWNER, `S-1-3-0`.
    pub const CREATOR_OWNER: Sid = Sid::from_const(3, &[0]);
    /// OWNER RIGHTS, `S-1-3-4`: ACEs for it replace the owner's implicit rights.
    pub const OWNER_RIGHTS: Sid = Sid::from_const(3, &[4]);
    /// NT AUTHORITY, `S-1-5` (the authority itself, a domain SID with no sub-authority).
    pub const NT_AUTHORITY: Sid = Sid::from_const(5, &[]);
    /// NT AUTHORITY\NETWORK, `S-1-5-2`: present in tokens of network logons.
    pub const NETWORK: Sid = Sid::from_const(5, &[2]);
    /// NT AUTHORITY\INTERACTIVE, `S-1-5-4`.
    pub const INTERACTIVE: Sid = Sid::from_const(5, &[4]);
    /// NT AUTHORITY\ANONYMOUS LOGON, `S-1-5-7`.
    pub const ANONYMOUS: Sid = Sid::from_const(5, &[7]);
    /// NT AUTHORITY\Authenticated Users, `S-1-5-11`.
    pub const AUTHENTICATED_USERS: Sid = Sid::from_const(5, &[11]);
    /// NT AUTHORITY\This Organization, `S-1-5-15`.
    pub const THIS_ORGANIZATION: Sid = Sid::from_const(5, &[15]);
    /// NT AUTHORITY\SYSTEM (Local System), `S-1-5-18`.
    pub const LOCAL_SYSTEM: Sid = Sid::from_const(5, &[18]);
    /// BUILTIN, `S-1-5-32` (the domain of the built-in aliases).
    pub const BUILTIN: Sid = Sid::from_const(5, &[32]);
    /// BUILTIN\Administrators, `S-1-5-32-544`.
    pub const BUILTIN_ADMINISTRATORS: Sid = Sid::from_const(5, &[32, 544]);
    /// BUILTIN\Users, `S-1-5-32-545`.
    pub const BUILTIN_USERS: Sid = Sid::from_const(5, &[32, 545]);
    /// Mandatory Label\Medium Mandatory Level, `S-1-16-8192` (the integrity of network logons).
    pub const MEDIUM_MANDATORY_LEVEL: Sid = Sid::from_const(16, &[8192]);
    /// NT AUTHORITY\NTLM Authentication, `S-1-5-64-10`: the logon was authenticated by NTLM.
    pub const NTLM_AUTHENTICATION: Sid = Sid::from_const(5, &[64, 10]);
    /// Authentication authority asserted identity, `S-1-18-1`: the identity was vouched for by
    /// the domain's authentication authority (Kerberos).
    pub const AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY: Sid = Sid::from_const(18, &[1]);

    /// RID of the domain's Administrator account.
    pub const DOMAIN_USER_RID_ADMIN: u32 = 500;
    /// RID of Domain Admins.
    pub const DOMAIN_GROUP_RID_ADMINS: u32 = 512;
    /// RID of Domain Users.
    pub const DOMAIN_GROUP_RID_USERS: u32 = 513;
    /// RID of Domain Guests.
    pub const DOMAIN_GROUP_RID_GUESTS: u32 = 514;
    /// RID of Domain Computers.
    pub const DOMAIN_GROUP_RID_COMPUTERS: u32 = 515;
    /// The first RID given to accounts created in a domain.
    pub const FIRST_ACCOUNT_RID: u32 = 1000;

    /// The logon session SID `S-1-5-5-<high>-<low>` of the logon whose authentication id is
    /// `logon` (the group with `SE_GROUP_LOGON_ID`).
    pub fn logon_sid(logon: crate::Luid) -> Sid {
        Sid::from_const(5, &[5, logon.high as u32, logon.low])
    }
}
