//! The secure-world side, for TEE integrators: the trusted application's one entry point
//! (`SecureWorld::process`: request bytes in, response bytes out, plus the shared sample
//! buffer) with platform services supplied as C callbacks.
//!
//! A TEE entry point (e.g. an OP-TEE TA's `TA_InvokeCommandEntryPoint`) creates one world with
//! `tee_cdm_sw_create`, passes every message the normal world sends to `tee_cdm_sw_process`,
//! and destroys the world with `tee_cdm_sw_destroy`.
//!
//! **std.** This library is built for std targets. The logic here needs only `core` and
//! `alloc`, like the secure world itself (this module is linted for it); std comes in only at
//! the boundary: `catch_unwind` for the panic boundary, and the mutex-guarded handle registry.
//! A bare-metal TEE build would replace those two (a `panic = "abort"` profile and a plain
//! owned pointer) — not done yet.
#![warn(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use alloc::vec::Vec;
use core::ffi::{c_char, c_void};
use core::panic::AssertUnwindSafe;
use std::sync::Mutex;

use cdm_core::abi::limits::MAX_PAYLOAD_LEN;
use cdm_core::abi::HEADER_LEN;
use hal::aes::Engine;
use hal::platform::{
    BlobName, Clock, CounterError, DeviceRootKey, MonotonicCounter, OutputError, Platform,
    RngError, RootKey, RootKeyError, SecureOutputSink, SecureRandom, SecureStorage, StorageError,
    DIGEST_LEN, MAX_BLOB_LEN, MAX_NAME_LEN,
};
use secure_world::{Config, ConfigError, SecureWorld};
use zeroize::Zeroize;

use crate::boundary::{guard, overlaps, read, slice, slice_mut, write};
use crate::handles::Registry;
use crate::status::{Failure, TeeCdmStatus};

/// Largest request message the secure world accepts (header + `MAX_PAYLOAD_LEN`, docs/abi.md
/// §3, §7); a longer request is refused at the boundary.
pub const TEE_CDM_SW_MAX_REQUEST_LEN: usize = 66592;

/// Largest response message the secure world writes. `tee_cdm_sw_process` needs a response
/// buffer at least this large (checked before the request is looked at, so an undersized
/// buffer never loses a response).
pub const TEE_CDM_SW_MAX_RESPONSE_LEN: usize = 66592;

/// Bytes of the device root key (`root_key` callback).
pub const TEE_CDM_SW_ROOT_KEY_LEN: usize = 32;

/// Bytes of the digest the `render` callback writes (SHA-256).
pub const TEE_CDM_SW_DIGEST_LEN: usize = 32;

/// Longest blob name (the names passed to the storage callbacks: 1 to 64 bytes of
/// `[a-z0-9._-]`, not starting with `.`).
pub const TEE_CDM_SW_MAX_BLOB_NAME_LEN: usize = 64;

/// Largest blob the storage callbacks are asked to keep (64 KiB).
pub const TEE_CDM_SW_MAX_BLOB_LEN: usize = 65536;

/// `TeeCdmSwConfig::robustness` bit: sessions may use `SW_SECURE_CRYPTO` (and Clear Key's
/// empty robustness): clear samples return to the normal world in place.
pub const TEE_CDM_SW_ROBUSTNESS_SW_SECURE_CRYPTO: u32 = 1;

/// `TeeCdmSwConfig::robustness` bit: sessions may use `HW_SECURE_DECODE`: clear samples go
/// only to the `render` callback.
pub const TEE_CDM_SW_ROBUSTNESS_HW_SECURE_DECODE: u32 = 2;

const _: () = {
    assert!(TEE_CDM_SW_MAX_REQUEST_LEN == HEADER_LEN + MAX_PAYLOAD_LEN);
    assert!(TEE_CDM_SW_MAX_RESPONSE_LEN == HEADER_LEN + MAX_PAYLOAD_LEN);
    assert!(TEE_CDM_SW_ROOT_KEY_LEN == hal::platform::ROOT_KEY_LEN);
    assert!(TEE_CDM_SW_DIGEST_LEN == DIGEST_LEN);
    assert!(TEE_CDM_SW_MAX_BLOB_NAME_LEN == MAX_NAME_LEN);
    assert!(TEE_CDM_SW_MAX_BLOB_LEN == MAX_BLOB_LEN);
};

/// A secure world built with C platform services. Opaque; from `tee_cdm_sw_create`, freed
/// with `tee_cdm_sw_destroy`.
pub struct TeeCdmSecureWorld {
    _opaque: (),
}

/// Where a storage callback delivers bytes (a blob, or blob names) through a
/// `TeeCdmSwAppendFn`. Opaque; valid only during the callback it was passed to.
pub struct TeeCdmSwSink {
    _opaque: (),
}

