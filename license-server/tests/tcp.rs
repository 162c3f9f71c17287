//! The server on a real `TcpListener` (127.0.0.1, any port), spoken to in HTTP/1.1 over a
//! plain `std::net::TcpStream`: what a browser's `fetch` goes through, in-process.

mod common;

use std::net::TcpStream;

use axum::http::StatusCode;
use cdm_testkit::clearkey::b64url;
use common::*;
use license_server::MAX_BODY_LEN;

#[test]
fn tcp_license_release_errors_and_shutdown() {
    let server = TcpServer::start(app().0);

    let r = http_license(server.addr, &[&KID1, &KID_UNKNOWN], "temporary");
    r.assert_ok();
    assert_eq!(
        license_keys(&r.json(), "temporary"),
        [(b64url(&KID1), b64url(&KEY1))]
    );

    let release = format!("{{\"kids\":[\"{}\"]}}", b64url(&KID1));
    let r = http_json(server.addr, "/clearkey/release", release.as_bytes());
    r.assert_ok();
    assert_eq!(r.body, release.as_bytes());

    // A real 64 KiB + 1 body with its Content-Length: 413 as JSON.
    http_json(server.addr, "/clearkey/license", &[b' '; MAX_BODY_LEN + 1])
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    http(server.addr, "POST", "/clearkey/license", &[], b"{}")
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    http(server.addr, "GET", "/clearkey/release", &[], b"")
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    http(server.addr, "GET", "/favicon.ico", &[], b"")
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    let m = http(server.addr, "GET", "/metrics", &[], b"").metrics();
    assert_eq!(m["license_requests_total{type=\"temporary\"}"], 1);
    assert_eq!(m["license_releases_total"], 1);
    assert_eq!(m["license_errors_total{reason=\"payload_too_large\"}"], 1);

    let addr = server.addr;
    server.stop();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}

#[test]
fn tcp_garbage_does_not_hurt_the_server() {
    use std::io::{Read, Write};
    let server = TcpServer::start(app().0);
    // Not HTTP at all, a truncated request, an absurd Content-Length: the connection fails or
    // gets an error status, and the server keeps answering.
    for raw in [
        &b"\x00\x01\x02 hello\r\n\r\n"[..],
        b"POST /clearkey/license HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"k",
        b"POST /clearkey/license HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    ] {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if let Some(status) = out.get(9..12) {
            assert_ne!(status, b"200", "{:?}", String::from_utf8_lossy(&out));
        }
    }
    http(server.addr, "GET", "/healthz", &[], b"").assert_ok();
    server.stop();
}
