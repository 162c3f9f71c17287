//! The protected key system end to end: key material from `protected-init`, keys from
//! `import --protected-key`, the server on a real TCP port, and `protected_license`'s own
//! `Device` as the client (provisioning, server certificate, clear and encrypted license
//! requests, renewal, release), plus rotation records from `protected-rotation`.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::http::StatusCode;
use cdm_testkit::temp::TempDir;
use common::*;
use license_server::cli::main_with_args;
use license_server::protected::material::{self, MaterialError, ProtectedMaterial};
use license_server::protected::{unix_now, ProtectedStore, SessionRecord};
use license_server::{Metrics, ProtectedService, SqliteStore};
use protected_license::cert::{Certificate, Hdcp, Robustness};
use protected_license::crypto::{PublicKey, SigningKey, PRIVATE_KEY_LEN};
use protected_license::device::{
    unwrap_rotation_record, AcceptedLicense, Device, DeviceKeys, LicenseRequestParams, Outstanding,
};
use protected_license::messages::{MessageType, SessionId, SessionRequest, SessionType};
use protected_license::Policy;
use rand_core::OsRng;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

fn hex16(b: u8) -> String {
    format!("{b:02x}").repeat(16)
}

/// `KID_HEX:KEY_HEX` of the key ID `[kid; 16]` and the key `[key; 16]`.
fn kid_key(kid: u8, key: u8) -> String {
    format!("{}:{}", hex16(kid), hex16(key))
}

