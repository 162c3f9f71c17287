//! The CDM behind Chromium's interface, driven as Chromium drives it (create session →
//! message → update → decrypt → close) with a recording host and an in-process secure world.
#![allow(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use normal_world::{
    request_media_key_system_access, MediaKeySystemConfiguration, MediaKeySystemMediaCapability,
};
use tee_cdm_chromium::cdm::{Cdm, Exception, Host, InputSample, Status};
use tee_cdm_chromium::stats::Stats;

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Initialized(bool),
    NewSession(u32, String),
    Resolved(u32),
    Rejected(u32, Exception),
    Message(String, u32, Vec<u8>),
    KeysChange(String, bool, Vec<(Vec<u8>, u32)>),
    Closed(String),
    Timer(i64),
}

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<Call>>>);

impl Recorder {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.borrow_mut())
    }

    fn record(&self, call: Call) {
        self.0.borrow_mut().push(call);
    }
}

impl Host for Recorder {
    fn on_initialized(&self, success: bool) {
        self.record(Call::Initialized(success));
    }
    fn resolve_key_status(&self, promise_id: u32, _: u32) {
        self.record(Call::Resolved(promise_id));
    }
    fn resolve_new_session(&self, promise_id: u32, session_id: &str) {
        self.record(Call::NewSession(promise_id, session_id.into()));
    }
    fn resolve(&self, promise_id: u32) {
        self.record(Call::Resolved(promise_id));
    }
    fn reject(&self, promise_id: u32, exception: Exception, _: &str) {
        self.record(Call::Rejected(promise_id, exception));
    }
    fn session_message(&self, session_id: &str, message_type: u32, message: &[u8]) {
        self.record(Call::Message(
            session_id.into(),
            message_type,
            message.to_vec(),
        ));
    }
    fn session_keys_change(&self, session_id: &str, usable: bool, keys: &[(&[u8], u32)]) {
        let keys = keys.iter().map(|(k, s)| (k.to_vec(), *s)).collect();
        self.record(Call::KeysChange(session_id.into(), usable, keys));
    }
    fn session_closed(&self, session_id: &str) {
        self.record(Call::Closed(session_id.into()));
    }
    fn set_timer(&self, delay_ms: i64) {
        self.record(Call::Timer(delay_ms));
    }
}

const KID: [u8; 16] = [0x11; 16];
const KEY: [u8; 16] = [0x22; 16];

fn initialized_cdm(stats: Stats) -> (Cdm<Recorder>, Recorder) {
    let host = Recorder::default();
    let mut cdm = Cdm::new(host.clone(), stats);
    cdm.initialize(|| {
        let config = MediaKeySystemConfiguration {
            init_data_types: vec!["cenc".into()],
            video_capabilities: vec![MediaKeySystemMediaCapability::new(
                "video/mp4; codecs=\"avc1.4d401e\"",
            )],
            ..Default::default()
        };
        let access = request_media_key_system_access("org.w3.clearkey", &[config])
            .map_err(|e| e.to_string())?;
        Ok((
            access.create_media_keys().map_err(|e| e.to_string())?,
            "in-process",
        ))
    });
    assert_eq!(host.take(), vec![Call::Initialized(true)]);
    (cdm, host)
}

/// Decrypts `input`; returns the status and the bytes delivered (none if nothing was).
fn decrypted(cdm: &mut Cdm<Recorder>, input: &InputSample<'_>) -> (Status, Vec<u8>) {
    let mut out = Vec::new();
    let status = cdm.decrypt(input, |c| {
        out = c.to_vec();
        Ok(())
    });
    (status, out)
}

/// Opens a session on the pssh of KID; answers its license request with `key`. Returns the
/// session ID.
fn licensed_session(cdm: &mut Cdm<Recorder>, host: &Recorder, key: &[u8; 16]) -> String {
    cdm.create_session(1, 0, 0, &cdm_testkit::cenc::pssh_v1(&[&KID]));
    let calls = host.take();
    let [Call::NewSession(1, id), Call::Timer(_), Call::Message(mid, 0, request)] =
        calls.as_slice()
    else {
        panic!("resolve, timer, then the license request: {calls:?}");
    };
    assert_eq!(mid, id);
    let license = cdm_testkit::clearkey::answer(request, &[(&KID, key)]).expect("a license");
    cdm.update_session(2, id, &license);
    assert_eq!(
        host.take(),
        vec![
            Call::KeysChange(id.clone(), true, vec![(KID.to_vec(), 0)]),
            Call::Resolved(2)
        ]
    );
    id.clone()
}

