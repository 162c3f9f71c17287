//! The message ABI between the normal world and the secure world.
//!
//! Every request and response is one message: a fixed 32-byte little-endian [`Header`]
//! followed by `payload_len` bytes of payload whose layout the opcode fixes. Only sample data
//! travels outside messages (the shared sample buffer of [`Opcode::Decrypt`]). The full
//! specification, for implementers in any language, is `docs/abi.md`.
//!
//! Decoding is strict: unknown opcodes, versions and enum values, reserved bits that are not
//! zero, truncated payloads, trailing bytes and fields over the [`limits`] are rejected with
//! an [`AbiError`] that maps to a stable wire [`Status`].

pub mod codec;
mod error;
mod header;
pub mod limits;
mod opcode;
mod request;
mod response;
mod status;

pub use error::AbiError;
pub use header::{Header, ABI_VERSION, HEADER_LEN, MAGIC};
pub use opcode::Opcode;
pub use request::{DecryptRequest, OutputKind, Request, Subsamples};
pub use response::{Capabilities, DecryptOutput, Response, SessionState, MAX_ENGINE_NAME_LEN};
pub use status::Status;
