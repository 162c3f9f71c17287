//! `secure-world-host`: the tee-cdm secure world in its own process.
//!
//! Usage: `secure-world-host --socket PATH [--once]`
//!
//! Listens on the Unix domain socket `PATH` and serves the message ABI framed as described in
//! `normal_world::transport::SocketTransport`, one client at a time, each with a fresh secure
//! world (nothing survives a disconnect). With `--once` it exits after the first client
//! disconnects (how `SocketTransport::spawn` runs it).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use normal_world::transport::{serve_unix_socket, InProcessTransport, Transport};

fn usage() -> ExitCode {
    eprintln!("usage: secure-world-host --socket PATH [--once]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut socket: Option<PathBuf> = None;
    let mut once = false;
    let mut args = std::env::args_os().skip(1);
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
