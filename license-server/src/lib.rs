//! # license-server — a license server for Clear Key and the protected key system
//!
//! Answers the license requests of EME's Clear Key key system (`org.w3.clearkey`, EME §9.1)
//! over HTTP with keys held in an SQLite database. The message formats are cdm-core's
//! (`cdm_core::clearkey`), the same code the CDM parses them with.
//!
//! With `serve --protected DIR` it also serves the protected key system
//! (`org.teecdm.protected`): provisioning, licenses, renewal and release under `/protected/`
//! ([`protected`]), with the key material `license-server protected-init` writes
//! ([`protected::material`]) and keys, policies and sessions in the same database.
//!
//! | route | in | out |
//! |---|---|---|
//! | `POST /clearkey/license` | license request `{"kids":[…],"type":…}` (§9.1.3) | license, a JWK Set of the known requested keys with the request's `type` (§9.1.4) |
//! | `POST /clearkey/release` | record of license destruction `{"kids":[…]}` (§9.1.5) | acknowledgement, the same `{"kids":[…]}` (§9.1.6) |
//! | `GET /metrics` | | Prometheus text ([`metrics`]) |
//! | `GET /healthz` | | `ok` |
//! | `POST /protected/…`, `GET /protected/certificate` | raw protocol messages | see [`protected`] (only with `--protected`) |
//! | `GET /…` | | files of the `--static` directory, if one is given |
//!
//! Errors are JSON `{"error": CODE, "message": TEXT}` ([`error::ErrorCode`] lists the codes
//! and statuses). POST bodies must be `application/json` (Clear Key) or
//! `application/octet-stream` (protected) and at most [`MAX_BODY_LEN`] bytes.
//!
//! - [`router`] builds the application from a [`KeyStore`] and a [`Metrics`];
//!   [`router_with_protected`] adds the protected routes of a [`ProtectedService`];
//! - [`serve`] runs it on a bound listener until a shutdown future completes;
//! - [`cli::main_with_args`] is the whole `license-server` program (`serve`, `import`,
//!   `protected-init`, `protected-rotation`).
//!
//! Any client may obtain any imported Clear Key key: there is no authentication or per-user
//! entitlement. Protected keys reach only provisioned devices, sealed to the device's key;
//! but provisioning is open to any self-signed request (the protocol has no device
//! attestation). The server binds to loopback by default.
//!
//! Content keys are [`cdm_core::ContentKey`]s (zeroized on drop, never printed); a license is
//! built in a zeroizing buffer that is also the response body. Logs carry session types,
//! key-ID counts and statuses, never keys.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod cli;
pub mod error;
pub mod metrics;
pub mod protected;
mod routes;
pub mod store;

use std::future::Future;

pub use error::{ApiError, ErrorCode};
pub use metrics::Metrics;
pub use protected::ProtectedService;
pub use routes::{router, router_with_protected};
pub use store::{KeyStore, SqliteStore, StoreError, StoredKey};

/// Largest accepted request body: 64 KiB, the largest Clear Key message a CDM handles
/// (`cdm_core::clearkey::MAX_LICENSE_LEN`). A longer body is answered 413.
pub const MAX_BODY_LEN: usize = 64 * 1024;

const _: () = assert!(MAX_BODY_LEN == cdm_core::clearkey::MAX_LICENSE_LEN);
const _: () = assert!(MAX_BODY_LEN == protected_license::messages::MAX_MESSAGE_LEN);

/// Address `serve` binds to unless `--addr` says otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Database file used unless `--db` says otherwise.
pub const DEFAULT_DB: &str = "license-server.db";

/// Serves `app` (from [`router`]) on `listener` until `shutdown` completes, then lets
/// requests in progress finish.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
