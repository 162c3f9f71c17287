//! A whole Clear Key session through `SecureWorld::process`, driven the way the normal world
//! drives it: every request encoded with `cdm-core`'s ABI encoder, every answer decoded from
//! the response bytes.
//!
//! open → `generateRequest` (`cenc` init data) → `update` (a JWK Set with two keys) → decrypt
//! a `cenc` sample (subsamples, keystream across ranges) and a `cbcs` sample (1:9 pattern,
//! constant IV restarted per range, partial blocks clear) → close; then the keys must be gone.
//!
//! The samples are encrypted in the image by the RustCrypto reference ([`crate::reference`]),
//! whose output is itself pinned to SHA-256 digests computed with `openssl enc`
//! (`data/gen_samples.py`).
//!
//! Key wiping, as far as the secure world makes it observable:
//! - through the ABI: after close the old handle is unknown (`NoSuchSession`), and a new
//!   session cannot decrypt with the closed session's key IDs (`NoKey`);
//! - in memory: from `update` to `close`, every block the heap gets back is searched for the
//!   raw keys and their base64url text (no hit allowed), and after close — once the normal
//!   world's own copy of the license request is wiped — the whole heap region, live and free
//!   blocks alike, must hold neither.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use cdm_core::abi::{
    parse_response, CloseSession, DecryptOutput, DecryptRequest, GenerateRequest, GetCapabilities,
    GetKeyStatuses, OpenSession, Operation, OutputKind, Status, Subsamples, Update,
};
use cdm_core::SessionType;
use cdm_core::{EncryptionScheme, InitDataType, KeyStatus, KeySystem, MessageType, Robustness};
use hal::platform::{Clock, SecureOutputSink, SecureRandom};
use secure_world::SecureWorld;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::heap::{ScanReport, ScanningHeap, MAX_NEEDLES};
use crate::reference;

/// Key ID of the `cenc` key: "tee-cdm fw cenc." in ASCII.
const KID_CENC: [u8; 16] = *b"tee-cdm fw cenc.";
/// Key ID of the `cbcs` key: "tee-cdm fw cbcs." in ASCII.
const KID_CBCS: [u8; 16] = *b"tee-cdm fw cbcs.";
/// Content key of the `cenc` sample (used only by the firmware images).
const KEY_CENC: [u8; 16] = [
    0x5c, 0xe0, 0xa1, 0xf2, 0x87, 0x3b, 0x6d, 0x44, 0x19, 0xe7, 0xc2, 0xa8, 0x5f, 0x0b, 0x3d, 0x96,
];
/// Content key of the `cbcs` sample.
const KEY_CBCS: [u8; 16] = [
    0xc4, 0x7d, 0x2b, 0x9e, 0x0f, 0x6a, 0x38, 0x15, 0xe2, 0xb7, 0xd9, 0x40, 0xa3, 0x6c, 0x1f, 0x58,
];
/// Base64url (RFC 4648 §5, unpadded) of [`KEY_CENC`] and [`KEY_CBCS`], as the license carries
/// them (made with Python's `base64.urlsafe_b64encode`, not with this code base).
const KEY_CENC_B64: &str = "XOCh8oc7bUQZ58KoXws9lg";
/// See [`KEY_CENC_B64`].
const KEY_CBCS_B64: &str = "xH0rng9qOBXit9lAo2wfWA";

/// The license request EME §9.1.3 prescribes for the two key IDs (base64url by Python).
const EXPECTED_REQUEST: &str =
    r#"{"kids":["dGVlLWNkbSBmdyBjZW5jLg","dGVlLWNkbSBmdyBjYmNzLg"],"type":"temporary"}"#;

/// The Clear Key license: a JWK Set (EME §9.1.4) with both keys.
const LICENSE: &str = concat!(
    r#"{"keys":["#,
    r#"{"kty":"oct","kid":"dGVlLWNkbSBmdyBjZW5jLg","k":"XOCh8oc7bUQZ58KoXws9lg"},"#,
    r#"{"kty":"oct","kid":"dGVlLWNkbSBmdyBjYmNzLg","k":"xH0rng9qOBXit9lAo2wfWA"}"#,
    r#"],"type":"temporary"}"#
);

/// The `cenc` sample: 1000 bytes, 8-byte IV, two subsamples whose protected ranges end
/// mid-block (the keystream runs on across them).
const CENC_LEN: usize = 1000;
const CENC_IV: [u8; 8] = [0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87];
const CENC_MAP: [(u32, u32); 2] = [(5, 300), (20, 675)];
/// SHA-256 of the `cenc` ciphertext, from `openssl enc -aes-128-ctr` (`data/gen_samples.py`).
const CENC_SHA256: &str = "ec7f4c91e51f0abb8974c2998eaef6c8f7aec816484d78dc76fc019d66ad4cda";

