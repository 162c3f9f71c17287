//! The socket transport and the `secure-world-host` process: death of the host, frame
//! bounds, timeouts, reconnection. Every test name starts with `socket_` (CI's QEMU run
//! skips them). The fixtures are normal-world's end-to-end fixtures; compiled here, they
//! spawn this crate's binary.

#[path = "../../normal-world/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use normal_world::transport::{SocketTransport, Transport, TransportError};
use normal_world::{ClosedReason, EmeError, MediaKeySessionEvent, OutputWish, SessionType};

/// Runs `f` on another thread and fails the test if it does not finish in a minute (a hang
/// is the bug these tests look for; no timing is asserted otherwise).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("call hung after the host died")
}

fn temp_socket(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tee-cdm-test-{}-{name}.sock", std::process::id()))
}

fn decrypt_ok(mk: &normal_world::MediaKeys) {
    assert_eq!(
        decrypts_cenc(mk, &KID1, &KEY1, [7; 8], 1000, OutputWish::Auto),
        Ok(true)
    );
}

#[test]
fn socket_host_death_closes_sessions_and_a_new_media_keys_works() {
    let (mk, host) = media_keys(Kind::Socket);
    let host = host.unwrap();
    let playing = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&playing, &[(&KID1, &KEY1)]);
    let idle = mk.create_session(SessionType::Temporary).unwrap();
    decrypt_ok(&mk);

    // Between two decrypts, the secure world dies.
    host.kill().unwrap();
    assert!(!host.is_running());
    let (mk, playing, idle) = bounded(move || {
        let mut s = plaintext(1000);
        let d = whole_cenc(&KID1, &[7; 8], OutputWish::Auto);
        let r = mk.decrypt(&mut s, &d);
        assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
        assert_eq!(r.unwrap_err().name(), Some("InvalidStateError"));
        assert_eq!(s, plaintext(1000), "the sample is unchanged");
        // Everything after fails fast.
        let r = mk.decrypt(&mut s, &d);
        assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
        let r = mk.create_session(SessionType::Temporary);
        assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
        (mk, playing, idle)
    });
    assert!(mk.is_lost());
    for s in [&playing, &idle] {
        assert_eq!(s.closed(), Some(ClosedReason::HardwareContextReset));
        assert!(s.key_statuses().is_empty());
        let events = s.drain_events();
        assert!(
            events.contains(&MediaKeySessionEvent::Closed(
                ClosedReason::HardwareContextReset
            )),
            "{events:?}"
        );
        assert!(matches!(
            s.update(b"{}"),
            Err(EmeError::InvalidStateError(_))
        ));
    }
    drop((playing, idle, mk));

    // A new access and MediaKeys start a new host.
    let (mk2, host2) = media_keys(Kind::Socket);
    assert_ne!(host2.as_ref().map(|h| h.id()), Some(host.id()));
    let s = mk2.create_session(SessionType::Temporary).unwrap();
    load_keys(&s, &[(&KID1, &KEY1)]);
    decrypt_ok(&mk2);
}