/// What platform callbacks answer. Callbacks return one of these as an `int32_t`; any other
/// value is taken as `TEE_CDM_SW_RESULT_UNAVAILABLE`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmSwResult {
    /// Success.
    Ok = 0,
    /// Storage: no blob has that name.
    NotFound = 1,
    /// Storage: the blob is larger than the store accepts; sink: more than
    /// `TEE_CDM_SW_MAX_BLOB_LEN` bytes were appended.
    TooLarge = 2,
    /// Storage: what is stored cannot be a blob; counter: the stored value is malformed.
    Corrupt = 3,
    /// Storage: no room left.
    Full = 4,
    /// The service failed (I/O error, the TEE refused). Also any unknown value.
    Unavailable = 5,
    /// Memory could not be allocated.
    OutOfMemory = 6,
    /// Counter: at its maximum; it never wraps.
    Exhausted = 7,
    /// Sink: the name appended is not a valid blob name (it is skipped).
    InvalidName = 8,
}

/// Hands `len` bytes at `data` to `sink` (from inside a `storage_get` or `storage_list`
/// callback only). For `storage_get`, call it once or several times with consecutive chunks
/// of the blob; for `storage_list`, once per name (without a NUL). The bytes are copied before
/// it returns. Answers a `TeeCdmSwResult`: `OK`; `TOO_LARGE` (the blob exceeds
/// `TEE_CDM_SW_MAX_BLOB_LEN`: stop and return it); `OUT_OF_MEMORY`; `INVALID_NAME` (skipped; go
/// on); `UNAVAILABLE` (a NULL or foreign sink, NULL data with a non-zero length).
pub type TeeCdmSwAppendFn =
    unsafe extern "C" fn(sink: *mut TeeCdmSwSink, data: *const u8, len: usize) -> i32;

/// Platform services of a secure world (`hal::platform`): randomness, trusted time and the
/// secure output sink. Every callback gets `ctx` as its first argument.
///
/// Callbacks run on the thread that called `tee_cdm_sw_create` / `tee_cdm_sw_process`, one at
/// a time for one world; they must not call back into the same world (it would deadlock).
/// `ctx` must be usable from every thread that calls into the world.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmSwPlatform {
    /// Passed to every callback; the library never looks at it.
    pub ctx: *mut c_void,
    /// Required. Fills `len` bytes at `out` with cryptographically secure random bytes (the
    /// TEE's TRNG); returns 0, or non-zero on failure (the request that needed randomness
    /// fails).
    pub random: Option<unsafe extern "C" fn(ctx: *mut c_void, out: *mut u8, len: usize) -> i32>,
    /// Optional. Writes trusted time, in milliseconds since the Unix epoch, to `*now_ms` and
    /// returns 0; non-zero means no trusted time now. NULL: the platform has no trusted time
    /// (licenses carrying an expiry are refused).
    pub now_ms: Option<unsafe extern "C" fn(ctx: *mut c_void, now_ms: *mut i64) -> i32>,
    /// Optional. The secure video path of `HW_SECURE_DECODE`: consumes one decrypted frame
    /// (`frame_len` bytes, valid during the call only) and writes the SHA-256 of its bytes
    /// (`TEE_CDM_SW_DIGEST_LEN` bytes) to `digest`; returns a `TeeCdmSwResult` (`OK`,
    /// `TOO_LARGE`, or another value for unavailable). NULL: no secure output.
    pub render: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            frame: *const u8,
            frame_len: usize,
            digest: *mut u8,
        ) -> i32,
    >,
}

