//! End-to-end EME flows, each run over the in-process and the socket transport.

mod common;

use common::*;
use normal_world::{
    ClosedReason, DecryptedSample, EmeError, EncryptionScheme, KeyStatus, MediaKeySessionEvent,
    MessageType, OutputWish, Robustness, SampleDescription, SessionType,
};

fn desc<'a>(
    kid: &'a [u8],
    scheme: EncryptionScheme,
    iv: &'a [u8],
    pattern: (u8, u8),
    subsamples: &'a [(u32, u32)],
) -> SampleDescription<'a> {
    SampleDescription {
        key_id: kid,
        scheme,
        iv,
        pattern,
        subsamples,
        output: OutputWish::Auto,
    }
}

/// Decrypts a `cenc` sample with subsamples and a `cbcs` 1:9 sample and checks both against
/// the plaintext.
fn assert_decrypts(mk: &normal_world::MediaKeys, kid: &[u8; 16], key: &[u8; 16]) {
    let plain = plaintext(3000);
    let subs = [(100u32, 1000u32), (37, 1863)];
    let iv8 = [9u8, 8, 7, 6, 5, 4, 3, 2];
    let mut sample = plain.clone();
    encrypt_cenc(key, &iv8, &mut sample, &subs);
    assert_ne!(sample, plain);
    let out = mk.decrypt(
        &mut sample,
        &desc(kid, EncryptionScheme::Cenc, &iv8, (0, 0), &subs),
    );
    assert_eq!(out, Ok(DecryptedSample::InPlace));
    assert_eq!(sample, plain);

    let iv16 = [0x42u8; 16];
    let subs = [(16u32, 2000u32), (5, 979)];
    let mut sample = plain.clone();
    encrypt_cbcs(key, &iv16, &mut sample, &subs, (1, 9));
    assert_ne!(sample, plain);
    let out = mk.decrypt(
        &mut sample,
        &desc(kid, EncryptionScheme::Cbcs, &iv16, (1, 9), &subs),
    );
    assert_eq!(out, Ok(DecryptedSample::InPlace));
    assert_eq!(sample, plain);
}

fn full_flow(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let inits: [(&str, Vec<u8>); 3] = [
        ("cenc", pssh_v1(&[&KID1, &KID2])),
        (
            "keyids",
            format!(r#"{{"kids":["{KID1_B64}","{KID2_B64}"]}}"#).into_bytes(),
        ),
        ("webm", KID1.to_vec()),
    ];
    for (ty, init) in inits {
        let session = mk.create_session(SessionType::Temporary).unwrap();
        assert_eq!(session.session_id(), "");
        assert_eq!(session.expiration(), None);
        session.generate_request(ty, &init).unwrap();
        assert!(!session.session_id().is_empty());
        // EME §9.1.3: {"kids":[base64url...],"type":"temporary"}.
        let events = session.drain_events();
        let [MediaKeySessionEvent::Message {
            message_type,
            message,
        }] = events.as_slice()
        else {
            panic!("{ty}: expected one message event, got {events:?}");
        };
        assert_eq!(*message_type, MessageType::LicenseRequest);
        let json: serde_json::Value = serde_json::from_slice(message).unwrap();
        let expected_kids: Vec<&str> = if ty == "webm" {
            vec![KID1_B64]
        } else {
            vec![KID1_B64, KID2_B64]
        };
        assert_eq!(
            json,
            serde_json::json!({"kids": expected_kids, "type": "temporary"}),
            "{ty}"
        );

        // Before the license: waiting for key.
        let mut s = plaintext(64);
        let r = mk.decrypt(&mut s, &whole_cenc(&KID1, &[0; 8], OutputWish::Auto));
        assert!(matches!(r, Err(EmeError::WaitingForKey(_))), "{r:?}");
        assert_eq!(s, plaintext(64));

        session
            .update(&license(&[(&KID1, &KEY1), (&KID2, &KEY2)]))
            .unwrap();
        assert!(has_key_change(&session.drain_events()));
        let statuses = session.key_statuses();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses.get(&KID1), Some(KeyStatus::Usable));
        assert_eq!(statuses.get(&KID2), Some(KeyStatus::Usable));

        assert_decrypts(&mk, &KID1, &KEY1);
        assert_decrypts(&mk, &KID2, &KEY2);

        session.close().unwrap();
        assert_eq!(session.closed(), Some(ClosedReason::ClosedByApplication));
        let events = session.drain_events();
        assert!(has_key_change(&events));
        assert!(events.contains(&MediaKeySessionEvent::Closed(
            ClosedReason::ClosedByApplication
        )));
        assert!(session.key_statuses().is_empty());
        let mut s = plaintext(64);
        let r = mk.decrypt(&mut s, &whole_cenc(&KID1, &[0; 8], OutputWish::Auto));
        assert!(matches!(r, Err(EmeError::WaitingForKey(_))), "{r:?}");
        // close() on a closed session resolves; other calls are InvalidStateError.
        assert_eq!(session.close(), Ok(()));
        assert!(matches!(
            session.update(b"{}"),
            Err(EmeError::InvalidStateError(_))
        ));
        assert!(matches!(
            session.remove(),
            Err(EmeError::InvalidStateError(_))
        ));
    }
}
both_transports!(full_flow_cenc_keyids_webm, crate::full_flow);

