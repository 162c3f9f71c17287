//! The protected key system (`org.teecdm.protected`) end to end through
//! `SecureWorld::process`: real peers (`protected_license::server`'s root, provisioning
//! service and license server, built here), real crypto, a virtual clock the tests advance,
//! an emulated output whose HDCP level they change, and content encrypted by the test kit's
//! reference encryptor. Every rejection is checked to change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;
mod protected_env;

use std::sync::atomic::Ordering;

use cdm_core::abi::{Loaded, SessionState, Status};
use cdm_core::KeyStatus::{Expired, OutputRestricted, Released, Usable};
use cdm_core::{ClosedReason, HdcpVersion, InitDataType, KeySystem, MessageType};
use cdm_testkit::rng::TestRng;
use cdm_testkit::temp::TempDir;
use common::{b64url, pssh_v1};
use hal::platform::Hdcp;
use protected_env::*;
use protected_license::cert::{Hdcp as PlHdcp, Robustness as PlRobustness};
use protected_license::crypto::SigningKey;
use protected_license::messages::{peek_type, License, MessageType as PlMessage};
use secure_world::Config;

// ---------------------------------------------------------------------------------------
// 1. The whole flow
// ---------------------------------------------------------------------------------------

#[test]
fn provisioning_then_license_then_cenc_and_cbcs_decrypt_exactly() {
    let (mut pki, mut dev) = setup(1);
    let (s, id) = dev.open(TEMP, SW);
    assert_eq!(id.len(), 16);

    // Unprovisioned: the first request is an individualization request.
    let init = pssh_v1(&[KID_A, KID_H]);
    let m = dev.generate(s, InitDataType::Cenc, &init).unwrap();
    assert_eq!(m.message_type, MessageType::IndividualizationRequest);
    assert!(m.state.key_statuses.is_empty());
    let prov = pki.provision(&m.message, dev.now());
    // Provisioned: no keys yet, nothing closed.
    let st = dev.update(s, &prov).unwrap();
    assert_eq!(st, SessionState::default());

    // The normal world calls GenerateRequest again: now a signed license request.
    let m = dev.generate(s, InitDataType::Cenc, &init).unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRequest);
    assert_eq!(peek_type(&m.message).unwrap(), PlMessage::LicenseRequest);
    // GenerateRequest only once a license request exists.
    assert_eq!(
        dev.generate(s, InitDataType::Cenc, &init).unwrap_err(),
        Status::InvalidState
    );

    let grants = [content(A), hdcp_content(H)];
    let issued = pki.issue(&m.message, dev.now(), unlimited(), &grants);
    let req = &issued.request.request;
    assert!(!issued.request.encrypted);
    assert_eq!(req.key_ids, [KID_A, KID_H]);
    assert_eq!(req.content_id, init, "the content ID is the init data");
    assert_eq!(
        req.session_type,
        protected_license::messages::SessionType::Temporary
    );
    assert_eq!(req.robustness, PlRobustness::SW_SECURE_CRYPTO);
    assert_eq!(req.hdcp, PlHdcp::V2_3);
    assert_eq!(issued.request.device.device.robustness, PlRobustness::ALL);

    let st = dev.update(s, &issued.license).unwrap();
    assert_eq!(statuses_of(&st), [(KID_A, Usable), (KID_H, Usable)]);
    assert_eq!(st.expiration_ms, None);
    assert_eq!(st.closed, None);
    assert_eq!(dev.state(s).unwrap(), st);

    for key in [A, H] {
        dev.decrypt_cenc(s, key).unwrap();
        dev.decrypt_cbcs(s, key).unwrap();
    }
    // A key the license did not carry: waiting for key.
    assert_eq!(dev.decrypt_cenc(s, B), Err(Status::NoKey));

    // A second session on the provisioned device: keyids init data, straight to a license
    // request (the device is provisioned once, not per session).
    let (s2, _) = dev.open(TEMP, SW);
    let keyids = format!(r#"{{"kids":["{}"]}}"#, b64url(&KID_B));
    let m = dev
        .generate(s2, InitDataType::KeyIds, keyids.as_bytes())
        .unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRequest);
    let issued2 = pki.issue(&m.message, dev.now(), unlimited(), &[content(B)]);
    assert_eq!(issued2.request.request.key_ids, [KID_B]);
    assert_eq!(
        issued2.request.device.device.signing_key, issued.device_key,
        "one device identity for every session"
    );
    dev.update(s2, &issued2.license).unwrap();
    dev.decrypt_cbcs(s2, B).unwrap();
    // Keys do not leak between sessions.
    assert_eq!(dev.decrypt_cenc(s2, A), Err(Status::NoKey));

    // Closing wipes the session.
    dev.close(s);
    assert_eq!(dev.state(s), Err(Status::NoSuchSession));
    dev.decrypt_cenc(s2, B).unwrap();
}

#[test]
fn protected_key_ids_must_be_16_bytes_and_the_key_system_needs_a_root() {
    let (mut pki, mut dev) = setup(2);
    dev.witness(&mut pki);
    let (s, _) = dev.open(TEMP, SW);
    assert_eq!(
        dev.generate(s, InitDataType::Webm, &[1, 2, 3]).unwrap_err(),
        Status::NotSupported
    );

    // Without a pinned root the key system is not offered.
    let mut plain = Dev::with_config(Config::default());
    assert_eq!(plain.try_open(TEMP, SW).unwrap_err(), Status::NotSupported);
    // ... and no server certificate can be set (docs/abi.md: status 0x0303).
    assert_eq!(
        plain.set_server_certificate(pki.server.certificate()),
        Err(Status::InvalidServerCertificate)
    );
}

// ---------------------------------------------------------------------------------------
// 2. setServerCertificate
// ---------------------------------------------------------------------------------------

#[test]
fn server_certificate_is_verified_and_then_encrypts_license_requests() {
    let (mut pki, mut dev) = setup(3);
    let w = dev.witness(&mut pki);
    let good = pki.server.certificate().to_vec();

    // Refused: garbage, a flipped bit, a certificate of another root, an expired one, a
    // provisioning certificate (wrong role).
    let other_root = Pki::new(99);
    let expired = pki.other_server(T0 - 3 * YEAR, T0 - YEAR);
    let prov_cert = pki
        .root
        .certify_provisioning(
            [1; 16],
            &SigningKey::generate(&mut pki.rng).public_key(),
            T0 - YEAR,
            T0 + YEAR,
        )
        .unwrap();
    for bad in [
        b"not a certificate".to_vec(),
        flip(&good, good.len() - 1),
        flip(&good, 30),
        other_root.server.certificate().to_vec(),
        expired.certificate().to_vec(),
        prov_cert,
    ] {
        assert_eq!(
            dev.set_server_certificate(&bad),
            Err(Status::InvalidServerCertificate)
        );
    }
    // A refused certificate set nothing: requests are still in clear.
    let (_, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_H]);
    assert_eq!(peek_type(&request).unwrap(), PlMessage::LicenseRequest);

    dev.set_server_certificate(&good).unwrap();
    let (s2, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_H]);
    assert_eq!(
        peek_type(&request).unwrap(),
        PlMessage::EncryptedLicenseRequest
    );
    // The device certificate and the key IDs are not visible in the encrypted request.
    let chain = pki.issue(&request, dev.now(), unlimited(), &[hdcp_content(H)]);
    assert!(chain.request.encrypted);
    assert_eq!(chain.request.request.key_ids, [KID_H]);
    assert!(!request.windows(16).any(|w| w == KID_H));
    assert!(!request
        .windows(65)
        .any(|w| w == chain.device_key.as_bytes().as_slice()));
    // Another server cannot read it.
    assert_eq!(
        other_root
            .server
            .verify_license_request(&request, dev.now())
            .unwrap_err(),
        protected_license::Error::WrongServerKey
    );
    let st = dev.update(s2, &chain.license).unwrap();
    assert_eq!(statuses_of(&st), [(KID_H, Usable)]);
    dev.decrypt_cenc(s2, H).unwrap();
    dev.decrypt_cenc(w, A).unwrap();

    // A later bad certificate keeps the good one.
    assert_eq!(
        dev.set_server_certificate(b"junk"),
        Err(Status::InvalidServerCertificate)
    );
    let (_, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_A]);
    assert_eq!(
        peek_type(&request).unwrap(),
        PlMessage::EncryptedLicenseRequest
    );
}

