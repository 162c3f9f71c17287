//! Console output on the `virt` board's PL011 UART (QEMU's `-nographic` serial console).
//!
//! QEMU's PL011 needs no set-up: the transmitter is enabled at reset and the baud rate means
//! nothing to it. The driver only waits while the transmit FIFO is full (PL011 TRM, UARTFR
//! bit 5, TXFF) and writes bytes to the data register.
#![allow(unsafe_code)]

/// Base address of the PL011 on QEMU's `virt` board (`VIRT_UART` in QEMU's memory map).
const PL011_BASE: usize = 0x0900_0000;
/// Data register (UARTDR).
const UARTDR: usize = PL011_BASE;
/// Flag register (UARTFR).
const UARTFR: usize = PL011_BASE + 0x18;
/// UARTFR bit: transmit FIFO full.
const TXFF: u32 = 1 << 5;

/// Sends one byte, waiting while the transmit FIFO is full.
fn put_byte(byte: u8) {
    // SAFETY: UARTFR is a 32-bit read-only device register of the PL011 mapped at this fixed
    // physical address on the `virt` board (the MMU is off, so the address is used as is);
    // reading it has no side effect.
    while unsafe { core::ptr::read_volatile(UARTFR as *const u32) } & TXFF != 0 {
        core::hint::spin_loop();
    }
    // SAFETY: UARTDR is the PL011's data register at a fixed device address; a 32-bit write
    // whose low byte is the character queues it for transmission. No Rust object lives at
    // this address.
    unsafe { core::ptr::write_volatile(UARTDR as *mut u32, u32::from(byte)) };
}

#[path = "../../common/console.rs"]
mod console;
pub(crate) use console::{println, Uart};
