//! The `hal::platform` services of the image that need the hardware: randomness from the CPU
//! (`RNDR`) and a clock from the board's RTC and the generic timer (the secure output sink is
//! `firmware_selftest::DigestSink`). System and device registers are read here and nowhere
//! else.
//!
//! | service | source | trust on a real device |
//! |---|---|---|
//! | [`Rndr`] | `RNDR` (FEAT_RNG, ARMv8.5), present on QEMU's `-cpu max` | the CPU's TRNG-seeded generator; a TEE would use its secure TRNG |
//! | [`BoardClock`] | PL031 RTC at boot (Unix seconds) plus `CNTVCT_EL0 / CNTFRQ_EL0` since then | the PL031 belongs to the normal world here; a TEE uses a secure RTC or trusted time |
//! | `firmware_selftest::DigestSink` | SHA-256 (`sha2`) of every frame | stands in for the secure video path |
#![allow(unsafe_code)]

use hal::platform::{Clock, RngError, SecureRandom};

/// `RNDR` (FEAT_RNG): a 64-bit random number from the CPU, or `None` when the CPU reports
/// that none was available in reasonable time (`PSTATE.Z` set; Arm ARM D17.2 `RNDR`).
fn rndr() -> Option<u64> {
    let value: u64;
    let ok: u64;
    // SAFETY: `RNDR` (encoded as `S3_3_C2_C4_0`, so that no `rand` target feature is needed)
    // only reads the generator and sets NZCV; callers check `rng_available()` first, so the
    // register exists and the read cannot trap. No memory is touched.
    unsafe {
        core::arch::asm!(
            "mrs {value}, s3_3_c2_c4_0",
            "cset {ok}, ne",
            value = out(reg) value,
            ok = out(reg) ok,
            options(nomem, nostack),
        );
    }
    (ok != 0).then_some(value)
}

/// Whether the CPU implements `RNDR`: `ID_AA64ISAR0_EL1.RNDR` (bits 63:60) is non-zero.
pub(crate) fn rng_available() -> bool {
    let isar0: u64;
    // SAFETY: ID_AA64ISAR0_EL1 is a read-only identification register, readable at EL1 on
    // every ARMv8-A CPU; the read has no side effect and touches no memory.
    unsafe {
        core::arch::asm!(
            "mrs {isar0}, id_aa64isar0_el1",
            isar0 = out(reg) isar0,
            options(nomem, nostack, preserves_flags),
        );
    }
    isar0 >> 60 != 0
}

/// Random bytes from `RNDR`. Building one checks that the CPU has it.
#[derive(Debug)]
pub(crate) struct Rndr(());

impl Rndr {
    /// Failed `RNDR` reads tolerated in a row before [`SecureRandom::fill`] gives up.
    const RETRIES: u32 = 16;

    /// The CPU's generator, or `None` if the CPU has no `RNDR` (the image then reports the
    /// failure: it has no other source of unguessable session handles).
    pub(crate) fn new() -> Option<Self> {
        rng_available().then_some(Rndr(()))
    }

    fn next(&self) -> Result<u64, RngError> {
        (0..Self::RETRIES).find_map(|_| rndr()).ok_or(RngError)
    }
}

impl SecureRandom for Rndr {
    fn fill(&self, out: &mut [u8]) -> Result<(), RngError> {
        for chunk in out.chunks_mut(8) {
            let word = self.next()?.to_le_bytes();
            chunk.copy_from_slice(word.get(..chunk.len()).ok_or(RngError)?);
        }
        Ok(())
    }
}

/// The PL031 real-time clock of the `virt` board (`VIRT_RTC`): its data register RTCDR
/// counts seconds since the Unix epoch (QEMU starts it from the host's time).
const PL031_RTCDR: usize = 0x0901_0000;

/// `CNTVCT_EL0`, the virtual count of the generic timer.
fn counter() -> u64 {
    let v: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL1 whatever CNTKCTL_EL1 says (that register only
    // gates EL0); reading has no side effect and touches no memory. The `isb` keeps the read
    // from being taken early, as the Arm ARM recommends for counter reads.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrs {v}, cntvct_el0",
            v = out(reg) v,
            options(nomem, nostack, preserves_flags),
        );
    }
    v
}

/// `CNTFRQ_EL0`: the generic timer's frequency in Hz, as firmware (here QEMU) programmed it.
fn counter_frequency() -> u64 {
    let f: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL1; the read has no side effect and touches no memory.
    unsafe {
        core::arch::asm!(
            "mrs {f}, cntfrq_el0",
            f = out(reg) f,
            options(nomem, nostack, preserves_flags),
        );
    }
    f
}

/// Wall-clock time: the RTC's seconds read once at boot, advanced by the generic timer (which
/// gives milliseconds and never goes backwards, whatever the RTC does later).
#[derive(Debug)]
pub(crate) struct BoardClock {
    epoch_ms: i64,
    base_count: u64,
    frequency: u64,
}

impl BoardClock {
    /// Reads the RTC and the counter now.
    pub(crate) fn new() -> Self {
        // SAFETY: RTCDR is the PL031's 32-bit read-only data register at a fixed device
        // address of the `virt` board (MMU off: the physical address is used as is); reading
        // it has no side effect.
        let seconds = unsafe { core::ptr::read_volatile(PL031_RTCDR as *const u32) };
        BoardClock {
            epoch_ms: i64::from(seconds).saturating_mul(1000),
            base_count: counter(),
            frequency: counter_frequency(),
        }
    }

    /// Counter ticks per second (for the summary).
    pub(crate) fn frequency(&self) -> u64 {
        self.frequency
    }

    /// Milliseconds since the clock was built.
    pub(crate) fn uptime_ms(&self) -> Option<u64> {
        let ticks = counter().checked_sub(self.base_count)?;
        let ms = u128::from(ticks)
            .checked_mul(1000)?
            .checked_div(u128::from(self.frequency))?;
        u64::try_from(ms).ok()
    }
}

impl Clock for BoardClock {
    fn now_ms(&self) -> Option<i64> {
        // An RTC at 0 (not running, or a board without one) is no trustworthy time.
        if self.epoch_ms == 0 {
            return None;
        }
        let since = i64::try_from(self.uptime_ms()?).ok()?;
        self.epoch_ms.checked_add(since)
    }
}
