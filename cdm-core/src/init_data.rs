//! Initialization data parsing (EME §7.1 `generateRequest()`, the EME Initialization Data
//! Format Registry) and builders for tests, demos and servers.
//!
//! Init data comes from the media or the application and is untrusted: every length is checked
//! with checked arithmetic, every byte of the input must be accounted for, and failures are
//! typed [`InitDataError`]s. The extracted key IDs are deduplicated in order of first
//! appearance.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use serde::Deserialize;

use crate::clearkey::TryVec;
use crate::codec::Reader;
use crate::eme::InitDataType;
use crate::key_id::{KeyId, KeyIdError, CENC_KEY_ID_LEN};

pub use crate::abi::limits::MAX_INIT_DATA_LEN;

/// The Common SystemID `1077efec-c0b2-4d02-ace3-3c1e52e2fb4b` ("cenc" Initialization Data
/// Format §4.1). Clear Key uses the key IDs of `pssh` boxes of this system.
pub const COMMON_SYSTEM_ID: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];

const PSSH: [u8; 4] = *b"pssh";

/// Why init data was rejected. `offset` fields are byte offsets into the init data of the
/// start of the offending box.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitDataError {
    /// Zero-length init data (EME §7.1 step: "If initData is empty, reject with TypeError").
    #[error("init data is empty")]
    Empty,
    /// Larger than [`MAX_INIT_DATA_LEN`].
    #[error("init data is {len} bytes (at most {MAX_INIT_DATA_LEN})")]
    TooLarge {
        /// Length found.
        len: usize,
    },
    /// The bytes left are fewer than a box header, or fewer than the box size claims.
    #[error("box at offset {offset} is truncated")]
    BoxTruncated {
        /// Start of the box.
        offset: usize,
    },
    /// The box size is smaller than its own header.
    #[error("box at offset {offset} has an invalid size")]
    BoxSizeInvalid {
        /// Start of the box.
        offset: usize,
    },
    /// A box other than `pssh`.
    #[error("box at offset {offset} is not 'pssh'")]
    NotPssh {
        /// Start of the box.
        offset: usize,
        /// The four-character box type found.
        box_type: [u8; 4],
    },
    /// `pssh` flags must be 0 (ISO/IEC 23001-7 §8.1.1).
    #[error("pssh at offset {offset} has non-zero flags")]
    NonZeroFlags {
        /// Start of the box.
        offset: usize,
    },
    /// The `pssh` fields (KID_count × KID, DataSize) need more bytes than the box holds.
    #[error("pssh at offset {offset}: fields overrun the box")]
    PsshFieldsOverrun {
        /// Start of the box.
        offset: usize,
    },
    /// The `pssh` fields end before the box does.
    #[error("pssh at offset {offset}: trailing bytes inside the box")]
    PsshTrailingBytes {
        /// Start of the box.
        offset: usize,
    },
    /// No version 1 `pssh` box of the Common SystemID with at least one key ID ("cenc"
    /// Initialization Data Format §3: Clear Key must use the Common SystemID box).
    #[error("no key IDs in a Common SystemID pssh box")]
    NoCommonSystemKeyIds,
    /// `keyids` init data is not a JSON object with a `kids` array of strings.
    #[error("keyids init data is not valid JSON of the expected shape")]
    InvalidJson,
    /// `keyids` init data with an empty `kids` array.
    #[error("keyids init data has no key IDs")]
    NoKeyIds,
    /// A key ID is malformed (bad base64url or length outside 1..=512).
    #[error("key ID #{index}: {source}")]
    InvalidKeyId {
        /// Index of the key ID (in `kids`; 0 for `webm`).
        index: usize,
        /// What is wrong with it.
        source: KeyIdError,
    },
    /// Memory could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
    /// Builder: a `pssh` key ID must be 16 bytes.
    #[error("pssh key IDs must be 16 bytes, got {len}")]
    PsshKeyIdLength {
        /// Length of the offending key ID.
        len: usize,
    },
}

/// Extracts the key IDs of `init_data` of the given type.
///
/// Checks the common limits (non-empty, at most [`MAX_INIT_DATA_LEN`]) and dispatches to
/// [`parse_cenc`], [`parse_keyids`] or [`parse_webm`]. The result is never empty.
pub fn parse_init_data(ty: InitDataType, init_data: &[u8]) -> Result<Vec<KeyId>, InitDataError> {
    match ty {
        InitDataType::Cenc => parse_cenc(init_data),
        InitDataType::KeyIds => parse_keyids(init_data),
        InitDataType::Webm => parse_webm(init_data),
    }
}

fn check_limits(init_data: &[u8]) -> Result<(), InitDataError> {
    if init_data.is_empty() {
        Err(InitDataError::Empty)
    } else if init_data.len() > MAX_INIT_DATA_LEN {
        Err(InitDataError::TooLarge {
            len: init_data.len(),
        })
    } else {
        Ok(())
    }
}

