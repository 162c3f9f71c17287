//! The device root key: a secret unique to this device, from which the secure world derives
//! its storage keys.
//!
//! On a device it is the hardware-unique key (HUK) or a key derived from it inside the TEE.
//! OP-TEE does not give a trusted application the HUK itself: the system pseudo-TA's
//! `PTA_SYSTEM_DERIVE_TA_UNIQUE_KEY` returns up to 32 bytes derived from the HUK and the TA's
//! UUID, and that key is this TA's root key.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the device root key, in bytes.
pub const ROOT_KEY_LEN: usize = 32;

/// The device could not supply its root key. Carries no key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RootKeyError {
    /// The key exists but is not [`ROOT_KEY_LEN`] bytes long; it is refused, never replaced
    /// (a new key would orphan everything sealed under the old one).
    #[error("device root key has the wrong length")]
    WrongLength,
    /// The key could not be read (or, for an emulation, generated).
    #[error("device root key unavailable")]
    Unavailable,
}

/// A buffer for the device root key: wiped on drop, never printed (its `Debug` shows
/// `RootKey { .. }`), not `Clone`, no `PartialEq`.
///
/// The caller owns the buffer and lends it to [`DeviceRootKey::root_key`], which writes the key
/// in place: returning a key by value would leave unwiped copies behind on the stack.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RootKey([u8; ROOT_KEY_LEN]);

impl RootKey {
    /// An all-zero buffer, to be filled by [`DeviceRootKey::root_key`].
    pub fn zeroed() -> Self {
        RootKey([0; ROOT_KEY_LEN])
    }

    /// The key bytes, for key derivation (HKDF input keying material). Never use them as a key
    /// directly, and never let them leave the secure world.
    pub fn expose(&self) -> &[u8; ROOT_KEY_LEN] {
        &self.0
    }

    /// The key bytes, for an implementation of [`DeviceRootKey`] to write into.
    pub fn expose_mut(&mut self) -> &mut [u8; ROOT_KEY_LEN] {
        &mut self.0
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey { .. }")
    }
}

/// Where the device root key comes from.
///
/// Contract for implementors: every call yields the same [`ROOT_KEY_LEN`] bytes for the life
/// of the device; on error `out` is left zeroed, not half-written; errors carry no key bytes.
pub trait DeviceRootKey {
    /// Writes the device root key into `out`.
    fn root_key(&self, out: &mut RootKey) -> Result<(), RootKeyError>;
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    #[test]
    fn debug_does_not_print_the_key() {
        let mut key = RootKey::zeroed();
        key.expose_mut().copy_from_slice(&[0xab; ROOT_KEY_LEN]);
        assert_eq!(format!("{key:?} {key:#?}"), "RootKey { .. } RootKey { .. }");
    }

    #[test]
    fn zeroize_clears_the_key() {
        let mut key = RootKey::zeroed();
        key.expose_mut().copy_from_slice(&[0x5a; ROOT_KEY_LEN]);
        key.zeroize();
        assert_eq!(key.expose(), &[0; ROOT_KEY_LEN]);
    }
}
