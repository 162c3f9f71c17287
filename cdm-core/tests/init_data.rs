//! Init data parsing: `cenc` (pssh), `keyids`, `webm`.

use cdm_core::eme::InitDataType;
use cdm_core::init_data::*;
use cdm_core::key_id::{KeyId, KeyIdError};

/// The example of the W3C "cenc" Initialization Data Format §4.2 (two key IDs), byte for byte.
const EME_CENC_EXAMPLE: [u8; 68] = [
    0x00, 0x00, 0x00, 0x44, 0x70, 0x73, 0x73, 0x68, // BMFF box header (68 bytes, 'pssh')
    0x01, 0x00, 0x00, 0x00, // Full box header (version = 1, flags = 0)
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, // SystemID
    0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b, //
    0x00, 0x00, 0x00, 0x02, // KID_count (2)
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, // First KID ("0123456789012345")
    0x38, 0x39, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, //
    0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, // Second KID ("ABCDEFGHIJKLMNOP")
    0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, //
    0x00, 0x00, 0x00, 0x00, // Size of Data (0)
];

const OTHER_SYSTEM: [u8; 16] = [
    // Widevine's SystemID edef8ba9-79d6-4ace-a3c8-27dcd51d21ed, used as "some other system".
    0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed,
];

fn kid(b: &[u8]) -> KeyId {
    KeyId::new(b).unwrap()
}

/// A pssh box laid out field by field as ISO/IEC 23001-7 §8.1.1 defines it (independent of
/// the crate's builder).
fn pssh(version: u8, flags: [u8; 3], system: [u8; 16], kids: &[[u8; 16]], data: &[u8]) -> Vec<u8> {
    let mut body = vec![version];
    body.extend_from_slice(&flags);
    body.extend_from_slice(&system);
    if version == 1 {
        body.extend_from_slice(&u32::try_from(kids.len()).unwrap().to_be_bytes());
        for k in kids {
            body.extend_from_slice(k);
        }
    }
    body.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    body.extend_from_slice(data);
    let mut b = u32::try_from(body.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&body);
    b
}

#[test]
fn eme_registry_example() {
    let kids = parse_init_data(InitDataType::Cenc, &EME_CENC_EXAMPLE).unwrap();
    assert_eq!(kids, [kid(b"0123456789012345"), kid(b"ABCDEFGHIJKLMNOP")]);
}

#[test]
fn field_by_field_box_matches_example_and_builder() {
    let b = pssh(
        1,
        [0; 3],
        COMMON_SYSTEM_ID,
        &[*b"0123456789012345", *b"ABCDEFGHIJKLMNOP"],
        &[],
    );
    assert_eq!(b, EME_CENC_EXAMPLE);
    let built =
        build_common_pssh_v1(&[kid(b"0123456789012345"), kid(b"ABCDEFGHIJKLMNOP")]).unwrap();
    assert_eq!(built, EME_CENC_EXAMPLE);
}

#[test]
fn other_systems_and_v0_are_skipped_but_validated() {
    let mut data = pssh(0, [0; 3], OTHER_SYSTEM, &[], b"opaque widevine data");
    data.extend(pssh(1, [0; 3], OTHER_SYSTEM, &[[7; 16]], &[]));
    data.extend(pssh(0, [0; 3], COMMON_SYSTEM_ID, &[], &[]));
    data.extend(pssh(
        1,
        [0; 3],
        COMMON_SYSTEM_ID,
        &[[1; 16], [2; 16]],
        b"ignored",
    ));
    // Only the first common-system box that lists key IDs counts (as Chromium's
    // GetKeyIdsForCommonSystemId takes them): a later one adds nothing.
    data.extend(pssh(
        1,
        [0; 3],
        COMMON_SYSTEM_ID,
        &[[2; 16], [3; 16], [1; 16]],
        &[],
    ));
    assert_eq!(parse_cenc(&data).unwrap(), [kid(&[1; 16]), kid(&[2; 16])]);
    // Duplicates within the box are dropped, first-appearance order kept.
    let dup = pssh(
        1,
        [0; 3],
        COMMON_SYSTEM_ID,
        &[[5; 16], [4; 16], [5; 16]],
        &[],
    );
    assert_eq!(parse_cenc(&dup).unwrap(), [kid(&[5; 16]), kid(&[4; 16])]);

    // A broken other-system box still fails the whole init data.
    let mut bad = pssh(0, [0; 3], OTHER_SYSTEM, &[], &[]);
    bad.push(0);
    bad[3] += 1; // size covers the extra byte, which the fields do not
    bad.extend(&EME_CENC_EXAMPLE);
    assert_eq!(
        parse_cenc(&bad),
        Err(InitDataError::PsshTrailingBytes { offset: 0 })
    );
}

#[test]
fn no_common_system_key_ids() {
    let data = pssh(1, [0; 3], OTHER_SYSTEM, &[[7; 16]], &[]);
    assert_eq!(parse_cenc(&data), Err(InitDataError::NoCommonSystemKeyIds));
    let data = pssh(0, [0; 3], COMMON_SYSTEM_ID, &[], &[]);
    assert_eq!(parse_cenc(&data), Err(InitDataError::NoCommonSystemKeyIds));
    let data = pssh(1, [0; 3], COMMON_SYSTEM_ID, &[], &[]);
    assert_eq!(parse_cenc(&data), Err(InitDataError::NoCommonSystemKeyIds));
}

