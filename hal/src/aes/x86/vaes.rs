//! The VAES engine: `vaesenc`/`vaesdec` on 256-bit AVX2 registers, two blocks per instruction,
//! [`LANES`] blocks in flight. Register `j` of a batch holds blocks `2j` (low 128-bit lane)
//! and `2j + 1` (high lane).
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi64, _mm256_aesdec_epi128, _mm256_aesdeclast_epi128,
    _mm256_aesenc_epi128, _mm256_aesenclast_epi128, _mm256_broadcastsi128_si256,
    _mm256_castsi128_si256, _mm256_castsi256_si128, _mm256_extracti128_si256,
    _mm256_inserti128_si256, _mm256_loadu2_m128i, _mm256_loadu_si256, _mm256_permute2x128_si256,
    _mm256_set_epi64x, _mm256_setzero_si256, _mm256_storeu2_m128i, _mm256_storeu_si256,
    _mm256_xor_si256, _mm_loadu_si128, _mm_storeu_si128,
};

use super::{vaes_available, RoundKeys};
use crate::aes::batch::schedule_kernels;
use crate::aes::{Block, Schedule};

/// 256-bit registers per batch.
const REGS: usize = 8;
/// Blocks per batch.
pub(crate) const LANES: usize = 2 * REGS;

/// The AES-NI schedule with every round key broadcast to both 128-bit lanes (single blocks run
/// in the low lane); holding one proves that detection found VAES, AVX2 and AES-NI.
pub(crate) type VaesKeys = Schedule<__m256i>;

impl VaesKeys {
    /// An all-zero schedule, to be expanded in place by [`VaesKeys::expand`]; `None` when
    /// the CPU lacks VAES, AVX2 or AES-NI.
    pub(crate) fn zeroed() -> Option<VaesKeys> {
        // SAFETY: `__m256i` is plain data; the all-zero bit pattern is a valid value.
        vaes_available().then(|| Schedule::filled(unsafe { core::mem::zeroed::<__m256i>() }))
    }

    /// Expands `key` into `self`, in place.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // The temporary AES-NI schedule lives on the stack only for this call and is wiped
        // when it drops at the end of this function. VAES detection includes AES-NI and
        // SSE2, so it exists whenever `self` does.
        if let Some(mut ni) = RoundKeys::zeroed() {
            ni.expand(key);
            // SAFETY: (1): `self` exists, so `zeroed` detected AVX2 (and VAES).
            unsafe { broadcast_keys(&ni, self) };
        }
    }
}

schedule_kernels! {
    // SAFETY: (1) of every kernel: a `VaesKeys` exists only after `zeroed` detected VAES and
    // AVX2.
    unsafe impl Kernels<LANES> for VaesKeys {
        scope: with_vaes,
        block: block1,
        ctr: ctr16,
        cbc: |dk, iv, batch| cbc16(dk, iv, batch),
        cbc_strided: cbc16_strided,
    }
}

/// Runs `f` compiled with VAES and AVX2, so a batch driver's loop and these kernels inline
/// into one function.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn with_vaes(f: impl FnOnce()) {
    f()
}

/// Builds the 256-bit schedule from the AES-NI one.
///
/// # Safety
/// 1. The CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn broadcast_keys(ni: &RoundKeys, keys: &mut VaesKeys) {
    for (w, n) in keys.enc.iter_mut().zip(ni.enc.iter()) {
        *w = _mm256_broadcastsi128_si256(*n);
    }
    for (w, n) in keys.dec.iter_mut().zip(ni.dec.iter()) {
        *w = _mm256_broadcastsi128_si256(*n);
    }
}

/// Encrypts (`encrypt`, with `keys.enc`) or decrypts (with `keys.dec`) one block in the low
/// lane (single blocks are rare: a trailing partial CTR block, CBC encryption for tooling).
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn block1(keys: &[__m256i; 11], block: &mut Block, encrypt: bool) {
    // SAFETY: (1) by the caller; the load and store touch exactly the 16 bytes of `block`.
    unsafe {
        let p = block.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm256_castsi128_si256(_mm_loadu_si128(p))];
        if encrypt {
            aes_rounds!(
                keys,
                b,
                _mm256_xor_si256,
                _mm256_aesenc_epi128,
                _mm256_aesenclast_epi128
            );
        } else {
            aes_rounds!(
                keys,
                b,
                _mm256_xor_si256,
                _mm256_aesdec_epi128,
                _mm256_aesdeclast_epi128
            );
        }
        _mm_storeu_si128(p, _mm256_castsi256_si128(b[0]));
    }
}

