//! The host side, for media stacks in C: the EME API of `normal-world` (the shape of OCDM's
//! `opencdm_*` functions) behind opaque handles.
//!
//! Objects: a `TeeCdmAccess` (negotiated key-system access), a `TeeCdmMediaKeys` (one secure
//! world, in this process or in a `secure-world-host` process) and its `TeeCdmSession`s. Each
//! is freed with its own `_free` function, in any order: a session keeps its secure world
//! alive, and freeing an open session closes it (its keys are wiped).
//!
//! Thread safety: every host function may be called from any thread, concurrently, on the
//! same or different handles; calls that reach one secure world are serialized inside it.
//! Events are queued on the session by the calls that cause them and drained by polling
//! (`tee_cdm_session_next_event`); nothing calls back into C.

use std::ffi::c_char;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use normal_world::transport::SocketTransport;
use normal_world::{
    request_media_key_system_access_with, ClosedReason, DecryptedSample, EncryptionScheme,
    KeyStatus, KeySystemOptions, MediaKeySession, MediaKeySessionEvent, MediaKeySystemAccess,
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys, MediaKeysRequirement,
    MessageType, OutputWish, SampleDescription, SessionType,
};

use crate::boundary::{c_str, copy_out, guard, opt_c_str, overlaps, read, slice, slice_mut, write};
use crate::handles::Registry;
use crate::status::{Failure, TeeCdmStatus};

/// Longest list a configuration may hold (init data types, capabilities, session types), and
/// most configurations one `tee_cdm_request_access` call may pass.
pub const TEE_CDM_MAX_LIST_LEN: usize = 64;

/// Negotiated access to a key system (EME `MediaKeySystemAccess`). Opaque; from
/// `tee_cdm_request_access`, freed with `tee_cdm_access_free`.
pub struct TeeCdmAccess {
    _opaque: (),
}

/// A CDM instance bound to one secure world (EME `MediaKeys`). Opaque; from
/// `tee_cdm_media_keys_create*`, freed with `tee_cdm_media_keys_free`.
pub struct TeeCdmMediaKeys {
    _opaque: (),
}

/// One license exchange and the keys it loaded (EME `MediaKeySession`). Opaque; from
/// `tee_cdm_session_create`, freed with `tee_cdm_session_free`.
pub struct TeeCdmSession {
    _opaque: (),
}

/// `MediaKeysRequirement` (EME §3.2). The zero value is the dictionary default.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmRequirement {
    /// `"optional"` (the default).
    Optional = 0,
    /// `"required"`.
    Required = 1,
    /// `"not-allowed"`.
    NotAllowed = 2,
}

/// `MediaKeySessionType` (EME §6.2); the values are the ABI's wire values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmSessionType {
    /// `"temporary"`.
    Temporary = 1,
    /// `"persistent-license"` (needs a storage directory).
    PersistentLicense = 2,
}

/// The protection scheme of a sample (ISO/IEC 23001-7 §4.2); the values are the ABI's wire
/// values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmScheme {
    /// `cenc`: AES-128-CTR.
    Cenc = 1,
    /// `cbcs`: AES-128-CBC with a pattern and a constant IV.
    Cbcs = 2,
    /// `cens`: AES-128-CTR with a pattern.
    Cens = 3,
    /// `cbc1`: AES-128-CBC, full.
    Cbc1 = 4,
}

/// `MediaKeyStatus` (EME §6.3.1), or `NONE` for a key the session does not know.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmKeyStatus {
    /// The session has no key with this key ID.
    None = 0,
    /// `"usable"`.
    Usable = 1,
    /// `"expired"`.
    Expired = 2,
    /// `"released"`.
    Released = 3,
    /// `"output-restricted"`.
    OutputRestricted = 4,
    /// `"output-downscaled"`.
    OutputDownscaled = 5,
    /// `"usable-in-future"`.
    UsableInFuture = 6,
    /// `"status-pending"`.
    StatusPending = 7,
    /// `"internal-error"`.
    InternalError = 8,
}

/// `MediaKeyMessageType` (EME §6.4), or `NONE` when the event is not a message.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmMessageType {
    /// Not a message event.
    None = 0,
    /// `"license-request"`.
    LicenseRequest = 1,
    /// `"license-renewal"`.
    LicenseRenewal = 2,
    /// `"license-release"`.
    LicenseRelease = 3,
    /// `"individualization-request"`.
    IndividualizationRequest = 4,
}

/// `MediaKeySessionClosedReason` (EME §6.2), or `NONE` while the session is open.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmClosedReason {
    /// Not closed.
    None = 0,
    /// `"closed-by-application"`.
    ClosedByApplication = 1,
    /// `"release-acknowledged"`.
    ReleaseAcknowledged = 2,
    /// `"hardware-context-reset"` (the secure world was lost).
    HardwareContextReset = 3,
    /// `"resource-evicted"`.
    ResourceEvicted = 4,
    /// `"internal-error"`.
    InternalError = 5,
}

/// What kind of event `tee_cdm_session_next_event` delivered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeCdmEventKind {
    /// No event is queued.
    None = 0,
    /// EME `message`: send the bytes to the license server (for Clear Key, JSON) and pass its
    /// answer to `tee_cdm_session_update`.
    Message = 1,
    /// EME `keystatuseschange`: the session's key statuses changed.
    KeyStatusesChange = 2,
    /// The session closed (EME's `closed` promise resolving); `closed_reason` says why.
    Closed = 3,
}

