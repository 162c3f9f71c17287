//! # secure-world-host — the tee-cdm secure world in its own process
//!
//! The server side of the socket transport: a process that owns a
//! `secure_world::SecureWorld` and serves the message ABI over a Unix domain socket to one
//! client at a time (the framing is `cdm_core::abi::frame`). Players do not link this crate;
//! they reach it with `normal_world::transport::SocketTransport`.
//!
//! - [`Entry`]: the secure world's entry point as the server sees it (request bytes and the
//!   shared sample in, response bytes out), implemented by `SecureWorld`;
//! - [`serve_connection`] / [`serve_unix_socket`]: the server loop;
//! - [`main_with_args`]: the whole `secure-world-host` program, also used by executables that
//!   re-launch themselves as the host (the `playback` example does).
//!
//! Request buffers carry licenses (Clear Key keys in clear): they are wiped after every
//! request and on disconnect. The sample goes back to the client only after a decrypt in
//! place succeeded. The host logs what it does with `tracing` (connections, lost transports,
//! errors), never key bytes or license bodies; `RUST_LOG` sets the level.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cdm_core::abi::frame::{
    read_chunk, returns_sample, write_chunk, MAX_MESSAGE_FRAME, MAX_SAMPLE_FRAME,
};
use hal::platform::{Clock, SecureOutputSink, SecureRandom, StdPlatform};
use secure_world::{Config, ConfigError, SecureWorld};
use zeroize::{Zeroize, Zeroizing};

