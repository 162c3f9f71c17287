//! Conformance vectors of *our own format*: one complete exchange generated deterministically
//! (every random draw from `TestRng` seeded with "tee-cdm conformance v1", fixed times, RFC
//! 6979 signatures), pinned in `tests/data/vectors.txt`. They pin the encoding (a change of
//! any byte fails this test) and give another implementation a transcript to check its
//! parser and verifier against. They are not an oracle for the primitives: HPKE and ECDSA are
//! checked against RFC 9180 vectors and `ring` in `tests/hpke.rs` and `tests/oracles.rs`.
//!
//! Regenerate (after a deliberate format change) with
//! `REGENERATE_VECTORS=1 cargo test -p protected-license --test vectors`; with
//! `FUZZ_CORPUS=fuzz/corpus` the messages are also written as fuzz seeds.

use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::{ContentKey, EntitlementKey};
use protected_license::device::{unwrap_rotation_record, LicenseRequestParams, Outstanding};
use protected_license::messages::{KeyKind, MessageType, SessionType};
use protected_license::server::{rotation_record, KeyGrant};
use protected_license::Policy;

mod common;
use common::{provision, Pki, NOW};

fn transcript() -> Vec<(&'static str, Vec<u8>)> {
    let mut pki = Pki::unprovisioned(b"tee-cdm conformance v1");
    let mut out = Outstanding::new();
    let mut v = vec![
        ("root_public_key", pki.root.public_key().as_bytes().to_vec()),
        ("server_certificate", pki.server.certificate().to_vec()),
    ];
    let (req, resp) = provision(&mut pki.device, &pki.provisioning, &mut pki.rng, &mut out);
    v.push(("provisioning_request", req));
    v.push(("provisioning_response", resp));
    let params = LicenseRequestParams {
        session_type: SessionType::Temporary,
        robustness: Robustness::SW_SECURE_CRYPTO,
        hdcp: Hdcp::V2_2,
        key_ids: vec![[0x01; 16], [0x02; 16]],
        content_id: b"content-1".to_vec(),
    };
    let req = pki
        .device
        .license_request(&mut pki.rng, NOW, &mut out, &params, None)
        .unwrap();
    let cert = pki
        .device
        .verify_server_certificate(pki.server.certificate(), NOW)
        .unwrap();
    let enc_req = pki
        .device
        .license_request(&mut pki.rng, NOW, &mut out, &params, Some(&cert))
        .unwrap();
    let verified = pki.server.verify_license_request(&req, NOW).unwrap();
    let grants = [
        KeyGrant {
            kind: KeyKind::Content,
            key_id: [0x01; 16],
            robustness: Robustness::SW_SECURE_CRYPTO,
            min_hdcp: Hdcp::NONE,
            key: ContentKey::new([0x10; 16]),
        },
        KeyGrant {
            kind: KeyKind::Content,
            key_id: [0x02; 16],
            robustness: Robustness::HW_SECURE_DECODE,
            min_hdcp: Hdcp::V2_2,
            key: ContentKey::new([0x20; 16]),
        },
        KeyGrant {
            kind: KeyKind::Entitlement,
            key_id: [0x0e; 16],
            robustness: Robustness::SW_SECURE_CRYPTO,
            min_hdcp: Hdcp::NONE,
            key: ContentKey::new([0xe0; 16]),
        },
    ];
    let policy = Policy {
        license_duration: 86400,
        playback_duration: 7200,
        renewal_interval: 3600,
        can_persist: false,
    };
    let lic = pki
        .server
        .issue_license(&mut pki.rng, &verified, [0x5e; 16], NOW, policy, &grants)
        .unwrap();
    let accepted = pki.device.accept_license(&mut out, &lic, NOW).unwrap();
    let dk = pki.device.keys().signing_public_key();
    let ren = pki
        .device
        .renewal_request(&mut pki.rng, NOW + 3600, &mut out, &accepted.session_id)
        .unwrap();
    let rv = pki
        .server
        .verify_session_request(&ren, MessageType::RenewalRequest, &dk)
        .unwrap();
    let ren_resp = pki
        .server
        .renewal_response(&rv, NOW + 3600, policy)
        .unwrap();
    pki.device
        .accept_renewal(&mut out, &accepted.session_id, &ren_resp, NOW + 3600)
        .unwrap();
    let rel = pki
        .device
        .release_request(&mut pki.rng, NOW + 7200, &mut out, &accepted.session_id)
        .unwrap();
    let relv = pki
        .server
        .verify_session_request(&rel, MessageType::ReleaseRequest, &dk)
        .unwrap();
    let ack = pki.server.release_ack(&relv).unwrap();
    pki.device
        .accept_release_ack(&mut out, &accepted.session_id, &ack, NOW + 7200)
        .unwrap();
    let rot = rotation_record(
        &[0x0e; 16],
        &EntitlementKey::new([0xe0; 16]),
        &[([0x03; 16], ContentKey::new([0x30; 16]))],
    )
    .unwrap();
    let unwrapped = unwrap_rotation_record(&accepted.entitlement_keys, &rot).unwrap();
    assert_eq!(unwrapped[0].1.expose(), &[0x30; 16]);
    let keys = pki.device.keys().to_bytes();
    v.extend([
        (
            "device_private_keys (signing || encryption scalars)",
            keys.to_vec(),
        ),
        (
            "device_certificate",
            pki.device.chain().unwrap().device.clone(),
        ),
        ("license_request", req),
        ("encrypted_license_request", enc_req),
        ("license", lic),
        ("renewal_request", ren),
        ("renewal_response", ren_resp),
        ("release_request", rel),
        ("release_ack", ack),
        ("rotation_record", rot),
    ]);
    v
}

#[test]
fn conformance_vectors_are_stable() {
    let t = transcript();
    let mut text = String::from(
        "# Conformance vectors of the org.teecdm.protected format (docs/protected-license.md).\n\
         # Generated by protected-license/tests/vectors.rs: TestRng seeded with\n\
         # \"tee-cdm conformance v1\", time 1735689600. Content keys: 0x10.., 0x20.., entitlement\n\
         # key 0xe0.. (ID 0x0e..) wrapping 0x30.. (ID 0x03..). One `name = hex` per line.\n",
    );
    for (name, bytes) in &t {
        text.push_str(&format!("{name} = {}\n", hex::encode(bytes)));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vectors.txt");
    if std::env::var_os("REGENERATE_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    if let Some(dir) = std::env::var_os("FUZZ_CORPUS") {
        let dir = std::path::PathBuf::from(dir);
        for (name, bytes) in &t {
            let target = if name.contains("request") {
                "protected_server"
            } else {
                "protected_device"
            };
            let d = dir.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name.split(' ').next().unwrap()), bytes).unwrap();
        }
    }
    let pinned = std::fs::read_to_string(path).expect("tests/data/vectors.txt");
    assert_eq!(
        pinned, text,
        "the encoding changed: regenerate only for a deliberate format change"
    );
}