/// `license-server ARGS...` in this process.
fn cli(args: &[&str]) -> ExitCode {
    let mut all = vec!["license-server"];
    all.extend_from_slice(args);
    main_with_args(all)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The file at `path`, which must be exactly `N` bytes long.
fn read_array<const N: usize>(path: &Path) -> [u8; N] {
    std::fs::read(path).unwrap().try_into().unwrap()
}

/// A server with fresh key material and the given `--protected-key` specs imported.
struct Fixture {
    dir: TempDir,
    material: PathBuf,
    store: Arc<SqliteStore>,
    metrics: Arc<Metrics>,
    server: TcpServer,
    root: PublicKey,
}

impl Fixture {
    fn new(label: &str, protected_keys: &[String]) -> Fixture {
        let dir = TempDir::new(label);
        let material = dir.join("material");
        assert_eq!(
            cli(&["protected-init", "--dir", path_str(&material)]),
            ExitCode::SUCCESS
        );
        let db = dir.join("keys.db");
        if !protected_keys.is_empty() {
            let mut args = vec!["import", "--db", path_str(&db)];
            for k in protected_keys {
                args.push("--protected-key");
                args.push(k);
            }
            assert_eq!(cli(&args), ExitCode::SUCCESS);
        }
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let loaded = ProtectedMaterial::load(&material, unix_now(), 30 * 86_400).unwrap();
        let service = ProtectedService::new(loaded, Arc::clone(&store) as _);
        let metrics = Arc::new(Metrics::new());
        let app = license_server::router_with_protected(
            Arc::clone(&store) as _,
            Arc::clone(&metrics),
            None,
            Arc::new(service),
        );
        // The file devices pin: 65 raw bytes.
        let root_bytes: [u8; 65] = read_array(&material.join("root.pub"));
        Fixture {
            dir,
            material,
            store,
            metrics,
            server: TcpServer::start(app),
            root: PublicKey::from_bytes(&root_bytes).unwrap(),
        }
    }

    /// A fixture with [`all_keys`], a provisioned client and the server's certificate.
    fn with_client(label: &str) -> (Fixture, Client, Certificate) {
        let f = Fixture::new(label, &all_keys());
        let c = f.device();
        let cert = f.certificate(&c);
        (f, c, cert)
    }

    fn post(&self, path: &str, body: &[u8]) -> Reply {
        http(self.server.addr, "POST", path, &[OCTET], body)
    }

    /// [`Fixture::post`], answered `200 OK` with an `application/octet-stream` body.
    fn post_ok(&self, path: &str, body: &[u8]) -> Reply {
        let r = self.post(path, body);
        assert_octets(&r);
        r
    }

    fn sessions(&self) -> u64 {
        self.store.session_count().unwrap()
    }

    /// The stored record of `session`, which must exist.
    fn session(&self, session: &SessionId) -> SessionRecord {
        self.store.session(session).unwrap().unwrap()
    }

    /// A device with fresh keys, provisioned through `POST /protected/provision`.
    fn device(&self) -> Client {
        let keys = DeviceKeys::generate(&mut OsRng).unwrap();
        let mut device = Device::new(keys, self.root, Robustness::ALL, Hdcp::V2_2);
        let mut outstanding = Outstanding::new();
        let req = device
            .provisioning_request(&mut OsRng, unix_now(), &mut outstanding)
            .unwrap();
        let r = self.post_ok("/protected/provision", &req);
        device
            .accept_provisioning(&mut outstanding, &r.body, unix_now())
            .unwrap();
        assert!(outstanding.is_empty());
        Client {
            device,
            outstanding,
        }
    }

    /// `GET /protected/certificate`, verified by `client` against the pinned root.
    fn certificate(&self, client: &Client) -> Certificate {
        let r = http(self.server.addr, "GET", "/protected/certificate", &[], b"");
        assert_octets(&r);
        client
            .device
            .verify_server_certificate(&r.body, unix_now())
            .unwrap()
    }
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// Asserts `200 OK` with an `application/octet-stream` body.
fn assert_octets(r: &Reply) {
    r.assert_ok();
    assert_eq!(r.headers["content-type"], "application/octet-stream");
}

/// `bytes` with `mask` XORed into the byte at `at`.
fn flipped(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    bad[at] ^= mask;
    bad
}

/// A policy, field by field: `license_duration`, `playback_duration`, `renewal_interval`
/// (seconds) and `can_persist`.
fn policy(license: u32, playback: u32, renewal: u32, can_persist: bool) -> Policy {
    Policy {
        license_duration: license,
        playback_duration: playback,
        renewal_interval: renewal,
        can_persist,
    }
}

/// What the device library answers when it refuses a server message.
type ProtocolResult<T> = Result<T, protected_license::Error>;

struct Client {
    device: Device,
    outstanding: Outstanding,
}

impl Client {
    fn license_request(
        &mut self,
        kids: &[u8],
        session_type: SessionType,
        server: Option<&Certificate>,
    ) -> Vec<u8> {
        let params = LicenseRequestParams {
            session_type,
            // A software-only client with no HDCP: the server grants keys regardless.
            robustness: Robustness::SW_SECURE_CRYPTO,
            hdcp: Hdcp::NONE,
            key_ids: kids.iter().map(|b| [*b; 16]).collect(),
            content_id: b"content-1".to_vec(),
        };
        self.device
            .license_request(
                &mut OsRng,
                unix_now(),
                &mut self.outstanding,
                &params,
                server,
            )
            .unwrap()
    }

    fn accept(&mut self, license: &[u8]) -> AcceptedLicense {
        self.device
            .accept_license(&mut self.outstanding, license, unix_now())
            .unwrap()
    }

    /// Requests and accepts a license for `kids`.
    fn license(
        &mut self,
        f: &Fixture,
        kids: &[u8],
        session_type: SessionType,
        server: Option<&Certificate>,
    ) -> AcceptedLicense {
        let req = self.license_request(kids, session_type, server);
        let r = f.post_ok("/protected/license", &req);
        assert_eq!(r.headers["cache-control"], "no-store");
        self.accept(&r.body)
    }

    fn renewal_request(&mut self, session: &SessionId) -> Vec<u8> {
        self.device
            .renewal_request(&mut OsRng, unix_now(), &mut self.outstanding, session)
            .unwrap()
    }

    fn release_request(&mut self, session: &SessionId) -> Vec<u8> {
        self.device
            .release_request(&mut OsRng, unix_now(), &mut self.outstanding, session)
            .unwrap()
    }

    fn accept_renewal(&mut self, session: &SessionId, response: &[u8]) -> ProtocolResult<Policy> {
        self.device
            .accept_renewal(&mut self.outstanding, session, response, unix_now())
    }

    fn accept_release_ack(&mut self, session: &SessionId, ack: &[u8]) -> ProtocolResult<()> {
        self.device
            .accept_release_ack(&mut self.outstanding, session, ack, unix_now())
    }
}

/// Key 1: content, HW_SECURE_DECODE, HDCP 2.2, license 3600 s, renewal 300 s, persistable.
fn key1() -> String {
    kid_key(1, 0xa1) + ":robustness=hw:hdcp=2.2:license=3600:renewal=300:persist"
}

/// Key 2: content, SW_SECURE_CRYPTO, no HDCP, playback 600 s, renewal 120 s, not persistable.
fn key2() -> String {
    kid_key(2, 0xa2) + ":playback=600:renewal=120"
}

/// Key 3: content, SW_SECURE_CRYPTO, HDCP 1.4, no limits, no renewal, persistable.
fn key3() -> String {
    kid_key(3, 0xa3) + ":hdcp=1.4:persist"
}

/// Key 14: entitlement, HW_SECURE_DECODE, HDCP 2.3, renewal 60 s.
fn entitlement() -> String {
    kid_key(0x0e, 0xee) + ":entitlement:robustness=hw:hdcp=2.3:renewal=60"
}

fn all_keys() -> Vec<String> {
    vec![key1(), key2(), key3(), entitlement()]
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn protected_init_writes_seven_files_private_keys_mode_0600() {
    let dir = TempDir::new("ls-prot-init");
    let material_dir = dir.join("m");
    let now = unix_now();
    let written = material::init(&material_dir, 10, now).unwrap();
    assert_eq!(written.len(), 7);

    let mut names: Vec<String> = std::fs::read_dir(&material_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "provisioning.cert",
            "provisioning.key",
            "root.key",
            "root.pub",
            "server-encryption.key",
            "server-signing.key",
            "server.cert"
        ],
        "exactly the seven files, no temporary file left"
    );
    for name in material::PRIVATE_FILES {
        let path = material_dir.join(name);
        assert_eq!(mode(&path), 0o600, "{name}");
        assert_eq!(std::fs::read(&path).unwrap().len(), 32, "{name}");
    }
    for name in ["root.pub", "provisioning.cert", "server.cert"] {
        assert_eq!(mode(&material_dir.join(name)), 0o644, "{name}");
    }
    assert_eq!(mode(&material_dir), 0o700);

    // root.pub is the raw public key of root.key, and both certificates chain to it with the
    // requested validity.
    let root_pub: [u8; 65] = read_array(&material_dir.join("root.pub"));
    assert_eq!(root_pub[0], 0x04);
    let root_key: [u8; PRIVATE_KEY_LEN] = read_array(&material_dir.join("root.key"));
    let root = PublicKey::from_bytes(&root_pub).unwrap();
    assert_eq!(
        SigningKey::from_bytes(&root_key).unwrap().public_key(),
        root
    );
    let server_cert = std::fs::read(material_dir.join("server.cert")).unwrap();
    let cert =
        protected_license::cert::verify_server_certificate(&server_cert, &root, now).unwrap();
    assert_eq!(cert.not_after, now + 10 * 86_400);
    assert!(cert.not_before < now, "backdated for device clock skew");

    // What serve loads: consistent.
    let loaded = ProtectedMaterial::load(&material_dir, now, 86_400).unwrap();
    assert_eq!(loaded.root_public_key(), &root);
    assert_eq!(loaded.license_server().certificate(), &server_cert[..]);

    // Out-of-range validity is refused by the library and by the command line.
    assert!(matches!(
        material::init(&dir.join("zero"), 0, now),
        Err(MaterialError::Validity(0))
    ));
    assert_ne!(
        cli(&[
            "protected-init",
            "--dir",
            path_str(&dir.join("zero")),
            "--validity-days",
            "0"
        ]),
        ExitCode::SUCCESS
    );
    assert!(!dir.join("zero").exists());
}

#[test]
fn protected_init_refuses_to_overwrite() {
    let dir = TempDir::new("ls-prot-overwrite");
    let m = dir.join("m");
    assert_eq!(
        cli(&["protected-init", "--dir", path_str(&m)]),
        ExitCode::SUCCESS
    );
    let read_all = || -> Vec<Vec<u8>> {
        material::FILES
            .iter()
            .map(|f| std::fs::read(m.join(f)).unwrap())
            .collect()
    };
    let before = read_all();
    assert_eq!(
        cli(&["protected-init", "--dir", path_str(&m)]),
        ExitCode::FAILURE
    );
    let err = material::init(&m, 10, unix_now()).unwrap_err();
    assert!(matches!(err, MaterialError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(before, read_all(), "nothing was replaced");

    // One file of the set is enough to refuse, and nothing else is written.
    let partial = dir.join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("server.cert"), b"mine").unwrap();
    let err = material::init(&partial, 10, unix_now()).unwrap_err();
    assert!(err.to_string().contains("server.cert"), "{err}");
    assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 1);
}

#[test]
fn serve_refuses_incomplete_or_inconsistent_material() {
    let dir = TempDir::new("ls-prot-load");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let now = unix_now();
    material::init(&a, 10, now).unwrap();
    material::init(&b, 10, now).unwrap();
    let load = |d: &Path| ProtectedMaterial::load(d, now, 86_400).map(|_| ());

    // `a` with `file` taken from `b`, as `dir/name`.
    let mixed = |name: &str, file: &str| {
        let mixed = dir.join(name);
        cdm_testkit::temp::copy_dir(&a, &mixed);
        std::fs::copy(b.join(file), mixed.join(file)).unwrap();
        mixed
    };
    // Another root's server certificate: does not chain to this root.pub.
    let err = load(&mixed("mixed", "server.cert")).unwrap_err();
    assert!(err.to_string().contains("server.cert"), "{err}");

    // The right root, but the certificate of other keys: a mismatch.
    for (name, file) in [
        ("swapped", "server-signing.key"),
        ("swapped-kem", "server-encryption.key"),
        ("swapped-prov", "provisioning.key"),
    ] {
        let err = load(&mixed(name, file)).unwrap_err();
        assert!(
            matches!(err, MaterialError::Mismatch { .. }),
            "{file}: {err}"
        );
    }

    // Wrong lengths, a missing file.
    let short = dir.join("short");
    cdm_testkit::temp::copy_dir(&a, &short);
    std::fs::write(short.join("provisioning.key"), [1u8; 31]).unwrap();
    assert!(matches!(
        load(&short).unwrap_err(),
        MaterialError::Length {
            expected: 32,
            found: 31,
            ..
        }
    ));
    std::fs::write(short.join("provisioning.key"), [1u8; 33]).unwrap();
    assert!(matches!(
        load(&short).unwrap_err(),
        MaterialError::Length { .. }
    ));
    std::fs::copy(a.join("provisioning.key"), short.join("provisioning.key")).unwrap();
    std::fs::write(short.join("root.pub"), [4u8; 65]).unwrap();
    assert!(matches!(
        load(&short).unwrap_err(),
        MaterialError::Invalid { .. }
    ));
    std::fs::remove_file(short.join("root.pub")).unwrap();
    assert!(matches!(
        load(&short).unwrap_err(),
        MaterialError::Io { .. }
    ));

    // Expired material (checked at a time past the certificates).
    assert!(ProtectedMaterial::load(&a, now + 11 * 86_400, 86_400).is_err());

    // root.key is not needed.
    std::fs::remove_file(a.join("root.key")).unwrap();
    load(&a).unwrap();

    // The command line fails before listening.
    let swapped = dir.join("swapped-prov");
    let db = dir.join("keys.db");
    assert_eq!(
        cli(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--db",
            path_str(&db),
            "--protected",
            path_str(&swapped)
        ]),
        ExitCode::FAILURE
    );
}

#[test]
fn encrypted_license_carries_exactly_the_imported_keys() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-enc");
    let req = c.license_request(&[1, 3], SessionType::Temporary, Some(&cert));
    assert_eq!(req[5], MessageType::EncryptedLicenseRequest as u8);
    let r = f.post("/protected/license", &req);
    r.assert_ok();
    let lic = c.accept(&r.body);

    let got: Vec<_> = lic
        .keys
        .iter()
        .map(|k| (k.key_id, *k.key.expose(), k.robustness, k.min_hdcp))
        .collect();
    assert_eq!(
        got,
        [
            (
                [1; 16],
                [0xa1; 16],
                Robustness::HW_SECURE_DECODE,
                Hdcp::V2_2
            ),
            (
                [3; 16],
                [0xa3; 16],
                Robustness::SW_SECURE_CRYPTO,
                Hdcp::V1_4
            ),
        ],
        "each key with its own requirement, although the client asked for SW and has no HDCP"
    );
    assert!(lic.entitlement_keys.is_empty());

    // The session record: this device, these keys, this policy.
    let record = f.session(&lic.session_id);
    assert_eq!(record.device_key, c.device.keys().signing_public_key());
    assert_eq!(record.key_ids, [[1; 16], [3; 16]]);
    assert_eq!(record.policy, lic.policy);
    assert!(!record.persistent);
    assert_eq!(record.released_at, None);
    assert!(record.issued_at.abs_diff(unix_now()) < 60);

    // Another license: another random session ID.
    let again = c.license(&f, &[1], SessionType::Temporary, Some(&cert));
    assert_ne!(again.session_id, lic.session_id);
    assert_eq!(f.sessions(), 2);
    f.server.stop();
}

