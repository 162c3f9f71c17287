//! The CTR schemes: `cenc` (ISO/IEC 23001-7 §10.1) and `cens` (§10.3).
//!
//! Both are their own inverse, so the same code encrypts and decrypts.

use super::{subsample, Subsample};
use crate::aes::{pattern_runs, Aes128, Keystream};

/// The sample's keystream (§10.1): an 8-byte IV is the high half of the first counter block,
/// the low half starting at zero; a 16-byte IV is the whole block. `iv` has been validated to
/// 8 or 16 bytes. The keystream runs on across the protected ranges of all subsamples.
fn keystream<'k>(key: &'k Aes128, iv: &[u8]) -> Keystream<'k> {
    let (hi, lo) = iv.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let lo = <[u8; 8]>::try_from(lo).unwrap_or_default();
    Keystream::new(key, *hi, u64::from_be_bytes(lo))
}

/// `cenc`: every protected byte is XORed with the sample's running keystream.
pub(super) fn cenc(key: &Aes128, iv: &[u8], subsamples: &[Subsample], data: &mut [u8]) {
    let mut ks = keystream(key, iv);
    subsample::for_each_protected(subsamples, data, |range| ks.apply(range));
}

/// `cens`: CTR under a `crypt:skip` pattern (§9.6.1, §10.3).
///
/// Within each protected range the pattern starts afresh: `crypt` blocks encrypted, `skip`
/// blocks clear, repeated; a final run of fewer than `crypt` whole blocks is encrypted and a
/// trailing partial block stays clear ("any partial crypt_byte_block SHALL remain unencrypted";
/// the same reading as Chromium and Shaka Packager). Only encrypted blocks consume keystream,
/// which runs on across ranges. `crypt == 0` (pattern 0:0) encrypts every whole block.
pub(super) fn cens(
    key: &Aes128,
    iv: &[u8],
    crypt: usize,
    skip: usize,
    subsamples: &[Subsample],
    data: &mut [u8],
) {
    let mut ks = keystream(key, iv);
    subsample::for_each_protected(subsamples, data, |range| {
        for run in pattern_runs(range.as_chunks_mut().0, crypt, skip) {
            ks.apply(run.as_flattened_mut());
        }
    });
}
