//! Key IDs: 1..=512 bytes, hex display, base64url.

use cdm_core::key_id::{KeyId, KeyIdError, MAX_KEY_ID_LEN};

#[test]
fn length_limits() {
    assert_eq!(KeyId::new(&[]), Err(KeyIdError::Empty));
    assert!(KeyId::new(&[0]).is_ok());
    assert!(KeyId::new(&[0; 512]).is_ok());
    assert_eq!(KeyId::new(&[0; 513]), Err(KeyIdError::TooLong { len: 513 }));
    assert_eq!(MAX_KEY_ID_LEN, 512);
}

#[test]
fn display_is_lower_hex() {
    let kid = KeyId::from(*b"0123456789012345");
    assert_eq!(kid.to_string(), "30313233343536373839303132333435");
    assert_eq!(
        format!("{kid:?}"),
        "KeyId(30313233343536373839303132333435)"
    );
    assert_eq!(KeyId::new(&[0xab, 0x01]).unwrap().to_string(), "ab01");
}

#[test]
fn base64url() {
    let kid = KeyId::from_base64url("0DdtU9od-Bh5L3xbv0Xf_A").unwrap();
    // Bytes computed independently with Python's base64.urlsafe_b64decode.
    assert_eq!(kid.to_string(), "d0376d53da1df818792f7c5bbf45dffc");
    assert_eq!(kid.to_base64url(), "0DdtU9od-Bh5L3xbv0Xf_A");
    assert_eq!(kid.as_cenc().map(|a| a.len()), Some(16));
    assert_eq!(KeyId::from_base64url(""), Err(KeyIdError::Empty));
    // 684 characters decode to 513 bytes: rejected before decoding.
    let long = "A".repeat(684);
    assert_eq!(
        KeyId::from_base64url(&long),
        Err(KeyIdError::TooLong { len: 513 })
    );
    assert!(matches!(
        KeyId::from_base64url("AA=="),
        Err(KeyIdError::Base64(_))
    ));
    assert!(KeyId::new(&[1, 2, 3]).unwrap().as_cenc().is_none());
}

#[test]
fn ordering_is_bytewise() {
    let a = KeyId::new(&[1]).unwrap();
    let b = KeyId::new(&[1, 0]).unwrap();
    let c = KeyId::new(&[2]).unwrap();
    assert!(a < b && b < c);
}
