#!/usr/bin/env bash
# Chromium plays Clear Key protected video through OUR CDM: headless Chromium loads
# libtee_cdm_chromium.so as its library CDM (key system org.chromium.externalclearkey, flags
# --enable-features=ExternalClearKeyForTesting --clear-key-cdm-path-for-testing=…), and the
# CDM runs the keys and every decrypt in the secure world, in a secure-world-host process next
# to the library (shared memory). browser-test/run.mjs in its tee-cdm mode asserts playback
# (currentTime, decoded frames) and the CDM's own count of decrypted samples, for cenc and
# cbcs media; then a negative control (a wrong key on the license server) must fail.
#
# TEE_CDM_IN_PROCESS=1 runs the secure world inside Chromium's CDM process instead.
# Needs what scripts/browser-test.sh installs (chromium, ffmpeg, browser-test/node_modules);
# run that first or scripts/install-deps.sh. Honours CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
[[ "$target" == /* ]] || target="$repo/$target"

step() { printf '\n==> chromium-cdm-test: %s\n' "$*"; }

command -v chromium >/dev/null || { echo "chromium missing (scripts/install-deps.sh)" >&2; exit 1; }
[[ -d browser-test/node_modules/playwright-core ]] || {
    echo "browser-test/node_modules missing (scripts/install-deps.sh or scripts/browser-test.sh)" >&2
    exit 1
}

step "cargo build --release -p chromium-cdm -p secure-world-host -p license-server"
cargo build --release -p chromium-cdm -p secure-world-host -p license-server
export TEE_CDM_LIB="$target/release/libtee_cdm_chromium.so"
export LICENSE_SERVER_BIN="$target/release/license-server"
# The CDM finds secure-world-host next to itself (both are in target/release).

bash browser-test/make-media.sh

for scheme in cenc cbcs; do
    step "Chromium + tee-cdm, $scheme"
    SCHEME=$scheme node browser-test/run.mjs
done
step "negative control: a wrong key must not play"
SCHEME=cenc WRONG_KEY=1 node browser-test/run.mjs
