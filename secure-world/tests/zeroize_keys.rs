//! Proof that content keys do not survive in freed heap memory.
//!
//! A test-only global allocator wraps `System` and, on every `dealloc`/`realloc`, scans the
//! block being freed for the raw 16-byte content key. The license carries the key in
//! base64url (not the raw needle), so any hit means some code path left a raw key (or a key
//! schedule, whose first round key is the key) in memory it released.
//!
//! The allocator needs `unsafe` (the `GlobalAlloc` trait is unsafe to implement). Integration
//! tests are separate crates, so allowing it here does not weaken the library's
//! `#![forbid(unsafe_code)]`.
#![allow(unsafe_code, clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::alloc::System;

use cdm_core::abi::{OutputKind, Request};
use cdm_core::{InitDataType, Robustness};
use common::*;

/// The needle: a content key with no structure, used only by this test.
const NEEDLE: [u8; 16] = [
    0xd3, 0x4e, 0x91, 0x0c, 0x7a, 0xe5, 0x28, 0xb6, 0x5f, 0x13, 0xc8, 0x6d, 0xa2, 0x39, 0xf4, 0x87,
];

static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static SCANNED: AtomicUsize = AtomicUsize::new(0);

struct Scanning;

fn scan(ptr: *const u8, size: usize) {
    if !ARMED.load(Ordering::Relaxed) || size < NEEDLE.len() {
        return;
    }
    // SAFETY: `ptr` points to a live allocation of `size` bytes that the caller is about to
    // free (dealloc) or move (realloc); it is valid for reads of `size` bytes until then, and
    // no one writes it concurrently (it belongs to the code freeing it).
    let block = unsafe { core::slice::from_raw_parts(ptr, size) };
    SCANNED.fetch_add(1, Ordering::Relaxed);
    if block.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        HITS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the same arguments, so the allocator
// contract is `System`'s; the extra scan only reads the block before it is released.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        scan(ptr, layout.size());
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The old block may be released by the move: scan it first.
        scan(ptr, layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Scanning = Scanning;

#[test]
fn no_freed_block_ever_holds_the_content_key() {
    let mut h = Harness::new();
    let lic = license(&[(&KID1, NEEDLE)]);
    // Make the content before arming (RustCrypto's own temporaries are not under test).
    let clear = plaintext(300);
    let mut sample = clear.clone();
    encrypt_cenc(&NEEDLE, &[6; 8], &mut sample, &[]);
    let s = h.open(Robustness::SwSecureCrypto);
    h.generate(s, InitDataType::Cenc, &pssh_v1(&[KID1]))
        .unwrap();

    ARMED.store(true, Ordering::SeqCst);
    h.update(s, &lic).unwrap();
    h.decrypt(
        s,
        cenc_req(&KID1, &[6; 8], 300, &[], OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    h.call(s, &Request::CloseSession(cdm_core::abi::CloseSession))
        .unwrap();
    drop(h);
    ARMED.store(false, Ordering::SeqCst);

    assert_eq!(sample, clear, "the key was really used");
    assert!(
        SCANNED.load(Ordering::SeqCst) > 0,
        "the allocator saw the frees"
    );
    assert_eq!(
        HITS.load(Ordering::SeqCst),
        0,
        "a freed block contained the raw content key"
    );
}
