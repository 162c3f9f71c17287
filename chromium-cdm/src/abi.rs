//! Chromium's library-CDM interface (`media/cdm/api/content_decryption_module.h`, module
//! version 4, CDM interface 10, host interface 10) in the Itanium C++ ABI of x86_64 and
//! aarch64 Linux, written in Rust: the crate's one module with `unsafe`.
//!
//! Layout facts this module relies on:
//! - A polymorphic object's first word points at its virtual table's first function slot; the
//!   slots follow the declaration order of the virtual functions. The classes have no bases.
//! - Each class declares its (protected, virtual) destructor last: its two slots (complete
//!   object destructor, then deleting destructor) come after every other method. The browser
//!   never calls them (objects are released through `Destroy()`); our table fills them with
//!   functions that do nothing, and the tables we read are read only up to the methods used.
//! - A method is a C function with `this` as its first argument; `const T&` is a pointer;
//!   `bool` is C's `bool`; the interface's enums are `uint32_t`; `cdm::Time` is `double`.
//! - `InputBuffer_2` is 80 bytes on 64-bit targets, with explicit 32-bit padding after each
//!   32-bit size that precedes a pointer (the header's own static assertions).
//!
//! Every entry point checks its pointers and lengths, catches panics (none may unwind into the
//! browser; a promise is then rejected, a decrypt fails) and never blocks on re-entry.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, TryLockError};

use crate::cdm::{log, Cdm, Exception, Host, InputSample, Status};
use crate::stats::Stats;

/// The CDM interface version this library implements (`ContentDecryptionModule_10`).
pub const CDM_INTERFACE_VERSION: i32 = 10;
/// The host interface version it asks the browser for (`Host_10`).
pub const HOST_INTERFACE_VERSION: i32 = 10;
/// The key system Chromium loads library CDMs for in testing.
pub const KEY_SYSTEM: &str = "org.chromium.externalclearkey";

/// Largest sample accepted from the browser (the secure world's limit: 16 MiB).
const MAX_SAMPLE_LEN: u32 = 16 << 20;
/// Most subsamples in one sample (the secure world's limit).
const MAX_SUBSAMPLES: u32 = 576;
/// Longest key ID (EME: 1..=512 bytes).
const MAX_KEY_ID_LEN: u32 = 512;
/// Longest IV.
const MAX_IV_LEN: u32 = 16;
/// Largest init data, license response or server certificate (EME: 64 KiB).
const MAX_MESSAGE_LEN: u32 = 64 << 10;
/// Longest session ID accepted from the browser.
const MAX_SESSION_ID_LEN: u32 = 256;

/// `cdm::SubsampleEntry`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SubsampleEntry {
    /// Bytes in the clear.
    pub clear_bytes: u32,
    /// Encrypted bytes after them.
    pub cipher_bytes: u32,
}

/// `cdm::Pattern`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    /// Encrypted 16-byte blocks.
    pub crypt_byte_block: u32,
    /// Clear 16-byte blocks after them.
    pub skip_byte_block: u32,
}

/// `cdm::InputBuffer_2`: one sample to decrypt. Borrowed from the browser for one call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct InputBuffer2 {
    /// The sample.
    pub data: *const u8,
    /// Bytes at `data`.
    pub data_size: u32,
    /// `cdm::EncryptionScheme`: 0 unencrypted, 1 `cenc`, 2 `cbcs`.
    pub encryption_scheme: u32,
    /// The key ID.
    pub key_id: *const u8,
    /// Bytes at `key_id`.
    pub key_id_size: u32,
    /// Padding.
    pub _pad0: u32,
    /// The IV.
    pub iv: *const u8,
    /// Bytes at `iv`.
    pub iv_size: u32,
    /// Padding.
    pub _pad1: u32,
    /// The subsample map.
    pub subsamples: *const SubsampleEntry,
    /// Entries at `subsamples`.
    pub num_subsamples: u32,
    /// Padding.
    pub _pad2: u32,
    /// The pattern (`cbcs`).
    pub pattern: Pattern,
    /// Presentation time stamp in microseconds.
    pub timestamp: i64,
}

