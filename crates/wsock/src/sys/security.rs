//! The Foundation and Security items a secure-socket program needs besides Winsock: the Win32
//! last error, `CloseHandle` on token handles, `GetTokenInformation`, `AccessCheck`, and the
//! calling thread's impersonation (`ImpersonateLoggedOnUser`, `RevertToSelf`, `OpenThreadToken`
//! on `GetCurrentThread()`). Signatures are windows-sys 0.61's; the items are also reachable
//! under `Win32::Foundation`, `Win32::Security` and `Win32::System::Threading`.
//!
//! The last error is one per thread and shared with Winsock: `GetLastError` and
//! `WSAGetLastError` read the same value, as on Windows.
//!
//! Successful calls leave the last error as it was (Win32 functions, unlike Winsock's, do not
//! clear it).
//!
//! Token handles live in a table per network (see [`crate::identity`]) and route by value from
//! any thread. Buffers are written byte by byte, so they need no particular alignment; reading
//! them back through windows-sys's structs needs the usual alignment (8 on x64).

use std::ffi::c_void;
use std::mem::size_of;

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
    ERROR_INVALID_SECURITY_DESCR, ERROR_NOACCESS, ERROR_NO_TOKEN, FALSE, HANDLE, LUID, TRUE,
    WIN32_ERROR,
};
use windows_sys::Win32::Security::{
    GENERIC_MAPPING, PRIVILEGE_SET, PSECURITY_DESCRIPTOR, PSID, SID_AND_ATTRIBUTES,
    TOKEN_ACCESS_MASK, TOKEN_GROUPS, TOKEN_INFORMATION_CLASS, TOKEN_OWNER, TOKEN_PRIMARY_GROUP,
    TOKEN_STATISTICS, TOKEN_USER,
};
use wsock_identity::{
    rights, GenericMapping, Handle, IdentityError, SecurityDescriptor, Sid, TokenInformation,
    TokenInformationClass, SID_AND_ATTRIBUTES_SIZE, TOKEN_GROUPS_HEADER, TOKEN_STATISTICS_SIZE,
    TOKEN_USER_SIZE,
};

use super::LAST_ERROR;
use crate::identity::{self, Impersonation};

// The x64 layouts the identity crate computes sizes for are windows-sys's on this target.
const _: () = assert!(size_of::<SID_AND_ATTRIBUTES>() == SID_AND_ATTRIBUTES_SIZE);
const _: () = assert!(size_of::<TOKEN_USER>() == TOKEN_USER_SIZE);
const _: () = assert!(size_of::<TOKEN_GROUPS>() == TOKEN_GROUPS_HEADER + SID_AND_ATTRIBUTES_SIZE);
const _: () = assert!(size_of::<TOKEN_STATISTICS>() == TOKEN_STATISTICS_SIZE);
const _: () = assert!(std::mem::offset_of!(TOKEN_GROUPS, Groups) == TOKEN_GROUPS_HEADER);
const _: () = assert!(size_of::<PRIVILEGE_SET>() == 20);

/// The value `GetCurrentThread` returns: the pseudo handle `(HANDLE)-2`.
const CURRENT_THREAD: isize = -2;

fn set_error(code: WIN32_ERROR) {
    LAST_ERROR.with(|e| e.set(code as i32));
}

fn fail(code: WIN32_ERROR) -> BOOL {
    set_error(code);
    FALSE
}

fn fail_with(e: &IdentityError) -> BOOL {
    fail(e.win32_code())
}

/// Like [`super::guard`], for functions reporting through the Win32 last error: a panic (a bug)
/// becomes `FALSE` with `ERROR_INVALID_PARAMETER`, and never crosses `extern "system"`.
fn guard(f: impl FnOnce() -> BOOL) -> BOOL {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| fail(ERROR_INVALID_PARAMETER))
}

fn raw_handle(h: HANDLE) -> u64 {
    h as usize as u64
}

fn to_handle(raw: u64) -> HANDLE {
    raw as usize as HANDLE
}

/// The calling thread's last error (shared with `WSAGetLastError`).
///
/// # Safety
/// None: no pointers.
pub unsafe extern "system" fn GetLastError() -> WIN32_ERROR {
    LAST_ERROR.with(|e| e.get()) as u32
}

/// Sets the calling thread's last error (what `WSAGetLastError` reads too).
///
/// # Safety
/// None: no pointers.
pub unsafe extern "system" fn SetLastError(dwerrcode: WIN32_ERROR) {
    set_error(dwerrcode);
}

