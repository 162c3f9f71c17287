//! Sessions: the EME `MediaKeySession` state machine on the secure side (EME §6.6).
//!
//! ```text
//!   open ──GenerateRequest──▶ Requested ──Update(license)*──▶ Requested
//!                                 │
//!                               Remove ──▶ Released ──Update(release ack)──▶ closed
//!   CloseSession, from any state ──▶ closed (everything wiped)
//! ```
//!
//! Decisions where EME leaves the CDM a choice:
//! - A Clear Key license may carry keys whose IDs were not in the license request; they are
//!   loaded (EME §9.1.4 does not restrict the key IDs, and browsers' Clear Key CDMs accept
//!   them). The requested key IDs are therefore not kept.
//! - A license whose `type` is not the session's type is refused (`InvalidLicense`).
//! - A key ID the session already holds is replaced by the new key and becomes `usable`.
//! - `Remove` is answered for `temporary` sessions too, with a `license-release` message
//!   holding the record of license destruction `{"kids":[...]}` (EME §9.1.5); the release
//!   acknowledgement must list exactly the released key IDs.

use alloc::string::String;
use alloc::vec::Vec;

use cdm_core::abi::SessionState;
use cdm_core::{ClosedReason, KeyId, KeyStatus, KeySystem, License, Robustness, SessionType};
use hal::aes::Aes128;
use hal::platform::Hdcp;

use crate::error::Error;
use crate::fallible::try_copy;
use crate::key_slot::KeySlot;
use crate::protected::{key_status, Now, ProtectedSession, Requirement};

/// Where a session is in its EME life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Opened; `generateRequest` not called yet.
    Created,
    /// A license request was produced; licenses may be loaded.
    Requested,
    /// `remove()` destroyed the keys; waiting for the release acknowledgement.
    Released,
}

/// A key of a session restored from storage: its ID, its schedule (`None` once released) and
/// what using it requires (protected keys).
pub(crate) type RestoredKey = (KeyId, Option<Aes128>, Option<Requirement>);

/// One open session.
#[derive(Debug)]
pub(crate) struct Session {
    handle: u64,
    id: String,
    /// `SwSecureCrypto` or `HwSecureDecode` (the empty robustness is stored as the former).
    robustness: Robustness,
    session_type: SessionType,
    phase: Phase,
    /// Capacity reserved for the key quota at the first license, so the vector never
    /// reallocates (a reallocation would leave copies of key schedules in freed memory).
    slots: Vec<KeySlot>,
    key_system: KeySystem,
    /// The protocol state of an `org.teecdm.protected` session (`None` for Clear Key).
    protected: Option<ProtectedSession>,
    /// EME `expiration`, ms since the epoch (protected licenses with a duration).
    expiration_ms: Option<i64>,
}

impl Session {
    /// A new session in the `Created` phase.
    pub(crate) fn new(
        handle: u64,
        id: String,
        robustness: Robustness,
        session_type: SessionType,
        key_system: KeySystem,
    ) -> Self {
        Session {
            handle,
            id,
            robustness,
            session_type,
            phase: Phase::Created,
            slots: Vec::new(),
            key_system,
            protected: match key_system {
                KeySystem::ClearKey => None,
                KeySystem::Protected => Some(ProtectedSession::default()),
            },
            expiration_ms: None,
        }
    }