/// `cdm::KeyInformation`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KeyInformation {
    /// The key ID.
    pub key_id: *const u8,
    /// Bytes at `key_id`.
    pub key_id_size: u32,
    /// A `cdm::KeyStatus` value.
    pub status: u32,
    /// 0 (no system code).
    pub system_code: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<InputBuffer2>() == 80);
    assert!(std::mem::size_of::<KeyInformation>() == 24);
    assert!(std::mem::size_of::<SubsampleEntry>() == 8);
    assert!(std::mem::size_of::<Pattern>() == 8);
};

/// `cdm::Buffer` (the browser's): its object starts with its table.
#[repr(C)]
pub struct Buffer {
    vtbl: *const BufferVtbl,
}

/// The methods of `cdm::Buffer`, in declaration order.
#[repr(C)]
struct BufferVtbl {
    destroy: unsafe extern "C" fn(*mut Buffer),
    capacity: unsafe extern "C" fn(*const Buffer) -> u32,
    data: unsafe extern "C" fn(*mut Buffer) -> *mut u8,
    set_size: unsafe extern "C" fn(*mut Buffer, u32),
    size: unsafe extern "C" fn(*const Buffer) -> u32,
}

/// `cdm::DecryptedBlock` (the browser's).
#[repr(C)]
pub struct DecryptedBlock {
    vtbl: *const DecryptedBlockVtbl,
}

/// The methods of `cdm::DecryptedBlock`, in declaration order.
#[repr(C)]
struct DecryptedBlockVtbl {
    set_decrypted_buffer: unsafe extern "C" fn(*mut DecryptedBlock, *mut Buffer),
    decrypted_buffer: unsafe extern "C" fn(*mut DecryptedBlock) -> *mut Buffer,
    set_timestamp: unsafe extern "C" fn(*mut DecryptedBlock, i64),
    timestamp: unsafe extern "C" fn(*const DecryptedBlock) -> i64,
}

/// `cdm::Host_10` (the browser's).
#[repr(C)]
pub struct Host10 {
    vtbl: *const Host10Vtbl,
}

/// The first methods of `cdm::Host_10`, in declaration order (the rest — platform
/// challenge, output protection, deferred initialization, file IO, storage ID — are unused,
/// and so not declared: only this prefix of the table is read).
#[repr(C)]
struct Host10Vtbl {
    allocate: unsafe extern "C" fn(*mut Host10, u32) -> *mut Buffer,
    set_timer: unsafe extern "C" fn(*mut Host10, i64, *mut c_void),
    _get_current_wall_time: unsafe extern "C" fn(*mut Host10) -> f64,
    on_initialized: unsafe extern "C" fn(*mut Host10, bool),
    on_resolve_key_status_promise: unsafe extern "C" fn(*mut Host10, u32, u32),
    on_resolve_new_session_promise: unsafe extern "C" fn(*mut Host10, u32, *const c_char, u32),
    on_resolve_promise: unsafe extern "C" fn(*mut Host10, u32),
    on_reject_promise: unsafe extern "C" fn(*mut Host10, u32, u32, u32, *const c_char, u32),
    on_session_message:
        unsafe extern "C" fn(*mut Host10, *const c_char, u32, u32, *const c_char, u32),
    on_session_keys_change:
        unsafe extern "C" fn(*mut Host10, *const c_char, u32, bool, *const KeyInformation, u32),
    _on_expiration_change: unsafe extern "C" fn(*mut Host10, *const c_char, u32, f64),
    on_session_closed: unsafe extern "C" fn(*mut Host10, *const c_char, u32),
}

/// The browser's host, valid from `CreateCdmInstance` until our `Destroy` (the interface's
/// contract), checked non-null when the instance was created.
struct BrowserHost(*mut Host10);

