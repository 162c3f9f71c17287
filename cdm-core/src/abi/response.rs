//! Responses: what the secure world answers.

use alloc::string::String;
use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::error::AbiError;
use super::header::{Header, HEADER_LEN};
use super::limits::{MAX_KEY_ID_LEN, MAX_KEY_STATUSES, MAX_MESSAGE_LEN, MAX_SESSION_ID_LEN};
use super::opcode::Opcode;
use super::request::finish_message;
use super::status::Status;
use crate::eme::{ClosedReason, EncryptionScheme, KeyStatus, MessageType, Robustness, SessionType};

/// Longest engine name in [`Capabilities`].
pub const MAX_ENGINE_NAME_LEN: usize = 32;

/// What the secure world can do, answered to [`Opcode::GetCapabilities`].
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

/// A session's keys as the normal world may see them (key IDs and statuses, never keys).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SessionState {
    /// Expiration in milliseconds since the Unix epoch, `None` for EME's NaN (no expiry).
    pub expiration_ms: Option<i64>,
    /// Set when the operation closed the session (e.g. a release acknowledgement).
    pub closed: Option<ClosedReason>,
    /// `(key ID, status)` for every key of the session, in load order.
    pub key_statuses: Vec<(Vec<u8>, KeyStatus)>,
}

/// Where `Decrypt` put the clear sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptOutput {
    /// In place in the shared buffer (`SW_SECURE_CRYPTO`).
    InPlace,
    /// In the secure buffer with this handle (`HW_SECURE_DECODE`).
    SecureBuffer(u64),
}

/// A decoded successful response; each variant answers the opcodes named on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// [`Opcode::GetCapabilities`].
    Capabilities(Capabilities),
    /// [`Opcode::OpenSession`]: the EME session id (the handle is in the header).
    SessionOpened {
        /// The session id the application sees (not the handle).
        session_id: String,
    },
    /// [`Opcode::GenerateRequest`], [`Opcode::Remove`]: a message for the license server.
    Message {
        /// EME message type.
        message_type: MessageType,
        /// The message body (for Clear Key, JSON).
        message: Vec<u8>,
        /// Key statuses after the operation.
        state: SessionState,
    },
    /// [`Opcode::Update`], [`Opcode::Load`], [`Opcode::GetKeyStatuses`].
    State(SessionState),
    /// [`Opcode::Decrypt`].
    Decrypted(DecryptOutput),
    /// [`Opcode::RenderSecureBuffer`]: what the secure output sink received.
    Rendered {
        /// Bytes rendered.
        len: u32,
        /// SHA-256 of the bytes rendered.
        digest: [u8; 32],
    },
    /// [`Opcode::CloseSession`], [`Opcode::ReleaseSecureBuffer`].
    Done,
}

fn encode_state(w: &mut Writer<'_>, s: &SessionState) -> Result<(), AbiError> {
    w.i64(s.expiration_ms.unwrap_or(i64::MIN))?;
    match s.closed {
        None => w.u8(0)?,
        Some(reason) => {
            w.u8(1)?;
            w.u8(reason.to_wire())?;
        }
    }
    if s.key_statuses.len() > MAX_KEY_STATUSES {
        return Err(AbiError::PayloadTooLarge);
    }
    w.u16(u16::try_from(s.key_statuses.len()).map_err(|_| AbiError::PayloadTooLarge)?)?;
    for (kid, status) in &s.key_statuses {
        if kid.is_empty() {
            return Err(AbiError::InvalidField("key_id"));
        }
        w.bytes_u16(kid, MAX_KEY_ID_LEN)?;
        w.u8(status.to_wire())?;
    }
    Ok(())
}

