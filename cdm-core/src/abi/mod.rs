//! The message ABI between the normal world and the secure world.
//!
//! Every request and response is one message: a fixed 32-byte little-endian [`Header`]
//! followed by `payload_len` bytes of payload whose layout the opcode fixes. Only sample data
//! travels outside messages (the shared sample buffer of [`Opcode::Decrypt`]). The full
//! specification, for implementers in any language, is `docs/abi.md`.
//!
//! Every operation is one row of the [`table`]: its [`Opcode`], its request payload type and
//! its response payload type, from which [`Request`], [`Response`] and the typed
//! [`Operation`] trait are generated.
//!
//! Decoding is strict: unknown opcodes, versions and enum values, reserved bits that are not
//! zero, truncated payloads, trailing bytes and fields over the [`limits`] are rejected with
//! an [`AbiError`] that maps to a stable wire [`Status`].

mod error;
#[cfg(feature = "std")]
pub mod frame;
mod header;
pub mod limits;
mod request;
mod response;
mod status;
pub mod table;

pub use crate::codec::{Payload, Reader, Writer};
pub use error::AbiError;
pub use header::{Header, ABI_VERSION, HEADER_LEN, MAGIC};
pub use request::{
    AddInBandKeys, CloseSession, DecryptRequest, GenerateRequest, GetCapabilities, GetKeyStatuses,
    GetStatusForPolicy, Load, OpenSession, OutputKind, ReleaseSecureBuffer, Remove,
    RenderSecureBuffer, Renew, SampleError, SetServerCertificate, Subsamples, Update,
};
pub use response::{
    Capabilities, DecryptOutput, Done, Loaded, Message, PolicyStatus, Rendered, SessionOpened,
    SessionState, MAX_ENGINE_NAME_LEN,
};
pub use status::Status;
pub use table::{encode_response, parse_response, Opcode, Operation, Request, Response};
