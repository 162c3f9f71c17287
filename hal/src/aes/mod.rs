//! AES-128 engines with run-time dispatch.
//!
//! An [`Engine`] is a value that proves CPU feature detection ran and found the engine usable;
//! [`Engine::key`] expands a content key into an [`Aes128`] key schedule bound to that engine.
//! The schedule offers exactly the primitives the CENC schemes need (CTR with a 64-bit
//! wrapping counter, CBC decryption, and the pattern variants), so the hot loops stay inside the
//! engine and can keep many blocks in flight.
//!
//! Each engine supplies only kernels, the work on one batch of blocks (`batch::Kernels`); one
//! safe driver (`batch`) walks the data in batches for all of them, and the CTR keystream
//! (`keystream`) alone deals with partial blocks.
//!
//! | engine | where | how |
//! |---|---|---|
//! | [`EngineKind::Vaes`] | x86_64 with VAES + AVX2 | 256-bit `vaesenc`/`vaesdec`, two blocks per instruction, 16 in flight |
//! | [`EngineKind::AesNi`] | x86_64 with AES-NI | `aesenc`/`aesdec`, 8 blocks in flight |
//! | [`EngineKind::ArmCe`] | aarch64 with the `aes` extension | `vaeseq_u8`/`vaesmcq_u8`, 8 blocks in flight |
//! | [`EngineKind::Portable`] | everywhere | RustCrypto `aes` (see below) |
//!
//! `Portable` is RustCrypto's `aes` crate. On aarch64 (built without `--cfg aes_armv8`) and on
//! bare-metal targets that is its constant-time bitsliced software implementation; on x86_64 the
//! crate itself detects AES-NI unless built with `--cfg aes_force_soft`.
//!
//! Selection happens once ([`Engine::detect`]); tests and benches force an engine with
//! [`Engine::new`] or, in `std` builds, the `TEE_CDM_AES_ENGINE` environment variable
//! (`vaes`, `aesni`, `armce`, `portable`).

#[cfg(target_arch = "aarch64")]
mod arm;
mod batch;
mod keystream;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

#[cfg(target_arch = "aarch64")]
use arm::RoundKeys as CeKeys;
use batch::Kernels;
pub(crate) use keystream::Keystream;
#[cfg(target_arch = "x86_64")]
use x86::{RoundKeys as NiKeys, VaesKeys};

/// Name of the environment variable that forces an engine in `std` builds.
pub const ENGINE_ENV_VAR: &str = "TEE_CDM_AES_ENGINE";

/// AES block size in bytes.
pub const BLOCK: usize = 16;

/// One AES block.
pub(crate) type Block = [u8; BLOCK];

/// The AES implementations this crate can dispatch to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// x86_64 VAES with AVX2 (256-bit vectors, two AES blocks per instruction).
    Vaes,
    /// x86_64 AES-NI (128-bit, one block per instruction, 8 blocks interleaved).
    AesNi,
    /// ARMv8 Cryptography Extensions.
    ArmCe,
    /// RustCrypto `aes` (portable; constant-time software where the CPU has no AES).
    Portable,
}

impl EngineKind {
    /// Every engine kind, fastest first: the order [`Engine::detect`] tries them in.
    pub const ALL: [EngineKind; 4] = [Self::Vaes, Self::AesNi, Self::ArmCe, Self::Portable];

    /// Stable lower-case name, as used in capabilities, logs, benches and [`ENGINE_ENV_VAR`].
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vaes => "vaes",
            Self::AesNi => "aesni",
            Self::ArmCe => "armce",
            Self::Portable => "portable",
        }
    }

    /// Parses a name produced by [`EngineKind::name`] (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU (as detected at run time, or fixed at build time on bare metal) can
    /// run the engine.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Vaes => x86::vaes_available(),
            #[cfg(target_arch = "x86_64")]
            Self::AesNi => x86::aesni_available(),
            #[cfg(target_arch = "aarch64")]
            Self::ArmCe => arm::available(),
            Self::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The requested engine cannot run on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("AES engine `{0}` is not available on this CPU")]
pub struct EngineUnavailable(pub EngineKind);

/// A usable AES engine: holding one proves that feature detection found it available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    kind: EngineKind,
}

