//! `secure-world-host`: the tee-cdm secure world in its own process.
//!
//! Usage: `secure-world-host --socket PATH [--once] [--storage DIR]` (see [`secure_world_host::main_with_args`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    secure_world_host::main_with_args(std::env::args_os().skip(1))
}
