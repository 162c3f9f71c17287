//! Transports: how ABI messages reach the secure world.
//!
//! A transport moves one request message (and the shared sample buffer) to the secure world
//! and brings back one response message (and the sample, decrypted in place when the
//! operation does so). It does not interpret the messages: encoding, decoding and every check
//! of their content happen in [`crate::MediaKeys`] and in the secure world. Implementations:
//!
//! - `InProcessTransport` (cargo feature `in-process`): the secure world linked into this
//!   process; the player's sample buffer is handed to it directly (zero copy).
//! - [`SocketTransport`]: the secure world in its own process (`secure-world-host`), over a
//!   Unix domain socket.

#[cfg(feature = "in-process")]
mod in_process;
mod socket;

#[cfg(feature = "in-process")]
pub use in_process::InProcessTransport;
pub use socket::{HostProcess, SocketTransport, DEFAULT_TIMEOUT, TIMEOUT_PER_MIB};

use std::time::Duration;

use thiserror::Error;

/// Why a transport could not complete a call. Every error is fatal for the transport: after
/// one, the secure world's state is unknown (a request may or may not have run), so
/// [`crate::MediaKeys`] closes its sessions with `hardware-context-reset`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The secure world is gone: its process exited, the connection closed, or an earlier
    /// error broke the transport.
    #[error("secure world disconnected: {0}")]
    Disconnected(String),
    /// The secure world did not answer within the transport's timeout.
    #[error("secure world did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A frame exceeds the ABI limits (sent or received); the connection is dropped.
    #[error("frame too large: {0}")]
    FrameTooLarge(String),
    /// The secure world could not be started or reached.
    #[error("could not start or reach the secure world: {0}")]
    Setup(String),
}

/// A watch on a secure world's liveness that a thread can block on between calls, without
/// holding the transport (see [`Transport::liveness_watch`]).
pub trait LivenessWatch: Send {
    /// Waits up to `timeout`; `Some(reason)` once the secure world is gone (its process
    /// exited, its connection closed), `None` if nothing happened.
    fn wait_gone(&mut self, timeout: Duration) -> Option<String>;
}

/// A channel to one secure-world instance.
///
/// `call` sends the encoded `request` and, for `Decrypt`, the shared `sample` buffer; on
/// return `response` holds the encoded response message (its previous contents replaced) and
/// `sample` holds whatever the secure world left in the shared buffer. Calls are strictly
/// sequential (`&mut self`); [`crate::MediaKeys`] serializes its users behind a mutex.
pub trait Transport: Send {
    /// Performs one request/response exchange.
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError>;

    /// A watch that notices the secure world's end between calls, for transports whose
    /// secure world can end (another process). `MediaKeys` runs it on a thread of its own, so
    /// that sessions are closed and their events queued as soon as the secure world is gone,
    /// not at the player's next call. Default: none (a linked-in secure world cannot vanish).
    fn liveness_watch(&self) -> Option<Box<dyn LivenessWatch>> {
        None
    }

    /// Bounds the time of the following calls (a liveness probe: a frozen secure world must
    /// be noticed quickly), or with `None` returns to the transport's own limits.
    fn set_probe_deadline(&mut self, deadline: Option<Duration>) {
        let _ = deadline;
    }

    /// Where a sample of `len` bytes can be put so that the secure world decrypts it without
    /// a copy (the shared region's sample area), for [`Transport::call_in_area`]; `None` when
    /// the transport has no such place (default).
    fn sample_area(&mut self, len: usize) -> Option<&mut [u8]> {
        let _ = len;
        None
    }

    /// [`Transport::call`] for a sample that already lies in the first `sample_len` bytes of
    /// [`Transport::sample_area`] (and stays there, decrypted in place when the response says
    /// so). Default: refused, as there is no sample area.
    fn call_in_area(
        &mut self,
        request: &[u8],
        sample_len: usize,
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        let _ = (request, sample_len, response);
        Err(TransportError::Setup(
            "this transport has no sample area".into(),
        ))
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        (**self).call(request, sample, response)
    }

    fn liveness_watch(&self) -> Option<Box<dyn LivenessWatch>> {
        (**self).liveness_watch()
    }

    fn set_probe_deadline(&mut self, deadline: Option<Duration>) {
        (**self).set_probe_deadline(deadline);
    }

    fn sample_area(&mut self, len: usize) -> Option<&mut [u8]> {
        (**self).sample_area(len)
    }

    fn call_in_area(
        &mut self,
        request: &[u8],
        sample_len: usize,
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        (**self).call_in_area(request, sample_len, response)
    }
}
