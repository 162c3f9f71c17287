//! In-memory counters, served at `GET /metrics` in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! | metric | type | counts |
//! |---|---|---|
//! | `license_requests_total{type}` | counter | well-formed license requests (EME §9.1.3) by requested session type, whatever the answer |
//! | `license_releases_total` | counter | acknowledged records of license destruction (EME §9.1.5) |
//! | `license_errors_total{reason}` | counter | error responses by [`ErrorCode`], all routes |
//! | `license_requests_peak_per_second` | gauge | most requests to the license endpoint in one wall-clock second since start, any outcome |
//! | `protected_provisions_total` | counter | device certificates issued (`POST /protected/provision`) |
//! | `protected_licenses_total{type}` | counter | protected licenses issued, by session type |
//! | `protected_renewals_total` | counter | protected renewal responses issued |
//! | `protected_releases_total` | counter | protected release acknowledgements sent (a repeated release counts again) |
//!
//! The `license_*` series are Clear Key's (`/clearkey/`), except `license_errors_total`, which
//! counts the error responses of every route. The `protected_*` series count successes only;
//! their failures are in `license_errors_total`.
//!
//! The per-second counts are kept for the last [`RING_SECONDS`] seconds in a ring behind a
//! mutex (one short critical section per license request); the peak is kept since start.
//! Counters are per process: restarting the server resets them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use cdm_core::SessionType;

use crate::error::ErrorCode;

/// How many seconds of per-second request counts are kept.
pub const RING_SECONDS: usize = 3600;

