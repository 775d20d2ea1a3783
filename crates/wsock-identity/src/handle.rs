//! [`HandleTable`]: Windows-style handles to tokens (or other objects), one table per owner.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::IdentityError;
use crate::rights::{AccessMask, GenericMapping, MAXIMUM_ALLOWED};
use crate::token::{Token, TokenInformation, TokenInformationClass};

/// `INVALID_HANDLE_VALUE` as a 64-bit value ((HANDLE)-1); never issued.
pub const INVALID_HANDLE_VALUE: u64 = u64::MAX;

/// The next handle value of the whole process. Handles step by 4 from 4, as Windows handle
/// values do, and are unique across every table, so a handle of one `Network` is never valid
/// in another.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(4);

fn allocate_handle() -> u64 {
    loop {
        let v = NEXT_HANDLE.fetch_add(4, Ordering::Relaxed);
        // Unreachable in practice (2^62 handles); skip the two reserved values on wrap.
        if v != 0 && v != INVALID_HANDLE_VALUE & !3 {
            return v;
        }
    }
}

/// A handle value: non-zero, a multiple of 4, never `INVALID_HANDLE_VALUE`. Carried as `u64`
/// (as `SOCKET_SECURITY_QUERY_INFO` carries token handles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A handle from a raw value (e.g. from the application). Whether it is open is for a
    /// table to say.
    pub const fn from_raw(raw: u64) -> Handle {
        Handle(raw)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// What an open handle refers to: the object and the access granted when it was opened.
#[derive(Debug)]
pub struct HandleEntry<T> {
    /// The object (shared by duplicated handles).
    pub object: Arc<T>,
    /// The access rights the handle was opened with (generic rights already mapped).
    pub granted_access: AccessMask,
}

impl<T> Clone for HandleEntry<T> {
    fn clone(&self) -> Self {
        HandleEntry {
            object: Arc::clone(&self.object),
            granted_access: self.granted_access,
        }
    }
}

/// A table of open handles owned by one party (one per `Network` in wsock). Thread-safe: all
/// methods take `&self`.
///
/// # Examples
///
/// ```
/// use wsock_identity::*;
/// let dir = DirectorySpec::new("W").machine("M").build()?;
/// let table: HandleTable = HandleTable::new();
/// let token = Token::peer_machine(&dir, "M", AuthMethod::Kerberos)?;
/// let h = table.insert_mapped(token, rights::TOKEN_QUERY, &GenericMapping::TOKEN);
/// assert_eq!(h.raw() % 4, 0);
/// assert!(table.get_with_access(h, rights::TOKEN_QUERY).is_ok());
/// table.close(h)?;
/// assert_eq!(table.close(h).unwrap_err().win32_code(), 6); // ERROR_INVALID_HANDLE
/// assert!(table.is_empty());
/// # Ok::<(), IdentityError>(())
/// ```
pub struct HandleTable<T = Token> {
    entries: Mutex<BTreeMap<u64, HandleEntry<T>>>,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable {
            entries: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T> fmt::Debug for HandleTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.lock();
        f.debug_map()
            .entries(map.iter().map(|(h, e)| (Handle(*h), e.granted_access)))
            .finish()
    }
}

impl<T> HandleTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        HandleTable::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, HandleEntry<T>>> {
        // A panic while holding the lock cannot leave the map half-updated (every change is
        // one insert or remove), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a handle to `object` with exactly `granted_access`.
    pub fn insert(&self, object: impl Into<Arc<T>>, granted_access: AccessMask) -> Handle {
        let h = allocate_handle();
        self.lock().insert(
            h,
            HandleEntry {
                object: object.into(),
                granted_access,
            },
        );
        Handle(h)
    }

    /// Opens a handle to `object` with `desired_access` mapped through `mapping`: generic
    /// rights become specific ones, and `MAXIMUM_ALLOWED` becomes `mapping.all` (what a token's
    /// owner gets). This is how `PeerTokenAccessMask` turns into the handles that
    /// `WSAQuerySocketSecurity` returns.
    pub fn insert_mapped(
        &self,
        object: impl Into<Arc<T>>,
        desired_access: AccessMask,
        mapping: &GenericMapping,
    ) -> Handle {
        let mut access = mapping.map(desired_access);
        if access & MAXIMUM_ALLOWED != 0 {
            access = (access & !MAXIMUM_ALLOWED) | mapping.all;
        }
        self.insert(object, access)
    }

    /// The entry of an open handle.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`] if `handle` is not open in this table.
    pub fn get(&self, handle: Handle) -> Result<HandleEntry<T>, IdentityError> {
        self.lock()
            .get(&handle.0)
            .cloned()
            .ok_or(IdentityError::InvalidHandle { handle: handle.0 })
    }

    /// The object of an open handle, if the handle was opened with every right in `needed`
    /// (e.g. `TOKEN_QUERY` for `GetTokenInformation`).
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`] if `handle` is not open; [`IdentityError::AccessDenied`]
    /// if it lacks a needed right.
    pub fn get_with_access(
        &self,
        handle: Handle,
        needed: AccessMask,
    ) -> Result<Arc<T>, IdentityError> {
        let entry = self.get(handle)?;
        if entry.granted_access & needed != needed {
            return Err(IdentityError::AccessDenied {
                needed,
                held: entry.granted_access,
            });
        }
        Ok(entry.object)
    }

    /// `DuplicateHandle` within the table: a new handle to the same object, with the same
    /// access (`None`, `DUPLICATE_SAME_ACCESS`) or with `Some(access)`, which must be a subset
    /// of the source handle's access.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`] if `handle` is not open; [`IdentityError::AccessDenied`]
    /// if `access` asks for more than the source handle has.
    pub fn duplicate(
        &self,
        handle: Handle,
        access: Option<AccessMask>,
    ) -> Result<Handle, IdentityError> {
        let mut map = self.lock();
        let entry = map
            .get(&handle.0)
            .cloned()
            .ok_or(IdentityError::InvalidHandle { handle: handle.0 })?;
        let granted = match access {
            None => entry.granted_access,
            Some(a) if a & !entry.granted_access == 0 => a,
            Some(a) => {
                return Err(IdentityError::AccessDenied {
                    needed: a,
                    held: entry.granted_access,
                })
            }
        };
        let h = allocate_handle();
        map.insert(
            h,
            HandleEntry {
                object: entry.object,
                granted_access: granted,
            },
        );
        Ok(Handle(h))
    }

    /// `CloseHandle`: closes an open handle. The object lives on while other handles (or
    /// other `Arc`s) refer to it.
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`] (`ERROR_INVALID_HANDLE`) if `handle` is not open: never
    /// issued, issued by another table, or already closed.
    pub fn close(&self, handle: Handle) -> Result<(), IdentityError> {
        self.lock()
            .remove(&handle.0)
            .map(|_| ())
            .ok_or(IdentityError::InvalidHandle { handle: handle.0 })
    }

    /// Closes every handle (when the owner goes away) and returns how many were open.
    pub fn close_all(&self) -> usize {
        let mut map = self.lock();
        let n = map.len();
        map.clear();
        n
    }

    /// The number of open handles (for leak tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The open handles, in increasing order (the order they were issued).
    pub fn handles(&self) -> Vec<Handle> {
        self.lock().keys().map(|&h| Handle(h)).collect()
    }
}

impl HandleTable<Token> {
    /// `GetTokenInformation` on a handle: checks the handle is open with the access the class
    /// needs (`TOKEN_QUERY`, or `TOKEN_QUERY_SOURCE` for `TokenSource`) and answers as plain
    /// data; the caller then runs the size probe with [`TokenInformation::check_buffer`].
    ///
    /// # Errors
    ///
    /// [`IdentityError::InvalidHandle`], [`IdentityError::AccessDenied`], or what
    /// [`Token::information`] returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsock_identity::*;
    /// let dir = DirectorySpec::new("W").machine("M").build()?;
    /// let table: HandleTable = HandleTable::new();
    /// let h = table.insert(Token::peer_machine(&dir, "M", AuthMethod::Kerberos)?, rights::TOKEN_QUERY);
    /// let info = table.token_information(h, TokenInformationClass::Type)?;
    /// assert_eq!(info, TokenInformation::Type(TokenType::Impersonation));
    /// let no_query = table.insert(Token::peer_machine(&dir, "M", AuthMethod::Kerberos)?, 0);
    /// assert_eq!(table.token_information(no_query, TokenInformationClass::Type).unwrap_err().win32_code(), 5);
    /// # Ok::<(), IdentityError>(())
    /// ```
    pub fn token_information(
        &self,
        handle: Handle,
        class: TokenInformationClass,
    ) -> Result<TokenInformation, IdentityError> {
        self.get_with_access(handle, class.required_access())?
            .information(class)
    }
}