#[test]
fn clear_license_request_is_accepted_too() {
    let f = Fixture::new("ls-prot-clear", &all_keys());
    let mut c = f.device();
    let req = c.license_request(&[2], SessionType::Temporary, None);
    assert_eq!(req[5], MessageType::LicenseRequest as u8);
    let r = f.post("/protected/license", &req);
    r.assert_ok();
    let lic = c.accept(&r.body);
    assert_eq!(lic.keys.len(), 1);
    assert_eq!(lic.keys[0].key_id, [2; 16]);
    assert_eq!(lic.keys[0].key.expose(), &[0xa2; 16]);
    assert_eq!(lic.keys[0].robustness, Robustness::SW_SECURE_CRYPTO);
    assert_eq!(lic.keys[0].min_hdcp, Hdcp::NONE);
    assert_eq!(lic.policy, policy(0, 600, 120, false));
    f.server.stop();
}

#[test]
fn policy_is_the_strictest_combination_of_the_granted_keys() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-policy");
    // Key 1 (license 3600, renewal 300, persist) with key 2 (playback 600, renewal 120).
    let lic = c.license(&f, &[1, 2], SessionType::Temporary, Some(&cert));
    assert_eq!(lic.policy, policy(3600, 600, 120, false));
    // Key 1 with key 3 (no limits, persist): key 1's limits, persistable.
    let lic = c.license(&f, &[3, 1], SessionType::PersistentLicense, Some(&cert));
    assert_eq!(lic.policy, policy(3600, 0, 300, true));
    assert_eq!(
        lic.keys.iter().map(|k| k.key_id).collect::<Vec<_>>(),
        [[3; 16], [1; 16]],
        "in request order"
    );
    assert!(f.session(&lic.session_id).persistent);
    // A key ID asked for twice is granted once.
    let lic = c.license(&f, &[3, 3], SessionType::Temporary, None);
    assert_eq!(lic.keys.len(), 1);
    f.server.stop();
}