fn decode_state(r: &mut Reader<'_>) -> Result<SessionState, AbiError> {
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
        .try_reserve(n)
        .map_err(|_| AbiError::OutOfMemory)?;
    for _ in 0..n {
        let kid = r.bytes_u16(MAX_KEY_ID_LEN)?;
        if kid.is_empty() {
            return Err(AbiError::InvalidField("key_id"));
        }
        let status = KeyStatus::from_wire(r.u8()?).ok_or(AbiError::InvalidField("key_status"))?;
        let mut owned = Vec::new();
        owned
            .try_reserve(kid.len())
            .map_err(|_| AbiError::OutOfMemory)?;
        owned.extend_from_slice(kid);
        key_statuses.push((owned, status));
    }
    Ok(SessionState {
        expiration_ms: if exp == i64::MIN { None } else { Some(exp) },
        closed,
        key_statuses,
    })
}

fn enum_list<T: Copy>(w: &mut Writer<'_>, items: &[T], f: fn(T) -> u8) -> Result<(), AbiError> {
    w.u8(u8::try_from(items.len()).map_err(|_| AbiError::PayloadTooLarge)?)?;
    for &i in items {
        w.u8(f(i))?;
    }
    Ok(())
}

fn decode_list<T>(
    r: &mut Reader<'_>,
    f: fn(u8) -> Option<T>,
    what: &'static str,
) -> Result<Vec<T>, AbiError> {
    let raw = r.bytes_u8(16)?;
    let mut out = Vec::new();
    out.try_reserve(raw.len())
        .map_err(|_| AbiError::OutOfMemory)?;
    for &b in raw {
        out.push(f(b).ok_or(AbiError::InvalidField(what))?);
    }
    Ok(out)
}

impl Response {
    /// Whether this response shape answers `opcode`.
    pub fn answers(&self, opcode: Opcode) -> bool {
        matches!(
            (self, opcode),
            (Response::Capabilities(_), Opcode::GetCapabilities)
                | (Response::SessionOpened { .. }, Opcode::OpenSession)
                | (
                    Response::Message { .. },
                    Opcode::GenerateRequest | Opcode::Remove
                )
                | (
                    Response::State(_),
                    Opcode::Update | Opcode::Load | Opcode::GetKeyStatuses
                )
                | (Response::Decrypted(_), Opcode::Decrypt)
                | (Response::Rendered { .. }, Opcode::RenderSecureBuffer)
                | (
                    Response::Done,
                    Opcode::CloseSession | Opcode::ReleaseSecureBuffer
                )
        )
    }

    fn encode_payload(&self, w: &mut Writer<'_>) -> Result<(), AbiError> {
        match self {
            Response::Capabilities(c) => {
                w.u16(c.abi_version)?;
                w.bytes_u8(c.engine.as_bytes(), MAX_ENGINE_NAME_LEN)?;
                enum_list(w, &c.robustness, Robustness::to_wire)?;
                enum_list(w, &c.schemes, EncryptionScheme::to_wire)?;
                enum_list(w, &c.session_types, SessionType::to_wire)?;
                w.u32(c.max_sessions)?;
                w.u32(c.max_keys_per_session)?;
                w.u32(c.max_sample_len)?;
                w.u32(c.max_subsamples)?;
                w.u32(c.max_secure_buffers)
            }
            Response::SessionOpened { session_id } => {
                w.bytes_u8(session_id.as_bytes(), MAX_SESSION_ID_LEN)
            }
            Response::Message {
                message_type,
                message,
                state,
            } => {
                w.u8(message_type.to_wire())?;
                w.reserved(3)?;
                w.bytes_u32(message, MAX_MESSAGE_LEN)?;
                encode_state(w, state)
            }
            Response::State(s) => encode_state(w, s),
            Response::Decrypted(out) => match out {
                DecryptOutput::InPlace => {
                    w.u8(0)?;
                    w.reserved(7)?;
                    w.u64(0)
                }
                DecryptOutput::SecureBuffer(h) => {
                    w.u8(1)?;
                    w.reserved(7)?;
                    w.u64(*h)
                }
            },
            Response::Rendered { len, digest } => {
                w.u32(*len)?;
                w.put(digest)
            }
            Response::Done => Ok(()),
        }
    }

