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
pub use socket::{HostProcess, SocketTransport, DEFAULT_TIMEOUT};

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
}