#[test]
fn persistent_license_refused_unless_every_key_allows_it() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-persist");
    for kids in [&[2][..], &[1, 2]] {
        let req = c.license_request(kids, SessionType::PersistentLicense, Some(&cert));
        f.post("/protected/license", &req)
            .assert_error(StatusCode::FORBIDDEN, "persistent_license_not_allowed");
    }
    assert_eq!(f.sessions(), 0);
    // Temporary: fine.
    c.license(&f, &[1, 2], SessionType::Temporary, Some(&cert));
    assert_eq!(f.sessions(), 1);
    f.server.stop();
}

#[test]
fn unknown_key_id_refuses_the_whole_license() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-unknown");
    let req = c.license_request(&[1, 0x99], SessionType::Temporary, Some(&cert));
    let r = f.post("/protected/license", &req);
    r.assert_error(StatusCode::NOT_FOUND, "unknown_key_ids");
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("1 of the 2"), "{message}");
    assert!(!message.contains(&hex16(0x99)), "key IDs are not echoed");
    assert_eq!(f.sessions(), 0);

    // A Clear Key key of the same database is not a protected key, and a protected key is not
    // served by the Clear Key route.
    let db = f.dir.join("keys.db");
    assert_eq!(
        cli(&["import", "--db", path_str(&db), &kid_key(0x55, 0xb5)]),
        ExitCode::SUCCESS
    );
    let req = c.license_request(&[0x55], SessionType::Temporary, Some(&cert));
    f.post("/protected/license", &req)
        .assert_error(StatusCode::NOT_FOUND, "unknown_key_ids");
    http_license(f.server.addr, &[&[1u8; 16]], "temporary")
        .assert_error(StatusCode::NOT_FOUND, "unknown_key_ids");
    f.server.stop();
}

