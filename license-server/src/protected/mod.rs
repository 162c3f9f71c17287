//! The protected key system (`org.teecdm.protected`, `docs/protected-license.md`), server side:
//! provisioning, licenses, renewal and release over HTTP, with the `protected-license` crate's
//! `server` role doing the cryptography.
//!
//! | route | body in | body out |
//! |---|---|---|
//! | `POST /protected/provision` | provisioning request (`0x10`) | provisioning response (`0x11`): the device's certificate chain |
//! | `GET /protected/certificate` | | the license server certificate (`0x01`, role 2): what an application passes to `setServerCertificate` |
//! | `POST /protected/license` | license request, clear (`0x20`) or HPKE-encrypted (`0x21`) | license (`0x22`) |
//! | `POST /protected/renewal` | renewal request (`0x30`) | renewal response (`0x31`) |
//! | `POST /protected/release` | release request (`0x40`) | release acknowledgement (`0x41`) |
//!
//! Bodies are the raw protocol messages: requests with `Content-Type: application/octet-stream`
//! (415 otherwise), responses with the same type and `Cache-Control: no-store`. Errors are the
//! server's JSON errors ([`crate::ErrorCode`]):
//!
//! | code | status | when |
//! |---|---|---|
//! | `bad_request` | 400 | not a well-formed message of the route's type (also the inner request of an encrypted one) |
//! | `wrong_server_key` | 400 | an encrypted license request for another server encryption key |
//! | `verification_failed` | 403 | a signature, the device chain (to the pinned root, at the server's time), the decryption of an encrypted request, or the session's device: deliberately one code |
//! | `persistent_license_not_allowed` | 403 | a `persistent-license` request for keys whose combined policy forbids persisting |
//! | `renewal_not_allowed` | 403 | a renewal of a license whose policy has no renewal interval |
//! | `unknown_key_ids` | 404 | a requested key ID is not a protected key of the store (the license is all or nothing; the message gives counts, not key IDs, which an encrypted request hides) |
//! | `unknown_session` | 404 | a renewal or release for a session ID this server never issued |
//! | `session_released` | 410 | a renewal of a released session |
//! | `unsupported_media_type`, `payload_too_large`, `internal_error` | 415, 413, 500 | as on every route |
//!
//! Without `serve --protected DIR` these routes do not exist (404 `not_found`).
//!
//! What the server decides, and why:
//! - **Provisioning** certifies any key pair whose request is self-signed, with the robustness
//!   and HDCP levels the device claims (capped by the service's maximum, all levels by
//!   default): the protocol has no device attestation, so the reference server cannot tell a
//!   real secure world from an emulation. Device certificates are valid from
//!   [`material::CLOCK_SKEW`] before the server's time for the configured lifetime.
//! - **Licenses** grant every requested key ID (duplicates once) or none: each key with its
//!   kind, required robustness and minimum HDCP from the store; the policy is
//!   [`keys::combine_policies`] over them. The session ID is 16 bytes from the operating
//!   system's generator; the session is recorded ([`store::SessionRecord`]) before the
//!   license is sent. The request's robustness and HDCP are **not** compared with the keys'
//!   requirements: the license carries each key with its requirement and the secure world
//!   enforces it (a key the output cannot satisfy is `output-restricted` there), so a device
//!   whose HDCP improves later can use the key without a new license, and the server does not
//!   act on the device's self-reported state. Nor are they compared with the capabilities in
//!   the device certificate: with open provisioning those are self-claimed too (a server that
//!   restricts provisioning should add that check). The content ID is ignored.
//! - **Renewals** are answered with the license's recorded policy, for sessions not released
//!   and whose policy has a renewal interval; the request must be signed by the device the
//!   license was issued to.
//! - **Releases** mark the session released; a repeated release (a device retrying after a
//!   crash) is acknowledged again.
//!
//! Logs carry session IDs, key counts, session types and failure reasons, never keys, key IDs
//! of requests, device identities or message bodies.

pub mod keys;
pub mod material;
pub mod rotation;
pub(crate) mod routes;
pub mod store;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use protected_license::messages::{MessageType, SessionId, SessionRequest, SessionType};
use protected_license::server::KeyGrant;
use rand_core::{OsRng, RngCore};

