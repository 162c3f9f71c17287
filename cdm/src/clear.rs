//! Writing the clear file: the input with every encrypted sample replaced by its clear bytes
//! and every trace of the protection removed, so that any player decodes it.
//!
//! What changes, and how (ISO/IEC 14496-12 and 23001-7):
//! - A protected sample entry (`encv`, `enca`) takes back its original format from `frma`
//!   and loses its `sinf` box. A clear-lead track keeps both of its sample descriptions, now
//!   alike, so `stsc` and `tfhd` indexes stay valid.
//! - `pssh` boxes, `senc`, the `saiz`/`saio` of Common Encryption and the `sbgp`/`sgpd` of
//!   the `seig` grouping are dropped, in `moov` and in every `moof`.
//! - Every file offset that crosses a dropped box is moved by the bytes dropped before it:
//!   `stco`/`co64` chunk offsets, `tfhd` base data offsets, `trun` data offsets (relative to
//!   their base, which may itself move), the offsets of any other `saio`, `sidx` reference
//!   sizes and first offsets, and `tfra` `moof` offsets.
//! - `mdat` boxes keep their size; their encrypted samples are replaced by the clear ones the
//!   `decrypt` callback returns, everything else in them is copied.
//!
//! The output is written front to back in one pass, after a first pass over the metadata
//! boxes that finds what is dropped. Nothing here is secret: the clear samples are the
//! product the user asked for.

use std::io::{self, Write};

use crate::error::CliError;
use crate::mp4::boxes::BoxRef;
use crate::mp4::cenc::parse_frma;
use crate::mp4::movie::{audio_fields, decode_atom, traf_base, CENC_SCHEMES, VISUAL_FIELDS};
use crate::mp4::reader::to_u64;
use crate::mp4::source::{read_top_level, TopBox};
use crate::mp4::{FourCc, Movie, Mp4Error, Mp4ErrorKind, ReadError, Sample, Source, Track};

/// Bytes copied per read when streaming media data.
const CHUNK: usize = 1 << 20;

/// A sample the caller is asked to decrypt.
#[derive(Clone, Copy)]
pub struct SampleRef<'m> {
    /// Its track.
    pub track: &'m Track,
    /// Its number in the track, from 1.
    pub number: usize,
    /// The sample.
    pub sample: &'m Sample,
}

/// What [`write_clear`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClearStats {
    /// Samples decrypted.
    pub samples_decrypted: u64,
    /// Bytes of encrypted samples decrypted.
    pub bytes_decrypted: u64,
    /// Boxes dropped.
    pub boxes_dropped: u64,
    /// Bytes of dropped boxes.
    pub bytes_dropped: u64,
    /// Size of the output.
    pub output_size: u64,
}

/// Maps an offset of the input to the output: minus the bytes of every dropped box that ends
/// at or before it.
#[derive(Debug, Default)]
struct Remap {
    /// End offsets of the dropped boxes, ascending.
    ends: Vec<u64>,
    /// `removed[i]`: bytes dropped by the first `i` boxes.
    removed: Vec<u64>,
}

impl Remap {
    fn new(mut drops: Vec<(u64, u64)>) -> Self {
        drops.sort_unstable();
        let mut ends = Vec::with_capacity(drops.len());
        let mut removed = Vec::with_capacity(drops.len().saturating_add(1));
        let mut total = 0u64;
        removed.push(0);
        for (offset, size) in drops {
            ends.push(offset.saturating_add(size));
            total = total.saturating_add(size);
            removed.push(total);
        }
        Remap { ends, removed }
    }

    fn apply(&self, x: u64) -> u64 {
        let n = self.ends.partition_point(|&e| e <= x);
        x.saturating_sub(self.removed.get(n).copied().unwrap_or(0))
    }

    /// The new value of an offset `rel` relative to `base` (both moved).
    fn relative(&self, base: u64, rel: u64) -> u64 {
        self.apply(base.saturating_add(rel))
            .saturating_sub(self.apply(base))
    }
}

/// The state of one pass over the metadata boxes.
struct Pass<'m> {
    src: &'m dyn Source,
    movie: &'m Movie,
    remap: Remap,
    /// `(offset, size)` of every box dropped so far.
    drops: Vec<(u64, u64)>,
}

