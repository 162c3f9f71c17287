//! The tee-cdm main job: a whole Clear Key playback flow through a secure world running in its
//! own process.
//!
//! ```sh
//! cargo run --release -p normal-world --example playback
//! ```
//!
//! 1. Generates content: a video track (`cbcs`, 1:9 pattern, NAL-like subsample maps) and an
//!    audio track (`cenc`, whole-sample), each under its own random key, encrypted with the
//!    test kit's reference encryptor (RustCrypto, independent of the CDM's own AES code).
//! 2. Negotiates an `org.w3.clearkey` configuration (EME §3.1.1).
//! 3. Starts the secure world as a separate process (this executable re-launched with
//!    `--socket`), talking the message ABI over a Unix socket.
//! 4. Runs EME: `generateRequest("cenc", pssh)` → license-request message → a Clear Key
//!    license server (in this process) answers a JWK Set → `update` → key statuses.
//! 5. Decrypts every sample through the secure world, checks each against the original and
//!    reports throughput (and the same through the in-process transport, for comparison).
//! 6. Shows `HW_SECURE_DECODE`: samples go to secure buffers, the player's buffer stays
//!    encrypted, and the emulated secure decoder's SHA-256 matches the original.
//! 7. `remove()` and `close()`: keys released, decryption refused.
//! 8. Persistent license (offline playback): a `persistent-license` session stores its license
//!    in a storage directory (`--storage`); the secure-world process is stopped and a new one
//!    started; `load(sessionId)` restores the keys with no license request and every sample
//!    plays; `remove()` sends the record of license destruction, the server's acknowledgement
//!    deletes it, and a third process finds nothing to load.
//! 9. The protected key system, `org.teecdm.protected` (`playback/protected.rs`): the
//!    reference license server in this process with fresh key material and keys under
//!    policies (renewal, `HW_SECURE_DECODE` with HDCP 2.2, persistable); a secure world
//!    pinning its root; `setServerCertificate`, provisioning (`individualization-request`), an
//!    encrypted license request, every sample verified (the `HW_SECURE_DECODE` key's through
//!    secure buffers), `getStatusForPolicy`, renewal, and a persistent license loaded in a new
//!    secure-world process and then released. Its content keys never reach this process.
//!
//! Exits non-zero, with the reason, if any check fails.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdm_core::init_data::build_common_pssh_v1;
use cdm_core::KeyId;
use cdm_testkit::cenc::{encrypt_cbcs, encrypt_cenc};
use cdm_testkit::rng::TestRng;
use normal_world::transport::{SocketTransport, Transport};
use normal_world::{
    request_media_key_system_access, request_media_key_system_access_with, DecryptedSample,
    EmeError, EncryptionScheme, KeyStatus, KeySystemOptions, MediaKeySession, MediaKeySessionEvent,
    MediaKeySystemAccess, MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys,
    MediaKeysRequirement, MessageType, OutputWish, Robustness, SampleDescription, SessionType,
};
use ring::rand::{SecureRandom, SystemRandom};

mod common;

#[path = "playback/loopback_server.rs"]
mod loopback_server;
// Not `examples/protected.rs`, which cargo would take for an example of its own.
#[path = "playback/protected.rs"]
mod protected;

use common::{main_or_host, media_keys_in_a_process, messages, Failure};

const VIDEO_SAMPLES: usize = 240;
const AUDIO_SAMPLES: usize = 480;
const AUDIO_SAMPLE_LEN: usize = 1024;

/// One encrypted sample and what it must decrypt to.
struct Sample {
    scheme: EncryptionScheme,
    key_id: [u8; 16],
    iv: Vec<u8>,
    pattern: (u8, u8),
    subsamples: Vec<(u32, u32)>,
    encrypted: Vec<u8>,
    clear: Vec<u8>,
}

impl Sample {
    fn description(&self, output: OutputWish) -> SampleDescription<'_> {
        SampleDescription {
            key_id: &self.key_id,
            scheme: self.scheme,
            iv: &self.iv,
            pattern: self.pattern,
            subsamples: &self.subsamples,
            output,
        }
    }
}

