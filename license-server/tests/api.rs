//! The HTTP API through the router (`tower::ServiceExt::oneshot`, no network): licenses,
//! policy, releases, every class of bad input, metrics, static files, CORS.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use cdm_core::clearkey::parse_license;
use cdm_core::KeyId;
use cdm_testkit::clearkey::b64url;
use cdm_testkit::temp::TempDir;
use common::*;
use license_server::{KeyStore, Metrics, StoreError, StoredKey, MAX_BODY_LEN};

#[tokio::test]
async fn temporary_license_holds_the_imported_keys() {
    let (app, _) = app();
    let r = post_license(&app, &[&KID1, &KID2], "temporary").await;
    r.assert_ok();
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "no-store");

    // The JSON, checked against the test kit's independent base64url.
    let keys = license_keys(&r.json(), "temporary");
    assert_eq!(
        keys,
        [
            (b64url(&KID1), b64url(&KEY1)),
            (b64url(&KID2), b64url(&KEY2))
        ]
    );

    // And what the CDM's own parser makes of it: the imported key bytes.
    let license = parse_license(&r.body).unwrap();
    assert_eq!(license.keys.len(), 2);
    assert_eq!(license.keys[0].0, KeyId::from(KID1));
    assert_eq!(license.keys[0].1.as_bytes(), &KEY1);
    assert_eq!(license.keys[1].0, KeyId::from(KID2));
    assert_eq!(license.keys[1].1.as_bytes(), &KEY2);
    assert_eq!(
        license.effective_session_type(),
        cdm_core::SessionType::Temporary
    );
}

#[tokio::test]
async fn persistent_license_only_for_keys_that_allow_it() {
    let (app, _) = app();
    let r = post_license(&app, &[&KID2], "persistent-license").await;
    r.assert_ok();
    assert_eq!(
        license_keys(&r.json(), "persistent-license"),
        [(b64url(&KID2), b64url(&KEY2))]
    );

    // KID1 forbids persistence: refused, alone or together with a key that allows it.
    for kids in [vec![&KID1[..]], vec![&KID2[..], &KID1[..]]] {
        let r = post_license(&app, &kids, "persistent-license").await;
        r.assert_error(StatusCode::FORBIDDEN, "persistent_license_not_allowed");
        assert!(!String::from_utf8_lossy(&r.body).contains(&b64url(&KEY1)));
    }

    // The same key in a temporary session is fine.
    post_license(&app, &[&KID1], "temporary").await.assert_ok();
}

#[tokio::test]
async fn partly_known_kids_get_the_known_keys_only() {
    let (app, _) = app();
    let r = post_license(&app, &[&KID_UNKNOWN, &KID2, &[1, 2, 3]], "temporary").await;
    r.assert_ok();
    assert_eq!(
        license_keys(&r.json(), "temporary"),
        [(b64url(&KID2), b64url(&KEY2))]
    );
}

#[tokio::test]
async fn unknown_kids_are_404() {
    let (app, _) = app();
    post_license(&app, &[&KID_UNKNOWN, &[7; 8]], "temporary")
        .await
        .assert_error(StatusCode::NOT_FOUND, "unknown_key_ids");
}

