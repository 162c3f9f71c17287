//! The `/protected/` routes: thin HTTP adapters around [`ProtectedService`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use protected_license::messages::SessionType;

use super::{unix_now, ProtectedService};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes::{body_error, internal, require_media_type};

const OCTET_STREAM: &str = "application/octet-stream";

#[derive(Clone)]
struct ProtectedState {
    service: Arc<ProtectedService>,
    metrics: Arc<Metrics>,
}

/// The five routes of [`crate::protected`], served by `service`, counted in `metrics`.
pub(crate) fn routes(service: Arc<ProtectedService>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/protected/provision", post(provision))
        .route("/protected/certificate", get(certificate))
        .route("/protected/license", post(license))
        .route("/protected/renewal", post(renewal))
        .route("/protected/release", post(release))
        .with_state(ProtectedState { service, metrics })
}

/// Checks that the request body is `application/octet-stream`, then runs `op` on the service
/// with the body and the current time on the blocking pool (signatures, HPKE, the store).
async fn call<T, F>(
    state: &ProtectedState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    op: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&ProtectedService, &[u8], u64) -> Result<T, ApiError> + Send + 'static,
{
    require_media_type(headers, OCTET_STREAM)?;
    let body = body.map_err(body_error)?;
    let service = Arc::clone(&state.service);
    tokio::task::spawn_blocking(move || op(&service, &body, unix_now()))
        .await
        .map_err(|e| internal(&e))?
}

/// A protocol message as the response body.
fn binary(body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `POST /protected/provision`.
async fn provision(
    State(state): State<ProtectedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let response = call(&state, &headers, body, ProtectedService::provision).await?;
    state.metrics.record_protected_provision();
    tracing::info!("device certificate issued");
    Ok(binary(response))
}

/// `GET /protected/certificate`.
async fn certificate(State(state): State<ProtectedState>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
        state.service.certificate().to_vec(),
    )
        .into_response()
}

/// `POST /protected/license`.
async fn license(
    State(state): State<ProtectedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let issued = call(&state, &headers, body, ProtectedService::license).await?;
    let session_type = match issued.session_type {
        SessionType::Temporary => cdm_core::SessionType::Temporary,
        SessionType::PersistentLicense => cdm_core::SessionType::PersistentLicense,
    };
    state.metrics.record_protected_license(session_type);
    tracing::info!(
        session = %hex::encode(issued.session_id),
        session_type = session_type.as_str(),
        keys = issued.keys,
        encrypted = issued.encrypted,
        "protected license issued"
    );
    Ok(binary(issued.bytes))
}

/// `POST /protected/renewal`.
async fn renewal(
    State(state): State<ProtectedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (response, session) = call(&state, &headers, body, ProtectedService::renewal).await?;
    state.metrics.record_protected_renewal();
    tracing::info!(session = %hex::encode(session), "protected renewal issued");
    Ok(binary(response))
}

/// `POST /protected/release`.
async fn release(
    State(state): State<ProtectedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (response, session) = call(&state, &headers, body, ProtectedService::release).await?;
    state.metrics.record_protected_release();
    tracing::info!(session = %hex::encode(session), "protected release acknowledged");
    Ok(binary(response))
}