/// A number below `n` from `rng`.
fn below(rng: &mut TestRng, n: u64) -> usize {
    usize::try_from(rng.below(n)).unwrap_or(0)
}

fn make_content(
    video_key: &[u8; 16],
    audio_key: &[u8; 16],
    video_kid: [u8; 16],
    audio_kid: [u8; 16],
) -> Vec<Sample> {
    // Sample sizes and contents are deterministic (the test kit's PRNG); keys are random.
    let mut rng = TestRng::new(0x7ee_cd0);
    let mut samples = Vec::new();
    let cbcs_iv = {
        let mut iv = [0u8; 16];
        rng.fill(&mut iv);
        iv
    };
    for i in 0..VIDEO_SAMPLES {
        // A key frame every 48 samples; NAL-like layout: a clear header per NAL, the rest
        // protected (with the 1:9 pattern, and a trailing partial block left clear).
        let len = if i % 48 == 0 {
            160_000
        } else {
            24_000 + below(&mut rng, 48_000)
        };
        let mut clear = vec![0u8; len];
        rng.fill(&mut clear);
        let mut subsamples = Vec::new();
        let mut left = len;
        while left > 0 {
            let header = (5 + below(&mut rng, 60)).min(left);
            let nal = (header + 2000 + below(&mut rng, 30_000)).min(left);
            let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            subsamples.push((as_u32(header), as_u32(nal - header)));
            left -= nal;
        }
        let mut encrypted = clear.clone();
        encrypt_cbcs(video_key, &cbcs_iv, &mut encrypted, &subsamples, (1, 9));
        samples.push(Sample {
            scheme: EncryptionScheme::Cbcs,
            key_id: video_kid,
            iv: cbcs_iv.to_vec(),
            pattern: (1, 9),
            subsamples,
            encrypted,
            clear,
        });
    }
    for i in 0..AUDIO_SAMPLES {
        let mut clear = vec![0u8; AUDIO_SAMPLE_LEN + (i % 7) * 3];
        rng.fill(&mut clear);
        let mut iv = [0u8; 8];
        rng.fill(&mut iv);
        let mut encrypted = clear.clone();
        encrypt_cenc(audio_key, &iv, &mut encrypted, &[]);
        samples.push(Sample {
            scheme: EncryptionScheme::Cenc,
            key_id: audio_kid,
            iv: iv.to_vec(),
            pattern: (0, 0),
            subsamples: Vec::new(),
            encrypted,
            clear,
        });
    }
    samples
}

/// The Clear Key license server: answers a license request with a JWK Set for the requested
/// key IDs it knows (EME §9.1.3, §9.1.4; the test kit's reference server).
fn license_server(request: &[u8], keys: &[([u8; 16], [u8; 16])]) -> Result<Vec<u8>, Failure> {
    LICENSE_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let known: Vec<(&[u8], &[u8; 16])> = keys.iter().map(|(kid, key)| (&kid[..], key)).collect();
    cdm_testkit::clearkey::answer(request, &known).map_err(|e| format!("license server: {e}"))
}

/// License requests the server has answered.
static LICENSE_REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// The license with every key value masked, for printing.
fn redacted(license: &[u8]) -> String {
    let text = String::from_utf8_lossy(license).into_owned();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\"k\":\"") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<key: 16 bytes>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn check(cond: bool, what: &str) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn license_exchange(
    session: &MediaKeySession,
    pssh: &[u8],
    keys: &[([u8; 16], [u8; 16])],
    verbose: bool,
) -> Result<(), Failure> {
    session
        .generate_request("cenc", pssh)
        .map_err(|e| format!("generateRequest: {e}"))?;
    let request = one_message(session, MessageType::LicenseRequest)?;
    let license = license_server(&request, keys)?;
    if verbose {
        println!("  session id       {}", session.session_id());
        println!(
            "  → message        license-request {}",
            String::from_utf8_lossy(&request)
        );
        println!("  ← update         {}", redacted(&license));
    }
    session
        .update(&license)
        .map_err(|e| format!("update: {e}"))?;
    check(
        session
            .drain_events()
            .iter()
            .any(|e| matches!(e, MediaKeySessionEvent::KeyStatusesChange)),
        "keystatuseschange after update",
    )?;
    for (kid, _) in keys {
        check(
            session.key_statuses().get(kid) == Some(KeyStatus::Usable),
            "every key usable",
        )?;
    }
    if verbose {
        let statuses: Vec<String> = session
            .key_statuses()
            .iter()
            .map(|(k, s)| format!("{}={}", hex::encode(k), s.as_str()))
            .collect();
        println!("  keystatuses      {}", statuses.join(", "));
    }
    Ok(())
}

