//! The trusted application's entry point: one request in, one response out.

use alloc::string::String;
use alloc::vec::Vec;

use cdm_core::abi::limits::{MAX_SAMPLE_LEN, MAX_SUBSAMPLES};
use cdm_core::abi::{
    encode_response, AddInBandKeys, Capabilities, CloseSession, DecryptOutput, DecryptRequest,
    Done, GenerateRequest, GetCapabilities, GetKeyStatuses, Header, Load, Loaded, Message,
    OpenSession, Operation, OutputKind, ReleaseSecureBuffer, Remove, RenderSecureBuffer, Rendered,
    Renew, Request, Response, SampleError, SessionOpened, SetServerCertificate, Status, Update,
    ABI_VERSION, HEADER_LEN, MAGIC,
};
use cdm_core::clearkey::{kids_json, parse_license, parse_license_release, ClearKeyError};
use cdm_core::{
    parse_init_data, ClosedReason, EncryptionScheme, KeySystem, MessageType, Robustness,
    SessionType,
};
use hal::platform::{
    Clock, DeviceRootKey, MonotonicCounter, Platform, SecureOutputSink, SecureRandom, SecureStorage,
};

use crate::config::{Config, ConfigError};
use crate::decrypt::{self, Scratch};
use crate::error::Error;
use crate::fallible::{try_copy, try_string};
use crate::protected::{read_clock, Protected, Requirement};
use crate::secure_buffer::Pool;
use crate::session::{RestoredKey, Session};
use crate::store::Store;

mod protected_ops;

/// A session with the platform services and the store, borrowed apart from the rest of the
/// secure world (see [`SecureWorld::session_parts`]).
type SessionParts<'a, R, C, S> = (
    &'a Platform<R, C, S>,
    &'a mut Option<Store>,
    &'a mut Session,
);

/// How many times a random handle or session id is redrawn on collision before giving up
/// (with 64-bit values a second draw already essentially never happens).
const MAX_DRAWS: usize = 8;

/// Bytes of randomness in an EME session id (printed as 16 lowercase hex characters).
const SESSION_ID_BYTES: usize = 8;

/// The secure world: sessions, key slots, secure buffers and the platform services, behind
/// one entry point, [`SecureWorld::process`].
///
/// Generic over the platform services (`hal::platform`): `std` hosts use
/// `hal::platform::StdPlatform`; a TEE integrator passes its own RNG, clock and output sink.
pub struct SecureWorld<R, C, S> {
    platform: Platform<R, C, S>,
    config: Config,
    sessions: Vec<Session>,
    buffers: Pool,
    scratch: Scratch,
    /// Persistent licenses; `None` when the secure world was built without storage.
    store: Option<Store>,
    /// The protected key system; `None` when no root is pinned in the configuration.
    protected: Option<Protected>,
}

impl<R, C, S> core::fmt::Debug for SecureWorld<R, C, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureWorld")
            .field("engine", &self.platform.engine.name())
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .field("store", &self.store)
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

/// Writes an error response to `header`. If even the 32-byte header cannot be allocated,
/// `out` is left empty: the transport reports that as a dead secure world.
fn write_error(header: &Header, status: Status, out: &mut Vec<u8>) {
    if Response::encode_error(header, status, out).is_err() {
        out.clear();
    }
}

/// Encodes the successful response of operation `O`, mapping encoding failures (memory) to
/// errors. The type parameter ties the payload to the operation asked.
fn write<'a, O: Operation<'a>>(
    resp: &O::Response,
    header: &Header,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    encode_response::<O>(resp, header, out).map_err(Error::from)
}

/// Clears `out` and makes room for a response of `payload` bytes, so that encoding it
/// after a side effect cannot fail.
fn reserve_response(out: &mut Vec<u8>, payload: usize) -> Result<(), Error> {
    out.clear();
    out.try_reserve(HEADER_LEN.saturating_add(payload))?;
    Ok(())
}

