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

apt_pkgs=(chromium ffmpeg)
missing=()
for p in "${apt_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    step "apt packages already installed"
fi

# npm ci wipes node_modules first; skip it when node_modules was installed by `npm ci` from
# this very lock file (a copy of it is left in node_modules as a stamp).
stamp=browser-test/node_modules/.installed-package-lock.json
if ! cmp -s browser-test/package-lock.json "$stamp" 2>/dev/null; then
    step "npm ci (browser-test/)"
    (cd browser-test && npm ci --no-audit --no-fund)
    cp browser-test/package-lock.json "$stamp"
else
    step "node modules already installed"
fi

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