// SAFETY: (Send) the host pointer is only used from the thread the browser calls the CDM on;
// the CDM object (and this pointer in it) sits behind a mutex.
unsafe impl Send for BrowserHost {}

/// A length the interface passes as `uint32_t` (our strings and messages are far below).
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl BrowserHost {
    fn vtbl(&self) -> &Host10Vtbl {
        // SAFETY: `self.0` is the live host object (see the type's doc); its first word is
        // its table, which lives as long as the class's code.
        unsafe { &*(*self.0).vtbl }
    }
}

impl Host for BrowserHost {
    fn on_initialized(&self, success: bool) {
        // SAFETY: a method of the live host, with its declared arguments.
        unsafe { (self.vtbl().on_initialized)(self.0, success) }
    }

    fn resolve_key_status(&self, promise_id: u32, key_status: u32) {
        // SAFETY: as above.
        unsafe { (self.vtbl().on_resolve_key_status_promise)(self.0, promise_id, key_status) }
    }

    fn resolve_new_session(&self, promise_id: u32, session_id: &str) {
        let (p, n) = (session_id.as_ptr().cast(), len32(session_id.len()));
        // SAFETY: as above; `p`/`n` describe a live string the browser copies.
        unsafe { (self.vtbl().on_resolve_new_session_promise)(self.0, promise_id, p, n) }
    }

    fn resolve(&self, promise_id: u32) {
        // SAFETY: as above.
        unsafe { (self.vtbl().on_resolve_promise)(self.0, promise_id) }
    }

    fn reject(&self, promise_id: u32, exception: Exception, message: &str) {
        let (p, n) = (message.as_ptr().cast(), len32(message.len()));
        // SAFETY: as above.
        unsafe { (self.vtbl().on_reject_promise)(self.0, promise_id, exception as u32, 0, p, n) }
    }

    fn session_message(&self, session_id: &str, message_type: u32, message: &[u8]) {
        let (s, sn) = (session_id.as_ptr().cast(), len32(session_id.len()));
        let (m, mn) = (message.as_ptr().cast(), len32(message.len()));
        // SAFETY: as above.
        unsafe { (self.vtbl().on_session_message)(self.0, s, sn, message_type, m, mn) }
    }

    fn session_keys_change(
        &self,
        session_id: &str,
        has_new_usable_key: bool,
        keys: &[(&[u8], u32)],
    ) {
        let info: Vec<KeyInformation> = keys
            .iter()
            .map(|&(kid, status)| KeyInformation {
                key_id: kid.as_ptr(),
                key_id_size: len32(kid.len()),
                status,
                system_code: 0,
            })
            .collect();
        let (s, sn) = (session_id.as_ptr().cast(), len32(session_id.len()));
        let (k, kn) = (info.as_ptr(), len32(info.len()));
        // SAFETY: as above; `info` and the key IDs it points at outlive the call.
        // (No `OnExpirationChange`: Clear Key licenses carry no expiration, and the
        // interface asks for it only when the expiration changes.)
        unsafe { (self.vtbl().on_session_keys_change)(self.0, s, sn, has_new_usable_key, k, kn) }
    }

    fn session_closed(&self, session_id: &str) {
        let (s, sn) = (session_id.as_ptr().cast(), len32(session_id.len()));
        // SAFETY: as above.
        unsafe { (self.vtbl().on_session_closed)(self.0, s, sn) }
    }

    fn set_timer(&self, delay_ms: i64) {
        // SAFETY: as above; the context is unused (null).
        unsafe { (self.vtbl().set_timer)(self.0, delay_ms, std::ptr::null_mut()) }
    }
}

/// Our `cdm::ContentDecryptionModule_10` object: the table first, then our state.
#[repr(C)]
struct CdmObject {
    vtbl: &'static CdmVtbl,
    cdm: Mutex<Cdm<BrowserHost>>,
}

