//! Console output on the MPS2 board's UART0, an Arm CMSDK APB UART (QEMU `-nographic` sends
//! it to the terminal).
//!
//! The transmitter must be enabled (CTRL bit 0) and the baud divider set to at least 16
//! (CMSDK TRM: smaller values are invalid); the driver then waits while the transmit buffer is
//! full (STATE bit 0) and writes bytes to DATA.
#![allow(unsafe_code)]

/// Base address of UART0 on the MPS2 AN385/AN386 memory map.
const BASE: usize = 0x4000_4000;
/// Data register.
const DATA: usize = BASE;
/// Status register.
const STATE: usize = BASE + 0x4;
/// Control register.
const CTRL: usize = BASE + 0x8;
/// Baud-rate divider register.
const BAUDDIV: usize = BASE + 0x10;
/// STATE bit: transmit buffer full.
const TX_FULL: u32 = 1 << 0;
/// CTRL bit: transmitter enabled.
const TX_ENABLE: u32 = 1 << 0;

/// Enables the transmitter. Called once at boot, before the first line is printed.
pub(crate) fn init() {
    // SAFETY: BAUDDIV and CTRL are 32-bit registers of UART0 at fixed device addresses of the
    // MPS2 memory map (no MPU in use); writing them configures the UART and touches no Rust
    // object.
    unsafe {
        core::ptr::write_volatile(BAUDDIV as *mut u32, 16);
        core::ptr::write_volatile(CTRL as *mut u32, TX_ENABLE);
    }
}

/// Sends one byte, waiting while the transmit buffer is full.
fn put_byte(byte: u8) {
    // SAFETY: STATE is UART0's 32-bit status register at a fixed device address; reading it
    // has no side effect.
    while unsafe { core::ptr::read_volatile(STATE as *const u32) } & TX_FULL != 0 {
        core::hint::spin_loop();
    }
    // SAFETY: DATA is UART0's data register at a fixed device address; a write queues the low
    // byte for transmission. No Rust object lives there.
    unsafe { core::ptr::write_volatile(DATA as *mut u32, u32::from(byte)) };
}

#[path = "../../common/console.rs"]
mod console;
pub(crate) use console::{println, Uart};
