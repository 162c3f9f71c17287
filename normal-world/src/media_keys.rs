//! `MediaKeys` (EME §5): the CDM instance, owner of the transport to one secure world.
//!
//! All calls to the secure world go through one `Link` behind a mutex shared by the
//! `MediaKeys` and its sessions: the transport is sequential, and the lock also orders state
//! changes (lock order: link, then a session). When the transport fails or the secure world
//! answers something malformed, the link is marked lost and every session is closed
//! (`hardware-context-reset`, or `internal-error` for a protocol violation); from then on
//! every call fails fast with [`EmeError::SecureWorldLost`]. A new `MediaKeys` connects to a
//! new secure world.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use cdm_core::abi::limits::{MAX_KEY_ID_LEN, MAX_SAMPLE_LEN, MAX_SUBSAMPLES};
use cdm_core::abi::{
    Capabilities, DecryptOutput, DecryptRequest, OutputKind, Request, Response, Subsamples,
    ABI_VERSION,
};
use cdm_core::eme::{ClosedReason, KeyStatus, KeySystem, Robustness, SessionType};

use crate::access::MediaKeySystemConfiguration;
use crate::decrypt::{
    DecryptedSample, OutputWish, RenderedSample, SampleDescription, SecureBufferHandle,
};
use crate::error::EmeError;
use crate::session::{lock_session, new_session, MediaKeySession, SessionCell};
use crate::transport::Transport;

/// The channel to the secure world and the registry of the sessions using it.
pub(crate) struct Link {
    transport: Box<dyn Transport>,
    /// Why the secure world was lost, once it was.
    lost: Option<String>,
    next_request_id: u32,
    request: Vec<u8>,
    response: Vec<u8>,
    sessions: Vec<Weak<SessionCell>>,
}

impl Link {
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    pub(crate) fn register(&mut self, session: &Arc<SessionCell>) {
        self.sessions.retain(|w| w.strong_count() > 0);
        self.sessions.push(Arc::downgrade(session));
    }

    /// Marks the secure world lost and closes every session with `reason`.
    fn lose(&mut self, why: String, reason: ClosedReason) -> EmeError {
        for cell in self.sessions.iter().filter_map(Weak::upgrade) {
            let mut s = lock_session(&cell);
            s.handle = None;
            s.session_closed(reason);
        }
        self.sessions.clear();
        let err = EmeError::SecureWorldLost(why.clone());
        self.lost = Some(why);
        err
    }

    /// A response of the wrong shape: the secure world is not speaking the ABI.
    pub(crate) fn protocol_violation(&mut self, what: &str, got: &Response) -> EmeError {
        let why = format!("{what}: unexpected response {got:?}");
        self.lose(why, ClosedReason::InternalError)
    }

    /// One ABI exchange: encode, transport, decode, check correlation. Transport failures
    /// and malformed responses lose the secure world; error statuses map to [`EmeError`].
    pub(crate) fn call_full(
        &mut self,
        session: u64,
        request: &Request<'_>,
        sample: &mut [u8],
        what: &str,
    ) -> Result<(u64, Response), EmeError> {
        if let Some(why) = &self.lost {
            return Err(EmeError::SecureWorldLost(why.clone()));
        }
        let id = self.next_request_id;
        self.next_request_id = id.wrapping_add(1);
        // Arguments were validated against the ABI limits before; a failure here is still
        // the caller's argument, not the secure world's fault.
        request
            .encode(session, id, &mut self.request)
            .map_err(|e| EmeError::TypeError(format!("{what}: {e}")))?;
        if let Err(e) = self
            .transport
            .call(&self.request, sample, &mut self.response)
        {
            return Err(self.lose(format!("{what}: {e}"), ClosedReason::HardwareContextReset));
        }
        let opcode = request.opcode();
        let (header, answer) = match Response::parse(opcode, &self.response) {
            Ok(parsed) => parsed,
            Err(e) => {
                let why = format!("{what}: malformed response: {e}");
                return Err(self.lose(why, ClosedReason::InternalError));
            }
        };
        // OpenSession answers the new handle in the header; everything else echoes ours.
        let session_ok = opcode == cdm_core::abi::Opcode::OpenSession || header.session == session;
        if header.request_id != id || !session_ok {
            let why = format!("{what}: response does not correlate with the request");
            return Err(self.lose(why, ClosedReason::InternalError));
        }
        match answer {
            Ok(resp) => Ok((header.session, resp)),
            Err(status) => Err(EmeError::from_status(status, what)),
        }
    }