// ---------------------------------------------------------------------------------------
// 3. Renewal
// ---------------------------------------------------------------------------------------

#[test]
fn renewal_is_asked_when_due_and_its_response_extends_the_license() {
    let (mut pki, mut dev) = setup(4);
    let policy = unlimited().license_duration(100).renewal_interval(60);
    let (s, _, issued) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    let accepted = dev.now();
    assert_eq!(dev.expiration(s), expiring_at(accepted + 100));

    // Not due yet: an empty license-renewal message, nothing outstanding.
    dev.advance(59);
    let m = dev.renew(s).unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRenewal);
    assert!(m.message.is_empty());
    assert_eq!(statuses_of(&m.state), [(KID_A, Usable)]);

    // Due: a signed renewal request for the server's session.
    dev.advance(1);
    let m = dev.renew(s).unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRenewal);
    assert_eq!(peek_type(&m.message).unwrap(), PlMessage::RenewalRequest);
    let renewal_request = m.message;
    // A second Renew while one is pending answers empty.
    let again = dev.renew(s).unwrap();
    assert!(again.message.is_empty());

    // The answer arrives at +90: the license counts again from there.
    dev.advance(30);
    let response = pki.renew(&issued, &renewal_request, dev.now(), policy);
    let renewed_at = dev.now();
    let st = dev.update(s, &response).unwrap();
    assert_eq!(statuses_of(&st), [(KID_A, Usable)]);
    assert_eq!(st.expiration_ms, expiring_at(renewed_at + 100));

    // The same renewal response again: refused, nothing changes.
    dev.refuse_update(s, &response, Status::InvalidLicense);

    // Past the original expiry (accepted + 100): still usable.
    dev.advance(40); // accepted + 130
    assert_eq!(dev.statuses(s), [(KID_A, Usable)]);
    dev.decrypt_cenc(s, A).unwrap();
    dev.decrypt_cbcs(s, A).unwrap();
    // The next renewal is due renewal_interval after the renewal: not yet (+40 of 60).
    assert!(dev.renew(s).unwrap().message.is_empty());
    dev.advance(20);
    let m = dev.renew(s).unwrap();
    assert_eq!(peek_type(&m.message).unwrap(), PlMessage::RenewalRequest);

    // Without an answer the renewed license still ends: renewed_at + 100.
    dev.advance(renewed_at + 100 - dev.now());
    assert_eq!(dev.statuses(s), [(KID_A, Usable)]);
    dev.advance(1);
    assert_eq!(dev.statuses(s), [(KID_A, Expired)]);
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));

    // A late renewal response brings the key back.
    let response = pki.renew(&issued, &m.message, dev.now(), policy);
    let st = dev.update(s, &response).unwrap();
    assert_eq!(statuses_of(&st), [(KID_A, Usable)]);
    dev.decrypt_cenc(s, A).unwrap();
}

#[test]
fn renewal_without_interval_is_never_due_and_responses_for_other_sessions_are_refused() {
    let (mut pki, mut dev) = setup(5);
    let w = dev.witness(&mut pki);
    dev.advance(YEAR);
    assert!(dev.renew(w).unwrap().message.is_empty());
    dev.decrypt_cenc(w, A).unwrap();

    let policy = unlimited().renewal_interval(10);
    let (a, _, issued_a) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    let (b, _, issued_b) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(B)]);
    dev.advance(10);
    let ra = dev.renew(a).unwrap().message;
    let rb = dev.renew(b).unwrap().message;
    let resp_b = pki.renew(&issued_b, &rb, dev.now(), policy);
    // B's response to A: refused (another session, another nonce), nothing changes.
    dev.refused_changes_nothing(a, w, &resp_b, Status::InvalidLicense);
    // A's own response still works, and B's too.
    let resp_a = pki.renew(&issued_a, &ra, dev.now(), policy);
    dev.update(a, &resp_a).unwrap();
    dev.update(b, &resp_b).unwrap();
    // Renew on a session without a license, and on Clear Key-less handle 0.
    let (c, _) = dev.open(TEMP, SW);
    assert!(dev.renew(c).unwrap().message.is_empty());
    assert_eq!(dev.renew(0).unwrap_err(), Status::NoSuchSession);
}

// ---------------------------------------------------------------------------------------
// 4. Expiry
// ---------------------------------------------------------------------------------------

#[test]
fn license_duration_expires_keys_at_the_announced_time() {
    let (mut pki, mut dev) = setup(6);
    let policy = unlimited().license_duration(100);
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A), content(H)]);
    let expiration = expiring_at(dev.now() + 100);
    assert_eq!(dev.expiration(s), expiration);

    dev.advance(100);
    assert_eq!(dev.statuses(s), [(KID_A, Usable), (KID_H, Usable)]);
    dev.decrypt_cenc(s, A).unwrap();

    dev.advance(1);
    let st = dev.state(s).unwrap();
    assert_eq!(statuses_of(&st), [(KID_A, Expired), (KID_H, Expired)]);
    assert_eq!(st.expiration_ms, expiration);
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
    assert_eq!(dev.decrypt_cbcs(s, H), Err(Status::KeyNotUsable));
    assert_eq!(dev.decrypt_secure(s, H), Err(Status::KeyNotUsable));
    // Decrypt refuses even when nobody asked for the statuses first.
    let (s2, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(B)]);
    dev.advance(101);
    assert_eq!(dev.decrypt_cenc(s2, B), Err(Status::KeyNotUsable));
}

#[test]
fn expiry_is_enforced_to_the_millisecond_announced() {
    // A license accepted mid-second: EME's expiration must be a time after which the keys
    // are not usable.
    let (mut pki, mut dev) = setup(7);
    dev.clock.fetch_add(700, Ordering::SeqCst);
    let policy = unlimited().license_duration(10);
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    let expiration = dev.expiration(s).unwrap();
    let now_ms = dev.clock.load(Ordering::SeqCst);
    assert!(expiration >= now_ms + 10_000 - 1000 && expiration <= now_ms + 10_000);
    dev.clock.store(expiration, Ordering::SeqCst);
    dev.decrypt_cenc(s, A).unwrap();
    dev.clock.store(expiration + 1, Ordering::SeqCst);
    assert_eq!(dev.statuses(s), [(KID_A, Expired)]);
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
}