/// The methods of `cdm::ContentDecryptionModule_10`, in declaration order, then the two
/// destructor slots.
#[repr(C)]
struct CdmVtbl {
    initialize: unsafe extern "C" fn(*mut CdmObject, bool, bool, bool),
    get_status_for_policy: unsafe extern "C" fn(*mut CdmObject, u32, *const u32),
    set_server_certificate: unsafe extern "C" fn(*mut CdmObject, u32, *const u8, u32),
    create_session_and_generate_request:
        unsafe extern "C" fn(*mut CdmObject, u32, u32, u32, *const u8, u32),
    load_session: unsafe extern "C" fn(*mut CdmObject, u32, u32, *const c_char, u32),
    update_session: unsafe extern "C" fn(*mut CdmObject, u32, *const c_char, u32, *const u8, u32),
    close_session: unsafe extern "C" fn(*mut CdmObject, u32, *const c_char, u32),
    remove_session: unsafe extern "C" fn(*mut CdmObject, u32, *const c_char, u32),
    timer_expired: unsafe extern "C" fn(*mut CdmObject, *mut c_void),
    decrypt: unsafe extern "C" fn(*mut CdmObject, *const InputBuffer2, *mut DecryptedBlock) -> u32,
    initialize_audio_decoder: unsafe extern "C" fn(*mut CdmObject, *const c_void) -> u32,
    initialize_video_decoder: unsafe extern "C" fn(*mut CdmObject, *const c_void) -> u32,
    deinitialize_decoder: unsafe extern "C" fn(*mut CdmObject, u32),
    reset_decoder: unsafe extern "C" fn(*mut CdmObject, u32),
    decrypt_and_decode_frame:
        unsafe extern "C" fn(*mut CdmObject, *const InputBuffer2, *mut c_void) -> u32,
    decrypt_and_decode_samples:
        unsafe extern "C" fn(*mut CdmObject, *const InputBuffer2, *mut c_void) -> u32,
    on_platform_challenge_response: unsafe extern "C" fn(*mut CdmObject, *const c_void),
    on_query_output_protection_status: unsafe extern "C" fn(*mut CdmObject, u32, u32, u32),
    on_storage_id: unsafe extern "C" fn(*mut CdmObject, u32, *const u8, u32),
    destroy: unsafe extern "C" fn(*mut CdmObject),
    destructor_complete: unsafe extern "C" fn(*mut CdmObject),
    destructor_deleting: unsafe extern "C" fn(*mut CdmObject),
}

static CDM_VTBL: CdmVtbl = CdmVtbl {
    initialize,
    get_status_for_policy,
    set_server_certificate,
    create_session_and_generate_request,
    load_session,
    update_session,
    close_session,
    remove_session,
    timer_expired,
    decrypt,
    initialize_audio_decoder,
    initialize_video_decoder,
    deinitialize_decoder,
    reset_decoder,
    decrypt_and_decode_frame,
    decrypt_and_decode_samples,
    on_platform_challenge_response,
    on_query_output_protection_status,
    on_storage_id,
    destroy,
    destructor_complete: never_called_destructor,
    destructor_deleting: never_called_destructor,
};

/// Runs `f` on the CDM behind `this`, catching panics; `fallback` is what a panic, a null
/// object or a re-entrant call (the CDM already busy on this thread) answers, and gets the
/// CDM when it can (to reject a promise).
///
/// # Safety
///
/// 1. `this` is null or a `CdmObject` made by `CreateCdmInstance` and not yet destroyed.
unsafe fn with_cdm<R>(
    this: *mut CdmObject,
    what: &str,
    f: impl FnOnce(&mut Cdm<BrowserHost>) -> R,
    fallback: impl FnOnce(Option<&Cdm<BrowserHost>>) -> R,
) -> R {
    // SAFETY: precondition 1; only shared references to the object are made.
    let Some(object) = (unsafe { this.as_ref() }) else {
        log(&format!("{what}: null CDM object"));
        return fallback(None);
    };
    let mut cdm = match object.cdm.try_lock() {
        Ok(cdm) => cdm,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            log(&format!("{what}: re-entrant call refused"));
            return fallback(None);
        }
    };
    match catch_unwind(AssertUnwindSafe(|| f(&mut cdm))) {
        Ok(r) => r,
        Err(_) => {
            log(&format!("{what}: internal error (panic caught)"));
            let cdm = &*cdm;
            catch_unwind(AssertUnwindSafe(|| fallback(Some(cdm))))
                .unwrap_or_else(|_| std::process::abort())
        }
    }
}