/// One media capability of a configuration (EME `MediaKeySystemMediaCapability`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmMediaCapability {
    /// MIME type with an RFC 6381 `codecs` parameter, e.g. `video/mp4; codecs="avc1.64001f"`.
    /// Required.
    pub content_type: *const c_char,
    /// `"cenc"`, `"cbcs"` or `"cbcs-1-9"`; NULL for none named (any scheme).
    pub encryption_scheme: *const c_char,
    /// Robustness string; NULL means `""` (the only one `org.w3.clearkey` supports).
    pub robustness: *const c_char,
}

/// A configuration a player asks for (EME `MediaKeySystemConfiguration`). All-zero (`= {0}`)
/// is the dictionary default, which no key system accepts (it names no capability).
///
/// Lists are a pointer and a count (each at most `TEE_CDM_MAX_LIST_LEN`); the pointer may be
/// NULL only when the count is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmConfiguration {
    /// Free-form label, echoed in the negotiated configuration; NULL means `""`.
    pub label: *const c_char,
    /// `initDataTypes`: `"cenc"`, `"keyids"`, `"webm"`, ….
    pub init_data_types: *const *const c_char,
    /// Entries of `init_data_types`.
    pub init_data_types_len: usize,
    /// `audioCapabilities`.
    pub audio_capabilities: *const TeeCdmMediaCapability,
    /// Entries of `audio_capabilities`.
    pub audio_capabilities_len: usize,
    /// `videoCapabilities`.
    pub video_capabilities: *const TeeCdmMediaCapability,
    /// Entries of `video_capabilities`.
    pub video_capabilities_len: usize,
    /// `distinctiveIdentifier`: a `TeeCdmRequirement` value.
    pub distinctive_identifier: u32,
    /// `persistentState`: a `TeeCdmRequirement` value.
    pub persistent_state: u32,
    /// `sessionTypes` (`"temporary"`, `"persistent-license"`). NULL means the member is absent
    /// (`["temporary"]`); non-NULL with a count of 0 is the empty list.
    pub session_types: *const *const c_char,
    /// Entries of `session_types`.
    pub session_types_len: usize,
}

/// One `[clear, protected]` pair of a subsample map (ISO/IEC 23001-7 §7.2.2).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmSubsample {
    /// Bytes in the clear at the start of the subsample.
    pub clear_bytes: u32,
    /// Protected bytes after them.
    pub protected_bytes: u32,
}

/// How one sample is protected: the track's key ID, scheme and pattern and the sample's IV
/// and subsample map. None of its buffers may overlap the sample buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmSampleDescription {
    /// Key ID (16 bytes in CENC; 1..=512 accepted).
    pub key_id: *const u8,
    /// Bytes at `key_id`.
    pub key_id_len: usize,
    /// A `TeeCdmScheme` value.
    pub scheme: u32,
    /// The sample's IV (8 or 16 bytes) or, for `cbcs`, the constant IV (16 bytes).
    pub iv: *const u8,
    /// Bytes at `iv`.
    pub iv_len: usize,
    /// Pattern: encrypted 16-byte blocks (`cbcs`/`cens`; 0 with `skip_byte_block` 0 means no
    /// pattern).
    pub crypt_byte_block: u8,
    /// Pattern: clear 16-byte blocks after them.
    pub skip_byte_block: u8,
    /// The subsample map (sums must equal the sample length); NULL with a count of 0 means the
    /// whole sample is protected.
    pub subsamples: *const TeeCdmSubsample,
    /// Entries of `subsamples` (at most 576).
    pub subsamples_len: usize,
}

/// An event delivered by `tee_cdm_session_next_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TeeCdmEvent {
    /// What happened (`TEE_CDM_EVENT_KIND_NONE` when nothing is queued).
    pub kind: TeeCdmEventKind,
    /// For a message: its type; otherwise `TEE_CDM_MESSAGE_TYPE_NONE`.
    pub message_type: TeeCdmMessageType,
    /// For a closed event: why; otherwise `TEE_CDM_CLOSED_REASON_NONE`.
    pub closed_reason: TeeCdmClosedReason,
    /// For a message: its length in bytes (also when the buffer was too small); otherwise 0.
    pub message_len: usize,
}

struct Access {
    access: MediaKeySystemAccess,
    storage_dir: Option<PathBuf>,
}

struct Session {
    session: MediaKeySession,
    /// An event taken from the session but not yet delivered (its message did not fit the
    /// caller's buffer).
    pending: Mutex<Option<MediaKeySessionEvent>>,
}

static ACCESSES: Registry<Access> = Registry::new("TeeCdmAccess");
static MEDIA_KEYS: Registry<MediaKeys> = Registry::new("TeeCdmMediaKeys");
static SESSIONS: Registry<Session> = Registry::new("TeeCdmSession");

// Handles are used from any thread: the objects behind them must allow it.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Access>();
    shareable::<MediaKeys>();
    shareable::<Session>();
};

fn requirement(value: u32, what: &str) -> Result<MediaKeysRequirement, Failure> {
    match value {
        0 => Ok(MediaKeysRequirement::Optional),
        1 => Ok(MediaKeysRequirement::Required),
        2 => Ok(MediaKeysRequirement::NotAllowed),
        v => Err(Failure::invalid(format!(
            "`{what}` = {v} is not a TeeCdmRequirement"
        ))),
    }
}

fn check_list_len(len: usize, what: &str) -> Result<(), Failure> {
    if len > TEE_CDM_MAX_LIST_LEN {
        return Err(Failure::invalid(format!(
            "`{what}` has {len} entries, more than {TEE_CDM_MAX_LIST_LEN}"
        )));
    }
    Ok(())
}

