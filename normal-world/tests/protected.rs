//! `org.teecdm.protected` end to end, over both transports: the player's EME API, the secure
//! world (in this process, or behind the socket transport), and the reference license server
//! on a loopback port with key material from `protected-init` and keys from
//! `import --protected-key`. Time and output protection are the host's test emulations
//! (files the test writes), the same for both transports.

mod common;
// The playback example's license server (its step 9).
#[path = "../examples/playback/loopback_server.rs"]
mod loopback_server;
// The example players' session messages, HTTP client and secure world in its own process.
#[path = "../examples/common/mod.rs"]
#[allow(dead_code)] // Not every helper of the examples is used here.
mod player;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cdm_testkit::cenc::{encrypt_cenc, plaintext};
use cdm_testkit::temp::TempDir;
use common::{keyids, threaded_host, Kind};
use loopback_server::LoopbackServer;
use normal_world::transport::InProcessTransport;
use normal_world::{
    request_media_key_system_access_with, DecryptedSample, EmeError, EncryptionScheme, KeyStatus,
    KeySystemOptions, MediaKeySession, MediaKeySystemAccess, MediaKeySystemConfiguration,
    MediaKeySystemMediaCapability, MediaKeys, MediaKeysRequirement, MessageType, OutputWish,
    SampleDescription, SessionType,
};
use player::{messages, LicenseClient};
use secure_world_host::HostSettings;

const KEY_SYSTEM: &str = "org.teecdm.protected";

/// Content keys of the tests, with the policy options `import --protected-key` takes.
const SW_KID: [u8; 16] = [0x51; 16];
const SW_KEY: [u8; 16] = [0xa1; 16];
const RENEW_KID: [u8; 16] = [0x52; 16];
const RENEW_KEY: [u8; 16] = [0xa2; 16];
const HDCP_KID: [u8; 16] = [0x53; 16];
const HDCP_KEY: [u8; 16] = [0xa3; 16];
const HW_KID: [u8; 16] = [0x54; 16];
const HW_KEY: [u8; 16] = [0xa4; 16];
const PERSIST_KID: [u8; 16] = [0x55; 16];
const PERSIST_KEY: [u8; 16] = [0xa5; 16];
const ENT_KID: [u8; 16] = [0x56; 16];
const ENT_KEY: [u8; 16] = [0xa6; 16];
const ROTATED_KID: [u8; 16] = [0x57; 16];
const ROTATED_KEY: [u8; 16] = [0xa7; 16];

/// `KID:KEY` in hex, as `import --protected-key` and `protected-rotation` take a key.
fn key_arg(kid: &[u8; 16], key: &[u8; 16]) -> String {
    format!("{}:{}", hex::encode(kid), hex::encode(key))
}

/// The license server, its key material and the emulation files.
struct World {
    dir: TempDir,
    root: [u8; 65],
    /// A client of the server (dropped before it).
    http: LicenseClient,
    /// Serves while the world lives.
    _server: LoopbackServer,
}

impl World {
    fn new(label: &str) -> World {
        let dir = TempDir::new(label);
        let material = dir.join("material");
        let cli = |args: &[&str]| {
            let mut all = vec!["license-server"];
            all.extend_from_slice(args);
            license_server::cli::main_with_args(all)
        };
        assert_eq!(
            cli(&["protected-init", "--dir", material.to_str().unwrap()]),
            ExitCode::SUCCESS
        );
        let db = dir.join("keys.db");
        let specs = [
            key_arg(&SW_KID, &SW_KEY),
            key_arg(&RENEW_KID, &RENEW_KEY) + ":license=600:renewal=60",
            key_arg(&HDCP_KID, &HDCP_KEY) + ":hdcp=2.2",
            key_arg(&HW_KID, &HW_KEY) + ":robustness=hw",
            key_arg(&PERSIST_KID, &PERSIST_KEY) + ":persist",
            key_arg(&ENT_KID, &ENT_KEY) + ":entitlement:hdcp=1.4",
        ];
        let mut args = vec!["import", "--db", db.to_str().unwrap()];
        for s in &specs {
            args.push("--protected-key");
            args.push(s);
        }
        assert_eq!(cli(&args), ExitCode::SUCCESS);
        let store = Arc::new(license_server::SqliteStore::open(&db).unwrap());
        let now = license_server::protected::unix_now();
        let metrics = Arc::new(license_server::Metrics::new());
        let server = LoopbackServer::start(&material, store, now, metrics).unwrap();
        let root: [u8; 65] = std::fs::read(material.join("root.pub"))
            .unwrap()
            .try_into()
            .unwrap();
        let http = LicenseClient::new(&format!("http://{}", server.addr));
        let world = World {
            dir,
            root,
            http,
            _server: server,
        };
        world.set_clock(now);
        world.set_hdcp("2.3");
        world
    }

