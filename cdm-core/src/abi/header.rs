//! The fixed 32-byte message header.

use bytemuck::{Pod, Zeroable};

use super::error::AbiError;
use super::limits::MAX_PAYLOAD_LEN;
use super::status::Status;
use super::table::Opcode;

/// `b"TCDM"` read as a little-endian `u32`: the first four bytes of every message.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TCDM");

/// The ABI version this crate speaks. A receiver rejects any other version with
/// [`Status::UnsupportedVersion`].
pub const ABI_VERSION: u16 = 1;

/// Size of [`Header`] on the wire.
pub const HEADER_LEN: usize = 32;

/// The header that starts every request and response.
///
/// All fields are little-endian on the wire; [`Header::to_bytes`] and [`Header::parse`]
/// convert, so the in-memory value is always native. Enumerations travel as raw integers and
/// are decoded by accessors that can fail.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | `magic` = `"TCDM"` |
/// | 4 | 2 | `version` = 1 |
/// | 6 | 2 | `opcode` |
/// | 8 | 8 | `session` handle (0 = none) |
/// | 16 | 4 | `request_id` (echoed in the response) |
/// | 20 | 4 | `payload_len` (bytes after the header) |
/// | 24 | 4 | `status` (0 in requests; a [`Status`] code in responses) |
/// | 28 | 4 | `_reserved` (must be 0) |
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`ABI_VERSION`].
    pub version: u16,
    /// Raw opcode; decode with [`Header::opcode`].
    pub opcode: u16,
    /// Session handle, 0 for session-less operations.
    pub session: u64,
    /// Caller-chosen correlation id, echoed in the response.
    pub request_id: u32,
    /// Length of the payload that follows the header.
    pub payload_len: u32,
    /// Raw status; decode with [`Header::status`].
    pub status: u32,
    /// Reserved, must be zero.
    pub _reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_LEN);

impl Header {
    /// A request header for `opcode` on `session`.
    pub const fn request(opcode: Opcode, session: u64, request_id: u32) -> Header {
        Header {
            magic: MAGIC,
            version: ABI_VERSION,
            opcode: opcode.to_wire(),
            session,
            request_id,
            payload_len: 0,
            status: 0,
            _reserved: 0,
        }
    }

    /// The response header answering `self` with `status`.
    pub const fn response(&self, status: Status) -> Header {
        Header {
            magic: MAGIC,
            version: ABI_VERSION,
            opcode: self.opcode,
            session: self.session,
            request_id: self.request_id,
            payload_len: 0,
            status: status.to_wire(),
            _reserved: 0,
        }
    }

    /// Decodes the opcode.
    pub fn opcode(&self) -> Result<Opcode, AbiError> {
        Opcode::from_wire(self.opcode).ok_or(AbiError::UnknownOpcode(self.opcode))
    }

    /// Decodes the status.
    pub fn status(&self) -> Result<Status, AbiError> {
        Status::from_wire(self.status).ok_or(AbiError::UnknownStatus(self.status))
    }

    /// Serializes the header (little-endian).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let le = Header {
            magic: self.magic.to_le(),
            version: self.version.to_le(),
            opcode: self.opcode.to_le(),
            session: self.session.to_le(),
            request_id: self.request_id.to_le(),
            payload_len: self.payload_len.to_le(),
            status: self.status.to_le(),
            _reserved: self._reserved.to_le(),
        };
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(bytemuck::bytes_of(&le));
        out
    }

    /// Splits a message into its validated header and payload.
    ///
    /// Checks, in order: length ≥ [`HEADER_LEN`], magic, version, reserved field, payload
    /// length ≤ [`MAX_PAYLOAD_LEN`], and that exactly `payload_len` bytes follow (neither
    /// truncated nor trailing). The opcode and status are *not* decoded here, so a receiver
    /// can still answer an unknown opcode with a response carrying the request id.
    pub fn parse(message: &[u8]) -> Result<(Header, &[u8]), AbiError> {
        let (head, payload) = message
            .split_at_checked(HEADER_LEN)
            .ok_or(AbiError::Truncated)?;
        let raw: Header =
            bytemuck::try_pod_read_unaligned(head).map_err(|_| AbiError::Truncated)?;
        let h = Header {
            magic: u32::from_le(raw.magic),
            version: u16::from_le(raw.version),
            opcode: u16::from_le(raw.opcode),
            session: u64::from_le(raw.session),
            request_id: u32::from_le(raw.request_id),
            payload_len: u32::from_le(raw.payload_len),
            status: u32::from_le(raw.status),
            _reserved: u32::from_le(raw._reserved),
        };
        if h.magic != MAGIC {
            return Err(AbiError::BadMagic);
        }
        if h.version != ABI_VERSION {
            return Err(AbiError::UnsupportedVersion(h.version));
        }
        if h._reserved != 0 {
            return Err(AbiError::ReservedNonZero);
        }
        let declared = usize::try_from(h.payload_len).map_err(|_| AbiError::PayloadTooLarge)?;
        if declared > MAX_PAYLOAD_LEN {
            return Err(AbiError::PayloadTooLarge);
        }
        match payload.len().cmp(&declared) {
            core::cmp::Ordering::Less => Err(AbiError::Truncated),
            core::cmp::Ordering::Greater => Err(AbiError::TrailingBytes),
            core::cmp::Ordering::Equal => Ok((h, payload)),
        }
    }
}
