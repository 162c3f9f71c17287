//! The secure world in its own process, over a Unix domain socket: the client side.
//!
//! Frames carry the ABI bytes unchanged, as `cdm_core::abi::frame` defines them; the host
//! sends the sample back exactly when the response reports a decrypt in place, so the
//! reply's sample is either exactly as long as the one sent (and then due) or empty (the
//! caller's buffer is left as it is). A frame that breaks these rules ends the connection
//! (the stream cannot be resynchronized).
//!
//! [`SocketTransport`] either spawns the host binary (`secure-world-host`, from the crate of
//! that name) and owns the process, or connects to a host already listening. Reads and writes time out ([`DEFAULT_TIMEOUT`]), so a stuck host never
//! hangs the player; any I/O error or timeout breaks the transport for good.

use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdm_core::abi::frame::{read_chunk, read_len, returns_sample, write_chunk, MAX_MESSAGE_FRAME};
use cdm_core::abi::limits::MAX_SAMPLE_LEN;

use rustix::event::{PollFd, PollFlags};

use super::{LivenessWatch, Transport, TransportError};

/// Read/write timeout of a [`SocketTransport`] call unless set otherwise, plus
/// [`TIMEOUT_PER_MIB`] for each MiB of sample: short enough that a stuck host is noticed in
/// seconds, long enough for a 16 MiB sample on a slow (emulated) machine (21 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a call's timeout grows by per MiB of sample.
pub const TIMEOUT_PER_MIB: Duration = Duration::from_secs(1);

/// How long [`SocketTransport::spawn`] waits for the host to listen.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A handle on a spawned `secure-world-host` process, shared with the transport that owns
/// it. Lets tests and supervisors observe or kill the secure world.
#[derive(Clone, Debug)]
pub struct HostProcess {
    child: Arc<Mutex<Child>>,
    id: u32,
}

