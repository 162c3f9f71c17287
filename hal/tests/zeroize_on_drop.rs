//! Proves that an `Aes128` key schedule is wiped when it is dropped, on every engine.
//!
//! A test-only global allocator inspects the heap block of a boxed `Aes128` at the moment it is
//! freed. After a normal drop the block must hold no copy of the key (round key 0) nor of
//! round key 10 of the FIPS-197 Appendix A.1 key expansion, and almost no non-zero bytes at
//! all (bitsliced schedules have no plain round keys to search for). As a control, the same
//! check runs on a block freed *without* running the destructor, and must find key material:
//! that shows the probe can fail.
//!
//! The file has a single `#[test]`, so no other test of this binary allocates concurrently;
//! the probe also only looks at the one pointer it was armed with.
#![allow(unsafe_code)]
// The crate-level `#![deny(unsafe_code)]` of hal does not reach integration tests (each is its
// own crate), but the discipline is kept: the only unsafe here is the allocator, each block
// carries a SAFETY comment, and it exists only in this test binary.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::ManuallyDrop;
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

/// Pointer of the block to inspect when freed (0: none).
static WATCH: AtomicUsize = AtomicUsize::new(0);
/// Set when the watched block was freed; the two results below are then valid.
static SEEN: AtomicBool = AtomicBool::new(false);
/// Whether the freed block contained the key or round key 10.
static FOUND_ROUND_KEY: AtomicBool = AtomicBool::new(false);
/// Number of non-zero bytes in the freed block.
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
        if !ptr.is_null() && ptr as usize == WATCH.load(Ordering::SeqCst) {
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
            NONZERO.store(nonzero, Ordering::SeqCst);
            FOUND_ROUND_KEY.store(found, Ordering::SeqCst);
            SEEN.store(true, Ordering::SeqCst);
            WATCH.store(0, Ordering::SeqCst);
        }
        // SAFETY: forwarded with the caller's pointer and layout, as `GlobalAlloc` requires.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Probe = Probe;

/// Frees `b` (after `drop_in_place` of its content) while the probe watches its block;
/// returns (round key found, non-zero bytes).
fn freed<T>(b: Box<T>) -> (bool, usize) {
    SEEN.store(false, Ordering::SeqCst);
    WATCH.store(&*b as *const T as usize, Ordering::SeqCst);
    drop(b);
    assert!(SEEN.load(Ordering::SeqCst), "probe missed the free");
    (
        FOUND_ROUND_KEY.load(Ordering::SeqCst),
        NONZERO.load(Ordering::SeqCst),
    )
}

/// Overwrites the next 64 KiB of stack below the caller with zeros.
///
/// Why: moving an `Aes128` copies all of its bytes, including the part of the engine enum the
/// active variant does not use, and that part holds whatever the stack held before. Moved-from
/// values are never dropped, so a schedule of *another* engine left in a reused stack slot
/// (e.g. by the previous loop iteration) would travel into the boxed block, outside anything
/// `Drop` owns or can wipe. Scrubbing first and running each engine in a fresh frame makes the
/// test measure exactly what `Drop` is responsible for.
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

    // Control: freed without running `Drop`, the block still holds the schedule, and the probe
    // sees it (so the assertions above can fail).
    let (found, nonzero) = freed(Box::new(ManuallyDrop::new(engine.key(&KEY))));
    assert!(
        found || nonzero > tolerated,
        "{name}: probe cannot see an unwiped schedule ({nonzero} of {size} bytes non-zero)"
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
