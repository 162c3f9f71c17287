//! Sealed records: what the secure world hands the normal world's store.
//!
//! The store, like every blob in it, is attacker controlled (DESIGN.md, "Security model"), so a
//! record is sealed before it leaves the secure world:
//!
//! - **Keys.** One AES-256 key per record kind, derived from the device root key with
//!   HKDF-SHA256 (RFC 5869; no salt, the kind's label as `info`). A key for one kind never
//!   opens a record of another, and the root key itself is never used as a key.
//! - **AEAD.** AES-256-GCM-SIV (RFC 8452), chosen for its nonce-misuse resistance: the 96-bit
//!   nonce comes from the platform RNG, and a weak or repeating RNG reveals at most that two
//!   records are equal, never the key stream.
//! - **Associated data** = the record's header bytes followed by its [`BlobName`]'s bytes. The
//!   header is fixed-length, so the concatenation is unambiguous. A record moved to another
//!   name, or with any header field (kind, generation, nonce, reserved bytes) changed, fails
//!   authentication.
//! - **Generation.** A `u64` the caller chooses (from the monotonic counter, when storage is
//!   wired up), authenticated with the record; [`unseal`] refuses a record older than the
//!   caller's minimum with [`SealError::Rollback`]. The check runs only after authentication,
//!   so the generation it reports is one the secure world itself sealed.
//!
//! Record layout (all integers little-endian; [`HEADER_LEN`] = 32 bytes of header):
//!
//! | Offset | Size | Field                                           |
//! |-------:|-----:|-------------------------------------------------|
//! |      0 |    4 | magic `b"TCSR"`                                 |
//! |      4 |    2 | format version, `u16` = [`VERSION`] (1)         |
//! |      6 |    1 | record kind, `u8` ([`RecordKind`])              |
//! |      7 |    5 | reserved, zero                                  |
//! |     12 |    8 | generation, `u64`                               |
//! |     20 |   12 | AES-GCM-SIV nonce                               |
//! |     32 |    n | ciphertext (same length as the plaintext)       |
//! | 32 + n |   16 | AES-GCM-SIV tag                                 |
//!
//! A whole record is at most [`MAX_BLOB_LEN`] bytes, so a plaintext is at most
//! [`MAX_PLAINTEXT_LEN`].

use alloc::vec::Vec;
use core::fmt;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::Aes256GcmSiv;
use hal::platform::{BlobName, RootKey, SecureRandom, MAX_BLOB_LEN};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// The first four bytes of every sealed record.
pub const MAGIC: [u8; 4] = *b"TCSR";
/// The record format this code writes and the only one it reads.
pub const VERSION: u16 = 1;
/// Length of the fixed header, in bytes.
pub const HEADER_LEN: usize = 32;
/// Length of the AES-GCM-SIV nonce, in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM-SIV tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Largest plaintext [`seal`] accepts: what fits in a [`MAX_BLOB_LEN`] record.
pub const MAX_PLAINTEXT_LEN: usize = MAX_BLOB_LEN - HEADER_LEN - TAG_LEN;

const RESERVED_LEN: usize = 5;
const KEY_LEN: usize = 32;

/// What a record holds. Each kind has its own sealing key and its own byte in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum RecordKind {
    /// A persistent license (its keys and policy).
    License = 1,
    /// The device identity (the provisioned device key pair and its certificate).
    DeviceIdentity = 2,
    /// The table of stored licenses (names, generations, release state).
    LicenseTable = 3,
}

impl RecordKind {
    /// The HKDF `info` label of this kind's sealing key. Changing a label orphans every
    /// record sealed under it.
    fn label(self) -> &'static [u8] {
        match self {
            RecordKind::License => b"tee-cdm seal v1 license",
            RecordKind::DeviceIdentity => b"tee-cdm seal v1 device-identity",
            RecordKind::LicenseTable => b"tee-cdm seal v1 license-table",
        }
    }

    fn from_u8(raw: u8) -> Option<Self> {
        match raw {
            1 => Some(RecordKind::License),
            2 => Some(RecordKind::DeviceIdentity),
            3 => Some(RecordKind::LicenseTable),
            _ => None,
        }
    }
}

