//! A session manager over one [`MediaKeys`]: keep-alive, reuse, single flight, persistent
//! sessions for online playback and eviction, so that a player does not flood its license
//! server (the problem ExoPlayer's `DefaultDrmSessionManager` and Shaka Player's
//! `persistentSessionOnlinePlayback` each solve on their side).
//!
//! A player asks for keys with [`SessionManager::acquire`] (init data type, init data, session
//! type) and gets a reference-counted [`SessionHandle`]; the manager runs the license exchange
//! itself (`generateRequest` → message → the player's [`LicenseFetcher`] → `update`). Rules,
//! in the order `acquire` applies them:
//!
//! 1. **Keep-alive expiry**: a session nobody holds stays open for
//!    [`ManagerConfig::keep_alive`] (default 5 minutes) after its last handle was dropped, then
//!    closes. Expiry is checked on every `acquire` and by [`SessionManager::tick`]; there is no
//!    background thread.
//! 2. **Reuse by init data**: an open (or kept-alive) session made from the same init data and
//!    session type is shared: no license request.
//! 3. **Single flight**: while a request for that init data is in flight, further acquires wait
//!    for it and share its outcome (session or error); one request is sent, never two.
//! 4. **Reuse by key** ([`ManagerConfig::reuse_by_key`]): a session of the same type in which
//!    every key ID of the init data is `usable` is shared.
//! 5. **Persistent sessions for online playback** ([`ManagerConfig::persistent_online`], with
//!    a [`SessionRecords`] store, for `persistent-license` acquires): a session id stored for
//!    this init data is `load`ed instead of requested; an unknown record, or one whose keys are
//!    not all usable, is dropped and a new license requested (and its session id stored).
//! 6. Otherwise a new session and a license request. When the secure world answers
//!    `QuotaExceededError` (no session left), the least recently used session nobody holds is
//!    closed with `resource-evicted` and the call retried; with nothing to evict the error
//!    reaches the caller.
//!
//! Several sessions per stream (one per key set, key rotation) are simply several acquires;
//! decryption through [`SessionManager::media_keys`] finds the key in whichever session holds
//! it. Dropping the manager closes every session it opened. Time comes from a [`Clock`], so
//! tests and simulations run on a [`ManualClock`] without sleeping.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cdm_core::eme::{ClosedReason, InitDataType, KeyStatus, MessageType, SessionType};
use cdm_core::init_data::parse_init_data;
use cdm_core::KeyId;

use crate::error::EmeError;
use crate::media_keys::MediaKeys;
use crate::session::MediaKeySession;
use crate::session_state::{MediaKeySessionEvent, MediaKeyStatusMap};

/// Fetches licenses for the manager: a `message` event's body in, the server's response out
/// (for Clear Key, a license request JSON in and a JWK Set out).
pub trait LicenseFetcher: Send + Sync {
    /// Sends `message` (of `message_type`) to the license server and answers its response.
    fn fetch(&self, message_type: MessageType, message: &[u8]) -> Result<Vec<u8>, FetchError>;
}

/// A license fetch that failed (network, server refusal). The text is the fetcher's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("license fetch failed: {0}")]
pub struct FetchError(pub String);

/// Where the manager's time comes from: a monotonic duration since an arbitrary origin.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Duration;
}

/// The monotonic system clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(add))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// What identifies a license need: the init data, byte for byte, and its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InitKey {
    /// `cenc`, `keyids` or `webm`.
    pub init_data_type: String,
    /// The init data.
    pub init_data: Vec<u8>,
}

/// The player's store of persistent sessions (Shaka Player keeps `sessionId`, `initData` and
/// `initDataType` per stored session): which session id holds the license for some init data.
pub trait SessionRecords: Send + Sync {
    /// The session id stored for `key`.
    fn get(&self, key: &InitKey) -> Option<String>;
    /// Stores `session_id` for `key`, replacing an earlier one.
    fn put(&self, key: &InitKey, session_id: &str);
    /// Forgets `key`.
    fn remove(&self, key: &InitKey);
}

/// [`SessionRecords`] in memory (a player would persist them with its own storage).
#[derive(Debug, Default)]
pub struct MemorySessionRecords {
    map: Mutex<HashMap<InitKey, String>>,
}

impl MemorySessionRecords {
    fn map(&self) -> MutexGuard<'_, HashMap<InitKey, String>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionRecords for MemorySessionRecords {
    fn get(&self, key: &InitKey) -> Option<String> {
        self.map().get(key).cloned()
    }

    fn put(&self, key: &InitKey, session_id: &str) {
        self.map().insert(key.clone(), session_id.to_string());
    }

