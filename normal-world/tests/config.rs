//! Configuration negotiation (EME §3.1.1 "Get Supported Configuration", §3.1.1.2 "Get
//! Supported Capabilities for Audio/Video Type") for `org.w3.clearkey`.

use normal_world::{
    request_media_key_system_access, request_media_key_system_access_with, EmeError,
    KeySystemOptions, MediaKeySystemConfiguration as Config, MediaKeySystemMediaCapability as Cap,
    MediaKeysRequirement as Req,
};

const AVC: &str = "video/mp4; codecs=\"avc1.64001f\"";
const AAC: &str = "audio/mp4; codecs=\"mp4a.40.2\"";

fn video(caps: &[Cap]) -> Config {
    Config {
        video_capabilities: caps.to_vec(),
        ..Default::default()
    }
}

fn negotiate(c: Config) -> Result<Config, EmeError> {
    request_media_key_system_access("org.w3.clearkey", &[c]).map(|a| a.get_configuration())
}

fn not_supported(c: Config) {
    let r = negotiate(c.clone());
    assert!(
        matches!(r, Err(EmeError::NotSupportedError(_))),
        "{c:?} → {r:?}"
    );
}

#[test]
fn request_arguments() {
    let ok = video(&[Cap::new(AVC)]);
    for (ks, configs) in [("", vec![ok.clone()]), ("org.w3.clearkey", vec![])] {
        let r = request_media_key_system_access(ks, &configs);
        assert!(matches!(r, Err(EmeError::TypeError(_))), "{ks:?} → {r:?}");
    }
    for ks in ["com.widevine.alpha", "org.w3.clearkey.x", "ORG.W3.CLEARKEY"] {
        let r = request_media_key_system_access(ks, std::slice::from_ref(&ok));
        assert!(
            matches!(r, Err(EmeError::NotSupportedError(_))),
            "{ks:?} → {r:?}"
        );
    }
    let a = request_media_key_system_access("org.w3.clearkey", &[ok]).unwrap();
    assert_eq!(a.key_system(), "org.w3.clearkey");
}

#[test]
fn optional_requirements_resolve_to_not_allowed_and_defaults_apply() {
    let c = Config {
        label: "main".into(),
        ..video(&[Cap::new(AVC)])
    };
    let got = negotiate(c).unwrap();
    assert_eq!(got.label, "main");
    assert_eq!(got.distinctive_identifier, Req::NotAllowed);
    assert_eq!(got.persistent_state, Req::NotAllowed);
    assert_eq!(got.session_types, Some(vec!["temporary".to_string()]));
    assert!(got.init_data_types.is_empty());
    assert_eq!(got.video_capabilities, vec![Cap::new(AVC)]);
    assert!(got.audio_capabilities.is_empty());
}

#[test]
fn init_data_types_are_filtered_case_sensitively() {
    let with = |types: &[&str]| Config {
        init_data_types: types.iter().map(|s| s.to_string()).collect(),
        ..video(&[Cap::new(AVC)])
    };
    let got = negotiate(with(&["fairplay", "cenc", "", "webm", "keyids"])).unwrap();
    assert_eq!(got.init_data_types, ["cenc", "webm", "keyids"]);
    not_supported(with(&["fairplay"]));
    not_supported(with(&["CENC"]));
    not_supported(with(&[""]));
}

#[test]
fn distinctive_identifier_and_persistent_state() {
    let base = video(&[Cap::new(AVC)]);
    not_supported(Config {
        distinctive_identifier: Req::Required,
        ..base.clone()
    });
    not_supported(Config {
        persistent_state: Req::Required,
        ..base.clone()
    });
    let got = negotiate(Config {
        distinctive_identifier: Req::NotAllowed,
        persistent_state: Req::NotAllowed,
        ..base
    })
    .unwrap();
    assert_eq!(got.distinctive_identifier, Req::NotAllowed);
    assert_eq!(got.persistent_state, Req::NotAllowed);
}

