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
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdm_core::abi::frame::{
    read_chunk, returns_sample, write_chunk, MAX_MESSAGE_FRAME, MAX_SAMPLE_FRAME,
};
use cdm_shm::{word, Doorbell, FirstWord, Region, Rung, LAYOUT};
use hal::platform::{Clock, SecureOutputSink, SecureRandom, StdPlatform};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::Mode;
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
    /// The protected key system's root key file could not be read or is not 65 bytes.
    #[error("protected root {}: {why}", path.display())]
    ProtectedRoot {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
}

/// What a host's secure worlds are built with.
#[derive(Clone, Debug, Default)]
pub struct HostSettings {
    /// Where persistent licenses (and the protected key system's device identity) are kept
    /// (`hal::platform::HostPersistence`); `None`: temporary sessions only.
    pub storage: Option<PathBuf>,
    /// The protected key system's pinned root public key (65 bytes, as the license server's
    /// `protected-init` writes `root.pub`); `None`: `org.teecdm.protected` is not offered.
    pub protected_root: Option<[u8; 65]>,
    /// Test emulation: the clock reads whole seconds since the Unix epoch from this file
    /// instead of the system clock. Protects nothing; it lets a test move time.
    pub emulated_clock: Option<PathBuf>,
    /// Test emulation: the outputs' HDCP version is read from this file (`none`, `1.4`,
    /// `2.2`, …; missing file: none). Protects nothing; it lets a test change the level.
    pub emulated_hdcp: Option<PathBuf>,
}

impl HostSettings {
    /// Reads a root file (exactly 65 bytes) into [`HostSettings::protected_root`].
    pub fn read_protected_root(&mut self, path: &Path) -> Result<(), HostError> {
        let bad = |why: String| HostError::ProtectedRoot {
            path: path.to_path_buf(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let root: [u8; 65] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("{} bytes, not 65", bytes.len())))?;
        self.protected_root = Some(root);
        Ok(())
    }
}

/// The host's clock: the system clock, or a file a test writes (see
/// [`HostSettings::emulated_clock`]).
#[derive(Clone, Debug)]
pub enum HostClock {
    /// `hal::platform::SystemClock`.
    System,
    /// Seconds since the epoch read from the file at every query; unreadable: no time.
    File(PathBuf),
}

impl Clock for HostClock {
    fn now_ms(&self) -> Option<i64> {
        match self {
            HostClock::System => hal::platform::SystemClock.now_ms(),
            HostClock::File(path) => {
                let text = std::fs::read_to_string(path).ok()?;
                text.trim().parse::<i64>().ok()?.checked_mul(1000)
            }
        }
    }
}

/// The outputs' HDCP level read from a file at every query (see
/// [`HostSettings::emulated_hdcp`]).
#[derive(Clone, Debug)]
pub struct FileOutputProtection(pub PathBuf);

impl hal::platform::OutputProtection for FileOutputProtection {
    fn hdcp(&self) -> hal::platform::Hdcp {
        use std::str::FromStr;
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return hal::platform::Hdcp::NONE;
        };
        cdm_core::HdcpVersion::from_str(text.trim())
            .ok()
            .and_then(|v| hal::platform::Hdcp::from_bcd(v.to_wire()))
            .unwrap_or(hal::platform::Hdcp::NONE)
    }
}

/// The secure world a host serves: [`host_world`] without storage; with `storage`, one that
/// keeps persistent licenses in that directory (`hal::platform::HostPersistence`). A store that
/// fails its checks (rolled back, altered) is logged and still served: temporary sessions
/// work and every persistent-license operation answers the reason.
pub fn host_world_in(storage: Option<&Path>) -> Result<HostWorld, HostError> {
    host_world_with(&HostSettings {
        storage: storage.map(Path::to_path_buf),
        ..HostSettings::default()
    })
}

/// The secure world a host builds: the host's randomness, clock (the system's, or the
/// emulated one) and output sink; output protection boxed in the platform. An [`Entry`]; a
/// player can also run it in its own process (`normal-world`'s `InProcessTransport::from_world`).
pub type HostWorld = SecureWorld<hal::platform::SystemRandom, HostClock, hal::platform::DigestSink>;

