//! Error responses: every failure is an HTTP status and a JSON body
//! `{"error": CODE, "message": TEXT}`.
//!
//! [`ErrorCode`] is the stable, machine-readable part (also the `reason` label of the
//! `license_errors_total` metric); the message is for people and may change. Messages never
//! contain key material, and a store failure is reported as `internal_error` without its
//! cause (which is logged instead).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The class of an error response: its HTTP status and its `error` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the body is not JSON, or not a valid Clear Key message (EME §9.1.3, §9.1.5); or,
    /// on a `/protected/` route, not a well-formed protocol message of the expected type.
    BadRequest,
    /// 400: the license for the requested key IDs would exceed 64 KiB, the most a Clear Key
    /// CDM accepts (`cdm_core::clearkey::MAX_LICENSE_LEN`); request fewer key IDs.
    LicenseTooLarge,
    /// 400: a protected license request encrypted to another server encryption key than this
    /// server's (the application holds an old or foreign server certificate: fetch
    /// `GET /protected/certificate` again).
    WrongServerKey,
    /// 403: a `persistent-license` was requested for a key whose policy forbids persistence.
    PersistentLicenseNotAllowed,
    /// 403: a protected request failed verification: a signature, the device's certificate
    /// chain (issuer, role, validity), the HPKE decryption of an encrypted request, or the
    /// binding of a renewal or release to the session's device. Deliberately uninformative.
    VerificationFailed,
    /// 403: a protected renewal for a license whose policy has no renewal (interval 0).
    RenewalNotAllowed,
    /// 404: Clear Key: none of the requested key IDs is known; protected key system: at least
    /// one of them is not (a protected license is all or nothing).
    UnknownKeyIds,
    /// 404: a protected renewal or release names a session this server never issued.
    UnknownSession,
    /// 404: no such route (or no such static file).
    NotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 413: the body exceeds [`crate::MAX_BODY_LEN`].
    PayloadTooLarge,
    /// 410: a protected renewal for a session that was released.
    SessionReleased,
    /// 415: the `Content-Type` is missing or not the route's (`application/json` for Clear
    /// Key, `application/octet-stream` for the protected key system).
    UnsupportedMediaType,
    /// 500: the key store failed.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order the metrics list them.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadRequest,
        ErrorCode::LicenseTooLarge,
        ErrorCode::WrongServerKey,
        ErrorCode::PersistentLicenseNotAllowed,
        ErrorCode::VerificationFailed,
        ErrorCode::RenewalNotAllowed,
        ErrorCode::UnknownKeyIds,
        ErrorCode::UnknownSession,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::SessionReleased,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InternalError,
    ];

    /// The `error` member of the JSON body and the metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::LicenseTooLarge => "license_too_large",
            ErrorCode::WrongServerKey => "wrong_server_key",
            ErrorCode::PersistentLicenseNotAllowed => "persistent_license_not_allowed",
            ErrorCode::VerificationFailed => "verification_failed",
            ErrorCode::RenewalNotAllowed => "renewal_not_allowed",
            ErrorCode::UnknownKeyIds => "unknown_key_ids",
            ErrorCode::UnknownSession => "unknown_session",
            ErrorCode::SessionReleased => "session_released",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// The HTTP status of responses of this class.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::LicenseTooLarge | ErrorCode::WrongServerKey => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::PersistentLicenseNotAllowed
            | ErrorCode::VerificationFailed
            | ErrorCode::RenewalNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::UnknownKeyIds | ErrorCode::UnknownSession | ErrorCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::SessionReleased => StatusCode::GONE,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error response: a code and a human-readable message.
///
/// As a response it carries its [`ErrorCode`] in the response extensions, where the server's
/// middleware finds it to count and log the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The class.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error of class `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code.as_str(),
            "message": self.message,
        })
        .to_string();
        let mut response = (self.code.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.extensions_mut().insert(self.code);
        response
    }
}