/// Where a box is, for the rules that depend on its parent.
#[derive(Clone, Copy)]
enum Parent {
    Top,
    Moov,
    /// Inside a `trak`, down to `stbl`.
    Trak,
    /// Inside a `traf`, with its base data offset (in the input).
    Traf {
        base: u64,
    },
    Other,
}

fn read_u32(body: &[u8], at: usize, b: &BoxRef<'_>) -> Result<u32, Mp4Error> {
    body.get(at..)
        .and_then(|s| s.first_chunk::<4>())
        .map(|a| u32::from_be_bytes(*a))
        .ok_or_else(|| b.error(Mp4ErrorKind::Invalid(format!("no field at body byte {at}"))))
}

fn read_u64(body: &[u8], at: usize, b: &BoxRef<'_>) -> Result<u64, Mp4Error> {
    body.get(at..)
        .and_then(|s| s.first_chunk::<8>())
        .map(|a| u64::from_be_bytes(*a))
        .ok_or_else(|| b.error(Mp4ErrorKind::Invalid(format!("no field at body byte {at}"))))
}

fn write_u32(body: &mut [u8], at: usize, v: u32) {
    if let Some(s) = body.get_mut(at..).and_then(|s| s.first_chunk_mut::<4>()) {
        *s = v.to_be_bytes();
    }
}

fn write_u64(body: &mut [u8], at: usize, v: u64) {
    if let Some(s) = body.get_mut(at..).and_then(|s| s.first_chunk_mut::<8>()) {
        *s = v.to_be_bytes();
    }
}

fn add(a: usize, b: usize, what: &'static str, at: &BoxRef<'_>) -> Result<usize, Mp4Error> {
    a.checked_add(b)
        .ok_or_else(|| at.error(Mp4ErrorKind::Overflow(what)))
}

/// Rewrites the offset field at `at` of `body` (64-bit if `wide`, else 32-bit) as `map` moves
/// it, and returns its old value. Dropping bytes only ever shortens an offset, so one read
/// from a 32-bit field fits it again; a map that did not would be an `Overflow` error, never
/// a wrong offset written.
fn move_offset(
    body: &mut [u8],
    at: usize,
    wide: bool,
    b: &BoxRef<'_>,
    map: impl FnOnce(u64) -> u64,
) -> Result<u64, Mp4Error> {
    if wide {
        let old = read_u64(body, at, b)?;
        write_u64(body, at, map(old));
        Ok(old)
    } else {
        let old = u64::from(read_u32(body, at, b)?);
        let new = u32::try_from(map(old))
            .map_err(|_| b.error(Mp4ErrorKind::Overflow("32-bit offset")))?;
        write_u32(body, at, new);
        Ok(old)
    }
}

/// Appends a box of type `kind` with `body`, in the header form of `like` (a 64-bit size if
/// it had one or the box needs one).
fn put_box(
    out: &mut Vec<u8>,
    like: &BoxRef<'_>,
    kind: FourCc,
    body: &[u8],
) -> Result<(), Mp4Error> {
    let had_large = like.header.header_len >= 16 && like.kind().0 != *b"uuid";
    let overflow = || like.error(Mp4ErrorKind::Overflow("box size"));
    let body_len = to_u64(body.len());
    match u32::try_from(body_len.checked_add(8).ok_or_else(overflow)?) {
        Ok(size) if !had_large => {
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(&kind.0);
        }
        _ => {
            let size = body_len.checked_add(16).ok_or_else(overflow)?;
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&kind.0);
            out.extend_from_slice(&size.to_be_bytes());
        }
    }
    out.extend_from_slice(body);
    Ok(())
}

/// Whether a `saiz`/`saio` body is about Common Encryption: no type, or a CENC scheme type.
fn is_cenc_aux(body: &[u8]) -> bool {
    let flags = body
        .get(1..4)
        .map_or(0, |f| f.iter().fold(0u32, |a, &b| a << 8 | u32::from(b)));
    if flags & 1 == 0 {
        return true;
    }
    body.get(4..8)
        .is_some_and(|t| CENC_SCHEMES.iter().any(|s| s.as_slice() == t))
}

