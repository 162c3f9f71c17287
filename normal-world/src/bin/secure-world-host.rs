//! `secure-world-host`: the tee-cdm secure world in its own process.
//!
//! Usage: `secure-world-host --socket PATH [--once]` (see [`normal_world::host`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    normal_world::host::main_with_args(std::env::args_os().skip(1))
}
