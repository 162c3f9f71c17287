//! `MediaKeySession` (EME §6): one license exchange and the keys it loads.
//!
//! Each method validates its arguments in the normal world first, in the order of the EME
//! algorithm steps (so the same bad input gets the same exception as in a browser), then makes
//! one ABI call. Events are queued on the session and drained by the player with
//! [`MediaKeySession::next_event`]; there is no callback registration and no background
//! thread: an event is queued by the call (or the secure-world loss) that causes it.

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use cdm_core::abi::limits::{MAX_INIT_DATA_LEN, MAX_LICENSE_LEN, MAX_SESSION_ID_LEN};
use cdm_core::abi::{AddInBandKeys, CloseSession, GenerateRequest, Message, Remove, Renew, Update};
use cdm_core::eme::{ClosedReason, InitDataType, KeySystem, MessageType, Robustness, SessionType};
use cdm_core::init_data::{parse_init_data, InitDataError};

use crate::error::EmeError;
use crate::link::{Cdm, Link};
use crate::session_state::{
    lock_session, MediaKeySessionEvent, MediaKeyStatusMap, SessionCell, SessionInner,
};

/// EME `MediaKeySession`.
///
/// Created by [`crate::MediaKeys::create_session`]. Methods take `&self` and are serialized
/// with every other call to the same secure world; the session can be moved to and shared
/// between threads. Dropping an open session closes it in the secure world (its keys are
/// wiped), without events.
pub struct MediaKeySession {
    pub(crate) cdm: Arc<Cdm>,
    pub(crate) inner: Arc<SessionCell>,
}

impl std::fmt::Debug for MediaKeySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state();
        f.debug_struct("MediaKeySession")
            .field("session_id", &s.session_id)
            .field("session_type", &s.session_type)
            .field("closed", &s.closed)
            .finish_non_exhaustive()
    }
}

