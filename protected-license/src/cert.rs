//! Certificates and the chain to the pinned root.
//!
//! The trust anchor is a **root public key** pinned in the device (and in the servers): it is
//! not itself a certificate. The root signs *intermediate* certificates:
//!
//! ```text
//! root key (pinned) ─┬─▶ provisioning certificate ──▶ device certificate
//!                    └─▶ license server certificate
//! ```
//!
//! Every certificate names its issuer by key ID (SHA-256 of the issuer's public key) and is
//! signed by it; see `docs/protected-license.md` for the byte layout. [`Certificate::parse`]
//! checks the encoding only; [`Certificate::verify_issued_by`] checks role, issuer, signature
//! and validity at a given time.

use alloc::vec::Vec;

use crate::crypto::{PublicKey, SigningKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::messages::{read_header, split_signed, with_capacity, write_header, MessageType};
use crate::Error;
use cdm_core::codec::{Reader, Writer};

/// The largest encoded certificate.
pub const MAX_CERTIFICATE_LEN: usize = 512;

/// What a certificate's key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Certifies device keys (issued by the root).
    Provisioning = 1,
    /// Signs licenses and renewal and release responses; its encryption key receives
    /// encrypted license requests (issued by the root).
    LicenseServer = 2,
    /// A device: its signing key signs requests, its encryption key receives content keys
    /// (issued by a provisioning key).
    Device = 3,
}

impl Role {
    fn from_u8(v: u8) -> Result<Self, Error> {
        match v {
            1 => Ok(Role::Provisioning),
            2 => Ok(Role::LicenseServer),
            3 => Ok(Role::Device),
            _ => Err(Error::InvalidField("role")),
        }
    }

    /// Whether certificates of this role carry an encryption key (all but provisioning).
    pub const fn has_encryption_key(self) -> bool {
        !matches!(self, Role::Provisioning)
    }
}

/// Robustness levels, as a bit set (EME robustness strings of this key system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Robustness(u8);

impl Robustness {
    /// No level (intermediates).
    pub const NONE: Self = Robustness(0);
    /// `SW_SECURE_CRYPTO`: keys and decryption in the secure world, clear samples returned.
    pub const SW_SECURE_CRYPTO: Self = Robustness(0x01);
    /// `HW_SECURE_DECODE`: decrypted samples never leave the secure world.
    pub const HW_SECURE_DECODE: Self = Robustness(0x02);
    /// Both levels.
    pub const ALL: Self = Robustness(0x03);

    /// Decodes a bit set; unknown bits are an error.
    pub fn from_bits(bits: u8) -> Result<Self, Error> {
        if bits & !Self::ALL.0 == 0 {
            Ok(Robustness(bits))
        } else {
            Err(Error::InvalidField("robustness"))
        }
    }

    /// Decodes a single level (a per-key requirement): exactly one known bit.
    pub fn single(bits: u8) -> Result<Self, Error> {
        if bits == Self::SW_SECURE_CRYPTO.0 || bits == Self::HW_SECURE_DECODE.0 {
            Ok(Robustness(bits))
        } else {
            Err(Error::InvalidField("key robustness"))
        }
    }

    /// The wire byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every level of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// An HDCP version as the wire encodes it: `major << 4 | minor` (`0x14` = 1.4, `0x22` = 2.2),
/// `0x00` = no HDCP. Ordered: a higher value is a newer version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hdcp(u8);

impl Hdcp {
    /// No HDCP (as a requirement: none required).
    pub const NONE: Self = Hdcp(0);
    /// HDCP 1.4.
    pub const V1_4: Self = Hdcp(0x14);
    /// HDCP 2.2.
    pub const V2_2: Self = Hdcp(0x22);
    /// HDCP 2.3.
    pub const V2_3: Self = Hdcp(0x23);

    /// Decodes the versions EME's HDCP policy names (1.0–1.4, 2.0–2.3) or none.
    pub fn from_u8(v: u8) -> Result<Self, Error> {
        match v {
            0x00 | 0x10..=0x14 | 0x20..=0x23 => Ok(Hdcp(v)),
            _ => Err(Error::InvalidField("hdcp")),
        }
    }