fn random_u64(rng: &impl SecureRandom) -> Result<u64, Error> {
    let mut b = [0u8; 8];
    rng.fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// A random non-zero handle that `in_use` does not know.
fn fresh_handle(rng: &impl SecureRandom, in_use: impl Fn(u64) -> bool) -> Result<u64, Error> {
    for _ in 0..MAX_DRAWS {
        let h = random_u64(rng)?;
        if h != 0 && !in_use(h) {
            return Ok(h);
        }
    }
    Err(Error::Internal("could not draw a fresh handle"))
}

/// A random session id of 16 lowercase hex characters.
fn session_id(rng: &impl SecureRandom) -> Result<String, Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; SESSION_ID_BYTES];
    rng.fill(&mut b)?;
    let mut s = String::new();
    s.try_reserve_exact(SESSION_ID_BYTES.saturating_mul(2))?;
    for byte in b {
        for nibble in [byte >> 4, byte & 0x0f] {
            let c = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            s.push(char::from(c));
        }
    }
    Ok(s)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> SecureWorld<R, C, S> {
    /// Builds a secure world. Every table (sessions, secure buffers, the subsample scratch)
    /// is allocated here, once.
    pub fn new(platform: Platform<R, C, S>, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut sessions = Vec::new();
        sessions
            .try_reserve_exact(config.max_sessions)
            .map_err(|_| ConfigError::OutOfMemory)?;
        let max_buffers = if config.hw_secure_decode {
            config.max_secure_buffers
        } else {
            0
        };
        let buffers = Pool::new(max_buffers, config.max_secure_buffer_bytes)
            .map_err(|_| ConfigError::OutOfMemory)?;
        let scratch = Scratch::new().map_err(|_| ConfigError::OutOfMemory)?;
        let protected = match &config.protected_root {
            None => None,
            Some(root) => Some(Protected::new(root).ok_or(ConfigError::ProtectedRoot)?),
        };
        Ok(SecureWorld {
            platform,
            config,
            sessions,
            buffers,
            scratch,
            store: None,
            protected,
        })
    }

    /// Builds a secure world that keeps `persistent-license` sessions in `storage`, sealed
    /// under keys derived from `root_key` and protected against rollback by `counter` (see
    /// `docs/storage.md`).
    ///
    /// Fails only if the configuration is invalid or the root key cannot be read. A store that
    /// fails its checks (rolled back, tampered, unreadable) still yields a secure world:
    /// temporary sessions work, and every persistent-license operation answers the reason
    /// ([`SecureWorld::storage_fault`] tells it up front).
    pub fn with_storage<St, Co>(
        platform: Platform<R, C, S>,
        config: Config,
        storage: St,
        counter: Co,
        root_key: &dyn DeviceRootKey,
    ) -> Result<Self, ConfigError>
    where
        St: SecureStorage + Send + 'static,
        Co: MonotonicCounter + Send + 'static,
    {
        let mut world = Self::new(platform, config)?;
        let store = Store::open(
            alloc::boxed::Box::new(storage),
            alloc::boxed::Box::new(counter),
            root_key,
            world.config.max_persistent_licenses,
            world.config.max_license_record_len,
        )
        .map_err(|_| ConfigError::RootKey)?;
        world.store = Some(store);
        Ok(world)
    }

    /// Why persistent licenses cannot be used, as the status every persistent-license
    /// operation answers: `None` when the store is usable, [`Status::NotSupported`] when the
    /// secure world has no storage.
    pub fn storage_fault(&self) -> Option<Status> {
        match &self.store {
            None => Some(Status::NotSupported),
            Some(store) => store.check().err().map(|e| Error::Store(e).status()),
        }
    }

    /// The platform services (e.g. to read a `DigestSink`'s counters in tests).
    pub fn platform(&self) -> &Platform<R, C, S> {
        &self.platform
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one request message and writes one response message into `response`
    /// (cleared first; its capacity is reused, so the decrypt path does not allocate).
    ///
    /// `request` must be secure-world memory (the transport copies it out of shared memory
    /// before the call), so nothing is read twice. `sample` is the shared sample buffer:
    /// only `Decrypt` reads it, and only `SW_SECURE_CRYPTO` sessions with in-place output
    /// write it, with the clear sample. Any failure is an error response carrying a
    /// [`Status`] and the request's id; a request whose header does not parse is answered
    /// with opcode 0 and request id 0. A failed request changes nothing: no session, key,
    /// buffer or byte of `sample` is modified.
    pub fn process(&mut self, request: &[u8], sample: &mut [u8], response: &mut Vec<u8>) {
        let (header, req) = match Request::parse(request) {
            Ok(parsed) => parsed,
            Err((header, e)) => {
                let header = header.unwrap_or(Header {
                    magic: MAGIC,
                    version: ABI_VERSION,
                    opcode: 0,
                    session: 0,
                    request_id: 0,
                    payload_len: 0,
                    status: 0,
                    _reserved: 0,
                });
                write_error(&header, e.status(), response);
                return;
            }
        };
        if let Err(e) = self.dispatch(&header, req, sample, response) {
            write_error(&header, e.status(), response);
        }
    }

    /// One exhaustive match over the operation table. Only the operations that lease the
    /// shared sample buffer (`Decrypt`) are handed it.
    fn dispatch(
        &mut self,
        header: &Header,
        req: Request<'_>,
        sample: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        match req {
            Request::GetCapabilities(GetCapabilities) => self.capabilities(header, out),
            Request::SetServerCertificate(SetServerCertificate { certificate }) => {
                self.set_server_certificate(header, certificate, out)
            }
            Request::GetStatusForPolicy(policy) => self.status_for_policy(header, policy, out),
            Request::OpenSession(open) => self.open_session(header, open, out),
            Request::CloseSession(CloseSession) => self.close_session(header, out),
            Request::GenerateRequest(gen) => self.generate_request(header, gen, out),
            Request::Update(Update { response }) => self.update(header, response, out),
            Request::Load(load) => self.load(header, load, out),
            Request::Remove(Remove) => self.remove(header, out),
            Request::GetKeyStatuses(GetKeyStatuses) => {
                let i = self.session_index(header.session)?;
                self.refresh(i)?;
                let state = self.session_at(i)?.state(None)?;
                write::<GetKeyStatuses>(&state, header, out)
            }
            Request::Renew(Renew) => self.renew(header, out),
            Request::AddInBandKeys(AddInBandKeys { record }) => {
                self.add_in_band_keys(header, record, out)
            }
            Request::Decrypt(d) => self.decrypt(header, &d, sample, out),
            Request::RenderSecureBuffer(RenderSecureBuffer { buffer }) => {
                self.render(header, buffer, out)
            }
            Request::ReleaseSecureBuffer(ReleaseSecureBuffer { buffer }) => {
                reserve_response(out, 0)?;
                self.buffers.free(buffer, header.session)?;
                write::<ReleaseSecureBuffer>(&Done, header, out)
            }
        }
    }

    fn session_index(&self, handle: u64) -> Result<usize, Error> {
        if handle == 0 {
            return Err(Error::NoSuchSession);
        }
        self.sessions
            .iter()
            .position(|s| s.handle() == handle)
            .ok_or(Error::NoSuchSession)
    }

    /// Session `i` (an index from [`SecureWorld::session_index`]).
    fn session_at(&self, i: usize) -> Result<&Session, Error> {
        self.sessions.get(i).ok_or(Error::Internal("session index"))
    }

    /// Session `i`, mutably.
    fn session_at_mut(&mut self, i: usize) -> Result<&mut Session, Error> {
        self.sessions
            .get_mut(i)
            .ok_or(Error::Internal("session index"))
    }

    /// Session `i` with the platform services and the store, borrowed apart.
    fn session_parts(&mut self, i: usize) -> Result<SessionParts<'_, R, C, S>, Error> {
        let Self {
            platform,
            sessions,
            store,
            ..
        } = self;
        let session = sessions
            .get_mut(i)
            .ok_or(Error::Internal("session index"))?;
        Ok((platform, store, session))
    }

    /// Removes session `i` and wipes everything it owns: key schedules (dropped with the
    /// session) and its secure buffers.
    fn close_index(&mut self, i: usize) {
        if i < self.sessions.len() {
            let session = self.sessions.swap_remove(i);
            self.buffers.free_session(session.handle());
            drop(session);
        }
    }

    fn robustness_levels(&self) -> Result<Vec<Robustness>, Error> {
        let mut levels = Vec::new();
        levels.try_reserve_exact(3)?;
        if self.config.sw_secure_crypto {
            // The empty robustness (the only one Clear Key's EME string allows) is served as
            // SW_SECURE_CRYPTO.
            levels.push(Robustness::Empty);
            levels.push(Robustness::SwSecureCrypto);
        }
        if self.config.hw_secure_decode {
            levels.push(Robustness::HwSecureDecode);
        }
        Ok(levels)
    }

    fn capabilities(&self, header: &Header, out: &mut Vec<u8>) -> Result<(), Error> {
        let caps = Capabilities {
            abi_version: ABI_VERSION,
            engine: try_string(self.platform.engine.name())?,
            robustness: self.robustness_levels()?,
            schemes: try_copy(EncryptionScheme::ALL)?,
            session_types: if self.store.is_some() {
                try_copy(&[SessionType::Temporary, SessionType::PersistentLicense])?
            } else {
                try_copy(&[SessionType::Temporary])?
            },
            max_sessions: to_u32(self.config.max_sessions),
            max_keys_per_session: to_u32(self.config.max_keys_per_session),
            max_sample_len: to_u32(MAX_SAMPLE_LEN),
            max_subsamples: to_u32(MAX_SUBSAMPLES),
            max_secure_buffers: if self.config.hw_secure_decode {
                to_u32(self.config.max_secure_buffers)
            } else {
                0
            },
        };
        write::<GetCapabilities>(&caps, header, out)
    }

    fn open_session(
        &mut self,
        header: &Header,
        open: OpenSession,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let OpenSession {
            key_system,
            robustness,
            session_type,
        } = open;
        let effective = self.effective_robustness(key_system, robustness)?;
        match session_type {
            SessionType::Temporary => {}
            SessionType::PersistentLicense if self.store.is_some() => {}
            // Needs secure storage, which this secure world was built without.
            SessionType::PersistentLicense => {
                return Err(Error::NotSupported("persistent-license"))
            }
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Error::SessionQuota);
        }
        let (handle, id) = self.fresh_session()?;
        let mut answered = *header;
        answered.session = handle;
        let session_id = try_string(&id)?;
        write::<OpenSession>(&SessionOpened { session_id }, &answered, out)?;
        // Capacity for max_sessions was reserved at construction: no reallocation.
        self.sessions.try_reserve(1)?;
        self.sessions.push(Session::new(
            handle,
            id,
            effective,
            session_type,
            key_system,
        ));
        Ok(())
    }

    /// The robustness a session asking for `robustness` gets, if this secure world offers it.
    fn effective_robustness(
        &self,
        key_system: KeySystem,
        robustness: Robustness,
    ) -> Result<Robustness, Error> {
        match key_system {
            KeySystem::ClearKey => {}
            KeySystem::Protected if self.protected.is_some() => {}
            KeySystem::Protected => {
                return Err(Error::NotSupported(
                    "org.teecdm.protected has no pinned root",
                ))
            }
        }
        match robustness {
            Robustness::Empty | Robustness::SwSecureCrypto if self.config.sw_secure_crypto => {
                Ok(Robustness::SwSecureCrypto)
            }
            Robustness::HwSecureDecode if self.config.hw_secure_decode => {
                Ok(Robustness::HwSecureDecode)
            }
            _ => Err(Error::NotSupported("robustness")),
        }
    }

    /// A fresh handle and a fresh session id: used by no open session and, for the id, by no
    /// stored license either.
    fn fresh_session(&self) -> Result<(u64, String), Error> {
        let sessions = &self.sessions;
        let rng = &self.platform.rng;
        let handle = fresh_session_handle(sessions, rng)?;
        for _ in 0..MAX_DRAWS {
            let id = session_id(rng)?;
            let stored = match &self.store {
                Some(store) => store.find(id.as_bytes()).ok().flatten().is_some(),
                None => false,
            };
            if !stored && !sessions.iter().any(|s| s.id() == id) {
                return Ok((handle, id));
            }
        }
        Err(Error::Internal("could not draw a fresh session id"))
    }

    /// EME `load()` (§6.6.3) on the secure side: opens a session holding the license stored
    /// under `session_id`, or answers `found: false` and opens nothing.
    fn load(&mut self, header: &Header, load: Load<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        let Load {
            key_system,
            robustness,
            session_id,
        } = load;
        let effective = self.effective_robustness(key_system, robustness)?;
        let store = self
            .store
            .as_ref()
            .ok_or(Error::NotSupported("persistent-license"))?;
        if self
            .sessions
            .iter()
            .any(|s| s.id().as_bytes() == session_id)
        {
            return Err(Error::SessionIdInUse);
        }
        let Some(entry) = store.find(session_id)? else {
            return write::<Load<'_>>(&Loaded::default(), header, out);
        };
        if self.sessions.len() >= self.config.max_sessions {
            return Err(Error::SessionQuota);
        }
        let stored = store.read(entry)?;
        if stored.robustness != effective {
            return Err(Error::NotSupported(
                "the license was stored at another robustness level",
            ));
        }
        match (key_system, stored.protected.is_some()) {
            (KeySystem::ClearKey, false) => {}
            (KeySystem::Protected, true) => {
                let released = entry.released;
                return self.load_protected(header, session_id, effective, stored, released, out);
            }
            _ => {
                return Err(Error::NotSupported(
                    "the license was stored for another key system",
                ))
            }
        }
        let released = entry.released;
        let id = restored_id(session_id)?;
        let keys = restored_keys(self.platform.engine, stored.keys, released, |_| None)?;
        let handle = fresh_session_handle(&self.sessions, &self.platform.rng)?;
        let session = Session::restored(
            handle,
            id,
            effective,
            keys,
            released,
            self.config.max_keys_per_session,
            None,
        )?;
        let release_message = if released {
            kids_json(session.kids(), None)?
        } else {
            Vec::new()
        };
        self.open_restored(header, session, release_message, out)
    }

    /// Answers `Load` with `session`, restored from storage (its state and, for a license
    /// whose release is pending, `release_message`), under its new handle, and opens it.
    fn open_restored(
        &mut self,
        header: &Header,
        session: Session,
        release_message: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut answered = *header;
        answered.session = session.handle();
        let loaded = Loaded {
            found: true,
            release_message,
            state: session.state(None)?,
        };
        write::<Load<'_>>(&loaded, &answered, out)?;
        self.sessions.try_reserve(1)?;
        self.sessions.push(session);
        Ok(())
    }

    fn close_session(&mut self, header: &Header, out: &mut Vec<u8>) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        write::<CloseSession>(&Done, header, out)?;
        self.close_index(i);
        Ok(())
    }

    fn generate_request(
        &mut self,
        header: &Header,
        gen: GenerateRequest<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let GenerateRequest {
            init_data_type,
            init_data,
        } = gen;
        let i = self.session_index(header.session)?;
        let session = self.session_at(i)?;
        session.check_generate()?;
        let kids = parse_init_data(init_data_type, init_data)?;
        let (message_type, message, outstanding) = match session.key_system() {
            KeySystem::ClearKey => {
                // EME §9.1.3: {"kids":[...],"type":"temporary"}.
                let message = kids_json(
                    kids.iter().map(|k| k.as_bytes()),
                    Some(session.session_type()),
                )
                .map_err(|e| match e {
                    // Too many key IDs to fit one message.
                    ClearKeyError::MessageTooLarge => {
                        Error::NotSupported("init data yields an oversize license request")
                    }
                    e => Error::License(e),
                })?;
                (MessageType::LicenseRequest, message, None)
            }
            KeySystem::Protected => {
                let (message_type, message, outstanding) =
                    self.protected_request(i, &kids, init_data)?;
                (message_type, message, Some(outstanding))
            }
        };
        let session = self.session_at_mut(i)?;
        let resp = Message {
            message_type,
            message,
            state: session.state(None)?,
        };
        write::<GenerateRequest<'_>>(&resp, header, out)?;
        protected_ops::keep_outstanding(session, outstanding);
        // An individualization request leaves the license request to come.
        if message_type == MessageType::LicenseRequest {
            session.mark_requested();
        }
        Ok(())
    }

    fn update(&mut self, header: &Header, license: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        let max_keys = self.config.max_keys_per_session;
        let session = self.session_at(i)?;
        if session.key_system() == KeySystem::Protected {
            return self.update_protected(header, i, license, out);
        }
        if session.expects_release_ack()? {
            // EME §9.1.6: the acknowledgement lists the released key IDs.
            let kids = parse_license_release(license)?;
            if !session.acknowledges(&kids) {
                return Err(Error::LicenseMismatch(
                    "acknowledgement does not match the release",
                ));
            }
            return self.finish_release(header, i, out);
        }
        let (platform, store, session) = self.session_parts(i)?;
        let persistent = session.session_type() == SessionType::PersistentLicense;
        // All-or-nothing: parse, check and allocate first, then store, then load
        // (infallible).
        let parsed = parse_license(license)?;
        let (state, new_kids) = session.prepare_license(&parsed, max_keys)?;
        let record = match (persistent, store.as_ref()) {
            (false, _) => None,
            (true, None) => return Err(Error::Internal("persistent session without storage")),
            (true, Some(store)) => {
                let id = session.id().as_bytes();
                // The record holds every key of the session: the stored ones, replaced or
                // joined by this license's.
                let stored = match store.find(id)? {
                    Some(entry) => store.read(entry)?.keys,
                    None => Vec::new(),
                };
                // Copied into a vector sized once: growing one would free a block holding
                // keys without wiping it. `stored` wipes its keys when dropped.
                let mut keys = Vec::new();
                keys.try_reserve_exact(stored.len().saturating_add(parsed.keys.len()))?;
                for (kid, key) in &stored {
                    keys.push((kid.try_clone()?, key.clone()));
                }
                drop(stored);
                for (kid, key) in &parsed.keys {
                    match keys.iter_mut().find(|(k, _)| k == kid) {
                        Some((_, stored)) => *stored = key.clone(),
                        None => keys.push((kid.try_clone()?, key.clone())),
                    }
                }
                Some(store.prepare(id, session.robustness(), &keys, None)?)
            }
        };
        let schedules = expand_keys(platform.engine, parsed.keys, |_| None)?;
        write::<Update<'_>>(&state, header, out)?;
        store_record(store, session, record, &platform.rng)?;
        session.commit_license(schedules, new_kids);
        Ok(())
    }

    fn remove(&mut self, header: &Header, out: &mut Vec<u8>) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        let session = self.session_at(i)?;
        session.check_remove()?;
        let (message, outstanding) = match session.key_system() {
            // EME §9.1.5: the record of license destruction, {"kids":[...]}.
            KeySystem::ClearKey => (kids_json(session.kids(), None)?, None),
            KeySystem::Protected => {
                let (message, outstanding) = self.release_request(i)?;
                (message, Some(outstanding))
            }
        };
        let (platform, store, session) = self.session_parts(i)?;
        let resp = Message {
            message_type: MessageType::LicenseRelease,
            message,
            state: session.state_after_release()?,
        };
        write::<Remove>(&resp, header, out)?;
        // The stored license becomes a record of its destruction, kept until the release is
        // acknowledged (and loadable again to finish it after a restart).
        release_stored(store, session, &platform.rng, Release::Mark)?;
        session.release();
        protected_ops::keep_outstanding(session, outstanding);
        Ok(())
    }

    /// The end of a release (both key systems), once the acknowledgement was verified:
    /// answers the final state, deletes the stored record of license destruction and closes
    /// session `i`.
    fn finish_release(
        &mut self,
        header: &Header,
        i: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (platform, store, session) = self.session_parts(i)?;
        let state = session.state(Some(ClosedReason::ReleaseAcknowledged))?;
        write::<Update<'_>>(&state, header, out)?;
        release_stored(store, session, &platform.rng, Release::Forget)?;
        self.close_index(i);
        Ok(())
    }

    fn decrypt(
        &mut self,
        header: &Header,
        req: &DecryptRequest<'_>,
        sample: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let i = self.session_index(header.session)?;
        let Self {
            platform,
            sessions,
            buffers,
            scratch,
            store,
            ..
        } = self;
        let session = sessions
            .get_mut(i)
            .ok_or(Error::Internal("session index"))?;
        // Protected keys: the policy and the output protection decide, now, for the key used
        // (GetKeyStatuses re-evaluates them all).
        let protected_now = match session.key_system() {
            KeySystem::ClearKey => None,
            KeySystem::Protected => {
                let now = read_clock(&platform.clock)?;
                session.refresh_slot(req.key_id, now, platform.output_protection.hdcp());
                Some(now)
            }
        };
        let session = &*session;
        // EME "waiting for key" when absent; expired/released keys are not usable.
        let slot = session.slot(req.key_id).ok_or(Error::NoKey)?;
        let key = slot.usable_key()?;
        if req.output == OutputKind::InPlace && slot.requirement().is_some_and(|r| r.hw_only) {
            // A key that requires HW_SECURE_DECODE never yields clear output.
            return Err(Error::OutputNotAllowed);
        }
        req.check_sample(sample.len()).map_err(|e| match e {
            SampleError::SampleTooLarge => Error::SampleTooLarge,
            _ => Error::DecryptFailed,
        })?;
        match (session.robustness(), req.output) {
            // HW_SECURE_DECODE: clear samples never reach shared memory.
            (Robustness::HwSecureDecode, OutputKind::InPlace) => Err(Error::OutputNotAllowed),
            (_, OutputKind::InPlace) => {
                // Encode first: once the sample is decrypted nothing may fail.
                write::<DecryptRequest<'_>>(&DecryptOutput::InPlace, header, out)?;
                if let Some(now) = protected_now {
                    protected_ops::store_playback_start(session, store.as_mut(), now, platform)?;
                }
                decrypt::decrypt_in_place(key, req, scratch, sample)
            }
            // Decrypting into a secure buffer is the stronger output path, so it is allowed
            // for SW_SECURE_CRYPTO sessions too (the clear sample only reaches the sink).
            (_, OutputKind::SecureBuffer) => {
                let handle = fresh_handle(&platform.rng, |h| buffers.contains(h))?;
                // The shared buffer is only read: the copy is decrypted in secure memory.
                let mut data = buffers.allocate(sample)?;
                if let Some(now) = protected_now {
                    protected_ops::store_playback_start(session, store.as_mut(), now, platform)?;
                }
                decrypt::decrypt_in_place(key, req, scratch, &mut data)?;
                write::<DecryptRequest<'_>>(&DecryptOutput::SecureBuffer(handle), header, out)?;
                buffers.insert(handle, header.session, data)
            }
        }?;
        if let Some(now) = protected_now {
            self.started_playback(i, now);
        }
        Ok(())
    }

    fn render(&mut self, header: &Header, handle: u64, out: &mut Vec<u8>) -> Result<(), Error> {
        let buf = self.buffers.get(handle, header.session)?;
        let len = u32::try_from(buf.data().len()).map_err(|_| Error::Internal("buffer length"))?;
        // Room for `len` and the digest, so the answer cannot fail after rendering.
        reserve_response(out, 36)?;
        let digest = self.platform.sink.render(buf.data())?;
        write::<RenderSecureBuffer>(&Rendered { len, digest }, header, out)?;
        self.buffers.free(handle, header.session)
    }
}

