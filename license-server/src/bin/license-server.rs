//! `license-server`: a Clear Key license server.
//!
//! Usage: `license-server serve [--addr ADDR] [--db PATH] [--static DIR]` and
//! `license-server import [--db PATH] [--persistent] [--file FILE] [KID_HEX:KEY_HEX]...`
//! (see [`license_server::cli`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    license_server::cli::main_with_args(std::env::args_os())
}
