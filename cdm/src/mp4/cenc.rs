//! The Common Encryption boxes (ISO/IEC 23001-7), hand-written because no maintained MP4
//! crate decodes them (see the crate documentation): `frma` and `schm` (ISO/IEC 14496-12
//! §8.12), `tenc` (23001-7 §8.2), the `seig` sample group entry (§6), `pssh` (§8.1) and
//! `senc` (§7.2). Strict: every byte accounted for, checked arithmetic, counts checked against
//! the bytes present before anything is allocated.

use super::boxes::BoxRef;
use super::error::{FourCc, Mp4Error, Mp4ErrorKind};
use super::reader::{to_u64, Reader};

/// A `crypt:skip` pattern of 16-byte blocks (23001-7 §9.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Encrypted blocks per pattern.
    pub crypt: u8,
    /// Clear blocks per pattern.
    pub skip: u8,
}

/// The encryption parameters of a sample: the defaults of `tenc`, or a `seig` sample group
/// entry that overrides them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CencParams {
    /// `isProtected`: whether samples are encrypted.
    pub is_protected: bool,
    /// `Per_Sample_IV_Size`: 0 (a constant IV), 8 or 16.
    pub per_sample_iv_size: u8,
    /// The key ID.
    pub key_id: [u8; 16],
    /// The constant IV (8 or 16 bytes) when `per_sample_iv_size` is 0 and samples are
    /// protected.
    pub constant_iv: Option<Vec<u8>>,
    /// The pattern: from a version 1 `tenc` or a `seig` entry; `None` for a version 0
    /// `tenc`, which has no pattern fields.
    pub pattern: Option<Pattern>,
}

/// A `tenc` box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenc {
    /// Box version (1 carries the pattern).
    pub version: u8,
    /// The defaults it sets.
    pub params: CencParams,
}

/// A `pssh` box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pssh {
    /// Box version (1 lists key IDs).
    pub version: u8,
    /// The DRM system ID.
    pub system_id: [u8; 16],
    /// Key IDs of a version 1 box.
    pub key_ids: Vec<[u8; 16]>,
    /// Length of the system-specific data.
    pub data_len: u32,
}

/// One sample's entry in `senc`: its IV (empty with a constant IV) and subsample map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SencEntry {
    /// The per-sample IV.
    pub iv: Vec<u8>,
    /// `(clear bytes, protected bytes)` pairs; empty when the whole sample is protected.
    pub subsamples: Vec<(u16, u32)>,
}

impl SencEntry {
    /// The size of this entry as sample auxiliary information (what `saiz` records).
    pub fn aux_size(&self, with_subsamples: bool) -> usize {
        let map = if with_subsamples {
            self.subsamples.len().saturating_mul(6).saturating_add(2)
        } else {
            0
        };
        self.iv.len().saturating_add(map)
    }
}

/// `senc` flag: each entry carries a subsample map (§7.2.2).
pub const SENC_USE_SUBSAMPLES: u32 = 0x2;

/// The original format of a protected sample entry (`frma`).
pub fn parse_frma(b: &BoxRef<'_>) -> Result<FourCc, Mp4Error> {
    let mut r = b.reader();
    let format = FourCc(r.array()?);
    r.finish()?;
    Ok(format)
}

/// The scheme type and version of `schm`.
pub fn parse_schm(b: &BoxRef<'_>) -> Result<(FourCc, u32), Mp4Error> {
    let mut r = b.reader();
    let (version, flags) = r.version_flags()?;
    b.check_version(version, 0)?;
    let scheme = FourCc(r.array()?);
    let scheme_version = r.u32()?;
    if flags & 1 != 0 {
        // scheme_uri: a null-terminated string to the end of the box.
        r.take(r.remaining())?;
    }
    r.finish()?;
    Ok((scheme, scheme_version))
}

