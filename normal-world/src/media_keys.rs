//! `MediaKeys` (EME §5): the CDM instance, owner of the transport to one secure world.
//!
//! All calls to the secure world go through one link (`crate::link`) behind a mutex shared by
//! the `MediaKeys` and its sessions: the transport is sequential, and the lock also orders
//! state changes (lock order: link, then a session). Once the secure world is lost every call
//! fails fast with [`EmeError::SecureWorldLost`]; a new `MediaKeys` connects to a new secure
//! world.

use std::sync::{Arc, MutexGuard, Weak};

use cdm_core::abi::{
    Capabilities, CloseSession, DecryptOutput, DecryptRequest, GetCapabilities, GetKeyStatuses,
    GetStatusForPolicy, OutputKind, PolicyStatus, ReleaseSecureBuffer, RenderSecureBuffer,
    Rendered, SetServerCertificate, Subsamples, ABI_VERSION,
};
use cdm_core::eme::{HdcpVersion, KeyStatus, KeySystem, Robustness, SessionType};

use crate::config::MediaKeySystemConfiguration;
use crate::decrypt::{
    DecryptedSample, OutputWish, RenderedSample, SampleDescription, SecureBufferHandle,
};
use crate::error::EmeError;
use crate::link::{watch_liveness, Cdm, Link, SampleArg};
use crate::session::{new_session, MediaKeySession};
use crate::session_state::{lock_session, SessionCell};
use crate::transport::Transport;

/// EME `MediaKeys` (§5): creates sessions and, for the player, decrypts samples with the keys
/// they hold.
///
/// Created by [`crate::MediaKeySystemAccess::create_media_keys_with_transport`], or with the
/// `in-process` feature by `create_media_keys`. Cheap to share by reference across threads;
/// calls are serialized on the one secure world.
pub struct MediaKeys {
    cdm: Arc<Cdm>,
    key_system: KeySystem,
    configuration: MediaKeySystemConfiguration,
    capabilities: Capabilities,
}

