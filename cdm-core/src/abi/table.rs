//! The operation table: the one place every operation of the ABI is declared.
//!
//! One row per operation — name and opcode, request payload type, response payload type and,
//! for the one operation that uses it, the shared sample buffer it leases — and the
//! [`Opcode`] enum, the [`Request`] and [`Response`] enums, the opcode ↔ payload mapping of
//! both and the typed [`Operation`] trait are generated from it. Adding an operation is one row
//! here plus its payload types and its handler in the secure world.

use alloc::vec::Vec;

use super::error::AbiError;
use super::header::{Header, HEADER_LEN};
use super::limits::MAX_PAYLOAD_LEN;
use super::request::{
    AddInBandKeys, CloseSession, DecryptRequest, GenerateRequest, GetCapabilities, GetKeyStatuses,
    GetStatusForPolicy, Load, OpenSession, ReleaseSecureBuffer, Remove, RenderSecureBuffer, Renew,
    SetServerCertificate, Update,
};
use super::response::{
    Capabilities, DecryptOutput, Done, Loaded, Message, PolicyStatus, Rendered, SessionOpened,
    SessionState,
};
use super::status::Status;
use crate::codec::{Payload, Reader, Writer};

/// A typed operation: a request payload that knows its opcode and its response payload.
///
/// Generated for every row of the table. Callers encode with [`Operation::encode_message`]
/// and decode the answer with [`super::parse_response`]`::<O::Response>`, so a response of
/// the wrong shape is a decoding error, not a case to handle.
pub trait Operation<'a>: Payload<'a> {
    /// The operation's opcode.
    const OPCODE: Opcode;
    /// The payload of a successful response.
    type Response: for<'r> Payload<'r>;

    /// The request as the generic [`Request`] enum.
    fn into_request(self) -> Request<'a>;

    /// Encodes the whole request message (header and payload) into `out`, replacing its
    /// contents.
    fn encode_message(
        &self,
        session: u64,
        request_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), AbiError> {
        encode_message(
            out,
            Header::request(Self::OPCODE, session, request_id),
            self,
        )
    }
}

/// Writes `header` with the payload length filled in, then `payload`, into `out` (replacing
/// its contents). Checks the payload limit.
pub(crate) fn encode_message<'p, P: Payload<'p>>(
    out: &mut Vec<u8>,
    mut header: Header,
    payload: &P,
) -> Result<(), AbiError> {
    out.clear();
    Writer::new(out).put(&[0u8; HEADER_LEN])?;
    payload.encode(&mut Writer::new(out))?;
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

/// Whether a row leases the shared sample buffer.
macro_rules! leases {
    () => {
        false
    };
    (sample) => {
        true
    };
}

macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $op:ident = $wire:literal: $req:ident $(<$lt:lifetime>)? => $resp:ident $(, lease $lease:ident)?;
    )+) => {
        wire_enum! {
            /// Every operation of the ABI, with its stable wire value.
            ///
            /// Values are grouped by area in the high byte: `0x00xx` the CDM as a whole,
            /// `0x01xx` session lifetime, `0x02xx` licenses and keys, `0x03xx` decryption,
            /// `0x04xx` secure buffers. Unknown values are rejected, never mapped to a
            /// catch-all.
            pub enum Opcode: u16 {
                $( $(#[$doc])* $op = $wire, )+
            }
        }

        impl Opcode {
            /// Whether the operation leases the shared sample buffer (reads it and may write
            /// it). Every other operation is called with an empty sample buffer.
            pub const fn leases_sample(self) -> bool {
                match self {
                    $( Opcode::$op => leases!($($lease)?), )+
                }
            }
        }

        /// A decoded request payload, one variant per operation. The session handle and
        /// request id travel in the [`Header`].
        ///
        /// Variable-length fields borrow from the message, which the secure world has already
        /// copied into its own memory: nothing is re-read after it is checked.
        #[derive(Clone, PartialEq, Eq)]
        pub enum Request<'a> {
            $( $(#[$doc])* $op($req $(<$lt>)?), )+
        }

        /// A decoded successful response payload, one variant per operation.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Response {
            $( $(#[$doc])* $op($resp), )+
        }

        $(
            impl<'a> Operation<'a> for $req $(<$lt>)? {
                const OPCODE: Opcode = Opcode::$op;
                type Response = $resp;

                fn into_request(self) -> Request<'a> {
                    Request::$op(self)
                }
            }
        )+

        impl<'a> Request<'a> {
            /// The opcode this request travels under.
            pub const fn opcode(&self) -> Opcode {
                match self {
                    $( Request::$op(_) => Opcode::$op, )+
                }
            }

            /// Decodes the payload of a request whose header announced `opcode`. Every byte
            /// must be consumed.
            pub fn decode(opcode: Opcode, payload: &'a [u8]) -> Result<Self, AbiError> {
                let mut r = Reader::new(payload);
                let req = match opcode {
                    $( Opcode::$op => Request::$op(Payload::decode(&mut r)?), )+
                };
                r.finish()?;
                Ok(req)
            }

            /// Encodes the whole message (header and payload) into `out`, replacing its
            /// contents.
            pub fn encode(
                &self,
                session: u64,
                request_id: u32,
                out: &mut Vec<u8>,
            ) -> Result<(), AbiError> {
                match self {
                    $( Request::$op(p) => p.encode_message(session, request_id, out), )+
                }
            }
        }

        impl core::fmt::Debug for Request<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $( Request::$op(p) => core::fmt::Debug::fmt(p, f), )+
                }
            }
        }

        impl Response {
            /// The opcode this response answers.
            pub const fn opcode(&self) -> Opcode {
                match self {
                    $( Response::$op(_) => Opcode::$op, )+
                }
            }

            /// Decodes the payload of a successful response to `opcode`. Every byte must be
            /// consumed.
            pub fn decode(opcode: Opcode, payload: &[u8]) -> Result<Self, AbiError> {
                let mut r = Reader::new(payload);
                let resp = match opcode {
                    $( Opcode::$op => Response::$op(Payload::decode(&mut r)?), )+
                };
                r.finish()?;
                Ok(resp)
            }

            /// Encodes this successful response to `request` into `out`, replacing its
            /// contents. The response must answer the request's opcode.
            pub fn encode(&self, request: &Header, out: &mut Vec<u8>) -> Result<(), AbiError> {
                if request.opcode != self.opcode().to_wire() {
                    return Err(AbiError::UnexpectedResponse);
                }
                match self {
                    $( Response::$op(p) => encode_message(out, request.response(Status::Ok), p), )+
                }
            }
        }
    };
}

