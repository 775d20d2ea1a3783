//! The binary forms of ACLs and security descriptors (`ACL`, `ACE_HEADER`,
//! `SECURITY_DESCRIPTOR_RELATIVE`), so the raw face can read what an application passes to
//! `AccessCheck` and hand back what Windows would.
//!
//! Layouts (all little-endian):
//!
//! ```text
//! ACL                         ACCESS_ALLOWED_ACE / ACCESS_DENIED_ACE
//!   0 AclRevision  u8 (2..=4)   0 AceType  u8 (0 allowed, 1 denied)
//!   1 Sbz1         u8           1 AceFlags u8
//!   2 AclSize      u16          2 AceSize  u16 (multiple of 4, >= 8 + SID length)
//!   4 AceCount     u16          4 Mask     u32
//!   6 Sbz2         u16          8 SID
//!   8 ACEs...
//!
//! SECURITY_DESCRIPTOR_RELATIVE (20 bytes)
//!   0 Revision u8 (1)   1 Sbz1 u8   2 Control u16 (SE_SELF_RELATIVE set)
//!   4 OffsetOwner u32   8 OffsetGroup u32   12 OffsetSacl u32   16 OffsetDacl u32
//! ```
//!
//! Reading never panics: bad input gives a typed error with the byte offset.

use crate::error::IdentityError;
use crate::security::{Ace, AceFlags, AceKind, Acl, DaclFlags, SecurityDescriptor};
use crate::sid::Sid;

/// `ACL_REVISION` (2): ACLs of standard ACEs.
pub const ACL_REVISION: u8 = 2;
/// `ACL_REVISION_DS` (4): the highest ACL revision.
pub const ACL_REVISION_DS: u8 = 4;
/// `sizeof(ACL)`.
pub const ACL_HEADER_SIZE: usize = 8;
/// `ACCESS_ALLOWED_ACE_TYPE`.
pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
/// `ACCESS_DENIED_ACE_TYPE`.
pub const ACCESS_DENIED_ACE_TYPE: u8 = 1;
/// `SECURITY_DESCRIPTOR_REVISION`.
pub const SECURITY_DESCRIPTOR_REVISION: u8 = 1;
/// `sizeof(SECURITY_DESCRIPTOR_RELATIVE)`.
pub const SECURITY_DESCRIPTOR_RELATIVE_SIZE: usize = 20;

/// `SECURITY_DESCRIPTOR_CONTROL` bits.
pub mod control {
    /// `SE_OWNER_DEFAULTED`.
    pub const SE_OWNER_DEFAULTED: u16 = 0x0001;
    /// `SE_GROUP_DEFAULTED`.
    pub const SE_GROUP_DEFAULTED: u16 = 0x0002;
    /// `SE_DACL_PRESENT`.
    pub const SE_DACL_PRESENT: u16 = 0x0004;
    /// `SE_DACL_DEFAULTED`.
    pub const SE_DACL_DEFAULTED: u16 = 0x0008;
    /// `SE_SACL_PRESENT`.
    pub const SE_SACL_PRESENT: u16 = 0x0010;
    /// `SE_DACL_AUTO_INHERIT_REQ`.
    pub const SE_DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
    /// `SE_DACL_AUTO_INHERITED`.
    pub const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
    /// `SE_DACL_PROTECTED`.
    pub const SE_DACL_PROTECTED: u16 = 0x1000;
    /// `SE_SELF_RELATIVE`.
    pub const SE_SELF_RELATIVE: u16 = 0x8000;
}

fn acl_err(what: &'static str, position: usize) -> IdentityError {
    IdentityError::InvalidAcl { what, position }
}