/// Closes a token handle (from `WSAQuerySocketSecurity`, `OpenThreadToken`, or the wsock
/// extensions). The token lives on while other handles or an impersonation hold it.
///
/// Only token handles are closed here: sockets close with `closesocket` and event objects with
/// `WSACloseEvent` (see `docs/windows-differences.md`).
///
/// # Safety
/// None: the handle is a value.
///
/// # Errors
/// `FALSE` with `ERROR_INVALID_HANDLE` for a handle that is not open (never issued, a socket or
/// event, or already closed: a double close).
pub unsafe extern "system" fn CloseHandle(hobject: HANDLE) -> BOOL {
    guard(|| match identity::close_handle(raw_handle(hobject)) {
        Ok(()) => TRUE,
        Err(e) => fail_with(&e),
    })
}

/// Writes `bytes` at `buf + off`.
///
/// # Safety
/// `buf` must be valid for writes of `off + bytes.len()` bytes.
unsafe fn put(buf: *mut u8, off: usize, bytes: &[u8]) {
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.add(off), bytes.len());
}

/// Writes `value`'s bytes at `buf + off`, unaligned.
///
/// # Safety
/// `buf` must be valid for writes of `off + size_of::<T>()` bytes.
unsafe fn put_value<T>(buf: *mut u8, off: usize, value: T) {
    std::ptr::write_unaligned(buf.add(off).cast::<T>(), value);
}

fn luid(l: wsock_identity::Luid) -> LUID {
    LUID {
        LowPart: l.low,
        HighPart: l.high,
    }
}

/// Lays `sids` out after the fixed part starting at `*next`, returning their addresses.
///
/// # Safety
/// `buf` must be valid for writes up to the required size.
unsafe fn put_sids(buf: *mut u8, next: &mut usize, sids: &[Sid]) -> Vec<PSID> {
    let mut out = Vec::with_capacity(sids.len());
    for sid in sids {
        let bytes = sid.to_bytes();
        put(buf, *next, &bytes);
        out.push(buf.add(*next).cast::<c_void>());
        *next += bytes.len();
    }
    out
}

/// Writes `info` in its x64 Windows layout; the buffer holds at least `required_size` bytes.
///
/// # Safety
/// `buf` must be valid for writes of `info.required_size()` bytes.
unsafe fn write_information(buf: *mut u8, info: &TokenInformation) {
    match info {
        TokenInformation::User(u) => {
            let mut next = TOKEN_USER_SIZE;
            let p = put_sids(buf, &mut next, &[u.user.sid]);
            put_value(
                buf,
                0,
                TOKEN_USER {
                    User: SID_AND_ATTRIBUTES {
                        Sid: p[0],
                        Attributes: u.user.attributes.bits(),
                    },
                },
            );
        }
        TokenInformation::Groups(g) => {
            let mut next = TOKEN_GROUPS_HEADER + SID_AND_ATTRIBUTES_SIZE * g.groups.len();
            let sids: Vec<Sid> = g.groups.iter().map(|x| x.sid).collect();
            let p = put_sids(buf, &mut next, &sids);
            put_value(buf, 0, g.groups.len() as u32);
            put_value(buf, 4, 0u32);
            for (i, grp) in g.groups.iter().enumerate() {
                put_value(
                    buf,
                    TOKEN_GROUPS_HEADER + i * SID_AND_ATTRIBUTES_SIZE,
                    SID_AND_ATTRIBUTES {
                        Sid: p[i],
                        Attributes: grp.attributes.bits(),
                    },
                );
            }
        }
        TokenInformation::Owner(s) => {
            let mut next = size_of::<TOKEN_OWNER>();
            let p = put_sids(buf, &mut next, &[*s]);
            put_value(buf, 0, TOKEN_OWNER { Owner: p[0] });
        }
        TokenInformation::PrimaryGroup(s) => {
            let mut next = size_of::<TOKEN_PRIMARY_GROUP>();
            let p = put_sids(buf, &mut next, &[*s]);
            put_value(buf, 0, TOKEN_PRIMARY_GROUP { PrimaryGroup: p[0] });
        }
        TokenInformation::Type(t) => put_value(buf, 0, *t as i32),
        TokenInformation::ImpersonationLevel(l) => put_value(buf, 0, *l as i32),
        TokenInformation::Statistics(s) => put_value(
            buf,
            0,
            TOKEN_STATISTICS {
                TokenId: luid(s.token_id),
                AuthenticationId: luid(s.authentication_id),
                ExpirationTime: s.expiration_time,
                TokenType: s.token_type as i32,
                ImpersonationLevel: s.impersonation_level as i32,
                DynamicCharged: s.dynamic_charged,
                DynamicAvailable: s.dynamic_available,
                GroupCount: s.group_count,
                PrivilegeCount: s.privilege_count,
                ModifiedId: luid(s.modified_id),
            },
        ),
        _ => {}
    }
}