/// Key IDs in order of first appearance, without duplicates; allocates fallibly.
#[derive(Default)]
struct KeyIdList {
    list: Vec<KeyId>,
    /// Indices into `list`, ordered by key ID bytes (for the duplicate search).
    sorted: Vec<usize>,
}

impl KeyIdList {
    fn push(&mut self, kid: KeyId) -> Result<(), InitDataError> {
        let list = &self.list;
        let found = self
            .sorted
            .binary_search_by(|&i| list.get(i).map(KeyId::as_bytes).cmp(&Some(kid.as_bytes())));
        if let Err(at) = found {
            self.list
                .try_reserve(1)
                .and_then(|()| self.sorted.try_reserve(1))
                .map_err(|_| InitDataError::OutOfMemory)?;
            self.sorted.insert(at, self.list.len());
            self.list.push(kid);
        }
        Ok(())
    }
}

/// Parses `cenc` init data: one or more concatenated `pssh` boxes (ISO/IEC 23001-7 §8.1.1,
/// box header per ISO/IEC 14496-12 §4.2).
///
/// Every box is validated structurally: type `pssh`, a 32-bit size, `size == 1` with a 64-bit
/// `largesize`, or `size == 0` for a box that extends to the end of the data (ISO/IEC 14496-12
/// §4.2); for versions 0 and 1, flags 0 and the size equal to exactly the bytes the fields
/// span. A box of another version is skipped whole (its layout is unknown), not refused. The
/// key IDs are those of the **first** version 1 box of the [`COMMON_SYSTEM_ID`] that lists any
/// (as browsers take them); later common-system boxes, boxes of other systems and version 0
/// boxes (which carry no key IDs) contribute nothing. The common-system `Data` is ignored, as
/// the "cenc" format §4.1 requires.
pub fn parse_cenc(init_data: &[u8]) -> Result<Vec<KeyId>, InitDataError> {
    check_limits(init_data)?;
    let mut kids = KeyIdList::default();
    let mut offset = 0usize;
    let mut rest = init_data;
    while !rest.is_empty() {
        let box_len = parse_pssh_box(rest, offset, &mut kids)?;
        // `box_len <= rest.len()` is checked by `parse_pssh_box`.
        rest = rest
            .get(box_len..)
            .ok_or(InitDataError::BoxTruncated { offset })?;
        offset = offset
            .checked_add(box_len)
            .ok_or(InitDataError::BoxSizeInvalid { offset })?;
    }
    if kids.list.is_empty() {
        return Err(InitDataError::NoCommonSystemKeyIds);
    }
    Ok(kids.list)
}

/// Parses the box at the start of `data`; returns its total size.
fn parse_pssh_box(
    data: &[u8],
    offset: usize,
    kids: &mut KeyIdList,
) -> Result<usize, InitDataError> {
    let truncated = InitDataError::BoxTruncated { offset };
    let mut r = Reader::new(data);
    let size32 = r.u32_be().map_err(|_| truncated.clone())?;
    let box_type: [u8; 4] = r.array().map_err(|_| truncated.clone())?;
    let (size, header_len) = match size32 {
        // "To the end of the data": everything left, header included.
        0 => (
            u64::try_from(data.len()).map_err(|_| truncated.clone())?,
            8usize,
        ),
        1 => (r.u64_be().map_err(|_| truncated.clone())?, 16usize),
        n => (u64::from(n), 8usize),
    };
    if size < header_len as u64 {
        return Err(InitDataError::BoxSizeInvalid { offset });
    }
    // A size that does not fit in usize certainly exceeds the input.
    let size = usize::try_from(size).map_err(|_| truncated.clone())?;
    if size > data.len() {
        return Err(truncated);
    }
    if box_type != PSSH {
        return Err(InitDataError::NotPssh { offset, box_type });
    }
    // The body is the bytes after the header, up to the declared size.
    let body_len = size
        .checked_sub(header_len)
        .ok_or(InitDataError::BoxSizeInvalid { offset })?;
    let body = r
        .take(body_len)
        .map_err(|_| InitDataError::BoxTruncated { offset })?;

    let overrun = InitDataError::PsshFieldsOverrun { offset };
    let mut b = Reader::new(body);
    let version = b.u8().map_err(|_| overrun.clone())?;
    if version > 1 {
        // A version this parser does not know: its fields cannot be read, so it is skipped.
        return Ok(size);
    }
    let flags: [u8; 3] = b.array().map_err(|_| overrun.clone())?;
    if flags != [0, 0, 0] {
        return Err(InitDataError::NonZeroFlags { offset });
    }
    let system_id: [u8; 16] = b.array().map_err(|_| overrun.clone())?;
    let mut box_kids: &[u8] = &[];
    if version == 1 {
        let count = usize::try_from(b.u32_be().map_err(|_| overrun.clone())?)
            .map_err(|_| overrun.clone())?;
        let kid_bytes = count.checked_mul(CENC_KEY_ID_LEN).ok_or(overrun.clone())?;
        box_kids = b.take(kid_bytes).map_err(|_| overrun.clone())?;
    }
    let data_size =
        usize::try_from(b.u32_be().map_err(|_| overrun.clone())?).map_err(|_| overrun.clone())?;
    b.take(data_size).map_err(|_| overrun)?;
    if b.remaining() != 0 {
        return Err(InitDataError::PsshTrailingBytes { offset });
    }
    // Only a fully valid box contributes key IDs, and only the first common-system box that
    // lists any.
    if system_id == COMMON_SYSTEM_ID && kids.list.is_empty() {
        for kid in box_kids.chunks_exact(CENC_KEY_ID_LEN) {
            kids.push(KeyId::new(kid).map_err(kid_error(0))?)?;
        }
    }
    Ok(size)
}

