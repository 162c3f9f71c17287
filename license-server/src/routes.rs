//! The HTTP API: routes, handlers and the middleware that counts and logs every response.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cdm_core::clearkey::{self, ClearKeyError};
use cdm_core::{ContentKey, KeyId, SessionType};
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use tracing::Instrument;
use zeroize::Zeroizing;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::protected::ProtectedService;
use crate::store::{KeyStore, StoreError};
use crate::MAX_BODY_LEN;

#[derive(Clone)]
struct AppState {
    store: Arc<dyn KeyStore>,
    metrics: Arc<Metrics>,
}

/// The application: the Clear Key routes of the crate documentation, the static files of
/// `static_dir` (if any) at `/`, a body limit of [`MAX_BODY_LEN`], CORS for any origin, and
/// the middleware that turns framework errors into JSON, counts errors in `metrics` and logs
/// every response. The `/protected/` routes answer 404 (see [`router_with_protected`]).
pub fn router(
    store: Arc<dyn KeyStore>,
    metrics: Arc<Metrics>,
    static_dir: Option<PathBuf>,
) -> Router {
    build(store, metrics, static_dir, None)
}

/// [`router`] with the protected key system's routes (`/protected/…`, see
/// [`crate::protected`]) served by `protected`.
pub fn router_with_protected(
    store: Arc<dyn KeyStore>,
    metrics: Arc<Metrics>,
    static_dir: Option<PathBuf>,
    protected: Arc<ProtectedService>,
) -> Router {
    build(store, metrics, static_dir, Some(protected))
}

fn build(
    store: Arc<dyn KeyStore>,
    metrics: Arc<Metrics>,
    static_dir: Option<PathBuf>,
    protected: Option<Arc<ProtectedService>>,
) -> Router {
    let state = AppState {
        store,
        metrics: Arc::clone(&metrics),
    };
    let mut app = Router::new()
        .route("/clearkey/license", post(license))
        .route("/clearkey/release", post(release))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(state);
    if let Some(service) = protected {
        app = app.merge(crate::protected::routes::routes(
            service,
            Arc::clone(&metrics),
        ));
    }
    let app = match static_dir {
        Some(dir) => {
            app.fallback_service(ServeDir::new(dir).not_found_service(not_found.into_service()))
        }
        None => app.fallback(not_found),
    };
    app.layer(DefaultBodyLimit::max(MAX_BODY_LEN))
        .layer(middleware::from_fn_with_state(metrics, observe))
        .layer(cors())
}

/// Any origin may call the API (a test page served from another loopback port), with the
/// methods and the one header it uses. No credentials are involved.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
}

/// Runs every request in a span (method, path), replaces the empty 405 responses of the
/// router and of `ServeDir` with JSON errors, counts error responses and logs the status.
async fn observe(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // `?` (Debug) escapes control characters, so a path cannot forge log lines.
    let span = tracing::info_span!("request", %method, path = ?request.uri().path());
    async move {
        let mut response = next.run(request).await;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && response.extensions().get::<ErrorCode>().is_none()
        {
            let allow = response.headers().get(header::ALLOW).cloned();
            response = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("method {method} is not allowed for this path"),
            )
            .into_response();
            if let Some(allow) = allow {
                response.headers_mut().insert(header::ALLOW, allow);
            }
        }
        let status = response.status().as_u16();
        match response.extensions().get::<ErrorCode>() {
            Some(code) => {
                metrics.record_error(*code);
                tracing::info!(status, error = code.as_str(), "response");
            }
            None => tracing::info!(status, "response"),
        }
        response
    }
    .instrument(span)
    .await
}

