//! Step 9 of the playback example: the protected key system (`org.teecdm.protected`,
//! `docs/protected-license.md`) end to end, with the reference license server in this process
//! and the secure world in its own.
//!
//! 1. Fresh key material (`license-server protected-init`'s root, provisioning and server
//!    keys) in a work directory; three keys imported with policies: `sw`
//!    (`SW_SECURE_CRYPTO`, renewal every 600 s), `hw` (`HW_SECURE_DECODE`, HDCP ≥ 2.2) and
//!    `persist` (may be stored for offline playback); the server on a loopback port.
//! 2. The secure world in its own process pinning the server's `root.pub`
//!    (`--protected-root`), with storage for the device identity and persistent licenses, and
//!    the host's test emulations of the clock and of HDCP 2.2 outputs (so that the example can
//!    move time forward instead of waiting, and has a protected output to report).
//! 3. `setServerCertificate`, then `generateRequest`: an `individualization-request`
//!    (provisioning) first, then the `license-request`, encrypted to the server's certificate;
//!    the license's keys are sealed to the device and never reach this process.
//! 4. Every `sw` sample decrypted in place and checked; `hw` samples decrypted into secure
//!    buffers and checked by the emulated secure decoder's SHA-256; clear output of a `hw`
//!    sample refused. `getStatusForPolicy` for HDCP 2.2 and 2.3.
//! 5. Renewal: the emulated clock moves 600 s on, `renew_if_due` queues a `license-renewal`,
//!    the server's renewal response keeps the keys usable.
//! 6. A `persistent-license` session for `persist`; the secure-world process is replaced;
//!    `load()` restores it with no license request and no provisioning; `remove()` sends a
//!    `license-release`, the server's acknowledgement closes it, and a third process finds
//!    nothing to load. The server's counters confirm one provisioning and two licenses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cdm_core::init_data::build_common_pssh_v1;
use cdm_core::KeyId;
use cdm_testkit::cenc::encrypt_cbcs;
use license_server::protected::material;
use license_server::protected::{parse_protected_key_arg, unix_now};
use license_server::{Metrics, SqliteStore};
use normal_world::{
    request_media_key_system_access_with, KeyStatus, KeySystemOptions, MediaKeySession,
    MediaKeySystemAccess, MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys,
    MediaKeysRequirement, MessageType, SessionType,
};
use ring::rand::{SecureRandom, SystemRandom};

use super::common::{media_keys_in_a_process, messages, Failure, LicenseClient};
use super::loopback_server::LoopbackServer;
use super::{
    check, check_clear_output_refused, make_content, one_message, persistent_session, play,
    play_secure, rate, Sample,
};

/// The renewal interval of the `sw` key, in seconds.
const RENEWAL: u64 = 600;
/// `hw` samples played through secure buffers.
const HW_SAMPLES: usize = 24;

/// A protected key: name, key ID, key, `import --protected-key` options, what they mean.
struct Key {
    name: &'static str,
    kid: [u8; 16],
    key: [u8; 16],
    options: String,
    policy: String,
}

/// The reference license server on a loopback port, with its counters and a client.
struct Server {
    http: LicenseClient,
    metrics: Arc<Metrics>,
    loopback: LoopbackServer,
}

impl Server {
    /// Writes fresh key material into `dir/material`, imports `keys` into `dir/keys.db` and
    /// starts serving (what `license-server protected-init`, `import --protected-key` and
    /// `serve --protected` do).
    fn start(dir: &Path, keys: &[Key]) -> Result<Server, Failure> {
        let now = unix_now();
        let material_dir = dir.join("material");
        material::init(&material_dir, 30, now).map_err(|e| format!("protected-init: {e}"))?;
        let db = dir.join("keys.db");
        let store = Arc::new(SqliteStore::open(&db).map_err(|e| format!("key store: {e}"))?);
        let mut imported = Vec::new();
        for k in keys {
            let arg = format!("{}:{}{}", hex::encode(k.kid), hex::encode(k.key), k.options);
            imported.push(parse_protected_key_arg(&arg, false).map_err(|e| format!("{e}"))?);
        }
        store
            .import_all(&[], &imported)
            .map_err(|e| format!("import: {e}"))?;
        let metrics = Arc::new(Metrics::new());
        let loopback = LoopbackServer::start(&material_dir, store, now, Arc::clone(&metrics))?;
        Ok(Server {
            http: LicenseClient::new(&format!("http://{}", loopback.addr)),
            loopback,
            metrics,
        })
    }

