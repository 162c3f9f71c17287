#!/usr/bin/env bash
# Makes the browser test's media: a 5 s H.264 test pattern (no audio), encrypted by Shaka
# Packager into one fragmented MP4 (init segment + fragments, `cenc` scheme, a common-system
# v1 pssh that lists the KID), which the page appends whole to one MSE SourceBuffer.
#
# The KID and key below are TEST-ONLY values, public in this repository; run.mjs imports the
# same pair into the license server. They protect nothing.
#
# Output: browser-test/out/video.mp4 (`cenc`), out/video-cbcs.mp4 (`cbcs`, 1:9 pattern, constant
# IV; for the tee-cdm mode of run.mjs) and out/clear.mp4. Skipped when both encrypted files
# exist; FORCE=1 remakes them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/out"
packager="$here/node_modules/shaka-packager/bin/packager-linux-x64"

# Keep in step with run.mjs.
KID=${KID:-0123456789abcdef0123456789abcdef}
KEY=${KEY:-2b7e151628aed2a6abf7158809cf4f3c}

if [[ -s "$out/video.mp4" && -s "$out/video-cbcs.mp4" && "${FORCE:-0}" != 1 ]]; then
    echo "make-media: $out/video.mp4 and video-cbcs.mp4 present, not remade (FORCE=1 to remake)"
    exit 0
fi
[[ -x "$packager" ]] || { echo "make-media: $packager missing (run npm ci in browser-test/)" >&2; exit 1; }
mkdir -p "$out"

# Main profile level 3.0 (codec string avc1.4d401e, used by www/app.js); a key frame every
# second (-g 25) so that the fragments start on key frames.
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=duration=5:size=320x240:rate=25 \
    -c:v libx264 -profile:v main -level:v 3.0 -pix_fmt yuv420p -preset veryfast \
    -g 25 -keyint_min 25 -sc_threshold 0 -an \
    "$out/clear.mp4"

# One fragment per second; output= without init_segment= writes a single fragmented file
# (moov with the pssh, then moof/mdat pairs). package SCHEME OUTPUT.
package() {
    "$packager" \
        "in=$out/clear.mp4,stream=video,output=$out/$2.tmp.mp4" \
        --enable_raw_key_encryption \
        --keys "label=:key_id=$KID:key=$KEY" \
        --protection_scheme "$1" \
        --clear_lead 0 \
        --protection_systems CommonSystem \
        --segment_duration 1 --fragment_duration 1 \
        --quiet
    mv "$out/$2.tmp.mp4" "$out/$2.mp4"
    echo "make-media: wrote $out/$2.mp4 ($(stat -c %s "$out/$2.mp4") bytes, $1, KID $KID)"
}
package cenc video
package cbcs video-cbcs