impl HostProcess {
    /// The host's process id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Kills the host (SIGKILL) and reaps it. Killing an already exited host is not an error.
    pub fn kill(&self) -> io::Result<()> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if child.try_wait()?.is_none() {
            child.kill()?;
        }
        child.wait().map(|_| ())
    }

    /// Whether the host process is still running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    /// Waits up to `grace` for the host to exit by itself, then kills it.
    fn shut_down(&self, grace: Duration) {
        let deadline = Instant::now().checked_add(grace);
        loop {
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if deadline.is_none_or(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => {}
            }
            drop(child);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A [`Transport`] to a secure world hosted in another process.
#[derive(Debug)]
pub struct SocketTransport {
    stream: Option<UnixStream>,
    timeout: Duration,
    /// Set when the transport spawned the host; the host is shut down on drop.
    host: Option<HostProcess>,
    /// Private directory (mode 0700) holding the socket of a spawned host; removed on drop.
    socket_dir: Option<PathBuf>,
    /// The timeout the socket is set to now.
    current_timeout: Option<Duration>,
    /// A liveness probe's deadline, replacing the timeouts while set.
    probe_deadline: Option<Duration>,
    /// Reply sample, read here first so a broken reply never half-overwrites the caller's.
    /// It holds clear samples: wiped before it grows and on drop.
    scratch: zeroize::Zeroizing<Vec<u8>>,
    /// Why the transport broke, once it has.
    broken: Option<String>,
    /// The shared region, once [`SocketTransport::with_shared_memory`] handed it over.
    shared: Option<Shared>,
}

/// The shared-memory side of a [`SocketTransport`].
struct Shared {
    region: cdm_shm::Region,
    /// The last request's sequence number.
    seq: u32,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("seq", &self.seq).finish()
    }
}

impl SocketTransport {
    /// Connects to a host already listening on `socket_path`.
    pub fn connect(socket_path: impl AsRef<Path>) -> Result<SocketTransport, TransportError> {
        let stream = UnixStream::connect(socket_path.as_ref())
            .map_err(|e| TransportError::Setup(format!("connect: {e}")))?;
        SocketTransport::from_stream(stream, DEFAULT_TIMEOUT)
    }

    /// Spawns the host binary at `host_binary` (`secure-world-host`) on a fresh socket in the
    /// temporary directory and connects to it. The host serves this one connection and exits
    /// when it closes; the transport also shuts it down on drop.
    pub fn spawn(host_binary: impl AsRef<Path>) -> Result<SocketTransport, TransportError> {
        Self::spawn_command(Command::new(host_binary.as_ref()))
    }

    /// [`Self::spawn`] with a command the caller prepared: its program, extra arguments (e.g.
    /// `--storage DIR`) and environment are kept; `--socket PATH --once` is appended and
    /// stdin and stdout are closed.
    pub fn spawn_command(mut command: Command) -> Result<SocketTransport, TransportError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // A directory only this user can enter, so nobody else can reach the socket, even
        // before the host has set its mode.
        let dir = std::env::temp_dir().join(format!(
            "tee-cdm-{}-{}-{nonce:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| TransportError::Setup(format!("create {}: {e}", dir.display())))?;
        let path = dir.join("host.sock");
        let child = command
            .arg("--socket")
            .arg(&path)
            .arg("--once")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                remove_socket_dir(&dir);
                TransportError::Setup(format!(
                    "spawn {}: {e}",
                    Path::new(command.get_program()).display()
                ))
            })?;
        let host = HostProcess {
            id: child.id(),
            child: Arc::new(Mutex::new(child)),
        };
        let deadline = Instant::now().checked_add(STARTUP_TIMEOUT);
        let stream = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) => {
                    if !host.is_running() {
                        remove_socket_dir(&dir);
                        return Err(TransportError::Setup(format!(
                            "secure-world-host exited before listening ({e})"
                        )));
                    }
                    if deadline.is_none_or(|d| Instant::now() >= d) {
                        host.shut_down(Duration::ZERO);
                        remove_socket_dir(&dir);
                        return Err(TransportError::Setup(format!(
                            "secure-world-host did not listen within {STARTUP_TIMEOUT:?}"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        let mut t = SocketTransport::from_stream(stream, DEFAULT_TIMEOUT)?;
        t.host = Some(host);
        t.socket_dir = Some(dir);
        Ok(t)
    }

    fn from_stream(
        stream: UnixStream,
        timeout: Duration,
    ) -> Result<SocketTransport, TransportError> {
        let mut t = SocketTransport {
            stream: Some(stream),
            timeout,
            host: None,
            socket_dir: None,
            current_timeout: None,
            probe_deadline: None,
            scratch: zeroize::Zeroizing::new(Vec::new()),
            broken: None,
            shared: None,
        };
        t.set_timeout(timeout)?;
        Ok(t)
    }

    /// Changes the base read and write timeout of a call (must be non-zero); a call with a
    /// sample gets [`TIMEOUT_PER_MIB`] more per MiB.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), TransportError> {
        if timeout.is_zero() {
            return Err(TransportError::Setup("timeout must be non-zero".into()));
        }
        self.timeout = timeout;
        self.apply_timeout(timeout)
    }

    /// Sets the socket's read and write timeouts to `timeout`, unless they already are.
    fn apply_timeout(&mut self, timeout: Duration) -> Result<(), TransportError> {
        if self.current_timeout == Some(timeout) {
            return Ok(());
        }
        if let Some(s) = &self.stream {
            s.set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map_err(|e| TransportError::Setup(format!("set timeout: {e}")))?;
        }
        self.current_timeout = Some(timeout);
        Ok(())
    }

    /// The timeout of a call with a sample of `len` bytes.
    fn call_timeout(&self, len: usize) -> Duration {
        if let Some(d) = self.probe_deadline {
            return d;
        }
        let mib = u32::try_from(len >> 20).unwrap_or(u32::MAX);
        self.timeout
            .saturating_add(TIMEOUT_PER_MIB.saturating_mul(mib))
    }

    /// Switches to the shared-memory protocol (`docs/abi.md`, "Shared memory"): creates a
    /// sealed region for requests, responses and samples, hands it to the host over the
    /// socket, and from then on rings a doorbell in it instead of writing frames. Samples
    /// are copied in and out of the region (the host decrypts them there); the socket only
    /// carries the connection's end. Must be the first thing sent on the connection.
    pub fn with_shared_memory(mut self) -> Result<SocketTransport, TransportError> {
        let stream = self
            .stream
            .as_ref()
            .ok_or_else(|| TransportError::Disconnected("not connected".into()))?;
        let region = cdm_shm::Region::create().map_err(|e| TransportError::Setup(e.to_string()))?;
        cdm_shm::send_region(stream, &region).map_err(|e| TransportError::Setup(e.to_string()))?;
        self.shared = Some(Shared { region, seq: 0 });
        Ok(self)
    }

    /// The shared region's descriptor, once there is one. The region is this process's own
    /// memory, shared with the host; tests use this to play a hostile normal world that
    /// changes it during calls.
    pub fn shared_region_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.shared.as_ref().map(|s| s.region.fd())
    }

    /// Whether calls go through shared memory.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The spawned host process, if this transport spawned one.
    pub fn host(&self) -> Option<HostProcess> {
        self.host.clone()
    }

    /// One call, its sizes checked: through the shared region once there is one (the only
    /// place for a sample in the sample area), else as frames on the socket.
    fn exchange(
        &mut self,
        request: &[u8],
        sample: AreaSample<'_>,
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        // The sample area exists only in shared memory: without it, that comes first, as in
        // the trait's default `call_in_area`.
        if matches!(sample, AreaSample::InArea(_)) && self.shared.is_none() {
            return Err(TransportError::Setup("no shared memory".into()));
        }
        if request.len() > MAX_MESSAGE_FRAME {
            return Err(TransportError::FrameTooLarge(format!(
                "request of {} bytes",
                request.len()
            )));
        }
        if sample.len() > MAX_SAMPLE_LEN {
            return Err(TransportError::FrameTooLarge(format!(
                "sample of {} bytes",
                sample.len()
            )));
        }
        let timeout = self.call_timeout(sample.len());
        let sample = match sample {
            _ if self.shared.is_some() => {
                return self.exchange_shared(request, sample, response, timeout)
            }
            AreaSample::Copy(sample) => sample,
            AreaSample::InArea(_) => return Err(TransportError::Setup("no shared memory".into())),
        };
        self.apply_timeout(timeout)?;
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| TransportError::Disconnected("not connected".into()))?;
        let io = |e: io::Error| io_error(e, timeout);
        write_chunk(stream, request).map_err(io)?;
        write_chunk(stream, sample).map_err(io)?;
        stream.flush().map_err(io)?;
        read_chunk(stream, MAX_MESSAGE_FRAME, response).map_err(io)?;
        // The sample comes back exactly when the response reports an in-place decrypt;
        // otherwise the reply's sample is empty and the caller's buffer stays as it is.
        let expected = if returns_sample(response) {
            sample.len()
        } else {
            0
        };
        match read_len(stream, sample.len()).map_err(io)? {
            0 if expected == 0 => Ok(()),
            n if n == expected => {
                if self.scratch.capacity() < n {
                    zeroize::Zeroize::zeroize(&mut *self.scratch);
                    *self.scratch = Vec::new();
                    self.scratch.try_reserve_exact(n).map_err(|_| {
                        TransportError::FrameTooLarge(format!("no memory for {n} bytes"))
                    })?;
                }
                self.scratch.clear();
                self.scratch.resize(n, 0);
                stream.read_exact(&mut self.scratch).map_err(io)?;
                sample.copy_from_slice(&self.scratch);
                Ok(())
            }
            n => Err(TransportError::FrameTooLarge(format!(
                "reply sample of {n} bytes where {expected} were due"
            ))),
        }
    }
}

impl SocketTransport {
    /// One call through the shared region (the sizes were checked by the caller).
    fn exchange_shared(
        &mut self,
        request: &[u8],
        sample: AreaSample<'_>,
        response: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        use cdm_shm::{word, Doorbell, Rung, LAYOUT};
        use std::sync::atomic::Ordering;
        let (Some(shared), Some(stream)) = (self.shared.as_mut(), self.stream.as_ref()) else {
            return Err(TransportError::Disconnected("not connected".into()));
        };
        let host = self.host.clone();
        let region = &shared.region;
        let fail = |e: cdm_shm::ShmError| TransportError::FrameTooLarge(e.to_string());
        let len32 = |n: usize| {
            u32::try_from(n).map_err(|_| TransportError::FrameTooLarge(format!("{n} bytes")))
        };
        let sample_len = sample.len();
        region.write(LAYOUT.request, request).map_err(fail)?;
        if let AreaSample::Copy(s) = &sample {
            region.write(LAYOUT.sample, s).map_err(fail)?;
        }
        region
            .word(word::REQ_LEN)
            .map_err(fail)?
            .store(len32(request.len())?, Ordering::Release);
        region
            .word(word::SAMPLE_LEN)
            .map_err(fail)?
            .store(len32(sample_len)?, Ordering::Release);
        let old = shared.seq;
        let seq = old.wrapping_add(1);
        shared.seq = seq;
        Doorbell::ring(region, word::REQ_SEQ, word::HOST_WAITING, seq).map_err(fail)?;
        let deadline = Instant::now().checked_add(timeout);
        let rung = Doorbell::wait(
            region,
            word::RESP_SEQ,
            word::PLAYER_WAITING,
            old,
            deadline,
            || cdm_shm::hung_up(stream) || host.as_ref().is_some_and(|h| !h.is_running()),
        )
        .map_err(fail)?;
        // The request carried a license (keys in clear, for Clear Key): wipe it from the
        // region whatever happened.
        let wiped = wipe(region, LAYOUT.request, request.len());
        match rung {
            Rung::Value(v) if v == seq => {}
            Rung::Value(v) => {
                return Err(TransportError::FrameTooLarge(format!(
                    "response to request {v}, not {seq}"
                )))
            }
            Rung::TimedOut => return Err(TransportError::Timeout(timeout)),
            Rung::PeerGone => {
                return Err(TransportError::Disconnected(
                    "the secure world's connection closed".into(),
                ))
            }
        }
        wiped.map_err(fail)?;
        let load = |i| region.word(i).map(|w| w.load(Ordering::Acquire));
        let response_len =
            cdm_shm::check_message_len(load(word::RESP_LEN).map_err(fail)?).map_err(fail)?;
        response.clear();
        response.resize(response_len, 0);
        region.read(LAYOUT.response, response).map_err(fail)?;
        let expected = if returns_sample(response) {
            sample_len
        } else {
            0
        };
        let back = load(word::SAMPLE_BACK).map_err(fail)?;
        if usize::try_from(back).ok() != Some(expected) {
            return Err(TransportError::FrameTooLarge(format!(
                "reply sample of {back} bytes where {expected} were due"
            )));
        }
        if let (AreaSample::Copy(s), true) = (sample, expected > 0) {
            region.read(LAYOUT.sample, s).map_err(fail)?;
        }
        Ok(())
    }

    /// Runs `f`, and breaks the transport for good if it fails.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut SocketTransport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        if let Some(why) = &self.broken {
            return Err(TransportError::Disconnected(why.clone()));
        }
        let result = f(self);
        if let Err(e) = &result {
            // The stream's position within a frame is unknown: never use it again.
            self.broken = Some(e.to_string());
            if let Some(s) = self.stream.take() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        result
    }
}

