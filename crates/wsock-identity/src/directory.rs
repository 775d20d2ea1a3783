//! [`Directory`]: the principals of one domain (machines, users, groups), built from plain data.

use std::collections::HashMap;
use std::fmt;

use crate::error::IdentityError;
use crate::sid::{well_known as wk, Sid};

/// The kind of account a SID names (`SID_NAME_USE`, with the Windows values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum SidNameUse {
    /// `SidTypeUser` (1): a user account.
    User = 1,
    /// `SidTypeGroup` (2): a domain group (Domain Users, ...).
    Group = 2,
    /// `SidTypeDomain` (3): the domain itself.
    Domain = 3,
    /// `SidTypeAlias` (4): a built-in alias (BUILTIN\Administrators, ...).
    Alias = 4,
    /// `SidTypeWellKnownGroup` (5): Everyone, NT AUTHORITY\NETWORK, ...
    WellKnownGroup = 5,
    /// `SidTypeComputer` (9): a machine account (`NAME$`).
    Computer = 9,
    /// `SidTypeLabel` (10): a mandatory integrity label.
    Label = 10,
}

/// A user account as plain data (what a scenario declares).
///
/// `Debug` never prints the password.
///
/// # Examples
///
/// ```
/// use wsock_identity::UserSpec;
/// let alice = UserSpec::new("alice").password("s3cret").group("Engineers");
/// assert_eq!(alice.groups, ["Engineers"]);
/// assert!(!format!("{alice:?}").contains("s3cret"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    /// Account name (without domain).
    pub name: String,
    /// Password for user-level authentication, if the user can log on with one.
    pub password: Option<String>,
    /// Names of the groups the user belongs to besides Domain Users: groups declared in the
    /// directory, the built-in domain groups (`Domain Admins`, ...) or the built-in aliases
    /// (`Administrators`, `Users`).
    pub groups: Vec<String>,
}

impl UserSpec {
    /// A user with no password and no extra group.
    pub fn new(name: impl Into<String>) -> UserSpec {
        UserSpec {
            name: name.into(),
            ..UserSpec::default()
        }
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> UserSpec {
        self.password = Some(password.into());
        self
    }

    /// Adds a group membership.
    pub fn group(mut self, group: impl Into<String>) -> UserSpec {
        self.groups.push(group.into());
        self
    }
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("groups", &self.groups)
            .finish()
    }
}

/// A machine (computer) account as plain data. Its account name is `name` followed by `$`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineSpec {
    /// NetBIOS-style machine name, with or without the trailing `$`.
    pub name: String,
    /// Groups the machine belongs to besides Domain Computers (resolved as for users).
    pub groups: Vec<String>,
}

impl MachineSpec {
    /// A machine with no extra group.
    pub fn new(name: impl Into<String>) -> MachineSpec {
        MachineSpec {
            name: name.into(),
            groups: Vec::new(),
        }
    }
}

/// A domain group as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSpec {
    /// Group name.
    pub name: String,
}

/// Everything a [`Directory`] is built from.
///
/// The order of the vectors does not matter: RIDs are assigned in a canonical order (see
/// [`DirectorySpec::build`]).
///
/// # Examples
///
/// ```
/// use wsock_identity::{DirectorySpec, UserSpec};
/// let dir = DirectorySpec::new("WSOCK")
///     .machine("CLIENT")
///     .machine("SERVER")
///     .group("Engineers")
///     .user(UserSpec::new("alice").password("pw").group("Engineers"))
///     .build()?;
/// assert_eq!(dir.lookup_name("WSOCK\\alice")?.sid().rid(), Some(1000));
/// assert_eq!(dir.lookup_name("client$")?.name(), "CLIENT$");
/// # Ok::<(), wsock_identity::IdentityError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySpec {
    /// The domain's NetBIOS name (`WSOCK`).
    pub domain: String,
    /// The domain's DNS name (`wsock.test`), accepted after `@` in user principal names.
    pub dns_name: Option<String>,
    /// Machine accounts.
    pub machines: Vec<MachineSpec>,
    /// User accounts.
    pub users: Vec<UserSpec>,
    /// Domain groups (besides the built-in Domain Admins/Users/Guests/Computers).
    pub groups: Vec<GroupSpec>,
}

impl DirectorySpec {
    /// An empty domain named `domain`.
    pub fn new(domain: impl Into<String>) -> DirectorySpec {
        DirectorySpec {
            domain: domain.into(),
            ..DirectorySpec::default()
        }
    }

