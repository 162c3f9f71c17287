//! # cdm-core — the shared vocabulary of tee-cdm
//!
//! Types both sides of the trust boundary agree on, `no_std` + `alloc`:
//! - [`eme`]: EME enumerations (session types, key statuses, init data types, robustness,
//!   encryption schemes, closed reasons, key systems) with EME strings and stable wire values;
//! - [`key_id`]: [`KeyId`], 1..=512-byte key IDs;
//! - [`init_data`]: parsing of `cenc` (pssh), `keyids` and `webm` init data;
//! - [`clearkey`]: the Clear Key license request, license (JWK Set) and release formats, and
//!   the zeroizing [`ContentKey`];
//! - [`base64url`]: the strict unpadded base64url those formats use;
//! - [`abi`]: the message ABI between the normal and the secure world.
//!
//! ```
//! use cdm_core::abi::{Operation, Request, Update};
//! use cdm_core::{parse_init_data, InitDataType};
//!
//! // `keyids` init data (EME §9.1.3's example key ID) → key IDs.
//! let kids = parse_init_data(InitDataType::KeyIds, br#"{"kids":["LwVHf8JLtPrv2GUXFW2v_A"]}"#)?;
//! assert_eq!(kids[0].to_string(), "2f05477fc24bb4faefd86517156daffc");
//!
//! // One ABI message: a 32-byte header and the payload, decoded strictly on the other side.
//! let mut message = Vec::new();
//! Update { response: b"{}" }.encode_message(7, 1, &mut message)?;
//! let (header, request) = Request::parse(&message).map_err(|(_, e)| e)?;
//! assert_eq!((header.session, header.request_id), (7, 1));
//! assert_eq!(request, Request::Update(Update { response: b"{}" }));
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// no_std discipline, checked by the compiler: reach for `core` and `alloc` first.
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
// "Never panics on input": checked arithmetic and fallible access on every path that can see
// outside bytes. Unit tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod wire_enum;

pub mod abi;
pub mod base64url;
pub mod clearkey;
pub mod codec;
pub mod eme;
pub mod init_data;
pub mod key_id;

pub use clearkey::{ClearKeyError, ContentKey, License, LicenseRequest};
pub use eme::{
    ClosedReason, EncryptionScheme, HdcpVersion, InitDataType, KeyStatus, KeySystem, MessageType,
    Robustness, SessionType,
};
pub use init_data::{parse_init_data, InitDataError};
pub use key_id::{KeyId, KeyIdError};