/// Reads `isProtected`, `Per_Sample_IV_Size`, the KID and the constant IV, shared by `tenc`
/// and `seig`.
fn read_params(r: &mut Reader<'_, '_>, pattern: Option<Pattern>) -> Result<CencParams, Mp4Error> {
    let is_protected = match r.u8()? {
        0 => false,
        1 => true,
        n => {
            return Err(r.error(Mp4ErrorKind::Invalid(format!(
                "isProtected is {n} (0 or 1 allowed)"
            ))))
        }
    };
    let per_sample_iv_size = r.u8()?;
    if ![0, 8, 16].contains(&per_sample_iv_size) {
        return Err(r.error(Mp4ErrorKind::Invalid(format!(
            "Per_Sample_IV_Size is {per_sample_iv_size} (0, 8 or 16 allowed)"
        ))));
    }
    let key_id = r.array()?;
    let constant_iv = if is_protected && per_sample_iv_size == 0 {
        let len = r.u8()?;
        if len != 8 && len != 16 {
            return Err(r.error(Mp4ErrorKind::Invalid(format!(
                "constant_IV_size is {len} (8 or 16 allowed)"
            ))));
        }
        Some(r.take(usize::from(len))?.to_vec())
    } else {
        None
    };
    Ok(CencParams {
        is_protected,
        per_sample_iv_size,
        key_id,
        constant_iv,
        pattern,
    })
}

fn pattern_of(byte: u8) -> Pattern {
    Pattern {
        crypt: byte >> 4,
        skip: byte & 0x0f,
    }
}

/// A `tenc` box (§8.2.2), versions 0 and 1.
pub fn parse_tenc(b: &BoxRef<'_>) -> Result<Tenc, Mp4Error> {
    let mut r = b.reader();
    let (version, _flags) = r.version_flags()?;
    b.check_version(version, 1)?;
    r.u8()?; // reserved
    let pattern_byte = r.u8()?; // reserved in version 0
    let pattern = (version == 1).then(|| pattern_of(pattern_byte));
    let params = read_params(&mut r, pattern)?;
    r.finish()?;
    Ok(Tenc { version, params })
}

/// A `CencSampleEncryptionInformationGroupEntry` (`seig`, §6): the body of one `sgpd` entry,
/// found at file offset `offset` in the box at `path`.
pub fn parse_seig(bytes: &[u8], offset: u64, path: &str) -> Result<CencParams, Mp4Error> {
    let mut r = Reader::new(bytes, offset, path);
    let params = read_seig(&mut r)?;
    r.finish()?;
    Ok(params)
}

/// Reads one `seig` entry from `r`: its fields say how long it is.
pub(crate) fn read_seig(r: &mut Reader<'_, '_>) -> Result<CencParams, Mp4Error> {
    r.u8()?; // reserved
    let pattern = pattern_of(r.u8()?);
    read_params(r, Some(pattern))
}

/// A `pssh` box (§8.1.1), versions 0 and 1.
pub fn parse_pssh(b: &BoxRef<'_>) -> Result<Pssh, Mp4Error> {
    let mut r = b.reader();
    let (version, _flags) = r.version_flags()?;
    b.check_version(version, 1)?;
    let system_id = r.array()?;
    let mut key_ids = Vec::new();
    if version == 1 {
        let count = r.u32()?;
        let bytes = u64::from(count).saturating_mul(16);
        if bytes > to_u64(r.remaining()) {
            return Err(r.error(Mp4ErrorKind::Truncated {
                needed: bytes,
                available: to_u64(r.remaining()),
            }));
        }
        for _ in 0..count {
            key_ids.push(r.array()?);
        }
    }
    let data_len = r.u32()?;
    r.take(usize::try_from(data_len).unwrap_or(usize::MAX))?;
    r.finish()?;
    Ok(Pssh {
        version,
        system_id,
        key_ids,
        data_len,
    })
}