/// The persistent services (`hal::platform`: secure storage, monotonic counter, device root
/// key) that `persistent-license` sessions need. Optional as a whole: without it a secure
/// world serves temporary sessions only. When given, every callback is required.
///
/// Blob names are NUL-terminated strings of 1 to `TEE_CDM_SW_MAX_BLOB_NAME_LEN` characters
/// of `[a-z0-9._-]`, not starting with `.` (safe as file names), valid during the call only.
/// Blobs are already sealed by the secure world (AEAD under keys derived from the root key),
/// so the store need not be confidential; it must be atomic (see `docs/storage.md`).
/// Threading rules are those of `TeeCdmSwPlatform`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmSwPersistence {
    /// Passed to every callback; the library never looks at it.
    pub ctx: *mut c_void,
    /// Reads blob `name`: pass its bytes to `append(sink, …)` (in one or more chunks), then
    /// return `OK`; or return `NOT_FOUND`, `CORRUPT`, `UNAVAILABLE`, or what `append`
    /// answered if it failed.
    pub storage_get: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            name: *const c_char,
            sink: *mut TeeCdmSwSink,
            append: TeeCdmSwAppendFn,
        ) -> i32,
    >,
    /// Stores `blob_len` bytes (at most `TEE_CDM_SW_MAX_BLOB_LEN`) under `name`, replacing any
    /// blob of that name, atomically: after a crash the old or the new contents, never a mix.
    /// Returns `OK`, `FULL` or `UNAVAILABLE`.
    pub storage_put: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            name: *const c_char,
            blob: *const u8,
            blob_len: usize,
        ) -> i32,
    >,
    /// Removes blob `name`, durably. Returns `OK`, `NOT_FOUND` or `UNAVAILABLE`.
    pub storage_delete: Option<unsafe extern "C" fn(ctx: *mut c_void, name: *const c_char) -> i32>,
    /// Lists every stored blob: one `append(sink, name, strlen(name))` per name, in any
    /// order; returns `OK` or `UNAVAILABLE`.
    pub storage_list: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            sink: *mut TeeCdmSwSink,
            append: TeeCdmSwAppendFn,
        ) -> i32,
    >,
    /// Writes the monotonic counter's value to `*value` (0 if never incremented). Returns
    /// `OK`, `CORRUPT` or `UNAVAILABLE`.
    pub counter_read: Option<unsafe extern "C" fn(ctx: *mut c_void, value: *mut u64) -> i32>,
    /// Adds one to the counter, durably, and writes the new value to `*value`. Returns `OK`,
    /// `EXHAUSTED` or `UNAVAILABLE`. The counter must never go back (RPMB, fuses).
    pub counter_increment: Option<unsafe extern "C" fn(ctx: *mut c_void, value: *mut u64) -> i32>,
    /// Writes the device root key (`TEE_CDM_SW_ROOT_KEY_LEN` bytes, the same on every call for
    /// the life of the device: e.g. OP-TEE's TA-unique key) to `key`; returns 0, or non-zero
    /// if it is unavailable. The library wipes its copy after use.
    pub root_key: Option<unsafe extern "C" fn(ctx: *mut c_void, key: *mut u8) -> i32>,
}

/// Limits of a secure world. Every field 0 means the default (the maximum; limits are
/// configurable downward only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TeeCdmSwConfig {
    /// Concurrent sessions (1..=32).
    pub max_sessions: u32,
    /// Keys per session (1..=32).
    pub max_keys_per_session: u32,
    /// Live secure buffers (1..=16; used with `HW_SECURE_DECODE` only).
    pub max_secure_buffers: u32,
    /// Total bytes of live secure buffers (≤ 64 MiB).
    pub max_secure_buffer_bytes: u32,
    /// Stored persistent licenses (1..=1024).
    pub max_persistent_licenses: u32,
    /// Bytes of one stored license record (1..=16384).
    pub max_license_record_len: u32,
    /// `TEE_CDM_SW_ROBUSTNESS_*` bits; 0 means both.
    pub robustness: u32,
}

/// A context pointer the integrator supplied.
#[derive(Clone, Copy)]
struct Ctx(*mut c_void);

// SAFETY: the library never dereferences `ctx`; it only passes it back to the integrator's
// callbacks. The header makes the integrator responsible for `ctx` being usable from every
// thread that calls into the world (TeeCdmSwPlatform's docs), which is what Send asks.
unsafe impl Send for Ctx {}

type RandomFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> i32;
type NowFn = unsafe extern "C" fn(*mut c_void, *mut i64) -> i32;
type RenderFn = unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut u8) -> i32;
type GetFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *mut TeeCdmSwSink, TeeCdmSwAppendFn) -> i32;
type PutFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const u8, usize) -> i32;
type DeleteFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> i32;
type ListFn = unsafe extern "C" fn(*mut c_void, *mut TeeCdmSwSink, TeeCdmSwAppendFn) -> i32;
type CounterFn = unsafe extern "C" fn(*mut c_void, *mut u64) -> i32;
type RootKeyFn = unsafe extern "C" fn(*mut c_void, *mut u8) -> i32;

fn result(code: i32) -> TeeCdmSwResult {
    [
        TeeCdmSwResult::Ok,
        TeeCdmSwResult::NotFound,
        TeeCdmSwResult::TooLarge,
        TeeCdmSwResult::Corrupt,
        TeeCdmSwResult::Full,
        TeeCdmSwResult::Unavailable,
        TeeCdmSwResult::OutOfMemory,
        TeeCdmSwResult::Exhausted,
        TeeCdmSwResult::InvalidName,
    ]
    .into_iter()
    .find(|r| *r as i32 == code)
    .unwrap_or(TeeCdmSwResult::Unavailable)
}

struct CRandom {
    ctx: Ctx,
    random: RandomFn,
}

impl SecureRandom for CRandom {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        // SAFETY: `out` is a live, exclusively borrowed buffer of `out.len()` bytes for the
        // whole call; the callback's contract (TeeCdmSwPlatform::random) is to write only
        // those bytes.
        let code = unsafe { (self.random)(self.ctx.0, out.as_mut_ptr(), out.len()) };
        if code == 0 {
            Ok(())
        } else {
            Err(RngError)
        }
    }
}

struct CClock {
    ctx: Ctx,
    now_ms: Option<NowFn>,
}

