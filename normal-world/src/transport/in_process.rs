//! The secure world linked into this process.
//!
//! The thinnest adapter around `SecureWorld::process`: the request and response buffers are
//! handed over as they are, and the player's sample buffer is the shared sample buffer, so a
//! `SW_SECURE_CRYPTO` decrypt happens in place where the player's bytes lie (zero copy).
//! The secure world never fails as a transport: every problem is an encoded error response.

use hal::platform::{
    Clock, DigestSink, Platform, SecureOutputSink, SecureRandom, StdPlatform, SystemClock,
    SystemRandom,
};
use secure_world::{Config, SecureWorld};

use super::{Transport, TransportError};

/// A [`Transport`] that calls a secure world in this process. Generic over the platform
/// services; the defaults are the host ones (`ring` randomness, the system clock, a
/// digest-reporting output sink, the detected AES engine).
pub struct InProcessTransport<R = SystemRandom, C = SystemClock, S = DigestSink> {
    world: SecureWorld<R, C, S>,
}

impl<R, C, S> std::fmt::Debug for InProcessTransport<R, C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport").finish_non_exhaustive()
    }
}

impl InProcessTransport {
    /// A secure world with the default [`Config`] on the host platform
    /// (`StdPlatform::host()`, which detects the AES engine once).
    pub fn new() -> Result<Self, TransportError> {
        Self::with_config(Config::default())
    }

    /// A secure world with `config` on the host platform that keeps persistent licenses in
    /// `dir` (hal's host emulations of secure storage, counter and root key: see
    /// `hal::platform::HostPersistence`). A store that fails its checks (rolled back,
    /// tampered) does not fail this: persistent-license operations answer the reason.
    pub fn with_storage(
        dir: impl AsRef<std::path::Path>,
        config: Config,
    ) -> Result<Self, TransportError> {
        let dir = dir.as_ref();
        let p = hal::platform::HostPersistence::open(dir).map_err(|e| {
            TransportError::Setup(format!("storage directory {}: {e}", dir.display()))
        })?;
        let world = SecureWorld::with_storage(
            StdPlatform::host(),
            config,
            p.storage,
            p.counter,
            &p.root_key,
        )
        .map_err(|e| TransportError::Setup(format!("secure world: {e}")))?;
        Ok(InProcessTransport { world })
    }

    /// A secure world with `config` on the host platform.
    pub fn with_config(config: Config) -> Result<Self, TransportError> {
        let world = SecureWorld::new(StdPlatform::host(), config)
            .map_err(|e| TransportError::Setup(format!("secure world configuration: {e}")))?;
        Ok(InProcessTransport { world })
    }
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> InProcessTransport<R, C, S> {
    /// Wraps a secure world built by the integrator (own platform services or engine).
    pub fn from_world(world: SecureWorld<R, C, S>) -> Self {
        InProcessTransport { world }
    }

    /// Builds a secure world from `platform` and `config`.
    pub fn with_platform(
        platform: Platform<R, C, S>,
        config: Config,
    ) -> Result<Self, TransportError> {
        let world = SecureWorld::new(platform, config)
            .map_err(|e| TransportError::Setup(format!("secure world configuration: {e}")))?;
        Ok(InProcessTransport { world })
    }

    /// The secure world (e.g. to read the output sink's counters in tests).
    pub fn world(&self) -> &SecureWorld<R, C, S> {
        &self.world
    }
}

impl<R, C, S> Transport for InProcessTransport<R, C, S>
where
    R: SecureRandom + Send,
    C: Clock + Send,
    S: SecureOutputSink + Send,
{
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.world.process(request, sample, response);
        Ok(())
    }
}
