#!/usr/bin/env bash
# Whole-file decryption: `cdm decrypt` (out-of-process and in-process secure world) against
# Shaka Packager's raw-key decryption and `ffmpeg -decryption_key … -c copy`, on the same
# Shaka Packager file, in the same run. A benchmark, not a test: it prints a Markdown table of
# median wall times (each tool run in turn, round after round) and the throughput they give.
#
#   scripts/bench-decrypt.sh [ROUNDS] [SECONDS]     (defaults: 7 rounds, a 60 s clip)
#
# Needs what scripts/install-deps.sh installs (ffmpeg; Shaka Packager via `npm ci` in
# browser-test/). The clip is 1280x720 H.264 at a high bitrate, so that the file is large
# enough (about 100 MiB for 60 s) for start-up costs not to dominate.
set -euo pipefail

ROUNDS=${1:-7}
SECONDS_LONG=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/target/bench-decrypt
KID=0123456789abcdef0123456789abcdef
KEY=2b7e151628aed2a6abf7158809cf4f3c
case "$(uname -m)" in
    aarch64) PACKAGER=$ROOT/browser-test/node_modules/shaka-packager/bin/packager-linux-arm64 ;;
    *) PACKAGER=$ROOT/browser-test/node_modules/shaka-packager/bin/packager-linux-x64 ;;
esac
[ -x "$PACKAGER" ] || { echo "no Shaka Packager at $PACKAGER: run scripts/install-deps.sh" >&2; exit 2; }

mkdir -p "$DIR"
cd "$DIR"
cargo build --quiet --release -p cdm -p secure-world-host --manifest-path "$ROOT/Cargo.toml"
CDM=$ROOT/target/release/cdm

if [ ! -s "clear-$SECONDS_LONG.mp4" ]; then
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=duration=$SECONDS_LONG:size=1280x720:rate=30" \
        -c:v libx264 -preset ultrafast -qp 12 -g 30 -pix_fmt yuv420p "clear-$SECONDS_LONG.mp4"
fi
for scheme in cenc cbcs; do
    if [ ! -s "$scheme-$SECONDS_LONG.mp4" ]; then
        "$PACKAGER" "in=clear-$SECONDS_LONG.mp4,stream=video,output=$scheme-$SECONDS_LONG.mp4" \
            --enable_raw_key_encryption --keys "label=:key_id=$KID:key=$KEY" \
            --protection_scheme "$scheme" --clear_lead 0 --protection_systems CommonSystem \
            --segment_duration 2 --fragment_duration 2 --quiet
    fi
done

# Runs "$@" once; prints its wall time in seconds.
wall() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

packets() {
    ffmpeg -hide_banner -loglevel error -i "$1" -map 0:v -c copy -f framemd5 - | grep -v '^#' | cut -d, -f5-
}

echo "| file | tool | median wall (s) | MiB/s | vs cdm decrypt (out-of-process) |"
echo "|---|---|---|---|---|"
for scheme in cenc cbcs; do
    IN=$scheme-$SECONDS_LONG.mp4
    SIZE=$(stat -c %s "$IN")
    tools=(cdm cdm-in-process shaka-packager ffmpeg)
    declare -A times=()
    for ((r = 0; r < ROUNDS; r++)); do
        for tool in "${tools[@]}"; do
            out=out-$tool-$IN
            rm -f "$out"
            case $tool in
                cdm) t=$(wall "$CDM" decrypt --quiet --key "$KID:$KEY" "$IN" "$out") ;;
                cdm-in-process) t=$(wall "$CDM" decrypt --quiet --in-process --key "$KID:$KEY" "$IN" "$out") ;;
                shaka-packager) t=$(wall "$PACKAGER" "in=$IN,stream=video,output=$out" \
                    --enable_raw_key_decryption --keys "label=:key_id=$KID:key=$KEY" --quiet) ;;
                ffmpeg) t=$(wall ffmpeg -hide_banner -loglevel error -y -decryption_key "$KEY" \
                    -i "$IN" -map 0 -c copy "$out") ;;
            esac
            times[$tool]+="$t "
        done
    done
    # Every tool's output carries the clear source's packets (ffmpeg's cbcs support varies
    # by version: a mismatch is reported, not fatal).
    want=$(packets "clear-$SECONDS_LONG.mp4" | md5sum)
    base=""
    for tool in "${tools[@]}"; do
        m=$(echo "${times[$tool]}" | tr ' ' '\n' | grep . | median)
        [ -n "$base" ] || base=$m
        ok=""
        [ "$(packets "out-$tool-$IN" | md5sum)" = "$want" ] || ok=" (output differs from the clear source)"
        printf '| %s (%d MiB) | %s%s | %.3f | %.0f | %.2f× |\n' "$IN" $((SIZE >> 20)) "$tool" "$ok" "$m" \
            "$(echo "$SIZE / 1048576 / $m" | bc -l)" "$(echo "$m / $base" | bc -l)"
    done
    unset times
done
