//! The state of a session shared between a [`crate::MediaKeySession`] and its
//! `MediaKeys` link (which closes it when the secure world is lost and looks up keys in it):
//! the EME session state machine, the key status map and the event queue.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cdm_core::abi::SessionState;
use cdm_core::eme::{
    ClosedReason, InitDataType, KeyStatus, KeySystem, MessageType, Robustness, SessionType,
};
use cdm_core::KeyId;

use crate::error::EmeError;

/// An event of a session, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaKeySessionEvent {
    /// EME `message` (§6.4): send `message` to the license server and pass its answer to
    /// [`crate::MediaKeySession::update`]. For Clear Key the body is JSON (§9.1.3, §9.1.5).
    Message {
        /// `license-request`, `license-renewal`, `license-release` or
        /// `individualization-request`.
        message_type: MessageType,
        /// The message body.
        message: Vec<u8>,
    },
    /// EME `keystatuseschange` (§6.5): [`crate::MediaKeySession::key_statuses`] changed.
    KeyStatusesChange,
    /// The session closed (the EME `closed` promise resolving, §6.6 "Session Closed"). Not an
    /// event of EME's `MediaKeySession`; queued so a player draining events sees it in order.
    Closed(ClosedReason),
}

/// EME `MediaKeyStatusMap` (§6.3): the key IDs of a session and their statuses, in the order
/// the secure world reports them (load order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaKeyStatusMap {
    entries: Vec<(KeyId, KeyStatus)>,
}

impl MediaKeyStatusMap {
    /// Number of keys (`size`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the session knows no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The status of `key_id` (`get`).
    pub fn get(&self, key_id: &[u8]) -> Option<KeyStatus> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_bytes() == key_id)
            .map(|&(_, s)| s)
    }

    /// Whether `key_id` is in the map (`has`).
    pub fn has(&self, key_id: &[u8]) -> bool {
        self.get(key_id).is_some()
    }

    /// `(key ID, status)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], KeyStatus)> {
        self.entries.iter().map(|(k, s)| (k.as_bytes(), *s))
    }
}

/// The mutable state of a session, shared between the [`MediaKeySession`] and its
/// `MediaKeys` (which closes it when the secure world is lost and looks up keys in it).
#[derive(Debug)]
pub(crate) struct SessionInner {
    pub(crate) key_system: KeySystem,
    pub(crate) session_type: SessionType,
    pub(crate) robustness: Robustness,
    /// Secure-world handle, once the session is open there.
    pub(crate) handle: Option<u64>,
    pub(crate) session_id: String,
    /// EME "uninitialized" value: no `generateRequest()`/`load()` yet.
    uninitialized: bool,
    /// EME "callable" value: a request was generated or a session loaded.
    pub(crate) callable: bool,
    /// EME "closing or closed", with the reason once closed.
    pub(crate) closed: Option<ClosedReason>,
    pub(crate) expiration_ms: Option<i64>,
    pub(crate) key_statuses: MediaKeyStatusMap,
    /// When the session last loaded keys, in its link's `update` order (0: never); decrypt
    /// prefers the most recently updated session holding a key.
    pub(crate) updated: u64,
    pub(crate) events: VecDeque<MediaKeySessionEvent>,
    /// The init data of a `generateRequest()` that was answered with an
    /// `individualization-request`: the license request is generated from it once the
    /// provisioning response is accepted.
    pub(crate) pending_init: Option<(InitDataType, Vec<u8>)>,
}

impl SessionInner {
    pub(crate) fn new(
        key_system: KeySystem,
        session_type: SessionType,
        robustness: Robustness,
    ) -> SessionInner {
        SessionInner {
            key_system,
            pending_init: None,
            session_type,
            robustness,
            handle: None,
            session_id: String::new(),
            uninitialized: true,
            callable: false,
            closed: None,
            expiration_ms: None,
            key_statuses: MediaKeyStatusMap::default(),
            updated: 0,
            events: VecDeque::new(),
        }
    }

    /// EME "Update Key Statuses" (§6.6.x): replaces the map and queues `keystatuseschange`.
    fn update_key_statuses(&mut self, entries: Vec<(KeyId, KeyStatus)>) {
        self.key_statuses = MediaKeyStatusMap { entries };
        self.events
            .push_back(MediaKeySessionEvent::KeyStatusesChange);
    }

    pub(crate) fn apply_state(&mut self, state: SessionState, always_fire: bool) {
        if always_fire || self.key_statuses.entries != state.key_statuses {
            self.update_key_statuses(state.key_statuses);
        }
        // EME "Update Expiration": NaN is `None`.
        self.expiration_ms = state.expiration_ms;
        if let Some(reason) = state.closed {
            // The secure world already dropped the session (e.g. release acknowledged).
            self.handle = None;
            self.session_closed(reason);
        }
    }

    /// EME "Queue a message event": a `message` event of `message_type` with `message`.
    pub(crate) fn queue_message(&mut self, message_type: MessageType, message: Vec<u8>) {
        self.events.push_back(MediaKeySessionEvent::Message {
            message_type,
            message,
        });
    }

    /// EME "Session Closed" algorithm: once only; clears the key statuses (queuing
    /// `keystatuseschange`), sets the expiration to NaN and resolves `closed`.
    pub(crate) fn session_closed(&mut self, reason: ClosedReason) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        self.callable = false;
        self.update_key_statuses(Vec::new());
        self.expiration_ms = None;
        self.events.push_back(MediaKeySessionEvent::Closed(reason));
    }

    /// The first steps of `generateRequest()` and `load()` (EME §6.6.2 steps 1–3, §6.6.3
    /// steps 1–3): the session must be open and uninitialized; it no longer is afterwards,
    /// even if the call then fails.
    pub(crate) fn initialize(&mut self, what: &str) -> Result<(), EmeError> {
        self.check_open(what)?;
        if !self.uninitialized {
            return Err(EmeError::InvalidStateError(format!(
                "{what}: the session was already initialized"
            )));
        }
        self.uninitialized = false;
        Ok(())
    }

    pub(crate) fn check_open(&self, what: &str) -> Result<(), EmeError> {
        match self.closed {
            Some(reason) => Err(EmeError::InvalidStateError(format!(
                "{what}: the session is closed ({reason})"
            ))),
            None => Ok(()),
        }
    }

    /// The secure-world handle of an open session whose `generateRequest()` succeeded (the
    /// precondition of `update()` and `remove()`, EME §6.6.4, §6.6.6).
    pub(crate) fn callable_handle(&self, what: &str) -> Result<u64, EmeError> {
        self.check_open(what)?;
        match (self.callable, self.handle) {
            (true, Some(h)) => Ok(h),
            _ => Err(EmeError::InvalidStateError(format!(
                "{what}: generateRequest() has not succeeded on this session"
            ))),
        }
    }
}

pub(crate) type SessionCell = Mutex<SessionInner>;

pub(crate) fn lock_session(cell: &SessionCell) -> MutexGuard<'_, SessionInner> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}