/// XORs the keystream of the 16 counter blocks `iv_hi || (c + i) mod 2^64` into `batch`.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn ctr16(rk: &[__m256i; 11], iv_hi: &[u8; 8], c: u64, batch: &mut [Block; LANES]) {
    let iv_lo = i64::from_le_bytes(*iv_hi);
    // SAFETY: (1) by the caller; loads and stores touch the 16 blocks of `batch` only.
    unsafe {
        let mut b = [_mm256_setzero_si256(); REGS];
        if c & 0xff <= 0x100 - LANES as u64 {
            // No carry out of the counter's last byte in this batch (see `aesni::ctr8`).
            let s = c.swap_bytes() as i64;
            let first = _mm256_set_epi64x(s, iv_lo, s, iv_lo);
            for (x, j) in b.iter_mut().zip(0i64..) {
                let step = _mm256_set_epi64x((2 * j + 1) << 56, 0, (2 * j) << 56, 0);
                *x = _mm256_add_epi64(first, step);
            }
        } else {
            for (x, j) in b.iter_mut().zip(0u64..) {
                let lo = c.wrapping_add(2 * j).swap_bytes() as i64;
                let hi = c.wrapping_add(2 * j + 1).swap_bytes() as i64;
                *x = _mm256_set_epi64x(hi, iv_lo, lo, iv_lo);
            }
        }
        for x in b.iter_mut() {
            *x = _mm256_xor_si256(*x, rk[0]);
        }
        for k in &rk[1..10] {
            for x in b.iter_mut() {
                *x = _mm256_aesenc_epi128(*x, *k);
            }
        }
        // The last round ends with AddRoundKey (FIPS-197 §5.1.4), so running it with
        // `rk[10] ^ data` yields `keystream ^ data` directly.
        let p = batch.as_mut_ptr().cast::<__m256i>();
        for (j, x) in b.iter().enumerate() {
            let q = p.add(j);
            let last = _mm256_xor_si256(rk[10], _mm256_loadu_si256(q));
            _mm256_storeu_si256(q, _mm256_aesenclast_epi128(*x, last));
        }
    }
}

/// CBC-decrypts the 16 blocks of `batch` in place; `iv` becomes the last ciphertext block.
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn cbc16(dk: &[__m256i; 11], iv: &mut Block, batch: &mut [Block; LANES]) {
    // SAFETY: (1) by the caller; loads and stores touch `iv` and the 16 blocks of `batch`
    // only (the unaligned loads at `32 j - 16` for j >= 1 stay inside `batch`); all
    // ciphertext is loaded before the first store.
    unsafe {
        let p = batch.as_mut_ptr().cast::<u8>();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm256_setzero_si256(); REGS];
        for (j, x) in b.iter_mut().enumerate() {
            *x = _mm256_loadu_si256(p.add(32 * j).cast());
        }
        let last = _mm256_extracti128_si256::<1>(b[REGS - 1]);
        aes_rounds!(
            dk,
            b,
            _mm256_xor_si256,
            _mm256_aesdec_epi128,
            _mm256_aesdeclast_epi128
        );
        // Chaining values: the ciphertext shifted by one block, the IV first.
        let mut prev = [_mm256_setzero_si256(); REGS];
        prev[0] = _mm256_inserti128_si256::<1>(
            _mm256_castsi128_si256(_mm_loadu_si128(ivp)),
            _mm_loadu_si128(p.cast()),
        );
        for (j, x) in prev.iter_mut().enumerate().skip(1) {
            *x = _mm256_loadu_si256(p.add(32 * j - 16).cast());
        }
        for (j, (x, v)) in b.iter().zip(prev.iter()).enumerate() {
            _mm256_storeu_si256(p.add(32 * j).cast(), _mm256_xor_si256(*x, *v));
        }
        _mm_storeu_si128(ivp, last);
    }
}

/// `cbcs`-style 1:`skip` pattern: CBC-decrypts blocks `0, stride, …, 15 * stride` of `data` in
/// place as consecutive links of one chain (`iv` becomes the last of them).
///
/// # Safety
/// 1. The CPU supports VAES and AVX2.
/// 2. `stride >= 1` and block `15 * stride` is in `data`.
#[target_feature(enable = "avx2,vaes")]
#[inline]
unsafe fn cbc16_strided(dk: &[__m256i; 11], iv: &mut Block, data: &mut [Block], stride: usize) {
    // SAFETY: (1) by the caller; every access is one block at index `i * stride <= 15 *
    // stride`, which lies in `data` by (2); with `stride >= 1` the blocks are disjoint, and
    // each is loaded before any store.
    unsafe {
        let p = data.as_mut_ptr();
        let at = |i: usize| p.add(i * stride).cast::<__m128i>();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut c = [_mm256_setzero_si256(); REGS];
        for (j, x) in c.iter_mut().enumerate() {
            *x = _mm256_loadu2_m128i(at(2 * j + 1), at(2 * j));
        }
        let mut b = c;
        aes_rounds!(
            dk,
            b,
            _mm256_xor_si256,
            _mm256_aesdec_epi128,
            _mm256_aesdeclast_epi128
        );
        // Chaining values of register j: blocks 2j - 1 and 2j (the IV before block 0). `prev`
        // carries the previous register (the IV, in both lanes, at first); the lane shuffle
        // takes its high lane and the current register's low lane.
        let mut prev = _mm256_castsi128_si256(_mm_loadu_si128(ivp));
        prev = _mm256_permute2x128_si256::<0x00>(prev, prev);
        for (j, (x, ct)) in b.iter().zip(c.iter()).enumerate() {
            let chain = _mm256_permute2x128_si256::<0x21>(prev, *ct);
            _mm256_storeu2_m128i(at(2 * j + 1), at(2 * j), _mm256_xor_si256(*x, chain));
            prev = *ct;
        }
        _mm_storeu_si128(ivp, _mm256_extracti128_si256::<1>(prev));
    }
}
