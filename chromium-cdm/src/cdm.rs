//! The CDM behind Chromium's interface, in safe Rust: Chromium's calls mapped onto
//! `normal-world`'s `MediaKeys` and `MediaKeySession`s, and their results and events mapped
//! back onto the browser's `Host` callbacks (the [`Host`] trait, implemented over the real
//! `cdm::Host_10` by [`crate::abi`] and by a recorder in the tests).
//!
//! Every call drains the events of every session afterwards, so a `message`,
//! `keystatuseschange` or `closed` reaches the browser in the order the session queued it;
//! events that happen between calls (the secure-world process dying closes every session)
//! are picked up by a timer armed while sessions are open.

use std::collections::BTreeMap;

use normal_world::{
    ClosedReason, EmeError, EncryptionScheme, KeyStatus, MediaKeySession, MediaKeySessionEvent,
    MediaKeys, MessageType, OutputWish, SampleDescription, SessionType,
};

use crate::stats::Stats;

/// How often (ms) the CDM asks the browser for a timer while sessions are open, to deliver
/// events nobody's call caused (a secure world lost between calls).
pub const POLL_INTERVAL_MS: i64 = 1000;

/// Chromium's `cdm::Status` (the result of `Decrypt` and the decoder calls).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `kSuccess`.
    Success = 0,
    /// `kNoKey`: no usable key for the sample's key ID yet; the browser waits for a
    /// `OnSessionKeysChange` with a newly usable key and retries.
    NoKey = 2,
    /// `kInitializationError`: the decoder calls' "not supported", so that Chromium decodes
    /// by itself after `Decrypt`.
    InitializationError = 3,
    /// `kDecryptError`.
    DecryptError = 4,
    /// `kDecodeError`.
    DecodeError = 5,
}

/// Chromium's `cdm::Exception` (what a promise is rejected with).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// `kExceptionTypeError`.
    TypeError = 0,
    /// `kExceptionNotSupportedError`.
    NotSupported = 1,
    /// `kExceptionInvalidStateError`.
    InvalidState = 2,
    /// `kExceptionQuotaExceededError`.
    QuotaExceeded = 3,
}

impl Exception {
    /// The exception an EME error rejects with (`InvalidAccessError` has no counterpart in
    /// the interface: it becomes a `TypeError`, the nearest for a bad argument).
    pub fn of(error: &EmeError) -> Exception {
        match error {
            EmeError::TypeError(_) | EmeError::InvalidAccessError(_) => Exception::TypeError,
            EmeError::NotSupportedError(_) => Exception::NotSupported,
            EmeError::QuotaExceededError(_) => Exception::QuotaExceeded,
            EmeError::InvalidStateError(_)
            | EmeError::SecureWorldLost(_)
            | EmeError::WaitingForKey(_)
            | EmeError::DecryptError(_) => Exception::InvalidState,
        }
    }
}

/// Chromium's `cdm::KeyStatus` value of a key status (v10 has no `usable-in-future`: it is
/// reported as `status-pending`, the nearest "not yet").
pub fn key_status_value(status: KeyStatus) -> u32 {
    match status {
        KeyStatus::Usable => 0,
        KeyStatus::InternalError => 1,
        KeyStatus::Expired => 2,
        KeyStatus::OutputRestricted => 3,
        KeyStatus::OutputDownscaled => 4,
        KeyStatus::StatusPending | KeyStatus::UsableInFuture => 5,
        KeyStatus::Released => 6,
    }
}

/// Chromium's `cdm::MessageType` value of a message type.
pub fn message_type_value(message_type: MessageType) -> u32 {
    match message_type {
        MessageType::LicenseRequest => 0,
        MessageType::LicenseRenewal => 1,
        MessageType::LicenseRelease => 2,
        MessageType::IndividualizationRequest => 3,
    }
}

