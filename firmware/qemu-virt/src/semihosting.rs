//! Ending the run through Arm semihosting, with an exit status QEMU passes on.
//!
//! With `-semihosting`, QEMU traps `HLT #0xF000` (the A64 semihosting call). Operation
//! `SYS_EXIT_EXTENDED` (0x20) takes in `x1` the address of two 64-bit words: the reason,
//! `ADP_Stopped_ApplicationExit` (0x20026), and the exit status; QEMU then exits with that
//! status (Arm "Semihosting for AArch32 and AArch64", §6.5 SYS_EXIT_EXTENDED).
#![allow(unsafe_code)]

/// Semihosting operation number of `SYS_EXIT_EXTENDED`.
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// Reason code `ADP_Stopped_ApplicationExit`.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// Ends the emulation with `status` (0 = success). Never returns: if no debugger or QEMU
/// answers the call (an image run without `-semihosting` would trap instead), the core spins
/// forever.
pub(crate) fn exit(status: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(status)];
    // SAFETY: the semihosting call reads the two words of `block`, which is alive and
    // initialised for the duration of the call, and writes only `x0` (its return value,
    // declared clobbered). Nothing else of the program's state is touched.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            inout("x0") SYS_EXIT_EXTENDED => _,
            in("x1") block.as_ptr(),
            options(nostack, readonly),
        );
    }
    loop {
        core::hint::spin_loop();
    }
}
