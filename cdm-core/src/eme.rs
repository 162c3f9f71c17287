//! EME vocabulary: the enumerations of the W3C Encrypted Media Extensions, with their EME
//! strings and stable one-byte wire values.
//!
//! Every enum has
//! - `to_wire` / `from_wire`: the value that travels in the message ABI. Wire values start at 1
//!   so that a zeroed field never decodes to a valid value; they are stable forever (new
//!   variants take new numbers, removed numbers are never reused);
//! - `as_str` / [`core::str::FromStr`]: the exact EME string (case-sensitive, as EME compares them);
//! - `ALL`: every variant, in wire order.

/// A string is not one of the EME strings of the enum it was parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} string")]
pub struct UnknownEmeString {
    /// Name of the enum that was being parsed (e.g. `"MediaKeySessionType"`).
    pub what: &'static str,
}

wire_enum! {
    /// `MediaKeySessionType` (EME §6.2). Only the two session types of the EME
    /// Recommendation; `persistent-usage-record` was removed from EME and is not supported.
    pub enum SessionType: u8, eme "MediaKeySessionType" {
        /// `"temporary"`: keys live as long as the session object.
        Temporary = 1 => "temporary",
        /// `"persistent-license"`: the license is stored and can be loaded again.
        PersistentLicense = 2 => "persistent-license",
    }
}

wire_enum! {
    /// `MediaKeyStatus` (EME §6.5.3).
    pub enum KeyStatus: u8, eme "MediaKeyStatus" {
        /// `"usable"`: the key can be used for decryption now.
        Usable = 1 => "usable",
        /// `"expired"`: the key's expiration time has passed.
        Expired = 2 => "expired",
        /// `"released"`: the key was released (e.g. after `remove()`).
        Released = 3 => "released",
        /// `"output-restricted"`: output requirements are not met; decoded frames cannot be
        /// shown.
        OutputRestricted = 4 => "output-restricted",
        /// `"output-downscaled"`: output is allowed only at reduced quality.
        OutputDownscaled = 5 => "output-downscaled",
        /// `"usable-in-future"`: the key is not usable yet (start time in the future).
        UsableInFuture = 6 => "usable-in-future",
        /// `"status-pending"`: the status is not yet known.
        StatusPending = 7 => "status-pending",
        /// `"internal-error"`: the key is not usable because of a CDM error.
        InternalError = 8 => "internal-error",
    }
}

wire_enum! {
    /// `MediaKeyMessageType` (EME §6.6.1): the kind of a `message` event.
    pub enum MessageType: u8, eme "MediaKeyMessageType" {
        /// `"license-request"`: a request for a new license.
        LicenseRequest = 1 => "license-request",
        /// `"license-renewal"`: a request to renew an existing license.
        LicenseRenewal = 2 => "license-renewal",
        /// `"license-release"`: a record of license destruction (persistent licenses).
        LicenseRelease = 3 => "license-release",
        /// `"individualization-request"`: a request for individualization.
        IndividualizationRequest = 4 => "individualization-request",
    }
}

wire_enum! {
    /// Initialization Data Types of the EME Initialization Data Format Registry.
    pub enum InitDataType: u8, eme "initDataType" {
        /// `"cenc"`: concatenated ISO BMFF `pssh` boxes (ISO/IEC 23001-7 §8.1).
        Cenc = 1 => "cenc",
        /// `"keyids"`: JSON `{"kids":[...]}`.
        KeyIds = 2 => "keyids",
        /// `"webm"`: a single WebM `ContentEncKeyID`.
        Webm = 3 => "webm",
    }
}

wire_enum! {
    /// Robustness strings of `MediaKeySystemMediaCapability.robustness` (EME §5.1.2). The
    /// strings are key-system specific; these are the ones this CDM understands.
    pub enum Robustness: u8, eme "robustness" {
        /// `""`: no robustness requirement. The only robustness `org.w3.clearkey` accepts.
        Empty = 1 => "",
        /// `"SW_SECURE_CRYPTO"`: keys and crypto in the secure world, clear samples return
        /// to the normal world.
        SwSecureCrypto = 2 => "SW_SECURE_CRYPTO",
        /// `"HW_SECURE_DECODE"`: decrypted samples never leave secure memory.
        HwSecureDecode = 3 => "HW_SECURE_DECODE",
    }
}