/// What [`release_stored`] does to a stored license.
#[derive(Clone, Copy)]
enum Release {
    /// `Remove`: it becomes a record of license destruction.
    Mark,
    /// The release was acknowledged: it is deleted.
    Forget,
}

/// The storage side of a persistent session's release (both key systems): the license stored
/// under the session's id, if any, is marked released or forgotten. Nothing for other
/// session types or without storage.
fn release_stored(
    store: &mut Option<Store>,
    session: &Session,
    rng: &impl SecureRandom,
    what: Release,
) -> Result<(), Error> {
    if session.session_type() != SessionType::PersistentLicense {
        return Ok(());
    }
    let Some(store) = store.as_mut() else {
        return Ok(());
    };
    let id = session.id().as_bytes();
    if store.find(id)?.is_some() {
        match what {
            Release::Mark => store.mark_released(id, rng)?,
            Release::Forget => store.forget(id, rng)?,
        }
    }
    Ok(())
}

/// Stores `record` (from `Store::prepare`, `None` when the session keeps nothing) under
/// `session`'s id.
fn store_record(
    store: &mut Option<Store>,
    session: &Session,
    record: Option<zeroize::Zeroizing<Vec<u8>>>,
    rng: &impl SecureRandom,
) -> Result<(), Error> {
    if let (Some(record), Some(store)) = (record, store.as_mut()) {
        store.store(session.id().as_bytes(), &record, rng)?;
    }
    Ok(())
}

