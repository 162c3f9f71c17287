//! A strict, borrowing reader over the body of one box: every read is bounds-checked, every
//! failure names the box path and the file offset of the field that did not fit.

use super::error::{Mp4Error, Mp4ErrorKind};

/// Reads big-endian fields from `data`, the bytes of a box body that starts at file offset
/// `base`.
pub(crate) struct Reader<'a, 'p> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    path: &'p str,
}

impl<'a, 'p> Reader<'a, 'p> {
    /// A reader over `data`, found at file offset `base`, inside the box at `path`.
    pub(crate) fn new(data: &'a [u8], base: u64, path: &'p str) -> Self {
        Reader {
            data,
            pos: 0,
            base,
            path,
        }
    }

    /// The file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(to_u64(self.pos))
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// An error at the current position.
    pub(crate) fn error(&self, kind: Mp4ErrorKind) -> Mp4Error {
        Mp4Error::new(self.path, self.offset(), kind)
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        match rest.split_at_checked(n) {
            Some((head, _)) => {
                self.pos = self.pos.saturating_add(n);
                Ok(head)
            }
            None => Err(self.error(Mp4ErrorKind::Truncated {
                needed: to_u64(n),
                available: to_u64(rest.len()),
            })),
        }
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Mp4Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A `u8`.
    pub(crate) fn u8(&mut self) -> Result<u8, Mp4Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// A big-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, Mp4Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, Mp4Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, Mp4Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// The full box header fields: version (8 bits) and flags (24 bits).
    pub(crate) fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let word = self.u32()?;
        let [version, ..] = word.to_be_bytes();
        Ok((version, word & 0x00ff_ffff))
    }

    /// Fails unless every byte was read (ISO/IEC 14496-12 boxes have no slack).
    pub(crate) fn finish(&self) -> Result<(), Mp4Error> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(Mp4ErrorKind::TrailingBytes(to_u64(n)))),
        }
    }
}

/// `usize` to `u64` (lossless on every platform Rust supports).
pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_reports_offsets() {
        let data = [0, 1, 0, 0, 0, 2, 9];
        let mut r = Reader::new(&data, 100, "moov/x");
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.offset(), 106);
        let e = r.u16().unwrap_err();
        assert_eq!(e.offset, 106);
        assert_eq!(e.path, "moov/x");
        assert_eq!(
            e.kind,
            Mp4ErrorKind::Truncated {
                needed: 2,
                available: 1
            }
        );
        assert_eq!(r.finish().unwrap_err().kind, Mp4ErrorKind::TrailingBytes(1));
        assert_eq!(r.u8().unwrap(), 9);
        r.finish().unwrap();
    }
}