#[test]
fn tampered_requests_are_rejected_and_nothing_is_stored() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-tamper");

    let clear = c.license_request(&[1], SessionType::Temporary, None);
    let positions = [
        0,
        4,
        5,
        6,
        20,
        300,
        clear.len() / 2,
        clear.len() - 80,
        clear.len() - 1,
    ];
    for at in positions {
        let r = f.post("/protected/license", &flipped(&clear, at, 0x01));
        assert!(
            r.status.is_client_error(),
            "byte {at}: {} {}",
            r.status,
            text(&r.body)
        );
    }
    // A flipped bit in the signed part, where it still parses: the signature fails.
    let bad = flipped(&clear, clear.len() - 1, 0x80);
    f.post("/protected/license", &bad)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");

    let encrypted = c.license_request(&[1], SessionType::Temporary, Some(&cert));
    for at in [10, 50, 110, encrypted.len() / 2, encrypted.len() - 1] {
        let r = f.post("/protected/license", &flipped(&encrypted, at, 0x01));
        assert!(r.status.is_client_error(), "byte {at}: {}", r.status);
    }
    // The server key ID (bytes 6..38): answered with the code that tells the client to fetch
    // the certificate again.
    f.post("/protected/license", &flipped(&encrypted, 10, 0x01))
        .assert_error(StatusCode::BAD_REQUEST, "wrong_server_key");
    // The ciphertext: the HPKE tag fails.
    let bad = flipped(&encrypted, encrypted.len() - 20, 0x01);
    f.post("/protected/license", &bad)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");
    // Garbage, and an empty body.
    f.post("/protected/license", b"TCPL nonsense")
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    f.post("/protected/license", b"")
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");

    assert_eq!(f.sessions(), 0, "no session was recorded for any of them");

    // The untampered requests still work (the server has no state from the failures).
    assert_eq!(f.post("/protected/license", &clear).status, StatusCode::OK);
    assert_eq!(
        f.post("/protected/license", &encrypted).status,
        StatusCode::OK
    );
    assert_eq!(f.sessions(), 2);

    // A tampered provisioning request is refused as well.
    let other = Device::new(
        DeviceKeys::generate(&mut OsRng).unwrap(),
        f.root,
        Robustness::ALL,
        Hdcp::V2_2,
    );
    let prov = other
        .provisioning_request(&mut OsRng, unix_now(), &mut Outstanding::new())
        .unwrap();
    let bad = flipped(&prov, prov.len() - 1, 0x80);
    f.post("/protected/provision", &bad)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");
    f.server.stop();
}

#[test]
fn request_encrypted_to_another_server_is_refused() {
    let f = Fixture::new("ls-prot-other-server", &all_keys());
    let other = Fixture::new("ls-prot-other-server-2", &[]);
    let mut c = f.device();
    // The other server's certificate does not verify under this device's root...
    let r = http(other.server.addr, "GET", "/protected/certificate", &[], b"");
    assert!(c
        .device
        .verify_server_certificate(&r.body, unix_now())
        .is_err());
    // ...so build a device of the other root to get a certificate object, and encrypt to it.
    let foreign = other.device();
    let foreign_cert = other.certificate(&foreign);
    let req = c.license_request(&[1], SessionType::Temporary, Some(&foreign_cert));
    f.post("/protected/license", &req)
        .assert_error(StatusCode::BAD_REQUEST, "wrong_server_key");
    // And a device provisioned by the other root is not trusted here.
    let mut foreign = foreign;
    let req = foreign.license_request(&[1], SessionType::Temporary, None);
    f.post("/protected/license", &req)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");
    assert_eq!(f.sessions(), 0);
    f.server.stop();
    other.server.stop();
}

#[test]
fn renewal_is_accepted_by_the_device() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-renewal");
    let lic = c.license(&f, &[1, 2], SessionType::Temporary, Some(&cert));
    let req = c.renewal_request(&lic.session_id);
    let r = f.post_ok("/protected/renewal", &req);
    let policy = c.accept_renewal(&lic.session_id, &r.body).unwrap();
    assert_eq!(policy, lic.policy);
    assert!(f.session(&lic.session_id).renewed_at.is_some());

    // A second renewal, a fresh request: renewed again. Replaying the first request's
    // answer is the device's to refuse: its nonce is no longer outstanding.
    let r = f.post("/protected/renewal", &c.renewal_request(&lic.session_id));
    r.assert_ok();
    c.accept_renewal(&lic.session_id, &r.body).unwrap();
    let replay = f.post("/protected/renewal", &req);
    assert_eq!(replay.status, StatusCode::OK, "the server keeps no nonces");
    assert!(c.accept_renewal(&lic.session_id, &replay.body).is_err());
    f.server.stop();
}

