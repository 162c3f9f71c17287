//! The engine conformance suite: what every AES engine of `hal` must do, written once against
//! [`hal::aes::Engine`] and run for every engine the CPU offers.

use std::hint::black_box;

use hal::aes::Engine;

use crate::alloc_scan::ScanningAllocator;

/// FIPS-197 Appendix A.1 cipher key (also the key of NIST SP 800-38A's AES-128 examples).
const A1_KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];
/// FIPS-197 Appendix A.1, round key 10 (w[40..44]) of [`A1_KEY`].
const A1_ROUND_KEY_10: [u8; 16] = [
    0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63, 0x0c, 0xa6,
];

/// The zeroize check hook: proves that dropping an [`hal::aes::Aes128`] of `engine` wipes
/// its key schedule.
///
/// `scanner` must be the test binary's `#[global_allocator]`, and nothing else may run in the
/// binary meanwhile (one `#[test]`): it scans the frees of every thread. A boxed schedule is
/// dropped under the scan; no freed block may hold the FIPS-197 A.1 key or its round key 10, and
/// each may keep at most 16 non-zero bytes (the engine tag, enum discriminants and the
/// CPU-feature token of RustCrypto's autodetecting `Aes128`; a schedule is at least 11 round
/// keys, 176 bytes, and bitsliced schedules have no plain round keys to search for). As a
/// control, a block still holding those round keys is freed under the same scan, which must
/// find them: that shows the check can fail.
pub fn key_schedule_wiped(engine: Engine, scanner: &ScanningAllocator) {
    scrub_stack();
    key_schedule_wiped_in_fresh_frame(engine, scanner);
}

/// Overwrites the next 64 KiB of stack below the caller with zeros.
///
/// Why: stack temporaries of earlier calls (the portable engine's schedule is built on the
/// stack by RustCrypto before it moves to the heap) must not be mistaken for what `Drop` left
/// behind. Scrubbing first and checking in a fresh frame makes the check measure exactly what
/// `Drop` is responsible for.
#[inline(never)]
fn scrub_stack() {
    let mut buf = [0u8; 64 * 1024];
    black_box(&mut buf);
}

#[inline(never)]
fn key_schedule_wiped_in_fresh_frame(engine: Engine, scanner: &ScanningAllocator) {
    const TOLERATED: usize = 16;
    let name = engine.name();
    let key = engine.key(&A1_KEY);
    // Sanity: the schedule works (NIST SP 800-38A F.1.1, first block).
    let mut block = *b"\x6b\xc1\xbe\xe2\x2e\x40\x9f\x96\xe9\x3d\x7e\x11\x73\x93\x17\x2a";
    key.encrypt_block(&mut block);
    assert_eq!(
        hex::encode(block),
        "3ad77bb40d7a3660a89ecaf32466ef97",
        "{name}: zeroize check: the schedule does not encrypt"
    );
    let freed = |boxed: Box<dyn std::any::Any>| {
        scanner.arm(&[&A1_KEY, &A1_ROUND_KEY_10]);
        drop(boxed);
        let report = scanner.disarm();
        assert!(report.scanned >= 1, "{name}: zeroize check: the scan missed the free (is the scanner the global allocator?)");
        report
    };

    // The real check: a normal drop wipes the schedule.
    let size = std::mem::size_of_val(&key);
    let r = freed(Box::new(key));
    assert!(
        !r.any_hit(),
        "{name}: zeroize check: round key left in freed memory"
    );
    assert!(
        r.max_nonzero <= TOLERATED,
        "{name}: zeroize check: {} bytes non-zero in a freed block after drop (the handle has {size})",
        r.max_nonzero
    );

    // Control: a block that still holds round keys when freed is seen by the scan.
    let mut unwiped = [0u8; 64];
    unwiped[8..24].copy_from_slice(&A1_KEY);
    unwiped[40..56].copy_from_slice(&A1_ROUND_KEY_10);
    let r = freed(Box::new(unwiped));
    assert!(
        r.hits[0] >= 1 && r.hits[1] >= 1 && r.max_nonzero > TOLERATED,
        "{name}: zeroize check: the scan cannot see unwiped round keys ({r:?})"
    );
}