/// The browser's side of the interface (`cdm::Host_10`), as the CDM uses it.
pub trait Host {
    /// `OnInitialized`.
    fn on_initialized(&self, success: bool);
    /// `OnResolveKeyStatusPromise` (a `cdm::KeyStatus` value).
    fn resolve_key_status(&self, promise_id: u32, key_status: u32);
    /// `OnResolveNewSessionPromise`.
    fn resolve_new_session(&self, promise_id: u32, session_id: &str);
    /// `OnResolvePromise`.
    fn resolve(&self, promise_id: u32);
    /// `OnRejectPromise` (system code 0).
    fn reject(&self, promise_id: u32, exception: Exception, message: &str);
    /// `OnSessionMessage` (a `cdm::MessageType` value).
    fn session_message(&self, session_id: &str, message_type: u32, message: &[u8]);
    /// `OnSessionKeysChange`: every key of the session with its `cdm::KeyStatus` value.
    fn session_keys_change(
        &self,
        session_id: &str,
        has_new_usable_key: bool,
        keys: &[(&[u8], u32)],
    );
    /// `OnSessionClosed`.
    fn session_closed(&self, session_id: &str);
    /// `SetTimer`: `TimerExpired` in `delay_ms`.
    fn set_timer(&self, delay_ms: i64);
}

/// A sample as Chromium hands it to `Decrypt` (`cdm::InputBuffer_2`), with its pointers
/// already turned into checked slices.
#[derive(Clone, Copy, Debug)]
pub struct InputSample<'a> {
    /// The sample.
    pub data: &'a [u8],
    /// `cdm::EncryptionScheme`: 0 unencrypted, 1 `cenc`, 2 `cbcs`.
    pub scheme: u32,
    /// The key ID.
    pub key_id: &'a [u8],
    /// The IV (Chromium passes 16 bytes, an 8-byte IV zero-padded).
    pub iv: &'a [u8],
    /// `(clear, cipher)` byte counts; empty: the whole sample is protected.
    pub subsamples: &'a [(u32, u32)],
    /// `(crypt, skip)` pattern in 16-byte blocks.
    pub pattern: (u32, u32),
}

/// One CDM instance: what `CreateCdmInstance` returns, behind the vtable.
pub struct Cdm<H: Host> {
    host: H,
    media_keys: Option<MediaKeys>,
    sessions: BTreeMap<String, MediaKeySession>,
    timer_armed: bool,
    stats: Stats,
}

impl<H: Host> Cdm<H> {
    /// A CDM that reports to `host` and counts into `stats`. Its secure world is created by
    /// [`Cdm::initialize`].
    pub fn new(host: H, stats: Stats) -> Self {
        Cdm {
            host,
            media_keys: None,
            sessions: BTreeMap::new(),
            timer_armed: false,
            stats,
        }
    }

    /// The browser's host (for the entry points' error reports).
    pub fn host(&self) -> &H {
        &self.host
    }

