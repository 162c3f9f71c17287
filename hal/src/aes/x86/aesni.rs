//! The AES-NI engine: `aesenc`/`aesdec` on 128-bit registers, [`LANES`] blocks in flight.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi64, _mm_aesdec_si128, _mm_aesdeclast_si128, _mm_aesenc_si128,
    _mm_aesenclast_si128, _mm_aesimc_si128, _mm_aeskeygenassist_si128, _mm_loadu_si128,
    _mm_set_epi64x, _mm_setzero_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128,
    _mm_xor_si128,
};

use super::aesni_available;
use crate::aes::batch::schedule_kernels;
use crate::aes::{Block, Schedule};

/// Blocks per batch.
pub(crate) const LANES: usize = 8;

/// The AES-NI schedule; holding one proves that detection found AES-NI and SSE2.
pub(crate) type RoundKeys = Schedule<__m128i>;

impl RoundKeys {
    /// An all-zero schedule, to be expanded in place by [`RoundKeys::expand`]; `None` when
    /// the CPU has no AES-NI.
    pub(crate) fn zeroed() -> Option<RoundKeys> {
        // SAFETY: `__m128i` is plain data; the all-zero bit pattern is a valid value.
        aesni_available().then(|| Schedule::filled(unsafe { core::mem::zeroed::<__m128i>() }))
    }

    /// Expands `key` into `self`, in place, so the schedule is never moved or copied.
    pub(crate) fn expand(&mut self, key: &[u8; 16]) {
        // SAFETY: (1) `self` exists, so `zeroed` found AES-NI and SSE2.
        unsafe { expand_key(key, self) };
    }
}

schedule_kernels! {
    // SAFETY: (1) of every kernel: a `RoundKeys` exists only after `zeroed` detected AES-NI
    // and SSE2.
    unsafe impl Kernels<LANES> for RoundKeys {
        scope: with_aesni,
        block: block1,
        ctr: ctr8,
        cbc: |dk, iv, batch| cbc8_strided(dk, iv, batch, 1),
        cbc_strided: cbc8_strided,
    }
}

/// Runs `f` compiled with AES-NI and SSE2, so a batch driver's loop and these kernels inline
/// into one function.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn with_aesni(f: impl FnOnce()) {
    f()
}

/// AES-128 key expansion (FIPS-197 §5.2) and the decryption schedule of the equivalent inverse
/// cipher (FIPS-197 §5.3.5: decryption round keys 1..=9 pass through InvMixColumns).
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
unsafe fn expand_key(key: &[u8; 16], keys: &mut RoundKeys) {
    // One expansion step: words w[i..i+4] from w[i-4..i]. `aeskeygenassist` puts
    // RotWord(SubWord(w[i-1])) ^ Rcon in its dword 3; broadcast that and XOR it into the prefix
    // XOR of the previous round key (lane j = w[i-4] ^ … ^ w[i-4+j]).
    macro_rules! step {
        ($prev:expr, $rcon:literal) => {{
            let prev = $prev;
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(prev));
            let k = _mm_xor_si128(prev, _mm_slli_si128::<4>(prev));
            let k = _mm_xor_si128(k, _mm_slli_si128::<8>(k));
            _mm_xor_si128(k, t)
        }};
    }
    // SAFETY: (1) by the caller; the only memory access reads the 16 bytes of `key`.
    unsafe {
        let e = &mut keys.enc;
        e[0] = _mm_loadu_si128(key.as_ptr().cast());
        e[1] = step!(e[0], 0x01);
        e[2] = step!(e[1], 0x02);
        e[3] = step!(e[2], 0x04);
        e[4] = step!(e[3], 0x08);
        e[5] = step!(e[4], 0x10);
        e[6] = step!(e[5], 0x20);
        e[7] = step!(e[6], 0x40);
        e[8] = step!(e[7], 0x80);
        e[9] = step!(e[8], 0x1b);
        e[10] = step!(e[9], 0x36);
        keys.dec[0] = keys.enc[10];
        for (d, e) in keys.dec[1..10].iter_mut().zip(keys.enc[1..10].iter().rev()) {
            *d = _mm_aesimc_si128(*e);
        }
        keys.dec[10] = keys.enc[0];
    }
}

