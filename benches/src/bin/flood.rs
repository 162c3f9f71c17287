//! `flood`: license-request floods, measured.
//!
//! Simulated viewers, each a real `MediaKeys` on an in-process secure world with a
//! [`SessionManager`], fetch Clear Key licenses from the real license server (the
//! `license-server` crate, started in this process on 127.0.0.1, reached over loopback HTTP).
//! Time is virtual: a [`ManualClock`] moves one simulated second per step, so an hour of
//! viewing takes seconds. Three scenarios, each in three player modes:
//!
//! - **ad breaks**: 1,000 viewers on 4 live channels, a 30 s break every 5 minutes (channels
//!   offset by a minute), key rotation every 30 minutes on channel 0, one simulated hour and
//!   again three (an evening); viewers join over the first minute. At a break the content
//!   player lets go of its session; at the end it needs the keys again.
//! - **zapping**: 200 viewers hop between the 4 channels every 10–40 s for 30 minutes.
//! - **multi-period seeking**: 100 viewers of an 8-period VOD stream (periods alternate
//!   between two keys; each period's init data is its own, as multi-DRM content with
//!   per-period `pssh` boxes has) seek to a random period every 5–20 s for 20 minutes.
//!
//! Modes: `close-reopen` (the player closes its session when it stops needing it and opens a
//! new one later: one license request per need), `keep-alive` (the session manager's
//! defaults: 5 minute keep-alive, reuse by init data and by key, single flight), and
//! `persistent` (keep-alive with `persistent-license` sessions reused for online playback;
//! in the ad-break scenario the player is torn down for the break and rebuilt after it,
//! restoring the stored license with `load` instead of a request).
//!
//! For every run the program prints the license requests the server received (checked
//! against the server's own `/metrics` counter), the peak requests in one simulated second,
//! the peak in the second a break ends, and the reduction against `close-reopen`. Run:
//! `cargo run --release -p benches --bin flood` (`--quick` for a tenth of the viewers).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdm_testkit::rng::TestRng;
use cdm_testkit::temp::TempDir;
use normal_world::session_manager::{
    FetchError, LicenseFetcher, ManagerConfig, ManualClock, MemorySessionRecords, SessionHandle,
    SessionManager, SessionRecords,
};
use normal_world::{
    request_media_key_system_access_with, KeySystemOptions, MediaKeySystemConfiguration,
    MediaKeySystemMediaCapability, MediaKeys, MediaKeysRequirement, MessageType, SessionType,
};

/// The player behaviours compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    CloseReopen,
    KeepAlive,
    Persistent,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::CloseReopen, Mode::KeepAlive, Mode::Persistent];

    fn name(self) -> &'static str {
        match self {
            Mode::CloseReopen => "close-reopen",
            Mode::KeepAlive => "keep-alive",
            Mode::Persistent => "persistent",
        }
    }

    fn session_type(self) -> SessionType {
        match self {
            Mode::Persistent => SessionType::PersistentLicense,
            _ => SessionType::Temporary,
        }
    }

    fn config(self) -> ManagerConfig {
        match self {
            Mode::CloseReopen => ManagerConfig::close_reopen(),
            Mode::KeepAlive => ManagerConfig::default(),
            Mode::Persistent => ManagerConfig {
                persistent_online: true,
                ..ManagerConfig::default()
            },
        }
    }
}

/// License requests per simulated second, as the fetcher sent them.
#[derive(Default)]
struct RequestLog {
    per_second: Mutex<BTreeMap<u64, u64>>,
}

