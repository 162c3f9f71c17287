//! The secure world's internal errors and their wire status.

use cdm_core::abi::{AbiError, Status};
use cdm_core::{ClearKeyError, InitDataError};
use hal::platform::{OutputError, RngError};

use crate::store::StoreError;

/// Why a request failed. Only the [`Status`] crosses the ABI; the detail stays inside.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("malformed message: {0}")]
    Abi(#[from] AbiError),
    #[error("no such session")]
    NoSuchSession,
    #[error("session quota exceeded")]
    SessionQuota,
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    #[error("key quota exceeded")]
    KeyQuota,
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    #[error("invalid init data: {0}")]
    InitData(#[from] InitDataError),
    #[error("invalid license: {0}")]
    License(#[from] ClearKeyError),
    #[error("license does not apply: {0}")]
    LicenseMismatch(&'static str),
    #[error("no key with this ID")]
    NoKey,
    #[error("key not usable")]
    KeyNotUsable,
    #[error("sample refused")]
    DecryptFailed,
    #[error("sample larger than the ABI allows")]
    SampleTooLarge,
    #[error("secure buffer quota exceeded")]
    SecureBufferQuota,
    #[error("no such secure buffer")]
    NoSuchSecureBuffer,
    #[error("output not allowed for this robustness level")]
    OutputNotAllowed,
    #[error("secure output failed: {0}")]
    Output(#[from] OutputError),
    #[error("random number generator failed")]
    Rng(#[from] RngError),
    #[error("a session with this id is already open")]
    SessionIdInUse,
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("protected license refused: {0}")]
    Protected(protected_license::Error),
    #[error("server certificate refused")]
    ServerCertificate,
    #[error("out of memory")]
    OutOfMemory,
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<cdm_core::KeyIdError> for Error {
    fn from(e: cdm_core::KeyIdError) -> Self {
        match e {
            cdm_core::KeyIdError::OutOfMemory => Error::OutOfMemory,
            _ => Error::Internal("key ID"),
        }
    }
}

impl From<alloc::collections::TryReserveError> for Error {
    fn from(_: alloc::collections::TryReserveError) -> Self {
        Error::OutOfMemory
    }
}

impl Error {
    /// The stable wire status reporting this error.
    pub(crate) fn status(&self) -> Status {
        match self {
            Error::Abi(e) => e.status(),
            Error::NoSuchSession => Status::NoSuchSession,
            Error::SessionQuota => Status::SessionQuotaExceeded,
            Error::InvalidState(_) => Status::InvalidState,
            Error::KeyQuota => Status::KeyQuotaExceeded,
            Error::NotSupported(_) => Status::NotSupported,
            Error::InitData(InitDataError::OutOfMemory)
            | Error::License(ClearKeyError::OutOfMemory) => Status::OutOfMemory,
            Error::InitData(_) => Status::InvalidInitData,
            Error::License(_) | Error::LicenseMismatch(_) | Error::Protected(_) => {
                Status::InvalidLicense
            }
            Error::ServerCertificate => Status::InvalidServerCertificate,
            Error::NoKey => Status::NoKey,
            Error::KeyNotUsable => Status::KeyNotUsable,
            Error::DecryptFailed => Status::DecryptFailed,
            Error::SampleTooLarge => Status::PayloadTooLarge,
            Error::SecureBufferQuota => Status::SecureBufferQuotaExceeded,
            Error::NoSuchSecureBuffer => Status::NoSuchSecureBuffer,
            // The sink refusing a frame means the output requirements cannot be met.
            Error::OutputNotAllowed | Error::Output(_) => Status::OutputNotAllowed,
            Error::SessionIdInUse => Status::SessionIdInUse,
            Error::Store(e) => match e {
                StoreError::Unavailable => Status::StorageUnavailable,
                StoreError::Corrupt => Status::StorageCorrupt,
                StoreError::Truncated => Status::StorageTruncated,
                StoreError::Rollback => Status::StorageRollback,
                StoreError::Missing => Status::StorageMissing,
                StoreError::Quota => Status::LicenseQuotaExceeded,
                StoreError::OutOfMemory => Status::OutOfMemory,
                StoreError::Rng => Status::Internal,
            },
            Error::OutOfMemory => Status::OutOfMemory,
            Error::Rng(_) | Error::Internal(_) => Status::Internal,
        }
    }
}
