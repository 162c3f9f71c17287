//! The protocol's messages and their strict binary encodings.
//!
//! Every message starts with a 6-byte header: magic `b"TCPL"`, version `u8` = [`VERSION`],
//! type `u8` ([`MessageType`]). Integers are little-endian; variable-length fields carry a
//! length prefix; every byte is accounted for (trailing bytes are an error). A *signed* message
//! ends with a 64-byte ECDSA P-256/SHA-256 signature over every byte before it, header
//! included, so a signature over one message type can never verify as another.
//!
//! Parsing ([`parse`](License::parse) functions) checks encoding and value domains only; the
//! trust decisions (signatures, chains, nonces, device binding) are made by
//! [`crate::device`] and [`crate::server`]. The layouts are in `docs/protected-license.md`.

use alloc::vec::Vec;

use crate::cert::{read_public_key, to_vec, DeviceChain, Hdcp, Robustness, MAX_CERTIFICATE_LEN};
use crate::crypto::{
    PublicKey, SigningKey, ENC_LEN, KEY_LEN, KEY_WRAP_LEN, SIGNATURE_LEN, TAG_LEN,
};
use crate::policy::Policy;
use crate::Error;
use cdm_core::codec::{Reader, Writer};

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"TCPL";
/// The protocol version this code writes and the only one it reads.
pub const VERSION: u8 = 1;
/// Length of the header (magic, version, type).
pub const HEADER_LEN: usize = 6;
/// Largest message accepted (EME's limit on responses).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Most keys in a license request, license or rotation record.
pub const MAX_KEYS: usize = 32;
/// Longest content ID in a license request.
pub const MAX_CONTENT_ID_LEN: usize = 1024;
/// Length of nonces.
pub const NONCE_LEN: usize = 16;
/// Length of key IDs (CENC `KID`s).
pub const KEY_ID_LEN: usize = 16;
/// Length of session IDs (chosen by the license server).
pub const SESSION_ID_LEN: usize = 16;
/// Length of a key sealed in a license: ciphertext and AES-GCM tag.
pub const SEALED_KEY_LEN: usize = KEY_LEN + TAG_LEN;

/// A nonce.
pub type Nonce = [u8; NONCE_LEN];
/// A key ID.
pub type KeyId = [u8; KEY_ID_LEN];
/// A session (license) ID.
pub type SessionId = [u8; SESSION_ID_LEN];

/// The message type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// [`crate::cert::Certificate`].
    Certificate = 0x01,
    /// [`ProvisioningRequest`].
    ProvisioningRequest = 0x10,
    /// [`ProvisioningResponse`].
    ProvisioningResponse = 0x11,
    /// [`LicenseRequest`].
    LicenseRequest = 0x20,
    /// [`EncryptedLicenseRequest`].
    EncryptedLicenseRequest = 0x21,
    /// [`License`].
    License = 0x22,
    /// [`SessionRequest`] asking for a renewal.
    RenewalRequest = 0x30,
    /// [`RenewalResponse`].
    RenewalResponse = 0x31,
    /// [`SessionRequest`] asking for a release.
    ReleaseRequest = 0x40,
    /// [`ReleaseAck`].
    ReleaseAck = 0x41,
    /// [`RotationRecord`].
    RotationRecord = 0x50,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x01 => MessageType::Certificate,
            0x10 => MessageType::ProvisioningRequest,
            0x11 => MessageType::ProvisioningResponse,
            0x20 => MessageType::LicenseRequest,
            0x21 => MessageType::EncryptedLicenseRequest,
            0x22 => MessageType::License,
            0x30 => MessageType::RenewalRequest,
            0x31 => MessageType::RenewalResponse,
            0x40 => MessageType::ReleaseRequest,
            0x41 => MessageType::ReleaseAck,
            0x50 => MessageType::RotationRecord,
            _ => return None,
        })
    }
}

/// Reads the header of any message: magic, version, a known type.
pub fn peek_type(bytes: &[u8]) -> Result<MessageType, Error> {
    let mut r = Reader::new(bytes);
    let (magic, version, ty) = (r.array::<4>()?, r.u8()?, r.u8()?);
    if magic != MAGIC {
        return Err(Error::BadMagic);
    }
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    MessageType::from_u8(ty).ok_or(Error::InvalidField("message type"))
}