#[test]
fn playback_duration_starts_at_the_first_decrypt() {
    let (mut pki, mut dev) = setup(8);
    let policy = unlimited().license_duration(1000).playback_duration(30);
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    let accepted = dev.now();
    assert_eq!(dev.expiration(s), expiring_at(accepted + 1000));
    // Long before playback: the playback window has not started.
    dev.advance(500);
    assert_eq!(dev.statuses(s), [(KID_A, Usable)]);
    // A refused decrypt (no such key) does not start playback.
    assert_eq!(dev.decrypt_cenc(s, B), Err(Status::NoKey));
    assert_eq!(dev.expiration(s), expiring_at(accepted + 1000));
    let first = dev.now();
    dev.decrypt_cenc(s, A).unwrap();
    assert_eq!(dev.expiration(s), expiring_at(first + 30));
    dev.advance(30);
    dev.decrypt_cbcs(s, A).unwrap();
    dev.advance(1);
    assert_eq!(dev.statuses(s), [(KID_A, Expired)]);
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));

    // Playback also ends with the license: a window reaching past it is cut.
    let (s2, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    let accepted = dev.now();
    dev.advance(990);
    dev.decrypt_cenc(s2, A).unwrap();
    assert_eq!(dev.expiration(s2), expiring_at(accepted + 1000));
    dev.advance(11);
    assert_eq!(dev.decrypt_cenc(s2, A), Err(Status::KeyNotUsable));
}

// ---------------------------------------------------------------------------------------
// 5. HDCP
// ---------------------------------------------------------------------------------------

#[test]
fn hdcp_minimum_restricts_output_until_the_link_meets_it() {
    let (mut pki, mut dev) = setup(9);
    dev.set_hdcp(Hdcp::V1_4);
    let grants = [content(A), hdcp_content(H)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    let restricted = [(KID_A, Usable), (KID_H, OutputRestricted)];
    assert_eq!(dev.statuses(s), restricted);
    assert_eq!(dev.decrypt_cenc(s, H), Err(Status::KeyNotUsable));
    assert_eq!(dev.decrypt_secure(s, H), Err(Status::KeyNotUsable));
    dev.decrypt_cenc(s, A).unwrap();
    for (min_hdcp, status) in [
        (Some(HdcpVersion::V2_2), OutputRestricted),
        (Some(HdcpVersion::V1_4), Usable),
        (None, Usable),
    ] {
        assert_eq!(dev.status_for_policy(min_hdcp), status, "{min_hdcp:?}");
    }

    dev.set_hdcp(Hdcp::V2_2);
    assert_eq!(dev.statuses(s), [(KID_A, Usable), (KID_H, Usable)]);
    dev.decrypt_cenc(s, H).unwrap();
    dev.decrypt_cbcs(s, H).unwrap();
    for (min_hdcp, status) in [
        (Some(HdcpVersion::V2_2), Usable),
        (Some(HdcpVersion::V2_3), OutputRestricted),
    ] {
        assert_eq!(dev.status_for_policy(min_hdcp), status, "{min_hdcp:?}");
    }

    // The link drops: decrypt checks it now, without a status query in between.
    dev.set_hdcp(Hdcp::NONE);
    assert_eq!(dev.decrypt_cenc(s, H), Err(Status::KeyNotUsable));
    dev.decrypt_cenc(s, A).unwrap();
    assert_eq!(dev.statuses(s), restricted);
    assert_eq!(
        dev.status_for_policy(Some(HdcpVersion::V1_0)),
        OutputRestricted
    );
}

#[test]
fn an_expired_key_reports_expired_not_output_restricted() {
    let (mut pki, mut dev) = setup(10);
    dev.set_hdcp(Hdcp::V1_4);
    let policy = unlimited().license_duration(5);
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &[hdcp_content(H)]);
    assert_eq!(dev.statuses(s), [(KID_H, OutputRestricted)]);
    dev.advance(6);
    assert_eq!(dev.statuses(s), [(KID_H, Expired)]);
    dev.set_hdcp(Hdcp::V2_3);
    assert_eq!(dev.statuses(s), [(KID_H, Expired)]);
    assert_eq!(dev.decrypt_cenc(s, H), Err(Status::KeyNotUsable));
}

// ---------------------------------------------------------------------------------------
// 6. HW_SECURE_DECODE keys
// ---------------------------------------------------------------------------------------

