//! The operations of the protected key system (`org.teecdm.protected`) and the parts of
//! `GenerateRequest`, `Update`, `Remove` and `Load` that differ from Clear Key.
//!
//! Every handler keeps the secure world's rule: parse and verify everything, build the
//! answer, then store, then change state (infallibly); a rejected message changes nothing.
//! Nonces are consumed in a copy of the session's outstanding set that replaces it only at
//! the end.

use alloc::vec::Vec;

use cdm_core::abi::{
    AddInBandKeys, GetStatusForPolicy, Header, Message, PolicyStatus, Renew, SessionState,
    SetServerCertificate, Update,
};
use cdm_core::{ContentKey, KeyId, KeyStatus, MessageType, Robustness, SessionType};
use hal::platform::{Clock, Hdcp, Platform, SecureOutputSink, SecureRandom};
use protected_license::cert::{Hdcp as PlHdcp, Robustness as PlRobustness};
use protected_license::crypto::ContentKey as PlContentKey;
use protected_license::device::{unwrap_rotation_record, LicenseRequestParams, Outstanding};
use protected_license::messages::{
    peek_type, MessageType as PlMessage, RotationRecord, SessionType as PlSessionType,
    MAX_CONTENT_ID_LEN, MAX_KEYS,
};
use zeroize::Zeroizing;

use super::{
    expand_keys, fresh_session_handle, restored_id, restored_keys, store_record, write, SecureWorld,
};
use crate::error::Error;
use crate::fallible::try_copy;
use crate::protected::{
    decode_extension, encode_device, encode_extension, key_status, protocol, read_clock,
    Entitlement, LicenseState, Now, Protected, ProtectedSession, Requirement, RngAdapter,
};
use crate::session::Session;
use crate::store::{Store, StoreError, StoredLicense};

/// The parts of a secure world a protected operation on one session works with, borrowed
/// apart (see [`SecureWorld::parts`]).
struct Parts<'a, R, C, S> {
    platform: &'a Platform<R, C, S>,
    store: &'a mut Option<Store>,
    protected: &'a mut Protected,
    session: &'a mut Session,
}

