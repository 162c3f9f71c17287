//! The host side of the C ABI, called as C calls it: the Clear Key flow (with licenses from
//! the test kit's license builder and samples from its reference encryptor), persistent
//! licenses, concurrency, and every error path of the boundary (NULL pointers, undersized
//! buffers, bad handles, malformed arguments).

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use cdm_testkit::{cenc, clearkey, temp::TempDir};
use tee_cdm::*;

mod common;
use common::{last_error, ok};

const KID: [u8; 16] = [0x11; 16];
const KEY: [u8; 16] = [0x22; 16];
const CLEARKEY: &CStr = c"org.w3.clearkey";

/// Strings and arrays a `TeeCdmConfiguration` points to, kept alive together.
struct Config {
    _strings: Vec<CString>,
    _init_data_types: Vec<*const c_char>,
    _session_types: Vec<*const c_char>,
    _video: Vec<TeeCdmMediaCapability>,
    config: TeeCdmConfiguration,
}

fn config(session_types: &[&str]) -> Config {
    let strings: Vec<CString> = ["cenc", "keyids", "video/mp4; codecs=\"avc1.64001f\""]
        .iter()
        .chain(session_types)
        .map(|s| CString::new(*s).unwrap())
        .collect();
    let init_data_types = vec![strings[0].as_ptr(), strings[1].as_ptr()];
    let session_types: Vec<*const c_char> = strings[3..].iter().map(|s| s.as_ptr()).collect();
    let video = vec![TeeCdmMediaCapability {
        content_type: strings[2].as_ptr(),
        encryption_scheme: null(),
        robustness: null(),
    }];
    let config = TeeCdmConfiguration {
        label: null(),
        init_data_types: init_data_types.as_ptr(),
        init_data_types_len: init_data_types.len(),
        audio_capabilities: null(),
        audio_capabilities_len: 0,
        video_capabilities: video.as_ptr(),
        video_capabilities_len: video.len(),
        distinctive_identifier: TeeCdmRequirement::Optional as u32,
        persistent_state: TeeCdmRequirement::Optional as u32,
        session_types: if session_types.is_empty() {
            null()
        } else {
            session_types.as_ptr()
        },
        session_types_len: session_types.len(),
    };
    Config {
        _strings: strings,
        _init_data_types: init_data_types,
        _session_types: session_types,
        _video: video,
        config,
    }
}

fn access_with(storage: Option<&CStr>, session_types: &[&str]) -> *mut TeeCdmAccess {
    let c = config(session_types);
    let mut access = null_mut();
    // SAFETY: every pointer is live (`c` owns what its config points to).
    ok(unsafe {
        tee_cdm_request_access(
            CLEARKEY.as_ptr(),
            &c.config,
            1,
            storage.map_or(null(), CStr::as_ptr),
            &mut access,
        )
    });
    access
}

/// `tee_cdm_request_access` for `configs`, without a storage directory.
///
/// # Safety
///
/// `key_system` and what `configs` point to are live or NULL; `access` is writable or NULL.
unsafe fn request_access(
    key_system: *const c_char,
    configs: &[TeeCdmConfiguration],
    access: *mut *mut TeeCdmAccess,
) -> TeeCdmStatus {
    // SAFETY: the caller's contract; `configs` is a live slice of its length.
    unsafe { tee_cdm_request_access(key_system, configs.as_ptr(), configs.len(), null(), access) }
}

fn media_keys() -> *mut TeeCdmMediaKeys {
    let access = access_with(None, &[]);
    let mut keys = null_mut();
    // SAFETY: `keys` is a live local.
    ok(unsafe { tee_cdm_media_keys_create(access, &mut keys) });
    ok(tee_cdm_access_free(access));
    keys
}

fn session(keys: *mut TeeCdmMediaKeys, ty: TeeCdmSessionType) -> *mut TeeCdmSession {
    let mut s = null_mut();
    // SAFETY: `s` is a live local.
    ok(unsafe { tee_cdm_session_create(keys, ty as u32, &mut s) });
    s
}

