//! Persistent-license sessions end to end, over both transports: store a license, lose the
//! `MediaKeys` (and with it the secure world, or the host process), load the session in a new
//! one with no license request, remove it, lose it again, and finish the release. Compiled
//! into secure-world-host's tests too (`persistent_host.rs`), where the socket cases spawn
//! the real host binary with `--storage`.

mod common;

use common::*;
use normal_world::{
    ClosedReason, EmeError, KeyStatus, MediaKeySessionEvent, MediaKeys, MessageType, OutputWish,
    SessionType,
};

/// Decrypts a `cenc` sample made by the test kit under `key`; answers the clear text.
fn decrypt_with(mk: &MediaKeys, kid: &[u8; 16], key: &[u8; 16]) -> Result<bool, EmeError> {
    decrypts_cenc(mk, kid, key, [5; 8], 999, OutputWish::InPlace)
}

fn messages(events: &[MediaKeySessionEvent]) -> Vec<(MessageType, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaKeySessionEvent::Message {
                message_type,
                message,
            } => Some((*message_type, String::from_utf8(message.clone()).unwrap())),
            _ => None,
        })
        .collect()
}

fn store_load_remove_release(kind: Kind) {
    let dir = cdm_testkit::temp::TempDir::new("nw-persistent");
    let keys: [(&[u8], &[u8; 16]); 2] = [(&KID1, &KEY1), (&KID2, &KEY2)];
    // The key ID list of both keys: the `keyids` init data, the license-release message and
    // its acknowledgement (EME §9.1.3, §9.1.6).
    let both_kids = format!(r#"{{"kids":["{KID1_B64}","{KID2_B64}"]}}"#);

    // 1. A persistent license, obtained the usual way.
    let id = {
        let (mk, _host) = media_keys_with_storage(kind, dir.path());
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        s.generate_request("keyids", both_kids.as_bytes()).unwrap();
        let request = match s.next_event() {
            Some(MediaKeySessionEvent::Message {
                message_type: MessageType::LicenseRequest,
                message,
            }) => message,
            other => panic!("expected a license request, got {other:?}"),
        };
        assert!(String::from_utf8_lossy(&request).contains(r#""type":"persistent-license""#));
        let license = cdm_testkit::clearkey::answer(&request, &keys).unwrap();
        assert!(String::from_utf8_lossy(&license).contains("persistent-license"));
        s.update(&license).unwrap();
        assert!(decrypt_with(&mk, &KID1, &KEY1).unwrap());
        s.session_id()
        // The MediaKeys, its sessions and (over the socket) the host process end here.
    };
    assert_eq!(id.len(), 16);

    // 2. Loaded in a new secure world, with no license request.
    {
        let (mk, _host) = media_keys_with_storage(kind, dir.path());
        // Nothing is usable before the load.
        assert!(matches!(
            decrypt_with(&mk, &KID1, &KEY1),
            Err(EmeError::WaitingForKey(_))
        ));
        let unknown = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(!unknown.load("0000000000000000").unwrap());
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(s.load(&id).unwrap());
        assert_eq!(s.session_id(), id);
        let events = s.drain_events();
        assert!(messages(&events).is_empty(), "no license request on load");
        assert!(has_key_change(&events));
        assert_eq!(s.key_statuses().get(&KID1), Some(KeyStatus::Usable));
        assert_eq!(s.key_statuses().get(&KID2), Some(KeyStatus::Usable));
        assert!(decrypt_with(&mk, &KID1, &KEY1).unwrap());
        assert!(decrypt_with(&mk, &KID2, &KEY2).unwrap());
        // A second session cannot load the same id while this one is open.
        let twin = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(matches!(
            twin.load(&id),
            Err(EmeError::QuotaExceededError(_))
        ));
        // 3. Removed; the acknowledgement never comes before the secure world goes away.
        s.remove().unwrap();
        let msgs = messages(&s.drain_events());
        assert_eq!(msgs, [(MessageType::LicenseRelease, both_kids.clone())]);
        assert_eq!(s.key_statuses().get(&KID1), Some(KeyStatus::Released));
        assert!(decrypt_with(&mk, &KID1, &KEY1).is_err());
    }

    // 4. The record of license destruction survived: loading it sends the release again,
    // and the acknowledgement deletes it.
    {
        let (mk, _host) = media_keys_with_storage(kind, dir.path());
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        assert!(s.load(&id).unwrap());
        let msgs = messages(&s.drain_events());
        assert_eq!(msgs, [(MessageType::LicenseRelease, both_kids.clone())]);
        assert_eq!(s.key_statuses().get(&KID2), Some(KeyStatus::Released));
        assert!(decrypt_with(&mk, &KID2, &KEY2).is_err());
        s.update(both_kids.as_bytes()).unwrap();
        assert_eq!(s.closed(), Some(ClosedReason::ReleaseAcknowledged));
    }

    // 5. Gone for good.
    let (mk, _host) = media_keys_with_storage(kind, dir.path());
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    assert!(!s.load(&id).unwrap());
}

#[test]
fn persistent_in_process() {
    store_load_remove_release(Kind::InProcess);
}

#[test]
fn socket_persistent() {
    store_load_remove_release(Kind::Socket);
}

fn load_argument_errors(kind: Kind) {
    let dir = cdm_testkit::temp::TempDir::new("nw-load-args");
    let (mk, _host) = media_keys_with_storage(kind, dir.path());
    let temp = mk.create_session(SessionType::Temporary).unwrap();
    assert!(matches!(temp.load("abc"), Err(EmeError::TypeError(_))));
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    assert!(matches!(s.load(""), Err(EmeError::TypeError(_))));
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    assert!(matches!(
        s.load("not a session id"),
        Err(EmeError::TypeError(_))
    ));
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    assert!(!s.load("ffffffffffffffff").unwrap());
    // load() initializes the session even when nothing was found (EME §6.6.3 step 3).
    assert!(matches!(
        s.load("ffffffffffffffff"),
        Err(EmeError::InvalidStateError(_))
    ));
    assert!(matches!(
        s.generate_request("keyids", br#"{"kids":["AAECAwQFBgcICQoLDA0ODw"]}"#),
        Err(EmeError::InvalidStateError(_))
    ));
}

#[test]
fn load_arguments_in_process() {
    load_argument_errors(Kind::InProcess);
}

#[test]
fn socket_load_arguments() {
    load_argument_errors(Kind::Socket);
}

fn rolled_back_store_is_refused(kind: Kind) {
    let dir = cdm_testkit::temp::TempDir::new("nw-rollback");
    let snapshot = cdm_testkit::temp::TempDir::new("nw-rollback-copy");
    let keys: [(&[u8], &[u8; 16]); 1] = [(&KID1, &KEY1)];
    let id = {
        let (mk, _host) = media_keys_with_storage(kind, dir.path());
        let s = mk.create_session(SessionType::PersistentLicense).unwrap();
        s.generate_request("keyids", format!(r#"{{"kids":["{KID1_B64}"]}}"#).as_bytes())
            .unwrap();
        let Some(MediaKeySessionEvent::Message { message, .. }) = s.next_event() else {
            panic!()
        };
        s.update(&cdm_testkit::clearkey::answer(&message, &keys).unwrap())
            .unwrap();
        cdm_testkit::temp::copy_dir(&dir.join("store"), snapshot.path());
        s.remove().unwrap();
        s.update(format!(r#"{{"kids":["{KID1_B64}"]}}"#).as_bytes())
            .unwrap();
        s.session_id()
    };
    // The released license's keys come back only if the old copy were accepted.
    cdm_testkit::temp::copy_dir(snapshot.path(), &dir.join("store"));
    let (mk, _host) = media_keys_with_storage(kind, dir.path());
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    match s.load(&id) {
        Err(EmeError::InvalidStateError(msg)) => assert!(msg.contains("rolled back"), "{msg}"),
        other => panic!("expected a rollback refusal, got {other:?}"),
    }
    assert!(decrypt_with(&mk, &KID1, &KEY1).is_err());
    // Temporary sessions still work on the same secure world.
    let t = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&t, &[(&KID1, &KEY1)]);
    assert!(decrypt_with(&mk, &KID1, &KEY1).unwrap());
}

#[test]
fn rollback_in_process() {
    rolled_back_store_is_refused(Kind::InProcess);
}

#[test]
fn socket_rollback() {
    rolled_back_store_is_refused(Kind::Socket);
}
