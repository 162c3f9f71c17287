//! Request payloads: what the normal world may ask of the secure world, one type per
//! operation of the [table](super::table).

use core::fmt;

use super::error::AbiError;
use super::limits::{
    MAX_INIT_DATA_LEN, MAX_KEY_ID_LEN, MAX_LICENSE_LEN, MAX_SAMPLE_LEN, MAX_SESSION_ID_LEN,
    MAX_SUBSAMPLES,
};
use crate::codec::{empty_payload, Payload, Reader, Writer};
use crate::eme::{EncryptionScheme, HdcpVersion, InitDataType, KeySystem, Robustness, SessionType};

/// [`super::Opcode::GetCapabilities`]; empty payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetCapabilities;

/// [`super::Opcode::CloseSession`]; empty payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseSession;

/// [`super::Opcode::Remove`]; empty payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remove;

/// [`super::Opcode::GetKeyStatuses`]; empty payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetKeyStatuses;

/// [`super::Opcode::Renew`]; empty payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renew;

empty_payload!(GetCapabilities, CloseSession, Remove, GetKeyStatuses, Renew);

/// [`super::Opcode::SetServerCertificate`]: `bytes32 certificate`. Sent with session handle
/// 0: the certificate applies to every protected license request the secure world generates
/// afterwards (EME `MediaKeys.setServerCertificate()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetServerCertificate<'a> {
    /// The license server's certificate, 1 to [`MAX_LICENSE_LEN`] bytes.
    pub certificate: &'a [u8],
}

/// [`super::Opcode::GetStatusForPolicy`]: `u8 min_hdcp (0 = none), u8[3] reserved`. Sent
/// with session handle 0 (EME `MediaKeys.getStatusForPolicy()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetStatusForPolicy {
    /// The policy's `minHdcpVersion`; `None` when the policy names none.
    pub min_hdcp: Option<HdcpVersion>,
}

impl<'a> Payload<'a> for GetStatusForPolicy {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let min_hdcp = match r.u8()? {
            0 => None,
            v => Some(HdcpVersion::from_wire(v).ok_or(AbiError::InvalidField("min_hdcp"))?),
        };
        r.reserved(3)?;
        Ok(GetStatusForPolicy { min_hdcp })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.min_hdcp.map_or(0, HdcpVersion::to_wire))?;
        w.reserved(3)
    }
}

/// [`super::Opcode::AddInBandKeys`]: `bytes32 record`, content keys delivered in the media
/// (the data of a `pssh` box of the protected key system), wrapped under an entitlement key
/// of the session's license.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AddInBandKeys<'a> {
    /// The record, 1 to [`MAX_INIT_DATA_LEN`] bytes.
    pub record: &'a [u8],
}

impl fmt::Debug for AddInBandKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddInBandKeys")
            .field("record_len", &self.record.len())
            .finish_non_exhaustive()
    }
}

/// [`super::Opcode::OpenSession`]: `u8 key_system, u8 robustness, u8 session_type, u8
/// reserved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSession {
    /// Key system the session serves.
    pub key_system: KeySystem,
    /// Robustness level every key of the session is held to.
    pub robustness: Robustness,
    /// EME session type.
    pub session_type: SessionType,
}

impl<'a> Payload<'a> for OpenSession {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let key_system =
            KeySystem::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_system"))?;
        let robustness =
            Robustness::from_wire(r.u8()?).ok_or(AbiError::InvalidField("robustness"))?;
        let session_type =
            SessionType::from_wire(r.u8()?).ok_or(AbiError::InvalidField("session_type"))?;
        r.reserved(1)?;
        Ok(OpenSession {
            key_system,
            robustness,
            session_type,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.key_system.to_wire())?;
        w.u8(self.robustness.to_wire())?;
        w.u8(self.session_type.to_wire())?;
        w.reserved(1)
    }
}

/// [`super::Opcode::GenerateRequest`]: `u8 init_data_type, u8[3] reserved, bytes32
/// init_data`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GenerateRequest<'a> {
    /// How `init_data` is formatted.
    pub init_data_type: InitDataType,
    /// 1 to [`MAX_INIT_DATA_LEN`] bytes.
    pub init_data: &'a [u8],
}

impl<'a> Payload<'a> for GenerateRequest<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let init_data_type =
            InitDataType::from_wire(r.u8()?).ok_or(AbiError::InvalidField("init_data_type"))?;
        r.reserved(3)?;
        Ok(GenerateRequest {
            init_data_type,
            init_data: r.bytes_u32(MAX_INIT_DATA_LEN)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.init_data_type.to_wire())?;
        w.reserved(3)?;
        w.bytes_u32(self.init_data, MAX_INIT_DATA_LEN)
    }
}