#[test]
fn largesize_form() {
    // size = 1, then a 64-bit largesize covering the 16-byte header.
    let small = pssh(1, [0; 3], COMMON_SYSTEM_ID, &[[9; 16]], &[]);
    let body = &small[8..];
    let mut b = 1u32.to_be_bytes().to_vec();
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
    b.extend_from_slice(body);
    assert_eq!(parse_cenc(&b).unwrap(), [kid(&[9; 16])]);
    // A largesize smaller than its own 16-byte header.
    let mut bad = b.clone();
    bad[8..16].copy_from_slice(&15u64.to_be_bytes());
    assert_eq!(
        parse_cenc(&bad),
        Err(InitDataError::BoxSizeInvalid { offset: 0 })
    );
    // A largesize far beyond the data.
    bad[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(
        parse_cenc(&bad),
        Err(InitDataError::BoxTruncated { offset: 0 })
    );
}

#[test]
fn structural_errors() {
    let good = EME_CENC_EXAMPLE.to_vec();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        parse_cenc(&v)
    };
    // Truncated: the box claims 68 bytes but fewer are present.
    assert_eq!(
        with(&|v| v.truncate(67)),
        Err(InitDataError::BoxTruncated { offset: 0 })
    );
    assert_eq!(
        with(&|v| v.truncate(7)),
        Err(InitDataError::BoxTruncated { offset: 0 })
    );
    // Trailing garbage after a complete box is a truncated second box.
    assert_eq!(
        with(&|v| v.push(0)),
        Err(InitDataError::BoxTruncated { offset: 68 })
    );
    // Size 0: the box extends to the end of the data (ISO/IEC 14496-12 §4.2).
    assert_eq!(with(&|v| v[..4].fill(0)), parse_cenc(&good));
    assert!(with(&|v| v[..4].fill(0)).is_ok());
    let mut two = pssh(0, [0; 3], OTHER_SYSTEM, &[], &[]);
    two.extend(good.iter().copied());
    let at = two.len() - good.len();
    two[at..at + 4].fill(0);
    assert_eq!(parse_cenc(&two), parse_cenc(&good));
    // ... and must still hold exactly its fields.
    assert_eq!(
        with(&|v| {
            v[..4].fill(0);
            v.push(0);
        }),
        Err(InitDataError::PsshTrailingBytes { offset: 0 })
    );
    // Sizes below the header.
    assert_eq!(
        with(&|v| v[3] = 7),
        Err(InitDataError::BoxSizeInvalid { offset: 0 })
    );
    // Size smaller than the fields need (KIDs run past the box end).
    assert_eq!(
        with(&|v| v[3] = 0x40),
        Err(InitDataError::PsshFieldsOverrun { offset: 0 })
    );
    // Oversized KID_count.
    assert_eq!(
        with(&|v| v[31] = 3),
        Err(InitDataError::PsshFieldsOverrun { offset: 0 })
    );
    assert_eq!(
        with(&|v| v[28..32].copy_from_slice(&u32::MAX.to_be_bytes())),
        Err(InitDataError::PsshFieldsOverrun { offset: 0 })
    );
    // DataSize larger than what is left.
    assert_eq!(
        with(&|v| v[67] = 1),
        Err(InitDataError::PsshFieldsOverrun { offset: 0 })
    );
    // Wrong type, version, flags.
    assert_eq!(
        with(&|v| v[4..8].copy_from_slice(b"moov")),
        Err(InitDataError::NotPssh {
            offset: 0,
            box_type: *b"moov"
        })
    );
    // A version this parser does not know is skipped whole, not refused: alone, no key IDs.
    assert_eq!(
        with(&|v| v[8] = 2),
        Err(InitDataError::NoCommonSystemKeyIds)
    );
    assert_eq!(
        with(&|v| v[11] = 1),
        Err(InitDataError::NonZeroFlags { offset: 0 })
    );
}

#[test]
fn error_offsets_point_at_the_second_box() {
    let mut data = EME_CENC_EXAMPLE.to_vec();
    let mut second = EME_CENC_EXAMPLE.to_vec();
    second[11] = 1;
    data.extend(second);
    assert_eq!(
        parse_cenc(&data),
        Err(InitDataError::NonZeroFlags { offset: 68 })
    );
}

#[test]
fn unknown_versions_are_skipped() {
    // A version 2 common-system box (fields unknown, even "wrong" ones) before a v1 box.
    let mut v2 = pssh(1, [0; 3], COMMON_SYSTEM_ID, &[[8; 16]], &[]);
    v2[8] = 2;
    v2[11] = 0xff;
    let mut data = v2;
    data.extend(EME_CENC_EXAMPLE);
    assert_eq!(parse_cenc(&data), parse_cenc(&EME_CENC_EXAMPLE));
    assert!(parse_cenc(&data).is_ok());
}

