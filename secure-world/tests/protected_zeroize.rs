//! Proof that the protected key system's secrets do not survive in freed heap memory: a
//! content key (delivered in a license, HPKE-sealed to the device), an entitlement key and a
//! content key delivered in band under it, through every path that handles them — the
//! license unwrapped and loaded (with enough keys that growing vectors would move them),
//! stored in a persistent record, the record rewritten when playback starts and when a
//! renewal arrives, an in-band record unwrapped, a restart, `Load`, decrypt, `Remove` and the
//! release acknowledgement.
//!
//! The scanning allocator of `cdm-testkit` scans every freed block (and the old block of every
//! `realloc`) while armed. Everything the servers do with the keys happens before arming; the
//! file has a single `#[test]` because the allocator scans the frees of every thread.
#![allow(clippy::unwrap_used)]

mod common;
mod protected_env;

use cdm_testkit::alloc_scan::ScanningAllocator;
use cdm_testkit::temp::TempDir;
use protected_env::*;

#[global_allocator]
static SCANNER: ScanningAllocator = ScanningAllocator::new();

/// Needles: keys with no structure, used only by this test.
const CONTENT: [u8; 16] = [
    0x8e, 0x21, 0x5a, 0xf0, 0x37, 0xc4, 0x19, 0x6b, 0xd2, 0x0f, 0x93, 0x7e, 0x44, 0xa8, 0x15, 0xbc,
];
const ENTITLEMENT: [u8; 16] = [
    0x2c, 0x97, 0xe1, 0x4d, 0x68, 0x0a, 0xb3, 0xf5, 0x51, 0x8c, 0x3e, 0xd7, 0x06, 0x79, 0xca, 0x12,
];
const IN_BAND: [u8; 16] = [
    0xf9, 0x34, 0x0d, 0x86, 0xbe, 0x53, 0x2a, 0xc1, 0x7f, 0xe8, 0x45, 0x9b, 0x10, 0x6e, 0xd3, 0xa7,
];
const KID_CONTENT: [u8; 16] = [0x0c; 16];
const KID_ENTITLEMENT: [u8; 16] = [0x0e; 16];
const KID_IN_BAND: [u8; 16] = [0x0b; 16];

#[test]
fn no_freed_block_ever_holds_a_protected_key() {
    let mut pki = Pki::new(0x2e70);
    let dir = TempDir::new("protected-zeroize");
    let policy = persistable()
        .license_duration(3600)
        .playback_duration(600)
        .renewal_interval(10);
    // The content key first, then enough others that a vector of keys grown one by one
    // would be moved (reallocated) while holding it.
    let mut grants = vec![content((KID_CONTENT, CONTENT))];
    for i in 1..=7u8 {
        grants.push(content(([0x40 + i; 16], [i; 16])));
    }
    grants.push(entitlement((KID_ENTITLEMENT, ENTITLEMENT)));
    let kids = content_kids(&grants);
    let record = rotation((KID_ENTITLEMENT, ENTITLEMENT), &[(KID_IN_BAND, IN_BAND)]);

    let mut dev = Dev::with_storage(&pki, dir.path(), new_clock());
    let (s, id, request) = dev.awaiting_license(&pki, PERSIST, &kids);
    let issued = pki.issue(&request, dev.now(), policy, &grants);
    drop(grants);
    let license = issued.license.clone();

    SCANNER.arm(&[&CONTENT, &ENTITLEMENT, &IN_BAND]);
    dev.update(s, &license).unwrap();
    // The first decrypt rewrites the stored record (playback start).
    dev.decrypt_cenc(s, (KID_CONTENT, CONTENT)).unwrap();
    dev.add_in_band(s, &record).unwrap();
    dev.decrypt_cbcs(s, (KID_IN_BAND, IN_BAND)).unwrap();
    // A renewal rewrites the stored record (its extension holds the entitlement key).
    dev.advance(10);
    let renewal = dev.renew(s).unwrap().message;
    let response = pki.renew(&issued, &renewal, dev.now(), policy);
    dev.update(s, &response).unwrap();
    dev.close(s);
    // A restart: load, decrypt, remove, acknowledge.
    let mut dev = dev.restart(&pki, dir.path());
    let (s, loaded) = dev.load(cdm_core::KeySystem::Protected, SW, &id).unwrap();
    assert!(loaded.found);
    dev.decrypt_cenc(s, (KID_CONTENT, CONTENT)).unwrap();
    dev.add_in_band(s, &record).unwrap();
    dev.decrypt_cenc(s, (KID_IN_BAND, IN_BAND)).unwrap();
    let release = dev.remove(s).unwrap().message;
    let ack = pki.release(&issued, &release);
    dev.update(s, &ack).unwrap();
    drop(dev);
    let report = SCANNER.disarm();
    drop((license, record, issued));

    assert!(report.scanned > 0, "the allocator saw the frees");
    // In the order the needles were armed.
    for (i, key) in ["content key", "entitlement key", "in-band content key"]
        .iter()
        .enumerate()
    {
        assert_eq!(report.hits[i], 0, "a freed block contained the {key}");
    }
}