/// [`with_cdm`] for a call with a promise: a failure rejects it.
///
/// # Safety
///
/// As [`with_cdm`].
unsafe fn with_promise(
    this: *mut CdmObject,
    what: &str,
    promise_id: u32,
    f: impl FnOnce(&mut Cdm<BrowserHost>),
) {
    let fallback = |cdm: Option<&Cdm<BrowserHost>>| {
        if let Some(cdm) = cdm {
            cdm.host().reject(
                promise_id,
                Exception::InvalidState,
                "tee-cdm: internal error",
            );
        }
    };
    // SAFETY: the caller's contract.
    unsafe { with_cdm(this, what, f, fallback) }
}

/// A byte slice the browser passed as pointer and length; `None` if the pointer is null with
/// a non-zero length or the length is above `max`.
///
/// # Safety
///
/// 1. A non-null `ptr` points at `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: u32, max: u32) -> Option<&'a [u8]> {
    if len > max {
        return None;
    }
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    // SAFETY: precondition 1; `ptr` is non-null and `u8` has no alignment requirement.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A session ID the browser passed (UTF-8, at most [`MAX_SESSION_ID_LEN`] bytes).
///
/// # Safety
///
/// As [`bytes`].
unsafe fn session_id<'a>(ptr: *const c_char, len: u32) -> Option<&'a str> {
    // SAFETY: the caller's contract.
    let b = unsafe { bytes(ptr.cast(), len, MAX_SESSION_ID_LEN) }?;
    std::str::from_utf8(b).ok()
}

fn reject_bad_argument(cdm: &Cdm<BrowserHost>, promise_id: u32, what: &str) {
    cdm.host().reject(
        promise_id,
        Exception::TypeError,
        &format!("{what}: invalid argument"),
    );
}

unsafe extern "C" fn initialize(this: *mut CdmObject, _: bool, _: bool, _: bool) {
    // SAFETY: `this` is our object (the browser calls our table's methods on it).
    unsafe {
        with_cdm(
            this,
            "Initialize",
            |cdm| cdm.initialize(crate::backend::create_media_keys),
            |cdm| {
                if let Some(cdm) = cdm {
                    cdm.host().on_initialized(false);
                }
            },
        )
    }
}

unsafe extern "C" fn get_status_for_policy(this: *mut CdmObject, promise_id: u32, _: *const u32) {
    // SAFETY: as in `initialize`.
    unsafe {
        with_promise(this, "GetStatusForPolicy", promise_id, |cdm| {
            cdm.get_status_for_policy(promise_id)
        })
    }
}

unsafe extern "C" fn set_server_certificate(
    this: *mut CdmObject,
    promise_id: u32,
    data: *const u8,
    size: u32,
) {
    // SAFETY: as in `initialize`; `data`/`size` are the browser's certificate for this call.
    unsafe {
        with_promise(this, "SetServerCertificate", promise_id, |cdm| match bytes(
            data,
            size,
            MAX_MESSAGE_LEN,
        ) {
            Some(cert) => cdm.set_server_certificate(promise_id, cert),
            None => reject_bad_argument(cdm, promise_id, "setServerCertificate"),
        })
    }
}