#[test]
fn hw_secure_decode_key_never_yields_clear_output() {
    let (mut pki, mut dev) = setup(11);
    // In a SW_SECURE_CRYPTO session: the key's own requirement decides.
    let grants = [content(A), hw_content(B)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    assert_eq!(dev.statuses(s), [(KID_A, Usable), (KID_B, Usable)]);
    assert_eq!(dev.decrypt_cenc(s, B), Err(Status::OutputNotAllowed));
    assert_eq!(dev.decrypt_cbcs(s, B), Err(Status::OutputNotAllowed));
    dev.decrypt_secure(s, B).unwrap();
    // The SW key of the same license still decrypts in place.
    dev.decrypt_cenc(s, A).unwrap();
    dev.decrypt_secure(s, A).unwrap();

    // In a HW_SECURE_DECODE session nothing comes back in clear.
    let (h, _, issued) = dev.licensed(&mut pki, TEMP, HW, unlimited(), &grants);
    assert_eq!(
        issued.request.request.robustness,
        PlRobustness::HW_SECURE_DECODE
    );
    for key in [A, B] {
        assert_eq!(dev.decrypt_cenc(h, key), Err(Status::OutputNotAllowed));
        dev.decrypt_secure(h, key).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// 7. Entitlement keys and in-band rotation
// ---------------------------------------------------------------------------------------

#[test]
fn in_band_keys_under_the_entitlement_key_need_no_new_license() {
    let (mut pki, mut dev) = setup(12);
    dev.set_hdcp(Hdcp::V1_4);
    let grants = [content(A), entitlement(E)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    // The entitlement key is not a content key: no status, no decrypt.
    assert_eq!(dev.statuses(s), [(KID_A, Usable)]);
    assert_eq!(dev.decrypt_cenc(s, E), Err(Status::NoKey));
    dev.decrypt_cenc(s, A).unwrap();

    let rec = rotation(E, &[R1, R2]);
    let before = dev.state(s).unwrap();

    // Refused, changing nothing: an unknown entitlement key, the right ID under another key,
    // a flipped bit in a wrapped key, in a key ID, in the entitlement key ID, a truncation.
    let header = 6;
    let first_entry = header + 16 + 1;
    for bad in [
        rotation(([0x99; 16], KEY_E), &[R1]),
        rotation((KID_E, [0x01; 16]), &[R1]),
        flip(&rec, first_entry + 16 + 3), // wrapped key of R1
        flip(&rec, rec.len() - 1),        // wrapped key of R2: all or nothing
        flip(&rec, first_entry),          // key ID of R1
        flip(&rec, header),               // entitlement key ID
        rec[..rec.len() - 1].to_vec(),
        b"junk".to_vec(),
    ] {
        assert_eq!(dev.add_in_band(s, &bad), Err(Status::InvalidLicense));
        assert_eq!(dev.state(s).unwrap(), before);
        assert_eq!(dev.decrypt_cenc(s, R1), Err(Status::NoKey));
        dev.decrypt_cenc(s, A).unwrap();
    }

    // The genuine record: new keys, inheriting the entitlement key's HDCP 2.2 minimum.
    let st = dev.add_in_band(s, &rec).unwrap();
    let restricted = [
        (KID_A, Usable),
        (KID_R1, OutputRestricted),
        (KID_R2, OutputRestricted),
    ];
    assert_eq!(statuses_of(&st), restricted);
    assert_eq!(dev.statuses(s), restricted);
    assert_eq!(dev.decrypt_cenc(s, R1), Err(Status::KeyNotUsable));
    dev.set_hdcp(Hdcp::V2_2);
    assert_eq!(
        dev.statuses(s),
        [(KID_A, Usable), (KID_R1, Usable), (KID_R2, Usable)]
    );
    dev.decrypt_cenc(s, R1).unwrap();
    dev.decrypt_cbcs(s, R2).unwrap();

    // The next rotation replaces R2's key (same key ID, new key).
    let new_r2 = (KID_R2, [0x73; 16]);
    dev.add_in_band(s, &rotation(E, &[new_r2])).unwrap();
    dev.decrypt_cenc(s, new_r2).unwrap();
    assert_eq!(dev.statuses(s).len(), 3);

    // No license, no entitlement: a session without a license refuses records.
    let (n, _) = dev.open(TEMP, SW);
    assert_eq!(dev.add_in_band(n, &rec), Err(Status::InvalidState));
    // A license without that entitlement key.
    let w = dev.witness(&mut pki);
    dev.refuse_in_band(w, &rec, Status::InvalidLicense);
}

#[test]
fn an_in_band_answer_lists_every_key_as_of_now_though_decrypts_check_only_their_own() {
    let (mut pki, mut dev) = setup(44);
    dev.set_hdcp(Hdcp::V2_2);
    let grants = [content(A), hdcp_content(H), entitlement(E)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    dev.decrypt_cenc(s, H).unwrap();
    // The link drops; since then only A is decrypted, which checks A alone.
    dev.set_hdcp(Hdcp::NONE);
    dev.decrypt_cenc(s, A).unwrap();
    // The answer to the record lists H (and R1, under E's HDCP 2.2) as of now, not as the
    // decrypt of H last found it.
    let st = dev.add_in_band(s, &rotation(E, &[R1])).unwrap();
    let now = [
        (KID_A, Usable),
        (KID_H, OutputRestricted),
        (KID_R1, OutputRestricted),
    ];
    assert_eq!(statuses_of(&st), now);
    assert_eq!(dev.statuses(s), now);
}

#[test]
fn in_band_keys_inherit_the_entitlement_keys_robustness() {
    let (mut pki, mut dev) = setup(13);
    let grants = [content(A), hw_entitlement(E)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    dev.add_in_band(s, &rotation(E, &[R1])).unwrap();
    assert_eq!(dev.decrypt_cenc(s, R1), Err(Status::OutputNotAllowed));
    dev.decrypt_secure(s, R1).unwrap();
}

#[test]
fn in_band_keys_expire_with_the_license() {
    let (mut pki, mut dev) = setup(14);
    let policy = unlimited().license_duration(50);
    let grants = [content(A), entitlement(E)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, policy, &grants);
    dev.advance(51);
    // Accepted or refused, an in-band key of an expired license never decrypts and is
    // never announced usable.
    match dev.add_in_band(s, &rotation(E, &[R1])) {
        Ok(st) => {
            assert_eq!(statuses_of(&st), [(KID_A, Expired), (KID_R1, Expired)]);
            assert_eq!(dev.decrypt_cenc(s, R1), Err(Status::KeyNotUsable));
        }
        Err(_) => assert_eq!(dev.decrypt_cenc(s, R1), Err(Status::NoKey)),
    }
    assert!(dev.statuses(s).iter().all(|(_, st)| *st == Expired));
}

// ---------------------------------------------------------------------------------------
// 8. Persistent licenses
// ---------------------------------------------------------------------------------------

fn license_records(dir: &TempDir) -> usize {
    std::fs::read_dir(dir.join("store"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("lic-")
        })
        .count()
}

#[test]
fn persistent_license_survives_a_restart_and_its_release_is_acknowledged() {
    let (mut pki, dir, mut dev) = setup_stored(15, "protected-persist");
    let policy = persistable().license_duration(3600);
    let grants = [content(A), hdcp_content(H)];
    let (s, id, issued) = dev.licensed(&mut pki, PERSIST, SW, policy, &grants);
    assert_eq!(
        issued.request.request.session_type,
        protected_license::messages::SessionType::PersistentLicense
    );
    dev.decrypt_cenc(s, A).unwrap();
    let accepted = dev.now();
    assert_eq!(license_records(&dir), 1);

    // A new secure world on the same storage, later.
    dev.advance(600);
    let mut dev = dev.restart(&pki, dir.path());
    // The stored license is the protected key system's.
    assert_eq!(
        dev.load(KeySystem::ClearKey, SW, &id).unwrap_err(),
        Status::NotSupported
    );
    assert_eq!(
        dev.load(KeySystem::Protected, HW, &id).unwrap_err(),
        Status::NotSupported
    );
    let (s, loaded) = dev.load(KeySystem::Protected, SW, &id).unwrap();
    assert_ne!(s, 0);
    assert!(loaded.found);
    assert!(loaded.release_message.is_empty());
    assert_eq!(
        statuses_of(&loaded.state),
        [(KID_A, Usable), (KID_H, Usable)]
    );
    // The license still counts from its first acceptance.
    assert_eq!(loaded.state.expiration_ms, expiring_at(accepted + 3600));
    dev.decrypt_cenc(s, A).unwrap();
    dev.decrypt_cbcs(s, H).unwrap();
    // Its restrictions were stored too.
    dev.set_hdcp(Hdcp::V1_4);
    assert_eq!(dev.decrypt_cenc(s, H), Err(Status::KeyNotUsable));
    dev.set_hdcp(Hdcp::V2_3);
    // The device identity was stored too: no second provisioning, the same device key.
    let (t, _) = dev.open(TEMP, SW);
    let m = dev
        .generate(t, InitDataType::Cenc, &pssh_v1(&[KID_A]))
        .unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRequest);
    let again = pki.issue(&m.message, dev.now(), unlimited(), &[content(A)]);
    assert_eq!(again.device_key, issued.device_key);

    // remove(): a signed release request the server verifies.
    let m = dev.remove(s).unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRelease);
    assert_eq!(peek_type(&m.message).unwrap(), PlMessage::ReleaseRequest);
    assert!(m.state.key_statuses.iter().all(|(_, st)| *st == Released));
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
    let ack = pki.release(&issued, &m.message);
    let st = dev.update(s, &ack).unwrap();
    assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));
    assert_eq!(dev.state(s), Err(Status::NoSuchSession));
    // The stored record is gone, before and after a restart.
    assert_eq!(license_records(&dir), 0);
    let gone = (0, Loaded::default());
    assert_eq!(dev.load(KeySystem::Protected, SW, &id).unwrap(), gone);
    let mut dev = dev.restart(&pki, dir.path());
    assert_eq!(dev.load(KeySystem::Protected, SW, &id).unwrap(), gone);
}

#[test]
fn a_release_pending_over_a_restart_is_finished_after_load() {
    let (mut pki, dir, mut dev) = setup_stored(16, "protected-release");
    let (s, id, issued) = dev.licensed(&mut pki, PERSIST, SW, persistable(), &[content(A)]);
    let m = dev.remove(s).unwrap();
    assert_eq!(peek_type(&m.message).unwrap(), PlMessage::ReleaseRequest);
    // The acknowledgement never arrives before the restart.
    let mut dev = dev.restart(&pki, dir.path());
    let (s, loaded) = dev.load(KeySystem::Protected, SW, &id).unwrap();
    assert!(loaded.found);
    assert_eq!(statuses_of(&loaded.state), [(KID_A, Released)]);
    assert_eq!(
        peek_type(&loaded.release_message).unwrap(),
        PlMessage::ReleaseRequest
    );
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
    let ack = pki.release(&issued, &loaded.release_message);
    let st = dev.update(s, &ack).unwrap();
    assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));
    assert_eq!(license_records(&dir), 0);
}