wire_enum! {
    /// Common Encryption protection schemes (ISO/IEC 23001-7 §10), by their four-character
    /// scheme type. For EME's `encryptionScheme` strings use
    /// [`EncryptionScheme::from_eme_encryption_scheme`].
    pub enum EncryptionScheme: u8, eme "encryption scheme" {
        /// `cenc`: AES-CTR, full sample encryption (§10.1).
        Cenc = 1 => "cenc",
        /// `cbcs`: AES-CBC with a pattern and a constant IV (§10.4).
        Cbcs = 2 => "cbcs",
        /// `cens`: AES-CTR with a pattern (§10.3).
        Cens = 3 => "cens",
        /// `cbc1`: AES-CBC, full sample encryption (§10.2).
        Cbc1 = 4 => "cbc1",
    }
}

impl EncryptionScheme {
    /// Maps EME's `MediaKeySystemMediaCapability.encryptionScheme` string (EME §5.1.2,
    /// "Encryption Scheme" registry) to a scheme: `"cenc"` → `Cenc`; `"cbcs"` and
    /// `"cbcs-1-9"` (cbcs restricted to the 1:9 pattern) → `Cbcs`. EME defines no strings for
    /// `cens` and `cbc1`, so they are never returned.
    pub fn from_eme_encryption_scheme(s: &str) -> Option<Self> {
        match s {
            "cenc" => Some(EncryptionScheme::Cenc),
            "cbcs" | "cbcs-1-9" => Some(EncryptionScheme::Cbcs),
            _ => None,
        }
    }
}

wire_enum! {
    /// `MediaKeySessionClosedReason` (EME §6.3): why a session's `closed` promise resolved.
    pub enum ClosedReason: u8, eme "MediaKeySessionClosedReason" {
        /// `"closed-by-application"`: `close()` or `remove()` was called.
        ClosedByApplication = 1 => "closed-by-application",
        /// `"release-acknowledged"`: the license release was acknowledged.
        ReleaseAcknowledged = 2 => "release-acknowledged",
        /// `"hardware-context-reset"`: the secure hardware context was reset.
        HardwareContextReset = 3 => "hardware-context-reset",
        /// `"resource-evicted"`: the CDM reclaimed the session's resources.
        ResourceEvicted = 4 => "resource-evicted",
        /// `"internal-error"`: an unrecoverable CDM error.
        InternalError = 5 => "internal-error",
    }
}

wire_enum! {
    /// Key systems this CDM implements, by their EME key system string.
    pub enum KeySystem: u8, eme "key system" {
        /// `"org.w3.clearkey"`: the Clear Key system every EME implementation supports
        /// (EME §9.1).
        ClearKey = 1 => "org.w3.clearkey",
        /// `"org.teecdm.protected"`: this project's protected key system: device-bound keys,
        /// signed licenses, enforced policy (`docs/protected-license.md`).
        Protected = 2 => "org.teecdm.protected",
    }
}

wire_enum! {
    /// HDCP versions of the EME HDCP Policy Check (`MediaKeysPolicy.minHdcpVersion`, the
    /// strings of the "HDCP Version" registry). The wire value is the version as two BCD
    /// digits (`0x22` is 2.2), the encoding `docs/protected-license.md` uses too.
    pub enum HdcpVersion: u8, eme "HDCP version" {
        /// HDCP 1.0.
        V1_0 = 0x10 => "1.0",
        /// HDCP 1.1.
        V1_1 = 0x11 => "1.1",
        /// HDCP 1.2.
        V1_2 = 0x12 => "1.2",
        /// HDCP 1.3.
        V1_3 = 0x13 => "1.3",
        /// HDCP 1.4.
        V1_4 = 0x14 => "1.4",
        /// HDCP 2.0.
        V2_0 = 0x20 => "2.0",
        /// HDCP 2.1.
        V2_1 = 0x21 => "2.1",
        /// HDCP 2.2.
        V2_2 = 0x22 => "2.2",
        /// HDCP 2.3.
        V2_3 = 0x23 => "2.3",
    }
}
