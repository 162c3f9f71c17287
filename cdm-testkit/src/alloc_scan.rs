//! A global allocator that looks for key material in memory handed back to it.
//!
//! [`ScanningAllocator`] wraps [`System`]. While armed with a list of needles (byte strings
//! such as a raw key, a round key, the key's base64url text), it reads every block released by
//! `dealloc` and the old block of every `realloc` (which may be released by the move) before
//! passing the call on, and counts the blocks it scanned, the blocks holding each needle, and
//! the largest number of non-zero bytes in one block. A test installs it with
//!
//! ```text
//! #[global_allocator]
//! static SCANNER: ScanningAllocator = ScanningAllocator::new();
//! ```
//!
//! and brackets the code under test with [`ScanningAllocator::arm`] and
//! [`ScanningAllocator::disarm`]. Frees of every thread are scanned, so such a test binary
//! should hold a single `#[test]`. The scan allocates nothing; the needles live in the
//! allocator's own fixed storage.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};

/// Most needles one arming can hold.
pub const MAX_NEEDLES: usize = 8;
/// Longest needle, in bytes.
pub const MAX_NEEDLE_LEN: usize = 64;

/// What the allocator saw between [`ScanningAllocator::arm`] and
/// [`ScanningAllocator::disarm`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Blocks scanned (freed, or moved by `realloc`).
    pub scanned: usize,
    /// For each needle, in the order given to `arm`: how many scanned blocks held it.
    pub hits: [usize; MAX_NEEDLES],
    /// The largest number of non-zero bytes in one scanned block.
    pub max_nonzero: usize,
}

impl ScanReport {
    /// Whether any scanned block held any needle.
    pub fn any_hit(&self) -> bool {
        self.hits.iter().any(|&h| h > 0)
    }
}

/// [`System`], plus a scan of released blocks for needles while armed (see the module docs).
pub struct ScanningAllocator {
    armed: AtomicBool,
    /// Needle `i` is `bytes[i * MAX_NEEDLE_LEN..][..lens[i]]`; written only while disarmed.
    bytes: [AtomicU8; MAX_NEEDLES * MAX_NEEDLE_LEN],
    lens: [AtomicUsize; MAX_NEEDLES],
    scanned: AtomicUsize,
    hits: [AtomicUsize; MAX_NEEDLES],
    max_nonzero: AtomicUsize,
}

impl Default for ScanningAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl ScanningAllocator {
    /// A disarmed allocator with no needles (usable in a `static`).
    pub const fn new() -> Self {
        ScanningAllocator {
            armed: AtomicBool::new(false),
            bytes: [const { AtomicU8::new(0) }; MAX_NEEDLES * MAX_NEEDLE_LEN],
            lens: [const { AtomicUsize::new(0) }; MAX_NEEDLES],
            scanned: AtomicUsize::new(0),
            hits: [const { AtomicUsize::new(0) }; MAX_NEEDLES],
            max_nonzero: AtomicUsize::new(0),
        }
    }

    /// Sets the needles, clears the counters and starts scanning.
    ///
    /// # Panics
    /// If already armed, or given more than [`MAX_NEEDLES`] needles, or a needle that is empty
    /// or longer than [`MAX_NEEDLE_LEN`].
    pub fn arm(&self, needles: &[&[u8]]) {
        assert!(!self.armed.load(SeqCst), "ScanningAllocator armed twice");
        assert!(
            needles.len() <= MAX_NEEDLES,
            "at most {MAX_NEEDLES} needles"
        );
        for (i, len) in self.lens.iter().enumerate() {
            let needle = needles.get(i).copied().unwrap_or_default();
            assert!(
                needle.len() <= MAX_NEEDLE_LEN && (i >= needles.len() || !needle.is_empty()),
                "needle {i}: 1 to {MAX_NEEDLE_LEN} bytes"
            );
            let slot = &self.bytes[i * MAX_NEEDLE_LEN..][..needle.len()];
            for (dst, &b) in slot.iter().zip(needle) {
                dst.store(b, SeqCst);
            }
            len.store(needle.len(), SeqCst);
        }
        self.scanned.store(0, SeqCst);
        self.max_nonzero.store(0, SeqCst);
        for h in &self.hits {
            h.store(0, SeqCst);
        }
        self.armed.store(true, SeqCst);
    }

