//! Size limits of the ABI. Both sides check them: a sender never produces a message that
//! breaks one, and a receiver rejects it with [`super::Status::PayloadTooLarge`] or
//! [`super::Status::InvalidField`].

/// Largest init data accepted by `GenerateRequest` (browsers enforce 64 KiB).
pub const MAX_INIT_DATA_LEN: usize = 64 * 1024;

/// Largest license / response accepted by `Update` (browsers enforce 64 KiB).
pub const MAX_LICENSE_LEN: usize = 64 * 1024;

/// Largest EME message (license request, release record) the secure world produces.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Largest session id string.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// Key IDs are 1 to 512 bytes (the bound browsers apply to key IDs in init data).
pub const MAX_KEY_ID_LEN: usize = 512;

/// Largest number of key statuses in one response.
pub const MAX_KEY_STATUSES: usize = 64;

/// Largest sample the `Decrypt` operation accepts.
pub const MAX_SAMPLE_LEN: usize = 16 * 1024 * 1024;

/// Largest subsample map (Widevine resource tier 2 and above).
pub const MAX_SUBSAMPLES: usize = 576;

/// Largest payload of any control message: 64 KiB of content plus room for the fixed
/// fields that frame it.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024 + 1024;
