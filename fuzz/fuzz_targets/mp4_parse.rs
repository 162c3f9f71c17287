//! Parses arbitrary bytes as an MP4 file with `cdm`'s parser (the hand-written box walker and
//! CENC boxes, and the mp4-atom decoders it calls), then builds the `cdm inspect` report.
//! Seeds: tiny Shaka Packager (cbcs, cenc, clear lead) and ffmpeg (non-fragmented cenc) files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(movie) = cdm::mp4::parse_bytes(data) {
        let _ = cdm::inspect::report("fuzz", &movie);
    }
});