/// Drains one event, growing the message buffer as the needed-size protocol says.
fn next_event(s: *mut TeeCdmSession) -> (TeeCdmEvent, Vec<u8>) {
    let mut ev = TeeCdmEvent {
        kind: TeeCdmEventKind::None,
        message_type: TeeCdmMessageType::None,
        closed_reason: TeeCdmClosedReason::None,
        message_len: 0,
    };
    // SAFETY: `ev` is a live local; no message buffer (capacity 0).
    let st = unsafe { tee_cdm_session_next_event(s, &mut ev, null_mut(), 0) };
    if st == TeeCdmStatus::BufferTooSmall {
        let mut message = vec![0u8; ev.message_len];
        // SAFETY: `message` holds message.len() writable bytes.
        ok(unsafe { tee_cdm_session_next_event(s, &mut ev, message.as_mut_ptr(), message.len()) });
        return (ev, message);
    }
    ok(st);
    (ev, Vec::new())
}

/// generateRequest("cenc") with a `pssh` box naming KID.
fn generate_request(s: *mut TeeCdmSession) -> TeeCdmStatus {
    let pssh = cenc::pssh_v1(&[&KID]);
    // SAFETY: live buffers of the lengths given.
    unsafe { tee_cdm_session_generate_request(s, c"cenc".as_ptr(), pssh.as_ptr(), pssh.len()) }
}

/// generateRequest + the license for KID/KEY: the session ends with KID usable.
fn license_session(keys: *mut TeeCdmMediaKeys, ty: TeeCdmSessionType) -> *mut TeeCdmSession {
    let s = session(keys, ty);
    ok(generate_request(s));
    let (ev, request) = next_event(s);
    assert_eq!(ev.kind, TeeCdmEventKind::Message);
    assert_eq!(ev.message_type, TeeCdmMessageType::LicenseRequest);
    let license = clearkey::answer(&request, &[(&KID, &KEY)]).unwrap();
    // SAFETY: as above.
    ok(unsafe { tee_cdm_session_update(s, license.as_ptr(), license.len()) });
    assert_eq!(next_event(s).0.kind, TeeCdmEventKind::KeyStatusesChange);
    s
}

fn key_status(s: *mut TeeCdmSession, kid: &[u8]) -> TeeCdmKeyStatus {
    let mut status = TeeCdmKeyStatus::InternalError;
    // SAFETY: live buffers.
    ok(unsafe { tee_cdm_session_get_key_status(s, kid.as_ptr(), kid.len(), &mut status) });
    status
}

fn cenc_desc(kid: &[u8], iv: &[u8], subs: &[TeeCdmSubsample]) -> TeeCdmSampleDescription {
    TeeCdmSampleDescription {
        key_id: kid.as_ptr(),
        key_id_len: kid.len(),
        scheme: TeeCdmScheme::Cenc as u32,
        iv: iv.as_ptr(),
        iv_len: iv.len(),
        crypt_byte_block: 0,
        skip_byte_block: 0,
        subsamples: subs.as_ptr(),
        subsamples_len: subs.len(),
    }
}

fn decrypt(
    keys: *mut TeeCdmMediaKeys,
    sample: &mut [u8],
    desc: &TeeCdmSampleDescription,
) -> TeeCdmStatus {
    // SAFETY: `sample` is exclusively borrowed; `desc` points to live buffers.
    unsafe { tee_cdm_media_keys_decrypt(keys, sample.as_mut_ptr(), sample.len(), desc) }
}

