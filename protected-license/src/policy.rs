//! The license policy the secure world enforces.
//!
//! Durations count on the **device's** clock from the moment the device accepts the license (or
//! renewal response), so the server's and device's clocks need not agree; `0` means
//! unlimited. The secure world's platform clock must be trusted time for these limits to mean
//! anything (a host clock can be rolled back).

use crate::Error;
use cdm_core::codec::{Reader, Writer};

/// Length of an encoded policy.
pub const POLICY_LEN: usize = 13;

/// License and playback limits, renewal and persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Seconds the keys stay usable after the license is accepted (0 = unlimited). Key status
    /// `expired` afterwards; the EME `expiration` attribute is `accepted_at + this`.
    pub license_duration: u32,
    /// Seconds of playback after the first decrypt (0 = unlimited); playback also ends with
    /// the license duration.
    pub playback_duration: u32,
    /// Seconds after acceptance when a renewal request is due (0 = no renewal): the session
    /// sends a `license-renewal` message then; a renewal response replaces the durations.
    pub renewal_interval: u32,
    /// Whether the license may be stored for a `persistent-license` session.
    pub can_persist: bool,
}

impl Policy {
    /// When the license expires, for a license accepted at `accepted_at`; `None` = never.
    pub fn license_expiry(&self, accepted_at: u64) -> Option<u64> {
        after(accepted_at, self.license_duration)
    }

    /// When playback ends, for a first decrypt at `first_playback`: the earlier of the
    /// playback and the license limits; `None` = never.
    pub fn playback_expiry(&self, accepted_at: u64, first_playback: u64) -> Option<u64> {
        match (
            self.license_expiry(accepted_at),
            after(first_playback, self.playback_duration),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When a renewal request is due; `None` = never.
    pub fn renewal_due(&self, accepted_at: u64) -> Option<u64> {
        after(accepted_at, self.renewal_interval)
    }

    /// Whether keys are usable at `now` (license accepted at `accepted_at`, first decrypt at
    /// `first_playback` if any).
    pub fn usable_at(&self, now: u64, accepted_at: u64, first_playback: Option<u64>) -> bool {
        let end = match first_playback {
            Some(p) => self.playback_expiry(accepted_at, p),
            None => self.license_expiry(accepted_at),
        };
        end.is_none_or(|end| now <= end)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let license_duration = r.u32()?;
        let playback_duration = r.u32()?;
        let renewal_interval = r.u32()?;
        let can_persist = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Error::InvalidField("policy flags")),
        };
        Ok(Policy {
            license_duration,
            playback_duration,
            renewal_interval,
            can_persist,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u32(self.license_duration)?;
        w.u32(self.playback_duration)?;
        w.u32(self.renewal_interval)?;
        Ok(w.u8(u8::from(self.can_persist))?)
    }
}

/// `start + seconds`, `None` for 0 (unlimited) and saturating at `u64::MAX`.
fn after(start: u64, seconds: u32) -> Option<u64> {
    (seconds != 0).then(|| start.saturating_add(u64::from(seconds)))
}
