//! The `secure-world-host` process: the secure world behind a Unix socket.
//!
//! [`main_with_args`] is the whole program, shared by the `secure-world-host` binary and by
//! any executable that wants to re-launch itself as the host (the `playback` example does,
//! so it needs no second binary next to it).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::transport::{serve_unix_socket, InProcessTransport, Transport};

/// The usage line.
pub const USAGE: &str = "usage: secure-world-host --socket PATH [--once]";

/// Whether `args` (without the program name) ask for the host: they start with `--socket`.
pub fn is_host_invocation(args: &[OsString]) -> bool {
    args.first().is_some_and(|a| a == "--socket")
}

/// Runs the host: `--socket PATH [--once]`. Listens on the Unix domain socket `PATH` and
/// serves the message ABI, one client at a time, each with a fresh secure world (nothing
/// survives a disconnect). With `--once` it exits after the first client disconnects (how
/// [`crate::transport::SocketTransport::spawn`] runs it).
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let usage = || {
        eprintln!("{USAGE}");
        ExitCode::from(2)
    };
    let mut socket: Option<PathBuf> = None;
    let mut once = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return usage(),
            },
            Some("--once") => once = true,
            _ => return usage(),
        }
    }
    let Some(socket) = socket else {
        return usage();
    };
    // Fail before listening if the secure world cannot be built at all.
    if let Err(e) = InProcessTransport::new() {
        eprintln!("secure-world-host: {e}");
        return ExitCode::FAILURE;
    }
    match serve_unix_socket(&socket, once, || {
        InProcessTransport::new().map(|t| Box::new(t) as Box<dyn Transport>)
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secure-world-host: {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}
