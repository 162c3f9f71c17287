//! Secure storage: named blobs that outlive the process.
//!
//! The secure world keeps persistent licenses and its device identity here. What it stores is
//! already sealed (AEAD under a key derived from the [device root key](super::DeviceRootKey),
//! the blob's name and a generation in the associated data), so a store need not be
//! confidential or tamper-proof. What it must give is **naming** (a blob comes back under the
//! name it was stored under) and **atomicity** (a reader, even after a crash or power loss,
//! sees a blob's old or new contents, never a mix). Rollback of a whole store is detected with
//! the [monotonic counter](super::MonotonicCounter), or prevented outright where the device has
//! replay-protected storage (eMMC RPMB, which OP-TEE's secure storage can use).

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

/// Longest blob name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Largest blob a store accepts, in bytes (64 KiB): a sealed persistent license or the device
/// identity fits many times over, and a no_std store can size its buffers from it.
pub const MAX_BLOB_LEN: usize = 64 * 1024;

/// Why a storage operation failed. Carries no names, paths or contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The name breaks the rules of [`BlobName`].
    #[error("invalid blob name")]
    InvalidName,
    /// The blob to store is longer than [`MAX_BLOB_LEN`]; nothing was written.
    #[error("blob longer than {MAX_BLOB_LEN} bytes")]
    TooLarge,
    /// No blob has that name.
    #[error("no such blob")]
    NotFound,
    /// What the store holds under that name cannot be a blob (e.g. longer than
    /// [`MAX_BLOB_LEN`]).
    #[error("stored object is malformed")]
    Corrupt,
    /// The caller's buffer could not grow (`try_reserve` failed).
    #[error("out of memory")]
    OutOfMemory,
    /// The backing store has no room left.
    #[error("storage full")]
    Full,
    /// The backing store failed (I/O error, the TEE's storage service refused).
    #[error("storage unavailable")]
    Unavailable,
}

/// The name of a stored blob: 1 to [`MAX_NAME_LEN`] bytes from `[a-z0-9._-]`, not starting
/// with `.`.
///
/// The rules let a store map a name straight to a file name with nothing to escape: no path
/// separator, so no way out of the store's directory; no leading dot, so neither `.` nor `..`
/// nor a hidden file, and a store's own temporary files (which start with a dot) can never
/// collide with a blob; lowercase ASCII only, so case-insensitive file systems and Unicode
/// normalisation cannot make two names one.
///
/// The name is held inline (no allocation), so [`SecureStorage::list`] can hand names out
/// without a heap string per name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobName {
    /// Bytes in use, 1..=[`MAX_NAME_LEN`].
    len: u8,
    /// The name, then zeros (so the derived equality and hash see only the name).
    bytes: [u8; MAX_NAME_LEN],
}

impl BlobName {
    /// Checks `name` against the rules above.
    pub fn new(name: &str) -> Result<Self, StorageError> {
        let raw = name.as_bytes();
        let allowed = |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-');
        if raw.len() > MAX_NAME_LEN || raw.first().is_none_or(|&b| b == b'.') {
            return Err(StorageError::InvalidName);
        }
        if !raw.iter().all(allowed) {
            return Err(StorageError::InvalidName);
        }
        let len = u8::try_from(raw.len()).map_err(|_| StorageError::InvalidName)?;
        let mut bytes = [0u8; MAX_NAME_LEN];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = *src;
        }
        Ok(BlobName { len, bytes })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // `new` stores 1..=MAX_NAME_LEN ASCII bytes: neither fallback can be taken.
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl TryFrom<&str> for BlobName {
    type Error = StorageError;

    fn try_from(name: &str) -> Result<Self, StorageError> {
        BlobName::new(name)
    }
}

impl AsRef<str> for BlobName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Names order as their strings do (what `list` sorting and `BTreeMap` keys expect).
impl Ord for BlobName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for BlobName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlobName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store of named blobs, each at most [`MAX_BLOB_LEN`] bytes.
///
/// Contract for implementors:
/// - **Atomic `put`**: after a crash or power loss at any point, [`get`](Self::get) returns
///   the blob's previous contents (or `NotFound` if there were none) or the new contents in
///   full — never a torn blob. Once `put` returns `Ok`, the new contents survive a crash.
///   If `put` fails, the blob holds its old or its new contents; the caller cannot tell which.
/// - **Durable `delete`**: once it returns `Ok`, the blob stays gone after a crash.
/// - **Fallible allocation**: `get` and `list` grow the caller's vector with `try_reserve`
///   and report [`StorageError::OutOfMemory`] instead of aborting.
/// - **No secrets in errors**: [`StorageError`] carries no names or contents.
///
/// The store is outside the trust boundary as far as confidentiality and integrity go: the
/// secure world seals every blob and checks it on the way back in. On a device back it with
/// the TEE's secure storage, on replay-protected memory (RPMB) where the device has it.
///
/// Mutating methods take `&mut self`: the secure world owns its store and is the only writer.
pub trait SecureStorage {
    /// Reads blob `name` into `out`, replacing what `out` held. On error `out`'s contents are
    /// unspecified (the caller discards them).
    ///
    /// Errors: [`NotFound`](StorageError::NotFound), [`Corrupt`](StorageError::Corrupt) if
    /// what is stored is longer than [`MAX_BLOB_LEN`],
    /// [`OutOfMemory`](StorageError::OutOfMemory), [`Unavailable`](StorageError::Unavailable).
    fn get(&self, name: &BlobName, out: &mut Vec<u8>) -> Result<(), StorageError>;

