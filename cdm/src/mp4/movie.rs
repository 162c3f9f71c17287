//! The structure of a (possibly encrypted) MP4 file as the CDM needs it: tracks, their
//! sample descriptions and protection, and every sample with its place in the file and its
//! encryption parameters (key ID, IV, subsample map, pattern).
//!
//! Both layouts are handled: fragmented files (`moov` with `mvex`, then `moof`/`mdat`
//! pairs; ISO/IEC 14496-12 §8.8) and non-fragmented files whose sample tables and sample
//! auxiliary information (`senc`, `saiz`/`saio`) are in `moov` (as ffmpeg writes them).
//! Which sample is encrypted follows ISO/IEC 23001-7: a sample is encrypted when its sample
//! description is protected (`encv`/`enca` with a `sinf`) and its parameters — the `tenc`
//! defaults, or the `seig` sample group entry it is mapped to (§6) — say `isProtected`.

use mp4_atom::{Atom, Buf};

use super::boxes::{BoxRef, Paths};
use super::cenc::{
    parse_frma, parse_pssh, parse_schm, parse_seig, parse_senc, parse_tenc, read_seig, CencParams,
    Pattern, Pssh, SencEntry, Tenc,
};
use super::error::{FourCc, Mp4Error, Mp4ErrorKind};
use super::reader::{to_u64, Reader};
use super::source::{read_top_level, ReadError, Source};

/// The Common Encryption scheme types (23001-7 §10).
pub const CENC_SCHEMES: [&[u8; 4]; 4] = [b"cenc", b"cens", b"cbcs", b"cbc1"];

/// `sbgp`/`sgpd` grouping type of Common Encryption parameters.
const SEIG: FourCc = FourCc::new(b"seig");

/// Group description indexes above this refer to the track fragment's own `sgpd`
/// (ISO/IEC 14496-12 §8.9.4).
const FRAGMENT_GROUP_BASE: u32 = 0x10000;

/// The most samples one track may have: 2^24 (77 hours at 60 frames per second). Bounds the
/// memory a file can make the parser use, since sample counts in `stsz` (one size for all)
/// and `trun` (sizes from the defaults) are not backed by bytes of the file.
pub const MAX_SAMPLES_PER_TRACK: usize = 1 << 24;

/// A top-level box, by type and place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopLevelBox {
    /// The box type.
    pub kind: FourCc,
    /// File offset.
    pub offset: u64,
    /// Size, header included.
    pub size: u64,
}

/// A `pssh` box and where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsshBox {
    /// Its path (`moov/pssh[1]`, `moof[2]/pssh[1]`).
    pub path: String,
    /// File offset.
    pub offset: u64,
    /// The box, whole (header included): `cenc` init data for `generateRequest`.
    pub bytes: Vec<u8>,
    /// Its fields.
    pub pssh: Pssh,
}

/// A parsed MP4 file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movie {
    /// File size in bytes.
    pub file_size: u64,
    /// The top-level boxes, in file order.
    pub top_level: Vec<TopLevelBox>,
    /// Whether `moov` has an `mvex` box (the file is fragmented).
    pub fragmented: bool,
    /// Number of `moof` boxes.
    pub fragments: u32,
    /// The tracks, in `moov` order.
    pub tracks: Vec<Track>,
    /// Every `pssh` box, in file order.
    pub pssh: Vec<PsshBox>,
}

/// The protection of a sample description (`sinf`, ISO/IEC 14496-12 §8.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protection {
    /// `schm` scheme type (`cenc`, `cbcs`, …).
    pub scheme: FourCc,
    /// `schm` scheme version (0x00010000 for version 1.0).
    pub scheme_version: u32,
    /// The `tenc` box (required for the Common Encryption schemes).
    pub tenc: Option<Tenc>,
}

/// One sample description (`stsd` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEntry {
    /// 1-based index, as `stsc` and `tfhd` refer to it.
    pub index: u32,
    /// Its format (`encv`, `avc1`, `enca`, `mp4a`, …).
    pub format: FourCc,
    /// Its path.
    pub path: String,
    /// File offset.
    pub offset: u64,
    /// The format before protection (`frma`), for protected entries.
    pub original_format: Option<FourCc>,
    /// The types of its child boxes, in order (`avcC`, `sinf`, `btrt`, …); empty when the
    /// entry's layout is unknown.
    pub children: Vec<FourCc>,
    /// The protection, for `encv`/`enca` (and any other entry with a `sinf`).
    pub protection: Option<Protection>,
}

/// How one sample is encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEncryption {
    /// The scheme.
    pub scheme: FourCc,
    /// The key ID.
    pub key_id: [u8; 16],
    /// The per-sample IV size (0: the constant IV is used).
    pub per_sample_iv_size: u8,
    /// The IV: the sample's own, or the constant IV.
    pub iv: Vec<u8>,
    /// The pattern, if the parameters carry one.
    pub pattern: Option<Pattern>,
    /// `(clear, protected)` byte counts; empty when the whole sample is protected.
    pub subsamples: Vec<(u16, u32)>,
}

/// A sample: where its bytes are and how they are encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// File offset of its data.
    pub offset: u64,
    /// Its size.
    pub size: u32,
    /// Its sample description (1-based).
    pub description_index: u32,
    /// The `moof` it belongs to (1-based), if the file is fragmented.
    pub fragment: Option<u32>,
    /// `None` for a clear sample.
    pub encryption: Option<SampleEncryption>,
}