    /// The wire byte.
    pub const fn to_u8(self) -> u8 {
        self.0
    }
}

/// A parsed certificate. Its fields are trustworthy only after
/// [`verify_issued_by`](Certificate::verify_issued_by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// What the key may do.
    pub role: Role,
    /// The subject: a device ID or a server/provisioning key ID chosen by the issuer.
    pub subject_id: [u8; 16],
    /// Start of validity, seconds since the Unix epoch (inclusive).
    pub not_before: u64,
    /// End of validity, seconds since the Unix epoch (inclusive).
    pub not_after: u64,
    /// Robustness levels the device supports (devices only; none otherwise).
    pub robustness: Robustness,
    /// Highest HDCP version the device can enforce (devices only; none otherwise).
    pub max_hdcp: Hdcp,
    /// SHA-256 of the issuer's public key.
    pub issuer_key_id: [u8; 32],
    /// The subject's ECDSA P-256 signing key.
    pub signing_key: PublicKey,
    /// The subject's HPKE DHKEM(P-256) key (devices and license servers).
    pub encryption_key: Option<PublicKey>,
    /// The issuer's signature over every preceding byte.
    pub signature: [u8; SIGNATURE_LEN],
}

/// The fields an issuer fills in (everything but the issuer and the signature).
#[derive(Debug, Clone)]
pub struct CertificateTemplate {
    /// Role of the subject.
    pub role: Role,
    /// Subject ID.
    pub subject_id: [u8; 16],
    /// Start of validity.
    pub not_before: u64,
    /// End of validity.
    pub not_after: u64,
    /// Robustness levels (devices only).
    pub robustness: Robustness,
    /// Highest HDCP version (devices only).
    pub max_hdcp: Hdcp,
    /// Subject signing key.
    pub signing_key: PublicKey,
    /// Subject encryption key (required for devices and license servers, absent otherwise).
    pub encryption_key: Option<PublicKey>,
}

/// Reads a public key: [`PUBLIC_KEY_LEN`] bytes that [`PublicKey::from_bytes`] accepts.
pub(crate) fn read_public_key(r: &mut Reader<'_>) -> Result<PublicKey, Error> {
    PublicKey::from_bytes(&r.array::<PUBLIC_KEY_LEN>()?)
}

impl Certificate {
    /// Issues a certificate: checks the template's consistency, signs with `issuer`.
    pub fn issue(template: &CertificateTemplate, issuer: &SigningKey) -> Result<Vec<u8>, Error> {
        check_fields(
            template.role,
            template.not_before,
            template.not_after,
            template.robustness,
            template.max_hdcp,
            template.encryption_key.is_some(),
        )?;
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        write_header(&mut w, MessageType::Certificate)?;
        w.u8(template.role as u8)?;
        w.u8(0)?;
        w.put(&template.subject_id)?;
        w.u64(template.not_before)?;
        w.u64(template.not_after)?;
        w.u8(template.robustness.bits())?;
        w.u8(template.max_hdcp.to_u8())?;
        w.put(&issuer.public_key().key_id())?;
        w.put(template.signing_key.as_bytes())?;
        match &template.encryption_key {
            Some(k) => {
                w.u8(1)?;
                w.put(k.as_bytes())?;
            }
            None => w.u8(0)?,
        }
        let sig = issuer.sign(&out);
        Writer::new(&mut out).put(&sig)?;
        Ok(out)
    }