fn sd_err(what: &'static str) -> IdentityError {
    IdentityError::InvalidSecurityDescriptor { what }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Moves the position of a SID or ACL error by `by` bytes (a part read from inside a larger
/// input).
fn shift(e: IdentityError, by: usize) -> IdentityError {
    match e {
        IdentityError::InvalidSid { kind, position } => IdentityError::InvalidSid {
            kind,
            position: position + by,
        },
        IdentityError::InvalidAcl { what, position } => IdentityError::InvalidAcl {
            what,
            position: position + by,
        },
        other => other,
    }
}

impl Ace {
    /// The size in bytes of the binary ACE (`AceSize`): 8 + the SID.
    pub fn byte_len(&self) -> usize {
        8 + self.sid.byte_len()
    }
}

impl Acl {
    /// The size in bytes of the binary ACL (`AclSize`).
    pub fn byte_len(&self) -> usize {
        ACL_HEADER_SIZE + self.aces.iter().map(Ace::byte_len).sum::<usize>()
    }

    /// The binary ACL (revision 2).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidAcl`] if the ACL does not fit the 16-bit `AclSize`/`AceCount`
    /// fields (more than 65,535 bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let acl = Acl { aces: vec![Ace::allow(well_known::EVERYONE, rights::GENERIC_READ)] };
    /// let bytes = acl.to_bytes()?;
    /// assert_eq!(bytes.len(), 8 + 8 + 12);
    /// assert_eq!(&bytes[..8], &[2, 0, 28, 0, 1, 0, 0, 0]);
    /// assert_eq!(Acl::from_bytes(&bytes)?, acl);
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, IdentityError> {
        let size = u16::try_from(self.byte_len())
            .map_err(|_| acl_err("ACL larger than 65535 bytes", 2))?;
        let count = self.aces.len() as u16; // each ACE is >= 16 bytes, so count < size
        let mut out = Vec::with_capacity(usize::from(size));
        out.extend_from_slice(&[ACL_REVISION, 0]);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for ace in &self.aces {
            out.push(match ace.kind {
                AceKind::Allowed => ACCESS_ALLOWED_ACE_TYPE,
                AceKind::Denied => ACCESS_DENIED_ACE_TYPE,
            });
            out.push(ace.flags.0);
            out.extend_from_slice(&(ace.byte_len() as u16).to_le_bytes());
            out.extend_from_slice(&ace.mask.to_le_bytes());
            ace.sid.write_bytes(&mut out);
        }
        Ok(out)
    }

    /// The `AclSize` in an ACL header (the first 8 bytes), so a caller holding only a pointer
    /// knows how many bytes to read.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidAcl`] if `header` is shorter than 8 bytes or the size is below
    /// 8 or not a multiple of 4.
    pub fn size_from_header(header: &[u8]) -> Result<usize, IdentityError> {
        let size = u16_at(header, 2)
            .filter(|_| header.len() >= ACL_HEADER_SIZE)
            .ok_or_else(|| acl_err("truncated ACL header", header.len()))?;
        let size = usize::from(size);
        if size < ACL_HEADER_SIZE || size % 4 != 0 {
            return Err(acl_err("AclSize below 8 or not a multiple of 4", 2));
        }
        Ok(size)
    }

    /// Reads a binary ACL from the start of `bytes` (which may run on past `AclSize`).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidAcl`] for a bad header, an ACE that overruns the ACL or has a
    /// bad size, or an ACE type other than access-allowed (0) or access-denied (1);
    /// [`IdentityError::InvalidSid`] for a bad SID inside an ACE. Positions are byte offsets
    /// into `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Acl, IdentityError> {
        let size = Acl::size_from_header(bytes)?;
        let revision = bytes[0];
        if !(ACL_REVISION..=ACL_REVISION_DS).contains(&revision) {
            return Err(acl_err("ACL revision not in 2..=4", 0));
        }
        if bytes.len() < size {
            return Err(acl_err("input shorter than AclSize", bytes.len()));
        }
        let count = usize::from(u16_at(bytes, 4).unwrap_or(0));
        let mut aces = Vec::with_capacity(count.min(size / 16));
        let mut at = ACL_HEADER_SIZE;
        for _ in 0..count {
            let (Some(&ace_type), Some(&flags), Some(ace_size)) =
                (bytes.get(at), bytes.get(at + 1), u16_at(bytes, at + 2))
            else {
                return Err(acl_err("ACE header runs past AclSize", at));
            };
            let ace_size = usize::from(ace_size);
            if at + 4 > size || ace_size < 8 || ace_size % 4 != 0 || at + ace_size > size {
                return Err(acl_err("bad AceSize", at + 2));
            }
            let kind = match ace_type {
                ACCESS_ALLOWED_ACE_TYPE => AceKind::Allowed,
                ACCESS_DENIED_ACE_TYPE => AceKind::Denied,
                _ => return Err(acl_err("unsupported ACE type", at)),
            };
            let mask = u32_at(bytes, at + 4).unwrap_or(0);
            let (sid, _) =
                Sid::from_prefix(&bytes[at + 8..at + ace_size]).map_err(|e| shift(e, at + 8))?;
            aces.push(Ace {
                kind,
                flags: AceFlags(flags),
                mask,
                sid,
            });
            at += ace_size;
        }
        Ok(Acl { aces })
    }
}

impl SecurityDescriptor {
    /// The self-relative binary form (`SECURITY_DESCRIPTOR_RELATIVE`), as
    /// `ConvertStringSecurityDescriptorToSecurityDescriptor` returns it: the header, then the
    /// DACL, the owner and the group. A null DACL is written as "DACL present, offset 0".
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidAcl`] if the DACL is too large for its 16-bit size field.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let sd = SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;0x1;;;WD)", None)?;
    /// let bytes = sd.to_self_relative()?;
    /// assert_eq!(&bytes[..4], &[1, 0, 0x04, 0x80]); // revision 1, SE_DACL_PRESENT | SE_SELF_RELATIVE
    /// assert_eq!(SecurityDescriptor::from_self_relative(&bytes)?, sd);
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn to_self_relative(&self) -> Result<Vec<u8>, IdentityError> {
        let mut control = control::SE_SELF_RELATIVE | control::SE_DACL_PRESENT;
        if self.dacl_flags.protected {
            control |= control::SE_DACL_PROTECTED;
        }
        if self.dacl_flags.auto_inherited {
            control |= control::SE_DACL_AUTO_INHERITED;
        }
        if self.dacl_flags.auto_inherit_req {
            control |= control::SE_DACL_AUTO_INHERIT_REQ;
        }
        // Each part is appended to `body` and its offset (from the header's start) noted.
        let mut body = Vec::new();
        let here = |body: &Vec<u8>| (SECURITY_DESCRIPTOR_RELATIVE_SIZE + body.len()) as u32;
        let dacl_off = match &self.dacl {
            Some(acl) => {
                let at = here(&body);
                body.extend_from_slice(&acl.to_bytes()?);
                at
            }
            None => 0,
        };
        let sid_part = |sid: &Option<Sid>, body: &mut Vec<u8>| match sid {
            Some(s) => {
                let at = here(body);
                s.write_bytes(body);
                at
            }
            None => 0,
        };
        let owner_off = sid_part(&self.owner, &mut body);
        let group_off = sid_part(&self.group, &mut body);
        let mut out = Vec::with_capacity(SECURITY_DESCRIPTOR_RELATIVE_SIZE + body.len());
        out.extend_from_slice(&[SECURITY_DESCRIPTOR_REVISION, 0]);
        out.extend_from_slice(&control.to_le_bytes());
        for off in [owner_off, group_off, 0, dacl_off] {
            out.extend_from_slice(&off.to_le_bytes());
        }
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads a self-relative security descriptor. A SACL, if present, is skipped (not
    /// modelled); a DACL that is absent or present with offset 0 reads as a null DACL.
    ///
    /// # Errors
    ///
    /// * [`IdentityError::InvalidSecurityDescriptor`]: shorter than its 20-byte header,
    ///   revision not 1, `SE_SELF_RELATIVE` not set (an absolute descriptor holds pointers,
    ///   which only the raw face can follow), or an offset inside the header or past the end.
    /// * [`IdentityError::InvalidSid`] / [`IdentityError::InvalidAcl`]: a bad owner, group or
    ///   DACL (positions are offsets into `bytes`).
    pub fn from_self_relative(bytes: &[u8]) -> Result<SecurityDescriptor, IdentityError> {
        if bytes.len() < SECURITY_DESCRIPTOR_RELATIVE_SIZE {
            return Err(sd_err("shorter than SECURITY_DESCRIPTOR_RELATIVE"));
        }
        if bytes[0] != SECURITY_DESCRIPTOR_REVISION {
            return Err(sd_err("revision is not 1"));
        }
        let control = u16_at(bytes, 2).unwrap_or(0);
        if control & control::SE_SELF_RELATIVE == 0 {
            return Err(sd_err("not self-relative (SE_SELF_RELATIVE clear)"));
        }
        let offset = |field: usize| -> Result<Option<usize>, IdentityError> {
            match u32_at(bytes, field).unwrap_or(0) as usize {
                0 => Ok(None),
                o if o < SECURITY_DESCRIPTOR_RELATIVE_SIZE || o >= bytes.len() => {
                    Err(sd_err("offset inside the header or past the end"))
                }
                o => Ok(Some(o)),
            }
        };
        let sid_at = |o: Option<usize>| -> Result<Option<Sid>, IdentityError> {
            o.map(|o| {
                Sid::from_prefix(&bytes[o..])
                    .map(|(s, _)| s)
                    .map_err(|e| shift(e, o))
            })
            .transpose()
        };
        let owner = sid_at(offset(4)?)?;
        let group = sid_at(offset(8)?)?;
        let dacl = match (control & control::SE_DACL_PRESENT != 0, offset(16)?) {
            (true, Some(o)) => Some(Acl::from_bytes(&bytes[o..]).map_err(|e| shift(e, o))?),
            _ => None,
        };
        Ok(SecurityDescriptor {
            owner,
            group,
            dacl,
            dacl_flags: DaclFlags {
                protected: control & control::SE_DACL_PROTECTED != 0,
                auto_inherited: control & control::SE_DACL_AUTO_INHERITED != 0,
                auto_inherit_req: control & control::SE_DACL_AUTO_INHERIT_REQ != 0,
            },
        })
    }
}
