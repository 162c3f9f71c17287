//! The server roles: the root authority, the provisioning service and the license server.
//!
//! Key generation here is for tests and the reference server; a production root key lives
//! offline. Every `verify_*` function checks a request completely before any response is built:
//! the signature, the device chain to the root, validity at the server's `now`.

use alloc::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::cert::{
    Certificate, CertificateTemplate, DeviceChain, Hdcp, Robustness, Role, VerifiedDevice,
};
use crate::crypto::{
    ct_eq, rotation_wrap, sha256, ContentKey, EntitlementKey, HpkeReceiver, HpkeSender, KemKey,
    PublicKey, SigningKey, KEY_LEN, TAG_LEN,
};
use crate::device::{license_keys_info, LICENSE_REQUEST_INFO};
use crate::messages::{
    peek_type, verify_signed, with_capacity, EncryptedLicenseRequest, KeyId, KeyKind, License,
    LicenseRequest, MessageType, ProvisioningRequest, ProvisioningResponse, ReleaseAck,
    RenewalResponse, RotationRecord, SealedKey, SessionId, SessionRequest, MAX_KEYS,
    SEALED_KEY_LEN,
};
use crate::policy::Policy;
use crate::Error;

/// Domain-separation prefix of device IDs: a device ID is the first 16 bytes of
/// SHA-256([`DEVICE_ID_LABEL`] ‖ device signing key).
pub const DEVICE_ID_LABEL: &[u8] = b"tee-cdm protected v1 device id";

/// The root authority: signs provisioning and license server certificates.
#[derive(Debug)]
pub struct RootAuthority {
    key: SigningKey,
}

impl RootAuthority {
    /// A fresh root key.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        RootAuthority {
            key: SigningKey::generate(rng),
        }
    }

    /// A root from its key.
    pub fn from_key(key: SigningKey) -> Self {
        RootAuthority { key }
    }

    /// The public key devices pin.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Certifies a provisioning key.
    pub fn certify_provisioning(
        &self,
        subject_id: [u8; 16],
        key: &PublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>, Error> {
        Certificate::issue(
            &CertificateTemplate {
                role: Role::Provisioning,
                subject_id,
                not_before,
                not_after,
                robustness: Robustness::NONE,
                max_hdcp: Hdcp::NONE,
                signing_key: *key,
                encryption_key: None,
            },
            &self.key,
        )
    }

    /// Certifies a license server's signing and encryption keys.
    pub fn certify_license_server(
        &self,
        subject_id: [u8; 16],
        signing_key: &PublicKey,
        encryption_key: &PublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>, Error> {
        Certificate::issue(
            &CertificateTemplate {
                role: Role::LicenseServer,
                subject_id,
                not_before,
                not_after,
                robustness: Robustness::NONE,
                max_hdcp: Hdcp::NONE,
                signing_key: *signing_key,
                encryption_key: Some(*encryption_key),
            },
            &self.key,
        )
    }
}

/// The provisioning service: certifies device keys.
#[derive(Debug)]
pub struct ProvisioningService {
    key: SigningKey,
    certificate: Vec<u8>,
    /// Robustness levels granted at most (intersected with the device's claim).
    pub max_robustness: Robustness,
    /// HDCP version granted at most (the lower of this and the device's claim).
    pub max_hdcp: Hdcp,
    /// Lifetime of device certificates, in seconds.
    pub validity: u64,
}

impl ProvisioningService {
    /// A service signing with `key`, whose certificate (from the root) is `certificate`.
    pub fn new(key: SigningKey, certificate: Vec<u8>, validity: u64) -> Self {
        ProvisioningService {
            key,
            certificate,
            max_robustness: Robustness::ALL,
            max_hdcp: Hdcp::V2_3,
            validity,
        }
    }

    /// Verifies a provisioning request (proof of possession of the signing key) and answers
    /// with a device certificate valid from `now` for [`validity`](Self::validity) seconds.
    pub fn provision(&self, request: &[u8], now: u64) -> Result<Vec<u8>, Error> {
        let req = ProvisioningRequest::parse(request)?;
        verify_signed(request, &req.signing_key)?;
        let digest = sha256(&[DEVICE_ID_LABEL, req.signing_key.as_bytes()].concat());
        let mut subject_id = [0u8; 16];
        subject_id.copy_from_slice(digest.get(..16).ok_or(Error::Crypto)?);
        let device = Certificate::issue(
            &CertificateTemplate {
                role: Role::Device,
                subject_id,
                not_before: now,
                not_after: now.saturating_add(self.validity),
                robustness: Robustness::from_bits(
                    req.robustness.bits() & self.max_robustness.bits(),
                )?,
                max_hdcp: req.max_hdcp.min(self.max_hdcp),
                signing_key: req.signing_key,
                encryption_key: Some(req.encryption_key),
            },
            &self.key,
        )?;
        ProvisioningResponse {
            nonce: req.nonce,
            chain: DeviceChain {
                device,
                provisioning: self.certificate.clone(),
            },
        }
        .encode(&self.key)
    }
}

/// A license request the server verified.
#[derive(Debug, Clone)]
pub struct VerifiedLicenseRequest {
    /// The request.
    pub request: LicenseRequest,
    /// The device's verified chain.
    pub device: VerifiedDevice,
    /// Whether it arrived HPKE-encrypted.
    pub encrypted: bool,
}

/// A key to put in a license.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    /// Content or entitlement key.
    pub kind: KeyKind,
    /// Its key ID.
    pub key_id: KeyId,
    /// Robustness required to use it.
    pub robustness: Robustness,
    /// Minimum HDCP version on the output.
    pub min_hdcp: Hdcp,
    /// The key bytes (for an entitlement key too).
    pub key: ContentKey,
}

