//! The images' global allocator, with the instruments the key-wiping check reads.
//!
//! [`ScanningHeap`] is `embedded-alloc`'s linked-list first-fit heap (which locks through
//! `critical-section`: each image supplies the implementation for its core) wrapped with two
//! instruments, hand-written because they exist only to observe the secure world and no crate
//! offers them:
//!
//! - **Scan on free**: while [`ScanningHeap::arm`]ed, every block is searched for the needles
//!   before it goes back to the allocator (`realloc` frees through `dealloc`, so the old block
//!   of every move is searched too). A hit means some code released memory that still held a
//!   secret; the host tests do the same with `cdm-testkit`'s scanning allocator.
//! - **Arena scan** ([`ScanningHeap::arena_hits`]): the whole heap region, live and free
//!   blocks alike.
//!
//! It also counts the bytes in use and their peak.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::RefCell;

use critical_section::Mutex;
use embedded_alloc::LlffHeap;

/// How many needles the scanner looks for at once.
pub const MAX_NEEDLES: usize = 4;

/// What the scan on free saw between [`ScanningHeap::arm`] and [`ScanningHeap::disarm`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanReport {
    /// Blocks searched.
    pub blocks: usize,
    /// Bytes searched.
    pub bytes: usize,
    /// Freed blocks that contained each needle.
    pub hits: [usize; MAX_NEEDLES],
}

/// Bookkeeping shared by every allocation (behind the critical section).
struct State {
    start: usize,
    size: usize,
    in_use: usize,
    peak: usize,
    armed: bool,
    needles: [&'static [u8]; MAX_NEEDLES],
    report: ScanReport,
}

/// The global allocator of an image: declare one as `#[global_allocator]` and
/// [`ScanningHeap::init`] it before the first allocation.
pub struct ScanningHeap {
    heap: LlffHeap,
    state: Mutex<RefCell<State>>,
}

impl Default for ScanningHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl ScanningHeap {
    /// A heap with no memory yet.
    pub const fn new() -> Self {
        ScanningHeap {
            heap: LlffHeap::empty(),
            state: Mutex::new(RefCell::new(State {
                start: 0,
                size: 0,
                in_use: 0,
                peak: 0,
                armed: false,
                needles: [&[]; MAX_NEEDLES],
                report: ScanReport {
                    blocks: 0,
                    bytes: 0,
                    hits: [0; MAX_NEEDLES],
                },
            })),
        }
    }

    /// Hands the `size` bytes at `start` to the allocator.
    ///
    /// # Safety
    ///
    /// 1. `[start, start + size)` is RAM that nothing else uses (no linker section, no other
    ///    code) for the rest of the program, and `size > 0`.
    /// 2. It is called once, before any allocation.
    pub unsafe fn init(&self, start: usize, size: usize) {
        critical_section::with(|cs| {
            let mut s = self.state.borrow_ref_mut(cs);
            s.start = start;
            s.size = size;
        });
        // SAFETY: (1) and (2) are `LlffHeap::init`'s own requirements, passed on to the caller.
        unsafe { self.heap.init(start, size) }
    }

    /// Size of the heap region in bytes.
    pub fn size(&self) -> usize {
        critical_section::with(|cs| self.state.borrow_ref(cs).size)
    }

    /// Largest number of bytes allocated at once so far.
    pub fn peak(&self) -> usize {
        critical_section::with(|cs| self.state.borrow_ref(cs).peak)
    }

    /// Starts searching every freed block for `needles` (at most [`MAX_NEEDLES`]; more are
    /// ignored), with a fresh report.
    pub fn arm(&self, needles: &[&'static [u8]]) {
        critical_section::with(|cs| {
            let mut s = self.state.borrow_ref_mut(cs);
            s.needles = [&[]; MAX_NEEDLES];
            for (slot, n) in s.needles.iter_mut().zip(needles) {
                *slot = n;
            }
            s.report = ScanReport::default();
            s.armed = true;
        });
    }

    /// Stops the scan on free and answers what it saw.
    pub fn disarm(&self) -> ScanReport {
        critical_section::with(|cs| {
            let mut s = self.state.borrow_ref_mut(cs);
            s.armed = false;
            s.report
        })
    }

    /// Whether each needle occurs anywhere in the heap region, allocated or free. Call it only
    /// while nothing else runs (the images are single-threaded and enable no interrupt).
    pub fn arena_hits(&self, needles: &[&'static [u8]; MAX_NEEDLES]) -> [bool; MAX_NEEDLES] {
        let (start, size) = critical_section::with(|cs| {
            let s = self.state.borrow_ref(cs);
            (s.start, s.size)
        });
        if size == 0 {
            return [false; MAX_NEEDLES];
        }
        scan_block(start as *const u8, size, needles)
    }
}

// SAFETY: every method forwards to `LlffHeap`'s `GlobalAlloc` implementation with the caller's
// own arguments, so its guarantees are the inner allocator's. The bookkeeping around the calls
// never writes the memory handed out, and `scan_block` only reads a block that is still
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

/// Which needles occur in the `len` bytes at `ptr`: a block of the heap region that is
/// allocated (being freed) or the whole region, read while no one writes it.
fn scan_block(ptr: *const u8, len: usize, needles: &[&[u8]; MAX_NEEDLES]) -> [bool; MAX_NEEDLES] {
    let byte = |i: usize| -> u8 {
        // SAFETY: callers pass `i < len`, inside the block, which lies in the heap region:
        // readable RAM that `ScanningHeap::init` was given. The read is volatile and makes no
        // reference: parts of a block may never have been written (uninitialised to the
        // language, some value to the hardware), and the scan must neither assume their
        // contents nor let the compiler do so.
        unsafe { core::ptr::read_volatile(ptr.wrapping_add(i)) }
    };
    let mut found = [false; MAX_NEEDLES];
    for (f, needle) in found.iter_mut().zip(needles) {
        let Some((&first, rest)) = needle.split_first() else {
            continue;
        };
        // Every start position whose needle fits: 0..=len - needle.len().
        let starts = len.saturating_sub(rest.len());
        *f = (0..starts).any(|start| {
            byte(start) == first
                && rest
                    .iter()
                    .enumerate()
                    .all(|(j, &b)| byte(start.saturating_add(1).saturating_add(j)) == b)
        });
    }
    found
}
