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
//!
//! The same holds for persistent licenses: storing (the record is built, sealed and written),
//! a second license joining the stored one (the record is read back, unsealed and merged),
//! loading in a new secure world, removing and acknowledging — the keys pass through record
//! plaintexts and key vectors, and none of them may be freed unwiped.
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

    // Persistent: licenses and requests made now, used after arming.
    let dir = cdm_testkit::temp::TempDir::new("zeroize-persistent");
    let mut p = Harness::with_storage(dir.path(), secure_world::Config::default());
    let (ps, pid) = p
        .try_open_typed(
            Robustness::SwSecureCrypto,
            cdm_core::SessionType::PersistentLicense,
        )
        .unwrap();
    p.generate(ps, InitDataType::Cenc, &pssh_v1(&[KID1]))
        .unwrap();
    let plic = persistent_license(&[(&KID1, NEEDLE)]);
    let plic2 = persistent_license(&[(&KID2, KEY2)]);
    let mut pupdates = [Vec::new(), Vec::new()];
    for (buf, lic) in pupdates.iter_mut().zip([&plic, &plic2]) {
        Request::Update(cdm_core::abi::Update { response: lic })
            .encode(ps, 2000, buf)
            .unwrap();
    }
    let mut psample = clear.clone();
    encrypt_cenc(&NEEDLE, &[6; 8], &mut psample, &[]);
    let ack = format!(r#"{{"kids":["{KID1_B64}","{KID2_B64}"]}}"#);

    SCANNER.arm(&[&NEEDLE, key_text.as_bytes()]);
    // Store, then a second license joins the stored one (read, unseal, merge, reseal).
    p.raw(Opcode::Update, &pupdates[0], &mut []).1.unwrap();
    p.raw(Opcode::Update, &pupdates[1], &mut []).1.unwrap();
    p.close(ps).unwrap();
    drop(p);
    // A new secure world: load, decrypt, remove, acknowledge.
    let mut p = Harness::with_storage(dir.path(), secure_world::Config::default());
    let (ps, loaded) = p.load(Robustness::SwSecureCrypto, &pid).unwrap();
    assert!(loaded.found);
    p.decrypt(
        ps,
        cenc_req(&KID1, &[6; 8], 300, &[], OutputKind::InPlace),
        &mut psample,
    )
    .unwrap();
    p.remove(ps).unwrap();
    p.update(ps, ack.as_bytes()).unwrap();
    drop(p);
    // The temporary session.
    h.raw(Opcode::Update, &update, &mut []).1.unwrap();
    h.decrypt(
        s,
        cenc_req(&KID1, &[6; 8], 300, &[], OutputKind::InPlace),
        &mut sample,
    )
    .unwrap();
    h.close(s).unwrap();
    drop(h);
    let report = SCANNER.disarm();
    drop((update, lic, key_text, pupdates, plic, plic2));

    assert_eq!(sample, clear, "the key was really used");
    assert_eq!(psample, clear, "the stored key was really used");
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
