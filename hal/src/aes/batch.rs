//! The batch driver every engine shares: safe code that walks whole blocks in batches of the
//! engine's width `N`, runs a short last batch in a zero-padded copy, and calls the engine's
//! [`Kernels`], the only engine-specific code (and, in the hardware engines, the only `unsafe`).
//!
//! CTR (NIST SP 800-38A §6.5, with the ISO/IEC 23001-7 `cenc` 64-bit counter) and CBC
//! decryption (§6.2) are parallel over blocks: one kernel call per batch. Pattern CBC (`cbcs`,
//! ISO/IEC 23001-7 §10.4) decrypts the encrypted blocks of many pattern periods together: they
//! form one CBC chain whose links depend only on the ciphertext, so a 1:`skip` pattern runs a
//! strided kernel straight on the sample, and other patterns gather the encrypted blocks into
//! a buffer for the contiguous kernel. With the common 1:9 pattern this keeps a whole batch in
//! flight instead of one block. Pattern CTR (`cens`, §10.3) likewise serves many periods at
//! once: the encrypted blocks take consecutive counter blocks, so the keystream for all of
//! them is one contiguous CTR run, made in a buffer and then XORed into the scattered blocks.
//!
//! Every driver runs inside [`Kernels::scope`], so with the hardware engines the loop and the
//! kernels compile into one function with the engine's target features.

use zeroize::Zeroize;

use super::{pattern_runs, Block, BLOCK};

/// Encrypted blocks collected across pattern periods before one CBC pass over them.
const GATHER: usize = 32;

/// Keystream blocks made per pass of pattern CTR: several batches of every engine, 1 KiB of
/// stack.
const KEYSTREAM: usize = 64;

/// A key schedule's kernels, each on one batch of `N` blocks. Holding a hardware engine's
/// schedule proves that the CPU has its instructions, which is what makes these methods safe.
pub(crate) trait Kernels<const N: usize> {
    /// Encrypts one block in place.
    fn encrypt_block(&self, block: &mut Block);
    /// Decrypts one block in place.
    fn decrypt_block(&self, block: &mut Block);
    /// XORs the keystream of the counter blocks `iv_hi || (ctr + i) mod 2^64`, `i < N` (both
    /// halves big-endian), into `batch`.
    fn ctr(&self, iv_hi: &[u8; 8], ctr: u64, batch: &mut [Block; N]);
    /// CBC-decrypts `batch` in place, continuing the chain from `iv`, which becomes the last
    /// ciphertext block.
    fn cbc(&self, iv: &mut Block, batch: &mut [Block; N]);
    /// CBC-decrypts blocks `0, stride, …, (N - 1) * stride` of `data` in place as consecutive
    /// links of one chain from `iv` (which becomes the last of them). Returns `false`, having
    /// done nothing, when they do not all lie in `data`, `stride` is 0, or the engine has no
    /// strided kernel (the default).
    fn cbc_strided(&self, _iv: &mut Block, _data: &mut [Block], _stride: usize) -> bool {
        false
    }
    /// Runs `f` inside a function compiled with the kernels' target features (the default:
    /// none), so that a driver's loop and the kernels it calls inline into one function.
    #[inline(always)]
    fn scope(&self, f: impl FnOnce()) {
        f()
    }
    /// CTR over whole blocks (see [`ctr`]); the default is the batch driver.
    #[inline(always)]
    fn ctr_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, blocks: &mut [Block])
    where
        Self: Sized,
    {
        self::ctr(self, iv_hi, ctr, blocks)
    }
    /// CBC decryption of whole blocks (see [`cbc`]); the default is the batch driver.
    #[inline(always)]
    fn cbc_blocks(&self, iv: &mut Block, blocks: &mut [Block])
    where
        Self: Sized,
    {
        cbc(self, iv, blocks)
    }
}

