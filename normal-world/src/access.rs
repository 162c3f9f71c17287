//! Key system access: `requestMediaKeySystemAccess()` and configuration negotiation
//! (EME §3.1.1 and its "Get Supported Configuration" algorithms).
//!
//! The answer depends only on the key system's fixed support (no device state), so it is the
//! same call after call. Both key systems: init data types `cenc`, `keyids`, `webm`; MP4 and
//! WebM audio/video with the codecs the private `content_type` module knows; encryption
//! schemes `cenc`, `cbcs` and `cbcs-1-9` (or none named). Persistent state and
//! `persistent-license` sessions are offered only when the caller says where the secure world
//! keeps its storage ([`KeySystemOptions::storage_dir`],
//! [`request_media_key_system_access_with`]); otherwise only `temporary` sessions, and
//! `persistentState: "required"` is not supported.
//!
//! - `org.w3.clearkey`: the empty robustness string only; no distinctive identifier.
//! - `org.teecdm.protected` (offered when [`KeySystemOptions::protected_root`] is set):
//!   robustness `""`, `SW_SECURE_CRYPTO` and `HW_SECURE_DECODE`; the device certificate is a
//!   distinctive identifier, so `distinctiveIdentifier: "not-allowed"` is not supported and
//!   `"optional"` resolves to `"required"`.

use std::path::PathBuf;
use std::str::FromStr;

use cdm_core::eme::{EncryptionScheme, InitDataType, KeySystem, SessionType};

use crate::config::{
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeysRequirement,
};
use crate::content_type::{parse_content_type, MediaKind};
use crate::error::EmeError;
use crate::media_keys::MediaKeys;
use crate::transport::Transport;

/// What this deployment adds to the key system's fixed support. Non-EME: a browser knows
/// it from its profile directory; an embedder says it here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySystemOptions {
    /// Where the secure world keeps persistent licenses (the layout of
    /// `hal::platform::HostPersistence`). `Some` offers `persistentState` and
    /// `persistent-license` sessions; `MediaKeySystemAccess::create_media_keys` (feature
    /// `in-process`) builds its in-process secure world on this directory, and a socket host
    /// must have been started with `--storage` on it (`createMediaKeys` checks that the secure
    /// world really has storage).
    pub storage_dir: Option<PathBuf>,
    /// The `org.teecdm.protected` root public key the deployment pins (65 bytes, the license
    /// server's `root.pub`). `Some` offers the key system; the in-process secure world of
    /// `MediaKeySystemAccess::create_media_keys` (feature `in-process`) pins it, and a socket
    /// host must have been started with `--protected-root` on the same key (`createMediaKeys`
    /// checks).
    pub protected_root: Option<[u8; 65]>,
}

/// Access to a key system with a negotiated configuration (EME §3.2
/// `MediaKeySystemAccess`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaKeySystemAccess {
    key_system: KeySystem,
    configuration: MediaKeySystemConfiguration,
    options: KeySystemOptions,
}

impl MediaKeySystemAccess {
    /// The key system string (`"org.w3.clearkey"`).
    pub fn key_system(&self) -> &'static str {
        self.key_system.as_str()
    }

    /// The supported configuration chosen by [`request_media_key_system_access`]
    /// (EME `getConfiguration()`).
    pub fn get_configuration(&self) -> MediaKeySystemConfiguration {
        self.configuration.clone()
    }

    /// Creates a `MediaKeys` backed by an in-process secure world (EME `createMediaKeys()`).
    /// Only with the `in-process` feature, which links the secure world into this process;
    /// otherwise pass a transport to [`Self::create_media_keys_with_transport`].
    #[cfg(feature = "in-process")]
    pub fn create_media_keys(&self) -> Result<MediaKeys, EmeError> {
        let config = secure_world::Config {
            protected_root: self.options.protected_root,
            ..secure_world::Config::default()
        };
        let transport = match &self.options.storage_dir {
            None => crate::transport::InProcessTransport::with_config(config),
            Some(dir) => crate::transport::InProcessTransport::with_storage(dir, config),
        }
        .map_err(|e| EmeError::NotSupportedError(format!("createMediaKeys: {e}")))?;
        self.create_media_keys_with_transport(Box::new(transport))
    }

    /// Creates a `MediaKeys` whose secure world is reached through `transport` (e.g. a
    /// [`crate::transport::SocketTransport`]). Non-EME extension.
    pub fn create_media_keys_with_transport(
        &self,
        transport: Box<dyn Transport>,
    ) -> Result<MediaKeys, EmeError> {
        MediaKeys::new(self.key_system, self.configuration.clone(), transport)
    }
}

