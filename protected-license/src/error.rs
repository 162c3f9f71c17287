//! The crate's error type.

use cdm_core::abi::AbiError;

/// Why a message could not be built, parsed or accepted.
///
/// Variants say what failed, never with secret data. A caller answering over a wire should map
/// every signature, certificate and decryption failure to one opaque code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message ended before a field did.
    #[error("message truncated")]
    Truncated,
    /// Bytes followed the last field.
    #[error("trailing bytes after the message")]
    TrailingBytes,
    /// A length exceeded its limit.
    #[error("field or message too large")]
    TooLarge,
    /// The first four bytes were not the protocol's magic.
    #[error("bad magic")]
    BadMagic,
    /// A protocol version this code does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// Another message type than the one expected.
    #[error("message type {found:#04x} where {expected:#04x} was expected")]
    WrongMessageType {
        /// The type byte the caller asked for.
        expected: u8,
        /// The type byte in the message.
        found: u8,
    },
    /// A field held a value outside its domain (named).
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
    /// A public key was not a valid uncompressed P-256 point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A signature did not verify.
    #[error("bad signature")]
    BadSignature,
    /// A certificate was not issued by the key it must chain to.
    #[error("certificate does not chain to the trusted key")]
    UntrustedCertificate,
    /// A certificate of another role than the one required.
    #[error("certificate has the wrong role")]
    WrongCertificateRole,
    /// A certificate whose validity starts later than now.
    #[error("certificate not yet valid")]
    CertificateNotYetValid,
    /// A certificate whose validity ended before now.
    #[error("certificate expired")]
    CertificateExpired,
    /// A response whose nonce matches no outstanding request (replay, or an answer to
    /// something never asked).
    #[error("nonce matches no outstanding request")]
    NonceNotOutstanding,
    /// Too many requests outstanding at once.
    #[error("too many outstanding requests")]
    TooManyOutstanding,
    /// A message addressed to another device key.
    #[error("message is for another device")]
    WrongDevice,
    /// A message about another session than the one expected.
    #[error("message is for another session")]
    WrongSession,
    /// A provisioning response certifying another key than this device's.
    #[error("certificate is for another key")]
    WrongKey,
    /// An encrypted request for another server key than this server's.
    #[error("request encrypted to another server key")]
    WrongServerKey,
    /// A wrapped or encrypted value failed authentication.
    #[error("decryption failed")]
    Decrypt,
    /// The device has no certificate yet (provisioning needed).
    #[error("device not provisioned")]
    NotProvisioned,
    /// An entitlement key named by a rotation record is not known.
    #[error("unknown entitlement key")]
    UnknownEntitlementKey,
    /// A cryptographic operation failed for a reason other than authentication.
    #[error("cryptographic failure")]
    Crypto,
    /// An allocation failed.
    #[error("out of memory")]
    OutOfMemory,
}

/// The protocol is read and written with `cdm_core`'s strict codec, which reports its failures
/// as [`AbiError`]s; each one it can produce has its own variant here.
impl From<AbiError> for Error {
    fn from(e: AbiError) -> Self {
        match e {
            AbiError::Truncated => Error::Truncated,
            AbiError::TrailingBytes => Error::TrailingBytes,
            AbiError::PayloadTooLarge => Error::TooLarge,
            AbiError::InvalidField(name) => Error::InvalidField(name),
            AbiError::OutOfMemory => Error::OutOfMemory,
            AbiError::BadMagic => Error::BadMagic,
            // Header and operation-table checks of the ABI; the codec never makes them.
            AbiError::UnsupportedVersion(_)
            | AbiError::UnknownOpcode(_)
            | AbiError::UnknownStatus(_)
            | AbiError::ReservedNonZero
            | AbiError::UnexpectedResponse => Error::InvalidField("ABI header"),
        }
    }
}