/// Reads one class of information about a token: `TokenUser`, `TokenGroups`, `TokenOwner`,
/// `TokenPrimaryGroup`, `TokenType`, `TokenImpersonationLevel` and `TokenStatistics`, in the
/// x64 layouts. SIDs follow the fixed part (after the whole array for `TokenGroups`) and the
/// `PSID` pointers point into the caller's buffer.
///
/// Size probe: with a buffer shorter than needed (a null buffer with length 0 included) the
/// call fails with `ERROR_INSUFFICIENT_BUFFER` and `*returnlength` is the size needed; call
/// again with that many bytes.
///
/// # Safety
/// `tokeninformation` must be valid for writes of `tokeninformationlength` bytes, and
/// `returnlength` for one `u32`.
///
/// # Errors
/// `FALSE` with: `ERROR_INVALID_HANDLE` (not an open token handle), `ERROR_ACCESS_DENIED` (the
/// handle lacks `TOKEN_QUERY`), `ERROR_INVALID_PARAMETER` (a class wsock does not model, an
/// unknown class, `TokenImpersonationLevel` of a primary token), `ERROR_NOACCESS` (null
/// `returnlength`, or a null buffer with a non-zero length), `ERROR_INSUFFICIENT_BUFFER`.
pub unsafe extern "system" fn GetTokenInformation(
    tokenhandle: HANDLE,
    tokeninformationclass: TOKEN_INFORMATION_CLASS,
    tokeninformation: *mut c_void,
    tokeninformationlength: u32,
    returnlength: *mut u32,
) -> BOOL {
    guard(|| {
        let h = raw_handle(tokenhandle);
        let Some(state) = identity::state_of_handle(h) else {
            return fail(ERROR_INVALID_HANDLE);
        };
        let Some(class) = u32::try_from(tokeninformationclass)
            .ok()
            .and_then(TokenInformationClass::from_raw)
        else {
            return fail(ERROR_INVALID_PARAMETER);
        };
        let info = match state.handles.token_information(Handle::from_raw(h), class) {
            Ok(i) => i,
            Err(e) => return fail_with(&e),
        };
        if returnlength.is_null() {
            return fail(ERROR_NOACCESS);
        }
        if tokeninformation.is_null() && tokeninformationlength != 0 {
            return fail(ERROR_NOACCESS);
        }
        let required = info.required_size();
        // SAFETY: checked non-null; the caller vouches for validity.
        unsafe { returnlength.write_unaligned(required as u32) };
        if (tokeninformationlength as usize) < required || tokeninformation.is_null() {
            return fail(ERROR_INSUFFICIENT_BUFFER);
        }
        // SAFETY: the caller's buffer holds `tokeninformationlength >= required` bytes.
        unsafe { write_information(tokeninformation.cast::<u8>(), &info) };
        TRUE
    })
}

/// Upper bound on the bytes read through a `PSECURITY_DESCRIPTOR` (offsets beyond it are
/// refused as an invalid descriptor rather than followed).
const MAX_SD_BYTES: usize = 1 << 20;

/// Reads a self-relative security descriptor through a pointer, following its header to find
/// its length.
///
/// # Safety
/// `p` must point to a valid self-relative descriptor (every part its header names readable).
unsafe fn read_self_relative(p: *const u8) -> Result<SecurityDescriptor, IdentityError> {
    let invalid = IdentityError::InvalidSecurityDescriptor {
        what: "not a self-relative security descriptor",
    };
    let mut header = [0u8; 20];
    std::ptr::copy_nonoverlapping(p, header.as_mut_ptr(), 20);
    let control = u16::from_le_bytes([header[2], header[3]]);
    if header[0] != 1 || control & 0x8000 == 0 {
        return Err(invalid);
    }
    let off = |i: usize| {
        u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]) as usize
    };
    let mut end = 20usize;
    for (i, is_acl) in [(4, false), (8, false), (12, true), (16, true)] {
        let o = off(i);
        if o == 0 {
            continue;
        }
        if !(20..=MAX_SD_BYTES).contains(&o) {
            return Err(invalid);
        }
        let len = if is_acl {
            let mut acl = [0u8; 4];
            std::ptr::copy_nonoverlapping(p.add(o), acl.as_mut_ptr(), 4);
            u16::from_le_bytes([acl[2], acl[3]]) as usize
        } else {
            let count = *p.add(o + 1) as usize;
            8 + 4 * count
        };
        end = end.max(o + len);
    }
    let bytes = std::slice::from_raw_parts(p, end);
    SecurityDescriptor::from_self_relative(bytes)
}