pub(crate) fn read_header(r: &mut Reader<'_>, expected: MessageType) -> Result<(), Error> {
    let magic = r.array::<4>()?;
    if magic != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let found = r.u8()?;
    if found != expected as u8 {
        return Err(Error::WrongMessageType {
            expected: expected as u8,
            found,
        });
    }
    Ok(())
}

pub(crate) fn write_header(w: &mut Writer<'_>, ty: MessageType) -> Result<(), Error> {
    w.put(&MAGIC)?;
    w.u8(VERSION)?;
    Ok(w.u8(ty as u8)?)
}

/// Splits a signed message into the signed bytes and the trailing signature.
pub fn split_signed(bytes: &[u8]) -> Result<(&[u8], &[u8; SIGNATURE_LEN]), Error> {
    let at = bytes
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or(Error::Truncated)?;
    let (tbs, sig) = bytes.split_at_checked(at).ok_or(Error::Truncated)?;
    let sig = sig.first_chunk::<SIGNATURE_LEN>().ok_or(Error::Truncated)?;
    Ok((tbs, sig))
}

/// Verifies the trailing signature of a signed message under `key`.
pub fn verify_signed(bytes: &[u8], key: &PublicKey) -> Result<(), Error> {
    let (tbs, sig) = split_signed(bytes)?;
    key.verify(tbs, sig)
}

/// Encodes a message: header, `body`, and (with a key) the signature over all of it.
fn encode(
    ty: MessageType,
    signer: Option<&SigningKey>,
    body: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    write_header(&mut w, ty)?;
    body(&mut w)?;
    if let Some(key) = signer {
        let sig = key.sign(&out);
        Writer::new(&mut out).put(&sig)?;
    }
    if out.len() > MAX_MESSAGE_LEN {
        return Err(Error::TooLarge);
    }
    Ok(out)
}

/// Parses a message: size limit, header, `body`, then (if `signed`) the signature, then the
/// end. Returns the body's value; the signature is skipped, not checked.
fn parse<'a, T>(
    bytes: &'a [u8],
    ty: MessageType,
    signed: bool,
    body: impl FnOnce(&mut Reader<'a>) -> Result<T, Error>,
) -> Result<T, Error> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(Error::TooLarge);
    }
    let mut r = Reader::new(bytes);
    read_header(&mut r, ty)?;
    let value = body(&mut r)?;
    if signed {
        r.array::<SIGNATURE_LEN>()?;
    }
    r.finish()?;
    Ok(value)
}

fn read_count(r: &mut Reader<'_>) -> Result<usize, Error> {
    let n = usize::from(r.u8()?);
    if n == 0 || n > MAX_KEYS {
        return Err(Error::InvalidField("key count"));
    }
    Ok(n)
}

fn write_count(w: &mut Writer<'_>, n: usize) -> Result<(), Error> {
    if n == 0 || n > MAX_KEYS {
        return Err(Error::InvalidField("key count"));
    }
    Ok(w.u8(u8::try_from(n).map_err(|_| Error::TooLarge)?)?)
}

/// An empty vector with room for exactly `n` items, or [`Error::OutOfMemory`].
pub(crate) fn with_capacity<T>(n: usize) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
    Ok(v)
}

/// Provisioning request (EME `individualization-request`): the device's public keys, proven by
/// a signature of the device signing key over the whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningRequest {
    /// Fresh random nonce, echoed by the response.
    pub nonce: Nonce,
    /// Device clock, seconds since the Unix epoch (informative).
    pub timestamp: u64,
    /// Device ECDSA signing key (signs this request).
    pub signing_key: PublicKey,
    /// Device HPKE encryption key.
    pub encryption_key: PublicKey,
    /// Robustness levels the device claims.
    pub robustness: Robustness,
    /// Highest HDCP version the device claims.
    pub max_hdcp: Hdcp,
}