    /// A `persistent-license` session restored by `Load` from a stored license: its keys
    /// usable (phase `Requested`), or, for a license whose release was not acknowledged
    /// (`released`, every schedule `None`), only their IDs, `released` (phase `Released`).
    pub(crate) fn restored(
        handle: u64,
        id: String,
        robustness: Robustness,
        keys: Vec<RestoredKey>,
        released: bool,
        max_keys: usize,
        protected: Option<ProtectedSession>,
    ) -> Result<Self, Error> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(max_keys.max(keys.len()))?;
        for (kid, schedule, requirement) in keys {
            let kid = try_copy(kid.as_bytes())?;
            slots.push(match (schedule, requirement) {
                (Some(schedule), Some(req)) => KeySlot::protected(kid, schedule, req),
                (Some(schedule), None) => KeySlot::new(kid, schedule),
                (None, _) => KeySlot::released(kid),
            });
        }
        let key_system = match protected {
            Some(_) => KeySystem::Protected,
            None => KeySystem::ClearKey,
        };
        Ok(Session {
            key_system,
            protected,
            expiration_ms: None,
            handle,
            id,
            robustness,
            session_type: SessionType::PersistentLicense,
            phase: if released {
                Phase::Released
            } else {
                Phase::Requested
            },
            slots,
        })
    }

    /// The session handle.
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// The EME session id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The effective robustness level.
    pub(crate) fn robustness(&self) -> Robustness {
        self.robustness
    }

    /// The session type.
    pub(crate) fn session_type(&self) -> SessionType {
        self.session_type
    }

    /// The slot holding `kid`.
    pub(crate) fn slot(&self, kid: &[u8]) -> Option<&KeySlot> {
        self.slots.iter().find(|s| s.kid() == kid)
    }

    /// EME §6.6.2 `generateRequest()`: only once per session.
    pub(crate) fn check_generate(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Created => Ok(()),
            _ => Err(Error::InvalidState("generateRequest already called")),
        }
    }

    /// Records that the license request was sent.
    pub(crate) fn mark_requested(&mut self) {
        self.phase = Phase::Requested;
    }

    /// Whether an `Update` is a release acknowledgement (after `Remove`) rather than a
    /// license. `Update` before `GenerateRequest` is refused (EME §6.6.3: no license request
    /// is pending).
    pub(crate) fn expects_release_ack(&self) -> Result<bool, Error> {
        match self.phase {
            Phase::Created => Err(Error::InvalidState("update before generateRequest")),
            Phase::Requested => Ok(false),
            Phase::Released => Ok(true),
        }
    }

    /// Key statuses, in load order.
    pub(crate) fn state(&self, closed: Option<ClosedReason>) -> Result<SessionState, Error> {
        let mut key_statuses = Vec::new();
        key_statuses.try_reserve_exact(self.slots.len())?;
        for slot in &self.slots {
            key_statuses.push((KeyId::new(slot.kid())?, slot.status()));
        }
        Ok(SessionState {
            expiration_ms: self.expiration_ms,
            closed,
            key_statuses,
        })
    }

    /// Checks everything about loading `license` that can fail (type, quota, memory) and
    /// allocates what loading needs. Answers the session state as it will be once
    /// [`Session::commit_license`] runs, and owned copies of the key IDs the session does not
    /// hold yet (in license order). Changes nothing but reserved capacity.
    pub(crate) fn prepare_license(
        &mut self,
        license: &License,
        max_keys: usize,
    ) -> Result<(SessionState, Vec<Vec<u8>>), Error> {
        if license.effective_session_type() != self.session_type {
            return Err(Error::LicenseMismatch(
                "license type is not the session type",
            ));
        }
        self.prepare_keys(license.keys.iter().map(|(k, _)| k), max_keys)
    }

    /// [`Session::prepare_license`] for any list of key IDs (a protected license, in-band
    /// keys): quota, memory and the state once loaded, all statuses of these keys `usable`.
    pub(crate) fn prepare_keys<'k>(
        &mut self,
        kids: impl Iterator<Item = &'k KeyId> + Clone,
        max_keys: usize,
    ) -> Result<(SessionState, Vec<Vec<u8>>), Error> {
        let mut new_kids: Vec<Vec<u8>> = Vec::new();
        new_kids.try_reserve_exact(kids.clone().count())?;
        for kid in kids.clone() {
            if new_kids.iter().any(|k| k.as_slice() == kid.as_bytes()) {
                continue;
            }
            if self.slot(kid.as_bytes()).is_none() {
                new_kids.push(try_copy(kid.as_bytes())?);
            }
        }
        let total = self
            .slots
            .len()
            .checked_add(new_kids.len())
            .ok_or(Error::KeyQuota)?;
        if total > max_keys {
            return Err(Error::KeyQuota);
        }
        // Reserved once, for the whole quota: pushes in `commit_license` never reallocate.
        if self.slots.capacity() < max_keys {
            let more = max_keys.saturating_sub(self.slots.len());
            self.slots.try_reserve_exact(more)?;
        }
        let mut state = self.state(None)?;
        state.key_statuses.try_reserve_exact(new_kids.len())?;
        for kid in kids {
            match state.key_statuses.iter_mut().find(|(k, _)| k == kid) {
                // A replaced key becomes usable again.
                Some((_, status)) => *status = KeyStatus::Usable,
                None => state
                    .key_statuses
                    .push((kid.try_clone()?, KeyStatus::Usable)),
            }
        }
        Ok((state, new_kids))
    }

    /// Loads the expanded keys of a license, with the key IDs [`Session::prepare_license`]
    /// copied (infallible once that succeeded).
    pub(crate) fn commit_license(
        &mut self,
        schedules: Vec<(KeyId, Aes128, Option<Requirement>)>,
        new_kids: Vec<Vec<u8>>,
    ) {
        let mut new_kids = new_kids.into_iter();
        for (kid, schedule, requirement) in schedules {
            match self.slots.iter_mut().find(|s| s.kid() == kid.as_bytes()) {
                Some(slot) => slot.replace(schedule, requirement),
                None => {
                    if let Some(kid) = new_kids.next() {
                        self.slots.push(match requirement {
                            Some(req) => KeySlot::protected(kid, schedule, req),
                            None => KeySlot::new(kid, schedule),
                        });
                    }
                }
            }
        }
    }

    /// The key system the session serves.
    pub(crate) fn key_system(&self) -> KeySystem {
        self.key_system
    }

    /// The protocol state of a protected session.
    pub(crate) fn protected(&self) -> Option<&ProtectedSession> {
        self.protected.as_ref()
    }

    /// The protocol state of a protected session, mutably.
    pub(crate) fn protected_mut(&mut self) -> Option<&mut ProtectedSession> {
        self.protected.as_mut()
    }

    /// Whether `generateRequest` produced a license request (and `remove()` was not called).
    pub(crate) fn is_requested(&self) -> bool {
        self.phase == Phase::Requested
    }

    /// Whether `remove()` was called.
    pub(crate) fn is_released(&self) -> bool {
        self.phase == Phase::Released
    }

    /// Re-evaluates a protected session's key statuses at `now` with the outputs at `hdcp`
    /// (see [`key_status`]), and its EME expiration.
    pub(crate) fn refresh(&mut self, now: Now, hdcp: Hdcp) {
        let Some(license) = self.protected.as_ref().and_then(|p| p.license.as_ref()) else {
            return;
        };
        let usable = license.usable_at(now);
        self.expiration_ms = license.expiration_ms();
        for slot in &mut self.slots {
            slot.set_status(key_status(usable, slot.requirement(), hdcp));
        }
    }

    /// [`Session::refresh`] of the slot holding `kid` alone (the key a decrypt uses). The
    /// other slots keep their last evaluation (`GetKeyStatuses` re-evaluates them all), and
    /// so does the expiration, which only a change of the license moves (every change of
    /// the license is followed by a refresh).
    pub(crate) fn refresh_slot(&mut self, kid: &[u8], now: Now, hdcp: Hdcp) {
        let Some(license) = self.protected.as_ref().and_then(|p| p.license.as_ref()) else {
            return;
        };
        let usable = license.usable_at(now);
        if let Some(slot) = self.slots.iter_mut().find(|s| s.kid() == kid) {
            slot.set_status(key_status(usable, slot.requirement(), hdcp));
        }
    }

    /// The key IDs of every slot, in load order.
    pub(crate) fn kids(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.slots.iter().map(|s| s.kid())
    }

    /// EME §6.6.5 `remove()`: allowed once a license request exists.
    pub(crate) fn check_remove(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Requested => Ok(()),
            Phase::Created => Err(Error::InvalidState("remove before generateRequest")),
            Phase::Released => Err(Error::InvalidState("already removed")),
        }
    }

    /// The state `Remove` will answer: every key `released`.
    pub(crate) fn state_after_release(&self) -> Result<SessionState, Error> {
        let mut state = self.state(None)?;
        for (_, status) in &mut state.key_statuses {
            *status = KeyStatus::Released;
        }
        Ok(state)
    }

    /// Destroys every key schedule; statuses become `released`.
    pub(crate) fn release(&mut self) {
        for slot in &mut self.slots {
            slot.release();
        }
        self.phase = Phase::Released;
    }

    /// Whether `kids` (a release acknowledgement, EME §9.1.6) lists exactly the released
    /// keys.
    pub(crate) fn acknowledges(&self, kids: &[KeyId]) -> bool {
        kids.len() == self.slots.len() && kids.iter().all(|k| self.slot(k.as_bytes()).is_some())
    }
}