impl MediaKeySession {
    fn state(&self) -> MutexGuard<'_, SessionInner> {
        lock_session(&self.inner)
    }

    /// EME `sessionId`: empty until `generate_request()` succeeds.
    pub fn session_id(&self) -> String {
        self.state().session_id.clone()
    }

    /// The session type it was created with.
    pub fn session_type(&self) -> SessionType {
        self.state().session_type
    }

    /// The robustness level its keys are held to (non-EME; `Robustness::Empty` for a session
    /// made by [`crate::MediaKeys::create_session`]).
    pub fn robustness(&self) -> Robustness {
        self.state().robustness
    }

    /// EME `expiration` in milliseconds since the Unix epoch; `None` is EME's NaN (no
    /// expiration).
    pub fn expiration(&self) -> Option<i64> {
        self.state().expiration_ms
    }

    /// EME `keyStatuses`: a snapshot of the key status map.
    pub fn key_statuses(&self) -> MediaKeyStatusMap {
        self.state().key_statuses.clone()
    }

    /// EME `closed`: the reason once the session has closed, `None` while it is open.
    pub fn closed(&self) -> Option<ClosedReason> {
        self.state().closed
    }

    /// The oldest undelivered event, if any (non-blocking).
    pub fn next_event(&self) -> Option<MediaKeySessionEvent> {
        self.state().events.pop_front()
    }

    /// Every undelivered event, oldest first.
    pub fn drain_events(&self) -> Vec<MediaKeySessionEvent> {
        self.state().events.drain(..).collect()
    }

    /// EME `generateRequest()` (§6.6.2): parses `init_data` of `init_data_type`, opens the
    /// session in the secure world and queues a `message` event with the license request.
    ///
    /// Errors, in EME's order: closed session or a second call → `InvalidStateError` (a
    /// failed call also counts: the session is no longer uninitialized, step 3); empty
    /// `init_data_type` or `init_data`, init data over 64 KiB or malformed → `TypeError`;
    /// an init data type Clear Key does not know, or `cenc` init data without a Common
    /// SystemID `pssh` → `NotSupportedError`; secure-world quotas → `QuotaExceededError`.
    pub fn generate_request(&self, init_data_type: &str, init_data: &[u8]) -> Result<(), EmeError> {
        const WHAT: &str = "generateRequest";
        let mut link = self.cdm.lock_link();
        let (key_system, session_type, robustness) = {
            let mut s = self.state();
            s.initialize(WHAT)?;
            (s.key_system, s.session_type, s.robustness)
        };
        if init_data_type.is_empty() {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: initDataType is empty"
            )));
        }
        if init_data.is_empty() {
            return Err(EmeError::TypeError(format!("{WHAT}: initData is empty")));
        }
        let ty = InitDataType::from_str(init_data_type).map_err(|_| {
            EmeError::NotSupportedError(format!(
                "{WHAT}: init data type {init_data_type:?} is not supported"
            ))
        })?;
        if init_data.len() > MAX_INIT_DATA_LEN {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: initData is {} bytes, more than {MAX_INIT_DATA_LEN}",
                init_data.len()
            )));
        }
        // Sanitize in the normal world (§6.6.2 step 10.1–10.3) so bad input never reaches the
        // secure world; the secure world parses again, trusting nothing.
        parse_init_data(ty, init_data).map_err(|e| match e {
            InitDataError::NoCommonSystemKeyIds => EmeError::NotSupportedError(format!(
                "{WHAT}: no Common SystemID pssh box with key IDs"
            )),
            e => EmeError::TypeError(format!("{WHAT}: invalid {ty} init data: {e}")),
        })?;
        let (handle, session_id) = link.open_session(key_system, session_type, robustness)?;
        let req = GenerateRequest {
            init_data_type: ty,
            init_data,
        };
        let Message {
            message_type,
            message,
            state,
        } = match link.call(handle, &req, WHAT) {
            Ok(answer) => answer,
            Err(e) => {
                // Do not leave a half-made session in the secure world.
                if !link.is_lost() {
                    let _ = link.call(handle, &CloseSession, WHAT);
                }
                return Err(e);
            }
        };
        let mut s = self.state();
        s.handle = Some(handle);
        s.session_id = session_id;
        s.callable = true;
        s.apply_state(state, false);
        if message_type == MessageType::IndividualizationRequest {
            // The device must be provisioned first; the license request follows the
            // provisioning response (see `update`).
            s.pending_init = Some((ty, init_data.to_vec()));
        }
        s.queue_message(message_type, message);
        Ok(())
    }

    /// EME `load()` (§6.6.3): restores the `persistent-license` session stored under
    /// `session_id`, with no license request. `Ok(false)` when nothing is stored under it.
    ///
    /// On success the session has the id, its key statuses are those of the stored license
    /// (`keystatuseschange` is queued) and, for a license removed but never acknowledged, a
    /// `license-release` message with the record of license destruction is queued (send it to
    /// the server and pass the acknowledgement to [`Self::update`]).
    ///
    /// Errors: closed session or a second `generateRequest()`/`load()` → `InvalidStateError`;
    /// empty or malformed session id, or a temporary session → `TypeError`; a session with
    /// this id already open in the secure world → `QuotaExceededError`; a store that was
    /// rolled back, altered or is unavailable → `InvalidStateError` naming the reason.
    pub fn load(&self, session_id: &str) -> Result<bool, EmeError> {
        const WHAT: &str = "load";
        let mut link = self.cdm.lock_link();
        let (key_system, robustness) = {
            let mut s = self.state();
            s.initialize(WHAT)?;
            if session_id.is_empty() {
                return Err(EmeError::TypeError(format!("{WHAT}: sessionId is empty")));
            }
            if s.session_type != SessionType::PersistentLicense {
                return Err(EmeError::TypeError(format!(
                    "{WHAT}: only persistent-license sessions can be loaded"
                )));
            }
            (s.key_system, s.robustness)
        };
        // §6.6.3 step 8.1: sanitize. Session ids are printable ASCII, at most 64 bytes.
        if session_id.len() > MAX_SESSION_ID_LEN
            || !session_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: sessionId is not a valid session id"
            )));
        }
        let Some((handle, loaded)) = link.load(key_system, robustness, session_id)? else {
            return Ok(false);
        };
        let mut s = self.state();
        s.handle = Some(handle);
        s.session_id = session_id.to_string();
        s.callable = true;
        s.apply_state(loaded.state, true);
        s.updated = link.next_update();
        if !loaded.release_message.is_empty() {
            s.queue_message(MessageType::LicenseRelease, loaded.release_message);
        }
        Ok(true)
    }

    /// EME `update()` (§6.6.4): passes the license server's `response` (for Clear Key a JWK
    /// Set, §9.1.4) to the secure world; on success the key statuses are updated and
    /// `keystatuseschange` is queued.
    ///
    /// Errors: closed or not yet generated → `InvalidStateError`; empty, over 64 KiB or not a
    /// valid license → `TypeError`; too many keys → `QuotaExceededError`. A failed update
    /// changes nothing: the session stays usable.
    pub fn update(&self, response: &[u8]) -> Result<(), EmeError> {
        const WHAT: &str = "update";
        let mut link = self.cdm.lock_link();
        let handle = self.state().callable_handle(WHAT)?;
        if response.is_empty() {
            return Err(EmeError::TypeError(format!("{WHAT}: response is empty")));
        }
        if response.len() > MAX_LICENSE_LEN {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: response is {} bytes, more than {MAX_LICENSE_LEN}",
                response.len()
            )));
        }
        let state = link.call(handle, &Update { response }, WHAT)?;
        let pending = {
            let mut s = self.state();
            s.apply_state(state, true);
            s.updated = link.next_update();
            s.pending_init.take()
        };
        // A provisioning response was accepted: now the license request (EME: the CDM
        // continues `generateRequest()` after individualization).
        if let Some((init_data_type, init_data)) = pending {
            let req = GenerateRequest {
                init_data_type,
                init_data: &init_data,
            };
            let answer = link.call(handle, &req, WHAT);
            let mut s = self.state();
            match answer {
                Ok(Message {
                    message_type,
                    message,
                    state,
                }) => {
                    s.apply_state(state, false);
                    if message_type == MessageType::IndividualizationRequest {
                        s.pending_init = Some((init_data_type, init_data));
                    }
                    s.queue_message(message_type, message);
                }
                Err(e) => {
                    // Kept: a later `update` with another provisioning response retries.
                    s.pending_init = Some((init_data_type, init_data));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Asks the secure world whether the license is due for renewal (its policy's renewal
    /// interval passed); if so a `license-renewal` message is queued and `true` answered.
    /// Non-EME: a browser CDM runs this on a timer; a player calls it periodically (the
    /// session manager does, when it holds the session). At most one renewal request is
    /// outstanding at a time. Always `false` for Clear Key.
    pub fn renew_if_due(&self) -> Result<bool, EmeError> {
        const WHAT: &str = "renewal";
        let mut link = self.cdm.lock_link();
        let handle = self.state().callable_handle(WHAT)?;
        let Message {
            message_type,
            message,
            state,
        } = link.call(handle, &Renew, WHAT)?;
        let mut s = self.state();
        s.apply_state(state, false);
        if message.is_empty() {
            return Ok(false);
        }
        s.queue_message(message_type, message);
        Ok(true)
    }

    /// Passes content keys delivered in the media (the data of a `pssh` box of the protected
    /// key system, `protected_license::SYSTEM_ID`) to the secure world, which unwraps them
    /// with the license's entitlement key: they become usable with no license request.
    /// Non-EME (a browser CDM receives them through `generateRequest`'s in-band path).
    ///
    /// Errors: closed or not yet licensed → `InvalidStateError`; a record that does not
    /// unwrap under the session's entitlement keys → `TypeError` (nothing changes).
    pub fn add_in_band_keys(&self, record: &[u8]) -> Result<(), EmeError> {
        const WHAT: &str = "in-band keys";
        let mut link = self.cdm.lock_link();
        let handle = self.state().callable_handle(WHAT)?;
        if record.is_empty() || record.len() > MAX_INIT_DATA_LEN {
            return Err(EmeError::TypeError(format!(
                "{WHAT}: the record must be 1 to {MAX_INIT_DATA_LEN} bytes"
            )));
        }
        let state = link.call(handle, &AddInBandKeys { record }, WHAT)?;
        let mut s = self.state();
        s.apply_state(state, true);
        s.updated = link.next_update();
        Ok(())
    }

    /// The key system the session serves.
    pub fn key_system(&self) -> KeySystem {
        self.state().key_system
    }

    /// EME `close()` (§6.6.5): closes the session in the secure world (its keys are wiped)
    /// and runs "Session Closed" with `closed-by-application`. Closing a closed session does
    /// nothing; closing a session that never generated a request is an `InvalidStateError`.
    pub fn close(&self) -> Result<(), EmeError> {
        self.close_with(ClosedReason::ClosedByApplication)
    }

    /// [`Self::close`], reporting `reason` as the closed reason (the session manager evicts
    /// with `resource-evicted`).
    pub(crate) fn close_with(&self, reason: ClosedReason) -> Result<(), EmeError> {
        const WHAT: &str = "close";
        let mut link = self.cdm.lock_link();
        let handle = {
            let s = self.state();
            if s.closed.is_some() {
                return Ok(());
            }
            if !s.callable {
                return Err(EmeError::InvalidStateError(format!(
                    "{WHAT}: generateRequest() has not succeeded on this session"
                )));
            }
            s.handle
        };
        if let Some(h) = handle {
            link.call(h, &CloseSession, WHAT)?;
            tracing::debug!(session_id = %self.state().session_id, "session closed");
        }
        let mut s = self.state();
        s.handle = None;
        s.session_closed(reason);
        Ok(())
    }

    /// EME `remove()` (§6.6.6): releases the session's keys (statuses become `released`,
    /// `keystatuseschange` is queued); a `persistent-license` session also gets a
    /// `license-release` message. The session stays open until closed.
    ///
    /// Errors: closed or not yet generated → `InvalidStateError`.
    pub fn remove(&self) -> Result<(), EmeError> {
        const WHAT: &str = "remove";
        let mut link = self.cdm.lock_link();
        let handle = self.state().callable_handle(WHAT)?;
        let Message {
            message_type,
            message,
            state,
        } = link.call(handle, &Remove, WHAT)?;
        let mut s = self.state();
        s.apply_state(state, true);
        // EME §6.6.6 step 5.4.1.2: only a "persistent-license" session gets a
        // license-release message (its record of license destruction). For a temporary
        // session the secure world's record is not sent: a player would otherwise forward it
        // to the license server as if it were a request.
        if s.session_type == SessionType::PersistentLicense && !message.is_empty() {
            s.queue_message(message_type, message);
        }
        Ok(())
    }
}

impl Drop for MediaKeySession {
    fn drop(&mut self) {
        let mut link = self.cdm.lock_link();
        let handle = self.state().handle.take();
        if let Some(h) = handle {
            if !link.is_lost() {
                let _ = link.call(h, &CloseSession, "drop");
            }
        }
    }
}

/// Creates a session object registered with its `MediaKeys`'s link.
pub(crate) fn new_session(
    cdm: Arc<Cdm>,
    link: &mut Link,
    key_system: KeySystem,
    session_type: SessionType,
    robustness: Robustness,
) -> MediaKeySession {
    let inner = Arc::new(Mutex::new(SessionInner::new(
        key_system,
        session_type,
        robustness,
    )));
    link.register(&inner);
    MediaKeySession { cdm, inner }
}