/// Whether an `sbgp`/`sgpd` body is of the `seig` grouping.
fn is_seig_group(body: &[u8]) -> bool {
    body.get(4..8) == Some(b"seig".as_slice())
}

impl<'m> Pass<'m> {
    fn drop_box(&mut self, b: &BoxRef<'_>) {
        self.drops.push((b.offset, b.header.size));
    }

    /// Appends the rewritten `b` to `out` (or nothing, if it is dropped).
    fn emit(&mut self, b: &BoxRef<'_>, parent: Parent, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let kind = b.kind();
        let in_track_tables = matches!(parent, Parent::Trak | Parent::Traf { .. });
        let dropped = match &kind.0 {
            b"pssh" => true,
            b"senc" => in_track_tables,
            b"saiz" | b"saio" => in_track_tables && is_cenc_aux(b.body),
            b"sbgp" | b"sgpd" => in_track_tables && is_seig_group(b.body),
            _ => false,
        };
        if dropped {
            self.drop_box(b);
            return Ok(());
        }
        match (&kind.0, parent) {
            (b"moov", Parent::Top) => self.container(b, Parent::Moov, out),
            (b"moof", Parent::Top) => self.moof(b, out),
            (b"mfra", Parent::Top) => self.container(b, Parent::Other, out),
            (b"trak", Parent::Moov) => self.container(b, Parent::Trak, out),
            (b"mdia" | b"minf" | b"stbl", Parent::Trak) => self.container(b, parent, out),
            (b"stsd", Parent::Trak) => self.stsd(b, out),
            (b"stco", Parent::Trak) => self.chunk_offsets(b, false, out),
            (b"co64", Parent::Trak) => self.chunk_offsets(b, true, out),
            (b"saio", Parent::Trak) => self.saio(b, None, out),
            (b"saio", Parent::Traf { base }) => self.saio(b, Some(base), out),
            (b"sidx", _) => self.sidx(b, out),
            (b"tfra", Parent::Other) => self.tfra(b, out),
            _ => self.copy(b, out),
        }
    }

    fn copy(&self, b: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        if b.kind().0 == *b"uuid" {
            // The 16-byte extended type ends the header, which `BoxRef` does not keep: the
            // box is copied from the input as it is.
            let size = usize::try_from(b.header.size)
                .map_err(|_| b.error(Mp4ErrorKind::Overflow("box size")))?;
            let mut raw = vec![0u8; size];
            self.src.read_exact_at(b.offset, &mut raw).map_err(|e| {
                b.error(Mp4ErrorKind::Unsupported(format!(
                    "the box cannot be read again: {e}"
                )))
            })?;
            out.extend_from_slice(&raw);
            return Ok(());
        }
        put_box(out, b, b.kind(), b.body)
    }

    fn container(
        &mut self,
        b: &BoxRef<'_>,
        inner: Parent,
        out: &mut Vec<u8>,
    ) -> Result<(), Mp4Error> {
        let mut body = Vec::with_capacity(b.body.len());
        for c in b.children() {
            self.emit(&c?, inner, &mut body)?;
        }
        put_box(out, b, b.kind(), &body)
    }

    /// `stsd`: its entries, protected ones restored.
    fn stsd(&mut self, b: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let head = b.body.get(..8).ok_or_else(|| {
            b.error(Mp4ErrorKind::Truncated {
                needed: 8,
                available: b.body.len() as u64,
            })
        })?;
        let mut body = head.to_vec();
        for e in b.children_after(8, true)? {
            let e = e?;
            self.sample_entry(&e, &mut body)?;
        }
        put_box(out, b, b.kind(), &body)
    }