impl Clock for CClock {
    fn now_ms(&self) -> Option<i64> {
        let f = self.now_ms?;
        let mut now = 0i64;
        // SAFETY: `now` is a live local the callback may write once.
        let code = unsafe { f(self.ctx.0, &mut now) };
        (code == 0).then_some(now)
    }
}

struct CSink {
    ctx: Ctx,
    render: Option<RenderFn>,
}

impl SecureOutputSink for CSink {
    fn render(&mut self, frame: &[u8]) -> Result<[u8; DIGEST_LEN], OutputError> {
        let f = self.render.ok_or(OutputError::Unavailable)?;
        let mut digest = [0u8; DIGEST_LEN];
        // SAFETY: `frame` is readable for `frame.len()` bytes during the call and `digest` is
        // a live local of DIGEST_LEN bytes, as the callback's contract states.
        let code = unsafe { f(self.ctx.0, frame.as_ptr(), frame.len(), digest.as_mut_ptr()) };
        match result(code) {
            TeeCdmSwResult::Ok => Ok(digest),
            TeeCdmSwResult::TooLarge => Err(OutputError::TooLarge),
            _ => Err(OutputError::Unavailable),
        }
    }
}

/// The persistence callbacks, checked to be all present.
#[derive(Clone, Copy)]
struct Persistence {
    ctx: Ctx,
    get: GetFn,
    put: PutFn,
    delete: DeleteFn,
    list: ListFn,
    counter_read: CounterFn,
    counter_increment: CounterFn,
    root_key: RootKeyFn,
}

impl Persistence {
    fn from_c(p: &TeeCdmSwPersistence) -> Result<Persistence, Failure> {
        let need = |present: bool, what: &str| {
            if present {
                Ok(())
            } else {
                Err(Failure::null(what))
            }
        };
        need(p.storage_get.is_some(), "persistence->storage_get")?;
        need(p.storage_put.is_some(), "persistence->storage_put")?;
        need(p.storage_delete.is_some(), "persistence->storage_delete")?;
        need(p.storage_list.is_some(), "persistence->storage_list")?;
        need(p.counter_read.is_some(), "persistence->counter_read")?;
        need(
            p.counter_increment.is_some(),
            "persistence->counter_increment",
        )?;
        need(p.root_key.is_some(), "persistence->root_key")?;
        match (
            p.storage_get,
            p.storage_put,
            p.storage_delete,
            p.storage_list,
            p.counter_read,
            p.counter_increment,
            p.root_key,
        ) {
            (
                Some(get),
                Some(put),
                Some(delete),
                Some(list),
                Some(counter_read),
                Some(counter_increment),
                Some(root_key),
            ) => Ok(Persistence {
                ctx: Ctx(p.ctx),
                get,
                put,
                delete,
                list,
                counter_read,
                counter_increment,
                root_key,
            }),
            _ => Err(Failure::null("persistence callback")),
        }
    }
}

/// A sink's tag: `append` refuses a pointer that does not start with it (a stale or foreign
/// pointer is then at least likely to be noticed).
const SINK_TAG: u64 = u64::from_le_bytes(*b"tcdmsink");

enum Target<'a> {
    Blob(&'a mut Vec<u8>),
    Names(&'a mut Vec<BlobName>),
}

#[repr(C)]
struct SinkState<'a> {
    tag: u64,
    target: Target<'a>,
    /// Why the delivery failed, if it did (reported even if the callback then returns OK).
    error: Option<StorageError>,
}

impl SinkState<'_> {
    fn append(&mut self, data: &[u8]) -> TeeCdmSwResult {
        match &mut self.target {
            Target::Blob(out) => {
                if out.len().saturating_add(data.len()) > MAX_BLOB_LEN {
                    self.error = Some(StorageError::Corrupt);
                    return TeeCdmSwResult::TooLarge;
                }
                if out.try_reserve(data.len()).is_err() {
                    self.error = Some(StorageError::OutOfMemory);
                    return TeeCdmSwResult::OutOfMemory;
                }
                out.extend_from_slice(data);
                TeeCdmSwResult::Ok
            }
            Target::Names(names) => {
                // A foreign entry in the store (not a valid blob name) is skipped, as the host
                // FileStorage skips foreign files.
                let Some(name) = core::str::from_utf8(data)
                    .ok()
                    .and_then(|s| BlobName::new(s).ok())
                else {
                    return TeeCdmSwResult::InvalidName;
                };
                if names.try_reserve(1).is_err() {
                    self.error = Some(StorageError::OutOfMemory);
                    return TeeCdmSwResult::OutOfMemory;
                }
                names.push(name);
                TeeCdmSwResult::Ok
            }
        }
    }
}

