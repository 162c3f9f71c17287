//! End-to-end Clear Key flows through `SecureWorld::process`, with content encrypted by
//! RustCrypto and digests computed by ring.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use cdm_core::abi::{
    DecryptOutput, DecryptRequest, Done, GetCapabilities, Message, OutputKind, ReleaseSecureBuffer,
    RenderSecureBuffer, Rendered, Status, Subsamples, ABI_VERSION,
};
use cdm_core::{
    ClosedReason, EncryptionScheme, InitDataType, KeyStatus, MessageType, Robustness, SessionType,
};
use common::*;

#[test]
fn capabilities_report_engine_levels_schemes_and_limits() {
    let mut h = Harness::new();
    let c = h.op(0, GetCapabilities).unwrap();
    assert_eq!(c.abi_version, ABI_VERSION);
    assert_eq!(c.engine, hal::aes::Engine::detect().name());
    assert_eq!(
        c.robustness,
        [
            Robustness::Empty,
            Robustness::SwSecureCrypto,
            Robustness::HwSecureDecode
        ]
    );
    assert_eq!(c.schemes, EncryptionScheme::ALL);
    assert_eq!(c.session_types, [SessionType::Temporary]);
    assert_eq!(
        (c.max_sessions, c.max_keys_per_session, c.max_secure_buffers),
        (32, 32, 16)
    );
    assert_eq!(
        (c.max_sample_len, c.max_subsamples),
        (16 * 1024 * 1024, 576)
    );
}