#[test]
fn renewal_refused_when_released_unknown_or_not_renewable() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-renewal-refused");

    // Key 3 has no renewal interval.
    let lic = c.license(&f, &[3], SessionType::Temporary, Some(&cert));
    assert_eq!(lic.policy.renewal_interval, 0);
    let req = c.renewal_request(&lic.session_id);
    f.post("/protected/renewal", &req)
        .assert_error(StatusCode::FORBIDDEN, "renewal_not_allowed");

    // Released.
    let lic = c.license(&f, &[1], SessionType::Temporary, Some(&cert));
    let r = f.post("/protected/release", &c.release_request(&lic.session_id));
    r.assert_ok();
    let req = c.renewal_request(&lic.session_id);
    f.post("/protected/renewal", &req)
        .assert_error(StatusCode::GONE, "session_released");

    // Never issued.
    let req = c.renewal_request(&[0x42; 16]);
    f.post("/protected/renewal", &req)
        .assert_error(StatusCode::NOT_FOUND, "unknown_session");
    let req = c.release_request(&[0x42; 16]);
    f.post("/protected/release", &req)
        .assert_error(StatusCode::NOT_FOUND, "unknown_session");

    // A license request on the renewal route, a renewal on the release route.
    let req = c.license_request(&[1], SessionType::Temporary, None);
    f.post("/protected/renewal", &req)
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let lic = c.license(&f, &[1], SessionType::Temporary, None);
    let req = c.renewal_request(&lic.session_id);
    f.post("/protected/release", &req)
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(f.session(&lic.session_id).released_at, None);
    f.server.stop();
}

#[test]
fn renewal_and_release_by_another_device_are_refused() {
    let f = Fixture::new("ls-prot-other-device", &all_keys());
    let mut owner = f.device();
    let mut thief = f.device();
    let lic = owner.license(&f, &[1], SessionType::Temporary, None);

    // The other device's own request for the session: its device key ID is not the session's.
    let req = thief.renewal_request(&lic.session_id);
    f.post("/protected/renewal", &req)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");
    let req = thief.release_request(&lic.session_id);
    f.post("/protected/release", &req)
        .assert_error(StatusCode::FORBIDDEN, "verification_failed");

    // Naming the owner's device key ID but signed by the other device's key: the signature
    // fails.
    let scalars = thief.device.keys().to_bytes();
    let thief_key = SigningKey::from_bytes(scalars[..32].try_into().unwrap()).unwrap();
    for ty in [MessageType::RenewalRequest, MessageType::ReleaseRequest] {
        let forged = SessionRequest {
            session_id: lic.session_id,
            nonce: [7; 16],
            timestamp: unix_now(),
            device_key_id: owner.device.key_id(),
        }
        .encode(ty, &thief_key)
        .unwrap();
        let path = match ty {
            MessageType::RenewalRequest => "/protected/renewal",
            _ => "/protected/release",
        };
        f.post(path, &forged)
            .assert_error(StatusCode::FORBIDDEN, "verification_failed");
    }
    assert_eq!(
        f.session(&lic.session_id).released_at,
        None,
        "not released by the forgery"
    );

    // The owner still renews.
    let req = owner.renewal_request(&lic.session_id);
    let r = f.post("/protected/renewal", &req);
    owner.accept_renewal(&lic.session_id, &r.body).unwrap();
    f.server.stop();
}

#[test]
fn release_is_acknowledged_and_a_repeated_release_too() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-release");
    let lic = c.license(&f, &[1, 3], SessionType::PersistentLicense, Some(&cert));

    let r = f.post("/protected/release", &c.release_request(&lic.session_id));
    r.assert_ok();
    c.accept_release_ack(&lic.session_id, &r.body).unwrap();
    let first = f.session(&lic.session_id).released_at.unwrap();

    // The device crashed before storing the ack and retries with a new request.
    let r = f.post("/protected/release", &c.release_request(&lic.session_id));
    r.assert_ok();
    c.accept_release_ack(&lic.session_id, &r.body).unwrap();
    assert_eq!(
        f.session(&lic.session_id).released_at,
        Some(first),
        "the first release time is kept"
    );
    // An ack for another session is not accepted by the device for this one.
    let other = c.license(&f, &[1], SessionType::Temporary, None);
    let r = f.post("/protected/release", &c.release_request(&other.session_id));
    assert!(c.accept_release_ack(&lic.session_id, &r.body).is_err());
    f.server.stop();
}

