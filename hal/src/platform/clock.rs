//! Trusted time.

/// A clock the secure world trusts for license expiry.
pub trait Clock {
    /// Milliseconds since the Unix epoch, or `None` if the platform has no trustworthy time
    /// (the secure world then refuses keys that carry an expiry).
    fn now_ms(&self) -> Option<i64>;
}

/// The host's system clock (`std::time::SystemTime`). Only as trustworthy as the host.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now_ms(&self) -> Option<i64> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        i64::try_from(since.as_millis()).ok()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        // 2020-01-01T00:00:00Z in ms: any working host clock is past it.
        assert!(SystemClock.now_ms().unwrap() > 1_577_836_800_000);
    }
}
