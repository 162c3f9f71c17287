//! The session manager's rules, each on an in-process secure world with a virtual clock and a
//! license fetcher that counts what reaches the "server" (the test kit's Clear Key server).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::*;
use normal_world::session_manager::{
    AcquireError, FetchError, InitKey, LicenseFetcher, ManagerConfig, ManualClock,
    MemorySessionRecords, SessionManager, SessionRecords,
};
use normal_world::transport::{InProcessTransport, Transport, TransportError};
use normal_world::{ClosedReason, EmeError, MediaKeys, MessageType, OutputWish, SessionType};

const KID3: [u8; 16] = [0x33; 16];
const KEY3: [u8; 16] = [0x3c; 16];

/// The license server: knows KID1..3, counts requests; optionally waits for a go signal or
/// fails.
#[derive(Default)]
struct Server {
    requests: AtomicUsize,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
    fail: bool,
}

impl LicenseFetcher for Server {
    fn fetch(&self, message_type: MessageType, message: &[u8]) -> Result<Vec<u8>, FetchError> {
        assert_eq!(message_type, MessageType::LicenseRequest);
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(rx) = self.gate.lock().unwrap().as_ref() {
            rx.recv().unwrap();
        }
        if self.fail {
            return Err(FetchError("503 from the license server".into()));
        }
        let keys: [(&[u8], &[u8; 16]); 3] = [(&KID1, &KEY1), (&KID2, &KEY2), (&KID3, &KEY3)];
        cdm_testkit::clearkey::answer(message, &keys).map_err(FetchError)
    }
}

