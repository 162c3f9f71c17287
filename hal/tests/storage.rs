//! The host emulations of the persistent platform services, on real files: `FileStorage`
//! (round trips, size limits, crash leftovers, foreign files), `FileCounter` (persistence, no
//! wrap-around, malformed files) and `FileRootKey` (creation 0600, stability, racing creators,
//! wrong lengths, no bytes in `Debug`). Every test works in a fresh directory of its own (the
//! test kit's `TempDir`).
#![cfg(all(feature = "std", unix))]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cdm_testkit::temp::{file_names, TempDir};
use hal::platform::{
    BlobName, CounterError, DeviceRootKey, FileCounter, FileRootKey, FileStorage, MonotonicCounter,
    RootKey, RootKeyError, SecureStorage, StorageError, MAX_BLOB_LEN, ROOT_KEY_LEN,
};

fn name(s: &str) -> BlobName {
    BlobName::new(s).unwrap()
}

fn get(store: &FileStorage, n: &str) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    store.get(&name(n), &mut out).map(|()| out)
}

fn list(store: &FileStorage) -> Vec<String> {
    let mut out = Vec::new();
    store.list(&mut out).unwrap();
    out.iter().map(|n| n.as_str().to_owned()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn blobs_round_trip_overwrite_and_delete() {
    let dir = TempDir::new("round-trip");
    let mut store = FileStorage::open(dir.path()).unwrap();
    assert_eq!(store.dir(), dir.path());
    assert_eq!(list(&store), Vec::<String>::new());

    store.put(&name("lic-1"), b"first").unwrap();
    store.put(&name("identity"), b"").unwrap();
    store.put(&name("lic-0"), &[0xa5; 1000]).unwrap();
    assert_eq!(get(&store, "lic-1").unwrap(), b"first");
    assert_eq!(get(&store, "identity").unwrap(), b"");
    assert_eq!(get(&store, "lic-0").unwrap(), vec![0xa5; 1000]);
    assert_eq!(list(&store), ["identity", "lic-0", "lic-1"]);

    // Overwrite: the new contents replace the old ones whole, shorter or longer.
    store.put(&name("lic-0"), b"short").unwrap();
    assert_eq!(get(&store, "lic-0").unwrap(), b"short");
    store.put(&name("lic-0"), &[7; 5000]).unwrap();
    assert_eq!(get(&store, "lic-0").unwrap(), vec![7; 5000]);

    store.delete(&name("lic-1")).unwrap();
    assert_eq!(get(&store, "lic-1"), Err(StorageError::NotFound));
    assert_eq!(list(&store), ["identity", "lic-0"]);

    // What a new instance (a restart) sees.
    let store = FileStorage::open(dir.path()).unwrap();
    assert_eq!(get(&store, "lic-0").unwrap(), vec![7; 5000]);
    assert_eq!(list(&store), ["identity", "lic-0"]);
    // No temporary file was left behind; blob files are private to the owner.
    assert_eq!(file_names(dir.path()), ["identity", "lic-0"]);
    assert_eq!(mode(&dir.join("lic-0")), 0o600);
}

#[test]
fn missing_blobs_are_not_found() {
    let dir = TempDir::new("missing");
    let mut store = FileStorage::open(dir.path()).unwrap();
    assert_eq!(get(&store, "nothing"), Err(StorageError::NotFound));
    assert_eq!(store.delete(&name("nothing")), Err(StorageError::NotFound));
}

#[test]
fn get_replaces_the_callers_buffer() {
    let dir = TempDir::new("replace-buffer");
    let mut store = FileStorage::open(dir.path()).unwrap();
    store.put(&name("a"), b"blob").unwrap();
    let mut out = vec![0xff; 100];
    store.get(&name("a"), &mut out).unwrap();
    assert_eq!(out, b"blob");

    let mut names = vec![name("stale")];
    store.list(&mut names).unwrap();
    assert_eq!(names, [name("a")]);
}

#[test]
fn open_creates_a_private_directory() {
    let dir = TempDir::new("create-dir");
    let store_dir = dir.join("nested").join("store");
    let mut store = FileStorage::open(&store_dir).unwrap();
    assert_eq!(mode(&store_dir), 0o700);
    store.put(&name("x"), b"1").unwrap();
    assert_eq!(get(&store, "x").unwrap(), b"1");
}

#[test]
fn oversize_blobs_are_refused_and_nothing_is_written() {
    let dir = TempDir::new("oversize");
    let mut store = FileStorage::open(dir.path()).unwrap();
    let largest = vec![1u8; MAX_BLOB_LEN];
    let oversize = vec![2u8; MAX_BLOB_LEN + 1];

    assert_eq!(
        store.put(&name("big"), &oversize),
        Err(StorageError::TooLarge)
    );
    assert_eq!(file_names(dir.path()), Vec::<String>::new());

    // The limit itself is allowed; a refused overwrite leaves the old blob untouched.
    store.put(&name("big"), &largest).unwrap();
    assert_eq!(
        store.put(&name("big"), &oversize),
        Err(StorageError::TooLarge)
    );
    assert_eq!(get(&store, "big").unwrap(), largest);
    assert_eq!(file_names(dir.path()), ["big"]);
}

#[test]
fn an_oversize_file_under_a_blob_name_is_corrupt() {
    let dir = TempDir::new("oversize-file");
    let store = FileStorage::open(dir.path()).unwrap();
    fs::write(dir.join("planted"), vec![0u8; MAX_BLOB_LEN + 1]).unwrap();
    assert_eq!(get(&store, "planted"), Err(StorageError::Corrupt));
}

/// A crash between writing the temporary file and renaming it leaves the temporary file
/// behind: readers see the old blob, and the next open deletes the leftover.
#[test]
fn crash_leftovers_are_ignored_then_cleaned_up() {
    let dir = TempDir::new("crash");
    let mut store = FileStorage::open(dir.path()).unwrap();
    store.put(&name("lic"), b"old contents").unwrap();

    // What interrupted puts leave: a torn new version of `lic`, a complete one that was never
    // renamed, and the first version of a blob that never existed.
    fs::write(dir.join(".tmp.lic.4242.0"), b"new con").unwrap();
    fs::write(dir.join(".tmp.lic.4242.1"), b"new contents").unwrap();
    fs::write(dir.join(".tmp.fresh.4242.2"), b"fresh").unwrap();

    assert_eq!(get(&store, "lic").unwrap(), b"old contents");
    assert_eq!(get(&store, "fresh"), Err(StorageError::NotFound));
    assert_eq!(list(&store), ["lic"]);

    // The restart.
    let mut store = FileStorage::open(dir.path()).unwrap();
    assert_eq!(file_names(dir.path()), ["lic"]);
    assert_eq!(get(&store, "lic").unwrap(), b"old contents");
    store.put(&name("lic"), b"new contents").unwrap();
    assert_eq!(get(&store, "lic").unwrap(), b"new contents");
}

/// A put that fails after writing its temporary file (here the rename: a directory holds the
/// name) removes the temporary file and reports the store as unavailable.
#[test]
fn a_failed_put_leaves_no_temporary_file() {
    let dir = TempDir::new("failed-put");
    let mut store = FileStorage::open(dir.path()).unwrap();
    fs::create_dir(dir.join("taken")).unwrap();
    fs::write(dir.join("taken").join("inside"), b"x").unwrap();
    assert_eq!(
        store.put(&name("taken"), b"blob"),
        Err(StorageError::Unavailable)
    );
    assert_eq!(file_names(dir.path()), ["taken"]);
}

#[test]
fn list_ignores_foreign_entries() {
    use std::os::unix::ffi::OsStrExt;

    let dir = TempDir::new("foreign");
    let mut store = FileStorage::open(dir.path()).unwrap();
    store.put(&name("lic-2"), b"2").unwrap();
    store.put(&name("lic-1"), b"1").unwrap();

    for foreign in ["README.TXT", ".hidden", "a b", "caf\u{e9}"] {
        fs::write(dir.join(foreign), b"not a blob").unwrap();
    }
    let not_utf8 = std::ffi::OsStr::from_bytes(b"lic-\xff");
    fs::write(dir.path().join(not_utf8), b"not a blob").unwrap();
    fs::create_dir(dir.join("subdir")).unwrap();
    std::os::unix::fs::symlink(dir.join("lic-1"), dir.join("link")).unwrap();

    assert_eq!(list(&store), ["lic-1", "lic-2"]);
    // `get` agrees: a directory or a symlink under a valid name is not a blob.
    assert_eq!(get(&store, "subdir"), Err(StorageError::NotFound));
    assert_eq!(get(&store, "link"), Err(StorageError::NotFound));
    // A foreign directory named like a temporary file survives open's clean-up.
    fs::create_dir(dir.join(".tmp.dir")).unwrap();
    drop(store);
    let store = FileStorage::open(dir.path()).unwrap();
    assert!(dir.join(".tmp.dir").is_dir());
    assert_eq!(list(&store), ["lic-1", "lic-2"]);
}

#[test]
fn the_storage_trait_is_object_safe() {
    let dir = TempDir::new("dyn");
    let mut store = FileStorage::open(dir.path()).unwrap();
    let dyn_store: &mut dyn SecureStorage = &mut store;
    dyn_store.put(&name("x"), b"via dyn").unwrap();
    let mut out = Vec::new();
    dyn_store.get(&name("x"), &mut out).unwrap();
    assert_eq!(out, b"via dyn");
}

// --- FileCounter ---

#[test]
fn counter_starts_at_zero_and_increments_persist() {
    let dir = TempDir::new("counter");
    let path = dir.join("counter");
    let mut counter = FileCounter::open(&path).unwrap();
    assert_eq!(counter.path(), path);
    assert_eq!(counter.read(), Ok(0));
    assert!(!path.exists(), "reading creates nothing");
    assert_eq!(counter.increment(), Ok(1));
    assert_eq!(counter.increment(), Ok(2));
    assert_eq!(counter.read(), Ok(2));

    // A new instance (a restart) continues from the stored value.
    let mut counter = FileCounter::open(&path).unwrap();
    assert_eq!(counter.read(), Ok(2));
    assert_eq!(counter.increment(), Ok(3));
    assert_eq!(fs::read(&path).unwrap(), 3u64.to_le_bytes());
    assert_eq!(mode(&path), 0o600);
    assert_eq!(file_names(dir.path()), ["counter"]);
}

#[test]
fn counter_refuses_to_wrap() {
    let dir = TempDir::new("counter-max");
    let path = dir.join("counter");
    fs::write(&path, (u64::MAX - 1).to_le_bytes()).unwrap();
    let mut counter = FileCounter::open(&path).unwrap();
    assert_eq!(counter.increment(), Ok(u64::MAX));
    assert_eq!(counter.increment(), Err(CounterError::Exhausted));
    assert_eq!(counter.read(), Ok(u64::MAX));
    assert_eq!(fs::read(&path).unwrap(), u64::MAX.to_le_bytes());
}

#[test]
fn counter_refuses_a_malformed_file() {
    let dir = TempDir::new("counter-corrupt");
    let path = dir.join("counter");
    for bad in [&[][..], &[1; 7], &[1; 9]] {
        fs::write(&path, bad).unwrap();
        let mut counter = FileCounter::open(&path).unwrap();
        assert_eq!(counter.read(), Err(CounterError::Corrupt));
        assert_eq!(counter.increment(), Err(CounterError::Corrupt));
        assert_eq!(fs::read(&path).unwrap(), bad, "left as it was");
    }
}

#[test]
fn counter_open_cleans_only_its_own_leftovers() {
    let dir = TempDir::new("counter-leftovers");
    let path = dir.join("counter");
    let mut counter = FileCounter::open(&path).unwrap();
    counter.increment().unwrap();
    // A torn increment of this counter, and another file's temporary file.
    fs::write(dir.join(".tmp.counter.4242.0"), [9u8; 3]).unwrap();
    fs::write(dir.join(".tmp.counter.b.4242.0"), b"other").unwrap();
    assert_eq!(counter.read(), Ok(1));

    let counter = FileCounter::open(&path).unwrap();
    assert_eq!(counter.read(), Ok(1));
    assert_eq!(file_names(dir.path()), [".tmp.counter.b.4242.0", "counter"]);
}

#[test]
fn counter_open_refuses_a_path_without_a_file_name() {
    assert!(FileCounter::open("/").is_err());
}

// --- FileRootKey ---

fn root_key(source: &FileRootKey) -> Result<[u8; ROOT_KEY_LEN], RootKeyError> {
    let mut key = RootKey::zeroed();
    source.root_key(&mut key).map(|()| *key.expose())
}

#[test]
fn root_key_is_created_private_and_stays_the_same() {
    let dir = TempDir::new("root-key");
    let path = dir.join("keys").join("root.key");
    let source = FileRootKey::open(&path).unwrap();
    assert_eq!(source.path(), path);
    assert!(
        !path.exists(),
        "the key is generated on first use, not by open"
    );

    let key = root_key(&source).unwrap();
    assert_ne!(key, [0; ROOT_KEY_LEN]);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("keys")), 0o700);
    assert_eq!(fs::read(&path).unwrap(), key);
    assert_eq!(root_key(&source).unwrap(), key);

    // A new instance (a restart) reads the same key; nothing else was left on disk.
    let source = FileRootKey::open(&path).unwrap();
    assert_eq!(root_key(&source).unwrap(), key);
    let entries: Vec<_> = fs::read_dir(dir.join("keys")).unwrap().collect();
    assert_eq!(entries.len(), 1);

    // Another file is another device.
    let other = FileRootKey::open(dir.join("other.key")).unwrap();
    assert_ne!(root_key(&other).unwrap(), key);
}

