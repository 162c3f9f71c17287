#!/usr/bin/env bash
# The one command that runs everything CI checks, in order, stopping at the first failure:
# formatting, lints, host tests, no_std builds for bare-metal targets, the bare-metal firmware
# images booted under QEMU (aarch64 and Cortex-M4F), the whole test suite on
# aarch64 under qemu-user with and without the ARMv8 crypto extensions, benchmark builds, a
# real browser (headless Chromium) against the license server, and the fuzz targets (built
# and run briefly).
#
# It first runs scripts/install-deps.sh (idempotent; a fraction of a second when everything is
# present) unless TEST_ALL_SKIP_INSTALL=1. Honours CARGO_TARGET_DIR if set.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

if [[ "${TEST_ALL_SKIP_INSTALL:-0}" != 1 ]]; then
    bash scripts/install-deps.sh
fi

step_no=0
step() {
    step_no=$((step_no + 1))
    printf '\n========== [%d] %s ==========\n' "$step_no" "$*"
}

# The benches crate links the host's OpenSSL (its peer) and is not cross-compiled; its unit
# tests run natively above.
# Tests that cannot run under qemu-user (e.g. they spawn host processes) are skipped in the
# aarch64 runs. One `--skip NAME` pair per test, passed to every test binary.
# normal-world names every test that spawns the secure-world host process `socket_*`;
# license-server and cdm name every test that starts their executable `binary_*`; cdm names
# the tests that run ffmpeg and Shaka Packager (host executables) to make media `media_*`.
QEMU_TEST_SKIP=(--skip socket_ --skip binary_ --skip media_)

# Cross toolchain for aarch64 Linux. qemu-user passes the host environment through to the
# guest program, so TEE_CDM_EXPECT_ENGINE reaches the tests (hal/tests/expect_engine.rs).
# The runner is set here rather than in .cargo/config.toml, where it would break Miri.
aarch64_linker=aarch64-linux-gnu-gcc
qemu_runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"

step "cargo fmt --check"
cargo fmt --all --check

step "normal-world links no trusted code unless asked (cargo tree, in-process feature off)"
if cargo tree -p normal-world --no-default-features -e normal --prefix none | grep -E '^(secure-world|hal) '; then
    echo "normal-world depends on secure-world or hal without the in-process feature" >&2
    exit 1
fi

step "cargo clippy (host)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy -p hal (aarch64: the ArmCe engine)"
cargo clippy -p hal --all-targets --target aarch64-unknown-linux-gnu -- -D warnings

step "cargo doc (docs on every public item, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
# What a player developer sees: normal-world with its default features (no in-process world).
RUSTDOCFLAGS="-D warnings" cargo doc -p normal-world --no-deps

step "cargo test (host)"
cargo test --workspace -- --skip socket_crash_consistency_at_every_storage_step

# Separate so that its report (the number of kill points) is printed.
step "crash consistency: host killed (SIGKILL) at every durable storage step"
cargo test -p secure-world-host --test crash_host -- --exact --nocapture \
    socket_crash_consistency_at_every_storage_step

step "no_std build: aarch64-unknown-none (+aes: ArmCe selected at build time)"
CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUSTFLAGS="-C target-feature=+aes" \
    cargo build -p cdm-core -p hal -p secure-world -p protected-license --no-default-features \
    --target aarch64-unknown-none

step "no_std build: thumbv7em-none-eabihf (Portable engine only)"
cargo build -p cdm-core -p hal -p secure-world -p protected-license --no-default-features \
    --target thumbv7em-none-eabihf

