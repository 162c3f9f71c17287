//! Parses arbitrary bytes as an MP4 file with `cdm`'s parser (the hand-written box walker and
//! CENC boxes, and the mp4-atom decoders it calls), builds the `cdm inspect` report, and
//! writes the clear file `cdm decrypt` would write (the hand-written box rewriter and offset
//! fixups; samples are "decrypted" by a callback that leaves them as they are).
//! Seeds: tiny Shaka Packager (cbcs, cenc, clear lead) and ffmpeg (non-fragmented cenc) files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(movie) = cdm::mp4::parse_bytes(data) {
        let _ = cdm::inspect::report("fuzz", &movie);
        let mut out = Vec::new();
        let _ = cdm::clear::write_clear(&data, &movie, &mut out, &mut |_, _| Ok(()), &mut |_| {});
    }
});
