//! `cdm inspect`: what is in an encrypted MP4 file, as a report for people (text) or
//! scripts (JSON, [`InspectReport`] serialized).

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use serde::Serialize;

use crate::error::CliError;
use crate::mp4::{self, FileSource, Movie, SampleEntry, Track};

/// Well-known DRM system IDs, for the report (DASH-IF identifiers registry).
const SYSTEMS: [(&str, [u8; 16]); 4] = [
    ("common", cdm_core::init_data::COMMON_SYSTEM_ID),
    (
        "widevine",
        [
            0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d,
            0x21, 0xed,
        ],
    ),
    (
        "playready",
        [
            0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88,
            0x5f, 0x95,
        ],
    ),
    (
        "fairplay",
        [
            0x94, 0xce, 0x86, 0xfb, 0x07, 0xff, 0x4f, 0x43, 0xad, 0xb8, 0x93, 0xd2, 0xfa, 0x96,
            0x8c, 0xa2,
        ],
    ),
];

/// Codec configuration boxes, to name the codec box of a sample entry.
const CODEC_CONFIGS: [&[u8; 4]; 11] = [
    b"avcC", b"hvcC", b"av1C", b"vpcC", b"esds", b"dac3", b"dec3", b"dOps", b"dfLa", b"alac",
    b"dac4",
];

/// What `cdm inspect` reports about a file.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    /// The file name as given.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file is fragmented (`moov` has `mvex`).
    pub fragmented: bool,
    /// Number of `moof` boxes.
    pub fragments: u32,
    /// The `pssh` boxes, in file order.
    pub pssh: Vec<PsshReport>,
    /// The tracks, in `moov` order.
    pub tracks: Vec<TrackReport>,
}

/// A `pssh` box.
#[derive(Clone, Debug, Serialize)]
pub struct PsshReport {
    /// Where it is (`moov/pssh[1]`).
    pub path: String,
    /// File offset.
    pub offset: u64,
    /// System ID as a UUID (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`).
    pub system_id: String,
    /// The system's common name, if well known (`common`, `widevine`, …).
    pub system: Option<&'static str>,
    /// Box version.
    pub version: u8,
    /// Key IDs (version 1), in hex.
    pub key_ids: Vec<String>,
    /// Bytes of system-specific data.
    pub data_size: u32,
}

/// A track.
#[derive(Clone, Debug, Serialize)]
pub struct TrackReport {
    /// Track ID.
    pub id: u32,
    /// Handler type (`vide`, `soun`, …).
    pub handler: String,
    /// `video`, `audio` or `other`.
    pub kind: &'static str,
    /// Sample descriptions (`stsd` entries), by index.
    pub sample_descriptions: Vec<SampleDescriptionReport>,
    /// Sample counts.
    pub samples: SampleCounts,
    /// Distinct key IDs of the encrypted samples, in hex, in order of first use.
    pub key_ids: Vec<String>,
    /// Distinct per-sample IV sizes of the encrypted samples (0: constant IV).
    pub per_sample_iv_sizes: Vec<u8>,
    /// Where the sample auxiliary information (IVs, subsample maps) is.
    pub sample_aux_info: AuxInfoReport,
    /// Sample tables / track fragments that map samples to `seig` sample groups.
    pub seig_sample_groups: u32,
}

/// Sample counts of a track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SampleCounts {
    /// All samples.
    pub total: u64,
    /// Encrypted samples.
    pub encrypted: u64,
    /// Clear samples.
    pub clear: u64,
    /// Clear samples before the first encrypted one (all of them if none is encrypted).
    pub clear_lead: u64,
    /// Encrypted samples with a subsample map.
    pub with_subsamples: u64,
}

/// Which boxes carry a track's sample auxiliary information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuxInfoReport {
    /// Sample tables / track fragments with a `senc` box.
    pub senc: u32,
    /// Sample tables / track fragments with `saiz` and `saio`.
    pub saiz_saio: u32,
}

/// A sample description.
#[derive(Clone, Debug, Serialize)]
pub struct SampleDescriptionReport {
    /// 1-based index.
    pub index: u32,
    /// Its format (`encv`, `avc1`, …).
    pub format: String,
    /// The original format from `frma` (protected entries).
    pub original_format: Option<String>,
    /// The codec configuration box (`avcC`, `esds`, …), if any.
    pub codec_config: Option<String>,
    /// All child boxes, in order.
    pub children: Vec<String>,
    /// The protection; `null` for a clear entry.
    pub protection: Option<ProtectionReport>,
}

