# Idempotent installs shared by scripts/install-deps.sh and scripts/browser-test.sh, which
# source this file (after defining `step`, which prints a progress line).

# apt_install_missing PACKAGE...: installs the Debian packages that are not installed yet.
apt_install_missing() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]})); then
        step "apt-get install ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
        step "apt packages already installed ($*)"
    fi
}

# npm_ci_browser_test REPO: the npm packages of REPO/browser-test/ (pinned by its lock file).
# npm ci wipes node_modules first; skip it when node_modules was installed by `npm ci` from
# this very lock file (a copy of it is left in node_modules as a stamp).
npm_ci_browser_test() {
    local dir="$1/browser-test"
    local stamp="$dir/node_modules/.installed-package-lock.json"
    if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
        step "npm ci (browser-test/: shaka-packager, playwright-core)"
        (cd "$dir" && npm ci --no-audit --no-fund)
        cp "$dir/package-lock.json" "$stamp"
    else
        step "npm packages already installed (browser-test/node_modules)"
    fi
}
