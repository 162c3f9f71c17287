//! The cryptography of the protocol, named exactly, behind small types.
//!
//! - **Signatures**: ECDSA over P-256 with SHA-256 (FIPS 186-5), deterministic nonces
//!   (RFC 6979), encoded as the fixed 64 bytes `r ‖ s` (big-endian each, IEEE P1363). Verifiers
//!   accept any valid `s` (high or low).
//! - **Public keys**: uncompressed SEC1 points, 65 bytes starting with `0x04`; the point at
//!   infinity and points off the curve are rejected.
//! - **Key IDs** of public keys: SHA-256 of the 65-byte encoding.
//! - **Public-key encryption**: HPKE (RFC 9180), base mode, suite
//!   KEM `0x0010` DHKEM(P-256, HKDF-SHA256), KDF `0x0001` HKDF-SHA256, AEAD `0x0001`
//!   AES-128-GCM: `enc` is 65 bytes, tags 16 bytes, the AEAD nonce is HPKE's own
//!   (base nonce XOR sequence number).
//! - **In-band keys**: a per-key KEK = HKDF-SHA256 (RFC 5869; no salt, the entitlement key as
//!   IKM, `info` = [`ROTATION_KEK_INFO`] ‖ entitlement key ID ‖ key ID, 16 bytes), then AES key
//!   wrap (RFC 3394, default IV `A6A6A6A6A6A6A6A6`) of the 16-byte content key: 24 bytes.

use core::fmt;

use crate::hpke;
use aes_kw::KekAes128;
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer, Verifier};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// Length of an encoded public key (uncompressed SEC1 P-256 point).
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of an encoded signature (`r ‖ s`).
pub const SIGNATURE_LEN: usize = 64;
/// Length of a private key scalar.
pub const PRIVATE_KEY_LEN: usize = 32;
/// Length of an HPKE encapsulated key (`enc`).
pub const ENC_LEN: usize = 65;
/// Length of an AES-128-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of a content or entitlement key (AES-128).
pub const KEY_LEN: usize = 16;
/// Length of an RFC 3394-wrapped 16-byte key.
pub const KEY_WRAP_LEN: usize = 24;
/// `info` prefix of the HKDF that derives a rotation record's per-key KEK.
pub const ROTATION_KEK_INFO: &[u8] = b"tee-cdm protected v1 rotation kek";

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A P-256 public key, validated on construction (uncompressed, on the curve, not the
/// identity). Public: derives equality.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Validates an uncompressed SEC1 encoding.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, Error> {
        if bytes.first() != Some(&0x04) {
            return Err(Error::InvalidPublicKey);
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| Error::InvalidPublicKey)?;
        Ok(PublicKey(*bytes))
    }

    /// The 65-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// The key's ID: SHA-256 of its encoding.
    pub fn key_id(&self) -> [u8; 32] {
        sha256(&self.0)
    }

    /// Verifies an ECDSA P-256/SHA-256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), Error> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.0)
            .map_err(|_| Error::InvalidPublicKey)?;
        let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| Error::BadSignature)?;
        key.verify(message, &sig).map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// An ECDSA P-256 signing key. Wiped on drop; never printed.
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl SigningKey {
    /// A fresh key from `rng`.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        SigningKey(p256::ecdsa::SigningKey::random(rng))
    }

    /// The key from its 32-byte scalar (big-endian); rejects 0 and values ≥ the group order.
    pub fn from_bytes(bytes: &[u8; PRIVATE_KEY_LEN]) -> Result<Self, Error> {
        p256::ecdsa::SigningKey::from_slice(bytes)
            .map(SigningKey)
            .map_err(|_| Error::InvalidField("private key"))
    }

    /// The 32-byte scalar, for sealing; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; PRIVATE_KEY_LEN]> {
        let mut bytes = self.0.to_bytes();
        let mut out = Zeroizing::new([0u8; PRIVATE_KEY_LEN]);
        out.copy_from_slice(&bytes);
        bytes.zeroize();
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let point = self.0.verifying_key().to_encoded_point(false);
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(point.as_bytes());
        PublicKey(out)
    }

    /// Signs `message` (ECDSA P-256/SHA-256, RFC 6979 nonce).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let sig: p256::ecdsa::Signature = self.0.sign(message);
        sig.to_bytes().into()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey { .. }")
    }
}

/// An HPKE DHKEM(P-256) private key (wiped on drop; never printed).
#[derive(Clone, Debug)]
pub struct KemKey(hpke::PrivateKey);

impl KemKey {
    /// A fresh key from `rng` (RFC 9180 `GenerateKeyPair`).
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Result<Self, Error> {
        hpke::PrivateKey::generate(rng).map(KemKey)
    }