impl ProvisioningRequest {
    /// Encodes and signs with the device signing key (which must match `signing_key`).
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::ProvisioningRequest, Some(key), |w| {
            w.put(&self.nonce)?;
            w.u64(self.timestamp)?;
            w.put(self.signing_key.as_bytes())?;
            w.put(self.encryption_key.as_bytes())?;
            w.u8(self.robustness.bits())?;
            Ok(w.u8(self.max_hdcp.to_u8())?)
        })
    }

    /// Parses strictly (the signature is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::ProvisioningRequest, true, |r| {
            Ok(ProvisioningRequest {
                nonce: r.array()?,
                timestamp: r.u64()?,
                signing_key: read_public_key(r)?,
                encryption_key: read_public_key(r)?,
                robustness: Robustness::from_bits(r.u8()?)?,
                max_hdcp: Hdcp::from_u8(r.u8()?)?,
            })
        })
    }
}

/// Provisioning response: the device's chain, bound to the request's nonce by the provisioning
/// key's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningResponse {
    /// The request's nonce.
    pub nonce: Nonce,
    /// Device certificate and the provisioning certificate that issued it.
    pub chain: DeviceChain,
}

impl ProvisioningResponse {
    /// Encodes and signs with the provisioning key.
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::ProvisioningResponse, Some(key), |w| {
            w.put(&self.nonce)?;
            self.chain.write(w)
        })
    }

    /// Parses strictly (the signature is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::ProvisioningResponse, true, |r| {
            Ok(ProvisioningResponse {
                nonce: r.array()?,
                chain: DeviceChain::read(r)?,
            })
        })
    }
}

/// EME session types, as this protocol encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionType {
    /// `temporary`.
    Temporary = 1,
    /// `persistent-license`.
    PersistentLicense = 2,
}

impl SessionType {
    fn from_u8(v: u8) -> Result<Self, Error> {
        match v {
            1 => Ok(SessionType::Temporary),
            2 => Ok(SessionType::PersistentLicense),
            _ => Err(Error::InvalidField("session type")),
        }
    }
}

/// License request (the clear, signed form; EME `license-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    /// The device's chain.
    pub chain: DeviceChain,
    /// Fresh random nonce; the license must echo it.
    pub nonce: Nonce,
    /// Device clock, seconds since the Unix epoch (informative).
    pub timestamp: u64,
    /// The session type asked for.
    pub session_type: SessionType,
    /// Robustness levels the client asks to use.
    pub robustness: Robustness,
    /// The HDCP version currently in force on the output.
    pub hdcp: Hdcp,
    /// The key IDs asked for (1..=[`MAX_KEYS`]).
    pub key_ids: Vec<KeyId>,
    /// Opaque content ID (for example the `pssh` data of the init data), ≤
    /// [`MAX_CONTENT_ID_LEN`] bytes.
    pub content_id: Vec<u8>,
}

impl LicenseRequest {
    /// Encodes and signs with the device signing key.
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::LicenseRequest, Some(key), |w| {
            self.chain.write(w)?;
            w.put(&self.nonce)?;
            w.u64(self.timestamp)?;
            w.u8(self.session_type as u8)?;
            w.u8(self.robustness.bits())?;
            w.u8(self.hdcp.to_u8())?;
            write_count(w, self.key_ids.len())?;
            for kid in &self.key_ids {
                w.put(kid)?;
            }
            Ok(w.bytes_u16(&self.content_id, MAX_CONTENT_ID_LEN)?)
        })
    }

    /// Parses strictly (the signature is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::LicenseRequest, true, |r| {
            let chain = DeviceChain::read(r)?;
            let nonce = r.array()?;
            let timestamp = r.u64()?;
            let session_type = SessionType::from_u8(r.u8()?)?;
            let robustness = Robustness::from_bits(r.u8()?)?;
            let hdcp = Hdcp::from_u8(r.u8()?)?;
            let n = read_count(r)?;
            let mut key_ids = with_capacity(n)?;
            for _ in 0..n {
                key_ids.push(r.array()?);
            }
            let content_id = to_vec(r.bytes_u16(MAX_CONTENT_ID_LEN)?)?;
            Ok(LicenseRequest {
                chain,
                nonce,
                timestamp,
                session_type,
                robustness,
                hdcp,
                key_ids,
                content_id,
            })
        })
    }
}

