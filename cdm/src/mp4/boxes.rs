//! Box headers and the children of a container box (ISO/IEC 14496-12 §4.2), with the file
//! offset and path of every box kept, so that errors name them and a later rewrite can patch
//! them in place.

use super::error::{FourCc, Mp4Error, Mp4ErrorKind};
use super::reader::{to_u64, Reader};

/// The `uuid` box type, whose header carries a 16-byte extended type.
const UUID: FourCc = FourCc::new(b"uuid");

/// Box types that may repeat among their siblings: their paths carry an index (`trak[2]`).
const INDEXED: [&[u8; 4]; 10] = [
    b"trak", b"moof", b"traf", b"trun", b"pssh", b"mdat", b"sgpd", b"sbgp", b"saiz", b"saio",
];

/// A parsed box header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    /// The box type.
    pub kind: FourCc,
    /// Length of the header (8, 16, or 24/32 with a `uuid` extended type).
    pub header_len: u64,
    /// Size of the whole box, header included.
    pub size: u64,
}

impl BoxHeader {
    /// Size of the body.
    pub fn body_len(&self) -> u64 {
        self.size.saturating_sub(self.header_len)
    }
}

/// Parses a box header from the start of `r`, for a box that may extend over `available`
/// bytes (the rest of its parent, or of the file): size 0 means "to the end" (§4.2), size 1
/// means a 64-bit size follows. The box must fit in `available`.
pub(crate) fn parse_header(r: &mut Reader<'_, '_>, available: u64) -> Result<BoxHeader, Mp4Error> {
    let start = r.offset();
    let size32 = r.u32()?;
    let kind = FourCc(r.array()?);
    let mut header_len: u64 = 8;
    let size = match size32 {
        0 => available,
        1 => {
            header_len = 16;
            r.u64()?
        }
        n => u64::from(n),
    };
    if kind == UUID {
        r.take(16)?;
        header_len = header_len.saturating_add(16);
    }
    if size < header_len {
        return Err(Mp4Error::new(
            kind.to_string(),
            start,
            Mp4ErrorKind::BadBoxSize {
                size,
                header: header_len,
            },
        ));
    }
    if size > available {
        return Err(Mp4Error::new(
            kind.to_string(),
            start,
            Mp4ErrorKind::Truncated {
                needed: size,
                available,
            },
        ));
    }
    Ok(BoxHeader {
        kind,
        header_len,
        size,
    })
}

/// A box held in memory: its header, body, file offset and path.
#[derive(Clone, Debug)]
pub struct BoxRef<'a> {
    /// The header.
    pub header: BoxHeader,
    /// File offset of the first byte of the box (its size field).
    pub offset: u64,
    /// The body (after the header).
    pub body: &'a [u8],
    /// Path from the top level, e.g. `moov/trak[1]/mdia`.
    pub path: String,
}

impl<'a> BoxRef<'a> {
    /// The box type.
    pub fn kind(&self) -> FourCc {
        self.header.kind
    }

    /// File offset of the body.
    pub fn body_offset(&self) -> u64 {
        self.offset.saturating_add(self.header.header_len)
    }

    /// A reader over the whole body.
    pub(crate) fn reader(&self) -> Reader<'a, '_> {
        Reader::new(self.body, self.body_offset(), &self.path)
    }

    /// The boxes in the body, from its start.
    pub fn children(&self) -> Children<'a, '_> {
        Children::new(self.body, self.body_offset(), &self.path, false)
    }

    /// The boxes in the body after the first `skip` bytes (sample entries, `stsd`).
    pub(crate) fn children_after(
        &self,
        skip: usize,
        index_all: bool,
    ) -> Result<Children<'a, '_>, Mp4Error> {
        let mut r = self.reader();
        r.take(skip)?;
        let rest = self.body.get(skip..).unwrap_or_default();
        Ok(Children::new(rest, r.offset(), &self.path, index_all))
    }

    /// An error about this box, at its start.
    pub fn error(&self, kind: Mp4ErrorKind) -> Mp4Error {
        Mp4Error::new(self.path.clone(), self.offset, kind)
    }

    /// Fails if `version`, this full box's version field, is above `max`: the parsers know
    /// only the versions up to it.
    pub(crate) fn check_version(&self, version: u8, max: u8) -> Result<(), Mp4Error> {
        if version > max {
            return Err(self.error(Mp4ErrorKind::UnsupportedVersion {
                kind: self.kind(),
                version,
            }));
        }
        Ok(())
    }
}

/// Names boxes by their path: `parent/kind`, with an index among siblings of the same type
/// for the types that may repeat (or for every box, for sample entries).
#[derive(Clone, Debug, Default)]
pub(crate) struct Paths {
    parent: String,
    index_all: bool,
    seen: Vec<(FourCc, u32)>,
}

impl Paths {
    /// Paths of the children of the box at `parent` (empty for the top level).
    pub(crate) fn new(parent: &str, index_all: bool) -> Self {
        Paths {
            parent: parent.to_string(),
            index_all,
            seen: Vec::new(),
        }
    }

