//! `cdm inspect` on real media made in the test (ffmpeg + Shaka Packager, see `common`):
//! schemes, key IDs, IV sizes, patterns, pssh boxes, track kinds, fragment and clear-lead
//! sample counts, and the sample offsets and subsample maps checked against the clear
//! source's bytes. Malformed versions of the same files give errors, never panics.
//!
//! Every test here runs host tools (ffmpeg, the packager): they are named `media_*` so that
//! the qemu-user runs of scripts/test-all.sh can skip them, as they skip other tests that
//! start host processes.

mod common;

use std::path::Path;

use cdm::error::exit;
use cdm::inspect::{inspect_file, InspectReport, PatternReport, TrackReport};
use cdm::mp4::{self, FileSource, Movie, Mp4ErrorKind, Source};
use common::{media, FPS, KID, SCHEMES, SECONDS};

fn inspect(path: &Path) -> InspectReport {
    inspect_file(path).unwrap_or_else(|e| panic!("inspect {}: {e}", path.display()))
}

fn parse(path: &Path) -> (Movie, FileSource) {
    let src = FileSource::new(std::fs::File::open(path).unwrap()).unwrap();
    let movie = mp4::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (movie, src)
}

fn only_track(r: &InspectReport) -> &TrackReport {
    assert_eq!(r.tracks.len(), 1, "{}: one track per Shaka output", r.file);
    &r.tracks[0]
}

/// The (video, audio) sample counts of the clear source, as ffmpeg wrote them.
fn source_counts() -> (u64, u64) {
    let r = inspect(&media("media").clear());
    assert!(!r.fragmented);
    assert_eq!(r.tracks.len(), 2);
    assert!(r.pssh.is_empty());
    for t in &r.tracks {
        assert_eq!(t.samples.encrypted, 0);
        assert!(t.sample_descriptions.iter().all(|d| d.protection.is_none()));
    }
    (r.tracks[0].samples.total, r.tracks[1].samples.total)
}