/// Key rules as stored: key ID, required robustness, minimum HDCP.
type Rules = Vec<([u8; 16], PlRobustness, PlHdcp)>;

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> SecureWorld<R, C, S> {
    /// What the device claims when it provisions: the robustness levels of the
    /// configuration and the outputs' HDCP version now.
    fn claims(&self) -> (PlRobustness, PlHdcp) {
        let mut bits = 0u8;
        if self.config.sw_secure_crypto {
            bits |= PlRobustness::SW_SECURE_CRYPTO.bits();
        }
        if self.config.hw_secure_decode {
            bits |= PlRobustness::HW_SECURE_DECODE.bits();
        }
        (
            PlRobustness::from_bits(bits).unwrap_or(PlRobustness::SW_SECURE_CRYPTO),
            PlHdcp::from_u8(self.platform.output_protection.hdcp().bcd()).unwrap_or(PlHdcp::NONE),
        )
    }

    /// Session `i` of a protected key system, with the platform, the store and the key
    /// system's state.
    fn parts(&mut self, i: usize) -> Result<Parts<'_, R, C, S>, Error> {
        let Self {
            platform,
            sessions,
            store,
            protected,
            ..
        } = self;
        Ok(Parts {
            platform,
            store,
            protected: protected
                .as_mut()
                .ok_or(Error::Internal("protected session without key system"))?,
            session: sessions
                .get_mut(i)
                .ok_or(Error::Internal("session index"))?,
        })
    }

    /// Re-evaluates the key statuses of session `i` (protected sessions only).
    pub(super) fn refresh(&mut self, i: usize) -> Result<(), Error> {
        let hdcp = self.platform.output_protection.hdcp();
        let Some(session) = self.sessions.get_mut(i) else {
            return Err(Error::Internal("session index"));
        };
        if session.protected().is_some() {
            let time = read_clock(&self.platform.clock)?;
            session.refresh(time, hdcp);
        }
        Ok(())
    }

    /// Records the first decrypt of session `i` (the playback duration starts).
    pub(super) fn started_playback(&mut self, i: usize, time: Now) {
        let hdcp = self.platform.output_protection.hdcp();
        if let Some(session) = self.sessions.get_mut(i) {
            let first = session
                .protected_mut()
                .and_then(|p| p.license.as_mut())
                .filter(|l| l.first_playback.is_none());
            if let Some(license) = first {
                license.first_playback = Some(time.secs);
                session.refresh(time, hdcp);
            }
        }
    }

    /// EME `setServerCertificate`. Without the protected key system no key system takes a
    /// certificate: `InvalidServerCertificate` as well (`docs/abi.md`, status `0x0303`).
    pub(super) fn set_server_certificate(
        &mut self,
        header: &Header,
        certificate: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.protected.is_none() {
            return Err(Error::ServerCertificate);
        }
        let now = read_clock(&self.platform.clock)?.secs;
        let protected = self.protected.as_mut().ok_or(Error::ServerCertificate)?;
        super::reserve_response(out, 0)?;
        protected.set_server_certificate(certificate, now)?;
        write::<SetServerCertificate<'_>>(&cdm_core::abi::Done, header, out)
    }

    /// EME `getStatusForPolicy`: `usable` if the outputs meet the policy's minimum HDCP
    /// version now, else `output-restricted`.
    pub(super) fn status_for_policy(
        &self,
        header: &Header,
        policy: GetStatusForPolicy,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let current = self.platform.output_protection.hdcp();
        let status = match policy.min_hdcp {
            Some(min) if Hdcp::from_bcd(min.to_wire()).unwrap_or(Hdcp::V2_3) > current => {
                KeyStatus::OutputRestricted
            }
            _ => KeyStatus::Usable,
        };
        write::<GetStatusForPolicy>(&PolicyStatus { status }, header, out)
    }

    /// The message of `GenerateRequest` for protected session `i`: an
    /// `individualization-request` while the device is not provisioned, else a signed (and,
    /// with a server certificate, encrypted) license request; with the session's outstanding
    /// nonces once it is sent.
    pub(super) fn protected_request(
        &mut self,
        i: usize,
        kids: &[KeyId],
        init_data: &[u8],
    ) -> Result<(MessageType, Vec<u8>, Outstanding), Error> {
        let now = read_clock(&self.platform.clock)?.secs;
        let claims = self.claims();
        let Parts {
            platform,
            store,
            protected,
            session,
        } = self.parts(i)?;
        let mut outstanding = outstanding_of(session)?;
        // The init data is checked before anything else, so that content this key system
        // cannot license never creates a device identity or costs a provisioning.
        if kids.len() > MAX_KEYS {
            // As for Clear Key: the init data asks for more than one request can carry.
            return Err(Error::NotSupported(
                "init data yields an oversize license request",
            ));
        }
        let mut key_ids = Vec::new();
        key_ids.try_reserve_exact(kids.len())?;
        for kid in kids {
            let id: [u8; 16] = kid
                .as_bytes()
                .try_into()
                .map_err(|_| Error::NotSupported("org.teecdm.protected key IDs are 16 bytes"))?;
            key_ids.push(id);
        }
        protected.device(&platform.rng, store.as_mut(), now, claims)?;
        let protected = &*protected;
        let device = protected.current()?;
        let mut rng = RngAdapter::new(&platform.rng);
        let (message_type, message) = if device.chain().is_none() {
            let m = device
                .provisioning_request(&mut rng, now, &mut outstanding)
                .map_err(request_error)?;
            (MessageType::IndividualizationRequest, m)
        } else {
            let content_id = if init_data.len() <= MAX_CONTENT_ID_LEN {
                try_copy(init_data)?
            } else {
                Vec::new()
            };
            let params = LicenseRequestParams {
                session_type: match session.session_type() {
                    SessionType::Temporary => PlSessionType::Temporary,
                    SessionType::PersistentLicense => PlSessionType::PersistentLicense,
                },
                robustness: match session.robustness() {
                    Robustness::HwSecureDecode => PlRobustness::HW_SECURE_DECODE,
                    _ => PlRobustness::SW_SECURE_CRYPTO,
                },
                hdcp: claims.1,
                key_ids,
                content_id,
            };
            let m = device
                .license_request(&mut rng, now, &mut outstanding, &params, protected.server())
                .map_err(request_error)?;
            (MessageType::LicenseRequest, m)
        };
        rng.check()?;
        Ok((message_type, message, outstanding))
    }

    /// `Update` of a protected session: a provisioning response, a license, a renewal
    /// response or a release acknowledgement, by the message's type.
    pub(super) fn update_protected(
        &mut self,
        header: &Header,
        i: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match peek_type(bytes).map_err(protocol)? {
            PlMessage::ProvisioningResponse => self.accept_provisioning(header, i, bytes, out),
            PlMessage::License => self.accept_license(header, i, bytes, out),
            PlMessage::RenewalResponse => self.accept_renewal(header, i, bytes, out),
            PlMessage::ReleaseAck => self.accept_release_ack(header, i, bytes, out),
            _ => Err(Error::LicenseMismatch("not a server response")),
        }
    }

    fn accept_provisioning(
        &mut self,
        header: &Header,
        i: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let now = read_clock(&self.platform.clock)?.secs;
        let claims = self.claims();
        let Parts {
            platform,
            store,
            protected,
            session,
        } = self.parts(i)?;
        if session.is_released() {
            return Err(Error::InvalidState("session released"));
        }
        let mut outstanding = outstanding_of(session)?;
        let mut candidate = protected.candidate(claims)?;
        candidate
            .accept_provisioning(&mut outstanding, bytes, now)
            .map_err(protocol)?;
        let record = encode_device(&candidate)?;
        let state = session.state(None)?;
        write::<Update<'_>>(&state, header, out)?;
        if let Some(store) = store.as_mut() {
            store.write_device(&record, &platform.rng)?;
        }
        protected.replace_device(candidate);
        keep_outstanding(session, Some(outstanding));
        Ok(())
    }

    fn accept_license(
        &mut self,
        header: &Header,
        i: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let time = read_clock(&self.platform.clock)?;
        let now = time.secs;
        let hdcp = self.platform.output_protection.hdcp();
        let max_keys = self.config.max_keys_per_session;
        let Parts {
            platform,
            store,
            protected,
            session,
        } = self.parts(i)?;
        if !session.is_requested() {
            return Err(Error::InvalidState("no license request is pending"));
        }
        let device = protected.current()?;
        let mut outstanding = outstanding_of(session)?;
        let accepted = device
            .accept_license(&mut outstanding, bytes, now)
            .map_err(protocol)?;
        let persistent = session.session_type() == SessionType::PersistentLicense;
        if persistent && !accepted.policy.can_persist {
            return Err(Error::LicenseMismatch("the license may not be persisted"));
        }
        // A key ID listed twice has no single key and restrictions (the keys would load
        // under the first entry's rule, the entitlement used would differ from the one whose
        // rule applies, and the stored record would not load again): refused.
        if has_duplicates(accepted.keys.iter().map(|k| &k.key_id))
            || has_duplicates(accepted.entitlement_keys.iter().map(|(kid, _)| kid))
        {
            return Err(Error::LicenseMismatch("a key ID is listed twice"));
        }
        let (keys, rules) = keys_and_rules(
            accepted
                .keys
                .iter()
                .map(|k| (&k.key_id, &k.key, k.robustness, k.min_hdcp)),
        )?;
        let (mut state, new_kids) = session.prepare_keys(keys.iter().map(|(k, _)| k), max_keys)?;
        let mut entitlements = Vec::new();
        entitlements.try_reserve_exact(accepted.entitlement_keys.len())?;
        for ((kid, key), (_, robustness, min_hdcp)) in accepted
            .entitlement_keys
            .iter()
            .zip(accepted.entitlement_rules.iter())
        {
            entitlements.push(Entitlement {
                kid: *kid,
                key: key.clone(),
                requirement: Requirement::from_license(*robustness, *min_hdcp),
                robustness: *robustness,
                min_hdcp: *min_hdcp,
            });
        }
        let license = LicenseState {
            session_id: accepted.session_id,
            policy: accepted.policy,
            accepted_at: now,
            first_playback: None,
            entitlements,
        };
        loaded_statuses(&mut state, session, &rules, license.usable_at(time), hdcp);
        state.expiration_ms = license.expiration_ms();
        let record = match (persistent, store.as_ref()) {
            (false, _) => None,
            (true, None) => return Err(Error::Internal("persistent session without storage")),
            (true, Some(store)) => {
                let ext = encode_extension(&license, &rules)?;
                Some(store.prepare(
                    session.id().as_bytes(),
                    session.robustness(),
                    &keys,
                    Some(&ext),
                )?)
            }
        };
        let schedules = expand_keys(platform.engine, keys, |kid| rule_of(&rules, kid))?;
        write::<Update<'_>>(&state, header, out)?;
        store_record(store, session, record, &platform.rng)?;
        session.commit_license(schedules, new_kids);
        if let Some(p) = session.protected_mut() {
            p.outstanding = outstanding;
            p.license = Some(license);
            p.renewal_requested_at = None;
        }
        session.refresh(time, hdcp);
        Ok(())
    }

    fn accept_renewal(
        &mut self,
        header: &Header,
        i: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let time = read_clock(&self.platform.clock)?;
        let now = time.secs;
        let hdcp = self.platform.output_protection.hdcp();
        let Parts {
            platform,
            store,
            protected,
            session,
        } = self.parts(i)?;
        if !session.is_requested() {
            return Err(Error::InvalidState("no license to renew"));
        }
        let device = protected.current()?;
        let (license, mut outstanding) = license_of(session, "no license to renew")?;
        let policy = device
            .accept_renewal(&mut outstanding, &license.session_id, bytes, now)
            .map_err(protocol)?;
        if session.session_type() == SessionType::PersistentLicense && !policy.can_persist {
            // The stored license would outlive a policy that forbids storing it.
            return Err(Error::LicenseMismatch(
                "a renewal of a persistent license must allow persisting",
            ));
        }
        let first_playback = license.first_playback.map(|_| now);
        // The stored record (persistent sessions) carries the new policy.
        let record = match (session.session_type(), store.as_ref()) {
            (SessionType::PersistentLicense, Some(store)) => {
                prepare_stored_change(store, session, |lic| {
                    lic.policy = policy;
                    lic.accepted_at = now;
                    lic.first_playback = first_playback;
                })?
            }
            _ => None,
        };
        let (old_policy, old_accepted, old_first) =
            (license.policy, license.accepted_at, license.first_playback);
        let set = |session: &mut Session, p, a, f| {
            if let Some(l) = session.protected_mut().and_then(|p| p.license.as_mut()) {
                l.policy = p;
                l.accepted_at = a;
                l.first_playback = f;
            }
        };
        set(session, policy, now, first_playback);
        session.refresh(time, hdcp);
        let answered = session
            .state(None)
            .and_then(|state| write::<Update<'_>>(&state, header, out))
            .and_then(|()| store_record(store, session, record, &platform.rng));
        if let Err(e) = answered {
            set(session, old_policy, old_accepted, old_first);
            session.refresh(time, hdcp);
            return Err(e);
        }
        if let Some(p) = session.protected_mut() {
            p.outstanding = outstanding;
            p.renewal_requested_at = None;
        }
        Ok(())
    }

    fn accept_release_ack(
        &mut self,
        header: &Header,
        i: usize,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let now = read_clock(&self.platform.clock)?.secs;
        let Parts {
            protected, session, ..
        } = self.parts(i)?;
        if !session.is_released() {
            return Err(Error::InvalidState("remove() was not called"));
        }
        let device = protected.current()?;
        let (license, mut outstanding) = license_of(session, "no license was released")?;
        device
            .accept_release_ack(&mut outstanding, &license.session_id, bytes, now)
            .map_err(protocol)?;
        self.finish_release(header, i, out)
    }

    /// The message of `Remove` for protected session `i`, a signed release request, with the
    /// session's outstanding nonces once it is sent.
    pub(super) fn release_request(&mut self, i: usize) -> Result<(Vec<u8>, Outstanding), Error> {
        let now = read_clock(&self.platform.clock)?.secs;
        let Parts {
            platform,
            protected,
            session,
            ..
        } = self.parts(i)?;
        let device = protected.current()?;
        let (license, mut outstanding) = license_of(session, "no license to release")?;
        let mut rng = RngAdapter::new(&platform.rng);
        let message = device
            .release_request(&mut rng, now, &mut outstanding, &license.session_id)
            .map_err(protocol)?;
        rng.check()?;
        Ok((message, outstanding))
    }

    /// `Renew`: a `license-renewal` message when the license's renewal is due and none is
    /// pending; an empty message otherwise (and always for Clear Key).
    pub(super) fn renew(&mut self, header: &Header, out: &mut Vec<u8>) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        self.refresh(i)?;
        let session = self.session_at(i)?;
        let due = match session.protected().and_then(|p| p.license.as_ref()) {
            Some(license) if session.is_requested() => {
                let now = read_clock(&self.platform.clock)?.secs;
                // One request at a time, but a lost one (or a lost answer) is asked again a
                // renewal interval later.
                let retry = u64::from(license.policy.renewal_interval.max(1));
                let pending = session
                    .protected()
                    .and_then(|p| p.renewal_requested_at)
                    .is_some_and(|at| now < at.saturating_add(retry));
                let due_at = license.policy.renewal_due(license.accepted_at);
                (!pending && due_at.is_some_and(|t| t <= now)).then_some((now, license.session_id))
            }
            _ => None,
        };
        let Some((now, server_session)) = due else {
            let resp = Message {
                message_type: MessageType::LicenseRenewal,
                message: Vec::new(),
                state: session.state(None)?,
            };
            return write::<Renew>(&resp, header, out);
        };
        let Parts {
            platform,
            protected,
            session,
            ..
        } = self.parts(i)?;
        let device = protected.current()?;
        let mut outstanding = outstanding_of(session)?;
        let mut rng = RngAdapter::new(&platform.rng);
        let message = device
            .renewal_request(&mut rng, now, &mut outstanding, &server_session)
            .map_err(protocol)?;
        rng.check()?;
        let resp = Message {
            message_type: MessageType::LicenseRenewal,
            message,
            state: session.state(None)?,
        };
        write::<Renew>(&resp, header, out)?;
        if let Some(p) = session.protected_mut() {
            p.outstanding = outstanding;
            p.renewal_requested_at = Some(now);
        }
        Ok(())
    }

    /// `AddInBandKeys`: content keys wrapped under an entitlement key of the session's
    /// license become usable with that key's restrictions, without a license request.
    pub(super) fn add_in_band_keys(
        &mut self,
        header: &Header,
        record: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        let time = read_clock(&self.platform.clock)?;
        let hdcp = self.platform.output_protection.hdcp();
        let max_keys = self.config.max_keys_per_session;
        let engine = self.platform.engine;
        let session = self.session_at_mut(i)?;
        if !session.is_requested() {
            return Err(Error::InvalidState("no license in the session"));
        }
        let license = session
            .protected()
            .and_then(|p| p.license.as_ref())
            .ok_or(Error::InvalidState("no protected license in the session"))?;
        let usable = license.usable_at(time);
        let parsed = RotationRecord::parse(record).map_err(protocol)?;
        let entitlement = license
            .entitlements
            .iter()
            .find(|e| e.kid == parsed.entitlement_key_id)
            .ok_or(Error::LicenseMismatch("unknown entitlement key"))?;
        let (robustness, min_hdcp, requirement) = (
            entitlement.robustness,
            entitlement.min_hdcp,
            entitlement.requirement,
        );
        let unwrapped =
            unwrap_rotation_record(&license.entitlement_pairs()?, record).map_err(protocol)?;
        let (keys, rules) = keys_and_rules(
            unwrapped
                .iter()
                .map(|(kid, key)| (kid, key, robustness, min_hdcp)),
        )?;
        drop(unwrapped);
        // An in-band key may replace an earlier in-band key of the same entitlement, never a
        // key held under other restrictions (a license's own key, or another entitlement's).
        for (kid, _) in &keys {
            if let Some(slot) = session.slot(kid.as_bytes()) {
                if slot.requirement() != Some(requirement) {
                    return Err(Error::LicenseMismatch(
                        "an in-band key would replace a key with other restrictions",
                    ));
                }
            }
        }
        let (mut state, new_kids) = session.prepare_keys(keys.iter().map(|(k, _)| k), max_keys)?;
        loaded_statuses(&mut state, session, &rules, usable, hdcp);
        let schedules = expand_keys(engine, keys, |_| Some(requirement))?;
        write::<AddInBandKeys<'_>>(&state, header, out)?;
        session.commit_license(schedules, new_kids);
        session.refresh(time, hdcp);
        Ok(())
    }

    /// `Load` of a stored protected license.
    pub(super) fn load_protected(
        &mut self,
        header: &Header,
        session_id: &[u8],
        effective: Robustness,
        stored: StoredLicense,
        released: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let time = read_clock(&self.platform.clock)?;
        let now = time.secs;
        let hdcp = self.platform.output_protection.hdcp();
        let claims = self.claims();
        let (license, rules) = stored_extension(&stored)?;
        let id = restored_id(session_id)?;
        let keys = restored_keys(self.platform.engine, stored.keys, released, |kid| {
            rule_of(&rules, kid)
        })?;
        let Self {
            platform,
            sessions,
            store,
            protected,
            ..
        } = self;
        let protected = protected
            .as_mut()
            .ok_or(Error::Internal("protected session without key system"))?;
        let device = protected.device(&platform.rng, store.as_mut(), now, claims)?;
        let mut ps = ProtectedSession::default();
        let release_message = if released {
            let mut rng = RngAdapter::new(&platform.rng);
            let m = device
                .release_request(&mut rng, now, &mut ps.outstanding, &license.session_id)
                .map_err(protocol)?;
            rng.check()?;
            m
        } else {
            Vec::new()
        };
        ps.license = Some(license);
        let handle = fresh_session_handle(sessions, &platform.rng)?;
        let max_keys = self.config.max_keys_per_session;
        let mut session =
            Session::restored(handle, id, effective, keys, released, max_keys, Some(ps))?;
        session.refresh(time, hdcp);
        self.open_restored(header, session, release_message, out)
    }
}

