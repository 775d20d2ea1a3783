//! A small subset of SDDL (Security Descriptor Definition Language), read and written, so
//! scenarios and tests can write security descriptors as text.
//!
//! Grammar accepted (upper case, no white space), components in any order, each at most once:
//!
//! ```text
//! sd        = *( "O:" sid / "G:" sid / "D:" dacl )
//! dacl      = "NO_ACCESS_CONTROL"                 ; null DACL
//!           / *( "P" / "AI" / "AR" ) *ace          ; flags, then ACEs (none = empty DACL)
//! ace       = "(" type ";" flags ";" rights ";" "" ";" "" ";" sid ")"
//! type      = "A" / "D"
//! flags     = *( "CI" / "OI" / "NP" / "IO" / "ID" )
//! rights    = "0x" hex / decimal / 1*( "GA" / "GR" / "GW" / "GX" / "RC" / "SD" / "WD" / "WO"
//!                                     / "FA" / "FR" / "FW" / "FX" / "KA" / "KR" / "KW" / "KX" )
//! sid       = alias / "S-1-" ...
//! alias     = "WD" / "AU" / "NU" / "SY" / "BA" / "BU" / "AN" / "IU" / "CO" / "OW"
//!           / "DU" / "DA" / "DC" / "DG"               ; these four need a domain SID
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{IdentityError, SddlErrorKind};
use crate::rights::*;
use crate::security::{Ace, AceFlags, AceKind, Acl, SecurityDescriptor};
use crate::sid::{well_known as wk, Sid};

const ALIASES: &[(&str, Sid)] = &[
    ("WD", wk::EVERYONE),
    ("AU", wk::AUTHENTICATED_USERS),
    ("NU", wk::NETWORK),
    ("SY", wk::LOCAL_SYSTEM),
    ("BA", wk::BUILTIN_ADMINISTRATORS),
    ("BU", wk::BUILTIN_USERS),
    ("AN", wk::ANONYMOUS),
    ("IU", wk::INTERACTIVE),
    ("CO", wk::CREATOR_OWNER),
    ("OW", wk::OWNER_RIGHTS),
];

const DOMAIN_ALIASES: &[(&str, u32)] = &[
    ("DU", wk::DOMAIN_GROUP_RID_USERS),
    ("DA", wk::DOMAIN_GROUP_RID_ADMINS),
    ("DC", wk::DOMAIN_GROUP_RID_COMPUTERS),
    ("DG", wk::DOMAIN_GROUP_RID_GUESTS),
];

const RIGHTS: &[(&str, AccessMask)] = &[
    ("GA", GENERIC_ALL),
    ("GR", GENERIC_READ),
    ("GW", GENERIC_WRITE),
    ("GX", GENERIC_EXECUTE),
    ("FA", FILE_ALL_ACCESS),
    ("FR", FILE_GENERIC_READ),
    ("FW", FILE_GENERIC_WRITE),
    ("FX", FILE_GENERIC_EXECUTE),
    ("KA", KEY_ALL_ACCESS),
    ("KR", KEY_READ),
    ("KW", KEY_WRITE),
    ("KX", KEY_EXECUTE),
    ("RC", READ_CONTROL),
    ("SD", DELETE),
    ("WD", WRITE_DAC),
    ("WO", WRITE_OWNER),
];

const ACE_FLAGS: &[(&str, AceFlags)] = &[
    ("OI", AceFlags::OBJECT_INHERIT),
    ("CI", AceFlags::CONTAINER_INHERIT),
    ("NP", AceFlags::NO_PROPAGATE_INHERIT),
    ("IO", AceFlags::INHERIT_ONLY),
    ("ID", AceFlags::INHERITED),
];

fn err(kind: SddlErrorKind, position: usize) -> IdentityError {
    IdentityError::InvalidSddl { kind, position }
}