#[test]
fn media_shaka_packager_all_schemes_with_and_without_clear_lead() {
    let (video_total, audio_total) = source_counts();
    assert_eq!(video_total, SECONDS * FPS);
    for scheme in SCHEMES {
        for clear_lead in [0, 1] {
            for kind in ["video", "audio"] {
                let path = media("media").shaka(kind, scheme, clear_lead);
                let r = inspect(&path);
                let what = format!("{kind} {scheme} clear lead {clear_lead}");
                assert!(r.fragmented, "{what}");
                assert_eq!(u64::from(r.fragments), SECONDS, "{what}: 1 s fragments");

                // One common-system v1 pssh in moov listing the KID.
                assert_eq!(r.pssh.len(), 1, "{what}");
                let p = &r.pssh[0];
                assert_eq!(p.path, "moov/pssh[1]");
                assert_eq!(p.system_id, "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b");
                assert_eq!(p.system, Some("common"));
                assert_eq!(
                    (p.version, p.key_ids.as_slice()),
                    (1, &[KID.to_string()][..])
                );

                let t = only_track(&r);
                let (handler, original, codec) = match kind {
                    "video" => ("vide", "avc1", "avcC"),
                    _ => ("soun", "mp4a", "esds"),
                };
                assert_eq!((t.kind, t.handler.as_str()), (kind, handler), "{what}");

                // The protected sample description.
                let d = &t.sample_descriptions[0];
                let protected_format = if kind == "video" { "encv" } else { "enca" };
                assert_eq!(d.format, protected_format, "{what}");
                assert_eq!(d.original_format.as_deref(), Some(original), "{what}");
                assert_eq!(d.codec_config.as_deref(), Some(codec), "{what}");
                let pr = d.protection.as_ref().expect("protected");
                assert_eq!(
                    (pr.scheme.as_str(), pr.scheme_version.as_str()),
                    (scheme, "1.0")
                );
                assert_eq!(pr.default_kid.as_deref(), Some(KID), "{what}");
                assert_eq!(pr.default_is_protected, Some(true), "{what}");
                // What Shaka Packager 3.4.2 really writes: 8-byte IVs for the CTR schemes,
                // 16-byte IVs for cbc1, a 16-byte constant IV for cbcs; the pattern schemes
                // get a version 1 tenc with 1:9 for video and 0:0 (whole-block encryption)
                // for audio; cenc and cbc1 a version 0 tenc (no pattern).
                let (iv, constant_iv, pattern) = match (scheme, kind) {
                    ("cenc", _) => (8, false, None),
                    ("cbc1", _) => (16, false, None),
                    ("cens", "video") => (8, false, Some((1, 9))),
                    ("cens", _) => (8, false, Some((0, 0))),
                    ("cbcs", "video") => (0, true, Some((1, 9))),
                    _ => (0, true, Some((0, 0))),
                };
                assert_eq!(pr.per_sample_iv_size, Some(iv), "{what}");
                assert_eq!(pr.tenc_version, Some(u8::from(pattern.is_some())), "{what}");
                assert_eq!(
                    pr.constant_iv.as_ref().map(String::len),
                    constant_iv.then_some(32),
                    "{what}"
                );
                assert_eq!(
                    pr.pattern,
                    pattern.map(|(crypt, skip)| PatternReport { crypt, skip }),
                    "{what}"
                );

                // A clear lead adds a clear sample description, used by the first fragment.
                let s = t.samples;
                let total = if kind == "video" {
                    video_total
                } else {
                    audio_total
                };
                assert_eq!(s.total, total, "{what}");
                assert_eq!(s.encrypted + s.clear, s.total, "{what}");
                if clear_lead == 0 {
                    assert_eq!(t.sample_descriptions.len(), 1, "{what}");
                    assert_eq!((s.clear, s.clear_lead), (0, 0), "{what}");
                } else {
                    assert_eq!(t.sample_descriptions.len(), 2, "{what}");
                    let clear = &t.sample_descriptions[1];
                    assert_eq!(clear.format, original, "{what}");
                    assert!(clear.protection.is_none(), "{what}");
                    assert_eq!(s.clear_lead, s.clear, "{what}: the clear samples lead");
                    assert!(s.clear > 0 && s.encrypted > 0, "{what}");
                    if kind == "video" {
                        assert_eq!((s.clear, s.encrypted), (FPS, (SECONDS - 1) * FPS), "{what}");
                    }
                }
                assert_eq!(t.key_ids, [KID], "{what}");
                assert_eq!(t.per_sample_iv_sizes, [iv], "{what}");
                // Video is NAL-structured: subsample maps keep the NAL headers clear.
                // Audio samples are encrypted whole.
                let with_subsamples = if kind == "video" { s.encrypted } else { 0 };
                assert_eq!(s.with_subsamples, with_subsamples, "{what}");

                // Every encrypted fragment has senc; saiz/saio too, except when there is no
                // auxiliary information at all (cbcs audio: constant IV, no subsamples).
                let encrypted_fragments = if clear_lead == 0 {
                    SECONDS
                } else {
                    SECONDS - 1
                };
                assert_eq!(
                    u64::from(t.sample_aux_info.senc),
                    encrypted_fragments,
                    "{what}"
                );
                let saiz = if (scheme, kind) == ("cbcs", "audio") {
                    0
                } else {
                    encrypted_fragments
                };
                assert_eq!(u64::from(t.sample_aux_info.saiz_saio), saiz, "{what}");
                assert_eq!(t.seig_sample_groups, 0, "{what}");
            }
        }
    }
}

