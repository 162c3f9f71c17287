//! Properties: parsers never panic on arbitrary input; builders round-trip through parsers;
//! base64url agrees with an independent bit-by-bit reference.

use cdm_core::base64url;
use cdm_core::clearkey::*;
use cdm_core::eme::{InitDataType, SessionType};
use cdm_core::init_data::*;
use cdm_core::key_id::KeyId;
use proptest::prelude::*;

/// Reference base64url encoder, written bit by bit (independent of the crate's grouping).
fn reference_encode(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    bits.chunks(6)
        .map(|c| {
            let mut v = 0usize;
            for i in 0..6 {
                v = (v << 1) | usize::from(*c.get(i).unwrap_or(&0));
            }
            A[v] as char
        })
        .collect()
}

fn kid_strategy() -> impl Strategy<Value = KeyId> {
    proptest::collection::vec(any::<u8>(), 1..=64).prop_map(|v| KeyId::new(&v).unwrap())
}

fn cenc_kid_strategy() -> impl Strategy<Value = KeyId> {
    any::<[u8; 16]>().prop_map(KeyId::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn base64url_matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let enc = base64url::encode(&bytes);
        prop_assert_eq!(&enc, &reference_encode(&bytes));
        prop_assert_eq!(base64url::decode(&enc).unwrap(), bytes);
    }

    #[test]
    fn base64url_decode_never_panics_and_is_canonical(s in "[A-Za-z0-9_=+/ -]{0,40}") {
        if let Ok(bytes) = base64url::decode(&s) {
            // Only the canonical encoding is accepted.
            prop_assert_eq!(base64url::encode(&bytes), s);
        }
    }

    #[test]
    fn init_data_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for ty in InitDataType::ALL {
            if let Ok(kids) = parse_init_data(*ty, &data) {
                prop_assert!(!kids.is_empty());
            }
        }
    }

    #[test]
    fn cenc_parser_never_panics_on_mutated_boxes(
        kids in proptest::collection::vec(cenc_kid_strategy(), 1..5),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = build_common_pssh_v1(&kids).unwrap();
        let i = pos.index(data.len());
        data[i] = byte;
        let _ = parse_cenc(&data);
        data.truncate(cut.index(data.len()));
        prop_assert!(parse_cenc(&data).is_err());
    }

    #[test]
    fn clearkey_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_license(&data);
        let _ = parse_license_request(&data);
        let _ = parse_license_release(&data);
    }

    #[test]
    fn clearkey_parsers_never_panic_on_jsonish(s in r#"[{}\[\]",:a-zA-Z0-9_\-\\ ]{0,120}"#) {
        let _ = parse_license(s.as_bytes());
        let _ = parse_license_request(s.as_bytes());
        let _ = parse_keyids(s.as_bytes());
    }

    #[test]
    fn pssh_round_trip(kids in proptest::collection::btree_set(cenc_kid_strategy(), 1..20)) {
        let kids: Vec<KeyId> = kids.into_iter().collect();
        let data = build_common_pssh_v1(&kids).unwrap();
        prop_assert_eq!(parse_cenc(&data).unwrap(), kids);
    }

    #[test]
    fn keyids_round_trip(kids in proptest::collection::btree_set(kid_strategy(), 1..10)) {
        let kids: Vec<KeyId> = kids.into_iter().collect();
        prop_assert_eq!(parse_keyids(&keyids_init_data(&kids).unwrap()).unwrap(), kids.clone());
        let req = parse_license_request(&license_request_json(&kids, SessionType::Temporary).unwrap()).unwrap();
        prop_assert_eq!(req.kids, kids.clone());
        prop_assert_eq!(parse_license_release(&license_release_json(&kids).unwrap()).unwrap(), kids);
    }

    #[test]
    fn license_round_trip(
        entries in proptest::collection::btree_map(kid_strategy(), any::<[u8; 16]>(), 1..10),
        persistent in any::<bool>(),
    ) {
        let ty = if persistent { SessionType::PersistentLicense } else { SessionType::Temporary };
        let keys: Vec<(KeyId, ContentKey)> =
            entries.iter().map(|(k, v)| (k.clone(), ContentKey::new(*v))).collect();
        let refs: Vec<(KeyId, &ContentKey)> = keys.iter().map(|(k, v)| (k.clone(), v)).collect();
        let lic = parse_license(&build_license(&refs, ty).unwrap()).unwrap();
        prop_assert_eq!(lic.session_type, Some(ty));
        prop_assert_eq!(lic.keys.len(), keys.len());
        for ((k1, v1), (k2, v2)) in lic.keys.iter().zip(&keys) {
            prop_assert_eq!(k1, k2);
            prop_assert_eq!(v1.as_bytes(), v2.as_bytes());
        }
    }
}