/// Implements [`Kernels`] for a hardware engine's [`Schedule`](super::Schedule) with the
/// engine's `unsafe` kernels, which take the schedule's round keys (`enc` for `block(…, true)`
/// and `ctr`, `dec` for the rest). Their precondition 1, that the CPU has the engine's
/// instructions, is the invocation's to argue (in a `// SAFETY:` comment before its `unsafe
/// impl`): a schedule is built only by its engine's `zeroed`, after detection. Precondition 2
/// of the strided kernel, that blocks `0, stride, …, (N - 1) * stride` lie in `data` and
/// `stride >= 1`, is checked here. `cbc` is given as a call on the decryption round keys.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! schedule_kernels {
    (
        unsafe impl Kernels<$n:ident> for $keys:ty {
            scope: $scope:path,
            block: $block:path,
            ctr: $ctr:path,
            cbc: |$dk:ident, $iv:ident, $batch:ident| $cbc:expr,
            cbc_strided: $strided:path $(,)?
        }
    ) => {
        impl $crate::aes::batch::Kernels<$n> for $keys {
            #[inline(always)]
            fn encrypt_block(&self, block: &mut $crate::aes::Block) {
                // SAFETY: (1) as the invocation argues.
                unsafe { $block(&self.enc, block, true) }
            }

            #[inline(always)]
            fn decrypt_block(&self, block: &mut $crate::aes::Block) {
                // SAFETY: (1) as the invocation argues.
                unsafe { $block(&self.dec, block, false) }
            }

            #[inline(always)]
            fn ctr(&self, iv_hi: &[u8; 8], ctr: u64, batch: &mut [$crate::aes::Block; $n]) {
                // SAFETY: (1) as the invocation argues.
                unsafe { $ctr(&self.enc, iv_hi, ctr, batch) }
            }

            #[inline(always)]
            fn cbc(&self, $iv: &mut $crate::aes::Block, $batch: &mut [$crate::aes::Block; $n]) {
                let $dk = &self.dec;
                // SAFETY: (1) as the invocation argues; (2) of a strided kernel called with
                // stride 1 on the whole batch holds.
                unsafe { $cbc }
            }

            #[inline(always)]
            fn cbc_strided(
                &self,
                iv: &mut $crate::aes::Block,
                data: &mut [$crate::aes::Block],
                stride: usize,
            ) -> bool {
                let fits = stride
                    .checked_mul($n - 1)
                    .is_some_and(|last| last < data.len());
                if stride == 0 || !fits {
                    return false;
                }
                // SAFETY: (1) as the invocation argues; (2) checked above.
                unsafe { $strided(&self.dec, iv, data, stride) };
                true
            }

            #[inline(always)]
            fn scope(&self, f: impl FnOnce()) {
                // SAFETY: (1) as the invocation argues.
                unsafe { $scope(f) }
            }
        }
    };
}
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use schedule_kernels;

/// CTR over whole blocks: counter block `i` is `iv_hi || (ctr + i) mod 2^64`; `ctr` advances
/// by the number of blocks.
#[inline(always)]
pub(crate) fn ctr<const N: usize>(
    k: &impl Kernels<N>,
    iv_hi: &[u8; 8],
    ctr: &mut u64,
    blocks: &mut [Block],
) {
    k.scope(|| {
        let (batches, rest) = blocks.as_chunks_mut::<N>();
        for batch in batches {
            k.ctr(iv_hi, *ctr, batch);
            *ctr = ctr.wrapping_add(N as u64);
        }
        let n = rest.len() as u64;
        padded(rest, |batch| k.ctr(iv_hi, *ctr, batch));
        *ctr = ctr.wrapping_add(n);
    });
}

/// CBC decryption of whole blocks, continuing the chain from `iv` (which becomes the last
/// ciphertext block).
#[inline(always)]
pub(crate) fn cbc<const N: usize>(k: &impl Kernels<N>, iv: &mut Block, blocks: &mut [Block]) {
    k.scope(|| {
        let (batches, rest) = blocks.as_chunks_mut::<N>();
        for batch in batches {
            k.cbc(iv, batch);
        }
        if let Some(&last) = rest.last() {
            padded(rest, |batch| k.cbc(iv, batch));
            // The padding is not part of the chain: it continues from the last real ciphertext.
            *iv = last;
        }
    });
}

/// CBC decryption of whole blocks under a `crypt:skip` pattern (see [`pattern_runs`]): one
/// chain from `iv` through the encrypted blocks, skipped blocks untouched.
#[inline(always)]
pub(crate) fn cbc_pattern<const N: usize>(
    k: &impl Kernels<N>,
    iv: &mut Block,
    blocks: &mut [Block],
    crypt: usize,
    skip: usize,
) {
    k.scope(|| {
        if crypt == 0 || skip == 0 {
            return k.cbc_blocks(iv, blocks);
        }
        let mut done = 0;
        if crypt == 1 {
            // `N` periods per strided kernel call, straight from the sample.
            let stride = skip.saturating_add(1);
            while let Some(rest) = blocks.get_mut(done..) {
                if !k.cbc_strided(iv, rest, stride) {
                    break;
                }
                done = done.saturating_add(stride.saturating_mul(N));
            }
        }
        // The last strided batch may end inside its last period's skipped blocks: then
        // nothing is left.
        let rest = blocks.get_mut(done..).unwrap_or_default();
        let mut buf = [[0u8; 16]; GATHER];
        let mut slots: [Option<&mut Block>; GATHER] = core::array::from_fn(|_| None);
        let mut n = 0;
        for run in pattern_runs(rest, crypt, skip) {
            for block in run {
                if let Some(slot) = slots.get_mut(n) {
                    *slot = Some(block);
                    n = n.saturating_add(1);
                }
                if n == GATHER {
                    cbc_gathered(k, iv, &mut buf, &mut slots);
                    n = 0;
                }
            }
        }
        cbc_gathered(k, iv, &mut buf, &mut slots);
        buf.as_flattened_mut().zeroize();
    });
}