/// A `senc` box (§7.2.2) for samples whose per-sample IV sizes are `iv_sizes` (one per
/// sample, 0 for a constant IV or an unprotected sample: the box itself does not say).
/// Returns the entries and whether they carry subsample maps.
pub fn parse_senc(b: &BoxRef<'_>, iv_sizes: &[u8]) -> Result<(Vec<SencEntry>, bool), Mp4Error> {
    let mut r = b.reader();
    let (version, flags) = r.version_flags()?;
    b.check_version(version, 0)?;
    let with_subsamples = flags & SENC_USE_SUBSAMPLES != 0;
    let count = r.u32()?;
    if u64::from(count) != to_u64(iv_sizes.len()) {
        return Err(b.error(Mp4ErrorKind::Inconsistent(format!(
            "sample_count is {count}, the track fragment has {} samples",
            iv_sizes.len()
        ))));
    }
    let mut entries = Vec::new();
    for &iv_size in iv_sizes {
        let iv = r.take(usize::from(iv_size))?.to_vec();
        let mut subsamples = Vec::new();
        if with_subsamples {
            let n = r.u16()?;
            let bytes = usize::from(n).saturating_mul(6);
            if bytes > r.remaining() {
                return Err(r.error(Mp4ErrorKind::Truncated {
                    needed: to_u64(bytes),
                    available: to_u64(r.remaining()),
                }));
            }
            for _ in 0..n {
                subsamples.push((r.u16()?, r.u32()?));
            }
        }
        entries.push(SencEntry { iv, subsamples });
    }
    r.finish()?;
    Ok((entries, with_subsamples))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::boxes::Children;

    fn one_box(data: &[u8]) -> BoxRef<'_> {
        Children::new(data, 0, "", false).next().unwrap().unwrap()
    }

    #[test]
    fn tenc_v1_cbcs_as_shaka_writes_it() {
        // From a Shaka Packager 3.4.2 cbcs video file: 1:9, no per-sample IV, 16-byte
        // constant IV.
        let data = hex::decode(
            "00000031746563\
             6e01000000001901000123456789abcdef0123456789abcdef107ae227981ffac84c95d8ced06f1ab120",
        )
        .unwrap();
        let t = parse_tenc(&one_box(&data)).unwrap();
        assert_eq!(t.version, 1);
        assert_eq!(t.params.pattern, Some(Pattern { crypt: 1, skip: 9 }));
        assert_eq!(t.params.per_sample_iv_size, 0);
        assert_eq!(t.params.constant_iv.as_ref().unwrap().len(), 16);
        assert_eq!(
            hex::encode(t.params.key_id),
            "0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn tenc_rejects_bad_values() {
        let good = hex::decode("00000020tenc".replace("tenc", "74656e63"))
            .unwrap()
            .into_iter()
            .chain(hex::decode("0000000000000108").unwrap())
            .chain([7u8; 16])
            .collect::<Vec<u8>>();
        parse_tenc(&one_box(&good)).unwrap();
        let mut bad = good.clone();
        bad[15] = 5; // IV size
        assert!(matches!(
            parse_tenc(&one_box(&bad)).unwrap_err().kind,
            Mp4ErrorKind::Invalid(_)
        ));
        let mut bad = good.clone();
        bad[14] = 2; // isProtected
        assert!(parse_tenc(&one_box(&bad)).is_err());
        let mut bad = good;
        bad[8] = 2; // version
        assert!(matches!(
            parse_tenc(&one_box(&bad)).unwrap_err().kind,
            Mp4ErrorKind::UnsupportedVersion { version: 2, .. }
        ));
    }

    #[test]
    fn pssh_v1_with_huge_kid_count_is_truncated_not_allocated() {
        let mut data = vec![0, 0, 0, 32];
        data.extend_from_slice(b"pssh");
        data.extend_from_slice(&[1, 0, 0, 0]);
        data.extend_from_slice(&[0x10; 16]);
        data.extend_from_slice(&u32::MAX.to_be_bytes());
        let e = parse_pssh(&one_box(&data)).unwrap_err();
        assert!(matches!(e.kind, Mp4ErrorKind::Truncated { .. }));
        assert_eq!(e.offset, 32);
    }

    #[test]
    fn senc_counts_must_match() {
        let mut data = vec![0, 0, 0, 24];
        data.extend_from_slice(b"senc");
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&[9; 8]);
        let b = one_box(&data);
        let (entries, subs) = parse_senc(&b, &[8]).unwrap();
        assert_eq!((entries[0].iv.as_slice(), subs), (&[9u8; 8][..], false));
        assert!(matches!(
            parse_senc(&b, &[8, 8]).unwrap_err().kind,
            Mp4ErrorKind::Inconsistent(_)
        ));
        assert!(matches!(
            parse_senc(&b, &[16]).unwrap_err().kind,
            Mp4ErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            parse_senc(&b, &[0]).unwrap_err().kind,
            Mp4ErrorKind::TrailingBytes(8)
        ));
    }
}
