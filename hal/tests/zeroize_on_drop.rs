//! Proves that an `Aes128` key schedule is wiped when it is dropped, on every engine.
//!
//! A test-only global allocator inspects every heap block freed while an `Aes128` (boxed, so
//! its own block is freed too) is dropped: the schedule lives in a heap block of its own. No
//! freed block may hold a copy of the key (round key 0) nor of round key 10 of the FIPS-197
//! Appendix A.1 key expansion, and each may keep only a few non-zero bytes (bitsliced
//! schedules have no plain round keys to search for). As a control, a block holding those
//! round keys is freed under the same probe, which must find them: that shows the probe can
//! fail.
//!
//! The file has a single `#[test]`, so no other test of this binary allocates concurrently
//! while the probe is armed.
#![allow(unsafe_code)]
// The crate-level `#![deny(unsafe_code)]` of hal does not reach integration tests (each is its
// own crate), but the discipline is kept: the only unsafe here is the allocator, each block
// carries a SAFETY comment, and it exists only in this test binary.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::alloc::System;

use hal::aes::{Aes128, Engine};

/// FIPS-197 Appendix A.1 cipher key.
const KEY: [u8; 16] = [
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c,
];
/// FIPS-197 Appendix A.1, round key 10 (w[40..44]).
const ROUND_KEY_10: [u8; 16] = [
    0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63, 0x0c, 0xa6,
];

/// While set, every freed block is inspected.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Blocks inspected since the probe was armed.
static SEEN: AtomicUsize = AtomicUsize::new(0);
/// Whether any inspected block contained the key or round key 10.
static FOUND_ROUND_KEY: AtomicBool = AtomicBool::new(false);
/// The largest number of non-zero bytes in one inspected block.
static NONZERO: AtomicUsize = AtomicUsize::new(0);

struct Probe;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `Probe`
// upholds exactly the guarantees `System` does. `dealloc` additionally reads the block it is
// about to free: the block is still allocated and `layout.size()` bytes long at that point,
// and it allocates nothing (only atomics are written).
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !ptr.is_null() && ARMED.load(Ordering::SeqCst) {
            let mut nonzero = 0;
            let mut found = false;
            let mut window = [0u8; 16];
            for i in 0..layout.size() {
                // SAFETY: `i < layout.size()`, inside the block `ptr` still owns. Volatile, so
                // the read is not optimised away; bytes left by the destructor are read as
                // the raw memory the allocator is handed back.
                let b = unsafe { core::ptr::read_volatile(ptr.add(i)) };
                nonzero += usize::from(b != 0);
                window.rotate_left(1);
                window[15] = b;
                if i >= 15 && (window == KEY || window == ROUND_KEY_10) {
                    found = true;
                }
            }
            NONZERO.fetch_max(nonzero, Ordering::SeqCst);
            if found {
                FOUND_ROUND_KEY.store(true, Ordering::SeqCst);
            }
            SEEN.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: forwarded with the caller's pointer and layout, as `GlobalAlloc` requires.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Probe = Probe;

/// Drops `b` while the probe inspects every block freed; returns (round key found in any
/// block, largest count of non-zero bytes in one block).
fn freed<T>(b: Box<T>) -> (bool, usize) {
    SEEN.store(0, Ordering::SeqCst);
    FOUND_ROUND_KEY.store(false, Ordering::SeqCst);
    NONZERO.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    drop(b);
    ARMED.store(false, Ordering::SeqCst);
    assert!(SEEN.load(Ordering::SeqCst) >= 1, "probe missed the free");
    (
        FOUND_ROUND_KEY.load(Ordering::SeqCst),
        NONZERO.load(Ordering::SeqCst),
    )
}

/// Overwrites the next 64 KiB of stack below the caller with zeros.
///
/// Why: stack temporaries of earlier iterations (the portable engine's schedule is built on
/// the stack by RustCrypto before it moves to the heap) must not be mistaken for what `Drop`
/// left behind. Scrubbing first and running each engine in a fresh frame makes the test
/// measure exactly what `Drop` is responsible for.
#[inline(never)]
fn scrub_stack() {
    let mut buf = [0u8; 64 * 1024];
    std::hint::black_box(&mut buf);
}

/// The check for one engine; must run in a frame laid over freshly scrubbed stack.
#[inline(never)]
fn check(engine: Engine) {
    let size = core::mem::size_of::<Aes128>();
    // Bytes that may legitimately stay non-zero: the engine tag, enum discriminants and the
    // CPU-feature token of RustCrypto's autodetecting `Aes128`. A key schedule is at least 11
    // round keys (176 bytes), so this bound leaves no room for one.
    let tolerated = 16;
    let name = engine.name();
    let key = engine.key(&KEY);
    // Sanity: the schedule works (FIPS-197 A.1 key, SP 800-38A F.1.1 first block).
    let mut block = [
        0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17,
        0x2a,
    ];
    key.encrypt_block(&mut block);
    assert_eq!(
        hex::encode(block),
        "3ad77bb40d7a3660a89ecaf32466ef97",
        "{name}"
    );

    // The real check: a normal drop wipes the schedule.
    let (found, nonzero) = freed(Box::new(key));
    assert!(!found, "{name}: round key left in freed memory");
    assert!(
        nonzero <= tolerated,
        "{name}: {nonzero} of {size} bytes non-zero after drop"
    );

    // Control: a block that still holds round keys when freed is seen by the probe (so the
    // assertions above can fail).
    let mut unwiped = [0u8; 64];
    unwiped[8..24].copy_from_slice(&KEY);
    unwiped[40..56].copy_from_slice(&ROUND_KEY_10);
    let (found, nonzero) = freed(Box::new(unwiped));
    assert!(
        found && nonzero > tolerated,
        "{name}: probe cannot see unwiped round keys ({nonzero} bytes non-zero)"
    );
}

#[test]
fn key_schedules_are_wiped_on_drop() {
    let mut checked = 0;
    for engine in Engine::available() {
        scrub_stack();
        check(engine);
        checked += 1;
    }
    assert!(checked >= 1);
}
