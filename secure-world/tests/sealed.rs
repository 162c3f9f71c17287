//! Sealed records (`secure_world::sealed`): round trips, and every way a record from the
//! attacker-controlled store can be wrong — tampered, truncated, moved to another name, rolled
//! back, sealed under another device's key or for another purpose — is an error, never a panic
//! and never plaintext.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use hal::platform::{BlobName, RngError, RootKey, SecureRandom, SystemRandom, MAX_BLOB_LEN};
use secure_world::sealed::{
    seal, unseal, RecordKind, SealError, SealingKey, HEADER_LEN, MAX_PLAINTEXT_LEN, TAG_LEN,
};

/// Deterministic "RNG" for golden bytes: 0, 1, 2, ...
struct CountingRng;
impl SecureRandom for CountingRng {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        for (b, i) in out.iter_mut().zip(0u8..) {
            *b = i;
        }
        Ok(())
    }
}

struct FailingRng;
impl SecureRandom for FailingRng {
    fn fill(&self, _out: &mut [u8]) -> Result<(), RngError> {
        Err(RngError)
    }
}

fn root(byte: u8) -> RootKey {
    let mut key = RootKey::zeroed();
    key.expose_mut().fill(byte);
    key
}

fn key(kind: RecordKind) -> SealingKey {
    SealingKey::derive(&root(0x42), kind).unwrap()
}

fn name(s: &str) -> BlobName {
    BlobName::new(s).unwrap()
}

const PLAINTEXT: &[u8] = b"persistent license: kid=00112233445566778899aabbccddeeff";

fn sealed(generation: u64) -> Vec<u8> {
    seal(
        &key(RecordKind::License),
        &name("license-0001"),
        generation,
        PLAINTEXT,
        &SystemRandom::new(),
    )
    .unwrap()
}

fn open(blob: &[u8]) -> Result<Vec<u8>, SealError> {
    unseal(
        &key(RecordKind::License),
        &name("license-0001"),
        Some(7),
        blob,
    )
    .map(|p| p.to_vec())
}

/// The fuzz target's seed: root key 0x42 x 32, name `license-0001`, generation 7, nonce
/// 00..0b. Pins the format: any change to the layout, the labels or the AD breaks this.
const SEED: &[u8] = include_bytes!("../../fuzz/corpus/sealed_record/license");

#[test]
fn round_trip() {
    let blob = sealed(7);
    assert_eq!(blob.len(), HEADER_LEN + PLAINTEXT.len() + TAG_LEN);
    assert_eq!(&blob[..4], b"TCSR");
    assert_eq!(open(&blob).unwrap(), PLAINTEXT);
    // No generation check at all, and a newer record than the minimum.
    let k = key(RecordKind::License);
    let n = name("license-0001");
    assert_eq!(&*unseal(&k, &n, None, &blob).unwrap(), PLAINTEXT);
    assert_eq!(&*unseal(&k, &n, Some(3), &blob).unwrap(), PLAINTEXT);
    // The other kind, and the empty plaintext.
    let id = key(RecordKind::DeviceIdentity);
    let blob = seal(&id, &n, 0, b"", &SystemRandom::new()).unwrap();
    assert_eq!(blob.len(), HEADER_LEN + TAG_LEN);
    assert!(unseal(&id, &n, Some(0), &blob).unwrap().is_empty());
}

#[test]
fn golden_record_matches_the_committed_seed() {
    let blob = seal(
        &key(RecordKind::License),
        &name("license-0001"),
        7,
        PLAINTEXT,
        &CountingRng,
    )
    .unwrap();
    assert_eq!(
        blob, SEED,
        "format changed: regenerate the fuzz seed only on purpose"
    );
    assert_eq!(open(SEED).unwrap(), PLAINTEXT);
}

#[test]
fn fresh_nonce_per_seal() {
    let (a, b) = (sealed(7), sealed(7));
    assert_ne!(a[20..32], b[20..32]);
    assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
}

#[test]
fn every_header_byte_is_checked() {
    let blob = sealed(7);
    for i in 0..HEADER_LEN {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = blob.clone();
            bad[i] ^= flip;
            let err = open(&bad).unwrap_err();
            let expected = match i {
                0..4 => SealError::BadMagic,
                4..6 => SealError::UnsupportedVersion(u16::from_le_bytes([bad[4], bad[5]])),
                6 => SealError::WrongKind,
                7..12 => SealError::NonZeroReserved,
                // Generation and nonce are only authenticated.
                _ => SealError::Authentication,
            };
            assert_eq!(err, expected, "header byte {i} ^ {flip:#x}");
        }
    }
}

