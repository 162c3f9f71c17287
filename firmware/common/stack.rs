//! Stack accounting over the region painted at boot, included (`#[path]`) by each image's
//! runtime module, which supplies `stack_bounds()` (the region's `(bottom, top)` addresses),
//! the paint `STACK_PAINT` and its word type `StackWord`.

use super::{stack_bounds, StackWord, STACK_PAINT};

/// Size of the stack region in bytes.
pub(crate) fn stack_size() -> usize {
    let (bottom, top) = stack_bounds();
    top.saturating_sub(bottom)
}

/// Bytes of stack used so far at most: from the top down to the lowest word that no longer
/// holds [`STACK_PAINT`]. Equal to [`stack_size`] when the bottom word was overwritten,
/// which means the stack may have overflowed (nothing guards it).
pub(crate) fn stack_high_water() -> usize {
    let (bottom, top) = stack_bounds();
    let mut addr = bottom;
    while addr < top {
        // SAFETY: `addr` is aligned for a `StackWord` (the region's bottom is: `link.x` aligns
        // it to 4 KiB, cortex-m-rt `_stack_end` to 4; the loop steps by the word's size) and
        // lies inside the stack region, RAM that the linker script reserves and the boot code
        // painted. A volatile read creates no reference, so it does not alias the live frames
        // at the top of the stack that the compiler owns.
        let word = unsafe { core::ptr::read_volatile(addr as *const StackWord) };
        if word != STACK_PAINT {
            break;
        }
        addr = addr.saturating_add(size_of::<StackWord>());
    }
    top.saturating_sub(addr)
}