/// Decrypts every sample in place through `mk` and checks it; answers (bytes, time).
fn play(mk: &MediaKeys, samples: &[Sample], rounds: usize) -> Result<(u64, Duration), Failure> {
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    let mut spent = Duration::ZERO;
    for _ in 0..rounds {
        for (i, s) in samples.iter().enumerate() {
            buf.clear();
            buf.extend_from_slice(&s.encrypted);
            let t = Instant::now();
            let out = mk
                .decrypt(&mut buf, &s.description(OutputWish::Auto))
                .map_err(|e| format!("decrypt sample {i}: {e}"))?;
            spent += t.elapsed();
            check(
                out == DecryptedSample::InPlace,
                "SW_SECURE_CRYPTO decrypts in place",
            )?;
            if buf != s.clear {
                return Err(format!("sample {i} ({}) decrypted wrong", s.scheme));
            }
            bytes += buf.len() as u64;
        }
    }
    Ok((bytes, spent))
}

/// Plays `samples` (a `HW_SECURE_DECODE` key) through secure buffers; every digest checked.
fn play_secure(mk: &MediaKeys, samples: &[Sample]) -> Result<(), Failure> {
    for (i, s) in samples.iter().enumerate() {
        let mut buf = s.encrypted.clone();
        let out = mk
            .decrypt(&mut buf, &s.description(OutputWish::SecureBuffer))
            .map_err(|e| format!("HW decrypt {i}: {e}"))?;
        let DecryptedSample::SecureBuffer(handle) = out else {
            return Err("HW decrypt did not answer a secure buffer".into());
        };
        check(buf == s.encrypted, "the player's buffer stays encrypted")?;
        let r = mk
            .render_secure_buffer(handle)
            .map_err(|e| format!("render: {e}"))?;
        let expected = ring::digest::digest(&ring::digest::SHA256, &s.clear);
        check(
            usize::try_from(r.len).ok() == Some(s.clear.len())
                && r.digest.as_slice() == expected.as_ref(),
            "secure decoder digest equals SHA-256 of the original",
        )?;
    }
    Ok(())
}

/// Checks that clear output of `s`, under a `HW_SECURE_DECODE` key, is refused
/// (`InvalidAccessError`) and leaves the player's buffer as it was.
fn check_clear_output_refused(mk: &MediaKeys, s: &Sample) -> Result<(), Failure> {
    let mut buf = s.encrypted.clone();
    match mk.decrypt(&mut buf, &s.description(OutputWish::InPlace)) {
        Err(EmeError::InvalidAccessError(_)) => check(
            buf == s.encrypted,
            "refused decrypt leaves the buffer unchanged",
        ),
        other => Err(format!(
            "clear output under HW_SECURE_DECODE was not refused: {other:?}"
        )),
    }
}

/// The one message queued on `session`, which must be of type `expected`.
fn one_message(session: &MediaKeySession, expected: MessageType) -> Result<Vec<u8>, Failure> {
    match messages(session).as_slice() {
        [(ty, m)] if *ty == expected => Ok(m.clone()),
        other => Err(format!(
            "expected one {expected} message, got {:?}",
            other.iter().map(|(t, m)| (t, m.len())).collect::<Vec<_>>()
        )),
    }
}

fn rate(bytes: u64, t: Duration) -> String {
    let secs = t.as_secs_f64().max(1e-9);
    format!(
        "{:8.1} MB/s ({} bytes in {:.1} ms)",
        bytes as f64 / secs / 1e6,
        bytes,
        secs * 1e3
    )
}