/// Before the first clear output of a `persistent-license` session whose license limits
/// playback: stores when playback started, so that closing and loading the session again
/// does not restart the playback duration (the in-memory start is set once the decrypt
/// succeeded, `SecureWorld::started_playback`). A failure refuses the decrypt. If the decrypt
/// fails after this, the stored start is slightly early, which only shortens playback; the
/// next decrypt stores its own time again.
pub(super) fn store_playback_start<R: SecureRandom, C: Clock, S: SecureOutputSink>(
    session: &Session,
    store: Option<&mut Store>,
    now: Now,
    platform: &Platform<R, C, S>,
) -> Result<(), Error> {
    if session.session_type() != SessionType::PersistentLicense {
        return Ok(());
    }
    let starts = session
        .protected()
        .and_then(|p| p.license.as_ref())
        .is_some_and(|l| l.first_playback.is_none() && l.policy.playback_duration != 0);
    if !starts {
        return Ok(());
    }
    let store = store.ok_or(Error::Internal("persistent session without storage"))?;
    let record = prepare_stored_change(store, session, |license| {
        license.first_playback = Some(now.secs);
    })?
    .ok_or(Error::Store(StoreError::Missing))?;
    store.store(session.id().as_bytes(), &record, &platform.rng)?;
    Ok(())
}