#[test]
fn media_ffmpeg_non_fragmented_cenc() {
    let (video_total, audio_total) = source_counts();
    let r = inspect(&media("media").ffmpeg_cenc());
    assert!(!r.fragmented);
    assert_eq!(r.fragments, 0);
    assert!(r.pssh.is_empty(), "ffmpeg writes no pssh");
    assert_eq!(r.tracks.len(), 2);
    for (t, kind, format, original, total) in [
        (&r.tracks[0], "video", "encv", "avc1", video_total),
        (&r.tracks[1], "audio", "enca", "mp4a", audio_total),
    ] {
        assert_eq!(t.kind, kind);
        let d = &t.sample_descriptions[0];
        assert_eq!(t.sample_descriptions.len(), 1);
        assert_eq!(
            (d.format.as_str(), d.original_format.as_deref()),
            (format, Some(original))
        );
        let p = d.protection.as_ref().unwrap();
        assert_eq!(p.scheme, "cenc");
        assert_eq!(p.default_kid.as_deref(), Some(KID));
        assert_eq!((p.per_sample_iv_size, p.pattern), (Some(8), None));
        assert_eq!(t.samples.total, total);
        assert_eq!((t.samples.encrypted, t.samples.clear), (total, 0));
        // senc, saiz and saio in stbl; saio pointing at senc's entries is checked by the
        // parser.
        assert_eq!(
            (t.sample_aux_info.senc, t.sample_aux_info.saiz_saio),
            (1, 1)
        );
    }
    assert_eq!(r.tracks[0].samples.with_subsamples, video_total);
    assert_eq!(r.tracks[1].samples.with_subsamples, 0);
}

fn read(src: &FileSource, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    src.read_exact_at(offset, &mut v).unwrap();
    v
}

/// The samples the parser locates are the source's samples: clear ones byte for byte, and
/// encrypted ones in the clear ranges of their subsample maps (the NAL headers). This checks
/// sample offsets (`trun` data offsets, `stsc`/`stco`) and subsample maps against ffmpeg's
/// own clear file.
#[test]
fn media_sample_offsets_and_subsample_maps_match_the_source() {
    let m = media("media");
    let (clear, clear_src) = parse(&m.clear());
    let mut files: Vec<(String, usize, std::path::PathBuf)> = Vec::new();
    for scheme in SCHEMES {
        for lead in [0, 1] {
            files.push((
                format!("video {scheme} {lead}"),
                0,
                m.shaka("video", scheme, lead),
            ));
            files.push((
                format!("audio {scheme} {lead}"),
                1,
                m.shaka("audio", scheme, lead),
            ));
        }
    }
    files.push(("ffmpeg video".into(), 0, m.ffmpeg_cenc()));
    files.push(("ffmpeg audio".into(), 1, m.ffmpeg_cenc()));
    for (what, source_track, path) in files {
        let (movie, src) = parse(&path);
        let track = if movie.tracks.len() == 1 {
            &movie.tracks[0]
        } else {
            &movie.tracks[source_track]
        };
        let reference = &clear.tracks[source_track];
        assert_eq!(track.samples.len(), reference.samples.len(), "{what}");
        for (i, (s, c)) in track.samples.iter().zip(&reference.samples).enumerate() {
            assert_eq!(s.size, c.size, "{what} sample {}", i + 1);
            let data = read(&src, s.offset, s.size as usize);
            let source = read(&clear_src, c.offset, c.size as usize);
            match &s.encryption {
                None => assert_eq!(data, source, "{what}: clear sample {} differs", i + 1),
                Some(e) => {
                    // Whole 16-byte blocks are encrypted; a shorter protected range stays
                    // clear in the pattern schemes (23001-7 §9.6).
                    let protected: u64 = if e.subsamples.is_empty() {
                        u64::from(s.size)
                    } else {
                        e.subsamples.iter().map(|&(_, p)| u64::from(p)).sum()
                    };
                    if protected >= 16 {
                        assert_ne!(data, source, "{what}: sample {} is not encrypted", i + 1);
                    }
                    let mut pos = 0;
                    for &(clear_bytes, protected) in &e.subsamples {
                        let end = pos + clear_bytes as usize;
                        assert_eq!(data[pos..end], source[pos..end], "{what} sample {}", i + 1);
                        pos = end + protected as usize;
                    }
                    assert!(e.iv.len() == 8 || e.iv.len() == 16, "{what}");
                }
            }
        }
    }
}