fn run() -> Result<(), Failure> {
    let rng = SystemRandom::new();
    let mut material = [0u8; 64];
    rng.fill(&mut material)
        .map_err(|_| "no system randomness")?;
    let take =
        |i: usize| -> [u8; 16] { material[i * 16..i * 16 + 16].try_into().unwrap_or([0; 16]) };
    let (video_kid, video_key, audio_kid, audio_key) = (take(0), take(1), take(2), take(3));
    let keys = [(video_kid, video_key), (audio_kid, audio_key)];

    println!(
        "tee-cdm playback: Clear Key, then the protected key system, through an out-of-process secure world\n"
    );
    let samples = make_content(&video_key, &audio_key, video_kid, audio_kid);
    let total: usize = samples.iter().map(|s| s.clear.len()).sum();
    println!(
        "content          {VIDEO_SAMPLES} video samples (cbcs 1:9, subsample maps) + {AUDIO_SAMPLES} audio samples (cenc), {total} bytes"
    );
    println!(
        "key IDs          video {}  audio {}",
        hex::encode(video_kid),
        hex::encode(audio_kid)
    );

    // EME §3.1.1: what the player asks for.
    let config = MediaKeySystemConfiguration {
        label: "playback".into(),
        init_data_types: vec!["cenc".into(), "keyids".into()],
        video_capabilities: vec![
            MediaKeySystemMediaCapability::new("video/mp4; codecs=\"hvc1.1.6.L93.B0\"")
                .with_scheme("cbcs"),
            MediaKeySystemMediaCapability::new("video/mp4; codecs=\"avc1.64001f\"")
                .with_scheme("cbcs"),
        ],
        audio_capabilities: vec![MediaKeySystemMediaCapability::new(
            "audio/mp4; codecs=\"mp4a.40.2\"",
        )
        .with_scheme("cenc")],
        session_types: Some(vec!["temporary".into()]),
        ..Default::default()
    };
    let persistent_base = config.clone();
    let access = request_media_key_system_access("org.w3.clearkey", &[config])
        .map_err(|e| format!("requestMediaKeySystemAccess: {e}"))?;
    let chosen = access.get_configuration();
    println!("\nnegotiated       key system {}", access.key_system());
    println!("  initDataTypes  {:?}", chosen.init_data_types);
    for c in chosen
        .video_capabilities
        .iter()
        .chain(chosen.audio_capabilities.iter())
    {
        println!(
            "  capability     {} scheme={} robustness={:?}",
            c.content_type,
            c.encryption_scheme.as_deref().unwrap_or("null"),
            c.robustness
        );
    }
    println!(
        "  sessionTypes   {:?}",
        chosen.session_types.clone().unwrap_or_default()
    );

    // The secure world in its own process: this executable, re-launched as the host.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // Requests, responses and samples go through a sealed memfd both processes map; the
    // socket only hands it over and tells each side when the other has gone.
    let (mk, host) = media_keys_in_a_process(&access, Command::new(&exe))?;
    let caps = mk.capabilities();
    println!(
        "\nsecure world     pid {} over shared memory (handed over a Unix socket); ABI v{}; AES engine {}",
        host.id(),
        caps.abi_version,
        caps.engine
    );
    let levels: Vec<&str> = caps.robustness.iter().map(|r| r.as_str()).collect();
    println!("  robustness     {levels:?} (Clear Key sessions run at SW_SECURE_CRYPTO)");
    println!(
        "  limits         {} sessions, {} keys/session, samples ≤ {} bytes, ≤ {} subsamples",
        caps.max_sessions, caps.max_keys_per_session, caps.max_sample_len, caps.max_subsamples
    );

    let kids = [KeyId::from(video_kid), KeyId::from(audio_kid)];
    let pssh = build_common_pssh_v1(&kids).map_err(|e| format!("pssh: {e}"))?;
    println!(
        "\nlicense exchange (temporary session, cenc init data: {} byte pssh)",
        pssh.len()
    );
    let session = mk
        .create_session(SessionType::Temporary)
        .map_err(|e| format!("createSession: {e}"))?;
    license_exchange(&session, &pssh, &keys, true)?;

    println!("\ndecrypt (SW_SECURE_CRYPTO, every sample checked against the original)");
    let (bytes, t) = play(&mk, &samples, 2)?;
    println!("  out-of-process {}", rate(bytes, t));
    // The same content through the in-process transport, for comparison.
    let local = access
        .create_media_keys()
        .map_err(|e| format!("createMediaKeys: {e}"))?;
    let local_session = local
        .create_session(SessionType::Temporary)
        .map_err(|e| e.to_string())?;
    license_exchange(&local_session, &pssh, &keys, false)?;
    let (bytes, t) = play(&local, &samples, 2)?;
    println!("  in-process     {}", rate(bytes, t));

    // From here on only the HW_SECURE_DECODE session below holds the keys.
    drop(local_session);
    session.close().map_err(|e| format!("close: {e}"))?;
    check(session.closed().is_some(), "SW session closed")?;

    println!("\nHW_SECURE_DECODE (non-EME extension: session opened at that robustness)");
    let hw = mk
        .create_session_with_robustness(SessionType::Temporary, Robustness::HwSecureDecode)
        .map_err(|e| format!("create HW session: {e}"))?;
    license_exchange(&hw, &pssh, &keys, false)?;
    // The HW session holds the keys too; ask for its secure path explicitly.
    let rendered = &samples[..24];
    play_secure(&mk, rendered)?;
    println!(
        "  {} samples rendered by the emulated secure decoder; digests match, player buffers stayed encrypted",
        rendered.len()
    );
    // A clear-output request with a HW-only key is refused.
    let s0 = &samples[0];
    check_clear_output_refused(&mk, s0)?;
    println!("  clear output with a HW_SECURE_DECODE key: refused (InvalidAccessError)");

    println!("\nremove / close");
    hw.remove().map_err(|e| format!("remove: {e}"))?;
    for (kid, _) in &keys {
        check(
            hw.key_statuses().get(kid) == Some(KeyStatus::Released),
            "keys released after remove",
        )?;
    }
    let mut buf = s0.encrypted.clone();
    match mk.decrypt(&mut buf, &s0.description(OutputWish::Auto)) {
        Err(EmeError::WaitingForKey(_)) => {
            println!("  after remove(): statuses released, decrypt refused (waiting for key)")
        }
        other => return Err(format!("decrypt after remove was not refused: {other:?}")),
    }
    hw.close().map_err(|e| format!("close: {e}"))?;
    println!("  closed: {}", hw.closed().map_or("open?", |r| r.as_str()));
    check(
        session.closed().is_some() && hw.closed().is_some(),
        "both sessions closed",
    )?;
    in_work_dir("tee-cdm-playback", |storage| {
        persistent(storage, &exe, &persistent_base, &pssh, &keys, &samples)
    })?;
    drop(samples);
    in_work_dir("tee-cdm-protected", |dir| protected::run(&exe, dir))?;
    println!("\nOK: every sample verified");
    Ok(())
}

