//! The heap: `firmware-selftest`'s `ScanningHeap` (`embedded-alloc` plus the key scans) over
//! the `.heap` region of `link.x`, and the critical section it locks with.
#![allow(unsafe_code)]

#[path = "../../common/heap.rs"]
mod global;
pub(crate) use global::{init, HEAP};

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