/// Why sealing or unsealing failed. Carries no key or plaintext bytes.
///
/// Header problems found before authentication get specific variants (they describe bytes the
/// normal world can read anyway); everything the AEAD rejects is [`SealError::Authentication`],
/// deliberately without detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The record is shorter than a header and a tag.
    #[error("sealed record truncated")]
    Truncated,
    /// The record does not start with [`MAGIC`].
    #[error("not a sealed record")]
    BadMagic,
    /// The record's format version is not [`VERSION`].
    #[error("unsupported sealed record version {0}")]
    UnsupportedVersion(u16),
    /// The record is of another kind than the key opens (or of no known kind).
    #[error("sealed record of the wrong kind")]
    WrongKind,
    /// A reserved header byte is not zero.
    #[error("sealed record has non-zero reserved bytes")]
    NonZeroReserved,
    /// The record is authentic but older than the caller accepts: the store was rolled back.
    #[error("sealed record generation {found} is older than {minimum}")]
    Rollback {
        /// The record's (authenticated) generation.
        found: u64,
        /// The oldest generation the caller accepts.
        minimum: u64,
    },
    /// The AEAD rejected the record: wrong key, wrong name, or altered bytes.
    #[error("sealed record failed authentication")]
    Authentication,
    /// The plaintext or the record exceeds the size limits ([`MAX_PLAINTEXT_LEN`],
    /// [`MAX_BLOB_LEN`]).
    #[error("sealed record too large")]
    TooLarge,
    /// A buffer could not be allocated (`try_reserve` failed).
    #[error("out of memory")]
    OutOfMemory,
    /// The platform RNG could not supply a nonce.
    #[error("random number generator failed")]
    Rng,
    /// HKDF refused to derive a key (cannot happen for the lengths used here).
    #[error("key derivation failed")]
    KeyDerivation,
}

/// A sealing key for one [`RecordKind`], derived from the device root key.
///
/// Wiped on drop; its `Debug` prints only the kind; neither `Clone` nor `PartialEq`.
#[derive(ZeroizeOnDrop)]
pub struct SealingKey {
    key: [u8; KEY_LEN],
    #[zeroize(skip)]
    kind: RecordKind,
}

impl SealingKey {
    /// Derives the sealing key for `kind`: HKDF-SHA256 (RFC 5869 §2) with no salt, the root
    /// key as input keying material and the kind's label as `info`.
    pub fn derive(root: &RootKey, kind: RecordKind) -> Result<Self, SealError> {
        let mut key = SealingKey {
            key: [0; KEY_LEN],
            kind,
        };
        hkdf_sha256(None, root.expose(), kind.label(), &mut key.key)?;
        Ok(key)
    }

    /// The kind of record this key seals and opens.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    fn cipher(&self) -> Aes256GcmSiv {
        Aes256GcmSiv::new((&self.key).into())
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// HKDF-SHA256 extract-then-expand into `okm`.
///
/// Known gap: `hkdf` 0.12 keeps the PRK in an HMAC state that it does not wipe on drop.
fn hkdf_sha256(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
    okm: &mut [u8],
) -> Result<(), SealError> {
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, okm)
        .map_err(|_| SealError::KeyDerivation)
}

/// The decoded header of a record.
struct Header {
    kind: u8,
    generation: u64,
    nonce: [u8; NONCE_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [&[u8]; 6] = [
            &MAGIC,
            &VERSION.to_le_bytes(),
            &[self.kind],
            &[0; RESERVED_LEN],
            &self.generation.to_le_bytes(),
            &self.nonce,
        ];
        for (d, s) in out.iter_mut().zip(fields.iter().flat_map(|f| f.iter())) {
            *d = *s;
        }
        out
    }

