//! Parses arbitrary bytes as every Clear Key message format.
#![no_main]

use cdm_core::clearkey::{parse_license, parse_license_release, parse_license_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_license(data);
    let _ = parse_license_request(data);
    let _ = parse_license_release(data);
});
