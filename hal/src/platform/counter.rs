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

/// A [`MonotonicCounter`] in a host file: the value as 8 little-endian bytes, replaced with the
/// same atomic write as [`FileStorage`](super::FileStorage) (temporary file, `fsync`, rename,
/// directory `fsync`). A missing file reads 0.
///
/// **An emulation: it gives no rollback protection.** Whoever can write the file can rewind
/// it, or delete it back to 0. A device supplies a counter the normal world cannot rewind: one
/// kept in replay-protected memory (eMMC RPMB, through the TEE) or in one-time-programmable
/// fuses.
///
/// One writer at a time: `increment` reads, adds one and writes back without a lock, so two
/// instances incrementing the same file concurrently may both produce the same value. Keep the
/// file outside a [`FileStorage`](super::FileStorage) directory (its name may be a valid blob
/// name).
#[cfg(all(feature = "std", unix))]
#[derive(Debug)]
pub struct FileCounter {
    dir: std::path::PathBuf,
    file_name: alloc::string::String,
}

/// Bytes of the counter file.
#[cfg(all(feature = "std", unix))]
const COUNTER_FILE_LEN: usize = 8;

#[cfg(all(feature = "std", unix))]
impl FileCounter {
    /// Opens the counter kept in the file `path` (a UTF-8 file name), creating its directory
    /// (mode 0700) if missing and deleting the temporary files an interrupted `increment` left.
    /// The file itself is created by the first `increment`.
    pub fn open(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let (dir, file_name) = super::atomic_file::split_path(path.as_ref())?;
        super::atomic_file::ensure_dir(&dir)?;
        super::atomic_file::remove_leftovers(&dir, Some(&file_name))?;
        Ok(FileCounter { dir, file_name })
    }

    /// The counter file.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.join(&self.file_name)
    }
}

#[cfg(all(feature = "std", unix))]
impl MonotonicCounter for FileCounter {
    fn read(&self) -> Result<u64, CounterError> {
        use std::io::{ErrorKind, Read};

        let mut file = match std::fs::File::open(self.path()) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(_) => return Err(CounterError::Unavailable),
        };
        let len = file
            .metadata()
            .map_err(|_| CounterError::Unavailable)?
            .len();
        if usize::try_from(len) != Ok(COUNTER_FILE_LEN) {
            return Err(CounterError::Corrupt);
        }
        let mut bytes = [0u8; COUNTER_FILE_LEN];
        file.read_exact(&mut bytes).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => CounterError::Corrupt,
            _ => CounterError::Unavailable,
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn increment(&mut self) -> Result<u64, CounterError> {
        let next = self.read()?.checked_add(1).ok_or(CounterError::Exhausted)?;
        super::atomic_file::replace(&self.dir, &self.file_name, &next.to_le_bytes())
            .map_err(|_| CounterError::Unavailable)?;
        Ok(next)
    }
}