impl Engine {
    /// The engine the secure world uses: in `std` builds the one named by
    /// [`ENGINE_ENV_VAR`] if set and available, otherwise [`Engine::best`].
    ///
    /// An unknown or unavailable name in the variable is ignored (the best engine is used),
    /// so a stale setting cannot disable decryption.
    pub fn detect() -> Engine {
        #[cfg(feature = "std")]
        {
            if let Some(kind) = std::env::var(ENGINE_ENV_VAR)
                .ok()
                .and_then(|v| EngineKind::from_name(&v))
            {
                if let Ok(engine) = Engine::new(kind) {
                    return engine;
                }
            }
        }
        Engine::best()
    }

    /// The fastest engine this CPU supports, ignoring any override.
    pub fn best() -> Engine {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.is_available())
            .map(|kind| Engine { kind })
            .unwrap_or(Engine {
                kind: EngineKind::Portable,
            })
    }

    /// Forces an engine (tests, benches, integrator configuration).
    pub fn new(kind: EngineKind) -> Result<Engine, EngineUnavailable> {
        if kind.is_available() {
            Ok(Engine { kind })
        } else {
            Err(EngineUnavailable(kind))
        }
    }

    /// Every engine available on this CPU, fastest first.
    pub fn available() -> impl Iterator<Item = Engine> {
        EngineKind::ALL
            .into_iter()
            .filter(|k| k.is_available())
            .map(|kind| Engine { kind })
    }

    /// Which engine this is.
    pub const fn kind(self) -> EngineKind {
        self.kind
    }

    /// The engine's stable name.
    pub const fn name(self) -> &'static str {
        self.kind.name()
    }

    /// Expands an AES-128 key for this engine. The schedule is wiped when dropped.
    ///
    /// Aborts the process if the schedule cannot be allocated, like any infallible
    /// allocation; the secure world uses [`Engine::try_key`].
    pub fn key(self, key: &[u8; 16]) -> Aes128 {
        match self.try_key(key) {
            Ok(k) => k,
            Err(KeyAllocError) => {
                alloc::alloc::handle_alloc_error(core::alloc::Layout::new::<Inner>())
            }
        }
    }

    /// Expands an AES-128 key for this engine, failing (instead of aborting) when the
    /// schedule cannot be allocated.
    ///
    /// The schedule lives on the heap and the hardware engines expand it in place, so moving
    /// an [`Aes128`] (into a key slot, a growing table) moves a pointer and never leaves a
    /// stale copy of round keys behind. The portable engine's schedule is built by RustCrypto
    /// and moved once into its heap slot; that one stack temporary is not wiped.
    pub fn try_key(self, key: &[u8; 16]) -> Result<Aes128, KeyAllocError> {
        let hardware: Option<Result<Inner, KeyAllocError>> = match self.kind {
            #[cfg(target_arch = "x86_64")]
            EngineKind::Vaes => in_place(VaesKeys::zeroed(), VaesKeys::expand, key, Inner::Vaes),
            #[cfg(target_arch = "x86_64")]
            EngineKind::AesNi => in_place(NiKeys::zeroed(), NiKeys::expand, key, Inner::AesNi),
            #[cfg(target_arch = "aarch64")]
            EngineKind::ArmCe => in_place(CeKeys::zeroed(), CeKeys::expand, key, Inner::ArmCe),
            _ => None,
        };
        let inner = match hardware {
            Some(inner) => inner?,
            None => Inner::Portable(Heap::try_new(portable::Keys::new(key))?),
        };
        Ok(Aes128 {
            engine: self,
            inner,
        })
    }
}

/// A hardware engine's schedule, allocated and then expanded in place, wrapped in its
/// [`Inner`] variant; `None` when detection refused the engine (`zeroed` gave nothing).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn in_place<K>(
    zeroed: Option<K>,
    expand: fn(&mut K, &[u8; 16]),
    key: &[u8; 16],
    wrap: fn(Heap<K>) -> Inner,
) -> Option<Result<Inner, KeyAllocError>> {
    Some(Heap::try_new(zeroed?).map(|mut heap| {
        expand(heap.get_mut(), key);
        wrap(heap)
    }))
}

/// A key schedule could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("out of memory for an AES key schedule")]
pub struct KeyAllocError;

/// One value on the heap, allocated fallibly (`Box::try_new` is not stable yet).
struct Heap<T>(Box<[T; 1]>);