/// Whether the token behind `clienttoken` may have `desiredaccess` to an object protected by
/// the self-relative descriptor at `psecuritydescriptor` (for example one made with
/// [`crate::ext::security_descriptor_from_sddl`]).
///
/// As on Windows: the call returns `TRUE` when the check ran, with the decision in
/// `*accessstatus` (and `ERROR_ACCESS_DENIED` as the last error on a denial) and the rights in
/// `*grantedaccess`; `desiredaccess` must hold no generic rights (map them first);
/// `MAXIMUM_ALLOWED` asks for everything the descriptor allows. No privilege is ever used, so
/// `*privilegeset` gets an empty `PRIVILEGE_SET` (20 bytes needed).
///
/// # Safety
/// `psecuritydescriptor` must point to a valid self-relative descriptor; the other pointers
/// must be valid for their types (`privilegeset` for `*privilegesetlength` bytes).
///
/// # Errors
/// `FALSE` with: `ERROR_INVALID_SECURITY_DESCR` (null, absolute or malformed descriptor, or no
/// owner or group), `ERROR_INVALID_HANDLE` (not an open token handle), `ERROR_ACCESS_DENIED`
/// (handle without `TOKEN_QUERY`), `ERROR_NO_IMPERSONATION_TOKEN` (a primary token),
/// `ERROR_BAD_IMPERSONATION_LEVEL` (an anonymous token), `ERROR_GENERIC_NOT_MAPPED`,
/// `ERROR_NOACCESS` (null `genericmapping`, `privilegesetlength`, `grantedaccess` or
/// `accessstatus`, or a null `privilegeset` with a non-zero length, which is left as it was),
/// `ERROR_INSUFFICIENT_BUFFER` (`*privilegesetlength` < 20; it is set to 20). On failure
/// `*grantedaccess` and `*accessstatus` are not written. Success leaves the last error as it
/// was, except that a denial sets it to the reason.
pub unsafe extern "system" fn AccessCheck(
    psecuritydescriptor: PSECURITY_DESCRIPTOR,
    clienttoken: HANDLE,
    desiredaccess: u32,
    genericmapping: *const GENERIC_MAPPING,
    privilegeset: *mut PRIVILEGE_SET,
    privilegesetlength: *mut u32,
    grantedaccess: *mut u32,
    accessstatus: *mut BOOL,
) -> BOOL {
    guard(|| {
        if psecuritydescriptor.is_null() {
            return fail(ERROR_INVALID_SECURITY_DESCR);
        }
        // SAFETY: non-null; the caller vouches for the descriptor.
        let sd = match unsafe { read_self_relative(psecuritydescriptor.cast::<u8>()) } {
            Ok(sd) => sd,
            Err(e) => return fail_with(&e),
        };
        let h = raw_handle(clienttoken);
        let token = match identity::state_of_handle(h)
            .ok_or(IdentityError::InvalidHandle { handle: h })
            .and_then(|s| {
                s.handles
                    .get_with_access(Handle::from_raw(h), rights::TOKEN_QUERY)
            }) {
            Ok(t) => t,
            Err(e) => return fail_with(&e),
        };
        if genericmapping.is_null()
            || privilegesetlength.is_null()
            || grantedaccess.is_null()
            || accessstatus.is_null()
        {
            return fail(ERROR_NOACCESS);
        }
        // SAFETY: non-null, caller-valid.
        let m = unsafe { genericmapping.read_unaligned() };
        let mapping = GenericMapping {
            read: m.GenericRead,
            write: m.GenericWrite,
            execute: m.GenericExecute,
            all: m.GenericAll,
        };
        let outcome = match wsock_identity::access_check(&sd, &token, desiredaccess, &mapping) {
            Ok(o) => o,
            Err(e) => return fail_with(&e),
        };
        // Windows' order (recorded by Wine's advapi32 tests, `test_AccessCheck`): a null
        // privilege set with a non-zero length is ERROR_NOACCESS, length untouched; a length
        // under 20 is ERROR_INSUFFICIENT_BUFFER with the length set to 20.
        let needed = size_of::<PRIVILEGE_SET>() as u32;
        // SAFETY: non-null, caller-valid.
        let have = unsafe { privilegesetlength.read_unaligned() };
        if privilegeset.is_null() && have != 0 {
            return fail(ERROR_NOACCESS);
        }
        if have < needed {
            // SAFETY: as above.
            unsafe { privilegesetlength.write_unaligned(needed) };
            return fail(ERROR_INSUFFICIENT_BUFFER);
        }
        // SAFETY: the caller's privilege set holds `have >= 20` bytes; pointers are non-null.
        unsafe {
            let ps = privilegeset.cast::<u8>();
            put_value(ps, 0, 0u32); // PrivilegeCount
            put_value(ps, 4, 0u32); // Control
            grantedaccess.write_unaligned(outcome.granted);
            accessstatus.write_unaligned(if outcome.is_granted() { TRUE } else { FALSE });
        }
        // A denial sets the reason (ERROR_ACCESS_DENIED, ERROR_PRIVILEGE_NOT_HELD); a grant
        // leaves the last error alone, as Windows does.
        if !outcome.is_granted() {
            set_error(outcome.status);
        }
        TRUE
    })
}