    /// Parses an encoded certificate strictly (no trust decision).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CERTIFICATE_LEN {
            return Err(Error::TooLarge);
        }
        let mut r = Reader::new(bytes);
        read_header(&mut r, MessageType::Certificate)?;
        let role = Role::from_u8(r.u8()?)?;
        r.reserved(1)?;
        let subject_id = r.array()?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        let robustness = Robustness::from_bits(r.u8()?)?;
        let max_hdcp = Hdcp::from_u8(r.u8()?)?;
        let issuer_key_id = r.array()?;
        let signing_key = read_public_key(&mut r)?;
        let encryption_key = match r.u8()? {
            0 => None,
            1 => Some(read_public_key(&mut r)?),
            _ => return Err(Error::InvalidField("encryption key flag")),
        };
        let signature = r.array()?;
        r.finish()?;
        check_fields(
            role,
            not_before,
            not_after,
            robustness,
            max_hdcp,
            encryption_key.is_some(),
        )?;
        Ok(Certificate {
            role,
            subject_id,
            not_before,
            not_after,
            robustness,
            max_hdcp,
            issuer_key_id,
            signing_key,
            encryption_key,
            signature,
        })
    }

    /// Checks, in this order: the role is `role`; the issuer key ID names `issuer`; the
    /// signature over `encoded` (the bytes this certificate was parsed from) verifies under
    /// `issuer`; `not_before ≤ now ≤ not_after`.
    pub fn verify_issued_by(
        &self,
        encoded: &[u8],
        role: Role,
        issuer: &PublicKey,
        now: u64,
    ) -> Result<(), Error> {
        if self.role != role {
            return Err(Error::WrongCertificateRole);
        }
        if !crate::crypto::ct_eq(&self.issuer_key_id, &issuer.key_id()) {
            return Err(Error::UntrustedCertificate);
        }
        let (tbs, _) = split_signed(encoded)?;
        issuer.verify(tbs, &self.signature)?;
        if now < self.not_before {
            return Err(Error::CertificateNotYetValid);
        }
        if now > self.not_after {
            return Err(Error::CertificateExpired);
        }
        Ok(())
    }

    /// The encryption key, which [`Certificate::parse`] guarantees for devices and license
    /// servers.
    pub fn encryption_key(&self) -> Result<&PublicKey, Error> {
        self.encryption_key
            .as_ref()
            .ok_or(Error::InvalidField("encryption key"))
    }
}

fn check_fields(
    role: Role,
    not_before: u64,
    not_after: u64,
    robustness: Robustness,
    max_hdcp: Hdcp,
    has_encryption_key: bool,
) -> Result<(), Error> {
    if not_before > not_after {
        return Err(Error::InvalidField("validity"));
    }
    if role.has_encryption_key() != has_encryption_key {
        return Err(Error::InvalidField("encryption key"));
    }
    if role != Role::Device && (robustness != Robustness::NONE || max_hdcp != Hdcp::NONE) {
        return Err(Error::InvalidField("capabilities of a non-device"));
    }
    Ok(())
}

/// A device's chain as it travels: the device certificate and the provisioning certificate
/// that issued it (both as encoded bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChain {
    /// Encoded device certificate.
    pub device: Vec<u8>,
    /// Encoded provisioning certificate.
    pub provisioning: Vec<u8>,
}

/// The verified content of a [`DeviceChain`].
#[derive(Debug, Clone)]
pub struct VerifiedDevice {
    /// The device certificate.
    pub device: Certificate,
    /// The provisioning certificate.
    pub provisioning: Certificate,
}

impl DeviceChain {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let device = to_vec(r.bytes_u16(MAX_CERTIFICATE_LEN)?)?;
        let provisioning = to_vec(r.bytes_u16(MAX_CERTIFICATE_LEN)?)?;
        Ok(DeviceChain {
            device,
            provisioning,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.bytes_u16(&self.device, MAX_CERTIFICATE_LEN)?;
        Ok(w.bytes_u16(&self.provisioning, MAX_CERTIFICATE_LEN)?)
    }

    /// Verifies root → provisioning → device at `now`.
    pub fn verify(&self, root: &PublicKey, now: u64) -> Result<VerifiedDevice, Error> {
        let provisioning = Certificate::parse(&self.provisioning)?;
        provisioning.verify_issued_by(&self.provisioning, Role::Provisioning, root, now)?;
        let device = Certificate::parse(&self.device)?;
        device.verify_issued_by(&self.device, Role::Device, &provisioning.signing_key, now)?;
        Ok(VerifiedDevice {
            device,
            provisioning,
        })
    }
}

/// Verifies a license server certificate (root → server) at `now`.
pub fn verify_server_certificate(
    encoded: &[u8],
    root: &PublicKey,
    now: u64,
) -> Result<Certificate, Error> {
    let cert = Certificate::parse(encoded)?;
    cert.verify_issued_by(encoded, Role::LicenseServer, root, now)?;
    Ok(cert)
}

pub(crate) fn to_vec(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut v = with_capacity(bytes.len())?;
    v.extend_from_slice(bytes);
    Ok(v)
}
