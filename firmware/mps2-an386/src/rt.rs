//! The runtime around cortex-m-rt: the entry point, the heap set-up, the stack high-water
//! mark, the fault and panic handlers and the end of the run (semihosting).
//!
//! cortex-m-rt's reset handler has already copied `.data`, zeroed `.bss`, enabled the FPU
//! (`eabihf`) and painted the stack with `cortex_m_rt::STACK_PAINT_VALUE` when [`entry`] runs.
#![allow(unsafe_code)]

use core::panic::PanicInfo;

// Linked for its single-core `critical-section` implementation (interrupts off), which
// embedded-alloc locks with; nothing else of it is used.
use cortex_m as _;
use cortex_m_rt::{ExceptionFrame, STACK_PAINT_VALUE as STACK_PAINT};
use cortex_m_semihosting::debug;

use crate::uart::{self, println};

#[path = "../../common/heap.rs"]
mod heap;
pub(crate) use heap::HEAP;

#[cortex_m_rt::entry]
fn entry() -> ! {
    uart::init();
    heap::init();
    exit(crate::run())
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

/// The type of cortex-m-rt's stack paint, the words the stack is painted and scanned in.
type StackWord = u32;

#[path = "../../common/stack.rs"]
mod stack;
pub(crate) use stack::{stack_high_water, stack_size};

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