/// A random session handle that no session of `sessions` has.
fn fresh_session_handle(sessions: &[Session], rng: &impl SecureRandom) -> Result<u64, Error> {
    fresh_handle(rng, |h| sessions.iter().any(|s| s.handle() == h))
}

/// The session id of a stored license, as the restored session's own.
fn restored_id(session_id: &[u8]) -> Result<String, Error> {
    let id = core::str::from_utf8(session_id).map_err(|_| Error::Internal("stored session id"))?;
    Ok(try_string(id)?)
}

/// The keys of a session restored from the stored `keys`: for a `released` license only
/// their IDs, else every key expanded (see [`expand_keys`]) with `requirement(key ID)`.
fn restored_keys(
    engine: hal::aes::Engine,
    keys: Vec<(cdm_core::KeyId, cdm_core::ContentKey)>,
    released: bool,
    requirement: impl Fn(&cdm_core::KeyId) -> Option<Requirement>,
) -> Result<Vec<RestoredKey>, Error> {
    let mut restored = Vec::new();
    restored.try_reserve_exact(keys.len())?;
    if released {
        for (kid, _) in &keys {
            restored.push((kid.try_clone()?, None, None));
        }
    } else {
        for (kid, schedule, req) in expand_keys(engine, keys, requirement)? {
            restored.push((kid, Some(schedule), req));
        }
    }
    Ok(restored)
}

/// Expands every key of `keys` (fallibly: nothing is loaded if one allocation fails), wiping
/// each raw key in place right after its expansion, and pairs it with `requirement(key ID)`;
/// the vector, and with it every key ID, is dropped when this returns, so neither its memory
/// nor a moved copy keeps a key.
fn expand_keys(
    engine: hal::aes::Engine,
    mut keys: Vec<(cdm_core::KeyId, cdm_core::ContentKey)>,
    requirement: impl Fn(&cdm_core::KeyId) -> Option<Requirement>,
) -> Result<Vec<(cdm_core::KeyId, hal::aes::Aes128, Option<Requirement>)>, Error> {
    let mut schedules = Vec::new();
    schedules
        .try_reserve_exact(keys.len())
        .map_err(|_| Error::OutOfMemory)?;
    for (kid, key) in keys.iter_mut() {
        let schedule = engine.try_key(key.as_bytes());
        zeroize::Zeroize::zeroize(key);
        let schedule = schedule.map_err(|_| Error::OutOfMemory)?;
        let req = requirement(kid);
        schedules.push((kid.clone(), schedule, req));
    }
    Ok(schedules)
}
