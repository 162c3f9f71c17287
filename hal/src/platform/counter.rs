//! A monotonic counter: the anti-rollback anchor of secure storage.
//!
//! The secure world records the counter's value inside what it seals and increments it when
//! the sealed state changes; a store rolled back to an older copy then carries a value behind
//! the counter and is refused (the generation numbers of Widevine's usage table work this way).
//! The counter therefore has to live where the normal world cannot rewind it: on a device,
//! replay-protected memory (an RPMB-backed counter) or one-time-programmable fuses.

/// Why the counter could not be read or advanced. Carries no detail beyond the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// The counter is at `u64::MAX` (or the hardware has no increments left); it never wraps.
    #[error("monotonic counter exhausted")]
    Exhausted,
    /// The stored value is malformed.
    #[error("monotonic counter is corrupt")]
    Corrupt,
    /// The backing hardware or store failed.
    #[error("monotonic counter unavailable")]
    Unavailable,
}

/// A counter that only goes up.
///
/// Contract for implementors: the value never decreases, not across a crash, a restart or a
/// restore of the normal world's files; [`increment`](Self::increment) is durable once it
/// returns `Ok`; at `u64::MAX` it fails with [`CounterError::Exhausted`] and the value stays.
/// Increments may be scarce (a fuse-backed counter burns one fuse each): callers increment
/// when the protected state changes, not on every read.
pub trait MonotonicCounter {
    /// The current value; a counter never incremented reads 0.
    fn read(&self) -> Result<u64, CounterError>;

    /// Adds one and answers the new value. If it fails, the counter holds its old or its new
    /// value (the caller reads it to find out).
    fn increment(&mut self) -> Result<u64, CounterError>;
}
