#!/usr/bin/env bash
# Browser interoperability check: headless Chromium (Debian's package, driven by
# playwright-core) plays Clear Key protected fragmented MP4 through MSE + EME with its own
# `org.w3.clearkey` CDM, and gets the license from our license server (browser-test/run.mjs).
#
# Installs what is missing (apt: chromium, ffmpeg; npm ci in browser-test/), builds
# license-server, makes the media once (kept in browser-test/out/), runs the test.
# Honours CARGO_TARGET_DIR; LICENSE_SERVER_BIN overrides the server binary (no build then).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

step() { printf '\n==> browser-test: %s\n' "$*"; }

# shellcheck source=scripts/deps.sh
source "$repo/scripts/deps.sh"
apt_install_missing chromium ffmpeg
npm_ci_browser_test "$repo"

if [[ -z "${LICENSE_SERVER_BIN:-}" ]]; then
    step "cargo build --release -p license-server"
    cargo build --release -p license-server
    LICENSE_SERVER_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/license-server"
fi
export LICENSE_SERVER_BIN

step "make media (browser-test/out/)"
bash browser-test/make-media.sh

step "node run.mjs (Chromium $(chromium --version 2>/dev/null | awk '{print $2}'))"
node browser-test/run.mjs
