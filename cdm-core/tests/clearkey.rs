//! Clear Key formats of EME §9.1.

use cdm_core::base64url::Base64UrlError;
use cdm_core::clearkey::*;
use cdm_core::eme::SessionType;
use cdm_core::key_id::{KeyId, KeyIdError};
use zeroize::Zeroize;

// Bytes of the EME example base64url strings, computed independently with Python's
// base64.urlsafe_b64decode.
const KID_1: &str = "2f05477fc24bb4faefd86517156daffc"; // LwVHf8JLtPrv2GUXFW2v_A
const KID_2: &str = "d0376d53da1df818792f7c5bbf45dffc"; // 0DdtU9od-Bh5L3xbv0Xf_A
const KEY_1: &str = "b50d1b25559be9bd0a3cbe8ab59232fc"; // tQ0bJVWb6b0KPL6KtZIy_A

fn kid_hex(h: &str) -> KeyId {
    KeyId::new(&hex::decode(h).unwrap()).unwrap()
}

fn key_hex(h: &str) -> ContentKey {
    ContentKey::from_slice(&hex::decode(h).unwrap()).unwrap()
}

/// EME §9.1.3.1, Example 1 (line breaks as in the spec).
#[test]
fn eme_license_request_example() {
    let example = br#"{
  "kids":
    [
     "LwVHf8JLtPrv2GUXFW2v_A",
     "0DdtU9od-Bh5L3xbv0Xf_A"
    ],
  "type":"temporary"
}"#;
    let req = parse_license_request(example).unwrap();
    assert_eq!(req.kids, [kid_hex(KID_1), kid_hex(KID_2)]);
    assert_eq!(req.session_type, SessionType::Temporary);

    let built = license_request_json(&req.kids, SessionType::Temporary).unwrap();
    assert_eq!(
        std::str::from_utf8(&built).unwrap(),
        r#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A","0DdtU9od-Bh5L3xbv0Xf_A"],"type":"temporary"}"#
    );
}

/// EME §9.1.4.1, Example 2. The spec writes the last member name as `'type'` (single quotes),
/// which is not JSON; the example is tested with `"type"`, and the literal text is rejected.
#[test]
fn eme_license_example() {
    let example = br#"{
  "keys":
    [{
      "kty":"oct",
      "k":"tQ0bJVWb6b0KPL6KtZIy_A",
      "kid":"LwVHf8JLtPrv2GUXFW2v_A"
    }],
  "type":"temporary"
}"#;
    let lic = parse_license(example).unwrap();
    assert_eq!(lic.keys.len(), 1);
    assert_eq!(lic.keys[0].0, kid_hex(KID_1));
    assert!(lic.keys[0].1.ct_eq(&key_hex(KEY_1)));
    assert_eq!(
        lic.keys[0].1.as_bytes().to_vec(),
        hex::decode(KEY_1).unwrap()
    );
    assert_eq!(lic.session_type, Some(SessionType::Temporary));

    let literal = std::str::from_utf8(example)
        .unwrap()
        .replace("\"type\"", "'type'");
    assert_eq!(
        parse_license(literal.as_bytes()).err(),
        Some(ClearKeyError::InvalidJson)
    );
}

/// EME §9.1.5.1 Example 3 (record of license destruction) and §9.1.6.1 Example 5
/// (acknowledgement).
#[test]
fn eme_release_examples() {
    let example3 = br#"{
  "kids": [ "LwVHf8JLtPrv2GUXFW2v_A", "0DdtU9od-Bh5L3xbv0Xf_A" ]
}"#;
    let kids = parse_license_release(example3).unwrap();
    assert_eq!(kids, [kid_hex(KID_1), kid_hex(KID_2)]);
    assert_eq!(
        std::str::from_utf8(&license_release_json(&kids).unwrap()).unwrap(),
        r#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A","0DdtU9od-Bh5L3xbv0Xf_A"]}"#
    );
}

