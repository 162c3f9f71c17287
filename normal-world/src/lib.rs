//! # normal-world — the tee-cdm host
//!
//! The player-facing side of the CDM, shaped like the W3C Encrypted Media Extensions API:
//!
//! - [`request_media_key_system_access`] negotiates a [`MediaKeySystemConfiguration`]
//!   (EME §3.1.1) and yields a [`MediaKeySystemAccess`];
//! - [`MediaKeys`] creates [`MediaKeySession`]s and decrypts samples for the player
//!   ([`MediaKeys::decrypt`]), in place (`SW_SECURE_CRYPTO`) or into secure buffers
//!   (`HW_SECURE_DECODE`);
//! - [`MediaKeySession`] runs the license exchange (`generate_request`, `update`, `remove`,
//!   `close`) and queues `message` / `keystatuseschange` events that the player drains with
//!   [`MediaKeySession::next_event`];
//! - [`transport`] carries the message ABI to the secure world: in process (zero copy) or to
//!   a `secure-world-host` process over a Unix socket. If the secure world dies, every
//!   session closes with `hardware-context-reset` and a new `MediaKeys` starts afresh.
//!
//! Errors are [`EmeError`]s named after EME's exceptions.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A std crate: the no_std discipline lints of the workspace do not apply here.
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
// "Never panics on input", as in the no_std crates: checked arithmetic and fallible access on
// every path that sees bytes from the player or the secure world. Unit tests may unwrap.
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

pub mod access;
pub mod config;
mod content_type;
pub mod decrypt;
pub mod error;
mod link;
pub mod media_keys;
pub mod session;
mod session_state;
pub mod transport;

pub use access::{request_media_key_system_access, MediaKeySystemAccess};
pub use cdm_core::eme::{
    ClosedReason, EncryptionScheme, KeyStatus, MessageType, Robustness, SessionType,
};
pub use config::{
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeysRequirement,
};
pub use decrypt::{
    DecryptedSample, OutputWish, RenderedSample, SampleDescription, SecureBufferHandle,
};
pub use error::EmeError;
pub use media_keys::MediaKeys;
pub use session::MediaKeySession;
pub use session_state::{MediaKeySessionEvent, MediaKeyStatusMap};
