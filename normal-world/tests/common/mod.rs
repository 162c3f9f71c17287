//! Shared fixtures of the end-to-end tests: transports and keys; protected samples and licenses
//! come from the test kit's independent encryptor and builder.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

use cdm_core::key_id::KeyId;
use normal_world::transport::{HostProcess, SocketTransport};
use normal_world::{
    request_media_key_system_access, request_media_key_system_access_with, DecryptedSample,
    EmeError, EncryptionScheme, KeySystemOptions, MediaKeySession, MediaKeySessionEvent,
    MediaKeySystemAccess, MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys,
    MediaKeysRequirement, OutputWish, SampleDescription, SessionType,
};

/// Which transport a test runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    InProcess,
    Socket,
}

/// [`config`] asking for persistent state and `persistent-license` sessions.
pub fn persistent_config() -> MediaKeySystemConfiguration {
    MediaKeySystemConfiguration {
        persistent_state: MediaKeysRequirement::Required,
        session_types: Some(vec!["temporary".into(), "persistent-license".into()]),
        ..config()
    }
}

/// A `MediaKeys` over `kind` whose secure world keeps persistent licenses in `dir`: the
/// in-process world on `dir`, the host binary with `--storage dir`, or (without the binary)
/// the host's server loop on a thread, built the way the binary builds it.
pub fn media_keys_with_storage(
    kind: Kind,
    dir: &std::path::Path,
) -> (MediaKeys, Option<HostProcess>) {
    media_keys_with_storage_env(kind, dir, &[])
}

/// [`media_keys_with_storage`], with environment variables for a spawned host binary.
pub fn media_keys_with_storage_env(
    kind: Kind,
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> (MediaKeys, Option<HostProcess>) {
    let options = KeySystemOptions {
        storage_dir: Some(dir.to_path_buf()),
        ..KeySystemOptions::default()
    };
    let access =
        request_media_key_system_access_with("org.w3.clearkey", &[persistent_config()], &options)
            .unwrap();
    let owned = dir.to_path_buf();
    create_media_keys(
        &access,
        kind,
        |bin| {
            let mut cmd = host_command(bin);
            cmd.arg("--storage").arg(dir);
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd
        },
        || threaded_host(move || secure_world_host::host_world_in(Some(&owned))),
    )
}

/// `access`'s `MediaKeys` over `kind`, with the host process when the socket transport runs
/// one: in process, the host binary started by the command `spawn` makes of its path, or
/// (without the binary) the transport `threaded` answers.
fn create_media_keys(
    access: &MediaKeySystemAccess,
    kind: Kind,
    spawn: impl FnOnce(&str) -> std::process::Command,
    threaded: impl FnOnce() -> SocketTransport,
) -> (MediaKeys, Option<HostProcess>) {
    let (t, host) = match (kind, host_binary()) {
        (Kind::InProcess, _) => return (access.create_media_keys().unwrap(), None),
        (Kind::Socket, Some(bin)) => {
            let t = SocketTransport::spawn_command(spawn(bin)).unwrap();
            let host = t.host();
            (t, host)
        }
        (Kind::Socket, None) => (threaded(), None),
    };
    let mk = access.create_media_keys_with_transport(Box::new(t));
    (mk.unwrap(), host)
}

/// The command that starts the host binary `bin`: the binary itself, or, when
/// `TEE_CDM_HOST_RUNNER` is set (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu` when the tests
/// themselves run under qemu-user, which cannot `exec` a foreign binary), that runner with the
/// binary as its argument.
pub fn host_command(bin: &str) -> std::process::Command {
    match std::env::var("TEE_CDM_HOST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = std::process::Command::new(parts.next().unwrap_or_default());
            cmd.args(parts).arg(bin);
            cmd
        }
        _ => std::process::Command::new(bin),
    }
}