#[test]
fn every_ciphertext_and_tag_byte_is_authenticated() {
    let blob = sealed(7);
    for i in HEADER_LEN..blob.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = blob.clone();
            bad[i] ^= flip;
            assert_eq!(
                open(&bad),
                Err(SealError::Authentication),
                "byte {i} ^ {flip:#x}"
            );
        }
    }
}

#[test]
fn truncation_at_every_length_and_extension_fail() {
    let blob = sealed(7);
    for len in 0..blob.len() {
        let expected = if len < HEADER_LEN + TAG_LEN {
            SealError::Truncated
        } else {
            SealError::Authentication
        };
        assert_eq!(open(&blob[..len]), Err(expected), "length {len}");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(open(&longer), Err(SealError::Authentication));
}

#[test]
fn record_moved_to_another_name_fails() {
    let blob = sealed(7);
    let k = key(RecordKind::License);
    for other in [
        "license-0002",
        "license-000",
        "license-00010",
        "device-identity",
    ] {
        assert_eq!(
            unseal(&k, &name(other), None, &blob).map(|p| p.to_vec()),
            Err(SealError::Authentication),
            "{other}"
        );
    }
}

#[test]
fn old_generation_is_a_rollback() {
    let blob = sealed(5);
    assert_eq!(
        open(&blob),
        Err(SealError::Rollback {
            found: 5,
            minimum: 7
        })
    );
    // A generation raised by the attacker is not accepted: authentication comes first.
    let mut forged = blob.clone();
    forged[12..20].copy_from_slice(&7u64.to_le_bytes());
    assert_eq!(open(&forged), Err(SealError::Authentication));
    // The highest generation is just a number.
    assert_eq!(open(&sealed(u64::MAX)).unwrap(), PLAINTEXT);
}

#[test]
fn another_devices_root_key_fails() {
    let blob = sealed(7);
    let other = SealingKey::derive(&root(0x43), RecordKind::License).unwrap();
    assert_eq!(
        unseal(&other, &name("license-0001"), None, &blob).map(|p| p.to_vec()),
        Err(SealError::Authentication)
    );
}

#[test]
fn another_kinds_key_fails() {
    let blob = sealed(7);
    let id = key(RecordKind::DeviceIdentity);
    let n = name("license-0001");
    assert_eq!(
        unseal(&id, &n, None, &blob).map(|p| p.to_vec()),
        Err(SealError::WrongKind)
    );
    // Relabelling the record as a device identity gets it past the header check, not the AEAD
    // (another key, and the kind byte is in the associated data).
    let mut relabelled = blob.clone();
    relabelled[6] = 2;
    assert_eq!(
        unseal(&id, &n, None, &relabelled).map(|p| p.to_vec()),
        Err(SealError::Authentication)
    );
}

#[test]
fn size_limits() {
    let k = key(RecordKind::License);
    let n = name("big");
    let max = vec![0x5a; MAX_PLAINTEXT_LEN];
    let blob = seal(&k, &n, 1, &max, &SystemRandom::new()).unwrap();
    assert_eq!(blob.len(), MAX_BLOB_LEN);
    assert_eq!(&*unseal(&k, &n, None, &blob).unwrap(), &max[..]);
    let over = vec![0x5a; MAX_PLAINTEXT_LEN + 1];
    assert_eq!(
        seal(&k, &n, 1, &over, &SystemRandom::new()),
        Err(SealError::TooLarge)
    );
    let mut long_blob = blob;
    long_blob.push(0);
    assert_eq!(
        unseal(&k, &n, None, &long_blob).map(|p| p.to_vec()),
        Err(SealError::TooLarge)
    );
}

#[test]
fn rng_failure_is_reported() {
    assert_eq!(
        seal(&key(RecordKind::License), &name("x"), 0, b"x", &FailingRng),
        Err(SealError::Rng)
    );
}

#[test]
fn sealing_key_debug_hides_the_key() {
    let k = key(RecordKind::License);
    assert_eq!(format!("{k:?}"), "SealingKey { kind: License, .. }");
}