/// The sample of a shared-memory call: the caller's buffer (copied in and out) or the first
/// bytes of the region's sample area, where the caller put it.
enum AreaSample<'s> {
    Copy(&'s mut [u8]),
    InArea(usize),
}

impl AreaSample<'_> {
    fn len(&self) -> usize {
        match self {
            AreaSample::Copy(s) => s.len(),
            AreaSample::InArea(n) => *n,
        }
    }
}

/// Overwrites `len` bytes of `region` at `at` with zeros.
fn wipe(region: &cdm_shm::Region, at: usize, len: usize) -> Result<(), cdm_shm::ShmError> {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut done = 0usize;
    while done < len {
        let n = len.saturating_sub(done).min(ZEROS.len());
        region.write(at.saturating_add(done), ZEROS.get(..n).unwrap_or_default())?;
        done = done.saturating_add(n);
    }
    Ok(())
}

impl Transport for SocketTransport {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.guarded(|t| t.exchange(request, AreaSample::Copy(sample), response))
    }

    fn sample_area(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.broken.is_some() {
            return None;
        }
        self.shared.as_mut()?.region.sample_mut(len).ok()
    }

    fn call_in_area(
        &mut self,
        request: &[u8],
        sample_len: usize,
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        self.guarded(|t| t.exchange(request, AreaSample::InArea(sample_len), response))
    }

    fn liveness_watch(&self) -> Option<Box<dyn LivenessWatch>> {
        let stream = self.stream.as_ref()?.try_clone().ok()?;
        Some(Box::new(SocketWatch {
            stream,
            host: self.host.clone(),
        }))
    }

    fn set_probe_deadline(&mut self, deadline: Option<Duration>) {
        self.probe_deadline = deadline;
    }
}