/// A socket transport to the host's server loop, serving one connection on a thread of this
/// process with the secure world `make` builds.
pub fn threaded_host<E, Er, F>(make: F) -> SocketTransport
where
    E: secure_world_host::Entry,
    Er: std::fmt::Display,
    F: FnMut() -> Result<E, Er> + Send + 'static,
{
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tee-cdm-test-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listening = path.clone();
    std::thread::spawn(move || secure_world_host::serve_unix_socket(&listening, true, make));
    loop {
        match SocketTransport::connect(&path) {
            Ok(t) => break t,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
}

/// Key IDs and keys of the tests, with their base64url (computed independently, Python's
/// `base64.urlsafe_b64encode` without padding).
pub const KID1: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
pub const KID1_B64: &str = "AAECAwQFBgcICQoLDA0ODw";
pub const KID2: [u8; 16] = [
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
];
pub const KID2_B64: &str = "EBESExQVFhcYGRobHB0eHw";
pub const KEY1: [u8; 16] = *b"sixteen byte key";
pub const KEY2: [u8; 16] = [0xab; 16];

pub fn config() -> MediaKeySystemConfiguration {
    MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into(), "keyids".into(), "webm".into()],
        video_capabilities: vec![MediaKeySystemMediaCapability::new(
            "video/mp4; codecs=\"avc1.64001f\"",
        )],
        ..Default::default()
    }
}

/// The `secure-world-host` binary, when these fixtures are compiled into that crate's tests
/// (where cargo builds it); `None` in normal-world's own tests.
pub fn host_binary() -> Option<&'static str> {
    option_env!("CARGO_BIN_EXE_secure-world-host")
}

/// A `MediaKeys` over `kind`, with the host process when the socket transport runs one.
/// Without the host binary, the socket transport talks to the host's server loop
/// (`secure_world_host::serve_unix_socket`) on a thread of this process.
pub fn media_keys(kind: Kind) -> (MediaKeys, Option<HostProcess>) {
    let access = request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    create_media_keys(
        &access,
        kind,
        |bin| std::process::Command::new(bin),
        || threaded_host(secure_world_host::host_world),
    )
}

/// `keyids` init data (EME §9.1.3) for `kids`: `{"kids":[base64url, ...]}`.
pub fn keyids(kids: &[&[u8; 16]]) -> Vec<u8> {
    let list: Vec<String> = kids
        .iter()
        .map(|k| format!("\"{}\"", cdm_testkit::clearkey::b64url(&k[..])))
        .collect();
    format!("{{\"kids\":[{}]}}", list.join(",")).into_bytes()
}

pub fn kid(bytes: &[u8]) -> KeyId {
    KeyId::new(bytes).unwrap()
}

/// A JWK Set license of a temporary session for `keys` (the test kit's builder).
pub fn license(keys: &[(&[u8; 16], &[u8; 16])]) -> Vec<u8> {
    let refs: Vec<(&[u8], &[u8; 16])> = keys.iter().map(|(k, v)| (&k[..], *v)).collect();
    cdm_testkit::clearkey::license(&refs, "temporary")
}

pub use cdm_testkit::cenc::{encrypt_cbcs, encrypt_cenc, plaintext, pssh_v1};

/// Generates a request and answers it with a license for `keys`; drains the events.
pub fn load_keys(session: &MediaKeySession, keys: &[(&[u8; 16], &[u8; 16])]) {
    let kids: Vec<&[u8; 16]> = keys.iter().map(|(k, _)| *k).collect();
    session.generate_request("cenc", &pssh_v1(&kids)).unwrap();
    session.update(&license(keys)).unwrap();
    session.drain_events();
}

/// A whole-sample `cenc` description (no subsample map) of `key_id` with the 8-byte `iv`.
pub fn whole_cenc<'a>(
    key_id: &'a [u8],
    iv: &'a [u8; 8],
    output: OutputWish,
) -> SampleDescription<'a> {
    SampleDescription {
        key_id,
        scheme: EncryptionScheme::Cenc,
        iv,
        pattern: (0, 0),
        subsamples: &[],
        output,
    }
}