/// The record of the protected license stored under `session`'s id with its license state
/// changed by `change`, checked and encoded by `Store::prepare` (`None` if nothing is stored
/// under that id).
fn prepare_stored_change(
    store: &Store,
    session: &Session,
    change: impl FnOnce(&mut LicenseState),
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let id = session.id().as_bytes();
    let Some(entry) = store.find(id)? else {
        return Ok(None);
    };
    let stored = store.read(entry)?;
    let (mut license, rules) = stored_extension(&stored)?;
    change(&mut license);
    let ext = encode_extension(&license, &rules)?;
    Ok(Some(store.prepare(
        id,
        session.robustness(),
        &stored.keys,
        Some(&ext),
    )?))
}

/// The license state and key rules of a stored protected license.
fn stored_extension(stored: &StoredLicense) -> Result<(LicenseState, Rules), Error> {
    let ext = stored
        .protected
        .as_ref()
        .ok_or(Error::Internal("stored protected license"))?;
    decode_extension(ext)
}

/// Makes `outstanding`, when there is one, the nonces the protected `session` awaits answers
/// for (once the message that consumed them was answered).
pub(super) fn keep_outstanding(session: &mut Session, outstanding: Option<Outstanding>) {
    if let (Some(p), Some(outstanding)) = (session.protected_mut(), outstanding) {
        p.outstanding = outstanding;
    }
}

