//! [`SecurityDescriptor`] with a DACL of allow/deny ACEs, and [`access_check`] (`AccessCheck`).

use crate::error::{win32, IdentityError};
use crate::rights::{
    AccessMask, GenericMapping, ACCESS_SYSTEM_SECURITY, GENERIC_ANY, MAXIMUM_ALLOWED, READ_CONTROL,
    WRITE_DAC,
};
use crate::sid::{well_known as wk, Sid};
use crate::token::{ImpersonationLevel, Token, TokenType};

/// ACE flags (`AceFlags`): inheritance data. Kept as data; only `INHERIT_ONLY_ACE` changes an
/// access check (such an ACE is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AceFlags(pub u8);

impl AceFlags {
    /// No flag.
    pub const NONE: AceFlags = AceFlags(0);
    /// `OBJECT_INHERIT_ACE` (0x1, SDDL `OI`).
    pub const OBJECT_INHERIT: AceFlags = AceFlags(0x01);
    /// `CONTAINER_INHERIT_ACE` (0x2, SDDL `CI`).
    pub const CONTAINER_INHERIT: AceFlags = AceFlags(0x02);
    /// `NO_PROPAGATE_INHERIT_ACE` (0x4, SDDL `NP`).
    pub const NO_PROPAGATE_INHERIT: AceFlags = AceFlags(0x04);
    /// `INHERIT_ONLY_ACE` (0x8, SDDL `IO`): applies to children only, not to this object.
    pub const INHERIT_ONLY: AceFlags = AceFlags(0x08);
    /// `INHERITED_ACE` (0x10, SDDL `ID`).
    pub const INHERITED: AceFlags = AceFlags(0x10);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: AceFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The kind of an ACE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AceKind {
    /// `ACCESS_ALLOWED_ACE_TYPE` (0, SDDL `A`).
    Allowed,
    /// `ACCESS_DENIED_ACE_TYPE` (1, SDDL `D`).
    Denied,
}

/// One access control entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ace {
    /// Allow or deny.
    pub kind: AceKind,
    /// Inheritance flags.
    pub flags: AceFlags,
    /// The rights it allows or denies. Generic rights in it count for nothing in an access check
    /// until mapped ([`SecurityDescriptor::map_generic`]).
    pub mask: AccessMask,
    /// Whom it applies to.
    pub sid: Sid,
}

impl Ace {
    /// An access-allowed ACE with no flags.
    pub const fn allow(sid: Sid, mask: AccessMask) -> Ace {
        Ace {
            kind: AceKind::Allowed,
            flags: AceFlags::NONE,
            mask,
            sid,
        }
    }

    /// An access-denied ACE with no flags.
    pub const fn deny(sid: Sid, mask: AccessMask) -> Ace {
        Ace {
            kind: AceKind::Denied,
            flags: AceFlags::NONE,
            mask,
            sid,
        }
    }
}

/// An access control list: ACEs evaluated in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Acl {
    /// The entries, in evaluation order.
    pub aces: Vec<Ace>,
}

/// DACL control flags of a security descriptor (SDDL `P`, `AI`, `AR`), kept as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DaclFlags {
    /// `SE_DACL_PROTECTED` (SDDL `P`): inheritable ACEs of the parent do not flow in.
    pub protected: bool,
    /// `SE_DACL_AUTO_INHERITED` (SDDL `AI`).
    pub auto_inherited: bool,
    /// `SE_DACL_AUTO_INHERIT_REQ` (SDDL `AR`).
    pub auto_inherit_req: bool,
}

/// A security descriptor: owner, primary group and DACL (SACLs are not modelled).
///
/// `dacl: None` is a *null DACL*, which grants everyone everything; `Some(Acl::default())` is an
/// *empty DACL*, which grants nothing (except the owner's implicit rights).
///
/// # Examples
///
/// ```
/// use wsock_identity::*;
/// let sd = SecurityDescriptor::from_sddl("O:BAG:BAD:(A;;0x8;;;NU)", None)?;
/// assert_eq!(sd.owner, Some(well_known::BUILTIN_ADMINISTRATORS));
/// assert_eq!(sd.dacl.as_ref().unwrap().aces[0], Ace::allow(well_known::NETWORK, rights::TOKEN_QUERY));
/// # Ok::<(), IdentityError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SecurityDescriptor {
    /// The owner; `AccessCheck` requires one.
    pub owner: Option<Sid>,
    /// The primary group; `AccessCheck` requires one.
    pub group: Option<Sid>,
    /// The DACL; `None` is a null DACL.
    pub dacl: Option<Acl>,
    /// DACL control flags.
    pub dacl_flags: DaclFlags,
}