#[test]
fn clear_key_flow_decrypts_cenc_and_cbcs_samples_of_the_reference_encryptor() {
    let keys = media_keys();
    let s = license_session(keys, TeeCdmSessionType::Temporary);
    assert_eq!(key_status(s, &KID), TeeCdmKeyStatus::Usable);
    assert_eq!(key_status(s, &[9; 16]), TeeCdmKeyStatus::None);

    let clear = cenc::plaintext(3000);
    let mut sample = clear.clone();
    let iv = [7u8; 8];
    cenc::encrypt_cenc(&KEY, &iv, &mut sample, &[(10, 1000), (20, 1970)]);
    assert_ne!(sample, clear);
    let subs = [
        TeeCdmSubsample {
            clear_bytes: 10,
            protected_bytes: 1000,
        },
        TeeCdmSubsample {
            clear_bytes: 20,
            protected_bytes: 1970,
        },
    ];
    ok(decrypt(keys, &mut sample, &cenc_desc(&KID, &iv, &subs)));
    assert_eq!(sample, clear);

    let mut sample = clear.clone();
    let civ = [3u8; 16];
    cenc::encrypt_cbcs(&KEY, &civ, &mut sample, &[(5, 2995)], (1, 9));
    let subs = [TeeCdmSubsample {
        clear_bytes: 5,
        protected_bytes: 2995,
    }];
    let mut desc = cenc_desc(&KID, &civ, &subs);
    desc.scheme = TeeCdmScheme::Cbcs as u32;
    desc.crypt_byte_block = 1;
    desc.skip_byte_block = 9;
    ok(decrypt(keys, &mut sample, &desc));
    assert_eq!(sample, clear);

    ok(tee_cdm_session_close(s));
    let (ev, _) = next_event(s);
    assert_eq!(ev.kind, TeeCdmEventKind::KeyStatusesChange);
    let (ev, _) = next_event(s);
    assert_eq!(ev.kind, TeeCdmEventKind::Closed);
    assert_eq!(ev.closed_reason, TeeCdmClosedReason::ClosedByApplication);
    assert_eq!(next_event(s).0.kind, TeeCdmEventKind::None);
    let mut reason = TeeCdmClosedReason::None;
    // SAFETY: live local.
    ok(unsafe { tee_cdm_session_get_closed_reason(s, &mut reason) });
    assert_eq!(reason, TeeCdmClosedReason::ClosedByApplication);
    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));
}

#[test]
fn persistent_license_is_loaded_by_a_new_secure_world_on_the_same_storage() {
    let dir = TempDir::new("cdm-ffi-persistent");
    let dir_c = CString::new(dir.path().to_str().unwrap()).unwrap();
    let access = access_with(Some(&dir_c), &["persistent-license"]);

    let mut keys = null_mut();
    // SAFETY: live local.
    ok(unsafe { tee_cdm_media_keys_create(access, &mut keys) });
    let s = license_session(keys, TeeCdmSessionType::PersistentLicense);
    let mut id = [0u8; 65];
    let mut needed = 0;
    // SAFETY: `id` holds 65 writable bytes.
    ok(unsafe { tee_cdm_session_get_id(s, id.as_mut_ptr().cast(), id.len(), &mut needed) });
    let id = CStr::from_bytes_until_nul(&id).unwrap().to_owned();
    assert_eq!(needed, id.as_bytes_with_nul().len());
    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));

    // A new secure world on the same directory: load() restores the key, no request.
    let mut keys = null_mut();
    // SAFETY: live local.
    ok(unsafe { tee_cdm_media_keys_create(access, &mut keys) });
    let s = session(keys, TeeCdmSessionType::PersistentLicense);
    let mut loaded = false;
    // SAFETY: live locals.
    ok(unsafe { tee_cdm_session_load(s, id.as_ptr(), &mut loaded) });
    assert!(loaded);
    assert_eq!(key_status(s, &KID), TeeCdmKeyStatus::Usable);
    let clear = cenc::plaintext(100);
    let mut sample = clear.clone();
    cenc::encrypt_cenc(&KEY, &[1; 8], &mut sample, &[]);
    ok(decrypt(keys, &mut sample, &cenc_desc(&KID, &[1; 8], &[])));
    assert_eq!(sample, clear);

    // An id nothing is stored under: loaded = false, not an error.
    let s2 = session(keys, TeeCdmSessionType::PersistentLicense);
    // SAFETY: live locals.
    ok(unsafe { tee_cdm_session_load(s2, c"0123456789abcdef".as_ptr(), &mut loaded) });
    assert!(!loaded);

    // remove(): keys released, a license-release message for the server.
    ok(tee_cdm_session_remove(s));
    let events: Vec<_> = std::iter::from_fn(|| {
        let (ev, msg) = next_event(s);
        (ev.kind != TeeCdmEventKind::None).then_some((ev, msg))
    })
    .collect();
    assert!(events.iter().any(
        |(ev, msg)| ev.message_type == TeeCdmMessageType::LicenseRelease
            && std::str::from_utf8(msg).unwrap().contains("kids")
    ));
    assert_eq!(key_status(s, &KID), TeeCdmKeyStatus::Released);

    for h in [s, s2] {
        ok(tee_cdm_session_free(h));
    }
    ok(tee_cdm_media_keys_free(keys));
    ok(tee_cdm_access_free(access));
}