#[test]
fn session_types() {
    let with = |t: &[&str]| Config {
        session_types: Some(t.iter().map(|s| s.to_string()).collect()),
        ..video(&[Cap::new(AVC)])
    };
    // Without a storage directory persistent licenses are refused.
    not_supported(with(&["persistent-license"]));
    not_supported(with(&["temporary", "persistent-license"]));
    not_supported(with(&["persistent-usage-record"]));
    not_supported(with(&[""]));
    assert_eq!(
        negotiate(with(&["temporary"])).unwrap().session_types,
        Some(vec!["temporary".into()])
    );
    // An explicitly empty list is kept empty (then no session type can be created).
    assert_eq!(negotiate(with(&[])).unwrap().session_types, Some(vec![]));
}

#[test]
fn capabilities_table() {
    // (requested video capabilities, expected supported subset; None = config unsupported)
    let cbcs = Cap::new(AVC).with_scheme("cbcs");
    let cbcs19 = Cap::new(AVC).with_scheme("cbcs-1-9");
    let cenc = Cap::new("video/webm; codecs=\"vp09.00.10.08\"").with_scheme("cenc");
    let cases: Vec<(Vec<Cap>, Option<Vec<Cap>>)> = vec![
        (vec![Cap::new(AVC)], Some(vec![Cap::new(AVC)])),
        (
            vec![cbcs.clone(), cbcs19.clone(), cenc.clone()],
            Some(vec![cbcs, cbcs19, cenc]),
        ),
        // Schemes Clear Key's EME does not name are skipped.
        (vec![Cap::new(AVC).with_scheme("cens")], None),
        (
            vec![Cap::new(AVC).with_scheme("cbc1"), Cap::new(AVC)],
            Some(vec![Cap::new(AVC)]),
        ),
        // Only the empty robustness for org.w3.clearkey.
        (
            vec![Cap::new(AVC).with_robustness("SW_SECURE_CRYPTO")],
            None,
        ),
        (
            vec![
                Cap::new(AVC).with_robustness("HW_SECURE_DECODE"),
                Cap::new(AVC),
            ],
            Some(vec![Cap::new(AVC)]),
        ),
        // Unsupported or malformed types are skipped.
        (vec![Cap::new("video/mp4")], None),
        (
            vec![Cap::new("video/ogg; codecs=\"theora\""), Cap::new(AVC)],
            Some(vec![Cap::new(AVC)]),
        ),
        (
            vec![Cap::new("video/mp4; codecs=\"avc1.64001f\"; profiles=x")],
            None,
        ),
        (vec![Cap::new("video/mp4; codecs=\"vp8\"")], None),
        (vec![Cap::new(AAC)], None),
        (vec![Cap::new("not a mime type")], None),
        // An empty content type fails the whole configuration (§3.1.1.2 step 3.4).
        (vec![Cap::new(AVC), Cap::new("")], None),
    ];
    for (caps, want) in cases {
        let got = negotiate(video(&caps)).map(|c| c.video_capabilities);
        match want {
            Some(w) => assert_eq!(got, Ok(w), "{caps:?}"),
            None => assert!(
                matches!(got, Err(EmeError::NotSupportedError(_))),
                "{caps:?} → {got:?}"
            ),
        }
    }
}

#[test]
fn audio_and_video_are_checked_separately() {
    let both = Config {
        audio_capabilities: vec![Cap::new(AAC), Cap::new(AVC)],
        video_capabilities: vec![Cap::new(AVC)],
        ..Default::default()
    };
    let got = negotiate(both).unwrap();
    assert_eq!(got.audio_capabilities, vec![Cap::new(AAC)]);
    assert_eq!(got.video_capabilities, vec![Cap::new(AVC)]);
    // Supported audio does not rescue unsupported video.
    not_supported(Config {
        audio_capabilities: vec![Cap::new(AAC)],
        video_capabilities: vec![Cap::new("video/mp4; codecs=\"xyz\"")],
        ..Default::default()
    });
    // No capabilities at all (§3.1.1.1 step 8).
    not_supported(Config::default());
    let opus = Config {
        audio_capabilities: vec![Cap::new("audio/webm; codecs=\"opus\"")],
        ..Default::default()
    };
    assert!(negotiate(opus).is_ok());
}

