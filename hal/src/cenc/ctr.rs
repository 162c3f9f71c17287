//! The CTR schemes: `cenc` (ISO/IEC 23001-7 §10.1) and `cens` (§10.3).
//!
//! Both are their own inverse, so the same code encrypts and decrypts.

use zeroize::Zeroize;

use super::{subsample, Subsample};
use crate::aes::{counter_block, for_each_pattern_run, split_blocks, Aes128, BLOCK};

/// The running AES-CTR keystream of one sample.
///
/// §10.1: the counter block is the IV (an 8-byte IV is the high half, the low half starting at
/// zero; a 16-byte IV is the whole initial block) and the low 64 bits are a block counter that
/// wraps without carrying into the high half. The keystream runs on across the protected
/// ranges of all subsamples of the sample (§9.5.2.1), so a range that ends inside a block
/// leaves keystream bytes that the next range uses first.
struct Keystream<'k> {
    key: &'k Aes128,
    iv_hi: [u8; 8],
    ctr: u64,
    /// Keystream bytes of the last partial block not used yet: `spare[used..]`.
    spare: [u8; BLOCK],
    used: usize,
}

impl<'k> Keystream<'k> {
    /// `iv` has been validated to 8 or 16 bytes.
    fn new(key: &'k Aes128, iv: &[u8]) -> Self {
        let mut iv_hi = [0u8; 8];
        let mut lo = [0u8; 8];
        if let Some((hi, rest)) = iv.split_first_chunk::<8>() {
            iv_hi = *hi;
            if let Ok(l) = <[u8; 8]>::try_from(rest) {
                lo = l;
            }
        }
        Keystream {
            key,
            iv_hi,
            ctr: u64::from_be_bytes(lo),
            spare: [0; BLOCK],
            used: BLOCK,
        }
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    fn apply(&mut self, data: &mut [u8]) {
        // First the bytes left over from a block a previous range ended inside.
        let leftover = self.spare.get(self.used..).unwrap_or_default();
        let take = leftover.len().min(data.len());
        let (head, rest) = data.split_at_mut(take);
        for (d, k) in head.iter_mut().zip(leftover) {
            *d ^= k;
        }
        self.used = self.used.saturating_add(take);

        // Then whole blocks, inside the engine.
        let (whole, tail) = split_blocks(rest);
        self.key.ctr64_xor(&self.iv_hi, &mut self.ctr, whole);

        // A partial block: keep the unused part of its keystream for the next range.
        if !tail.is_empty() {
            self.spare = counter_block(&self.iv_hi, self.ctr);
            self.key.encrypt_block(&mut self.spare);
            self.ctr = self.ctr.wrapping_add(1);
            for (d, k) in tail.iter_mut().zip(self.spare.iter()) {
                *d ^= k;
            }
            self.used = tail.len();
        }
    }
}

impl Drop for Keystream<'_> {
    fn drop(&mut self) {
        self.spare.zeroize();
    }
}

/// `cenc`: every protected byte is XORed with the sample's running keystream.
pub(super) fn cenc(key: &Aes128, iv: &[u8], subsamples: &[Subsample], data: &mut [u8]) {
    let mut ks = Keystream::new(key, iv);
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
    let mut ks = Keystream::new(key, iv);
    subsample::for_each_protected(subsamples, data, |range| {
        let (whole, _tail) = split_blocks(range);
        for_each_pattern_run(whole, crypt, skip, |run| ks.apply(run));
    });
}
