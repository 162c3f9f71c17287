//! The errors of the EME API.
//!
//! EME reports failures as `DOMException`s (and a `TypeError`) with a name the application
//! switches on (EME §6 "Exceptions"); [`EmeError`] has one variant per name, each with a
//! readable message. Three more conditions are not exceptions of the EME API itself but do
//! reach a player through it: the secure world was lost (sessions close with
//! `hardware-context-reset`), a sample has no usable key (the media element's "waiting for
//! key" state, EME §7.3.4 "Wait for Key"), and a decrypt failure (`MEDIA_ERR_DECODE`).

use cdm_core::abi::Status;
use thiserror::Error;

/// An error of the EME API.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EmeError {
    /// `TypeError`: an argument is missing, empty, too large or malformed.
    #[error("TypeError: {0}")]
    TypeError(String),
    /// `NotSupportedError`: the key system, configuration, session type, init data type or
    /// operation is not supported.
    #[error("NotSupportedError: {0}")]
    NotSupportedError(String),
    /// `InvalidStateError`: the object is not in a state that allows the call (e.g. a second
    /// `generateRequest()`, `update()` before `generateRequest()`, any call on a closed
    /// session).
    #[error("InvalidStateError: {0}")]
    InvalidStateError(String),
    /// `QuotaExceededError`: a limit of the secure world (sessions, keys, secure buffers,
    /// memory) is reached.
    #[error("QuotaExceededError: {0}")]
    QuotaExceededError(String),
    /// `InvalidAccessError`: the argument names nothing usable (e.g. a secure buffer handle
    /// that is not live) or asks for an output the key's policy forbids.
    #[error("InvalidAccessError: {0}")]
    InvalidAccessError(String),
    /// The secure world is gone (its process died, the transport broke or it answered
    /// malformed messages). Every session of the `MediaKeys` has been closed with
    /// `hardware-context-reset`; create a new `MediaKeys` to continue. Reported to script as an
    /// `InvalidStateError`.
    #[error("InvalidStateError: secure world lost ({0}); create a new MediaKeys")]
    SecureWorldLost(String),
    /// No session holds a usable key for the sample's key ID: the media element waits for a
    /// key (EME §7.3.4, `waitingforkey`). Not an exception of the EME API.
    #[error("waiting for key: {0}")]
    WaitingForKey(String),
    /// The sample could not be decrypted (malformed description or data). Deliberately
    /// uninformative, like the secure world's answer. Not an exception of the EME API
    /// (a media element reports `MEDIA_ERR_DECODE`).
    #[error("decrypt error: {0}")]
    DecryptError(String),
}