/// Reads a list of C strings.
///
/// # Safety
///
/// `ptr` must be NULL or point to `len` pointers, each to a NUL-terminated string.
unsafe fn strings(
    ptr: *const *const c_char,
    len: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    check_list_len(len, what)?;
    // SAFETY: the caller's contract on `ptr`.
    let items = unsafe { slice(ptr, len, what)? };
    items
        .iter()
        // SAFETY: each entry points to a NUL-terminated string by the caller's contract.
        .map(|&s| unsafe { c_str(s, what) }.map(str::to_string))
        .collect()
}

/// Reads a list of capabilities.
///
/// # Safety
///
/// `ptr` must be NULL or point to `len` capabilities whose strings follow their field docs.
unsafe fn capabilities(
    ptr: *const TeeCdmMediaCapability,
    len: usize,
    what: &str,
) -> Result<Vec<MediaKeySystemMediaCapability>, Failure> {
    check_list_len(len, what)?;
    // SAFETY: the caller's contract on `ptr`.
    let items = unsafe { slice(ptr, len, what)? };
    items
        .iter()
        .map(|c| {
            // SAFETY: the caller's contract on each capability's strings.
            let (content_type, scheme, robustness) = unsafe {
                (
                    c_str(c.content_type, "content_type")?,
                    opt_c_str(c.encryption_scheme, "encryption_scheme")?,
                    opt_c_str(c.robustness, "robustness")?,
                )
            };
            Ok(MediaKeySystemMediaCapability {
                content_type: content_type.to_string(),
                encryption_scheme: scheme.map(str::to_string),
                robustness: robustness.unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Reads a configuration.
///
/// # Safety
///
/// Every pointer of `c` must follow its field docs.
unsafe fn configuration(c: &TeeCdmConfiguration) -> Result<MediaKeySystemConfiguration, Failure> {
    // SAFETY: the caller's contract on every field of `c`.
    unsafe {
        Ok(MediaKeySystemConfiguration {
            label: opt_c_str(c.label, "label")?.unwrap_or_default().to_string(),
            init_data_types: strings(c.init_data_types, c.init_data_types_len, "init_data_types")?,
            audio_capabilities: capabilities(
                c.audio_capabilities,
                c.audio_capabilities_len,
                "audio_capabilities",
            )?,
            video_capabilities: capabilities(
                c.video_capabilities,
                c.video_capabilities_len,
                "video_capabilities",
            )?,
            distinctive_identifier: requirement(
                c.distinctive_identifier,
                "distinctive_identifier",
            )?,
            persistent_state: requirement(c.persistent_state, "persistent_state")?,
            session_types: if c.session_types.is_null() {
                None
            } else {
                Some(strings(
                    c.session_types,
                    c.session_types_len,
                    "session_types",
                )?)
            },
        })
    }
}

/// EME `requestMediaKeySystemAccess()` (§3.1.1): the first of `configs` that `key_system`
/// supports, reduced to what is supported, as a new access handle in `*out`.
///
/// `storage_dir` (NULL for none) is where the secure world keeps persistent licenses: with it,
/// `persistent_state = REQUIRED` and the `"persistent-license"` session type are supported,
/// and MediaKeys created from this access keep their licenses there (an in-process secure
/// world opens it; a host process is started with `--storage` on it). Its files emulate a
/// device's secure storage, counter and root key (see the README).
///
/// Ownership: `*out` is a new handle owned by the caller; free it with `tee_cdm_access_free`.
/// Nothing passed in is retained (strings are copied).
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT` (a malformed string or list, an unknown
/// `TeeCdmRequirement`), `TYPE_ERROR` (empty key system or no configuration), `NOT_SUPPORTED`
/// (unknown key system, or no configuration is supported). On error `*out` is set to NULL.
///
/// # Safety
///
/// `key_system` must be a NUL-terminated string; `configs` must point to `configs_len`
/// configurations following their field docs (or be NULL with `configs_len` 0);
/// `storage_dir` must be NULL or a NUL-terminated string; `out` must be NULL or valid for a
/// write of a pointer.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_request_access(
    key_system: *const c_char,
    configs: *const TeeCdmConfiguration,
    configs_len: usize,
    storage_dir: *const c_char,
    out: *mut *mut TeeCdmAccess,
) -> TeeCdmStatus {
    guard("tee_cdm_request_access", || {
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, std::ptr::null_mut(), "out")? };
        check_list_len(configs_len, "configs")?;
        // SAFETY: the caller's contract on every argument.
        let (key_system, configs, storage_dir) = unsafe {
            let key_system = c_str(key_system, "key_system")?;
            let configs = slice(configs, configs_len, "configs")?
                .iter()
                .map(|c| configuration(c))
                .collect::<Result<Vec<_>, _>>()?;
            let storage_dir = opt_c_str(storage_dir, "storage_dir")?.map(PathBuf::from);
            (key_system, configs, storage_dir)
        };
        let options = KeySystemOptions {
            storage_dir: storage_dir.clone(),
            ..KeySystemOptions::default()
        };
        let access = request_media_key_system_access_with(key_system, &configs, &options)?;
        let handle = ACCESSES.insert(Access {
            access,
            storage_dir,
        })?;
        // SAFETY: as above.
        unsafe { write(out, handle, "out") }
    })
}

fn requirement_json(r: MediaKeysRequirement) -> serde_json::Value {
    r.as_str().into()
}

fn capabilities_json(caps: &[MediaKeySystemMediaCapability]) -> serde_json::Value {
    caps.iter()
        .map(|c| {
            serde_json::json!({
                "contentType": c.content_type,
                "encryptionScheme": c.encryption_scheme,
                "robustness": c.robustness,
            })
        })
        .collect()
}

/// EME `getConfiguration()`: the negotiated configuration as a NUL-terminated JSON object
/// with the WebIDL member names (`label`, `initDataTypes`, `audioCapabilities`,
/// `videoCapabilities` (each `{contentType, encryptionScheme, robustness}`),
/// `distinctiveIdentifier`, `persistentState`, `sessionTypes`).
///
/// `*needed` is set to the bytes required, NUL included; if `buf_cap` is smaller the answer is
/// `BUFFER_TOO_SMALL` and nothing is copied (call with NULL and 0 to ask the size).
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `buf` must be NULL or valid for writes of `buf_cap` bytes; `needed` must be NULL or point
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_access_get_configuration_json(
    access: *const TeeCdmAccess,
    buf: *mut c_char,
    buf_cap: usize,
    needed: *mut usize,
) -> TeeCdmStatus {
    guard("tee_cdm_access_get_configuration_json", || {
        let a = ACCESSES.get(access)?;
        let c = a.access.get_configuration();
        let json = serde_json::json!({
            "label": c.label,
            "initDataTypes": c.init_data_types,
            "audioCapabilities": capabilities_json(&c.audio_capabilities),
            "videoCapabilities": capabilities_json(&c.video_capabilities),
            "distinctiveIdentifier": requirement_json(c.distinctive_identifier),
            "persistentState": requirement_json(c.persistent_state),
            "sessionTypes": c.session_types,
        });
        let mut text = json.to_string().into_bytes();
        text.push(0);
        // SAFETY: the caller's contract on `buf` and `needed`.
        unsafe { copy_out(&text, buf.cast::<u8>(), buf_cap, needed, "buf") }
    })
}

/// Frees an access handle. MediaKeys created from it stay valid. NULL is accepted and does
/// nothing.
///
/// Thread safety: any thread; a call running on the handle in another thread completes
/// normally, after which the handle is gone.
///
/// Errors: `BAD_HANDLE` (not a live access handle, e.g. freed twice).
#[no_mangle]
pub extern "C" fn tee_cdm_access_free(access: *mut TeeCdmAccess) -> TeeCdmStatus {
    guard("tee_cdm_access_free", || ACCESSES.remove(access))
}

/// EME `createMediaKeys()` (§3.2.2) with the secure world linked into this process (the
/// detected AES engine, the operating system's randomness and clock). With a storage directory
/// in the access, the secure world keeps persistent licenses there.
///
/// Ownership: `*out` is a new handle owned by the caller; free it with
/// `tee_cdm_media_keys_free`.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `NOT_SUPPORTED` (the secure world could not be built,
/// e.g. the storage directory cannot be opened). On error `*out` is set to NULL.
///
/// # Safety
///
/// `out` must be NULL or valid for a write of a pointer.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_media_keys_create(
    access: *const TeeCdmAccess,
    out: *mut *mut TeeCdmMediaKeys,
) -> TeeCdmStatus {
    guard("tee_cdm_media_keys_create", || {
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, std::ptr::null_mut(), "out")? };
        let a = ACCESSES.get(access)?;
        let keys = a.access.create_media_keys()?;
        let handle = MEDIA_KEYS.insert(keys)?;
        // SAFETY: as above.
        unsafe { write(out, handle, "out") }
    })
}

/// EME `createMediaKeys()` with the secure world in its own process: starts the
/// `secure-world-host` executable at `host_path` on a private Unix socket (adding
/// `--storage DIR` when the access has a storage directory) and connects to it. The process
/// serves only this MediaKeys and is shut down when the MediaKeys and all its sessions are
/// freed. If it dies, calls answer `SECURE_WORLD_LOST` and sessions close with
/// `hardware-context-reset`.
///
/// Ownership: `*out` is a new handle owned by the caller; free it with
/// `tee_cdm_media_keys_free`.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT`, `BAD_HANDLE`, `NOT_SUPPORTED` (the process
/// could not be started or reached, or it lacks storage the configuration needs). On error
/// `*out` is set to NULL.
///
/// # Safety
///
/// `host_path` must be a NUL-terminated string; `out` must be NULL or valid for a write of a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_media_keys_create_with_host(
    access: *const TeeCdmAccess,
    host_path: *const c_char,
    out: *mut *mut TeeCdmMediaKeys,
) -> TeeCdmStatus {
    guard("tee_cdm_media_keys_create_with_host", || {
        // SAFETY: the caller's contract on `out` and `host_path`.
        let host_path = unsafe {
            write(out, std::ptr::null_mut(), "out")?;
            c_str(host_path, "host_path")?
        };
        let a = ACCESSES.get(access)?;
        let mut command = Command::new(host_path);
        if let Some(dir) = &a.storage_dir {
            command.arg("--storage").arg(dir);
        }
        let transport = SocketTransport::spawn_command(command).map_err(|e| {
            Failure::new(TeeCdmStatus::NotSupported, format!("createMediaKeys: {e}"))
        })?;
        let keys = a
            .access
            .create_media_keys_with_transport(Box::new(transport))?;
        let handle = MEDIA_KEYS.insert(keys)?;
        // SAFETY: as above.
        unsafe { write(out, handle, "out") }
    })
}

/// Whether the MediaKeys' secure world has been lost (its sessions closed with
/// `hardware-context-reset`); a lost MediaKeys cannot recover: create a new one.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `lost` must be NULL or valid for a write of a `bool`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_media_keys_is_lost(
    keys: *const TeeCdmMediaKeys,
    lost: *mut bool,
) -> TeeCdmStatus {
    guard("tee_cdm_media_keys_is_lost", || {
        let k = MEDIA_KEYS.get(keys)?;
        // SAFETY: the caller's contract on `lost`.
        unsafe { write(lost, k.is_lost(), "lost") }
    })
}

fn scheme(value: u32) -> Result<EncryptionScheme, Failure> {
    u8::try_from(value)
        .ok()
        .and_then(EncryptionScheme::from_wire)
        .ok_or_else(|| Failure::invalid(format!("`scheme` = {value} is not a TeeCdmScheme")))
}

/// Decrypts one sample in place with a usable key of one of the MediaKeys' sessions (the most
/// recently updated session holding `desc->key_id` as usable).
///
/// On success `sample` holds the clear sample. On error it is unchanged.
///
/// Thread safety: any thread; decrypts on one MediaKeys are serialized.
///
/// Errors: `NULL_POINTER`; `INVALID_ARGUMENT` (unknown scheme, a description buffer that
/// overlaps the sample, misaligned `subsamples`); `BAD_HANDLE`; `WAITING_FOR_KEY` (no session
/// holds a usable key for the key ID); `TYPE_ERROR` (a description outside the ABI limits:
/// key ID length, IV length, subsample count or sums, sample over 16 MiB); `DECRYPT_ERROR`
/// (refused by the secure world); `INVALID_ACCESS` (the key's robustness forbids clear
/// output); `SECURE_WORLD_LOST`.
///
/// # Safety
///
/// `sample` must be valid for reads and writes of `sample_len` bytes and not accessed by
/// anything else during the call; `desc` must point to a description whose buffers follow its
/// field docs.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_media_keys_decrypt(
    keys: *const TeeCdmMediaKeys,
    sample: *mut u8,
    sample_len: usize,
    desc: *const TeeCdmSampleDescription,
) -> TeeCdmStatus {
    guard("tee_cdm_media_keys_decrypt", || {
        // SAFETY: the caller's contract on `desc`.
        let d = unsafe { read(desc, "desc")? };
        let scheme = scheme(d.scheme)?;
        // SAFETY: the caller's contract on the description's buffers.
        let (key_id, iv, subsamples) = unsafe {
            (
                slice(d.key_id, d.key_id_len, "key_id")?,
                slice(d.iv, d.iv_len, "iv")?,
                slice(d.subsamples, d.subsamples_len, "subsamples")?,
            )
        };
        let sub_bytes = d.subsamples.cast::<u8>();
        let sub_len = size_of_val(subsamples);
        for (ptr, len, what) in [
            (d.key_id, d.key_id_len, "key_id"),
            (d.iv, d.iv_len, "iv"),
            (sub_bytes, sub_len, "subsamples"),
        ] {
            if overlaps(ptr, len, sample, sample_len) {
                return Err(Failure::invalid(format!("`{what}` overlaps the sample")));
            }
        }
        let pairs: Vec<(u32, u32)> = subsamples
            .iter()
            .map(|s| (s.clear_bytes, s.protected_bytes))
            .collect();
        let k = MEDIA_KEYS.get(keys)?;
        // SAFETY: the caller's contract on `sample`; it overlaps none of the description's
        // buffers (checked above), so the mutable borrow aliases nothing we read.
        let sample = unsafe { slice_mut(sample, sample_len, "sample")? };
        let description = SampleDescription {
            key_id,
            scheme,
            iv,
            pattern: (d.crypt_byte_block, d.skip_byte_block),
            subsamples: &pairs,
            output: OutputWish::InPlace,
        };
        match k.decrypt(sample, &description)? {
            DecryptedSample::InPlace => Ok(()),
            // Not asked for: OutputWish::InPlace never yields a secure buffer.
            DecryptedSample::SecureBuffer(_) => Err(Failure::new(
                TeeCdmStatus::InvalidAccess,
                "decrypt: the sample went to a secure buffer",
            )),
        }
    })
}

/// Frees a MediaKeys handle. Its sessions stay valid (they keep the secure world alive); the
/// secure world (and a host process) goes away with the last of them. NULL is accepted and
/// does nothing.
///
/// Thread safety: any thread; calls running on the handle complete first.
///
/// Errors: `BAD_HANDLE`.
#[no_mangle]
pub extern "C" fn tee_cdm_media_keys_free(keys: *mut TeeCdmMediaKeys) -> TeeCdmStatus {
    guard("tee_cdm_media_keys_free", || MEDIA_KEYS.remove(keys))
}

/// EME `createSession()` (§5.1): a new session of `session_type` (a `TeeCdmSessionType`).
/// Nothing reaches the secure world until `tee_cdm_session_generate_request` or
/// `tee_cdm_session_load`.
///
/// Ownership: `*out` is a new handle owned by the caller; free it with
/// `tee_cdm_session_free`.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `INVALID_ARGUMENT` (unknown session type), `BAD_HANDLE`,
/// `NOT_SUPPORTED` (a session type the negotiated configuration does not list),
/// `SECURE_WORLD_LOST`. On error `*out` is set to NULL.
///
/// # Safety
///
/// `out` must be NULL or valid for a write of a pointer.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_create(
    keys: *const TeeCdmMediaKeys,
    session_type: u32,
    out: *mut *mut TeeCdmSession,
) -> TeeCdmStatus {
    guard("tee_cdm_session_create", || {
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, std::ptr::null_mut(), "out")? };
        let ty = u8::try_from(session_type)
            .ok()
            .and_then(SessionType::from_wire)
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "`session_type` = {session_type} is not a TeeCdmSessionType"
                ))
            })?;
        let k = MEDIA_KEYS.get(keys)?;
        let session = k.create_session(ty)?;
        let handle = SESSIONS.insert(Session {
            session,
            pending: Mutex::new(None),
        })?;
        // SAFETY: as above.
        unsafe { write(out, handle, "out") }
    })
}

