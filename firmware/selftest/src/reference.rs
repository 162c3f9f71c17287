//! The reference encryptor for the Clear Key session's samples: ISO/IEC 23001-7 `cenc` and
//! `cbcs` written out as a textbook model on RustCrypto's `aes`, `ctr` and `cbc` crates,
//! sharing no code with hal.
//!
//! Written here rather than taken from `cdm-testkit::cenc` (the same model on the host)
//! because the test kit needs `std`. The model gathers the bytes a scheme runs through its
//! cipher into one buffer per chain, runs the plain mode over it and scatters the result back.
//! `crate::session` also pins the SHA-256 of both ciphertexts to values computed with
//! `openssl enc` (`data/gen_samples.py`), so a mistake in this model cannot hide.

use alloc::vec::Vec;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncryptMut, KeyIvInit, StreamCipher};

/// The sample description does not fit the sample (a test-data mistake).
#[derive(Debug)]
pub(crate) struct MapError;

/// Byte ranges `[start, end)` of the protected parts of a `len`-byte sample under `map`
/// (`(clear, protected)` pairs; empty: all of it).
fn protected_ranges(map: &[(u32, u32)], len: usize) -> Result<Vec<(usize, usize)>, MapError> {
    if map.is_empty() {
        return Ok(alloc::vec![(0, len)]);
    }
    let mut pos = 0usize;
    let mut out = Vec::new();
    for &(clear, protected) in map {
        let start = pos
            .checked_add(usize::try_from(clear).map_err(|_| MapError)?)
            .ok_or(MapError)?;
        let end = start
            .checked_add(usize::try_from(protected).map_err(|_| MapError)?)
            .ok_or(MapError)?;
        out.push((start, end));
        pos = end;
    }
    if pos == len {
        Ok(out)
    } else {
        Err(MapError)
    }
}

/// Copies the bytes at `offsets` out of `data`.
fn gather(data: &[u8], offsets: &[usize]) -> Result<Vec<u8>, MapError> {
    offsets
        .iter()
        .map(|&i| data.get(i).copied().ok_or(MapError))
        .collect()
}

/// Writes `bytes` back to `offsets` of `data`.
fn scatter(data: &mut [u8], offsets: &[usize], bytes: &[u8]) -> Result<(), MapError> {
    for (&i, &b) in offsets.iter().zip(bytes) {
        *data.get_mut(i).ok_or(MapError)? = b;
    }
    Ok(())
}

/// `cenc` (§10.1) with an 8-byte IV: AES-128-CTR, the counter block `iv || 0` (§9.2), one
/// keystream across the protected ranges of the whole sample.
pub(crate) fn encrypt_cenc(
    key: &[u8; 16],
    iv: &[u8; 8],
    map: &[(u32, u32)],
    data: &mut [u8],
) -> Result<(), MapError> {
    let offsets: Vec<usize> = protected_ranges(map, data.len())?
        .into_iter()
        .flat_map(|(s, e)| s..e)
        .collect();
    let mut stream = gather(data, &offsets)?;
    let mut counter = [0u8; 16];
    counter[..8].copy_from_slice(iv);
    let mut cipher = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &counter.into());
    cipher.apply_keystream(&mut stream);
    scatter(data, &offsets, &stream)
}

/// `cbcs` (§10.4): in every protected range, CBC from the constant IV over the first `crypt`
/// whole blocks of each `crypt + skip` blocks (0:0: every block); a trailing partial block
/// stays clear.
pub(crate) fn encrypt_cbcs(
    key: &[u8; 16],
    iv: &[u8; 16],
    (crypt, skip): (u8, u8),
    map: &[(u32, u32)],
    data: &mut [u8],
) -> Result<(), MapError> {
    let (c, k) = (usize::from(crypt), usize::from(skip));
    for (start, end) in protected_ranges(map, data.len())? {
        let whole_blocks = end.saturating_sub(start) / 16;
        let offsets: Vec<usize> = (0..whole_blocks)
            .filter(|i| c == 0 || k == 0 || i % (c + k) < c)
            .flat_map(|i| {
                let block = start + 16 * i;
                block..block + 16
            })
            .collect();
        let mut chain = gather(data, &offsets)?;
        let mut cipher = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
        for block in chain.chunks_exact_mut(16) {
            cipher.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        scatter(data, &offsets, &chain)?;
    }
    Ok(())
}

/// A test sample: `len` bytes, byte i = (7 i + 3) mod 251 (`cdm-testkit::cenc::plaintext`).
pub(crate) fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) * 7 + 3) % 251)
        .map(|b| b.to_le_bytes()[0])
        .collect()
}
