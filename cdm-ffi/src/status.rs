//! Result codes of every function, the per-thread last error message and status names.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use normal_world::EmeError;

use crate::boundary::{copy_out, guard_quiet};

/// The result of every `tee_cdm_*` function that can fail.
///
/// `TEE_CDM_STATUS_OK` (0) is success. Codes 1..=99 are problems with the call itself,
/// found at the C boundary before anything else happens (the call then changed nothing);
/// 100..=199 are the errors of the EME API (named after EME's exceptions); 200.. are problems
/// of the platform a secure world is built on. The values are stable.
///
/// Every failing call also records a readable message for its thread:
/// `tee_cdm_last_error_message`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmStatus {
    /// Success.
    Ok = 0,
    /// A required pointer is NULL (an out-parameter, a handle, or data with a non-zero length).
    NullPointer = 1,
    /// An output buffer is too small. Functions with a `needed` out-parameter (or an
    /// `message_len` field) report the size required there; call again with a buffer that
    /// large. Nothing was consumed.
    BufferTooSmall = 2,
    /// An argument is malformed: an unknown enumeration value, a string that is not UTF-8 or
    /// has no NUL within `TEE_CDM_MAX_STRING_LEN` bytes, a misaligned pointer, a length too
    /// large for the address space, buffers that overlap where they must not, an index out of
    /// range, a secure-world configuration out of bounds.
    InvalidArgument = 3,
    /// The handle does not name a live object of the expected type (already freed, never
    /// created, or a handle of another type).
    BadHandle = 4,
    /// A panic inside the library was caught at the boundary (a bug: please report it). A
    /// secure world it happened in is unusable afterwards (every call answers this code);
    /// destroy it.
    Panic = 5,
    /// Memory could not be allocated.
    OutOfMemory = 6,
    /// EME `TypeError`: an argument is missing, empty, too large or malformed (e.g. init data
    /// or a license that does not parse).
    TypeError = 100,
    /// EME `NotSupportedError`: the key system, configuration, session type, init data type or
    /// operation is not supported; also a secure world that could not be started.
    NotSupported = 101,
    /// EME `InvalidStateError`: the object is not in a state that allows the call (e.g. a
    /// second `generate_request`, `update` before `generate_request`, any call on a closed
    /// session).
    InvalidState = 102,
    /// EME `QuotaExceededError`: a limit of the secure world (sessions, keys, stored licenses,
    /// memory) is reached.
    QuotaExceeded = 103,
    /// EME `InvalidAccessError`: the output asked for is not allowed by the key's policy.
    InvalidAccess = 104,
    /// The secure world is gone (its process died or the transport broke). Every session of
    /// the MediaKeys is closed with `hardware-context-reset`; create a new MediaKeys.
    /// (Script sees EME `InvalidStateError`.)
    SecureWorldLost = 105,
    /// No session holds a usable key for the sample's key ID (the media element's "waiting
    /// for key" state, EME §7.3.4). Not an exception of EME.
    WaitingForKey = 106,
    /// The sample could not be decrypted (malformed description or data). Deliberately
    /// uninformative. Not an exception of EME (a media element reports `MEDIA_ERR_DECODE`).
    DecryptError = 107,
    /// A platform service failed while building a secure world (the device root key could not
    /// be read).
    PlatformError = 200,
}

impl TeeCdmStatus {
    /// Every status, in value order.
    pub const ALL: &'static [TeeCdmStatus] = &[
        TeeCdmStatus::Ok,
        TeeCdmStatus::NullPointer,
        TeeCdmStatus::BufferTooSmall,
        TeeCdmStatus::InvalidArgument,
        TeeCdmStatus::BadHandle,
        TeeCdmStatus::Panic,
        TeeCdmStatus::OutOfMemory,
        TeeCdmStatus::TypeError,
        TeeCdmStatus::NotSupported,
        TeeCdmStatus::InvalidState,
        TeeCdmStatus::QuotaExceeded,
        TeeCdmStatus::InvalidAccess,
        TeeCdmStatus::SecureWorldLost,
        TeeCdmStatus::WaitingForKey,
        TeeCdmStatus::DecryptError,
        TeeCdmStatus::PlatformError,
    ];

    /// The status's name as a static NUL-terminated string.
    fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            TeeCdmStatus::Ok => c"Ok",
            TeeCdmStatus::NullPointer => c"NullPointer",
            TeeCdmStatus::BufferTooSmall => c"BufferTooSmall",
            TeeCdmStatus::InvalidArgument => c"InvalidArgument",
            TeeCdmStatus::BadHandle => c"BadHandle",
            TeeCdmStatus::Panic => c"Panic",
            TeeCdmStatus::OutOfMemory => c"OutOfMemory",
            TeeCdmStatus::TypeError => c"TypeError",
            TeeCdmStatus::NotSupported => c"NotSupportedError",
            TeeCdmStatus::InvalidState => c"InvalidStateError",
            TeeCdmStatus::QuotaExceeded => c"QuotaExceededError",
            TeeCdmStatus::InvalidAccess => c"InvalidAccessError",
            TeeCdmStatus::SecureWorldLost => c"SecureWorldLost",
            TeeCdmStatus::WaitingForKey => c"WaitingForKey",
            TeeCdmStatus::DecryptError => c"DecryptError",
            TeeCdmStatus::PlatformError => c"PlatformError",
        }
    }
}