/// [`host_world_in`] with every setting of a host: storage, the protected key system's root
/// and the test emulations of time and output protection.
pub fn host_world_with(settings: &HostSettings) -> Result<HostWorld, HostError> {
    let clock = match &settings.emulated_clock {
        Some(path) => HostClock::File(path.clone()),
        None => HostClock::System,
    };
    let mut platform = hal::platform::Platform::new(
        hal::platform::SystemRandom::new(),
        clock,
        hal::platform::DigestSink::new(),
        hal::aes::Engine::detect(),
    );
    if let Some(path) = &settings.emulated_hdcp {
        platform = platform.with_output_protection(FileOutputProtection(path.clone()));
    }
    let config = Config {
        protected_root: settings.protected_root,
        ..Config::default()
    };
    let Some(dir) = settings.storage.as_deref() else {
        return Ok(SecureWorld::new(platform, config)?);
    };
    let p = hal::platform::HostPersistence::open(dir).map_err(|source| HostError::Storage {
        dir: dir.to_path_buf(),
        source,
    })?;
    let world = SecureWorld::with_storage(platform, config, p.storage, p.counter, &p.root_key)?;
    if let Some(status) = world.storage_fault() {
        tracing::error!(status = status.name(), "persistent licenses unavailable");
    }
    Ok(world)
}

/// How long a client may stall in the middle of a frame (no byte for that long, sending a
/// request or reading a reply) before its connection is dropped. Between frames a client may
/// stay idle as long as it likes.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client connection: reads request frames, runs them through `entry`, writes
/// the replies. Returns when the client disconnects (`Ok`) or sends a frame that breaks the
/// bounds or stalls for [`FRAME_TIMEOUT`] inside a frame (`Err`; the connection is then
/// dropped).
pub fn serve_connection(stream: UnixStream, entry: &mut dyn Entry) -> io::Result<()> {
    serve_connection_with(stream, entry, FRAME_TIMEOUT)
}

