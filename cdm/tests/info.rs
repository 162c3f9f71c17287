//! `cdm info` as a library call: capabilities of the in-process secure world and the
//! negotiated configuration.

use cdm::info::{info, InfoRequest};
use cdm_testkit::temp::TempDir;

#[test]
fn default_configuration() {
    let r = info(&InfoRequest::default()).unwrap();
    assert_eq!(r.key_system, "org.w3.clearkey");
    let c = &r.capabilities;
    assert_eq!(c.abi_version, cdm_core::abi::ABI_VERSION);
    assert!(["vaes", "aesni", "armce", "portable"].contains(&c.engine.as_str()));
    for s in ["cenc", "cbcs", "cens", "cbc1"] {
        assert!(c.schemes.iter().any(|x| x == s), "{s}");
    }
    assert!(c.robustness.iter().any(|r| r.is_empty()));
    assert!(c.limits.max_sessions >= 32 && c.limits.max_keys_per_session >= 32);
    assert!(c.limits.max_subsamples >= 576);
    let g = &r.configuration;
    assert_eq!(g.init_data_types, ["cenc", "keyids", "webm"]);
    assert_eq!(
        g.session_types.as_deref(),
        Some(&["temporary".to_string()][..])
    );
    assert_eq!(g.persistent_state, "not-allowed");
    assert_eq!(g.distinctive_identifier, "not-allowed");
    assert_eq!(g.video_capabilities.len(), 1);
    assert_eq!(g.audio_capabilities.len(), 1);
    assert!(cdm::info::render_text(&r).contains("getConfiguration()"));
}

#[test]
fn persistent_licenses_with_storage() {
    let dir = TempDir::new("cdm-info");
    let mut request = InfoRequest::default();
    request.configuration.session_types = Some(vec!["persistent-license".into()]);
    assert!(info(&request).is_err(), "no storage: not supported");
    request.storage_dir = Some(dir.path().to_path_buf());
    let r = info(&request).unwrap();
    assert_eq!(r.configuration.persistent_state, "required");
    assert!(r
        .capabilities
        .session_types
        .iter()
        .any(|s| s == "persistent-license"));
}