#[test]
fn eme_errors_map_to_their_status_codes() {
    let keys = media_keys();
    let s = session(keys, TeeCdmSessionType::Temporary);
    // update() before generateRequest(): InvalidStateError.
    // SAFETY: live buffer.
    let st = unsafe { tee_cdm_session_update(s, b"{}".as_ptr(), 2) };
    assert_eq!(st, TeeCdmStatus::InvalidState);
    assert!(
        last_error().starts_with("tee_cdm_session_update: InvalidStateError"),
        "{}",
        last_error()
    );
    // An init data type Clear Key does not know: NotSupportedError.
    // SAFETY: live buffers.
    let st = unsafe { tee_cdm_session_generate_request(s, c"fairplay".as_ptr(), b"x".as_ptr(), 1) };
    assert_eq!(st, TeeCdmStatus::NotSupported);
    // The session is no longer uninitialized (EME §6.6.2 step 3): InvalidStateError.
    assert_eq!(generate_request(s), TeeCdmStatus::InvalidState);
    // Empty init data: TypeError.
    let s2 = session(keys, TeeCdmSessionType::Temporary);
    // SAFETY: NULL with length 0 is the empty buffer.
    let st = unsafe { tee_cdm_session_generate_request(s2, c"cenc".as_ptr(), null(), 0) };
    assert_eq!(st, TeeCdmStatus::TypeError);
    // A persistent session without storage: NotSupportedError.
    let mut s3 = null_mut();
    // SAFETY: live local.
    let st = unsafe {
        tee_cdm_session_create(keys, TeeCdmSessionType::PersistentLicense as u32, &mut s3)
    };
    assert_eq!(st, TeeCdmStatus::NotSupported);
    assert!(s3.is_null());
    // A sample no session has a key for: waiting for key.
    let mut sample = [0u8; 32];
    assert_eq!(
        decrypt(keys, &mut sample, &cenc_desc(&KID, &[0; 8], &[])),
        TeeCdmStatus::WaitingForKey
    );
    // A subsample map that does not add up to the sample: TypeError (ABI limits).
    let ls = license_session(keys, TeeCdmSessionType::Temporary);
    let subs = [TeeCdmSubsample {
        clear_bytes: 1,
        protected_bytes: 1,
    }];
    assert_eq!(
        decrypt(keys, &mut sample, &cenc_desc(&KID, &[0; 8], &subs)),
        TeeCdmStatus::TypeError
    );
    assert_eq!(
        sample, [0u8; 32],
        "a failed decrypt leaves the sample as it was"
    );
    for h in [s, s2, ls] {
        ok(tee_cdm_session_free(h));
    }
    ok(tee_cdm_media_keys_free(keys));
}

