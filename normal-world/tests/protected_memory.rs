//! "Content keys never exist in normal-world memory" (DESIGN.md, "Key systems"), checked on a
//! live player process.
//!
//! The player is `examples/protected_player.rs`, a process of its own with its secure world in
//! a third process (shared memory handed over a Unix socket). This test runs the reference
//! license server (in this process, which is not the one scanned), makes samples with the test
//! kit's reference encryptor, starts the player, waits until it has played every sample and
//! says `READY`, then reads every readable region of the player's memory through
//! `/proc/PID/maps` and `/proc/PID/mem` (a parent may read its child's memory; Yama's
//! `ptrace_scope` 1 allows that, 2 and 3 do not) and searches it for each key's 16 raw bytes
//! and its base64url text (how a Clear Key license carries it).
//!
//! - `org.teecdm.protected`: none of the content keys (a `SW_SECURE_CRYPTO` key decrypted in
//!   place, a `HW_SECURE_DECODE` key decrypted into secure buffers, a key delivered in-band in
//!   a rotation record) nor the entitlement key is found, although the player holds the whole
//!   license (it keeps every message it exchanged with the server).
//! - Controls, so that the scan can fail: the same player with Clear Key finds the base64url
//!   text of every key in the JWK Set it received (the key system carries keys in clear); the
//!   same protected flow with the secure world linked into the player (`--in-process`) finds
//!   every key's raw bytes in the player (key schedules and the entitlement key). Every run
//!   also finds a marker the player writes into its heap (text and raw bytes), computed here
//!   from its process id.
//!
//! The tests are named `socket_*`: they spawn processes, which the qemu-user runs skip.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

mod common;
// The playback example's license server (its step 9).
#[path = "../examples/playback/loopback_server.rs"]
mod loopback_server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdm_core::{ContentKey, EncryptionScheme, KeyId};
use cdm_testkit::clearkey::b64url;
use cdm_testkit::rng::TestRng;
use cdm_testkit::temp::TempDir;
use common::player_binary;
use license_server::protected::material;
use license_server::protected::{parse_protected_key_arg, rotation, unix_now};
use license_server::{SqliteStore, StoredKey};
use loopback_server::LoopbackServer;
use ring::rand::{SecureRandom, SystemRandom};

const PROTECTED: &str = "org.teecdm.protected";
const CLEARKEY: &str = "org.w3.clearkey";

/// How long the player may take to play everything and say `READY` (it takes well under a
/// second natively; this only bounds a failure).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Keys and content

/// A named 16-byte key and its key ID.
#[derive(Clone)]
struct Key {
    name: &'static str,
    kid: [u8; 16],
    key: [u8; 16],
}

