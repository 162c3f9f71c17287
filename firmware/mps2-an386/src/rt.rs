//! The runtime around cortex-m-rt: the entry point, the heap set-up, the stack high-water
//! mark, the fault and panic handlers and the end of the run (semihosting).
//!
//! cortex-m-rt's reset handler has already copied `.data`, zeroed `.bss`, enabled the FPU
//! (`eabihf`) and painted the stack with [`STACK_PAINT_VALUE`] when [`entry`] runs.
#![allow(unsafe_code)]

use core::panic::PanicInfo;

// Linked for its single-core `critical-section` implementation (interrupts off), which
// embedded-alloc locks with; nothing else of it is used.
use cortex_m as _;
use cortex_m_rt::{ExceptionFrame, STACK_PAINT_VALUE};
use cortex_m_semihosting::debug;
use firmware_selftest::heap::ScanningHeap;

use crate::uart::{self, println};

/// The global allocator.
#[global_allocator]
pub(crate) static HEAP: ScanningHeap = ScanningHeap::new();

#[cortex_m_rt::entry]
fn entry() -> ! {
    uart::init();
    init_heap();
    exit(crate::run())
}

/// Hands the `HEAP` region of `memory.x` to the allocator.
fn init_heap() {
    unsafe extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    let start = core::ptr::addr_of!(__heap_start) as usize;
    let end = core::ptr::addr_of!(__heap_end) as usize;
    // SAFETY: (1) `[start, end)` is the `HEAP` memory region of `memory.x`, RAM that no linker
    // section and no other code uses; (2) `entry` calls this once, before anything allocates.
    unsafe { HEAP.init(start, end.saturating_sub(start)) }
}

/// The stack region cortex-m-rt set up: `(bottom, top)` addresses.
fn stack_bounds() -> (usize, usize) {
    unsafe extern "C" {
        static _stack_end: u8;
        static _stack_start: u8;
    }
    (
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Size of the stack region in bytes.
pub(crate) fn stack_size() -> usize {
    let (bottom, top) = stack_bounds();
    top.saturating_sub(bottom)
}

/// Bytes of stack used so far at most: from the top down to the lowest word that no longer
/// holds the paint. Equal to [`stack_size`] if the bottom word was overwritten.
pub(crate) fn stack_high_water() -> usize {
    let (bottom, top) = stack_bounds();
    let mut addr = bottom;
    while addr < top {
        // SAFETY: `addr` is 4-byte aligned (cortex-m-rt aligns `_stack_end` to 4 and the loop
        // steps by 4) and inside the stack region, RAM that the reset handler painted. The
        // read is volatile and makes no reference to the live frames at the top.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != STACK_PAINT_VALUE {
            break;
        }
        addr = addr.saturating_add(4);
    }
    top.saturating_sub(addr)
}

/// Ends the emulation: QEMU exits with status 0 if `passed`, 1 otherwise.
fn exit(passed: bool) -> ! {
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without semihosting (a debugger or QEMU would have ended the run).
    loop {
        core::hint::spin_loop();
    }
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("tee-cdm firmware: hard fault: {frame:?}");
    exit(false)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    println!("tee-cdm firmware: panic: {info}");
    exit(false)
}
