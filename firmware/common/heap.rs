//! The global allocator of both images, included (`#[path]`) by each image's runtime: the
//! `firmware-selftest` [`ScanningHeap`] (`embedded-alloc` plus the key scans) over the heap
//! region of the image's linker script, `__heap_start` to `__heap_end`.

use firmware_selftest::heap::ScanningHeap;

/// The global allocator.
#[global_allocator]
pub(crate) static HEAP: ScanningHeap = ScanningHeap::new();

/// Hands the heap region to the allocator. Called once at boot, before anything allocates.
pub(crate) fn init() {
    unsafe extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    let start = core::ptr::addr_of!(__heap_start) as usize;
    let end = core::ptr::addr_of!(__heap_end) as usize;
    // SAFETY: (1) `[start, end)` is the region the linker script reserves for the heap
    // (`link.x`'s `.heap`, `memory.x`'s `HEAP`), RAM that no section and no other code uses;
    // (2) the image calls this once, before anything allocates.
    unsafe { HEAP.init(start, end.saturating_sub(start)) }
}