/// Copies the filled `slots` (a prefix) into `buf`, CBC-decrypts them there as one chain,
/// copies the plaintext back and empties the slots.
#[inline(always)]
fn cbc_gathered<const N: usize>(
    k: &impl Kernels<N>,
    iv: &mut Block,
    buf: &mut [Block; GATHER],
    slots: &mut [Option<&mut Block>; GATHER],
) {
    let n = slots.iter().take_while(|s| s.is_some()).count();
    for (b, s) in buf.iter_mut().zip(slots.iter()) {
        let Some(s) = s else { break };
        *b = **s;
    }
    k.cbc_blocks(iv, buf.get_mut(..n).unwrap_or_default());
    for (b, s) in buf.iter().zip(slots.iter_mut()) {
        let Some(s) = s.take() else { break };
        *s = *b;
    }
}

/// CTR under a `crypt:skip` pattern (see [`pattern_runs`]): the encrypted blocks take the
/// counter blocks `iv_hi || (ctr + i) mod 2^64` in order, skipped blocks are untouched and
/// take none; `ctr` advances by the number of encrypted blocks (ISO/IEC 23001-7 `cens`,
/// §10.3).
///
/// The blocks go in groups of whole periods holding at most [`KEYSTREAM`] encrypted blocks:
/// their keystream is made in one CTR call on a zeroed buffer (whole batches, however short
/// the runs), then XORed into them. The buffer is wiped at the end.
#[inline(always)]
pub(crate) fn ctr_pattern<const N: usize>(
    k: &impl Kernels<N>,
    iv_hi: &[u8; 8],
    ctr: &mut u64,
    blocks: &mut [Block],
    crypt: usize,
    skip: usize,
) {
    k.scope(|| {
        let periods = KEYSTREAM.checked_div(crypt).unwrap_or(0);
        if skip == 0 || periods == 0 {
            // No pattern (one run of every block), or runs so long that they fill batches
            // by themselves.
            for run in pattern_runs(blocks, crypt, skip) {
                k.ctr_blocks(iv_hi, ctr, run);
            }
            return;
        }
        // Saturation is exact here (as in `pattern_runs`): both values only bound lengths
        // and strides in a slice, and `usize::MAX` exceeds every slice length.
        let period = crypt.saturating_add(skip);
        let mut ks = [[0u8; BLOCK]; KEYSTREAM];
        for group in blocks.chunks_mut(period.saturating_mul(periods)) {
            // The group starts a period, so the pattern restarts with it as on `blocks`:
            // `crypt` encrypted blocks per whole period, at most `crypt` in a short last one;
            // at most `periods` periods, so `n <= KEYSTREAM`.
            let whole = group.len().checked_div(period).unwrap_or(0);
            let short = group.len().checked_rem(period).unwrap_or(0);
            let n = whole.saturating_mul(crypt).saturating_add(short.min(crypt));
            let ks = ks.get_mut(..n).unwrap_or_default();
            ks.as_flattened_mut().fill(0);
            // CTR on zeros leaves the keystream itself.
            k.ctr_blocks(iv_hi, ctr, ks);
            // Block `j` of period `p` takes keystream block `p * crypt + j`: one strided pass
            // per `j` (a plain strided loop is much faster than walking period by period).
            // Both steps are non-zero: `crypt` divided `KEYSTREAM`, and `period > crypt`.
            for j in 0..crypt {
                let blocks = group.get_mut(j..).unwrap_or_default();
                let keys = ks.get(j..).unwrap_or_default();
                for (block, key) in blocks
                    .iter_mut()
                    .step_by(period)
                    .zip(keys.iter().step_by(crypt))
                {
                    let x = u128::from_ne_bytes(*block) ^ u128::from_ne_bytes(*key);
                    *block = x.to_ne_bytes();
                }
            }
        }
        ks.as_flattened_mut().zeroize();
    });
}

/// Runs a batch kernel over `rest` (fewer than `N` blocks) in a zero-padded copy, then copies
/// the result back. The copy is wiped: its padding holds keystream or decryptions of zeros.
#[inline(always)]
fn padded<const N: usize>(rest: &mut [Block], kernel: impl FnOnce(&mut [Block; N])) {
    if rest.is_empty() {
        return;
    }
    let mut buf = [[0u8; 16]; N];
    buf.iter_mut().zip(rest.iter()).for_each(|(b, r)| *b = *r);
    kernel(&mut buf);
    rest.iter_mut().zip(buf.iter()).for_each(|(r, b)| *r = *b);
    buf.as_flattened_mut().zeroize();
}