    /// Stops scanning and reports what was seen since [`ScanningAllocator::arm`].
    pub fn disarm(&self) -> ScanReport {
        self.armed.store(false, SeqCst);
        ScanReport {
            scanned: self.scanned.load(SeqCst),
            hits: std::array::from_fn(|i| self.hits[i].load(SeqCst)),
            max_nonzero: self.max_nonzero.load(SeqCst),
        }
    }

    /// Scans `block` if armed. Reads the needles into a stack copy: nothing is allocated.
    fn scan(&self, block: &[u8]) {
        if !self.armed.load(SeqCst) {
            return;
        }
        let mut needles = [[0u8; MAX_NEEDLE_LEN]; MAX_NEEDLES];
        for (i, needle) in needles.iter_mut().enumerate() {
            for (dst, src) in needle.iter_mut().zip(&self.bytes[i * MAX_NEEDLE_LEN..]) {
                *dst = src.load(SeqCst);
            }
        }
        for ((needle, len), hits) in needles.iter().zip(&self.lens).zip(&self.hits) {
            let needle = &needle[..len.load(SeqCst)];
            if !needle.is_empty() && block.windows(needle.len()).any(|w| w == needle) {
                hits.fetch_add(1, SeqCst);
            }
        }
        let nonzero = block.iter().filter(|&&b| b != 0).count();
        self.max_nonzero.fetch_max(nonzero, SeqCst);
        self.scanned.fetch_add(1, SeqCst);
    }

    /// Scans the `layout.size()` bytes at `ptr`.
    ///
    /// # Safety
    /// 1. `ptr` is a live block of this allocator with `layout`, and no one writes it during
    ///    the call (its owner is handing it back).
    unsafe fn scan_raw(&self, ptr: *mut u8, layout: Layout) {
        if ptr.is_null() || !self.armed.load(SeqCst) {
            return;
        }
        // SAFETY: (1): the block is allocated, `layout.size()` bytes long, readable, and not
        // written concurrently. Bytes a destructor left are read as plain memory: `u8` has no
        // invalid values, and the allocator holds no reference into the block afterwards.
        let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
        self.scan(block);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// allocator upholds exactly `System`'s guarantees. The scans before `dealloc` and `realloc`
// only read the block that is still allocated at that point, and allocate nothing.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: (1): the caller hands back `ptr`, allocated here with `layout`.
        unsafe { self.scan_raw(ptr, layout) };
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The old block may be released by the move: scan it first.
        // SAFETY: (1): the caller hands over `ptr`, allocated here with `layout`.
        unsafe { self.scan_raw(ptr, layout) };
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_counts_blocks_and_nonzero_bytes() {
        // Not the global allocator here: blocks are scanned by calling `scan` directly.
        let a = ScanningAllocator::new();
        a.scan(b"ignored while disarmed");
        a.arm(&[b"key!", b"other needle"]);
        a.scan(b"..key!..");
        a.scan(&[0, 0, 7, 0]);
        a.scan(b"key!key!");
        let r = a.disarm();
        a.scan(b"key! after disarm");
        assert_eq!(r.scanned, 3);
        assert_eq!(r.hits[..3], [2, 0, 0]);
        assert_eq!(r.max_nonzero, 8);
        assert!(r.any_hit());
        // Re-arming forgets the old needles and counters.
        a.arm(&[b"zz"]);
        a.scan(b"key!");
        let r = a.disarm();
        assert_eq!((r.scanned, r.any_hit(), r.max_nonzero), (1, false, 4));
    }

    #[test]
    #[should_panic(expected = "needle 0")]
    fn refuses_an_empty_needle() {
        ScanningAllocator::new().arm(&[b""]);
    }
}