/// `POST /clearkey/license`: a Clear Key license request (EME §9.1.3) in, a license (a JWK
/// Set, EME §9.1.4) of the requested keys the store knows out, with the request's `type`.
///
/// Unknown key IDs are left out (a player may ask for every key ID of its init data); if none
/// is known the answer is 404. A `persistent-license` request is refused (403) as a whole if
/// any known requested key forbids persistence, so the player learns it must fall back to a
/// temporary session rather than silently getting fewer keys.
async fn license(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Every request reaching the endpoint counts towards the per-second peak, valid or not.
    state.metrics.record_license_arrival();
    require_json(&headers)?;
    let body = body.map_err(body_error)?;
    let request = clearkey::parse_license_request(&body)
        .map_err(|e| bad_request("not a Clear Key license request", &e))?;
    let session_type = request.session_type;
    state.metrics.record_request(session_type);
    let requested = request.kids.len();
    tracing::info!(
        session_type = session_type.as_str(),
        kids = requested,
        "license request"
    );

    let store = Arc::clone(&state.store);
    let kids = request.kids;
    let found = tokio::task::spawn_blocking(move || store.lookup(&kids))
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| store_failed(&e))?;

    if found.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UnknownKeyIds,
            format!("none of the {requested} requested key IDs is known to this server"),
        ));
    }
    if session_type == SessionType::PersistentLicense {
        let refused = found.iter().filter(|k| !k.allow_persistent).count();
        if refused > 0 {
            return Err(ApiError::new(
                ErrorCode::PersistentLicenseNotAllowed,
                format!(
                    "{refused} of the requested keys may not be delivered in a \
                     persistent-license session; request a temporary session"
                ),
            ));
        }
    }

    let mut keys: Vec<(KeyId, &ContentKey)> = Vec::with_capacity(found.len());
    for k in &found {
        keys.push((k.kid.try_clone().map_err(|e| internal(&e))?, &k.key));
    }
    let license = clearkey::build_license(&keys, session_type).map_err(|e| match e {
        ClearKeyError::MessageTooLarge => ApiError::new(
            ErrorCode::LicenseTooLarge,
            format!(
                "the license for these {} keys would exceed {} bytes; request fewer key IDs",
                found.len(),
                clearkey::MAX_LICENSE_LEN
            ),
        ),
        other => internal(&other),
    })?;
    tracing::info!(
        session_type = session_type.as_str(),
        kids = requested,
        delivered = found.len(),
        "license issued"
    );
    Ok(secret_json(license))
}

/// `POST /clearkey/release`: a record of license destruction (EME §9.1.5) in, the license
/// release acknowledgement (§9.1.6), the same `{"kids":[...]}`, out.
///
/// The server keeps no per-client state, so there is nothing to delete; the release is
/// counted and logged.
async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let body = body.map_err(body_error)?;
    let kids = clearkey::parse_license_release(&body)
        .map_err(|e| bad_request("not a Clear Key record of license destruction", &e))?;
    let ack = clearkey::license_release_json(&kids).map_err(|e| internal(&e))?;
    state.metrics.record_release();
    tracing::info!(kids = kids.len(), "license release acknowledged");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        ack,
    )
        .into_response())
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /healthz`.
async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource")
}

/// The Clear Key messages are JSON (EME §9.1): `Content-Type: application/json`.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    require_media_type(headers, "application/json")
}

/// The request's `Content-Type` must be `expected`: parameters such as `charset` allowed,
/// media type compared without case (RFC 9110 §8.3.1).
pub(crate) fn require_media_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match media_type {
        Some(t) if t.eq_ignore_ascii_case(expected) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type must be {expected}"),
        )),
        None => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type {expected} is required"),
        )),
    }
}

pub(crate) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds {MAX_BODY_LEN} bytes"),
        )
    } else {
        ApiError::new(ErrorCode::BadRequest, "the body could not be read")
    }
}

fn bad_request(what: &str, e: &ClearKeyError) -> ApiError {
    // `ClearKeyError` never contains key material.
    ApiError::new(ErrorCode::BadRequest, format!("{what}: {e}"))
}

/// A failure of ours: the cause is logged, the client learns only that it happened.
pub(crate) fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::new(ErrorCode::InternalError, "internal error")
}

pub(crate) fn store_failed(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "key store failed");
    ApiError::new(ErrorCode::InternalError, "the key store is unavailable")
}

/// A JSON response that holds content keys: its buffer is wiped when the body is dropped,
/// and caches are told not to keep it. (Copies that the HTTP stack makes while writing, and
/// the kernel's socket buffers, are outside our control.)
fn secret_json(body: Zeroizing<Vec<u8>>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Bytes::from_owner(body),
    )
        .into_response()
}