impl Server {
    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Counts the sessions the secure world opened and closed (opcodes 0x0100, 0x0202 / 0x0101).
struct Counting {
    inner: InProcessTransport,
    opened: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Transport for Counting {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        let opcode = u16::from_le_bytes([request[6], request[7]]);
        self.inner.call(request, sample, response)?;
        let ok = response.len() >= 32 && response[28..32] == [0; 4];
        match opcode {
            0x0100 | 0x0202
                if ok && u64::from_le_bytes(response[8..16].try_into().unwrap()) != 0 =>
            {
                self.opened.fetch_add(1, Ordering::SeqCst);
            }
            0x0101 if ok => {
                self.closed.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(())
    }
}

struct Rig {
    manager: SessionManager,
    server: Arc<Server>,
    clock: Arc<ManualClock>,
    opened: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

fn media_keys(max_sessions: usize) -> (MediaKeys, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let access =
        normal_world::request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    let inner = InProcessTransport::with_config(secure_world::Config {
        max_sessions,
        ..secure_world::Config::default()
    })
    .unwrap();
    let (opened, closed) = (Arc::default(), Arc::default());
    let t = Counting {
        inner,
        opened: Arc::clone(&opened),
        closed: Arc::clone(&closed),
    };
    (
        access
            .create_media_keys_with_transport(Box::new(t))
            .unwrap(),
        opened,
        closed,
    )
}

fn rig(config: ManagerConfig, max_sessions: usize, server: Server) -> Rig {
    let (mk, opened, closed) = media_keys(max_sessions);
    let server = Arc::new(server);
    let clock = Arc::new(ManualClock::new());
    Rig {
        manager: SessionManager::new(mk, server.clone(), clock.clone(), config),
        server,
        clock,
        opened,
        closed,
    }
}

fn decrypts(mk: &MediaKeys, kid: &[u8; 16], key: &[u8; 16]) -> Result<bool, EmeError> {
    decrypts_cenc(mk, kid, key, [1; 8], 256, OutputWish::InPlace)
}

const T: SessionType = SessionType::Temporary;
const P: SessionType = SessionType::PersistentLicense;
const MIN: Duration = Duration::from_secs(60);

#[test]
fn keep_alive_reuses_inside_the_window_and_expires_after_it() {
    let r = rig(ManagerConfig::default(), 32, Server::default());
    let a = keyids(&[&KID1]);
    let h = r.manager.acquire("keyids", &a, T).unwrap();
    assert!(decrypts(r.manager.media_keys(), &KID1, &KEY1).unwrap());
    let first = h.session_id().to_string();
    drop(h);
    // Four minutes later: the same session, no request.
    r.clock.advance(4 * MIN);
    let h = r.manager.acquire("keyids", &a, T).unwrap();
    assert_eq!(h.session_id(), first);
    assert_eq!(r.server.count(), 1);
    assert_eq!(r.manager.stats().reuses, 1);
    drop(h);
    // The window restarts at the last release: 4:59 later it is still open...
    r.clock.advance(5 * MIN - Duration::from_secs(1));
    r.manager.tick();
    assert_eq!(r.manager.open_sessions(), 1);
    assert!(decrypts(r.manager.media_keys(), &KID1, &KEY1).unwrap());
    // ...and at 5:00 it closes.
    r.clock.advance(Duration::from_secs(1));
    r.manager.tick();
    assert_eq!(r.manager.open_sessions(), 0);
    assert_eq!(r.manager.stats().expired, 1);
    assert_eq!(
        r.manager.take_closed(),
        [(first.clone(), ClosedReason::ClosedByApplication)]
    );
    assert!(matches!(
        decrypts(r.manager.media_keys(), &KID1, &KEY1),
        Err(EmeError::WaitingForKey(_))
    ));
    assert_eq!(r.closed.load(Ordering::SeqCst), 1);
    // After expiry a new request is needed.
    let h = r.manager.acquire("keyids", &a, T).unwrap();
    assert_ne!(h.session_id(), first);
    assert_eq!(r.server.count(), 2);
}

#[test]
fn a_held_session_never_expires() {
    let r = rig(ManagerConfig::default(), 32, Server::default());
    let h = r.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    let h2 = r.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    drop(h2);
    r.clock.advance(60 * MIN);
    r.manager.tick();
    assert_eq!(r.manager.open_sessions(), 1);
    assert!(decrypts(r.manager.media_keys(), &KID1, &KEY1).unwrap());
    drop(h);
}

#[test]
fn close_reopen_requests_every_time() {
    let r = rig(ManagerConfig::close_reopen(), 32, Server::default());
    let a = keyids(&[&KID1]);
    for n in 1..=3 {
        let h = r.manager.acquire("keyids", &a, T).unwrap();
        drop(h);
        assert_eq!(r.server.count(), n);
        assert_eq!(r.manager.open_sessions(), 0);
    }
    assert_eq!(r.opened.load(Ordering::SeqCst), 3);
    assert_eq!(r.closed.load(Ordering::SeqCst), 3);
}

#[test]
fn reuse_by_key_needs_every_key_usable() {
    let r = rig(ManagerConfig::default(), 32, Server::default());
    // A cenc pssh for KID1 and KID2.
    let both = pssh_v1(&[&KID1, &KID2]);
    let h = r.manager.acquire("cenc", &both, T).unwrap();
    // Other init data, but its key is usable in the open session: reused.
    let k1 = r.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    assert_eq!(k1.session_id(), h.session_id());
    assert_eq!(r.server.count(), 1);
    // KID3 is not in it: a request.
    let k13 = r
        .manager
        .acquire("keyids", &keyids(&[&KID1, &KID3]), T)
        .unwrap();
    assert_ne!(k13.session_id(), h.session_id());
    assert_eq!(r.server.count(), 2);
    // Key rotation: both key sets live, each key decrypts.
    for (kid, key) in [(&KID1, &KEY1), (&KID2, &KEY2), (&KID3, &KEY3)] {
        assert!(decrypts(r.manager.media_keys(), kid, key).unwrap());
    }
    // Without reuse by key, other init data is another request.
    let r2 = rig(
        ManagerConfig {
            reuse_by_key: false,
            ..ManagerConfig::default()
        },
        32,
        Server::default(),
    );
    let _h = r2.manager.acquire("cenc", &both, T).unwrap();
    let _k = r2.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    assert_eq!(r2.server.count(), 2);
}

#[test]
fn concurrent_acquires_share_one_request() {
    let (tx, rx) = mpsc::channel();
    let server = Server {
        gate: Mutex::new(Some(rx)),
        ..Server::default()
    };
    let r = rig(ManagerConfig::default(), 32, server);
    let a = keyids(&[&KID2]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    r.manager.acquire("keyids", &a, T).map(|h| {
                        let id = h.session_id().to_string();
                        std::mem::forget(h);
                        id
                    })
                })
            })
            .collect();
        // Let every thread reach the manager, then answer the one request.
        while r.manager.stats().shared_in_flight < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        tx.send(()).unwrap();
        threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(r.server.count(), 1);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(r.manager.stats().shared_in_flight, 3);
    assert_eq!(r.opened.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_request_fails_every_waiter_once() {
    let (tx, rx) = mpsc::channel();
    let server = Server {
        gate: Mutex::new(Some(rx)),
        fail: true,
        ..Server::default()
    };
    let r = rig(ManagerConfig::default(), 32, server);
    let a = keyids(&[&KID2]);
    let results: Vec<Result<(), AcquireError>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|_| s.spawn(|| r.manager.acquire("keyids", &a, T).map(|_| ())))
            .collect();
        while r.manager.stats().shared_in_flight < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        tx.send(()).unwrap();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(r.server.count(), 1);
    for res in &results {
        assert_eq!(
            res,
            &Err(AcquireError::Fetch(FetchError(
                "503 from the license server".into()
            )))
        );
    }
    // Nothing left behind: the failed session was closed, and a later acquire tries again.
    assert_eq!(r.manager.open_sessions(), 0);
    assert_eq!(
        r.opened.load(Ordering::SeqCst),
        r.closed.load(Ordering::SeqCst)
    );
    *r.server.gate.lock().unwrap() = None;
    assert!(r.manager.acquire("keyids", &a, T).is_err());
    assert_eq!(r.server.count(), 2);
}

#[test]
fn quota_evicts_the_least_recently_used_idle_session() {
    let r = rig(ManagerConfig::default(), 2, Server::default());
    let a = r.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    let a_id = a.session_id().to_string();
    r.clock.advance(MIN);
    let b = r.manager.acquire("keyids", &keyids(&[&KID2]), T).unwrap();
    // Both held: a third session cannot be made, the error reaches the caller.
    let c = r.manager.acquire("keyids", &keyids(&[&KID3]), T);
    assert!(
        matches!(c, Err(AcquireError::Eme(EmeError::QuotaExceededError(_)))),
        "{c:?}"
    );
    assert_eq!(r.manager.stats().evictions, 0);
    // Released (kept alive): the older one, A, is evicted for C.
    drop(a);
    r.clock.advance(MIN);
    drop(b);
    let c = r.manager.acquire("keyids", &keyids(&[&KID3]), T).unwrap();
    assert_eq!(r.manager.stats().evictions, 1);
    assert_eq!(
        r.manager.take_closed(),
        [(a_id, ClosedReason::ResourceEvicted)]
    );
    assert!(matches!(
        decrypts(r.manager.media_keys(), &KID1, &KEY1),
        Err(EmeError::WaitingForKey(_))
    ));
    assert!(decrypts(r.manager.media_keys(), &KID2, &KEY2).unwrap());
    assert!(decrypts(r.manager.media_keys(), &KID3, &KEY3).unwrap());
    drop(c);
}

#[test]
fn dropping_the_manager_closes_every_session() {
    let r = rig(ManagerConfig::default(), 32, Server::default());
    let held = r.manager.acquire("keyids", &keyids(&[&KID1]), T).unwrap();
    drop(r.manager.acquire("keyids", &keyids(&[&KID2]), T).unwrap());
    assert_eq!(r.opened.load(Ordering::SeqCst), 2);
    let (opened, closed) = (r.opened.clone(), r.closed.clone());
    drop(r.manager);
    assert_eq!(closed.load(Ordering::SeqCst), 2);
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    // A handle that outlived the manager sees its session gone.
    assert!(held.key_statuses().is_empty());
    drop(held);
    assert_eq!(closed.load(Ordering::SeqCst), 2);
}

#[test]
fn bad_init_data_is_the_cdms_error() {
    let r = rig(ManagerConfig::default(), 32, Server::default());
    assert!(matches!(
        r.manager.acquire("keyids", b"not json", T),
        Err(AcquireError::Eme(EmeError::TypeError(_)))
    ));
    assert!(matches!(
        r.manager.acquire("mp4", b"x", T),
        Err(AcquireError::Eme(EmeError::NotSupportedError(_)))
    ));
    assert_eq!(r.server.count(), 0);
    assert_eq!(r.manager.open_sessions(), 0);
}

/// A manager on a MediaKeys with persistent licenses in `dir`.
fn persistent_manager(
    dir: &std::path::Path,
    server: Arc<Server>,
    records: Arc<MemorySessionRecords>,
) -> SessionManager {
    let (mk, _host) = media_keys_with_storage(Kind::InProcess, dir);
    SessionManager::with_records(
        mk,
        server,
        Arc::new(ManualClock::new()),
        ManagerConfig {
            persistent_online: true,
            ..ManagerConfig::default()
        },
        Some(records as Arc<dyn SessionRecords>),
    )
}

#[test]
fn persistent_sessions_are_loaded_instead_of_requested() {
    let dir = cdm_testkit::temp::TempDir::new("manager-persistent");
    let server = Arc::new(Server::default());
    let records = Arc::new(MemorySessionRecords::default());
    let a = keyids(&[&KID1, &KID2]);
    let key = InitKey {
        init_data_type: "keyids".into(),
        init_data: a.clone(),
    };
    let id = {
        let m = persistent_manager(dir.path(), server.clone(), records.clone());
        let h = m.acquire("keyids", &a, P).unwrap();
        assert_eq!(records.get(&key).as_deref(), Some(h.session_id()));
        h.session_id().to_string()
        // The app goes away: manager, MediaKeys and secure world.
    };
    assert_eq!(server.count(), 1);
    // Next run: loaded from storage, no license request.
    let m = persistent_manager(dir.path(), server.clone(), records.clone());
    let h = m.acquire("keyids", &a, P).unwrap();
    assert_eq!(h.session_id(), id);
    assert_eq!(server.count(), 1);
    assert_eq!(m.stats().loads, 1);
    assert!(decrypts(m.media_keys(), &KID2, &KEY2).unwrap());
    drop(h);
    drop(m);
    // An unknown record is dropped and a new license requested (and recorded).
    records.put(&key, "00000000deadbeef");
    let m = persistent_manager(dir.path(), server.clone(), records.clone());
    let h = m.acquire("keyids", &a, P).unwrap();
    assert_eq!(server.count(), 2);
    assert_eq!(m.stats().stale_records, 1);
    assert_eq!(records.get(&key).as_deref(), Some(h.session_id()));
    assert!(decrypts(m.media_keys(), &KID1, &KEY1).unwrap());
}
