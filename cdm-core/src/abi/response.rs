//! Response payloads: what the secure world answers, one type per kind of answer (several
//! operations share one, as the [table](super::table) declares).

use alloc::string::String;
use alloc::vec::Vec;

use super::error::AbiError;
use super::limits::{MAX_KEY_ID_LEN, MAX_KEY_STATUSES, MAX_MESSAGE_LEN, MAX_SESSION_ID_LEN};
use crate::codec::{empty_payload, Payload, Reader, Writer};
use crate::eme::{ClosedReason, EncryptionScheme, KeyStatus, MessageType, Robustness, SessionType};
use crate::key_id::KeyId;

/// Longest engine name in [`Capabilities`].
pub const MAX_ENGINE_NAME_LEN: usize = 32;

/// What the secure world can do, answered to [`super::Opcode::GetCapabilities`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The ABI version the secure world speaks.
    pub abi_version: u16,
    /// Name of the AES engine in use (`vaes`, `aesni`, `armce`, `portable`).
    pub engine: String,
    /// Robustness levels sessions can be opened with.
    pub robustness: Vec<Robustness>,
    /// Protection schemes `Decrypt` accepts.
    pub schemes: Vec<EncryptionScheme>,
    /// Session types `OpenSession` accepts.
    pub session_types: Vec<SessionType>,
    /// Concurrent sessions.
    pub max_sessions: u32,
    /// Keys per session.
    pub max_keys_per_session: u32,
    /// Largest sample.
    pub max_sample_len: u32,
    /// Largest subsample map.
    pub max_subsamples: u32,
    /// Secure buffers that can be live at once (0 if `HW_SECURE_DECODE` is unsupported).
    pub max_secure_buffers: u32,
}

/// Answer to [`super::Opcode::OpenSession`]: the EME session id (the handle is in the
/// response header's `session`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOpened {
    /// The session id the application sees (not the handle).
    pub session_id: String,
}

/// A session's keys as the normal world may see them (key IDs and statuses, never keys).
/// Answers [`super::Opcode::Update`], [`super::Opcode::Load`] and
/// [`super::Opcode::GetKeyStatuses`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SessionState {
    /// Expiration in milliseconds since the Unix epoch, `None` for EME's NaN (no expiry).
    pub expiration_ms: Option<i64>,
    /// Set when the operation closed the session (e.g. a release acknowledgement).
    pub closed: Option<ClosedReason>,
    /// `(key ID, status)` for every key of the session, in load order.
    pub key_statuses: Vec<(KeyId, KeyStatus)>,
}

/// A message for the license server, answering [`super::Opcode::GenerateRequest`] and
/// [`super::Opcode::Remove`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// EME message type.
    pub message_type: MessageType,
    /// The message body (for Clear Key, JSON).
    pub message: Vec<u8>,
    /// Key statuses after the operation.
    pub state: SessionState,
}

/// Answer to [`super::Opcode::Load`]. When `found`, the session is open and its handle is in
/// the response header's `session`; otherwise no session was opened (EME §6.6.3 resolves
/// `load()` with `false`) and the other fields are empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Loaded {
    /// Whether a license was stored under the session id.
    pub found: bool,
    /// For a license whose release was never acknowledged, the record of license
    /// destruction to send again (`license-release`, EME §9.1.5); otherwise empty.
    pub release_message: Vec<u8>,
    /// Key statuses of the loaded session.
    pub state: SessionState,
}

/// Where `Decrypt` put the clear sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptOutput {
    /// In place in the shared buffer (`SW_SECURE_CRYPTO`).
    InPlace,
    /// In the secure buffer with this handle (`HW_SECURE_DECODE`).
    SecureBuffer(u64),
}

/// What the secure output sink received, answering [`super::Opcode::RenderSecureBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Bytes rendered.
    pub len: u32,
    /// SHA-256 of the bytes rendered.
    pub digest: [u8; 32],
}