/// The error of a request the device could not make: too many requests of the session
/// await their answers (`GenerateRequest` repeated while provisioning is pending) is a state
/// of the session, not an invalid license.
fn request_error(e: protected_license::Error) -> Error {
    match e {
        protected_license::Error::TooManyOutstanding => {
            Error::InvalidState("too many requests await their answers")
        }
        e => protocol(e),
    }
}

/// Content keys with their restrictions (a license's, or in-band keys with their entitlement
/// key's) as (key ID, key) pairs (wiped on drop) and their rules.
fn keys_and_rules<'k>(
    licensed: impl ExactSizeIterator<Item = (&'k [u8; 16], &'k PlContentKey, PlRobustness, PlHdcp)>,
) -> Result<(Vec<(KeyId, ContentKey)>, Rules), Error> {
    let mut keys = Vec::new();
    keys.try_reserve_exact(licensed.len())?;
    let mut rules = Vec::new();
    rules.try_reserve_exact(licensed.len())?;
    for (kid, key, robustness, min_hdcp) in licensed {
        keys.push((KeyId::new(kid)?, ContentKey::new(*key.expose())));
        rules.push((*kid, robustness, min_hdcp));
    }
    Ok((keys, rules))
}

/// Whether `kids` holds a key ID more than once (licenses hold at most 32).
fn has_duplicates<'k>(kids: impl Iterator<Item = &'k [u8; 16]> + Clone) -> bool {
    kids.clone()
        .enumerate()
        .any(|(i, a)| kids.clone().skip(i.saturating_add(1)).any(|b| a == b))
}