    /// `POST path` with a protocol message (or `GET path` without); the answer's body.
    fn call(&self, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, Failure> {
        let message = body.map(|b| ("application/octet-stream", b));
        self.http.call(path, message)
    }
}

/// The work directory's files the secure-world processes share.
struct Host<'a> {
    exe: &'a Path,
    dir: &'a Path,
    access: &'a MediaKeySystemAccess,
}

impl Host<'_> {
    fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }
    fn clock(&self) -> PathBuf {
        self.dir.join("clock")
    }
    fn hdcp(&self) -> PathBuf {
        self.dir.join("hdcp")
    }
    fn root(&self) -> PathBuf {
        self.dir
            .join("material")
            .join(material::ROOT_PUBLIC_KEY_FILE)
    }

    /// A new secure-world process (over shared memory) and a `MediaKeys` on it.
    fn start(&self) -> Result<(MediaKeys, u32), Failure> {
        let mut cmd = Command::new(self.exe);
        cmd.arg("--storage")
            .arg(self.storage())
            .arg("--protected-root")
            .arg(self.root())
            .arg("--emulated-clock")
            .arg(self.clock())
            .arg("--emulated-hdcp")
            .arg(self.hdcp());
        let (mk, host) = media_keys_in_a_process(self.access, cmd)?;
        Ok((mk, host.id()))
    }

    /// Sets the emulated clock (seconds since the epoch).
    fn set_clock(&self, secs: u64) -> Result<(), Failure> {
        std::fs::write(self.clock(), secs.to_string()).map_err(|e| format!("clock: {e}"))
    }
}

fn random_key(rng: &SystemRandom) -> Result<([u8; 16], [u8; 16]), Failure> {
    let mut b = [0u8; 32];
    rng.fill(&mut b).map_err(|_| "no system randomness")?;
    let (kid, key) = b.split_at(16);
    Ok((
        kid.try_into().map_err(|_| "key ID")?,
        key.try_into().map_err(|_| "key")?,
    ))
}

/// Type byte of a protocol message (`docs/protected-license.md`, "Encoding rules"), after
/// checking the magic and version.
fn protocol_type(message: &[u8]) -> Option<u8> {
    match message {
        [b'T', b'C', b'P', b'L', 1, ty, ..] => Some(*ty),
        _ => None,
    }
}