/// A track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// `tkhd` track ID.
    pub id: u32,
    /// `hdlr` handler type (`vide`, `soun`, …).
    pub handler: FourCc,
    /// Its path.
    pub path: String,
    /// Its sample descriptions.
    pub entries: Vec<SampleEntry>,
    /// Its samples, in decoding order (the sample tables', then each fragment's).
    pub samples: Vec<Sample>,
    /// How many sample tables / track fragments carry a `senc` box.
    pub senc_boxes: u32,
    /// How many sample tables / track fragments carry `saiz` and `saio` for encryption.
    pub saiz_saio_boxes: u32,
    /// How many sample tables / track fragments map samples to `seig` groups.
    pub seig_groups: u32,
    /// `trex` defaults (fragmented files).
    pub trex: Option<mp4_atom::Trex>,
    /// The `seig` entries of the sample table's `sgpd`, by 1-based index (`None` for
    /// entries of other grouping types never happens: only `seig` is kept).
    pub stbl_seig: Vec<CencParams>,
}

/// The sample auxiliary information boxes of one sample table or track fragment.
#[derive(Default)]
struct AuxBoxes<'a> {
    senc: Option<BoxRef<'a>>,
    saiz: Option<(mp4_atom::Saiz, BoxRef<'a>)>,
    saio: Option<(mp4_atom::Saio, BoxRef<'a>)>,
    sbgp: Option<(mp4_atom::Sbgp, BoxRef<'a>)>,
    seig: Vec<CencParams>,
}

impl<'a> AuxBoxes<'a> {
    /// Takes `b` if it is one of the boxes this struct holds.
    fn take(&mut self, b: &BoxRef<'a>) -> Result<(), Mp4Error> {
        match &b.kind().0 {
            b"senc" => set_once(&mut self.senc, b.clone(), b)?,
            b"saiz" => {
                let saiz: mp4_atom::Saiz = decode_atom(b)?;
                if is_cenc_aux(saiz.aux_info.as_ref()) {
                    set_once(&mut self.saiz, (saiz, b.clone()), b)?;
                }
            }
            b"saio" => {
                let saio: mp4_atom::Saio = decode_atom(b)?;
                if is_cenc_aux(saio.aux_info.as_ref()) {
                    set_once(&mut self.saio, (saio, b.clone()), b)?;
                }
            }
            b"sbgp" => {
                let sbgp: mp4_atom::Sbgp = decode_atom(b)?;
                if FourCc(sbgp.grouping_type.into()) == SEIG {
                    set_once(&mut self.sbgp, (sbgp, b.clone()), b)?;
                }
            }
            b"sgpd" => {
                if let Some(entries) = parse_sgpd_seig(b)? {
                    if !self.seig.is_empty() {
                        return Err(b.error(Mp4ErrorKind::Duplicate(b.kind())));
                    }
                    self.seig = entries;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether a `saiz`/`saio` is about Common Encryption: no type (the scheme's by default) or a
/// CENC scheme type (23001-7 §7.1).
fn is_cenc_aux(aux: Option<&mp4_atom::AuxInfo>) -> bool {
    aux.is_none_or(|a| {
        let t: [u8; 4] = a.aux_info_type.into();
        CENC_SCHEMES.iter().any(|s| **s == t)
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, b: &BoxRef<'_>) -> Result<(), Mp4Error> {
    if slot.is_some() {
        return Err(b.error(Mp4ErrorKind::Duplicate(b.kind())));
    }
    *slot = Some(value);
    Ok(())
}

/// Decodes a standard box with `mp4-atom`, strictly (every byte of the body used).
pub(crate) fn decode_atom<T: Atom>(b: &BoxRef<'_>) -> Result<T, Mp4Error> {
    let mut body: &[u8] = b.body;
    let value = T::decode_body(&mut body).map_err(|e| {
        b.error(Mp4ErrorKind::Decode {
            kind: b.kind(),
            message: e.to_string(),
        })
    })?;
    if body.has_remaining() {
        return Err(b.error(Mp4ErrorKind::TrailingBytes(to_u64(body.remaining()))));
    }
    Ok(value)
}

/// The `seig` entries of an `sgpd` box, or `None` for another grouping type (§8.9.3).
/// Hand-written: `mp4-atom` cannot split the entries of a version 0 box of a grouping type it
/// does not know.
fn parse_sgpd_seig(b: &BoxRef<'_>) -> Result<Option<Vec<CencParams>>, Mp4Error> {
    let mut r = b.reader();
    let (version, _flags) = r.version_flags()?;
    if FourCc(r.array()?) != SEIG {
        return Ok(None);
    }
    b.check_version(version, 3)?;
    let default_length = if version >= 1 { Some(r.u32()?) } else { None };
    if version >= 2 {
        r.u32()?; // default_group_description_index
    }
    let count = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = match default_length {
            Some(0) => Some(r.u32()?),
            other => other,
        };
        let params = match len {
            Some(len) => {
                let offset = r.offset();
                let bytes = r.take(usize::try_from(len).unwrap_or(usize::MAX))?;
                parse_seig(bytes, offset, &b.path)?
            }
            // Version 0: the entry is as long as its fields.
            None => read_seig(&mut r)?,
        };
        entries.push(params);
    }
    r.finish()?;
    Ok(Some(entries))
}

/// Parses the MP4 file in `src`: its structure, every sample and its encryption.
pub fn parse(src: &dyn Source) -> Result<Movie, ReadError> {
    let top = read_top_level(src)?;
    let mut paths = Paths::new("", false);
    let mut moov = None;
    let mut moofs = Vec::new();
    let mut top_level = Vec::new();
    for t in &top {
        let path = paths.next(t.kind());
        top_level.push(TopLevelBox {
            kind: t.kind(),
            offset: t.offset,
            size: t.header.size,
        });
        let b = BoxRef {
            header: t.header,
            offset: t.offset,
            body: t.body.as_deref().unwrap_or_default(),
            path,
        };
        match &t.kind().0 {
            b"moov" => {
                if moov.is_some() {
                    return Err(b.error(Mp4ErrorKind::Duplicate(b.kind())).into());
                }
                moov = Some(b);
            }
            b"moof" => moofs.push(b),
            _ => {}
        }
    }
    let moov =
        moov.ok_or_else(|| Mp4Error::new("file", 0, Mp4ErrorKind::Missing(FourCc::new(b"moov"))))?;
    let mut movie = parse_moov(&moov, src)?;
    movie.top_level = top_level;
    for (n, moof) in moofs.iter().enumerate() {
        let number = u32::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| moof.error(Mp4ErrorKind::Overflow("fragment number")))?;
        parse_moof(&mut movie, moof, number, src)?;
        movie.fragments = number;
    }
    let total: u64 = movie.tracks.iter().map(|t| to_u64(t.samples.len())).sum();
    if total > movie.file_size {
        return Err(Mp4Error::new(
            "file",
            0,
            Mp4ErrorKind::Inconsistent(format!(
                "{total} samples in a file of {} bytes",
                movie.file_size
            )),
        )
        .into());
    }
    Ok(movie)
}

fn parse_moov(moov: &BoxRef<'_>, src: &dyn Source) -> Result<Movie, Mp4Error> {
    let file_size = src.len();
    let mut movie = Movie {
        file_size,
        top_level: Vec::new(),
        fragmented: false,
        fragments: 0,
        tracks: Vec::new(),
        pssh: Vec::new(),
    };
    let mut trex = Vec::new();
    for child in moov.children() {
        let c = child?;
        match &c.kind().0 {
            b"trak" => {
                let track = parse_trak(&c, src)?;
                if movie.tracks.iter().any(|t| t.id == track.id) {
                    return Err(c.error(Mp4ErrorKind::Invalid(format!(
                        "track ID {} is used twice",
                        track.id
                    ))));
                }
                movie.tracks.push(track);
            }
            b"mvex" => {
                if movie.fragmented {
                    return Err(c.error(Mp4ErrorKind::Duplicate(c.kind())));
                }
                movie.fragmented = true;
                for k in c.children() {
                    let k = k?;
                    if k.kind() == FourCc::new(b"trex") {
                        trex.push(decode_atom::<mp4_atom::Trex>(&k)?);
                    }
                }
            }
            b"pssh" => movie.pssh.push(pssh_box(&c)?),
            _ => {}
        }
    }
    for t in trex {
        if let Some(track) = movie.tracks.iter_mut().find(|k| k.id == t.track_id) {
            track.trex = Some(t);
        }
    }
    Ok(movie)
}

fn pssh_box(b: &BoxRef<'_>) -> Result<PsshBox, Mp4Error> {
    let pssh = parse_pssh(b)?;
    let mut bytes = Vec::new();
    let size = u32::try_from(b.header.size).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&size.to_be_bytes());
    bytes.extend_from_slice(&b.kind().0);
    bytes.extend_from_slice(b.body);
    Ok(PsshBox {
        path: b.path.clone(),
        offset: b.offset,
        bytes,
        pssh,
    })
}

/// The one child of `parent` of type `kind`.
fn child<'a>(parent: &BoxRef<'a>, kind: &[u8; 4]) -> Result<BoxRef<'a>, Mp4Error> {
    let mut found = None;
    for c in parent.children() {
        let c = c?;
        if c.kind().0 == *kind {
            set_once(&mut found, c.clone(), &c)?;
        }
    }
    found.ok_or_else(|| parent.error(Mp4ErrorKind::Missing(FourCc::new(kind))))
}

fn parse_trak(trak: &BoxRef<'_>, src: &dyn Source) -> Result<Track, Mp4Error> {
    let file_size = src.len();
    let tkhd: mp4_atom::Tkhd = decode_atom(&child(trak, b"tkhd")?)?;
    let mdia = child(trak, b"mdia")?;
    let hdlr: mp4_atom::Hdlr = decode_atom(&child(&mdia, b"hdlr")?)?;
    let handler = FourCc(hdlr.handler.into());
    let stbl = child(&child(&mdia, b"minf")?, b"stbl")?;
    let entries = parse_stsd(&child(&stbl, b"stsd")?, handler)?;
    let mut track = Track {
        id: tkhd.track_id,
        handler,
        path: trak.path.clone(),
        entries,
        samples: Vec::new(),
        senc_boxes: 0,
        saiz_saio_boxes: 0,
        seig_groups: 0,
        trex: None,
        stbl_seig: Vec::new(),
    };

    let mut stsz = None;
    let mut stsc = None;
    let mut chunks: Option<(Vec<u64>, BoxRef<'_>)> = None;
    let mut aux = AuxBoxes::default();
    // ffmpeg writes `senc` in `stbl`; some writers put it in `trak`.
    for c in trak.children().chain(stbl.children()) {
        let c = c?;
        match &c.kind().0 {
            b"stsz" => set_once(
                &mut stsz,
                (decode_atom::<mp4_atom::Stsz>(&c)?, c.clone()),
                &c,
            )?,
            b"stsc" => set_once(&mut stsc, decode_atom::<mp4_atom::Stsc>(&c)?, &c)?,
            b"stco" => {
                let stco: mp4_atom::Stco = decode_atom(&c)?;
                let offsets = stco.entries.into_iter().map(u64::from).collect();
                set_once(&mut chunks, (offsets, c.clone()), &c)?;
            }
            b"co64" => {
                let co64: mp4_atom::Co64 = decode_atom(&c)?;
                set_once(&mut chunks, (co64.entries, c.clone()), &c)?;
            }
            _ => aux.take(&c)?,
        }
    }
    track.stbl_seig = aux.seig.clone();

    let (stsz, stsz_box) =
        stsz.ok_or_else(|| stbl.error(Mp4ErrorKind::Missing(FourCc::new(b"stsz"))))?;
    let (count, fixed, sizes) = match stsz.samples {
        mp4_atom::StszSamples::Identical { count, size } => (count, Some(size), Vec::new()),
        mp4_atom::StszSamples::Different { sizes } => {
            (u32::try_from(sizes.len()).unwrap_or(u32::MAX), None, sizes)
        }
    };
    if count == 0 {
        return Ok(track);
    }
    let stsc = stsc.ok_or_else(|| stbl.error(Mp4ErrorKind::Missing(FourCc::new(b"stsc"))))?;
    let (chunk_offsets, chunk_box) =
        chunks.ok_or_else(|| stbl.error(Mp4ErrorKind::Missing(FourCc::new(b"stco"))))?;
    let size_of = |i: u32| -> u32 {
        fixed.unwrap_or_else(|| {
            usize::try_from(i)
                .ok()
                .and_then(|i| sizes.get(i))
                .copied()
                .unwrap_or(0)
        })
    };
    // Bound the work by the file: the samples' bytes must fit in it.
    if let Some(size) = fixed {
        if u64::from(count).saturating_mul(u64::from(size)) > file_size {
            return Err(stsz_box.error(Mp4ErrorKind::Inconsistent(format!(
                "{count} samples of {size} bytes do not fit in a file of {file_size} bytes"
            ))));
        }
    }
    let chunk_count = u32::try_from(chunk_offsets.len()).unwrap_or(u32::MAX);
    let mut samples = Vec::new();
    let mut n: u32 = 0;
    for (j, e) in stsc.entries.iter().enumerate() {
        let next_first = match stsc.entries.get(j.saturating_add(1)) {
            Some(next) => next.first_chunk,
            None => chunk_count.saturating_add(1),
        };
        if e.first_chunk == 0 || next_first <= e.first_chunk || (j == 0 && e.first_chunk != 1) {
            return Err(chunk_box.error(Mp4ErrorKind::Inconsistent(format!(
                "stsc entry {} starts at chunk {} (entries must start at 1 and increase)",
                j.saturating_add(1),
                e.first_chunk
            ))));
        }
        check_description(&track, e.sample_description_index, &chunk_box)?;
        for chunk in e.first_chunk..next_first {
            let mut offset = usize::try_from(chunk)
                .ok()
                .and_then(|c| c.checked_sub(1))
                .and_then(|c| chunk_offsets.get(c))
                .copied()
                .ok_or_else(|| {
                    chunk_box.error(Mp4ErrorKind::Inconsistent(format!(
                        "stsc refers to chunk {chunk}, there are {chunk_count}"
                    )))
                })?;
            for _ in 0..e.samples_per_chunk {
                if n >= count {
                    return Err(stsz_box.error(Mp4ErrorKind::Inconsistent(format!(
                        "the chunks hold more samples than the {count} of stsz"
                    ))));
                }
                let size = size_of(n);
                let sample = Sample {
                    offset,
                    size,
                    description_index: e.sample_description_index,
                    fragment: None,
                    encryption: None,
                };
                check_in_file(&track, &sample, samples.len(), file_size, &chunk_box)?;
                check_count(track.samples.len(), samples.len(), &stsz_box)?;
                offset = offset.saturating_add(u64::from(size));
                samples.push(sample);
                n = n.saturating_add(1);
            }
        }
    }
    if n != count {
        return Err(stsz_box.error(Mp4ErrorKind::Inconsistent(format!(
            "stsz has {count} samples, the chunks hold {n}"
        ))));
    }
    let groups = sample_groups(&aux, samples.len(), false)?;
    attach_encryption(
        &mut track,
        &mut samples,
        0,
        &groups,
        &aux,
        0,
        Some(src),
        &stbl,
    )?;
    track.samples = samples;
    Ok(track)
}

/// Fails once a track would exceed [`MAX_SAMPLES_PER_TRACK`].
fn check_count(before: usize, new: usize, at: &BoxRef<'_>) -> Result<(), Mp4Error> {
    if before.saturating_add(new) >= MAX_SAMPLES_PER_TRACK {
        return Err(at.error(Mp4ErrorKind::Unsupported(format!(
            "more than {MAX_SAMPLES_PER_TRACK} samples in one track"
        ))));
    }
    Ok(())
}

fn check_description(track: &Track, index: u32, at: &BoxRef<'_>) -> Result<(), Mp4Error> {
    let n = track.entries.len();
    if index == 0 || usize::try_from(index).map_or(true, |i| i > n) {
        return Err(at.error(Mp4ErrorKind::Inconsistent(format!(
            "sample description index {index}, track {} has {n}",
            track.id
        ))));
    }
    Ok(())
}

fn check_in_file(
    track: &Track,
    sample: &Sample,
    index_in_run: usize,
    file_size: u64,
    at: &BoxRef<'_>,
) -> Result<(), Mp4Error> {
    let end = sample.offset.checked_add(u64::from(sample.size));
    if end.is_none_or(|end| end > file_size) {
        let number = track
            .samples
            .len()
            .saturating_add(index_in_run)
            .saturating_add(1);
        return Err(at.error(Mp4ErrorKind::Inconsistent(format!(
            "track {} sample {number}: {} bytes at offset {} lie outside the file ({file_size} bytes)",
            track.id, sample.size, sample.offset
        ))));
    }
    Ok(())
}

/// The `stsd` box: its sample entries and their protection.
fn parse_stsd(stsd: &BoxRef<'_>, handler: FourCc) -> Result<Vec<SampleEntry>, Mp4Error> {
    let mut r = stsd.reader();
    let (version, _flags) = r.version_flags()?;
    stsd.check_version(version, 1)?;
    let count = r.u32()?;
    let mut entries = Vec::new();
    for e in stsd.children_after(8, true)? {
        let e = e?;
        let index = u32::try_from(entries.len())
            .ok()
            .and_then(|i| i.checked_add(1))
            .ok_or_else(|| e.error(Mp4ErrorKind::Overflow("entry index")))?;
        entries.push(parse_sample_entry(&e, index, handler)?);
    }
    if to_u64(entries.len()) != u64::from(count) {
        return Err(stsd.error(Mp4ErrorKind::Inconsistent(format!(
            "entry_count is {count}, the box holds {} entries",
            entries.len()
        ))));
    }
    Ok(entries)
}

/// Bytes of a `VisualSampleEntry` before its child boxes (ISO/IEC 14496-12 §12.1.3).
pub(crate) const VISUAL_FIELDS: usize = 78;
/// Bytes of an `AudioSampleEntry` before its child boxes (§12.2.3), version 0.
const AUDIO_FIELDS: usize = 28;

/// Bytes of an audio sample entry with `body` before its child boxes: QuickTime sound
/// description versions 1 and 2 add 16 and 36 bytes to the ISO layout.
pub(crate) fn audio_fields(body: &[u8]) -> usize {
    let version = body
        .get(8..10)
        .and_then(|v| <[u8; 2]>::try_from(v).ok())
        .map(u16::from_be_bytes);
    match version {
        Some(1) => AUDIO_FIELDS.saturating_add(16),
        Some(2) => AUDIO_FIELDS.saturating_add(36),
        _ => AUDIO_FIELDS,
    }
}

fn parse_sample_entry(
    e: &BoxRef<'_>,
    index: u32,
    handler: FourCc,
) -> Result<SampleEntry, Mp4Error> {
    let protected_format = matches!(&e.kind().0, b"encv" | b"enca");
    let fields = match (&e.kind().0, &handler.0) {
        (b"encv", _) | (_, b"vide") => Some(VISUAL_FIELDS),
        (b"enca", _) | (_, b"soun") => Some(audio_fields(e.body)),
        _ => None,
    };
    let mut entry = SampleEntry {
        index,
        format: e.kind(),
        path: e.path.clone(),
        offset: e.offset,
        original_format: None,
        children: Vec::new(),
        protection: None,
    };
    let Some(fields) = fields else {
        return Ok(entry);
    };
    let mut kids = Vec::new();
    match e.children_after(fields, false) {
        Ok(children) => {
            for c in children {
                match c {
                    Ok(c) => kids.push(c),
                    // A clear entry with trailing padding is still playable: its children
                    // are only reported. A protected one must parse.
                    Err(err) if protected_format => return Err(err),
                    Err(_) => break,
                }
            }
        }
        Err(err) if protected_format => return Err(err),
        Err(_) => {}
    }
    for c in &kids {
        entry.children.push(c.kind());
        if c.kind() == FourCc::new(b"sinf") && entry.protection.is_none() {
            let (format, protection) = parse_sinf(c)?;
            entry.original_format = Some(format);
            entry.protection = Some(protection);
        }
    }
    if protected_format && entry.protection.is_none() {
        return Err(e.error(Mp4ErrorKind::Missing(FourCc::new(b"sinf"))));
    }
    Ok(entry)
}

fn parse_sinf(sinf: &BoxRef<'_>) -> Result<(FourCc, Protection), Mp4Error> {
    let format = parse_frma(&child(sinf, b"frma")?)?;
    let (scheme, scheme_version) = parse_schm(&child(sinf, b"schm")?)?;
    let is_cenc = CENC_SCHEMES.iter().any(|s| **s == scheme.0);
    let tenc = match child(sinf, b"schi") {
        Ok(schi) => match child(&schi, b"tenc") {
            Ok(t) => Some(parse_tenc(&t)?),
            Err(e) if is_cenc => return Err(e),
            Err(_) => None,
        },
        Err(e) if is_cenc => return Err(e),
        Err(_) => None,
    };
    Ok((
        format,
        Protection {
            scheme,
            scheme_version,
            tenc,
        },
    ))
}

/// Per-sample `seig` group description index (0: none) from the `sbgp` of `aux`, for
/// `count` samples. `in_fragment`: indexes above 0x10000 are allowed.
fn sample_groups(
    aux: &AuxBoxes<'_>,
    count: usize,
    in_fragment: bool,
) -> Result<Vec<u32>, Mp4Error> {
    let mut groups = Vec::new();
    let Some((sbgp, b)) = &aux.sbgp else {
        return Ok(groups);
    };
    for e in &sbgp.entries {
        let n = usize::try_from(e.sample_count).unwrap_or(usize::MAX);
        if n > count.saturating_sub(groups.len()) {
            return Err(b.error(Mp4ErrorKind::Inconsistent(format!(
                "sbgp maps more samples than the {count} there are"
            ))));
        }
        if e.group_description_index > FRAGMENT_GROUP_BASE && !in_fragment {
            return Err(b.error(Mp4ErrorKind::Invalid(format!(
                "group_description_index {} outside a track fragment",
                e.group_description_index
            ))));
        }
        groups.extend(std::iter::repeat_n(e.group_description_index, n));
    }
    groups.resize(count, 0);
    Ok(groups)
}

/// Fills the `encryption` of `samples` (the samples of one sample table or track fragment)
/// from their descriptions, `seig` groups and the sample auxiliary information in `aux`.
/// `aux_base`: what `saio` offsets are relative to; `src` reads auxiliary information that is
/// outside the metadata boxes (not needed when `senc` is present).
#[allow(clippy::too_many_arguments)]
fn attach_encryption(
    track: &mut Track,
    samples: &mut [Sample],
    first_number: usize,
    groups: &[u32],
    aux: &AuxBoxes<'_>,
    aux_base: u64,
    src: Option<&dyn Source>,
    at: &BoxRef<'_>,
) -> Result<(), Mp4Error> {
    // The parameters of every sample (None: clear).
    let mut params: Vec<Option<(FourCc, &CencParams)>> = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let entry = usize::try_from(s.description_index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| track.entries.get(i));
        let p = match entry.and_then(|e| e.protection.as_ref()) {
            None => None,
            Some(protection) => {
                let tenc = protection.tenc.as_ref().ok_or_else(|| {
                    at.error(Mp4ErrorKind::Unsupported(format!(
                        "scheme '{}' is not Common Encryption",
                        protection.scheme
                    )))
                })?;
                let group = groups.get(i).copied().unwrap_or(0);
                let chosen = match group {
                    0 => &tenc.params,
                    g if g > FRAGMENT_GROUP_BASE => aux
                        .seig
                        .get(index_of(g.saturating_sub(FRAGMENT_GROUP_BASE)))
                        .ok_or_else(|| {
                            at.error(Mp4ErrorKind::Inconsistent(format!(
                                "sample group index {g}: no such seig entry in the track fragment"
                            )))
                        })?,
                    g => track.stbl_seig.get(index_of(g)).ok_or_else(|| {
                        at.error(Mp4ErrorKind::Inconsistent(format!(
                            "sample group index {g}: no such seig entry in the sample table"
                        )))
                    })?,
                };
                chosen.is_protected.then_some((protection.scheme, chosen))
            }
        };
        params.push(p);
    }
    let iv_sizes: Vec<u8> = params
        .iter()
        .map(|p| p.map_or(0, |(_, p)| p.per_sample_iv_size))
        .collect();

    let saiz_saio = aux.saiz.is_some() && aux.saio.is_some();
    if aux.saiz.is_some() != aux.saio.is_some() {
        let missing = if aux.saiz.is_some() { b"saio" } else { b"saiz" };
        return Err(at.error(Mp4ErrorKind::Missing(FourCc::new(missing))));
    }
    let entries: Vec<SencEntry> = if let Some(senc) = &aux.senc {
        let (entries, with_subsamples) = parse_senc(senc, &iv_sizes)?;
        if let (Some((saiz, saiz_box)), Some((saio, saio_box))) = (&aux.saiz, &aux.saio) {
            check_saiz(saiz, saiz_box, |i| {
                entries.get(i).map_or(0, |e| e.aux_size(with_subsamples))
            })?;
            // The auxiliary information `saio` points at must be the `senc` entries
            // (after version/flags and sample_count).
            let expected = senc.body_offset().saturating_add(8);
            let actual = saio_offset(saio, saio_box, aux_base)?;
            if !entries.is_empty() && actual != expected {
                return Err(saio_box.error(Mp4ErrorKind::Inconsistent(format!(
                    "saio points at file offset {actual}, the senc entries start at {expected}"
                ))));
            }
        }
        track.senc_boxes = track.senc_boxes.saturating_add(1);
        entries
    } else if let (Some((saiz, saiz_box)), Some((saio, saio_box)), Some(src)) =
        (&aux.saiz, &aux.saio, src)
    {
        read_aux_info(saiz, saiz_box, saio, saio_box, aux_base, &iv_sizes, src)?
    } else if let Some(i) = iv_sizes.iter().position(|&s| s > 0) {
        return Err(at
            .error(Mp4ErrorKind::Missing(FourCc::new(b"senc")))
            .with_context(format!(
                "track {} sample {} has a per-sample IV and there is no senc (or saiz/saio)",
                track.id,
                first_number.saturating_add(i).saturating_add(1)
            )));
    } else {
        Vec::new()
    };
    if saiz_saio {
        track.saiz_saio_boxes = track.saiz_saio_boxes.saturating_add(1);
    }
    if aux.sbgp.is_some() {
        track.seig_groups = track.seig_groups.saturating_add(1);
    }

    for (i, (sample, p)) in samples.iter_mut().zip(params).enumerate() {
        let Some((scheme, p)) = p else { continue };
        let entry = entries.get(i).cloned().unwrap_or_default();
        let iv = if p.per_sample_iv_size > 0 {
            entry.iv
        } else {
            p.constant_iv.clone().unwrap_or_default()
        };
        if !entry.subsamples.is_empty() {
            let total = entry
                .subsamples
                .iter()
                .try_fold(0u64, |acc, &(c, p)| {
                    acc.checked_add(u64::from(c))?.checked_add(u64::from(p))
                })
                .unwrap_or(u64::MAX);
            if total != u64::from(sample.size) {
                return Err(at.error(Mp4ErrorKind::Inconsistent(format!(
                    "track {} sample {}: its subsamples cover {total} bytes, the sample has {}",
                    track.id,
                    first_number.saturating_add(i).saturating_add(1),
                    sample.size
                ))));
            }
        }
        sample.encryption = Some(SampleEncryption {
            scheme,
            key_id: p.key_id,
            per_sample_iv_size: p.per_sample_iv_size,
            iv,
            pattern: p.pattern,
            subsamples: entry.subsamples,
        });
    }
    Ok(())
}

impl Mp4Error {
    /// The same error with `context` prepended to its message (for `Missing` errors that need
    /// to say why the box is needed).
    fn with_context(self, context: String) -> Mp4Error {
        let kind = Mp4ErrorKind::Inconsistent(format!("{context} ({})", self.kind));
        Mp4Error { kind, ..self }
    }
}

/// The 0-based index of a 1-based group description index.
fn index_of(g: u32) -> usize {
    usize::try_from(g.saturating_sub(1)).unwrap_or(usize::MAX)
}

/// Checks that `saiz` gives every sample the size `size_of` computes.
fn check_saiz(
    saiz: &mp4_atom::Saiz,
    b: &BoxRef<'_>,
    size_of: impl Fn(usize) -> usize,
) -> Result<(), Mp4Error> {
    let count = usize::try_from(saiz.sample_count).unwrap_or(usize::MAX);
    for i in 0..count {
        let declared = saiz_size(saiz, i);
        let actual = size_of(i);
        if usize::from(declared) != actual {
            return Err(b.error(Mp4ErrorKind::Inconsistent(format!(
                "saiz gives sample {} {declared} bytes of auxiliary information, senc has {actual}",
                i.saturating_add(1)
            ))));
        }
    }
    Ok(())
}

fn saiz_size(saiz: &mp4_atom::Saiz, i: usize) -> u8 {
    if saiz.default_sample_info_size != 0 {
        saiz.default_sample_info_size
    } else {
        saiz.sample_info_size.get(i).copied().unwrap_or(0)
    }
}

/// The file offset of the auxiliary information: `saio` must have one offset (all samples'
/// information contiguous), relative to `base`.
fn saio_offset(saio: &mp4_atom::Saio, b: &BoxRef<'_>, base: u64) -> Result<u64, Mp4Error> {
    match saio.offsets.as_slice() {
        [offset] => base
            .checked_add(*offset)
            .ok_or_else(|| b.error(Mp4ErrorKind::Overflow("saio offset"))),
        other => Err(b.error(Mp4ErrorKind::Unsupported(format!(
            "saio with {} offsets (1 supported)",
            other.len()
        )))),
    }
}

/// Sample auxiliary information located by `saiz`/`saio` only (no `senc`), read from `src`.
fn read_aux_info(
    saiz: &mp4_atom::Saiz,
    saiz_box: &BoxRef<'_>,
    saio: &mp4_atom::Saio,
    saio_box: &BoxRef<'_>,
    base: u64,
    iv_sizes: &[u8],
    src: &dyn Source,
) -> Result<Vec<SencEntry>, Mp4Error> {
    if usize::try_from(saiz.sample_count).ok() != Some(iv_sizes.len()) {
        return Err(saiz_box.error(Mp4ErrorKind::Inconsistent(format!(
            "saiz has {} samples, there are {}",
            saiz.sample_count,
            iv_sizes.len()
        ))));
    }
    let total: usize = (0..iv_sizes.len())
        .map(|i| usize::from(saiz_size(saiz, i)))
        .sum();
    let offset = saio_offset(saio, saio_box, base)?;
    let mut bytes = vec![0u8; total];
    src.read_exact_at(offset, &mut bytes).map_err(|_| {
        saio_box.error(Mp4ErrorKind::Truncated {
            needed: to_u64(total),
            available: src.len().saturating_sub(offset),
        })
    })?;
    let mut r = Reader::new(&bytes, offset, &saio_box.path);
    let mut entries = Vec::new();
    for (i, &iv_size) in iv_sizes.iter().enumerate() {
        let size = usize::from(saiz_size(saiz, i));
        let at = r.offset();
        let one = r.take(size)?;
        let mut e = Reader::new(one, at, &saio_box.path);
        let iv = e.take(usize::from(iv_size))?.to_vec();
        let mut subsamples = Vec::new();
        if e.remaining() > 0 {
            let n = e.u16()?;
            for _ in 0..n {
                subsamples.push((e.u16()?, e.u32()?));
            }
        }
        e.finish()?;
        entries.push(SencEntry { iv, subsamples });
    }
    Ok(entries)
}

/// One `moof`: its track fragments' samples are appended to their tracks.
fn parse_moof(
    movie: &mut Movie,
    moof: &BoxRef<'_>,
    number: u32,
    src: &dyn Source,
) -> Result<(), Mp4Error> {
    let mut previous_end: Option<u64> = None;
    for c in moof.children() {
        let c = c?;
        match &c.kind().0 {
            b"traf" => {
                let end = parse_traf(movie, moof, &c, number, previous_end, src)?;
                previous_end = Some(end);
            }
            b"pssh" => movie.pssh.push(pssh_box(&c)?),
            _ => {}
        }
    }
    Ok(())
}

/// The base data offset of a track fragment (ISO/IEC 14496-12 §8.8.7.1): an explicit base,
/// else the `moof` (default-base-is-moof, or the first `traf`), else where the previous
/// `traf`'s data ended.
pub(crate) fn traf_base(tfhd: &mp4_atom::Tfhd, moof_offset: u64, previous_end: Option<u64>) -> u64 {
    match (
        tfhd.base_data_offset,
        tfhd.default_base_is_moof,
        previous_end,
    ) {
        (Some(b), _, _) => b,
        (None, true, _) | (None, false, None) => moof_offset,
        (None, false, Some(end)) => end,
    }
}

/// One `traf`; returns the end of its sample data (the default base of the next `traf`).
fn parse_traf(
    movie: &mut Movie,
    moof: &BoxRef<'_>,
    traf: &BoxRef<'_>,
    number: u32,
    previous_end: Option<u64>,
    src: &dyn Source,
) -> Result<u64, Mp4Error> {
    let mut tfhd = None;
    let mut truns = Vec::new();
    let mut aux = AuxBoxes::default();
    for c in traf.children() {
        let c = c?;
        match &c.kind().0 {
            b"tfhd" => set_once(&mut tfhd, decode_atom::<mp4_atom::Tfhd>(&c)?, &c)?,
            b"trun" => truns.push((decode_atom::<mp4_atom::Trun>(&c)?, c.clone())),
            _ => aux.take(&c)?,
        }
    }
    let tfhd = tfhd.ok_or_else(|| traf.error(Mp4ErrorKind::Missing(FourCc::new(b"tfhd"))))?;
    let file_size = movie.file_size;
    let track = movie
        .tracks
        .iter_mut()
        .find(|t| t.id == tfhd.track_id)
        .ok_or_else(|| {
            traf.error(Mp4ErrorKind::Inconsistent(format!(
                "tfhd names track {}, which moov does not have",
                tfhd.track_id
            )))
        })?;
    let trex = track.trex.clone();
    let description_index = tfhd
        .sample_description_index
        .or(trex.as_ref().map(|t| t.default_sample_description_index))
        .ok_or_else(|| traf.error(Mp4ErrorKind::Missing(FourCc::new(b"trex"))))?;
    check_description(track, description_index, traf)?;
    let base = traf_base(&tfhd, moof.offset, previous_end);
    let default_size = tfhd
        .default_sample_size
        .or(trex.as_ref().map(|t| t.default_sample_size));

    let mut samples = Vec::new();
    let mut cursor = base;
    for (k, (trun, trun_box)) in truns.iter().enumerate() {
        if let Some(d) = trun.data_offset {
            cursor = base
                .checked_add_signed(i64::from(d))
                .ok_or_else(|| trun_box.error(Mp4ErrorKind::Overflow("trun data offset")))?;
        } else if k == 0 {
            cursor = base;
        }
        for entry in trun.samples.iter() {
            let size = entry.size.or(default_size).ok_or_else(|| {
                trun_box.error(Mp4ErrorKind::Invalid(
                    "no sample size in trun, tfhd or trex".into(),
                ))
            })?;
            let sample = Sample {
                offset: cursor,
                size,
                description_index,
                fragment: Some(number),
                encryption: None,
            };
            check_in_file(track, &sample, samples.len(), file_size, trun_box)?;
            check_count(track.samples.len(), samples.len(), trun_box)?;
            cursor = cursor.saturating_add(u64::from(size));
            samples.push(sample);
        }
    }
    let groups = sample_groups(&aux, samples.len(), true)?;
    let first_number = track.samples.len();
    attach_encryption(
        track,
        &mut samples,
        first_number,
        &groups,
        &aux,
        base,
        Some(src),
        traf,
    )?;
    track.samples.append(&mut samples);
    Ok(cursor)
}