fn remove_releases_keys(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    assert_decrypts(&mk, &KID1, &KEY1);
    session.remove().unwrap();
    let events = session.drain_events();
    assert!(has_key_change(&events), "{events:?}");
    // EME §6.6.6: a temporary session gets no license-release message on remove().
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, MediaKeySessionEvent::Message { .. })),
        "{events:?}"
    );
    assert_eq!(session.key_statuses().get(&KID1), Some(KeyStatus::Released));
    assert_eq!(session.closed(), None);
    let plain = plaintext(256);
    let mut s = plain.clone();
    encrypt_cenc(&KEY1, &[1; 8], &mut s, &[]);
    let enc = s.clone();
    let r = mk.decrypt(&mut s, &whole_cenc(&KID1, &[1; 8], OutputWish::Auto));
    assert!(
        matches!(r, Err(EmeError::WaitingForKey(ref m)) if m.contains("released")),
        "{r:?}"
    );
    assert_eq!(s, enc, "a refused decrypt leaves the sample unchanged");
    session.close().unwrap();
    assert_eq!(session.closed(), Some(ClosedReason::ClosedByApplication));
}
both_transports!(remove_releases_keys, crate::remove_releases_keys);

fn bad_inputs(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let fresh = || mk.create_session(SessionType::Temporary).unwrap();
    let type_error =
        |r: Result<(), EmeError>| assert!(matches!(r, Err(EmeError::TypeError(_))), "{r:?}");

    // generateRequest argument checks (EME §6.6.2 steps 4–6, 10.1–10.3).
    type_error(fresh().generate_request("cenc", &[]));
    type_error(fresh().generate_request("", &pssh_v1(&[&KID1])));
    type_error(fresh().generate_request("cenc", &vec![0u8; 64 * 1024 + 1]));
    type_error(fresh().generate_request("cenc", b"not a box at all"));
    type_error(fresh().generate_request("keyids", b"{\"kids\":[]}"));
    type_error(fresh().generate_request("webm", &[0u8; 513]));
    let r = fresh().generate_request("mp4", &pssh_v1(&[&KID1]));
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))), "{r:?}");
    // A pssh of another system only: no Clear Key key IDs.
    let mut other = pssh_v1(&[&KID1]);
    other[12] ^= 0xff;
    let r = fresh().generate_request("cenc", &other);
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))), "{r:?}");

    // State checks.
    let s = fresh();
    assert!(matches!(
        s.update(&license(&[(&KID1, &KEY1)])),
        Err(EmeError::InvalidStateError(_))
    ));
    assert!(matches!(s.remove(), Err(EmeError::InvalidStateError(_))));
    assert!(matches!(s.close(), Err(EmeError::InvalidStateError(_))));
    s.generate_request("cenc", &pssh_v1(&[&KID1])).unwrap();
    let r = s.generate_request("cenc", &pssh_v1(&[&KID1]));
    assert!(matches!(r, Err(EmeError::InvalidStateError(_))), "{r:?}");
    // A failed generateRequest also uses up the session (EME §6.6.2 step 3).
    let used = fresh();
    type_error(used.generate_request("cenc", &[]));
    let r = used.generate_request("cenc", &pssh_v1(&[&KID1]));
    assert!(matches!(r, Err(EmeError::InvalidStateError(_))), "{r:?}");

    // update argument checks; each failure leaves the session usable.
    s.drain_events();
    type_error(s.update(&[]));
    type_error(s.update(b"this is not json"));
    type_error(s.update(br#"{"keys":[{"kty":"oct","k":"short","kid":"AAECAwQFBgcICQoLDA0ODw"}]}"#));
    type_error(s.update(&vec![b' '; 64 * 1024 + 1]));
    assert!(s.next_event().is_none(), "failed updates queue no events");
    assert!(s.key_statuses().is_empty());
    s.update(&license(&[(&KID1, &KEY1)])).unwrap();
    assert_eq!(s.key_statuses().get(&KID1), Some(KeyStatus::Usable));

    // decrypt description checks, then a good decrypt still works.
    let plain = plaintext(100);
    let mut sample = plain.clone();
    encrypt_cenc(&KEY1, &[3; 8], &mut sample, &[]);
    let enc = sample.clone();
    let cenc = |iv: &'static [u8], subs: &'static [(u32, u32)]| {
        desc(&KID1, EncryptionScheme::Cenc, iv, (0, 0), subs)
    };
    for d in [
        cenc(&[3; 7], &[]),
        cenc(&[3; 8], &[(10, 10)]),
        cenc(&[3; 8], &[(u32::MAX, 101)]),
    ] {
        assert!(
            matches!(mk.decrypt(&mut sample, &d), Err(EmeError::TypeError(_))),
            "{d:?}"
        );
    }
    let r = mk.decrypt(&mut sample, &whole_cenc(&[], &[3; 8], OutputWish::Auto));
    assert!(matches!(r, Err(EmeError::TypeError(_))), "{r:?}");
    // An IV or a pattern that does not fit the scheme is a TypeError that says so.
    for (d, why) in [
        (
            desc(&KID1, EncryptionScheme::Cbcs, &[3; 8], (1, 9), &[]),
            "cbcs takes a 16-byte IV",
        ),
        (
            desc(&KID1, EncryptionScheme::Cbc1, &[3; 8], (0, 0), &[]),
            "cbc1 takes a 16-byte IV",
        ),
        (
            desc(&KID1, EncryptionScheme::Cenc, &[3; 8], (1, 9), &[]),
            "pattern 1:9 does not fit cenc",
        ),
        (
            desc(&KID1, EncryptionScheme::Cbc1, &[3; 16], (1, 9), &[]),
            "pattern 1:9 does not fit cbc1",
        ),
        (
            desc(&KID1, EncryptionScheme::Cbcs, &[3; 16], (16, 16), &[]),
            "pattern 16:16 does not fit cbcs",
        ),
        (
            desc(&KID1, EncryptionScheme::Cens, &[3; 8], (0, 9), &[]),
            "pattern 0:9 does not fit cens",
        ),
    ] {
        match mk.decrypt(&mut sample, &d) {
            Err(EmeError::TypeError(m)) => assert!(m.contains(why), "{m:?} should say {why:?}"),
            r => panic!("{d:?}: {r:?}"),
        }
    }
    assert_eq!(sample, enc, "refused decrypts change nothing");
    assert_eq!(
        mk.decrypt(&mut sample, &cenc(&[3; 8], &[])),
        Ok(DecryptedSample::InPlace)
    );
    assert_eq!(sample, plain);

    // Non-session calls.
    assert_eq!(mk.set_server_certificate(b"cert"), Ok(false));
    assert!(matches!(
        mk.set_server_certificate(&[]),
        Err(EmeError::TypeError(_))
    ));
    let r = mk.create_session(SessionType::PersistentLicense);
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))), "{r:?}");
    let r = fresh().load("some-session");
    assert!(matches!(r, Err(EmeError::TypeError(_))), "{r:?}");
}
both_transports!(bad_inputs_get_eme_errors, crate::bad_inputs);