/// Starts a secure-world process keeping licenses in `storage`, creates a `MediaKeys` on it
/// and a `persistent-license` session; answers them with the process id.
fn start_host(
    exe: &Path,
    storage: &Path,
    access: &MediaKeySystemAccess,
) -> Result<(MediaKeys, MediaKeySession, u32), Failure> {
    let mut cmd = Command::new(exe);
    cmd.arg("--storage").arg(storage);
    let transport =
        SocketTransport::spawn_command(cmd).map_err(|e| format!("spawn secure world: {e}"))?;
    let pid = transport.host().map_or(0, |h| h.id());
    let mk = access
        .create_media_keys_with_transport(Box::new(transport) as Box<dyn Transport>)
        .map_err(|e| format!("createMediaKeys: {e}"))?;
    let session = persistent_session(&mk)?;
    Ok((mk, session, pid))
}

/// A new `persistent-license` session of `mk`.
fn persistent_session(mk: &MediaKeys) -> Result<MediaKeySession, Failure> {
    mk.create_session(SessionType::PersistentLicense)
        .map_err(|e| format!("createSession: {e}"))
}

/// Runs `f` in a new work directory `NAME-PID` in the temporary directory, removed afterwards
/// whatever happened.
fn in_work_dir(name: &str, f: impl FnOnce(&Path) -> Result<(), Failure>) -> Result<(), Failure> {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Private, as the secure-world host would have made it (it keeps sealed licenses).
    let result = std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .and_then(|()| f(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Step 8: store, restart, load, release (see the module docs), with licenses in `storage`.
fn persistent(
    storage: &Path,
    exe: &Path,
    config: &MediaKeySystemConfiguration,
    pssh: &[u8],
    keys: &[([u8; 16], [u8; 16])],
    samples: &[Sample],
) -> Result<(), Failure> {
    println!(
        "\npersistent license (offline playback), storage {}",
        storage.display()
    );
    let config = MediaKeySystemConfiguration {
        persistent_state: MediaKeysRequirement::Required,
        session_types: Some(vec!["persistent-license".into()]),
        ..config.clone()
    };
    let options = KeySystemOptions {
        storage_dir: Some(storage.to_path_buf()),
        ..KeySystemOptions::default()
    };
    let access = request_media_key_system_access_with("org.w3.clearkey", &[config], &options)
        .map_err(|e| format!("requestMediaKeySystemAccess: {e}"))?;
    let chosen = access.get_configuration();
    println!(
        "  negotiated     persistentState={} sessionTypes={:?}",
        chosen.persistent_state.as_str(),
        chosen.session_types.clone().unwrap_or_default()
    );

    // 1. Online: a license request, stored as the update is answered.
    let (mk, session, pid) = start_host(exe, storage, &access)?;
    let before = LICENSE_REQUESTS.load(Ordering::Relaxed);
    license_exchange(&session, pssh, keys, false)?;
    let id = session.session_id();
    let (bytes, _) = play(&mk, &samples[..24], 1)?;
    println!("  process {pid}  stored the license of session {id}; {bytes} bytes played");
    drop(session);
    drop(mk);

    // 2. Offline: a new secure-world process; the license comes from storage.
    let (mk, session, pid) = start_host(exe, storage, &access)?;
    let found = session.load(&id).map_err(|e| format!("load: {e}"))?;
    check(found, "load() finds the stored session")?;
    check(
        messages(&session).is_empty(),
        "no license request after load()",
    )?;
    let (bytes, t) = play(&mk, samples, 1)?;
    check(
        LICENSE_REQUESTS.load(Ordering::Relaxed) == before + 1,
        "one license request in all",
    )?;
    println!(
        "  process {pid}  load(\"{id}\") = true, no license request; every sample verified, {}",
        rate(bytes, t)
    );

    // 3. Release: the record of license destruction, the server's acknowledgement.
    session.remove().map_err(|e| format!("remove: {e}"))?;
    let release = one_message(&session, MessageType::LicenseRelease)?;
    println!(
        "  → message      license-release {}",
        String::from_utf8_lossy(&release)
    );
    // A Clear Key server acknowledges a release with the same key ID list (EME §9.1.6).
    let ack = cdm_core::clearkey::parse_license_release(&release)
        .map_err(|e| format!("license server: bad release: {e}"))
        .and_then(|kids| {
            cdm_core::clearkey::kids_json(kids.iter().map(|k| k.as_bytes()), None)
                .map_err(|e| format!("license server: {e}"))
        })?;
    session
        .update(&ack)
        .map_err(|e| format!("update(ack): {e}"))?;
    println!(
        "  ← update       {}  → closed: {}",
        String::from_utf8_lossy(&ack),
        session.closed().map_or("open?", |r| r.as_str())
    );
    drop(session);
    drop(mk);

    // 4. Nothing left to load.
    let (_mk, session, pid) = start_host(exe, storage, &access)?;
    let found = session.load(&id).map_err(|e| format!("load: {e}"))?;
    check(!found, "the released license is gone")?;
    println!("  process {pid}  load(\"{id}\") = false: the license was released");
    Ok(())
}

fn main() -> ExitCode {
    main_or_host(|_| run())
}