impl RequestLog {
    fn total(&self) -> u64 {
        self.per_second
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    fn peak(&self) -> u64 {
        self.per_second
            .lock()
            .map(|m| m.values().copied().max().unwrap_or(0))
            .unwrap_or(0)
    }

    fn at(&self, second: u64) -> u64 {
        self.per_second
            .lock()
            .map(|m| m.get(&second).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Fetches licenses from the license server over HTTP and logs each request at the
/// simulated second it was sent.
struct HttpFetcher {
    agent: ureq::Agent,
    url: String,
    clock: Arc<ManualClock>,
    log: Arc<RequestLog>,
}

impl LicenseFetcher for HttpFetcher {
    fn fetch(&self, message_type: MessageType, message: &[u8]) -> Result<Vec<u8>, FetchError> {
        if message_type != MessageType::LicenseRequest {
            return Err(FetchError(format!("unexpected message {message_type}")));
        }
        let second = normal_world::session_manager::Clock::now(&*self.clock).as_secs();
        if let Ok(mut m) = self.log.per_second.lock() {
            *m.entry(second).or_default() += 1;
        }
        let mut response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(message)
            .map_err(|e| FetchError(e.to_string()))?;
        response
            .body_mut()
            .read_to_vec()
            .map_err(|e| FetchError(e.to_string()))
    }
}

/// Key IDs and keys of the simulation: key `n`.
fn kid(n: u64) -> [u8; 16] {
    let mut k = [0x4b; 16];
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

fn key(n: u64) -> [u8; 16] {
    let mut k = [0x6b; 16];
    k[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    k
}

/// `keyids` init data for key `n`, the way a packager would announce it.
fn init_data(n: u64) -> Vec<u8> {
    format!(
        "{{\"kids\":[\"{}\"]}}",
        cdm_testkit::clearkey::b64url(&kid(n))
    )
    .into_bytes()
}

/// Everything a run shares.
struct World {
    server_url: String,
    clock: Arc<ManualClock>,
    log: Arc<RequestLog>,
    mode: Mode,
    /// Holds every persistent viewer's storage directory.
    storage_root: TempDir,
    /// Seconds at which a channel's key rotated.
    rotations: Mutex<Vec<u64>>,
}

/// One viewer's player: its MediaKeys and session manager (rebuilt when torn down).
struct Player {
    manager: Option<SessionManager>,
    records: Arc<MemorySessionRecords>,
    storage: std::path::PathBuf,
    held: Vec<SessionHandle>,
}

impl World {
    fn media_keys(&self, storage: &std::path::Path) -> Result<MediaKeys, String> {
        let persistent = self.mode == Mode::Persistent;
        let config = MediaKeySystemConfiguration {
            init_data_types: vec!["keyids".into()],
            video_capabilities: vec![MediaKeySystemMediaCapability::new(
                "video/mp4; codecs=\"avc1.64001f\"",
            )],
            persistent_state: if persistent {
                MediaKeysRequirement::Required
            } else {
                MediaKeysRequirement::Optional
            },
            session_types: Some(vec![self.mode.session_type().as_str().into()]),
            ..Default::default()
        };
        let options = KeySystemOptions {
            storage_dir: persistent.then(|| storage.to_path_buf()),
            ..KeySystemOptions::default()
        };
        request_media_key_system_access_with("org.w3.clearkey", &[config], &options)
            .and_then(|a| a.create_media_keys())
            .map_err(|e| e.to_string())
    }

    fn player(&self, index: usize) -> Result<Player, String> {
        let storage = self.storage_root.join(&format!("viewer-{index}"));
        let mut p = Player {
            manager: None,
            records: Arc::new(MemorySessionRecords::default()),
            storage,
            held: Vec::new(),
        };
        self.start(&mut p)?;
        Ok(p)
    }

    /// (Re)builds the player's MediaKeys and manager.
    fn start(&self, p: &mut Player) -> Result<(), String> {
        let mk = self.media_keys(&p.storage)?;
        let fetcher = Arc::new(HttpFetcher {
            agent: ureq::Agent::new_with_defaults(),
            url: self.server_url.clone(),
            clock: Arc::clone(&self.clock),
            log: Arc::clone(&self.log),
        });
        p.manager = Some(SessionManager::with_records(
            mk,
            fetcher,
            self.clock.clone(),
            self.mode.config(),
            Some(p.records.clone() as Arc<dyn SessionRecords>),
        ));
        Ok(())
    }

    /// The player needs the keys of key `n` (and lets go of what it held).
    fn need(&self, p: &mut Player, n: u64) -> Result<(), String> {
        if p.manager.is_none() {
            self.start(p)?;
        }
        let m = p.manager.as_ref().ok_or("no player")?;
        let h = m
            .acquire("keyids", &init_data(n), self.mode.session_type())
            .map_err(|e| format!("acquire key {n}: {e}"))?;
        p.held.clear();
        p.held.push(h);
        Ok(())
    }

    /// The player stops needing keys (an ad break starts; the persistent player is torn
    /// down for it).
    fn release(&self, p: &mut Player) {
        p.held.clear();
        if self.mode == Mode::Persistent {
            p.manager = None;
        }
    }

    fn tick(&self, players: &[Player]) {
        for p in players {
            if let Some(m) = &p.manager {
                m.tick();
            }
        }
    }
}

/// One scenario's outcome in one mode.
struct Outcome {
    requests: u64,
    /// Requests sent in the seconds a key rotated (needed in every mode).
    at_rotation: u64,
    server_requests: u64,
    peak: u64,
    peak_at_break_end: u64,
    wall: Duration,
}

const BREAK_EVERY: u64 = 300;
const BREAK_LEN: u64 = 30;
/// Channel 0 changes its key every 30 minutes, first at 22:30 (mid-programme, never at a
/// break's end, so the two causes of requests stay apart).
const ROTATE_EVERY: u64 = 1800;
const ROTATE_AT: u64 = 1350;

fn rotates(c: u64, t: u64) -> bool {
    c == 0 && t % ROTATE_EVERY == ROTATE_AT
}

/// The key channel `c` uses at second `t`.
fn channel_key(c: u64, t: u64) -> u64 {
    let epoch = if c == 0 {
        (t + ROTATE_EVERY - ROTATE_AT) / ROTATE_EVERY
    } else {
        0
    };
    c * 1000 + epoch
}

/// Seconds into channel `c`'s break cycle (breaks are offset by a minute per channel).
fn cycle(c: u64, t: u64) -> u64 {
    (t + BREAK_EVERY - (c * 60) % BREAK_EVERY) % BREAK_EVERY
}

fn in_break(c: u64, t: u64) -> bool {
    cycle(c, t) >= BREAK_EVERY - BREAK_LEN
}

/// One simulated hour of ad breaks.
fn ad_breaks(w: &World, viewers: usize) -> Result<Vec<u64>, String> {
    ad_breaks_for(w, viewers, 3600)
}

/// Three simulated hours of ad breaks: an evening of live TV, where the joins of the first
/// minute weigh less against the breaks.
fn ad_breaks_evening(w: &World, viewers: usize) -> Result<Vec<u64>, String> {
    ad_breaks_for(w, viewers, 3 * 3600)
}

fn ad_breaks_for(w: &World, viewers: usize, duration: u64) -> Result<Vec<u64>, String> {
    let mut players = Vec::new();
    let mut break_ends = Vec::new();
    for t in 0..duration {
        for (v, p) in players.iter_mut().enumerate() {
            let c = (v % 4) as u64;
            let cyc = cycle(c, t);
            if cyc == BREAK_EVERY - BREAK_LEN {
                w.release(p);
            } else if (cyc == 0 && t > 0) || (rotates(c, t) && !in_break(c, t)) {
                // A break ended, or the channel's key rotated.
                w.need(p, channel_key(c, t))?;
            }
        }
        for c in 0..4 {
            // Break ends after the first cycle (earlier ones fall in the join minute).
            if cycle(c, t) == 0 && t >= BREAK_EVERY {
                break_ends.push(t);
            }
            if rotates(c, t) {
                w.rotations.lock().map_err(|_| "lock")?.push(t);
            }
        }
        // Joins over the first minute.
        while players.len() < viewers && players.len() as u64 <= t * viewers as u64 / 60 {
            let v = players.len();
            let c = (v % 4) as u64;
            let mut p = w.player(v)?;
            if !in_break(c, t) {
                w.need(&mut p, channel_key(c, t))?;
            }
            players.push(p);
        }
        w.tick(&players);
        w.clock.advance(Duration::from_secs(1));
    }
    Ok(break_ends)
}

fn zapping(w: &World, viewers: usize) -> Result<Vec<u64>, String> {
    let mut rng = TestRng::new(7);
    let mut players = Vec::new();
    let mut next_zap = Vec::new();
    let mut channel = Vec::new();
    for v in 0..viewers {
        let mut p = w.player(v)?;
        let c = rng.next_u64() % 4;
        w.need(&mut p, channel_key(c + 1, 0))?;
        players.push(p);
        channel.push(c);
        next_zap.push(10 + rng.next_u64() % 31);
    }
    for t in 0..1800 {
        for v in 0..viewers {
            if next_zap[v] == t {
                let c = (channel[v] + 1 + rng.next_u64() % 3) % 4;
                channel[v] = c;
                // Channels 1..=4: no rotation, so only zapping causes requests.
                w.need(&mut players[v], channel_key(c + 1, 0))?;
                next_zap[v] = t + 10 + rng.next_u64() % 31;
            }
        }
        w.tick(&players);
        w.clock.advance(Duration::from_secs(1));
    }
    Ok(Vec::new())
}

fn seeking(w: &World, viewers: usize) -> Result<Vec<u64>, String> {
    // 8 periods; even periods use key 9000, odd ones key 9001. Each period's init data is
    // its own: a pssh box of another DRM system whose data names the period, then the
    // common-system box with the period's key (multi-DRM content looks like this).
    let period_init = |period: u64| -> Vec<u8> {
        let mut v = other_system_pssh(period);
        v.extend(cdm_testkit::cenc::pssh_v1(&[&kid(9000 + period % 2)]));
        v
    };
    let mut rng = TestRng::new(11);
    let mut players = Vec::new();
    let mut next_seek = Vec::new();
    for v in 0..viewers {
        let mut p = w.player(v)?;
        let m = p.manager.as_ref().ok_or("no player")?;
        let h = m
            .acquire("cenc", &period_init(0), w.mode.session_type())
            .map_err(|e| e.to_string())?;
        p.held.push(h);
        players.push(p);
        next_seek.push(5 + rng.next_u64() % 16);
    }
    for t in 0..1200 {
        for v in 0..viewers {
            if next_seek[v] == t {
                let period = rng.next_u64() % 8;
                let p = &mut players[v];
                let m = p.manager.as_ref().ok_or("no player")?;
                let h = m
                    .acquire("cenc", &period_init(period), w.mode.session_type())
                    .map_err(|e| e.to_string())?;
                p.held.clear();
                p.held.push(h);
                next_seek[v] = t + 5 + rng.next_u64() % 16;
            }
        }
        w.tick(&players);
        w.clock.advance(Duration::from_secs(1));
    }
    Ok(Vec::new())
}

/// A version 0 `pssh` box of a (made-up) other DRM system carrying `period` as its data.
fn other_system_pssh(period: u64) -> Vec<u8> {
    let data = period.to_be_bytes();
    let mut b = Vec::new();
    b.extend_from_slice(&(32u32 + 8).to_be_bytes());
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[0x5e; 16]);
    b.extend_from_slice(&8u32.to_be_bytes());
    b.extend_from_slice(&data);
    b
}

type Scenario = fn(&World, usize) -> Result<Vec<u64>, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flood: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let server = server::start()?;
    let scenarios: [(&str, Scenario, usize); 4] = [
        (
            "ad breaks, 1 h (4 channels, 30 s break every 5 min, rotation on one)",
            ad_breaks,
            1000,
        ),
        (
            "ad breaks, 3 h (the same, an evening)",
            ad_breaks_evening,
            1000,
        ),
        (
            "channel zapping (4 channels, a hop every 10-40 s)",
            zapping,
            200,
        ),
        ("multi-period seeking (8 periods, 2 keys)", seeking, 100),
    ];
    println!("| scenario | viewers | mode | license requests | of which at key rotation | peak req/s | peak at break end | reduction vs close-reopen | reduction without rotation | wall time |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, scenario, viewers) in scenarios {
        let viewers = viewers / scale;
        let mut baseline = None;
        for mode in Mode::ALL {
            let out = run_one(&server, mode, scenario, viewers)?;
            if out.requests != out.server_requests {
                return Err(format!(
                    "{name} / {}: the players sent {} requests, the server counted {}",
                    mode.name(),
                    out.requests,
                    out.server_requests
                ));
            }
            let (base, base_rot) = *baseline.get_or_insert((out.requests, out.at_rotation));
            let reduction = |now: u64, then: u64| {
                if then == 0 {
                    0.0
                } else {
                    100.0 * (1.0 - now as f64 / then as f64)
                }
            };
            let all = reduction(out.requests, base);
            let without = reduction(out.requests - out.at_rotation, base - base_rot);
            println!(
                "| {name} | {viewers} | {} | {} | {} | {} | {} | {all:.1} % | {without:.1} % | {:.1} s |",
                mode.name(),
                out.requests,
                out.at_rotation,
                out.peak,
                out.peak_at_break_end,
                out.wall.as_secs_f64()
            );
        }
    }
    Ok(())
}

fn run_one(
    server: &server::Server,
    mode: Mode,
    scenario: Scenario,
    viewers: usize,
) -> Result<Outcome, String> {
    let before = server.requests()?;
    let w = World {
        server_url: server.license_url(),
        clock: Arc::new(ManualClock::new()),
        log: Arc::new(RequestLog::default()),
        mode,
        storage_root: TempDir::new("flood"),
        rotations: Mutex::new(Vec::new()),
    };
    let start = Instant::now();
    let break_ends = scenario(&w, viewers)?;
    let wall = start.elapsed();
    let peak_at_break_end = break_ends.iter().map(|&t| w.log.at(t)).max().unwrap_or(0);
    let at_rotation = w
        .rotations
        .lock()
        .map(|r| r.iter().map(|&t| w.log.at(t)).sum())
        .unwrap_or(0);
    Ok(Outcome {
        at_rotation,
        requests: w.log.total(),
        server_requests: server.requests()? - before,
        peak: w.log.peak(),
        peak_at_break_end,
        wall,
    })
}

/// The license server, in this process.
mod server {
    use super::*;

    pub(super) struct Server {
        addr: std::net::SocketAddr,
        _runtime: tokio::runtime::Runtime,
        _db: TempDir,
    }

    pub(super) fn start() -> Result<Server, String> {
        let db = TempDir::new("flood-db");
        let store =
            license_server::SqliteStore::open(&db.join("keys.db")).map_err(|e| e.to_string())?;
        // Every key the scenarios use, persistence allowed.
        let numbers = (0..4u64)
            .flat_map(|c| (0..8).map(move |e| c * 1000 + e))
            .chain(4000..4001)
            .chain(9000..9002);
        let keys: Vec<license_server::StoredKey> = numbers
            .map(|n| license_server::StoredKey {
                kid: cdm_core::KeyId::from(kid(n)),
                key: cdm_core::ContentKey::new(key(n)),
                allow_persistent: true,
            })
            .collect();
        license_server::KeyStore::import(&store, &keys).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let app = license_server::router(
            Arc::new(store),
            Arc::new(license_server::Metrics::new()),
            None,
        );
        runtime.spawn(license_server::serve(listener, app, std::future::pending()));
        Ok(Server {
            addr,
            _runtime: runtime,
            _db: db,
        })
    }

    impl Server {
        pub(super) fn license_url(&self) -> String {
            format!("http://{}/clearkey/license", self.addr)
        }

        /// The server's own count of license requests (`/metrics`).
        pub(super) fn requests(&self) -> Result<u64, String> {
            let mut r = ureq::get(&format!("http://{}/metrics", self.addr))
                .call()
                .map_err(|e| e.to_string())?;
            let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
            Ok(text
                .lines()
                .filter(|l| l.starts_with("license_requests_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum())
        }
    }
}