    /// Sets the DNS name of the domain.
    pub fn dns_name(mut self, dns_name: impl Into<String>) -> DirectorySpec {
        self.dns_name = Some(dns_name.into());
        self
    }

    /// Adds a machine account.
    pub fn machine(mut self, name: impl Into<String>) -> DirectorySpec {
        self.machines.push(MachineSpec::new(name));
        self
    }

    /// Adds a user account.
    pub fn user(mut self, user: UserSpec) -> DirectorySpec {
        self.users.push(user);
        self
    }

    /// Adds a domain group.
    pub fn group(mut self, name: impl Into<String>) -> DirectorySpec {
        self.groups.push(GroupSpec { name: name.into() });
        self
    }

    /// Adds a user, merging it with a same-named user already in the spec (names compare
    /// case-insensitively): the group lists are joined, and a password given on only one side
    /// is kept. This is how several hosts of a scenario that declare the same domain user
    /// become one account.
    ///
    /// # Errors
    ///
    /// [`IdentityError::AccountExists`] if both declare a password and the passwords differ.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::{DirectorySpec, UserSpec};
    /// // What the stack does with its scenario's hosts (machine, domain, users).
    /// let hosts = [("CLIENT", ["alice"]), ("SERVER", ["alice"])];
    /// let mut spec = DirectorySpec::new("WSOCK");
    /// for (machine, users) in hosts {
    ///     spec.add_machine(machine);
    ///     for u in users {
    ///         spec.add_user(UserSpec::new(u))?;
    ///     }
    /// }
    /// let dir = spec.build()?;
    /// assert_eq!(dir.user("alice")?.sid().rid(), Some(1000));
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn add_user(&mut self, user: UserSpec) -> Result<(), IdentityError> {
        let k = key(&user.name);
        let Some(existing) = self.users.iter_mut().find(|u| key(&u.name) == k) else {
            self.users.push(user);
            return Ok(());
        };
        match (&existing.password, user.password) {
            (Some(a), Some(b)) if *a != b => {
                return Err(IdentityError::AccountExists { name: user.name })
            }
            (None, Some(b)) => existing.password = Some(b),
            _ => {}
        }
        for g in user.groups {
            if !existing.groups.iter().any(|e| key(e) == key(&g)) {
                existing.groups.push(g);
            }
        }
        Ok(())
    }

    /// Adds a machine account unless one with the same name (case-insensitive, with or without
    /// the trailing `$`) is already in the spec.
    pub fn add_machine(&mut self, name: impl Into<String>) {
        let name = name.into();
        let bare = |n: &str| key(n.strip_suffix('$').unwrap_or(n));
        if !self.machines.iter().any(|m| bare(&m.name) == bare(&name)) {
            self.machines.push(MachineSpec::new(name));
        }
    }

    /// Builds the directory.
    ///
    /// The domain SID is [`Sid::domain_from_name`]`(domain)`. RIDs: Domain Admins 512, Domain
    /// Users 513, Domain Guests 514, Domain Computers 515 (the Windows values); then, from 1000
    /// upward, users in order of their upper-cased names, then machines likewise, then declared
    /// groups likewise. The order of the spec's vectors therefore never changes a SID.
    ///
    /// # Errors
    ///
    /// * [`IdentityError::InvalidParameter`]: an empty or malformed domain or account name
    ///   (names may not contain `" / \ [ ] : ; | = , + * ? < > @` or control characters, and
    ///   are at most 256 characters), or a domain named `BUILTIN`, `NT AUTHORITY` or
    ///   `Mandatory Label`.
    /// * [`IdentityError::AccountExists`]: two accounts with the same name (case-insensitive),
    ///   including a declared group named like a built-in domain group.
    /// * [`IdentityError::NoneMapped`]: a user or machine names a group that does not exist.
    pub fn build(self) -> Result<Directory, IdentityError> {
        Directory::from_spec(self)
    }
}

/// A stored password. Never printed.
#[derive(Clone, PartialEq, Eq)]
struct Password(Box<[u8]>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One account of a [`Directory`]: a user, machine, group, alias, well-known group or the
/// domain itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    domain: String,
    name: String,
    sid: Sid,
    kind: SidNameUse,
    groups: Vec<Sid>,
    password: Option<Password>,
}

impl Account {
    /// The domain part of the account's name (`WSOCK`, `NT AUTHORITY`, `BUILTIN`, or empty for
    /// Everyone), as `LookupAccountSid` returns it.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The account name as declared (case preserved; machines end with `$`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `DOMAIN\name`, or just `name` when the domain part is empty.
    pub fn qualified_name(&self) -> String {
        if self.domain.is_empty() {
            self.name.clone()
        } else {
            format!("{}\\{}", self.domain, self.name)
        }
    }

