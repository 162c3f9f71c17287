//! Resource limits and supported robustness levels.

use cdm_core::abi::limits::MAX_KEY_STATUSES;

/// Limits of a [`crate::SecureWorld`]. The defaults are the maxima (Widevine resource tier 2
/// or better); small TEEs configure them downward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Concurrent sessions (1..=32).
    pub max_sessions: usize,
    /// Keys per session (1..=32).
    pub max_keys_per_session: usize,
    /// Secure buffers alive at once, over all sessions (0..=16; 0 only without
    /// `HW_SECURE_DECODE`).
    pub max_secure_buffers: usize,
    /// Total bytes of all live secure buffers (≤ 64 MiB).
    pub max_secure_buffer_bytes: usize,
    /// Sessions may be opened with `SW_SECURE_CRYPTO` (and, for Clear Key, the empty
    /// robustness string, which is treated as `SW_SECURE_CRYPTO`).
    pub sw_secure_crypto: bool,
    /// Sessions may be opened with `HW_SECURE_DECODE`.
    pub hw_secure_decode: bool,
    /// Persistent licenses the store keeps at once (1..=1024); only used when the secure
    /// world has storage ([`crate::SecureWorld::with_storage`]).
    pub max_persistent_licenses: usize,
    /// Bytes of one stored license record (its key IDs and keys) before sealing
    /// (1..=16 KiB).
    pub max_license_record_len: usize,
    /// The pinned root public key of the protected key system (`org.teecdm.protected`), as
    /// 65 bytes of uncompressed SEC1 P-256; `None` disables the key system. Licenses,
    /// server certificates and provisioning responses verify against it.
    pub protected_root: Option<[u8; 65]>,
}

/// Default (and largest) [`Config::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 32;
/// Default (and largest) [`Config::max_keys_per_session`].
pub const DEFAULT_MAX_KEYS_PER_SESSION: usize = 32;
/// Default (and largest) [`Config::max_secure_buffers`].
pub const DEFAULT_MAX_SECURE_BUFFERS: usize = 16;
/// Default (and largest) [`Config::max_secure_buffer_bytes`].
pub const DEFAULT_MAX_SECURE_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Default (and largest) [`Config::max_persistent_licenses`].
pub const DEFAULT_MAX_PERSISTENT_LICENSES: usize = 1024;
/// Default (and largest) [`Config::max_license_record_len`]: 32 keys with 16-byte key IDs
/// take 1,142 bytes.
pub const DEFAULT_MAX_LICENSE_RECORD_LEN: usize = 16 * 1024;

// The license table holds the default number of licenses in one sealed record.
const _: () = assert!(DEFAULT_MAX_PERSISTENT_LICENSES <= crate::store::MAX_TABLE_ENTRIES);

// Every key status of a session must fit one response.
const _: () = assert!(DEFAULT_MAX_KEYS_PER_SESSION <= MAX_KEY_STATUSES);

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_keys_per_session: DEFAULT_MAX_KEYS_PER_SESSION,
            max_secure_buffers: DEFAULT_MAX_SECURE_BUFFERS,
            max_secure_buffer_bytes: DEFAULT_MAX_SECURE_BUFFER_BYTES,
            sw_secure_crypto: true,
            hw_secure_decode: true,
            max_persistent_licenses: DEFAULT_MAX_PERSISTENT_LICENSES,
            max_license_record_len: DEFAULT_MAX_LICENSE_RECORD_LEN,
            protected_root: None,
        }
    }
}

/// Why a [`Config`] was refused, or the secure world could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit is above its default (limits are configurable downward only).
    #[error("`{0}` is above its default")]
    AboveDefault(&'static str),
    /// A limit that must be at least 1 is 0.
    #[error("`{0}` must be at least 1")]
    Zero(&'static str),
    /// Neither robustness level is enabled.
    #[error("no robustness level is enabled")]
    NoRobustness,
    /// The protected key system's root key is not a P-256 public key.
    #[error("the protected key system's root key is not a valid public key")]
    ProtectedRoot,
    /// The device root key could not be read, so storage cannot be opened.
    #[error("the device root key is unavailable")]
    RootKey,
    /// The tables could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
}

impl Config {
    /// Checks the limits against their bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bounded = [
            (
                "max_sessions",
                self.max_sessions,
                DEFAULT_MAX_SESSIONS,
                true,
            ),
            (
                "max_keys_per_session",
                self.max_keys_per_session,
                DEFAULT_MAX_KEYS_PER_SESSION,
                true,
            ),
            (
                "max_secure_buffers",
                self.max_secure_buffers,
                DEFAULT_MAX_SECURE_BUFFERS,
                self.hw_secure_decode,
            ),
            (
                "max_secure_buffer_bytes",
                self.max_secure_buffer_bytes,
                DEFAULT_MAX_SECURE_BUFFER_BYTES,
                self.hw_secure_decode,
            ),
            (
                "max_persistent_licenses",
                self.max_persistent_licenses,
                DEFAULT_MAX_PERSISTENT_LICENSES,
                true,
            ),
            (
                "max_license_record_len",
                self.max_license_record_len,
                DEFAULT_MAX_LICENSE_RECORD_LEN,
                true,
            ),
        ];
        for (name, value, max, nonzero) in bounded {
            if value > max {
                return Err(ConfigError::AboveDefault(name));
            }
            if nonzero && value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if !self.sw_secure_crypto && !self.hw_secure_decode {
            return Err(ConfigError::NoRobustness);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_only_go_down() {
        assert_eq!(Config::default().validate(), Ok(()));
        let small = Config {
            max_sessions: 2,
            max_keys_per_session: 1,
            ..Config::default()
        };
        assert_eq!(small.validate(), Ok(()));
        let big = Config {
            max_sessions: 33,
            ..Config::default()
        };
        assert_eq!(
            big.validate(),
            Err(ConfigError::AboveDefault("max_sessions"))
        );
        let zero = Config {
            max_keys_per_session: 0,
            ..Config::default()
        };
        assert_eq!(
            zero.validate(),
            Err(ConfigError::Zero("max_keys_per_session"))
        );
        let none = Config {
            sw_secure_crypto: false,
            hw_secure_decode: false,
            ..Config::default()
        };
        assert_eq!(none.validate(), Err(ConfigError::NoRobustness));
        let sw_only = Config {
            hw_secure_decode: false,
            max_secure_buffers: 0,
            ..Config::default()
        };
        assert_eq!(sw_only.validate(), Ok(()));
    }
}
