//! The heap, and the instruments the key-wiping check reads from it.
//!
//! The allocator is `embedded-alloc`'s linked-list first-fit heap over the `.heap` region of
//! `link.x`. It takes its lock through `critical-section`, implemented here for one core by
//! masking every exception (`DAIFSet`) and restoring `DAIF` afterwards.
//!
//! [`ScanningHeap`] wraps it with two instruments (hand-written: they exist only to observe
//! this image's secure world, no crate offers them):
//!
//! - **Scan on free**: while [`arm`]ed, every block is searched for the needles before it goes
//!   back to the allocator (`realloc` frees through `dealloc` too, so the old block of every
//!   move is searched). A hit means some code released memory that still held a secret; the
//!   host tests do the same with `cdm-testkit`'s scanning allocator.
//! - **Arena scan** ([`arena_hits`]): the whole heap region, live and free blocks alike.
//!
//! It also counts bytes in use and their peak, for the summary.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::RefCell;

use critical_section::Mutex;
use embedded_alloc::LlffHeap;

/// Needles the scanner looks for (at most this many).
pub(crate) const MAX_NEEDLES: usize = 4;

#[global_allocator]
static HEAP: ScanningHeap = ScanningHeap {
    heap: LlffHeap::empty(),
    state: Mutex::new(RefCell::new(State::new())),
};

/// Bookkeeping shared by every allocation (behind the critical section).
struct State {
    in_use: usize,
    peak: usize,
    armed: bool,
    needles: [&'static [u8]; MAX_NEEDLES],
    report: ScanReport,
}

impl State {
    const fn new() -> Self {
        State {
            in_use: 0,
            peak: 0,
            armed: false,
            needles: [&[]; MAX_NEEDLES],
            report: ScanReport {
                blocks: 0,
                bytes: 0,
                hits: [0; MAX_NEEDLES],
            },
        }
    }
}

/// What the scan on free saw between [`arm`] and [`disarm`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ScanReport {
    /// Blocks searched.
    pub(crate) blocks: usize,
    /// Bytes searched.
    pub(crate) bytes: usize,
    /// Freed blocks that contained each needle.
    pub(crate) hits: [usize; MAX_NEEDLES],
}

/// The global allocator: `embedded-alloc` plus the scanner and the byte counts.
struct ScanningHeap {
    heap: LlffHeap,
    state: Mutex<RefCell<State>>,
}

// SAFETY: every method forwards to `LlffHeap`'s `GlobalAlloc` implementation with the caller's
// own arguments, so its guarantees are the inner allocator's. The bookkeeping around the calls
// never touches the returned memory, and `scan_block` only reads a block that is still
// allocated (before it is handed back).
unsafe impl GlobalAlloc for ScanningHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `GlobalAlloc::alloc` is passed on unchanged.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            critical_section::with(|cs| {
                let mut s = self.state.borrow_ref_mut(cs);
                s.in_use = s.in_use.saturating_add(layout.size());
                s.peak = s.peak.max(s.in_use);
            });
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        critical_section::with(|cs| {
            let mut s = self.state.borrow_ref_mut(cs);
            s.in_use = s.in_use.saturating_sub(layout.size());
            if s.armed {
                let needles = s.needles;
                let found = scan_block(ptr, layout.size(), &needles);
                s.report.blocks = s.report.blocks.saturating_add(1);
                s.report.bytes = s.report.bytes.saturating_add(layout.size());
                for (h, f) in s.report.hits.iter_mut().zip(found) {
                    *h = h.saturating_add(usize::from(f));
                }
            }
        });
        // SAFETY: the caller's contract for `GlobalAlloc::dealloc` (a block this allocator
        // returned, with its layout) is passed on unchanged.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Which needles occur in the `len` bytes at `ptr`. The block must be allocated memory of at