/// EME §3.1.1 `requestMediaKeySystemAccess()`: the first configuration of `configs` the key
/// system supports, reduced to what is supported. Without storage: persistent state and
/// `persistent-license` sessions are not offered (see
/// [`request_media_key_system_access_with`]).
///
/// Errors: `TypeError` if `key_system` is empty or `configs` is empty (§3.1.1 steps 1–2),
/// `NotSupportedError` if the key system is unknown (step 3) or no configuration is
/// supported (step 6.3.3).
pub fn request_media_key_system_access(
    key_system: &str,
    configs: &[MediaKeySystemConfiguration],
) -> Result<MediaKeySystemAccess, EmeError> {
    request_media_key_system_access_with(key_system, configs, &KeySystemOptions::default())
}

/// [`request_media_key_system_access`] for a deployment described by `options`: with a
/// storage directory, `persistentState: "required"` and `sessionTypes:
/// ["persistent-license"]` are supported too. The answer depends only on `configs` and on
/// whether a directory is given, so it is the same call after call.
pub fn request_media_key_system_access_with(
    key_system: &str,
    configs: &[MediaKeySystemConfiguration],
    options: &KeySystemOptions,
) -> Result<MediaKeySystemAccess, EmeError> {
    if key_system.is_empty() {
        return Err(EmeError::TypeError("keySystem is the empty string".into()));
    }
    if configs.is_empty() {
        return Err(EmeError::TypeError(
            "supportedConfigurations is empty".into(),
        ));
    }
    let unsupported =
        || EmeError::NotSupportedError(format!("key system {key_system:?} is not supported"));
    let key_system = KeySystem::from_str(key_system).map_err(|_| unsupported())?;
    if key_system == KeySystem::Protected && options.protected_root.is_none() {
        return Err(unsupported());
    }
    configs
        .iter()
        .find_map(|c| {
            get_supported_configuration(c, options.storage_dir.is_some(), key_system).ok()
        })
        .map(|configuration| MediaKeySystemAccess {
            key_system,
            configuration,
            options: options.clone(),
        })
        .ok_or_else(|| {
            EmeError::NotSupportedError(format!(
                "none of the requested configurations is supported by {key_system}"
            ))
        })
}

/// Why a candidate configuration is not supported (the `NotSupported` returns of §3.1.1.1),
/// kept for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsupported {
    InitDataTypes,
    DistinctiveIdentifier,
    PersistentState,
    SessionType,
    NoCapabilities,
    VideoCapabilities,
    AudioCapabilities,
}