# The bare-metal images (firmware/: qemu-virt for aarch64 with the armce engine, mps2-an386
# for a Cortex-M4F with the portable one, and the checks they share in selftest). Each is its
# own workspace (own rustflags and linker scripts); they share one target directory. Booted
# under QEMU, an image runs the known-answer tests and a Clear Key session, prints one summary
# line on its UART and exits through semihosting: 0 only if everything passed. Both the status
# and the line are checked.
fw_target="${CARGO_TARGET_DIR:-target}"
[[ "$fw_target" == /* ]] || fw_target="$repo/$fw_target"
fw_target="$fw_target/firmware"
fw_images=(qemu-virt mps2-an386)

step "firmware: fmt and clippy (firmware/selftest, ${fw_images[*]})"
for d in selftest "${fw_images[@]}"; do
    (cd "$repo/firmware/$d" && cargo fmt --check &&
        CARGO_TARGET_DIR="$fw_target" cargo clippy --release -- -D warnings)
done

step "firmware: release builds (aarch64-unknown-none +aes, thumbv7em-none-eabihf)"
for d in "${fw_images[@]}"; do
    (cd "$repo/firmware/$d" && CARGO_TARGET_DIR="$fw_target" cargo build --release)
done

# boot_firmware NAME ENGINE QEMU_ARGS...: boots an image, shows its output, checks it.
boot_firmware() {
    local name=$1 engine=$2 log="$fw_target/$1.boot.log" status=0
    shift 2
    timeout 120 "$@" </dev/null >"$log" 2>&1 || status=$?
    tr -d '\r' <"$log"
    local summary="^tee-cdm firmware: [0-9]+ known-answer tests passed, Clear Key session ok \\(cenc, cbcs\\), engine $engine\$"
    if [[ $status -ne 0 ]] || ! tr -d '\r' <"$log" | grep -Eq "$summary"; then
        echo "firmware image $name failed (exit status $status, or no passing summary line)" >&2
        exit 1
    fi
}

step "firmware: boot qemu-virt under qemu-system-aarch64 (-M virt -cpu max)"
boot_firmware qemu-virt armce qemu-system-aarch64 -M virt -cpu max -nographic -semihosting \
    -net none -kernel "$fw_target/aarch64-unknown-none/release/firmware-qemu-virt"

# (QEMU warns that the board's on-board NIC has no peer: expected with -net none.)
step "firmware: boot mps2-an386 under qemu-system-arm (Cortex-M4F)"
boot_firmware mps2-an386 portable qemu-system-arm -M mps2-an386 -nographic -semihosting \
    -net none -kernel "$fw_target/thumbv7em-none-eabihf/release/firmware-mps2-an386"

step "cargo test on aarch64 under qemu-user (crypto extensions present: expect armce)"
TEE_CDM_EXPECT_ENGINE=armce \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$aarch64_linker" \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$qemu_runner" \
    cargo test --workspace --exclude benches --target aarch64-unknown-linux-gnu -- "${QEMU_TEST_SKIP[@]}"

# The crash-consistency test spawns and kills host processes, which qemu-user cannot exec by
# itself: the test starts them through the runner. A host start costs ~100x more under qemu,
# so every 8th durable storage step is a kill point here (every step in the native run).
step "crash consistency on aarch64 under qemu-user (host killed at every 8th storage step)"
TEE_CDM_HOST_RUNNER="$qemu_runner" TEE_CDM_CRASH_STRIDE=8 \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$aarch64_linker" \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$qemu_runner" \
    cargo test -p secure-world-host --test crash_host --target aarch64-unknown-linux-gnu \
    -- --exact --nocapture socket_crash_consistency_at_every_storage_step

step "cargo test on aarch64 under qemu-user (crypto extensions hidden: expect portable)"
mkdir -p target
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -shared -fPIC \
    -o target/noaes.so scripts/noaes.c -ldl
TEE_CDM_EXPECT_ENGINE=portable \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$aarch64_linker" \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$qemu_runner -E LD_PRELOAD=$repo/target/noaes.so" \
    cargo test --workspace --exclude benches --target aarch64-unknown-linux-gnu -- "${QEMU_TEST_SKIP[@]}"

# The C ABI (cdm-ffi): the header check is a cargo test (also run with the workspace above);
# then the static library is linked into the C example, compiled by the system C compiler with
# -std=c11 -Wall -Wextra -Werror under AddressSanitizer + UBSan, and run: the Clear Key flow
# through the host API (in process and against a secure-world-host process) and the
# secure-world API with C callbacks.
step "C ABI: cdm-ffi header up to date, C example under ASan + UBSan"
cargo test -p cdm-ffi --test header
bash cdm-ffi/examples/c/run.sh

step "cargo bench --no-run"
cargo bench --workspace --no-run

# A smoke run of the flood simulation (a tenth of the viewers; the full table is in
# docs/benchmarks.md): it fails if a player's request count and the license server's differ.
step "flood simulation (--quick)"
cargo run --release -p benches --bin flood -- --quick

# README's first command: the main job (Clear Key online and offline, then the protected key
# system against the reference license server), out of process, every sample verified.
step "main job: cargo run --release -p normal-world --example playback"
cargo run --release -p normal-world --example playback

# Installs chromium and ffmpeg (apt) and the npm packages it needs by itself.
step "browser: headless Chromium plays Clear Key MP4 with a license from license-server"
bash scripts/browser-test.sh

# Chromium loads OUR CDM (chromium-cdm, libtee_cdm_chromium.so) as its library CDM and plays
# cenc and cbcs video through it, the secure world in a secure-world-host process; the CDM's
# count of decrypted samples is checked; a wrong key must fail. About a minute.
step "browser: headless Chromium plays through tee-cdm as its library CDM (cenc, cbcs, wrong key)"
bash scripts/chromium-cdm-test.sh

if [[ -f fuzz/Cargo.toml ]]; then
    # Stable toolchain: no sanitizer (`-s none`); debug assertions on, so arithmetic overflow
    # panics are found. The same flags for build and run, so `run` does not rebuild.
    fuzz_flags=(-s none --debug-assertions)
    fuzz_total_seconds=150

    step "cargo fuzz build"
    cd fuzz
    if ! cargo fuzz build "${fuzz_flags[@]}"; then
        # cargo caches a failed probe of the compiler; forget it and retry allowing the
        # unstable flags cargo-fuzz may pass.
        echo "cargo fuzz build failed on stable; retrying with RUSTC_BOOTSTRAP=1" >&2
        rm -f target/.rustc_info.json
        export RUSTC_BOOTSTRAP=1
        cargo fuzz build "${fuzz_flags[@]}"
    fi

    mapfile -t fuzz_targets < <(cargo fuzz list)
    if ((${#fuzz_targets[@]})); then
        per_target=$((fuzz_total_seconds / ${#fuzz_targets[@]}))
        if ((per_target > 20)); then per_target=20; fi
        if ((per_target < 5)); then per_target=5; fi
        for t in "${fuzz_targets[@]}"; do
            step "cargo fuzz run $t (${per_target}s)"
            # New inputs go to a scratch directory so the committed seed corpus stays as is.
            scratch=$(mktemp -d)
            corpora=("$scratch")
            [[ -d "corpus/$t" ]] && corpora+=("corpus/$t")
            # libFuzzer prints a line per new input: keep its log, show the summary.
            log="$scratch.log"
            if ! cargo fuzz run "${fuzz_flags[@]}" "$t" "${corpora[@]}" -- \
                -max_total_time="$per_target" -print_final_stats=1 >"$log" 2>&1; then
                tail -n 80 "$log"
                echo "fuzz target $t failed (crash input under fuzz/artifacts/$t)" >&2
                exit 1
            fi
            grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" || tail -n 5 "$log"
            rm -rf "$scratch" "$log"
        done
    fi
    cd "$repo"
else
    step "fuzz: no fuzz/Cargo.toml, skipped"
fi

printf '\n========== all %d steps passed ==========\n' "$step_no"