    /// The path of the next child, of type `kind`.
    pub(crate) fn next(&mut self, kind: FourCc) -> String {
        let n = match self.seen.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                self.seen.push((kind, 1));
                1
            }
        };
        let name = if self.index_all || INDEXED.iter().any(|k| **k == kind.0) {
            format!("{kind}[{n}]")
        } else {
            kind.to_string()
        };
        if self.parent.is_empty() {
            name
        } else {
            format!("{}/{name}", self.parent)
        }
    }
}

/// Iterator over the boxes packed in a byte range; stops after the first error.
pub struct Children<'a, 'p> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    parent: &'p str,
    paths: Paths,
    failed: bool,
}

impl<'a, 'p> Children<'a, 'p> {
    /// The boxes of `data`, which starts at file offset `base`, inside the box at `parent`
    /// (empty for the top level). `index_all`: every path gets an index (sample entries).
    pub(crate) fn new(data: &'a [u8], base: u64, parent: &'p str, index_all: bool) -> Self {
        Children {
            data,
            pos: 0,
            base,
            parent,
            paths: Paths::new(parent, index_all),
            failed: false,
        }
    }

    fn next_box(&mut self) -> Result<BoxRef<'a>, Mp4Error> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let offset = self.base.saturating_add(to_u64(self.pos));
        let parent = if self.parent.is_empty() {
            "file"
        } else {
            self.parent
        };
        let mut r = Reader::new(rest, offset, parent);
        let header = parse_header(&mut r, to_u64(rest.len())).map_err(|mut e| {
            if !self.parent.is_empty() {
                e.path = format!("{}/{}", self.parent, e.path);
            }
            e
        })?;
        // Fits in `rest` (checked by parse_header), so these conversions hold.
        let size = usize::try_from(header.size)
            .map_err(|_| Mp4Error::new(parent, offset, Mp4ErrorKind::Overflow("box size")))?;
        let header_len = usize::try_from(header.header_len)
            .map_err(|_| Mp4Error::new(parent, offset, Mp4ErrorKind::Overflow("header size")))?;
        let body = rest.get(header_len..size).ok_or_else(|| {
            Mp4Error::new(
                parent,
                offset,
                Mp4ErrorKind::Truncated {
                    needed: header.size,
                    available: to_u64(rest.len()),
                },
            )
        })?;
        self.pos = self.pos.saturating_add(size);
        Ok(BoxRef {
            header,
            offset,
            body,
            path: self.paths.next(header.kind),
        })
    }
}

impl<'a> Iterator for Children<'a, '_> {
    type Item = Result<BoxRef<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let item = self.next_box();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn children_have_paths_and_offsets() {
        let mut data = boxed(b"trak", &boxed(b"tkhd", &[0; 4]));
        data.extend(boxed(b"trak", &[]));
        data.extend(boxed(b"free", &[1, 2]));
        let kids: Vec<_> = Children::new(&data, 40, "moov", false)
            .collect::<Result<_, _>>()
            .unwrap();
        let paths: Vec<_> = kids.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(paths, ["moov/trak[1]", "moov/trak[2]", "moov/free"]);
        assert_eq!(kids[1].offset, 40 + 20);
        assert_eq!(kids[2].body, &[1, 2]);
        let inner: Vec<_> = kids[0].children().collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].path, "moov/trak[1]/tkhd");
        assert_eq!(inner[0].offset, 48);
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        // Size 4 < header.
        let data = [0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        let e = Children::new(&data, 0, "moov", false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind, Mp4ErrorKind::BadBoxSize { size: 4, header: 8 });
        assert_eq!(e.path, "moov/free");
        // Claims more than there is.
        let data = [0, 0, 0, 100, b'm', b'o', b'o', b'v', 0];
        let e = Children::new(&data, 7, "", false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.kind,
            Mp4ErrorKind::Truncated {
                needed: 100,
                available: 9
            }
        );
        assert_eq!((e.path.as_str(), e.offset), ("moov", 7));
        // Largesize below 16, and a huge one.
        let mut data = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
        data.extend(8u64.to_be_bytes());
        assert!(matches!(
            Children::new(&data, 0, "", false).next().unwrap(),
            Err(Mp4Error {
                kind: Mp4ErrorKind::BadBoxSize { .. },
                ..
            })
        ));
        data.truncate(8);
        data.extend(u64::MAX.to_be_bytes());
        assert!(Children::new(&data, 0, "", false).next().unwrap().is_err());
        // A partial header.
        assert!(Children::new(&[0, 0, 1], 0, "", false)
            .next()
            .unwrap()
            .is_err());
    }

    #[test]
    fn size_zero_runs_to_the_end() {
        let data = [0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3];
        let b = Children::new(&data, 0, "", false).next().unwrap().unwrap();
        assert_eq!(b.body, &[1, 2, 3]);
        assert_eq!(b.path, "mdat[1]");
    }
}
