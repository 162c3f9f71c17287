//! # license-server — a Clear Key license server
//!
//! Answers the license requests of EME's Clear Key key system (`org.w3.clearkey`, EME §9.1)
//! over HTTP with keys held in an SQLite database. The message formats are cdm-core's
//! (`cdm_core::clearkey`), the same code the CDM parses them with.
//!
//! | route | in | out |
//! |---|---|---|
//! | `POST /clearkey/license` | license request `{"kids":[…],"type":…}` (§9.1.3) | license, a JWK Set of the known requested keys with the request's `type` (§9.1.4) |
//! | `POST /clearkey/release` | record of license destruction `{"kids":[…]}` (§9.1.5) | acknowledgement, the same `{"kids":[…]}` (§9.1.6) |
//! | `GET /metrics` | | Prometheus text ([`metrics`]) |
//! | `GET /healthz` | | `ok` |
//! | `GET /…` | | files of the `--static` directory, if one is given |
//!
//! Errors are JSON `{"error": CODE, "message": TEXT}` ([`error::ErrorCode`] lists the codes
//! and statuses). POST bodies must be `application/json` and at most [`MAX_BODY_LEN`] bytes.
//!
//! - [`router`] builds the application from a [`KeyStore`] and a [`Metrics`];
//! - [`serve`] runs it on a bound listener until a shutdown future completes;
//! - [`cli::main_with_args`] is the whole `license-server` program (`serve`, `import`).
//!
//! Any client may obtain any imported key: there is no authentication or per-user
//! entitlement. The server binds to loopback by default.
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
mod routes;
pub mod store;

use std::future::Future;

pub use error::{ApiError, ErrorCode};
pub use metrics::Metrics;
pub use routes::router;
pub use store::{KeyStore, SqliteStore, StoreError, StoredKey};

/// Largest accepted request body: 64 KiB, the largest Clear Key message a CDM handles
/// (`cdm_core::clearkey::MAX_LICENSE_LEN`). A longer body is answered 413.
pub const MAX_BODY_LEN: usize = 64 * 1024;

const _: () = assert!(MAX_BODY_LEN == cdm_core::clearkey::MAX_LICENSE_LEN);

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
