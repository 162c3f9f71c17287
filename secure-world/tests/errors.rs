//! Every error class answers the right status and changes nothing: afterwards the session
//! still decrypts and refused samples are untouched.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use cdm_core::abi::{
    DecryptOutput, DecryptRequest, Done, Header, Load, Opcode, OutputKind, ReleaseSecureBuffer,
    Request, Response, Status, Subsamples, HEADER_LEN,
};
use cdm_core::{EncryptionScheme, InitDataType, KeyStatus, KeySystem, Robustness, SessionType};
use common::*;
use secure_world::Config;

/// Checks that session `s` still decrypts a cenc sample with KEY1 under KID1.
fn still_decrypts(h: &mut Harness, s: u64) {
    let clear = plaintext(100);
    let mut sample = clear.clone();
    encrypt_cenc(&KEY1, &[4; 8], &mut sample, &[]);
    h.decrypt(
        s,
        cenc_req(&KID1, &[4; 8], 100, &[], OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    assert_eq!(sample, clear);
}

/// Asserts `d` is refused with `status` and the sample is untouched.
fn refused(h: &mut Harness, s: u64, d: DecryptRequest<'_>, sample: &mut [u8], status: Status) {
    let before = sample.to_vec();
    assert_eq!(h.decrypt(s, d, sample), Err(status));
    assert_eq!(sample, &before[..]);
}

/// Sends `msg`, a `Decrypt` forged on the wire past an ABI limit: it must be refused as
/// `PayloadTooLarge` with the sample untouched. Answers the response header.
fn forged_too_large(h: &mut Harness, msg: &[u8], sample: &mut [u8]) -> Header {
    let before = sample.to_vec();
    h.sw.process(msg, sample, &mut h.resp);
    let (header, _) = Header::parse(&h.resp).unwrap();
    assert_eq!(header.status().unwrap(), Status::PayloadTooLarge);
    assert_eq!(sample, &before[..]);
    header
}

#[test]
fn decrypt_errors_change_nothing() {
    let mut h = Harness::new();
    let s = h.session_with_keys(Robustness::SwSecureCrypto, &[(&KID1, KEY1)]);
    let mut sample = plaintext(64);
    let iv = [7u8; 8];
    // Refused: session, key ID, sample length, subsample map, status.
    type Case<'a> = (u64, &'a [u8], usize, &'a [(u32, u32)], Status);
    let cases: [Case<'_>; 5] = [
        // Wrong session.
        (s ^ 1, &KID1, 64, &[], Status::NoSuchSession),
        (0, &KID1, 64, &[], Status::NoSuchSession),
        // Unknown key.
        (s, &KID2, 64, &[], Status::NoKey),
        // Wrong sample length.
        (s, &KID1, 63, &[], Status::DecryptFailed),
        // Subsample map that does not cover the sample.
        (s, &KID1, 64, &[(10, 50)], Status::DecryptFailed),
    ];
    for (session, kid, len, map, status) in cases {
        let d = cenc_req(kid, &iv, len, map, OutputKind::InPlace);
        refused(&mut h, session, d, &mut sample, status);
    }
    // Pattern on cenc, 8-byte IV on cbcs: refused descriptions.
    let mut d = cenc_req(&KID1, &iv, 64, &[], OutputKind::InPlace);
    d.pattern = (1, 9);
    refused(&mut h, s, d, &mut sample, Status::DecryptFailed);
    let mut d = cenc_req(&KID1, &iv, 64, &[], OutputKind::InPlace);
    d.scheme = EncryptionScheme::Cbcs;
    refused(&mut h, s, d, &mut sample, Status::DecryptFailed);
    // Descriptor over the ABI's sample limit: the encoder refuses, so forge it on the wire.
    let d = cenc_req(&KID1, &iv, 16 * 1024 * 1024 + 1, &[], OutputKind::InPlace);
    let mut msg = Vec::new();
    assert!(Request::Decrypt(d).encode(s, 1, &mut msg).is_err());
    Request::Decrypt(cenc_req(&KID1, &iv, 64, &[], OutputKind::InPlace))
        .encode(s, 8, &mut msg)
        .unwrap();
    let sample_len_at = HEADER_LEN + 8 + 16;
    msg[sample_len_at..sample_len_at + 4].copy_from_slice(&(16u32 * 1024 * 1024 + 1).to_le_bytes());
    forged_too_large(&mut h, &msg, &mut sample);
    // Shared buffer over the limit (descriptor within it).
    let mut big = vec![0u8; 16 * 1024 * 1024 + 1];
    let d = cenc_req(&KID1, &iv, 16, &[], OutputKind::InPlace);
    assert_eq!(h.decrypt(s, d, &mut big), Err(Status::PayloadTooLarge));
    assert!(big.iter().all(|&b| b == 0));
    // Too many subsamples: the encoder refuses, so forge the count on the wire.
    let many = vec![(0u32, 0u32); 577];
    let d = DecryptRequest {
        subsamples: Subsamples::Pairs(&many),
        ..cenc_req(&KID1, &iv, 0, &[], OutputKind::InPlace)
    };
    let mut msg = Vec::new();
    assert!(Request::Decrypt(d).encode(s, 1, &mut msg).is_err());
    Request::Decrypt(cenc_req(&KID1, &iv, 64, &[], OutputKind::InPlace))
        .encode(s, 9, &mut msg)
        .unwrap();
    let count_at = HEADER_LEN + 8 + 16 + 4 + 2 + KID1.len();
    assert_eq!(msg.len(), count_at + 2);
    msg[count_at..].copy_from_slice(&577u16.to_le_bytes());
    msg.extend(core::iter::repeat_n(0u8, 577 * 8));
    let payload = (msg.len() - HEADER_LEN) as u32;
    msg[20..24].copy_from_slice(&payload.to_le_bytes());
    let header = forged_too_large(&mut h, &msg, &mut sample);
    assert_eq!(header.request_id, 9);
    still_decrypts(&mut h, s);
}

#[test]
fn quotas() {
    let config = Config {
        max_sessions: 2,
        max_keys_per_session: 2,
        max_secure_buffers: 2,
        max_secure_buffer_bytes: 100,
        ..Config::default()
    };
    let mut h = Harness::with_config(config);
    let s = h.open(Robustness::HwSecureDecode);
    let _s2 = h.open(Robustness::Empty);
    assert_eq!(
        h.try_open(Robustness::Empty),
        Err(Status::SessionQuotaExceeded)
    );

    h.generate(s, InitDataType::Webm, &KID1).unwrap();
    // Three keys: refused whole.
    let l3 = license(&[(&KID1, KEY1), (&KID2, KEY2), (&[5u8; 16], KEY2)]);
    assert_eq!(h.update(s, &l3), Err(Status::KeyQuotaExceeded));
    assert!(h.statuses(s).unwrap().is_empty());
    // A bad key among good ones: refused whole.
    let bad = format!(
        r#"{{"keys":[{{"kty":"oct","k":"{}","kid":"{}"}},{{"kty":"oct","k":"AAAA","kid":"{}"}}]}}"#,
        b64url(&KEY1),
        KID1_B64,
        KID2_B64
    );
    assert_eq!(h.update(s, bad.as_bytes()), Err(Status::InvalidLicense));
    assert!(h.statuses(s).unwrap().is_empty());
    h.update(s, &license(&[(&KID1, KEY1)])).unwrap();
    h.update(s, &license(&[(&KID2, KEY2)])).unwrap();
    // Replacing a key is not a new key; a third distinct one is.
    h.update(s, &license(&[(&KID1, KEY1)])).unwrap();
    assert_eq!(
        h.update(s, &license(&[(&[5u8; 16], KEY1)])),
        Err(Status::KeyQuotaExceeded)
    );
    assert_eq!(
        h.statuses(s).unwrap(),
        [
            (KID1.to_vec(), KeyStatus::Usable),
            (KID2.to_vec(), KeyStatus::Usable)
        ]
    );

    // Secure buffers: by count, then by bytes.
    let sb = |h: &mut Harness, len: usize| {
        let mut sample = plaintext(len);
        h.decrypt(
            s,
            cenc_req(&KID1, &[0; 8], len, &[], OutputKind::SecureBuffer),
            &mut sample,
        )
    };
    let DecryptOutput::SecureBuffer(b1) = sb(&mut h, 60).unwrap() else {
        panic!()
    };
    assert_eq!(sb(&mut h, 41), Err(Status::SecureBufferQuotaExceeded));
    sb(&mut h, 40).unwrap();
    assert_eq!(sb(&mut h, 0), Err(Status::SecureBufferQuotaExceeded));
    h.op(s, ReleaseSecureBuffer { buffer: b1 }).unwrap();
    sb(&mut h, 60).unwrap();
}

#[test]
fn invalid_state_transitions_and_unsupported_requests() {
    let mut h = Harness::with_config(Config {
        hw_secure_decode: false,
        max_secure_buffers: 0,
        ..Config::default()
    });
    assert_eq!(
        h.try_open(Robustness::HwSecureDecode),
        Err(Status::NotSupported)
    );
    assert_eq!(
        h.try_open_typed(Robustness::Empty, SessionType::PersistentLicense),
        Err(Status::NotSupported)
    );
    let s = h.open(Robustness::Empty);
    assert_eq!(
        h.op(
            s,
            Load {
                key_system: KeySystem::ClearKey,
                robustness: Robustness::Empty,
                session_id: b"0123"
            }
        ),
        Err(Status::NotSupported)
    );
    assert_eq!(
        h.update(s, &license(&[(&KID1, KEY1)])),
        Err(Status::InvalidState)
    );
    assert_eq!(h.remove(s), Err(Status::InvalidState));
    assert_eq!(
        h.generate(s, InitDataType::Webm, &[]),
        Err(Status::InvalidInitData)
    );
    assert_eq!(
        h.generate(s, InitDataType::Cenc, b"not a box"),
        Err(Status::InvalidInitData)
    );
    h.generate(s, InitDataType::Webm, &KID1).unwrap();
    assert_eq!(
        h.generate(s, InitDataType::Webm, &KID1),
        Err(Status::InvalidState)
    );
    assert_eq!(h.update(s, b"{\"keys\":[]}"), Err(Status::InvalidLicense));
    assert_eq!(h.update(s, b"garbage"), Err(Status::InvalidLicense));
    let persistent_license = String::from_utf8(license(&[(&KID1, KEY1)]))
        .unwrap()
        .replace("temporary", "persistent-license");
    assert_eq!(
        h.update(s, persistent_license.as_bytes()),
        Err(Status::InvalidLicense)
    );
    assert!(h.statuses(s).unwrap().is_empty());
    h.update(s, &license(&[(&KID1, KEY1)])).unwrap();
    still_decrypts(&mut h, s);
    h.remove(s).unwrap();
    assert_eq!(h.remove(s), Err(Status::InvalidState));
    assert_eq!(
        h.statuses(s).unwrap(),
        [(KID1.to_vec(), KeyStatus::Released)]
    );
    // After remove, a license is not an acknowledgement.
    assert_eq!(
        h.update(s, &license(&[(&KID1, KEY1)])),
        Err(Status::InvalidLicense)
    );
    assert_eq!(h.close(s).unwrap(), Done);
    assert_eq!(h.close(s), Err(Status::NoSuchSession));
}

/// Sends raw bytes; answers the response header.
fn raw(h: &mut Harness, msg: &[u8]) -> Header {
    h.sw.process(msg, &mut [], &mut h.resp);
    let (header, payload) = Header::parse(&h.resp).unwrap();
    assert!(payload.is_empty());
    header
}

#[test]
fn malformed_messages() {
    let mut h = Harness::new();
    let s = h.session_with_keys(Robustness::SwSecureCrypto, &[(&KID1, KEY1)]);
    let mut good = Vec::new();
    Request::GetKeyStatuses(cdm_core::abi::GetKeyStatuses)
        .encode(s, 0x1234, &mut good)
        .unwrap();

    let check = |h: &mut Harness, msg: &[u8], status: Status, echoed: bool| {
        let header = raw(h, msg);
        assert_eq!(header.status().unwrap(), status);
        if echoed {
            assert_eq!(header.request_id, 0x1234);
        } else {
            assert_eq!(
                (header.opcode, header.request_id, header.session),
                (0, 0, 0)
            );
        }
    };
    check(&mut h, &good[..HEADER_LEN - 1], Status::Truncated, false);
    check(&mut h, &[], Status::Truncated, false);
    let mut trailing = good.clone();
    trailing.push(0);
    check(&mut h, &trailing, Status::TrailingBytes, false);
    let mut magic = good.clone();
    magic[0] ^= 1;
    check(&mut h, &magic, Status::BadMagic, false);
    let mut version = good.clone();
    version[4] = 2;
    check(&mut h, &version, Status::UnsupportedVersion, false);
    let mut opcode = good.clone();
    opcode[6..8].copy_from_slice(&0x0999u16.to_le_bytes());
    check(&mut h, &opcode, Status::UnknownOpcode, true);
    // Payload on a payload-less opcode: length field says 1 and a byte follows.
    let mut extra = good.clone();
    extra[20..24].copy_from_slice(&1u32.to_le_bytes());
    extra.push(0);
    check(&mut h, &extra, Status::TrailingBytes, true);
    // A decrypt whose payload is cut short (header consistent).
    let mut d = Vec::new();
    Request::Decrypt(cenc_req(&KID1, &[0; 8], 4, &[], OutputKind::InPlace))
        .encode(s, 0x1234, &mut d)
        .unwrap();
    let cut = d.len() - 3;
    d.truncate(cut);
    let n = (cut - HEADER_LEN) as u32;
    d[20..24].copy_from_slice(&n.to_le_bytes());
    check(&mut h, &d, Status::Truncated, true);
    // Non-zero status in a request.
    let mut st = good.clone();
    st[24] = 1;
    check(&mut h, &st, Status::InvalidField, true);

    // The good message still works, and so does decryption.
    let (header, r) = Response::parse(Opcode::GetKeyStatuses, &{
        h.sw.process(&good, &mut [], &mut h.resp);
        h.resp.clone()
    })
    .unwrap();
    assert_eq!(header.request_id, 0x1234);
    assert!(r.is_ok());
    still_decrypts(&mut h, s);
}

#[test]
fn handles_are_random_and_distinct() {
    let mut h = Harness::new();
    let mut seen = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..32 {
        let (s, id) = h.try_open(Robustness::Empty).unwrap();
        assert!(s != 0 && seen.insert(s));
        assert!(ids.insert(id));
    }
    // Consecutive handles are not a counter.
    let v: Vec<u64> = seen.into_iter().collect();
    assert!(v.windows(2).any(|w| w[0].abs_diff(w[1]) > 1 << 32));
}
