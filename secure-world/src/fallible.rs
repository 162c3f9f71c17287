//! Fallible copies: running out of memory is an error the caller answers, never an abort.

use alloc::collections::TryReserveError;
use alloc::string::String;
use alloc::vec::Vec;

/// A copy of `items` in a vector of exactly their length.
pub(crate) fn try_copy<T: Copy>(items: &[T]) -> Result<Vec<T>, TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(items.len())?;
    v.extend_from_slice(items);
    Ok(v)
}

/// A copy of `s` in a string of exactly its length.
pub(crate) fn try_string(s: &str) -> Result<String, TryReserveError> {
    let mut copy = String::new();
    copy.try_reserve_exact(s.len())?;
    copy.push_str(s);
    Ok(copy)
}
