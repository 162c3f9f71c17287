//! The checks every exported function makes on what C hands it, and the panic boundary.
//!
//! Pointer/length pairs become slices only through these helpers: NULL with a non-zero
//! length, a misaligned pointer or a range past the end of the address space is an error
//! code, never undefined behaviour on our side. What they cannot check (that a non-NULL
//! pointer really points to that many live bytes) is the caller's contract, stated on each
//! function in the header.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{clear_last_error, set_last_error, Failure, TeeCdmStatus};

/// Longest C string (without its NUL) any function reads. A string without a NUL within this
/// many bytes is `TEE_CDM_STATUS_INVALID_ARGUMENT`; the bytes after it are never read.
pub const TEE_CDM_MAX_STRING_LEN: usize = 4096;

/// Runs the body of exported function `function`: a panic is caught and answered
/// `TEE_CDM_STATUS_PANIC`; a failure records its message as the thread's last error; success
/// clears it.
pub(crate) fn guard(
    function: &'static str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> TeeCdmStatus {
    // AssertUnwindSafe: after a caught panic nothing the body touched is used again by this
    // call; the shared state it may have left half-updated is behind mutexes (poisoned: a
    // secure world refuses further calls) or tolerates it (normal-world recovers its locks).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_last_error();
            TeeCdmStatus::Ok
        }
        Ok(Err(failure)) => {
            set_last_error(function, &failure.message);
            failure.status
        }
        Err(_) => {
            set_last_error(function, "internal panic caught at the C boundary (a bug)");
            TeeCdmStatus::Panic
        }
    }
}

/// [`guard`] for `tee_cdm_last_error_message`, which must leave the last error as it is.
pub(crate) fn guard_quiet(body: impl FnOnce() -> Result<(), Failure>) -> TeeCdmStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => TeeCdmStatus::Ok,
        Ok(Err(failure)) => failure.status,
        Err(_) => TeeCdmStatus::Panic,
    }
}

/// Checks that `len` elements of `T` from `ptr` fit the rules of `slice::from_raw_parts`
/// (other than validity): at most `isize::MAX` bytes, no wrap past the end of the address
/// space, aligned.
fn check_range<T>(ptr: *const T, len: usize, what: &str) -> Result<(), Failure> {
    let bytes = len
        .checked_mul(size_of::<T>())
        .filter(|&b| isize::try_from(b).is_ok())
        .ok_or_else(|| Failure::invalid(format!("`{what}`: length {len} is too large")))?;
    if ptr.addr().checked_add(bytes).is_none() {
        return Err(Failure::invalid(format!(
            "`{what}`: the range wraps past the end of the address space"
        )));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is misaligned")));
    }
    Ok(())
}

/// Borrows `len` elements at `ptr` (any pointer, even NULL, when `len` is 0).
///
/// # Safety
///
/// If `len` is not 0 and `ptr` is not NULL, `ptr` must be valid for reads of `len` elements
/// for `'a`, and nothing may write them during `'a`.
pub(crate) unsafe fn slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    check_range(ptr, len, what)?;
    // SAFETY: non-NULL, aligned, in range (checked above); valid for reads of `len` elements
    // and not written during 'a by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` bytes at `ptr` mutably (any pointer when `len` is 0).
///
/// # Safety
///
/// If `len` is not 0 and `ptr` is not NULL, `ptr` must be valid for reads and writes of `len`
/// bytes for `'a`, and no other pointer may access them during `'a`.
pub(crate) unsafe fn slice_mut<'a>(
    ptr: *mut u8,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    check_range(ptr.cast_const(), len, what)?;
    // SAFETY: non-NULL, in range (checked above); valid for reads and writes and not accessed
    // through any other pointer during 'a by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Reads a NUL-terminated UTF-8 string of at most [`TEE_CDM_MAX_STRING_LEN`] bytes, reading
/// no byte past its NUL (or past the limit).
///
/// # Safety
///
/// If `ptr` is not NULL it must point to a NUL-terminated string (or to at least
/// `TEE_CDM_MAX_STRING_LEN + 1` readable bytes) that nothing writes during `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    let mut len = 0usize;
    loop {
        if len > TEE_CDM_MAX_STRING_LEN {
            return Err(Failure::invalid(format!(
                "`{what}` has no NUL within {TEE_CDM_MAX_STRING_LEN} bytes"
            )));
        }
        // SAFETY: bytes before the NUL are readable by the caller's contract, and the loop
        // stops at the first NUL; `len` ≤ TEE_CDM_MAX_STRING_LEN, so the offset is in range.
        let byte = unsafe { ptr.add(len).read() };
        if byte == 0 {
            break;
        }
        len = len.saturating_add(1);
    }
    // SAFETY: the `len` bytes before the NUL were just read through this pointer; they stay
    // unchanged during 'a by the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|_| Failure::invalid(format!("`{what}` is not UTF-8")))
}

/// [`c_str`], with NULL meaning `None`.
///
/// # Safety
///
/// As for [`c_str`].
pub(crate) unsafe fn opt_c_str<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: the caller's contract is c_str's.
        unsafe { c_str(ptr, what).map(Some) }
    }
}

