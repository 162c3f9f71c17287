//! Proves that a `RootKey` is wiped when it is dropped, and that `FileRootKey` loads the key
//! without leaving a copy in freed heap memory, under the scanning allocator of `cdm-testkit`.
//!
//! The file has a single `#[test]`: the allocator scans the frees of every thread, so no other
//! test of this binary may allocate while it is armed.
#![cfg(all(feature = "std", unix))]

use cdm_testkit::alloc_scan::ScanningAllocator;
use hal::platform::{DeviceRootKey, FileRootKey, RootKey, ROOT_KEY_LEN};

#[global_allocator]
static SCANNER: ScanningAllocator = ScanningAllocator::new();

/// A recognisable key: no other heap block of the test holds these bytes by chance.
const PATTERN: [u8; ROOT_KEY_LEN] = *b"root-key wipe check: 0123456789!";

#[test]
fn root_keys_are_wiped_on_drop() {
    // Control: a plain boxed array holding the pattern is seen when it is freed, so the scan
    // below would see an unwiped key.
    SCANNER.arm(&[&PATTERN]);
    drop(std::hint::black_box(Box::new(PATTERN)));
    let control = SCANNER.disarm();
    assert!(control.hits[0] >= 1, "control not detected: {control:?}");

    // A boxed RootKey holding the pattern is zeroed before its memory is freed.
    let mut key = Box::new(RootKey::zeroed());
    key.expose_mut().copy_from_slice(&PATTERN);
    SCANNER.arm(&[&PATTERN]);
    drop(std::hint::black_box(key));
    let report = SCANNER.disarm();
    assert!(report.scanned >= 1, "nothing freed: {report:?}");
    assert_eq!(report.hits[0], 0, "RootKey left its bytes: {report:?}");

    // FileRootKey reads the key straight into the caller's buffer: loading the key and
    // dropping that buffer frees no block holding it (paths and file handles are freed).
    let dir = std::env::temp_dir().join(format!("hal-root-key-wiped-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let source = FileRootKey::open(dir.join("root.key")).unwrap();
    let mut stored = RootKey::zeroed();
    source.root_key(&mut stored).unwrap(); // created here, before arming
    SCANNER.arm(&[stored.expose()]);
    let mut loaded = Box::new(RootKey::zeroed());
    source.root_key(&mut loaded).unwrap();
    let same = loaded.expose() == stored.expose();
    drop(loaded);
    let report = SCANNER.disarm();
    assert!(same);
    assert!(report.scanned >= 1, "nothing freed: {report:?}");
    assert_eq!(report.hits[0], 0, "a copy of the key was freed: {report:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
