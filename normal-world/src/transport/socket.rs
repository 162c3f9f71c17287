//! The secure world in its own process, over a Unix domain socket.
//!
//! Frames carry the ABI bytes unchanged (little-endian lengths):
//!
//! | direction | frame |
//! |---|---|
//! | client → host | `u32` request length, request message, `u32` sample length, sample |
//! | host → client | `u32` response length, response message, `u32` sample length, sample |
//!
//! The sample comes back in the reply because decryption is in place. Both sides bound every
//! length before allocating: a message is at most [`HEADER_LEN`] + [`MAX_PAYLOAD_LEN`] bytes,
//! a sample at most [`MAX_SAMPLE_LEN`], and the reply's sample must be exactly as long as the
//! request's. A frame that breaks a bound ends the connection (the stream cannot be
//! resynchronized).
//!
//! The client side ([`SocketTransport`]) either spawns the host binary
//! (`secure-world-host`, built from this crate) and owns the process, or connects to a host
//! already listening. Reads and writes time out ([`DEFAULT_TIMEOUT`]), so a stuck host never
//! hangs the player; any I/O error or timeout breaks the transport for good.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdm_core::abi::limits::{MAX_PAYLOAD_LEN, MAX_SAMPLE_LEN};
use cdm_core::abi::HEADER_LEN;

use super::{Transport, TransportError};

/// Read/write timeout of a [`SocketTransport`] unless set otherwise. Long enough for a 16 MiB
/// sample on a slow (emulated) machine, short enough that a stuck host is noticed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long [`SocketTransport::spawn`] waits for the host to listen.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest message (request or response) a frame may carry.
const MAX_MESSAGE_FRAME: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

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
        let deadline = Instant::now() + grace;
        loop {
            let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
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
    /// Socket file created for a spawned host; removed on drop.
    socket_path: Option<PathBuf>,
    /// Reply sample, read here first so a broken reply never half-overwrites the caller's.
    scratch: Vec<u8>,
    /// Why the transport broke, once it has.
    broken: Option<String>,
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
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "tee-cdm-{}-{}-{nonce:x}.sock",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new(host_binary.as_ref())
            .arg("--socket")
            .arg(&path)
            .arg("--once")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                TransportError::Setup(format!("spawn {}: {e}", host_binary.as_ref().display()))
            })?;
        let host = HostProcess {
            id: child.id(),
            child: Arc::new(Mutex::new(child)),
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) => {
                    if !host.is_running() {
                        let _ = std::fs::remove_file(&path);
                        return Err(TransportError::Setup(format!(
                            "secure-world-host exited before listening ({e})"
                        )));
                    }
                    if Instant::now() >= deadline {
                        host.shut_down(Duration::ZERO);
                        let _ = std::fs::remove_file(&path);
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
        t.socket_path = Some(path);
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
            socket_path: None,
            scratch: Vec::new(),
            broken: None,
        };
        t.set_timeout(timeout)?;
        Ok(t)
    }

    /// Changes the read and write timeout (must be non-zero).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), TransportError> {
        if timeout.is_zero() {
            return Err(TransportError::Setup("timeout must be non-zero".into()));
        }
        if let Some(s) = &self.stream {
            s.set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map_err(|e| TransportError::Setup(format!("set timeout: {e}")))?;
        }
        self.timeout = timeout;
        Ok(())
    }

    /// The spawned host process, if this transport spawned one.
    pub fn host(&self) -> Option<HostProcess> {
        self.host.clone()
    }

    fn exchange(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
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
        let timeout = self.timeout;
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| TransportError::Disconnected("not connected".into()))?;
        let io = |e: io::Error| io_error(e, timeout);
        write_chunk(stream, request).map_err(io)?;
        write_chunk(stream, sample).map_err(io)?;
        stream.flush().map_err(io)?;
        read_chunk(stream, MAX_MESSAGE_FRAME, response).map_err(io)?;
        read_chunk(stream, sample.len(), &mut self.scratch).map_err(io)?;
        if self.scratch.len() != sample.len() {
            return Err(TransportError::FrameTooLarge(format!(
                "reply sample of {} bytes for a {}-byte sample",
                self.scratch.len(),
                sample.len()
            )));
        }
        sample.copy_from_slice(&self.scratch);
        Ok(())
    }
}