#[test]
fn size_limits() {
    for ty in InitDataType::ALL {
        assert_eq!(parse_init_data(*ty, &[]), Err(InitDataError::Empty));
        assert_eq!(
            parse_init_data(*ty, &vec![0; MAX_INIT_DATA_LEN + 1]),
            Err(InitDataError::TooLarge {
                len: MAX_INIT_DATA_LEN + 1
            })
        );
    }
    // A maximal pssh (64 KiB exactly) is accepted.
    let n = (MAX_INIT_DATA_LEN - 36) / 16;
    let kids: Vec<KeyId> = (0..u32::try_from(n).unwrap())
        .map(|i| {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&i.to_be_bytes());
            KeyId::from(k)
        })
        .collect();
    let built = build_common_pssh_v1(&kids).unwrap();
    assert!(built.len() <= MAX_INIT_DATA_LEN);
    assert_eq!(parse_cenc(&built).unwrap(), kids);
}

#[test]
fn builder_rejects_non_cenc_key_ids() {
    assert_eq!(
        build_common_pssh_v1(&[kid(&[1, 2, 3])]),
        Err(InitDataError::PsshKeyIdLength { len: 3 })
    );
}

/// The example of the W3C "keyids" Initialization Data Format §2. The registry's text has a
/// trailing comma after the array (`],}`), which is not JSON; it is tested with the comma
/// removed, and the literal text is rejected as JSON.parse() would reject it.
#[test]
fn keyids_registry_example() {
    let example = br#"{
  "kids":
    [
     "LwVHf8JLtPrv2GUXFW2v_A",
     "0DdtU9od-Bh5L3xbv0Xf_A"
    ]
}"#;
    let kids = parse_init_data(InitDataType::KeyIds, example).unwrap();
    let hex: Vec<String> = kids.iter().map(|k| k.to_string()).collect();
    // Computed independently with Python's base64.urlsafe_b64decode.
    assert_eq!(
        hex,
        [
            "2f05477fc24bb4faefd86517156daffc",
            "d0376d53da1df818792f7c5bbf45dffc"
        ]
    );

    let literal = br#"{ "kids": [ "LwVHf8JLtPrv2GUXFW2v_A", "0DdtU9od-Bh5L3xbv0Xf_A" ], }"#;
    assert_eq!(parse_keyids(literal), Err(InitDataError::InvalidJson));
}

#[test]
fn keyids_strictness() {
    let p = |s: &str| parse_keyids(s.as_bytes());
    assert_eq!(p(r#"{"kids":[]}"#), Err(InitDataError::NoKeyIds));
    assert_eq!(p(r#"{}"#), Err(InitDataError::InvalidJson));
    assert_eq!(p(r#"[]"#), Err(InitDataError::InvalidJson));
    assert_eq!(p(r#"{"kids":[1]}"#), Err(InitDataError::InvalidJson));
    assert_eq!(p(r#"{"kids":"AA"}"#), Err(InitDataError::InvalidJson));
    assert_eq!(
        p(r#"{"kids":["AA"],"kids":["AQ"]}"#),
        Err(InitDataError::InvalidJson)
    );
    assert_eq!(p(r#"{"kids":["AA"]} x"#), Err(InitDataError::InvalidJson));
    assert!(matches!(
        p(r#"{"kids":["AA","AA=="]}"#),
        Err(InitDataError::InvalidKeyId {
            index: 1,
            source: KeyIdError::Base64(_)
        })
    ));
    assert!(matches!(
        p(r#"{"kids":["LwVHf8JLtPrv2GUXFW2v/A"]}"#),
        Err(InitDataError::InvalidKeyId { index: 0, .. })
    ));
    assert_eq!(
        p(r#"{"kids":[""]}"#),
        Err(InitDataError::InvalidKeyId {
            index: 0,
            source: KeyIdError::Empty
        })
    );
    // Unknown members are ignored; a JSON escape in a key ID is still JSON.
    assert_eq!(
        p(r#"{"x":{"y":[1]},"kids":["\u0041A"]}"#).unwrap(),
        [kid(&[0])]
    );
    // Duplicates collapse.
    assert_eq!(
        p(r#"{"kids":["AA","AQ","AA"]}"#).unwrap(),
        [kid(&[0]), kid(&[1])]
    );
}

#[test]
fn keyids_builder_round_trip() {
    let kids = [kid(&[0xfb, 0xff]), kid(b"0123456789012345")];
    let data = keyids_init_data(&kids).unwrap();
    assert_eq!(
        std::str::from_utf8(&data).unwrap(),
        r#"{"kids":["-_8","MDEyMzQ1Njc4OTAxMjM0NQ"]}"#
    );
    assert_eq!(parse_keyids(&data).unwrap(), kids);
}

#[test]
fn webm() {
    assert_eq!(
        parse_webm(b"0123456789012345").unwrap(),
        [kid(b"0123456789012345")]
    );
    assert_eq!(parse_webm(&[5]).unwrap(), [kid(&[5])]);
    assert_eq!(
        parse_webm(&[0; 513]),
        Err(InitDataError::InvalidKeyId {
            index: 0,
            source: KeyIdError::TooLong { len: 513 }
        })
    );
}
