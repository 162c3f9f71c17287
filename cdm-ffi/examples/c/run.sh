#!/usr/bin/env bash
# Builds the C ABI's static library (libtee_cdm.a) and the secure-world-host binary, compiles
# tee_cdm_example.c with the system C compiler (-std=c11 -Wall -Wextra -Werror, with
# AddressSanitizer and UBSan where the compiler supports them) and runs it: the Clear Key flow
# through the host C API (in process and against a secure-world-host process) and the
# secure-world C API with C callbacks. Exits non-zero on any failure.
#
# Environment: CC (default cc), CARGO_TARGET_DIR (default ./target), TEE_CDM_EXAMPLE_NO_SAN=1
# to build without sanitizers.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$repo"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
cc=${CC:-cc}

cargo build -p cdm-ffi -p secure-world-host
lib="$target_dir/debug/libtee_cdm.a"
host="$target_dir/debug/secure-world-host"

# The system libraries a Rust static library needs on Linux/glibc: what
# `cargo rustc -p cdm-ffi --lib --crate-type staticlib -- --print native-static-libs` prints.
native_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

out="$target_dir/c-example"
mkdir -p "$out"

sanitize=()
if [[ "${TEE_CDM_EXAMPLE_NO_SAN:-0}" != 1 ]]; then
    probe="$out/probe.c"
    echo 'int main(void) { return 0; }' >"$probe"
    if "$cc" -fsanitize=address,undefined "$probe" -o "$out/probe" >/dev/null 2>&1 \
        && "$out/probe"; then
        # Any UB report is fatal; keep frame pointers for readable ASan stacks.
        sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    else
        echo "run.sh: $cc cannot build with -fsanitize=address,undefined; building without" >&2
    fi
fi

"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -g -O1 "${sanitize[@]}" \
    -I cdm-ffi/include cdm-ffi/examples/c/tee_cdm_example.c \
    "$lib" "${native_libs[@]}" -o "$out/tee_cdm_example"
echo "run.sh: built $out/tee_cdm_example${sanitize:+ (AddressSanitizer + UBSan)}"

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$out/tee_cdm_example" "$host"
