//! The strict byte reader and writer of the protocol.
//!
//! All integers are little-endian. The [`Reader`] hands out fields with `split_at_checked`, so
//! no read can index out of bounds; [`Reader::finish`] turns leftover bytes into
//! [`Error::TrailingBytes`]. The [`Writer`] reserves memory fallibly.

use alloc::vec::Vec;

use crate::Error;

/// A cursor over untrusted bytes.
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
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(Error::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Error::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a `u8` that must be zero (a reserved byte).
    pub fn reserved_u8(&mut self) -> Result<(), Error> {
        match self.u8()? {
            0 => Ok(()),
            _ => Err(Error::InvalidField("reserved")),
        }
    }

    /// Reads a `u16` length prefix and that many bytes; the length must be ≤ `max`.
    pub fn bytes_u16(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(Error::TooLarge);
        }
        self.take(n)
    }

    /// Reads a `u32` length prefix and that many bytes; the length must be ≤ `max`.
    pub fn bytes_u32(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| Error::TooLarge)?;
        if n > max {
            return Err(Error::TooLarge);
        }
        self.take(n)
    }

    /// Bytes not read yet.
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Ends reading: any byte left is an error.
    pub fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
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
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out
            .try_reserve(bytes.len())
            .map_err(|_| Error::OutOfMemory)?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> Result<(), Error> {
        self.put(&[v])
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), Error> {
        self.put(&v.to_le_bytes())
    }

    /// Appends a `u16` length prefix and the bytes (length ≤ `max`).
    pub fn bytes_u16(&mut self, bytes: &[u8], max: usize) -> Result<(), Error> {
        if bytes.len() > max {
            return Err(Error::TooLarge);
        }
        self.u16(u16::try_from(bytes.len()).map_err(|_| Error::TooLarge)?)?;
        self.put(bytes)
    }

    /// Appends a `u32` length prefix and the bytes (length ≤ `max`).
    pub fn bytes_u32(&mut self, bytes: &[u8], max: usize) -> Result<(), Error> {
        if bytes.len() > max {
            return Err(Error::TooLarge);
        }
        self.u32(u32::try_from(bytes.len()).map_err(|_| Error::TooLarge)?)?;
        self.put(bytes)
    }

    /// Bytes written so far (the whole buffer, including what was there before).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}
