//! Requests: what the normal world may ask of the secure world.

use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::error::AbiError;
use super::header::{Header, HEADER_LEN};
use super::limits::{
    MAX_INIT_DATA_LEN, MAX_KEY_ID_LEN, MAX_LICENSE_LEN, MAX_PAYLOAD_LEN, MAX_SAMPLE_LEN,
    MAX_SESSION_ID_LEN, MAX_SUBSAMPLES,
};
use super::opcode::Opcode;
use crate::eme::{EncryptionScheme, InitDataType, KeySystem, Robustness, SessionType};

/// A decoded request payload. The session handle and request id travel in the [`Header`].
///
/// Variable-length fields borrow from the message, which the secure world has already
/// copied into its own memory: nothing is re-read after it is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// [`Opcode::GetCapabilities`]; empty payload.
    GetCapabilities,
    /// [`Opcode::OpenSession`].
    OpenSession {
        /// Key system the session serves.
        key_system: KeySystem,
        /// Robustness level every key of the session is held to.
        robustness: Robustness,
        /// EME session type.
        session_type: SessionType,
    },
    /// [`Opcode::CloseSession`]; empty payload.
    CloseSession,
    /// [`Opcode::GenerateRequest`].
    GenerateRequest {
        /// How `init_data` is formatted.
        init_data_type: InitDataType,
        /// 1 to [`MAX_INIT_DATA_LEN`] bytes.
        init_data: &'a [u8],
    },
    /// [`Opcode::Update`].
    Update {
        /// The license server's response, 1 to [`MAX_LICENSE_LEN`] bytes.
        response: &'a [u8],
    },
    /// [`Opcode::Load`].
    Load {
        /// The EME session id of a stored persistent-license session.
        session_id: &'a [u8],
    },
    /// [`Opcode::Remove`]; empty payload.
    Remove,
    /// [`Opcode::GetKeyStatuses`]; empty payload.
    GetKeyStatuses,
    /// [`Opcode::Decrypt`]; the sample itself is in the shared buffer.
    Decrypt(DecryptRequest<'a>),
    /// [`Opcode::RenderSecureBuffer`].
    RenderSecureBuffer {
        /// Handle returned by a `Decrypt` into a secure buffer.
        buffer: u64,
    },
    /// [`Opcode::ReleaseSecureBuffer`].
    ReleaseSecureBuffer {
        /// Handle returned by a `Decrypt` into a secure buffer.
        buffer: u64,
    },
}

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

/// The description of one sample to decrypt (ISO/IEC 23001-7 sample auxiliary information).
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

impl<'a> DecryptRequest<'a> {
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
        if !(iv_len == 8 || iv_len == 16) || pad.iter().any(|&b| b != 0) {
            return Err(AbiError::InvalidField("iv_len"));
        }
        let sample_len = r.u32()?;
        if usize::try_from(sample_len).map_or(true, |n| n > MAX_SAMPLE_LEN) {
            return Err(AbiError::PayloadTooLarge);
        }
        let key_id = r.bytes_u16(MAX_KEY_ID_LEN)?;
        if key_id.is_empty() {
            return Err(AbiError::InvalidField("key_id"));
        }
        let count = usize::from(r.u16()?);
        if count > MAX_SUBSAMPLES {
            return Err(AbiError::PayloadTooLarge);
        }
        let raw = r.take(count.checked_mul(8).ok_or(AbiError::PayloadTooLarge)?)?;
        Ok(DecryptRequest {
            key_id,
            scheme,
            pattern: (crypt, skip),
            output,
            iv,
            sample_len,
            subsamples: Subsamples::Encoded(raw),
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.scheme.to_wire())?;
        w.u8(self.pattern.0)?;
        w.u8(self.pattern.1)?;
        w.u8(self.output as u8)?;
        if !(self.iv.len() == 8 || self.iv.len() == 16) {
            return Err(AbiError::InvalidField("iv_len"));
        }
        w.u8(u8::try_from(self.iv.len()).map_err(|_| AbiError::InvalidField("iv_len"))?)?;
        w.reserved(3)?;
        let mut iv = [0u8; 16];
        iv.get_mut(..self.iv.len())
            .ok_or(AbiError::InvalidField("iv_len"))?
            .copy_from_slice(self.iv);
        w.put(&iv)?;
        w.u32(self.sample_len)?;
        if self.key_id.is_empty() {
            return Err(AbiError::InvalidField("key_id"));
        }
        w.bytes_u16(self.key_id, MAX_KEY_ID_LEN)?;
        let count = self.subsamples.len();
        if count > MAX_SUBSAMPLES {
            return Err(AbiError::PayloadTooLarge);
        }
        w.u16(u16::try_from(count).map_err(|_| AbiError::PayloadTooLarge)?)?;
        for (clear, protected) in self.subsamples.iter() {
            w.u32(clear)?;
            w.u32(protected)?;
        }
        Ok(())
    }
}

