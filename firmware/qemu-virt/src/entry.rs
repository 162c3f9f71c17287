//! Reset entry, exception vectors, stack accounting and the panic handler.
//!
//! QEMU's `virt` board starts the first core at `_start` (the ELF entry) at EL1 with the MMU
//! and caches off and every exception masked. Before any Rust code runs, `_start`:
//!
//! 1. parks every core but core 0 (`-smp 1` is the default; more cores would share one stack);
//! 2. enables FP/SIMD (`CPACR_EL1.FPEN = 0b11`): Rust code, and the AES instructions above
//!    all, use the vector registers, and without this the first one traps;
//! 3. installs the exception vectors, so that a trap reports itself and ends the run with a
//!    failure status instead of hanging;
//! 4. paints the stack with [`STACK_PAINT`] (so [`stack_high_water`] can measure how deep it
//!    went) and points `sp` at its top;
//! 5. zeroes `.bss` (QEMU zero-fills it too, but the image does not rely on the loader);
//! 6. calls `crate::main`, which never returns.
//!
//! The layout symbols (`__stack_bottom`, `__bss_start`, …) come from `link.x`.
#![allow(unsafe_code)]

use core::panic::PanicInfo;

use crate::{semihosting, uart};

/// The word the stack is painted with at boot ("STAKSTAK" in ASCII).
pub(crate) const STACK_PAINT: u64 = 0x5354_414b_5354_414b;

/// Exit status after a CPU exception.
const EXIT_EXCEPTION: u32 = 3;
/// Exit status after a panic.
const EXIT_PANIC: u32 = 101;

core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, 9f

    mov     x0, #(3 << 20)
    msr     cpacr_el1, x0
    isb

    adrp    x0, __vectors
    add     x0, x0, :lo12:__vectors
    msr     vbar_el1, x0
    isb

    adrp    x0, __stack_bottom
    add     x0, x0, :lo12:__stack_bottom
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    ldr     x2, ={paint}
1:  cmp     x0, x1
    b.hs    2f
    str     x2, [x0], #8
    b       1b
2:  mov     sp, x1

    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
3:  cmp     x0, x1
    b.hs    4f
    str     xzr, [x0], #8
    b       3b

4:  bl      {main}
9:  wfe
    b       9b

    .section .text.vectors, "ax"
    .balign 0x800
__vectors:
    .irp    kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    mov     x0, #\kind
    b       __exception_common
    .endr
__exception_common:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      {exception}
    b       .
"#,
    paint = const STACK_PAINT,
    main = sym entry_main,
    exception = sym exception,
);

/// Called by `_start` once the stack and `.bss` are ready.
extern "C" fn entry_main() -> ! {
    crate::main()
}

/// Names of the 16 vector table entries (ARM ARM D1.10.2): four kinds from four origins.
fn vector_name(kind: u64) -> (&'static str, &'static str) {
    let what = ["synchronous", "IRQ", "FIQ", "SError"];
    let from = [
        "current EL, SP_EL0",
        "current EL, SP_ELx",
        "lower EL, AArch64",
        "lower EL, AArch32",
    ];
    let i = usize::try_from(kind).unwrap_or(0);
    (
        what.get(i % 4).copied().unwrap_or("?"),
        from.get(i / 4).copied().unwrap_or("?"),
    )
}

/// Every exception lands here (the image enables no interrupts, so any entry is a fault):
/// report it on the UART and end the run with [`EXIT_EXCEPTION`].
extern "C" fn exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    let (what, from) = vector_name(kind);
    uart::println!(
        "tee-cdm firmware: {what} exception from {from}: ESR_EL1={esr:#x} ELR_EL1={elr:#x} FAR_EL1={far:#x}"
    );
    semihosting::exit(EXIT_EXCEPTION)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    uart::println!("tee-cdm firmware: panic: {info}");
    semihosting::exit(EXIT_PANIC)
}

/// The stack region from `link.x`: `(bottom, top)` addresses.
fn stack_bounds() -> (usize, usize) {
    unsafe extern "C" {
        static __stack_bottom: u8;
        static __stack_top: u8;
    }
    (
        core::ptr::addr_of!(__stack_bottom) as usize,
        core::ptr::addr_of!(__stack_top) as usize,
    )
}

/// The type of [`STACK_PAINT`], the words the stack is painted and scanned in.
type StackWord = u64;

#[path = "../../common/stack.rs"]
mod stack;
pub(crate) use stack::{stack_high_water, stack_size};