#[test]
fn a_license_that_may_not_persist_is_refused_by_a_persistent_session() {
    let (mut pki, dir, mut dev) = setup_stored(17, "protected-nopersist");
    let w = dev.witness(&mut pki);
    let (s, id, request) = dev.awaiting_license(&pki, PERSIST, &[KID_B]);
    let temporary_only = pki.issue(&request, dev.now(), unlimited(), &[content(B)]);
    dev.refused_changes_nothing(s, w, &temporary_only.license, Status::InvalidLicense);
    assert_eq!(license_records(&dir), 0);
    assert_eq!(
        dev.load(KeySystem::Protected, SW, &id),
        Err(Status::SessionIdInUse)
    );
    // The genuine (persistable) answer to the same request still works.
    let ok = pki.issue(&request, dev.now(), persistable(), &[content(B)]);
    dev.update(s, &ok.license).unwrap();
    dev.decrypt_cenc(s, B).unwrap();
    assert_eq!(license_records(&dir), 1);
}

#[test]
fn persistent_sessions_need_storage_and_keep_a_renewed_policy() {
    let (mut pki, mut plain) = setup(18);
    assert_eq!(
        plain.try_open(PERSIST, SW).unwrap_err(),
        Status::NotSupported
    );

    let dir = TempDir::new("protected-renew-persist");
    let mut dev = Dev::with_storage(&pki, dir.path(), new_clock());
    let policy = persistable().license_duration(100).renewal_interval(50);
    let (s, id, issued) = dev.licensed(&mut pki, PERSIST, SW, policy, &[content(A)]);
    dev.advance(50);
    dev.renewed(&pki, s, &issued, policy);
    let renewed_at = dev.now();
    // Past the first license's end (+100), within the renewed one (+50 + 100).
    dev.advance(70);
    let mut dev = dev.restart(&pki, dir.path());
    let (s, loaded) = dev.load(KeySystem::Protected, SW, &id).unwrap();
    assert_eq!(loaded.state.expiration_ms, expiring_at(renewed_at + 100));
    assert_eq!(statuses_of(&loaded.state), [(KID_A, Usable)]);
    dev.decrypt_cenc(s, A).unwrap();
    // The loaded session renews with the same device identity (renewed + 50 is due).
    let st = dev.renewed(&pki, s, &issued, policy);
    assert_eq!(st.expiration_ms, expiring_at(dev.now() + 100));
    dev.advance(120);
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
}

// ---------------------------------------------------------------------------------------
// 9. Rejections: each changes nothing
// ---------------------------------------------------------------------------------------

#[test]
fn license_with_a_wrong_signature_is_refused() {
    let (mut pki, mut dev) = setup(20);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B]);
    let issued = pki.issue(&request, dev.now(), unlimited(), &[content(B)]);
    let lic = &issued.license;
    for at in [lic.len() - 1, lic.len() - 40, lic.len() - 64] {
        dev.refused_changes_nothing(s, w, &flip(lic, at), Status::InvalidLicense);
    }
    // A license signed by a key that is not the certificate's.
    let forged = {
        let mut parsed = License::parse(lic).unwrap();
        parsed.issued_at += 1;
        parsed.encode(&SigningKey::generate(&mut pki.rng)).unwrap()
    };
    dev.refused_changes_nothing(s, w, &forged, Status::InvalidLicense);
    // The genuine license is still accepted.
    let st = dev.update(s, lic).unwrap();
    assert_eq!(statuses_of(&st), [(KID_B, Usable)]);
    dev.decrypt_cenc(s, B).unwrap();
}

#[test]
fn replayed_license_is_refused() {
    let (mut pki, mut dev) = setup(21);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B]);
    let issued = pki.issue(&request, dev.now(), unlimited(), &[content(B)]);
    dev.update(s, &issued.license).unwrap();
    dev.decrypt_cenc(s, B).unwrap();
    // The same license again, in the same session: refused, nothing changes.
    dev.refused_changes_nothing(s, w, &issued.license, Status::InvalidLicense);
    dev.decrypt_cenc(s, B).unwrap();
    // A second license for the same (consumed) request: refused too.
    let second = pki.issue(&request, dev.now(), unlimited(), &[content(H)]);
    dev.refused_changes_nothing(s, w, &second.license, Status::InvalidLicense);
    assert_eq!(dev.decrypt_cenc(s, H), Err(Status::NoKey));
    // In another session waiting for its own license: refused, and its own still works.
    let (s2, _, request2) = dev.awaiting_license(&pki, TEMP, &[KID_B]);
    dev.refused_changes_nothing(s2, w, &issued.license, Status::InvalidLicense);
    let own = pki.issue(&request2, dev.now(), unlimited(), &[content(B)]);
    dev.update(s2, &own.license).unwrap();
    dev.decrypt_cenc(s2, B).unwrap();
}

#[test]
fn license_for_another_device_is_refused() {
    let (mut pki, mut dev) = setup(22);
    let mut other = Dev::new(&pki);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B]);
    let (o, _, other_request) = other.awaiting_license(&pki, TEMP, &[KID_B]);
    let for_other = pki.issue(&other_request, other.now(), unlimited(), &[content(B)]);
    let this_key = pki
        .issue(&request, dev.now(), unlimited(), &[content(B)])
        .device_key;
    assert_ne!(for_other.device_key, this_key);
    dev.refused_changes_nothing(s, w, &for_other.license, Status::InvalidLicense);
    // The same license re-addressed to this device (device key ID edited, re-signed by the
    // server): its keys are sealed to the other device and do not open.
    let readdressed = pki.resign(&for_other.license, |l| {
        l.device_key_id = this_key.key_id();
    });
    dev.refused_changes_nothing(s, w, &readdressed, Status::InvalidLicense);
    // Both devices accept their own.
    let own = pki.issue(&request, dev.now(), unlimited(), &[content(B)]);
    dev.update(s, &own.license).unwrap();
    dev.decrypt_cenc(s, B).unwrap();
    other.update(o, &for_other.license).unwrap();
    other.decrypt_cenc(o, B).unwrap();
}

