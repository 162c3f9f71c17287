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
//!
//! ## A player's view
//!
//! Negotiate access, create `MediaKeys` and a session, pass the `message` to the license
//! server and its answer to `update`, then decrypt samples. Here the secure world runs in
//! process (feature `in-process`; a player on a device uses `create_media_keys_with_transport`
//! with a [`transport::SocketTransport`]) and the test kit plays the license server and the
//! packager:
//!
//! ```
//! use normal_world::{
//!     request_media_key_system_access, DecryptedSample, EncryptionScheme, KeyStatus,
//!     MediaKeySessionEvent, MediaKeySystemConfiguration, MediaKeySystemMediaCapability,
//!     OutputWish, SampleDescription, SessionType,
//! };
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (kid, key) = ([0x11u8; 16], [0x22u8; 16]);
//!
//! // requestMediaKeySystemAccess → createMediaKeys → createSession.
//! let config = MediaKeySystemConfiguration {
//!     init_data_types: vec!["cenc".into()],
//!     video_capabilities: vec![
//!         MediaKeySystemMediaCapability::new("video/mp4; codecs=\"avc1.64001f\"")
//!             .with_scheme("cbcs"),
//!     ],
//!     ..Default::default()
//! };
//! let access = request_media_key_system_access("org.w3.clearkey", &[config])?;
//! let media_keys = access.create_media_keys()?;
//! let session = media_keys.create_session(SessionType::Temporary)?;
//!
//! // generateRequest with the file's pssh; the `message` event carries the license request.
//! session.generate_request("cenc", &cdm_testkit::cenc::pssh_v1(&[&kid]))?;
//! let Some(MediaKeySessionEvent::Message { message, .. }) = session.next_event() else {
//!     panic!("a license request");
//! };
//! let license = cdm_testkit::clearkey::answer(&message, &[(&kid, &key)])?;
//! session.update(&license)?;
//! assert_eq!(session.key_statuses().get(&kid), Some(KeyStatus::Usable));
//!
//! // Decrypt a cbcs 1:9 sample in place: a clear 5-byte header, then the protected bytes.
//! let clear = cdm_testkit::cenc::plaintext(1000);
//! let mut sample = clear.clone();
//! let subsamples = [(5, 995)];
//! cdm_testkit::cenc::encrypt_cbcs(&key, &[7; 16], &mut sample, &subsamples, (1, 9));
//! let description = SampleDescription {
//!     key_id: &kid,
//!     scheme: EncryptionScheme::Cbcs,
//!     iv: &[7; 16],
//!     pattern: (1, 9),
//!     subsamples: &subsamples,
//!     output: OutputWish::Auto,
//! };
//! assert_eq!(media_keys.decrypt(&mut sample, &description)?, DecryptedSample::InPlace);
//! assert_eq!(sample, clear);
//! session.close()?;
//! # Ok(())
//! # }
//! ```
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
pub mod session_manager;
mod session_state;
pub mod transport;

pub use access::{
    request_media_key_system_access, request_media_key_system_access_with, KeySystemOptions,
    MediaKeySystemAccess,
};
pub use cdm_core::eme::{
    ClosedReason, EncryptionScheme, HdcpVersion, KeyStatus, KeySystem, MessageType, Robustness,
    SessionType,
};
pub use config::{
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeysRequirement,
};
pub use decrypt::{
    DecryptedSample, OutputWish, RenderedSample, SampleDescription, SecureBufferHandle,
};
pub use error::EmeError;
pub use media_keys::{MediaKeys, SampleBuffer};
pub use session::MediaKeySession;
pub use session_state::{MediaKeySessionEvent, MediaKeyStatusMap};
