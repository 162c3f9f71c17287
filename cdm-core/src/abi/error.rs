//! Decoding errors of the ABI, and their wire status.

use super::status::Status;
use crate::key_id::KeyIdError;

/// Why a message could not be decoded or encoded. Every variant maps to one wire
/// [`Status`] ([`AbiError::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// Shorter than the header, the declared payload, or a field.
    #[error("message truncated")]
    Truncated,
    /// The magic is not `"TCDM"`.
    #[error("bad magic")]
    BadMagic,
    /// Another ABI version.
    #[error("unsupported ABI version {0}")]
    UnsupportedVersion(u16),
    /// The opcode is not in the table.
    #[error("unknown opcode {0:#06x}")]
    UnknownOpcode(u16),
    /// The status is not in the table (responses).
    #[error("unknown status {0:#06x}")]
    UnknownStatus(u32),
    /// Bytes after the last field.
    #[error("trailing bytes after the payload")]
    TrailingBytes,
    /// The payload or a field exceeds an ABI limit.
    #[error("payload or field exceeds an ABI limit")]
    PayloadTooLarge,
    /// The header's reserved field is not zero.
    #[error("reserved header field is not zero")]
    ReservedNonZero,
    /// A field holds a value outside its domain.
    #[error("invalid field `{0}`")]
    InvalidField(&'static str),
    /// The response does not have the shape its opcode calls for.
    #[error("response does not match the request's opcode")]
    UnexpectedResponse,
    /// Allocation failed while encoding or decoding.
    #[error("out of memory")]
    OutOfMemory,
}

impl AbiError {
    /// The wire status that reports this error.
    pub const fn status(self) -> Status {
        match self {
            AbiError::Truncated => Status::Truncated,
            AbiError::BadMagic => Status::BadMagic,
            AbiError::UnsupportedVersion(_) => Status::UnsupportedVersion,
            AbiError::UnknownOpcode(_) => Status::UnknownOpcode,
            AbiError::TrailingBytes => Status::TrailingBytes,
            AbiError::PayloadTooLarge => Status::PayloadTooLarge,
            AbiError::ReservedNonZero
            | AbiError::InvalidField(_)
            | AbiError::UnknownStatus(_)
            | AbiError::UnexpectedResponse => Status::InvalidField,
            AbiError::OutOfMemory => Status::OutOfMemory,
        }
    }
}

impl From<KeyIdError> for AbiError {
    fn from(e: KeyIdError) -> AbiError {
        match e {
            KeyIdError::TooLong { .. } => AbiError::PayloadTooLarge,
            KeyIdError::OutOfMemory => AbiError::OutOfMemory,
            KeyIdError::Empty | KeyIdError::Base64(_) => AbiError::InvalidField("key_id"),
        }
    }
}