/// Answer to [`super::Opcode::GetStatusForPolicy`]: `u8 key_status, u8[3] reserved`, the
/// status a key restricted by the policy would have now (`usable` or `output-restricted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyStatus {
    /// EME `MediaKeyStatus`.
    pub status: KeyStatus,
}

impl<'a> Payload<'a> for PolicyStatus {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let status = KeyStatus::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_status"))?;
        r.reserved(3)?;
        Ok(PolicyStatus { status })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.status.to_wire())?;
        w.reserved(3)
    }
}

/// The empty answer of [`super::Opcode::CloseSession`] and
/// [`super::Opcode::ReleaseSecureBuffer`] (and the payload of every error response).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Done;

empty_payload!(Done);

/// Copies `bytes` into a new vector, fallibly.
pub(crate) fn try_to_vec(bytes: &[u8]) -> Result<Vec<u8>, AbiError> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len())
        .map_err(|_| AbiError::OutOfMemory)?;
    v.extend_from_slice(bytes);
    Ok(v)
}

fn try_string(bytes: &[u8], field: &'static str) -> Result<String, AbiError> {
    let s = core::str::from_utf8(bytes).map_err(|_| AbiError::InvalidField(field))?;
    let mut out = String::new();
    out.try_reserve_exact(s.len())
        .map_err(|_| AbiError::OutOfMemory)?;
    out.push_str(s);
    Ok(out)
}

/// A list of one-byte enum values: `u8 count`, then the values.
fn encode_list<T: Copy>(w: &mut Writer<'_>, items: &[T], f: fn(T) -> u8) -> Result<(), AbiError> {
    w.u8(u8::try_from(items.len()).map_err(|_| AbiError::PayloadTooLarge)?)?;
    items.iter().try_for_each(|&i| w.u8(f(i)))
}

fn decode_list<T>(
    r: &mut Reader<'_>,
    f: fn(u8) -> Option<T>,
    what: &'static str,
) -> Result<Vec<T>, AbiError> {
    let raw = r.bytes_u8(16)?;
    let mut out = Vec::new();
    out.try_reserve_exact(raw.len())
        .map_err(|_| AbiError::OutOfMemory)?;
    for &b in raw {
        out.push(f(b).ok_or(AbiError::InvalidField(what))?);
    }
    Ok(out)
}