impl<T> Heap<T> {
    fn try_new(value: T) -> Result<Self, KeyAllocError> {
        let mut v = Vec::new();
        v.try_reserve_exact(1).map_err(|_| KeyAllocError)?;
        v.push(value);
        // Length equals capacity, so this neither reallocates nor copies.
        let slice: Box<[T]> = v.into_boxed_slice();
        slice.try_into().map(Heap).map_err(|_| KeyAllocError)
    }

    fn get(&self) -> &T {
        let [v] = &*self.0;
        v
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn get_mut(&mut self) -> &mut T {
        let [v] = &mut *self.0;
        v
    }
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    Vaes(Heap<VaesKeys>),
    #[cfg(target_arch = "x86_64")]
    AesNi(Heap<NiKeys>),
    #[cfg(target_arch = "aarch64")]
    ArmCe(Heap<CeKeys>),
    Portable(Heap<portable::Keys>),
}

/// An expanded AES-128 key bound to one engine.
///
/// The round keys are zeroized when the value is dropped. There is deliberately no `Debug`,
/// `Clone` or `PartialEq`.
pub struct Aes128 {
    engine: Engine,
    inner: Inner,
}

impl fmt::Debug for Aes128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aes128")
            .field("engine", &self.engine.name())
            .finish_non_exhaustive()
    }
}

macro_rules! dispatch {
    ($self:ident, $k:ident => $e:expr) => {
        match &$self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Vaes(h) => {
                let $k = h.get();
                $e
            }
            #[cfg(target_arch = "x86_64")]
            Inner::AesNi(h) => {
                let $k = h.get();
                $e
            }
            #[cfg(target_arch = "aarch64")]
            Inner::ArmCe(h) => {
                let $k = h.get();
                $e
            }
            Inner::Portable(h) => {
                let $k = h.get();
                $e
            }
        }
    };
}

impl Aes128 {
    /// The engine this schedule runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Encrypts one block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        dispatch!(self, k => k.encrypt_block(block))
    }

    /// Decrypts one block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        dispatch!(self, k => k.decrypt_block(block))
    }

    /// XORs the CTR keystream into `data`, in place.
    ///
    /// Counter block `i` is `iv_hi || (ctr + i) mod 2^64` (both halves big-endian): the low
    /// 64 bits wrap without carrying into `iv_hi`, as ISO/IEC 23001-7 `cenc` requires.
    /// A trailing partial block uses the first bytes of its keystream block. On return `ctr`
    /// has advanced by the number of blocks touched (a partial block counts as one).
    pub fn ctr64_xor(&self, iv_hi: &[u8; 8], ctr: &mut u64, data: &mut [u8]) {
        let mut keystream = Keystream::new(self, *iv_hi, *ctr);
        keystream.apply(data);
        *ctr = keystream.counter();
    }

    /// XORs the CTR keystream into the encrypted blocks of `data` under a `crypt:skip` block
    /// pattern, in place: starting at the first byte, `crypt` whole blocks are encrypted, then
    /// `skip` blocks are left clear, and so on; when fewer than `crypt` whole blocks remain,
    /// those are encrypted, and a trailing partial block is always clear (ISO/IEC 23001-7
    /// §9.6.1, §10.3). `crypt == 0` or `skip == 0` means "no pattern" (every whole block).
    ///
    /// Only encrypted blocks consume keystream: they take the counter blocks
    /// `iv_hi || (ctr + i) mod 2^64` in order, as in [`Aes128::ctr64_xor`], and on return `ctr`
    /// has advanced by their number, so consecutive calls continue one keystream.
    pub fn ctr64_xor_pattern(
        &self,
        iv_hi: &[u8; 8],
        ctr: &mut u64,
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        let (blocks, _tail) = data.as_chunks_mut();
        dispatch!(self, k => batch::ctr_pattern(k, iv_hi, ctr, blocks, crypt, skip))
    }

    /// [`Aes128::ctr64_xor`] on whole blocks, for the [`Keystream`].
    fn ctr64_xor_blocks(&self, iv_hi: &[u8; 8], ctr: &mut u64, blocks: &mut [Block]) {
        dispatch!(self, k => k.ctr_blocks(iv_hi, ctr, blocks))
    }

    /// CBC-decrypts the whole blocks of `data` in place; a trailing partial block is left as
    /// it is. `iv` is updated to the last ciphertext block processed, so consecutive calls
    /// continue one chain.
    pub fn cbc_decrypt(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        let (blocks, _tail) = data.as_chunks_mut();
        dispatch!(self, k => k.cbc_blocks(iv, blocks))
    }

    /// CBC-encrypts the whole blocks of `data` in place (test content and license tooling;
    /// CBC encryption is serial, so engines do not interleave it). A trailing partial block
    /// is left as it is; `iv` is updated to the last ciphertext block.
    #[cfg(feature = "encrypt")]
    pub fn cbc_encrypt(&self, iv: &mut [u8; 16], data: &mut [u8]) {
        for block in data.as_chunks_mut::<BLOCK>().0 {
            block.iter_mut().zip(iv.iter()).for_each(|(b, v)| *b ^= v);
            self.encrypt_block(block);
            *iv = *block;
        }
    }

    /// CBC-decrypts `data` under a `crypt:skip` block pattern, in place: starting at the
    /// first byte, `crypt` whole blocks are decrypted (one CBC chain across all the
    /// encrypted blocks, starting from `iv`), then `skip` blocks are left clear, and so on.
    /// When fewer than `crypt` whole blocks remain, those remaining whole blocks are
    /// decrypted; a trailing partial block is always clear (ISO/IEC 23001-7 §10.4.2).
    /// `crypt == 0` or `skip == 0` means "no pattern" (every block); callers validate patterns.
    pub fn cbc_decrypt_pattern(
        &self,
        iv: &mut [u8; 16],
        data: &mut [u8],
        crypt: usize,
        skip: usize,
    ) {
        let (blocks, _tail) = data.as_chunks_mut();
        dispatch!(self, k => batch::cbc_pattern(k, iv, blocks, crypt, skip))
    }
}