    fn clock_file(&self) -> PathBuf {
        self.dir.join("clock")
    }

    fn hdcp_file(&self) -> PathBuf {
        self.dir.join("hdcp")
    }

    fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    fn now(&self) -> u64 {
        std::fs::read_to_string(self.clock_file())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn set_clock(&self, secs: u64) {
        std::fs::write(self.clock_file(), secs.to_string()).unwrap();
    }

    fn advance(&self, secs: u64) {
        self.set_clock(self.now() + secs);
    }

    fn set_hdcp(&self, v: &str) {
        std::fs::write(self.hdcp_file(), v).unwrap();
    }

    fn settings(&self) -> HostSettings {
        HostSettings {
            storage: Some(self.storage()),
            protected_root: Some(self.root),
            emulated_clock: Some(self.clock_file()),
            emulated_hdcp: Some(self.hdcp_file()),
        }
    }

    fn post(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        self.http
            .call(path, Some(("application/octet-stream", body)))
    }

    fn certificate(&self) -> Vec<u8> {
        self.http.call("/protected/certificate", None).unwrap()
    }

    /// The protected key system, pinned to this world's root, with storage in its directory.
    fn access(&self) -> MediaKeySystemAccess {
        let options = KeySystemOptions {
            storage_dir: Some(self.storage()),
            protected_root: Some(self.root),
        };
        request_media_key_system_access_with(KEY_SYSTEM, &[config()], &options)
            .expect("the protected key system is offered with a pinned root")
    }

    /// A `MediaKeys` of the protected key system over `kind`, its secure world on this
    /// world's storage, clock and HDCP files.
    fn media_keys(&self, kind: Kind) -> MediaKeys {
        let access = self.access();
        let settings = self.settings();
        match kind {
            Kind::InProcess => {
                let world = secure_world_host::host_world_with(&settings).unwrap();
                access
                    .create_media_keys_with_transport(Box::new(InProcessTransport::from_world(
                        world,
                    )))
                    .unwrap()
            }
            Kind::Socket => {
                let t = threaded_host(move || secure_world_host::host_world_with(&settings));
                access
                    .create_media_keys_with_transport(Box::new(t))
                    .unwrap()
            }
        }
    }
}

fn config() -> MediaKeySystemConfiguration {
    MediaKeySystemConfiguration {
        init_data_types: vec!["keyids".into(), "cenc".into()],
        distinctive_identifier: MediaKeysRequirement::Required,
        persistent_state: MediaKeysRequirement::Required,
        session_types: Some(vec!["temporary".into(), "persistent-license".into()]),
        video_capabilities: vec![MediaKeySystemMediaCapability {
            robustness: "SW_SECURE_CRYPTO".into(),
            ..MediaKeySystemMediaCapability::new("video/mp4; codecs=\"avc1.64001f\"")
        }],
        ..MediaKeySystemConfiguration::default()
    }
}

fn one_message(s: &MediaKeySession, expected: MessageType) -> Vec<u8> {
    let mut m = messages(s);
    assert_eq!(m.len(), 1, "one message expected");
    let (ty, body) = m.remove(0);
    assert_eq!(ty, expected);
    body
}

/// Runs generateRequest for `kids` through provisioning (when the device needs it) and the
/// license exchange. Answers whether an individualization request was made.
fn license(w: &World, s: &MediaKeySession, kids: &[&[u8; 16]]) -> bool {
    s.generate_request("keyids", &keyids(kids)).unwrap();
    let mut m = messages(s);
    assert_eq!(m.len(), 1);
    let (mut ty, mut body) = m.remove(0);
    let provisioned = ty == MessageType::IndividualizationRequest;
    if provisioned {
        let answer = w.post("/protected/provision", &body).unwrap();
        s.update(&answer).unwrap();
        let mut m = messages(s);
        assert_eq!(m.len(), 1, "the license request follows provisioning");
        (ty, body) = m.remove(0);
    }
    assert_eq!(ty, MessageType::LicenseRequest);
    let lic = w.post("/protected/license", &body).unwrap();
    s.update(&lic).unwrap();
    provisioned
}

/// Encrypts a sample under `key` and checks that `mk` decrypts it (in place) to the clear one.
fn assert_decrypts(mk: &MediaKeys, kid: &[u8; 16], key: &[u8; 16]) {
    let plain = plaintext(3000);
    let mut sample = plain.clone();
    encrypt_cenc(key, &[7; 8], &mut sample, &[(64, 2936)]);
    let r = mk
        .decrypt(&mut sample, &desc(kid, OutputWish::InPlace))
        .unwrap();
    assert_eq!(r, DecryptedSample::InPlace);
    assert_eq!(sample, plain);
}

fn desc(kid: &[u8; 16], output: OutputWish) -> SampleDescription<'_> {
    SampleDescription {
        key_id: kid,
        scheme: EncryptionScheme::Cenc,
        iv: &[7; 8],
        pattern: (0, 0),
        subsamples: &[(64, 2936)],
        output,
    }
}