fn hw_secure_decode(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let caps = mk.capabilities();
    assert!(!caps.engine.is_empty());
    assert!(
        caps.robustness.contains(&Robustness::HwSecureDecode),
        "{caps:?}"
    );
    assert!(
        caps.robustness.contains(&Robustness::SwSecureCrypto),
        "{caps:?}"
    );
    let session = mk
        .create_session_with_robustness(SessionType::Temporary, Robustness::HwSecureDecode)
        .unwrap();
    assert_eq!(session.robustness(), Robustness::HwSecureDecode);
    load_keys(&session, &[(&KID2, &KEY2)]);
    let plain = plaintext(5000);
    let mut sample = plain.clone();
    encrypt_cenc(&KEY2, &[5; 8], &mut sample, &[(20, 4980)]);
    let enc = sample.clone();
    let d = desc(
        &KID2,
        EncryptionScheme::Cenc,
        &[5; 8],
        (0, 0),
        &[(20, 4980)],
    );
    // Clear output is never allowed for HW_SECURE_DECODE keys.
    let r = mk.decrypt(
        &mut sample,
        &SampleDescription {
            output: OutputWish::InPlace,
            ..d
        },
    );
    assert!(matches!(r, Err(EmeError::InvalidAccessError(_))), "{r:?}");
    assert_eq!(sample, enc);
    let Ok(DecryptedSample::SecureBuffer(handle)) = mk.decrypt(&mut sample, &d) else {
        panic!("expected a secure buffer");
    };
    assert_eq!(
        sample, enc,
        "the player's buffer never sees the clear sample"
    );
    let rendered = mk.render_secure_buffer(handle).unwrap();
    assert_eq!(rendered.len, 5000);
    let want = ring::digest::digest(&ring::digest::SHA256, &plain);
    assert_eq!(rendered.digest.as_slice(), want.as_ref());
    // Rendering frees the buffer.
    let r = mk.render_secure_buffer(handle);
    assert!(matches!(r, Err(EmeError::InvalidAccessError(_))), "{r:?}");
    let Ok(DecryptedSample::SecureBuffer(h2)) = mk.decrypt(&mut sample, &d) else {
        panic!("expected a secure buffer");
    };
    mk.release_secure_buffer(h2).unwrap();
    assert!(mk.release_secure_buffer(h2).is_err());

    // A SW_SECURE_CRYPTO session decrypts in place; an unknown level is refused.
    let sw = mk
        .create_session_with_robustness(SessionType::Temporary, Robustness::SwSecureCrypto)
        .unwrap();
    load_keys(&sw, &[(&KID1, &KEY1)]);
    assert_decrypts(&mk, &KID1, &KEY1);
}
both_transports!(
    hw_secure_decode_uses_secure_buffers,
    crate::hw_secure_decode
);