impl EmeError {
    /// The name of the exception as EME script would see it (`"TypeError"`,
    /// `"InvalidStateError"`, …), or `None` for the two media-element conditions
    /// ([`EmeError::WaitingForKey`], [`EmeError::DecryptError`]).
    pub fn name(&self) -> Option<&'static str> {
        match self {
            EmeError::TypeError(_) => Some("TypeError"),
            EmeError::NotSupportedError(_) => Some("NotSupportedError"),
            EmeError::InvalidStateError(_) | EmeError::SecureWorldLost(_) => {
                Some("InvalidStateError")
            }
            EmeError::QuotaExceededError(_) => Some("QuotaExceededError"),
            EmeError::InvalidAccessError(_) => Some("InvalidAccessError"),
            EmeError::WaitingForKey(_) | EmeError::DecryptError(_) => None,
        }
    }

    /// Maps an error status from the secure world to the EME error the operation rejects
    /// with. `what` names the operation, for the message.
    ///
    /// Malformed-message statuses mean this side sent something the secure world could not
    /// decode (a version mismatch or a bug): they surface as `InvalidStateError`, except
    /// oversize and out-of-domain fields, which are the caller's argument (`TypeError`).
    pub fn from_status(status: Status, what: &str) -> EmeError {
        let msg = |detail: &str| format!("{what}: {detail}");
        match status {
            // Callers never map Ok; treat it as an internal inconsistency.
            Status::Ok => EmeError::InvalidStateError(msg("unexpected success status")),
            Status::Truncated
            | Status::BadMagic
            | Status::UnsupportedVersion
            | Status::UnknownOpcode
            | Status::TrailingBytes => EmeError::InvalidStateError(msg(&format!(
                "the secure world could not decode the request ({})",
                status.name()
            ))),
            Status::PayloadTooLarge => EmeError::TypeError(msg("argument exceeds a limit")),
            Status::InvalidField => EmeError::TypeError(msg("argument has an invalid value")),
            Status::NoSuchSession => {
                EmeError::InvalidStateError(msg("the session is not open in the secure world"))
            }
            Status::SessionQuotaExceeded => {
                EmeError::QuotaExceededError(msg("too many open sessions"))
            }
            Status::InvalidState => {
                EmeError::InvalidStateError(msg("not allowed in the session's current state"))
            }
            Status::KeyQuotaExceeded => {
                EmeError::QuotaExceededError(msg("the session cannot hold more keys"))
            }
            Status::NotSupported => EmeError::NotSupportedError(msg("not supported")),
            Status::LicenseQuotaExceeded => EmeError::QuotaExceededError(msg(
                "the secure world cannot store more persistent licenses, or this one is too large",
            )),
            Status::SessionIdInUse => {
                EmeError::QuotaExceededError(msg("a session with this session id is already open"))
            }
            Status::InvalidInitData => {
                EmeError::TypeError(msg("init data is malformed or holds no usable key ID"))
            }
            Status::InvalidLicense => {
                EmeError::TypeError(msg("the response is not a valid license for this session"))
            }
            Status::InvalidServerCertificate => EmeError::TypeError(msg(
                "the server certificate does not verify against the key system's root",
            )),
            Status::NoKey => EmeError::WaitingForKey(msg("no usable key for the key ID")),
            Status::KeyNotUsable => EmeError::WaitingForKey(msg("the key is not usable now")),
            Status::DecryptFailed => EmeError::DecryptError(msg("decryption failed")),
            Status::SecureBufferQuotaExceeded => {
                EmeError::QuotaExceededError(msg("too many live secure buffers"))
            }
            Status::NoSuchSecureBuffer => {
                EmeError::InvalidAccessError(msg("the secure buffer handle is not live"))
            }
            Status::OutputNotAllowed => EmeError::InvalidAccessError(msg(
                "the key's robustness does not allow this output (clear output under \
                 HW_SECURE_DECODE)",
            )),
            Status::StorageUnavailable => {
                EmeError::InvalidStateError(msg("secure storage is unavailable"))
            }
            Status::StorageCorrupt => EmeError::InvalidStateError(msg(
                "a stored record failed authentication (altered, or stored under another name)",
            )),
            Status::StorageTruncated => {
                EmeError::InvalidStateError(msg("a stored record is truncated"))
            }
            Status::StorageRollback => EmeError::InvalidStateError(msg(
                "secure storage was rolled back to an older copy; refused",
            )),
            Status::StorageMissing => {
                EmeError::InvalidStateError(msg("the stored license's record is missing"))
            }
            Status::OutOfMemory => {
                EmeError::QuotaExceededError(msg("the secure world is out of memory"))
            }
            Status::Internal => {
                EmeError::InvalidStateError(msg("internal error in the secure world"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_maps_to_a_named_error() {
        for &s in Status::ALL {
            let e = EmeError::from_status(s, "op");
            assert!(e.to_string().contains("op"), "{s:?} → {e}");
        }
        assert_eq!(
            EmeError::from_status(Status::SessionQuotaExceeded, "x").name(),
            Some("QuotaExceededError")
        );
        assert_eq!(
            EmeError::from_status(Status::InvalidLicense, "x").name(),
            Some("TypeError")
        );
        assert_eq!(
            EmeError::from_status(Status::NotSupported, "x").name(),
            Some("NotSupportedError")
        );
        assert!(matches!(
            EmeError::from_status(Status::NoKey, "x"),
            EmeError::WaitingForKey(_)
        ));
        assert_eq!(
            EmeError::SecureWorldLost("x".into()).name(),
            Some("InvalidStateError")
        );
    }
}