    /// The account's SID.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// What kind of account this is.
    pub fn kind(&self) -> SidNameUse {
        self.kind
    }

    /// The domain groups and aliases the account is a direct member of, primary group first
    /// (Domain Users for users, Domain Computers for machines). Empty for groups.
    pub fn groups(&self) -> &[Sid] {
        &self.groups
    }

    /// The primary group (the first of [`Account::groups`]), for users and machines.
    pub fn primary_group(&self) -> Option<Sid> {
        match self.kind {
            SidNameUse::User | SidNameUse::Computer => self.groups.first().copied(),
            _ => None,
        }
    }

    /// Whether the account has a password (can authenticate with one).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

/// The principals of one domain, looked up by name or SID.
///
/// Holds, besides the declared users, machines and groups: the domain itself, the built-in
/// domain groups (Domain Admins/Users/Guests/Computers), and the well-known principals
/// (Everyone, NT AUTHORITY\NETWORK, Authenticated Users, This Organization, SYSTEM, ANONYMOUS
/// LOGON, INTERACTIVE, NTLM Authentication, Authentication authority asserted identity,
/// BUILTIN\Administrators, BUILTIN\Users, Medium Mandatory Level), so that lookups answer like
/// `LookupAccountName`/`LookupAccountSid` on a member of the domain. Every group SID of a peer
/// token resolves, except the per-logon SID `S-1-5-5-x-y`.
///
/// Immutable once built, so it can be shared (`Arc<Directory>`) without locking.
#[derive(Debug, Clone)]
pub struct Directory {
    domain: String,
    dns_name: Option<String>,
    domain_sid: Sid,
    accounts: Vec<Account>,
    by_qualified: HashMap<(String, String), usize>,
    by_bare: HashMap<String, usize>,
    by_sid: HashMap<Sid, usize>,
}

/// The well-known principals every directory knows: (domain, name, SID, kind), with the
/// names `LookupAccountSid` gives them on an English Windows.
#[rustfmt::skip]
const WELL_KNOWN_ACCOUNTS: &[(&str, &str, Sid, SidNameUse)] = &[
    ("", "Everyone", wk::EVERYONE, SidNameUse::WellKnownGroup),
    ("", "NULL SID", wk::NULL, SidNameUse::WellKnownGroup),
    ("", "CREATOR OWNER", wk::CREATOR_OWNER, SidNameUse::WellKnownGroup),
    ("", "OWNER RIGHTS", wk::OWNER_RIGHTS, SidNameUse::WellKnownGroup),
    ("", "Authentication authority asserted identity",
        wk::AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "NETWORK", wk::NETWORK, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "INTERACTIVE", wk::INTERACTIVE, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "ANONYMOUS LOGON", wk::ANONYMOUS, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "Authenticated Users", wk::AUTHENTICATED_USERS, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "This Organization", wk::THIS_ORGANIZATION, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "SYSTEM", wk::LOCAL_SYSTEM, SidNameUse::WellKnownGroup),
    ("NT AUTHORITY", "NTLM Authentication", wk::NTLM_AUTHENTICATION, SidNameUse::WellKnownGroup),
    ("BUILTIN", "Administrators", wk::BUILTIN_ADMINISTRATORS, SidNameUse::Alias),
    ("BUILTIN", "Users", wk::BUILTIN_USERS, SidNameUse::Alias),
    ("Mandatory Label", "Medium Mandatory Level", wk::MEDIUM_MANDATORY_LEVEL, SidNameUse::Label),
];

const BAD_NAME_CHARS: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@',
];
const MAX_NAME_CHARS: usize = 256;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name
            .chars()
            .any(|c| c.is_control() || BAD_NAME_CHARS.contains(&c))
        && !name.chars().all(|c| c == '.' || c == ' ')
}

fn key(s: &str) -> String {
    s.to_uppercase()
}

/// Compares two byte strings in time that depends only on the length of `stored`.
fn constant_time_eq(stored: &[u8], given: &[u8]) -> bool {
    let mut diff: u8 = u8::from(stored.len() != given.len());
    for (i, &s) in stored.iter().enumerate() {
        diff |= s ^ given.get(i).copied().unwrap_or(!s);
    }
    std::hint::black_box(diff) == 0
}