/// The `cbcs` sample: 700 bytes, 1:9 pattern, 16-byte constant IV, protected ranges with
/// partial trailing blocks.
const CBCS_LEN: usize = 700;
const CBCS_IV: [u8; 16] = [
    0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90,
];
const CBCS_PATTERN: (u8, u8) = (1, 9);
const CBCS_MAP: [(u32, u32); 2] = [(16, 250), (5, 429)];
/// SHA-256 of the `cbcs` ciphertext, from `openssl enc -aes-128-cbc` (`data/gen_samples.py`).
const CBCS_SHA256: &str = "a38eeef7d966f9c7374deb861dbecb1dfedae0003d3e941dc2a7866b30c6f926";

/// What the heap scanner looks for: both raw keys and both base64url texts.
const NEEDLES: [&[u8]; MAX_NEEDLES] = [
    &KEY_CENC,
    &KEY_CBCS,
    KEY_CENC_B64.as_bytes(),
    KEY_CBCS_B64.as_bytes(),
];

/// What a successful session showed.
#[derive(Debug)]
pub struct SessionReport {
    /// The engine the secure world reported in its capabilities.
    pub engine: String,
    /// The scan of freed blocks from `update` to `close`.
    pub scan: ScanReport,
}

/// Fails with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

/// The normal world's side of the ABI: encodes requests, calls `process`, decodes answers.
struct Client<'w, R, C, S> {
    world: &'w mut SecureWorld<R, C, S>,
    request: Vec<u8>,
    response: Vec<u8>,
    next_id: u32,
}

impl<R: SecureRandom, C: Clock, S: SecureOutputSink> Client<'_, R, C, S> {
    /// Sends `op` for `session` (with the shared `sample` buffer) and decodes the answer;
    /// answers the response header's session handle and the typed result.
    fn call<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: &O,
        sample: &mut [u8],
    ) -> Result<(u64, Result<O::Response, Status>), String> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        op.encode_message(session, id, &mut self.request)
            .map_err(|e| format!("encoding {:?}: {e}", O::OPCODE))?;
        self.world
            .process(&self.request, sample, &mut self.response);
        self.answer::<O>(id)
    }

    /// Sends an already encoded request message (request id `id`).
    fn call_raw<'a, O: Operation<'a>>(
        &mut self,
        message: &[u8],
        id: u32,
    ) -> Result<(u64, Result<O::Response, Status>), String> {
        self.world.process(message, &mut [], &mut self.response);
        self.answer::<O>(id)
    }

    fn answer<'a, O: Operation<'a>>(
        &self,
        id: u32,
    ) -> Result<(u64, Result<O::Response, Status>), String> {
        let (header, result) = parse_response::<O>(&self.response)
            .map_err(|e| format!("decoding the {:?} response: {e}", O::OPCODE))?;
        ensure!(
            header.request_id == id,
            "{:?}: response to request {} instead of {id}",
            O::OPCODE,
            header.request_id
        );
        Ok((header.session, result))
    }

    /// Like [`Client::call`], requiring success.
    fn ok<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: &O,
        sample: &mut [u8],
    ) -> Result<(u64, O::Response), String> {
        let (s, r) = self.call(session, op, sample)?;
        let r = r.map_err(|st| format!("{:?} failed: {st:?}", O::OPCODE))?;
        Ok((s, r))
    }

    fn open(&mut self) -> Result<u64, String> {
        let (handle, opened) = self.ok(
            0,
            &OpenSession {
                key_system: KeySystem::ClearKey,
                robustness: Robustness::Empty,
                session_type: SessionType::Temporary,
            },
            &mut [],
        )?;
        ensure!(handle != 0, "OpenSession answered handle 0");
        ensure!(
            opened.session_id.len() == 16,
            "session id {:?} is not 16 characters",
            opened.session_id
        );
        Ok(handle)
    }

    fn decrypt(
        &mut self,
        session: u64,
        request: &DecryptRequest<'_>,
        sample: &mut [u8],
    ) -> Result<Result<DecryptOutput, Status>, String> {
        Ok(self.call(session, request, sample)?.1)
    }
}

/// A version 1 `pssh` box of the common system ID listing `kids` (ISO/IEC 23001-7 §8.1.1),
/// written out byte by byte.
fn pssh_v1(kids: &[[u8; 16]]) -> Result<Vec<u8>, String> {
    const COMMON_SYSTEM_ID: [u8; 16] = [
        0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb,
        0x4b,
    ];
    let size = u32::try_from(32 + 16 * kids.len() + 4).map_err(|_| "pssh size")?;
    let count = u32::try_from(kids.len()).map_err(|_| "pssh count")?;
    let mut b = Vec::new();
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&COMMON_SYSTEM_ID);
    b.extend_from_slice(&count.to_be_bytes());
    for k in kids {
        b.extend_from_slice(k);
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    Ok(b)
}