impl fmt::Debug for GenerateRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateRequest")
            .field("init_data_type", &self.init_data_type)
            .field("init_data_len", &self.init_data.len())
            .finish()
    }
}

/// [`super::Opcode::Update`]: `bytes32 response`.
///
/// The response is a license, which may carry content keys in clear (Clear Key): its `Debug`
/// shows only the length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    /// The license server's response, 1 to [`MAX_LICENSE_LEN`] bytes.
    pub response: &'a [u8],
}

impl fmt::Debug for Update<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("response_len", &self.response.len())
            .finish_non_exhaustive()
    }
}

/// [`super::Opcode::Load`]: `u8 key_system, u8 robustness, u8[2] reserved, bytes8
/// session_id`. Sent with session handle 0: a successful load opens the session and answers
/// its handle in the response header, as [`OpenSession`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load<'a> {
    /// Key system the session serves.
    pub key_system: KeySystem,
    /// Robustness level the session is opened at; the stored license must have been stored
    /// at the same level.
    pub robustness: Robustness,
    /// The EME session id of a stored persistent-license session.
    pub session_id: &'a [u8],
}

impl<'a> Payload<'a> for Load<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let key_system =
            KeySystem::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_system"))?;
        let robustness =
            Robustness::from_wire(r.u8()?).ok_or(AbiError::InvalidField("robustness"))?;
        r.reserved(2)?;
        Ok(Load {
            key_system,
            robustness,
            session_id: r.bytes_u8(MAX_SESSION_ID_LEN)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.key_system.to_wire())?;
        w.u8(self.robustness.to_wire())?;
        w.reserved(2)?;
        w.bytes_u8(self.session_id, MAX_SESSION_ID_LEN)
    }
}

/// [`super::Opcode::RenderSecureBuffer`]: `u64 handle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderSecureBuffer {
    /// Handle returned by a `Decrypt` into a secure buffer.
    pub buffer: u64,
}

/// [`super::Opcode::ReleaseSecureBuffer`]: `u64 handle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseSecureBuffer {
    /// Handle returned by a `Decrypt` into a secure buffer.
    pub buffer: u64,
}

/// The payloads that are one `bytes32` field of at most `max` bytes.
macro_rules! bytes32_payload {
    ($($t:ident { $field:ident } max $max:ident),+ $(,)?) => {$(
        impl<'a> Payload<'a> for $t<'a> {
            fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
                Ok($t { $field: r.bytes_u32($max)? })
            }
            fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
                w.bytes_u32(self.$field, $max)
            }
        }
    )+};
}
bytes32_payload!(
    SetServerCertificate { certificate } max MAX_LICENSE_LEN,
    AddInBandKeys { record } max MAX_INIT_DATA_LEN,
    Update { response } max MAX_LICENSE_LEN,
);

/// The payloads that are one `u64` secure buffer handle.
macro_rules! handle_payload {
    ($($t:ident),+) => {$(
        impl<'a> Payload<'a> for $t {
            fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
                Ok($t { buffer: r.u64()? })
            }
            fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
                w.u64(self.buffer)
            }
        }
    )+};
}
handle_payload!(RenderSecureBuffer, ReleaseSecureBuffer);

/// Where a decrypted sample goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OutputKind {
    /// Decrypt in place in the shared buffer (allowed under `SW_SECURE_CRYPTO` only).
    InPlace = 0,
    /// Decrypt into a secure buffer and answer its handle (`HW_SECURE_DECODE`).
    SecureBuffer = 1,
}

impl OutputKind {
    /// Decodes a wire value.
    pub const fn from_wire(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::InPlace),
            1 => Some(Self::SecureBuffer),
            _ => None,
        }
    }
}

/// Why a sample description breaks the ABI's rules. [`DecryptRequest::check`] (the fields
/// alone) and [`DecryptRequest::check_sample`] (against the sample) are the one place these
/// rules live: the encoder, the decoder, the secure world and the host all call them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// The key ID is not 1 to 512 bytes.
    #[error("key ID must be 1 to {MAX_KEY_ID_LEN} bytes")]
    KeyIdLength,
    /// The IV is not 8 or 16 bytes.
    #[error("IV must be 8 or 16 bytes")]
    IvLength,
    /// The sample is over [`MAX_SAMPLE_LEN`].
    #[error("sample exceeds 16 MiB")]
    SampleTooLarge,
    /// More than [`MAX_SUBSAMPLES`] subsamples.
    #[error("more than {MAX_SUBSAMPLES} subsamples")]
    TooManySubsamples,
    /// The description's sample length is not the shared buffer's length.
    #[error("the sample length does not match the sample")]
    SampleLength,
    /// The subsample sizes do not add up to the sample length.
    #[error("subsample sizes do not add up to the sample length")]
    SubsampleSum,
    /// The IV length does not fit the scheme: `cbcs` and `cbc1` take 16 bytes
    /// (ISO/IEC 23001-7 §10.2, §10.4).
    #[error("{0} takes a 16-byte IV")]
    IvForScheme(EncryptionScheme),
    /// A pattern for a scheme without one (`cenc`, `cbc1`), or one out of range (crypt and skip
    /// below 16 blocks; skip without crypt) (ISO/IEC 23001-7 §10.3, §10.4).
    #[error("pattern {0}:{1} does not fit {2}")]
    Pattern(u8, u8, EncryptionScheme),
}

