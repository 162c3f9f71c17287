//! Opens arbitrary bytes as a sealed record (fixed key and name, as the seed corpus uses).
#![no_main]

use hal::platform::{BlobName, RootKey};
use libfuzzer_sys::fuzz_target;
use secure_world::sealed::{unseal, RecordKind, SealingKey};

fuzz_target!(|data: &[u8]| {
    let mut root = RootKey::zeroed();
    root.expose_mut().fill(0x42);
    let key = SealingKey::derive(&root, RecordKind::License).unwrap();
    let name = BlobName::new("license-0001").unwrap();
    let _ = unseal(&key, &name, Some(7), data);
});
