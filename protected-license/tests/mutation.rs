//! Property tests: any mutation of a valid message (byte flips, truncation, extension,
//! arbitrary bytes) never panics any parser and is never accepted by the device.

use std::sync::OnceLock;

use proptest::prelude::*;
use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::ContentKey;
use protected_license::device::{unwrap_rotation_record, LicenseRequestParams, Outstanding};
use protected_license::messages::{parse_any, KeyKind, SessionType};
use protected_license::server::KeyGrant;
use protected_license::Policy;

mod common;
use common::{Pki, NOW};

/// A provisioned PKI, the outstanding set of one request, its license, and a clear and an
/// encrypted license request.
type Fixture = (Pki, Outstanding, Vec<u8>, [Vec<u8>; 2]);

/// Built once: key generation and HPKE dominate the cost of a case in debug builds (and
/// under QEMU).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build)
}

fn build() -> Fixture {
    let mut pki = Pki::new(b"mutation");
    let mut out = Outstanding::new();
    let params = LicenseRequestParams {
        session_type: SessionType::PersistentLicense,
        robustness: Robustness::ALL,
        hdcp: Hdcp::V1_4,
        key_ids: vec![[1; 16]],
        content_id: vec![],
    };
    let req = pki
        .device
        .license_request(&mut pki.rng, NOW, &mut out, &params, None)
        .unwrap();
    let v = pki.server.verify_license_request(&req, NOW).unwrap();
    let grants = [KeyGrant {
        kind: KeyKind::Content,
        key_id: [1; 16],
        robustness: Robustness::SW_SECURE_CRYPTO,
        min_hdcp: Hdcp::NONE,
        key: ContentKey::new([9; 16]),
    }];
    let lic = pki
        .server
        .issue_license(&mut pki.rng, &v, [3; 16], NOW, Policy::default(), &grants)
        .unwrap();
    let cert = pki
        .device
        .verify_server_certificate(pki.server.certificate(), NOW)
        .unwrap();
    let requests = [None, Some(&cert)].map(|server| {
        pki.device
            .license_request(&mut pki.rng, NOW, &mut Outstanding::new(), &params, server)
            .unwrap()
    });
    (pki, out, lic, requests)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mutated_licenses_are_rejected(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let (pki, out, lic, _) = fixture();
        let mut out = out.clone();
        let mut m = lic.clone();
        for (i, x) in &flips {
            let at = i.index(m.len());
            m[at] ^= x;
        }
        let _ = parse_any(&m);
        prop_assert!(pki.device.accept_license(&mut out, &m, NOW).is_err());
        prop_assert_eq!(out.len(), 1);
        prop_assert!(pki.device.accept_license(&mut out, lic, NOW).is_ok());
    }

    #[test]
    fn truncated_or_extended_licenses_are_rejected(cut in any::<prop::sample::Index>(), tail in prop::collection::vec(any::<u8>(), 1..8)) {
        let (pki, out, lic, _) = fixture();
        let mut out = out.clone();
        let short = &lic[..cut.index(lic.len())];
        let _ = parse_any(short);
        prop_assert!(pki.device.accept_license(&mut out, short, NOW).is_err());
        let mut long = lic.clone();
        long.extend_from_slice(&tail);
        prop_assert!(pki.device.accept_license(&mut out, &long, NOW).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), ty in 0u8..0x60) {
        let mut m = b"TCPL\x01".to_vec();
        m.push(ty);
        m.extend_from_slice(&bytes);
        let _ = parse_any(&m);
        let _ = parse_any(&bytes);
        let _ = unwrap_rotation_record(&[], &m);
    }

    #[test]
    fn mutated_requests_are_rejected_by_the_server(i in any::<prop::sample::Index>(), x in 1u8..=255) {
        let (pki, _, _, requests) = fixture();
        for req in requests {
            prop_assert!(pki.server.verify_license_request(req, NOW).is_ok());
            let mut req = req.clone();
            let at = i.index(req.len());
            req[at] ^= x;
            prop_assert!(pki.server.verify_license_request(&req, NOW).is_err());
        }
    }
}
