//! The console both images print on, included (`#[path]`) by each image's `uart` module, whose
//! `put_byte` drives the device: a stateless [`Uart`] that sends `\n` as `\r\n` (serial
//! terminals want the carriage return), and [`println!`].

use core::fmt;

use super::put_byte;

/// The console. Holds no state: every write goes straight to the device.
pub(crate) struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put_byte(b'\r');
            }
            put_byte(b);
        }
        Ok(())
    }
}

/// Formats a line to the console (like `std::println!`).
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        // Writing to the UART cannot fail.
        let _ = writeln!($crate::uart::Uart, $($arg)*);
    }};
}
pub(crate) use println;