use crate::error::{ApiError, ErrorCode};
use crate::routes::{internal, store_failed};

pub use keys::{combine_policies, parse_protected_key_arg, ProtectedKey};
pub use material::{MaterialError, ProtectedMaterial};
pub use store::{ProtectedStore, SessionRecord};

/// Seconds since the Unix epoch by the system clock; 0 if the clock is before it.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A license the server issued.
#[derive(Debug)]
pub struct IssuedLicense {
    /// The license message.
    pub bytes: Vec<u8>,
    /// Its session ID.
    pub session_id: SessionId,
    /// The session type asked for.
    pub session_type: SessionType,
    /// How many keys it grants.
    pub keys: usize,
    /// Whether the request arrived encrypted.
    pub encrypted: bool,
}

/// The protected key system's server: key material and store. Each method takes one request
/// message and the server's time, verifies it completely, and returns the response message or
/// the API error to answer with. The methods block (signatures, HPKE, the store): the HTTP
/// routes run them on Tokio's blocking pool.
#[derive(Debug)]
pub struct ProtectedService {
    material: ProtectedMaterial,
    store: Arc<dyn ProtectedStore>,
}

impl ProtectedService {
    /// A service with `material` (from [`ProtectedMaterial::load`]) and `store`.
    pub fn new(material: ProtectedMaterial, store: Arc<dyn ProtectedStore>) -> Self {
        ProtectedService { material, store }
    }

    /// The key material.
    pub fn material(&self) -> &ProtectedMaterial {
        &self.material
    }

    /// The license server certificate.
    pub fn certificate(&self) -> &[u8] {
        self.material.license_server().certificate()
    }

    /// `POST /protected/provision`: a provisioning response certifying the request's keys.
    pub fn provision(&self, request: &[u8], now: u64) -> Result<Vec<u8>, ApiError> {
        // Backdated: the service's validity was extended by the same amount at load.
        self.material
            .provisioning()
            .provision(request, now.saturating_sub(material::CLOCK_SKEW))
            .map_err(|e| protocol_error("provisioning request", e))
    }

    /// `POST /protected/license`: verifies the request, looks up every key, combines the
    /// policy, records the session and returns the license.
    pub fn license(&self, request: &[u8], now: u64) -> Result<IssuedLicense, ApiError> {
        let server = self.material.license_server();
        let verified = server
            .verify_license_request(request, now)
            .map_err(|e| protocol_error("license request", e))?;
        let req = &verified.request;

        let mut kids = Vec::with_capacity(req.key_ids.len());
        for kid in &req.key_ids {
            if !kids.contains(kid) {
                kids.push(*kid);
            }
        }
        let found = self
            .store
            .lookup_protected(&kids)
            .map_err(|e| store_failed(&e))?;
        if found.len() != kids.len() {
            return Err(ApiError::new(
                ErrorCode::UnknownKeyIds,
                format!(
                    "{} of the {} requested key IDs are not known to this server",
                    kids.len().saturating_sub(found.len()),
                    kids.len()
                ),
            ));
        }
        let policy = combine_policies(found.iter().map(|k| &k.policy))
            .ok_or_else(|| internal(&"a license request without key IDs"))?;
        let session_type = req.session_type;
        let persistent = session_type == SessionType::PersistentLicense;
        if persistent && !policy.can_persist {
            let refused = found.iter().filter(|k| !k.policy.can_persist).count();
            return Err(ApiError::new(
                ErrorCode::PersistentLicenseNotAllowed,
                format!(
                    "{refused} of the requested keys may not be stored in a persistent-license \
                     session; request a temporary session"
                ),
            ));
        }

        let grants: Vec<KeyGrant> = found
            .iter()
            .map(|k| KeyGrant {
                kind: k.kind,
                key_id: k.kid,
                robustness: k.robustness,
                min_hdcp: k.min_hdcp,
                key: k.key.clone(),
            })
            .collect();
        let mut session_id = [0u8; 16];
        OsRng.fill_bytes(&mut session_id);
        let bytes = server
            .issue_license(&mut OsRng, &verified, session_id, now, policy, &grants)
            .map_err(|e| internal(&e))?;
        self.store
            .insert_session(&SessionRecord {
                session_id,
                device_key: verified.device.device.signing_key,
                key_ids: kids,
                policy,
                persistent,
                issued_at: now,
                renewed_at: None,
                released_at: None,
            })
            .map_err(|e| store_failed(&e))?;
        Ok(IssuedLicense {
            bytes,
            session_id,
            session_type,
            keys: grants.len(),
            encrypted: verified.encrypted,
        })
    }