impl SecurityDescriptor {
    /// Maps the generic rights of every ACE through `mapping` (what Windows does when a
    /// descriptor is assigned to an object, e.g. by `CreatePrivateObjectSecurity`), so that an
    /// SDDL `GA` becomes the object type's full access. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let mut sd = SecurityDescriptor::from_sddl("O:SYG:SYD:(A;;GA;;;WD)", None)?;
    /// sd.map_generic(&GenericMapping::TOKEN);
    /// assert_eq!(sd.dacl.unwrap().aces[0].mask, rights::TOKEN_ALL_ACCESS);
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn map_generic(&mut self, mapping: &GenericMapping) {
        if let Some(acl) = &mut self.dacl {
            for ace in &mut acl.aces {
                ace.mask = mapping.map(ace.mask);
            }
        }
    }
}

/// The outcome of an access check that ran: the rights granted and the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccessCheckOutcome {
    /// `GrantedAccess`: the rights granted (0 when denied). With `MAXIMUM_ALLOWED`, every right
    /// the token can get; otherwise exactly the desired rights.
    pub granted: AccessMask,
    /// `AccessStatus` as a Win32 code: 0 when granted, `ERROR_ACCESS_DENIED` (5) when denied,
    /// `ERROR_PRIVILEGE_NOT_HELD` (1314) when `ACCESS_SYSTEM_SECURITY` was asked for.
    pub status: u32,
    /// For teaching and tracing: the index in the DACL of the ACE that decided a denial (a
    /// deny ACE), if one did; `None` when access was denied because no ACE granted it.
    pub denied_by: Option<usize>,
}

impl AccessCheckOutcome {
    /// Whether access was granted.
    pub fn is_granted(&self) -> bool {
        self.status == win32::ERROR_SUCCESS
    }

    fn granted(mask: AccessMask) -> AccessCheckOutcome {
        AccessCheckOutcome {
            granted: mask,
            status: win32::ERROR_SUCCESS,
            denied_by: None,
        }
    }

    fn denied(by: Option<usize>) -> AccessCheckOutcome {
        AccessCheckOutcome {
            granted: 0,
            status: win32::ERROR_ACCESS_DENIED,
            denied_by: by,
        }
    }
}