    /// Stores `blob` under `name`, replacing any blob of that name, atomically (see the trait
    /// docs).
    ///
    /// Errors: [`TooLarge`](StorageError::TooLarge) if `blob` is longer than
    /// [`MAX_BLOB_LEN`] (checked before anything is written),
    /// [`Full`](StorageError::Full), [`Unavailable`](StorageError::Unavailable).
    fn put(&mut self, name: &BlobName, blob: &[u8]) -> Result<(), StorageError>;

    /// Removes blob `name`.
    ///
    /// Errors: [`NotFound`](StorageError::NotFound) if there is none (a caller that wants an
    /// idempotent delete treats it as success), [`Unavailable`](StorageError::Unavailable).
    fn delete(&mut self, name: &BlobName) -> Result<(), StorageError>;

    /// The names of all stored blobs, sorted, replacing what `out` held. On error `out`'s
    /// contents are unspecified.
    ///
    /// Errors: [`OutOfMemory`](StorageError::OutOfMemory),
    /// [`Unavailable`](StorageError::Unavailable).
    fn list(&self, out: &mut Vec<BlobName>) -> Result<(), StorageError>;
}

/// A [`SecureStorage`] over a host directory: one file per blob, named as the blob.
///
/// **An emulation, not secure storage.** Anyone with access to the directory can read, delete,
/// or roll back its files; the secure world's sealing makes such changes detectable (and the
/// rollback of a whole store detectable only with a counter the host cannot rewind, which
/// [`FileCounter`](super::FileCounter) is not). A device backs [`SecureStorage`] with the TEE's
/// secure storage on replay-protected memory (eMMC RPMB) instead.
///
/// How it keeps the contract:
/// - `put` writes `.tmp.<name>.<pid>.<seq>` (mode 0600, `O_EXCL`), `fsync`s it, renames it over
///   `<name>` and `fsync`s the directory: a crash leaves the old file or the new one.
/// - `delete` unlinks `<name>` and `fsync`s the directory.
/// - `get` and `list` see only regular files whose names are valid [`BlobName`]s: temporary
///   files (leading dot), symlinks, directories and other foreign entries are ignored.
///   [`FileStorage::open`] deletes the temporary files an interrupted `put` left.
///
/// One `FileStorage` per directory at a time (the secure world is the store's only writer):
/// `open` would delete the temporary file of a concurrent `put` in another process, failing
/// that `put` (atomically). Keep other files — the counter, the root key — out of the
/// directory, or `list` reports those whose names happen to be valid blob names.
///
/// ```
/// use hal::platform::{BlobName, FileStorage, SecureStorage};
///
/// let dir = std::env::temp_dir().join(format!("hal-doc-storage-{}", std::process::id()));
/// let mut store = FileStorage::open(&dir)?;
/// let name = BlobName::new("license-1")?;
/// store.put(&name, b"sealed bytes")?;
///
/// let mut blob = Vec::new();
/// store.get(&name, &mut blob)?;
/// assert_eq!(blob, b"sealed bytes");
/// let mut names = Vec::new();
/// store.list(&mut names)?;
/// assert_eq!(names, [name]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(all(feature = "std", unix))]
#[derive(Debug)]
pub struct FileStorage {
    dir: std::path::PathBuf,
}

#[cfg(all(feature = "std", unix))]
impl FileStorage {
    /// Opens the store in `dir`, creating the directory (mode 0700) if it is missing, and
    /// deletes the temporary files that an interrupted `put` left there.
    pub fn open(dir: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        super::atomic_file::ensure_dir(&dir)?;
        super::atomic_file::remove_leftovers(&dir, None)?;
        Ok(FileStorage { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn path(&self, name: &BlobName) -> std::path::PathBuf {
        // A valid name has no separator and no leading dot: it stays inside `dir`.
        self.dir.join(name.as_str())
    }
}

/// Maps an I/O error to the trait's error; `NotFound` only where the caller named a blob.
#[cfg(all(feature = "std", unix))]
fn from_io(e: &std::io::Error, blob_named: bool) -> StorageError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound if blob_named => StorageError::NotFound,
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StorageError::Full,
        ErrorKind::OutOfMemory => StorageError::OutOfMemory,
        _ => StorageError::Unavailable,
    }
}

#[cfg(all(feature = "std", unix))]
impl SecureStorage for FileStorage {
    fn get(&self, name: &BlobName, out: &mut Vec<u8>) -> Result<(), StorageError> {
        use std::io::{ErrorKind, Read};

        let io = |e: std::io::Error| from_io(&e, true);
        out.clear();
        let path = self.path(name);
        // Only a regular file is a blob, as in `list`: not a directory, a symlink, or a FIFO
        // (whose `open` would block).
        if !std::fs::symlink_metadata(&path).map_err(io)?.is_file() {
            return Err(StorageError::NotFound);
        }
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(StorageError::NotFound);
        }
        let len = usize::try_from(meta.len()).map_err(|_| StorageError::Corrupt)?;
        if len > MAX_BLOB_LEN {
            return Err(StorageError::Corrupt);
        }
        out.try_reserve_exact(len)
            .map_err(|_| StorageError::OutOfMemory)?;
        // Read in chunks with fallible growth, stopping past MAX_BLOB_LEN should the file have
        // grown since `metadata` (`read_to_end` would grow `out` infallibly and unboundedly).
        let mut chunk = [0u8; 4096];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            let part = chunk.get(..n).ok_or(StorageError::Unavailable)?;
            if out
                .len()
                .checked_add(n)
                .is_none_or(|total| total > MAX_BLOB_LEN)
            {
                return Err(StorageError::Corrupt);
            }
            out.try_reserve(n).map_err(|_| StorageError::OutOfMemory)?;
            out.extend_from_slice(part);
        }
    }