/// The `TeeCdmSwAppendFn` handed to storage callbacks.
///
/// # Safety
///
/// `sink` must be the sink of the storage callback now running; `data` must be valid for
/// reads of `len` bytes (NULL only with 0).
unsafe extern "C" fn sink_append(sink: *mut TeeCdmSwSink, data: *const u8, len: usize) -> i32 {
    let run = || {
        let state = sink.cast::<SinkState<'_>>();
        if state.is_null() || !state.is_aligned() {
            return TeeCdmSwResult::Unavailable;
        }
        // SAFETY: a sink passed to a running callback points to a live SinkState on the stack
        // of the Rust frame that made that call (the callback's contract); `tag` is its first
        // field (repr(C)), read before anything else is trusted.
        if unsafe { state.cast::<u64>().read() } != SINK_TAG {
            return TeeCdmSwResult::Unavailable;
        }
        // SAFETY: as above; while the callback runs, the frame that owns the SinkState does
        // not touch it, so this is its only reference.
        let state = unsafe { &mut *state };
        // SAFETY: the caller's contract on `data`.
        match unsafe { slice(data, len, "data") } {
            Ok(bytes) => state.append(bytes),
            Err(_) => TeeCdmSwResult::Unavailable,
        }
    };
    std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or(TeeCdmSwResult::Unavailable) as i32
}

/// `name` as a NUL-terminated C string.
fn c_name(name: &BlobName) -> [u8; MAX_NAME_LEN + 1] {
    let mut out = [0u8; MAX_NAME_LEN + 1];
    for (dst, src) in out.iter_mut().zip(name.as_str().bytes()) {
        *dst = src;
    }
    out
}

fn storage_error(code: i32) -> Result<(), StorageError> {
    match result(code) {
        TeeCdmSwResult::Ok => Ok(()),
        TeeCdmSwResult::NotFound => Err(StorageError::NotFound),
        TeeCdmSwResult::TooLarge => Err(StorageError::TooLarge),
        TeeCdmSwResult::Corrupt => Err(StorageError::Corrupt),
        TeeCdmSwResult::Full => Err(StorageError::Full),
        TeeCdmSwResult::OutOfMemory => Err(StorageError::OutOfMemory),
        TeeCdmSwResult::InvalidName => Err(StorageError::InvalidName),
        TeeCdmSwResult::Unavailable | TeeCdmSwResult::Exhausted => Err(StorageError::Unavailable),
    }
}

fn counter_error(code: i32) -> Result<(), CounterError> {
    match result(code) {
        TeeCdmSwResult::Ok => Ok(()),
        TeeCdmSwResult::Exhausted => Err(CounterError::Exhausted),
        TeeCdmSwResult::Corrupt => Err(CounterError::Corrupt),
        _ => Err(CounterError::Unavailable),
    }
}

struct CStorage(Persistence);

impl CStorage {
    /// Calls a delivering callback (`get` or `list`) with a sink over `target`.
    fn deliver(
        &self,
        target: Target<'_>,
        call: impl FnOnce(*mut TeeCdmSwSink) -> i32,
    ) -> Result<(), StorageError> {
        let mut state = SinkState {
            tag: SINK_TAG,
            target,
            error: None,
        };
        let code = call(core::ptr::addr_of_mut!(state).cast::<TeeCdmSwSink>());
        // A failure inside the sink wins over what the callback answered.
        match state.error {
            Some(e) => Err(e),
            None => storage_error(code),
        }
    }
}

impl SecureStorage for CStorage {
    fn get(&self, name: &BlobName, out: &mut Vec<u8>) -> Result<(), StorageError> {
        out.clear();
        let c = c_name(name);
        let p = self.0;
        self.deliver(Target::Blob(out), |sink| {
            // SAFETY: `c` is a NUL-terminated name and `sink` a live SinkState, both valid for
            // the duration of the call, as TeeCdmSwPersistence::storage_get states.
            unsafe { (p.get)(p.ctx.0, c.as_ptr().cast::<c_char>(), sink, sink_append) }
        })
    }

    fn put(&mut self, name: &BlobName, blob: &[u8]) -> Result<(), StorageError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(StorageError::TooLarge);
        }
        let c = c_name(name);
        // SAFETY: `c` is a NUL-terminated name and `blob` readable for `blob.len()` bytes
        // during the call.
        let code = unsafe {
            (self.0.put)(
                self.0.ctx.0,
                c.as_ptr().cast::<c_char>(),
                blob.as_ptr(),
                blob.len(),
            )
        };
        storage_error(code)
    }

    fn delete(&mut self, name: &BlobName) -> Result<(), StorageError> {
        let c = c_name(name);
        // SAFETY: `c` is a NUL-terminated name valid during the call.
        let code = unsafe { (self.0.delete)(self.0.ctx.0, c.as_ptr().cast::<c_char>()) };
        storage_error(code)
    }

    fn list(&self, out: &mut Vec<BlobName>) -> Result<(), StorageError> {
        out.clear();
        let p = self.0;
        self.deliver(Target::Names(&mut *out), |sink| {
            // SAFETY: `sink` is a live SinkState valid for the duration of the call.
            unsafe { (p.list)(p.ctx.0, sink, sink_append) }
        })?;
        // The trait promises sorted names; the callback may list them in any order.
        out.sort_unstable();
        Ok(())
    }
}