/// Writes `value` to the out-parameter `ptr`.
///
/// # Safety
///
/// If `ptr` is not NULL it must be valid for a write of a `T`.
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is misaligned")));
    }
    // SAFETY: non-NULL and aligned (checked), valid for a write by the caller's contract.
    // `write` does not read or drop the old value (which may be uninitialized).
    unsafe { ptr.write(value) };
    Ok(())
}

/// Reads the struct `ptr` points to (a copy: later writes by C do not reach us).
///
/// # Safety
///
/// If `ptr` is not NULL it must point to an initialized `T`.
pub(crate) unsafe fn read<T: Copy>(ptr: *const T, what: &str) -> Result<T, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("`{what}` is misaligned")));
    }
    // SAFETY: non-NULL and aligned (checked), points to an initialized T by the caller's
    // contract; T is Copy, so reading it leaves the caller's value as it was.
    Ok(unsafe { ptr.read() })
}

/// The "needed size" protocol: sets `*needed` to `data.len()`, then copies `data` into
/// `out` if it fits `cap`, otherwise answers `TEE_CDM_STATUS_BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `needed` must be NULL or valid for a write of a `size_t`; `out` must be NULL or valid for
/// writes of `cap` bytes.
pub(crate) unsafe fn copy_out(
    data: &[u8],
    out: *mut u8,
    cap: usize,
    needed: *mut usize,
    what: &str,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract on `needed`.
    unsafe { write(needed, data.len(), "needed")? };
    if data.len() > cap {
        return Err(Failure::new(
            TeeCdmStatus::BufferTooSmall,
            format!("`{what}` holds {cap} bytes, {} needed", data.len()),
        ));
    }
    // SAFETY: the caller's contract on `out`; slice_mut checks NULL, range and alignment.
    let dst = unsafe { slice_mut(out, data.len(), what)? };
    dst.copy_from_slice(data);
    Ok(())
}

/// Whether two byte ranges share a byte (empty ranges share none).
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    if a_len == 0 || b_len == 0 {
        return false;
    }
    let (a, b) = (a.addr(), b.addr());
    // Ranges were checked not to wrap; saturate anyway rather than trust that here.
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_reported() {
        let st = guard("tee_cdm_test", || panic!("boom"));
        assert_eq!(st, TeeCdmStatus::Panic);
        let mut buf = [0u8; 128];
        let mut needed = 0;
        // SAFETY: `buf` holds 128 writable bytes; `needed` is a live local.
        let st = unsafe {
            crate::status::tee_cdm_last_error_message(buf.as_mut_ptr().cast(), 128, &mut needed)
        };
        assert_eq!(st, TeeCdmStatus::Ok);
        let msg = std::ffi::CStr::from_bytes_until_nul(&buf).unwrap();
        assert_eq!(
            msg.to_str().unwrap(),
            "tee_cdm_test: internal panic caught at the C boundary (a bug)"
        );
        // The quiet guard too.
        assert_eq!(guard_quiet(|| panic!("boom")), TeeCdmStatus::Panic);
    }

    #[test]
    fn ranges_past_the_address_space_or_too_long_are_refused() {
        let end: *const u8 = std::ptr::without_provenance(usize::MAX - 7);
        // SAFETY: refused before any access (the range wraps).
        let e = unsafe { slice(end, 16, "x") }.unwrap_err();
        assert_eq!(e.status, TeeCdmStatus::InvalidArgument);
        let p: *const u64 = std::ptr::without_provenance(0x1000);
        // SAFETY: refused before any access (len × 8 overflows).
        let e = unsafe { slice(p, usize::MAX / 4, "x") }.unwrap_err();
        assert_eq!(e.status, TeeCdmStatus::InvalidArgument);
        // SAFETY: refused before any access (more than isize::MAX bytes).
        let e = unsafe { slice_mut(0x1000 as *mut u8, usize::MAX / 2 + 1, "x") }.unwrap_err();
        assert_eq!(e.status, TeeCdmStatus::InvalidArgument);
        // Length 0 never touches the pointer, whatever it is.
        // SAFETY: as above.
        assert!(unsafe { slice(end, 0, "x") }.unwrap().is_empty());
    }

    #[test]
    fn overlap_is_exact_at_the_edges() {
        let buf = [0u8; 64];
        let p = buf.as_ptr();
        assert!(overlaps(p, 10, p.wrapping_add(9), 1));
        assert!(!overlaps(p, 10, p.wrapping_add(10), 5));
        assert!(!overlaps(p.wrapping_add(10), 5, p, 10));
        assert!(overlaps(p, 64, p.wrapping_add(30), 2));
        assert!(!overlaps(p, 0, p, 10), "an empty range overlaps nothing");
    }

    #[test]
    fn strings_are_read_up_to_their_nul_or_the_limit() {
        let mut s = vec![b'x'; TEE_CDM_MAX_STRING_LEN];
        s.push(0);
        // SAFETY: NUL-terminated.
        let read = unsafe { c_str(s.as_ptr().cast(), "s") };
        assert_eq!(read.unwrap().len(), 4096);
        s.insert(0, b'y');
        // SAFETY: NUL-terminated; refused at the limit, before the NUL.
        let e = unsafe { c_str(s.as_ptr().cast(), "s") }.unwrap_err();
        assert_eq!(e.status, TeeCdmStatus::InvalidArgument);
        // SAFETY: NULL is checked.
        assert_eq!(unsafe { opt_c_str(std::ptr::null(), "s") }.unwrap(), None);
    }
}