#[test]
fn license_with_a_tampered_wrapped_key_is_refused() {
    let (mut pki, mut dev) = setup(23);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B, KID_H]);
    let grants = [content(B), hdcp_content(H)];
    let lic = pki.issue(&request, dev.now(), unlimited(), &grants).license;
    let at = find(&lic, &License::parse(&lic).unwrap().keys[1].sealed);
    for bad in [
        // A flipped byte inside a sealed key: the signature fails.
        flip(&lic, at + 5),
        // The same, re-signed by the server's key: the key's AEAD tag fails (ciphertext, tag).
        pki.resign(&lic, |l| l.keys[1].sealed[5] ^= 0x80),
        pki.resign(&lic, |l| l.keys[1].sealed[20] ^= 0x80),
        // A key's restrictions changed and re-signed: bound by the AEAD's associated data.
        pki.resign(&lic, |l| l.keys[1].min_hdcp = PlHdcp::NONE),
        pki.resign(&lic, |l| l.keys.swap(0, 1)),
    ] {
        dev.refused_changes_nothing(s, w, &bad, Status::InvalidLicense);
    }
    // The genuine one.
    dev.update(s, &lic).unwrap();
    dev.decrypt_cenc(s, B).unwrap();
    dev.decrypt_cenc(s, H).unwrap();
}

#[test]
fn license_from_a_server_whose_certificate_expired_is_refused() {
    let (mut pki, mut dev) = setup(24);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B]);
    let expired = pki.other_server(T0 - 3 * YEAR, T0 - 1);
    let not_yet = pki.other_server(T0 + 10, T0 + YEAR);
    for server in [&expired, &not_yet] {
        let stale = pki.issue_from(
            Some(server),
            &request,
            dev.now(),
            unlimited(),
            &[content(B)],
        );
        dev.refused_changes_nothing(s, w, &stale.license, Status::InvalidLicense);
    }
    assert_eq!(
        dev.set_server_certificate(expired.certificate()),
        Err(Status::InvalidServerCertificate)
    );
    let ok = pki.issue(&request, dev.now(), unlimited(), &[content(B)]);
    dev.update(s, &ok.license).unwrap();
    dev.decrypt_cenc(s, B).unwrap();
}

#[test]
fn replayed_or_foreign_provisioning_response_is_refused() {
    let (mut pki, mut dev) = setup(25);
    let (s, _) = dev.open(TEMP, SW);
    let init = pssh_v1(&[KID_A]);
    let m = dev.generate(s, InitDataType::Cenc, &init).unwrap();
    assert_eq!(m.message_type, MessageType::IndividualizationRequest);
    let prov = pki.provision(&m.message, dev.now());

    // A response for another device's request: refused, still unprovisioned.
    let mut other = Dev::new(&pki);
    let (o, _) = other.open(TEMP, SW);
    let om = other.generate(o, InitDataType::Cenc, &init).unwrap();
    let foreign = pki.provision(&om.message, other.now());
    dev.refuse_update(s, &foreign, Status::InvalidLicense);
    // A tampered one.
    assert_eq!(
        dev.update(s, &flip(&prov, prov.len() - 3)),
        Err(Status::InvalidLicense)
    );
    let again = dev.generate(s, InitDataType::Cenc, &init).unwrap();
    assert_eq!(again.message_type, MessageType::IndividualizationRequest);

    // The genuine response.
    dev.update(s, &prov).unwrap();
    let w = dev.witness(&mut pki);

    // Replayed, to the session that asked and to another: refused, nothing changes.
    let (s2, _) = dev.open(TEMP, SW);
    for session in [s, w, s2] {
        dev.refused_changes_nothing(session, w, &prov, Status::InvalidLicense);
    }
    // Still provisioned with the same identity: requests verify under the same device key.
    let request = dev.generate(s2, InitDataType::Cenc, &init).unwrap();
    assert_eq!(request.message_type, MessageType::LicenseRequest);
    let issued = pki.issue(&request.message, dev.now(), unlimited(), &[content(A)]);
    dev.update(s2, &issued.license).unwrap();
    dev.decrypt_cenc(s2, A).unwrap();
    // The other device's own response still provisions it.
    other.update(o, &foreign).unwrap();
}

#[test]
fn release_ack_for_another_session_is_refused() {
    let (mut pki, mut dev) = setup(26);
    let w = dev.witness(&mut pki);
    let (a, _, issued_a) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &[content(B)]);
    let (b, _, issued_b) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &[content(H)]);
    // An acknowledgement before remove(): refused.
    let ra = dev.remove(a).unwrap();
    let ack_a = pki.release(&issued_a, &ra.message);
    assert_eq!(dev.update(b, &ack_a), Err(Status::InvalidState));
    dev.decrypt_cenc(b, H).unwrap();

    let rb = dev.remove(b).unwrap();
    let ack_b = pki.release(&issued_b, &rb.message);
    // B's acknowledgement to A and A's to B: refused, both stay released and open.
    dev.refused_changes_nothing(a, w, &ack_b, Status::InvalidLicense);
    dev.refused_changes_nothing(b, w, &ack_a, Status::InvalidLicense);
    // A license or renewal response is not an acknowledgement.
    let (c, _, req_c) = dev.awaiting_license(&pki, TEMP, &[KID_A]);
    let lic_c = pki.issue(&req_c, dev.now(), unlimited(), &[content(A)]);
    dev.refused_changes_nothing(a, w, &lic_c.license, Status::InvalidState);
    // Each its own.
    for (session, ack) in [(a, &ack_a), (b, &ack_b)] {
        let st = dev.update(session, ack).unwrap();
        assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));
    }
    assert_eq!(dev.state(a), Err(Status::NoSuchSession));
    dev.update(c, &lic_c.license).unwrap();
    dev.decrypt_cenc(c, A).unwrap();
}

// ---------------------------------------------------------------------------------------
// No-panic sweep
// ---------------------------------------------------------------------------------------

#[test]
fn truncated_and_bit_flipped_licenses_are_refused_without_panic_or_change() {
    let (mut pki, mut dev) = setup(30);
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_B, KID_H]);
    let policy = unlimited().license_duration(100);
    let grants = [content(B), hdcp_content(H), entitlement(E)];
    let lic = pki.issue(&request, dev.now(), policy, &grants).license;
    // The fuzz targets cover far more; here a sample that runs in seconds under qemu too.
    sweep(&mut dev, s, w, &lic, 400, 0x5eed, |d, b| {
        d.update(s, b).is_ok()
    });
    let st = dev.update(s, &lic).unwrap();
    assert_eq!(statuses_of(&st), [(KID_B, Usable), (KID_H, Usable)]);
}

#[test]
fn playback_duration_of_a_persistent_license_survives_a_reload() {
    let (mut pki, dir, mut dev) = setup_stored(19, "protected-playback-persist");
    let policy = persistable().license_duration(1000).playback_duration(30);
    let (s, id, _) = dev.licensed(&mut pki, PERSIST, SW, policy, &[content(A)]);
    dev.advance(10);
    let first = dev.now();
    dev.decrypt_cenc(s, A).unwrap();
    assert_eq!(dev.expiration(s), expiring_at(first + 30));
    // Closing and loading the session again must not restart the playback window.
    dev.advance(20);
    let mut dev = dev.restart(&pki, dir.path());
    let (s, loaded) = dev.load(KeySystem::Protected, SW, &id).unwrap();
    assert_eq!(loaded.state.expiration_ms, expiring_at(first + 30));
    dev.decrypt_cenc(s, A).unwrap();
    dev.advance(first + 31 - dev.now());
    assert_eq!(dev.decrypt_cenc(s, A), Err(Status::KeyNotUsable));
    assert_eq!(dev.statuses(s), [(KID_A, Expired)]);
}