    /// Encodes a successful response to `request` into `out`, replacing its contents.
    pub fn encode(&self, request: &Header, out: &mut Vec<u8>) -> Result<(), AbiError> {
        out.clear();
        let mut w = Writer::new(out);
        w.put(&[0u8; HEADER_LEN])?;
        self.encode_payload(&mut w)?;
        finish_message(out, request.response(Status::Ok))
    }

    /// Encodes an error response (empty payload) to `request` into `out`.
    pub fn encode_error(
        request: &Header,
        status: Status,
        out: &mut Vec<u8>,
    ) -> Result<(), AbiError> {
        out.clear();
        Writer::new(out).put(&[0u8; HEADER_LEN])?;
        finish_message(out, request.response(status))
    }

    /// Decodes a response message answering a request with `opcode`: `Ok(Err(status))` for
    /// an error response, `Err` if the message itself is malformed.
    pub fn parse(
        opcode: Opcode,
        message: &[u8],
    ) -> Result<(Header, Result<Response, Status>), AbiError> {
        let (header, payload) = Header::parse(message)?;
        if header.opcode != opcode.to_wire() {
            return Err(AbiError::UnexpectedResponse);
        }
        let status = header.status()?;
        if status != Status::Ok {
            if !payload.is_empty() {
                return Err(AbiError::TrailingBytes);
            }
            return Ok((header, Err(status)));
        }
        let mut r = Reader::new(payload);
        let resp = match opcode {
            Opcode::GetCapabilities => {
                let abi_version = r.u16()?;
                let name = r.bytes_u8(MAX_ENGINE_NAME_LEN)?;
                let engine = core::str::from_utf8(name)
                    .map_err(|_| AbiError::InvalidField("engine"))?
                    .into();
                Response::Capabilities(Capabilities {
                    abi_version,
                    engine,
                    robustness: decode_list(&mut r, Robustness::from_wire, "robustness")?,
                    schemes: decode_list(&mut r, EncryptionScheme::from_wire, "scheme")?,
                    session_types: decode_list(&mut r, SessionType::from_wire, "session_type")?,
                    max_sessions: r.u32()?,
                    max_keys_per_session: r.u32()?,
                    max_sample_len: r.u32()?,
                    max_subsamples: r.u32()?,
                    max_secure_buffers: r.u32()?,
                })
            }
            Opcode::OpenSession => {
                let id = r.bytes_u8(MAX_SESSION_ID_LEN)?;
                let id =
                    core::str::from_utf8(id).map_err(|_| AbiError::InvalidField("session_id"))?;
                Response::SessionOpened {
                    session_id: id.into(),
                }
            }
            Opcode::GenerateRequest | Opcode::Remove => {
                let message_type = MessageType::from_wire(r.u8()?)
                    .ok_or(AbiError::InvalidField("message_type"))?;
                r.reserved(3)?;
                let body = r.bytes_u32(MAX_MESSAGE_LEN)?;
                let mut message = Vec::new();
                message
                    .try_reserve(body.len())
                    .map_err(|_| AbiError::OutOfMemory)?;
                message.extend_from_slice(body);
                Response::Message {
                    message_type,
                    message,
                    state: decode_state(&mut r)?,
                }
            }
            Opcode::Update | Opcode::Load | Opcode::GetKeyStatuses => {
                Response::State(decode_state(&mut r)?)
            }
            Opcode::Decrypt => {
                let kind = r.u8()?;
                r.reserved(7)?;
                let handle = r.u64()?;
                match (kind, handle) {
                    (0, 0) => Response::Decrypted(DecryptOutput::InPlace),
                    (1, h) if h != 0 => Response::Decrypted(DecryptOutput::SecureBuffer(h)),
                    _ => return Err(AbiError::InvalidField("output")),
                }
            }
            Opcode::RenderSecureBuffer => {
                let len = r.u32()?;
                Response::Rendered {
                    len,
                    digest: r.array()?,
                }
            }
            Opcode::CloseSession | Opcode::ReleaseSecureBuffer => Response::Done,
        };
        r.finish()?;
        Ok((header, Ok(resp)))
    }
}
