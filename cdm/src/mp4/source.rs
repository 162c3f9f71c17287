//! Where the bytes come from: a file (read at offsets, never wholly into memory) or a byte
//! slice (tests, fuzzing). The top level of the file is walked box by box; the metadata boxes
//! (`moov`, `moof`, …) are read into memory, media data (`mdat`) and padding are not.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::boxes::{parse_header, BoxHeader};
use super::error::{FourCc, Mp4Error, Mp4ErrorKind};
use super::reader::{to_u64, Reader};

/// The largest top-level box read into memory (a `moov` with the sample tables of hours of
/// media is a few MiB; a `moof` smaller still).
pub const MAX_LOADED_BOX: u64 = 256 << 20;

/// Top-level boxes whose bodies are not read: media data and padding.
const NOT_LOADED: [&[u8; 4]; 4] = [b"mdat", b"free", b"skip", b"wide"];

/// Random access to the bytes of an MP4 file.
pub trait Source {
    /// Length in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`; an error if they are not all there.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        to_u64(<[u8]>::len(self))
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| Some((start, start.checked_add(buf.len())?)))
            .and_then(|(start, end)| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// A file and its length, read with `pread` (no shared cursor).
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// Files read as one: an init segment followed by its media segments. Offsets count from
/// the start of the first file through the others in order.
#[derive(Debug)]
pub struct ConcatSource {
    /// Each file and the offset of its first byte in the whole.
    parts: Vec<(u64, FileSource)>,
    len: u64,
}

impl ConcatSource {
    /// The concatenation of `files`; an error if their total length overflows.
    pub fn new(files: Vec<FileSource>) -> io::Result<Self> {
        let mut parts = Vec::with_capacity(files.len());
        let mut len = 0u64;
        for f in files {
            let start = len;
            len = len
                .checked_add(f.len())
                .ok_or_else(|| io::Error::other("the inputs are longer than 2^64 bytes"))?;
            parts.push((start, f));
        }
        Ok(ConcatSource { parts, len })
    }
}

impl Source for ConcatSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            // The last part that starts at or before `offset`.
            let i = self.parts.partition_point(|(start, _)| *start <= offset);
            let (start, file) = i
                .checked_sub(1)
                .and_then(|i| self.parts.get(i))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            let within = offset.saturating_sub(*start);
            let left = file.len().saturating_sub(within);
            if left == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let (head, rest) = buf.split_at_mut(n);
            file.read_exact_at(within, head)?;
            buf = rest;
            offset = offset.saturating_add(to_u64(n));
        }
        Ok(())
    }
}

/// A failure to read a file: I/O, or bytes that are not a valid MP4 file of the kinds this
/// tool handles.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The operating system failed to read (the file is fine as far as we know).
    #[error("read error at file offset {offset}: {source}")]
    Io {
        /// Where the read was.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is malformed or unsupported.
    #[error(transparent)]
    Mp4(#[from] Mp4Error),
}

/// A top-level box: where it is and, for metadata boxes, its body.
#[derive(Clone, Debug)]
pub struct TopBox {
    /// The header.
    pub header: BoxHeader,
    /// File offset of the box.
    pub offset: u64,
    /// The body, unless it is media data or padding.
    pub body: Option<Vec<u8>>,
}

impl TopBox {
    /// The box type.
    pub fn kind(&self) -> FourCc {
        self.header.kind
    }
}

/// Walks the top level of `src`: every box must fit in the file.
pub fn read_top_level(src: &dyn Source) -> Result<Vec<TopBox>, ReadError> {
    let len = src.len();
    let mut boxes = Vec::new();
    let mut offset = 0u64;
    while offset < len {
        let available = len.saturating_sub(offset);
        // Up to 32 header bytes (64-bit size + uuid); fewer at the end of the file.
        let mut head = [0u8; 32];
        let head_len = usize::try_from(available.min(32)).unwrap_or(32);
        let head = head.get_mut(..head_len).unwrap_or_default();
        src.read_exact_at(offset, head)
            .map_err(|source| ReadError::Io { offset, source })?;
        let mut r = Reader::new(head, offset, "file");
        let header = parse_header(&mut r, available)?;
        let body = if NOT_LOADED.iter().any(|k| **k == header.kind.0) {
            None
        } else {
            if header.body_len() > MAX_LOADED_BOX {
                return Err(Mp4Error::new(
                    header.kind.to_string(),
                    offset,
                    Mp4ErrorKind::TooLarge {
                        size: header.size,
                        limit: MAX_LOADED_BOX,
                    },
                )
                .into());
            }
            let body_len = usize::try_from(header.body_len())
                .map_err(|_| Mp4Error::new("file", offset, Mp4ErrorKind::Overflow("box size")))?;
            let mut body = vec![0u8; body_len];
            let body_offset = offset.saturating_add(header.header_len);
            src.read_exact_at(body_offset, &mut body)
                .map_err(|source| ReadError::Io {
                    offset: body_offset,
                    source,
                })?;
            Some(body)
        };
        boxes.push(TopBox {
            header,
            offset,
            body,
        });
        offset = offset
            .checked_add(header.size)
            .ok_or_else(|| Mp4Error::new("file", offset, Mp4ErrorKind::Overflow("box end")))?;
    }
    Ok(boxes)
}