impl Directory {
    /// Builds a directory from its spec; see [`DirectorySpec::build`].
    ///
    /// # Errors
    ///
    /// As [`DirectorySpec::build`].
    pub fn from_spec(spec: DirectorySpec) -> Result<Directory, IdentityError> {
        if !valid_name(&spec.domain) {
            return Err(IdentityError::InvalidParameter {
                what: "domain name is empty or has a forbidden character",
            });
        }
        if ["BUILTIN", "NT AUTHORITY", "MANDATORY LABEL"].contains(&key(&spec.domain).as_str()) {
            return Err(IdentityError::InvalidParameter {
                what: "domain name is reserved for well-known principals",
            });
        }
        if let Some(dns) = &spec.dns_name {
            if !valid_name(dns) {
                return Err(IdentityError::InvalidParameter {
                    what: "domain DNS name is empty or has a forbidden character",
                });
            }
        }
        let domain_sid = Sid::domain_from_name(&spec.domain);
        let mut dir = Directory {
            domain: spec.domain.clone(),
            dns_name: spec.dns_name.clone(),
            domain_sid,
            accounts: Vec::new(),
            by_qualified: HashMap::new(),
            by_bare: HashMap::new(),
            by_sid: HashMap::new(),
        };
        // Well-known principals first: bare names resolve to them before domain accounts,
        // as LookupAccountName does.
        for &(d, n, sid, kind) in WELL_KNOWN_ACCOUNTS {
            dir.push(d, n, sid, kind, Vec::new(), None, false)?;
        }
        let dom = spec.domain.clone();
        dir.push(
            &dom,
            &dom,
            domain_sid,
            SidNameUse::Domain,
            Vec::new(),
            None,
            true,
        )?;
        for (n, rid) in [
            ("Domain Admins", wk::DOMAIN_GROUP_RID_ADMINS),
            ("Domain Users", wk::DOMAIN_GROUP_RID_USERS),
            ("Domain Guests", wk::DOMAIN_GROUP_RID_GUESTS),
            ("Domain Computers", wk::DOMAIN_GROUP_RID_COMPUTERS),
        ] {
            let sid = domain_sid.with_rid(rid)?;
            dir.push(&dom, n, sid, SidNameUse::Group, Vec::new(), None, true)?;
        }

        // Canonical order of the new accounts.
        let mut users = spec.users;
        users.sort_by_cached_key(|u| key(&u.name));
        let mut machines: Vec<MachineSpec> = spec
            .machines
            .into_iter()
            .map(|mut m| {
                if !m.name.ends_with('$') {
                    m.name.push('$');
                }
                m
            })
            .collect();
        machines.sort_by_cached_key(|m| key(&m.name));
        let mut groups = spec.groups;
        groups.sort_by_cached_key(|g| key(&g.name));

        for u in users.iter() {
            if !valid_name(&u.name) {
                return Err(IdentityError::InvalidParameter {
                    what: "user name is empty or has a forbidden character",
                });
            }
        }
        for m in machines.iter() {
            if !valid_name(&m.name) || m.name.len() == 1 {
                return Err(IdentityError::InvalidParameter {
                    what: "machine name is empty or has a forbidden character",
                });
            }
        }
        for g in groups.iter() {
            if !valid_name(&g.name) {
                return Err(IdentityError::InvalidParameter {
                    what: "group name is empty or has a forbidden character",
                });
            }
        }

        // RIDs: users, machines, groups, each sorted; groups are pushed first so that
        // memberships resolve, with the RIDs they would get in that order.
        let mut rid = wk::FIRST_ACCOUNT_RID;
        let user_rids: Vec<u32> = users.iter().map(|_| next(&mut rid)).collect();
        let machine_rids: Vec<u32> = machines.iter().map(|_| next(&mut rid)).collect();
        for g in &groups {
            let sid = domain_sid.with_rid(next(&mut rid))?;
            dir.push(
                &dom,
                &g.name,
                sid,
                SidNameUse::Group,
                Vec::new(),
                None,
                true,
            )?;
        }
        let users_group = domain_sid.with_rid(wk::DOMAIN_GROUP_RID_USERS)?;
        let computers_group = domain_sid.with_rid(wk::DOMAIN_GROUP_RID_COMPUTERS)?;
        for (u, r) in users.iter().zip(user_rids) {
            let member_of = dir.resolve_groups(users_group, &u.groups)?;
            let password = u
                .password
                .as_ref()
                .map(|p| Password(p.as_bytes().to_vec().into_boxed_slice()));
            let sid = domain_sid.with_rid(r)?;
            dir.push(
                &dom,
                &u.name,
                sid,
                SidNameUse::User,
                member_of,
                password,
                true,
            )?;
        }
        for (m, r) in machines.iter().zip(machine_rids) {
            let member_of = dir.resolve_groups(computers_group, &m.groups)?;
            let sid = domain_sid.with_rid(r)?;
            dir.push(
                &dom,
                &m.name,
                sid,
                SidNameUse::Computer,
                member_of,
                None,
                true,
            )?;
        }
        // Keep accounts listed in SID order (deterministic iteration).
        let mut order: Vec<usize> = (0..dir.accounts.len()).collect();
        order.sort_by_key(|&i| dir.accounts[i].sid);
        let accounts = std::mem::take(&mut dir.accounts);
        let mut slots: Vec<Option<Account>> = accounts.into_iter().map(Some).collect();
        let mut remap = vec![0usize; slots.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old] = new;
            if let Some(a) = slots[old].take() {
                dir.accounts.push(a);
            }
        }
        for v in dir.by_qualified.values_mut() {
            *v = remap[*v];
        }
        for v in dir.by_bare.values_mut() {
            *v = remap[*v];
        }
        for v in dir.by_sid.values_mut() {
            *v = remap[*v];
        }
        Ok(dir)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        domain: &str,
        name: &str,
        sid: Sid,
        kind: SidNameUse,
        groups: Vec<Sid>,
        password: Option<Password>,
        unique: bool,
    ) -> Result<(), IdentityError> {
        let q = (key(domain), key(name));
        if unique && self.by_qualified.contains_key(&q) {
            return Err(IdentityError::AccountExists {
                name: name.to_string(),
            });
        }
        let idx = self.accounts.len();
        self.accounts.push(Account {
            domain: domain.to_string(),
            name: name.to_string(),
            sid,
            kind,
            groups,
            password,
        });
        self.by_qualified.insert(q, idx);
        self.by_bare.entry(key(name)).or_insert(idx);
        self.by_sid.entry(sid).or_insert(idx);
        Ok(())
    }

    fn resolve_groups(&self, primary: Sid, names: &[String]) -> Result<Vec<Sid>, IdentityError> {
        let mut out = vec![primary];
        for n in names {
            let sid = self
                .by_qualified
                .get(&(key(&self.domain), key(n)))
                .filter(|&&i| self.accounts[i].kind == SidNameUse::Group)
                .or_else(|| {
                    self.by_qualified
                        .get(&("BUILTIN".to_string(), key(n)))
                        .filter(|&&i| self.accounts[i].kind == SidNameUse::Alias)
                })
                .map(|&i| self.accounts[i].sid)
                .ok_or_else(|| IdentityError::NoneMapped { name: n.clone() })?;
            if !out.contains(&sid) {
                out.push(sid);
            }
        }
        Ok(out)
    }

    /// The domain's NetBIOS name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The domain's DNS name, if one was given.
    pub fn dns_name(&self) -> Option<&str> {
        self.dns_name.as_deref()
    }

    /// The domain SID (`S-1-5-21-a-b-c`).
    pub fn domain_sid(&self) -> Sid {
        self.domain_sid
    }

    /// The SID of a domain-relative RID (e.g. 513 for Domain Users).
    ///
    /// # Errors
    ///
    /// Never in practice (a domain SID has 4 sub-authorities); [`IdentityError::InvalidSid`]
    /// is kept for the general case.
    pub fn domain_rid(&self, rid: u32) -> Result<Sid, IdentityError> {
        self.domain_sid.with_rid(rid)
    }

    /// Every account, in SID order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter()
    }

    /// `LookupAccountName`: finds an account by `DOMAIN\name`, `name@domain` (NetBIOS or DNS
    /// name of this domain; users and machines only) or a bare `name`. Names compare
    /// case-insensitively. A bare name resolves to a well-known principal first (`Everyone`,
    /// `NETWORK`, `Administrators`), then to the domain's accounts.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoneMapped`] when nothing has that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::{DirectorySpec, UserSpec, well_known};
    /// let dir = DirectorySpec::new("WSOCK").dns_name("wsock.test")
    ///     .user(UserSpec::new("Alice")).build()?;
    /// let a = dir.lookup_name("alice@WSOCK.TEST")?;
    /// assert_eq!(a.qualified_name(), "WSOCK\\Alice");
    /// assert_eq!(dir.lookup_name("NT AUTHORITY\\network")?.sid(), well_known::NETWORK);
    /// assert!(dir.lookup_name("OTHER\\alice").is_err());
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn lookup_name(&self, name: &str) -> Result<&Account, IdentityError> {
        let none = || IdentityError::NoneMapped {
            name: name.to_string(),
        };
        let idx = if let Some((d, n)) = name.split_once('\\') {
            self.by_qualified.get(&(key(d), key(n))).copied()
        } else if let Some((n, d)) = name.rsplit_once('@') {
            let d = key(d);
            let ours = d == key(&self.domain) || self.dns_name.as_deref().map(key) == Some(d);
            if ours {
                self.by_qualified
                    .get(&(key(&self.domain), key(n)))
                    .copied()
                    .filter(|&i| {
                        matches!(
                            self.accounts[i].kind,
                            SidNameUse::User | SidNameUse::Computer
                        )
                    })
            } else {
                None
            }
        } else {
            self.by_bare.get(&key(name)).copied()
        };
        idx.map(|i| &self.accounts[i]).ok_or_else(none)
    }

    /// `LookupAccountSid`: finds the account a SID names.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoneMapped`] when no account has that SID.
    pub fn lookup_sid(&self, sid: &Sid) -> Result<&Account, IdentityError> {
        self.by_sid
            .get(sid)
            .map(|&i| &self.accounts[i])
            .ok_or_else(|| IdentityError::NoneMapped {
                name: sid.to_string(),
            })
    }

    /// Finds a user account by any name form [`Directory::lookup_name`] accepts.
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoSuchUser`] if no user account has that name.
    pub fn user(&self, name: &str) -> Result<&Account, IdentityError> {
        match self.lookup_name(name) {
            Ok(a) if a.kind == SidNameUse::User => Ok(a),
            _ => Err(IdentityError::NoSuchUser {
                name: name.to_string(),
            }),
        }
    }

    /// Finds a machine account by its machine name, with or without the trailing `$`, bare or
    /// qualified (`CLIENT`, `client$`, `WSOCK\CLIENT$`, `CLIENT$@wsock.test`).
    ///
    /// # Errors
    ///
    /// [`IdentityError::NoSuchUser`] if no machine account has that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::DirectorySpec;
    /// let dir = DirectorySpec::new("WSOCK").machine("SERVER").build()?;
    /// assert_eq!(dir.machine("server")?.name(), "SERVER$");
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn machine(&self, name: &str) -> Result<&Account, IdentityError> {
        let try_name = |n: &str| match self.lookup_name(n) {
            Ok(a) if a.kind == SidNameUse::Computer => Some(a),
            _ => None,
        };
        let with_dollar = match name.rsplit_once('@') {
            Some((n, d)) if !n.ends_with('$') => format!("{n}$@{d}"),
            Some(_) => name.to_string(),
            None if !name.ends_with('$') => format!("{name}$"),
            None => name.to_string(),
        };
        try_name(name)
            .or_else(|| try_name(&with_dollar))
            .ok_or_else(|| IdentityError::NoSuchUser {
                name: name.to_string(),
            })
    }

    /// Checks a user's password (the later user-level authentication), comparing in time that
    /// does not depend on where the passwords differ.
    ///
    /// # Errors
    ///
    /// [`IdentityError::LogonFailure`] for an unknown user, a user without a password, a
    /// machine account, or a wrong password: one answer for all, as Windows gives.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::{DirectorySpec, UserSpec};
    /// let dir = DirectorySpec::new("WSOCK").user(UserSpec::new("alice").password("pw")).build()?;
    /// assert!(dir.check_password("alice", "pw").is_ok());
    /// assert_eq!(dir.check_password("alice", "PW").unwrap_err().win32_code(), 1326);
    /// # Ok::<(), wsock_identity::IdentityError>(())
    /// ```
    pub fn check_password(&self, user: &str, password: &str) -> Result<&Account, IdentityError> {
        let account = self.user(user).ok();
        let stored = account.and_then(|a| a.password.as_ref());
        // Compare against something even for unknown users, so both paths do the same work.
        let ok = match stored {
            Some(p) => constant_time_eq(&p.0, password.as_bytes()),
            None => {
                let _ = constant_time_eq(password.as_bytes(), password.as_bytes());
                false
            }
        };
        match account {
            Some(a) if ok => Ok(a),
            _ => Err(IdentityError::LogonFailure),
        }
    }
}

fn next(rid: &mut u32) -> u32 {
    let r = *rid;
    *rid += 1;
    r
}