/// The secure world's entry point, as a server calls it: one request message and the shared
/// sample buffer in, one response message out. Never fails: every problem is an encoded
/// error response.
pub trait Entry {
    /// Handles one request; see `SecureWorld::process`.
    fn process(&mut self, request: &[u8], sample: &mut [u8], response: &mut Vec<u8>);
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> Entry for SecureWorld<R, C, S> {
    fn process(&mut self, request: &[u8], sample: &mut [u8], response: &mut Vec<u8>) {
        SecureWorld::process(self, request, sample, response);
    }
}

/// A secure world with the default configuration on the host platform.
pub fn host_world() -> Result<impl Entry, ConfigError> {
    SecureWorld::new(StdPlatform::host(), Config::default())
}

/// Why a secure world could not be built for a connection.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The configuration was refused or the root key could not be read.
    #[error("secure world: {0}")]
    Config(#[from] ConfigError),
    /// The storage directory could not be opened.
    #[error("storage directory {}: {source}", dir.display())]
    Storage {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The secure world a host serves: [`host_world`] without storage; with `storage`, one that
/// keeps persistent licenses in that directory (`hal::platform::HostPersistence`). A store that
/// fails its checks (rolled back, altered) is logged and still served: temporary sessions
/// work and every persistent-license operation answers the reason.
pub fn host_world_in(storage: Option<&Path>) -> Result<impl Entry, HostError> {
    let Some(dir) = storage else {
        return Ok(SecureWorld::new(StdPlatform::host(), Config::default())?);
    };
    let p = hal::platform::HostPersistence::open(dir).map_err(|source| HostError::Storage {
        dir: dir.to_path_buf(),
        source,
    })?;
    let world = SecureWorld::with_storage(
        StdPlatform::host(),
        Config::default(),
        p.storage,
        p.counter,
        &p.root_key,
    )?;
    if let Some(status) = world.storage_fault() {
        tracing::error!(status = status.name(), "persistent licenses unavailable");
    }
    Ok(world)
}

/// Serves one client connection: reads request frames, runs them through `entry`, writes
/// the replies. Returns when the client disconnects (`Ok`) or sends a frame that breaks the
/// bounds (`Err`; the connection is then dropped).
pub fn serve_connection(mut stream: UnixStream, entry: &mut dyn Entry) -> io::Result<()> {
    // Reserved once at the largest message, so it never reallocates; wiped after every
    // request and on drop (it carries licenses).
    let mut request = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_FRAME));
    let mut sample = Zeroizing::new(Vec::new());
    let mut response = Vec::new();
    loop {
        match read_chunk(&mut stream, MAX_MESSAGE_FRAME, &mut request) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        read_chunk(&mut stream, MAX_SAMPLE_FRAME, &mut sample)?;
        entry.process(&request, &mut sample, &mut response);
        request.as_mut_slice().zeroize();
        write_chunk(&mut stream, &response)?;
        let back: &[u8] = if returns_sample(&response) {
            &sample
        } else {
            &[]
        };
        write_chunk(&mut stream, back)?;
        stream.flush()?;
    }
}

/// Listens on `socket_path` and serves clients one after the other, each with a fresh
/// secure world from `new_entry` (a new connection is a new CDM instance: nothing survives
/// a disconnect). With `once`, returns after the first connection ends. The socket file is
/// removed on return.
pub fn serve_unix_socket<E: Entry, Er: std::fmt::Display, F>(
    socket_path: &Path,
    once: bool,
    mut new_entry: F,
) -> io::Result<()>
where
    F: FnMut() -> Result<E, Er>,
{
    let listener = UnixListener::bind(socket_path)?;
    tracing::info!(socket = %socket_path.display(), once, "listening");
    let result = (|| {
        for stream in listener.incoming() {
            let stream = stream?;
            if once {
                // Nobody else may connect to a one-shot host.
                let _ = std::fs::remove_file(socket_path);
            }
            let mut entry = match new_entry() {
                Ok(e) => e,
                Err(e) => {
                    // The client sees the connection close: its transport reports it lost.
                    tracing::error!(error = %e, "cannot build a secure world");
                    if once {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!("client connected; new secure world");
            match serve_connection(stream, &mut entry) {
                Ok(()) => tracing::info!("client disconnected; secure world dropped"),
                Err(e) => tracing::warn!(error = %e, "connection dropped"),
            }
            drop(entry);
            if once {
                break;
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(socket_path);
    result
}

/// The usage line.
pub const USAGE: &str = "usage: secure-world-host --socket PATH [--once] [--storage DIR]";

/// Environment variable arming the crash-test hook (`hal::platform::crash_test`): the host
/// kills itself with SIGKILL at that durable storage step. For crash-consistency tests only.
pub const KILL_AT_STORAGE_STEP_ENV: &str = "TEE_CDM_KILL_AT_STORAGE_STEP";

/// Whether `args` (without the program name) ask for the host: they contain `--socket`.
pub fn is_host_invocation(args: &[OsString]) -> bool {
    args.iter().any(|a| a == "--socket")
}

/// Runs the host: `--socket PATH [--once] [--storage DIR]`. Listens on the Unix domain socket
/// `PATH` and serves the message ABI, one client at a time, each with a fresh secure world
/// (nothing but stored persistent licenses survives a disconnect). With `--storage` the secure
/// world keeps persistent licenses in `DIR` (see [`host_world_in`]); the environment variable
/// [`KILL_AT_STORAGE_STEP_ENV`] arms the crash-test hook. With `--once` it exits after the first client disconnects (how
/// `SocketTransport::spawn` runs it). Logs go to stderr, filtered by `RUST_LOG` (default
/// `warn`).
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let usage = || {
        eprintln!("{USAGE}");
        ExitCode::from(2)
    };
    let mut socket: Option<PathBuf> = None;
    let mut storage: Option<PathBuf> = None;
    let mut once = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => return usage(),
            },
            Some("--storage") => match args.next() {
                Some(p) => storage = Some(PathBuf::from(p)),
                None => return usage(),
            },
            Some("--once") => once = true,
            _ => return usage(),
        }
    }
    let Some(socket) = socket else {
        return usage();
    };
    if let Some(n) = std::env::var_os(KILL_AT_STORAGE_STEP_ENV) {
        match n.to_str().and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => hal::platform::crash_test::kill_at_storage_step(n),
            None => return usage(),
        }
    }
    // Fail before listening if the secure world cannot be built at all.
    if let Err(e) = host_world_in(storage.as_deref()) {
        eprintln!("secure-world-host: {e}");
        return ExitCode::FAILURE;
    }
    match serve_unix_socket(&socket, once, || host_world_in(storage.as_deref())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secure-world-host: {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_invocations_are_recognised_wherever_socket_stands() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_host_invocation(&args(&["--socket", "/s", "--once"])));
        // `SocketTransport::spawn_command` appends `--socket` after the caller's arguments.
        assert!(is_host_invocation(&args(&[
            "--storage",
            "/d",
            "--socket",
            "/s",
            "--once"
        ])));
        assert!(!is_host_invocation(&args(&[])));
        assert!(!is_host_invocation(&args(&["--storage", "/d"])));
    }
}