impl std::fmt::Debug for MediaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaKeys")
            .field("key_system", &self.key_system)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl MediaKeys {
    /// Connects to the secure world behind `transport` and asks for its capabilities.
    pub(crate) fn new(
        key_system: KeySystem,
        configuration: MediaKeySystemConfiguration,
        transport: Box<dyn Transport>,
    ) -> Result<MediaKeys, EmeError> {
        let watch = transport.liveness_watch();
        let cdm = Arc::new(Cdm::new(transport));
        let capabilities = cdm
            .lock_link()
            .call(0, &GetCapabilities, "createMediaKeys")?;
        if capabilities.abi_version != ABI_VERSION {
            return Err(EmeError::NotSupportedError(format!(
                "createMediaKeys: the secure world speaks ABI version {}, not {ABI_VERSION}",
                capabilities.abi_version
            )));
        }
        // getConfiguration() must report only what is honoured: a negotiated persistent
        // session type needs a secure world that really has storage.
        let wants_persistent = configuration.session_types.as_ref().is_some_and(|t| {
            t.iter()
                .any(|t| t == SessionType::PersistentLicense.as_str())
        });
        if wants_persistent
            && !capabilities
                .session_types
                .contains(&SessionType::PersistentLicense)
        {
            return Err(EmeError::NotSupportedError(
                "createMediaKeys: the configuration needs persistent-license sessions and \
                 the secure world has no storage"
                    .into(),
            ));
        }
        if key_system == KeySystem::Protected {
            // The secure world serves the key system only with a pinned root: find out now,
            // not at the first generateRequest().
            let mut link = cdm.lock_link();
            let robustness = Robustness::SwSecureCrypto;
            let robustness = if capabilities.robustness.contains(&robustness) {
                robustness
            } else {
                Robustness::HwSecureDecode
            };
            let (handle, _) = link
                .open_session(key_system, SessionType::Temporary, robustness)
                .map_err(|e| {
                    EmeError::NotSupportedError(format!(
                        "createMediaKeys: the secure world does not serve {key_system}: {e}"
                    ))
                })?;
            link.call(handle, &CloseSession, "createMediaKeys")?;
        }
        if let Some(watch) = watch {
            watch_liveness(&cdm, watch);
        }
        Ok(MediaKeys {
            cdm,
            key_system,
            configuration,
            capabilities,
        })
    }

    /// The key system (`"org.w3.clearkey"` or `"org.teecdm.protected"`).
    pub fn key_system(&self) -> &'static str {
        self.key_system.as_str()
    }

    /// The configuration negotiated by `requestMediaKeySystemAccess()`.
    pub fn configuration(&self) -> &MediaKeySystemConfiguration {
        &self.configuration
    }

    /// What the secure world reported at creation: AES engine, robustness levels, schemes,
    /// limits. Non-EME.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the secure world has been lost (its sessions are closed with
    /// `hardware-context-reset`). Non-EME.
    pub fn is_lost(&self) -> bool {
        self.cdm.lock_link().is_lost()
    }

    /// EME `createSession()` (§5.1): a new session of `session_type` whose keys have the
    /// key system's default robustness (`""`). Nothing reaches the secure world until
    /// `generate_request()`.
    ///
    /// A session type the negotiated configuration does not list (e.g. `persistent-license`
    /// without a storage directory) → `NotSupportedError`.
    pub fn create_session(&self, session_type: SessionType) -> Result<MediaKeySession, EmeError> {
        self.create_session_with_robustness(session_type, Robustness::Empty)
    }

    /// Non-EME extension for integrators and tests: a session whose keys are held to
    /// `robustness` (`SW_SECURE_CRYPTO`: decrypt in place; `HW_SECURE_DECODE`: decrypt only
    /// into secure buffers). EME's Clear Key admits only `""`; this opens the other paths of
    /// the secure world for testing. A level the secure world does not report in
    /// [`MediaKeys::capabilities`] → `NotSupportedError`.
    pub fn create_session_with_robustness(
        &self,
        session_type: SessionType,
        robustness: Robustness,
    ) -> Result<MediaKeySession, EmeError> {
        let mut link = self.cdm.lock_link();
        link.check_alive()?;
        let offered = self
            .configuration
            .session_types
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t == session_type.as_str()));
        if !offered || !self.capabilities.session_types.contains(&session_type) {
            return Err(EmeError::NotSupportedError(format!(
                "createSession: session type {session_type} is not supported"
            )));
        }
        if robustness != Robustness::Empty && !self.capabilities.robustness.contains(&robustness) {
            return Err(EmeError::NotSupportedError(format!(
                "createSession: robustness {robustness:?} is not supported by the secure world"
            )));
        }
        Ok(new_session(
            Arc::clone(&self.cdm),
            &mut link,
            self.key_system,
            session_type,
            robustness,
        ))
    }

    /// EME `setServerCertificate()` (§5.2). Clear Key uses no server certificate, so a
    /// non-empty certificate is answered `Ok(false)` ("not supported by the key system").
    /// `org.teecdm.protected`: the secure world verifies the certificate against its pinned
    /// root and encrypts the license requests generated afterwards to it
    /// (`Ok(true)`); one that does not verify is a `TypeError`. An empty certificate is a
    /// `TypeError`.
    pub fn set_server_certificate(&self, certificate: &[u8]) -> Result<bool, EmeError> {
        const WHAT: &str = "setServerCertificate";
        if certificate.is_empty() {
            return Err(EmeError::TypeError(format!("{WHAT}: certificate is empty")));
        }
        if certificate.len() > cdm_core::abi::limits::MAX_LICENSE_LEN {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: certificate is too large"
            )));
        }
        match self.key_system {
            KeySystem::ClearKey => Ok(false),
            KeySystem::Protected => {
                let mut link = self.cdm.lock_link();
                link.call(0, &SetServerCertificate { certificate }, WHAT)?;
                Ok(true)
            }
        }
    }

    /// EME `getStatusForPolicy()` (HDCP Policy Check): the key status a key requiring
    /// `min_hdcp_version` (an HDCP version string such as `"2.2"`; `None`: no requirement)
    /// would have on the outputs now, `usable` or `output-restricted`. The secure world asks
    /// its platform's output protection. An unknown version string is a `TypeError`.
    pub fn get_status_for_policy(
        &self,
        min_hdcp_version: Option<&str>,
    ) -> Result<KeyStatus, EmeError> {
        const WHAT: &str = "getStatusForPolicy";
        let min_hdcp =
            match min_hdcp_version {
                None => None,
                Some(v) => Some(v.parse::<HdcpVersion>().map_err(|_| {
                    EmeError::TypeError(format!("{WHAT}: unknown HDCP version {v:?}"))
                })?),
            };
        let mut link = self.cdm.lock_link();
        let PolicyStatus { status } = link.call(0, &GetStatusForPolicy { min_hdcp }, WHAT)?;
        Ok(status)
    }

    /// Decrypts one sample with a usable key of one of this `MediaKeys`'s sessions.
    ///
    /// The session is the first (in creation order) whose key status map has `key_id` as
    /// `usable`. With [`DecryptedSample::InPlace`], `sample` now holds the clear sample (with
    /// the in-process transport, the secure world decrypted it where it lies); with
    /// [`DecryptedSample::SecureBuffer`], `sample` is unchanged and the clear sample is only in
    /// the secure world. On error `sample` is unchanged.
    ///
    /// Errors: no session holds a usable key → [`EmeError::WaitingForKey`]; a description
    /// outside the ABI limits (key ID length, IV length, subsample count or sum, sample size)
    /// → `TypeError`; refused by the secure world → [`EmeError::DecryptError`] or, for an
    /// output the key's robustness forbids, `InvalidAccessError`.
    pub fn decrypt(
        &self,
        sample: &mut [u8],
        desc: &SampleDescription<'_>,
    ) -> Result<DecryptedSample, EmeError> {
        let len = sample.len();
        let mut link = self.cdm.lock_link();
        decrypt_on(&mut link, SampleArg::Slice(sample), len, desc)
    }

    /// A buffer for one sample of `len` bytes that the secure world decrypts where it lies:
    /// with the shared-memory transport it is the shared region's sample area (no copy in
    /// either direction); otherwise a private buffer, handed to [`MediaKeys::decrypt`]. Fill
    /// it ([`SampleBuffer::bytes_mut`]), [`SampleBuffer::decrypt`], read the result
    /// ([`SampleBuffer::bytes`]). It holds this `MediaKeys`'s lock while it lives: no other
    /// call of this `MediaKeys` or its sessions runs meanwhile, so drop it soon. Non-EME.
    ///
    /// Errors: `len` above the ABI's largest sample (16 MiB) → `TypeError`; the secure world
    /// lost → [`EmeError::SecureWorldLost`].
    pub fn sample_buffer(&self, len: usize) -> Result<SampleBuffer<'_>, EmeError> {
        if len > cdm_core::abi::limits::MAX_SAMPLE_LEN {
            return Err(EmeError::TypeError(format!(
                "sample buffer: {len} bytes exceed 16 MiB"
            )));
        }
        let mut link = self.cdm.lock_link();
        link.check_alive()?;
        let own = if link.sample_area(len).is_some() {
            None
        } else {
            let mut v = Vec::new();
            v.try_reserve_exact(len)
                .map_err(|_| EmeError::QuotaExceededError(format!("sample buffer: {len} bytes")))?;
            v.resize(len, 0);
            Some(zeroize::Zeroizing::new(v))
        };
        Ok(SampleBuffer { link, len, own })
    }

    /// Hands a secure buffer to the secure output sink (the emulated secure decoder /
    /// renderer) and frees it; answers what the sink received. Non-EME.
    pub fn render_secure_buffer(
        &self,
        handle: SecureBufferHandle,
    ) -> Result<RenderedSample, EmeError> {
        const WHAT: &str = "render secure buffer";
        let mut link = self.cdm.lock_link();
        let req = RenderSecureBuffer {
            buffer: handle.buffer,
        };
        let Rendered { len, digest } = link.call(handle.session, &req, WHAT)?;
        Ok(RenderedSample { len, digest })
    }

    /// Frees a secure buffer without rendering it. Non-EME.
    pub fn release_secure_buffer(&self, handle: SecureBufferHandle) -> Result<(), EmeError> {
        const WHAT: &str = "release secure buffer";
        let mut link = self.cdm.lock_link();
        let req = ReleaseSecureBuffer {
            buffer: handle.buffer,
        };
        link.call(handle.session, &req, WHAT).map(|_| ())
    }
}