    fn remove(&self, key: &InitKey) {
        self.map().remove(key);
    }
}

/// How the manager behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerConfig {
    /// How long a session nobody holds stays open. Zero closes it with its last handle (what a
    /// player without a manager does: the `close-reopen` baseline).
    pub keep_alive: Duration,
    /// Share a session in which every key ID of the init data is usable.
    pub reuse_by_key: bool,
    /// For `persistent-license` acquires, `load` the session stored in the records instead of
    /// requesting a license.
    pub persistent_online: bool,
}

impl Default for ManagerConfig {
    /// Keep-alive 5 minutes (ExoPlayer's default), reuse by key on, persistent reuse off.
    fn default() -> Self {
        ManagerConfig {
            keep_alive: Duration::from_secs(300),
            reuse_by_key: true,
            persistent_online: false,
        }
    }
}

impl ManagerConfig {
    /// No keep-alive and no reuse by key: every acquire of init data nobody holds is a license
    /// request (the naive player, for comparison).
    pub fn close_reopen() -> Self {
        ManagerConfig {
            keep_alive: Duration::ZERO,
            reuse_by_key: false,
            persistent_online: false,
        }
    }
}

/// What the manager did, counted since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManagerStats {
    /// License requests sent through the fetcher.
    pub license_requests: u64,
    /// Sessions restored with `load` instead of a request.
    pub loads: u64,
    /// Acquires served by an open or kept-alive session.
    pub reuses: u64,
    /// Acquires that waited for a request already in flight.
    pub shared_in_flight: u64,
    /// Kept-alive sessions closed because their time ran out.
    pub expired: u64,
    /// Sessions closed with `resource-evicted` to make room.
    pub evictions: u64,
    /// Stored persistent sessions that could not be used and were dropped.
    pub stale_records: u64,
}

/// Why an acquire failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// The CDM refused a step (bad init data, quota with nothing to evict, …).
    #[error(transparent)]
    Eme(#[from] EmeError),
    /// The license fetcher failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// `generateRequest` produced no license request.
    #[error("no license request after generateRequest")]
    NoMessage,
    /// The manager has been dropped.
    #[error("the session manager is shut down")]
    ShutDown,
}

enum EntryState {
    /// A license exchange is running for it; `waiters` acquires wait for its outcome.
    Pending {
        waiters: usize,
    },
    /// The exchange failed; the remaining waiters take the error, the last removes the entry.
    Failed {
        waiters: usize,
        error: AcquireError,
    },
    Ready(MediaKeySession),
}

struct Entry {
    id: u64,
    key: InitKey,
    session_type: SessionType,
    state: EntryState,
    refs: usize,
    idle_since: Option<Duration>,
    last_used: Duration,
}

struct State {
    entries: Vec<Entry>,
    /// Sessions the manager closed, with the reason, until [`SessionManager::take_closed`].
    closed: Vec<(String, ClosedReason)>,
    next_id: u64,
    stats: ManagerStats,
    shut_down: bool,
}

struct Shared {
    mk: MediaKeys,
    fetcher: Arc<dyn LicenseFetcher>,
    clock: Arc<dyn Clock>,
    records: Option<Arc<dyn SessionRecords>>,
    config: ManagerConfig,
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes kept-alive sessions whose time ran out.
    fn expire(&self, st: &mut State) {
        let now = self.clock.now();
        let keep = self.config.keep_alive;
        let mut i = 0;
        while let Some(e) = st.entries.get(i) {
            let due = e.refs == 0
                && matches!(e.state, EntryState::Ready(_))
                && e.idle_since.is_some_and(|t| now.saturating_sub(t) >= keep);
            if due {
                let e = st.entries.swap_remove(i);
                if let EntryState::Ready(s) = e.state {
                    let _ = s.close();
                    st.closed
                        .push((s.session_id(), ClosedReason::ClosedByApplication));
                }
                st.stats.expired = st.stats.expired.saturating_add(1);
            } else {
                i = i.saturating_add(1);
            }
        }
    }