struct CCounter(Persistence);

impl MonotonicCounter for CCounter {
    fn read(&self) -> Result<u64, CounterError> {
        let mut value = 0u64;
        // SAFETY: `value` is a live local the callback may write.
        counter_error(unsafe { (self.0.counter_read)(self.0.ctx.0, &mut value) })?;
        Ok(value)
    }

    fn increment(&mut self) -> Result<u64, CounterError> {
        let mut value = 0u64;
        // SAFETY: `value` is a live local the callback may write.
        counter_error(unsafe { (self.0.counter_increment)(self.0.ctx.0, &mut value) })?;
        Ok(value)
    }
}

struct CRootKey(Persistence);

impl DeviceRootKey for CRootKey {
    fn root_key(&self, out: &mut RootKey) -> Result<(), RootKeyError> {
        let key = out.expose_mut();
        // SAFETY: `key` is ROOT_KEY_LEN writable bytes owned by `out` for the whole call.
        let code = unsafe { (self.0.root_key)(self.0.ctx.0, key.as_mut_ptr()) };
        if code == 0 {
            Ok(())
        } else {
            // The trait's contract: zeroed, not half-written, on error.
            out.zeroize();
            Err(RootKeyError::Unavailable)
        }
    }
}

type CWorld = SecureWorld<CRandom, CClock, CSink>;

struct World {
    world: CWorld,
    /// The request, copied out of the caller's (possibly shared) memory before it is parsed;
    /// wiped after every call (Clear Key licenses carry keys), its buffer reused.
    request: Vec<u8>,
    response: Vec<u8>,
}

static WORLDS: Registry<Mutex<World>> = Registry::new("TeeCdmSecureWorld");

/// Wipes the request copy when dropped. Only its length needs wiping: every byte past it was
/// wiped at the end of an earlier call (so the cost is the request's size, not the buffer's),
/// and a reallocation in `try_reserve` happens while the buffer is empty, so it moves nothing
/// unwiped.
struct WipeOnDrop<'a>(&'a mut Vec<u8>);

impl Drop for WipeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
        self.0.clear();
    }
}

fn limit(value: u32, default: usize) -> Result<usize, Failure> {
    if value == 0 {
        return Ok(default);
    }
    usize::try_from(value).map_err(|_| Failure::invalid("a limit does not fit size_t"))
}

fn to_config(c: &TeeCdmSwConfig) -> Result<Config, Failure> {
    let d = Config::default();
    let all = TEE_CDM_SW_ROBUSTNESS_SW_SECURE_CRYPTO | TEE_CDM_SW_ROBUSTNESS_HW_SECURE_DECODE;
    if c.robustness & !all != 0 {
        return Err(Failure::invalid(format!(
            "`config->robustness` = {:#x} has unknown bits",
            c.robustness
        )));
    }
    let robustness = if c.robustness == 0 { all } else { c.robustness };
    Ok(Config {
        max_sessions: limit(c.max_sessions, d.max_sessions)?,
        max_keys_per_session: limit(c.max_keys_per_session, d.max_keys_per_session)?,
        max_secure_buffers: limit(c.max_secure_buffers, d.max_secure_buffers)?,
        max_secure_buffer_bytes: limit(c.max_secure_buffer_bytes, d.max_secure_buffer_bytes)?,
        sw_secure_crypto: robustness & TEE_CDM_SW_ROBUSTNESS_SW_SECURE_CRYPTO != 0,
        hw_secure_decode: robustness & TEE_CDM_SW_ROBUSTNESS_HW_SECURE_DECODE != 0,
        max_persistent_licenses: limit(c.max_persistent_licenses, d.max_persistent_licenses)?,
        max_license_record_len: limit(c.max_license_record_len, d.max_license_record_len)?,
        // The C ABI does not expose the protected key system yet.
        protected_root: None,
    })
}

fn config_failure(e: ConfigError) -> Failure {
    let status = match e {
        ConfigError::AboveDefault(_)
        | ConfigError::Zero(_)
        | ConfigError::NoRobustness
        | ConfigError::ProtectedRoot => TeeCdmStatus::InvalidArgument,
        ConfigError::RootKey => TeeCdmStatus::PlatformError,
        ConfigError::OutOfMemory => TeeCdmStatus::OutOfMemory,
    };
    Failure::new(status, format!("secure world: {e}"))
}