/// EME `generateRequest()` (§6.6.2): opens the session in the secure world with `init_data`
/// of `init_data_type` (`"cenc"`: pssh boxes; `"keyids"`: JSON; `"webm"`: a key ID) and
/// queues a `license-request` message event.
///
/// Thread safety: any thread.
///
/// Errors (EME's order): `INVALID_STATE` (closed, or a second call; a failed call counts too),
/// `TYPE_ERROR` (empty type or data, data over 64 KiB or malformed), `NOT_SUPPORTED` (an init
/// data type Clear Key does not know, `cenc` data without a Common SystemID pssh),
/// `QUOTA_EXCEEDED`, `SECURE_WORLD_LOST`; and `NULL_POINTER`, `INVALID_ARGUMENT`, `BAD_HANDLE`.
///
/// # Safety
///
/// `init_data_type` must be a NUL-terminated string; `init_data` must be valid for reads of
/// `init_data_len` bytes (NULL only with 0).
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_generate_request(
    session: *const TeeCdmSession,
    init_data_type: *const c_char,
    init_data: *const u8,
    init_data_len: usize,
) -> TeeCdmStatus {
    guard("tee_cdm_session_generate_request", || {
        // SAFETY: the caller's contract on the arguments.
        let (ty, data) = unsafe {
            (
                c_str(init_data_type, "init_data_type")?,
                slice(init_data, init_data_len, "init_data")?,
            )
        };
        let s = SESSIONS.get(session)?;
        s.session.generate_request(ty, data)?;
        Ok(())
    })
}

