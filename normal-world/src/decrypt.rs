//! What a player passes to [`crate::MediaKeys::decrypt`] and gets back.

use cdm_core::eme::EncryptionScheme;

/// Where the player wants the clear sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputWish {
    /// Whatever the key's robustness requires: in place for `SW_SECURE_CRYPTO` (and Clear
    /// Key's `""`), a secure buffer for `HW_SECURE_DECODE`.
    #[default]
    Auto,
    /// In place in the player's buffer (refused for `HW_SECURE_DECODE` keys).
    InPlace,
    /// In a secure buffer, answered as a [`SecureBufferHandle`].
    SecureBuffer,
}

/// The protection description of one sample (ISO/IEC 23001-7 sample auxiliary information
/// plus the track's scheme, pattern and key ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleDescription<'a> {
    /// The key ID (`KID`, 1..=512 bytes; 16 in CENC).
    pub key_id: &'a [u8],
    /// The protection scheme (`cenc`, `cbcs`, `cens`, `cbc1`).
    pub scheme: EncryptionScheme,
    /// The per-sample IV (8 or 16 bytes) or, for `cbcs`, the constant IV.
    pub iv: &'a [u8],
    /// `crypt:skip` pattern in 16-byte blocks (`(0, 0)` for none; `cbcs` commonly `(1, 9)`).
    pub pattern: (u8, u8),
    /// `(clear, protected)` byte counts whose sum is the sample length; empty means the
    /// whole sample is protected.
    pub subsamples: &'a [(u32, u32)],
    /// Where the clear sample goes.
    pub output: OutputWish,
}

/// An opaque handle on a secure buffer holding a decrypted sample (`HW_SECURE_DECODE`). Pass
/// it to [`crate::MediaKeys::render_secure_buffer`] or
/// [`crate::MediaKeys::release_secure_buffer`]; it is valid for the `MediaKeys` that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecureBufferHandle {
    pub(crate) session: u64,
    pub(crate) buffer: u64,
}

/// Where [`crate::MediaKeys::decrypt`] put the clear sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptedSample {
    /// The player's buffer now holds the clear sample (`SW_SECURE_CRYPTO`).
    InPlace,
    /// The clear sample is in a secure buffer; the player's buffer is unchanged.
    SecureBuffer(SecureBufferHandle),
}

/// What the secure output sink received for a rendered secure buffer: lets tests and
/// integrators check the protected path without seeing the clear sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderedSample {
    /// Bytes rendered.
    pub len: u32,
    /// SHA-256 of the bytes rendered.
    pub digest: [u8; 32],
}