/// [`SocketTransport`]'s liveness watch: the connection hanging up, or the spawned host
/// process exiting.
struct SocketWatch {
    /// A second handle on the connection, only polled (never read or written).
    stream: UnixStream,
    host: Option<HostProcess>,
}

impl LivenessWatch for SocketWatch {
    fn wait_gone(&mut self, timeout: Duration) -> Option<String> {
        // Only the peer hanging up (and errors, always reported) wake this: replies in
        // flight (readable data) belong to the caller.
        let mut fds = [PollFd::new(&self.stream, PollFlags::RDHUP)];
        let ts = rustix::event::Timespec::try_from(timeout).ok();
        let hung_up = match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => false,
            Ok(_) => fds.iter().any(|f| {
                f.revents()
                    .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR)
            }),
            Err(e) => return Some(format!("watching the connection failed: {e}")),
        };
        if hung_up {
            return Some("the secure world's connection closed".into());
        }
        match &self.host {
            Some(h) if !h.is_running() => Some("the secure-world-host process exited".into()),
            _ => None,
        }
    }
}

impl Drop for SocketTransport {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(host) = self.host.take() {
            // The host exits when its connection closes; give it a moment to wipe its keys.
            host.shut_down(Duration::from_secs(1));
        }
        if let Some(dir) = self.socket_dir.take() {
            remove_socket_dir(&dir);
        }
    }
}

/// Removes the private directory of a spawned host's socket, and the socket.
fn remove_socket_dir(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("host.sock"));
    let _ = std::fs::remove_dir(dir);
}

fn io_error(e: io::Error, timeout: Duration) -> TransportError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::Timeout(timeout),
        io::ErrorKind::InvalidData => TransportError::FrameTooLarge(e.to_string()),
        _ => TransportError::Disconnected(e.to_string()),
    }
}