    /// The key from its 32-byte scalar (big-endian).
    pub fn from_bytes(bytes: &[u8; PRIVATE_KEY_LEN]) -> Result<Self, Error> {
        hpke::PrivateKey::from_bytes(bytes).map(KemKey)
    }

    /// The 32-byte scalar, for sealing; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; PRIVATE_KEY_LEN]> {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }
}

/// The sending side of an HPKE context: seals messages in order (sequence numbers 0, 1, …).
#[derive(Debug)]
pub struct HpkeSender(hpke::Context);

impl HpkeSender {
    /// `SetupBaseS(pkR, info)`: a fresh ephemeral key from `rng`; returns `enc` and the context.
    pub fn setup<R: CryptoRng + RngCore>(
        recipient: &PublicKey,
        info: &[u8],
        rng: &mut R,
    ) -> Result<([u8; ENC_LEN], Self), Error> {
        let (enc, ctx) = hpke::Context::sender(&recipient.0, info, rng)?;
        Ok((enc, HpkeSender(ctx)))
    }

    /// Encrypts `buf` in place with the next sequence number; returns the tag.
    pub fn seal(&mut self, buf: &mut [u8], aad: &[u8]) -> Result<[u8; TAG_LEN], Error> {
        self.0.seal(buf, aad)
    }
}

/// The receiving side of an HPKE context: opens messages in the order they were sealed.
#[derive(Debug)]
pub struct HpkeReceiver(hpke::Context);

impl HpkeReceiver {
    /// `SetupBaseR(enc, skR, info)`.
    pub fn setup(key: &KemKey, enc: &[u8; ENC_LEN], info: &[u8]) -> Result<Self, Error> {
        hpke::Context::receiver(enc, &key.0, info).map(HpkeReceiver)
    }

    /// Decrypts `buf` in place with the next sequence number; on failure `buf` is unspecified
    /// and must be wiped by the caller.
    pub fn open(&mut self, buf: &mut [u8], aad: &[u8], tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        self.0.open(buf, aad, tag)
    }
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Wiped on drop, printed as `..`, compared in constant time.
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; KEY_LEN]);

        impl $name {
            /// Wraps key bytes.
            pub const fn new(bytes: [u8; KEY_LEN]) -> Self {
                $name(bytes)
            }

            /// A fresh key from `rng`.
            pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
                let mut k = $name([0; KEY_LEN]);
                rng.fill_bytes(&mut k.0);
                k
            }

            /// The key bytes (keep the borrow short; never log them).
            pub const fn expose(&self) -> &[u8; KEY_LEN] {
                &self.0
            }

            /// Constant-time equality.
            pub fn ct_eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_key!(
    /// An AES-128 content key.
    ContentKey
);
secret_key!(
    /// An AES-128 entitlement key: unwraps content keys delivered in-band.
    EntitlementKey
);

fn rotation_kek(
    entitlement: &EntitlementKey,
    entitlement_key_id: &[u8; 16],
    key_id: &[u8; 16],
) -> Result<KekAes128, Error> {
    let hk = Hkdf::<Sha256>::new(None, entitlement.expose());
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hk.expand_multi_info(
        &[ROTATION_KEK_INFO, entitlement_key_id, key_id],
        okm.as_mut(),
    )
    .map_err(|_| Error::Crypto)?;
    Ok(KekAes128::from(*okm))
}

/// Wraps a content key for a rotation record entry.
pub fn rotation_wrap(
    entitlement: &EntitlementKey,
    entitlement_key_id: &[u8; 16],
    key_id: &[u8; 16],
    key: &ContentKey,
) -> Result<[u8; KEY_WRAP_LEN], Error> {
    let kek = rotation_kek(entitlement, entitlement_key_id, key_id)?;
    let mut out = [0u8; KEY_WRAP_LEN];
    kek.wrap(key.expose(), &mut out)
        .map_err(|_| Error::Crypto)?;
    Ok(out)
}

/// Unwraps a rotation record entry; fails with [`Error::Decrypt`] when the RFC 3394 integrity
/// check fails (wrong entitlement key, wrong key ID, tampered bytes).
pub fn rotation_unwrap(
    entitlement: &EntitlementKey,
    entitlement_key_id: &[u8; 16],
    key_id: &[u8; 16],
    wrapped: &[u8; KEY_WRAP_LEN],
) -> Result<ContentKey, Error> {
    let kek = rotation_kek(entitlement, entitlement_key_id, key_id)?;
    let mut key = ContentKey::new([0; KEY_LEN]);
    kek.unwrap(wrapped, &mut key.0)
        .map_err(|_| Error::Decrypt)?;
    Ok(key)
}

/// Constant-time equality of two byte arrays (nonces, key IDs of the device).
pub fn ct_eq<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    a.ct_eq(b).into()
}