#[test]
fn session_decrypt_and_close_as_chromium_drives_them() {
    let dir = cdm_testkit::temp::TempDir::new("chromium-cdm-stats");
    let stats_path = dir.path().join("stats");
    let (mut cdm, host) = initialized_cdm(Stats::to_file(stats_path.clone()));

    // Before any key: kNoKey, so that Chromium waits for a key.
    let clear = cdm_testkit::cenc::plaintext(1000);
    let mut sample = clear.clone();
    cdm_testkit::cenc::encrypt_cenc(&KEY, &[7; 8], &mut sample, &[(10, 990)]);
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&[7; 8]); // Chromium pads 8-byte IVs to 16
    let input = InputSample {
        data: &sample,
        scheme: 1,
        key_id: &KID,
        iv: &iv,
        subsamples: &[(10, 990)],
        pattern: (0, 0),
    };
    assert_eq!(
        cdm.decrypt(&input, |_| unreachable!("nothing to deliver")),
        Status::NoKey
    );

    let id = licensed_session(&mut cdm, &host, &KEY);
    assert_eq!(
        decrypted(&mut cdm, &input),
        (Status::Success, clear.clone())
    );

    // cbcs 1:9 with a constant IV.
    let mut cbcs = clear.clone();
    cdm_testkit::cenc::encrypt_cbcs(&KEY, &[9; 16], &mut cbcs, &[(5, 995)], (1, 9));
    let input = InputSample {
        data: &cbcs,
        scheme: 2,
        iv: &[9; 16],
        subsamples: &[(5, 995)],
        pattern: (1, 9),
        ..input
    };
    assert_eq!(
        decrypted(&mut cdm, &input),
        (Status::Success, clear.clone())
    );

    // An unknown scheme, a pattern out of range, subsamples that do not add up: errors.
    assert_eq!(
        cdm.decrypt(&InputSample { scheme: 7, ..input }, |_| Ok(())),
        Status::DecryptError
    );
    assert_eq!(
        cdm.decrypt(
            &InputSample {
                pattern: (300, 9),
                ..input
            },
            |_| Ok(())
        ),
        Status::DecryptError
    );
    assert_eq!(
        cdm.decrypt(
            &InputSample {
                subsamples: &[(5, 5)],
                ..input
            },
            |_| Ok(())
        ),
        Status::DecryptError
    );
    // A failure to deliver (the browser gave no buffer) is the decrypt's failure.
    assert_eq!(
        cdm.decrypt(&input, |_| Err(Status::DecryptError)),
        Status::DecryptError
    );

    let text = std::fs::read_to_string(&stats_path).expect("stats file");
    assert!(text.contains("transport in-process\n"), "{text}");
    assert!(text.contains("decrypted_samples 2\n"), "{text}");
    assert!(text.contains("failed_samples 4\n"), "{text}");

    // Closing empties the key status map (EME §6.6.3), then closes.
    cdm.close_session(3, &id);
    assert_eq!(
        host.take(),
        vec![
            Call::KeysChange(id.clone(), false, vec![]),
            Call::Closed(id.clone()),
            Call::Resolved(3)
        ]
    );
    // The session is gone: further calls on it reject.
    cdm.update_session(4, &id, b"{}");
    assert_eq!(
        host.take(),
        vec![Call::Rejected(4, Exception::InvalidState)]
    );
    // And its key with it.
    assert_eq!(cdm.decrypt(&input, |_| Ok(())), Status::NoKey);
}

#[test]
fn wrong_key_decrypts_to_garbage_not_to_the_clear_sample() {
    let (mut cdm, host) = initialized_cdm(Stats::default());
    licensed_session(&mut cdm, &host, &[0x33; 16]);
    let clear = cdm_testkit::cenc::plaintext(256);
    let mut sample = clear.clone();
    cdm_testkit::cenc::encrypt_cenc(&KEY, &[1; 8], &mut sample, &[]);
    let input = InputSample {
        data: &sample,
        scheme: 1,
        key_id: &KID,
        iv: &[1; 8],
        subsamples: &[],
        pattern: (0, 0),
    };
    let (status, out) = decrypted(&mut cdm, &input);
    assert_eq!(status, Status::Success);
    assert_ne!(out, clear);
}

#[test]
fn bad_requests_reject_their_promises() {
    let (mut cdm, host) = initialized_cdm(Stats::default());
    cdm.create_session(1, 0, 9, b"x"); // unknown init data type
    cdm.create_session(2, 5, 0, b"x"); // unknown session type
    cdm.create_session(3, 0, 0, b"not a pssh");
    cdm.create_session(4, 1, 0, &cdm_testkit::cenc::pssh_v1(&[&KID])); // persistent: not offered
    cdm.load_session(5);
    cdm.set_server_certificate(6, b"cert");
    cdm.remove_session(7, "nope");
    let calls = host.take();
    assert_eq!(
        calls,
        vec![
            Call::Rejected(1, Exception::NotSupported),
            Call::Rejected(2, Exception::NotSupported),
            Call::Rejected(3, Exception::TypeError),
            Call::Rejected(4, Exception::NotSupported),
            Call::Rejected(5, Exception::NotSupported),
            Call::Rejected(6, Exception::NotSupported),
            Call::Rejected(7, Exception::InvalidState),
        ]
    );
}

#[test]
fn an_uninitialized_cdm_rejects_and_fails_to_decrypt() {
    let host = Recorder::default();
    let mut cdm = Cdm::new(host.clone(), Stats::default());
    cdm.initialize(|| Err("no secure world".into()));
    cdm.create_session(1, 0, 0, &cdm_testkit::cenc::pssh_v1(&[&KID]));
    assert_eq!(
        host.take(),
        vec![
            Call::Initialized(false),
            Call::Rejected(1, Exception::InvalidState)
        ]
    );
    let input = InputSample {
        data: &[0; 16],
        scheme: 1,
        key_id: &KID,
        iv: &[0; 16],
        subsamples: &[],
        pattern: (0, 0),
    };
    assert_eq!(cdm.decrypt(&input, |_| Ok(())), Status::DecryptError);
    // Clear samples pass through untouched.
    assert_eq!(
        decrypted(&mut cdm, &InputSample { scheme: 0, ..input }),
        (Status::Success, vec![0; 16])
    );
}
