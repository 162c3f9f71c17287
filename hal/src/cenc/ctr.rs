//! The CTR schemes: `cenc` (ISO/IEC 23001-7 §10.1) and `cens` (§10.3).
//!
//! Both are their own inverse, so the same code encrypts and decrypts.

use super::{subsample, Subsample};
use crate::aes::{Aes128, Keystream};

/// The sample's first counter block (§10.1) as its high half and its 64-bit block counter: an
/// 8-byte IV is the high half, the counter starting at zero; a 16-byte IV is the whole block.
/// `iv` has been validated to 8 or 16 bytes.
fn first_counter(iv: &[u8]) -> ([u8; 8], u64) {
    let (hi, lo) = iv.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let lo = <[u8; 8]>::try_from(lo).unwrap_or_default();
    (*hi, u64::from_be_bytes(lo))
}

/// `cenc`: every protected byte is XORed with the sample's running keystream, which runs on
/// across the protected ranges of all subsamples (a range may end inside a block).
pub(super) fn cenc(key: &Aes128, iv: &[u8], subsamples: &[Subsample], data: &mut [u8]) {
    let (hi, ctr) = first_counter(iv);
    let mut ks = Keystream::new(key, hi, ctr);
    subsample::for_each_protected(subsamples, data, |range| ks.apply(range));
}

/// `cens`: CTR under a `crypt:skip` pattern (§9.6.1, §10.3).
///
/// Within each protected range the pattern starts afresh: `crypt` blocks encrypted, `skip`
/// blocks clear, repeated; a final run of fewer than `crypt` whole blocks is encrypted and a
/// trailing partial block stays clear ("any partial crypt_byte_block SHALL remain unencrypted";
/// the same reading as Chromium and Shaka Packager). Only encrypted blocks consume keystream,
/// which runs on across ranges. `crypt == 0` (pattern 0:0) encrypts every whole block.
///
/// Encrypted blocks are whole blocks, so the keystream never stops inside one: a counter is
/// all the state carried from range to range, and each range goes to the engine in one call
/// that batches its encrypted blocks across pattern periods.
pub(super) fn cens(
    key: &Aes128,
    iv: &[u8],
    crypt: usize,
    skip: usize,
    subsamples: &[Subsample],
    data: &mut [u8],
) {
    let (hi, mut ctr) = first_counter(iv);
    subsample::for_each_protected(subsamples, data, |range| {
        key.ctr64_xor_pattern(&hi, &mut ctr, range, crypt, skip);
    });
}
