//! Key IDs: the public names of content keys.
//!
//! CENC key IDs are 16 bytes (ISO/IEC 23001-7 §8.1.1, `KID`); the `keyids` and `webm` init data
//! formats and Clear Key licenses may carry other lengths. Browsers accept key IDs of 1 to 512
//! bytes, and so do we ([`MIN_KEY_ID_LEN`], [`MAX_KEY_ID_LEN`]). Key IDs are not secret.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::base64url::{self, Base64UrlError};

pub use crate::abi::limits::MAX_KEY_ID_LEN;

/// Shortest accepted key ID, in bytes.
pub const MIN_KEY_ID_LEN: usize = 1;
/// Length of a CENC key ID (the `KID` of `pssh`, `tenc`, `seig`).
pub const CENC_KEY_ID_LEN: usize = 16;

/// Why a byte string is not a valid key ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    /// Zero-length key ID.
    #[error("key ID is empty")]
    Empty,
    /// Longer than [`MAX_KEY_ID_LEN`].
    #[error("key ID is {len} bytes (at most {MAX_KEY_ID_LEN})")]
    TooLong {
        /// Length found.
        len: usize,
    },
    /// The base64url text of the key ID is malformed.
    #[error("key ID: {0}")]
    Base64(#[from] Base64UrlError),
    /// Memory for the key ID could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
}

/// A key ID of 1 to 512 bytes. Ordered and hashed by its bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(Vec<u8>);

impl KeyId {
    /// Validates the length and copies `bytes`.
    pub fn new(bytes: &[u8]) -> Result<Self, KeyIdError> {
        check_len(bytes.len())?;
        let mut v = Vec::new();
        v.try_reserve_exact(bytes.len())
            .map_err(|_| KeyIdError::OutOfMemory)?;
        v.extend_from_slice(bytes);
        Ok(KeyId(v))
    }

    /// A copy of this key ID, allocated fallibly (where [`Clone`] would abort on allocation
    /// failure).
    pub fn try_clone(&self) -> Result<Self, KeyIdError> {
        KeyId::new(&self.0)
    }

    /// Decodes a key ID from strict base64url without padding (EME §9.1.7).
    pub fn from_base64url(s: &str) -> Result<Self, KeyIdError> {
        // Check the length before allocating, so a huge string costs nothing.
        let len = base64url::decoded_len(s.len())
            .ok_or(Base64UrlError::InvalidLength { len: s.len() })?;
        check_len(len)?;
        Ok(KeyId(base64url::decode(s)?))
    }

    /// The key ID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (never zero).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a key ID has at least one byte. (Provided for API completeness.)
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The 16 bytes of a CENC key ID, or `None` if this key ID has another length.
    pub fn as_cenc(&self) -> Option<&[u8; CENC_KEY_ID_LEN]> {
        self.0.as_slice().try_into().ok()
    }

    /// The base64url (no padding) encoding, as used in Clear Key JSON.
    pub fn to_base64url(&self) -> String {
        base64url::encode(&self.0)
    }
}

fn check_len(len: usize) -> Result<(), KeyIdError> {
    if len < MIN_KEY_ID_LEN {
        Err(KeyIdError::Empty)
    } else if len > MAX_KEY_ID_LEN {
        Err(KeyIdError::TooLong { len })
    } else {
        Ok(())
    }
}

impl From<[u8; CENC_KEY_ID_LEN]> for KeyId {
    fn from(bytes: [u8; CENC_KEY_ID_LEN]) -> Self {
        KeyId(bytes.to_vec())
    }
}

impl TryFrom<&[u8]> for KeyId {
    type Error = KeyIdError;
    fn try_from(bytes: &[u8]) -> Result<Self, KeyIdError> {
        KeyId::new(bytes)
    }
}

impl AsRef<[u8]> for KeyId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Lower-case hex, no separators.
impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}