unsafe extern "C" fn create_session_and_generate_request(
    this: *mut CdmObject,
    promise_id: u32,
    session_type: u32,
    init_data_type: u32,
    init_data: *const u8,
    init_data_size: u32,
) {
    // SAFETY: as in `initialize`; `init_data`/`init_data_size` are the browser's for this call.
    unsafe {
        with_promise(
            this,
            "CreateSessionAndGenerateRequest",
            promise_id,
            |cdm| match bytes(init_data, init_data_size, MAX_MESSAGE_LEN) {
                Some(data) => cdm.create_session(promise_id, session_type, init_data_type, data),
                None => reject_bad_argument(cdm, promise_id, "generateRequest"),
            },
        )
    }
}

unsafe extern "C" fn load_session(
    this: *mut CdmObject,
    promise_id: u32,
    _: u32,
    _: *const c_char,
    _: u32,
) {
    // SAFETY: as in `initialize`.
    unsafe {
        with_promise(this, "LoadSession", promise_id, |cdm| {
            cdm.load_session(promise_id)
        })
    }
}

unsafe extern "C" fn update_session(
    this: *mut CdmObject,
    promise_id: u32,
    sid: *const c_char,
    sid_size: u32,
    response: *const u8,
    response_size: u32,
) {
    // SAFETY: as in `initialize`; the session ID and response are the browser's for this call.
    unsafe {
        with_promise(this, "UpdateSession", promise_id, |cdm| {
            match (
                session_id(sid, sid_size),
                bytes(response, response_size, MAX_MESSAGE_LEN),
            ) {
                (Some(id), Some(resp)) => cdm.update_session(promise_id, id, resp),
                _ => reject_bad_argument(cdm, promise_id, "update"),
            }
        })
    }
}

unsafe extern "C" fn close_session(
    this: *mut CdmObject,
    promise_id: u32,
    sid: *const c_char,
    sid_size: u32,
) {
    // SAFETY: as in `update_session`.
    unsafe {
        with_promise(this, "CloseSession", promise_id, |cdm| {
            match session_id(sid, sid_size) {
                Some(id) => cdm.close_session(promise_id, id),
                None => reject_bad_argument(cdm, promise_id, "close"),
            }
        })
    }
}

unsafe extern "C" fn remove_session(
    this: *mut CdmObject,
    promise_id: u32,
    sid: *const c_char,
    sid_size: u32,
) {
    // SAFETY: as in `update_session`.
    unsafe {
        with_promise(this, "RemoveSession", promise_id, |cdm| {
            match session_id(sid, sid_size) {
                Some(id) => cdm.remove_session(promise_id, id),
                None => reject_bad_argument(cdm, promise_id, "remove"),
            }
        })
    }
}

unsafe extern "C" fn timer_expired(this: *mut CdmObject, _: *mut c_void) {
    // SAFETY: as in `initialize`.
    unsafe { with_cdm(this, "TimerExpired", Cdm::timer_expired, |_| ()) }
}

/// The sample of an `InputBuffer_2`, its pointers checked against the ABI's limits.
///
/// # Safety
///
/// 1. Each non-null pointer of `input` points at its stated count of readable elements, valid
///    for `'a` (the browser's `Decrypt` call).
unsafe fn input_sample<'a>(
    input: &InputBuffer2,
    subsamples: &'a mut Vec<(u32, u32)>,
) -> Option<InputSample<'a>> {
    if input.num_subsamples > MAX_SUBSAMPLES {
        return None;
    }
    let entries: &[SubsampleEntry] = match input.num_subsamples {
        0 => &[],
        _ if input.subsamples.is_null() || !input.subsamples.is_aligned() => return None,
        // SAFETY: precondition 1; non-null and aligned.
        n => unsafe { std::slice::from_raw_parts(input.subsamples, usize::try_from(n).ok()?) },
    };
    subsamples.extend(entries.iter().map(|e| (e.clear_bytes, e.cipher_bytes)));
    // SAFETY: precondition 1.
    let (data, key_id, iv) = unsafe {
        (
            bytes(input.data, input.data_size, MAX_SAMPLE_LEN)?,
            bytes(input.key_id, input.key_id_size, MAX_KEY_ID_LEN)?,
            bytes(input.iv, input.iv_size, MAX_IV_LEN)?,
        )
    };
    Some(InputSample {
        data,
        scheme: input.encryption_scheme,
        key_id,
        iv,
        subsamples,
        pattern: (
            input.pattern.crypt_byte_block,
            input.pattern.skip_byte_block,
        ),
    })
}