/// A sample in clear and encrypted.
struct Sample {
    plain: Vec<u8>,
    cipher: Vec<u8>,
}

/// The `cenc` sample and the `cbcs` sample, encrypted by the reference encryptor and checked
/// against the OpenSSL digests.
fn samples() -> Result<[Sample; 2], String> {
    let cenc_pt = reference::plaintext(CENC_LEN);
    let mut cenc_ct = cenc_pt.clone();
    reference::encrypt_cenc(&KEY_CENC, &CENC_IV, &CENC_MAP, &mut cenc_ct)
        .map_err(|_| "cenc sample map")?;
    let cbcs_pt = reference::plaintext(CBCS_LEN);
    let mut cbcs_ct = cbcs_pt.clone();
    reference::encrypt_cbcs(&KEY_CBCS, &CBCS_IV, CBCS_PATTERN, &CBCS_MAP, &mut cbcs_ct)
        .map_err(|_| "cbcs sample map")?;
    for (name, ct, want) in [
        ("cenc", &cenc_ct, CENC_SHA256),
        ("cbcs", &cbcs_ct, CBCS_SHA256),
    ] {
        let got = hex::encode(Sha256::digest(ct));
        ensure!(
            got == want,
            "reference {name} ciphertext differs from OpenSSL's (SHA-256 {got}, want {want})"
        );
    }
    // The clear parts really are clear and the protected ones really are not.
    ensure!(
        cenc_ct.get(..5) == cenc_pt.get(..5) && cenc_ct.get(305..325) == cenc_pt.get(305..325),
        "cenc clear ranges changed"
    );
    ensure!(
        cbcs_ct.get(32..176) == cbcs_pt.get(32..176) && cbcs_ct.get(16..32) != cbcs_pt.get(16..32),
        "cbcs pattern not applied"
    );
    Ok([
        Sample {
            plain: cenc_pt,
            cipher: cenc_ct,
        },
        Sample {
            plain: cbcs_pt,
            cipher: cbcs_ct,
        },
    ])
}

/// Proves that both heap scans find a needle that is there: a block holding it, freed while
/// armed, is one hit, and the arena scan still sees it in free memory afterwards (the needle
/// sits past the free-list header the allocator writes into a freed block).
fn scanner_self_test(heap: &ScanningHeap) -> Result<(), String> {
    const PROBE: &[u8] = b"heap scanner probe, not a key";
    let needles: [&[u8]; MAX_NEEDLES] = [PROBE, &[], &[], &[]];
    let mut block = alloc::vec![0x55u8; 32];
    block.extend_from_slice(PROBE);
    heap.arm(&needles);
    drop(block);
    let report = heap.disarm();
    ensure!(
        report.hits[0] == 1,
        "heap scanner self-test: a freed block holding the probe was not found"
    );
    ensure!(
        heap.arena_hits(&needles)[0],
        "heap scanner self-test: the arena scan missed the probe"
    );
    Ok(())
}

