//! Proof that content keys do not survive in freed heap memory.
//!
//! The scanning allocator of `cdm-testkit` wraps `System` and, while armed, scans every block
//! freed by `dealloc` and the old block of every `realloc` for two needles: the raw 16-byte
//! content key (a key schedule's first round key is the key itself) and the key's base64url
//! text, the form in which the Clear Key license carries it. Any hit means that some code path
//! released memory that still held the key.
//!
//! The test's own buffers that carry the base64url text (the license and the encoded update
//! request) are made before arming and stay alive until the scan is over, so every hit is
//! about memory the secure world released. The file has a single `#[test]`: the allocator
//! scans the frees of every thread.
#![allow(clippy::unwrap_used)]

mod common;

use cdm_core::abi::{Opcode, OutputKind, Request};
use cdm_core::{InitDataType, Robustness};
use cdm_testkit::alloc_scan::ScanningAllocator;
use common::*;

#[global_allocator]
static SCANNER: ScanningAllocator = ScanningAllocator::new();

/// The needle: a content key with no structure, used only by this test.
const NEEDLE: [u8; 16] = [
    0xd3, 0x4e, 0x91, 0x0c, 0x7a, 0xe5, 0x28, 0xb6, 0x5f, 0x13, 0xc8, 0x6d, 0xa2, 0x39, 0xf4, 0x87,
];

#[test]
fn no_freed_block_ever_holds_the_content_key() {
    let mut h = Harness::new();
    let key_text = b64url(&NEEDLE);
    let lic = license(&[(&KID1, NEEDLE)]);
    // Make the content before arming (RustCrypto's own temporaries are not under test).
    let clear = plaintext(300);
    let mut sample = clear.clone();
    encrypt_cenc(&NEEDLE, &[6; 8], &mut sample, &[]);
    let s = h.open(Robustness::SwSecureCrypto);
    h.generate(s, InitDataType::Cenc, &pssh_v1(&[KID1]))
        .unwrap();
    // The normal world's side of `update`, encoded now and alive until the scan is over.
    let mut update = Vec::new();
    Request::Update(cdm_core::abi::Update { response: &lic })
        .encode(s, 1000, &mut update)
        .unwrap();

    SCANNER.arm(&[&NEEDLE, key_text.as_bytes()]);
    h.raw(Opcode::Update, &update, &mut []).1.unwrap();
    h.decrypt(
        s,
        cenc_req(&KID1, &[6; 8], 300, &[], OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    h.call(s, &Request::CloseSession(cdm_core::abi::CloseSession))
        .unwrap();
    drop(h);
    let report = SCANNER.disarm();
    drop((update, lic, key_text));

    assert_eq!(sample, clear, "the key was really used");
    assert!(report.scanned > 0, "the allocator saw the frees");
    assert_eq!(
        report.hits[0], 0,
        "a freed block contained the raw content key"
    );
    assert_eq!(
        report.hits[1], 0,
        "a freed block contained the content key's base64url text"
    );
}