/// Copies the clear sample into a buffer of the browser's and hands it to `block`.
///
/// # Safety
///
/// 1. `host` is the live host; `block` is the browser's live `DecryptedBlock` (non-null).
unsafe fn deliver(
    host: &BrowserHost,
    block: *mut DecryptedBlock,
    clear: &[u8],
    timestamp: i64,
) -> Result<(), Status> {
    let len = u32::try_from(clear.len()).map_err(|_| Status::DecryptError)?;
    // SAFETY: precondition 1: methods of the live host, buffer and block with their declared
    // arguments; `Data()` is checked non-null and its capacity at least `len` before the copy.
    unsafe {
        let buffer = (host.vtbl().allocate)(host.0, len);
        let Some(b) = buffer.as_ref() else {
            return Err(Status::DecryptError);
        };
        let bv = &*b.vtbl;
        let data = (bv.data)(buffer);
        if (bv.capacity)(buffer) < len || (data.is_null() && len > 0) {
            (bv.destroy)(buffer);
            return Err(Status::DecryptError);
        }
        if len > 0 {
            std::ptr::copy_nonoverlapping(clear.as_ptr(), data, clear.len());
        }
        (bv.set_size)(buffer, len);
        let blk = &*(*block).vtbl;
        (blk.set_decrypted_buffer)(block, buffer);
        (blk.set_timestamp)(block, timestamp);
    }
    Ok(())
}

unsafe extern "C" fn decrypt(
    this: *mut CdmObject,
    input: *const InputBuffer2,
    block: *mut DecryptedBlock,
) -> u32 {
    // SAFETY: as in `initialize`; `input` and `block` are the browser's for this call,
    // checked non-null (and `block` non-null with a table) before use.
    unsafe {
        with_cdm(
            this,
            "Decrypt",
            |cdm| {
                let Some(input) = input.as_ref() else {
                    return Status::DecryptError as u32;
                };
                if block.is_null() || (*block).vtbl.is_null() {
                    return Status::DecryptError as u32;
                }
                let mut subsamples = Vec::new();
                let Some(sample) = input_sample(input, &mut subsamples) else {
                    return Status::DecryptError as u32;
                };
                let host = BrowserHost(cdm.host().0);
                let status = cdm.decrypt(&sample, |clear| {
                    deliver(&host, block, clear, input.timestamp)
                });
                status as u32
            },
            |_| Status::DecryptError as u32,
        )
    }
}

unsafe extern "C" fn initialize_audio_decoder(_: *mut CdmObject, _: *const c_void) -> u32 {
    // Decrypt only: Chromium decodes.
    Status::InitializationError as u32
}

unsafe extern "C" fn initialize_video_decoder(_: *mut CdmObject, _: *const c_void) -> u32 {
    Status::InitializationError as u32
}

unsafe extern "C" fn deinitialize_decoder(_: *mut CdmObject, _: u32) {}

unsafe extern "C" fn reset_decoder(_: *mut CdmObject, _: u32) {}

unsafe extern "C" fn decrypt_and_decode_frame(
    _: *mut CdmObject,
    _: *const InputBuffer2,
    _: *mut c_void,
) -> u32 {
    Status::DecodeError as u32
}

unsafe extern "C" fn decrypt_and_decode_samples(
    _: *mut CdmObject,
    _: *const InputBuffer2,
    _: *mut c_void,
) -> u32 {
    Status::DecodeError as u32
}