/// EME `load()` (§6.6.3): restores the `persistent-license` session stored under
/// `session_id`. `*loaded` is `false` when nothing is stored under it (not an error). On
/// success the key statuses are those of the stored license, a key-statuses-changed event is
/// queued and, for a license removed but never acknowledged, a `license-release` message.
///
/// Thread safety: any thread.
///
/// Errors: `INVALID_STATE` (closed, already initialized, a store rolled back or altered),
/// `TYPE_ERROR` (empty or malformed id, a temporary session), `QUOTA_EXCEEDED` (a session with
/// this id is already open), `SECURE_WORLD_LOST`; `NULL_POINTER`, `INVALID_ARGUMENT`,
/// `BAD_HANDLE`.
///
/// # Safety
///
/// `session_id` must be a NUL-terminated string; `loaded` must be NULL or valid for a write
/// of a `bool`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_load(
    session: *const TeeCdmSession,
    session_id: *const c_char,
    loaded: *mut bool,
) -> TeeCdmStatus {
    guard("tee_cdm_session_load", || {
        // SAFETY: the caller's contract on the arguments.
        let id = unsafe {
            write(loaded, false, "loaded")?;
            c_str(session_id, "session_id")?
        };
        let s = SESSIONS.get(session)?;
        let found = s.session.load(id)?;
        // SAFETY: as above.
        unsafe { write(loaded, found, "loaded") }
    })
}