fn many_sessions_then_quota(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let max = mk.capabilities().max_sessions;
    assert!(max >= 32, "design minimum is 32 concurrent sessions");
    let mut sessions = Vec::new();
    for _ in 0..max {
        let s = mk.create_session(SessionType::Temporary).unwrap();
        s.generate_request("webm", &KID1).unwrap();
        sessions.push(s);
    }
    let extra = mk.create_session(SessionType::Temporary).unwrap();
    let r = extra.generate_request("webm", &KID1);
    assert!(matches!(r, Err(EmeError::QuotaExceededError(_))), "{r:?}");
    // Dropping a session frees its slot in the secure world.
    sessions.pop();
    let again = mk.create_session(SessionType::Temporary).unwrap();
    again.generate_request("webm", &KID1).unwrap();
}
both_transports!(session_quota, crate::many_sessions_then_quota);

/// A key refresh in a second session: decrypt uses the most recently updated session's key
/// while both are open, the older session's again once the newer one closes.
fn newest_session_key_wins(kind: Kind) {
    let (mk, _host) = media_keys(kind);
    let old_key = KEY1;
    let new_key = [0x3c; 16];
    let older = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&older, &[(&KID1, &old_key)]);
    let newer = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&newer, &[(&KID1, &new_key)]);
    assert_decrypts(&mk, &KID1, &new_key);
    // Updating the older session again makes it the newest.
    older.update(&license(&[(&KID1, &old_key)])).unwrap();
    assert_decrypts(&mk, &KID1, &old_key);
    newer.update(&license(&[(&KID1, &new_key)])).unwrap();
    assert_decrypts(&mk, &KID1, &new_key);
    newer.close().unwrap();
    assert_decrypts(&mk, &KID1, &old_key);
}

both_transports!(
    newest_session_key_wins_and_falls_back,
    crate::newest_session_key_wins
);

#[test]
fn sample_buffer_without_shared_memory_is_a_private_buffer() {
    let (mk, _host) = media_keys(Kind::InProcess);
    let session = mk.create_session(SessionType::Temporary).unwrap();
    load_keys(&session, &[(&KID1, &KEY1)]);
    let plain = plaintext(3000);
    let mut enc = plain.clone();
    encrypt_cenc(&KEY1, &[6; 8], &mut enc, &[(100, 2900)]);
    let mut buffer = mk.sample_buffer(plain.len()).unwrap();
    assert!(!buffer.is_shared());
    buffer.bytes_mut().copy_from_slice(&enc);
    let d = normal_world::SampleDescription {
        key_id: &KID1,
        scheme: normal_world::EncryptionScheme::Cenc,
        iv: &[6; 8],
        pattern: (0, 0),
        subsamples: &[(100, 2900)],
        output: normal_world::OutputWish::Auto,
    };
    assert_eq!(
        buffer.decrypt(&d),
        Ok(normal_world::DecryptedSample::InPlace)
    );
    assert_eq!(buffer.bytes(), plain.as_slice());
    drop(buffer);
    // The lock is released with the buffer.
    session.close().unwrap();
}
