//! Faulty transports (no processes: these run under QEMU too): a secure world that vanishes
//! or answers garbage closes every session and fails later calls fast; a socket without
//! shared memory refuses calls in the sample area.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use normal_world::transport::{InProcessTransport, Transport, TransportError};
use normal_world::{
    request_media_key_system_access, ClosedReason, EmeError, MediaKeySessionEvent, SessionType,
};

/// An in-process secure world behind a switch: when `dead` is set, calls fail as a dead
/// process would; when `garbage` is set, responses are corrupted.
struct Faulty {
    inner: InProcessTransport,
    dead: Arc<AtomicBool>,
    garbage: Arc<AtomicBool>,
}

impl Transport for Faulty {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(TransportError::Disconnected("test: host gone".into()));
        }
        self.inner.call(request, sample, response)?;
        if self.garbage.load(Ordering::SeqCst) {
            response.truncate(response.len().saturating_sub(1));
        }
        Ok(())
    }
}

fn faulty() -> (normal_world::MediaKeys, Arc<AtomicBool>, Arc<AtomicBool>) {
    let dead = Arc::new(AtomicBool::new(false));
    let garbage = Arc::new(AtomicBool::new(false));
    let t = Faulty {
        inner: InProcessTransport::new().unwrap(),
        dead: Arc::clone(&dead),
        garbage: Arc::clone(&garbage),
    };
    let access = request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    (
        access
            .create_media_keys_with_transport(Box::new(t))
            .unwrap(),
        dead,
        garbage,
    )
}

#[test]
fn disconnect_closes_every_session_with_hardware_context_reset() {
    let (mk, dead, _) = faulty();
    let a = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&a, &[(&KID1, &KEY1)]);
    let b = mk.create_session(SessionType::Temporary).unwrap();
    dead.store(true, Ordering::SeqCst);
    let r = b.generate_request("webm", &KID2);
    assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
    for s in [&a, &b] {
        assert_eq!(s.closed(), Some(ClosedReason::HardwareContextReset));
        assert!(s.key_statuses().is_empty());
        assert!(s.drain_events().contains(&MediaKeySessionEvent::Closed(
            ClosedReason::HardwareContextReset
        )));
    }
    assert!(mk.is_lost());
    // Even if the transport came back, the MediaKeys stays lost: its secure-world state is
    // unknown.
    dead.store(false, Ordering::SeqCst);
    let r = mk.create_session(SessionType::Temporary);
    assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
    assert!(
        matches!(a.close(), Ok(())),
        "close() on a closed session resolves"
    );
}

#[test]
fn malformed_responses_close_sessions_with_internal_error() {
    let (mk, _, garbage) = faulty();
    let a = mk.create_session(SessionType::Temporary).unwrap();
    a.generate_request("webm", &KID1).unwrap();
    garbage.store(true, Ordering::SeqCst);
    let r = a.update(&license(&[(&KID1, &KEY1)]));
    assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
    assert_eq!(a.closed(), Some(ClosedReason::InternalError));
}

#[test]
fn a_dead_transport_fails_create_media_keys() {
    let t = Faulty {
        inner: InProcessTransport::new().unwrap(),
        dead: Arc::new(AtomicBool::new(true)),
        garbage: Arc::new(AtomicBool::new(false)),
    };
    let access = request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    let r = access.create_media_keys_with_transport(Box::new(t));
    assert!(matches!(r, Err(EmeError::SecureWorldLost(_))), "{r:?}");
}

#[test]
fn socket_sample_area_without_shared_memory_is_refused_before_the_size_checks() {
    let dir = cdm_testkit::temp::TempDir::new("area");
    let path = dir.join("listener.sock");
    // A listener that never answers: the refusal must come before anything is sent.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let oversize = vec![0u8; cdm_core::abi::frame::MAX_MESSAGE_FRAME + 1];
    for (request, sample_len) in [(&oversize[..], 16), (&[0u8; 32][..], usize::MAX)] {
        let mut t = normal_world::transport::SocketTransport::connect(&path).unwrap();
        let mut response = Vec::new();
        match t.call_in_area(request, sample_len, &mut response) {
            Err(TransportError::Setup(why)) => assert_eq!(why, "no shared memory"),
            other => panic!("request of {} bytes: {other:?}", request.len()),
        }
    }
}
