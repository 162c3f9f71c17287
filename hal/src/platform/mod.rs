//! Platform services the secure world is built with: randomness, a clock and the secure
//! output sink, gathered with the AES [`Engine`] in one [`Platform`] value; and the persistent
//! services — [`SecureStorage`], [`MonotonicCounter`], [`DeviceRootKey`] — that persistent
//! licenses and the device identity need (not yet part of [`Platform`]: each is a plain trait
//! with no associated types, so a wider `Platform` or a second bundle can carry them as further
//! type parameters, or as trait objects).
//!
//! Each service is a small trait so that a TEE integrator can supply its own implementation
//! (the TEE's hardware RNG, its trusted time source, its secure video path, its secure storage,
//! RPMB counter and hardware-unique key). The `std` feature provides host implementations
//! backed by `ring` and the operating system: [`SystemRandom`], [`SystemClock`] and
//! [`DigestSink`]; on Unix also [`FileStorage`], [`FileCounter`] and [`FileRootKey`], which
//! *emulate* the persistent services with files and give none of the protection of the
//! hardware they stand in for (each type's docs say what a device supplies instead). `no_std`
//! builds (e.g. `aarch64-unknown-none`) get only the traits: `ring` does not build for
//! bare-metal targets, so the integrator must implement [`SecureRandom`], [`Clock`] and
//! [`SecureOutputSink`] for the platform and pass them to [`Platform::new`].

#[cfg(all(feature = "std", unix))]
mod atomic_file;
mod clock;
mod counter;
mod output;
mod rng;
mod root_key;
mod storage;

pub use clock::Clock;
#[cfg(feature = "std")]
pub use clock::SystemClock;
#[cfg(all(feature = "std", unix))]
pub use counter::FileCounter;
pub use counter::{CounterError, MonotonicCounter};
#[cfg(feature = "std")]
pub use output::DigestSink;
pub use output::{OutputError, SecureOutputSink, DIGEST_LEN};
#[cfg(feature = "std")]
pub use rng::SystemRandom;
pub use rng::{RngError, SecureRandom};
#[cfg(all(feature = "std", unix))]
pub use root_key::FileRootKey;
pub use root_key::{DeviceRootKey, RootKey, RootKeyError, ROOT_KEY_LEN};
#[cfg(all(feature = "std", unix))]
pub use storage::FileStorage;
pub use storage::{BlobName, SecureStorage, StorageError, MAX_BLOB_LEN, MAX_NAME_LEN};

use crate::aes::Engine;

/// Everything the secure world needs from the platform, in one value (the "provider" the
/// trusted application is built with).
///
/// The fields are public: the secure world owns the bundle and reaches each service directly.
#[derive(Debug)]
pub struct Platform<R, C, S> {
    /// Source of unguessable handles and session ids.
    pub rng: R,
    /// Trusted time, for license expiry.
    pub clock: C,
    /// The secure decoder/renderer that consumes `HW_SECURE_DECODE` output.
    pub sink: S,
    /// The AES engine chosen for this device (detection already ran).
    pub engine: Engine,
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> Platform<R, C, S> {
    /// Bundles the services with an engine (usually [`Engine::detect`]).
    pub fn new(rng: R, clock: C, sink: S, engine: Engine) -> Self {
        Platform {
            rng,
            clock,
            sink,
            engine,
        }
    }
}

/// The host platform: OS randomness, the system clock and a digest-reporting sink.
#[cfg(feature = "std")]
pub type StdPlatform = Platform<SystemRandom, SystemClock, DigestSink>;

#[cfg(feature = "std")]
impl StdPlatform {
    /// The host services with the detected AES engine ([`Engine::detect`]).
    pub fn host() -> Self {
        Platform::new(
            SystemRandom::new(),
            SystemClock,
            DigestSink::new(),
            Engine::detect(),
        )
    }
}
