//! The CBC schemes: `cbc1` (ISO/IEC 23001-7 §10.2) and `cbcs` (§10.4).
//!
//! CBC only ever covers whole 16-byte blocks here: a partial block at the end of a protected
//! range is left in the clear (§9.7 for whole-block full-sample encryption, §9.6.1 for patterns).

use zeroize::Zeroize;

use super::{subsample, Subsample};
use crate::aes::Aes128;

/// Which way a CBC scheme runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    #[cfg(feature = "encrypt")]
    Encrypt,
    Decrypt,
}

/// `cbc1`: every whole block of every protected range, as one CBC chain over the whole sample.
///
/// The chain is not restarted per subsample: the last ciphertext block of one range is the IV
/// for the next (the IV is per sample, §10.2; Shaka Packager's decryptor likewise keeps its
/// chaining value between subsamples for `cbc1`).
pub(super) fn cbc1(
    key: &Aes128,
    iv: &[u8; 16],
    dir: Direction,
    subsamples: &[Subsample],
    data: &mut [u8],
) {
    let mut chain = *iv;
    subsample::for_each_protected(subsamples, data, |range| match dir {
        Direction::Decrypt => key.cbc_decrypt(&mut chain, range),
        #[cfg(feature = "encrypt")]
        Direction::Encrypt => key.cbc_encrypt(&mut chain, range),
    });
    chain.zeroize();
}

/// `cbcs`: CBC under a `crypt:skip` pattern with a constant IV (§10.4.2).
///
/// Every protected range restarts both the CBC chain (from the constant IV) and the pattern.
/// Inside a range the encrypted blocks form one chain; a final run of fewer than `crypt` whole
/// blocks is encrypted and a trailing partial block stays clear (§9.6.1; Chromium's
/// `cbcs_decryptor.cc` reads it the same way). `crypt == 0` or `skip == 0` means every whole
/// block is encrypted (pattern 0:0, and e.g. 10:0).
pub(super) fn cbcs(
    key: &Aes128,
    iv: &[u8; 16],
    crypt: usize,
    skip: usize,
    dir: Direction,
    subsamples: &[Subsample],
    data: &mut [u8],
) {
    subsample::for_each_protected(subsamples, data, |range| {
        let mut chain = *iv;
        match dir {
            Direction::Decrypt => key.cbc_decrypt_pattern(&mut chain, range, crypt, skip),
            #[cfg(feature = "encrypt")]
            Direction::Encrypt => {
                for run in crate::aes::pattern_runs(range.as_chunks_mut().0, crypt, skip) {
                    key.cbc_encrypt(&mut chain, run.as_flattened_mut());
                }
            }
        }
        chain.zeroize();
    });
}
