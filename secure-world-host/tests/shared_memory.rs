//! The shared-memory transport against the real host process: the whole Clear Key flow and
//! every scheme, samples up to the ABI's largest, a hostile normal world that scribbles over
//! the shared region during decrypts (the host must not misbehave, and decrypts are right
//! again once it stops), and the liveness watch. Every test name starts with `socket_` (CI's
//! QEMU run skips them: they start host processes).

#[path = "../../normal-world/tests/common/mod.rs"]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdm_shm::{Region, LAYOUT};
use cdm_testkit::temp::TempDir;
use common::*;
use normal_world::transport::SocketTransport;
use normal_world::{
    request_media_key_system_access, ClosedReason, DecryptedSample, EncryptionScheme, MediaKeys,
    OutputWish, SampleDescription, SessionType,
};

const HOST: &str = env!("CARGO_BIN_EXE_secure-world-host");

/// A `--once` host on a private socket, the child kept to check how it ended.
fn host() -> (Child, PathBuf, TempDir) {
    let dir = TempDir::new("shm");
    let socket = dir.join("host.sock");
    let child = Command::new(HOST)
        .arg("--socket")
        .arg(&socket)
        .arg("--once")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the host did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, socket, dir)
}

/// A shared-memory `MediaKeys` on `socket`, and a mapping of its region for the test.
fn shared_media_keys(socket: &std::path::Path) -> (MediaKeys, Region) {
    let t = SocketTransport::connect(socket)
        .unwrap()
        .with_shared_memory()
        .unwrap();
    assert!(t.is_shared());
    let fd = t.shared_region_fd().unwrap().try_clone_to_owned().unwrap();
    let region = Region::adopt(fd).unwrap();
    let mk = request_media_key_system_access("org.w3.clearkey", &[config()])
        .unwrap()
        .create_media_keys_with_transport(Box::new(t))
        .unwrap();
    (mk, region)
}

fn desc<'a>(scheme: EncryptionScheme, iv: &'a [u8], pattern: (u8, u8)) -> SampleDescription<'a> {
    SampleDescription {
        key_id: &KID1,
        scheme,
        iv,
        pattern,
        subsamples: &[],
        output: OutputWish::Auto,
    }
}

#[test]
fn socket_shared_memory_decrypts_every_scheme_and_size() {
    let (mut child, socket, _dir) = host();
    let (mk, _region) = shared_media_keys(&socket);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    for len in [0usize, 1, 15, 16, 1000, 65536, 1 << 20, 16 << 20] {
        let plain = plaintext(len);
        // cenc, by the reference encryptor.
        let mut s = plain.clone();
        encrypt_cenc(&KEY1, &[9; 8], &mut s, &[]);
        assert_eq!(
            mk.decrypt(&mut s, &desc(EncryptionScheme::Cenc, &[9; 8], (0, 0))),
            Ok(DecryptedSample::InPlace)
        );
        assert!(s == plain, "cenc {len}");
        // cbcs 1:9, constant IV.
        let mut s = plain.clone();
        encrypt_cbcs(&KEY1, &[4; 16], &mut s, &[], (1, 9));
        assert_eq!(
            mk.decrypt(&mut s, &desc(EncryptionScheme::Cbcs, &[4; 16], (1, 9))),
            Ok(DecryptedSample::InPlace)
        );
        assert!(s == plain, "cbcs {len}");
    }
    session.close().unwrap();
    drop(session);
    drop(mk);
    let status = child.wait().unwrap();
    assert!(status.success(), "host ended with {status:?}");
}

#[test]
fn socket_shared_memory_sample_buffer_decrypts_where_the_sample_lies() {
    let (mut child, socket, _dir) = host();
    let (mk, region) = shared_media_keys(&socket);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    for len in [0usize, 100, 65536, 16 << 20] {
        let plain = plaintext(len);
        let mut enc = plain.clone();
        encrypt_cenc(&KEY1, &[2; 8], &mut enc, &[]);
        let mut buffer = mk.sample_buffer(len).unwrap();
        assert!(buffer.is_shared());
        buffer.bytes_mut().copy_from_slice(&enc);
        assert_eq!(
            buffer.decrypt(&desc(EncryptionScheme::Cenc, &[2; 8], (0, 0))),
            Ok(DecryptedSample::InPlace)
        );
        assert!(buffer.bytes() == plain.as_slice(), "{len}");
        drop(buffer);
        // It was the shared region itself: the clear sample is there.
        let mut seen = vec![0u8; len];
        region.read(LAYOUT.sample, &mut seen).unwrap();
        assert!(seen == plain, "{len}");
    }
    assert!(mk.sample_buffer((16 << 20) + 1).is_err());
    drop(session);
    drop(mk);
    assert!(child.wait().unwrap().success());
}

#[test]
fn socket_shared_memory_survives_a_hostile_normal_world() {
    let (mut child, socket, _dir) = host();
    let (mk, region) = shared_media_keys(&socket);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    let plain = plaintext(64 * 1024);
    let mut enc = plain.clone();
    encrypt_cenc(&KEY1, &[5; 8], &mut enc, &[]);
    let d = desc(EncryptionScheme::Cenc, &[5; 8], (0, 0));

    // Phase 1: another thread scribbles over the sample area while decrypts run. Results may
    // be garbage; every call must still be answered.
    let stop = Arc::new(AtomicBool::new(false));
    let region = Arc::new(std::sync::Mutex::new(region));
    let scribbler = {
        let (stop, region) = (Arc::clone(&stop), Arc::clone(&region));
        std::thread::spawn(move || {
            let mut rng = cdm_testkit::rng::TestRng::new(7);
            let r = region.lock().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let at = LAYOUT.sample + usize::try_from(rng.below(64 * 1024)).unwrap();
                r.write(at, &rng.bytes(64)).unwrap();
            }
        })
    };
    let mut garbage = 0;
    for _ in 0..200 {
        let mut s = enc.clone();
        assert_eq!(mk.decrypt(&mut s, &d), Ok(DecryptedSample::InPlace));
        garbage += usize::from(s != plain);
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    // Once it stops, decrypts are right again.
    let mut s = enc.clone();
    assert_eq!(mk.decrypt(&mut s, &d), Ok(DecryptedSample::InPlace));
    assert!(s == plain);
    eprintln!("{garbage} of 200 decrypts saw the scribbles");

    // Phase 2: it scribbles over everything, control words and lengths included. The
    // player's transport may break (then its sessions close); the host must end cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let (stop, region) = (Arc::clone(&stop), Arc::clone(&region));
        std::thread::spawn(move || {
            let mut rng = cdm_testkit::rng::TestRng::new(8);
            let r = region.lock().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let at = usize::try_from(rng.below(u64::try_from(LAYOUT.request + 256).unwrap()))
                    .unwrap();
                r.write(at, &rng.bytes(8)).unwrap();
            }
        })
    };
    for _ in 0..200 {
        let mut s = enc.clone();
        if mk.decrypt(&mut s, &d).is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    drop(session);
    drop(mk);
    // The host either still serves or dropped the connection; it never crashes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the host did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), None, "host killed by a signal: {status:?}");
}

#[test]
fn socket_shared_memory_host_death_closes_sessions_at_once() {
    let (mut child, socket, _dir) = host();
    let (mk, _region) = shared_media_keys(&socket);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while session.closed().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(session.closed(), Some(ClosedReason::HardwareContextReset));
}