/// EME `update()` (§6.6.4): passes the license server's answer (for Clear Key a JWK Set,
/// EME §9.1.4) to the secure world; on success the key statuses change and a
/// key-statuses-changed event is queued. A failed update changes nothing.
///
/// The response may hold content keys (Clear Key carries them in clear): the library wipes
/// its own copies; wiping `response` is the caller's job.
///
/// Thread safety: any thread.
///
/// Errors: `INVALID_STATE` (closed, or no request generated yet), `TYPE_ERROR` (empty, over
/// 64 KiB, or not a valid license), `QUOTA_EXCEEDED` (too many keys), `SECURE_WORLD_LOST`;
/// `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `response` must be valid for reads of `response_len` bytes (NULL only with 0).
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_update(
    session: *const TeeCdmSession,
    response: *const u8,
    response_len: usize,
) -> TeeCdmStatus {
    guard("tee_cdm_session_update", || {
        // SAFETY: the caller's contract on `response`.
        let response = unsafe { slice(response, response_len, "response")? };
        let s = SESSIONS.get(session)?;
        s.session.update(response)?;
        Ok(())
    })
}

/// EME `close()` (§6.6.5): closes the session in the secure world (its keys are wiped) and
/// queues a closed event (`closed-by-application`). Closing a closed session does nothing. The
/// handle stays valid until `tee_cdm_session_free`.
///
/// Thread safety: any thread.
///
/// Errors: `INVALID_STATE` (no request generated yet), `SECURE_WORLD_LOST`, `NULL_POINTER`,
/// `BAD_HANDLE`.
#[no_mangle]
pub extern "C" fn tee_cdm_session_close(session: *const TeeCdmSession) -> TeeCdmStatus {
    guard("tee_cdm_session_close", || {
        SESSIONS.get(session)?.session.close()?;
        Ok(())
    })
}

/// EME `remove()` (§6.6.6): releases the session's keys (statuses become `released`, a
/// key-statuses-changed event is queued); a `persistent-license` session also queues a
/// `license-release` message. The session stays open until closed.
///
/// Thread safety: any thread.
///
/// Errors: `INVALID_STATE`, `SECURE_WORLD_LOST`, `NULL_POINTER`, `BAD_HANDLE`.
#[no_mangle]
pub extern "C" fn tee_cdm_session_remove(session: *const TeeCdmSession) -> TeeCdmStatus {
    guard("tee_cdm_session_remove", || {
        SESSIONS.get(session)?.session.remove()?;
        Ok(())
    })
}