#[test]
fn a_license_naming_a_key_twice_is_refused() {
    // Signed by the server, but inconsistent: which key, which restrictions? A key named
    // twice could otherwise load one entry's key under the other's restrictions (a
    // HW_SECURE_DECODE key in clear), and a stored record with a key ID twice no longer loads.
    let (mut pki, dir, mut dev) = setup_stored(27, "protected-duplicates");
    let w = dev.witness(&mut pki);
    for ty in [TEMP, PERSIST] {
        let (s, _, request) = dev.awaiting_license(&pki, ty, &[KID_B]);
        for twice in [
            vec![content((KID_B, [0x99; 16])), hw_content(B)],
            vec![
                content(A),
                entitlement(E),
                hw_entitlement((KID_E, [0x98; 16])),
            ],
        ] {
            let twice = pki.issue(&request, dev.now(), persistable(), &twice);
            dev.refused_changes_nothing(s, w, &twice.license, Status::InvalidLicense);
        }
        assert_eq!(license_records(&dir), 0);
        let ok = pki.issue(&request, dev.now(), persistable(), &[hw_content(B)]);
        dev.update(s, &ok.license).unwrap();
        assert_eq!(dev.decrypt_cenc(s, B), Err(Status::OutputNotAllowed));
        dev.decrypt_secure(s, B).unwrap();
    }
    assert_eq!(license_records(&dir), 1);
}

#[test]
fn key_quota_refuses_licenses_and_in_band_keys_without_change() {
    let mut pki = Pki::new(28);
    let mut dev = Dev::with_config(Config {
        max_keys_per_session: 2,
        ..pki.config()
    });
    let w = dev.witness(&mut pki);
    let (s, _, request) = dev.awaiting_license(&pki, TEMP, &[KID_A, KID_B, KID_H]);
    let three = [content(A), content(B), content(H)];
    let three = pki.issue(&request, dev.now(), unlimited(), &three);
    dev.refused_changes_nothing(s, w, &three.license, Status::KeyQuotaExceeded);
    let two = [content(A), entitlement(E)];
    let two = pki.issue(&request, dev.now(), unlimited(), &two);
    dev.update(s, &two.license).unwrap();
    dev.add_in_band(s, &rotation(E, &[R1])).unwrap();
    dev.refuse_in_band(s, &rotation(E, &[R2]), Status::KeyQuotaExceeded);
    dev.decrypt_cenc(s, R1).unwrap();
    assert_eq!(dev.decrypt_cenc(s, R2), Err(Status::NoKey));
    // A known key ID is replaced, not counted again.
    let new_r1 = (KID_R1, [0x7a; 16]);
    dev.add_in_band(s, &rotation(E, &[new_r1])).unwrap();
    dev.decrypt_cenc(s, new_r1).unwrap();
}

/// Every truncation of `genuine`, one byte appended, and `flips` random byte flips are
/// refused by `submit` (which answers whether the message was accepted), and neither
/// session `s` nor the witness `w` changes.
fn sweep(
    dev: &mut Dev,
    s: u64,
    w: u64,
    genuine: &[u8],
    flips: usize,
    seed: u64,
    mut submit: impl FnMut(&mut Dev, &[u8]) -> bool,
) {
    let before = dev.state(s).unwrap();
    let before_w = dev.state(w).unwrap();
    for n in 0..genuine.len() {
        assert!(!submit(dev, &genuine[..n]), "truncation to {n} accepted");
    }
    let mut extended = genuine.to_vec();
    extended.push(0);
    assert!(!submit(dev, &extended), "an appended byte accepted");
    let mut rng = TestRng::new(seed);
    for _ in 0..flips {
        let mut bad = genuine.to_vec();
        let at = rng.below(genuine.len() as u64) as usize;
        let x = 1 + rng.below(255) as u8;
        bad[at] ^= x;
        assert!(!submit(dev, &bad), "flip {x:#x} at {at} accepted");
    }
    assert_eq!(dev.state(s).unwrap(), before);
    assert_eq!(dev.state(w).unwrap(), before_w);
    dev.decrypt_cenc(w, A).unwrap();
}

#[test]
fn other_server_messages_are_refused_truncated_or_flipped_without_change() {
    let (mut pki, mut dev) = setup(31);

    // Provisioning response (the witness comes after: the device is not provisioned yet).
    let (p, _) = dev.open(TEMP, SW);
    let m = dev
        .generate(p, InitDataType::Cenc, &pssh_v1(&[KID_A]))
        .unwrap();
    let prov = pki.provision(&m.message, dev.now());
    let before = dev.state(p).unwrap();
    for n in 0..prov.len() {
        assert!(dev.update(p, &prov[..n]).is_err());
    }
    let mut rng = TestRng::new(0x9a0);
    for _ in 0..300 {
        let mut bad = prov.clone();
        bad[rng.below(prov.len() as u64) as usize] ^= 1 + rng.below(255) as u8;
        assert!(dev.update(p, &bad).is_err());
    }
    assert_eq!(dev.state(p).unwrap(), before);
    assert_eq!(
        dev.generate(p, InitDataType::Cenc, &pssh_v1(&[KID_A]))
            .unwrap()
            .message_type,
        MessageType::IndividualizationRequest
    );
    dev.update(p, &prov).unwrap();
    let w = dev.witness(&mut pki);

    // Renewal response.
    let policy = unlimited().renewal_interval(10).license_duration(20);
    let grants = [content(B), entitlement(E)];
    let (s, _, issued) = dev.licensed(&mut pki, TEMP, SW, policy, &grants);
    dev.advance(10);
    let req = dev.renew(s).unwrap().message;
    let resp = pki.renew(&issued, &req, dev.now(), policy);
    sweep(&mut dev, s, w, &resp, 300, 0x9a1, |d, b| {
        d.update(s, b).is_ok()
    });
    dev.update(s, &resp).unwrap();

    // Rotation record (no signature: every flip must fail the key wrap or the parse).
    let rec = rotation(E, &[R1, R2]);
    sweep(&mut dev, s, w, &rec, 1500, 0x9a2, |d, b| {
        d.add_in_band(s, b).is_ok()
    });
    dev.add_in_band(s, &rec).unwrap();
    dev.decrypt_cenc(s, R2).unwrap();

    // Release acknowledgement.
    let rel = dev.remove(s).unwrap().message;
    let ack = pki.release(&issued, &rel);
    sweep(&mut dev, s, w, &ack, 300, 0x9a3, |d, b| {
        d.update(s, b).is_ok()
    });
    let st = dev.update(s, &ack).unwrap();
    assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));

    // Server certificate.
    let cert = pki.server.certificate().to_vec();
    let (t, _) = dev.open(TEMP, SW);
    sweep(&mut dev, t, w, &cert, 300, 0x9a4, |d, b| {
        d.set_server_certificate(b).is_ok()
    });
    let request = dev.license_request(&pki, t, &[KID_A]);
    assert_eq!(peek_type(&request).unwrap(), PlMessage::LicenseRequest);
    dev.set_server_certificate(&cert).unwrap();
}