#[test]
fn full_clear_key_flow_with_cenc_init_data() {
    let mut h = Harness::new();
    let (s, id) = h.try_open(Robustness::Empty).unwrap();
    assert_ne!(s, 0);
    assert_eq!(id.len(), 16);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_ne!(id, format!("{s:016x}"), "the session id is not the handle");

    // EME §9.1.3 license request format.
    let msg = h
        .generate(s, InitDataType::Cenc, &pssh_v1(&[KID1, KID2]))
        .unwrap();
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        format!(r#"{{"kids":["{KID1_B64}","{KID2_B64}"],"type":"temporary"}}"#)
    );
    let st = h
        .update(s, &license(&[(&KID1, KEY1), (&KID2, KEY2)]))
        .unwrap();
    assert_eq!(
        st.key_statuses,
        [
            (cdm_core::KeyId::from(KID1), KeyStatus::Usable),
            (cdm_core::KeyId::from(KID2), KeyStatus::Usable)
        ]
    );
    assert_eq!(st.closed, None);

    // cenc, 8-byte IV, whole sample protected.
    let clear = plaintext(1000);
    let mut sample = clear.clone();
    let iv = [9u8, 8, 7, 6, 5, 4, 3, 2];
    encrypt_cenc(&KEY2, &iv, &mut sample, &[]);
    assert_ne!(sample, clear);
    let r = h
        .decrypt(
            s,
            cenc_req(&KID2, &iv, 1000, &[], OutputKind::InPlace),
            &mut sample,
        )
        .unwrap();
    assert_eq!(r, DecryptOutput::InPlace);
    assert_eq!(sample, clear);

    // Remove: keys released, record of license destruction (EME §9.1.5).
    let Message {
        message_type,
        message,
        state,
    } = h.remove(s).unwrap();
    assert_eq!(message_type, MessageType::LicenseRelease);
    assert_eq!(
        String::from_utf8(message).unwrap(),
        format!(r#"{{"kids":["{KID1_B64}","{KID2_B64}"]}}"#)
    );
    assert!(state
        .key_statuses
        .iter()
        .all(|(_, st)| *st == KeyStatus::Released));
    let mut again = sample.clone();
    encrypt_cenc(&KEY2, &iv, &mut again, &[]);
    let before = again.clone();
    assert_eq!(
        h.decrypt(
            s,
            cenc_req(&KID2, &iv, 1000, &[], OutputKind::InPlace),
            &mut again
        ),
        Err(Status::KeyNotUsable)
    );
    assert_eq!(again, before);

    // A wrong acknowledgement changes nothing; the right one closes the session.
    let wrong = format!(r#"{{"kids":["{KID1_B64}"]}}"#);
    assert_eq!(h.update(s, wrong.as_bytes()), Err(Status::InvalidLicense));
    let ack = format!(r#"{{"kids":["{KID2_B64}","{KID1_B64}"]}}"#);
    let st = h.update(s, ack.as_bytes()).unwrap();
    assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));
    assert_eq!(h.statuses(s), Err(Status::NoSuchSession));
}

#[test]
fn keyids_and_webm_init_data_make_eme_license_requests() {
    let mut h = Harness::new();
    let s = h.open(Robustness::SwSecureCrypto);
    let init = format!(r#"{{"kids":["{KID2_B64}"]}}"#);
    let msg = h
        .generate(s, InitDataType::KeyIds, init.as_bytes())
        .unwrap();
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        format!(r#"{{"kids":["{KID2_B64}"],"type":"temporary"}}"#)
    );
    let s2 = h.open(Robustness::SwSecureCrypto);
    let msg = h.generate(s2, InitDataType::Webm, &[0xfb, 0xff]).unwrap();
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        r#"{"kids":["-_8"],"type":"temporary"}"#
    );
}

#[test]
fn cenc_with_subsamples_and_cbcs_pattern_decrypt_to_known_plaintext() {
    let mut h = Harness::new();
    let s = h.session_with_keys(Robustness::SwSecureCrypto, &[(&KID1, KEY1)]);

    // cenc: keystream continues across subsamples, ranges ending mid-block.
    let map = [(5u32, 37u32), (11, 100), (0, 3), (7, 0)];
    let len = map.iter().map(|(c, p)| (c + p) as usize).sum::<usize>();
    let clear = plaintext(len);
    let mut sample = clear.clone();
    let iv = [0xa0, 0, 0, 0, 0, 0, 0, 1];
    encrypt_cenc(&KEY1, &iv, &mut sample, &map);
    h.decrypt(
        s,
        cenc_req(&KID1, &iv, len, &map, OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    assert_eq!(sample, clear);

    // cbcs 1:9, constant IV restarting per subsample, partial blocks in the clear.
    let map = [(16u32, 16 * 25 + 5), (3, 200)];
    let len = map.iter().map(|(c, p)| (c + p) as usize).sum::<usize>();
    let clear = plaintext(len);
    let mut sample = clear.clone();
    let iv = [0x5a; 16];
    encrypt_cbcs(&KEY1, &iv, &mut sample, &map, (1, 9));
    assert_ne!(sample, clear);
    let d = DecryptRequest {
        key_id: &KID1,
        scheme: EncryptionScheme::Cbcs,
        pattern: (1, 9),
        output: OutputKind::InPlace,
        iv: &iv,
        sample_len: len as u32,
        subsamples: Subsamples::Pairs(&map),
    };
    h.decrypt(s, d, &mut sample).unwrap();
    assert_eq!(sample, clear);
}

#[test]
fn hw_secure_decode_keeps_clear_samples_in_secure_buffers() {
    let mut h = Harness::new();
    let s = h.session_with_keys(Robustness::HwSecureDecode, &[(&KID1, KEY1)]);
    let clear = plaintext(4096 + 7);
    let mut sample = clear.clone();
    let iv = [1u8; 8];
    encrypt_cenc(&KEY1, &iv, &mut sample, &[]);
    let encrypted = sample.clone();

    assert_eq!(
        h.decrypt(
            s,
            cenc_req(&KID1, &iv, sample.len(), &[], OutputKind::InPlace),
            &mut sample
        ),
        Err(Status::OutputNotAllowed)
    );
    assert_eq!(sample, encrypted);

    let DecryptOutput::SecureBuffer(handle) = h
        .decrypt(
            s,
            cenc_req(&KID1, &iv, sample.len(), &[], OutputKind::SecureBuffer),
            &mut sample,
        )
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(handle, 0);
    assert_eq!(
        sample, encrypted,
        "the shared buffer never receives clear bytes"
    );

    // Another session cannot render it.
    let other = h.open(Robustness::HwSecureDecode);
    assert_eq!(
        h.op(other, RenderSecureBuffer { buffer: handle }),
        Err(Status::NoSuchSecureBuffer)
    );

    let r = h.op(s, RenderSecureBuffer { buffer: handle }).unwrap();
    assert_eq!(
        r,
        Rendered {
            len: clear.len() as u32,
            digest: sha256(&clear)
        }
    );
    assert_eq!(h.sw.platform().sink.frames(), 1);
    // Rendering frees the buffer.
    assert_eq!(
        h.op(s, RenderSecureBuffer { buffer: handle }),
        Err(Status::NoSuchSecureBuffer)
    );

    // Release without rendering; closing the session frees its buffers.
    let decrypt_to_buffer = |h: &mut Harness| {
        let mut sm = encrypted.clone();
        match h
            .decrypt(
                s,
                cenc_req(&KID1, &iv, sm.len(), &[], OutputKind::SecureBuffer),
                &mut sm,
            )
            .unwrap()
        {
            DecryptOutput::SecureBuffer(b) => b,
            other => panic!("{other:?}"),
        }
    };
    let b1 = decrypt_to_buffer(&mut h);
    assert_eq!(h.op(s, ReleaseSecureBuffer { buffer: b1 }).unwrap(), Done);
    assert_eq!(
        h.op(s, ReleaseSecureBuffer { buffer: b1 }),
        Err(Status::NoSuchSecureBuffer)
    );
    let b2 = decrypt_to_buffer(&mut h);
    assert_eq!(h.close(s).unwrap(), Done);
    assert_eq!(
        h.op(s, RenderSecureBuffer { buffer: b2 }),
        Err(Status::NoSuchSecureBuffer)
    );
    assert_eq!(h.sw.platform().sink.frames(), 1);
}

#[test]
fn sw_session_may_decrypt_into_a_secure_buffer() {
    let mut h = Harness::new();
    let s = h.session_with_keys(Robustness::SwSecureCrypto, &[(&KID1, KEY1)]);
    let clear = plaintext(64);
    let mut sample = clear.clone();
    encrypt_cenc(&KEY1, &[3; 8], &mut sample, &[]);
    let DecryptOutput::SecureBuffer(b) = h
        .decrypt(
            s,
            cenc_req(&KID1, &[3; 8], 64, &[], OutputKind::SecureBuffer),
            &mut sample,
        )
        .unwrap()
    else {
        panic!()
    };
    let Rendered { digest, .. } = h.op(s, RenderSecureBuffer { buffer: b }).unwrap();
    assert_eq!(digest, sha256(&clear));
}

#[test]
fn thirty_two_keys_per_session_and_keys_outside_the_request() {
    let mut h = Harness::new();
    let s = h.open(Robustness::Empty);
    h.generate(s, InitDataType::Webm, &[0xaa]).unwrap();
    let kids: Vec<[u8; 16]> = (0..32u8).map(|i| [i; 16]).collect();
    let keys: Vec<(&[u8], [u8; 16])> = kids.iter().map(|k| (&k[..], [k[0] ^ 0x5c; 16])).collect();
    h.update(s, &license(&keys)).unwrap();
    assert_eq!(h.statuses(s).unwrap().len(), 32);
    // The 32nd key decrypts.
    let clear = plaintext(33);
    let mut sample = clear.clone();
    encrypt_cenc(&[31 ^ 0x5c; 16], &[0; 8], &mut sample, &[]);
    h.decrypt(
        s,
        cenc_req(&kids[31], &[0; 8], 33, &[], OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    assert_eq!(sample, clear);
}