/// Runs the session; `Err` names the first check that failed.
pub(crate) fn run<R: SecureRandom, C: Clock, S: SecureOutputSink>(
    world: &mut SecureWorld<R, C, S>,
    heap: &ScanningHeap,
) -> Result<SessionReport, String> {
    scanner_self_test(heap)?;
    let [Sample {
        plain: cenc_pt,
        cipher: mut cenc,
    }, Sample {
        plain: cbcs_pt,
        cipher: mut cbcs,
    }] = samples()?;
    let mut c = Client {
        world,
        request: Vec::new(),
        response: Vec::new(),
        next_id: 1,
    };

    let (_, caps) = c.ok(0, &GetCapabilities, &mut [])?;
    ensure!(
        caps.schemes.contains(&EncryptionScheme::Cenc)
            && caps.schemes.contains(&EncryptionScheme::Cbcs),
        "capabilities lack cenc or cbcs: {:?}",
        caps.schemes
    );

    let s = c.open()?;
    let pssh = pssh_v1(&[KID_CENC, KID_CBCS])?;
    let (_, msg) = c.ok(
        s,
        &GenerateRequest {
            init_data_type: InitDataType::Cenc,
            init_data: &pssh,
        },
        &mut [],
    )?;
    ensure!(
        msg.message_type == MessageType::LicenseRequest,
        "generateRequest answered a {:?} message",
        msg.message_type
    );
    ensure!(
        msg.message == EXPECTED_REQUEST.as_bytes(),
        "license request {:?}",
        String::from_utf8_lossy(&msg.message)
    );

    // The normal world's copy of the license request, encoded before the scan starts and
    // alive until it ends, so that every hit is memory the secure world released.
    let update_id = 1000;
    let mut update = Vec::new();
    Update {
        response: LICENSE.as_bytes(),
    }
    .encode_message(s, update_id, &mut update)
    .map_err(|e| format!("encoding Update: {e}"))?;

    heap.arm(&NEEDLES);
    let outcome = keyed_part(&mut c, s, &update, update_id, &mut cenc, &mut cbcs);
    let scan = heap.disarm();
    outcome?;
    update.zeroize();
    drop(update);

    ensure!(
        cenc == cenc_pt,
        "cenc sample did not decrypt to its plaintext"
    );
    ensure!(
        cbcs == cbcs_pt,
        "cbcs sample did not decrypt to its plaintext"
    );
    ensure!(
        scan.blocks > 0,
        "the heap scanner saw no freed block (not armed?)"
    );
    for (needle, hits) in [
        "raw cenc key",
        "raw cbcs key",
        "cenc key text",
        "cbcs key text",
    ]
    .iter()
    .zip(scan.hits)
    {
        ensure!(hits == 0, "{hits} freed heap block(s) held the {needle}");
    }

    // Through the ABI: the closed session is gone, and its keys with it.
    let (_, statuses) = c.call(s, &GetKeyStatuses, &mut [])?;
    ensure!(
        statuses == Err(Status::NoSuchSession),
        "key statuses of the closed session: {statuses:?}"
    );
    let mut probe = cenc_pt.clone();
    let answer = c.decrypt(s, &cenc_request(&KID_CENC, &probe), &mut probe)?;
    ensure!(
        answer == Err(Status::NoSuchSession) && probe == cenc_pt,
        "decrypt with the closed handle: {answer:?}"
    );
    let s2 = c.open()?;
    for (kid, name) in [(&KID_CENC, "cenc"), (&KID_CBCS, "cbcs")] {
        let mut probe = cenc_pt.clone();
        let answer = c.decrypt(s2, &cenc_request(kid, &probe), &mut probe)?;
        ensure!(
            answer == Err(Status::NoKey) && probe == cenc_pt,
            "the closed session's {name} key still decrypts: {answer:?}"
        );
    }
    c.ok(s2, &CloseSession, &mut [])?;

    // In memory: the whole heap, now that the normal world wiped its copy of the license.
    let in_heap = heap.arena_hits(&NEEDLES);
    ensure!(
        in_heap == [false; MAX_NEEDLES],
        "the heap still holds key material after close (raw cenc, raw cbcs, cenc text, cbcs text: {in_heap:?})"
    );

    Ok(SessionReport {
        engine: caps.engine,
        scan,
    })
}

/// The `cenc` sample's description, with `kid`.
fn cenc_request<'a>(kid: &'a [u8; 16], sample: &[u8]) -> DecryptRequest<'a> {
    DecryptRequest {
        key_id: kid,
        scheme: EncryptionScheme::Cenc,
        pattern: (0, 0),
        output: OutputKind::InPlace,
        iv: &CENC_IV,
        sample_len: u32::try_from(sample.len()).unwrap_or(u32::MAX),
        subsamples: Subsamples::Pairs(&CENC_MAP),
    }
}

/// From `update` to `close`: the part of the session during which keys exist.
fn keyed_part<R: SecureRandom, C: Clock, S: SecureOutputSink>(
    c: &mut Client<'_, R, C, S>,
    s: u64,
    update: &[u8],
    update_id: u32,
    cenc: &mut [u8],
    cbcs: &mut [u8],
) -> Result<(), String> {
    let (_, state) = c.call_raw::<Update<'_>>(update, update_id)?;
    let state = state.map_err(|st| format!("update failed: {st:?}"))?;
    let statuses: Vec<(&[u8], KeyStatus)> = state
        .key_statuses
        .iter()
        .map(|(k, v)| (k.as_bytes(), *v))
        .collect();
    ensure!(
        statuses
            == [
                (&KID_CENC[..], KeyStatus::Usable),
                (&KID_CBCS[..], KeyStatus::Usable)
            ],
        "key statuses after update: {statuses:?}"
    );

    let answer = c.decrypt(s, &cenc_request(&KID_CENC, cenc), cenc)?;
    ensure!(
        answer == Ok(DecryptOutput::InPlace),
        "cenc decrypt: {answer:?}"
    );
    let cbcs_request = DecryptRequest {
        key_id: &KID_CBCS,
        scheme: EncryptionScheme::Cbcs,
        pattern: CBCS_PATTERN,
        output: OutputKind::InPlace,
        iv: &CBCS_IV,
        sample_len: u32::try_from(cbcs.len()).map_err(|_| "cbcs length")?,
        subsamples: Subsamples::Pairs(&CBCS_MAP),
    };
    let answer = c.decrypt(s, &cbcs_request, cbcs)?;
    ensure!(
        answer == Ok(DecryptOutput::InPlace),
        "cbcs decrypt: {answer:?}"
    );

    c.ok(s, &CloseSession, &mut [])?;
    Ok(())
}