/// A license request HPKE-encrypted to the license server's encryption key (when the
/// application set a server certificate). The plaintext is a whole signed
/// [`LicenseRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedLicenseRequest {
    /// SHA-256 of the server encryption key the request is encrypted to.
    pub server_key_id: [u8; 32],
    /// HPKE `enc`.
    pub enc: [u8; ENC_LEN],
    /// Ciphertext of the inner request followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Bytes of an [`EncryptedLicenseRequest`] before its ciphertext length: the HPKE AAD is the
/// first [`ENCRYPTED_REQUEST_AAD_LEN`] of them (header and server key ID).
pub const ENCRYPTED_REQUEST_AAD_LEN: usize = HEADER_LEN + 32;

impl EncryptedLicenseRequest {
    /// The AAD of the HPKE seal: header ‖ server key ID.
    pub fn aad(server_key_id: &[u8; 32]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        write_header(&mut w, MessageType::EncryptedLicenseRequest)?;
        w.put(server_key_id)?;
        Ok(out)
    }

    /// Encodes (not signed: the inner request is).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        encode(MessageType::EncryptedLicenseRequest, None, |w| {
            w.put(&self.server_key_id)?;
            w.put(&self.enc)?;
            Ok(w.bytes_u32(&self.ciphertext, MAX_MESSAGE_LEN)?)
        })
    }

    /// Parses strictly.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::EncryptedLicenseRequest, false, |r| {
            let server_key_id = r.array()?;
            let enc = r.array()?;
            let ciphertext = r.bytes_u32(MAX_MESSAGE_LEN)?;
            if ciphertext.len() < TAG_LEN {
                return Err(Error::Truncated);
            }
            Ok(EncryptedLicenseRequest {
                server_key_id,
                enc,
                ciphertext: to_vec(ciphertext)?,
            })
        })
    }
}

/// What a license key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyKind {
    /// A content key (decrypts samples).
    Content = 1,
    /// An entitlement key (unwraps content keys of [`RotationRecord`]s).
    Entitlement = 2,
}

impl KeyKind {
    fn from_u8(v: u8) -> Result<Self, Error> {
        match v {
            1 => Ok(KeyKind::Content),
            2 => Ok(KeyKind::Entitlement),
            _ => Err(Error::InvalidField("key kind")),
        }
    }
}

/// One key of a license, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// Content or entitlement key.
    pub kind: KeyKind,
    /// The key's ID.
    pub key_id: KeyId,
    /// Robustness required to use the key (exactly one level).
    pub robustness: Robustness,
    /// Minimum HDCP version on the output to use the key.
    pub min_hdcp: Hdcp,
    /// HPKE ciphertext of the 16-byte key followed by its tag.
    pub sealed: [u8; SEALED_KEY_LEN],
}

/// Length of the per-key HPKE AAD: kind ‖ key ID ‖ robustness ‖ min HDCP.
pub const KEY_AAD_LEN: usize = 1 + KEY_ID_LEN + 1 + 1;

impl SealedKey {
    /// The AAD its key is sealed with: kind ‖ key ID ‖ robustness ‖ min HDCP.
    pub fn aad(&self) -> [u8; KEY_AAD_LEN] {
        let mut aad = [0u8; KEY_AAD_LEN];
        let (kind, rest) = aad.split_at_mut(1);
        let (kid, rest) = rest.split_at_mut(KEY_ID_LEN);
        kind.copy_from_slice(&[self.kind as u8]);
        kid.copy_from_slice(&self.key_id);
        rest.copy_from_slice(&[self.robustness.bits(), self.min_hdcp.to_u8()]);
        aad
    }
}

/// License: the server's signed answer to a [`LicenseRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// The license server's certificate (root → server).
    pub server_certificate: Vec<u8>,
    /// The request's nonce.
    pub nonce: Nonce,
    /// SHA-256 of the device signing key the license is for.
    pub device_key_id: [u8; 32],
    /// Session (license) ID chosen by the server; renewal and release name it.
    pub session_id: SessionId,
    /// Server clock at issue, seconds since the Unix epoch (informative).
    pub issued_at: u64,
    /// The policy.
    pub policy: Policy,
    /// HPKE `enc` of the context all keys are sealed in.
    pub enc: [u8; ENC_LEN],
    /// The keys, sealed in this order (HPKE sequence numbers 0, 1, …).
    pub keys: Vec<SealedKey>,
}