    fn sample_entry(&mut self, e: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let fields = match &e.kind().0 {
            b"encv" => VISUAL_FIELDS,
            b"enca" => audio_fields(e.body),
            _ => return self.copy(e, out),
        };
        let head = e.body.get(..fields).ok_or_else(|| {
            e.error(Mp4ErrorKind::Truncated {
                needed: fields as u64,
                available: e.body.len() as u64,
            })
        })?;
        let mut body = head.to_vec();
        let mut format = None;
        for c in e.children_after(fields, false)? {
            let c = c?;
            if c.kind().0 == *b"sinf" && format.is_none() {
                let frma = c
                    .children()
                    .find(|k| k.as_ref().map_or(true, |k| k.kind().0 == *b"frma"))
                    .transpose()?
                    .ok_or_else(|| c.error(Mp4ErrorKind::Missing(FourCc::new(b"frma"))))?;
                format = Some(parse_frma(&frma)?);
                self.drop_box(&c);
            } else {
                self.copy(&c, &mut body)?;
            }
        }
        let format = format.ok_or_else(|| e.error(Mp4ErrorKind::Missing(FourCc::new(b"sinf"))))?;
        put_box(out, e, format, &body)
    }

    /// `stco` (32-bit) or `co64` chunk offsets: absolute, moved.
    fn chunk_offsets(
        &mut self,
        b: &BoxRef<'_>,
        wide: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Mp4Error> {
        let mut body = b.body.to_vec();
        let count = read_u32(&body, 4, b)? as usize;
        let width = if wide { 8 } else { 4 };
        let end = count
            .checked_mul(width)
            .and_then(|n| n.checked_add(8))
            .filter(|&n| n == body.len())
            .ok_or_else(|| {
                b.error(Mp4ErrorKind::Inconsistent(format!(
                    "entry_count {count} does not match the box size"
                )))
            })?;
        let mut at = 8;
        while at < end {
            move_offset(&mut body, at, wide, b, |v| self.remap.apply(v))?;
            at = add(at, width, "stco entry", b)?;
        }
        put_box(out, b, b.kind(), &body)
    }

    /// A `saio` that is kept (not Common Encryption's): absolute offsets in a sample table,
    /// offsets from the base data offset in a track fragment.
    fn saio(
        &mut self,
        b: &BoxRef<'_>,
        base: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(), Mp4Error> {
        let mut body = b.body.to_vec();
        let version = body.first().copied().unwrap_or(0);
        let flags = read_u32(&body, 0, b)? & 0x00ff_ffff;
        let count_at = if flags & 1 != 0 { 12 } else { 4 };
        let count = read_u32(&body, count_at, b)?;
        let mut at = count_at.saturating_add(4);
        let wide = version != 0;
        for _ in 0..count {
            move_offset(&mut body, at, wide, b, |v| match base {
                Some(base) => self.remap.relative(base, v),
                None => self.remap.apply(v),
            })?;
            at = add(at, if wide { 8 } else { 4 }, "saio entry", b)?;
        }
        put_box(out, b, b.kind(), &body)
    }

    /// `sidx`: the first offset (from the end of the box) and every reference size move with
    /// the bytes dropped inside what they span.
    fn sidx(&mut self, b: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let mut body = b.body.to_vec();
        let version = body.first().copied().unwrap_or(0);
        let anchor = b.offset.saturating_add(b.header.size);
        let (first_at, after) = if version == 0 { (16, 20) } else { (20, 28) };
        let first = move_offset(&mut body, first_at, version != 0, b, |v| {
            self.remap.relative(anchor, v)
        })?;
        let count = read_u32(&body, after, b)? & 0xffff;
        let mut start = anchor
            .checked_add(first)
            .ok_or_else(|| b.error(Mp4ErrorKind::Overflow("sidx offset")))?;
        let mut at = add(after, 4, "sidx entry", b)?;
        for _ in 0..count {
            let word = read_u32(&body, at, b)?;
            let size = u64::from(word & 0x7fff_ffff);
            let end = start
                .checked_add(size)
                .ok_or_else(|| b.error(Mp4ErrorKind::Overflow("sidx reference")))?;
            let new = self
                .remap
                .apply(end)
                .saturating_sub(self.remap.apply(start));
            let new = u32::try_from(new).unwrap_or(0x7fff_ffff) & 0x7fff_ffff;
            write_u32(&mut body, at, (word & 0x8000_0000) | new);
            start = end;
            at = add(at, 12, "sidx entry", b)?;
        }
        put_box(out, b, b.kind(), &body)
    }

    /// `tfra`: absolute `moof` offsets, moved.
    fn tfra(&mut self, b: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let mut body = b.body.to_vec();
        let version = body.first().copied().unwrap_or(0);
        let sizes = read_u32(&body, 8, b)?;
        let count = read_u32(&body, 12, b)?;
        // traf_number, trun_number and sample_number: 1 to 4 bytes each.
        let numbers = [sizes >> 4, sizes >> 2, sizes]
            .iter()
            .map(|n| (n & 3).saturating_add(1))
            .sum::<u32>() as usize;
        let width = if version == 1 { 8 } else { 4 };
        let mut at = 16usize;
        for _ in 0..count {
            at = add(at, width, "tfra entry", b)?;
            move_offset(&mut body, at, version == 1, b, |v| self.remap.apply(v))?;
            at = add(at, width.saturating_add(numbers), "tfra entry", b)?;
        }
        if at > body.len() {
            return Err(b.error(Mp4ErrorKind::Truncated {
                needed: at as u64,
                available: body.len() as u64,
            }));
        }
        put_box(out, b, b.kind(), &body)
    }

    /// A `moof`: its `traf`s with their offsets moved; `pssh` dropped.
    fn moof(&mut self, moof: &BoxRef<'_>, out: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let mut body = Vec::with_capacity(moof.body.len());
        let mut previous_end: Option<u64> = None;
        for c in moof.children() {
            let c = c?;
            if c.kind().0 == *b"traf" {
                previous_end = Some(self.traf(moof, &c, previous_end, &mut body)?);
            } else {
                self.emit(&c, Parent::Other, &mut body)?;
            }
        }
        put_box(out, moof, moof.kind(), &body)
    }

    /// A `traf`; returns where its sample data ends in the input (the default base of the
    /// next one, ISO/IEC 14496-12 §8.8.7.1).
    fn traf(
        &mut self,
        moof: &BoxRef<'_>,
        traf: &BoxRef<'_>,
        previous_end: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<u64, Mp4Error> {
        let tfhd_box = traf
            .children()
            .find(|k| k.as_ref().map_or(true, |k| k.kind().0 == *b"tfhd"))
            .transpose()?
            .ok_or_else(|| traf.error(Mp4ErrorKind::Missing(FourCc::new(b"tfhd"))))?;
        let tfhd = decode_atom::<mp4_atom::Tfhd>(&tfhd_box)?;
        let base = traf_base(&tfhd, moof.offset, previous_end);
        let trex_size = self
            .movie
            .tracks
            .iter()
            .find(|t| t.id == tfhd.track_id)
            .and_then(|t| t.trex.as_ref())
            .map(|t| t.default_sample_size);
        let default_size = tfhd.default_sample_size.or(trex_size);

        let mut body = Vec::with_capacity(traf.body.len());
        let mut cursor = base;
        let mut first_trun = true;
        for c in traf.children() {
            let c = c?;
            match &c.kind().0 {
                b"tfhd" => {
                    let mut t = c.body.to_vec();
                    if let Some(old) = tfhd.base_data_offset {
                        write_u64(&mut t, 8, self.remap.apply(old));
                    }
                    put_box(&mut body, &c, c.kind(), &t)?;
                }
                b"trun" => {
                    let trun = decode_atom::<mp4_atom::Trun>(&c)?;
                    let mut t = c.body.to_vec();
                    if let Some(d) = trun.data_offset {
                        cursor = base
                            .checked_add_signed(i64::from(d))
                            .ok_or_else(|| c.error(Mp4ErrorKind::Overflow("trun data offset")))?;
                        // The data is after the moof and the base at or before it, so the
                        // moved distance shrinks or stays; a negative offset keeps its sign.
                        let new = i64::try_from(self.remap.apply(cursor))
                            .ok()
                            .zip(i64::try_from(self.remap.apply(base)).ok())
                            .and_then(|(a, b)| a.checked_sub(b))
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| c.error(Mp4ErrorKind::Overflow("trun data offset")))?;
                        write_u32(&mut t, 8, u32::from_be_bytes(new.to_be_bytes()));
                    } else if first_trun {
                        cursor = base;
                    }
                    first_trun = false;
                    for s in &trun.samples {
                        let size = s.size.or(default_size).ok_or_else(|| {
                            c.error(Mp4ErrorKind::Invalid(
                                "no sample size in trun, tfhd or trex".into(),
                            ))
                        })?;
                        cursor = cursor.saturating_add(u64::from(size));
                    }
                    put_box(&mut body, &c, c.kind(), &t)?;
                }
                _ => self.emit(&c, Parent::Traf { base }, &mut body)?,
            }
        }
        put_box(out, traf, traf.kind(), &body)?;
        Ok(cursor)
    }
}

fn top_ref<'a>(t: &'a TopBox, path: String) -> Option<BoxRef<'a>> {
    t.body.as_deref().map(|body| BoxRef {
        header: t.header,
        offset: t.offset,
        body,
        path,
    })
}