#[derive(Deserialize)]
struct KeyIdsJson<'a> {
    // `Cow` borrows from the input unless a string contains JSON escapes.
    #[serde(borrow)]
    kids: TryVec<Cow<'a, str>>,
}

/// Parses `keyids` init data: the JSON object `{"kids":["<base64url>", ...]}` of the "keyids"
/// Initialization Data Format §1. Each key ID is strict base64url without padding (EME
/// §9.1.7) of 1..=512 bytes; at least one is required. Other members are ignored.
pub fn parse_keyids(init_data: &[u8]) -> Result<Vec<KeyId>, InitDataError> {
    check_limits(init_data)?;
    let json: KeyIdsJson<'_> =
        serde_json::from_slice(init_data).map_err(|_| InitDataError::InvalidJson)?;
    parse_kid_strings(&json.kids.0)
}

fn parse_kid_strings(kids_text: &[Cow<'_, str>]) -> Result<Vec<KeyId>, InitDataError> {
    if kids_text.is_empty() {
        return Err(InitDataError::NoKeyIds);
    }
    let mut kids = KeyIdList::default();
    for (index, s) in kids_text.iter().enumerate() {
        kids.push(KeyId::from_base64url(s).map_err(kid_error(index))?)?;
    }
    Ok(kids.list)
}

/// Parses `webm` init data: the whole init data is one key ID (the WebM `ContentEncKeyID`,
/// "webm" Initialization Data Format), 1..=512 bytes.
pub fn parse_webm(init_data: &[u8]) -> Result<Vec<KeyId>, InitDataError> {
    check_limits(init_data)?;
    let mut kids = KeyIdList::default();
    kids.push(KeyId::new(init_data).map_err(kid_error(0))?)?;
    Ok(kids.list)
}

/// Maps a key ID error at `index` (allocation failure is not the key ID's fault).
fn kid_error(index: usize) -> impl Fn(KeyIdError) -> InitDataError {
    move |source| match source {
        KeyIdError::OutOfMemory
        | KeyIdError::Base64(crate::base64url::Base64UrlError::OutOfMemory) => {
            InitDataError::OutOfMemory
        }
        source => InitDataError::InvalidKeyId { index, source },
    }
}

/// Builds a version 1 `pssh` box of the [`COMMON_SYSTEM_ID`] listing `kids`, with
/// `DataSize = 0` ("cenc" Initialization Data Format §4.1). Every key ID must be 16 bytes and
/// the box must fit in [`MAX_INIT_DATA_LEN`].
pub fn build_common_pssh_v1(kids: &[KeyId]) -> Result<Vec<u8>, InitDataError> {
    // header 8 + version/flags 4 + SystemID 16 + KID_count 4 + KIDs + DataSize 4
    let size = kids
        .len()
        .checked_mul(CENC_KEY_ID_LEN)
        .and_then(|n| n.checked_add(36))
        .filter(|&n| n <= MAX_INIT_DATA_LEN)
        .ok_or(InitDataError::TooLarge { len: usize::MAX })?;
    let size32 = u32::try_from(size).map_err(|_| InitDataError::TooLarge { len: size })?;
    let count = u32::try_from(kids.len()).map_err(|_| InitDataError::TooLarge { len: size })?;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| InitDataError::OutOfMemory)?;
    out.extend_from_slice(&size32.to_be_bytes());
    out.extend_from_slice(&PSSH);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&COMMON_SYSTEM_ID);
    out.extend_from_slice(&count.to_be_bytes());
    for kid in kids {
        let cenc = kid
            .as_cenc()
            .ok_or(InitDataError::PsshKeyIdLength { len: kid.len() })?;
        out.extend_from_slice(cenc);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    Ok(out)
}

/// Builds `keyids` init data `{"kids":[...]}` for `kids`. An empty slice gives init data that
/// [`parse_keyids`] rejects.
pub fn keyids_init_data(kids: &[KeyId]) -> Result<Vec<u8>, InitDataError> {
    crate::clearkey::kids_json(kids.iter().map(KeyId::as_bytes), None).map_err(|e| match e {
        crate::clearkey::ClearKeyError::MessageTooLarge => {
            InitDataError::TooLarge { len: usize::MAX }
        }
        _ => InitDataError::OutOfMemory,
    })
}
