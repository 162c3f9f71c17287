//! Parses arbitrary bytes as init data of every type.
#![no_main]

use cdm_core::{parse_init_data, InitDataType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ty in [InitDataType::Cenc, InitDataType::KeyIds, InitDataType::Webm] {
        let _ = parse_init_data(ty, data);
    }
});