    pub(crate) fn call(
        &mut self,
        session: u64,
        request: &Request<'_>,
        sample: &mut [u8],
        what: &str,
    ) -> Result<Response, EmeError> {
        self.call_full(session, request, sample, what)
            .map(|(_, r)| r)
    }

    /// Opens a session in the secure world: its handle and EME session id.
    pub(crate) fn open_session(
        &mut self,
        session_type: SessionType,
        robustness: Robustness,
    ) -> Result<(u64, String), EmeError> {
        const WHAT: &str = "open session";
        let req = Request::OpenSession {
            key_system: KeySystem::ClearKey,
            robustness,
            session_type,
        };
        match self.call_full(0, &req, &mut [], WHAT)? {
            (handle, Response::SessionOpened { session_id }) if handle != 0 => {
                Ok((handle, session_id))
            }
            (_, other) => Err(self.protocol_violation(WHAT, &other)),
        }
    }
}

/// What a `MediaKeys` and its sessions share.
pub(crate) struct Cdm {
    link: Mutex<Link>,
}

impl Cdm {
    pub(crate) fn lock_link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// EME `MediaKeys` (§5): creates sessions and, for the player, decrypts samples with the keys
/// they hold.
///
/// Created by [`crate::MediaKeySystemAccess::create_media_keys`]. Cheap to share by
/// reference across threads; calls are serialized on the one secure world.
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
        let cdm = Arc::new(Cdm {
            link: Mutex::new(Link {
                transport,
                lost: None,
                next_request_id: 1,
                request: Vec::new(),
                response: Vec::new(),
                sessions: Vec::new(),
            }),
        });
        let capabilities = {
            let mut link = cdm.lock_link();
            match link.call(0, &Request::GetCapabilities, &mut [], "createMediaKeys")? {
                Response::Capabilities(c) if c.abi_version == ABI_VERSION => c,
                Response::Capabilities(c) => {
                    return Err(EmeError::NotSupportedError(format!(
                    "createMediaKeys: the secure world speaks ABI version {}, not {ABI_VERSION}",
                    c.abi_version
                )))
                }
                other => return Err(link.protocol_violation("createMediaKeys", &other)),
            }
        };
        Ok(MediaKeys {
            cdm,
            key_system,
            configuration,
            capabilities,
        })
    }

    /// The key system (`"org.w3.clearkey"`).
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
    /// `persistent-license` → `NotSupportedError` (persistent licenses need secure storage,
    /// which is not built yet; `requestMediaKeySystemAccess` never offers them).
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
        if let Some(why) = &link.lost {
            return Err(EmeError::SecureWorldLost(why.clone()));
        }
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
            session_type,
            robustness,
        ))
    }

    /// EME `setServerCertificate()` (§5.2): Clear Key uses no server certificate, so a
    /// non-empty certificate is answered `Ok(false)` ("not supported by the key system");
    /// an empty one is a `TypeError`.
    pub fn set_server_certificate(&self, certificate: &[u8]) -> Result<bool, EmeError> {
        if certificate.is_empty() {
            return Err(EmeError::TypeError(
                "setServerCertificate: certificate is empty".into(),
            ));
        }
        Ok(false)
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
        const WHAT: &str = "decrypt";
        validate_description(sample.len(), desc)?;
        let sample_len = u32::try_from(sample.len())
            .map_err(|_| EmeError::TypeError(format!("{WHAT}: sample too large")))?;
        let mut link = self.cdm.lock_link();
        if let Some(why) = &link.lost {
            return Err(EmeError::SecureWorldLost(why.clone()));
        }
        let (cell, handle, robustness) = find_key(&link, desc.key_id)?;
        let output = match (desc.output, robustness) {
            (OutputWish::Auto, Robustness::HwSecureDecode) | (OutputWish::SecureBuffer, _) => {
                OutputKind::SecureBuffer
            }
            (OutputWish::Auto | OutputWish::InPlace, _) => OutputKind::InPlace,
        };
        let req = Request::Decrypt(DecryptRequest {
            key_id: desc.key_id,
            scheme: desc.scheme,
            pattern: desc.pattern,
            output,
            iv: desc.iv,
            sample_len,
            subsamples: Subsamples::Pairs(desc.subsamples),
        });
        let answer = match link.call(handle, &req, sample, WHAT) {
            Ok(answer) => answer,
            Err(e @ EmeError::WaitingForKey(_)) => {
                // The key stopped being usable in the secure world (e.g. it expired): bring
                // the session's statuses up to date so the player sees keystatuseschange.
                let refreshed = link.call(handle, &Request::GetKeyStatuses, &mut [], WHAT);
                if let Ok(Response::State(state)) = refreshed {
                    lock_session(&cell).apply_state(state, false);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        match answer {
            Response::Decrypted(DecryptOutput::InPlace) if output == OutputKind::InPlace => {
                Ok(DecryptedSample::InPlace)
            }
            Response::Decrypted(DecryptOutput::SecureBuffer(buffer))
                if output == OutputKind::SecureBuffer =>
            {
                Ok(DecryptedSample::SecureBuffer(SecureBufferHandle {
                    session: handle,
                    buffer,
                }))
            }
            other => Err(link.protocol_violation(WHAT, &other)),
        }
    }

    /// Hands a secure buffer to the secure output sink (the emulated secure decoder /
    /// renderer) and frees it; answers what the sink received. Non-EME.
    pub fn render_secure_buffer(
        &self,
        handle: SecureBufferHandle,
    ) -> Result<RenderedSample, EmeError> {
        const WHAT: &str = "render secure buffer";
        let mut link = self.cdm.lock_link();
        let req = Request::RenderSecureBuffer {
            buffer: handle.buffer,
        };
        match link.call(handle.session, &req, &mut [], WHAT)? {
            Response::Rendered { len, digest } => Ok(RenderedSample { len, digest }),
            other => Err(link.protocol_violation(WHAT, &other)),
        }
    }

    /// Frees a secure buffer without rendering it. Non-EME.
    pub fn release_secure_buffer(&self, handle: SecureBufferHandle) -> Result<(), EmeError> {
        const WHAT: &str = "release secure buffer";
        let mut link = self.cdm.lock_link();
        let req = Request::ReleaseSecureBuffer {
            buffer: handle.buffer,
        };
        match link.call(handle.session, &req, &mut [], WHAT)? {
            Response::Done => Ok(()),
            other => Err(link.protocol_violation(WHAT, &other)),
        }
    }
}

/// Checks a sample description against the ABI limits before anything is sent.
fn validate_description(sample_len: usize, desc: &SampleDescription<'_>) -> Result<(), EmeError> {
    let bad = |m: &str| Err(EmeError::TypeError(format!("decrypt: {m}")));
    if desc.key_id.is_empty() || desc.key_id.len() > MAX_KEY_ID_LEN {
        return bad("key ID must be 1 to 512 bytes");
    }
    if !(desc.iv.len() == 8 || desc.iv.len() == 16) {
        return bad("IV must be 8 or 16 bytes");
    }
    if sample_len > MAX_SAMPLE_LEN {
        return bad("sample exceeds 16 MiB");
    }
    if desc.subsamples.len() > MAX_SUBSAMPLES {
        return bad("more than 576 subsamples");
    }
    if !desc.subsamples.is_empty() {
        let total = desc.subsamples.iter().try_fold(0u64, |acc, &(c, p)| {
            acc.checked_add(u64::from(c))?.checked_add(u64::from(p))
        });
        if total != u64::try_from(sample_len).ok() {
            return bad("subsample sizes do not add up to the sample length");
        }
    }
    Ok(())
}

/// The session holding `key_id` as `usable`: the session, its handle and robustness.
fn find_key(link: &Link, key_id: &[u8]) -> Result<(Arc<SessionCell>, u64, Robustness), EmeError> {
    let mut seen = None;
    for cell in link.sessions.iter().filter_map(Weak::upgrade) {
        let s = lock_session(&cell);
        match (s.key_statuses.get(key_id), s.handle) {
            (Some(KeyStatus::Usable), Some(h)) if s.closed.is_none() => {
                let robustness = s.robustness;
                drop(s);
                return Ok((cell, h, robustness));
            }
            (Some(status), _) => seen = Some(status),
            (None, _) => {}
        }
    }
    Err(EmeError::WaitingForKey(match seen {
        Some(status) => format!("decrypt: the key is {status}"),
        None => "decrypt: no session holds the key".into(),
    }))
}