#[test]
fn first_supported_configuration_wins_and_answers_are_stable() {
    let bad = Config {
        label: "bad".into(),
        ..video(&[Cap::new("video/mp4")])
    };
    let a = Config {
        label: "a".into(),
        ..video(&[Cap::new(AVC)])
    };
    let b = Config {
        label: "b".into(),
        ..video(&[Cap::new(AVC)])
    };
    let configs = [bad.clone(), a, b];
    let first = request_media_key_system_access("org.w3.clearkey", &configs).unwrap();
    assert_eq!(first.get_configuration().label, "a");
    for _ in 0..3 {
        let again = request_media_key_system_access("org.w3.clearkey", &configs).unwrap();
        assert_eq!(again, first);
    }
    let r = request_media_key_system_access("org.w3.clearkey", &[bad]);
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))));
}

fn negotiate_with_storage(c: Config) -> Result<Config, EmeError> {
    let options = KeySystemOptions {
        storage_dir: Some("/nonexistent/tee-cdm-config-test".into()),
        ..KeySystemOptions::default()
    };
    request_media_key_system_access_with("org.w3.clearkey", &[c], &options)
        .map(|a| a.get_configuration())
}

#[test]
fn persistent_state_and_sessions_with_a_storage_directory() {
    let with = |state: Req, t: Option<&[&str]>| Config {
        persistent_state: state,
        session_types: t.map(|t| t.iter().map(|s| s.to_string()).collect()),
        ..video(&[Cap::new(AVC)])
    };
    let types = |t: &[&str]| Some(t.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    // Step 5: "required" is honoured; the session types are kept as asked.
    let got = negotiate_with_storage(with(Req::Required, Some(&["persistent-license"]))).unwrap();
    assert_eq!(got.persistent_state, Req::Required);
    assert_eq!(got.session_types, types(&["persistent-license"]));
    // Step 6.3.3: a persistent session type makes "optional" persistent state "required".
    let got = negotiate_with_storage(with(
        Req::Optional,
        Some(&["temporary", "persistent-license"]),
    ))
    .unwrap();
    assert_eq!(got.persistent_state, Req::Required);
    assert_eq!(
        got.session_types,
        types(&["temporary", "persistent-license"])
    );
    // Step 6.3.1: but never against "not-allowed".
    let r = negotiate_with_storage(with(Req::NotAllowed, Some(&["persistent-license"])));
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))), "{r:?}");
    // Temporary sessions only: "optional" still resolves to "not-allowed" (step 12), and
    // "required" stays "required" (the application asked for it; it is available).
    let got = negotiate_with_storage(with(Req::Optional, None)).unwrap();
    assert_eq!(got.persistent_state, Req::NotAllowed);
    assert_eq!(got.session_types, types(&["temporary"]));
    let got = negotiate_with_storage(with(Req::Required, None)).unwrap();
    assert_eq!(got.persistent_state, Req::Required);
    // Unknown types stay unsupported.
    let r = negotiate_with_storage(with(Req::Optional, Some(&["persistent-usage-record"])));
    assert!(matches!(r, Err(EmeError::NotSupportedError(_))), "{r:?}");
    // Stable: the same answer every time, and the same as without storage when nothing
    // persistent is asked for.
    let c = with(Req::Optional, Some(&["temporary", "persistent-license"]));
    assert_eq!(negotiate_with_storage(c.clone()), negotiate_with_storage(c));
    let plain = with(Req::Optional, Some(&["temporary"]));
    assert_eq!(negotiate_with_storage(plain.clone()), negotiate(plain));
}

#[test]
fn media_keys_refuse_a_persistent_configuration_without_storage() {
    // Negotiated with a storage directory, but the secure world behind the transport has
    // none: createMediaKeys must not hand out a configuration it cannot honour.
    let options = KeySystemOptions {
        storage_dir: Some("/nonexistent/tee-cdm-config-test".into()),
        ..KeySystemOptions::default()
    };
    let c = Config {
        session_types: Some(vec!["persistent-license".into()]),
        ..video(&[Cap::new(AVC)])
    };
    let access = request_media_key_system_access_with("org.w3.clearkey", &[c], &options).unwrap();
    let transport = normal_world::transport::InProcessTransport::new().unwrap();
    let r = access.create_media_keys_with_transport(Box::new(transport));
    assert!(
        matches!(r, Err(EmeError::NotSupportedError(_))),
        "{:?}",
        r.err()
    );
}
