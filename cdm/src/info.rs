//! `cdm info`: what the CDM offers — the secure world's capabilities and the configuration
//! `requestMediaKeySystemAccess()` negotiates (EME `getConfiguration()`).

use std::fmt::Write as _;
use std::path::PathBuf;

use normal_world::{
    request_media_key_system_access_with, KeySystemOptions, MediaKeySystemConfiguration,
    MediaKeySystemMediaCapability, MediaKeysRequirement,
};
use serde::Serialize;

use crate::error::CliError;

/// The key system `cdm` uses.
pub const KEY_SYSTEM: &str = "org.w3.clearkey";

/// The default video content type asked for.
pub const DEFAULT_VIDEO: &str = "video/mp4; codecs=\"avc1.64001f\"";
/// The default audio content type asked for.
pub const DEFAULT_AUDIO: &str = "audio/mp4; codecs=\"mp4a.40.2\"";

/// What `cdm info` reports.
#[derive(Clone, Debug, Serialize)]
pub struct InfoReport {
    /// The key system.
    pub key_system: String,
    /// The secure world's capabilities (`MediaKeys::capabilities()`).
    pub capabilities: CapabilitiesReport,
    /// The configuration asked for.
    pub requested: ConfigurationReport,
    /// The configuration granted: `MediaKeySystemAccess.getConfiguration()`.
    pub configuration: ConfigurationReport,
}

/// The secure world's capabilities.
#[derive(Clone, Debug, Serialize)]
pub struct CapabilitiesReport {
    /// The message ABI version the secure world speaks.
    pub abi_version: u16,
    /// The AES engine in use (`vaes`, `aesni`, `armce`, `portable`).
    pub engine: String,
    /// Robustness levels sessions can be opened with (`""` is EME's empty robustness).
    pub robustness: Vec<String>,
    /// Protection schemes the secure world decrypts.
    pub schemes: Vec<String>,
    /// Session types.
    pub session_types: Vec<String>,
    /// Resource limits.
    pub limits: LimitsReport,
}

/// The secure world's resource limits.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LimitsReport {
    /// Concurrent sessions.
    pub max_sessions: u32,
    /// Keys per session.
    pub max_keys_per_session: u32,
    /// Largest sample, in bytes.
    pub max_sample_len: u32,
    /// Largest subsample map.
    pub max_subsamples: u32,
    /// Secure buffers live at once (0: no `HW_SECURE_DECODE`).
    pub max_secure_buffers: u32,
}

/// A `MediaKeySystemConfiguration`, with EME's member names.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationReport {
    /// `label`.
    pub label: String,
    /// `initDataTypes`.
    pub init_data_types: Vec<String>,
    /// `audioCapabilities`.
    pub audio_capabilities: Vec<CapabilityReport>,
    /// `videoCapabilities`.
    pub video_capabilities: Vec<CapabilityReport>,
    /// `distinctiveIdentifier`.
    pub distinctive_identifier: &'static str,
    /// `persistentState`.
    pub persistent_state: &'static str,
    /// `sessionTypes` (`null`: absent).
    pub session_types: Option<Vec<String>>,
}

/// A `MediaKeySystemMediaCapability`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityReport {
    /// `contentType`.
    pub content_type: String,
    /// `encryptionScheme` (`null`: any).
    pub encryption_scheme: Option<String>,
    /// `robustness`.
    pub robustness: String,
}

impl From<&MediaKeySystemConfiguration> for ConfigurationReport {
    fn from(c: &MediaKeySystemConfiguration) -> Self {
        let caps = |v: &[MediaKeySystemMediaCapability]| {
            v.iter()
                .map(|c| CapabilityReport {
                    content_type: c.content_type.clone(),
                    encryption_scheme: c.encryption_scheme.clone(),
                    robustness: c.robustness.clone(),
                })
                .collect()
        };
        ConfigurationReport {
            label: c.label.clone(),
            init_data_types: c.init_data_types.clone(),
            audio_capabilities: caps(&c.audio_capabilities),
            video_capabilities: caps(&c.video_capabilities),
            distinctive_identifier: c.distinctive_identifier.as_str(),
            persistent_state: c.persistent_state.as_str(),
            session_types: c.session_types.clone(),
        }
    }
}