/// Builds a secure world with the platform services of `*platform`, the limits of `*config`
/// (NULL: the defaults) and, if `persistence` is not NULL, persistent storage
/// (`persistent-license` sessions). The AES engine is detected once here (AES-NI/VAES, ARMv8
/// Crypto Extensions, or the portable one).
///
/// The structs are copied; the callbacks and `ctx` pointers must stay valid until
/// `tee_cdm_sw_destroy`. With persistence, the root key callback is called here, and the
/// stored license table is read and checked: a store that fails its checks (rolled back,
/// tampered, unreadable) still yields a world whose persistent-license operations answer the
/// reason (`tee_cdm_sw_storage_fault`).
///
/// Ownership: `*out` is a new handle owned by the caller; free it with `tee_cdm_sw_destroy`.
///
/// Thread safety: any thread; the callbacks run on the calling thread.
///
/// Errors: `NULL_POINTER` (`platform`, `platform->random`, `out`, or a persistence callback
/// is NULL), `INVALID_ARGUMENT` (a limit above its maximum, unknown robustness bits),
/// `PLATFORM_ERROR` (the root key callback failed), `OUT_OF_MEMORY`. On error `*out` is set
/// to NULL.
///
/// # Safety
///
/// `platform` must point to a `TeeCdmSwPlatform`; `config` and `persistence` must be NULL or
/// point to their structs; `out` must be NULL or valid for a write of a pointer. The callbacks
/// must follow their documented contracts.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_sw_create(
    platform: *const TeeCdmSwPlatform,
    config: *const TeeCdmSwConfig,
    persistence: *const TeeCdmSwPersistence,
    out: *mut *mut TeeCdmSecureWorld,
) -> TeeCdmStatus {
    guard("tee_cdm_sw_create", || {
        // SAFETY: the caller's contract on every argument.
        let (p, c, persistence) = unsafe {
            write(out, core::ptr::null_mut(), "out")?;
            let p = read(platform, "platform")?;
            let c = if config.is_null() {
                TeeCdmSwConfig::default()
            } else {
                read(config, "config")?
            };
            let persistence = if persistence.is_null() {
                None
            } else {
                Some(Persistence::from_c(&read(persistence, "persistence")?)?)
            };
            (p, c, persistence)
        };
        let random = p.random.ok_or_else(|| Failure::null("platform->random"))?;
        let ctx = Ctx(p.ctx);
        let platform = Platform::new(
            CRandom { ctx, random },
            CClock {
                ctx,
                now_ms: p.now_ms,
            },
            CSink {
                ctx,
                render: p.render,
            },
            Engine::detect(),
        );
        let config = to_config(&c)?;
        let world = match persistence {
            None => SecureWorld::new(platform, config),
            Some(p) => {
                SecureWorld::with_storage(platform, config, CStorage(p), CCounter(p), &CRootKey(p))
            }
        }
        .map_err(config_failure)?;
        let handle = WORLDS.insert(Mutex::new(World {
            world,
            request: Vec::new(),
            response: Vec::new(),
        }))?;
        // SAFETY: as above.
        unsafe { write(out, handle, "out") }
    })
}

