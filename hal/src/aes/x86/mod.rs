//! x86_64 engines: [`aesni`] (128-bit, 8 blocks in flight) and [`vaes`] on AVX2 (256-bit, two
//! blocks per instruction, 16 in flight), their run-time detection, and what they share.
//!
//! Both use the AES-NI key schedule (FIPS-197 §5.2 via `aeskeygenassist`; decryption uses the
//! equivalent inverse cipher of FIPS-197 §5.3.5, so its round keys pass through `aesimc`). A
//! schedule exists only after run-time detection found the instructions, which is what makes
//! the `unsafe` calls in the [`Kernels`](super::batch::Kernels) impls sound.
//!
//! CTR (NIST SP 800-38A §6.5, with the ISO/IEC 23001-7 `cenc` 64-bit counter) keeps the counter
//! blocks in SIMD registers in their byte-swapped form: while the low byte of the counter does
//! not carry inside a batch, block `i` is the batch's first counter block plus `i` in its last
//! byte, a single vector add. A batch in which the low byte carries (at most one in 16 batches,
//! none for counters aligned to the batch) is built block by block with scalar arithmetic,
//! which also makes the 2^64 wrap exact.
//!
//! The 256-bit AES intrinsics (`_mm256_aesenc_epi128`, …) and the `vaes` target feature are
//! stable since Rust 1.89, the workspace MSRV. Since Rust 1.87 the value-only intrinsics are
//! safe functions inside a function compiled with their target features; `unsafe` remains for
//! loads and stores through raw pointers and for calls into `#[target_feature]` functions from
//! code without those features.
#![allow(unsafe_code)]
// Exempt from the crate's "never panics on input" lints: kernels only ever see engine-internal
// lengths (whole blocks, strides, key-schedule indices) that the batch driver has validated,
// and index fixed-size arrays by construction.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use core::sync::atomic::{AtomicU8, Ordering};

/// Runs the ten AES-128 rounds over every element of an array of blocks in registers:
/// whitening XOR with `rk[0]`, nine `$round`s with `rk[1..10]`, and `$last` with `rk[10]`.
/// Must be expanded inside a function compiled with the target features of the intrinsics.
macro_rules! aes_rounds {
    ($rk:expr, $b:ident, $xor:path, $round:path, $last:path) => {{
        let rk = $rk;
        for x in $b.iter_mut() {
            *x = $xor(*x, rk[0]);
        }
        for k in &rk[1..10] {
            for x in $b.iter_mut() {
                *x = $round(*x, *k);
            }
        }
        for x in $b.iter_mut() {
            *x = $last(*x, rk[10]);
        }
    }};
}

pub(crate) mod aesni;
pub(crate) mod vaes;

pub(crate) use aesni::RoundKeys;
pub(crate) use vaes::VaesKeys;

cpufeatures::new!(cpuid_aesni, "aes", "sse2");
// `cpufeatures` (0.2 and 0.3) ties "vaes" to the AVX-512 register state, which AVX2-only VAES
// CPUs (AMD Zen 3/4 clients, Intel Alder Lake) do not enable. Detect AVX2 + AES (with the OS's
// YMM state) through it and read the VAES bit ourselves.
cpufeatures::new!(cpuid_avx2_aes, "avx2", "aes");

/// Whether the CPU has AES-NI (and SSE2, always true on x86_64).
pub(crate) fn aesni_available() -> bool {
    cpuid_aesni::get()
}

/// Whether the CPU has VAES with AVX2 (and AES-NI), and the OS saves the YMM registers.
pub(crate) fn vaes_available() -> bool {
    cpuid_avx2_aes::get() && vaes_bit()
}

/// CPUID.(EAX=7,ECX=0):ECX bit 9 (VAES), cached: CPUID traps to the hypervisor in VMs.
fn vaes_bit() -> bool {
    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;
    static CACHE: AtomicU8 = AtomicU8::new(UNKNOWN);
    match CACHE.load(Ordering::Relaxed) {
        ABSENT => false,
        PRESENT => true,
        _ => {
            let found = cpuid_vaes();
            CACHE.store(if found { PRESENT } else { ABSENT }, Ordering::Relaxed);
            found
        }
    }
}

#[cfg(not(target_env = "sgx"))]
fn cpuid_vaes() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // `__cpuid*` are still `unsafe fn`s at the MSRV (1.89) and safe in later releases: keep
    // the block, and allow it being unused on newer compilers.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU (outside SGX enclaves, excluded above); leaf 7
    // is queried only when leaf 0 reports it as supported.
    unsafe {
        __cpuid(0).eax >= 7 && (__cpuid_count(7, 0).ecx >> 9) & 1 == 1
    }
}

/// CPUID is not available inside SGX enclaves.
#[cfg(target_env = "sgx")]
fn cpuid_vaes() -> bool {
    false
}
