//! What both sides' tests use: the thread's last error message and a status check that
//! prints it.
#![allow(dead_code, unreachable_pub)]

use std::ffi::{c_char, CStr};

use tee_cdm::{tee_cdm_last_error_message, TeeCdmStatus};

/// The calling thread's last error message (`tee_cdm_last_error_message` must succeed).
pub fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    let mut needed = 0usize;
    // SAFETY: `buf` holds buf.len() writable bytes; `needed` is a live local.
    let st = unsafe {
        tee_cdm_last_error_message(buf.as_mut_ptr().cast::<c_char>(), buf.len(), &mut needed)
    };
    assert_eq!(st, TeeCdmStatus::Ok);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts `st` is `Ok`, printing the last error message if not.
#[track_caller]
pub fn ok(st: TeeCdmStatus) {
    assert_eq!(st, TeeCdmStatus::Ok, "{}", last_error());
}