impl<'a> Payload<'a> for Capabilities {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        Ok(Capabilities {
            abi_version: r.u16()?,
            engine: try_string(r.bytes_u8(MAX_ENGINE_NAME_LEN)?, "engine")?,
            robustness: decode_list(r, Robustness::from_wire, "robustness")?,
            schemes: decode_list(r, EncryptionScheme::from_wire, "scheme")?,
            session_types: decode_list(r, SessionType::from_wire, "session_type")?,
            max_sessions: r.u32()?,
            max_keys_per_session: r.u32()?,
            max_sample_len: r.u32()?,
            max_subsamples: r.u32()?,
            max_secure_buffers: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u16(self.abi_version)?;
        w.bytes_u8(self.engine.as_bytes(), MAX_ENGINE_NAME_LEN)?;
        encode_list(w, &self.robustness, Robustness::to_wire)?;
        encode_list(w, &self.schemes, EncryptionScheme::to_wire)?;
        encode_list(w, &self.session_types, SessionType::to_wire)?;
        w.u32(self.max_sessions)?;
        w.u32(self.max_keys_per_session)?;
        w.u32(self.max_sample_len)?;
        w.u32(self.max_subsamples)?;
        w.u32(self.max_secure_buffers)
    }
}

impl<'a> Payload<'a> for SessionOpened {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        Ok(SessionOpened {
            session_id: try_string(r.bytes_u8(MAX_SESSION_ID_LEN)?, "session_id")?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.bytes_u8(self.session_id.as_bytes(), MAX_SESSION_ID_LEN)
    }
}

impl<'a> Payload<'a> for SessionState {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let exp = r.i64()?;
        let closed = match r.u8()? {
            0 => None,
            1 => Some(ClosedReason::from_wire(r.u8()?).ok_or(AbiError::InvalidField("closed"))?),
            _ => return Err(AbiError::InvalidField("closed")),
        };
        let n = usize::from(r.u16()?);
        if n > MAX_KEY_STATUSES {
            return Err(AbiError::PayloadTooLarge);
        }
        let mut key_statuses = Vec::new();
        key_statuses
            .try_reserve_exact(n)
            .map_err(|_| AbiError::OutOfMemory)?;
        for _ in 0..n {
            let kid = KeyId::new(r.bytes_u16(MAX_KEY_ID_LEN)?).map_err(AbiError::from)?;
            let status =
                KeyStatus::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_status"))?;
            key_statuses.push((kid, status));
        }
        Ok(SessionState {
            expiration_ms: if exp == i64::MIN { None } else { Some(exp) },
            closed,
            key_statuses,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.i64(self.expiration_ms.unwrap_or(i64::MIN))?;
        match self.closed {
            None => w.u8(0)?,
            Some(reason) => {
                w.u8(1)?;
                w.u8(reason.to_wire())?;
            }
        }
        if self.key_statuses.len() > MAX_KEY_STATUSES {
            return Err(AbiError::PayloadTooLarge);
        }
        w.u16(u16::try_from(self.key_statuses.len()).map_err(|_| AbiError::PayloadTooLarge)?)?;
        for (kid, status) in &self.key_statuses {
            w.bytes_u16(kid.as_bytes(), MAX_KEY_ID_LEN)?;
            w.u8(status.to_wire())?;
        }
        Ok(())
    }
}

impl<'a> Payload<'a> for Message {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let message_type =
            MessageType::from_wire(r.u8()?).ok_or(AbiError::InvalidField("message_type"))?;
        r.reserved(3)?;
        let message = try_to_vec(r.bytes_u32(MAX_MESSAGE_LEN)?)?;
        Ok(Message {
            message_type,
            message,
            state: SessionState::decode(r)?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(self.message_type.to_wire())?;
        w.reserved(3)?;
        w.bytes_u32(&self.message, MAX_MESSAGE_LEN)?;
        self.state.encode(w)
    }
}

/// `u8 found, u8[3] reserved, bytes32 release_message, SessionState`; a `found` of 0 comes
/// with an empty message and no keys.
impl<'a> Payload<'a> for Loaded {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let found = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(AbiError::InvalidField("found")),
        };
        r.reserved(3)?;
        let release_message = try_to_vec(r.bytes_u32(MAX_MESSAGE_LEN)?)?;
        let state = SessionState::decode(r)?;
        if !found && (!release_message.is_empty() || state != SessionState::default()) {
            return Err(AbiError::InvalidField("found"));
        }
        Ok(Loaded {
            found,
            release_message,
            state,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u8(u8::from(self.found))?;
        w.reserved(3)?;
        w.bytes_u32(&self.release_message, MAX_MESSAGE_LEN)?;
        self.state.encode(w)
    }
}

impl<'a> Payload<'a> for DecryptOutput {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        let kind = r.u8()?;
        r.reserved(7)?;
        match (kind, r.u64()?) {
            (0, 0) => Ok(DecryptOutput::InPlace),
            (1, h) if h != 0 => Ok(DecryptOutput::SecureBuffer(h)),
            _ => Err(AbiError::InvalidField("output")),
        }
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        let (kind, handle) = match *self {
            DecryptOutput::InPlace => (0, 0),
            DecryptOutput::SecureBuffer(h) => (1, h),
        };
        w.u8(kind)?;
        w.reserved(7)?;
        w.u64(handle)
    }
}

impl<'a> Payload<'a> for Rendered {
    fn decode(r: &mut Reader<'a>) -> Result<Self, AbiError> {
        Ok(Rendered {
            len: r.u32()?,
            digest: r.array()?,
        })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        w.u32(self.len)?;
        w.put(&self.digest)
    }
}