/// The session holding `key_id` as `usable`: the session, its handle and robustness.
/// `MediaKeys::decrypt` on a locked link, the sample where `sample` says.
fn decrypt_on(
    link: &mut Link,
    sample: SampleArg<'_>,
    len: usize,
    desc: &SampleDescription<'_>,
) -> Result<DecryptedSample, EmeError> {
    const WHAT: &str = "decrypt";
    let sample_len = u32::try_from(len)
        .map_err(|_| EmeError::TypeError(format!("{WHAT}: sample exceeds 16 MiB")))?;
    let mut req = DecryptRequest {
        key_id: desc.key_id,
        scheme: desc.scheme,
        pattern: desc.pattern,
        output: OutputKind::InPlace,
        iv: desc.iv,
        sample_len,
        subsamples: Subsamples::Pairs(desc.subsamples),
    };
    // The ABI's one check of a sample description, before anything is sent.
    req.check_sample(len)
        .map_err(|e| EmeError::TypeError(format!("{WHAT}: {e}")))?;
    link.check_alive()?;
    let (cell, handle, robustness) = find_key(link, desc.key_id)?;
    req.output = match (desc.output, robustness) {
        (OutputWish::Auto, Robustness::HwSecureDecode) | (OutputWish::SecureBuffer, _) => {
            OutputKind::SecureBuffer
        }
        (OutputWish::Auto | OutputWish::InPlace, _) => OutputKind::InPlace,
    };
    let answer = match link.call_with(handle, &req, sample, WHAT) {
        Ok((_, answer)) => answer,
        Err(e @ EmeError::WaitingForKey(_)) => {
            // The key stopped being usable in the secure world (e.g. it expired): bring
            // the session's statuses up to date so the player sees keystatuseschange.
            if let Ok(state) = link.call(handle, &GetKeyStatuses, WHAT) {
                lock_session(&cell).apply_state(state, false);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    match (answer, req.output) {
        (DecryptOutput::InPlace, OutputKind::InPlace) => Ok(DecryptedSample::InPlace),
        (DecryptOutput::SecureBuffer(buffer), OutputKind::SecureBuffer) => {
            Ok(DecryptedSample::SecureBuffer(SecureBufferHandle {
                session: handle,
                buffer,
            }))
        }
        _ => Err(link.protocol_violation(WHAT, "decrypted to another output than asked")),
    }
}

/// One sample's buffer, from [`MediaKeys::sample_buffer`]: in the shared region when the
/// transport has one, else private. Holds the `MediaKeys`'s lock.
pub struct SampleBuffer<'m> {
    link: MutexGuard<'m, Link>,
    len: usize,
    /// The private buffer, when the transport has no sample area (wiped on drop: it may
    /// hold a clear sample).
    own: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for SampleBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleBuffer")
            .field("len", &self.len)
            .field("shared", &self.own.is_none())
            .finish()
    }
}

impl SampleBuffer<'_> {
    /// Whether the buffer is the shared region (no copies).
    pub fn is_shared(&self) -> bool {
        self.own.is_none()
    }

    /// The buffer, to fill with the encrypted sample.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        if self.own.is_none() && self.link.sample_area(len).is_none() {
            // The secure world was lost since: the next decrypt fails anyway.
            self.own = Some(zeroize::Zeroizing::new(vec![0; len]));
        }
        match &mut self.own {
            Some(own) => own.as_mut_slice(),
            None => self.link.sample_area(len).unwrap_or_default(),
        }
    }

    /// The buffer: after [`SampleBuffer::decrypt`] answered `InPlace`, the clear sample.
    pub fn bytes(&mut self) -> &[u8] {
        self.bytes_mut()
    }

    /// [`MediaKeys::decrypt`] of the sample in this buffer.
    pub fn decrypt(&mut self, desc: &SampleDescription<'_>) -> Result<DecryptedSample, EmeError> {
        let len = self.len;
        match &mut self.own {
            Some(own) => decrypt_on(&mut self.link, SampleArg::Slice(own), len, desc),
            None => decrypt_on(&mut self.link, SampleArg::InArea(len), len, desc),
        }
    }
}

fn find_key(link: &Link, key_id: &[u8]) -> Result<(Arc<SessionCell>, u64, Robustness), EmeError> {
    // The most recently updated session wins: after a key refresh in a new session the new key
    // is used, and the older session's key again once the newer session closes (what Chromium
    // does, and what players expect).
    let mut best: Option<(u64, Arc<SessionCell>, u64, Robustness)> = None;
    let mut seen = None;
    for cell in link.sessions.iter().filter_map(Weak::upgrade) {
        let s = lock_session(&cell);
        match (s.key_statuses.get(key_id), s.handle) {
            (Some(KeyStatus::Usable), Some(h)) if s.closed.is_none() => {
                if best.as_ref().is_none_or(|b| s.updated > b.0) {
                    let entry = (s.updated, Arc::clone(&cell), h, s.robustness);
                    drop(s);
                    best = Some(entry);
                }
            }
            (Some(status), _) => seen = Some(status),
            (None, _) => {}
        }
    }
    match best {
        Some((_, cell, handle, robustness)) => Ok((cell, handle, robustness)),
        None => Err(EmeError::WaitingForKey(match seen {
            Some(status) => format!("decrypt: the key is {status}"),
            None => "decrypt: no session holds the key".into(),
        })),
    }
}