/// `AccessCheck`: may `token` have `desired` access to an object protected by `sd`?
///
/// Evaluation, as Windows does it:
///
/// 1. The owner of `sd` (the token's user or one of its enabled groups) implicitly gets
///    `READ_CONTROL | WRITE_DAC`, unless the DACL has an ACE for OWNER RIGHTS (`S-1-3-4`), in
///    which case those ACEs say what the owner gets.
/// 2. A null DACL grants everything asked (`MAXIMUM_ALLOWED` gets `mapping.all`).
/// 3. Otherwise the ACEs are walked in order, skipping inherit-only ones. An allow ACE matches
///    the user or an *enabled* group that is not deny-only; a deny ACE also matches deny-only
///    groups. The first matching deny
///    ACE that holds a still-wanted right denies; allowed rights accumulate; the walk stops
///    once every wanted right is granted. With `MAXIMUM_ALLOWED`, the whole DACL is walked and
///    every right allowed before being denied is granted.
/// 4. Rights not granted by the end mean denial. Asking for nothing is denied; asking for
///    `ACCESS_SYSTEM_SECURITY` is denied with `ERROR_PRIVILEGE_NOT_HELD` (it needs
///    SeSecurityPrivilege, which wsock tokens never hold).
///
/// As on Windows, `mapping` is *not* applied to the ACEs: generic rights left in an ACE
/// (`GA` from SDDL, say) grant and deny nothing. Windows maps them when a descriptor is
/// assigned to an object; here call [`SecurityDescriptor::map_generic`] once, as that step.
/// `mapping` serves `MAXIMUM_ALLOWED` on a null DACL.
///
/// Denial is not an `Err`: it is an [`AccessCheckOutcome`] with status `ERROR_ACCESS_DENIED`,
/// as `AccessCheck` returns TRUE with `AccessStatus` FALSE.
///
/// # Errors
///
/// The call itself fails (as `AccessCheck` returning FALSE) with:
/// * [`IdentityError::NoImpersonationToken`]: `token` is a primary token.
/// * [`IdentityError::BadImpersonationLevel`]: `token` is at `SecurityAnonymous`.
/// * [`IdentityError::GenericNotMapped`]: `desired` still holds generic rights (map it with
///   [`GenericMapping::map`] first).
/// * [`IdentityError::InvalidSecurityDescriptor`]: `sd` has no owner or no group.
///
/// # Examples
///
/// ```
/// use wsock_identity::*;
/// let dir = DirectorySpec::new("W").user(UserSpec::new("alice")).build()?;
/// let alice = Token::peer_user(&dir, "alice", AuthMethod::Kerberos)?;
/// // Deny network logons the write-specific bits (not FW: FILE_GENERIC_WRITE also holds
/// // READ_CONTROL and SYNCHRONIZE, so denying it would deny reading too, as on Windows).
/// let sd = SecurityDescriptor::from_sddl("O:SYG:SYD:(D;;0x116;;;NU)(A;;FA;;;AU)", None)?;
/// let read = access_check(&sd, &alice, rights::FILE_GENERIC_READ, &GenericMapping::FILE)?;
/// assert!(read.is_granted());
/// let write = access_check(&sd, &alice, rights::FILE_GENERIC_WRITE, &GenericMapping::FILE)?;
/// assert_eq!(write.status, 5); // ERROR_ACCESS_DENIED: the NETWORK deny ACE comes first
/// # Ok::<(), IdentityError>(())
/// ```
pub fn access_check(
    sd: &SecurityDescriptor,
    token: &Token,
    desired: AccessMask,
    mapping: &GenericMapping,
) -> Result<AccessCheckOutcome, IdentityError> {
    match token.token_type() {
        TokenType::Primary => return Err(IdentityError::NoImpersonationToken),
        TokenType::Impersonation => {}
    }
    if token.impersonation_level() < Some(ImpersonationLevel::Identification) {
        return Err(IdentityError::BadImpersonationLevel);
    }
    if desired & GENERIC_ANY != 0 {
        return Err(IdentityError::GenericNotMapped { mask: desired });
    }
    let Some(owner) = sd.owner else {
        return Err(IdentityError::InvalidSecurityDescriptor { what: "no owner" });
    };
    if sd.group.is_none() {
        return Err(IdentityError::InvalidSecurityDescriptor { what: "no group" });
    }

    let want_max = desired & MAXIMUM_ALLOWED != 0;
    let wanted = desired & !MAXIMUM_ALLOWED;
    if desired == 0 {
        return Ok(AccessCheckOutcome::denied(None));
    }
    if wanted & ACCESS_SYSTEM_SECURITY != 0 {
        return Ok(AccessCheckOutcome {
            status: win32::ERROR_PRIVILEGE_NOT_HELD,
            ..AccessCheckOutcome::denied(None)
        });
    }

    let is_owner = token.matches_allow(&owner);
    let Some(dacl) = &sd.dacl else {
        // Null DACL: everything; MAXIMUM_ALLOWED gets the mapping's GenericAll (and the
        // owner's implicit rights).
        let granted = match (want_max, is_owner) {
            (false, _) => wanted,
            (true, false) => wanted | mapping.all,
            (true, true) => wanted | mapping.all | READ_CONTROL | WRITE_DAC,
        };
        return Ok(AccessCheckOutcome::granted(granted));
    };
    let applies = |ace: &&Ace| !ace.flags.contains(AceFlags::INHERIT_ONLY);
    let owner_rights_in_dacl = dacl
        .aces
        .iter()
        .filter(applies)
        .any(|a| a.sid == wk::OWNER_RIGHTS);
    let matches = |ace: &Ace| -> bool {
        let by_owner = is_owner && ace.sid == wk::OWNER_RIGHTS;
        by_owner
            || match ace.kind {
                AceKind::Allowed => token.matches_allow(&ace.sid),
                AceKind::Denied => token.matches_deny(&ace.sid),
            }
    };
    let mut granted: AccessMask = 0;
    if is_owner && !owner_rights_in_dacl {
        granted |= READ_CONTROL | WRITE_DAC;
    }

    if want_max {
        let mut denied: AccessMask = 0;
        let mut first_deny_of_wanted = None;
        for (i, ace) in dacl.aces.iter().enumerate().filter(|(_, a)| applies(a)) {
            if !matches(ace) {
                continue;
            }
            let mask = ace.mask & !(MAXIMUM_ALLOWED | GENERIC_ANY);
            match ace.kind {
                AceKind::Allowed => granted |= mask & !denied,
                AceKind::Denied => {
                    let newly = mask & !granted;
                    if newly & wanted != 0 && first_deny_of_wanted.is_none() {
                        first_deny_of_wanted = Some(i);
                    }
                    denied |= newly;
                }
            }
        }
        return Ok(if granted != 0 && wanted & !granted == 0 {
            AccessCheckOutcome::granted(granted)
        } else {
            AccessCheckOutcome::denied(first_deny_of_wanted)
        });
    }

    let mut remaining = wanted & !granted;
    for (i, ace) in dacl.aces.iter().enumerate().filter(|(_, a)| applies(a)) {
        if remaining == 0 {
            break;
        }
        if !matches(ace) {
            continue;
        }
        let mask = ace.mask & !GENERIC_ANY;
        match ace.kind {
            AceKind::Allowed => remaining &= !mask,
            AceKind::Denied if mask & remaining != 0 => {
                return Ok(AccessCheckOutcome::denied(Some(i)))
            }
            AceKind::Denied => {}
        }
    }
    Ok(if remaining == 0 {
        AccessCheckOutcome::granted(wanted)
    } else {
        AccessCheckOutcome::denied(None)
    })
}
