#!/usr/bin/env bash
# Installs what scripts/test-all.sh needs on a fresh Debian bookworm machine (run as root).
# Idempotent: every step checks first and is skipped when already satisfied, so a re-run is fast.
set -euo pipefail

step() { printf '\n==> install-deps: %s\n' "$*"; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
source "$repo/scripts/deps.sh"

# --- Debian packages: aarch64 cross linker + libc, qemu-user, OpenSSL headers (benches peer),
# ffmpeg (the cdm tests make their media with it), npm if missing (Shaka Packager below) ---
apt_pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libssl-dev pkg-config ffmpeg)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)
# qemu-system-aarch64 boots the bare-metal firmware image (firmware/qemu-virt).
apt_pkgs+=(qemu-system-arm)
# Headless Chromium: the browser checks (scripts/browser-test.sh, scripts/chromium-cdm-test.sh).
apt_pkgs+=(chromium)
apt_install_missing "${apt_pkgs[@]}"

# --- Rust targets and components (stable is enough; nightly is not required) ---
targets=(aarch64-unknown-linux-gnu aarch64-unknown-none thumbv7em-none-eabihf)
installed_targets=$(rustup target list --installed)
want_targets=()
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed_targets" || want_targets+=("$t")
done
if ((${#want_targets[@]})); then
    step "rustup target add ${want_targets[*]}"
    rustup target add "${want_targets[@]}"
else
    step "rust targets already installed"
fi

installed_components=$(rustup component list --installed)
want_components=()
for c in clippy rustfmt; do
    grep -q "^$c" <<<"$installed_components" || want_components+=("$c")
done
if ((${#want_components[@]})); then
    step "rustup component add ${want_components[*]}"
    rustup component add "${want_components[@]}"
else
    step "rust components already installed"
fi

# --- cargo-fuzz (run with `-s none` on stable) ---
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked
else
    step "cargo-fuzz already installed ($(cargo fuzz --version))"
fi

# --- npm packages of browser-test/ (pinned by its lock file): Shaka Packager 3.4.2, whose
# binary the cdm tests use to package their media, and playwright-core for the browser check.
npm_ci_browser_test "$repo"

# --- The C compiler for cdm-ffi's C example: gcc with its AddressSanitizer and UBSan runtimes
# (libasan8 and libubsan1 come with gcc on bookworm) and the C library headers ---
apt_install_missing gcc libc6-dev

step "done"