/// Why a call failed: the code returned to C and the message kept for
/// `tee_cdm_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: TeeCdmStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: TeeCdmStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(TeeCdmStatus::NullPointer, format!("`{what}` is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(TeeCdmStatus::InvalidArgument, message)
    }
}

impl From<EmeError> for Failure {
    fn from(e: EmeError) -> Failure {
        let status = match &e {
            EmeError::TypeError(_) => TeeCdmStatus::TypeError,
            EmeError::NotSupportedError(_) => TeeCdmStatus::NotSupported,
            EmeError::InvalidStateError(_) => TeeCdmStatus::InvalidState,
            EmeError::QuotaExceededError(_) => TeeCdmStatus::QuotaExceeded,
            EmeError::InvalidAccessError(_) => TeeCdmStatus::InvalidAccess,
            EmeError::SecureWorldLost(_) => TeeCdmStatus::SecureWorldLost,
            EmeError::WaitingForKey(_) => TeeCdmStatus::WaitingForKey,
            EmeError::DecryptError(_) => TeeCdmStatus::DecryptError,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    /// The message of this thread's most recent failed call (`None` after a success).
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error. Interior NULs (impossible in messages made
/// from C strings, but cheap to rule out) become spaces.
pub(crate) fn set_last_error(function: &str, message: &str) {
    let text = format!("{function}: {message}").replace('\0', " ");
    let c = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(c));
}

pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = None);
}

/// Copies the message of the most recent failed `tee_cdm_*` call **on the calling thread**
/// into `buf` as a NUL-terminated UTF-8 string. A call that succeeds clears the message
/// (the empty string is copied then); this function itself never changes it, so a
/// `TEE_CDM_STATUS_BUFFER_TOO_SMALL` answer can be retried.
///
/// `*needed` is always set (when `needed` is not NULL) to the bytes required, the NUL
/// included. `buf` may be NULL only if `buf_cap` is 0.
///
/// Messages name the function and say what was wrong; they never contain key material.
///
/// Thread safety: any thread; each thread has its own last error.
///
/// Errors: `TEE_CDM_STATUS_NULL_POINTER` (`needed` is NULL, or `buf` is NULL with a non-zero
/// `buf_cap`), `TEE_CDM_STATUS_BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `buf` must be NULL or valid for writes of `buf_cap` bytes; `needed` must be NULL or point to
/// a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_last_error_message(
    buf: *mut c_char,
    buf_cap: usize,
    needed: *mut usize,
) -> TeeCdmStatus {
    guard_quiet(|| {
        let text = LAST_ERROR.with(|slot| {
            slot.borrow()
                .as_ref()
                .map(|c| c.as_bytes_with_nul().to_vec())
        });
        let text = text.unwrap_or_else(|| vec![0]);
        // SAFETY: the caller's contract above is copy_out's.
        unsafe { copy_out(&text, buf.cast::<u8>(), buf_cap, needed, "buf") }
    })
}

/// The name of a status code (`"Ok"`, `"TypeError"`, `"QuotaExceededError"`, …) as a static
/// NUL-terminated string that lives as long as the program; `"Unknown"` for a value that is not
/// a status. Never NULL; never free it.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn tee_cdm_status_name(status: u32) -> *const c_char {
    TeeCdmStatus::ALL
        .iter()
        .find(|s| **s as u32 == status)
        .map_or(c"Unknown", |s| s.c_name())
        .as_ptr()
}