#[test]
fn entitlement_key_unwraps_the_rotation_record_of_protected_rotation() {
    let (f, mut c, cert) = Fixture::with_client("ls-prot-rotation");
    let lic = c.license(&f, &[0x0e, 1], SessionType::Temporary, Some(&cert));
    assert_eq!(lic.keys.len(), 1, "the content key");
    assert_eq!(lic.entitlement_keys.len(), 1);
    assert_eq!(lic.entitlement_keys[0].0, [0x0e; 16]);
    // Entitlement 60 s renewal combined with key 1's 300 s.
    assert_eq!(lic.policy.renewal_interval, 60);

    let record_path = f.dir.join("rotation.bin");
    let pssh_path = f.dir.join("rotation.pssh");
    assert_eq!(
        cli(&[
            "protected-rotation",
            "--entitlement",
            &kid_key(0x0e, 0xee),
            "--key",
            &kid_key(0x31, 0xc1),
            "--key",
            &kid_key(0x32, 0xc2),
            "--out",
            path_str(&record_path),
            "--pssh-out",
            path_str(&pssh_path),
        ]),
        ExitCode::SUCCESS
    );
    let record = std::fs::read(&record_path).unwrap();
    let keys = unwrap_rotation_record(&lic.entitlement_keys, &record).unwrap();
    let got: Vec<_> = keys.iter().map(|(kid, k)| (*kid, *k.expose())).collect();
    assert_eq!(got, [([0x31; 16], [0xc1; 16]), ([0x32; 16], [0xc2; 16])]);

    // The pssh box: version 0 of the protected system ID around the same record, well formed
    // by cdm-core's own pssh parser (next to a common-system box that gives it key IDs).
    let pssh = std::fs::read(&pssh_path).unwrap();
    assert_eq!(
        &pssh[..4],
        &u32::try_from(pssh.len()).unwrap().to_be_bytes()
    );
    assert_eq!(&pssh[4..12], b"pssh\0\0\0\0");
    assert_eq!(&pssh[12..28], &protected_license::SYSTEM_ID);
    assert_eq!(
        &pssh[28..32],
        &u32::try_from(record.len()).unwrap().to_be_bytes()
    );
    assert_eq!(&pssh[32..], &record[..]);
    let mut init_data =
        cdm_core::init_data::build_common_pssh_v1(&[cdm_core::KeyId::from([0x31; 16])]).unwrap();
    init_data.extend_from_slice(&pssh);
    assert_eq!(
        cdm_core::init_data::parse_cenc(&init_data).unwrap(),
        [cdm_core::KeyId::from([0x31; 16])]
    );

    // Under another entitlement key the record does not open.
    assert!(unwrap_rotation_record(
        &[(
            [0x0e; 16],
            protected_license::crypto::EntitlementKey::new([0xef; 16])
        )],
        &record
    )
    .is_err());

    // Usage errors: status 2, no file written, no key echoed.
    let none = f.dir.join("none.bin");
    for args in [
        vec![
            "--entitlement",
            "00",
            "--key",
            "00:00",
            "--out",
            path_str(&none),
        ],
        vec![
            "--entitlement",
            &kid_key(0x0e, 0xee),
            "--key",
            &kid_key(0x31, 0xc1),
        ],
    ] {
        let mut all = vec!["protected-rotation"];
        all.extend(args);
        assert_eq!(cli(&all), ExitCode::from(2));
    }
    assert!(!none.exists());
    f.server.stop();
}

#[test]
fn metrics_count_protected_exchanges() {
    let f = Fixture::new("ls-prot-metrics", &all_keys());
    let scrape = || http(f.server.addr, "GET", "/metrics", &[], b"").metrics();
    let before = scrape();
    assert_eq!(before["protected_provisions_total"], 0);

    let mut a = f.device();
    let mut b = f.device();
    let cert = f.certificate(&a);
    let l1 = a.license(&f, &[1], SessionType::Temporary, Some(&cert));
    let l2 = b.license(&f, &[1, 3], SessionType::PersistentLicense, None);
    f.post("/protected/renewal", &a.renewal_request(&l1.session_id));
    f.post("/protected/release", &b.release_request(&l2.session_id));
    f.post("/protected/release", &b.release_request(&l2.session_id));
    // Failures: counted as errors only.
    f.post(
        "/protected/license",
        &a.license_request(&[0x99], SessionType::Temporary, None),
    );
    f.post("/protected/renewal", &b.renewal_request(&l2.session_id));
    http(f.server.addr, "POST", "/protected/license", &[], b"x");

    let after = scrape();
    let delta = |s: &str| after[s] - before[s];
    assert_eq!(delta("protected_provisions_total"), 2);
    assert_eq!(delta("protected_licenses_total{type=\"temporary\"}"), 1);
    assert_eq!(
        delta("protected_licenses_total{type=\"persistent-license\"}"),
        1
    );
    assert_eq!(delta("protected_renewals_total"), 1);
    assert_eq!(delta("protected_releases_total"), 2);
    assert_eq!(delta("license_errors_total{reason=\"unknown_key_ids\"}"), 1);
    assert_eq!(
        delta("license_errors_total{reason=\"session_released\"}"),
        1
    );
    assert_eq!(
        delta("license_errors_total{reason=\"unsupported_media_type\"}"),
        1
    );
    // The Clear Key series are untouched.
    assert_eq!(delta("license_requests_total{type=\"temporary\"}"), 0);
    assert_eq!(f.metrics.snapshot().protected_releases, 2);
    f.server.stop();
}