impl License {
    /// Encodes and signs with the license server key.
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::License, Some(key), |w| {
            w.bytes_u16(&self.server_certificate, MAX_CERTIFICATE_LEN)?;
            w.put(&self.nonce)?;
            w.put(&self.device_key_id)?;
            w.put(&self.session_id)?;
            w.u64(self.issued_at)?;
            self.policy.write(w)?;
            w.put(&self.enc)?;
            write_count(w, self.keys.len())?;
            for k in &self.keys {
                w.u8(k.kind as u8)?;
                w.put(&k.key_id)?;
                w.u8(k.robustness.bits())?;
                w.u8(k.min_hdcp.to_u8())?;
                w.put(&k.sealed)?;
            }
            Ok(())
        })
    }

    /// Parses strictly (signature, certificate and keys are not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::License, true, |r| {
            let server_certificate = to_vec(r.bytes_u16(MAX_CERTIFICATE_LEN)?)?;
            let nonce = r.array()?;
            let device_key_id = r.array()?;
            let session_id = r.array()?;
            let issued_at = r.u64()?;
            let policy = Policy::read(r)?;
            let enc = r.array()?;
            let n = read_count(r)?;
            let mut keys = with_capacity(n)?;
            for _ in 0..n {
                keys.push(SealedKey {
                    kind: KeyKind::from_u8(r.u8()?)?,
                    key_id: r.array()?,
                    robustness: Robustness::single(r.u8()?)?,
                    min_hdcp: Hdcp::from_u8(r.u8()?)?,
                    sealed: r.array()?,
                });
            }
            Ok(License {
                server_certificate,
                nonce,
                device_key_id,
                session_id,
                issued_at,
                policy,
                enc,
                keys,
            })
        })
    }
}

/// Renewal or release request (EME `license-renewal` / `license-release`), signed by the
/// device key; the type byte says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// The license's session ID.
    pub session_id: SessionId,
    /// Fresh random nonce; the response must echo it.
    pub nonce: Nonce,
    /// Device clock, seconds since the Unix epoch (informative).
    pub timestamp: u64,
    /// SHA-256 of the device signing key.
    pub device_key_id: [u8; 32],
}

impl SessionRequest {
    /// Encodes as `ty` ([`MessageType::RenewalRequest`] or [`MessageType::ReleaseRequest`])
    /// and signs with the device key.
    pub fn encode(&self, ty: MessageType, key: &SigningKey) -> Result<Vec<u8>, Error> {
        check_session_type(ty)?;
        encode(ty, Some(key), |w| {
            w.put(&self.session_id)?;
            w.put(&self.nonce)?;
            w.u64(self.timestamp)?;
            Ok(w.put(&self.device_key_id)?)
        })
    }

    /// Parses a message of type `ty` strictly (the signature is not checked).
    pub fn parse(bytes: &[u8], ty: MessageType) -> Result<Self, Error> {
        check_session_type(ty)?;
        parse(bytes, ty, true, |r| {
            Ok(SessionRequest {
                session_id: r.array()?,
                nonce: r.array()?,
                timestamp: r.u64()?,
                device_key_id: r.array()?,
            })
        })
    }
}

fn check_session_type(ty: MessageType) -> Result<(), Error> {
    match ty {
        MessageType::RenewalRequest | MessageType::ReleaseRequest => Ok(()),
        _ => Err(Error::InvalidField("session request type")),
    }
}

/// Renewal response: a new policy for the session, signed by the license server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalResponse {
    /// The license server's certificate.
    pub server_certificate: Vec<u8>,
    /// The renewal request's nonce.
    pub nonce: Nonce,
    /// The session renewed.
    pub session_id: SessionId,
    /// SHA-256 of the device signing key.
    pub device_key_id: [u8; 32],
    /// Server clock (informative).
    pub issued_at: u64,
    /// The new policy; its durations count from the device's acceptance of this response.
    pub policy: Policy,
}

