//! Why a bench helper could not run.
//!
//! Every bench, the report and the tests abort on the first [`BenchError`]: a number measured
//! on a failing call, or on a path that decrypts wrongly, would be worse than none.

use std::path::PathBuf;

use cdm_core::abi::{AbiError, Opcode, Status};
use cdm_core::clearkey::ClearKeyError;
use ctr::cipher::StreamCipherError;
use hal::cenc::CencError;
use normal_world::transport::TransportError;
use normal_world::EmeError;
use openssl::error::ErrorStack;
use secure_world::ConfigError;

/// Why a bench helper could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The sample description was refused by `hal::cenc`.
    #[error("hal::cenc refused the sample: {0}")]
    Cenc(#[from] CencError),
    /// OpenSSL reported an error.
    #[error("OpenSSL error: {0}")]
    Openssl(#[from] ErrorStack),
    /// The RustCrypto stream cipher refused to seek or to apply its keystream. (Not a
    /// `source`: without `cipher`'s `std` feature the type is no `Error`.)
    #[error("RustCrypto error: {0}")]
    RustCrypto(StreamCipherError),
    /// A buffer has the wrong length for the operation.
    #[error("buffer of {got} bytes, the operation needs {expected}")]
    Length {
        /// What the operation needs.
        expected: usize,
        /// What it got.
        got: usize,
    },
    /// A sample is longer than a subsample entry or the ABI's sample length (`u32`) can say.
    #[error("a {0}-byte sample is longer than a u32 can describe")]
    SampleTooLong(usize),
    /// The secure world refused its configuration.
    #[error("secure world: {0}")]
    SecureWorld(#[from] ConfigError),
    /// An ABI message could not be encoded, or the secure world's answer could not be parsed.
    #[error("ABI message: {0}")]
    Abi(#[from] AbiError),
    /// The secure world answered an operation with an error status.
    #[error("{opcode:?}: the secure world answered {status:?}")]
    Refused {
        /// The operation.
        opcode: Opcode,
        /// The status it answered.
        status: Status,
    },
    /// An EME call (`MediaKeys`, `MediaKeySession`) failed.
    #[error("EME error: {0}")]
    Eme(#[from] EmeError),
    /// The `secure-world-host` process could not be started or connected to.
    #[error("spawn {}: {source}", .host.display())]
    Spawn {
        /// The host binary.
        host: PathBuf,
        /// What the transport reported.
        source: TransportError,
    },
    /// The Clear Key license server could not parse a license request or build the license.
    #[error("license server: {0}")]
    ClearKey(#[from] ClearKeyError),
    /// A server of the protected key system refused a request or could not build its answer.
    #[error("protected key system: {0}")]
    Protected(#[from] protected_license::Error),
    /// A call succeeded but did not answer what the path needs (a zero session handle, an
    /// uncorrelated response, no license request, a key that did not become usable…).
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// A path decrypted a known sample to the wrong bytes.
    #[error("wrong output: {0}")]
    Mismatch(String),
}

impl From<StreamCipherError> for BenchError {
    fn from(e: StreamCipherError) -> Self {
        Self::RustCrypto(e)
    }
}