fn statuses(session: &MediaKeySession, keys: &[&Key]) -> String {
    keys.iter()
        .map(|k| {
            let s = session.key_statuses().get(&k.kid);
            format!("{}={}", k.name, s.map_or("missing", |s| s.as_str()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_usable(session: &MediaKeySession, keys: &[&Key]) -> bool {
    keys.iter()
        .all(|k| session.key_statuses().get(&k.kid) == Some(KeyStatus::Usable))
}

/// `generateRequest` and the license exchange: provisioning first when the secure world asks
/// for it (`individualization-request`), then the license request.
fn license(
    session: &MediaKeySession,
    server: &Server,
    pssh: &[u8],
    keys: &[&Key],
) -> Result<(), Failure> {
    session
        .generate_request("cenc", pssh)
        .map_err(|e| format!("generateRequest: {e}"))?;
    let mut pending = messages(session);
    if let [(MessageType::IndividualizationRequest, request)] = pending.as_slice() {
        let response = server.call("/protected/provision", Some(request))?;
        println!(
            "  → message        individualization-request ({} bytes) → /protected/provision ← device certificate chain ({} bytes)",
            request.len(),
            response.len()
        );
        session
            .update(&response)
            .map_err(|e| format!("update(provisioning response): {e}"))?;
        pending = messages(session);
    }
    let request = match pending.as_slice() {
        [(MessageType::LicenseRequest, request)] => request.clone(),
        other => {
            return Err(format!(
                "expected a license-request message, got {:?}",
                other.iter().map(|(t, _)| t).collect::<Vec<_>>()
            ))
        }
    };
    // 0x21: encrypted to the server certificate set with setServerCertificate.
    check(
        protocol_type(&request) == Some(0x21),
        "the license request is encrypted to the server",
    )?;
    let license = server.call("/protected/license", Some(&request))?;
    check(protocol_type(&license) == Some(0x22), "a license came back")?;
    println!(
        "  → message        license-request ({} bytes, encrypted to the server) → /protected/license ← license ({} bytes)",
        request.len(),
        license.len()
    );
    session
        .update(&license)
        .map_err(|e| format!("update(license): {e}"))?;
    check(all_usable(session, keys), "every licensed key usable")?;
    println!("  keystatuses      {}", statuses(session, keys));
    Ok(())
}

/// `samples` re-encrypted (`cbcs`, same IV and subsamples) under `key` with key ID `kid`.
fn reencrypt(samples: &[Sample], key: &[u8; 16], kid: [u8; 16]) -> Vec<Sample> {
    samples
        .iter()
        .map(|s| {
            let iv: [u8; 16] = s.iv.as_slice().try_into().unwrap_or([0; 16]);
            let mut encrypted = s.clear.clone();
            encrypt_cbcs(key, &iv, &mut encrypted, &s.subsamples, s.pattern);
            Sample {
                scheme: s.scheme,
                key_id: kid,
                iv: s.iv.clone(),
                pattern: s.pattern,
                subsamples: s.subsamples.clone(),
                encrypted,
                clear: s.clear.clone(),
            }
        })
        .collect()
}

/// Step 9 (see the module docs), in the work directory `dir`.
pub(crate) fn run(exe: &Path, dir: &Path) -> Result<(), Failure> {
    let started = Instant::now();
    println!(
        "\nprotected key system (org.teecdm.protected), work directory {}",
        dir.display()
    );
    let rng = SystemRandom::new();
    let key = |name, options: &str, policy: &str| -> Result<Key, Failure> {
        let (kid, key) = random_key(&rng)?;
        Ok(Key {
            name,
            kid,
            key,
            options: options.to_string(),
            policy: policy.to_string(),
        })
    };
    let keys = [
        key(
            "sw",
            &format!(":robustness=sw:renewal={RENEWAL}"),
            &format!("SW_SECURE_CRYPTO, renewal every {RENEWAL} s"),
        )?,
        key(
            "hw",
            ":robustness=hw:hdcp=2.2",
            "HW_SECURE_DECODE, HDCP ≥ 2.2",
        )?,
        key(
            "persist",
            ":robustness=sw:persist",
            "SW_SECURE_CRYPTO, persistable",
        )?,
    ];
    let [sw, hw, persist] = &keys;

    // Content: video under `sw`, audio under `persist`, the first video samples also under
    // `hw`.
    let (video, audio): (Vec<Sample>, Vec<Sample>) =
        make_content(&sw.key, &persist.key, sw.kid, persist.kid)
            .into_iter()
            .partition(|s| s.key_id == sw.kid);
    let hw_samples = reencrypt(&video[..HW_SAMPLES], &hw.key, hw.kid);

    let server = Server::start(dir, &keys)?;
    println!(
        "  license server   http://{} (new root, provisioning and server keys; {} keys imported)",
        server.loopback.addr,
        keys.len()
    );
    for k in &keys {
        println!("    {:<8} {}  {}", k.name, hex::encode(k.kid), k.policy);
    }

    // EME §3.1.1 with the deployment's pinned root and storage.
    let root = std::fs::read(dir.join("material").join(material::ROOT_PUBLIC_KEY_FILE))
        .map_err(|e| format!("root.pub: {e}"))?;
    let options = KeySystemOptions {
        storage_dir: Some(dir.join("storage")),
        protected_root: Some(root.as_slice().try_into().map_err(|_| "root.pub size")?),
    };
    let video_cap = |robustness| {
        MediaKeySystemMediaCapability::new("video/mp4; codecs=\"avc1.64001f\"")
            .with_scheme("cbcs")
            .with_robustness(robustness)
    };
    let config = MediaKeySystemConfiguration {
        label: "protected".into(),
        init_data_types: vec!["cenc".into()],
        video_capabilities: vec![video_cap("HW_SECURE_DECODE"), video_cap("SW_SECURE_CRYPTO")],
        audio_capabilities: vec![MediaKeySystemMediaCapability::new(
            "audio/mp4; codecs=\"mp4a.40.2\"",
        )
        .with_scheme("cenc")
        .with_robustness("SW_SECURE_CRYPTO")],
        distinctive_identifier: MediaKeysRequirement::Required,
        persistent_state: MediaKeysRequirement::Required,
        session_types: Some(vec!["temporary".into(), "persistent-license".into()]),
    };
    let access = request_media_key_system_access_with("org.teecdm.protected", &[config], &options)
        .map_err(|e| format!("requestMediaKeySystemAccess: {e}"))?;
    let chosen = access.get_configuration();
    let robustness = |caps: &[MediaKeySystemMediaCapability]| -> Vec<String> {
        caps.iter().map(|c| c.robustness.clone()).collect()
    };
    println!(
        "  negotiated       distinctiveIdentifier={} persistentState={} sessionTypes={:?}",
        chosen.distinctive_identifier.as_str(),
        chosen.persistent_state.as_str(),
        chosen.session_types.clone().unwrap_or_default()
    );
    println!(
        "                   robustness: video {:?}, audio {:?}",
        robustness(&chosen.video_capabilities),
        robustness(&chosen.audio_capabilities)
    );

    let host = Host {
        exe,
        dir,
        access: &access,
    };
    let t0 = unix_now();
    host.set_clock(t0)?;
    std::fs::write(host.hdcp(), "2.2").map_err(|e| format!("hdcp: {e}"))?;
    let (mk, pid) = host.start()?;
    println!(
        "  secure world     pid {pid} (--protected-root, --storage; emulated clock and HDCP 2.2 outputs)"
    );

    // setServerCertificate: license requests are encrypted to the server from now on.
    let certificate = server.call("/protected/certificate", None)?;
    let set = mk
        .set_server_certificate(&certificate)
        .map_err(|e| format!("setServerCertificate: {e}"))?;
    check(set, "setServerCertificate accepted")?;
    println!(
        "  setServerCertificate({} bytes from /protected/certificate) = {set}",
        certificate.len()
    );

    println!("\n  temporary session for sw + hw");
    let session = mk
        .create_session(SessionType::Temporary)
        .map_err(|e| format!("createSession: {e}"))?;
    let pssh = build_common_pssh_v1(&[KeyId::from(sw.kid), KeyId::from(hw.kid)])
        .map_err(|e| format!("pssh: {e}"))?;
    license(&session, &server, &pssh, &[sw, hw])?;

    let (bytes, t) = play(&mk, &video, 1)?;
    println!(
        "  decrypt sw       {} video samples in place, every one verified, {}",
        video.len(),
        rate(bytes, t).trim_start()
    );
    play_secure(&mk, &hw_samples)?;
    check_clear_output_refused(&mk, &hw_samples[0])?;
    println!(
        "  decrypt hw       {HW_SAMPLES} samples into secure buffers, secure decoder digests match; clear output refused"
    );

    let policy = |v: Option<&str>| -> Result<String, Failure> {
        let status = mk
            .get_status_for_policy(v)
            .map_err(|e| format!("getStatusForPolicy: {e}"))?;
        Ok(format!("{}→{}", v.unwrap_or("none"), status.as_str()))
    };
    let answers = [policy(None)?, policy(Some("2.2"))?, policy(Some("2.3"))?];
    check(
        answers == ["none→usable", "2.2→usable", "2.3→output-restricted"],
        "getStatusForPolicy on HDCP 2.2 outputs",
    )?;
    println!(
        "  HDCP policy      getStatusForPolicy: {}",
        answers.join(", ")
    );

    // Renewal: not due yet; due once the clock has moved on by the interval.
    check(
        !session
            .renew_if_due()
            .map_err(|e| format!("renewal: {e}"))?,
        "no renewal before the interval",
    )?;
    host.set_clock(t0 + RENEWAL)?;
    check(
        session
            .renew_if_due()
            .map_err(|e| format!("renewal: {e}"))?,
        "renewal due after the interval",
    )?;
    let renewal = one_message(&session, MessageType::LicenseRenewal)?;
    let response = server.call("/protected/renewal", Some(&renewal))?;
    session
        .update(&response)
        .map_err(|e| format!("update(renewal response): {e}"))?;
    check(all_usable(&session, &[sw, hw]), "keys usable after renewal")?;
    play(&mk, &video[..HW_SAMPLES], 1)?;
    println!(
        "  renewal          clock +{RENEWAL} s → license-renewal ({} bytes) → /protected/renewal ← renewal response ({} bytes); keys usable, playback goes on",
        renewal.len(),
        response.len()
    );
    session.close().map_err(|e| format!("close: {e}"))?;

    // Offline: store, replace the process, load, release.
    println!("\n  persistent-license session for persist");
    let session = persistent_session(&mk)?;
    let pssh =
        build_common_pssh_v1(&[KeyId::from(persist.kid)]).map_err(|e| format!("pssh: {e}"))?;
    license(&session, &server, &pssh, &[persist])?;
    let id = session.session_id();
    let (bytes, _) = play(&mk, &audio[..48], 1)?;
    println!("  process {pid}    stored the license of session {id}; {bytes} bytes played");
    drop(session);
    drop(mk);

    let (mk, pid) = host.start()?;
    let session = persistent_session(&mk)?;
    check(
        session.load(&id).map_err(|e| format!("load: {e}"))?,
        "load() finds the stored session",
    )?;
    check(
        messages(&session).is_empty(),
        "no license request and no provisioning after load()",
    )?;
    check(all_usable(&session, &[persist]), "loaded keys usable")?;
    let (bytes, t) = play(&mk, &audio, 1)?;
    println!(
        "  process {pid}    load(\"{id}\") = true, no message; {} audio samples verified, {}",
        audio.len(),
        rate(bytes, t).trim_start()
    );
    session.remove().map_err(|e| format!("remove: {e}"))?;
    let release = one_message(&session, MessageType::LicenseRelease)?;
    let ack = server.call("/protected/release", Some(&release))?;
    session
        .update(&ack)
        .map_err(|e| format!("update(release acknowledgement): {e}"))?;
    let closed = session.closed().map_or("open", |r| r.as_str());
    check(
        closed == "release-acknowledged",
        "closed on the acknowledgement",
    )?;
    println!(
        "  → message        license-release ({} bytes) → /protected/release ← acknowledgement ({} bytes) → closed: {closed}",
        release.len(),
        ack.len()
    );
    drop(session);
    drop(mk);

    let (mk, pid) = host.start()?;
    let session = persistent_session(&mk)?;
    check(
        !session.load(&id).map_err(|e| format!("load: {e}"))?,
        "the released license is gone",
    )?;
    println!("  process {pid}    load(\"{id}\") = false: the license was released");
    drop(session);
    drop(mk);

    let m = server.metrics.snapshot();
    check(
        (
            m.protected_provisions,
            m.protected_licenses_temporary,
            m.protected_licenses_persistent,
            m.protected_renewals,
            m.protected_releases,
        ) == (1, 1, 1, 1, 1),
        "the server saw one provisioning, two licenses, one renewal, one release",
    )?;
    println!(
        "\n  server counted   {} provisioning, {} + {} licenses (temporary + persistent), {} renewal, {} release; {:.0} ms in all",
        m.protected_provisions,
        m.protected_licenses_temporary,
        m.protected_licenses_persistent,
        m.protected_renewals,
        m.protected_releases,
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