fn random_keys(names: &[&'static str]) -> Vec<Key> {
    let rng = SystemRandom::new();
    names
        .iter()
        .map(|&name| {
            let mut k = Key {
                name,
                kid: [0; 16],
                key: [0; 16],
            };
            rng.fill(&mut k.kid).unwrap();
            rng.fill(&mut k.key).unwrap();
            k
        })
        .collect()
}

/// A samples file for the player (format in `examples/protected_player.rs`): `kids` to
/// license, an optional rotation record, and for each `(key, output)` three samples (`cbcs`
/// 1:9 with a subsample map, `cenc` whole, `cbcs` with two subsamples) with the SHA-256 of
/// their clear bytes.
fn samples_file(
    path: &Path,
    license_kids: &[[u8; 16]],
    rotation: Option<&[u8]>,
    played: &[(&Key, &str)],
) -> usize {
    let mut rng = TestRng::new(0x5ca7);
    let mut text = String::from("kids");
    for kid in license_kids {
        write!(text, " {}", hex::encode(kid)).unwrap();
    }
    text.push('\n');
    if let Some(record) = rotation {
        writeln!(text, "rotation {}", hex::encode(record)).unwrap();
    }
    let mut count = 0;
    for (key, output) in played {
        for (scheme, len, subsamples) in [
            (
                EncryptionScheme::Cbcs,
                20_000usize,
                vec![(37u32, 19_963u32)],
            ),
            (EncryptionScheme::Cenc, 3_001, vec![]),
            (
                EncryptionScheme::Cbcs,
                9_000,
                vec![(5, 4_000), (100, 4_895)],
            ),
        ] {
            let clear = rng.bytes(len);
            let (iv, pattern) = match scheme {
                EncryptionScheme::Cenc => (rng.bytes(8), (0, 0)),
                _ => (rng.bytes(16), (1, 9)),
            };
            let mut data = clear.clone();
            cdm_testkit::cenc::encrypt(scheme, &key.key, &iv, pattern, &subsamples, &mut data);
            let subs = if subsamples.is_empty() {
                "-".to_string()
            } else {
                subsamples
                    .iter()
                    .map(|(c, p)| format!("{c}:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let digest = ring::digest::digest(&ring::digest::SHA256, &clear);
            writeln!(
                text,
                "sample {scheme} {} {} {}:{} {subs} {output} {} {}",
                hex::encode(key.kid),
                hex::encode(&iv),
                pattern.0,
                pattern.1,
                hex::encode(digest.as_ref()),
                hex::encode(&data)
            )
            .unwrap();
            count += 1;
        }
    }
    std::fs::write(path, text).unwrap();
    count
}

// ---------------------------------------------------------------------------------------------
// The license server, in this process

struct LicenseServer {
    server: LoopbackServer,
    root: PathBuf,
}

impl LicenseServer {
    /// Fresh key material in `dir`, the keys imported, the server on 127.0.0.1 (any port).
    fn start(
        dir: &Path,
        clear: &[Key],
        protected: &[(Key, &str)],
        rotation: Option<(&Key, &Key)>,
    ) -> (LicenseServer, Option<Vec<u8>>) {
        let material_dir = dir.join("material");
        material::init(&material_dir, 30, unix_now()).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.join("keys.db")).unwrap());
        let clear: Vec<StoredKey> = clear
            .iter()
            .map(|k| StoredKey {
                kid: KeyId::from(k.kid),
                key: ContentKey::new(k.key),
                allow_persistent: false,
            })
            .collect();
        let protected: Vec<_> = protected
            .iter()
            .map(|(k, options)| {
                let arg = format!("{}:{}{options}", hex::encode(k.kid), hex::encode(k.key));
                parse_protected_key_arg(&arg, false).unwrap()
            })
            .collect();
        store.import_all(&clear, &protected).unwrap();
        let record = rotation.map(|(entitlement, content)| {
            rotation::build_record(
                &entitlement.kid,
                &protected_license::crypto::EntitlementKey::new(entitlement.key),
                &[(
                    content.kid,
                    protected_license::crypto::ContentKey::new(content.key),
                )],
            )
            .unwrap()
        });
        let metrics = Arc::new(license_server::Metrics::new());
        let server = LicenseServer {
            server: LoopbackServer::start(&material_dir, store, unix_now(), metrics).unwrap(),
            root: material_dir.join(material::ROOT_PUBLIC_KEY_FILE),
        };
        (server, record)
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }
}

// ---------------------------------------------------------------------------------------------
// The player process

/// A running player; killed (and its host checked gone) on drop.
struct Player {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    host: Option<u32>,
    engine: String,
    played: String,
    /// Where the player keeps the messages it exchanged with the server: (address, length).
    transcript: Vec<(u64, u64)>,
    tmp: PathBuf,
}

impl Player {
    /// Starts the player and waits for `READY`.
    fn start(
        server: &LicenseServer,
        key_system: &str,
        samples: &Path,
        tmp: &Path,
        in_process: bool,
    ) -> Player {
        std::fs::create_dir_all(tmp).unwrap();
        let mut cmd = Command::new(player_binary());
        cmd.arg("--server")
            .arg(server.url())
            .arg("--key-system")
            .arg(key_system)
            .arg("--samples")
            .arg(samples)
            // The host's socket directory goes here, checked empty at the end.
            .env("TMPDIR", tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if key_system == PROTECTED {
            cmd.arg("--root").arg(&server.root);
        }
        if in_process {
            cmd.arg("--in-process");
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut player = Player {
            pid: child.id(),
            child,
            stdin,
            host: None,
            engine: String::new(),
            played: String::new(),
            transcript: Vec::new(),
            tmp: tmp.to_path_buf(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let status = player.child.try_wait().ok().flatten();
                    panic!("the player did not say READY ({e:?}; exit status {status:?}; see its stderr above)");
                }
            };
            let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
            match word {
                "HOST" => player.host = rest.parse().ok(),
                "ENGINE" => player.engine = rest.to_string(),
                "PLAYED" => player.played = rest.to_string(),
                "TRANSCRIPT" => {
                    let (addr, len) = rest.split_once(' ').unwrap();
                    let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
                    player.transcript.push((addr, len.parse().unwrap()));
                }
                "READY" => {
                    assert_eq!(rest, player.pid.to_string(), "READY names the player");
                    break;
                }
                _ => {}
            }
        }
        player
    }

    /// Tells the player to close its session and exit, waits, kills it if it does not; then
    /// checks that its secure-world process and socket directory are gone.
    fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        if std::thread::panicking() {
            return;
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "the player did not exit cleanly: {status:?}"
        );
        if let Some(host) = self.host {
            // The player reaps its host when it drops the transport.
            let stat = format!("/proc/{host}/stat");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&stat).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(
                !Path::new(&stat).exists(),
                "the secure-world process {host} is still there"
            );
        }
        let left: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left in the player's TMPDIR: {left:?}");
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner

/// What to look for.
struct Needle {
    label: String,
    bytes: Vec<u8>,
}

/// One needle found.
struct Hit {
    needle: usize,
    addr: u64,
    region: String,
}

/// The name `/proc/PID/maps` gives the shared region of the shared-memory transport.
const SHARED_REGION: &str = "/memfd:tee-cdm-shared (deleted)";

/// What a scan read and found.
struct Scan {
    regions: usize,
    readable: usize,
    bytes: u64,
    /// Bytes read by region name (file-backed regions under "files").
    sizes: BTreeMap<String, u64>,
    /// Readable regions whose read failed: (name, error).
    unreadable: Vec<(String, String)>,
    hits: Vec<Hit>,
    elapsed: Duration,
}

impl Scan {
    fn count(&self, needle: usize) -> usize {
        self.hits.iter().filter(|h| h.needle == needle).count()
    }

    /// Where `needle` was found: region name → count.
    fn places(&self, needle: usize) -> BTreeMap<&str, usize> {
        let mut places = BTreeMap::new();
        for h in self.hits.iter().filter(|h| h.needle == needle) {
            *places.entry(h.region.as_str()).or_insert(0) += 1;
        }
        places
    }

    fn report(&self, title: &str, needles: &[Needle]) {
        let mib = |n: u64| n as f64 / f64::from(1 << 20);
        eprintln!(
            "{title}: {} regions in maps, {} readable, {:.1} MiB scanned in {:.0} ms; unreadable: {:?}",
            self.regions,
            self.readable,
            mib(self.bytes),
            self.elapsed.as_secs_f64() * 1e3,
            self.unreadable
        );
        let sizes: Vec<String> = self
            .sizes
            .iter()
            .map(|(name, n)| format!("{name} {:.2} MiB", mib(*n)))
            .collect();
        eprintln!("  read: {}", sizes.join(", "));
        for (i, n) in needles.iter().enumerate() {
            let first = self
                .hits
                .iter()
                .find(|h| h.needle == i)
                .map(|h| format!(" (first at {:#x})", h.addr))
                .unwrap_or_default();
            eprintln!(
                "  {:<34} {:>3} hits {:?}{first}",
                n.label,
                self.count(i),
                self.places(i)
            );
        }
    }
}

/// Yama's `kernel.yama.ptrace_scope`, if the kernel has Yama.
fn ptrace_scope() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Why the scan cannot read the player's memory, for the failure message.
fn ptrace_help() -> String {
    format!(
        "this test reads its child's memory through /proc/PID/mem, which needs ptrace access: \
         the same user and Yama's kernel.yama.ptrace_scope 0 or 1 (2 needs CAP_SYS_PTRACE, 3 \
         forbids it; `sysctl kernel.yama.ptrace_scope=1` allows it). Here ptrace_scope is {}",
        ptrace_scope().unwrap_or_else(|| "absent (no Yama)".into())
    )
}

/// Fails at once, with a clear message, if Yama forbids every attach (scope 3). With 2 the
/// scan itself fails with the same message unless the test has CAP_SYS_PTRACE.
fn check_ptrace_scope() {
    if ptrace_scope().as_deref() == Some("3") {
        panic!("{}", ptrace_help());
    }
}

/// Searches every readable region of the player's memory for `needles`. A hit inside one of
/// the player's kept messages is placed in "transcript", any other in its region's name
/// (`[heap]`, `[stack]`, `[anonymous]` for a mapping without a name, the file mapped).
fn scan(player: &Player, needles: &[Needle]) -> Scan {
    let pid = player.pid;
    const CHUNK: u64 = 4 << 20;
    let start_time = Instant::now();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("cannot open /proc/{pid}/mem ({e}): {}", ptrace_help()));
    let overlap = needles.iter().map(|n| n.bytes.len()).max().unwrap() - 1;
    // Needles by first byte.
    let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, n) in needles.iter().enumerate() {
        by_first[usize::from(n.bytes[0])].push(i);
    }
    let mut result = Scan {
        regions: 0,
        readable: 0,
        bytes: 0,
        sizes: BTreeMap::new(),
        unreadable: Vec::new(),
        hits: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut buf = Vec::new();
    for line in maps.lines() {
        result.regions += 1;
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        // The path is the rest of the line after five fields; it may hold spaces.
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start();
            rest = rest.find(' ').map_or("", |i| &rest[i..]);
        }
        let name = match rest.trim() {
            "" => "[anonymous]".to_string(),
            path => path.to_string(),
        };
        if !perms.starts_with('r') {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        result.readable += 1;
        let mut pos = start;
        while pos < end {
            let len = (end - pos).min(CHUNK + overlap as u64);
            buf.resize(usize::try_from(len).unwrap(), 0);
            if let Err(e) = mem.read_exact_at(&mut buf, pos) {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    panic!("cannot read /proc/{pid}/mem ({e}): {}", ptrace_help());
                }
                // [vvar] and the like answer EIO.
                result.unreadable.push((name.clone(), e.to_string()));
                break;
            }
            result.bytes += len.min(CHUNK);
            let group = if name.starts_with('/') && name != SHARED_REGION {
                "files".to_string()
            } else {
                name.clone()
            };
            *result.sizes.entry(group).or_insert(0) += len.min(CHUNK);
            // A match starting in the overlap is found again by the next chunk.
            let own = if pos + len < end {
                usize::try_from(CHUNK).unwrap()
            } else {
                buf.len()
            };
            for i in 0..own {
                let candidates = &by_first[usize::from(buf[i])];
                if candidates.is_empty() {
                    continue;
                }
                for &n in candidates {
                    if buf[i..].starts_with(&needles[n].bytes) {
                        let addr = pos + i as u64;
                        let in_transcript = player
                            .transcript
                            .iter()
                            .any(|&(a, l)| addr >= a && addr < a + l);
                        result.hits.push(Hit {
                            needle: n,
                            addr,
                            region: if in_transcript {
                                "transcript".into()
                            } else {
                                name.clone()
                            },
                        });
                    }
                }
            }
            pos += CHUNK;
        }
    }
    result.elapsed = start_time.elapsed();
    result
}

/// The needles of `keys` (raw bytes, base64url text) followed by the player's two markers.
fn needles(keys: &[Key], pid: u32) -> Vec<Needle> {
    let mut needles = Vec::new();
    for k in keys {
        needles.push(Needle {
            label: format!("{} key, raw", k.name),
            bytes: k.key.to_vec(),
        });
        needles.push(Needle {
            label: format!("{} key, base64url", k.name),
            bytes: b64url(&k.key).into_bytes(),
        });
    }
    // As examples/protected_player.rs computes them.
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tee-cdm memory scan marker {pid}").as_bytes(),
    );
    needles.push(Needle {
        label: "marker, text".into(),
        bytes: format!("tee-cdm-scan-marker:{}", hex::encode(digest.as_ref())).into_bytes(),
    });
    needles.push(Needle {
        label: "marker, raw".into(),
        bytes: digest.as_ref()[16..].to_vec(),
    });
    needles
}