/// What to ask `requestMediaKeySystemAccess()` for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoRequest {
    /// The configuration.
    pub configuration: MediaKeySystemConfiguration,
    /// A storage directory for the in-process secure world (offers persistent licenses).
    pub storage_dir: Option<PathBuf>,
}

impl Default for InfoRequest {
    /// `cenc`, `keyids` and `webm` init data; H.264 video and AAC audio in MP4 with any
    /// scheme; the dictionary defaults otherwise; no storage.
    fn default() -> Self {
        InfoRequest {
            configuration: MediaKeySystemConfiguration {
                init_data_types: vec!["cenc".into(), "keyids".into(), "webm".into()],
                video_capabilities: vec![MediaKeySystemMediaCapability::new(DEFAULT_VIDEO)],
                audio_capabilities: vec![MediaKeySystemMediaCapability::new(DEFAULT_AUDIO)],
                ..MediaKeySystemConfiguration::default()
            },
            storage_dir: None,
        }
    }
}

/// Parses a `MediaKeysRequirement` string.
pub fn requirement(s: &str) -> Option<MediaKeysRequirement> {
    [
        MediaKeysRequirement::Required,
        MediaKeysRequirement::Optional,
        MediaKeysRequirement::NotAllowed,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}

/// Negotiates `request`, creates `MediaKeys` over an in-process secure world and reports.
pub fn info(request: &InfoRequest) -> Result<InfoReport, CliError> {
    let options = KeySystemOptions {
        storage_dir: request.storage_dir.clone(),
        ..KeySystemOptions::default()
    };
    let access = request_media_key_system_access_with(
        KEY_SYSTEM,
        std::slice::from_ref(&request.configuration),
        &options,
    )?;
    let media_keys = access.create_media_keys()?;
    let c = media_keys.capabilities();
    Ok(InfoReport {
        key_system: access.key_system().to_string(),
        capabilities: CapabilitiesReport {
            abi_version: c.abi_version,
            engine: c.engine.clone(),
            robustness: c
                .robustness
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            schemes: c.schemes.iter().map(|s| s.as_str().to_string()).collect(),
            session_types: c
                .session_types
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            limits: LimitsReport {
                max_sessions: c.max_sessions,
                max_keys_per_session: c.max_keys_per_session,
                max_sample_len: c.max_sample_len,
                max_subsamples: c.max_subsamples,
                max_secure_buffers: c.max_secure_buffers,
            },
        },
        requested: (&request.configuration).into(),
        configuration: (&access.get_configuration()).into(),
    })
}

/// The report as text.
pub fn render_text(r: &InfoReport) -> String {
    let mut out = String::new();
    let c = &r.capabilities;
    let quoted = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "key system: {}", r.key_system);
    let _ = writeln!(
        out,
        "secure world: ABI version {}, AES engine {}",
        c.abi_version, c.engine
    );
    let _ = writeln!(out, "  robustness: {}", quoted(&c.robustness));
    let _ = writeln!(out, "  schemes: {}", c.schemes.join(", "));
    let _ = writeln!(out, "  session types: {}", c.session_types.join(", "));
    let l = c.limits;
    let _ = writeln!(
        out,
        "  limits: {} sessions, {} keys per session, samples up to {} bytes, {} subsamples, {} secure buffers",
        l.max_sessions, l.max_keys_per_session, l.max_sample_len, l.max_subsamples, l.max_secure_buffers
    );
    let _ = writeln!(out, "getConfiguration():");
    let g = &r.configuration;
    let _ = writeln!(out, "  initDataTypes: {}", quoted(&g.init_data_types));
    for (name, caps) in [
        ("videoCapabilities", &g.video_capabilities),
        ("audioCapabilities", &g.audio_capabilities),
    ] {
        for cap in caps {
            let scheme = cap.encryption_scheme.as_deref().unwrap_or("null");
            let _ = writeln!(
                out,
                "  {name}: {:?} encryptionScheme {scheme} robustness {:?}",
                cap.content_type, cap.robustness
            );
        }
    }
    let _ = writeln!(out, "  distinctiveIdentifier: {}", g.distinctive_identifier);
    let _ = writeln!(out, "  persistentState: {}", g.persistent_state);
    if let Some(types) = &g.session_types {
        let _ = writeln!(out, "  sessionTypes: {}", quoted(types));
    }
    out
}