    /// `Initialize`: creates the `MediaKeys` (its secure world, in another process or in this
    /// one, per [`crate::backend`]) and answers `OnInitialized`.
    pub fn initialize(&mut self, make: impl FnOnce() -> Result<(MediaKeys, &'static str), String>) {
        match make() {
            Ok((keys, transport)) => {
                self.stats.set_transport(transport);
                log(&format!("initialized, secure world {transport}"));
                self.media_keys = Some(keys);
                self.host.on_initialized(true);
            }
            Err(e) => {
                self.stats.set_transport("none");
                log(&format!("initialization failed: {e}"));
                self.host.on_initialized(false);
            }
        }
    }

    fn keys(&self) -> Result<&MediaKeys, EmeError> {
        self.media_keys
            .as_ref()
            .ok_or_else(|| EmeError::InvalidStateError("the CDM is not initialized".into()))
    }

    fn settle(&mut self, promise_id: u32, result: Result<(), EmeError>) {
        self.drain_events();
        match result {
            Ok(()) => self.host.resolve(promise_id),
            Err(e) => self
                .host
                .reject(promise_id, Exception::of(&e), &e.to_string()),
        }
    }

    /// `GetStatusForPolicy`: Clear Key keys are usable whatever HDCP version is asked for.
    pub fn get_status_for_policy(&mut self, promise_id: u32) {
        self.host
            .resolve_key_status(promise_id, key_status_value(KeyStatus::Usable));
    }

    /// `SetServerCertificate`: Clear Key has no server certificate (EME §9.1).
    pub fn set_server_certificate(&mut self, promise_id: u32, certificate: &[u8]) {
        let result = self
            .keys()
            .and_then(|k| k.set_server_certificate(certificate))
            .and_then(|supported| match supported {
                true => Ok(()),
                false => Err(EmeError::NotSupportedError(
                    "setServerCertificate: Clear Key uses no server certificate".into(),
                )),
            });
        self.settle(promise_id, result);
    }

    /// `CreateSessionAndGenerateRequest`: a new session, `generateRequest` on it; resolved
    /// with the session ID before its `message` is delivered (the interface's order).
    pub fn create_session(
        &mut self,
        promise_id: u32,
        session_type: u32,
        init_data_type: u32,
        init_data: &[u8],
    ) {
        let created = (|| {
            let session_type = match session_type {
                0 => SessionType::Temporary,
                1 => SessionType::PersistentLicense,
                t => return Err(EmeError::NotSupportedError(format!("session type {t}"))),
            };
            let init_data_type = match init_data_type {
                0 => "cenc",
                1 => "keyids",
                2 => "webm",
                t => return Err(EmeError::NotSupportedError(format!("init data type {t}"))),
            };
            let session = self.keys()?.create_session(session_type)?;
            session.generate_request(init_data_type, init_data)?;
            Ok(session)
        })();
        match created {
            Ok(session) => {
                let id = session.session_id();
                self.host.resolve_new_session(promise_id, &id);
                self.sessions.insert(id, session);
                self.arm_timer();
                self.drain_events();
            }
            Err(e) => {
                self.drain_events();
                self.host
                    .reject(promise_id, Exception::of(&e), &e.to_string());
            }
        }
    }

    /// `LoadSession`: persistent licenses need storage this CDM is not given in a browser.
    pub fn load_session(&mut self, promise_id: u32) {
        let e =
            EmeError::NotSupportedError("load: persistent-license sessions are not offered".into());
        self.host
            .reject(promise_id, Exception::of(&e), &e.to_string());
    }

    fn with_session(
        &mut self,
        promise_id: u32,
        session_id: &str,
        op: impl FnOnce(&MediaKeySession) -> Result<(), EmeError>,
    ) {
        let result = match self.sessions.get(session_id) {
            Some(session) => op(session),
            None => Err(EmeError::InvalidStateError(format!(
                "no open session {session_id:?}"
            ))),
        };
        self.settle(promise_id, result);
    }

    /// `UpdateSession`: the license (a Clear Key JWK Set) into the session.
    pub fn update_session(&mut self, promise_id: u32, session_id: &str, response: &[u8]) {
        self.with_session(promise_id, session_id, |s| s.update(response));
    }

    /// `CloseSession`.
    pub fn close_session(&mut self, promise_id: u32, session_id: &str) {
        self.with_session(promise_id, session_id, MediaKeySession::close);
    }

    /// `RemoveSession`.
    pub fn remove_session(&mut self, promise_id: u32, session_id: &str) {
        self.with_session(promise_id, session_id, MediaKeySession::remove);
    }

    /// `TimerExpired`: delivers what happened since the last call; re-armed while sessions
    /// are open.
    pub fn timer_expired(&mut self) {
        self.timer_armed = false;
        self.drain_events();
        self.arm_timer();
    }

    fn arm_timer(&mut self) {
        if !self.timer_armed && !self.sessions.is_empty() {
            self.timer_armed = true;
            self.host.set_timer(POLL_INTERVAL_MS);
        }
    }

    /// Delivers every session's queued events to the browser, in order; forgets closed
    /// sessions.
    pub fn drain_events(&mut self) {
        let mut closed = Vec::new();
        for (id, session) in &self.sessions {
            for event in session.drain_events() {
                match event {
                    MediaKeySessionEvent::Message {
                        message_type,
                        message,
                    } => {
                        self.host
                            .session_message(id, message_type_value(message_type), &message);
                    }
                    MediaKeySessionEvent::KeyStatusesChange => {
                        let statuses = session.key_statuses();
                        let keys: Vec<(&[u8], u32)> = statuses
                            .iter()
                            .map(|(kid, s)| (kid, key_status_value(s)))
                            .collect();
                        let usable = statuses.iter().any(|(_, s)| s == KeyStatus::Usable);
                        self.host.session_keys_change(id, usable, &keys);
                    }
                    MediaKeySessionEvent::Closed(reason) => {
                        if reason != ClosedReason::ClosedByApplication {
                            log(&format!("session closed: {reason}"));
                        }
                        self.host.session_closed(id);
                        closed.push(id.clone());
                    }
                }
            }
        }
        for id in closed {
            self.sessions.remove(&id);
        }
    }

    /// `Decrypt`: the sample through `MediaKeys::decrypt` (in the shared sample area when the
    /// transport has one); `deliver` gets the clear sample (it copies it into a buffer of the
    /// browser's). Counts decrypted and failed samples.
    pub fn decrypt(
        &mut self,
        sample: &InputSample<'_>,
        deliver: impl FnOnce(&[u8]) -> Result<(), Status>,
    ) -> Status {
        let status = match self.decrypt_inner(sample, deliver) {
            Ok(()) => Status::Success,
            Err(s) => s,
        };
        match status {
            Status::Success if sample.scheme != 0 => self.stats.count_decrypted(),
            Status::Success | Status::NoKey => {}
            _ => self.stats.count_failed(),
        }
        self.drain_events();
        status
    }

    fn decrypt_inner(
        &mut self,
        sample: &InputSample<'_>,
        deliver: impl FnOnce(&[u8]) -> Result<(), Status>,
    ) -> Result<(), Status> {
        let scheme = match sample.scheme {
            0 => return deliver(sample.data),
            1 => EncryptionScheme::Cenc,
            2 => EncryptionScheme::Cbcs,
            _ => return Err(Status::DecryptError),
        };
        let pattern = match scheme {
            EncryptionScheme::Cbcs => (
                u8::try_from(sample.pattern.0).map_err(|_| Status::DecryptError)?,
                u8::try_from(sample.pattern.1).map_err(|_| Status::DecryptError)?,
            ),
            _ => (0, 0),
        };
        let desc = SampleDescription {
            key_id: sample.key_id,
            scheme,
            iv: sample.iv,
            pattern,
            subsamples: sample.subsamples,
            output: OutputWish::InPlace,
        };
        let keys = self.media_keys.as_ref().ok_or(Status::DecryptError)?;
        let mut buffer = keys
            .sample_buffer(sample.data.len())
            .map_err(|_| Status::DecryptError)?;
        let area = buffer.bytes_mut();
        if area.len() != sample.data.len() {
            return Err(Status::DecryptError);
        }
        area.copy_from_slice(sample.data);
        match buffer.decrypt(&desc) {
            Ok(normal_world::DecryptedSample::InPlace) => deliver(buffer.bytes()),
            Ok(normal_world::DecryptedSample::SecureBuffer(_)) => Err(Status::DecryptError),
            Err(EmeError::WaitingForKey(_)) => Err(Status::NoKey),
            Err(_) => Err(Status::DecryptError),
        }
    }
}

/// One line on standard error (Chromium passes its children's standard error through), never
/// with key material: only call names, statuses and counts.
pub fn log(message: &str) {
    eprintln!("tee-cdm chromium: {message}");
}
