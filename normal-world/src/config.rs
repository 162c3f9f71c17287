//! The configuration a player asks for and the one negotiated (EME §3.2 WebIDL
//! dictionaries), with their dictionary defaults.

/// WebIDL `MediaKeysRequirement` (EME §3.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MediaKeysRequirement {
    /// `"required"`: the feature must be used.
    Required,
    /// `"optional"` (the dictionary default): negotiated.
    #[default]
    Optional,
    /// `"not-allowed"`: the feature must not be used.
    NotAllowed,
}

impl MediaKeysRequirement {
    /// The WebIDL string.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaKeysRequirement::Required => "required",
            MediaKeysRequirement::Optional => "optional",
            MediaKeysRequirement::NotAllowed => "not-allowed",
        }
    }
}

/// WebIDL `MediaKeySystemMediaCapability` (EME §3.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MediaKeySystemMediaCapability {
    /// MIME type with an RFC 6381 `codecs` parameter, e.g. `video/mp4; codecs="avc1.64001f"`.
    pub content_type: String,
    /// `encryptionScheme`: `None` (WebIDL `null`, any scheme the content uses), `"cenc"`,
    /// `"cbcs"` or `"cbcs-1-9"`.
    pub encryption_scheme: Option<String>,
    /// Robustness string; `org.w3.clearkey` supports only `""`.
    pub robustness: String,
}

impl MediaKeySystemMediaCapability {
    /// A capability for `content_type` with no scheme and the empty robustness.
    pub fn new(content_type: &str) -> Self {
        MediaKeySystemMediaCapability {
            content_type: content_type.to_string(),
            encryption_scheme: None,
            robustness: String::new(),
        }
    }

    /// The same capability requiring `scheme`.
    pub fn with_scheme(mut self, scheme: &str) -> Self {
        self.encryption_scheme = Some(scheme.to_string());
        self
    }

    /// The same capability with `robustness`.
    pub fn with_robustness(mut self, robustness: &str) -> Self {
        self.robustness = robustness.to_string();
        self
    }
}

/// WebIDL `MediaKeySystemConfiguration` (EME §3.2), with the dictionary defaults
/// ([`Default`]). Strings stay strings, as in WebIDL: unknown values are negotiated away,
/// not rejected by the type system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MediaKeySystemConfiguration {
    /// Free-form label, echoed in the chosen configuration.
    pub label: String,
    /// `initDataTypes` (`"cenc"`, `"keyids"`, `"webm"`, …).
    pub init_data_types: Vec<String>,
    /// `audioCapabilities`.
    pub audio_capabilities: Vec<MediaKeySystemMediaCapability>,
    /// `videoCapabilities`.
    pub video_capabilities: Vec<MediaKeySystemMediaCapability>,
    /// `distinctiveIdentifier` (default `optional`).
    pub distinctive_identifier: MediaKeysRequirement,
    /// `persistentState` (default `optional`).
    pub persistent_state: MediaKeysRequirement,
    /// `sessionTypes`; `None` means the member is absent (treated as `["temporary"]`).
    pub session_types: Option<Vec<String>>,
}