/// EME `sessionId`, as a NUL-terminated string (empty until a request is generated or a
/// session loaded). `*needed` is set to the bytes required, NUL included; a smaller
/// `buf_cap` is `BUFFER_TOO_SMALL` (ids are at most 64 characters: 65 bytes always suffice).
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `buf` must be NULL or valid for writes of `buf_cap` bytes; `needed` must be NULL or point
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_id(
    session: *const TeeCdmSession,
    buf: *mut c_char,
    buf_cap: usize,
    needed: *mut usize,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_id", || {
        let s = SESSIONS.get(session)?;
        let mut id = s.session.session_id().into_bytes();
        id.push(0);
        // SAFETY: the caller's contract on `buf` and `needed`.
        unsafe { copy_out(&id, buf.cast::<u8>(), buf_cap, needed, "buf") }
    })
}

/// EME `expiration`: `*has_expiration` is `false` for none (EME's NaN); otherwise
/// `*expiration_ms` is the time in milliseconds since the Unix epoch.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `expiration_ms` and `has_expiration` must be NULL or valid for writes of their types.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_expiration(
    session: *const TeeCdmSession,
    expiration_ms: *mut i64,
    has_expiration: *mut bool,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_expiration", || {
        let s = SESSIONS.get(session)?;
        let expiration = s.session.expiration();
        // SAFETY: the caller's contract on both out-parameters.
        unsafe {
            write(has_expiration, expiration.is_some(), "has_expiration")?;
            write(expiration_ms, expiration.unwrap_or(0), "expiration_ms")
        }
    })
}

fn closed_reason(r: Option<ClosedReason>) -> TeeCdmClosedReason {
    match r {
        None => TeeCdmClosedReason::None,
        Some(ClosedReason::ClosedByApplication) => TeeCdmClosedReason::ClosedByApplication,
        Some(ClosedReason::ReleaseAcknowledged) => TeeCdmClosedReason::ReleaseAcknowledged,
        Some(ClosedReason::HardwareContextReset) => TeeCdmClosedReason::HardwareContextReset,
        Some(ClosedReason::ResourceEvicted) => TeeCdmClosedReason::ResourceEvicted,
        Some(ClosedReason::InternalError) => TeeCdmClosedReason::InternalError,
    }
}

fn message_type(t: MessageType) -> TeeCdmMessageType {
    match t {
        MessageType::LicenseRequest => TeeCdmMessageType::LicenseRequest,
        MessageType::LicenseRenewal => TeeCdmMessageType::LicenseRenewal,
        MessageType::LicenseRelease => TeeCdmMessageType::LicenseRelease,
        MessageType::IndividualizationRequest => TeeCdmMessageType::IndividualizationRequest,
    }
}

fn key_status(s: Option<KeyStatus>) -> TeeCdmKeyStatus {
    match s {
        None => TeeCdmKeyStatus::None,
        Some(KeyStatus::Usable) => TeeCdmKeyStatus::Usable,
        Some(KeyStatus::Expired) => TeeCdmKeyStatus::Expired,
        Some(KeyStatus::Released) => TeeCdmKeyStatus::Released,
        Some(KeyStatus::OutputRestricted) => TeeCdmKeyStatus::OutputRestricted,
        Some(KeyStatus::OutputDownscaled) => TeeCdmKeyStatus::OutputDownscaled,
        Some(KeyStatus::UsableInFuture) => TeeCdmKeyStatus::UsableInFuture,
        Some(KeyStatus::StatusPending) => TeeCdmKeyStatus::StatusPending,
        Some(KeyStatus::InternalError) => TeeCdmKeyStatus::InternalError,
    }
}

/// EME `closed`: the reason once the session has closed, `TEE_CDM_CLOSED_REASON_NONE` while
/// it is open.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `reason` must be NULL or valid for a write of a `TeeCdmClosedReason`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_closed_reason(
    session: *const TeeCdmSession,
    reason: *mut TeeCdmClosedReason,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_closed_reason", || {
        let s = SESSIONS.get(session)?;
        // SAFETY: the caller's contract on `reason`.
        unsafe { write(reason, closed_reason(s.session.closed()), "reason") }
    })
}

