//! Key slots: one content key of a session, held only as an expanded AES schedule.

use core::fmt;

use alloc::vec::Vec;

use cdm_core::KeyStatus;
use hal::aes::Aes128;

use crate::error::Error;
use crate::protected::Requirement;

/// A loaded key: its ID, its EME status and, while usable, its AES-128 schedule.
///
/// The schedule zeroizes itself on drop (hal's [`Aes128`]); the raw content key is never
/// stored. There is no `Clone`, no derived `Debug` and no `PartialEq`.
pub(crate) struct KeySlot {
    /// The key ID (validated by the license parser: 1..=512 bytes).
    kid: Vec<u8>,
    key: Option<Aes128>,
    status: KeyStatus,
    /// What using a protected key requires (`None` for Clear Key).
    requirement: Option<Requirement>,
}

impl KeySlot {
    /// A usable key.
    pub(crate) fn new(kid: Vec<u8>, key: Aes128) -> Self {
        KeySlot {
            kid,
            key: Some(key),
            status: KeyStatus::Usable,
            requirement: None,
        }
    }

    /// A usable protected key with its requirement.
    pub(crate) fn protected(kid: Vec<u8>, key: Aes128, requirement: Requirement) -> Self {
        KeySlot {
            requirement: Some(requirement),
            ..KeySlot::new(kid, key)
        }
    }

    /// What using the key requires (protected keys).
    pub(crate) fn requirement(&self) -> Option<Requirement> {
        self.requirement
    }

    /// Sets the status of a key that is not released (policy and output protection
    /// decide between `usable`, `expired` and `output-restricted`).
    pub(crate) fn set_status(&mut self, status: KeyStatus) {
        if self.key.is_some() {
            self.status = status;
        }
    }

    /// A slot for a released key: the key ID alone, status `released` (a stored license
    /// whose release is pending).
    pub(crate) fn released(kid: Vec<u8>) -> Self {
        KeySlot {
            kid,
            key: None,
            status: KeyStatus::Released,
            requirement: None,
        }
    }

    /// The key ID.
    pub(crate) fn kid(&self) -> &[u8] {
        &self.kid
    }

    /// The EME key status (EME §6.5.3).
    pub(crate) fn status(&self) -> KeyStatus {
        self.status
    }

    /// The schedule, if the key may be used now.
    pub(crate) fn usable_key(&self) -> Result<&Aes128, Error> {
        match (&self.key, self.status) {
            (Some(key), KeyStatus::Usable) => Ok(key),
            _ => Err(Error::KeyNotUsable),
        }
    }

    /// Replaces the schedule (a license carrying a key ID the session already has): the old
    /// schedule is dropped, and so wiped, in place.
    pub(crate) fn replace(&mut self, key: Aes128, requirement: Option<Requirement>) {
        self.key = Some(key);
        self.status = KeyStatus::Usable;
        self.requirement = requirement;
    }

    /// EME `remove()`: the schedule is destroyed (wiped on drop) and the status becomes
    /// `released`; the key ID stays for the record of license destruction.
    pub(crate) fn release(&mut self) {
        self.key = None;
        self.status = KeyStatus::Released;
    }
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySlot")
            .field("kid", &KidHex(&self.kid))
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Key IDs print as lower-case hex (they are public).
struct KidHex<'a>(&'a [u8]);

impl fmt::Debug for KidHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