/// Parses a SID field (alias or literal) that spans all of `text`, starting at `at`.
fn parse_sid(text: &str, at: usize, domain: Option<&Sid>) -> Result<Sid, IdentityError> {
    if text.starts_with("S-") || text.starts_with("s-") {
        return Sid::parse_str(text).map_err(|e| match e {
            IdentityError::InvalidSid { kind, position } => {
                err(SddlErrorKind::BadSid(kind), at + position)
            }
            _ => err(SddlErrorKind::UnknownSidAlias, at),
        });
    }
    if let Some((_, sid)) = ALIASES.iter().find(|(a, _)| *a == text) {
        return Ok(*sid);
    }
    if let Some((_, rid)) = DOMAIN_ALIASES.iter().find(|(a, _)| *a == text) {
        let d = domain.ok_or_else(|| err(SddlErrorKind::DomainAliasWithoutDomain, at))?;
        return d
            .with_rid(*rid)
            .map_err(|_| err(SddlErrorKind::DomainAliasWithoutDomain, at));
    }
    Err(err(SddlErrorKind::UnknownSidAlias, at))
}

/// The length of the SID token at the start of `rest` (an O:/G: value, which has no closing
/// delimiter): a two-letter alias, or `S-` then numbers (`0x` + up to 12 hex digits allowed)
/// separated by `-`.
fn sid_token_len(rest: &str) -> usize {
    let b = rest.as_bytes();
    if !(b.starts_with(b"S-") || b.starts_with(b"s-")) {
        return rest.char_indices().nth(2).map_or(rest.len(), |(i, _)| i);
    }
    let mut i = 2;
    loop {
        if b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X") {
            i += 2;
            let start = i;
            while i < b.len() && i - start < 12 && b[i].is_ascii_hexdigit() {
                i += 1;
            }
        } else {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i + 1 < b.len() && b[i] == b'-' && b[i + 1].is_ascii_digit() {
            i += 1;
        } else {
            return i;
        }
    }
}

fn parse_rights(text: &str, at: usize) -> Result<AccessMask, IdentityError> {
    let bad = || err(SddlErrorKind::BadRights, at);
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        return u32::from_str_radix(hex, 16).map_err(|_| bad());
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    if text.is_empty() || text.len() % 2 != 0 || !text.is_ascii() {
        return Err(bad());
    }
    let mut mask = 0;
    for (i, code) in text.as_bytes().chunks(2).enumerate() {
        let (_, m) = RIGHTS
            .iter()
            .find(|(c, _)| c.as_bytes() == code)
            .ok_or_else(|| err(SddlErrorKind::BadRights, at + 2 * i))?;
        mask |= m;
    }
    Ok(mask)
}

fn parse_ace_flags(text: &str, at: usize) -> Result<AceFlags, IdentityError> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return Err(err(SddlErrorKind::UnknownAceFlag, at));
    }
    let mut flags = AceFlags::NONE;
    for (i, code) in text.as_bytes().chunks(2).enumerate() {
        let (_, f) = ACE_FLAGS
            .iter()
            .find(|(c, _)| c.as_bytes() == code)
            .ok_or_else(|| err(SddlErrorKind::UnknownAceFlag, at + 2 * i))?;
        flags.0 |= f.0;
    }
    Ok(flags)
}

/// Parses one ACE whose `(` is at `text[at]`; returns it and the position after its `)`.
fn parse_ace(text: &str, at: usize, domain: Option<&Sid>) -> Result<(Ace, usize), IdentityError> {
    let body_start = at + 1;
    let close = text[body_start..]
        .find(')')
        .ok_or_else(|| err(SddlErrorKind::UnterminatedAce, at))?;
    let body = &text[body_start..body_start + close];
    let mut fields: Vec<(usize, &str)> = Vec::with_capacity(6);
    let mut pos = body_start;
    for f in body.split(';') {
        fields.push((pos, f));
        pos += f.len() + 1;
    }
    if fields.len() != 6 {
        return Err(err(SddlErrorKind::WrongFieldCount, at));
    }
    let kind = match fields[0].1 {
        "A" => AceKind::Allowed,
        "D" => AceKind::Denied,
        _ => return Err(err(SddlErrorKind::UnsupportedAceType, fields[0].0)),
    };
    let flags = parse_ace_flags(fields[1].1, fields[1].0)?;
    let mask = parse_rights(fields[2].1, fields[2].0)?;
    for &(p, f) in &fields[3..5] {
        if !f.is_empty() {
            return Err(err(SddlErrorKind::ObjectAceNotSupported, p));
        }
    }
    let sid = parse_sid(fields[5].1, fields[5].0, domain)?;
    Ok((
        Ace {
            kind,
            flags,
            mask,
            sid,
        },
        body_start + close + 1,
    ))
}

