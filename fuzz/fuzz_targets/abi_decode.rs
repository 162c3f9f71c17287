//! Decodes arbitrary bytes as a request, and as a response to every opcode.
#![no_main]

use cdm_core::abi::{Opcode, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Request::parse(data);
    for &opcode in Opcode::ALL {
        let _ = Response::parse(opcode, data);
    }
});
