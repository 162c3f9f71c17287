//! # cdm-ffi — the C ABI of tee-cdm
//!
//! Both sides of the CDM for C programs, in one library (`libtee_cdm.a` / `libtee_cdm.so`)
//! with one header, `include/tee_cdm.h`, generated from this crate by cbindgen:
//!
//! - **Secure-world side** (`tee_cdm_sw_*`), for TEE integrators: a secure world built with
//!   platform services supplied as C callbacks (randomness, trusted time, the secure output
//!   sink; optionally secure storage, a monotonic counter and the device root key), and its one
//!   entry point, `tee_cdm_sw_process`: an ABI request message in, a response message out,
//!   plus the shared sample buffer (`docs/abi.md`).
//! - **Host side** (`tee_cdm_*`), for media stacks in C, shaped like the EME API (and OCDM's
//!   `opencdm_*` functions): key-system access negotiation, MediaKeys (the secure world in
//!   this process, or in a `secure-world-host` process), sessions (`generate_request`,
//!   `update`, `load`, `remove`, `close`), events drained by polling, key statuses, and
//!   decryption of samples in place.
//!
//! ## Rules of the boundary
//!
//! - **Status codes.** Every function that can fail returns a [`TeeCdmStatus`]; 0 is success.
//!   EME's exceptions map to their own codes. The calling thread's last error message says
//!   more: [`tee_cdm_last_error_message`].
//! - **Ownership.** No allocation crosses the boundary unowned. Objects are opaque handles,
//!   freed by this library's `_free` / `_destroy` functions. Variable-size answers go into
//!   buffers the caller provides, with the size needed reported
//!   (`TEE_CDM_STATUS_BUFFER_TOO_SMALL`, then call again). Nothing the caller passes in is
//!   retained after a call returns, except the callbacks and `ctx` of a secure world.
//! - **Checked arguments.** NULL pointers, undersized buffers, misaligned pointers, overlapping
//!   buffers, unknown enumeration values, strings that are not UTF-8 and stale or foreign handles
//!   are error codes, never undefined behaviour inside the library. Handles are tokens looked up
//!   in a registry, not pointers: a freed handle is `TEE_CDM_STATUS_BAD_HANDLE`.
//! - **Panics** never cross into C: every exported function catches them and answers
//!   `TEE_CDM_STATUS_PANIC` (none are expected).
//! - **Thread safety** is stated on every function. In short: host functions may be called from
//!   any thread, concurrently; a secure world serializes its calls; the last error message is
//!   per thread.
//!
//! `unsafe` code in tee-cdm lives in this crate (and in `hal`'s intrinsics); each block says
//! why it is sound in a `// SAFETY:` comment.
//!
//! ## std
//!
//! The library is built for std targets (Linux here). The secure-world side's logic needs
//! only `core` and `alloc`, like the secure world; the boundary glue around it (`catch_unwind`,
//! a mutex-guarded handle registry) uses std. A `no_std` build for a bare-metal TEE is not
//! provided yet.
#![warn(missing_docs)]
// A std crate at the C boundary; the no_std discipline lints do not apply (secure.rs opts in).
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
// "Never panics on input", as in the other crates: checked arithmetic and fallible access on
// every path that sees bytes or lengths from C. Unit tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

extern crate alloc;

mod boundary;
mod handles;
mod host;
mod secure;
mod status;

pub use boundary::TEE_CDM_MAX_STRING_LEN;
pub use host::{
    tee_cdm_access_free, tee_cdm_access_get_configuration_json, tee_cdm_media_keys_create,
    tee_cdm_media_keys_create_with_host, tee_cdm_media_keys_decrypt, tee_cdm_media_keys_free,
    tee_cdm_media_keys_is_lost, tee_cdm_request_access, tee_cdm_session_close,
    tee_cdm_session_create, tee_cdm_session_free, tee_cdm_session_generate_request,
    tee_cdm_session_get_closed_reason, tee_cdm_session_get_expiration, tee_cdm_session_get_id,
    tee_cdm_session_get_key_at, tee_cdm_session_get_key_count, tee_cdm_session_get_key_status,
    tee_cdm_session_load, tee_cdm_session_next_event, tee_cdm_session_remove,
    tee_cdm_session_update, TeeCdmAccess, TeeCdmClosedReason, TeeCdmConfiguration, TeeCdmEvent,
    TeeCdmEventKind, TeeCdmKeyStatus, TeeCdmMediaCapability, TeeCdmMediaKeys, TeeCdmMessageType,
    TeeCdmRequirement, TeeCdmSampleDescription, TeeCdmScheme, TeeCdmSession, TeeCdmSessionType,
    TeeCdmSubsample, TEE_CDM_MAX_LIST_LEN,
};
pub use secure::{
    tee_cdm_sw_create, tee_cdm_sw_destroy, tee_cdm_sw_process, tee_cdm_sw_storage_fault,
    TeeCdmSecureWorld, TeeCdmSwAppendFn, TeeCdmSwConfig, TeeCdmSwPersistence, TeeCdmSwPlatform,
    TeeCdmSwResult, TeeCdmSwSink, TEE_CDM_SW_DIGEST_LEN, TEE_CDM_SW_MAX_BLOB_LEN,
    TEE_CDM_SW_MAX_BLOB_NAME_LEN, TEE_CDM_SW_MAX_REQUEST_LEN, TEE_CDM_SW_MAX_RESPONSE_LEN,
    TEE_CDM_SW_ROBUSTNESS_HW_SECURE_DECODE, TEE_CDM_SW_ROBUSTNESS_SW_SECURE_CRYPTO,
    TEE_CDM_SW_ROOT_KEY_LEN,
};
pub use status::{tee_cdm_last_error_message, tee_cdm_status_name, TeeCdmStatus};