/// Delivers the session's oldest undelivered event (non-blocking polling; events are queued
/// by the calls that cause them, in order): `event->kind` is `TEE_CDM_EVENT_KIND_NONE` when
/// there is none.
///
/// For a message, its bytes are copied to `message` and `event->message_len` is their
/// length. If `message_cap` is smaller, the answer is `BUFFER_TOO_SMALL` with `*event` filled
/// in (`message_len` is the size needed) and the event stays queued: call again with a larger
/// buffer. `message` may be NULL only if `message_cap` is 0. Clear Key messages are JSON and
/// hold no secrets.
///
/// Thread safety: any thread; two threads polling one session each get different events.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `event` must be NULL or valid for a write of a `TeeCdmEvent`; `message` must be NULL or
/// valid for writes of `message_cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_next_event(
    session: *const TeeCdmSession,
    event: *mut TeeCdmEvent,
    message: *mut u8,
    message_cap: usize,
) -> TeeCdmStatus {
    guard("tee_cdm_session_next_event", || {
        if event.is_null() {
            return Err(Failure::null("event"));
        }
        let s = SESSIONS.get(session)?;
        let mut pending = s.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_none() {
            *pending = s.session.next_event();
        }
        let mut out = TeeCdmEvent {
            kind: TeeCdmEventKind::None,
            message_type: TeeCdmMessageType::None,
            closed_reason: TeeCdmClosedReason::None,
            message_len: 0,
        };
        match pending.as_ref() {
            None => {}
            Some(MediaKeySessionEvent::KeyStatusesChange) => {
                out.kind = TeeCdmEventKind::KeyStatusesChange;
            }
            Some(MediaKeySessionEvent::Closed(reason)) => {
                out.kind = TeeCdmEventKind::Closed;
                out.closed_reason = closed_reason(Some(*reason));
            }
            Some(MediaKeySessionEvent::Message {
                message_type: ty,
                message: bytes,
            }) => {
                out.kind = TeeCdmEventKind::Message;
                out.message_type = message_type(*ty);
                out.message_len = bytes.len();
                if bytes.len() > message_cap {
                    // SAFETY: the caller's contract on `event`.
                    unsafe { write(event, out, "event")? };
                    return Err(Failure::new(
                        TeeCdmStatus::BufferTooSmall,
                        format!(
                            "the message is {} bytes, `message_cap` is {message_cap}",
                            bytes.len()
                        ),
                    ));
                }
                // SAFETY: the caller's contract on `message`; `bytes.len()` ≤ `message_cap`.
                let dst = unsafe { slice_mut(message, bytes.len(), "message")? };
                dst.copy_from_slice(bytes);
            }
        }
        // SAFETY: the caller's contract on `event`.
        unsafe { write(event, out, "event")? };
        *pending = None;
        Ok(())
    })
}

/// EME `keyStatuses.get()`: the status of the key `key_id` in the session, or
/// `TEE_CDM_KEY_STATUS_NONE` if the session has no such key.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `key_id` must be valid for reads of `key_id_len` bytes (NULL only with 0); `status` must
/// be NULL or valid for a write of a `TeeCdmKeyStatus`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_key_status(
    session: *const TeeCdmSession,
    key_id: *const u8,
    key_id_len: usize,
    status: *mut TeeCdmKeyStatus,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_key_status", || {
        // SAFETY: the caller's contract on `key_id`.
        let kid = unsafe { slice(key_id, key_id_len, "key_id")? };
        let s = SESSIONS.get(session)?;
        let st = key_status(s.session.key_statuses().get(kid));
        // SAFETY: the caller's contract on `status`.
        unsafe { write(status, st, "status") }
    })
}

/// EME `keyStatuses.size`: how many keys the session knows. With
/// `tee_cdm_session_get_key_at` a caller can list them (the map may change between calls if
/// another thread uses the session).
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`.
///
/// # Safety
///
/// `count` must be NULL or valid for a write of a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_key_count(
    session: *const TeeCdmSession,
    count: *mut usize,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_key_count", || {
        let s = SESSIONS.get(session)?;
        // SAFETY: the caller's contract on `count`.
        unsafe { write(count, s.session.key_statuses().len(), "count") }
    })
}

/// The `index`-th key of the session's status map (load order): its key ID into `key_id`
/// (`*key_id_len` is set to its length; a smaller `key_id_cap` is `BUFFER_TOO_SMALL`; 512
/// bytes always suffice) and its status into `*status`.
///
/// Thread safety: any thread.
///
/// Errors: `NULL_POINTER`, `BAD_HANDLE`, `INVALID_ARGUMENT` (`index` ≥ the key count),
/// `BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `key_id` must be NULL or valid for writes of `key_id_cap` bytes; `key_id_len` and `status`
/// must be NULL or valid for writes of their types.
#[no_mangle]
pub unsafe extern "C" fn tee_cdm_session_get_key_at(
    session: *const TeeCdmSession,
    index: usize,
    key_id: *mut u8,
    key_id_cap: usize,
    key_id_len: *mut usize,
    status: *mut TeeCdmKeyStatus,
) -> TeeCdmStatus {
    guard("tee_cdm_session_get_key_at", || {
        if status.is_null() {
            return Err(Failure::null("status"));
        }
        let s = SESSIONS.get(session)?;
        let map = s.session.key_statuses();
        let (kid, st) = map.iter().nth(index).ok_or_else(|| {
            Failure::invalid(format!("`index` {index} ≥ key count {}", map.len()))
        })?;
        // SAFETY: the caller's contract on the out-parameters.
        unsafe {
            copy_out(kid, key_id, key_id_cap, key_id_len, "key_id")?;
            write(status, key_status(Some(st)), "status")
        }
    })
}

/// Frees a session handle; an open session is closed in the secure world first (its keys are
/// wiped), without events. NULL is accepted and does nothing.
///
/// Thread safety: any thread; calls running on the handle complete first.
///
/// Errors: `BAD_HANDLE`.
#[no_mangle]
pub extern "C" fn tee_cdm_session_free(session: *mut TeeCdmSession) -> TeeCdmStatus {
    guard("tee_cdm_session_free", || SESSIONS.remove(session))
}

// The numeric values C sees are the ABI's wire values.
const _: () = {
    assert!(TeeCdmSessionType::Temporary as u32 == SessionType::Temporary.to_wire() as u32);
    assert!(
        TeeCdmSessionType::PersistentLicense as u32
            == SessionType::PersistentLicense.to_wire() as u32
    );
    assert!(TeeCdmScheme::Cenc as u32 == EncryptionScheme::Cenc.to_wire() as u32);
    assert!(TeeCdmScheme::Cbcs as u32 == EncryptionScheme::Cbcs.to_wire() as u32);
    assert!(TeeCdmScheme::Cens as u32 == EncryptionScheme::Cens.to_wire() as u32);
    assert!(TeeCdmScheme::Cbc1 as u32 == EncryptionScheme::Cbc1.to_wire() as u32);
};