/// The server's counters. Shared by all handlers (`Arc<Metrics>`); every method is cheap and
/// never blocks for long.
#[derive(Debug)]
pub struct Metrics {
    requests_temporary: AtomicU64,
    requests_persistent: AtomicU64,
    releases: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    seconds: Mutex<SecondRing>,
    protected_provisions: AtomicU64,
    protected_licenses_temporary: AtomicU64,
    protected_licenses_persistent: AtomicU64,
    protected_renewals: AtomicU64,
    protected_releases: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `license_requests_total{type="temporary"}`.
    pub requests_temporary: u64,
    /// `license_requests_total{type="persistent-license"}`.
    pub requests_persistent: u64,
    /// `license_releases_total`.
    pub releases: u64,
    /// `license_errors_total{reason}`, in the order of [`ErrorCode::ALL`].
    pub errors: Vec<(ErrorCode, u64)>,
    /// `license_requests_peak_per_second`.
    pub peak_per_second: u64,
    /// `protected_provisions_total`.
    pub protected_provisions: u64,
    /// `protected_licenses_total{type="temporary"}`.
    pub protected_licenses_temporary: u64,
    /// `protected_licenses_total{type="persistent-license"}`.
    pub protected_licenses_persistent: u64,
    /// `protected_renewals_total`.
    pub protected_renewals: u64,
    /// `protected_releases_total`.
    pub protected_releases: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Metrics {
            requests_temporary: AtomicU64::new(0),
            requests_persistent: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            seconds: Mutex::new(SecondRing::new()),
            protected_provisions: AtomicU64::new(0),
            protected_licenses_temporary: AtomicU64::new(0),
            protected_licenses_persistent: AtomicU64::new(0),
            protected_renewals: AtomicU64::new(0),
            protected_releases: AtomicU64::new(0),
        }
    }

    /// Counts a request that reached the license endpoint, in the current wall-clock second.
    pub fn record_license_arrival(&self) {
        self.record_license_arrival_at(unix_second());
    }

    /// Counts a request to the license endpoint in the given second (seconds since the Unix
    /// epoch). For simulations and tests that drive time themselves.
    pub fn record_license_arrival_at(&self, unix_second: u64) {
        self.seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(unix_second);
    }

    /// Counts a well-formed license request of `session_type`.
    pub fn record_request(&self, session_type: SessionType) {
        let counter = match session_type {
            SessionType::Temporary => &self.requests_temporary,
            SessionType::PersistentLicense => &self.requests_persistent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an acknowledged license release.
    pub fn record_release(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a device certificate issued by `POST /protected/provision`.
    pub fn record_protected_provision(&self) {
        self.protected_provisions.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a protected license issued for a session of `session_type`.
    pub fn record_protected_license(&self, session_type: SessionType) {
        let counter = match session_type {
            SessionType::Temporary => &self.protected_licenses_temporary,
            SessionType::PersistentLicense => &self.protected_licenses_persistent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a protected renewal response issued.
    pub fn record_protected_renewal(&self) {
        self.protected_renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a protected release acknowledgement sent.
    pub fn record_protected_release(&self) {
        self.protected_releases.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error response of class `code`.
    pub fn record_error(&self, code: ErrorCode) {
        if let Some(counter) = self.error_counter(code) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error_counter(&self, code: ErrorCode) -> Option<&AtomicU64> {
        let index = ErrorCode::ALL.iter().position(|c| *c == code)?;
        self.errors.get(index)
    }

    /// Requests to the license endpoint counted in `unix_second`, if that second is among the
    /// last [`RING_SECONDS`] recorded ones.
    pub fn requests_in_second(&self, unix_second: u64) -> u64 {
        self.seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count(unix_second)
    }

    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests_temporary: self.requests_temporary.load(Ordering::Relaxed),
            requests_persistent: self.requests_persistent.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
            errors: ErrorCode::ALL
                .iter()
                .zip(&self.errors)
                .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
                .collect(),
            peak_per_second: self
                .seconds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .peak,
            protected_provisions: self.protected_provisions.load(Ordering::Relaxed),
            protected_licenses_temporary: self.protected_licenses_temporary.load(Ordering::Relaxed),
            protected_licenses_persistent: self
                .protected_licenses_persistent
                .load(Ordering::Relaxed),
            protected_renewals: self.protected_renewals.load(Ordering::Relaxed),
            protected_releases: self.protected_releases.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus text exposition of the current values. Every label value is listed,
    /// zeros included, so that a series exists before its first event.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut out = String::new();
        // Writing to a `String` cannot fail.
        let _ = write!(
            out,
            "# HELP license_requests_total Well-formed Clear Key license requests, by requested session type.\n\
             # TYPE license_requests_total counter\n\
             license_requests_total{{type=\"temporary\"}} {}\n\
             license_requests_total{{type=\"persistent-license\"}} {}\n\
             # HELP license_releases_total Acknowledged records of license destruction.\n\
             # TYPE license_releases_total counter\n\
             license_releases_total {}\n\
             # HELP license_errors_total Error responses, by error code.\n\
             # TYPE license_errors_total counter\n",
            s.requests_temporary, s.requests_persistent, s.releases
        );
        for (code, n) in &s.errors {
            let _ = writeln!(
                out,
                "license_errors_total{{reason=\"{}\"}} {n}",
                code.as_str()
            );
        }
        let _ = write!(
            out,
            "# HELP license_requests_peak_per_second Most requests to the license endpoint in one wall-clock second since start.\n\
             # TYPE license_requests_peak_per_second gauge\n\
             license_requests_peak_per_second {}\n",
            s.peak_per_second
        );
        let _ = write!(
            out,
            "# HELP protected_provisions_total Device certificates issued (org.teecdm.protected).\n\
             # TYPE protected_provisions_total counter\n\
             protected_provisions_total {}\n\
             # HELP protected_licenses_total Protected licenses issued, by session type.\n\
             # TYPE protected_licenses_total counter\n\
             protected_licenses_total{{type=\"temporary\"}} {}\n\
             protected_licenses_total{{type=\"persistent-license\"}} {}\n\
             # HELP protected_renewals_total Protected renewal responses issued.\n\
             # TYPE protected_renewals_total counter\n\
             protected_renewals_total {}\n\
             # HELP protected_releases_total Protected release acknowledgements sent.\n\
             # TYPE protected_releases_total counter\n\
             protected_releases_total {}\n",
            s.protected_provisions,
            s.protected_licenses_temporary,
            s.protected_licenses_persistent,
            s.protected_renewals,
            s.protected_releases
        );
        out
    }
}

/// Seconds since the Unix epoch; 0 if the clock is before it.
fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Request counts of the last [`RING_SECONDS`] seconds: slot `second % RING_SECONDS` holds
/// `(second, count)`; a slot holding an older second is reset when its second comes round.
#[derive(Debug)]
struct SecondRing {
    slots: Box<[(u64, u64)]>,
    peak: u64,
}

impl SecondRing {
    fn new() -> Self {
        SecondRing {
            // Second 0 with count 0 is indistinguishable from "nothing recorded".
            slots: vec![(0, 0); RING_SECONDS].into_boxed_slice(),
            peak: 0,
        }
    }

    fn slot(&mut self, second: u64) -> Option<&mut (u64, u64)> {
        let len = u64::try_from(self.slots.len()).ok()?;
        let index = usize::try_from(second.checked_rem(len)?).ok()?;
        self.slots.get_mut(index)
    }

    fn record(&mut self, second: u64) {
        let Some(slot) = self.slot(second) else {
            return;
        };
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        let count = slot.1;
        self.peak = self.peak.max(count);
    }

    fn count(&mut self, second: u64) -> u64 {
        match self.slot(second) {
            Some(&mut (s, n)) if s == second => n,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_the_busiest_second_and_survives_the_ring() {
        let m = Metrics::new();
        let t0 = 1_700_000_000;
        for _ in 0..5 {
            m.record_license_arrival_at(t0);
        }
        for _ in 0..3 {
            m.record_license_arrival_at(t0 + 1);
        }
        assert_eq!(m.requests_in_second(t0), 5);
        assert_eq!(m.requests_in_second(t0 + 1), 3);
        assert_eq!(m.requests_in_second(t0 + 2), 0);
        assert_eq!(m.snapshot().peak_per_second, 5);

        // The same slot one ring later: the old count is gone, the peak stays.
        let later = t0 + RING_SECONDS as u64;
        m.record_license_arrival_at(later);
        assert_eq!(m.requests_in_second(later), 1);
        assert_eq!(m.requests_in_second(t0), 0);
        assert_eq!(m.snapshot().peak_per_second, 5);
    }

    #[test]
    fn render_lists_every_series() {
        let m = Metrics::new();
        m.record_request(SessionType::PersistentLicense);
        m.record_error(ErrorCode::UnknownKeyIds);
        m.record_error(ErrorCode::UnknownKeyIds);
        let text = m.render();
        assert!(text.contains("license_requests_total{type=\"temporary\"} 0\n"));
        assert!(text.contains("license_requests_total{type=\"persistent-license\"} 1\n"));
        assert!(text.contains("license_releases_total 0\n"));
        assert!(text.contains("license_errors_total{reason=\"unknown_key_ids\"} 2\n"));
        for code in ErrorCode::ALL {
            assert!(text.contains(&format!("reason=\"{}\"", code.as_str())));
        }
        assert!(text.contains("license_requests_peak_per_second 0\n"));
        assert!(text.ends_with("protected_releases_total 0\n"));
    }
}