    /// Closes the least recently used session nobody holds, with `resource-evicted`.
    fn evict_one(&self) -> bool {
        let session = {
            let mut st = self.lock();
            let victim = st
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.refs == 0 && matches!(e.state, EntryState::Ready(_)))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            let Some(i) = victim else {
                return false;
            };
            st.stats.evictions = st.stats.evictions.saturating_add(1);
            st.entries.swap_remove(i)
        };
        if let EntryState::Ready(s) = session.state {
            let _ = s.close_with(ClosedReason::ResourceEvicted);
            let reason = s.closed().unwrap_or(ClosedReason::ResourceEvicted);
            self.lock().closed.push((s.session_id(), reason));
        }
        true
    }

    /// Runs `attempt`, evicting and retrying while the CDM is out of sessions.
    fn with_eviction<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, AcquireError>,
    ) -> Result<T, AcquireError> {
        loop {
            match attempt() {
                Err(AcquireError::Eme(EmeError::QuotaExceededError(m))) => {
                    if !self.evict_one() {
                        return Err(AcquireError::Eme(EmeError::QuotaExceededError(m)));
                    }
                }
                other => return other,
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut ManagerStats)) {
        f(&mut self.lock().stats);
    }

    /// A session holding keys for `key`: loaded from a stored record, or requested.
    fn establish(
        &self,
        key: &InitKey,
        kids: &[KeyId],
        session_type: SessionType,
    ) -> Result<MediaKeySession, AcquireError> {
        let records = self
            .records
            .as_ref()
            .filter(|_| self.config.persistent_online)
            .filter(|_| session_type == SessionType::PersistentLicense);
        if let Some(records) = records {
            if let Some(id) = records.get(key) {
                let loaded = self.with_eviction(|| {
                    let s = self.mk.create_session(session_type)?;
                    let found = s.load(&id)?;
                    Ok((s, found))
                });
                match loaded {
                    Ok((s, true)) if all_usable(&s.key_statuses(), kids) => {
                        s.drain_events();
                        self.count(|c| c.loads = c.loads.saturating_add(1));
                        return Ok(s);
                    }
                    Ok((s, found)) => {
                        if found {
                            let _ = s.close();
                        }
                    }
                    // A record the CDM cannot load (e.g. storage refused) is dropped too.
                    Err(AcquireError::Eme(_)) => {}
                    Err(e) => return Err(e),
                }
                records.remove(key);
                self.count(|c| c.stale_records = c.stale_records.saturating_add(1));
            }
        }
        let s = self.with_eviction(|| {
            let s = self.mk.create_session(session_type)?;
            s.generate_request(&key.init_data_type, &key.init_data)?;
            Ok(s)
        })?;
        let mut first = first_message(&s)?;
        if first.0 == MessageType::IndividualizationRequest {
            // A protected-system device not provisioned yet: provisioning comes first, then
            // the session queues its license request.
            let answer = self
                .fetcher
                .fetch(MessageType::IndividualizationRequest, &first.1)
                .map_err(AcquireError::from)
                .and_then(|a| s.update(&a).map_err(AcquireError::from));
            if let Err(e) = answer {
                let _ = s.close();
                return Err(e);
            }
            first = first_message(&s)?;
        }
        let request = match first {
            (MessageType::LicenseRequest, message) => message,
            _ => return Err(AcquireError::NoMessage),
        };
        self.count(|c| c.license_requests = c.license_requests.saturating_add(1));
        let license = self.fetcher.fetch(MessageType::LicenseRequest, &request);
        let outcome = license
            .map_err(AcquireError::from)
            .and_then(|l| s.update(&l).map_err(AcquireError::from));
        if let Err(e) = outcome {
            let _ = s.close();
            return Err(e);
        }
        s.drain_events();
        if let Some(records) = records {
            records.put(key, &s.session_id());
        }
        Ok(s)
    }
}

/// The first message a session queued (its type and body).
fn first_message(s: &MediaKeySession) -> Result<(MessageType, Vec<u8>), AcquireError> {
    s.drain_events()
        .into_iter()
        .find_map(|e| match e {
            MediaKeySessionEvent::Message {
                message_type,
                message,
            } => Some((message_type, message)),
            _ => None,
        })
        .ok_or(AcquireError::NoMessage)
}

fn all_usable(statuses: &MediaKeyStatusMap, kids: &[KeyId]) -> bool {
    !kids.is_empty()
        && kids
            .iter()
            .all(|k| statuses.get(k.as_bytes()) == Some(KeyStatus::Usable))
}