impl SecurityDescriptor {
    /// Parses the SDDL subset described in this module's documentation. `domain` resolves the
    /// domain-relative aliases `DU`, `DA`, `DC`, `DG`.
    ///
    /// Never panics; a bad string gives the byte offset of the problem.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidSddl`] with a [`SddlErrorKind`] and a byte position.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let domain = Sid::domain_from_name("WSOCK");
    /// let sd = SecurityDescriptor::from_sddl("O:SYG:DUD:P(A;CI;GR;;;DU)(D;;0x40000;;;WD)", Some(&domain))?;
    /// assert_eq!(sd.group, Some(domain.with_rid(513)?));
    /// assert!(sd.dacl_flags.protected);
    /// assert_eq!(sd.dacl.as_ref().unwrap().aces.len(), 2);
    ///
    /// let e = SecurityDescriptor::from_sddl("O:SYD:(A;;GR;;;XX)", None).unwrap_err();
    /// assert_eq!(e, IdentityError::InvalidSddl { kind: SddlErrorKind::UnknownSidAlias, position: 15 });
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn from_sddl(
        text: &str,
        domain: Option<&Sid>,
    ) -> Result<SecurityDescriptor, IdentityError> {
        let mut sd = SecurityDescriptor::default();
        let (mut seen_o, mut seen_g, mut seen_d) = (false, false, false);
        let b = text.as_bytes();
        let mut pos = 0;
        while pos < b.len() {
            let tag = &b[pos..];
            let component = if tag.starts_with(b"O:") {
                &mut seen_o
            } else if tag.starts_with(b"G:") {
                &mut seen_g
            } else if tag.starts_with(b"D:") {
                &mut seen_d
            } else {
                return Err(err(SddlErrorKind::UnknownComponent, pos));
            };
            if std::mem::replace(component, true) {
                return Err(err(SddlErrorKind::DuplicateComponent, pos));
            }
            let letter = tag[0];
            pos += 2;
            match letter {
                b'O' | b'G' => {
                    let len = sid_token_len(&text[pos..]);
                    let sid = parse_sid(&text[pos..pos + len], pos, domain)?;
                    pos += len;
                    if letter == b'O' {
                        sd.owner = Some(sid);
                    } else {
                        sd.group = Some(sid);
                    }
                }
                _ => pos = parse_dacl(text, pos, domain, &mut sd)?,
            }
        }
        Ok(sd)
    }