/// The protection of a sample description.
#[derive(Clone, Debug, Serialize)]
pub struct ProtectionReport {
    /// Scheme type (`cenc`, `cens`, `cbcs`, `cbc1`, or another).
    pub scheme: String,
    /// Scheme version as `major.minor` (`1.0`).
    pub scheme_version: String,
    /// `tenc` version (1 carries the pattern); `null` without `tenc`.
    pub tenc_version: Option<u8>,
    /// Default key ID, in hex.
    pub default_kid: Option<String>,
    /// Whether samples are protected by default.
    pub default_is_protected: Option<bool>,
    /// Default per-sample IV size (0: constant IV).
    pub per_sample_iv_size: Option<u8>,
    /// The constant IV, in hex.
    pub constant_iv: Option<String>,
    /// The `crypt:skip` pattern (version 1 `tenc` only).
    pub pattern: Option<PatternReport>,
}

/// A `crypt:skip` pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PatternReport {
    /// Encrypted 16-byte blocks.
    pub crypt: u8,
    /// Clear 16-byte blocks.
    pub skip: u8,
}

/// Formats a 16-byte ID as a UUID.
fn uuid(id: &[u8; 16]) -> String {
    let h = hex::encode(id);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// Builds the report of a parsed file.
pub fn report(file: &str, movie: &Movie) -> InspectReport {
    InspectReport {
        file: file.to_string(),
        size: movie.file_size,
        fragmented: movie.fragmented,
        fragments: movie.fragments,
        pssh: movie
            .pssh
            .iter()
            .map(|p| PsshReport {
                path: p.path.clone(),
                offset: p.offset,
                system_id: uuid(&p.pssh.system_id),
                system: SYSTEMS
                    .iter()
                    .find(|(_, id)| *id == p.pssh.system_id)
                    .map(|(name, _)| *name),
                version: p.pssh.version,
                key_ids: p.pssh.key_ids.iter().map(hex::encode).collect(),
                data_size: p.pssh.data_len,
            })
            .collect(),
        tracks: movie.tracks.iter().map(track_report).collect(),
    }
}

fn track_report(t: &Track) -> TrackReport {
    let mut counts = SampleCounts::default();
    let mut key_ids: Vec<[u8; 16]> = Vec::new();
    let mut iv_sizes: Vec<u8> = Vec::new();
    let mut seen_encrypted = false;
    for s in &t.samples {
        counts.total = counts.total.saturating_add(1);
        match &s.encryption {
            Some(e) => {
                seen_encrypted = true;
                counts.encrypted = counts.encrypted.saturating_add(1);
                if !e.subsamples.is_empty() {
                    counts.with_subsamples = counts.with_subsamples.saturating_add(1);
                }
                if !key_ids.contains(&e.key_id) {
                    key_ids.push(e.key_id);
                }
                if !iv_sizes.contains(&e.per_sample_iv_size) {
                    iv_sizes.push(e.per_sample_iv_size);
                }
            }
            None => {
                counts.clear = counts.clear.saturating_add(1);
                if !seen_encrypted {
                    counts.clear_lead = counts.clear_lead.saturating_add(1);
                }
            }
        }
    }
    TrackReport {
        id: t.id,
        handler: t.handler.to_string(),
        kind: match &t.handler.0 {
            b"vide" => "video",
            b"soun" => "audio",
            _ => "other",
        },
        sample_descriptions: t.entries.iter().map(entry_report).collect(),
        samples: counts,
        key_ids: key_ids.iter().map(hex::encode).collect(),
        per_sample_iv_sizes: iv_sizes,
        sample_aux_info: AuxInfoReport {
            senc: t.senc_boxes,
            saiz_saio: t.saiz_saio_boxes,
        },
        seig_sample_groups: t.seig_groups,
    }
}

fn entry_report(e: &SampleEntry) -> SampleDescriptionReport {
    SampleDescriptionReport {
        index: e.index,
        format: e.format.to_string(),
        original_format: e.original_format.map(|f| f.to_string()),
        codec_config: e
            .children
            .iter()
            .find(|c| CODEC_CONFIGS.iter().any(|k| **k == c.0))
            .map(|c| c.to_string()),
        children: e.children.iter().map(|c| c.to_string()).collect(),
        protection: e.protection.as_ref().map(|p| {
            let tenc = p.tenc.as_ref();
            ProtectionReport {
                scheme: p.scheme.to_string(),
                scheme_version: format!("{}.{}", p.scheme_version >> 16, p.scheme_version & 0xffff),
                tenc_version: tenc.map(|t| t.version),
                default_kid: tenc.map(|t| hex::encode(t.params.key_id)),
                default_is_protected: tenc.map(|t| t.params.is_protected),
                per_sample_iv_size: tenc.map(|t| t.params.per_sample_iv_size),
                constant_iv: tenc.and_then(|t| t.params.constant_iv.as_ref().map(hex::encode)),
                pattern: tenc.and_then(|t| t.params.pattern).map(|p| PatternReport {
                    crypt: p.crypt,
                    skip: p.skip,
                }),
            }
        }),
    }
}

/// Opens and parses `path`, and builds its report.
pub fn inspect_file(path: &Path) -> Result<InspectReport, CliError> {
    let src = File::open(path)
        .and_then(FileSource::new)
        .map_err(|source| CliError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let movie = mp4::parse(&src).map_err(|e| CliError::from_read(path, e))?;
    Ok(report(&path.display().to_string(), &movie))
}

/// The report as text, for a terminal.
pub fn render_text(r: &InspectReport) -> String {
    let mut out = String::new();
    let layout = if r.fragmented {
        format!("fragmented, {} fragments", r.fragments)
    } else {
        "not fragmented".to_string()
    };
    let _ = writeln!(out, "{}: {} bytes, {layout}", r.file, r.size);
    for p in &r.pssh {
        let name = p.system.map(|s| format!(" ({s})")).unwrap_or_default();
        let kids = if p.key_ids.is_empty() {
            String::new()
        } else {
            format!(", key IDs {}", p.key_ids.join(" "))
        };
        let _ = writeln!(
            out,
            "pssh {} v{}: system {}{name}{kids}, {} data bytes",
            p.path, p.version, p.system_id, p.data_size
        );
    }
    if r.pssh.is_empty() {
        let _ = writeln!(out, "pssh: none");
    }
    for t in &r.tracks {
        let _ = writeln!(out, "track {} ({}, {})", t.id, t.kind, t.handler);
        for d in &t.sample_descriptions {
            let format = match &d.original_format {
                Some(o) => format!("{} (original format {o})", d.format),
                None => d.format.clone(),
            };
            let codec = d
                .codec_config
                .as_ref()
                .map(|c| format!(", codec box {c}"))
                .unwrap_or_default();
            let protection = match &d.protection {
                None => "clear".to_string(),
                Some(p) => {
                    let mut s = format!("scheme {} {}", p.scheme, p.scheme_version);
                    if let Some(kid) = &p.default_kid {
                        let _ = write!(s, ", KID {kid}");
                    }
                    if let Some(iv) = p.per_sample_iv_size {
                        let _ = write!(s, ", per-sample IV size {iv}");
                    }
                    if let Some(iv) = &p.constant_iv {
                        let _ = write!(s, ", constant IV {iv}");
                    }
                    if let Some(pat) = p.pattern {
                        let _ = write!(s, ", pattern {}:{}", pat.crypt, pat.skip);
                    }
                    if p.default_is_protected == Some(false) {
                        s.push_str(", not protected by default");
                    }
                    s
                }
            };
            let _ = writeln!(
                out,
                "  sample description {}: {format}{codec}; {protection}",
                d.index
            );
        }
        let s = t.samples;
        let _ = writeln!(
            out,
            "  samples: {} total, {} encrypted ({} with subsamples), {} clear, clear lead {}",
            s.total, s.encrypted, s.with_subsamples, s.clear, s.clear_lead
        );
        if s.encrypted > 0 {
            let ivs: Vec<String> = t.per_sample_iv_sizes.iter().map(u8::to_string).collect();
            let _ = writeln!(
                out,
                "  key IDs {}; per-sample IV sizes {}",
                t.key_ids.join(" "),
                ivs.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "  sample auxiliary information: senc in {}, saiz/saio in {}; seig sample groups in {}",
            t.sample_aux_info.senc, t.sample_aux_info.saiz_saio, t.seig_sample_groups
        );
    }
    out
}
