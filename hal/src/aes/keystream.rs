//! The running AES-CTR keystream: the one owner of partial blocks.
//!
//! ISO/IEC 23001-7 §10.1: counter block `i` is `iv_hi || (ctr + i) mod 2^64` (the low 64 bits
//! are a block counter that wraps without carrying into the high half), and the keystream of
//! a `cenc` sample runs on across the protected ranges of all its subsamples (§9.5.2.1), so a
//! range that ends inside a block leaves keystream bytes that the next range uses first.
//! Whole blocks go to the engine's batch driver; the partial block at the end of a range is
//! encrypted here, one block, and its unused bytes are kept.

use zeroize::Zeroize;

use super::{counter_block, Aes128, Block, BLOCK};

/// A CTR keystream position: the next counter block, and the unused bytes of the last one.
pub(crate) struct Keystream<'k> {
    key: &'k Aes128,
    iv_hi: [u8; 8],
    ctr: u64,
    /// Keystream bytes of the last partial block not used yet: `spare[used..]`.
    spare: Block,
    used: usize,
}

impl<'k> Keystream<'k> {
    /// The keystream from counter block `iv_hi || ctr` on.
    pub(crate) fn new(key: &'k Aes128, iv_hi: [u8; 8], ctr: u64) -> Self {
        Keystream {
            key,
            iv_hi,
            ctr,
            spare: [0; BLOCK],
            used: BLOCK,
        }
    }

    /// The next counter: a partial block, even one with spare bytes, counts as used.
    pub(crate) fn counter(&self) -> u64 {
        self.ctr
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        // First the bytes left over from a block a previous range ended inside.
        let leftover = self.spare.get(self.used..).unwrap_or_default();
        let take = leftover.len().min(data.len());
        let (head, rest) = data.split_at_mut(take);
        head.iter_mut().zip(leftover).for_each(|(d, k)| *d ^= k);
        self.used = self.used.saturating_add(take);

        // Then whole blocks, in the engine.
        let (whole, tail) = rest.as_chunks_mut::<BLOCK>();
        self.key.ctr64_xor_blocks(&self.iv_hi, &mut self.ctr, whole);

        // A partial block: keep the unused part of its keystream for the next range.
        if !tail.is_empty() {
            self.spare = counter_block(&self.iv_hi, self.ctr);
            self.key.encrypt_block(&mut self.spare);
            self.ctr = self.ctr.wrapping_add(1);
            tail.iter_mut().zip(self.spare).for_each(|(d, k)| *d ^= k);
            self.used = tail.len();
        }
    }
}

impl Drop for Keystream<'_> {
    fn drop(&mut self) {
        self.spare.as_mut_slice().zeroize();
    }
}
