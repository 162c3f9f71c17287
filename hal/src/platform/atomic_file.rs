//! Crash-safe file updates for the host emulations ([`FileStorage`](super::FileStorage),
//! [`FileCounter`](super::FileCounter), [`FileRootKey`](super::FileRootKey)).
//!
//! A file is replaced by writing a temporary file in the same directory, `fsync`ing it,
//! renaming it over the target (atomic within one POSIX file system) and `fsync`ing the
//! directory so that the rename itself is durable. A crash leaves the old file or the new one,
//! plus possibly a temporary file, which [`remove_leftovers`] deletes at the next open.
//!
//! Temporary files are named `.tmp.<target>.<pid>.<seq>`: the leading dot keeps them out of the
//! blob name space ([`BlobName`](super::BlobName) refuses a leading dot), the process id and a
//! per-process sequence number keep concurrent writers apart, and `create_new` (`O_EXCL`)
//! guarantees a writer never shares a temporary file with another.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// First characters of every temporary file name.
const TEMP_PREFIX: &str = ".tmp.";

/// Attempts at a fresh temporary name before giving up (a name is only ever taken by a
/// leftover from a crashed process whose process id was reused).
const TEMP_ATTEMPTS: usize = 8;

/// Per-process sequence number of temporary files.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Splits a host path to a file into its directory (`.` for a bare file name) and a UTF-8
/// file name, for the emulations that keep one file.
pub(crate) fn split_path(path: &Path) -> io::Result<(PathBuf, String)> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "not a UTF-8 file path");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(invalid)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, String::from(name)))
}

/// Creates a new temporary file for `target` in `dir`, mode 0600, with `O_EXCL`.
pub(crate) fn create_temp(dir: &Path, target: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for _ in 0..TEMP_ATTEMPTS {
        let seq = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(alloc::format!("{TEMP_PREFIX}{target}.{pid}.{seq}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::ErrorKind::AlreadyExists.into())
}

/// Makes the directory's entries (a rename, a new link, an unlink) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to a new temporary file for `target` in `dir` and `fsync`s it. On error the
/// temporary file is removed (best effort).
pub(crate) fn write_temp(dir: &Path, target: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    super::crash_test::step();
    let (temp, mut file) = create_temp(dir, target)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            // A failed removal leaves a leftover that the next open deletes.
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Replaces `dir/target` with `bytes` atomically and durably (see the module docs).
pub(crate) fn replace(dir: &Path, target: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = write_temp(dir, target, bytes)?;
    super::crash_test::step();
    if let Err(e) = fs::rename(&temp, dir.join(target)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    super::crash_test::step();
    sync_dir(dir)?;
    super::crash_test::step();
    Ok(())
}

/// Whether `file_name` is a temporary file of `target` (any target when `None`).
fn is_temp_of(file_name: &str, target: Option<&str>) -> bool {
    let Some(rest) = file_name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let Some(target) = target else {
        return true;
    };
    // `<target>.<pid>.<seq>`, exactly: target `a` must not claim `a.b`'s temporary files.
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.strip_prefix(target)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(pid, seq)| digits(pid) && digits(seq))
}

/// Deletes the temporary files of `target` (of every target when `None`) that interrupted
/// writes left in `dir`, then `fsync`s the directory if it removed any.
///
/// Only for opening a store: a temporary file of a write in progress in another process would
/// be deleted too (that write then fails; nothing is torn). The emulations expect one writer.
pub(crate) fn remove_leftovers(dir: &Path, target: Option<&str>) -> io::Result<()> {
    let mut removed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // Only regular files: a foreign directory named like a temporary file stays.
        if name.to_str().is_some_and(|n| is_temp_of(n, target)) && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_belong_to_exactly_one_target() {
        assert!(is_temp_of(".tmp.a.12.0", Some("a")));
        assert!(is_temp_of(".tmp.a.b.12.0", Some("a.b")));
        assert!(!is_temp_of(".tmp.a.b.12.0", Some("a")));
        assert!(!is_temp_of(".tmp.a.12", Some("a")));
        assert!(!is_temp_of(".tmp.a.12.x", Some("a")));
        assert!(!is_temp_of("a", Some("a")));
        assert!(is_temp_of(".tmp.anything", None));
        assert!(!is_temp_of(".hidden", None));
    }

    #[test]
    fn split_path_defaults_to_the_current_directory() {
        let (dir, name) = split_path(Path::new("key.bin")).unwrap();
        assert_eq!((dir.as_path(), name.as_str()), (Path::new("."), "key.bin"));
        let (dir, name) = split_path(Path::new("/var/lib/cdm/key.bin")).unwrap();
        assert_eq!(
            (dir.as_path(), name.as_str()),
            (Path::new("/var/lib/cdm"), "key.bin")
        );
        assert!(split_path(Path::new("/")).is_err());
        assert!(split_path(Path::new("a/..")).is_err());
    }
}
