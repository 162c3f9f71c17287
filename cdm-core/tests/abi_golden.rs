//! Golden bytes of every ABI message, written by hand from `docs/abi.md` (not produced by the
//! encoder), checked in both directions: the encoder must produce them and the decoder must
//! read them back. A change to any of these is an ABI break and needs a version bump.

use cdm_core::abi::{
    Capabilities, DecryptOutput, DecryptRequest, Done, Header, Message, Opcode, OutputKind,
    Rendered, Request, Response, SessionOpened, SessionState, Status, Subsamples, HEADER_LEN,
};
use cdm_core::eme::{
    ClosedReason, EncryptionScheme, InitDataType, KeyStatus, KeySystem, MessageType, Robustness,
    SessionType,
};
use cdm_core::KeyId;

/// Parses hex with whitespace and `|` separators allowed.
fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(clean).expect("test hex")
}

const SESSION: u64 = 0x1122_3344_5566_7788;

/// Header bytes: magic "TCDM", version 1, opcode, session, request id, payload length, status.
fn header(opcode: u16, session: u64, request_id: u32, payload_len: u32, status: u32) -> Vec<u8> {
    let mut v = b"TCDM".to_vec();
    v.extend_from_slice(&[0x01, 0x00]);
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(&session.to_le_bytes());
    v.extend_from_slice(&request_id.to_le_bytes());
    v.extend_from_slice(&payload_len.to_le_bytes());
    v.extend_from_slice(&status.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v
}

fn check_request(req: &Request<'_>, session: u64, id: u32, golden: &[u8]) {
    let mut out = Vec::new();
    req.encode(session, id, &mut out).unwrap();
    assert_eq!(
        hex::encode(&out),
        hex::encode(golden),
        "encoding of {:?}",
        req.opcode()
    );
    let (hdr, back) = Request::parse(golden).unwrap();
    assert_eq!(hdr.session, session);
    assert_eq!(hdr.request_id, id);
    assert_eq!(&back, req);
}

fn check_response(resp: &Response, opcode: Opcode, golden: &[u8]) {
    let req_hdr = Header::request(opcode, SESSION, 9);
    let mut out = Vec::new();
    resp.encode(&req_hdr, &mut out).unwrap();
    assert_eq!(
        hex::encode(&out),
        hex::encode(golden),
        "encoding of response to {opcode:?}"
    );
    let (hdr, back) = Response::parse(opcode, golden).unwrap();
    assert_eq!(hdr.request_id, 9);
    assert_eq!(back, Ok(resp.clone()));
    assert_eq!(resp.opcode(), opcode);
}

#[test]
fn header_layout_is_fixed() {
    let golden = h("54434448 0100 0100 0000000000000000 07000000 00000000 00000000 00000000");
    // "TCDM" is 54 43 44 4d.
    let golden = {
        let mut g = golden;
        g[3] = 0x4d;
        g
    };
    assert_eq!(golden.len(), HEADER_LEN);
    check_request(
        &Request::GetCapabilities(cdm_core::abi::GetCapabilities),
        0,
        7,
        &golden,
    );
}

#[test]
fn open_and_close_session() {
    let mut g = header(0x0100, 0, 1, 4, 0);
    g.extend(h("01 02 01 00")); // clearkey, SW_SECURE_CRYPTO, temporary, reserved
    check_request(
        &Request::OpenSession(cdm_core::abi::OpenSession {
            key_system: KeySystem::ClearKey,
            robustness: Robustness::SwSecureCrypto,
            session_type: SessionType::Temporary,
        }),
        0,
        1,
        &g,
    );
    let g = header(0x0101, SESSION, 2, 0, 0);
    check_request(
        &Request::CloseSession(cdm_core::abi::CloseSession),
        SESSION,
        2,
        &g,
    );
    assert_eq!(&g[8..16], &h("88 77 66 55 44 33 22 11")[..]);
}

#[test]
fn license_exchange_requests() {
    let mut g = header(0x0200, SESSION, 3, 11, 0);
    g.extend(h("02 000000 03000000 616263")); // keyids, reserved, len 3, "abc"
    check_request(
        &Request::GenerateRequest(cdm_core::abi::GenerateRequest {
            init_data_type: InitDataType::KeyIds,
            init_data: b"abc",
        }),
        SESSION,
        3,
        &g,
    );
    let mut g = header(0x0201, SESSION, 4, 6, 0);
    g.extend(h("02000000 7b7d")); // len 2, "{}"
    check_request(
        &Request::Update(cdm_core::abi::Update { response: b"{}" }),
        SESSION,
        4,
        &g,
    );
    // key system 1 (Clear Key), robustness 2 (SW_SECURE_CRYPTO), reserved, len 2, "ab".
    let mut g = header(0x0202, 0, 5, 7, 0);
    g.extend(h("01020000 02 6162"));
    check_request(
        &Request::Load(cdm_core::abi::Load {
            key_system: cdm_core::KeySystem::ClearKey,
            robustness: cdm_core::Robustness::SwSecureCrypto,
            session_id: b"ab",
        }),
        0,
        5,
        &g,
    );
    check_request(
        &Request::Remove(cdm_core::abi::Remove),
        SESSION,
        6,
        &header(0x0203, SESSION, 6, 0, 0),
    );
    check_request(
        &Request::GetKeyStatuses(cdm_core::abi::GetKeyStatuses),
        SESSION,
        7,
        &header(0x0204, SESSION, 7, 0, 0),
    );
}

#[test]
fn decrypt_request() {
    let kid = h("000102030405060708090a0b0c0d0e0f");
    let iv = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    let pairs = [(32u32, 224u32)];
    let mut g = header(0x0300, SESSION, 8, 56, 0);
    g.extend(h("02 01 09 00 10 000000")); // cbcs, 1:9, in place, iv_len 16, reserved
    g.extend(&iv);
    g.extend(h("00010000")); // sample_len 256
    g.extend(h("1000"));
    g.extend(&kid);
    g.extend(h("0100 20000000 e0000000"));
    let req = Request::Decrypt(DecryptRequest {
        key_id: &kid,
        scheme: EncryptionScheme::Cbcs,
        pattern: (1, 9),
        output: OutputKind::InPlace,
        iv: &iv,
        sample_len: 256,
        subsamples: Subsamples::Pairs(&pairs),
    });
    check_request(&req, SESSION, 8, &g);

    // 8-byte IV: zero-padded on the wire.
    let mut g = header(0x0300, SESSION, 8, 33, 0);
    g.extend(h(
        "01 00 00 01 08 000000 0102030405060708 0000000000000000 40000000 0100 aa 0000",
    ));
    let req = Request::Decrypt(DecryptRequest {
        key_id: &[0xaa],
        scheme: EncryptionScheme::Cenc,
        pattern: (0, 0),
        output: OutputKind::SecureBuffer,
        iv: &h("0102030405060708"),
        sample_len: 64,
        subsamples: Subsamples::Pairs(&[]),
    });
    check_request(&req, SESSION, 8, &g);
}

#[test]
fn secure_buffer_requests() {
    let mut g = header(0x0400, SESSION, 1, 8, 0);
    g.extend(h("efcdab8967452301"));
    check_request(
        &Request::RenderSecureBuffer(cdm_core::abi::RenderSecureBuffer {
            buffer: 0x0123_4567_89ab_cdef,
        }),
        SESSION,
        1,
        &g,
    );
    let mut g = header(0x0401, SESSION, 1, 8, 0);
    g.extend(h("0100000000000000"));
    check_request(
        &Request::ReleaseSecureBuffer(cdm_core::abi::ReleaseSecureBuffer { buffer: 1 }),
        SESSION,
        1,
        &g,
    );
}

#[test]
fn responses() {
    let mut g = header(0x0001, SESSION, 9, 2 + 9 + 3 + 3 + 2 + 20, 0);
    g.extend(h("0100 08 706f727461626c65")); // abi 1, "portable"
    g.extend(h("02 02 03")); // robustness SW, HW
    g.extend(h("02 01 02")); // schemes cenc, cbcs
    g.extend(h("01 01")); // session types temporary
    g.extend(h("20000000 20000000 00000001 40020000 10000000"));
    check_response(
        &Response::GetCapabilities(Capabilities {
            abi_version: 1,
            engine: "portable".into(),
            robustness: vec![Robustness::SwSecureCrypto, Robustness::HwSecureDecode],
            schemes: vec![EncryptionScheme::Cenc, EncryptionScheme::Cbcs],
            session_types: vec![SessionType::Temporary],
            max_sessions: 32,
            max_keys_per_session: 32,
            max_sample_len: 16 << 20,
            max_subsamples: 576,
            max_secure_buffers: 16,
        }),
        Opcode::GetCapabilities,
        &g,
    );

    let mut g = header(0x0100, SESSION, 9, 3, 0);
    g.extend(h("02 6964"));
    check_response(
        &Response::OpenSession(SessionOpened {
            session_id: "id".into(),
        }),
        Opcode::OpenSession,
        &g,
    );

    let kid = h("0102");
    let mut g = header(0x0200, SESSION, 9, 4 + 4 + 2 + 8 + 1 + 2 + 2 + 2 + 1, 0);
    g.extend(h("01 000000 02000000 7b7d")); // license-request, "{}"
    g.extend(h("0000000000000080 00 0100 0200 0102 07")); // NaN expiry, open, 1 status pending
    check_response(
        &Response::GenerateRequest(Message {
            message_type: MessageType::LicenseRequest,
            message: b"{}".to_vec(),
            state: SessionState {
                expiration_ms: None,
                closed: None,
                key_statuses: vec![(KeyId::new(&kid).unwrap(), KeyStatus::StatusPending)],
            },
        }),
        Opcode::GenerateRequest,
        &g,
    );

    let mut g = header(0x0201, SESSION, 9, 8 + 2 + 2, 0);
    g.extend(h("e803000000000000 01 02 0000")); // expires 1000 ms, closed: release-acknowledged
    check_response(
        &Response::Update(SessionState {
            expiration_ms: Some(1000),
            closed: Some(ClosedReason::ReleaseAcknowledged),
            key_statuses: vec![],
        }),
        Opcode::Update,
        &g,
    );

    let mut g = header(0x0300, SESSION, 9, 16, 0);
    g.extend(h("00 00000000000000 0000000000000000"));
    check_response(
        &Response::Decrypt(DecryptOutput::InPlace),
        Opcode::Decrypt,
        &g,
    );
    let mut g = header(0x0300, SESSION, 9, 16, 0);
    g.extend(h("01 00000000000000 2a00000000000000"));
    check_response(
        &Response::Decrypt(DecryptOutput::SecureBuffer(42)),
        Opcode::Decrypt,
        &g,
    );

    let mut g = header(0x0400, SESSION, 9, 36, 0);
    g.extend(h("10000000"));
    g.extend([0x5a; 32]);
    check_response(
        &Response::RenderSecureBuffer(Rendered {
            len: 16,
            digest: [0x5a; 32],
        }),
        Opcode::RenderSecureBuffer,
        &g,
    );
    // found 1, reserved, message "{}" (u32 length 2), then the SessionState: expiration
    // i64::MIN (none), not closed, one key: u16 id length 16, 16 x 0x11, status released (3).
    let mut g = header(0x0202, SESSION, 9, 40, 0);
    g.extend(h("01000000 02000000 7b7d"));
    g.extend(h("0000000000000080 00 0100 1000"));
    g.extend([0x11; 16]);
    g.push(3);
    check_response(
        &Response::Load(cdm_core::abi::Loaded {
            found: true,
            release_message: b"{}".to_vec(),
            state: SessionState {
                expiration_ms: None,
                closed: None,
                key_statuses: vec![(KeyId::new(&[0x11; 16]).unwrap(), KeyStatus::Released)],
            },
        }),
        Opcode::Load,
        &g,
    );
    // Not found: everything else empty; anything else is refused.
    let mut g = header(0x0202, SESSION, 9, 19, 0);
    g.extend(h("00000000 00000000 0000000000000080 00 0000"));
    check_response(
        &Response::Load(cdm_core::abi::Loaded::default()),
        Opcode::Load,
        &g,
    );
    let mut bad = header(0x0202, SESSION, 9, 21, 0);
    bad.extend(h("00000000 02000000 7b7d 0000000000000080 00 0000"));
    assert_eq!(
        Response::parse(Opcode::Load, &bad),
        Err(cdm_core::abi::AbiError::InvalidField("found"))
    );
    check_response(
        &Response::CloseSession(Done),
        Opcode::CloseSession,
        &header(0x0101, SESSION, 9, 0, 0),
    );
}

#[test]
fn error_responses() {
    let req_hdr = Header::request(Opcode::Decrypt, SESSION, 77);
    let mut out = Vec::new();
    Response::encode_error(&req_hdr, Status::NoKey, &mut out).unwrap();
    assert_eq!(out, header(0x0300, SESSION, 77, 0, 0x0401));
    let (_, r) = Response::parse(Opcode::Decrypt, &out).unwrap();
    assert_eq!(r, Err(Status::NoKey));
}

#[test]
fn status_codes_are_stable() {
    let expected: &[(Status, u32)] = &[
        (Status::Ok, 0),
        (Status::Truncated, 0x101),
        (Status::BadMagic, 0x102),
        (Status::UnsupportedVersion, 0x103),
        (Status::UnknownOpcode, 0x104),
        (Status::TrailingBytes, 0x105),
        (Status::PayloadTooLarge, 0x106),
        (Status::InvalidField, 0x107),
        (Status::NoSuchSession, 0x201),
        (Status::SessionQuotaExceeded, 0x202),
        (Status::InvalidState, 0x203),
        (Status::KeyQuotaExceeded, 0x204),
        (Status::NotSupported, 0x205),
        (Status::LicenseQuotaExceeded, 0x206),
        (Status::SessionIdInUse, 0x207),
        (Status::InvalidInitData, 0x301),
        (Status::InvalidLicense, 0x302),
        (Status::InvalidServerCertificate, 0x303),
        (Status::NoKey, 0x401),
        (Status::KeyNotUsable, 0x402),
        (Status::DecryptFailed, 0x403),
        (Status::SecureBufferQuotaExceeded, 0x404),
        (Status::NoSuchSecureBuffer, 0x405),
        (Status::OutputNotAllowed, 0x406),
        (Status::StorageUnavailable, 0x501),
        (Status::StorageCorrupt, 0x502),
        (Status::StorageTruncated, 0x503),
        (Status::StorageRollback, 0x504),
        (Status::StorageMissing, 0x505),
        (Status::OutOfMemory, 0xF01),
        (Status::Internal, 0xFFF),
    ];
    assert_eq!(expected.len(), Status::ALL.len());
    for &(s, v) in expected {
        assert_eq!(s.to_wire(), v);
        assert_eq!(Status::from_wire(v), Some(s));
    }
    let opcodes: &[(Opcode, u16)] = &[
        (Opcode::GetCapabilities, 0x0001),
        (Opcode::SetServerCertificate, 0x0002),
        (Opcode::GetStatusForPolicy, 0x0003),
        (Opcode::OpenSession, 0x0100),
        (Opcode::CloseSession, 0x0101),
        (Opcode::GenerateRequest, 0x0200),
        (Opcode::Update, 0x0201),
        (Opcode::Load, 0x0202),
        (Opcode::Remove, 0x0203),
        (Opcode::GetKeyStatuses, 0x0204),
        (Opcode::Renew, 0x0205),
        (Opcode::AddInBandKeys, 0x0206),
        (Opcode::Decrypt, 0x0300),
        (Opcode::RenderSecureBuffer, 0x0400),
        (Opcode::ReleaseSecureBuffer, 0x0401),
    ];
    assert_eq!(opcodes.len(), Opcode::ALL.len());
    for &(o, v) in opcodes {
        assert_eq!(Opcode::from_wire(v), Some(o));
    }
}

#[test]
fn protected_key_system_messages() {
    use cdm_core::abi::{
        AddInBandKeys, GetStatusForPolicy, PolicyStatus, Renew, SetServerCertificate,
    };
    use cdm_core::HdcpVersion;

    // SetServerCertificate (0x0002), handle 0: bytes32 certificate.
    let mut g = header(0x0002, 0, 1, 4 + 3, 0);
    g.extend(h("03000000 | aabbcc"));
    check_request(
        &Request::SetServerCertificate(SetServerCertificate {
            certificate: &[0xaa, 0xbb, 0xcc],
        }),
        0,
        1,
        &g,
    );
    // GetStatusForPolicy (0x0003): u8 min_hdcp (two BCD digits), u8[3] reserved.
    let mut g = header(0x0003, 0, 2, 4, 0);
    g.extend(h("22 000000"));
    check_request(
        &Request::GetStatusForPolicy(GetStatusForPolicy {
            min_hdcp: Some(HdcpVersion::V2_2),
        }),
        0,
        2,
        &g,
    );
    let mut g = header(0x0003, 0, 2, 4, 0);
    g.extend(h("00 000000"));
    check_request(
        &Request::GetStatusForPolicy(GetStatusForPolicy { min_hdcp: None }),
        0,
        2,
        &g,
    );
    // An HDCP value outside the registry is refused.
    let mut bad = header(0x0003, 0, 2, 4, 0);
    bad.extend(h("15 000000"));
    assert!(Request::parse(&bad).is_err());
    // Renew (0x0205): empty.
    let g = header(0x0205, SESSION, 3, 0, 0);
    check_request(&Request::Renew(Renew), SESSION, 3, &g);
    // AddInBandKeys (0x0206): bytes32 record.
    let mut g = header(0x0206, SESSION, 4, 4 + 2, 0);
    g.extend(h("02000000 | 5443"));
    check_request(
        &Request::AddInBandKeys(AddInBandKeys { record: b"TC" }),
        SESSION,
        4,
        &g,
    );
    // PolicyStatus: u8 key_status (4 = output-restricted), u8[3] reserved.
    let mut g = header(0x0003, SESSION, 9, 4, 0);
    g.extend(h("04 000000"));
    check_response(
        &Response::GetStatusForPolicy(PolicyStatus {
            status: KeyStatus::OutputRestricted,
        }),
        Opcode::GetStatusForPolicy,
        &g,
    );
    // The protected key system's wire value.
    assert_eq!(KeySystem::Protected.to_wire(), 2);
    assert_eq!(KeySystem::Protected.as_str(), "org.teecdm.protected");
}