#[tokio::test]
async fn malformed_or_invalid_requests_are_400() {
    let (app, _) = app();
    let kid = b64url(&KID1);
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "{\"kids\":[".to_owned()),
        ("empty body", String::new()),
        ("JSON, not a request", "{\"hello\":\"world\"}".to_owned()),
        ("an array", "[1,2,3]".to_owned()),
        ("missing type", format!("{{\"kids\":[\"{kid}\"]}}")),
        (
            "unknown type",
            format!("{{\"kids\":[\"{kid}\"],\"type\":\"forever\"}}"),
        ),
        (
            "empty kids",
            "{\"kids\":[],\"type\":\"temporary\"}".to_owned(),
        ),
        (
            "padded base64",
            format!("{{\"kids\":[\"{kid}==\"],\"type\":\"temporary\"}}"),
        ),
        (
            "duplicate kid",
            format!("{{\"kids\":[\"{kid}\",\"{kid}\"],\"type\":\"temporary\"}}"),
        ),
        (
            "kid not a string",
            "{\"kids\":[17],\"type\":\"temporary\"}".to_owned(),
        ),
    ];
    for (what, body) in cases {
        let r = post_json(&app, "/clearkey/license", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}");
        r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    // The release endpoint validates its record the same way.
    for body in ["{\"kids\":[]}", "{\"kids\":\"x\"}", "nope"] {
        post_json(&app, "/clearkey/release", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn content_type_must_be_json() {
    let (app, _) = app();
    let body = license_request(&[&KID1], "temporary");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/jsonx"),
        Some(""),
    ] {
        for path in ["/clearkey/license", "/clearkey/release"] {
            call(&app, "POST", path, ct, body.clone())
                .await
                .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        }
    }
    // Parameters and case do not matter.
    for ct in ["application/json; charset=utf-8", "Application/JSON"] {
        let r = call(&app, "POST", "/clearkey/license", Some(ct), body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}");
    }
}

#[tokio::test]
async fn body_limit_is_64_kib() {
    let (app, _) = app();
    // A valid request padded with JSON whitespace to exactly the limit is answered...
    let mut body = license_request(&[&KID1], "temporary");
    body.resize(MAX_BODY_LEN, b' ');
    post_json(&app, "/clearkey/license", body.clone())
        .await
        .assert_ok();
    // ...one byte more is 413, as JSON.
    body.push(b' ');
    for path in ["/clearkey/license", "/clearkey/release"] {
        post_json(&app, path, body.clone())
            .await
            .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_json() {
    let (app, _) = app();
    let json = Some("application/json");
    let not_found = (StatusCode::NOT_FOUND, "not_found");
    let not_allowed = (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    for (method, path, content_type, body, (status, code)) in [
        ("GET", "/nope", None, "", not_found),
        ("POST", "/clearkey", json, "{}", not_found),
        ("DELETE", "/metrics", None, "", not_allowed),
        ("POST", "/healthz", json, "{}", not_allowed),
    ] {
        call(&app, method, path, content_type, body)
            .await
            .assert_error(status, code);
    }
    let r = call(&app, "GET", "/clearkey/license", None, "").await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(r.headers["allow"], "POST");
}

#[tokio::test]
async fn release_is_acknowledged_with_the_same_kids() {
    let (app, _) = app();
    // Known or not: the server keeps no license state, it acknowledges the record.
    let body = format!(
        "{{\"kids\":[\"{}\",\"{}\"]}}",
        b64url(&KID2),
        b64url(&KID_UNKNOWN)
    );
    let r = post_json(&app, "/clearkey/release", body).await;
    r.assert_ok();
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.json(),
        serde_json::json!({"kids": [b64url(&KID2), b64url(&KID_UNKNOWN)]})
    );
    // The acknowledgement is itself a valid §9.1.6 message.
    let kids = cdm_core::clearkey::parse_license_release(&r.body).unwrap();
    assert_eq!(kids, [KeyId::from(KID2), KeyId::from(KID_UNKNOWN)]);
}

#[tokio::test]
async fn healthz_is_ok() {
    let (app, _) = app();
    let r = call(&app, "GET", "/healthz", None, "").await;
    r.assert_ok();
    assert_eq!(r.body, b"ok");
}

#[tokio::test]
async fn metrics_count_requests_releases_and_errors() {
    let (app, metrics) = app();
    let scrape = || async {
        let r = call(&app, "GET", "/metrics", None, "").await;
        r.assert_ok();
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.metrics()
    };
    let before = scrape().await;
    assert_eq!(before["license_requests_total{type=\"temporary\"}"], 0);
    assert_eq!(before["license_requests_peak_per_second"], 0);
    // 4 Clear Key series, 5 protected ones, one per error code.
    assert_eq!(before.len(), 9 + license_server::ErrorCode::ALL.len());

    let lic = "/clearkey/license";
    let first_second = unix_now();
    for _ in 0..3 {
        post_license(&app, &[&KID1], "temporary").await;
    }
    post_license(&app, &[&KID2], "persistent-license").await;
    post_license(&app, &[&KID1], "persistent-license").await; // 403
    post_license(&app, &[&KID_UNKNOWN], "temporary").await; // 404
    post_json(&app, lic, "garbage").await; // 400
    call(&app, "POST", lic, Some("text/plain"), "{}").await; // 415
    post_json(&app, lic, vec![b' '; MAX_BODY_LEN + 1]).await; // 413
    call(&app, "GET", "/missing", None, "").await; // 404 route
    call(&app, "PUT", lic, None, "").await; // 405 (never reaches the endpoint)
    post_json(
        &app,
        "/clearkey/release",
        format!("{{\"kids\":[\"{}\"]}}", b64url(&KID1)),
    )
    .await;

    let last_second = unix_now();
    let after = scrape().await;
    let delta = |series: &str| after[series] - before[series];
    assert_eq!(delta("license_requests_total{type=\"temporary\"}"), 4);
    assert_eq!(
        delta("license_requests_total{type=\"persistent-license\"}"),
        2
    );
    assert_eq!(delta("license_releases_total"), 1);
    for (reason, n) in [
        ("bad_request", 1),
        ("persistent_license_not_allowed", 1),
        ("unknown_key_ids", 1),
        ("not_found", 1),
        ("method_not_allowed", 1),
        ("payload_too_large", 1),
        ("unsupported_media_type", 1),
        ("license_too_large", 0),
        ("internal_error", 0),
    ] {
        assert_eq!(
            delta(&format!("license_errors_total{{reason=\"{reason}\"}}")),
            n,
            "{reason}"
        );
    }
    // Nine requests reached the license endpoint (all but the PUT), spread over the seconds
    // the loop took; the peak is the busiest of those seconds.
    let per_second: Vec<u64> = (first_second..=last_second)
        .map(|s| metrics.requests_in_second(s))
        .collect();
    assert_eq!(per_second.iter().sum::<u64>(), 9, "{per_second:?}");
    let peak = after["license_requests_peak_per_second"];
    assert_eq!(Some(&peak), per_second.iter().max(), "{per_second:?}");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A store that always fails, as a lost database connection would.
struct BrokenStore;

impl KeyStore for BrokenStore {
    fn lookup(&self, _: &[KeyId]) -> Result<Vec<StoredKey>, StoreError> {
        Err(StoreError::Corrupt("test: the database is gone"))
    }
    fn import(&self, _: &[StoredKey]) -> Result<usize, StoreError> {
        Err(StoreError::Corrupt("test: the database is gone"))
    }
}

#[tokio::test]
async fn store_failure_is_500_without_details() {
    let app = license_server::router(Arc::new(BrokenStore), Arc::new(Metrics::new()), None);
    let r = post_license(&app, &[&KID1], "temporary").await;
    r.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    assert!(!String::from_utf8_lossy(&r.body).contains("gone"));
}

#[tokio::test]
async fn license_over_64_kib_is_refused() {
    // 1000 known 16-byte key IDs: the license would be about 70 KiB, more than a CDM accepts.
    let store = license_server::SqliteStore::open_in_memory().unwrap();
    let keys: Vec<StoredKey> = (0u16..1000)
        .map(|i| {
            let mut kid = [0u8; 16];
            kid[..2].copy_from_slice(&i.to_be_bytes());
            stored(kid, [0x5a; 16], false)
        })
        .collect();
    store.import(&keys).unwrap();
    let app = license_server::router(Arc::new(store), Arc::new(Metrics::new()), None);
    let kids: Vec<&[u8]> = keys.iter().map(|k| k.kid.as_bytes()).collect();
    let request = license_request(&kids, "temporary");
    assert!(request.len() <= MAX_BODY_LEN);
    post_json(&app, "/clearkey/license", request)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "license_too_large");
    // 500 of them fit.
    let r = post_license(&app, &kids[..500], "temporary").await;
    r.assert_ok();
    assert_eq!(license_keys(&r.json(), "temporary").len(), 500);
}

#[tokio::test]
async fn static_files_share_the_origin_and_missing_files_are_json_404() {
    let dir = TempDir::new("ls-static");
    std::fs::write(dir.join("index.html"), "<h1>player</h1>").unwrap();
    std::fs::write(dir.join("clip.mp4"), [0u8, 1, 2, 3]).unwrap();
    let app = license_server::router(
        store_with_keys(),
        Arc::new(Metrics::new()),
        Some(dir.path().to_path_buf()),
    );
    let r = call(&app, "GET", "/", None, "").await;
    r.assert_ok();
    assert_eq!(r.body, b"<h1>player</h1>");
    let r = call(&app, "GET", "/clip.mp4", None, "").await;
    assert_eq!(r.body, [0, 1, 2, 3]);
    call(&app, "GET", "/missing.mp4", None, "")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    call(&app, "GET", "/../Cargo.toml", None, "")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    call(&app, "POST", "/clip.mp4", Some("application/json"), "{}")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // The API routes still win over files.
    post_license(&app, &[&KID1], "temporary").await.assert_ok();
}

#[tokio::test]
async fn cors_allows_a_page_on_another_origin() {
    let (app, _) = app();
    let preflight = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/clearkey/license")
        .header("origin", "http://127.0.0.1:9000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = tower::ServiceExt::oneshot(app.clone(), preflight)
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("content-type"));

    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/clearkey/license")
        .header("origin", "http://127.0.0.1:9000")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(license_request(
            &[&KID1],
            "temporary",
        )))
        .unwrap();
    let r = tower::ServiceExt::oneshot(app, req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}
