//! Errors of the MP4 parser: what was wrong, in which box (by path) and where in the file.

use std::fmt;

/// A four-character code (box type, scheme type, handler type, sample entry format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// The code of `bytes`.
    pub const fn new(bytes: &[u8; 4]) -> Self {
        FourCc(*bytes)
    }
}

impl fmt::Display for FourCc {
    /// Printable ASCII as is, anything else as `\xNN` (box types are attacker-chosen bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{self}'")
    }
}

/// A malformed or unsupported MP4 file: [`Mp4ErrorKind`] says what, `path` names the box
/// (`moof[3]/traf[1]/senc`, `moov/trak[2]/mdia/minf/stbl/stsd/encv[1]/sinf/schi/tenc`; an
/// index counts boxes of that type among their siblings, from 1) and `offset` is the byte of
/// the file where the problem was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path} (file offset {offset}): {kind}")]
pub struct Mp4Error {
    /// The box the problem is in; `file` for the top level.
    pub path: String,
    /// Byte offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub kind: Mp4ErrorKind,
}

impl Mp4Error {
    /// An error in the box at `path`, found at file offset `offset`.
    pub fn new(path: impl Into<String>, offset: u64, kind: Mp4ErrorKind) -> Self {
        Mp4Error {
            path: path.into(),
            offset,
            kind,
        }
    }
}

/// What is wrong with an MP4 file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mp4ErrorKind {
    /// A box or field runs past the end of its parent box or of the file.
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the field or box needs.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// A box size smaller than its own header, or a 64-bit size below 16.
    #[error("box size {size} is invalid (its header alone is {header} bytes)")]
    BadBoxSize {
        /// The size the box claims.
        size: u64,
        /// The length of its header.
        header: u64,
    },
    /// Bytes left over after the fields of a box.
    #[error("{0} unexpected bytes after the last field")]
    TrailingBytes(u64),
    /// A box the structure needs is absent.
    #[error("no '{0}' box")]
    Missing(FourCc),
    /// A box that may appear once appears again.
    #[error("more than one '{0}' box")]
    Duplicate(FourCc),
    /// A full box version this parser does not know.
    #[error("version {version} of '{kind}' is not supported")]
    UnsupportedVersion {
        /// The box type.
        kind: FourCc,
        /// Its version field.
        version: u8,
    },
    /// A field holds a value the specification forbids.
    #[error("{0}")]
    Invalid(String),
    /// Two boxes disagree (sample counts, sizes, indexes).
    #[error("{0}")]
    Inconsistent(String),
    /// A valid construct this tool does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A value overflowed 64-bit arithmetic (offsets, sums of sizes).
    #[error("arithmetic overflow computing {0}")]
    Overflow(&'static str),
    /// A standard box that `mp4-atom` rejected.
    #[error("malformed '{kind}': {message}")]
    Decode {
        /// The box type.
        kind: FourCc,
        /// `mp4-atom`'s error.
        message: String,
    },
    /// A box larger than this tool loads into memory.
    #[error("box of {size} bytes is larger than the {limit} bytes this tool reads into memory")]
    TooLarge {
        /// The box size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}