/// The license server.
#[derive(Debug)]
pub struct LicenseServer {
    signing: SigningKey,
    encryption: KemKey,
    certificate: Vec<u8>,
    root: PublicKey,
}

impl LicenseServer {
    /// A server with its keys, its certificate (from the root) and the root it trusts for
    /// device chains.
    pub fn new(
        signing: SigningKey,
        encryption: KemKey,
        certificate: Vec<u8>,
        root: PublicKey,
    ) -> Self {
        LicenseServer {
            signing,
            encryption,
            certificate,
            root,
        }
    }

    /// The server certificate (what applications pass to `setServerCertificate`).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Verifies a license request, clear or encrypted: decrypts if needed, then the device
    /// chain to the root at `now` and the device's signature.
    pub fn verify_license_request(
        &self,
        bytes: &[u8],
        now: u64,
    ) -> Result<VerifiedLicenseRequest, Error> {
        match peek_type(bytes)? {
            MessageType::LicenseRequest => self.verify_clear_request(bytes, now, false),
            MessageType::EncryptedLicenseRequest => {
                let outer = EncryptedLicenseRequest::parse(bytes)?;
                let own = self.encryption.public_key().key_id();
                if !ct_eq(&outer.server_key_id, &own) {
                    return Err(Error::WrongServerKey);
                }
                let split = outer
                    .ciphertext
                    .len()
                    .checked_sub(TAG_LEN)
                    .ok_or(Error::Truncated)?;
                let (ct, tag) = outer
                    .ciphertext
                    .split_at_checked(split)
                    .ok_or(Error::Truncated)?;
                let tag = tag.first_chunk().ok_or(Error::Truncated)?;
                let mut inner = Zeroizing::new(ct.to_vec());
                let aad = EncryptedLicenseRequest::aad(&outer.server_key_id)?;
                HpkeReceiver::setup(&self.encryption, &outer.enc, LICENSE_REQUEST_INFO)?
                    .open(&mut inner, &aad, tag)?;
                self.verify_clear_request(&inner, now, true)
            }
            found => Err(Error::WrongMessageType {
                expected: MessageType::LicenseRequest as u8,
                found: found as u8,
            }),
        }
    }