impl Transport for SocketTransport {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        if let Some(why) = &self.broken {
            return Err(TransportError::Disconnected(why.clone()));
        }
        let result = self.exchange(request, sample, response);
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

impl Drop for SocketTransport {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(host) = self.host.take() {
            // The host exits when its connection closes; give it a moment to wipe its keys.
            host.shut_down(Duration::from_secs(1));
        }
        if let Some(path) = self.socket_path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn io_error(e: io::Error, timeout: Duration) -> TransportError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransportError::Timeout(timeout),
        io::ErrorKind::InvalidData => TransportError::FrameTooLarge(e.to_string()),
        _ => TransportError::Disconnected(e.to_string()),
    }
}

fn write_chunk(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)
}

/// Reads one length-prefixed chunk of at most `max` bytes into `out` (replacing its
/// contents). The length is checked before anything is allocated.
fn read_chunk(r: &mut impl Read, max: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = usize::try_from(u32::from_le_bytes(len))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "length overflow"))?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("chunk of {len} bytes exceeds the limit of {max}"),
        ));
    }
    out.clear();
    out.try_reserve(len)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    out.resize(len, 0);
    r.read_exact(out)
}

/// Serves one client connection: reads request frames, runs them through `backend` (the
/// secure world), writes the replies. Returns when the client disconnects (`Ok`) or sends a
/// frame that breaks the bounds (`Err`; the connection is then dropped).
pub fn serve_connection(mut stream: UnixStream, backend: &mut dyn Transport) -> io::Result<()> {
    let mut request = Vec::new();
    let mut sample = Vec::new();
    let mut response = Vec::new();
    loop {
        match read_chunk(&mut stream, MAX_MESSAGE_FRAME, &mut request) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        read_chunk(&mut stream, MAX_SAMPLE_LEN, &mut sample)?;
        backend
            .call(&request, &mut sample, &mut response)
            .map_err(|e| io::Error::other(e.to_string()))?;
        write_chunk(&mut stream, &response)?;
        write_chunk(&mut stream, &sample)?;
        stream.flush()?;
    }
}

/// Listens on `socket_path` and serves clients one after the other, each with a fresh
/// secure world from `new_backend` (a new connection is a new CDM instance: nothing survives
/// a disconnect). With `once`, returns after the first connection ends. The socket file is
/// removed on return.
pub fn serve_unix_socket(
    socket_path: &Path,
    once: bool,
    mut new_backend: impl FnMut() -> Result<Box<dyn Transport>, TransportError>,
) -> io::Result<()> {
    let listener = UnixListener::bind(socket_path)?;
    let result = (|| {
        for stream in listener.incoming() {
            let stream = stream?;
            if once {
                // Nobody else may connect to a one-shot host.
                let _ = std::fs::remove_file(socket_path);
            }
            let mut backend = match new_backend() {
                Ok(b) => b,
                Err(e) => {
                    // The client sees the connection close: its transport reports it lost.
                    eprintln!("secure-world-host: cannot build a secure world: {e}");
                    if once {
                        break;
                    }
                    continue;
                }
            };
            if let Err(e) = serve_connection(stream, &mut *backend) {
                eprintln!("secure-world-host: connection dropped: {e}");
            }
            drop(backend);
            if once {
                break;
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(socket_path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_chunk_rejects_oversize_length_before_allocating() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        let err = read_chunk(&mut frame.as_slice(), 100, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn chunks_round_trip_and_truncation_is_eof() {
        let mut buf = Vec::new();
        write_chunk(&mut buf, b"hello").unwrap();
        let mut out = Vec::new();
        read_chunk(&mut buf.as_slice(), 5, &mut out).unwrap();
        assert_eq!(out, b"hello");
        let err = read_chunk(&mut buf.get(..7).unwrap(), 5, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_chunk(&mut buf.as_slice(), 4, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
