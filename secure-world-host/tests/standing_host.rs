//! The host as a standing service, tried as an attacker would, and the player noticing a
//! dead or frozen secure world without calling it. Every test name starts with `socket_`
//! (CI's QEMU run skips them: they start host processes).

#[path = "../../normal-world/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cdm_testkit::temp::TempDir;
use common::*;
use normal_world::transport::SocketTransport;
use normal_world::{
    request_media_key_system_access, ClosedReason, MediaKeySessionEvent, MediaKeys, OutputWish,
    SessionType,
};

const HOST: &str = env!("CARGO_BIN_EXE_secure-world-host");

/// A standing host (no `--once`) on a socket in a private directory; killed on drop.
struct Standing {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl Standing {
    fn start(extra: &[&str]) -> Standing {
        let dir = TempDir::new("standing");
        let socket = dir.join("host.sock");
        let child = Command::new(HOST)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the host did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Standing {
            child,
            socket,
            _dir: dir,
        }
    }

    fn media_keys(&self) -> Result<MediaKeys, normal_world::EmeError> {
        media_keys_at(&self.socket)
    }
}

/// A `MediaKeys` over a connection to the host listening at `socket`.
fn media_keys_at(socket: &Path) -> Result<MediaKeys, normal_world::EmeError> {
    let t = SocketTransport::connect(socket)
        .map_err(|e| normal_world::EmeError::SecureWorldLost(e.to_string()))?;
    request_media_key_system_access("org.w3.clearkey", &[config()])
        .unwrap()
        .create_media_keys_with_transport(Box::new(t))
}

impl Drop for Standing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole Clear Key session and a decrypt.
fn play(mk: &MediaKeys) {
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    assert_eq!(
        decrypts_cenc(mk, &KID1, &KEY1, [3; 8], 4096, OutputWish::Auto),
        Ok(true)
    );
    session.close().unwrap();
}

/// Runs `f` on another thread; panics if it takes more than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("blocked by another client")
}

#[test]
fn socket_standing_host_serves_others_past_idle_stalled_and_deaf_clients() {
    let host = Standing::start(&["--frame-timeout-ms", "1000"]);
    // An idle client: connected, sends nothing.
    let _idle = UnixStream::connect(&host.socket).unwrap();
    // A client that stops in the middle of a frame.
    let mut stalled = UnixStream::connect(&host.socket).unwrap();
    stalled.write_all(&[0, 0]).unwrap();
    // A client that sends requests and never reads a reply: GetCapabilities frames until
    // the host's replies fill both socket buffers.
    let mut deaf = UnixStream::connect(&host.socket).unwrap();
    deaf.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let frame = {
        let mut req = Vec::new();
        cdm_core::abi::Operation::encode_message(&cdm_core::abi::GetCapabilities, 0, 1, &mut req)
            .unwrap();
        let mut f = Vec::new();
        f.extend_from_slice(&u32::try_from(req.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&req);
        f.extend_from_slice(&0u32.to_le_bytes());
        f
    };
    let mut sent = 0;
    while deaf.write_all(&frame).is_ok() && sent < 100_000 {
        sent += 1;
    }
    assert!(sent > 10, "the deaf client could send {sent} requests");

    // Everybody else is served, at once.
    let socket = host.socket.clone();
    within(Duration::from_secs(20), move || {
        play(&media_keys_at(&socket).unwrap())
    });

    // The stalled client is dropped after the frame timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n, 0,
        "the host closes a connection that stalls inside a frame"
    );
}

#[test]
fn socket_standing_host_socket_is_private() {
    let host = Standing::start(&[]);
    let mode = std::fs::metadata(&host.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    // And a player's own spawned host lives in a directory only its user can enter.
    let (_mk, child) = media_keys(Kind::Socket);
    let pid = child.unwrap().id();
    let sockets: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("tee-cdm-{}-", std::process::id())))
        })
        .collect();
    assert!(!sockets.is_empty(), "no private directory for host {pid}");
    for dir in sockets {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} mode {mode:o}", dir.display());
    }
}

#[test]
fn socket_standing_host_refuses_other_users_and_too_many_clients() {
    let me = rustix::process::geteuid().as_raw();
    let other = me.wrapping_add(1).to_string();
    let host = Standing::start(&["--allow-uid", &other]);
    assert!(
        host.media_keys().is_err(),
        "a client of another uid is refused"
    );

    let host = Standing::start(&["--max-clients", "1"]);
    // (The connection `start` made to see the host listening may still count for a moment.)
    let first = eventually(&host);
    assert!(
        host.media_keys().is_err(),
        "a second client beyond the limit"
    );
    drop(first);
    // Once the first has gone, there is room again.
    play(&eventually(&host));
}

/// A `MediaKeys` on `host` once it has room (within 10 s).
fn eventually(host: &Standing) -> MediaKeys {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match host.media_keys() {
            Ok(mk) => return mk,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no room for a client: {e}"),
        }
    }
}

/// Waits up to `limit` for `session` to close, without calling the secure world.
fn wait_closed(session: &normal_world::MediaKeySession, limit: Duration) -> Option<ClosedReason> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(r) = session.closed() {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn assert_reset_events(session: &normal_world::MediaKeySession) {
    let events = session.drain_events();
    assert!(
        events.contains(&MediaKeySessionEvent::KeyStatusesChange),
        "{events:?}"
    );
    assert!(
        events.contains(&MediaKeySessionEvent::Closed(
            ClosedReason::HardwareContextReset
        )),
        "{events:?}"
    );
    assert!(session.key_statuses().is_empty());
}

#[test]
fn socket_host_killed_while_the_player_is_idle_is_noticed_at_once() {
    let (mk, host) = media_keys(Kind::Socket);
    let host = host.unwrap();
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    session.drain_events();
    host.kill().unwrap();
    // No call: the liveness watch closes the session by itself.
    assert_eq!(
        wait_closed(&session, Duration::from_secs(5)),
        Some(ClosedReason::HardwareContextReset)
    );
    assert_reset_events(&session);
}

#[test]
fn socket_frozen_host_is_noticed_without_a_call() {
    let (mk, host) = media_keys(Kind::Socket);
    let host = host.unwrap();
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    session.drain_events();
    let pid = rustix::process::Pid::from_raw(i32::try_from(host.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // A probe every 2 s, answered within 5 s or the secure world counts as frozen.
    let closed = wait_closed(&session, Duration::from_secs(15));
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
    let _ = host.kill();
    assert_eq!(closed, Some(ClosedReason::HardwareContextReset));
    assert_reset_events(&session);
}
