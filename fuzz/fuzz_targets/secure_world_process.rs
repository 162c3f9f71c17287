//! Drives one secure world through an arbitrary sequence of messages, each with its own
//! shared sample buffer.
//!
//! Input: repeated records `u16 LE message length, message, u16 LE sample length, sample`
//! (a short final record is padded with zeros). Session handles are random, so a fuzzer could
//! never guess one: a header whose session field is a small number `k` (1..=8) is rewritten to
//! the handle of the `k`-th session opened so far, which lets inputs reach decrypt, update
//! and remove on live sessions. Invariants checked after every call: exactly one well-formed
//! response answering the request's opcode and id (or opcode 0 when the header was unusable);
//! and a failed call changed nothing: the shared sample holds the same bytes and every open
//! session answers `GetKeyStatuses` exactly as before.
#![no_main]

use cdm_core::abi::{GetKeyStatuses, Header, Opcode, Operation, Response, HEADER_LEN};
use hal::aes::Engine;
use hal::platform::{Clock, DigestSink, Platform, RngError, SecureRandom};
use libfuzzer_sys::fuzz_target;
use secure_world::{Config, SecureWorld};
use cdm_testkit::rng::TestRng;
use std::cell::RefCell;

/// Deterministic randomness (the test kit's PRNG), so a crashing input reproduces.
struct FuzzRng(RefCell<TestRng>);

impl SecureRandom for FuzzRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        self.0.borrow_mut().fill(out);
        Ok(())
    }
}

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> Option<i64> {
        Some(1_700_000_000_000)
    }
}

/// The P-256 base point, uncompressed (SEC 2 §2.4.2).
const P256_G: [u8; 65] = [
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (head, rest) = data.split_at(n);
    *data = rest;
    head
}

fn take_u16(data: &mut &[u8]) -> usize {
    let b = take(data, 2);
    usize::from(b.first().copied().unwrap_or(0)) | usize::from(b.get(1).copied().unwrap_or(0)) << 8
}

/// What every known session answers to `GetKeyStatuses`.
fn snapshot<W: FnMut(&[u8], &mut Vec<u8>)>(mut process: W, sessions: &[u64]) -> Vec<Vec<u8>> {
    sessions
        .iter()
        .map(|&h| {
            let mut req = Vec::new();
            GetKeyStatuses.encode_message(h, 0, &mut req).expect("encode");
            let mut resp = Vec::new();
            process(&req, &mut resp);
            resp
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let platform = Platform::new(FuzzRng(RefCell::new(TestRng::new(0x9e37_79b9_7f4a_7c15))), FixedClock, DigestSink::new(), Engine::detect());
    // The protected key system is on, its root pinned to the P-256 generator (any valid point
    // does: the fuzzer cannot make signatures, so it drives the parsers and the rejections).
    let config = Config { max_sessions: 4, max_keys_per_session: 4, max_secure_buffers: 4, max_secure_buffer_bytes: 1 << 20, protected_root: Some(P256_G), ..Config::default() };
    let Ok(mut world) = SecureWorld::new(platform, config) else { return };
    let mut sessions: Vec<u64> = Vec::new();
    let mut response = Vec::new();
    let mut input = data;
    while !input.is_empty() {
        let len = take_u16(&mut input);
        let mut message = take(&mut input, len).to_vec();
        let sample_len = take_u16(&mut input);
        let mut sample = take(&mut input, sample_len).to_vec();
        sample.resize(sample_len, 0);
        if message.len() >= HEADER_LEN {
            let k = u64::from_le_bytes(message[8..16].try_into().unwrap());
            if (1..=8).contains(&k) {
                if let Some(&h) = sessions.get(usize::try_from(k - 1).unwrap()) {
                    message[8..16].copy_from_slice(&h.to_le_bytes());
                }
            }
        }
        let before_sample = sample.clone();
        let before = snapshot(|r, out| world.process(r, &mut [], out), &sessions);
        world.process(&message, &mut sample, &mut response);
        let (hdr, _) = Header::parse(&response).expect("the secure world answered a malformed response");
        if hdr.status != 0 {
            assert_eq!(sample, before_sample, "a failed call changed the shared sample");
            let after = snapshot(|r, out| world.process(r, &mut [], out), &sessions);
            assert_eq!(after, before, "a failed call changed a session");
        }
        if let Ok((req, _)) = Header::parse(&message) {
            if let Ok(op) = req.opcode() {
                if req.status == 0 {
                    assert_eq!(hdr.opcode, req.opcode);
                    assert_eq!(hdr.request_id, req.request_id);
                    let (_, parsed) = Response::parse(op, &response).expect("response does not decode");
                    if op == Opcode::OpenSession && parsed.is_ok() {
                        sessions.push(hdr.session);
                    }
                }
            }
        }
    }
});