/// Decrypts `len` test-kit bytes that `encrypt_cenc` protected under `key` with `iv` (whole
/// sample) through `mk` for `kid`: whether they came back clear. An output other than in
/// place fails the test.
pub fn decrypts_cenc(
    mk: &MediaKeys,
    kid: &[u8],
    key: &[u8; 16],
    iv: [u8; 8],
    len: usize,
    output: OutputWish,
) -> Result<bool, EmeError> {
    let clear = plaintext(len);
    let mut sample = clear.clone();
    encrypt_cenc(key, &iv, &mut sample, &[]);
    match mk.decrypt(&mut sample, &whole_cenc(kid, &iv, output))? {
        DecryptedSample::InPlace => Ok(sample == clear),
        other => panic!("unexpected output {other:?}"),
    }
}

/// Whether `events` contains a `keystatuseschange`.
pub fn has_key_change(events: &[MediaKeySessionEvent]) -> bool {
    events.contains(&MediaKeySessionEvent::KeyStatusesChange)
}

/// Declares a test for each transport: `NAME_in_process` and `socket_NAME` (CI's QEMU job
/// skips `socket_` tests).
#[macro_export]
macro_rules! both_transports {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn in_process() {
                $body($crate::common::Kind::InProcess);
            }
            #[test]
            fn socket_transport() {
                $body($crate::common::Kind::Socket);
            }
        }
    };
}

/// The crates whose sources the player is built from (to tell a stale player binary).
const PLAYER_SOURCES: &[&str] = &[
    "normal-world/src",
    "normal-world/examples/protected_player.rs",
    "normal-world/examples/common",
    "normal-world/Cargo.toml",
    "cdm-core/src",
    "cdm-shm/src",
    "hal/src",
    "secure-world/src",
    "secure-world-host/src",
    "protected-license/src",
];

fn newest_mtime(path: &std::path::Path) -> std::time::SystemTime {
    let Ok(meta) = std::fs::metadata(path) else {
        return std::time::SystemTime::UNIX_EPOCH;
    };
    let mut newest = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            newest = newest.max(newest_mtime(&entry.path()));
        }
    }
    newest
}

/// The `protected_player` example of this build (`target/PROFILE/examples/`, beside this
/// test's `deps/`). `cargo test` builds examples, but not with a `--test` filter: then, or if
/// it is older than a source it is built from, it is built here with `cargo build`.
pub fn player_binary() -> &'static std::path::Path {
    static PLAYER: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PLAYER.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe
            .parent()
            .and_then(std::path::Path::parent)
            .unwrap()
            .to_path_buf();
        let player = profile_dir.join("examples").join("protected_player");
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let sources = PLAYER_SOURCES
            .iter()
            .map(|p| newest_mtime(&workspace.join(p)))
            .max()
            .unwrap();
        let built = std::fs::metadata(&player).and_then(|m| m.modified()).ok();
        if built.is_none_or(|b| b < sources) {
            let mut cmd = std::process::Command::new(env!("CARGO"));
            // What cargo sets for a test run is not the environment of a build: a build
            // script that reads it (ring's reads CARGO_MANIFEST_DIR) would run again and
            // everything above it be rebuilt.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name == "OUT_DIR"
                    || name.starts_with("CARGO_PKG_")
                    || matches!(
                        &*name,
                        "CARGO_MANIFEST_DIR"
                            | "CARGO_MANIFEST_PATH"
                            | "CARGO_MANIFEST_LINKS"
                            | "CARGO_CRATE_NAME"
                            | "CARGO_BIN_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                            | "CARGO_TARGET_TMPDIR"
                            | "CARGO_RUSTC_CURRENT_DIR"
                    )
                {
                    cmd.env_remove(&*name);
                }
            }
            cmd.args([
                "build",
                "-p",
                "normal-world",
                "--example",
                "protected_player",
            ])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"));
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") => {}
                Some("release") => {
                    cmd.arg("--release");
                }
                Some(other) => {
                    cmd.args(["--profile", other]);
                }
                None => {}
            }
            let status = cmd.status().expect("cannot run cargo to build the player");
            assert!(
                status.success(),
                "cargo build --example protected_player failed"
            );
        }
        assert!(
            player.is_file(),
            "{} is missing: build it with `cargo build -p normal-world --example \
             protected_player` (same profile as this test)",
            player.display()
        );
        player
    })
}