    fn verify_clear_request(
        &self,
        bytes: &[u8],
        now: u64,
        encrypted: bool,
    ) -> Result<VerifiedLicenseRequest, Error> {
        let request = LicenseRequest::parse(bytes)?;
        let device = request.chain.verify(&self.root, now)?;
        verify_signed(bytes, &device.device.signing_key)?;
        Ok(VerifiedLicenseRequest {
            request,
            device,
            encrypted,
        })
    }

    /// Builds a license for a verified request: the keys HPKE-sealed to the device's
    /// encryption key, in the order given.
    pub fn issue_license<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        request: &VerifiedLicenseRequest,
        session_id: SessionId,
        now: u64,
        policy: Policy,
        grants: &[KeyGrant],
    ) -> Result<Vec<u8>, Error> {
        if grants.is_empty() || grants.len() > MAX_KEYS {
            return Err(Error::InvalidField("key count"));
        }
        let device_key = request.device.device.encryption_key()?;
        let nonce = request.request.nonce;
        let info = license_keys_info(&session_id, &nonce);
        let (enc, mut ctx) = HpkeSender::setup(device_key, &info, rng)?;
        let mut keys = with_capacity(grants.len())?;
        for g in grants {
            let mut sealed = SealedKey {
                kind: g.kind,
                key_id: g.key_id,
                robustness: Robustness::single(g.robustness.bits())?,
                min_hdcp: g.min_hdcp,
                sealed: [0u8; SEALED_KEY_LEN],
            };
            let mut buf = Zeroizing::new([0u8; KEY_LEN]);
            buf.copy_from_slice(g.key.expose());
            let tag = ctx.seal(buf.as_mut(), &sealed.aad())?;
            let (ct, t) = sealed.sealed.split_at_mut(KEY_LEN);
            ct.copy_from_slice(buf.as_ref());
            t.copy_from_slice(&tag);
            keys.push(sealed);
        }
        License {
            server_certificate: self.certificate.clone(),
            nonce,
            device_key_id: request.device.device.signing_key.key_id(),
            session_id,
            issued_at: now,
            policy,
            enc,
            keys,
        }
        .encode(&self.signing)
    }

    /// Verifies a renewal or release request (`ty`) signed by `device_key` (the signing key of
    /// the device the session's license was issued to, from the server's records).
    pub fn verify_session_request(
        &self,
        bytes: &[u8],
        ty: MessageType,
        device_key: &PublicKey,
    ) -> Result<SessionRequest, Error> {
        let req = SessionRequest::parse(bytes, ty)?;
        if !ct_eq(&req.device_key_id, &device_key.key_id()) {
            return Err(Error::WrongDevice);
        }
        verify_signed(bytes, device_key)?;
        Ok(req)
    }

    /// Answers a verified renewal request with a new policy.
    pub fn renewal_response(
        &self,
        request: &SessionRequest,
        now: u64,
        policy: Policy,
    ) -> Result<Vec<u8>, Error> {
        RenewalResponse {
            server_certificate: self.certificate.clone(),
            nonce: request.nonce,
            session_id: request.session_id,
            device_key_id: request.device_key_id,
            issued_at: now,
            policy,
        }
        .encode(&self.signing)
    }

    /// Acknowledges a verified release request.
    pub fn release_ack(&self, request: &SessionRequest) -> Result<Vec<u8>, Error> {
        ReleaseAck {
            server_certificate: self.certificate.clone(),
            nonce: request.nonce,
            session_id: request.session_id,
            device_key_id: request.device_key_id,
        }
        .encode(&self.signing)
    }
}

/// Builds a rotation record: each content key wrapped under `entitlement`.
pub fn rotation_record(
    entitlement_key_id: &KeyId,
    entitlement: &EntitlementKey,
    keys: &[(KeyId, ContentKey)],
) -> Result<Vec<u8>, Error> {
    let mut entries = with_capacity(keys.len())?;
    for (kid, key) in keys {
        entries.push((
            *kid,
            rotation_wrap(entitlement, entitlement_key_id, kid, key)?,
        ));
    }
    RotationRecord {
        entitlement_key_id: *entitlement_key_id,
        entries,
    }
    .encode()
}