impl RenewalResponse {
    /// Encodes and signs with the license server key.
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::RenewalResponse, Some(key), |w| {
            w.bytes_u16(&self.server_certificate, MAX_CERTIFICATE_LEN)?;
            w.put(&self.nonce)?;
            w.put(&self.session_id)?;
            w.put(&self.device_key_id)?;
            w.u64(self.issued_at)?;
            self.policy.write(w)
        })
    }

    /// Parses strictly (the signature is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::RenewalResponse, true, |r| {
            Ok(RenewalResponse {
                server_certificate: to_vec(r.bytes_u16(MAX_CERTIFICATE_LEN)?)?,
                nonce: r.array()?,
                session_id: r.array()?,
                device_key_id: r.array()?,
                issued_at: r.u64()?,
                policy: Policy::read(r)?,
            })
        })
    }
}

/// Release acknowledgement, signed by the license server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseAck {
    /// The license server's certificate.
    pub server_certificate: Vec<u8>,
    /// The release request's nonce.
    pub nonce: Nonce,
    /// The session released.
    pub session_id: SessionId,
    /// SHA-256 of the device signing key.
    pub device_key_id: [u8; 32],
}

impl ReleaseAck {
    /// Encodes and signs with the license server key.
    pub fn encode(&self, key: &SigningKey) -> Result<Vec<u8>, Error> {
        encode(MessageType::ReleaseAck, Some(key), |w| {
            w.bytes_u16(&self.server_certificate, MAX_CERTIFICATE_LEN)?;
            w.put(&self.nonce)?;
            w.put(&self.session_id)?;
            Ok(w.put(&self.device_key_id)?)
        })
    }

    /// Parses strictly (the signature is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::ReleaseAck, true, |r| {
            Ok(ReleaseAck {
                server_certificate: to_vec(r.bytes_u16(MAX_CERTIFICATE_LEN)?)?,
                nonce: r.array()?,
                session_id: r.array()?,
                device_key_id: r.array()?,
            })
        })
    }
}

/// In-band key rotation record: the data of a `pssh` box of [`crate::SYSTEM_ID`]. Content keys
/// wrapped by an entitlement key delivered in a license; not signed (the key wrap
/// authenticates each key and its key ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    /// ID of the entitlement key that wraps the entries.
    pub entitlement_key_id: KeyId,
    /// Key ID and RFC 3394-wrapped content key, per entry.
    pub entries: Vec<(KeyId, [u8; KEY_WRAP_LEN])>,
}

impl RotationRecord {
    /// Encodes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        encode(MessageType::RotationRecord, None, |w| {
            w.put(&self.entitlement_key_id)?;
            write_count(w, self.entries.len())?;
            for (kid, wrapped) in &self.entries {
                w.put(kid)?;
                w.put(wrapped)?;
            }
            Ok(())
        })
    }

    /// Parses strictly.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        parse(bytes, MessageType::RotationRecord, false, |r| {
            let entitlement_key_id = r.array()?;
            let n = read_count(r)?;
            let mut entries = with_capacity(n)?;
            for _ in 0..n {
                entries.push((r.array()?, r.array()?));
            }
            Ok(RotationRecord {
                entitlement_key_id,
                entries,
            })
        })
    }
}

/// Parses any message by its type byte and discards the result: the fuzz targets' entry point.
pub fn parse_any(bytes: &[u8]) -> Result<MessageType, Error> {
    let ty = peek_type(bytes)?;
    match ty {
        MessageType::Certificate => crate::cert::Certificate::parse(bytes).map(drop),
        MessageType::ProvisioningRequest => ProvisioningRequest::parse(bytes).map(drop),
        MessageType::ProvisioningResponse => ProvisioningResponse::parse(bytes).map(drop),
        MessageType::LicenseRequest => LicenseRequest::parse(bytes).map(drop),
        MessageType::EncryptedLicenseRequest => EncryptedLicenseRequest::parse(bytes).map(drop),
        MessageType::License => License::parse(bytes).map(drop),
        MessageType::RenewalRequest | MessageType::ReleaseRequest => {
            SessionRequest::parse(bytes, ty).map(drop)
        }
        MessageType::RenewalResponse => RenewalResponse::parse(bytes).map(drop),
        MessageType::ReleaseAck => ReleaseAck::parse(bytes).map(drop),
        MessageType::RotationRecord => RotationRecord::parse(bytes).map(drop),
    }?;
    Ok(ty)
}