fn both(test: impl Fn(Kind)) {
    test(Kind::InProcess);
    test(Kind::Socket);
}

#[test]
fn provision_request_license_decrypt_with_an_encrypted_request() {
    both(|kind| {
        let w = World::new("pl-flow");
        let mk = w.media_keys(kind);
        assert!(mk.set_server_certificate(&w.certificate()).unwrap());
        // A certificate the pinned root did not issue is refused.
        let mut bad = w.certificate();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            mk.set_server_certificate(&bad),
            Err(EmeError::TypeError(_))
        ));
        let s = mk.create_session(SessionType::Temporary).unwrap();
        assert!(license(&w, &s, &[&SW_KID]), "a new device provisions first");
        assert_eq!(s.key_statuses().get(&SW_KID), Some(KeyStatus::Usable));
        assert_decrypts(&mk, &SW_KID, &SW_KEY);
        // The device is provisioned now: a second session goes straight to the license.
        let s2 = mk.create_session(SessionType::Temporary).unwrap();
        assert!(!license(&w, &s2, &[&HDCP_KID]));
        // The identity is kept in storage: a new secure world on it needs no provisioning.
        drop((s, s2, mk));
        let mk = w.media_keys(kind);
        let s = mk.create_session(SessionType::Temporary).unwrap();
        assert!(!license(&w, &s, &[&SW_KID]), "{kind:?}: identity restored");
        assert_decrypts(&mk, &SW_KID, &SW_KEY);
    });
}

#[test]
fn renewal_extends_and_expiry_stops_decryption() {
    both(|kind| {
        let w = World::new("pl-renew");
        let mk = w.media_keys(kind);
        let s = mk.create_session(SessionType::Temporary).unwrap();
        license(&w, &s, &[&RENEW_KID]);
        let accepted = w.now();
        assert_eq!(s.expiration(), Some(((accepted + 600) * 1000) as i64));
        assert!(!s.renew_if_due().unwrap(), "not due yet");
        w.advance(61);
        assert!(s.renew_if_due().unwrap());
        let renewal = one_message(&s, MessageType::LicenseRenewal);
        assert!(!s.renew_if_due().unwrap(), "one renewal at a time");
        let answer = w.post("/protected/renewal", &renewal).unwrap();
        s.update(&answer).unwrap();
        let renewed = w.now();
        assert_eq!(s.expiration(), Some(((renewed + 600) * 1000) as i64));
        // Past the first license's end, the renewed license still decrypts.
        w.advance(590);
        assert_decrypts(&mk, &RENEW_KID, &RENEW_KEY);
        // A renewal response cannot be replayed.
        assert!(matches!(s.update(&answer), Err(EmeError::TypeError(_))));
        // Past the renewed license's end: expired, and decryption stops.
        w.advance(20);
        let plain = plaintext(3000);
        let mut sample = plain.clone();
        encrypt_cenc(&RENEW_KEY, &[7; 8], &mut sample, &[(64, 2936)]);
        let enc = sample.clone();
        let r = mk.decrypt(&mut sample, &desc(&RENEW_KID, OutputWish::InPlace));
        assert!(matches!(r, Err(EmeError::WaitingForKey(_))), "{r:?}");
        assert_eq!(sample, enc);
        assert_eq!(s.key_statuses().get(&RENEW_KID), Some(KeyStatus::Expired));
    });
}

