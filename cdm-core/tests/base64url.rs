//! Strict base64url (EME §9.1.7 / RFC 7515 Appendix C). The decoder runs in constant time,
//! so a malformed text is `InvalidEncoding` without saying where.

use cdm_core::base64url::{decode, decode_to_slice, decoded_len, encode, Base64UrlError};

/// RFC 4648 §10 test vectors, with the padding removed (the alphabet characters used are
/// common to base64 and base64url).
const RFC4648: &[(&str, &str)] = &[
    ("", ""),
    ("f", "Zg"),
    ("fo", "Zm8"),
    ("foo", "Zm9v"),
    ("foob", "Zm9vYg"),
    ("fooba", "Zm9vYmE"),
    ("foobar", "Zm9vYmFy"),
];

#[test]
fn rfc4648_vectors() {
    for (plain, enc) in RFC4648 {
        assert_eq!(encode(plain.as_bytes()), *enc, "encode {plain:?}");
        assert_eq!(decode(enc).unwrap(), plain.as_bytes(), "decode {enc:?}");
    }
}

#[test]
fn url_alphabet() {
    // 0xfb 0xff → 111110 111111 1111(00): '-' is 62, '_' is 63, '8' is 60.
    assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    assert_eq!(decode("-_8").unwrap(), [0xfb, 0xff]);
    // EME §9.1.3 example key ID; bytes computed independently with Python's base64 module.
    assert_eq!(
        hex::encode(decode("LwVHf8JLtPrv2GUXFW2v_A").unwrap()),
        "2f05477fc24bb4faefd86517156daffc"
    );
}

#[test]
fn rejects_padding() {
    assert_eq!(decode("Zg=="), Err(Base64UrlError::InvalidEncoding));
    assert_eq!(decode("Zm8="), Err(Base64UrlError::InvalidEncoding));
}

#[test]
fn rejects_standard_alphabet_and_junk() {
    assert_eq!(decode("-_+/"), Err(Base64UrlError::InvalidEncoding));
    assert_eq!(decode("ab/d"), Err(Base64UrlError::InvalidEncoding));
    assert_eq!(decode("Zm9 dg"), Err(Base64UrlError::InvalidEncoding));
    assert_eq!(
        decode("Zm9v\n"),
        Err(Base64UrlError::InvalidLength { len: 5 })
    );
    assert_eq!(decode("Zm9vé"), Err(Base64UrlError::InvalidEncoding));
}

#[test]
fn rejects_impossible_length() {
    assert_eq!(decode("Z"), Err(Base64UrlError::InvalidLength { len: 1 }));
    assert_eq!(
        decode("Zm9vY"),
        Err(Base64UrlError::InvalidLength { len: 5 })
    );
    assert_eq!(decoded_len(5), None);
}

#[test]
fn rejects_non_canonical_trailing_bits() {
    // "Zg" is 'f'; "Zh" sets a low bit that encodes nothing.
    assert_eq!(decode("Zh"), Err(Base64UrlError::InvalidEncoding));
    // "Zm8" is "fo"; "Zm9" sets the 2 unused low bits.
    assert_eq!(decode("Zm9"), Err(Base64UrlError::InvalidEncoding));
    // Key-sized: 22 characters, the last one must be a multiple of 16 in value ('A','Q','g','w').
    assert!(decode("tQ0bJVWb6b0KPL6KtZIy_A").is_ok());
    assert_eq!(
        decode("tQ0bJVWb6b0KPL6KtZIy_B"),
        Err(Base64UrlError::InvalidEncoding)
    );
}

#[test]
fn decode_to_slice_requires_exact_length() {
    let mut out = [0u8; 2];
    assert_eq!(
        decode_to_slice("Zm9v", &mut out),
        Err(Base64UrlError::LengthMismatch {
            expected: 2,
            actual: 3
        })
    );
    decode_to_slice("Zm8", &mut out).unwrap();
    assert_eq!(&out, b"fo");
}