    /// Writes the descriptor as SDDL that [`SecurityDescriptor::from_sddl`] reads back to an
    /// equal value. Well-known SIDs become their aliases (domain groups too when `domain` is
    /// given), other SIDs are literal; rights are a two-letter code when the mask is exactly
    /// one, hex otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let text = "O:BAG:SYD:(A;OICI;FA;;;AU)(D;;0x8;;;S-1-5-21-1-2-3-1000)";
    /// let sd = SecurityDescriptor::from_sddl(text, None)?;
    /// assert_eq!(sd.to_sddl(None), text);
    /// assert_eq!(SecurityDescriptor::default().to_sddl(None), "D:NO_ACCESS_CONTROL");
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn to_sddl(&self, domain: Option<&Sid>) -> String {
        let mut out = String::new();
        if let Some(o) = &self.owner {
            out.push_str("O:");
            out.push_str(&sid_text(o, domain));
        }
        if let Some(g) = &self.group {
            out.push_str("G:");
            out.push_str(&sid_text(g, domain));
        }
        out.push_str("D:");
        if self.dacl_flags.protected {
            out.push('P');
        }
        if self.dacl_flags.auto_inherit_req {
            out.push_str("AR");
        }
        if self.dacl_flags.auto_inherited {
            out.push_str("AI");
        }
        match &self.dacl {
            None => out.push_str("NO_ACCESS_CONTROL"),
            Some(acl) => {
                for ace in &acl.aces {
                    out.push('(');
                    out.push_str(match ace.kind {
                        AceKind::Allowed => "A",
                        AceKind::Denied => "D",
                    });
                    out.push(';');
                    for (code, f) in ACE_FLAGS {
                        if ace.flags.contains(*f) {
                            out.push_str(code);
                        }
                    }
                    out.push(';');
                    match RIGHTS.iter().find(|(_, m)| *m == ace.mask) {
                        Some((code, _)) => out.push_str(code),
                        None => out.push_str(&format!("{:#x}", ace.mask)),
                    }
                    out.push_str(";;;");
                    out.push_str(&sid_text(&ace.sid, domain));
                    out.push(')');
                }
            }
        }
        out
    }
}

fn sid_text(sid: &Sid, domain: Option<&Sid>) -> String {
    if let Some((a, _)) = ALIASES.iter().find(|(_, s)| s == sid) {
        return (*a).to_string();
    }
    if let Some(d) = domain {
        if sid.is_in_domain(d) {
            if let Some((a, _)) = DOMAIN_ALIASES.iter().find(|(_, r)| Some(*r) == sid.rid()) {
                return (*a).to_string();
            }
        }
    }
    sid.to_string()
}

/// Parses a DACL starting at `pos` (after `D:`); returns the position after it.
fn parse_dacl(
    text: &str,
    mut pos: usize,
    domain: Option<&Sid>,
    sd: &mut SecurityDescriptor,
) -> Result<usize, IdentityError> {
    let b = text.as_bytes();
    let mut acl = Acl::default();
    let mut null = false;
    // Flags.
    loop {
        let rest = &b[pos..];
        if rest.starts_with(b"NO_ACCESS_CONTROL") {
            null = true;
            pos += "NO_ACCESS_CONTROL".len();
        } else if rest.starts_with(b"AI") {
            sd.dacl_flags.auto_inherited = true;
            pos += 2;
        } else if rest.starts_with(b"AR") {
            sd.dacl_flags.auto_inherit_req = true;
            pos += 2;
        } else if rest.starts_with(b"P") {
            sd.dacl_flags.protected = true;
            pos += 1;
        } else {
            break;
        }
    }
    // ACEs.
    while pos < b.len() && b[pos] == b'(' {
        if null {
            return Err(err(SddlErrorKind::ExpectedAce, pos));
        }
        let (ace, next) = parse_ace(text, pos, domain)?;
        acl.aces.push(ace);
        pos = next;
    }
    // What follows must be another component or the end.
    if pos < b.len()
        && !(b[pos..].starts_with(b"O:")
            || b[pos..].starts_with(b"G:")
            || b[pos..].starts_with(b"D:"))
    {
        return Err(err(SddlErrorKind::ExpectedAce, pos));
    }
    sd.dacl = if null { None } else { Some(acl) };
    Ok(pos)
}

impl fmt::Display for SecurityDescriptor {
    /// The SDDL form, with no domain aliases (see [`SecurityDescriptor::to_sddl`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sddl(None))
    }
}

impl FromStr for SecurityDescriptor {
    type Err = IdentityError;

    /// Parses SDDL without a domain (see [`SecurityDescriptor::from_sddl`]).
    fn from_str(s: &str) -> Result<SecurityDescriptor, IdentityError> {
        SecurityDescriptor::from_sddl(s, None)
    }
}
