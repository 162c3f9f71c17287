//! The counters a test reads to know that OUR CDM decrypted the samples Chromium played:
//! written to the file named by `TEE_CDM_STATS` (if set) after every change, as
//! `key value` lines, replaced atomically (written beside it, then renamed).

use std::path::PathBuf;

/// Environment variable naming the counters file.
pub const STATS_ENV: &str = "TEE_CDM_STATS";

/// The counters of one CDM instance.
#[derive(Debug, Default)]
pub struct Stats {
    path: Option<PathBuf>,
    transport: &'static str,
    decrypted: u64,
    failed: u64,
}

impl Stats {
    /// Counters written to `$TEE_CDM_STATS`, or kept in memory only when it is unset.
    pub fn from_env() -> Self {
        Stats {
            path: std::env::var_os(STATS_ENV).map(PathBuf::from),
            ..Stats::default()
        }
    }

    /// Counters written to `path` (tests).
    pub fn to_file(path: PathBuf) -> Self {
        Stats {
            path: Some(path),
            ..Stats::default()
        }
    }

    /// Samples decrypted (encrypted samples only; clear ones passed through are not counted).
    pub fn decrypted(&self) -> u64 {
        self.decrypted
    }

    /// Samples that failed to decrypt (not counting "no key yet").
    pub fn failed(&self) -> u64 {
        self.failed
    }

    pub(crate) fn set_transport(&mut self, transport: &'static str) {
        self.transport = transport;
        self.write();
    }

    pub(crate) fn count_decrypted(&mut self) {
        self.decrypted = self.decrypted.saturating_add(1);
        self.write();
    }

    pub(crate) fn count_failed(&mut self) {
        self.failed = self.failed.saturating_add(1);
        self.write();
    }

    fn write(&self) {
        let Some(path) = &self.path else { return };
        let text = format!(
            "transport {}\ninterface_versions_asked {}\ndecrypted_samples {}\nfailed_samples {}\n",
            self.transport,
            crate::versions_asked(),
            self.decrypted,
            self.failed
        );
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        // Best effort: counters must never make a decrypt fail.
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}