impl From<SampleError> for AbiError {
    fn from(e: SampleError) -> AbiError {
        match e {
            SampleError::KeyIdLength => AbiError::InvalidField("key_id"),
            SampleError::IvLength => AbiError::InvalidField("iv_len"),
            SampleError::SampleLength | SampleError::SubsampleSum => {
                AbiError::InvalidField("sample_len")
            }
            SampleError::IvForScheme(_) => AbiError::InvalidField("iv_len"),
            SampleError::Pattern(..) => AbiError::InvalidField("pattern"),
            SampleError::SampleTooLarge | SampleError::TooManySubsamples => {
                AbiError::PayloadTooLarge
            }
        }
    }
}

/// [`super::Opcode::Decrypt`]: the description of one sample to decrypt (ISO/IEC 23001-7
/// sample auxiliary information). The sample itself is in the shared buffer.
///
/// Payload layout (little-endian):
///
/// | size | field |
/// |---|---|
/// | 1 | scheme ([`EncryptionScheme`] wire value) |
/// | 1 | pattern crypt blocks |
/// | 1 | pattern skip blocks |
/// | 1 | output ([`OutputKind`]) |
/// | 1 | IV length: 8 or 16 |
/// | 3 | reserved, zero |
/// | 16 | IV, zero-padded past its length |
/// | 4 | sample length (must equal the shared buffer's length) |
/// | 2 + n | key ID length (1..=512) and key ID |
/// | 2 + 8·m | subsample count (0..=576) and `m` pairs of `u32` clear, `u32` protected |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptRequest<'a> {
    /// The key to decrypt with.
    pub key_id: &'a [u8],
    /// The protection scheme.
    pub scheme: EncryptionScheme,
    /// `crypt:skip` pattern (0:0 for none).
    pub pattern: (u8, u8),
    /// Where the clear sample goes.
    pub output: OutputKind,
    /// 8 or 16 bytes.
    pub iv: &'a [u8],
    /// Length of the sample in the shared buffer.
    pub sample_len: u32,
    /// The `(clear, protected)` subsample map; empty means the whole sample is protected.
    pub subsamples: Subsamples<'a>,
}

/// A subsample map: either still encoded in a message (decoding side) or a slice of pairs
/// (encoding side). Both iterate as `(clear, protected)` pairs.
#[derive(Clone, Copy, Debug)]
pub enum Subsamples<'a> {
    /// `8 * n` bytes of little-endian `u32` pairs, as on the wire.
    Encoded(&'a [u8]),
    /// Pairs held by the caller.
    Pairs(&'a [(u32, u32)]),
}

impl<'a> Subsamples<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Subsamples::Encoded(raw) => raw.len() / 8,
            Subsamples::Pairs(p) => p.len(),
        }
    }

    /// Whether the map is empty (the whole sample is protected).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries as `(clear, protected)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let (raw, pairs): (&'a [u8], &'a [(u32, u32)]) = match *self {
            Subsamples::Encoded(raw) => (raw, &[]),
            Subsamples::Pairs(p) => (&[], p),
        };
        raw.chunks_exact(8)
            .filter_map(|c| {
                let (clear, rest) = c.split_first_chunk::<4>()?;
                let protected: [u8; 4] = rest.try_into().ok()?;
                Some((u32::from_le_bytes(*clear), u32::from_le_bytes(protected)))
            })
            .chain(pairs.iter().copied())
    }
}

impl PartialEq for Subsamples<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Subsamples<'_> {}

