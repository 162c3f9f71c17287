//! Rotation records for packagers (`license-server protected-rotation`): content keys wrapped
//! under an entitlement key ([`protected_license::server::rotation_record`]), as the data of a
//! `pssh` box of [`protected_license::SYSTEM_ID`] or as the whole box.

use protected_license::crypto::{ContentKey, EntitlementKey};
use protected_license::messages::{KeyId, MAX_KEYS};
use protected_license::SYSTEM_ID;

/// Why a rotation record could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    /// No content key, or more than [`MAX_KEYS`].
    #[error("a rotation record holds 1 to {MAX_KEYS} keys, not {0}")]
    KeyCount(usize),
    /// The protocol crate refused (it names the reason).
    #[error("{0}")]
    Protocol(protected_license::Error),
    /// The record does not fit a `pssh` box's 32-bit sizes.
    #[error("record too large for a pssh box")]
    TooLarge,
}

/// The rotation record (the `pssh` data): each of `keys` wrapped under `entitlement`, whose ID
/// is `entitlement_key_id`.
pub fn build_record(
    entitlement_key_id: &KeyId,
    entitlement: &EntitlementKey,
    keys: &[(KeyId, ContentKey)],
) -> Result<Vec<u8>, RotationError> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(RotationError::KeyCount(keys.len()));
    }
    protected_license::server::rotation_record(entitlement_key_id, entitlement, keys)
        .map_err(RotationError::Protocol)
}

/// Length of a version 0 `pssh` box's fields before its data: size (4), type (4), version
/// and flags (4), system ID (16), data size (4) (ISO/IEC 23001-7 §8.1.2).
pub const PSSH_HEADER_LEN: usize = 32;

/// A version 0 `pssh` box (ISO/IEC 23001-7 §8.1) of [`SYSTEM_ID`] carrying `data`: size
/// (`u32` big-endian, the whole box), `pssh`, version 0, flags 0, the system ID, the data
/// size (`u32` big-endian) and the data.
pub fn pssh_box(data: &[u8]) -> Result<Vec<u8>, RotationError> {
    let total = data
        .len()
        .checked_add(PSSH_HEADER_LEN)
        .ok_or(RotationError::TooLarge)?;
    let size = u32::try_from(total).map_err(|_| RotationError::TooLarge)?;
    let data_size = u32::try_from(data.len()).map_err(|_| RotationError::TooLarge)?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&SYSTEM_ID);
    out.extend_from_slice(&data_size.to_be_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pssh_box_layout() {
        let b = pssh_box(b"abc").unwrap();
        assert_eq!(b.len(), 35);
        assert_eq!(&b[..4], &35u32.to_be_bytes());
        assert_eq!(&b[4..8], b"pssh");
        assert_eq!(&b[8..12], &[0, 0, 0, 0]);
        assert_eq!(&b[12..28], &SYSTEM_ID);
        assert_eq!(&b[28..32], &3u32.to_be_bytes());
        assert_eq!(&b[32..], b"abc");
    }

    #[test]
    fn key_count_is_checked() {
        let e = EntitlementKey::new([1; 16]);
        assert_eq!(
            build_record(&[0; 16], &e, &[]),
            Err(RotationError::KeyCount(0))
        );
        let many: Vec<_> = (0..=u8::try_from(MAX_KEYS).unwrap())
            .map(|i| ([i; 16], ContentKey::new([2; 16])))
            .collect();
        assert_eq!(
            build_record(&[0; 16], &e, &many),
            Err(RotationError::KeyCount(MAX_KEYS + 1))
        );
        assert!(build_record(&[0; 16], &e, &many[..MAX_KEYS]).is_ok());
    }
}