/// Truncations and bogus box sizes: an error naming a box, never a panic.
#[test]
fn media_malformed_files_are_errors() {
    let m = media("media");
    for path in [m.shaka("video", "cbcs", 1), m.ffmpeg_cenc()] {
        let data = std::fs::read(&path).unwrap();
        let moov = find_box(&data, b"moov");
        // Cut inside moov, or inside the header of the last box: always an error. A cut on a
        // box boundary (e.g. after a whole fragment) is a valid, shorter file.
        let mut cuts: Vec<usize> = (1..64).collect();
        cuts.extend((moov..moov + 600).step_by(7));
        cuts.extend((0..data.len()).step_by(97));
        for cut in cuts {
            let result = mp4::parse_bytes(&data[..cut]);
            if (1..8).contains(&cut) || (moov + 1..moov + 600).contains(&cut) {
                let e = result.expect_err("truncated inside a box");
                let mp4::ReadError::Mp4(e) = e else {
                    panic!("not an input error")
                };
                assert!(!e.path.is_empty());
            }
        }

        // Bogus sizes of every box header found inside moov.
        for offset in box_offsets(&data, moov) {
            for size in [0u32, 1, 3, 7, 9, 0x7fff_ffff, u32::MAX] {
                let mut bad = data.clone();
                bad[offset..offset + 4].copy_from_slice(&size.to_be_bytes());
                // Never a panic; most are errors (size 0 may still parse: "to the end").
                let _ = mp4::parse_bytes(&bad);
            }
        }
    }

    // A specific one: the tenc box claims more bytes than its parent has.
    let path = m.shaka("video", "cenc", 0);
    let mut data = std::fs::read(&path).unwrap();
    let tenc = find_box(&data, b"tenc");
    data[tenc..tenc + 4].copy_from_slice(&9999u32.to_be_bytes());
    let e = match mp4::parse_bytes(&data) {
        Err(mp4::ReadError::Mp4(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        e.path,
        "moov/trak[1]/mdia/minf/stbl/stsd/encv[1]/sinf/schi/tenc"
    );
    assert_eq!(e.offset, tenc as u64);
    assert!(matches!(
        e.kind,
        Mp4ErrorKind::Truncated { needed: 9999, .. }
    ));
    assert_eq!(
        cdm::error::CliError::from_read(Path::new("x"), mp4::ReadError::Mp4(e)).exit_code(),
        exit::INPUT
    );
}

/// Deterministic random byte flips in the metadata of real files: never a panic.
#[test]
fn media_random_corruption_never_panics() {
    let m = media("media");
    let mut rng = cdm_testkit::rng::TestRng::new(0xcd31);
    for path in [
        m.shaka("video", "cbcs", 1),
        m.shaka("audio", "cenc", 0),
        m.ffmpeg_cenc(),
    ] {
        let data = std::fs::read(&path).unwrap();
        let moov = find_box(&data, b"moov");
        for _ in 0..400 {
            let mut bad = data.clone();
            for _ in 0..1 + rng.below(4) {
                // Mostly inside moov and the first fragment's metadata.
                let span = (data.len() - moov).min(2500) as u64;
                let at = moov + usize::try_from(rng.below(span)).unwrap();
                bad[at] = rng.array::<1>()[0];
            }
            let _ = mp4::parse_bytes(&bad);
        }
    }
}

/// The file offset of the first box of type `kind` (searched as bytes after a size field).
fn find_box(data: &[u8], kind: &[u8; 4]) -> usize {
    data.windows(4)
        .position(|w| w == kind)
        .map(|p| p - 4)
        .unwrap_or_else(|| panic!("no {kind:?}"))
}

/// Offsets of the headers of the boxes nested in the `moov` at `moov` (containers only).
fn box_offsets(data: &[u8], moov: usize) -> Vec<usize> {
    const CONTAINERS: [&[u8; 4]; 8] = [
        b"moov", b"trak", b"mdia", b"minf", b"stbl", b"sinf", b"schi", b"mvex",
    ];
    let mut out = Vec::new();
    let mut stack = vec![(moov, moov + be32(data, moov))];
    while let Some((start, end)) = stack.pop() {
        let mut at = start + 8;
        while at + 8 <= end {
            let size = be32(data, at);
            if size < 8 {
                break;
            }
            out.push(at);
            if CONTAINERS.iter().any(|k| **k == data[at + 4..at + 8]) {
                stack.push((at, at + size));
            }
            at += size;
        }
    }
    out
}

fn be32(data: &[u8], at: usize) -> usize {
    u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize
}