#[test]
fn hdcp_restricts_output_and_get_status_for_policy_reports_it() {
    both(|kind| {
        let w = World::new("pl-hdcp");
        w.set_hdcp("1.4");
        let mk = w.media_keys(kind);
        assert_eq!(
            mk.get_status_for_policy(Some("2.2")).unwrap(),
            KeyStatus::OutputRestricted
        );
        assert_eq!(
            mk.get_status_for_policy(Some("1.4")).unwrap(),
            KeyStatus::Usable
        );
        assert_eq!(mk.get_status_for_policy(None).unwrap(), KeyStatus::Usable);
        assert!(matches!(
            mk.get_status_for_policy(Some("9.9")),
            Err(EmeError::TypeError(_))
        ));
        let s = mk.create_session(SessionType::Temporary).unwrap();
        license(&w, &s, &[&HDCP_KID, &SW_KID]);
        assert_eq!(
            s.key_statuses().get(&HDCP_KID),
            Some(KeyStatus::OutputRestricted)
        );
        assert_eq!(s.key_statuses().get(&SW_KID), Some(KeyStatus::Usable));
        let mut sample = plaintext(3000);
        let r = mk.decrypt(&mut sample, &desc(&HDCP_KID, OutputWish::InPlace));
        assert!(matches!(r, Err(EmeError::WaitingForKey(_))), "{r:?}");
        assert_decrypts(&mk, &SW_KID, &SW_KEY);
        // The output gains HDCP 2.3: the periodic poll brings the status up to date.
        w.set_hdcp("2.3");
        assert_eq!(
            mk.get_status_for_policy(Some("2.2")).unwrap(),
            KeyStatus::Usable
        );
        s.renew_if_due().unwrap();
        assert_eq!(s.key_statuses().get(&HDCP_KID), Some(KeyStatus::Usable));
        assert_decrypts(&mk, &HDCP_KID, &HDCP_KEY);
    });
}

#[test]
fn hw_secure_decode_keys_never_yield_clear_output() {
    both(|kind| {
        let w = World::new("pl-hw");
        let mk = w.media_keys(kind);
        let s = mk.create_session(SessionType::Temporary).unwrap();
        license(&w, &s, &[&HW_KID]);
        assert_eq!(s.key_statuses().get(&HW_KID), Some(KeyStatus::Usable));
        let plain = plaintext(3000);
        let mut sample = plain.clone();
        encrypt_cenc(&HW_KEY, &[7; 8], &mut sample, &[(64, 2936)]);
        let enc = sample.clone();
        // The session is SW_SECURE_CRYPTO, but the key requires HW_SECURE_DECODE.
        let r = mk.decrypt(&mut sample, &desc(&HW_KID, OutputWish::InPlace));
        assert!(matches!(r, Err(EmeError::InvalidAccessError(_))), "{r:?}");
        assert_eq!(sample, enc);
        let Ok(DecryptedSample::SecureBuffer(handle)) =
            mk.decrypt(&mut sample, &desc(&HW_KID, OutputWish::SecureBuffer))
        else {
            panic!("a secure buffer was expected");
        };
        assert_eq!(
            sample, enc,
            "the player's buffer never holds the clear sample"
        );
        let rendered = mk.render_secure_buffer(handle).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &plain);
        assert_eq!(rendered.digest.as_slice(), digest.as_ref());
    });
}