/// The secure world's entry point: handles one request message (docs/abi.md) and writes one
/// response message to `response`, its length to `*response_len`.
///
/// - `request` (`request_len` ≤ `TEE_CDM_SW_MAX_REQUEST_LEN` bytes) is copied into the
///   library before it is parsed, so it may live in memory shared with the normal world.
/// - `sample` is the shared sample buffer: only `Decrypt` reads it, and only a
///   `SW_SECURE_CRYPTO` decrypt writes it (the clear sample, in place). Empty (NULL, 0) for
///   other requests. It must not overlap `request` or `response`.
/// - `response` must hold at least `TEE_CDM_SW_MAX_RESPONSE_LEN` bytes, checked before
///   anything else: a smaller `response_cap` answers `BUFFER_TOO_SMALL` with
///   `*response_len` = `TEE_CDM_SW_MAX_RESPONSE_LEN` and the request is not processed. It may
///   overlap `request` (one in/out buffer).
///
/// Every problem with the request itself (malformed, unknown opcode, a bad session handle, a
/// refused license, a failed decrypt) is an encoded error response with `TEE_CDM_STATUS_OK`
/// here: the status is in the response header.
///
/// Thread safety: any thread; calls on one world are serialized (a second thread waits). The
/// platform callbacks run on the calling thread and must not call back into this world.
///
/// Errors: `NULL_POINTER`, `BUFFER_TOO_SMALL`, `INVALID_ARGUMENT` (a request over the limit,
/// `sample` overlapping `request` or `response`), `BAD_HANDLE`, `OUT_OF_MEMORY`, `PANIC`
/// (this or an earlier call on the world panicked; destroy it). On error `*response_len` is 0
/// (except for `BUFFER_TOO_SMALL`).
///
/// # Safety
///
/// `request` must be valid for reads of `request_len` bytes, `sample` for reads and writes of
/// `sample_len` bytes (nothing else may access it during the call), `response` for writes of
/// `response_cap` bytes, `response_len` for a write of a `size_t` (each NULL only with a
/// length of 0, `response_len` never).
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_sw_process(
    world: *mut TeeCdmSecureWorld,
    request: *const u8,
    request_len: usize,
    sample: *mut u8,
    sample_len: usize,
    response: *mut u8,
    response_cap: usize,
    response_len: *mut usize,
) -> TeeCdmStatus {
    guard("tee_cdm_sw_process", || {
        // SAFETY: the caller's contract on `response_len`.
        unsafe { write(response_len, 0, "response_len")? };
        if response_cap < TEE_CDM_SW_MAX_RESPONSE_LEN {
            // SAFETY: as above.
            unsafe { write(response_len, TEE_CDM_SW_MAX_RESPONSE_LEN, "response_len")? };
            return Err(Failure::new(
                TeeCdmStatus::BufferTooSmall,
                format!(
                    "`response_cap` is {response_cap}, at least TEE_CDM_SW_MAX_RESPONSE_LEN \
                     ({TEE_CDM_SW_MAX_RESPONSE_LEN}) needed"
                ),
            ));
        }
        if response.is_null() {
            return Err(Failure::null("response"));
        }
        if request_len > TEE_CDM_SW_MAX_REQUEST_LEN {
            return Err(Failure::invalid(format!(
                "`request_len` {request_len} exceeds TEE_CDM_SW_MAX_REQUEST_LEN"
            )));
        }
        if overlaps(sample, sample_len, request, request_len)
            || overlaps(sample, sample_len, response, response_cap)
        {
            return Err(Failure::invalid(
                "`sample` overlaps `request` or `response`",
            ));
        }
        let w = WORLDS.get(world)?;
        let mut guard = w.lock().map_err(|_| {
            Failure::new(
                TeeCdmStatus::Panic,
                "an earlier call panicked inside this secure world; destroy it",
            )
        })?;
        let World {
            world,
            request: copy,
            response: out,
        } = &mut *guard;
        // SAFETY: the caller's contract on `sample`; it overlaps neither the request nor the
        // response buffer (checked above).
        let sample = unsafe { slice_mut(sample, sample_len, "sample")? };
        // The copy is wiped when this call ends, however it ends (it may hold a Clear Key
        // license, i.e. content keys).
        let copy = WipeOnDrop(copy);
        // SAFETY: the caller's contract on `request`; the borrow ends with this block, before
        // anything writes `response` (which may overlap it).
        unsafe {
            let src = slice(request, request_len, "request")?;
            copy.0.clear();
            copy.0
                .try_reserve(src.len())
                .map_err(|_| Failure::new(TeeCdmStatus::OutOfMemory, "request copy"))?;
            copy.0.extend_from_slice(src);
        }
        world.process(copy.0, sample, out);
        drop(copy);
        if out.is_empty() {
            // The secure world could not allocate even a response header.
            return Err(Failure::new(
                TeeCdmStatus::OutOfMemory,
                "the secure world could not allocate its response",
            ));
        }
        // SAFETY: the caller's contract on `response`; response_cap ≥ the longest response
        // (checked above), so `out` fits.
        let dst = unsafe { slice_mut(response, out.len(), "response")? };
        dst.copy_from_slice(out);
        // SAFETY: the caller's contract on `response_len`.
        unsafe { write(response_len, out.len(), "response_len") }
    })
}

/// Whether persistent licenses can be used: `*abi_status` is 0 when the store is usable,
/// otherwise the ABI status every persistent-license operation answers (docs/abi.md §5):
/// `0x0205` NotSupported (no persistence given), `0x0501`..`0x0505` (unavailable, corrupt,
/// truncated, rolled back, missing).
///
/// Thread safety: any thread; serialized with `tee_cdm_sw_process` on the same world.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `PANIC`.
///
/// # Safety
///
/// `abi_status` must be NULL or valid for a write of a `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_sw_storage_fault(
    world: *const TeeCdmSecureWorld,
    abi_status: *mut u32,
) -> TeeCdmStatus {
    guard("tee_cdm_sw_storage_fault", || {
        let w = WORLDS.get(world)?;
        let fault = w
            .lock()
            .map_err(|_| Failure::new(TeeCdmStatus::Panic, "an earlier call panicked"))?
            .world
            .storage_fault();
        // SAFETY: the caller's contract on `abi_status`.
        unsafe { write(abi_status, fault.map_or(0, |s| s.to_wire()), "abi_status") }
    })
}

/// Destroys a secure world: every session is dropped and its keys wiped. NULL is accepted and
/// does nothing. The callbacks are not called afterwards (once calls running on the world in
/// other threads have returned).
///
/// Thread safety: any thread; calls running on the world complete first.
///
/// Errors: `BAD_HANDLE` (not a live world, e.g. destroyed twice).
#[no_mangle]
pub extern "C" fn tee_cdm_sw_destroy(world: *mut TeeCdmSecureWorld) -> TeeCdmStatus {
    guard("tee_cdm_sw_destroy", || WORLDS.remove(world))
}