#[test]
fn root_key_of_the_wrong_length_is_refused_and_kept() {
    let dir = TempDir::new("root-key-length");
    let path = dir.join("root.key");
    for len in [0, 1, ROOT_KEY_LEN - 1, ROOT_KEY_LEN + 1, 2 * ROOT_KEY_LEN] {
        fs::write(&path, vec![0x42; len]).unwrap();
        let source = FileRootKey::open(&path).unwrap();
        let mut key = RootKey::zeroed();
        key.expose_mut().fill(0x11);
        assert_eq!(
            source.root_key(&mut key),
            Err(RootKeyError::WrongLength),
            "{len} bytes"
        );
        assert_eq!(key.expose(), &[0; ROOT_KEY_LEN], "wiped on error");
        assert_eq!(fs::read(&path).unwrap(), vec![0x42; len], "not replaced");
    }
}

#[test]
fn root_key_in_a_directory_is_unavailable() {
    let dir = TempDir::new("root-key-dir");
    fs::create_dir(dir.join("root.key")).unwrap();
    let source = FileRootKey::open(dir.join("root.key")).unwrap();
    assert_eq!(root_key(&source), Err(RootKeyError::Unavailable));
}

/// Creators racing on a missing key file (threads here; processes behave the same, the
/// exclusion is in the file system) all end up with one key.
#[test]
fn racing_creators_agree_on_one_key() {
    const CREATORS: usize = 8;
    let dir = TempDir::new("root-key-race");
    let path = dir.join("root.key");
    let start = std::sync::Barrier::new(CREATORS);
    let keys: Vec<[u8; ROOT_KEY_LEN]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CREATORS)
            .map(|_| {
                let source = FileRootKey::open(&path).unwrap();
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    root_key(&source).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = fs::read(&path).unwrap();
    assert!(keys.iter().all(|k| k[..] == stored[..]));
    assert_eq!(file_names(dir.path()), ["root.key"]);
}

#[test]
fn root_key_open_cleans_up_an_interrupted_creation() {
    let dir = TempDir::new("root-key-leftover");
    fs::write(dir.join(".tmp.root.key.4242.0"), [7u8; 10]).unwrap();
    let source = FileRootKey::open(dir.join("root.key")).unwrap();
    assert_eq!(file_names(dir.path()), Vec::<String>::new());
    root_key(&source).unwrap();
    assert_eq!(file_names(dir.path()), ["root.key"]);
}

#[test]
fn debug_never_prints_the_root_key() {
    let dir = TempDir::new("root-key-debug");
    let source = FileRootKey::open(dir.join("root.key")).unwrap();
    let mut key = RootKey::zeroed();
    source.root_key(&mut key).unwrap();
    let hex_key = hex::encode(key.expose());
    let shown = format!("{key:?} {key:#?} {source:?}");
    assert!(shown.starts_with("RootKey { .. } RootKey { .. } FileRootKey"));
    assert!(!shown.contains(&hex_key));
    assert!(!shown.contains(&format!("{:?}", key.expose())));
}

#[test]
fn the_traits_are_object_safe() {
    let dir = TempDir::new("dyn-key-counter");
    let source = FileRootKey::open(dir.join("root.key")).unwrap();
    let dyn_source: &dyn DeviceRootKey = &source;
    let mut key = RootKey::zeroed();
    dyn_source.root_key(&mut key).unwrap();
    let mut counter = FileCounter::open(dir.join("counter")).unwrap();
    let dyn_counter: &mut dyn MonotonicCounter = &mut counter;
    assert_eq!(dyn_counter.increment(), Ok(1));
}