#[test]
fn entitlement_rotation_needs_no_license_request() {
    both(|kind| {
        let w = World::new("pl-rotate");
        let mk = w.media_keys(kind);
        let s = mk.create_session(SessionType::Temporary).unwrap();
        license(&w, &s, &[&ENT_KID]);
        // Packager side: the rotation record the license server's tool writes.
        let record_file = w.dir.join("record");
        let args = [
            "license-server".to_string(),
            "protected-rotation".into(),
            "--entitlement".into(),
            key_arg(&ENT_KID, &ENT_KEY),
            "--key".into(),
            key_arg(&ROTATED_KID, &ROTATED_KEY),
            "--out".into(),
            record_file.to_str().unwrap().into(),
        ];
        assert_eq!(license_server::cli::main_with_args(args), ExitCode::SUCCESS);
        let record = std::fs::read(&record_file).unwrap();
        // A tampered record is refused and changes nothing.
        let mut bad = record.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        let before = s.key_statuses();
        assert!(s.add_in_band_keys(&bad).is_err());
        assert_eq!(s.key_statuses(), before);
        s.add_in_band_keys(&record).unwrap();
        assert!(messages(&s).is_empty(), "no license request");
        assert_eq!(s.key_statuses().get(&ROTATED_KID), Some(KeyStatus::Usable));
        assert_decrypts(&mk, &ROTATED_KID, &ROTATED_KEY);
        // The rotated key inherits the entitlement key's HDCP 1.4 minimum.
        w.set_hdcp("none");
        s.renew_if_due().unwrap();
        assert_eq!(
            s.key_statuses().get(&ROTATED_KID),
            Some(KeyStatus::OutputRestricted)
        );
    });
}

#[test]
fn persistent_protected_license_survives_a_host_restart_and_is_released() {
    both(|kind| {
        let w = World::new("pl-persist");
        let id = {
            let mk = w.media_keys(kind);
            // A key that may not be persisted is refused in a persistent session.
            let s = mk.create_session(SessionType::PersistentLicense).unwrap();
            s.generate_request("keyids", &keyids(&[&SW_KID])).unwrap();
            let (_, req) = messages(&s).remove(0);
            let answer = w.post("/protected/provision", &req).unwrap();
            s.update(&answer).unwrap();
            let req = one_message(&s, MessageType::LicenseRequest);
            assert!(
                w.post("/protected/license", &req).is_err(),
                "the server refuses"
            );
            let s = mk.create_session(SessionType::PersistentLicense).unwrap();
            license(&w, &s, &[&PERSIST_KID]);
            assert_decrypts(&mk, &PERSIST_KID, &PERSIST_KEY);
            s.session_id()
        };
        // The secure world is gone (its connection closed); a new one loads the license.
        let mk = w.media_keys(kind);
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(s.load(&id).unwrap());
        assert!(messages(&s).is_empty(), "no license request");
        assert_eq!(s.key_statuses().get(&PERSIST_KID), Some(KeyStatus::Usable));
        assert_decrypts(&mk, &PERSIST_KID, &PERSIST_KEY);
        s.remove().unwrap();
        let release = one_message(&s, MessageType::LicenseRelease);
        assert_eq!(
            s.key_statuses().get(&PERSIST_KID),
            Some(KeyStatus::Released)
        );
        let ack = w.post("/protected/release", &release).unwrap();
        s.update(&ack).unwrap();
        assert!(s.closed().is_some());
        // Released and acknowledged: nothing to load any more.
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(!s.load(&id).unwrap());
    });
}

#[test]
fn negotiation_needs_a_pinned_root_and_a_distinctive_identifier() {
    let options = KeySystemOptions::default();
    assert!(matches!(
        request_media_key_system_access_with(KEY_SYSTEM, &[config()], &options),
        Err(EmeError::NotSupportedError(_))
    ));
    let options = KeySystemOptions {
        protected_root: Some([4; 65]),
        ..KeySystemOptions::default()
    };
    let no_id = MediaKeySystemConfiguration {
        distinctive_identifier: MediaKeysRequirement::NotAllowed,
        persistent_state: MediaKeysRequirement::Optional,
        session_types: None,
        ..config()
    };
    assert!(request_media_key_system_access_with(
        KEY_SYSTEM,
        std::slice::from_ref(&no_id),
        &options
    )
    .is_err());
    let optional = MediaKeySystemConfiguration {
        distinctive_identifier: MediaKeysRequirement::Optional,
        ..no_id
    };
    let access = request_media_key_system_access_with(KEY_SYSTEM, &[optional], &options).unwrap();
    let c = access.get_configuration();
    assert_eq!(c.distinctive_identifier, MediaKeysRequirement::Required);
    assert_eq!(c.video_capabilities[0].robustness, "SW_SECURE_CRYPTO");
    // Clear Key still refuses that robustness string.
    assert!(
        request_media_key_system_access_with("org.w3.clearkey", &[config()], &options).is_err()
    );
}

