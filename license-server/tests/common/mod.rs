//! Shared by the license-server tests: keys, a router over a fresh store, one-shot calls, a
//! minimal HTTP/1.1 client over `std::net::TcpStream`, and a Prometheus text reader.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use cdm_core::{ContentKey, KeyId};
use cdm_testkit::clearkey::b64url;
use license_server::{KeyStore, Metrics, SqliteStore, StoredKey};
use tower::ServiceExt;

/// Key ID 1: temporary only.
pub const KID1: [u8; 16] = [0x11; 16];
pub const KEY1: [u8; 16] = *b"key-one-16-bytes";
/// Key ID 2: persistent allowed.
pub const KID2: [u8; 16] = [0x22; 16];
pub const KEY2: [u8; 16] = *b"key-two-16-bytes";
/// Never imported.
pub const KID_UNKNOWN: [u8; 16] = [0x99; 16];

pub fn stored(kid: [u8; 16], key: [u8; 16], allow_persistent: bool) -> StoredKey {
    StoredKey {
        kid: KeyId::from(kid),
        key: ContentKey::new(key),
        allow_persistent,
    }
}

/// An in-memory store holding KID1 (temporary only) and KID2 (persistent allowed).
pub fn store_with_keys() -> Arc<SqliteStore> {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .import(&[stored(KID1, KEY1, false), stored(KID2, KEY2, true)])
        .unwrap();
    Arc::new(store)
}

/// The application over [`store_with_keys`], and its metrics.
pub fn app() -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let app = license_server::router(store_with_keys(), Arc::clone(&metrics), None);
    (app, metrics)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts `200 OK`, showing the body otherwise.
    pub fn assert_ok(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
    }

    /// The body read as Prometheus text ([`parse_metrics`]).
    pub fn metrics(&self) -> HashMap<String, u64> {
        parse_metrics(std::str::from_utf8(&self.body).unwrap())
    }

    /// Asserts an error response: `status`, `Content-Type: application/json`, and
    /// `{"error": code, "message": <non-empty string>}`.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{status} {code}"
        );
        let v = self.json();
        assert_eq!(v["error"], code, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
}

/// One request through the router (no network).
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Body::from(body.into())).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST path` with a JSON body.
pub async fn post_json(app: &Router, path: &str, body: impl Into<Vec<u8>>) -> Reply {
    call(app, "POST", path, Some("application/json"), body).await
}

/// `POST /clearkey/license` of [`license_request`]`(kids, session_type)`.
pub async fn post_license(app: &Router, kids: &[&[u8]], session_type: &str) -> Reply {
    post_json(
        app,
        "/clearkey/license",
        license_request(kids, session_type),
    )
    .await
}

/// A license request `{"kids":[...],"type":...}`, built with the test kit's own base64url.
pub fn license_request(kids: &[&[u8]], session_type: &str) -> Vec<u8> {
    let kids: Vec<String> = kids.iter().map(|k| format!("\"{}\"", b64url(k))).collect();
    format!(r#"{{"kids":[{}],"type":"{session_type}"}}"#, kids.join(",")).into_bytes()
}

/// The `(kid, k)` strings of a license's JWKs, checking `kty` and the `type` member.
pub fn license_keys(license: &serde_json::Value, session_type: &str) -> Vec<(String, String)> {
    assert_eq!(license["type"], session_type, "{license}");
    license["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys array: {license}"))
        .iter()
        .map(|jwk| {
            assert_eq!(jwk["kty"], "oct", "{jwk}");
            (
                jwk["kid"].as_str().unwrap().to_owned(),
                jwk["k"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Prometheus text → `name{labels}` → value (comments skipped).
pub fn parse_metrics(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// One HTTP/1.1 exchange over a fresh TCP connection (`Connection: close`), read to the end.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_http_response(&raw)
}

/// `Content-Type: application/json`.
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// [`http`] `POST path` with a JSON body.
pub fn http_json(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    http(addr, "POST", path, &[JSON], body)
}

/// [`http`] `POST /clearkey/license` of [`license_request`]`(kids, session_type)`.
pub fn http_license(addr: SocketAddr, kids: &[&[u8]], session_type: &str) -> Reply {
    http_json(
        addr,
        "/clearkey/license",
        &license_request(kids, session_type),
    )
}

/// Parses a whole HTTP/1.1 response with a `Content-Length` body.
pub fn parse_http_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = StatusCode::from_u16(parts.next().unwrap().parse().unwrap()).unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            axum::http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            value.trim().parse().unwrap(),
        );
    }
    let len: usize = headers
        .get("content-length")
        .unwrap_or_else(|| panic!("no content-length: {head}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), len, "body length vs Content-Length");
    Reply {
        status,
        headers,
        body,
    }
}

/// A server on a real `TcpListener` (127.0.0.1, any port) on its own runtime thread, stopped
/// through `serve`'s shutdown future.
pub struct TcpServer {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl TcpServer {
    pub fn start(app: Router) -> TcpServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                license_server::serve(listener, app, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let addr = addr_rx.recv().expect("server thread failed to bind");
        TcpServer { addr, stop, thread }
    }

    pub fn stop(self) {
        self.stop.send(()).unwrap();
        self.thread.join().unwrap().unwrap();
    }
}