    /// Strict decoding: magic, version, reserved bytes; the kind is checked by the caller.
    fn decode(raw: &[u8; HEADER_LEN]) -> Result<Self, SealError> {
        let (magic, rest) = take::<4>(raw)?;
        let (version, rest) = take::<2>(rest)?;
        let (&[kind], rest) = take::<1>(rest)?;
        let (reserved, rest) = take::<RESERVED_LEN>(rest)?;
        let (generation, rest) = take::<8>(rest)?;
        let (nonce, rest) = take::<NONCE_LEN>(rest)?;
        if !rest.is_empty() {
            return Err(SealError::Truncated);
        }
        if *magic != MAGIC {
            return Err(SealError::BadMagic);
        }
        let version = u16::from_le_bytes(*version);
        if version != VERSION {
            return Err(SealError::UnsupportedVersion(version));
        }
        if reserved.iter().any(|&b| b != 0) {
            return Err(SealError::NonZeroReserved);
        }
        Ok(Header {
            kind,
            generation: u64::from_le_bytes(*generation),
            nonce: *nonce,
        })
    }
}

fn take<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), SealError> {
    bytes.split_first_chunk::<N>().ok_or(SealError::Truncated)
}

/// Associated data: the header, then the name (the header is fixed-length, so no ambiguity).
fn associated_data(header: &[u8; HEADER_LEN], name: &BlobName) -> Result<Vec<u8>, SealError> {
    let name = name.as_str().as_bytes();
    let mut ad = Vec::new();
    ad.try_reserve_exact(HEADER_LEN.saturating_add(name.len()))
        .map_err(|_| SealError::OutOfMemory)?;
    ad.extend_from_slice(header);
    ad.extend_from_slice(name);
    Ok(ad)
}

/// Seals `plaintext` as record `name` at `generation`, under `key`, with a fresh nonce from
/// `rng`. The result is at most [`MAX_BLOB_LEN`] bytes and safe to give the normal world.
pub fn seal(
    key: &SealingKey,
    name: &BlobName,
    generation: u64,
    plaintext: &[u8],
    rng: &impl SecureRandom,
) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLarge);
    }
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| SealError::Rng)?;
    let header = Header {
        kind: key.kind as u8,
        generation,
        nonce,
    }
    .encode();
    let ad = associated_data(&header, name)?;

    // Built in a zeroizing buffer: it holds plaintext until the in-place encryption.
    let total = HEADER_LEN
        .checked_add(plaintext.len())
        .and_then(|n| n.checked_add(TAG_LEN))
        .ok_or(SealError::TooLarge)?;
    let mut record = Zeroizing::new(Vec::new());
    record
        .try_reserve_exact(total)
        .map_err(|_| SealError::OutOfMemory)?;
    record.extend_from_slice(&header);
    record.extend_from_slice(plaintext);
    let body = record.get_mut(HEADER_LEN..).ok_or(SealError::Truncated)?;
    let tag = key
        .cipher()
        .encrypt_in_place_detached((&nonce).into(), &ad, body)
        .map_err(|_| SealError::TooLarge)?;
    record.extend_from_slice(&tag);
    // Now only ciphertext: hand the buffer out without wiping it.
    Ok(core::mem::take(&mut *record))
}