#[test]
fn socket_host_drops_oversize_frames_without_answering() {
    let path = temp_socket("oversize");
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(host_binary().unwrap())
        .arg("--socket")
        .arg(&path)
        .arg("--once")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(_) => {
                assert!(child.try_wait().unwrap().is_none(), "host exited early");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A request length far beyond header + MAX_PAYLOAD_LEN: the host must not allocate or
    // wait for 4 GiB; it drops the connection.
    stream.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let mut buf = [0u8; 16];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the host answered an oversize frame");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn socket_connect_serves_clients_one_after_the_other() {
    let path = temp_socket("connect");
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(host_binary().unwrap())
        .arg("--socket")
        .arg(&path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let access =
        normal_world::request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    for _ in 0..2 {
        let t = loop {
            match SocketTransport::connect(&path) {
                Ok(t) => break t,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        assert!(t.host().is_none());
        let mk = access
            .create_media_keys_with_transport(Box::new(t))
            .unwrap();
        let s = mk.create_session(SessionType::Temporary).unwrap();
        load_keys(&s, &[(&KID1, &KEY1)]);
        decrypt_ok(&mk);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn socket_silent_peer_times_out_and_the_transport_stays_broken() {
    let path = temp_socket("silent");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut t = SocketTransport::connect(&path).unwrap();
    let (_peer, _) = listener.accept().unwrap();
    t.set_timeout(Duration::from_millis(100)).unwrap();
    let mut response = Vec::new();
    let r = bounded(move || {
        let first = t.call(&[0u8; 32], &mut [], &mut response);
        let second = t.call(&[0u8; 32], &mut [], &mut response);
        (first, second)
    });
    assert!(matches!(r.0, Err(TransportError::Timeout(_))), "{:?}", r.0);
    assert!(
        matches!(r.1, Err(TransportError::Disconnected(_))),
        "{:?}",
        r.1
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn socket_spawn_of_a_missing_binary_fails_cleanly() {
    let r = SocketTransport::spawn("/nonexistent/secure-world-host");
    assert!(matches!(r, Err(TransportError::Setup(_))), "{r:?}");
}

/// A peer that answers one call with `response` and a reply sample of `reply_len` bytes.
fn fake_host_reply(
    name: &str,
    response: Vec<u8>,
    reply_len: usize,
) -> (Result<(), TransportError>, Vec<u8>) {
    use cdm_core::abi::frame::{read_chunk, write_chunk};
    let path = temp_socket(name);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let (mut req, mut sample) = (Vec::new(), Vec::new());
        read_chunk(&mut s, 1 << 20, &mut req).unwrap();
        read_chunk(&mut s, 1 << 20, &mut sample).unwrap();
        // The client may hang up as soon as it has read a length it refuses.
        let _ = write_chunk(&mut s, &response)
            .and_then(|()| write_chunk(&mut s, &vec![0xEE; reply_len]));
    });
    let mut t = SocketTransport::connect(&path).unwrap();
    let mut sample = vec![7u8; 64];
    let mut response = Vec::new();
    let r = t.call(&[0u8; 32], &mut sample, &mut response);
    peer.join().unwrap();
    let _ = std::fs::remove_file(&path);
    (r, sample)
}

#[test]
fn socket_reply_sample_only_after_an_in_place_decrypt() {
    use cdm_core::abi::{
        encode_response, DecryptOutput, DecryptRequest, Header, Opcode, Response, Status,
    };
    let request = Header::request(Opcode::Decrypt, 5, 1);
    let mut failed = Vec::new();
    Response::encode_error(&request, Status::DecryptFailed, &mut failed).unwrap();
    let mut in_place = Vec::new();
    encode_response::<DecryptRequest<'_>>(&DecryptOutput::InPlace, &request, &mut in_place)
        .unwrap();

    // After a failure the sample must not come back: a host that sends it is refused and the
    // caller's buffer stays as it was.
    let (r, sample) = fake_host_reply("failed-with-sample", failed.clone(), 64);
    assert!(matches!(r, Err(TransportError::FrameTooLarge(_))), "{r:?}");
    assert_eq!(sample, vec![7u8; 64]);
    let (r, sample) = fake_host_reply("failed-without-sample", failed, 0);
    assert_eq!(r, Ok(()));
    assert_eq!(sample, vec![7u8; 64]);
    // After an in-place decrypt it must: an empty reply is refused.
    let (r, sample) = fake_host_reply("in-place-without-sample", in_place.clone(), 0);
    assert!(matches!(r, Err(TransportError::FrameTooLarge(_))), "{r:?}");
    assert_eq!(sample, vec![7u8; 64]);
    let (r, sample) = fake_host_reply("in-place-with-sample", in_place, 64);
    assert_eq!(r, Ok(()));
    assert_eq!(sample, vec![0xEE; 64]);
}