/// The scanner works on this process: it finds both markers.
fn assert_markers_found(scan: &Scan, needles: &[Needle]) {
    let n = needles.len();
    for i in [n - 2, n - 1] {
        assert!(
            scan.count(i) > 0,
            "the scanner did not find the player's {} — the scan is broken",
            needles[i].label
        );
    }
    assert!(
        scan.places(n - 2)
            .keys()
            .any(|r| *r == "[heap]" || *r == "[anonymous]"),
        "the text marker was not found in the heap: {:?}",
        scan.places(n - 2)
    );
}

// ---------------------------------------------------------------------------------------------
// The protected fixture, shared by the protected run and the in-process control

struct ProtectedRun {
    _dir: TempDir,
    server: LicenseServer,
    samples: PathBuf,
    keys: Vec<Key>,
    tmp: PathBuf,
}

/// Keys: `sw` (`SW_SECURE_CRYPTO`, played in place), `hw` (`HW_SECURE_DECODE`, played into
/// secure buffers), `entitlement` (in the license) and `rotated` (wrapped under it in a
/// rotation record, played in place).
fn protected_run(label: &str) -> ProtectedRun {
    let dir = TempDir::new(label);
    let keys = random_keys(&["sw", "hw", "entitlement", "rotated"]);
    let (sw, hw, ent, rot) = (&keys[0], &keys[1], &keys[2], &keys[3]);
    let (server, record) = LicenseServer::start(
        dir.path(),
        &[],
        &[
            (sw.clone(), ":robustness=sw"),
            (hw.clone(), ":robustness=hw"),
            (ent.clone(), ":entitlement"),
        ],
        Some((ent, rot)),
    );
    let samples = dir.join("samples.txt");
    samples_file(
        &samples,
        &[sw.kid, hw.kid, ent.kid],
        record.as_deref(),
        &[(sw, "in-place"), (hw, "secure-buffer"), (rot, "in-place")],
    );
    let tmp = dir.join("tmp");
    ProtectedRun {
        _dir: dir,
        server,
        samples,
        keys,
        tmp,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn socket_protected_content_keys_are_not_in_the_player_memory() {
    check_ptrace_scope();
    let run = protected_run("scan-protected");
    let player = Player::start(&run.server, PROTECTED, &run.samples, &run.tmp, false);
    assert!(
        player.host.is_some(),
        "the secure world runs in its own process"
    );
    assert!(
        player
            .played
            .starts_with("9 samples (6 in place, 3 secure buffers)"),
        "{}",
        player.played
    );
    // Certificate, provisioning request and response, license request and license: the
    // player holds the license itself while it is scanned.
    assert_eq!(player.transcript.len(), 5, "messages the player kept");
    let needles = needles(&run.keys, player.pid);
    let scan = scan(&player, &needles);
    scan.report(
        &format!("protected, secure world in process {:?}", player.host),
        &needles,
    );
    assert_markers_found(&scan, &needles);
    assert!(
        scan.sizes.contains_key(SHARED_REGION),
        "the shared region was not scanned"
    );
    for (i, n) in needles[..needles.len() - 2].iter().enumerate() {
        assert_eq!(
            scan.count(i),
            0,
            "{} found in the player's memory at {:?}",
            n.label,
            scan.hits
                .iter()
                .filter(|h| h.needle == i)
                .map(|h| format!("{:#x} {}", h.addr, h.region))
                .collect::<Vec<_>>()
        );
    }
    player.finish();
}

#[test]
fn socket_clear_key_control_scan_finds_the_keys_the_player_saw() {
    check_ptrace_scope();
    let dir = TempDir::new("scan-clearkey");
    let keys = random_keys(&["clear key 1", "clear key 2"]);
    let (server, _) = LicenseServer::start(dir.path(), &keys, &[], None);
    let samples = dir.join("samples.txt");
    samples_file(
        &samples,
        &[keys[0].kid, keys[1].kid],
        None,
        &[(&keys[0], "in-place"), (&keys[1], "in-place")],
    );
    let player = Player::start(&server, CLEARKEY, &samples, &dir.join("tmp"), false);
    assert!(
        player.host.is_some(),
        "the secure world runs in its own process"
    );
    let needles = needles(&keys, player.pid);
    let scan = scan(&player, &needles);
    scan.report(
        &format!(
            "Clear Key control, secure world in process {:?}",
            player.host
        ),
        &needles,
    );
    assert_markers_found(&scan, &needles);
    // The JWK Set the player received (and keeps) carries every key as base64url text. Other
    // copies (the HTTP client's buffers, a freed copy of the body) are reported, not required;
    // raw bytes are not expected: the JWK is decoded in the secure world's process.
    for (i, k) in keys.iter().enumerate() {
        assert!(
            scan.places(2 * i + 1).contains_key("transcript"),
            "the Clear Key control did not find the base64url of {} in the license the player \
             kept — the scan cannot fail",
            k.name
        );
    }
    player.finish();
}

#[test]
fn socket_in_process_control_scan_finds_the_protected_keys() {
    check_ptrace_scope();
    let run = protected_run("scan-in-process");
    let player = Player::start(&run.server, PROTECTED, &run.samples, &run.tmp, true);
    assert!(player.host.is_none());
    let needles = needles(&run.keys, player.pid);
    let scan = scan(&player, &needles);
    scan.report(
        &format!(
            "protected control, secure world linked in (engine {})",
            player.engine
        ),
        &needles,
    );
    assert_markers_found(&scan, &needles);
    for (i, k) in run.keys.iter().enumerate() {
        // The portable engine's schedule is bitsliced: only the entitlement key (kept as
        // bytes to unwrap rotation records) is certain to be there as is.
        if player.engine == "portable" && k.name != "entitlement" {
            continue;
        }
        assert!(
            scan.count(2 * i) > 0,
            "the in-process control did not find the raw {} key — the scan cannot fail",
            k.name
        );
    }
    player.finish();
}