unsafe extern "C" fn on_platform_challenge_response(_: *mut CdmObject, _: *const c_void) {}

unsafe extern "C" fn on_query_output_protection_status(_: *mut CdmObject, _: u32, _: u32, _: u32) {}

unsafe extern "C" fn on_storage_id(_: *mut CdmObject, _: u32, _: *const u8, _: u32) {}

unsafe extern "C" fn destroy(this: *mut CdmObject) {
    if this.is_null() {
        return;
    }
    // SAFETY: `this` came from `Box::into_raw` in `CreateCdmInstance` and the browser calls
    // `Destroy` once, as its last call on the object. Dropping it closes the sessions (their
    // keys are wiped in the secure world) and ends a secure-world-host process.
    let object = unsafe { Box::from_raw(this) };
    if catch_unwind(AssertUnwindSafe(move || drop(object))).is_err() {
        log("Destroy: internal error (panic caught)");
    }
}

unsafe extern "C" fn never_called_destructor(_: *mut CdmObject) {}

/// The `GetCdmHostFunc` the browser passes.
type GetCdmHostFunc = Option<unsafe extern "C" fn(i32, *mut c_void) -> *mut c_void>;

/// `InitializeCdmModule_4` (`CDM_MODULE_VERSION` 4): nothing to set up.
#[no_mangle]
pub extern "C" fn InitializeCdmModule_4() {
    let _ = catch_unwind(|| log("InitializeCdmModule_4"));
}

/// `DeinitializeCdmModule`: nothing to tear down.
#[no_mangle]
pub extern "C" fn DeinitializeCdmModule() {}

/// `GetCdmVersion`: a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn GetCdmVersion() -> *const c_char {
    concat!("tee-cdm ", env!("CARGO_PKG_VERSION"), "\0")
        .as_ptr()
        .cast()
}

/// `CreateCdmInstance`: a `ContentDecryptionModule_10` for `org.chromium.externalclearkey`
/// (null for any other interface version or key system, or without a `Host_10`).
///
/// # Safety
///
/// 1. `key_system` points at `key_system_size` readable bytes (or is null).
/// 2. `get_cdm_host_func`, if non-null, is the browser's function, callable with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn CreateCdmInstance(
    cdm_interface_version: i32,
    key_system: *const c_char,
    key_system_size: u32,
    get_cdm_host_func: GetCdmHostFunc,
    user_data: *mut c_void,
) -> *mut c_void {
    let created = catch_unwind(AssertUnwindSafe(|| {
        crate::record_version_asked(cdm_interface_version);
        // SAFETY: precondition 1.
        let name = unsafe { bytes(key_system.cast(), key_system_size, 256) }
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        log(&format!(
            "CreateCdmInstance(interface {cdm_interface_version}, {name:?})"
        ));
        if cdm_interface_version != CDM_INTERFACE_VERSION || name != KEY_SYSTEM {
            return std::ptr::null_mut();
        }
        let Some(get_host) = get_cdm_host_func else {
            return std::ptr::null_mut();
        };
        // SAFETY: precondition 2.
        let host = unsafe { get_host(HOST_INTERFACE_VERSION, user_data) }.cast::<Host10>();
        // SAFETY: a non-null host object starts with its table pointer.
        if host.is_null() || unsafe { (*host).vtbl.is_null() } {
            log("CreateCdmInstance: the browser has no Host_10");
            return std::ptr::null_mut();
        }
        let object = CdmObject {
            vtbl: &CDM_VTBL,
            cdm: Mutex::new(Cdm::new(BrowserHost(host), Stats::from_env())),
        };
        log("CreateCdmInstance: ContentDecryptionModule_10 created");
        Box::into_raw(Box::new(object)).cast::<c_void>()
    }));
    created.unwrap_or(std::ptr::null_mut())
}
