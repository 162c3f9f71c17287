//! Strict decoding: every malformed message is rejected with its specific error, and no
//! input makes the decoders panic.

use cdm_core::abi::{limits, AbiError, Header, Opcode, Request, Response, Status, HEADER_LEN};
use proptest::prelude::*;

fn msg(opcode: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = b"TCDM".to_vec();
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(&5u64.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(payload);
    v
}

fn err(m: &[u8]) -> AbiError {
    Request::parse(m).unwrap_err().1
}

fn decrypt_payload(iv_len: u8, iv_pad: u8, kid_len: u16, count: u16) -> Vec<u8> {
    let mut p = vec![1, 0, 0, 0, iv_len, 0, 0, 0];
    let mut iv = [7u8; 16];
    for b in iv.iter_mut().skip(usize::from(iv_len.min(16))) {
        *b = iv_pad;
    }
    p.extend_from_slice(&iv);
    p.extend_from_slice(&64u32.to_le_bytes());
    p.extend_from_slice(&kid_len.to_le_bytes());
    p.extend(std::iter::repeat_n(0xab, usize::from(kid_len)));
    p.extend_from_slice(&count.to_le_bytes());
    for _ in 0..count {
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
    }
    p
}

#[test]
fn header_errors() {
    let good = msg(0x0001, &[]);
    assert!(Request::parse(&good).is_ok());
    assert_eq!(err(&good[..HEADER_LEN - 1]), AbiError::Truncated);
    assert_eq!(err(&[]), AbiError::Truncated);
    let mut m = good.clone();
    m[0] = b'X';
    assert_eq!(err(&m), AbiError::BadMagic);
    let mut m = good.clone();
    m[4] = 2;
    assert_eq!(err(&m), AbiError::UnsupportedVersion(2));
    let mut m = good.clone();
    m[28] = 1;
    assert_eq!(err(&m), AbiError::ReservedNonZero);
    let mut m = good.clone();
    m.push(0);
    assert_eq!(err(&m), AbiError::TrailingBytes);
    let mut m = good.clone();
    m[20] = 4; // declares 4 payload bytes that are not there
    assert_eq!(err(&m), AbiError::Truncated);
    let mut m = good.clone();
    m[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(err(&m), AbiError::PayloadTooLarge);
    let mut m = good;
    m[24] = 1; // a request must not carry a status
    assert!(matches!(err(&m), AbiError::InvalidField(_)));
}

#[test]
fn unknown_opcode_keeps_the_header() {
    let m = msg(0x9999, &[]);
    let (hdr, e) = Request::parse(&m).unwrap_err();
    assert_eq!(e, AbiError::UnknownOpcode(0x9999));
    assert_eq!(e.status(), Status::UnknownOpcode);
    assert_eq!(hdr.unwrap().request_id, 1);
}

#[test]
fn payload_errors() {
    // Payload on an opcode that takes none.
    assert_eq!(err(&msg(0x0001, &[0])), AbiError::TrailingBytes);
    // Unknown enum values, and a reserved byte that is not zero.
    for (payload, field) in [
        ([9, 2, 1, 0], "key_system"),
        ([1, 0, 1, 0], "robustness"),
        ([1, 2, 7, 0], "session_type"),
        ([1, 2, 1, 1], "reserved"),
    ] {
        let e = err(&msg(0x0100, &payload));
        assert_eq!(e, AbiError::InvalidField(field), "{payload:?}");
    }
    assert_eq!(err(&msg(0x0100, &[1, 2, 1])), AbiError::Truncated);
    // Length prefix beyond the limit.
    let mut p = vec![1, 0, 0, 0];
    p.extend_from_slice(
        &u32::try_from(limits::MAX_INIT_DATA_LEN + 1)
            .unwrap()
            .to_le_bytes(),
    );
    assert_eq!(err(&msg(0x0200, &p)), AbiError::PayloadTooLarge);
    // Length prefix beyond the payload.
    assert_eq!(err(&msg(0x0201, &[5, 0, 0, 0, 1])), AbiError::Truncated);
}

#[test]
fn decrypt_descriptor_errors() {
    assert!(Request::parse(&msg(0x0300, &decrypt_payload(16, 0, 16, 2))).is_ok());
    assert!(Request::parse(&msg(0x0300, &decrypt_payload(8, 0, 1, 0))).is_ok());
    // An IV of 12 bytes, padding after an 8-byte IV that is not zero, an IV of 17 bytes, no
    // key ID.
    for ((iv_len, iv_pad, kid_len), field) in [
        ((12, 0, 16), "iv_len"),
        ((8, 1, 16), "iv_len"),
        ((17, 0, 16), "iv_len"),
        ((16, 0, 0), "key_id"),
    ] {
        let e = err(&msg(0x0300, &decrypt_payload(iv_len, iv_pad, kid_len, 0)));
        assert_eq!(
            e,
            AbiError::InvalidField(field),
            "{iv_len} {iv_pad} {kid_len}"
        );
    }
    assert_eq!(
        err(&msg(0x0300, &decrypt_payload(16, 0, 513, 0))),
        AbiError::PayloadTooLarge
    );
    let n = u16::try_from(limits::MAX_SUBSAMPLES + 1).unwrap();
    assert_eq!(
        err(&msg(0x0300, &decrypt_payload(16, 0, 16, n))),
        AbiError::PayloadTooLarge
    );
    let mut p = decrypt_payload(16, 0, 16, 0);
    p[0] = 0; // scheme 0 is not a scheme
    assert_eq!(err(&msg(0x0300, &p)), AbiError::InvalidField("scheme"));
    let mut p = decrypt_payload(16, 0, 16, 0);
    p[24..28].copy_from_slice(
        &u32::try_from(limits::MAX_SAMPLE_LEN + 1)
            .unwrap()
            .to_le_bytes(),
    );
    assert_eq!(err(&msg(0x0300, &p)), AbiError::PayloadTooLarge);
}

#[test]
fn response_shape_is_checked() {
    let req = Header::request(Opcode::Decrypt, 5, 1);
    let mut out = Vec::new();
    Response::encode_error(&req, Status::NoKey, &mut out).unwrap();
    // Answering another opcode is rejected.
    assert_eq!(
        Response::parse(Opcode::Update, &out).unwrap_err(),
        AbiError::UnexpectedResponse
    );
    // An error response must have no payload.
    let mut bad = out.clone();
    bad[20] = 1;
    bad.push(0);
    assert_eq!(
        Response::parse(Opcode::Decrypt, &bad).unwrap_err(),
        AbiError::TrailingBytes
    );
    // Unknown status.
    let mut bad = out;
    bad[24..28].copy_from_slice(&0x7777u32.to_le_bytes());
    assert_eq!(
        Response::parse(Opcode::Decrypt, &bad).unwrap_err(),
        AbiError::UnknownStatus(0x7777)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn request_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::parse(&bytes);
    }

    #[test]
    fn payload_decoder_never_panics(op in 0usize..11, bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let opcode = Opcode::ALL[op];
        if let Ok(req) = Request::decode(opcode, &bytes) {
            // Whatever decodes re-encodes to the same payload.
            let mut out = Vec::new();
            req.encode(0, 0, &mut out).unwrap();
            prop_assert_eq!(&out[HEADER_LEN..], &bytes[..]);
        }
    }

    #[test]
    fn response_decoder_never_panics(op in 0usize..11, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Response::parse(Opcode::ALL[op], &bytes);
    }
}