#[test]
fn generate_request_limits_answer_their_own_statuses() {
    let (mut pki, mut dev) = setup(32);
    // An application retrying individualization: eight requests may await an answer; the
    // ninth is a state of the session (InvalidState), not an invalid license.
    let (p, _) = dev.open(TEMP, SW);
    let init = pssh_v1(&[KID_A]);
    let mut requests = Vec::new();
    for _ in 0..8 {
        let m = dev.generate(p, InitDataType::Cenc, &init).unwrap();
        assert_eq!(m.message_type, MessageType::IndividualizationRequest);
        requests.push(m.message);
    }
    assert_eq!(
        dev.generate(p, InitDataType::Cenc, &init).unwrap_err(),
        Status::InvalidState
    );
    // Any of them may be answered.
    let prov = pki.provision(&requests[3], dev.now());
    dev.update(p, &prov).unwrap();
    let w = dev.witness(&mut pki);

    // More key IDs than one license request carries: NotSupported, as for Clear Key.
    let kids: Vec<[u8; 16]> = (0..33u8).map(|i| [i; 16]).collect();
    let (s, _) = dev.open(TEMP, SW);
    assert_eq!(
        dev.generate(s, InitDataType::Cenc, &pssh_v1(&kids))
            .unwrap_err(),
        Status::NotSupported
    );
    let m = dev
        .generate(s, InitDataType::Cenc, &pssh_v1(&kids[..32]))
        .unwrap();
    assert_eq!(m.message_type, MessageType::LicenseRequest);
    let issued = pki.issue(&m.message, dev.now(), unlimited(), &[content(A)]);
    assert_eq!(issued.request.request.key_ids.len(), 32);
    dev.decrypt_cenc(w, A).unwrap();
}

#[test]
fn a_clear_key_license_does_not_load_as_a_protected_one() {
    let (_, _dir, mut dev) = setup_stored(33, "protected-clearkey-record");
    // A Clear Key persistent license in the same store.
    let (s, clear_key_id) = dev.try_open_in(KeySystem::ClearKey, PERSIST, SW).unwrap();
    dev.generate(
        s,
        InitDataType::KeyIds,
        format!(r#"{{"kids":["{}"]}}"#, b64url(&KID_A)).as_bytes(),
    )
    .unwrap();
    let jwk = cdm_testkit::clearkey::license(&[(&KID_A[..], &KEY_A)], "persistent-license");
    dev.update(s, &jwk).unwrap();
    dev.decrypt_cenc(s, A).unwrap();
    dev.close(s);
    assert_eq!(
        dev.load(KeySystem::Protected, SW, &clear_key_id)
            .unwrap_err(),
        Status::NotSupported
    );
    let (s, loaded) = dev.load(KeySystem::ClearKey, SW, &clear_key_id).unwrap();
    assert!(loaded.found);
    dev.decrypt_cenc(s, A).unwrap();
    // A protected session refuses a license before it made a request.
    let (p, _) = dev.open(TEMP, SW);
    assert_eq!(dev.update(p, b"TCPL\x01\x22"), Err(Status::InvalidState));
}

// ---------------------------------------------------------------------------------------
// 10. Hardening: lost renewals, renewals that forbid persisting, in-band keys that would
//     replace a license's own key, init data checked before any identity exists
// ---------------------------------------------------------------------------------------

#[test]
fn a_lost_renewal_is_asked_again_one_interval_later() {
    let (mut pki, mut dev) = setup(40);
    let policy = unlimited().license_duration(1000).renewal_interval(60);
    let (s, _, issued) = dev.licensed(&mut pki, TEMP, SW, policy, &[content(A)]);
    dev.advance(60);
    let first = dev.renew(s).unwrap().message;
    assert_eq!(peek_type(&first).unwrap(), PlMessage::RenewalRequest);
    // The request (or its answer) is lost: nothing more within the interval ...
    dev.advance(59);
    assert!(dev.renew(s).unwrap().message.is_empty());
    // ... then a new request.
    dev.advance(1);
    let second = dev.renew(s).unwrap().message;
    assert_eq!(peek_type(&second).unwrap(), PlMessage::RenewalRequest);
    assert_ne!(first, second, "a fresh nonce");
    // Either request's answer renews (both nonces are outstanding), once.
    let resp = pki.renew(&issued, &second, dev.now(), policy);
    dev.update(s, &resp).unwrap();
    let late = pki.renew(&issued, &first, dev.now(), policy);
    dev.update(s, &late).unwrap();
    assert_eq!(dev.update(s, &late), Err(Status::InvalidLicense));
    // Renewed: the next request is due an interval after the last renewal, not before.
    dev.advance(59);
    assert!(dev.renew(s).unwrap().message.is_empty());
}

#[test]
fn a_renewal_forbidding_persistence_is_refused_by_a_persistent_session() {
    let (mut pki, _dir, mut dev) = setup_stored(41, "protected-renew-unpersist");
    let policy = persistable().license_duration(1000).renewal_interval(50);
    let (s, _, issued) = dev.licensed(&mut pki, PERSIST, SW, policy, &[content(A)]);
    dev.advance(50);
    let m = dev.renew(s).unwrap();
    let no_persist = policy.can_persist(false);
    let resp = pki.renew(&issued, &m.message, dev.now(), no_persist);
    dev.refuse_update(s, &resp, Status::InvalidLicense);
    // The same request answered with a policy that still allows it: accepted.
    let resp = pki.renew(&issued, &m.message, dev.now(), policy);
    dev.update(s, &resp).unwrap();
    dev.decrypt_cenc(s, A).unwrap();
}

#[test]
fn an_in_band_key_cannot_replace_a_key_held_under_other_restrictions() {
    let (mut pki, mut dev) = setup(42);
    // KID_B is a HW_SECURE_DECODE key of the license; the entitlement key is SW (HDCP 2.2).
    let grants = [hw_content(B), entitlement(E)];
    let (s, _, _) = dev.licensed(&mut pki, TEMP, SW, unlimited(), &grants);
    let downgrade = rotation(E, &[(KID_B, [0x0b; 16])]);
    dev.refuse_in_band(s, &downgrade, Status::InvalidLicense);
    // The license's key is still the HW-only one: no clear output, secure buffers work.
    assert_eq!(dev.decrypt_cenc(s, B), Err(Status::OutputNotAllowed));
    dev.decrypt_secure(s, B).unwrap();
    // In-band keys of the same entitlement still replace one another.
    dev.add_in_band(s, &rotation(E, &[R1])).unwrap();
    dev.add_in_band(s, &rotation(E, &[(KID_R1, KEY_R2)]))
        .unwrap();
}

#[test]
fn init_data_the_key_system_cannot_license_costs_no_identity_or_provisioning() {
    let (_, mut dev) = setup(43);
    let (s, _) = dev.open(TEMP, SW);
    // 33 key IDs on a device never provisioned: refused before any individualization.
    let kids: Vec<[u8; 16]> = (0..33u8).map(|i| [i; 16]).collect();
    assert_eq!(
        dev.generate(s, InitDataType::Cenc, &pssh_v1(&kids))
            .unwrap_err(),
        Status::NotSupported
    );
    // The session is still usable: the next request is the individualization request.
    let m = dev
        .generate(s, InitDataType::Cenc, &pssh_v1(&kids[..2]))
        .unwrap();
    assert_eq!(m.message_type, MessageType::IndividualizationRequest);
}
