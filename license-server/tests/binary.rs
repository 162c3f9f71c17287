//! The `license-server` executable: `import` (exit codes, messages), `serve` (the
//! `listening on` line, keys surviving a restart on the same database, SIGTERM), and the
//! protected key system through the executable (`protected-init`, `import --protected-key`,
//! `serve --protected`).
//!
//! Every test here starts the binary, so every name starts with `binary_`: the aarch64 runs
//! under qemu-user skip them (`scripts/test-all.sh`), since qemu cannot exec a foreign binary
//! unless `TEE_CDM_HOST_RUNNER` names the emulator to start it with.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use axum::http::StatusCode;
use cdm_testkit::clearkey::b64url;
use cdm_testkit::temp::TempDir;
use common::*;

const KID_A: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_A: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
const KID_B: &str = "101112131415161718191a1b1c1d1e1f";
const KEY_B: &str = "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// The binary, or the runner of `TEE_CDM_HOST_RUNNER` with the binary as its argument.
fn command() -> Command {
    let bin = env!("CARGO_BIN_EXE_license-server");
    match std::env::var("TEE_CDM_HOST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap());
            cmd.args(parts).arg(bin);
            cmd
        }
        _ => Command::new(bin),
    }
}

fn run(args: &[&str]) -> Output {
    command()
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `serve --addr 127.0.0.1:0 --db DB EXTRA...` (any free port), logging warnings only.
fn serve_command(db: &Path, extra: &[&str]) -> Command {
    let mut cmd = command();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn");
    cmd
}

/// [`serve_command`] run to its exit (for options it must refuse).
fn run_serve(db: &Path, extra: &[&str]) -> Output {
    serve_command(db, extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// [`run`], which must succeed.
fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that the output `bytes` contain `needle`, showing them otherwise.
fn assert_contains(bytes: &[u8], needle: &str) {
    assert!(text(bytes).contains(needle), "{}", text(bytes));
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// A running `license-server serve`, killed if the test fails before stopping it.
struct Serving {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Serving {
    fn start(db: &Path) -> Serving {
        Serving::start_with(db, &[])
    }

    fn start_with(db: &Path, extra: &[&str]) -> Serving {
        let mut child = serve_command(db, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!("expected `listening on ADDR`, got {line:?}");
        };
        Serving {
            addr: addr.parse().unwrap(),
            child: Some(child),
        }
    }

    /// SIGTERM, then the exit status (graceful shutdown exits 0).
    fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap()
    }

    fn license(&self, kid_hex: &str) -> Reply {
        http_license(self.addr, &[&hex16(kid_hex)], "temporary")
    }

    /// `POST path` of `body` as `application/octet-stream`.
    fn post_octets(&self, path: &str, body: &[u8]) -> Reply {
        http(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/octet-stream")],
            body,
        )
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn binary_import_accepts_valid_keys_and_rejects_bad_ones_with_status_2() {
    let dir = TempDir::new("ls-bin-import");
    let db = dir.join("keys.db");
    let db = db.to_str().unwrap();

    let ok = run_ok(&[
        "import",
        "--db",
        db,
        &format!("{KID_A}:{KEY_A}"),
        &format!("{KID_B}:{KEY_B}"),
    ]);
    assert_eq!(text(&ok.stdout), format!("imported 2 keys into {db}\n"));

    let bad_key = "a0a1a2a3a4a5a6a7a8a9aaabacadaeXX";
    for (args, expect) in [
        (format!("{KID_A}:{bad_key}"), "key is not 16 bytes"),
        (format!("{KID_A}:{}", &KEY_A[..30]), "key is not 16 bytes"),
        (format!("{KID_A}:{KEY_A}ff"), "key is not 16 bytes"),
        (
            format!("{}:{KEY_A}", &KID_A[..16]),
            "key ID \"0001020304050607\" is not 16 bytes",
        ),
        (format!("zz{}:{KEY_A}", &KID_A[2..]), "is not 16 bytes"),
        (KID_A.to_owned(), "expected KID_HEX:KEY_HEX"),
    ] {
        let out = run(&["import", "--db", db, &args]);
        assert_eq!(out.status.code(), Some(2), "{args}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{args}: {err}");
        // The key text of a rejected argument is never echoed.
        assert!(
            !err.contains(bad_key) && !err.contains(&KEY_A[..30]),
            "{err}"
        );
    }

    // Nothing to import, an unknown option, no subcommand: usage errors too.
    for args in [
        &["import", "--db", db][..],
        &["import", "--nope"],
        &[],
        &["serve", "--addr", "nowhere"],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // A file: comments, blank lines, a persistent flag; a bad line names its number.
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        format!("# demo keys\n\n{KID_A} {KEY_A}\n{KID_B} {KEY_B} persistent\n"),
    )
    .unwrap();
    let out = run_ok(&["import", "--db", db, "--file", file.to_str().unwrap()]);
    assert!(text(&out.stdout).starts_with("imported 2 keys"));
    std::fs::write(&file, format!("{KID_A} {KEY_A}\n{KID_B} short\n")).unwrap();
    let out = run(&["import", "--db", db, "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_contains(&out.stderr, "keys.txt:2: key is not 16 bytes");
    // A missing file is an I/O failure (1), not a usage error.
    let out = run(&[
        "import",
        "--db",
        db,
        "--file",
        dir.join("absent").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn binary_serve_keeps_keys_across_restarts_and_sees_new_imports() {
    let dir = TempDir::new("ls-bin-serve");
    let db = dir.join("keys.db");
    let db_s = db.to_str().unwrap();
    run_ok(&["import", "--db", db_s, &format!("{KID_A}:{KEY_A}")]);

    let server = Serving::start(&db);
    assert_serves(&server, KID_A, KEY_A);
    server
        .license(KID_B)
        .assert_error(StatusCode::NOT_FOUND, "unknown_key_ids");

    // Imported while the server runs (same file): served at once.
    run_ok(&["import", "--db", db_s, &format!("{KID_B}:{KEY_B}")]);
    server.license(KID_B).assert_ok();

    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");

    // A new process on the same database has both keys.
    let server = Serving::start(&db);
    for (kid, key) in [(KID_A, KEY_A), (KID_B, KEY_B)] {
        assert_serves(&server, kid, key);
    }
    assert!(server.terminate().success());
}

/// `server` answers a temporary license for `kid` with exactly `key`.
fn assert_serves(server: &Serving, kid: &str, key: &str) {
    let r = server.license(kid);
    r.assert_ok();
    assert_eq!(
        license_keys(&r.json(), "temporary"),
        [(b64url(&hex16(kid)), b64url(&hex16(key)))]
    );
}

#[test]
fn binary_serve_refuses_to_publish_the_database() {
    let dir = TempDir::new("ls-bin-static");
    let db = dir.join("keys.db");
    let out = run_serve(&db, &["--static", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_contains(&out.stderr, "contains the key database");
    assert!(text(&out.stdout).is_empty(), "it must not have listened");
}

#[test]
fn binary_protected_init_import_and_serve_protected() {
    use license_server::protected::unix_now as now;
    use protected_license::cert::{Hdcp, Robustness};
    use protected_license::crypto::PublicKey;
    use protected_license::device::{Device, DeviceKeys, LicenseRequestParams, Outstanding};
    use protected_license::messages::SessionType;
    use rand_core::OsRng;

    let dir = TempDir::new("ls-bin-protected");
    let material = dir.join("material");
    let material_s = material.to_str().unwrap();
    let out = run_ok(&["protected-init", "--dir", material_s]);
    assert_contains(&out.stdout, "root.pub");
    let again = run(&["protected-init", "--dir", material_s]);
    assert_eq!(again.status.code(), Some(1));
    assert_contains(&again.stderr, "refusing to overwrite");

    let db = dir.join("keys.db");
    run_ok(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        "--protected-key",
        &format!("{KID_A}:{KEY_A}:robustness=hw:hdcp=2.2:renewal=60"),
    ]);

    // --device-validity-days needs --protected.
    let bad = run(&["serve", "--device-validity-days", "5"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    // The key material is never published as static files.
    let bad = run_serve(&db, &["--protected", material_s, "--static", material_s]);
    assert_eq!(bad.status.code(), Some(1));
    assert_contains(&bad.stderr, "overlaps the protected key material");

    let server = Serving::start_with(&db, &["--protected", material_s]);
    let root: [u8; 65] = std::fs::read(material.join("root.pub"))
        .unwrap()
        .try_into()
        .unwrap();
    let mut device = Device::new(
        DeviceKeys::generate(&mut OsRng).unwrap(),
        PublicKey::from_bytes(&root).unwrap(),
        Robustness::ALL,
        Hdcp::V2_3,
    );
    let mut outstanding = Outstanding::new();
    let req = device
        .provisioning_request(&mut OsRng, now(), &mut outstanding)
        .unwrap();
    let r = server.post_octets("/protected/provision", &req);
    r.assert_ok();
    device
        .accept_provisioning(&mut outstanding, &r.body, now())
        .unwrap();
    let r = http(server.addr, "GET", "/protected/certificate", &[], b"");
    let cert = device.verify_server_certificate(&r.body, now()).unwrap();
    let req = device
        .license_request(
            &mut OsRng,
            now(),
            &mut outstanding,
            &LicenseRequestParams {
                session_type: SessionType::Temporary,
                robustness: Robustness::HW_SECURE_DECODE,
                hdcp: Hdcp::V2_3,
                key_ids: vec![hex16(KID_A)],
                content_id: Vec::new(),
            },
            Some(&cert),
        )
        .unwrap();
    let r = server.post_octets("/protected/license", &req);
    r.assert_ok();
    let license = device
        .accept_license(&mut outstanding, &r.body, now())
        .unwrap();
    assert_eq!(license.keys.len(), 1);
    assert_eq!(license.keys[0].key_id, hex16(KID_A));
    assert_eq!(license.keys[0].key.expose(), &hex16(KEY_A));
    assert_eq!(license.keys[0].robustness, Robustness::HW_SECURE_DECODE);
    assert_eq!(license.policy.renewal_interval, 60);
    assert!(server.terminate().success());

    // The session survives a restart: renewed by a new process on the same database.
    let server = Serving::start_with(&db, &["--protected", material_s]);
    let req = device
        .renewal_request(&mut OsRng, now(), &mut outstanding, &license.session_id)
        .unwrap();
    let r = server.post_octets("/protected/renewal", &req);
    r.assert_ok();
    device
        .accept_renewal(&mut outstanding, &license.session_id, &r.body, now())
        .unwrap();
    assert!(server.terminate().success());
}