/// Encrypts (`encrypt`, with the schedule `keys.enc`) or decrypts (with `keys.dec`) one block.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn block1(keys: &[__m128i; 11], block: &mut Block, encrypt: bool) {
    // SAFETY: (1) by the caller; the load and store touch exactly the 16 bytes of `block`.
    unsafe {
        let p = block.as_mut_ptr().cast::<__m128i>();
        let mut b = [_mm_loadu_si128(p)];
        if encrypt {
            aes_rounds!(
                keys,
                b,
                _mm_xor_si128,
                _mm_aesenc_si128,
                _mm_aesenclast_si128
            );
        } else {
            aes_rounds!(
                keys,
                b,
                _mm_xor_si128,
                _mm_aesdec_si128,
                _mm_aesdeclast_si128
            );
        }
        _mm_storeu_si128(p, b[0]);
    }
}

/// XORs the keystream of the 8 counter blocks `iv_hi || (c + i) mod 2^64` into `batch`.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn ctr8(rk: &[__m128i; 11], iv_hi: &[u8; 8], c: u64, batch: &mut [Block; LANES]) {
    // `iv_hi` read as the low 64-bit lane.
    let iv_lo = i64::from_le_bytes(*iv_hi);
    // SAFETY: (1) by the caller; loads and stores touch the 8 blocks of `batch` only.
    unsafe {
        let mut b = [_mm_setzero_si128(); LANES];
        // The high lane holds the big-endian counter, i.e. its last byte is the lane's top byte.
        if c & 0xff <= 0x100 - LANES as u64 {
            // No carry out of the last byte in this batch: add i to that byte.
            let first = _mm_set_epi64x(c.swap_bytes() as i64, iv_lo);
            for (x, i) in b.iter_mut().zip(0i64..) {
                *x = _mm_add_epi64(first, _mm_set_epi64x(i << 56, 0));
            }
        } else {
            for (x, i) in b.iter_mut().zip(0u64..) {
                *x = _mm_set_epi64x(c.wrapping_add(i).swap_bytes() as i64, iv_lo);
            }
        }
        aes_rounds!(rk, b, _mm_xor_si128, _mm_aesenc_si128, _mm_aesenclast_si128);
        let p = batch.as_mut_ptr().cast::<__m128i>();
        for (i, k) in b.iter().enumerate() {
            let q = p.add(i);
            _mm_storeu_si128(q, _mm_xor_si128(_mm_loadu_si128(q), *k));
        }
    }
}

/// CBC-decrypts blocks `0, stride, …, 7 * stride` of `data` in place as consecutive links of
/// one chain (NIST SP 800-38A §6.2; `iv` becomes the last of them). Stride 1 is a contiguous
/// batch; larger strides serve `cbcs`-style 1:`skip` patterns.
///
/// # Safety
/// 1. The CPU supports AES-NI and SSE2.
/// 2. `stride >= 1` and block `7 * stride` is in `data`.
#[target_feature(enable = "aes,sse2")]
#[inline]
unsafe fn cbc8_strided(dk: &[__m128i; 11], iv: &mut Block, data: &mut [Block], stride: usize) {
    // SAFETY: (1) by the caller; every access is one block at index `i * stride <= 7 * stride`,
    // which lies in `data` by (2); with `stride >= 1` the blocks are disjoint, and each is
    // loaded before any store.
    unsafe {
        let p = data.as_mut_ptr();
        let at = |i: usize| p.add(i * stride).cast::<__m128i>();
        let ivp = iv.as_mut_ptr().cast::<__m128i>();
        let mut c = [_mm_setzero_si128(); LANES];
        for (i, x) in c.iter_mut().enumerate() {
            *x = _mm_loadu_si128(at(i));
        }
        let mut b = c;
        aes_rounds!(dk, b, _mm_xor_si128, _mm_aesdec_si128, _mm_aesdeclast_si128);
        let mut prev = _mm_loadu_si128(ivp);
        for (i, (x, ct)) in b.iter().zip(c.iter()).enumerate() {
            _mm_storeu_si128(at(i), _mm_xor_si128(*x, prev));
            prev = *ct;
        }
        _mm_storeu_si128(ivp, prev);
    }
}
