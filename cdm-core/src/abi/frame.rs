//! The socket framing of the ABI (`std` only): how the message ABI and the shared sample
//! travel between a host process and a `secure-world-host` process over a stream.
//!
//! | direction | frame |
//! |---|---|
//! | client → host | `u32` request length, request message, `u32` sample length, sample |
//! | host → client | `u32` response length, response message, `u32` sample length, sample |
//!
//! Lengths are little-endian. The host sends the sample back only after a `Decrypt` that
//! succeeded in place ([`returns_sample`]); every other reply carries a zero-length sample, so
//! secure-buffer output and failures cost no copy back. Both sides bound every length before
//! allocating: a message is at most [`MAX_MESSAGE_FRAME`] bytes, a sample at most
//! [`MAX_SAMPLE_LEN`], and a returned sample is exactly as long as the one sent. A frame that
//! breaks a bound ends the connection (the stream cannot be resynchronized).

use alloc::vec::Vec;
use std::io::{self, Read, Write};

use super::header::HEADER_LEN;
use super::limits::{MAX_PAYLOAD_LEN, MAX_SAMPLE_LEN};
use super::response::DecryptOutput;
use super::table::parse_response;
use super::DecryptRequest;

/// Largest message (request or response) a frame may carry.
pub const MAX_MESSAGE_FRAME: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

/// Largest sample a frame may carry.
pub const MAX_SAMPLE_FRAME: usize = MAX_SAMPLE_LEN;

/// Whether the reply to a request carries the sample back: exactly when `response` answers a
/// `Decrypt` with success and in-place output.
pub fn returns_sample(response: &[u8]) -> bool {
    // Any other opcode is `UnexpectedResponse`, an error status `Ok((_, Err(_)))`.
    matches!(
        parse_response::<DecryptRequest<'_>>(response),
        Ok((_, Ok(DecryptOutput::InPlace)))
    )
}

/// Writes one length-prefixed chunk.
pub fn write_chunk(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk over 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)
}

/// Reads the length prefix of a chunk and checks it against `max` before anything is
/// allocated.
pub fn read_len(r: &mut impl Read, max: usize) -> io::Result<usize> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = usize::try_from(u32::from_le_bytes(len))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "length overflow"))?;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            std::format!("chunk of {len} bytes exceeds the limit of {max}"),
        ));
    }
    Ok(len)
}

/// Reads one length-prefixed chunk of at most `max` bytes into `out`, replacing its
/// contents. The length is checked before anything is allocated. If `out` must grow, its
/// old contents are wiped first, so a reallocation never leaves a copy (of a license, say)
/// in freed memory.
pub fn read_chunk(r: &mut impl Read, max: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let len = read_len(r, max)?;
    if out.capacity() < len {
        zeroize::Zeroize::zeroize(out);
        *out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    }
    out.clear();
    out.resize(len, 0);
    r.read_exact(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_chunk_rejects_oversize_length_before_allocating() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        let err = read_chunk(&mut frame.as_slice(), 100, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn chunks_round_trip_and_truncation_is_eof() {
        let mut buf = Vec::new();
        write_chunk(&mut buf, b"hello").unwrap();
        let mut out = Vec::new();
        read_chunk(&mut buf.as_slice(), 5, &mut out).unwrap();
        assert_eq!(out, b"hello");
        let err = read_chunk(&mut buf.get(..7).unwrap(), 5, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_chunk(&mut buf.as_slice(), 4, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