#[test]
fn protected_routes_need_protected_and_octet_stream() {
    // Without --protected: 404 like any unknown route.
    let (app, _) = app();
    let server = TcpServer::start(app);
    for (method, path) in [
        ("POST", "/protected/provision"),
        ("GET", "/protected/certificate"),
        ("POST", "/protected/license"),
        ("POST", "/protected/renewal"),
        ("POST", "/protected/release"),
    ] {
        http(server.addr, method, path, &[OCTET], b"x")
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    server.stop();

    let f = Fixture::new("ls-prot-routes", &all_keys());
    let c = f.device();
    let req = c
        .device
        .provisioning_request(&mut OsRng, unix_now(), &mut Outstanding::new())
        .unwrap();
    for ct in [None, Some("application/json")] {
        let headers: Vec<(&str, &str)> = ct.map(|t| ("Content-Type", t)).into_iter().collect();
        http(
            f.server.addr,
            "POST",
            "/protected/provision",
            &headers,
            &req,
        )
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    // Parameters and case are allowed.
    let r = http(
        f.server.addr,
        "POST",
        "/protected/provision",
        &[("Content-Type", "Application/Octet-Stream; x=y")],
        &req,
    );
    r.assert_ok();
    http(f.server.addr, "GET", "/protected/license", &[], b"")
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    http(
        f.server.addr,
        "POST",
        "/protected/certificate",
        &[OCTET],
        b"",
    )
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let big = vec![0u8; license_server::MAX_BODY_LEN + 1];
    http(f.server.addr, "POST", "/protected/license", &[OCTET], &big)
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // The material directory is where the fixture put it.
    assert!(f.material.join("root.pub").exists());
    f.server.stop();
}

#[test]
fn import_of_protected_keys_from_arguments_and_files() {
    let dir = TempDir::new("ls-prot-import");
    let db = dir.join("keys.db");
    let db_s = path_str(&db);
    let kid = hex16(0x61);
    let key = hex16(0x71);

    // Errors: status 2, nothing written, the key never echoed.
    for spec in [
        format!("{kid}:{key}:robustness=max"),
        format!("{kid}:{key}:hdcp=3.0"),
        format!("{kid}:{key}:renewal=-1"),
        format!("{kid}:{key}:persist:persist"),
        format!("{kid}:{key}:forever"),
        format!("{kid}:{key}:{key}"),
        format!("{kid}:{}", &key[..30]),
        format!("{}:{key}", &kid[..30]),
        kid.clone(),
    ] {
        assert_eq!(
            cli(&["import", "--db", db_s, "--protected-key", &spec]),
            ExitCode::from(2),
            "{spec}"
        );
    }
    let store = SqliteStore::open(&db).unwrap();
    assert!(store.lookup_protected(&[[0x61; 16]]).unwrap().is_empty());
    drop(store);

    // A file mixing Clear Key and protected lines; a bad protected line names its number.
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        format!(
            "# demo\n{} {}\nprotected {kid} {key} robustness=hw hdcp=2.3 license=60 # movie\n\
             protected {} {} entitlement persist\n",
            hex16(0x62),
            hex16(0x72),
            hex16(0x63),
            hex16(0x73)
        ),
    )
    .unwrap();
    assert_eq!(
        cli(&["import", "--db", db_s, "--file", path_str(&file)]),
        ExitCode::SUCCESS
    );
    let store = SqliteStore::open(&db).unwrap();
    let found = store
        .lookup_protected(&[[0x61; 16], [0x62; 16], [0x63; 16]])
        .unwrap();
    assert_eq!(found.len(), 2, "the Clear Key line is not a protected key");
    assert_eq!(found[0].key.expose(), &[0x71; 16]);
    assert_eq!(found[0].robustness, Robustness::HW_SECURE_DECODE);
    assert_eq!(found[0].min_hdcp, Hdcp::V2_3);
    assert_eq!(found[0].policy.license_duration, 60);
    assert!(!found[0].policy.can_persist);
    assert_eq!(
        found[1].kind,
        protected_license::messages::KeyKind::Entitlement
    );
    assert!(found[1].policy.can_persist);
    assert_eq!(
        license_server::KeyStore::lookup(&store, &[cdm_core::KeyId::from([0x62; 16])])
            .unwrap()
            .len(),
        1
    );

    std::fs::write(
        &file,
        format!("protected {kid} {key}\nprotected {kid} {key} hdcp=9.9\n"),
    )
    .unwrap();
    assert_eq!(
        cli(&["import", "--db", db_s, "--file", path_str(&file)]),
        ExitCode::from(2)
    );
    std::fs::write(&file, format!("protected {kid}\n")).unwrap();
    assert_eq!(
        cli(&["import", "--db", db_s, "--file", path_str(&file)]),
        ExitCode::from(2)
    );

    // A later import replaces the policy; --persistent applies to protected keys too.
    assert_eq!(
        cli(&[
            "import",
            "--db",
            db_s,
            "--persistent",
            "--protected-key",
            &format!("{kid}:{key}:renewal=30")
        ]),
        ExitCode::SUCCESS
    );
    let k = &store.lookup_protected(&[[0x61; 16]]).unwrap()[0];
    assert_eq!(k.robustness, Robustness::SW_SECURE_CRYPTO);
    assert_eq!(k.policy, policy(0, 0, 30, true));
}