#[test]
fn null_pointers_are_error_codes() {
    let c = config(&[]);
    let mut access = null_mut();
    // SAFETY: in all calls below, every non-NULL pointer is live; NULLs are the point.
    unsafe {
        assert_eq!(
            request_access(null(), &[c.config], &mut access),
            TeeCdmStatus::NullPointer
        );
        assert!(
            last_error().contains("`key_system` is NULL"),
            "{}",
            last_error()
        );
        assert_eq!(
            request_access(CLEARKEY.as_ptr(), &[c.config], null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_request_access(CLEARKEY.as_ptr(), null(), 1, null(), &mut access),
            TeeCdmStatus::NullPointer
        );
        // A capability without a content type.
        let caps = [TeeCdmMediaCapability {
            content_type: null(),
            encryption_scheme: null(),
            robustness: null(),
        }];
        let mut bad = c.config;
        bad.video_capabilities = caps.as_ptr();
        assert_eq!(
            request_access(CLEARKEY.as_ptr(), &[bad], &mut access),
            TeeCdmStatus::NullPointer
        );
        // NULL with a count of 0 is the empty list: no configuration is a TypeError (EME).
        assert_eq!(
            tee_cdm_request_access(CLEARKEY.as_ptr(), null(), 0, null(), &mut access),
            TeeCdmStatus::TypeError
        );
        assert!(access.is_null());
    }

    let keys = media_keys();
    let s = license_session(keys, TeeCdmSessionType::Temporary);
    let mut sample = [0u8; 16];
    let subs = [TeeCdmSubsample {
        clear_bytes: 0,
        protected_bytes: 16,
    }];
    // SAFETY: in all calls below, as above.
    unsafe {
        assert_eq!(
            tee_cdm_media_keys_decrypt(keys, sample.as_mut_ptr(), 16, null()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_media_keys_decrypt(keys, null_mut(), 16, &cenc_desc(&KID, &[0; 8], &subs)),
            TeeCdmStatus::NullPointer
        );
        let mut desc = cenc_desc(&KID, &[0; 8], &subs);
        desc.key_id = null();
        assert_eq!(
            tee_cdm_media_keys_decrypt(keys, sample.as_mut_ptr(), 16, &desc),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_update(s, null(), 5),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_generate_request(s, null(), b"x".as_ptr(), 1),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_next_event(s, null_mut(), null_mut(), 0),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_get_key_status(s, KID.as_ptr(), 16, null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_get_key_count(s, null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_get_id(s, null_mut(), 100, null_mut()),
            TeeCdmStatus::NullPointer
        );
        let mut needed = 0;
        assert_eq!(
            tee_cdm_session_get_id(s, null_mut(), 100, &mut needed),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_get_expiration(s, null_mut(), null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_media_keys_is_lost(keys, null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_session_create(null(), 1, &mut null_mut()),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(tee_cdm_session_close(null()), TeeCdmStatus::NullPointer);
        assert_eq!(
            tee_cdm_last_error_message(null_mut(), 0, null_mut()),
            TeeCdmStatus::NullPointer
        );
    }
    // NULL is accepted by the free functions, as free(NULL) is.
    ok(tee_cdm_session_free(null_mut()));
    ok(tee_cdm_media_keys_free(null_mut()));
    ok(tee_cdm_access_free(null_mut()));
    // Nothing above disturbed the session: its key still decrypts.
    let clear = cenc::plaintext(16);
    let mut sample = clear.clone();
    cenc::encrypt_cenc(&KEY, &[0; 8], &mut sample, &[(0, 16)]);
    ok(decrypt(keys, &mut sample, &cenc_desc(&KID, &[0; 8], &subs)));
    assert_eq!(sample, clear);
    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));
}

#[test]
fn undersized_buffers_report_the_size_needed_and_consume_nothing() {
    let access = access_with(None, &[]);
    let mut needed = 0;
    let mut small = [0x55u8; 8];
    // SAFETY: `small` holds 8 writable bytes.
    let st = unsafe {
        tee_cdm_access_get_configuration_json(access, small.as_mut_ptr().cast(), 8, &mut needed)
    };
    assert_eq!(st, TeeCdmStatus::BufferTooSmall);
    assert_eq!(
        small, [0x55; 8],
        "nothing is written to an undersized buffer"
    );
    let mut json = vec![0u8; needed];
    // SAFETY: `json` holds `needed` writable bytes.
    ok(unsafe {
        tee_cdm_access_get_configuration_json(
            access,
            json.as_mut_ptr().cast(),
            json.len(),
            &mut needed,
        )
    });
    let text = CStr::from_bytes_with_nul(&json).unwrap().to_str().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        parsed["initDataTypes"],
        serde_json::json!(["cenc", "keyids"])
    );
    assert_eq!(parsed["sessionTypes"], serde_json::json!(["temporary"]));
    assert_eq!(parsed["distinctiveIdentifier"], "not-allowed");

    let mut keys = null_mut();
    // SAFETY: live local.
    ok(unsafe { tee_cdm_media_keys_create(access, &mut keys) });
    let s = session(keys, TeeCdmSessionType::Temporary);
    ok(generate_request(s));

    // The license request does not fit 4 bytes: its size is reported and it stays queued.
    let mut ev = TeeCdmEvent {
        kind: TeeCdmEventKind::None,
        message_type: TeeCdmMessageType::None,
        closed_reason: TeeCdmClosedReason::None,
        message_len: 0,
    };
    let mut four = [0u8; 4];
    for _ in 0..2 {
        // SAFETY: `four` holds 4 writable bytes.
        let st = unsafe { tee_cdm_session_next_event(s, &mut ev, four.as_mut_ptr(), 4) };
        assert_eq!(st, TeeCdmStatus::BufferTooSmall);
        assert_eq!(ev.kind, TeeCdmEventKind::Message);
        assert!(ev.message_len > 4);
        assert_eq!(four, [0; 4]);
    }
    let (ev2, message) = next_event(s);
    assert_eq!(ev2.message_len, ev.message_len);
    let expected = format!(
        r#"{{"kids":["{}"],"type":"temporary"}}"#,
        clearkey::b64url(&KID)
    );
    assert_eq!(std::str::from_utf8(&message).unwrap(), expected);

    // Session ids: 1 byte is too small; `needed` counts the NUL.
    let mut one = [0u8; 1];
    // SAFETY: `one` holds 1 writable byte.
    let st = unsafe { tee_cdm_session_get_id(s, one.as_mut_ptr().cast(), 1, &mut needed) };
    assert_eq!(st, TeeCdmStatus::BufferTooSmall);
    assert_eq!(needed, 17, "16 hex digits and the NUL");

    // Key IDs of the status map.
    let license = clearkey::answer(&message, &[(&KID, &KEY)]).unwrap();
    // SAFETY: live buffer.
    ok(unsafe { tee_cdm_session_update(s, license.as_ptr(), license.len()) });
    let mut kid = [0u8; 15];
    let mut kid_len = 0;
    let mut status = TeeCdmKeyStatus::None;
    // SAFETY: `kid` holds 15 writable bytes; live locals.
    let st = unsafe {
        tee_cdm_session_get_key_at(s, 0, kid.as_mut_ptr(), kid.len(), &mut kid_len, &mut status)
    };
    assert_eq!(st, TeeCdmStatus::BufferTooSmall);
    assert_eq!(kid_len, 16);
    let mut kid = [0u8; 16];
    // SAFETY: as above.
    ok(unsafe {
        tee_cdm_session_get_key_at(s, 0, kid.as_mut_ptr(), kid.len(), &mut kid_len, &mut status)
    });
    assert_eq!((kid, status), (KID, TeeCdmKeyStatus::Usable));
    // SAFETY: as above.
    let st = unsafe {
        tee_cdm_session_get_key_at(s, 1, kid.as_mut_ptr(), kid.len(), &mut kid_len, &mut status)
    };
    assert_eq!(st, TeeCdmStatus::InvalidArgument, "index past the end");

    // The last error message itself, with a buffer too small: retryable, unchanged.
    // SAFETY: NULL with capacity 0; live local.
    let st = unsafe { tee_cdm_last_error_message(null_mut(), 0, &mut needed) };
    assert_eq!(st, TeeCdmStatus::BufferTooSmall);
    assert!(last_error().contains("key count"), "{}", last_error());
    assert_eq!(needed, last_error().len() + 1);

    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));
    ok(tee_cdm_access_free(access));
}

#[test]
fn bad_handles_are_refused() {
    let keys = media_keys();
    let s = session(keys, TeeCdmSessionType::Temporary);
    ok(tee_cdm_session_free(s));
    // Freed: every use is BAD_HANDLE, and so is a second free.
    assert_eq!(tee_cdm_session_free(s), TeeCdmStatus::BadHandle);
    assert_eq!(tee_cdm_session_close(s), TeeCdmStatus::BadHandle);
    assert!(
        last_error().contains("not a live TeeCdmSession handle"),
        "{}",
        last_error()
    );
    let mut count = 0;
    // SAFETY: live local.
    let st = unsafe { tee_cdm_session_get_key_count(s, &mut count) };
    assert_eq!(st, TeeCdmStatus::BadHandle);
    // A handle of another type.
    let s2 = session(keys, TeeCdmSessionType::Temporary);
    let wrong: *mut TeeCdmMediaKeys = s2.cast();
    let mut out = null_mut();
    // SAFETY: live local.
    let st = unsafe { tee_cdm_session_create(wrong, 1, &mut out) };
    assert_eq!(st, TeeCdmStatus::BadHandle);
    assert_eq!(tee_cdm_access_free(keys.cast()), TeeCdmStatus::BadHandle);
    assert_eq!(tee_cdm_sw_destroy(s2.cast()), TeeCdmStatus::BadHandle);
    // Made-up values, including a real address: never dereferenced, just unknown.
    let local = 0u64;
    for fake in [
        1usize,
        0x7ead_0008,
        usize::MAX,
        std::ptr::addr_of!(local).addr(),
    ] {
        let h: *mut TeeCdmSession = std::ptr::without_provenance_mut(fake);
        assert_eq!(tee_cdm_session_remove(h), TeeCdmStatus::BadHandle);
        assert_eq!(tee_cdm_session_free(h), TeeCdmStatus::BadHandle);
    }
    // Sessions outlive their MediaKeys handle; the secure world stays up for them.
    ok(tee_cdm_media_keys_free(keys));
    assert_eq!(tee_cdm_media_keys_free(keys), TeeCdmStatus::BadHandle);
    ok(generate_request(s2));
    ok(tee_cdm_session_free(s2));
}

#[test]
fn malformed_arguments_are_invalid_argument() {
    let mut c = config(&[]);
    let mut access = null_mut();
    // SAFETY: in all calls below, every pointer is live; the buffers without NUL are longer than the
    // string limit, so reading stops inside them.
    unsafe {
        // Not UTF-8.
        assert_eq!(
            request_access(c"org.w3.\xffclearkey".as_ptr(), &[c.config], &mut access),
            TeeCdmStatus::InvalidArgument
        );
        assert!(last_error().contains("not UTF-8"), "{}", last_error());
        // No NUL within TEE_CDM_MAX_STRING_LEN bytes.
        let long = vec![b'a'; TEE_CDM_MAX_STRING_LEN + 16];
        assert_eq!(
            request_access(long.as_ptr().cast(), &[c.config], &mut access),
            TeeCdmStatus::InvalidArgument
        );
        // A string of exactly the limit is read.
        let mut limit = vec![b'a'; TEE_CDM_MAX_STRING_LEN];
        limit.push(0);
        assert_eq!(
            request_access(limit.as_ptr().cast(), &[c.config], &mut access),
            TeeCdmStatus::NotSupported
        );
        // An unknown requirement value.
        c.config.persistent_state = 3;
        assert_eq!(
            request_access(CLEARKEY.as_ptr(), &[c.config], &mut access),
            TeeCdmStatus::InvalidArgument
        );
        c.config.persistent_state = 0;
        // More configurations than the limit.
        let many = vec![c.config; TEE_CDM_MAX_LIST_LEN + 1];
        assert_eq!(
            request_access(CLEARKEY.as_ptr(), &many, &mut access),
            TeeCdmStatus::InvalidArgument
        );
        // A length that cannot be a buffer.
        c.config.init_data_types_len = usize::MAX;
        assert_eq!(
            request_access(CLEARKEY.as_ptr(), &[c.config], &mut access),
            TeeCdmStatus::InvalidArgument
        );
    }
    assert!(access.is_null());

    let keys = media_keys();
    let s = license_session(keys, TeeCdmSessionType::Temporary);
    let mut out = null_mut();
    // SAFETY: in all calls below, live buffers.
    unsafe {
        assert_eq!(
            tee_cdm_session_create(keys, 3, &mut out),
            TeeCdmStatus::InvalidArgument
        );
        assert_eq!(
            tee_cdm_session_create(keys, 0x101, &mut out),
            TeeCdmStatus::InvalidArgument
        );
    }
    let mut sample = [0u8; 64];
    let subs = [TeeCdmSubsample {
        clear_bytes: 0,
        protected_bytes: 64,
    }];
    // An unknown scheme.
    let mut desc = cenc_desc(&KID, &[0; 8], &subs);
    desc.scheme = 9;
    assert_eq!(
        decrypt(keys, &mut sample, &desc),
        TeeCdmStatus::InvalidArgument
    );
    // Description buffers inside the sample (they would alias the bytes being decrypted).
    sample[..16].copy_from_slice(&KID);
    let inside = TeeCdmSampleDescription {
        key_id: sample.as_ptr(),
        key_id_len: 16,
        ..cenc_desc(&KID, &[0; 8], &subs)
    };
    // SAFETY: the description points into `sample`: that overlap is what is refused.
    let st =
        unsafe { tee_cdm_media_keys_decrypt(keys, sample.as_mut_ptr(), sample.len(), &inside) };
    assert_eq!(st, TeeCdmStatus::InvalidArgument);
    assert!(
        last_error().contains("overlaps the sample"),
        "{}",
        last_error()
    );
    // A misaligned subsample array.
    let raw = [0u32; 5];
    let misaligned = TeeCdmSampleDescription {
        subsamples: raw.as_ptr().cast::<u8>().wrapping_add(1).cast(),
        subsamples_len: 1,
        ..cenc_desc(&KID, &[0; 8], &subs)
    };
    assert_eq!(
        decrypt(keys, &mut sample, &misaligned),
        TeeCdmStatus::InvalidArgument
    );
    assert!(last_error().contains("misaligned"), "{}", last_error());
    // Unknown status values have a name too.
    let name = |v: u32| {
        // SAFETY: tee_cdm_status_name returns static NUL-terminated strings.
        unsafe { CStr::from_ptr(tee_cdm_status_name(v)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(
        name(TeeCdmStatus::QuotaExceeded as u32),
        "QuotaExceededError"
    );
    assert_eq!(name(77), "Unknown");
    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));
}

#[test]
fn status_values_are_stable_and_named() {
    let expected = [
        (TeeCdmStatus::Ok, 0, "Ok"),
        (TeeCdmStatus::NullPointer, 1, "NullPointer"),
        (TeeCdmStatus::BufferTooSmall, 2, "BufferTooSmall"),
        (TeeCdmStatus::InvalidArgument, 3, "InvalidArgument"),
        (TeeCdmStatus::BadHandle, 4, "BadHandle"),
        (TeeCdmStatus::Panic, 5, "Panic"),
        (TeeCdmStatus::OutOfMemory, 6, "OutOfMemory"),
        (TeeCdmStatus::TypeError, 100, "TypeError"),
        (TeeCdmStatus::NotSupported, 101, "NotSupportedError"),
        (TeeCdmStatus::InvalidState, 102, "InvalidStateError"),
        (TeeCdmStatus::QuotaExceeded, 103, "QuotaExceededError"),
        (TeeCdmStatus::InvalidAccess, 104, "InvalidAccessError"),
        (TeeCdmStatus::SecureWorldLost, 105, "SecureWorldLost"),
        (TeeCdmStatus::WaitingForKey, 106, "WaitingForKey"),
        (TeeCdmStatus::DecryptError, 107, "DecryptError"),
        (TeeCdmStatus::PlatformError, 200, "PlatformError"),
    ];
    assert_eq!(TeeCdmStatus::ALL.len(), expected.len());
    for (status, value, name) in expected {
        assert_eq!(status as u32, value);
        // SAFETY: static NUL-terminated strings.
        let got = unsafe { CStr::from_ptr(tee_cdm_status_name(value)) };
        assert_eq!(got.to_str().unwrap(), name);
    }
}

#[test]
fn last_error_is_per_thread_and_cleared_by_success() {
    assert_eq!(tee_cdm_session_close(null()), TeeCdmStatus::NullPointer);
    assert!(
        last_error().starts_with("tee_cdm_session_close: "),
        "{}",
        last_error()
    );
    // Another thread has its own (empty) last error.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
    // A success clears it.
    ok(tee_cdm_access_free(null_mut()));
    assert_eq!(last_error(), "");
}

#[test]
fn handles_work_across_threads_and_survive_a_concurrent_free() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let keys = media_keys();
    let s = license_session(keys, TeeCdmSessionType::Temporary);
    let clear = cenc::plaintext(4096);
    let mut encrypted = clear.clone();
    cenc::encrypt_cenc(&KEY, &[5; 8], &mut encrypted, &[]);
    let decrypted = Arc::new(AtomicUsize::new(0));
    // Handles are plain tokens: pass them to threads as integers.
    let keys_h = keys.addr();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (clear, encrypted, decrypted) =
                (clear.clone(), encrypted.clone(), Arc::clone(&decrypted));
            std::thread::spawn(move || {
                let keys: *mut TeeCdmMediaKeys = std::ptr::without_provenance_mut(keys_h);
                for _ in 0..1_000_000 {
                    let mut sample = encrypted.clone();
                    match decrypt(keys, &mut sample, &cenc_desc(&KID, &[5; 8], &[])) {
                        TeeCdmStatus::Ok => {
                            assert_eq!(sample, clear);
                            decrypted.fetch_add(1, Ordering::Relaxed);
                        }
                        // The session (and its key) was freed; the MediaKeys handle is next.
                        TeeCdmStatus::WaitingForKey => assert_eq!(sample, encrypted),
                        TeeCdmStatus::BadHandle => return,
                        other => panic!("{other:?}: {}", last_error()),
                    }
                }
                panic!("the MediaKeys handle was never freed");
            })
        })
        .collect();
    // Free both handles while the workers are decrypting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while decrypted.load(Ordering::Relaxed) < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "workers made no progress"
        );
        std::thread::yield_now();
    }
    ok(tee_cdm_session_free(s));
    ok(tee_cdm_media_keys_free(keys));
    for w in workers {
        w.join().unwrap();
    }
}