operations! {
    /// Engine, robustness levels, limits and ABI version of the secure world.
    GetCapabilities = 0x0001: GetCapabilities => Capabilities;
    /// EME `setServerCertificate`: verifies a license server certificate and uses it to
    /// encrypt the protected license requests generated afterwards (one per secure world).
    SetServerCertificate = 0x0002: SetServerCertificate<'a> => Done;
    /// EME `getStatusForPolicy`: the key status a policy's minimum HDCP version yields now.
    GetStatusForPolicy = 0x0003: GetStatusForPolicy => PolicyStatus;
    /// Opens a session for a key system and robustness level; answers the handle.
    OpenSession = 0x0100: OpenSession => SessionOpened;
    /// Closes a session and wipes its keys.
    CloseSession = 0x0101: CloseSession => Done;
    /// EME `generateRequest`: init data in, license-request message out.
    GenerateRequest = 0x0200: GenerateRequest<'a> => Message;
    /// EME `update`: a license (or release acknowledgement) in, key statuses out.
    Update = 0x0201: Update<'a> => SessionState;
    /// EME `load`: opens a session and restores the persistent license stored under its id.
    Load = 0x0202: Load<'a> => Loaded;
    /// EME `remove`: releases the keys, answers the record of license destruction.
    Remove = 0x0203: Remove => Message;
    /// Key statuses and expiration of a session.
    GetKeyStatuses = 0x0204: GetKeyStatuses => SessionState;
    /// A `license-renewal` message if the session's license is due for renewal (an empty
    /// message otherwise).
    Renew = 0x0205: Renew => Message;
    /// Content keys delivered in the media, unwrapped with the license's entitlement key.
    AddInBandKeys = 0x0206: AddInBandKeys<'a> => SessionState;
    /// Decrypts one sample held in the shared buffer.
    Decrypt = 0x0300: DecryptRequest<'a> => DecryptOutput, lease sample;
    /// Hands a secure buffer to the secure output sink; answers its digest.
    RenderSecureBuffer = 0x0400: RenderSecureBuffer => Rendered;
    /// Frees a secure buffer without rendering it.
    ReleaseSecureBuffer = 0x0401: ReleaseSecureBuffer => Done;
}

impl<'a> Request<'a> {
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
}

impl Response {
    /// Decodes a response message answering a request with `opcode`: `Ok(Err(status))` for
    /// an error response, `Err` if the message itself is malformed.
    pub fn parse(
        opcode: Opcode,
        message: &[u8],
    ) -> Result<(Header, Result<Response, Status>), AbiError> {
        let (header, payload) = response_payload(opcode, message)?;
        let resp = match payload {
            Ok(p) => Ok(Response::decode(opcode, p)?),
            Err(status) => Err(status),
        };
        Ok((header, resp))
    }

    /// Encodes an error response (empty payload) to `request` into `out`.
    pub fn encode_error(
        request: &Header,
        status: Status,
        out: &mut Vec<u8>,
    ) -> Result<(), AbiError> {
        encode_message(out, request.response(status), &Done)
    }
}

/// Encodes a successful response carrying `payload` to `request` into `out`, replacing its
/// contents. The type parameter ties the payload to the operation that was asked, so a
/// handler cannot answer with another operation's payload.
pub fn encode_response<'a, O: Operation<'a>>(
    payload: &O::Response,
    request: &Header,
    out: &mut Vec<u8>,
) -> Result<(), AbiError> {
    if request.opcode != O::OPCODE.to_wire() {
        return Err(AbiError::UnexpectedResponse);
    }
    encode_message(out, request.response(Status::Ok), payload)
}

/// Decodes a response message to an `O` request: the header, and either the typed payload or
/// the error status. `Err` if the message is malformed or answers another opcode.
pub fn parse_response<'a, O: Operation<'a>>(
    message: &[u8],
) -> Result<(Header, Result<O::Response, Status>), AbiError> {
    let (header, payload) = response_payload(O::OPCODE, message)?;
    let typed = match payload {
        Ok(p) => {
            let mut r = Reader::new(p);
            let v = <O::Response as Payload<'_>>::decode(&mut r)?;
            r.finish()?;
            Ok(v)
        }
        Err(status) => Err(status),
    };
    Ok((header, typed))
}

/// The header and, for a success, the payload of a response to `opcode`.
fn response_payload(
    opcode: Opcode,
    message: &[u8],
) -> Result<(Header, Result<&[u8], Status>), AbiError> {
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
    Ok((header, Ok(payload)))
}