/// The encrypted runs of a `crypt:skip` block pattern over whole blocks: the first `crypt`
/// blocks of each period of `crypt + skip` blocks, or fewer in a short last period (ISO/IEC
/// 23001-7 §9.6.1). `crypt == 0` or `skip == 0` means no pattern: one run of every block.
pub(crate) fn pattern_runs(
    blocks: &mut [Block],
    crypt: usize,
    skip: usize,
) -> impl Iterator<Item = &mut [Block]> {
    // Saturation is exact here: both values only bound chunk lengths of a slice, and a
    // saturated `usize::MAX` exceeds every slice length just as the true sum would.
    let (crypt, period) = match (crypt, skip) {
        (0, _) | (_, 0) => (usize::MAX, usize::MAX),
        _ => (crypt, crypt.saturating_add(skip)),
    };
    blocks
        .chunks_mut(period)
        .map(move |p| p.get_mut(..crypt.min(p.len())).unwrap_or_default())
}

/// Builds the counter block `iv_hi || ctr` (big-endian halves).
pub(crate) fn counter_block(iv_hi: &[u8; 8], ctr: u64) -> Block {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(iv_hi);
    b[8..].copy_from_slice(&ctr.to_be_bytes());
    b
}

/// A hardware engine's AES-128 key schedule, round keys in the engine's layout `V`: the
/// encryption round keys and the decryption round keys of the equivalent inverse cipher
/// (FIPS-197 §5.3.5). Built only by the engines' `zeroed` constructors, after detection, so
/// holding one proves the CPU has the instructions. Wiped on drop; no `Debug`, `Clone` or
/// `PartialEq`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) struct Schedule<V: zeroize::Zeroize> {
    enc: [V; 11],
    dec: [V; 11],
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl<V: zeroize::Zeroize + Copy> Schedule<V> {
    /// Every round key `zero`; for the engines' `zeroed`, after detection.
    fn filled(zero: V) -> Self {
        Schedule {
            enc: [zero; 11],
            dec: [zero; 11],
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl<V: zeroize::Zeroize> Drop for Schedule<V> {
    fn drop(&mut self) {
        // Volatile writes the optimiser cannot drop.
        zeroize::Zeroize::zeroize(&mut self.enc);
        zeroize::Zeroize::zeroize(&mut self.dec);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl<V: zeroize::Zeroize> zeroize::ZeroizeOnDrop for Schedule<V> {}