/// A copy of the outstanding nonces of a protected session: operations consume from the copy,
/// which replaces the session's set only once the whole operation succeeded.
fn outstanding_of(session: &Session) -> Result<Outstanding, Error> {
    Ok(session
        .protected()
        .ok_or(Error::Internal("protected state"))?
        .outstanding
        .clone())
}

/// The license of a protected session (`InvalidState(missing)` without one) and a copy of its
/// outstanding nonces.
fn license_of<'s>(
    session: &'s Session,
    missing: &'static str,
) -> Result<(&'s LicenseState, Outstanding), Error> {
    let ps = session
        .protected()
        .ok_or(Error::Internal("protected state"))?;
    let license = ps.license.as_ref().ok_or(Error::InvalidState(missing))?;
    Ok((license, ps.outstanding.clone()))
}

/// The requirement of `kid` under `rules`.
fn rule_of(rules: &Rules, kid: &KeyId) -> Option<Requirement> {
    rules
        .iter()
        .find(|(k, _, _)| k.as_slice() == kid.as_bytes())
        .map(|(_, r, h)| Requirement::from_license(*r, *h))
}

/// Sets, in an answer being built, the status of every key once the keys of `rules` are
/// loaded: what `Session::refresh` will compute then (see [`key_status`]), the keys of `rules`
/// under their rule and the session's other keys under their slot's, with a license that is
/// `usable` now or not and the outputs at `hdcp`. Nothing in `session` changes: a refused
/// answer must leave it as it was, and decrypts re-evaluate only the key they use, so the
/// statuses it holds may be older than now.
fn loaded_statuses(
    state: &mut SessionState,
    session: &Session,
    rules: &Rules,
    usable: bool,
    hdcp: Hdcp,
) {
    for (kid, status) in &mut state.key_statuses {
        let requirement = match rule_of(rules, kid) {
            Some(requirement) => Some(requirement),
            None => session.slot(kid.as_bytes()).and_then(|s| s.requirement()),
        };
        *status = key_status(usable, requirement, hdcp);
    }
}