/// The session manager. See the module docs for its rules.
pub struct SessionManager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A reference to a managed session: the keys stay loaded while any handle lives. Dropping
/// the last one starts the keep-alive time.
pub struct SessionHandle {
    shared: Arc<Shared>,
    id: u64,
    session_id: String,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// The EME session id of the shared session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The session's key statuses (empty once the session closed).
    pub fn key_statuses(&self) -> MediaKeyStatusMap {
        let st = self.shared.lock();
        st.entries
            .iter()
            .find(|e| e.id == self.id)
            .and_then(|e| match &e.state {
                EntryState::Ready(s) => Some(s.key_statuses()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        let now = self.shared.clock.now();
        let closing = {
            let mut st = self.shared.lock();
            let Some(i) = st.entries.iter().position(|e| e.id == self.id) else {
                return;
            };
            let keep = self.shared.config.keep_alive;
            let Some(e) = st.entries.get_mut(i) else {
                return;
            };
            e.refs = e.refs.saturating_sub(1);
            e.last_used = now;
            if e.refs > 0 {
                return;
            }
            if keep.is_zero() {
                Some(st.entries.swap_remove(i))
            } else {
                e.idle_since = Some(now);
                None
            }
        };
        if let Some(Entry {
            state: EntryState::Ready(s),
            ..
        }) = closing
        {
            let _ = s.close();
            self.shared
                .lock()
                .closed
                .push((s.session_id(), ClosedReason::ClosedByApplication));
        }
    }
}

impl SessionManager {
    /// A manager over `media_keys`, fetching licenses with `fetcher`, on `clock`.
    pub fn new(
        media_keys: MediaKeys,
        fetcher: Arc<dyn LicenseFetcher>,
        clock: Arc<dyn Clock>,
        config: ManagerConfig,
    ) -> Self {
        Self::with_records(media_keys, fetcher, clock, config, None)
    }

    /// [`SessionManager::new`] with a store of persistent sessions (used when
    /// [`ManagerConfig::persistent_online`] is set).
    pub fn with_records(
        media_keys: MediaKeys,
        fetcher: Arc<dyn LicenseFetcher>,
        clock: Arc<dyn Clock>,
        config: ManagerConfig,
        records: Option<Arc<dyn SessionRecords>>,
    ) -> Self {
        SessionManager {
            shared: Arc::new(Shared {
                mk: media_keys,
                fetcher,
                clock,
                records,
                config,
                state: Mutex::new(State {
                    entries: Vec::new(),
                    closed: Vec::new(),
                    next_id: 1,
                    stats: ManagerStats::default(),
                    shut_down: false,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// The `MediaKeys` (decrypt through it: it finds a key in whichever session holds it).
    pub fn media_keys(&self) -> &MediaKeys {
        &self.shared.mk
    }

    /// What the manager did so far.
    pub fn stats(&self) -> ManagerStats {
        self.shared.lock().stats
    }

    /// Sessions open now (held or kept alive).
    pub fn open_sessions(&self) -> usize {
        self.shared
            .lock()
            .entries
            .iter()
            .filter(|e| matches!(e.state, EntryState::Ready(_)))
            .count()
    }

    /// The sessions the manager closed since the last call (session id, closed reason:
    /// `closed-by-application` for an expired keep-alive or a close-reopen release,
    /// `resource-evicted` for an eviction), oldest first.
    pub fn take_closed(&self) -> Vec<(String, ClosedReason)> {
        std::mem::take(&mut self.shared.lock().closed)
    }

    /// Closes kept-alive sessions whose time ran out (acquire does this too).
    pub fn tick(&self) {
        let mut st = self.shared.lock();
        self.shared.expire(&mut st);
    }

    /// A handle on a session holding the keys for `init_data` (see the module docs for how
    /// one is found or made).
    ///
    /// Errors: init data the CDM refuses (`TypeError`, `NotSupportedError`), the fetcher's
    /// error, `QuotaExceededError` when no session can be evicted, and whatever the shared
    /// in-flight request failed with.
    pub fn acquire(
        &self,
        init_data_type: &str,
        init_data: &[u8],
        session_type: SessionType,
    ) -> Result<SessionHandle, AcquireError> {
        let key = InitKey {
            init_data_type: init_data_type.to_string(),
            init_data: init_data.to_vec(),
        };
        // Key IDs for reuse by key (unparsable init data is left to generateRequest to refuse
        // with the EME error).
        let kids = InitDataType::from_str(init_data_type)
            .ok()
            .and_then(|t| parse_init_data(t, init_data).ok())
            .unwrap_or_default();
        let shared = &self.shared;
        let mut st = shared.lock();
        let mut waited = false;
        loop {
            if st.shut_down {
                return Err(AcquireError::ShutDown);
            }
            shared.expire(&mut st);
            let now = shared.clock.now();
            let same = st
                .entries
                .iter()
                .position(|e| e.key == key && e.session_type == session_type);
            if let Some(i) = same {
                let State { entries, stats, .. } = &mut *st;
                let Some(e) = entries.get_mut(i) else {
                    continue;
                };
                match &mut e.state {
                    EntryState::Ready(s) if s.closed().is_none() => {
                        e.refs = e.refs.saturating_add(1);
                        e.idle_since = None;
                        e.last_used = now;
                        if !waited {
                            stats.reuses = stats.reuses.saturating_add(1);
                        }
                        return Ok(self.handle(e.id, s.session_id()));
                    }
                    // Closed under us (secure world lost): forget it, make a new one.
                    EntryState::Ready(_) => {
                        entries.swap_remove(i);
                        continue;
                    }
                    EntryState::Pending { waiters } => {
                        *waiters = waiters.saturating_add(1);
                        let pending = e.id;
                        if !waited {
                            stats.shared_in_flight = stats.shared_in_flight.saturating_add(1);
                        }
                        waited = true;
                        // Wait until the exchange in flight has an outcome.
                        loop {
                            st = shared.wait(st);
                            let still = st.entries.iter().any(|e| {
                                e.id == pending && matches!(e.state, EntryState::Pending { .. })
                            });
                            if !still {
                                break;
                            }
                        }
                        let failed = st.entries.iter().position(|e| {
                            e.id == pending && matches!(e.state, EntryState::Failed { .. })
                        });
                        if let Some(i) = failed {
                            let mut error = AcquireError::NoMessage;
                            let mut last = false;
                            if let Some(Entry {
                                state: EntryState::Failed { waiters, error: e },
                                ..
                            }) = st.entries.get_mut(i)
                            {
                                *waiters = waiters.saturating_sub(1);
                                last = *waiters == 0;
                                error = e.clone();
                            }
                            if last {
                                st.entries.swap_remove(i);
                            }
                            shared.changed.notify_all();
                            return Err(error);
                        }
                        // Ready (taken on the next turn, not counted as a reuse) or gone.
                        continue;
                    }
                    EntryState::Failed { .. } => {
                        // Another request's failure, still being collected: wait for it.
                        st = shared.wait(st);
                        continue;
                    }
                }
            }
            if shared.config.reuse_by_key && !kids.is_empty() {
                let State { entries, stats, .. } = &mut *st;
                let by_key = entries.iter_mut().find(|e| {
                    e.session_type == session_type
                        && matches!(&e.state, EntryState::Ready(s)
                            if s.closed().is_none() && all_usable(&s.key_statuses(), &kids))
                });
                if let Some(e) = by_key {
                    if let EntryState::Ready(s) = &e.state {
                        e.refs = e.refs.saturating_add(1);
                        e.idle_since = None;
                        e.last_used = now;
                        stats.reuses = stats.reuses.saturating_add(1);
                        let id = s.session_id();
                        return Ok(self.handle(e.id, id));
                    }
                }
            }
            break;
        }
        // A new exchange, announced as pending so that concurrent acquires wait for it.
        let id = st.next_id;
        st.next_id = st.next_id.saturating_add(1);
        let now = shared.clock.now();
        st.entries.push(Entry {
            id,
            key: key.clone(),
            session_type,
            state: EntryState::Pending { waiters: 0 },
            refs: 1,
            idle_since: None,
            last_used: now,
        });
        drop(st);
        let outcome = shared.establish(&key, &kids, session_type);
        let mut st = shared.lock();
        let i = st.entries.iter().position(|e| e.id == id);
        let result = match (outcome, i) {
            (Ok(session), Some(i)) => {
                let sid = session.session_id();
                if let Some(e) = st.entries.get_mut(i) {
                    e.state = EntryState::Ready(session);
                }
                Ok(self.handle(id, sid))
            }
            (Err(error), Some(i)) => {
                let waiters = match st.entries.get(i).map(|e| &e.state) {
                    Some(EntryState::Pending { waiters }) => *waiters,
                    _ => 0,
                };
                if waiters == 0 {
                    st.entries.swap_remove(i);
                } else if let Some(e) = st.entries.get_mut(i) {
                    e.state = EntryState::Failed {
                        waiters,
                        error: error.clone(),
                    };
                }
                Err(error)
            }
            // The manager shut down meanwhile: the session (if any) closes on drop.
            (_, None) => Err(AcquireError::ShutDown),
        };
        drop(st);
        shared.changed.notify_all();
        result
    }

    fn handle(&self, id: u64, session_id: String) -> SessionHandle {
        SessionHandle {
            shared: Arc::clone(&self.shared),
            id,
            session_id,
        }
    }
}

impl Drop for SessionManager {
    /// Closes every session the manager opened (handles still alive see them closed).
    fn drop(&mut self) {
        let entries = {
            let mut st = self.shared.lock();
            st.shut_down = true;
            std::mem::take(&mut st.entries)
        };
        for e in entries {
            if let EntryState::Ready(s) = e.state {
                let _ = s.close();
            }
        }
        self.shared.changed.notify_all();
    }
}