    fn put(&mut self, name: &BlobName, blob: &[u8]) -> Result<(), StorageError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(StorageError::TooLarge);
        }
        super::atomic_file::replace(&self.dir, name.as_str(), blob).map_err(|e| from_io(&e, false))
    }

    fn delete(&mut self, name: &BlobName) -> Result<(), StorageError> {
        super::crash_test::step();
        std::fs::remove_file(self.path(name)).map_err(|e| from_io(&e, true))?;
        super::crash_test::step();
        super::atomic_file::sync_dir(&self.dir).map_err(|e| from_io(&e, false))?;
        super::crash_test::step();
        Ok(())
    }

    fn list(&self, out: &mut Vec<BlobName>) -> Result<(), StorageError> {
        let io = |e: std::io::Error| from_io(&e, false);
        out.clear();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            // `file_type` does not follow symlinks: only regular files are blobs.
            if !entry.file_type().map_err(io)?.is_file() {
                continue;
            }
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| BlobName::new(n).ok()) else {
                continue;
            };
            out.try_reserve(1).map_err(|_| StorageError::OutOfMemory)?;
            out.push(name);
        }
        out.sort_unstable();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn accepts_names_of_the_documented_charset() {
        let longest = "a".repeat(MAX_NAME_LEN);
        for ok in [
            "a",
            "0",
            "lic-0.v1_x",
            "a.",
            "a..b",
            "-",
            "_x",
            longest.as_str(),
        ] {
            let name = BlobName::new(ok).unwrap();
            assert_eq!(name.as_str(), ok);
            assert_eq!(name.to_string(), ok);
        }
    }

    #[test]
    fn refuses_names_outside_the_rules() {
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "../x",
            "a/b",
            "/abs",
            "a\\b",
            ".hidden",
            ".",
            "..",
            ".tmp.lic",
            "Upper",
            "a b",
            "a\0b",
            "caf\u{e9}",
            "\u{0430}",
            too_long.as_str(),
        ] {
            assert_eq!(
                BlobName::new(bad),
                Err(StorageError::InvalidName),
                "{bad:?}"
            );
            assert_eq!(BlobName::try_from(bad), Err(StorageError::InvalidName));
        }
    }

    #[test]
    fn names_compare_and_print_as_their_strings() {
        let (a, b, ab) = (
            BlobName::new("b").unwrap(),
            BlobName::new("ab").unwrap(),
            BlobName::new("ab").unwrap(),
        );
        // Not by length first: "ab" < "b".
        assert!(b < a);
        assert_eq!(b, ab);
        assert_eq!(format!("{b:?}"), "BlobName(\"ab\")");
    }
}
