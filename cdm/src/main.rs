//! `cdm`: inspect CENC MP4 files and query the tee-cdm CDM (see the `cdm` library's
//! documentation and `cdm --help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    cdm::cli::main_with_args(std::env::args_os())
}