    /// Parses a renewal or release request, finds its session and verifies the request
    /// against the session's device.
    fn session_request(
        &self,
        request: &[u8],
        ty: MessageType,
        what: &str,
    ) -> Result<(SessionRequest, SessionRecord), ApiError> {
        let parsed = SessionRequest::parse(request, ty).map_err(|e| protocol_error(what, e))?;
        let record = self
            .store
            .session(&parsed.session_id)
            .map_err(|e| store_failed(&e))?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownSession,
                    "no license was issued for this session ID",
                )
            })?;
        let verified = self
            .material
            .license_server()
            .verify_session_request(request, ty, &record.device_key)
            .map_err(|e| protocol_error(what, e))?;
        Ok((verified, record))
    }

    /// `POST /protected/renewal`: the session's recorded policy, freshly signed.
    pub fn renewal(&self, request: &[u8], now: u64) -> Result<(Vec<u8>, SessionId), ApiError> {
        let (req, record) =
            self.session_request(request, MessageType::RenewalRequest, "renewal request")?;
        if record.released_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::SessionReleased,
                "the session was released; request a new license",
            ));
        }
        if record.policy.renewal_interval == 0 {
            return Err(ApiError::new(
                ErrorCode::RenewalNotAllowed,
                "the license of this session has no renewal",
            ));
        }
        let bytes = self
            .material
            .license_server()
            .renewal_response(&req, now, record.policy)
            .map_err(|e| internal(&e))?;
        self.store
            .record_renewal(&req.session_id, now)
            .map_err(|e| store_failed(&e))?;
        Ok((bytes, req.session_id))
    }

    /// `POST /protected/release`: marks the session released (idempotent) and acknowledges.
    pub fn release(&self, request: &[u8], now: u64) -> Result<(Vec<u8>, SessionId), ApiError> {
        let (req, _) =
            self.session_request(request, MessageType::ReleaseRequest, "release request")?;
        let exists = self
            .store
            .release_session(&req.session_id, now)
            .map_err(|e| store_failed(&e))?;
        if !exists {
            return Err(ApiError::new(
                ErrorCode::UnknownSession,
                "no license was issued for this session ID",
            ));
        }
        let bytes = self
            .material
            .license_server()
            .release_ack(&req)
            .map_err(|e| internal(&e))?;
        Ok((bytes, req.session_id))
    }
}

/// The API error for a request the protocol crate refused: malformed messages are
/// `bad_request` with the reason (it concerns only the encoding); every trust failure is one
/// opaque `verification_failed`, its reason logged.
fn protocol_error(what: &str, e: protected_license::Error) -> ApiError {
    use protected_license::Error as E;
    match e {
        E::Truncated
        | E::TrailingBytes
        | E::TooLarge
        | E::BadMagic
        | E::UnsupportedVersion(_)
        | E::WrongMessageType { .. }
        | E::InvalidField(_)
        | E::InvalidPublicKey => {
            ApiError::new(ErrorCode::BadRequest, format!("not a valid {what}: {e}"))
        }
        E::WrongServerKey => ApiError::new(
            ErrorCode::WrongServerKey,
            "the license request is encrypted to another server key; \
             fetch GET /protected/certificate and retry",
        ),
        E::OutOfMemory => internal(&e),
        _ => {
            tracing::info!(reason = %e, request = what, "verification failed");
            ApiError::new(
                ErrorCode::VerificationFailed,
                format!("the {what} could not be verified"),
            )
        }
    }
}
