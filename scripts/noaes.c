/*
 * LD_PRELOAD shim for aarch64 Linux guests under qemu-user: makes the process believe the CPU
 * has no ARMv8 Cryptography Extensions, so the test suite can exercise the portable fallback.
 *
 * Why: QEMU 7.2 has no aarch64 CPU model without AES, and no property turns it off. Feature
 * detection in Rust (cpufeatures, std::arch::is_aarch64_feature_detected!) reads AT_HWCAP via
 * getauxval(3); this shim wraps getauxval and clears the AES, PMULL, SHA1 and SHA2 bits of
 * AT_HWCAP. The instructions still execute if used anyway; only detection is affected.
 *
 * Built by scripts/test-all.sh:
 *   aarch64-linux-gnu-gcc -O2 -shared -fPIC -o target/noaes.so scripts/noaes.c -ldl
 * Used as the cargo runner:
 *   qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_PRELOAD=$PWD/target/noaes.so
 */
#define _GNU_SOURCE
#include <asm/hwcap.h>
#include <dlfcn.h>
#include <sys/auxv.h>

typedef unsigned long (*getauxval_fn)(unsigned long);

static const unsigned long crypto_hwcaps = HWCAP_AES | HWCAP_PMULL | HWCAP_SHA1 | HWCAP_SHA2;

unsigned long getauxval(unsigned long type)
{
    static getauxval_fn next;
    if (next == 0) {
        next = (getauxval_fn)dlsym(RTLD_NEXT, "getauxval");
    }
    unsigned long value = next ? next(type) : 0;
    if (type == AT_HWCAP) {
        value &= ~crypto_hwcaps;
    }
    return value;
}