/// Whether a top-level box is metadata this tool rewrites.
fn rewritten(kind: FourCc) -> bool {
    matches!(&kind.0, b"moov" | b"moof" | b"mfra" | b"sidx" | b"pssh")
}

/// The encrypted samples, in file order: `(offset, size, track index, sample index)`.
fn encrypted_samples(movie: &Movie) -> Vec<(u64, u32, usize, usize)> {
    let mut v: Vec<_> = movie
        .tracks
        .iter()
        .enumerate()
        .flat_map(|(t, track)| {
            track
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.encryption.is_some())
                .map(move |(i, s)| (s.offset, s.size, t, i))
        })
        .collect();
    v.sort_unstable();
    v
}

/// Copies `len` bytes of `src` from `offset` to `out`.
fn copy_range(
    src: &dyn Source,
    mut offset: u64,
    mut len: u64,
    buf: &mut Vec<u8>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<(), CopyError> {
    while len > 0 {
        let n = usize::try_from(len).unwrap_or(CHUNK).min(CHUNK);
        buf.resize(n, 0);
        src.read_exact_at(offset, buf)
            .map_err(|source| CopyError::Read(ReadError::Io { offset, source }))?;
        out.write_all(buf).map_err(CopyError::Write)?;
        offset = offset.saturating_add(n as u64);
        len = len.saturating_sub(n as u64);
        progress(n as u64);
    }
    Ok(())
}

/// Why writing the clear file failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading or parsing the input.
    Read(ReadError),
    /// Writing the output.
    Write(io::Error),
    /// The decrypt callback failed.
    Decrypt(CliError),
}