/// The session manager's fetcher for the protected system: each message type to its route.
struct Fetcher<'w> {
    world: &'w World,
    calls: std::sync::Mutex<Vec<MessageType>>,
}

impl normal_world::session_manager::LicenseFetcher for Fetcher<'_> {
    fn fetch(
        &self,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, normal_world::session_manager::FetchError> {
        self.calls.lock().unwrap().push(message_type);
        let route = match message_type {
            MessageType::IndividualizationRequest => "/protected/provision",
            MessageType::LicenseRequest => "/protected/license",
            MessageType::LicenseRenewal => "/protected/renewal",
            MessageType::LicenseRelease => "/protected/release",
        };
        self.world
            .post(route, message)
            .map_err(normal_world::session_manager::FetchError)
    }
}

#[test]
fn the_session_manager_provisions_once_then_reuses_sessions() {
    use normal_world::session_manager::{ManagerConfig, ManualClock, SessionManager};
    let w: &'static World = Box::leak(Box::new(World::new("pl-manager")));
    let fetcher = Arc::new(Fetcher {
        world: w,
        calls: std::sync::Mutex::new(Vec::new()),
    });
    let manager = SessionManager::new(
        w.media_keys(Kind::InProcess),
        fetcher.clone(),
        Arc::new(ManualClock::new()),
        ManagerConfig::default(),
    );
    let a = manager
        .acquire("keyids", &keyids(&[&SW_KID]), SessionType::Temporary)
        .unwrap();
    assert_decrypts(manager.media_keys(), &SW_KID, &SW_KEY);
    drop(a);
    // The same content again: the kept-alive session, no message at all.
    let _b = manager
        .acquire("keyids", &keyids(&[&SW_KID]), SessionType::Temporary)
        .unwrap();
    // Other content: a license request, no second provisioning.
    let _c = manager
        .acquire("keyids", &keyids(&[&HDCP_KID]), SessionType::Temporary)
        .unwrap();
    assert_eq!(
        *fetcher.calls.lock().unwrap(),
        vec![
            MessageType::IndividualizationRequest,
            MessageType::LicenseRequest,
            MessageType::LicenseRequest
        ]
    );
}

/// A `MediaKeys` over shared memory with the secure world in its own process (the
/// `protected_player` example, which serves as `secure-world-host` when given `--socket`),
/// pinned to this world's root, on its storage, clock and HDCP files.
fn media_keys_in_a_process(w: &World) -> (MediaKeys, normal_world::transport::HostProcess) {
    let mut cmd = common::host_command(common::player_binary().to_str().unwrap());
    cmd.arg("--protected-root")
        .arg(w.dir.join("material").join("root.pub"))
        .arg("--storage")
        .arg(w.storage())
        .arg("--emulated-clock")
        .arg(w.clock_file())
        .arg("--emulated-hdcp")
        .arg(w.hdcp_file());
    player::media_keys_in_a_process(&w.access(), cmd).unwrap()
}

#[test]
fn socket_a_new_host_process_keeps_the_device_identity_and_the_persistent_license() {
    let w = World::new("pl-process");
    let (id, first_host) = {
        let (mk, host) = media_keys_in_a_process(&w);
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(license(&w, &s, &[&PERSIST_KID]), "a new device provisions");
        assert_decrypts(&mk, &PERSIST_KID, &PERSIST_KEY);
        (s.session_id(), host)
    };
    // The player let go of the secure world: its process ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while first_host.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!first_host.is_running(), "the first host process exited");

    let (mk, second_host) = media_keys_in_a_process(&w);
    assert_ne!(second_host.id(), first_host.id());
    // The device identity came back from sealed storage: no second provisioning.
    let t = mk.create_session(SessionType::Temporary).unwrap();
    assert!(!license(&w, &t, &[&SW_KID]));
    // The persistent license loads with no request and decrypts, then is released.
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    assert!(s.load(&id).unwrap());
    assert!(messages(&s).is_empty());
    assert_decrypts(&mk, &PERSIST_KID, &PERSIST_KEY);
    s.remove().unwrap();
    let release = one_message(&s, MessageType::LicenseRelease);
    s.update(&w.post("/protected/release", &release).unwrap())
        .unwrap();
    assert!(s.closed().is_some());
}