/// The pseudo handle of the calling thread (`(HANDLE)-2`), for `OpenThreadToken`.
///
/// # Safety
/// None.
pub unsafe extern "system" fn GetCurrentThread() -> HANDLE {
    CURRENT_THREAD as HANDLE
}

/// Opens a handle to the calling thread's impersonation token (the task's, inside a
/// `wsock::net::impersonate` scope), with `desiredaccess` (generic rights and
/// `MAXIMUM_ALLOWED` mapped with the token mapping). `openasself` changes nothing in wsock.
///
/// # Safety
/// `tokenhandle` must be valid for one `HANDLE`.
///
/// # Errors
/// `FALSE` with: `ERROR_INVALID_HANDLE` (a thread handle other than `GetCurrentThread()`),
/// `ERROR_NOACCESS` (null `tokenhandle`), `ERROR_NO_TOKEN` (the thread is not impersonating;
/// `*tokenhandle` is set to null).
pub unsafe extern "system" fn OpenThreadToken(
    threadhandle: HANDLE,
    desiredaccess: TOKEN_ACCESS_MASK,
    _openasself: BOOL,
    tokenhandle: *mut HANDLE,
) -> BOOL {
    guard(|| {
        if threadhandle as isize != CURRENT_THREAD {
            return fail(ERROR_INVALID_HANDLE);
        }
        if tokenhandle.is_null() {
            return fail(ERROR_NOACCESS);
        }
        match identity::current_impersonation() {
            Some(imp) => {
                let h = imp.open(desiredaccess);
                // SAFETY: non-null, caller-valid.
                unsafe { tokenhandle.write_unaligned(to_handle(h)) };
                TRUE
            }
            None => {
                // SAFETY: as above.
                unsafe { tokenhandle.write_unaligned(std::ptr::null_mut()) };
                fail(ERROR_NO_TOKEN)
            }
        }
    })
}

/// Makes the calling thread impersonate the token behind `htoken` (an impersonation token
/// opened with `TOKEN_QUERY | TOKEN_IMPERSONATE`, or a primary token opened with
/// `TOKEN_QUERY | TOKEN_DUPLICATE`), until `RevertToSelf`.
///
/// # Safety
/// None: the handle is a value.
///
/// # Errors
/// `FALSE` with `ERROR_INVALID_HANDLE` or `ERROR_ACCESS_DENIED`.
pub unsafe extern "system" fn ImpersonateLoggedOnUser(htoken: HANDLE) -> BOOL {
    guard(|| match Impersonation::from_handle(raw_handle(htoken)) {
        Ok(imp) => {
            identity::set_thread(Some(imp));
            TRUE
        }
        Err(e) => fail_with(&e),
    })
}

/// Ends the calling thread's impersonation (a no-op without one).
///
/// # Safety
/// None.
pub unsafe extern "system" fn RevertToSelf() -> BOOL {
    guard(|| {
        identity::set_thread(None);
        TRUE
    })
}