#[test]
fn type_is_optional_and_defaults_to_temporary() {
    let lic = parse_license(br#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"AA"}]}"#)
        .unwrap();
    assert_eq!(lic.session_type, None);
    assert_eq!(lic.effective_session_type(), SessionType::Temporary);
    let lic = parse_license(
        br#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"AA"}],"type":"persistent-license"}"#,
    )
    .unwrap();
    assert_eq!(lic.session_type, Some(SessionType::PersistentLicense));
}

fn lic(s: &str) -> Result<License, ClearKeyError> {
    parse_license(s.as_bytes())
}

#[test]
fn license_strictness() {
    const K: &str = "tQ0bJVWb6b0KPL6KtZIy_A";
    let one = |kty: &str, k: &str, kid: &str| {
        lic(&format!(
            r#"{{"keys":[{{"kty":"{kty}","k":"{k}","kid":"{kid}"}}]}}"#
        ))
    };
    assert_eq!(
        one("RSA", K, "AA").err(),
        Some(ClearKeyError::UnsupportedKeyType { index: 0 })
    );
    assert_eq!(
        one("OCT", K, "AA").err(),
        Some(ClearKeyError::UnsupportedKeyType { index: 0 })
    );
    // Padding, standard alphabet, non-canonical bits in k.
    assert_eq!(
        one("oct", "tQ0bJVWb6b0KPL6KtZIy_A==", "AA").err(),
        Some(ClearKeyError::InvalidKeyLength { index: 0 })
    );
    assert_eq!(
        one("oct", "tQ0bJVWb6b0KPL6KtZIy/A", "AA").err(),
        Some(ClearKeyError::InvalidKeyEncoding {
            index: 0,
            source: Base64UrlError::InvalidEncoding
        })
    );
    assert_eq!(
        one("oct", "tQ0bJVWb6b0KPL6KtZIy_B", "AA").err(),
        Some(ClearKeyError::InvalidKeyEncoding {
            index: 0,
            source: Base64UrlError::InvalidEncoding
        })
    );
    // Key lengths other than 16 (15 and 32 bytes).
    assert_eq!(
        one("oct", "AAAAAAAAAAAAAAAAAAAA", "AA").err(),
        Some(ClearKeyError::InvalidKeyLength { index: 0 })
    );
    assert_eq!(
        one("oct", &"A".repeat(43), "AA").err(),
        Some(ClearKeyError::InvalidKeyLength { index: 0 })
    );
    // Bad kid.
    assert_eq!(
        one("oct", K, "").err(),
        Some(ClearKeyError::InvalidKeyId {
            index: 0,
            source: KeyIdError::Empty
        })
    );
    assert!(matches!(
        one("oct", K, "AA=="),
        Err(ClearKeyError::InvalidKeyId {
            index: 0,
            source: KeyIdError::Base64(_)
        })
    ));
    // Structure.
    assert_eq!(lic(r#"{"keys":[]}"#).err(), Some(ClearKeyError::NoKeys));
    assert_eq!(lic(r#"{}"#).err(), Some(ClearKeyError::InvalidJson));
    assert_eq!(
        lic(r#"{"keys":[{"kty":"oct","kid":"AA"}]}"#).err(),
        Some(ClearKeyError::InvalidJson)
    );
    assert_eq!(
        lic(&format!(
            r#"{{"keys":[{{"kty":"oct","k":"{K}","k":"{K}","kid":"AA"}}]}}"#
        ))
        .err(),
        Some(ClearKeyError::InvalidJson)
    );
    assert_eq!(
        lic(&format!(
            r#"{{"keys":[{{"kty":"oct","k":"{K}","kid":"AA"}}],"type":"persistent-usage-record"}}"#
        ))
        .err(),
        Some(ClearKeyError::UnknownSessionType)
    );
    // A key ID twice is a valid JWK Set (RFC 7517 §4.5: kids SHOULD be unique): the last key
    // wins, in the first one's place.
    let twice = lic(&format!(
        r#"{{"keys":[{{"kty":"oct","k":"{K}","kid":"AA"}},{{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","kid":"Ag"}},{{"kty":"oct","k":"_____________________w","kid":"AA"}}]}}"#
    ))
    .unwrap();
    assert_eq!(twice.keys.len(), 2);
    assert_eq!(twice.keys[0].0.as_bytes(), [0]);
    assert!(twice.keys[0].1.ct_eq(&ContentKey::new([0xff; 16])));
    assert_eq!(twice.keys[1].0.as_bytes(), [2]);
    assert_eq!(parse_license(b"").err(), Some(ClearKeyError::Empty));
    assert_eq!(
        parse_license(&vec![b' '; MAX_LICENSE_LEN + 1]).err(),
        Some(ClearKeyError::TooLarge {
            len: MAX_LICENSE_LEN + 1
        })
    );
}

#[test]
fn unknown_members_and_escapes_are_accepted() {
    // "alg" of early EME drafts, "use", and unknown top-level members are ignored.
    let lic = lic(
        r#"{"x":[1,{"y":null}],"keys":[{"alg":"A128KW","kty":"oct","use":"enc","k":"tQ0bJVWb6b0KPL6KtZIy\u005fA","kid":"AA"}]}"#,
    )
    .unwrap();
    assert!(lic.keys[0].1.ct_eq(&key_hex(KEY_1)));
}

#[test]
fn license_round_trip_and_debug_hides_keys() {
    let k1 = key_hex(KEY_1);
    let k2 = ContentKey::new([0x42; 16]);
    let kids = [kid_hex(KID_1), KeyId::new(&[1, 2, 3]).unwrap()];
    let built = build_license(
        &[(kids[0].clone(), &k1), (kids[1].clone(), &k2)],
        SessionType::PersistentLicense,
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&built).unwrap(),
        concat!(
            r#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"LwVHf8JLtPrv2GUXFW2v_A"},"#,
            r#"{"kty":"oct","k":"QkJCQkJCQkJCQkJCQkJCQg","kid":"AQID"}],"type":"persistent-license"}"#
        )
    );
    let lic = parse_license(&built).unwrap();
    assert_eq!(lic.keys.len(), 2);
    assert!(lic.keys[0].1.ct_eq(&k1) && lic.keys[1].1.ct_eq(&k2));
    assert!(!lic.keys[0].1.ct_eq(&k2));
    assert_eq!(lic.session_type, Some(SessionType::PersistentLicense));

    let dbg = format!("{lic:?} {k1:?}");
    assert!(dbg.contains("ContentKey { .. }"));
    assert!(!dbg.to_lowercase().contains(KEY_1));
    assert!(!dbg.contains("tQ0b"));
    assert!(dbg.contains(KID_1));
}

#[test]
fn content_key_zeroize_and_ct_eq() {
    let mut k = key_hex(KEY_1);
    let copy = k.clone();
    assert!(k.ct_eq(&copy));
    let mut other = [0u8; 16];
    other.copy_from_slice(copy.as_bytes());
    other[15] ^= 1;
    assert!(!k.ct_eq(&ContentKey::new(other)));
    k.zeroize();
    assert_eq!(k.as_bytes(), &[0u8; 16]);
    assert!(ContentKey::from_slice(&[0; 15]).is_none());
    assert!(ContentKey::from_base64url("tQ0bJVWb6b0KPL6KtZIy_A")
        .unwrap()
        .ct_eq(&copy));
}

#[test]
fn request_and_release_strictness() {
    let req = |s: &str| parse_license_request(s.as_bytes());
    assert_eq!(
        req(r#"{"kids":["AA"]}"#).err(),
        Some(ClearKeyError::InvalidJson)
    );
    assert_eq!(
        req(r#"{"kids":[],"type":"temporary"}"#).err(),
        Some(ClearKeyError::NoKeyIds)
    );
    assert_eq!(
        req(r#"{"kids":["AA"],"type":"Temporary"}"#).err(),
        Some(ClearKeyError::UnknownSessionType)
    );
    assert_eq!(
        req(r#"{"kids":["AA","AA"],"type":"temporary"}"#).err(),
        Some(ClearKeyError::DuplicateKeyId { index: 1 })
    );
    let r = parse_license_request(
        &license_request_json(
            &[KeyId::new(&[9; 512]).unwrap()],
            SessionType::PersistentLicense,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r.kids, [KeyId::new(&[9; 512]).unwrap()]);
    assert_eq!(r.session_type, SessionType::PersistentLicense);

    assert_eq!(
        parse_license_release(br#"{"kids":[]}"#).err(),
        Some(ClearKeyError::NoKeyIds)
    );
    assert_eq!(
        parse_license_release(b"{\"kids\":[\"AA\"]}\0").err(),
        Some(ClearKeyError::InvalidJson)
    );
}