/// Blocks until `stream` has something to read (or has hung up), with no time limit.
fn wait_readable(stream: &UnixStream) -> io::Result<()> {
    let mut fds = [PollFd::new(stream, PollFlags::IN)];
    loop {
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// [`serve_connection`] with another stall limit.
///
/// The first 4 bytes decide the protocol: [`cdm_shm::OFFER`] with a file descriptor is a
/// shared region (see `docs/abi.md`, "Shared memory"), served by [`serve_shared`]; anything
/// else starts the first socket frame.
pub fn serve_connection_with(
    mut stream: UnixStream,
    entry: &mut dyn Entry,
    frame_timeout: Duration,
) -> io::Result<()> {
    // Reserved once at the largest message, so it never reallocates; wiped after every
    // request and on drop (it carries licenses).
    let mut request = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_FRAME));
    let mut sample = Zeroizing::new(Vec::new());
    let mut response = Vec::new();
    stream.set_write_timeout(Some(frame_timeout))?;
    let mut first = true;
    loop {
        // Idle between frames: no limit. Once a frame begins, every read must progress.
        stream.set_read_timeout(None)?;
        wait_readable(&stream)?;
        stream.set_read_timeout(Some(frame_timeout))?;
        let read = if first {
            first = false;
            match cdm_shm::recv_first(&stream).map_err(io::Error::other)? {
                FirstWord::Closed => return Ok(()),
                FirstWord::Offer(fd) => {
                    let region = Region::adopt(fd).map_err(io::Error::other)?;
                    tracing::info!("shared-memory transport");
                    return serve_shared(&stream, region, entry);
                }
                FirstWord::Frame(word) => read_chunk(
                    &mut (&word[..]).chain(&mut stream),
                    MAX_MESSAGE_FRAME,
                    &mut request,
                ),
            }
        } else {
            read_chunk(&mut stream, MAX_MESSAGE_FRAME, &mut request)
        };
        match read {
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

/// Serves a client over the shared region it handed over: waits on the request doorbell,
/// copies the request out of the region (and reads each length once) before anything looks
/// at it, lets the secure world decrypt the sample where it lies, copies the response in and
/// rings the response doorbell. The client may change the region at any time: that can only
/// change what a decrypt produces. Returns when the client hangs up; a length out of bounds
/// ends the connection.
pub fn serve_shared(
    stream: &UnixStream,
    mut region: Region,
    entry: &mut dyn Entry,
) -> io::Result<()> {
    let err = |e: cdm_shm::ShmError| io::Error::other(e);
    let mut request = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_FRAME));
    let mut response = Vec::new();
    let mut last = 0u32;
    loop {
        let seq = match Doorbell::wait(
            &region,
            word::REQ_SEQ,
            word::HOST_WAITING,
            last,
            None,
            || cdm_shm::hung_up(stream),
        )
        .map_err(err)?
        {
            Rung::Value(v) => v,
            Rung::PeerGone => return Ok(()),
            Rung::TimedOut => continue,
        };
        let load = |i| {
            region
                .word(i)
                .map(|w| w.load(std::sync::atomic::Ordering::Acquire))
        };
        let request_len =
            cdm_shm::check_message_len(load(word::REQ_LEN).map_err(err)?).map_err(err)?;
        let sample_len =
            cdm_shm::check_sample_len(load(word::SAMPLE_LEN).map_err(err)?).map_err(err)?;
        request.clear();
        request.resize(request_len, 0);
        region.read(LAYOUT.request, &mut request).map_err(err)?;
        let sample = region.sample_mut(sample_len).map_err(err)?;
        entry.process(&request, sample, &mut response);
        request.as_mut_slice().zeroize();
        let response_len = u32::try_from(response.len())
            .ok()
            .filter(|&n| usize::try_from(n).is_ok_and(|n| n <= MAX_MESSAGE_FRAME))
            .ok_or_else(|| io::Error::other("response too large"))?;
        let back = if returns_sample(&response) {
            u32::try_from(sample_len).map_err(io::Error::other)?
        } else {
            0
        };
        region.write(LAYOUT.response, &response).map_err(err)?;
        let store = |i, v| {
            region
                .word(i)
                .map(|w| w.store(v, std::sync::atomic::Ordering::Release))
        };
        store(word::RESP_LEN, response_len).map_err(err)?;
        store(word::SAMPLE_BACK, back).map_err(err)?;
        Doorbell::ring(&region, word::RESP_SEQ, word::PLAYER_WAITING, seq).map_err(err)?;
        last = seq;
    }
}

/// Binds a listening socket at `path` that only this user can connect to: created with
/// mode 0600 (under a umask, so there is no moment when it is open to others). Put it in a
/// directory only this user can reach as well.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound
}

/// Whether the peer of `stream` runs as `uid` (`SO_PEERCRED`).
fn peer_is(stream: &UnixStream, uid: u32) -> bool {
    match rustix::net::sockopt::socket_peercred(stream) {
        Ok(cred) if cred.uid.as_raw() == uid => true,
        Ok(cred) => {
            tracing::warn!(
                peer_uid = cred.uid.as_raw(),
                allowed_uid = uid,
                "connection from another user refused"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "no peer credentials; connection refused");
            false
        }
    }
}

/// How a standing host ([`serve_clients`]) serves its clients.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The user a client must run as (checked with `SO_PEERCRED`). Default: the host's own
    /// effective uid.
    pub allowed_uid: u32,
    /// Clients served at once; connections beyond are closed at once.
    pub max_clients: usize,
    /// See [`FRAME_TIMEOUT`].
    pub frame_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            allowed_uid: rustix::process::geteuid().as_raw(),
            max_clients: 32,
            frame_timeout: FRAME_TIMEOUT,
        }
    }
}

