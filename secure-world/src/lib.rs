//! # secure-world — the tee-cdm trusted application
//!
//! The secure world is a function from bytes to bytes: [`SecureWorld::process`] takes one
//! request message of the `cdm_core::abi` message ABI (plus, for `Decrypt`, the shared sample
//! buffer) and writes exactly one response message. Decode failures become encoded error
//! responses; nothing on any input panics. A transport (in-process call, socket host, a TEE
//! entry point) is a thin adapter that copies the request out of shared memory and calls
//! `process`.
//!
//! What it holds, and the rules it enforces:
//! - **Sessions** ([`Config::max_sessions`], default 32): unguessable non-zero `u64` handles
//!   from the platform RNG, a separate random EME session id, the EME state machine of
//!   `generateRequest` / `update` / `remove` / `close` (EME §6.6). Only `temporary` sessions:
//!   there is no persistent storage yet, so `persistent-license` sessions and `Load` answer
//!   `NotSupported`.
//! - **Key slots** ([`Config::max_keys_per_session`], default 32): the AES key schedule
//!   (zeroized on drop), the key ID and the EME key status. The raw content key is wiped as
//!   soon as it is expanded.
//! - **Decryption** with the platform's AES engine, enforcing the session's robustness:
//!   `SW_SECURE_CRYPTO` decrypts in place in the shared buffer; `HW_SECURE_DECODE` decrypts
//!   only into secure buffers ([`Config::max_secure_buffers`],
//!   [`Config::max_secure_buffer_bytes`]) that go to the secure output sink.
//! - **Sealed records** ([`sealed`]): the format in which persistent state will leave the
//!   secure world for the normal world's store — AES-256-GCM-SIV under per-purpose keys
//!   derived from the device root key, with the record's name and generation authenticated.
//!   Not yet wired to storage.
//!
//! The crate is `no_std` + `alloc` and forbids `unsafe`. All allocation is fallible
//! (`try_reserve`); allocation failure answers `OutOfMemory` and changes nothing. (The
//! Clear Key and init data parsers of `cdm-core` still allocate infallibly; see the crate
//! docs there.) The platform services come from [`hal::platform::Platform`]: `std` builds
//! can use `hal::platform::StdPlatform`, bare-metal integrators supply their own
//! implementations of the `hal::platform` traits.
//!
//! ## An integrator's view
//!
//! A TEE integrator supplies the platform services (here toy ones; a device uses its TRNG,
//! secure clock and secure video path), builds the secure world once and calls `process` for
//! every message the normal world sends:
//!
//! ```
//! use cdm_core::abi::{parse_response, GetCapabilities, Operation};
//! use hal::aes::Engine;
//! use hal::platform::{Clock, OutputError, Platform, RngError, SecureOutputSink, SecureRandom};
//! use secure_world::{Config, SecureWorld};
//!
//! /// A device's TRNG. (This counter is for the example only: never use it for real.)
//! struct Trng(core::cell::Cell<u8>);
//! impl SecureRandom for Trng {
//!     fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
//!         for b in out {
//!             self.0.set(self.0.get().wrapping_add(151));
//!             *b = self.0.get();
//!         }
//!         Ok(())
//!     }
//! }
//! /// The TEE's secure clock, in ms since the Unix epoch.
//! struct SecureClock;
//! impl Clock for SecureClock {
//!     fn now_ms(&self) -> Option<i64> {
//!         Some(1_767_225_600_000)
//!     }
//! }
//! /// The secure video path (unused without HW_SECURE_DECODE).
//! struct NoVideoPath;
//! impl SecureOutputSink for NoVideoPath {
//!     fn render(&mut self, _frame: &[u8]) -> Result<[u8; 32], OutputError> {
//!         Err(OutputError::Unavailable)
//!     }
//! }
//!
//! let platform = Platform::new(Trng(0.into()), SecureClock, NoVideoPath, Engine::detect());
//! let config = Config { hw_secure_decode: false, ..Config::default() };
//! let mut world = SecureWorld::new(platform, config).expect("valid configuration");
//!
//! // One message in, one message out (the normal world encodes; the TEE entry copies it in).
//! let mut request = Vec::new();
//! GetCapabilities.encode_message(0, 1, &mut request).unwrap();
//! let mut response = Vec::new();
//! world.process(&request, &mut [], &mut response);
//! let (header, caps) = parse_response::<GetCapabilities>(&response).unwrap();
//! assert_eq!(header.request_id, 1);
//! let caps = caps.expect("success");
//! assert_eq!(caps.engine, Engine::detect().name());
//! assert_eq!(caps.max_sessions, 32);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// no_std discipline, checked by the compiler: reach for `core` and `alloc` first.
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

extern crate alloc;

mod config;
mod decrypt;
mod error;
mod fallible;
mod key_slot;
mod protected;
pub mod sealed;
mod secure_buffer;
mod session;
mod store;
mod world;

pub use config::{
    Config, ConfigError, DEFAULT_MAX_KEYS_PER_SESSION, DEFAULT_MAX_LICENSE_RECORD_LEN,
    DEFAULT_MAX_PERSISTENT_LICENSES, DEFAULT_MAX_SECURE_BUFFERS, DEFAULT_MAX_SECURE_BUFFER_BYTES,
    DEFAULT_MAX_SESSIONS,
};
pub use world::SecureWorld;
