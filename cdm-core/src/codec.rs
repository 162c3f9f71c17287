//! The one strict byte reader and writer of the crate: ABI payloads (little-endian) and init
//! data boxes (big-endian) are read with the same [`Reader`].
//!
//! The [`Reader`] borrows its input and hands out fields with `split_at_checked`, so no
//! read can index out of bounds; [`Reader::finish`] turns leftover bytes into
//! [`AbiError::TrailingBytes`]. The [`Writer`] appends to a caller's `Vec` with fallible
//! reservation, so the secure world never aborts on allocation failure.

use alloc::vec::Vec;

use crate::abi::AbiError;

/// A cursor over an untrusted payload.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], AbiError> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(AbiError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], AbiError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(AbiError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, AbiError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, AbiError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, AbiError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, AbiError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a big-endian `u32` (ISO BMFF boxes).
    pub fn u32_be(&mut self) -> Result<u32, AbiError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64` (ISO BMFF boxes).
    pub fn u64_be(&mut self) -> Result<u64, AbiError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a little-endian `i64`.
    pub fn i64(&mut self) -> Result<i64, AbiError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Reads `n` reserved bytes, which must all be zero.
    pub fn reserved(&mut self, n: usize) -> Result<(), AbiError> {
        if self.take(n)?.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(AbiError::InvalidField("reserved"))
        }
    }

    /// Reads a `u8` length prefix and that many bytes; the length must be ≤ `max`.
    pub fn bytes_u8(&mut self, max: usize) -> Result<&'a [u8], AbiError> {
        let n = usize::from(self.u8()?);
        self.bounded(n, max)
    }

    /// Reads a `u16` length prefix and that many bytes; the length must be ≤ `max`.
    pub fn bytes_u16(&mut self, max: usize) -> Result<&'a [u8], AbiError> {
        let n = usize::from(self.u16()?);
        self.bounded(n, max)
    }

    /// Reads a `u32` length prefix and that many bytes; the length must be ≤ `max`.
    pub fn bytes_u32(&mut self, max: usize) -> Result<&'a [u8], AbiError> {
        let n = usize::try_from(self.u32()?).map_err(|_| AbiError::PayloadTooLarge)?;
        self.bounded(n, max)
    }

    fn bounded(&mut self, n: usize, max: usize) -> Result<&'a [u8], AbiError> {
        if n > max {
            return Err(AbiError::PayloadTooLarge);
        }
        self.take(n)
    }

    /// Bytes not read yet.
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Ends reading: any byte left is an error.
    pub fn finish(self) -> Result<(), AbiError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(AbiError::TrailingBytes)
        }
    }
}

/// Appends little-endian fields to a buffer, reserving memory fallibly.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// Appends raw bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), AbiError> {
        self.out
            .try_reserve(bytes.len())
            .map_err(|_| AbiError::OutOfMemory)?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> Result<(), AbiError> {
        self.put(&[v])
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), AbiError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), AbiError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), AbiError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian `i64`.
    pub fn i64(&mut self, v: i64) -> Result<(), AbiError> {
        self.put(&v.to_le_bytes())
    }

    /// Appends `n` zero bytes.
    pub fn reserved(&mut self, n: usize) -> Result<(), AbiError> {
        self.out.try_reserve(n).map_err(|_| AbiError::OutOfMemory)?;
        self.out.resize(self.out.len().saturating_add(n), 0);
        Ok(())
    }

    /// Appends a `u8` length prefix and the bytes (length ≤ `max`, which must fit a `u8`).
    pub fn bytes_u8(&mut self, bytes: &[u8], max: usize) -> Result<(), AbiError> {
        let n = bounded_len(bytes, max)?;
        self.u8(u8::try_from(n).map_err(|_| AbiError::PayloadTooLarge)?)?;
        self.put(bytes)
    }

    /// Appends a `u16` length prefix and the bytes (length ≤ `max`).
    pub fn bytes_u16(&mut self, bytes: &[u8], max: usize) -> Result<(), AbiError> {
        let n = bounded_len(bytes, max)?;
        self.u16(u16::try_from(n).map_err(|_| AbiError::PayloadTooLarge)?)?;
        self.put(bytes)
    }

    /// Appends a `u32` length prefix and the bytes (length ≤ `max`).
    pub fn bytes_u32(&mut self, bytes: &[u8], max: usize) -> Result<(), AbiError> {
        let n = bounded_len(bytes, max)?;
        self.u32(u32::try_from(n).map_err(|_| AbiError::PayloadTooLarge)?)?;
        self.put(bytes)
    }
}

fn bounded_len(bytes: &[u8], max: usize) -> Result<usize, AbiError> {
    if bytes.len() > max {
        Err(AbiError::PayloadTooLarge)
    } else {
        Ok(bytes.len())
    }
}

/// A payload with a strict codec: [`Payload::decode`] reads exactly its fields (the caller
/// checks that nothing trails), [`Payload::encode`] appends them. Every ABI request and
/// response payload implements it.
pub trait Payload<'a>: Sized {
    /// Reads the fields; borrows variable-length fields from the input where it can.
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError>;
    /// Appends the fields.
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError>;
}

/// Payloads with no fields.
macro_rules! empty_payload {
    ($($t:ty),+ $(,)?) => {$(
        impl<'a> $crate::codec::Payload<'a> for $t {
            fn decode(_: &mut $crate::codec::Reader<'a>) -> Result<Self, $crate::abi::AbiError> {
                Ok(Self)
            }
            fn encode(&self, _: &mut $crate::codec::Writer<'_>) -> Result<(), $crate::abi::AbiError> {
                Ok(())
            }
        }
    )+};
}
pub(crate) use empty_payload;
