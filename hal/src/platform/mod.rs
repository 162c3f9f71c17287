//! Platform services the secure world is built with: randomness, a clock and the secure
//! output sink, gathered with the AES [`Engine`] in one [`Platform`] value; and the persistent
//! services — [`SecureStorage`], [`MonotonicCounter`], [`DeviceRootKey`] — that persistent
//! licenses need, passed separately to `SecureWorld::with_storage` (a secure world without
//! them serves temporary sessions only). On a std host, [`HostPersistence`] opens all three
//! from one directory.
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
#[cfg(all(feature = "std", unix))]
pub mod crash_test;
mod output;
mod output_protection;
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
pub use output_protection::EmulatedOutputProtection;
pub use output_protection::{Hdcp, NoOutputProtection, OutputProtection};
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
    /// The HDCP level of the outputs, for keys with a minimum HDCP version
    /// ([`NoOutputProtection`] unless [`Platform::with_output_protection`] sets one).
    pub output_protection: alloc::boxed::Box<dyn OutputProtection>,
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> Platform<R, C, S> {
    /// Bundles the services with an engine (usually [`Engine::detect`]).
    pub fn new(rng: R, clock: C, sink: S, engine: Engine) -> Self {
        Platform {
            rng,
            clock,
            sink,
            engine,
            output_protection: alloc::boxed::Box::new(NoOutputProtection),
        }
    }

    /// The same platform with `protection` reporting the outputs' HDCP level.
    pub fn with_output_protection(mut self, protection: impl OutputProtection + 'static) -> Self {
        self.output_protection = alloc::boxed::Box::new(protection);
        self
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

/// The host emulations of the three persistent services, laid out in one directory:
///
/// | path | service | stands in for |
/// |---|---|---|
/// | `DIR/store/` | [`FileStorage`] | the TEE's secure storage (in the normal world's file system, as OP-TEE's REE FS keeps it) |
/// | `DIR/counter` | [`FileCounter`] | an RPMB or fuse counter the normal world cannot rewind |
/// | `DIR/root-key` | [`FileRootKey`] | the hardware-unique key |
///
/// Only `DIR/store/` models what an attacker on a device controls: rolling back, altering or
/// swapping its files is what the secure world detects. The two files beside it emulate
/// hardware and protect nothing here (whoever can rewrite `DIR/counter` or read
/// `DIR/root-key` defeats both); a device supplies the real services.
#[cfg(all(feature = "std", unix))]
#[derive(Debug)]
pub struct HostPersistence {
    /// `DIR/store/`.
    pub storage: FileStorage,
    /// `DIR/counter`.
    pub counter: FileCounter,
    /// `DIR/root-key` (generated, mode 0600, on first use).
    pub root_key: FileRootKey,
}

#[cfg(all(feature = "std", unix))]
impl HostPersistence {
    /// Opens (creating what is missing, mode 0700) the layout above under `dir`.
    pub fn open(dir: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref();
        Ok(HostPersistence {
            storage: FileStorage::open(dir.join("store"))?,
            counter: FileCounter::open(dir.join("counter"))?,
            root_key: FileRootKey::open(dir.join("root-key"))?,
        })
    }
}