/// Opens `blob` as record `name`, sealed under `key`, and returns its plaintext (wiped on drop).
///
/// `min_generation`: when `Some(g)`, an authentic record with a generation below `g` is refused
/// with [`SealError::Rollback`]. Checks, in order: size ([`SealError::TooLarge`],
/// [`SealError::Truncated`]), header ([`SealError::BadMagic`],
/// [`SealError::UnsupportedVersion`], [`SealError::NonZeroReserved`], [`SealError::WrongKind`]),
/// then the AEAD ([`SealError::Authentication`]), then the generation.
pub fn unseal(
    key: &SealingKey,
    name: &BlobName,
    min_generation: Option<u64>,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if blob.len() > MAX_BLOB_LEN {
        return Err(SealError::TooLarge);
    }
    let (raw_header, rest) = take::<HEADER_LEN>(blob)?;
    let ciphertext_len = rest
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(SealError::Truncated)?;
    let (ciphertext, tag) = rest
        .split_at_checked(ciphertext_len)
        .ok_or(SealError::Truncated)?;
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| SealError::Truncated)?;

    let header = Header::decode(raw_header)?;
    if RecordKind::from_u8(header.kind) != Some(key.kind) {
        return Err(SealError::WrongKind);
    }
    let ad = associated_data(raw_header, name)?;

    let mut plaintext = Zeroizing::new(Vec::new());
    plaintext
        .try_reserve_exact(ciphertext.len())
        .map_err(|_| SealError::OutOfMemory)?;
    plaintext.extend_from_slice(ciphertext);
    key.cipher()
        .decrypt_in_place_detached((&header.nonce).into(), &ad, &mut plaintext, tag.into())
        // On failure the buffer holds unauthenticated output; `Zeroizing` wipes it on return.
        .map_err(|_| SealError::Authentication)?;

    if let Some(minimum) = min_generation {
        if header.generation < minimum {
            return Err(SealError::Rollback {
                found: header.generation,
                minimum,
            });
        }
    }
    Ok(plaintext)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5869 Appendix A.1 (test case 1), through the helper `SealingKey::derive` calls.
    #[test]
    fn hkdf_rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        hkdf_sha256(Some(&salt), &ikm, &info, &mut okm).unwrap();
        assert_eq!(
            okm.to_vec(),
            unhex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                 34007208d5b887185865"
            )
        );
    }

    /// RFC 5869 Appendix A.3 (test case 3): zero-length salt and info, the `None`-salt path
    /// that `SealingKey::derive` takes.
    #[test]
    fn hkdf_rfc5869_test_case_3_no_salt() {
        let ikm = [0x0b; 22];
        let mut okm = [0u8; 42];
        hkdf_sha256(None, &ikm, &[], &mut okm).unwrap();
        assert_eq!(
            okm.to_vec(),
            unhex(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
                 9d201395faa4b61a96c8"
            )
        );
    }

    /// `derive` is HKDF-SHA256(salt = none, ikm = root key, info = label), 32 bytes.
    #[test]
    fn derive_is_hkdf_of_the_label() {
        let mut root = RootKey::zeroed();
        root.expose_mut().copy_from_slice(&[0x42; 32]);
        for kind in [RecordKind::License, RecordKind::DeviceIdentity] {
            let key = SealingKey::derive(&root, kind).unwrap();
            let mut expected = [0u8; 32];
            Hkdf::<Sha256>::new(None, &[0x42; 32])
                .expand(kind.label(), &mut expected)
                .unwrap();
            assert_eq!(key.key, expected);
        }
        let a = SealingKey::derive(&root, RecordKind::License).unwrap();
        let b = SealingKey::derive(&root, RecordKind::DeviceIdentity).unwrap();
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn header_round_trip() {
        let header = Header {
            kind: 1,
            generation: 0x0102_0304_0506_0708,
            nonce: [0xaa; NONCE_LEN],
        };
        let raw = header.encode();
        assert_eq!(&raw[..4], b"TCSR");
        assert_eq!(&raw[4..6], &[1, 0]);
        assert_eq!(raw[6], 1);
        assert_eq!(&raw[7..12], &[0; 5]);
        assert_eq!(&raw[12..20], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&raw[20..32], &[0xaa; 12]);
        let back = Header::decode(&raw).unwrap();
        assert_eq!(back.generation, header.generation);
        assert_eq!(back.nonce, header.nonce);
        assert_eq!(back.kind, 1);
    }
}