/// EME §3.1.1.1 "Get Supported Configuration and Consent" (consent steps omitted: Clear Key
/// uses no distinctive identifier, and its persistent state is only licenses the application
/// asked to persist). `storage`: whether persistent state can be kept.
pub(crate) fn get_supported_configuration(
    candidate: &MediaKeySystemConfiguration,
    storage: bool,
    key_system: KeySystem,
) -> Result<MediaKeySystemConfiguration, Unsupported> {
    let protected = key_system == KeySystem::Protected;
    // Step 1, 2: the label is copied.
    let mut acc = MediaKeySystemConfiguration {
        label: candidate.label.clone(),
        ..MediaKeySystemConfiguration::default()
    };
    // Step 3: init data types. Comparison is case-sensitive; "" is never supported.
    if !candidate.init_data_types.is_empty() {
        let supported: Vec<String> = candidate
            .init_data_types
            .iter()
            .filter(|t| InitDataType::from_str(t).is_ok())
            .cloned()
            .collect();
        if supported.is_empty() {
            return Err(Unsupported::InitDataTypes);
        }
        acc.init_data_types = supported;
    }
    // Step 4: Clear Key never uses a distinctive identifier; the protected key system always
    // does (the device certificate identifies the device).
    match (protected, candidate.distinctive_identifier) {
        (false, MediaKeysRequirement::Required) | (true, MediaKeysRequirement::NotAllowed) => {
            return Err(Unsupported::DistinctiveIdentifier)
        }
        _ => {}
    }
    acc.distinctive_identifier = candidate.distinctive_identifier;
    // Step 5: persistent state needs storage.
    if candidate.persistent_state == MediaKeysRequirement::Required && !storage {
        return Err(Unsupported::PersistentState);
    }
    acc.persistent_state = candidate.persistent_state;
    // Step 6: session types, default ["temporary"].
    let session_types = candidate
        .session_types
        .clone()
        .unwrap_or_else(|| vec![SessionType::Temporary.as_str().to_string()]);
    for ty in &session_types {
        match SessionType::from_str(ty) {
            Ok(SessionType::Temporary) => {}
            // Step 6.3: a persistent session type needs persistent state: refused where it is
            // "not-allowed" (6.3.1) or cannot be kept; otherwise persistent state becomes
            // "required" (6.3.3).
            Ok(SessionType::PersistentLicense) => {
                if !storage || acc.persistent_state == MediaKeysRequirement::NotAllowed {
                    return Err(Unsupported::SessionType);
                }
                acc.persistent_state = MediaKeysRequirement::Required;
            }
            // A type the implementation does not support (step 6.3.2).
            Err(_) => return Err(Unsupported::SessionType),
        }
    }
    acc.session_types = Some(session_types);
    // Step 8: at least one capability.
    if candidate.video_capabilities.is_empty() && candidate.audio_capabilities.is_empty() {
        return Err(Unsupported::NoCapabilities);
    }
    // Steps 9, 10.
    if !candidate.video_capabilities.is_empty() {
        acc.video_capabilities =
            get_supported_capabilities(MediaKind::Video, &candidate.video_capabilities, protected)
                .ok_or(Unsupported::VideoCapabilities)?;
    }
    if !candidate.audio_capabilities.is_empty() {
        acc.audio_capabilities =
            get_supported_capabilities(MediaKind::Audio, &candidate.audio_capabilities, protected)
                .ok_or(Unsupported::AudioCapabilities)?;
    }
    // Steps 11, 12: "optional" resolves to "not-allowed": Clear Key needs no distinctive
    // identifier, and persistent state only for persistent sessions, which made it
    // "required" above.
    if acc.distinctive_identifier == MediaKeysRequirement::Optional {
        acc.distinctive_identifier = if protected {
            MediaKeysRequirement::Required
        } else {
            MediaKeysRequirement::NotAllowed
        };
    }
    if acc.persistent_state == MediaKeysRequirement::Optional {
        acc.persistent_state = MediaKeysRequirement::NotAllowed;
    }
    Ok(acc)
}

/// EME §3.1.1.2 "Get Supported Capabilities for Audio/Video Type": the requested
/// capabilities that are supported, in request order and as requested; `None` if none is
/// (or if a content type is the empty string, step 3.4).
fn get_supported_capabilities(
    kind: MediaKind,
    requested: &[MediaKeySystemMediaCapability],
    protected: bool,
) -> Option<Vec<MediaKeySystemMediaCapability>> {
    let mut supported = Vec::new();
    for cap in requested {
        if cap.content_type.is_empty() {
            return None;
        }
        if parse_content_type(&cap.content_type, kind).is_err() {
            continue;
        }
        // Step 3.13: a named scheme must be one the implementation supports.
        if let Some(scheme) = &cap.encryption_scheme {
            match EncryptionScheme::from_eme_encryption_scheme(scheme) {
                Some(EncryptionScheme::Cenc | EncryptionScheme::Cbcs) => {}
                _ => continue,
            }
        }
        // Step 3.14: org.w3.clearkey has no robustness levels beyond ""; the protected key
        // system knows SW_SECURE_CRYPTO and HW_SECURE_DECODE too.
        let known = cap.robustness.is_empty()
            || (protected
                && matches!(
                    cap.robustness.as_str(),
                    "SW_SECURE_CRYPTO" | "HW_SECURE_DECODE"
                ));
        if !known {
            continue;
        }
        // Step 3.15: supported, added as requested.
        supported.push(cap.clone());
    }
    (!supported.is_empty()).then_some(supported)
}