impl<'a> Request<'a> {
    /// The opcode this request travels under.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Request::GetCapabilities => Opcode::GetCapabilities,
            Request::OpenSession { .. } => Opcode::OpenSession,
            Request::CloseSession => Opcode::CloseSession,
            Request::GenerateRequest { .. } => Opcode::GenerateRequest,
            Request::Update { .. } => Opcode::Update,
            Request::Load { .. } => Opcode::Load,
            Request::Remove => Opcode::Remove,
            Request::GetKeyStatuses => Opcode::GetKeyStatuses,
            Request::Decrypt(_) => Opcode::Decrypt,
            Request::RenderSecureBuffer { .. } => Opcode::RenderSecureBuffer,
            Request::ReleaseSecureBuffer { .. } => Opcode::ReleaseSecureBuffer,
        }
    }

    /// Decodes the payload of a request whose header announced `opcode`. Every byte must be
    /// consumed.
    pub fn decode(opcode: Opcode, payload: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader::new(payload);
        let req = match opcode {
            Opcode::GetCapabilities => Request::GetCapabilities,
            Opcode::OpenSession => {
                let key_system =
                    KeySystem::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_system"))?;
                let robustness =
                    Robustness::from_wire(r.u8()?).ok_or(AbiError::InvalidField("robustness"))?;
                let session_type = SessionType::from_wire(r.u8()?)
                    .ok_or(AbiError::InvalidField("session_type"))?;
                r.reserved(1)?;
                Request::OpenSession {
                    key_system,
                    robustness,
                    session_type,
                }
            }
            Opcode::CloseSession => Request::CloseSession,
            Opcode::GenerateRequest => {
                let init_data_type = InitDataType::from_wire(r.u8()?)
                    .ok_or(AbiError::InvalidField("init_data_type"))?;
                r.reserved(3)?;
                let init_data = r.bytes_u32(MAX_INIT_DATA_LEN)?;
                Request::GenerateRequest {
                    init_data_type,
                    init_data,
                }
            }
            Opcode::Update => Request::Update {
                response: r.bytes_u32(MAX_LICENSE_LEN)?,
            },
            Opcode::Load => Request::Load {
                session_id: r.bytes_u8(MAX_SESSION_ID_LEN)?,
            },
            Opcode::Remove => Request::Remove,
            Opcode::GetKeyStatuses => Request::GetKeyStatuses,
            Opcode::Decrypt => Request::Decrypt(DecryptRequest::decode(&mut r)?),
            Opcode::RenderSecureBuffer => Request::RenderSecureBuffer { buffer: r.u64()? },
            Opcode::ReleaseSecureBuffer => Request::ReleaseSecureBuffer { buffer: r.u64()? },
        };
        r.finish()?;
        Ok(req)
    }

    /// Parses a whole request message: header, then payload.
    pub fn parse(message: &'a [u8]) -> Result<(Header, Request<'a>), (Option<Header>, AbiError)> {
        let (header, payload) = Header::parse(message).map_err(|e| (None, e))?;
        if header.status != 0 {
            return Err((Some(header), AbiError::InvalidField("status")));
        }
        let opcode = header.opcode().map_err(|e| (Some(header), e))?;
        let req = Request::decode(opcode, payload).map_err(|e| (Some(header), e))?;
        Ok((header, req))
    }

    fn encode_payload(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        match self {
            Request::GetCapabilities
            | Request::CloseSession
            | Request::Remove
            | Request::GetKeyStatuses => Ok(()),
            Request::OpenSession {
                key_system,
                robustness,
                session_type,
            } => {
                w.u8(key_system.to_wire())?;
                w.u8(robustness.to_wire())?;
                w.u8(session_type.to_wire())?;
                w.reserved(1)
            }
            Request::GenerateRequest {
                init_data_type,
                init_data,
            } => {
                w.u8(init_data_type.to_wire())?;
                w.reserved(3)?;
                w.bytes_u32(init_data, MAX_INIT_DATA_LEN)
            }
            Request::Update { response } => w.bytes_u32(response, MAX_LICENSE_LEN),
            Request::Load { session_id } => w.bytes_u8(session_id, MAX_SESSION_ID_LEN),
            Request::Decrypt(d) => d.encode(w),
            Request::RenderSecureBuffer { buffer } | Request::ReleaseSecureBuffer { buffer } => {
                w.u64(*buffer)
            }
        }
    }

    /// Encodes the whole message (header and payload) into `out`, replacing its contents.
    pub fn encode(&self, session: u64, request_id: u32, out: &mut Vec<u8>) -> Result<(), AbiError> {
        out.clear();
        let mut w = Writer::new(out);
        w.put(&[0u8; HEADER_LEN])?;
        self.encode_payload(&mut w)?;
        finish_message(out, Header::request(self.opcode(), session, request_id))
    }
}

/// Writes `header` (with the payload length filled in) over the first [`HEADER_LEN`] bytes
/// of `out`, whose payload follows.
pub(crate) fn finish_message(out: &mut [u8], mut header: Header) -> Result<(), AbiError> {
    let payload_len = out
        .len()
        .checked_sub(HEADER_LEN)
        .ok_or(AbiError::Truncated)?;
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(AbiError::PayloadTooLarge);
    }
    header.payload_len = u32::try_from(payload_len).map_err(|_| AbiError::PayloadTooLarge)?;
    out.get_mut(..HEADER_LEN)
        .ok_or(AbiError::Truncated)?
        .copy_from_slice(&header.to_bytes());
    Ok(())
}