impl From<Mp4Error> for CopyError {
    fn from(e: Mp4Error) -> Self {
        CopyError::Read(ReadError::Mp4(e))
    }
}

/// The callback [`write_clear`] decrypts each encrypted sample with, in place.
pub type DecryptFn<'f> = dyn FnMut(SampleRef<'_>, &mut [u8]) -> Result<(), CliError> + 'f;

/// Writes the clear version of `src` (parsed as `movie`) to `out`. `decrypt` is called for
/// every encrypted sample, in file order, with the sample's bytes to decrypt in place;
/// `progress` with the number of input bytes done, now and then.
pub fn write_clear(
    src: &dyn Source,
    movie: &Movie,
    out: &mut dyn Write,
    decrypt: &mut DecryptFn<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<ClearStats, CopyError> {
    let top = read_top_level(src).map_err(CopyError::Read)?;
    let paths: Vec<String> = {
        let mut p = crate::mp4::boxes::Paths::new("", false);
        top.iter().map(|t| p.next(t.kind())).collect()
    };

    // Pass 1: what is dropped (output discarded).
    let mut pass = Pass {
        src,
        movie,
        remap: Remap::default(),
        drops: Vec::new(),
    };
    let mut sink = Vec::new();
    for (t, path) in top.iter().zip(&paths) {
        if rewritten(t.kind()) {
            if let Some(b) = top_ref(t, path.clone()) {
                sink.clear();
                pass.emit(&b, Parent::Top, &mut sink)?;
            }
        }
    }
    let mut stats = ClearStats {
        boxes_dropped: pass.drops.len() as u64,
        bytes_dropped: pass.drops.iter().map(|d| d.1).sum(),
        ..ClearStats::default()
    };
    pass.remap = Remap::new(std::mem::take(&mut pass.drops));

    // Pass 2: write.
    let samples = encrypted_samples(movie);
    let mut next = 0usize;
    let mut buf = Vec::new();
    let mut written = 0u64;
    for (t, path) in top.iter().zip(&paths) {
        if rewritten(t.kind()) {
            let Some(b) = top_ref(t, path.clone()) else {
                continue;
            };
            let mut bytes = Vec::new();
            pass.emit(&b, Parent::Top, &mut bytes)?;
            out.write_all(&bytes).map_err(CopyError::Write)?;
            written = written.saturating_add(bytes.len() as u64);
            progress(t.header.size);
            continue;
        }
        let end = t.offset.saturating_add(t.header.size);
        let mut pos = t.offset;
        if t.kind().0 == *b"mdat" {
            let body = t.offset.saturating_add(t.header.header_len);
            if let Some(&(offset, _, ti, si)) = samples.get(next) {
                if offset < body {
                    return Err(outside(movie, ti, si, offset).into());
                }
            }
            while let Some(&(offset, size, ti, si)) = samples.get(next) {
                let sample_end = offset.saturating_add(u64::from(size));
                if offset >= end {
                    break;
                }
                if sample_end > end || offset < pos {
                    return Err(outside(movie, ti, si, offset).into());
                }
                copy_range(
                    src,
                    pos,
                    offset.saturating_sub(pos),
                    &mut buf,
                    out,
                    progress,
                )?;
                buf.resize(usize::try_from(size).unwrap_or(usize::MAX), 0);
                src.read_exact_at(offset, &mut buf)
                    .map_err(|source| CopyError::Read(ReadError::Io { offset, source }))?;
                let track = movie.tracks.get(ti);
                let sample = track.and_then(|t| t.samples.get(si));
                if let (Some(track), Some(sample)) = (track, sample) {
                    decrypt(
                        SampleRef {
                            track,
                            number: si.saturating_add(1),
                            sample,
                        },
                        &mut buf,
                    )
                    .map_err(CopyError::Decrypt)?;
                }
                out.write_all(&buf).map_err(CopyError::Write)?;
                progress(u64::from(size));
                stats.samples_decrypted = stats.samples_decrypted.saturating_add(1);
                stats.bytes_decrypted = stats.bytes_decrypted.saturating_add(u64::from(size));
                pos = sample_end;
                next = next.saturating_add(1);
            }
        }
        copy_range(src, pos, end.saturating_sub(pos), &mut buf, out, progress)?;
        written = written.saturating_add(end.saturating_sub(t.offset));
    }
    if let Some(&(offset, _, ti, si)) = samples.get(next) {
        return Err(outside(movie, ti, si, offset).into());
    }
    stats.output_size = written;
    Ok(stats)
}

fn outside(movie: &Movie, ti: usize, si: usize, offset: u64) -> Mp4Error {
    let id = movie.tracks.get(ti).map_or(0, |t| t.id);
    Mp4Error::new(
        "file",
        offset,
        Mp4ErrorKind::Inconsistent(format!(
            "track {id} sample {}: an encrypted sample that is not inside one 'mdat' box, or \
             that overlaps another",
            si.saturating_add(1)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::Remap;

    #[test]
    fn remap_moves_offsets_after_dropped_boxes_only() {
        // Dropped: [100, 120) and [200, 250).
        let r = Remap::new(vec![(200, 50), (100, 20)]);
        assert_eq!(r.apply(0), 0);
        assert_eq!(r.apply(100), 100, "a dropped box's own start does not move");
        assert_eq!(r.apply(120), 100);
        assert_eq!(r.apply(199), 179);
        assert_eq!(r.apply(250), 180);
        assert_eq!(r.apply(1000), 930);
        // 150 bytes from 100 span both dropped boxes (70 bytes); 80 from 120 span none.
        assert_eq!(r.relative(100, 150), 80);
        assert_eq!(r.relative(120, 80), 80);
    }
}