/// A standing host: listens on `socket_path` (see [`bind_private`]) and serves every
/// allowed client on a thread of its own, each with a fresh secure world from `new_entry`,
/// so that an idle client, a half-sent frame or a client that never reads its replies holds
/// up nobody else. `new_entry(true)` may use the persistent storage; only one client at a
/// time gets that (two secure worlds must not commit to one store), the others get
/// `new_entry(false)` — a secure world without persistent licenses — and a warning in the
/// log. Runs until accepting fails; the socket file is removed on return.
pub fn serve_clients<E, Er, F>(
    socket_path: &Path,
    options: &ServeOptions,
    new_entry: F,
) -> io::Result<()>
where
    E: Entry,
    Er: std::fmt::Display,
    F: Fn(bool) -> Result<E, Er> + Send + Sync + 'static,
{
    let listener = bind_private(socket_path)?;
    tracing::info!(socket = %socket_path.display(), "listening for clients");
    let new_entry = Arc::new(new_entry);
    let active = Arc::new(AtomicUsize::new(0));
    let storage_taken = Arc::new(AtomicBool::new(false));
    let result = (|| {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if !peer_is(&stream, options.allowed_uid) {
                continue;
            }
            if active.load(Ordering::SeqCst) >= options.max_clients {
                tracing::warn!(
                    max = options.max_clients,
                    "too many clients; connection closed"
                );
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let (new_entry, active_t, storage_t) = (
                Arc::clone(&new_entry),
                Arc::clone(&active),
                Arc::clone(&storage_taken),
            );
            let frame_timeout = options.frame_timeout;
            let spawned = std::thread::Builder::new()
                .name("secure-world-client".into())
                .spawn(move || {
                    let lease = storage_t
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                    match new_entry(lease) {
                        Ok(mut entry) => {
                            tracing::info!("client connected; new secure world");
                            match serve_connection_with(stream, &mut entry, frame_timeout) {
                                Ok(()) => tracing::info!("client disconnected"),
                                Err(e) => tracing::warn!(error = %e, "connection dropped"),
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "cannot build a secure world"),
                    }
                    if lease {
                        storage_t.store(false, Ordering::SeqCst);
                    }
                    active_t.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a client thread");
                active.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(socket_path);
    result
}

/// Listens on `socket_path` (see [`bind_private`]) and serves clients of this user one after
/// the other, each with a fresh secure world from `new_entry` (a new connection is a new CDM
/// instance: nothing survives a disconnect). With `once`, returns after the first connection
/// ends (how a player's own host runs); a standing host uses [`serve_clients`]. The socket
/// file is removed on return.
pub fn serve_unix_socket<E: Entry, Er: std::fmt::Display, F>(
    socket_path: &Path,
    once: bool,
    mut new_entry: F,
) -> io::Result<()>
where
    F: FnMut() -> Result<E, Er>,
{
    let listener = bind_private(socket_path)?;
    let allowed_uid = rustix::process::geteuid().as_raw();
    tracing::info!(socket = %socket_path.display(), once, "listening");
    let result = (|| {
        for stream in listener.incoming() {
            let stream = stream?;
            if !peer_is(&stream, allowed_uid) {
                continue;
            }
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

/// Environment variable arming the crash-test hook (`hal::platform::crash_test`): the host
/// kills itself with SIGKILL at that durable storage step. For crash-consistency tests only.
pub const KILL_AT_STORAGE_STEP_ENV: &str = "TEE_CDM_KILL_AT_STORAGE_STEP";

/// Whether `args` (without the program name) ask for the host: they contain `--socket`.
pub fn is_host_invocation(args: &[OsString]) -> bool {
    args.iter().any(|a| a == "--socket")
}

/// The command line of the host.
#[derive(Debug, clap::Parser)]
#[command(
    name = "secure-world-host",
    about = "The tee-cdm secure world in its own process, serving the message ABI on a Unix socket."
)]
struct HostArgs {
    /// The Unix domain socket to listen on (created with mode 0600).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Exit after the first client disconnects (how `SocketTransport::spawn` runs the host).
    #[arg(long)]
    once: bool,
    /// Keep persistent licenses in this directory.
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,
    /// Serve clients running as this user [default: the host's own].
    #[arg(long, value_name = "UID")]
    allow_uid: Option<u32>,
    /// Clients served at once [default: 32].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: Option<u32>,
    /// How long a client may stall inside a frame before it is dropped [default: 10000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    frame_timeout_ms: Option<u64>,
    /// The `org.teecdm.protected` root public key to pin (65 bytes, the server's `root.pub`).
    #[arg(long, value_name = "FILE")]
    protected_root: Option<PathBuf>,
    /// Test emulation: trusted time is read from this file (milliseconds since the epoch).
    #[arg(long, value_name = "FILE")]
    emulated_clock: Option<PathBuf>,
    /// Test emulation: the output's HDCP version is read from this file.
    #[arg(long, value_name = "FILE")]
    emulated_hdcp: Option<PathBuf>,
}

/// Runs the host: `--socket PATH [--once] [--storage DIR] [--allow-uid UID] [--max-clients N]
/// [--frame-timeout-ms MS] [--protected-root FILE] [--emulated-clock FILE]
/// [--emulated-hdcp FILE]` (`--help` lists them).
/// Listens on the Unix domain socket `PATH` (mode 0600; only clients running as `UID`, by
/// default the host's own user, are served) and serves the message ABI, each client on its
/// own thread with a fresh secure world (nothing but stored persistent licenses survives a
/// disconnect; see [`serve_clients`] for the storage rule). With `--storage` the secure
/// world keeps persistent licenses in `DIR` (see [`host_world_in`]); the environment variable
/// [`KILL_AT_STORAGE_STEP_ENV`] arms the crash-test hook. With `--once` it exits after the
/// first client disconnects (how `SocketTransport::spawn` runs it). Logs go to stderr,
/// filtered by `RUST_LOG` (default `warn`). A command line it cannot use exits with status 2.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let program = std::iter::once(OsString::from("secure-world-host"));
    let args = match <HostArgs as clap::Parser>::try_parse_from(program.chain(args)) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let mut settings = HostSettings {
        storage: args.storage,
        emulated_clock: args.emulated_clock,
        emulated_hdcp: args.emulated_hdcp,
        ..HostSettings::default()
    };
    if let Some(path) = &args.protected_root {
        if let Err(e) = settings.read_protected_root(path) {
            eprintln!("secure-world-host: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut options = ServeOptions::default();
    if let Some(uid) = args.allow_uid {
        options.allowed_uid = uid;
    }
    if let Some(n) = args.max_clients {
        options.max_clients = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(ms) = args.frame_timeout_ms {
        options.frame_timeout = Duration::from_millis(ms);
    }
    let (socket, once) = (args.socket, args.once);
    if let Some(n) = std::env::var_os(KILL_AT_STORAGE_STEP_ENV) {
        match n.to_str().and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => hal::platform::crash_test::kill_at_storage_step(n),
            None => {
                eprintln!("secure-world-host: {KILL_AT_STORAGE_STEP_ENV} is not a step number");
                return ExitCode::from(2);
            }
        }
    }
    // Fail before listening if the secure world cannot be built at all.
    if let Err(e) = host_world_with(&settings) {
        eprintln!("secure-world-host: {e}");
        return ExitCode::FAILURE;
    }
    let served = if once {
        serve_unix_socket(&socket, true, || host_world_with(&settings))
    } else {
        serve_clients(&socket, &options, move |with_storage| {
            if settings.storage.is_some() && !with_storage {
                tracing::warn!(
                    "storage in use by another client: this one gets no persistent licenses"
                );
            }
            let mut these = settings.clone();
            if !with_storage {
                these.storage = None;
            }
            host_world_with(&these)
        })
    };
    match served {
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
    fn command_line_options_parse_and_unusable_ones_are_refused() {
        use clap::Parser;
        let a = HostArgs::try_parse_from([
            "secure-world-host",
            "--socket",
            "/s",
            "--once",
            "--storage",
            "/d",
            "--allow-uid",
            "7",
            "--max-clients",
            "3",
            "--frame-timeout-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(a.socket, PathBuf::from("/s"));
        assert!(a.once);
        assert_eq!(a.storage, Some(PathBuf::from("/d")));
        assert_eq!(
            (a.allow_uid, a.max_clients, a.frame_timeout_ms),
            (Some(7), Some(3), Some(250))
        );
        for bad in [
            &[][..],
            &["--socket"],
            &["--once"],
            &["--socket", "/s", "--max-clients", "0"],
            &["--socket", "/s", "--frame-timeout-ms", "0"],
            &["--socket", "/s", "--allow-uid", "me"],
            &["--socket", "/s", "--storage"],
            &["--socket", "/s", "--bogus"],
        ] {
            let line = std::iter::once(&"secure-world-host").chain(bad);
            assert!(HostArgs::try_parse_from(line).is_err(), "{bad:?}");
        }
    }

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