/// least `len` bytes that no one writes during the call (the caller is freeing it, or the
/// image is single-threaded and idle).
fn scan_block(ptr: *const u8, len: usize, needles: &[&[u8]; MAX_NEEDLES]) -> [bool; MAX_NEEDLES] {
    let byte = |i: usize| -> u8 {
        // SAFETY: callers pass `i < len`, inside the block, which is readable RAM of the heap
        // region. The read is volatile and makes no reference: parts of a block may never
        // have been written (uninitialised to the language, some value to the hardware), and
        // the scan must neither assume their contents nor let the compiler do so.
        unsafe { core::ptr::read_volatile(ptr.wrapping_add(i)) }
    };
    let mut found = [false; MAX_NEEDLES];
    for (f, needle) in found.iter_mut().zip(needles) {
        let Some((&first, rest)) = needle.split_first() else {
            continue;
        };
        let last_start = len.saturating_sub(rest.len());
        *f = (0..last_start).any(|start| {
            byte(start) == first
                && rest
                    .iter()
                    .enumerate()
                    .all(|(j, &b)| byte(start.saturating_add(1).saturating_add(j)) == b)
        });
    }
    found
}

/// The heap region from `link.x`: `(start, end)` addresses.
fn region() -> (usize, usize) {
    unsafe extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    (
        core::ptr::addr_of!(__heap_start) as usize,
        core::ptr::addr_of!(__heap_end) as usize,
    )
}

/// Hands the heap region to the allocator. Called once, first thing in `main`, before any
/// allocation.
pub(crate) fn init() {
    let (start, end) = region();
    // SAFETY: `[start, end)` is the `.heap` region that `link.x` reserves for this purpose:
    // RAM that no other code or linker section uses. `init` runs once, before any allocation
    // (`main` calls it first), as `LlffHeap::init` requires.
    unsafe { HEAP.heap.init(start, end.saturating_sub(start)) }
}

/// Size of the heap region in bytes.
pub(crate) fn size() -> usize {
    let (start, end) = region();
    end.saturating_sub(start)
}

/// Largest number of bytes allocated at once so far.
pub(crate) fn peak() -> usize {
    critical_section::with(|cs| HEAP.state.borrow_ref(cs).peak)
}

/// Starts searching every freed block for `needles` (at most [`MAX_NEEDLES`]; more are
/// ignored), with a fresh report.
pub(crate) fn arm(needles: &[&'static [u8]]) {
    critical_section::with(|cs| {
        let mut s = HEAP.state.borrow_ref_mut(cs);
        s.needles = [&[]; MAX_NEEDLES];
        for (slot, n) in s.needles.iter_mut().zip(needles) {
            *slot = n;
        }
        s.report = ScanReport::default();
        s.armed = true;
    });
}

/// Stops the scan on free and answers what it saw.
pub(crate) fn disarm() -> ScanReport {
    critical_section::with(|cs| {
        let mut s = HEAP.state.borrow_ref_mut(cs);
        s.armed = false;
        s.report
    })
}

/// Whether each needle occurs anywhere in the heap region, allocated or free. The image is
/// single-threaded, so nothing allocates or writes the heap during the search.
pub(crate) fn arena_hits(needles: &[&'static [u8]; MAX_NEEDLES]) -> [bool; MAX_NEEDLES] {
    let (start, end) = region();
    scan_block(start as *const u8, end.saturating_sub(start), needles)
}

/// One core, exceptions masked: the critical section `embedded-alloc` locks its heap with.
struct SingleCoreDaif;

critical_section::set_impl!(SingleCoreDaif);

// SAFETY: the image runs on one core (`_start` parks the others) and enables no interrupt, so
// masking every exception on this core excludes every other execution context; `release`
// restores exactly the mask `acquire` saw, so nested sections unwind correctly.
unsafe impl critical_section::Impl for SingleCoreDaif {
    unsafe fn acquire() -> u64 {
        let daif: u64;
        // SAFETY: reads DAIF and sets all four mask bits; no memory is accessed. Not `nomem`:
        // the asm must also order the section's memory accesses (a compiler barrier).
        unsafe {
            core::arch::asm!(
                "mrs {daif}, daif",
                "msr daifset, #0xf",
                daif = out(reg) daif,
                options(nostack, preserves_flags),
            );
        }
        daif
    }

    unsafe fn release(daif: u64) {
        // SAFETY: writes back the DAIF value `acquire` read; no memory is accessed. Not
        // `nomem`, for the same ordering reason.
        unsafe {
            core::arch::asm!(
                "msr daif, {daif}",
                daif = in(reg) daif,
                options(nostack, preserves_flags),
            );
        }
    }
}