impl DecryptRequest<'_> {
    /// The rules on the fields alone, in wire order: IV 8 or 16 bytes, sample length within
    /// [`MAX_SAMPLE_LEN`], key ID 1..=512 bytes, at most [`MAX_SUBSAMPLES`] subsamples.
    pub fn check(&self) -> Result<(), SampleError> {
        if !(self.iv.len() == 8 || self.iv.len() == 16) {
            return Err(SampleError::IvLength);
        }
        if usize::try_from(self.sample_len).map_or(true, |n| n > MAX_SAMPLE_LEN) {
            return Err(SampleError::SampleTooLarge);
        }
        if self.key_id.is_empty() || self.key_id.len() > MAX_KEY_ID_LEN {
            return Err(SampleError::KeyIdLength);
        }
        if self.subsamples.len() > MAX_SUBSAMPLES {
            return Err(SampleError::TooManySubsamples);
        }
        Ok(())
    }

    /// The rules against the scheme and the sample: [`Self::check`]; the IV length and the
    /// pattern fit the scheme; the sample is `sample_len` bytes and a non-empty subsample map
    /// adds up to it (summed without overflow).
    pub fn check_sample(&self, sample: usize) -> Result<(), SampleError> {
        self.check()?;
        let (crypt, skip) = self.pattern;
        let (iv_ok, pattern_ok) = match self.scheme {
            EncryptionScheme::Cenc => (true, (crypt, skip) == (0, 0)),
            EncryptionScheme::Cbc1 => (self.iv.len() == 16, (crypt, skip) == (0, 0)),
            EncryptionScheme::Cens => (true, crypt < 16 && skip < 16 && (crypt > 0 || skip == 0)),
            EncryptionScheme::Cbcs => (
                self.iv.len() == 16,
                crypt < 16 && skip < 16 && (crypt > 0 || skip == 0),
            ),
        };
        if !iv_ok {
            return Err(SampleError::IvForScheme(self.scheme));
        }
        if !pattern_ok {
            return Err(SampleError::Pattern(crypt, skip, self.scheme));
        }
        if sample > MAX_SAMPLE_LEN {
            return Err(SampleError::SampleTooLarge);
        }
        if usize::try_from(self.sample_len).ok() != Some(sample) {
            return Err(SampleError::SampleLength);
        }
        if !self.subsamples.is_empty() {
            let total = self.subsamples.iter().try_fold(0u64, |acc, (c, p)| {
                acc.checked_add(u64::from(c))?.checked_add(u64::from(p))
            });
            if total != u64::try_from(sample).ok() {
                return Err(SampleError::SubsampleSum);
            }
        }
        Ok(())
    }
}

impl<'a> Payload<'a> for DecryptRequest<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let scheme =
            EncryptionScheme::from_wire(r.u8()?).ok_or(AbiError::InvalidField("scheme"))?;
        let crypt = r.u8()?;
        let skip = r.u8()?;
        let output = OutputKind::from_wire(r.u8()?).ok_or(AbiError::InvalidField("output"))?;
        let iv_len = usize::from(r.u8()?);
        r.reserved(3)?;
        let iv_field = r.take(16)?;
        let (iv, pad) = iv_field
            .split_at_checked(iv_len)
            .ok_or(AbiError::InvalidField("iv_len"))?;
        if pad.iter().any(|&b| b != 0) {
            return Err(AbiError::InvalidField("iv_len"));
        }
        let sample_len = r.u32()?;
        let key_id = r.bytes_u16(MAX_KEY_ID_LEN)?;
        let count = usize::from(r.u16()?);
        if count > MAX_SUBSAMPLES {
            return Err(AbiError::PayloadTooLarge);
        }
        let raw = r.take(count.checked_mul(8).ok_or(AbiError::PayloadTooLarge)?)?;
        let req = DecryptRequest {
            key_id,
            scheme,
            pattern: (crypt, skip),
            output,
            iv,
            sample_len,
            subsamples: Subsamples::Encoded(raw),
        };
        req.check()?;
        Ok(req)
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        self.check()?;
        w.u8(self.scheme.to_wire())?;
        w.u8(self.pattern.0)?;
        w.u8(self.pattern.1)?;
        w.u8(self.output as u8)?;
        w.u8(u8::try_from(self.iv.len()).map_err(|_| AbiError::InvalidField("iv_len"))?)?;
        w.reserved(3)?;
        let mut iv = [0u8; 16];
        iv.get_mut(..self.iv.len())
            .ok_or(AbiError::InvalidField("iv_len"))?
            .copy_from_slice(self.iv);
        w.put(&iv)?;
        w.u32(self.sample_len)?;
        w.bytes_u16(self.key_id, MAX_KEY_ID_LEN)?;
        w.u16(u16::try_from(self.subsamples.len()).map_err(|_| AbiError::PayloadTooLarge)?)?;
        for (clear, protected) in self.subsamples.iter() {
            w.u32(clear)?;
            w.u32(protected)?;
        }
        Ok(())
    }
}
