//! The device role: what the secure world runs.
//!
//! A [`Device`] holds the device key pair (an ECDSA signing key and an HPKE encryption key),
//! the pinned root key and, once provisioned, its certificate chain. Requests it makes register
//! their nonce in an [`Outstanding`] set the caller keeps per session; a response is accepted
//! only if its nonce is outstanding for that kind of request, and the nonce is consumed only
//! when the whole response was accepted, so a rejected message changes nothing and an accepted
//! one can never be accepted again.
//!
//! Verification order for every server response (also `docs/protected-license.md`):
//! 1. strict parse (magic, version, type, lengths, value domains, no trailing bytes);
//! 2. the server (or provisioning) certificate chains to the pinned root, has the right role
//!    and is valid now;
//! 3. the message signature verifies under that certificate's key;
//! 4. the message is for this device (device key ID) and, for renewal and release, this session;
//! 5. the nonce is outstanding for this kind of request;
//! 6. (license) every key opens with the device's HPKE key, in order;
//! 7. only then: the nonce is consumed and the result returned.

use alloc::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::cert::{verify_server_certificate, Certificate, DeviceChain, Hdcp, Robustness};
use crate::crypto::{
    ct_eq, rotation_unwrap, ContentKey, EntitlementKey, HpkeReceiver, HpkeSender, KemKey,
    PublicKey, SigningKey, KEY_LEN, PRIVATE_KEY_LEN,
};
use crate::messages::{
    verify_signed, with_capacity, EncryptedLicenseRequest, KeyId, KeyKind, License, LicenseRequest,
    MessageType, Nonce, ProvisioningRequest, ProvisioningResponse, ReleaseAck, RenewalResponse,
    RotationRecord, SessionId, SessionRequest, SessionType, NONCE_LEN,
};
use crate::policy::Policy;
use crate::Error;

/// HPKE `info` of an encrypted license request.
pub const LICENSE_REQUEST_INFO: &[u8] = b"tee-cdm protected v1 license request";
/// HPKE `info` prefix of a license's key context; followed by the session ID and the nonce.
pub const LICENSE_KEYS_INFO: &[u8] = b"tee-cdm protected v1 license keys";
/// Most requests outstanding at once in one [`Outstanding`] set.
pub const MAX_OUTSTANDING: usize = 8;

/// The HPKE `info` of a license's key context: [`LICENSE_KEYS_INFO`] ‖ session ID ‖ nonce.
pub fn license_keys_info(session_id: &SessionId, nonce: &Nonce) -> Vec<u8> {
    let mut info = Vec::new();
    info.extend_from_slice(LICENSE_KEYS_INFO);
    info.extend_from_slice(session_id);
    info.extend_from_slice(nonce);
    info
}

/// The device's private keys. Wiped on drop; never printed.
#[derive(Clone, Debug)]
pub struct DeviceKeys {
    signing: SigningKey,
    encryption: KemKey,
}

impl DeviceKeys {
    /// Fresh keys from `rng` (first use of a device).
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Result<Self, Error> {
        Ok(DeviceKeys {
            signing: SigningKey::generate(rng),
            encryption: KemKey::generate(rng)?,
        })
    }

    /// Keys from their scalars (as unsealed from storage).
    pub fn from_bytes(
        signing: &[u8; PRIVATE_KEY_LEN],
        encryption: &[u8; PRIVATE_KEY_LEN],
    ) -> Result<Self, Error> {
        Ok(DeviceKeys {
            signing: SigningKey::from_bytes(signing)?,
            encryption: KemKey::from_bytes(encryption)?,
        })
    }

    /// The scalars `signing ‖ encryption`, for sealing; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 2 * PRIVATE_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; 2 * PRIVATE_KEY_LEN]);
        let (a, b) = out.split_at_mut(PRIVATE_KEY_LEN);
        a.copy_from_slice(self.signing.to_bytes().as_ref());
        b.copy_from_slice(self.encryption.to_bytes().as_ref());
        out
    }

    /// The public signing key.
    pub fn signing_public_key(&self) -> PublicKey {
        self.signing.public_key()
    }

    /// The public encryption key.
    pub fn encryption_public_key(&self) -> PublicKey {
        self.encryption.public_key()
    }
}

/// Nonces of requests awaiting a response, by request kind.
#[derive(Debug, Default, Clone)]
pub struct Outstanding {
    entries: Vec<(MessageType, Nonce)>,
}

impl Outstanding {
    /// An empty set.
    pub const fn new() -> Self {
        Outstanding {
            entries: Vec::new(),
        }
    }

    /// Number of outstanding requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn add(&mut self, kind: MessageType, nonce: Nonce) -> Result<(), Error> {
        if self.entries.len() >= MAX_OUTSTANDING {
            return Err(Error::TooManyOutstanding);
        }
        self.entries
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        self.entries.push((kind, nonce));
        Ok(())
    }

    /// Index of `nonce` for `kind`; every entry is compared (constant time per entry).
    fn find(&self, kind: MessageType, nonce: &Nonce) -> Result<usize, Error> {
        let mut found = None;
        for (i, (k, n)) in self.entries.iter().enumerate() {
            if ct_eq(n, nonce) && *k == kind {
                found = Some(i);
            }
        }
        found.ok_or(Error::NonceNotOutstanding)
    }

    fn consume(&mut self, index: usize) {
        if index < self.entries.len() {
            self.entries.swap_remove(index);
        }
    }
}

/// What a license request asks for.
#[derive(Debug, Clone)]
pub struct LicenseRequestParams {
    /// Session type.
    pub session_type: SessionType,
    /// Robustness levels the client asks to use.
    pub robustness: Robustness,
    /// HDCP version currently in force on the output.
    pub hdcp: Hdcp,
    /// Key IDs (from the init data).
    pub key_ids: Vec<KeyId>,
    /// Opaque content ID (for example the `pssh` data).
    pub content_id: Vec<u8>,
}

/// A content key of an accepted license, with its restrictions.
#[derive(Debug, Clone)]
pub struct LicensedKey {
    /// The key ID.
    pub key_id: KeyId,
    /// Robustness required to use it.
    pub robustness: Robustness,
    /// Minimum HDCP version on the output.
    pub min_hdcp: Hdcp,
    /// The key (wiped on drop).
    pub key: ContentKey,
}

/// An accepted license: its keys unwrapped, its policy.
#[derive(Debug, Clone)]
pub struct AcceptedLicense {
    /// The session ID (for renewal and release).
    pub session_id: SessionId,
    /// The policy.
    pub policy: Policy,
    /// Device time of acceptance: durations count from here.
    pub accepted_at: u64,
    /// Server time at issue (informative).
    pub issued_at: u64,
    /// Content keys.
    pub keys: Vec<LicensedKey>,
    /// Entitlement keys, by ID (for [`unwrap_rotation_record`]).
    pub entitlement_keys: Vec<(KeyId, EntitlementKey)>,
    /// The restrictions of each entitlement key, in the order of `entitlement_keys`: the
    /// content keys it unwraps inherit them.
    pub entitlement_rules: Vec<(KeyId, Robustness, Hdcp)>,
}

/// The fields every server response is checked by.
struct ResponseFields<'a> {
    server_certificate: &'a [u8],
    device_key_id: &'a [u8; 32],
    kind: MessageType,
    nonce: &'a Nonce,
}

/// The device role.
#[derive(Debug)]
pub struct Device {
    keys: DeviceKeys,
    root: PublicKey,
    robustness: Robustness,
    max_hdcp: Hdcp,
    chain: Option<DeviceChain>,
}

impl Device {
    /// A device with `keys`, trusting `root`, claiming `robustness` and `max_hdcp` when it
    /// provisions. Not provisioned yet.
    pub fn new(keys: DeviceKeys, root: PublicKey, robustness: Robustness, max_hdcp: Hdcp) -> Self {
        Device {
            keys,
            root,
            robustness,
            max_hdcp,
            chain: None,
        }
    }

    /// The device keys.
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The chain, once provisioned.
    pub fn chain(&self) -> Option<&DeviceChain> {
        self.chain.as_ref()
    }

    /// SHA-256 of the device signing key (how licenses name the device).
    pub fn key_id(&self) -> [u8; 32] {
        self.keys.signing_public_key().key_id()
    }

    /// Installs a chain (for example one loaded from storage) after verifying it at `now`
    /// against the root and this device's keys.
    pub fn set_chain(&mut self, chain: DeviceChain, now: u64) -> Result<(), Error> {
        let verified = chain.verify(&self.root, now)?;
        self.check_own(&verified.device)?;
        self.chain = Some(chain);
        Ok(())
    }

    fn check_own(&self, cert: &Certificate) -> Result<(), Error> {
        let enc = cert.encryption_key()?;
        if cert.signing_key != self.keys.signing_public_key()
            || *enc != self.keys.encryption_public_key()
        {
            return Err(Error::WrongKey);
        }
        Ok(())
    }

    /// A provisioning request (EME `individualization-request`).
    pub fn provisioning_request<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        now: u64,
        outstanding: &mut Outstanding,
    ) -> Result<Vec<u8>, Error> {
        let nonce = fresh_nonce(rng);
        let msg = ProvisioningRequest {
            nonce,
            timestamp: now,
            signing_key: self.keys.signing_public_key(),
            encryption_key: self.keys.encryption_public_key(),
            robustness: self.robustness,
            max_hdcp: self.max_hdcp,
        }
        .encode(&self.keys.signing)?;
        outstanding.add(MessageType::ProvisioningRequest, nonce)?;
        Ok(msg)
    }

    /// Accepts a provisioning response: chain to the root, the provisioning key's signature,
    /// this device's keys, the nonce. On success the device is provisioned.
    pub fn accept_provisioning(
        &mut self,
        outstanding: &mut Outstanding,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), Error> {
        let msg = ProvisioningResponse::parse(bytes)?;
        let verified = msg.chain.verify(&self.root, now)?;
        verify_signed(bytes, &verified.provisioning.signing_key)?;
        self.check_own(&verified.device)?;
        let slot = outstanding.find(MessageType::ProvisioningRequest, &msg.nonce)?;
        outstanding.consume(slot);
        self.chain = Some(msg.chain);
        Ok(())
    }

    /// Verifies a server certificate set by the application (`setServerCertificate`).
    pub fn verify_server_certificate(&self, bytes: &[u8], now: u64) -> Result<Certificate, Error> {
        verify_server_certificate(bytes, &self.root, now)
    }

    /// A license request, signed by the device key; HPKE-encrypted to `server` when given
    /// (a certificate from [`Device::verify_server_certificate`]).
    pub fn license_request<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        now: u64,
        outstanding: &mut Outstanding,
        params: &LicenseRequestParams,
        server: Option<&Certificate>,
    ) -> Result<Vec<u8>, Error> {
        let chain = self.chain.clone().ok_or(Error::NotProvisioned)?;
        let nonce = fresh_nonce(rng);
        let inner = LicenseRequest {
            chain,
            nonce,
            timestamp: now,
            session_type: params.session_type,
            robustness: params.robustness,
            hdcp: params.hdcp,
            key_ids: params.key_ids.clone(),
            content_id: params.content_id.clone(),
        }
        .encode(&self.keys.signing)?;
        let msg = match server {
            None => inner,
            Some(cert) => {
                let key = cert.encryption_key()?;
                let server_key_id = key.key_id();
                let aad = EncryptedLicenseRequest::aad(&server_key_id)?;
                let (enc, mut ctx) = HpkeSender::setup(key, LICENSE_REQUEST_INFO, rng)?;
                let mut ciphertext = inner;
                let tag = ctx.seal(&mut ciphertext, &aad)?;
                ciphertext
                    .try_reserve(tag.len())
                    .map_err(|_| Error::OutOfMemory)?;
                ciphertext.extend_from_slice(&tag);
                EncryptedLicenseRequest {
                    server_key_id,
                    enc,
                    ciphertext,
                }
                .encode()?
            }
        };
        outstanding.add(MessageType::LicenseRequest, nonce)?;
        Ok(msg)
    }

    /// Checks steps 2–5 of a server response and returns the nonce's slot.
    fn check_server_response(
        &self,
        bytes: &[u8],
        fields: ResponseFields<'_>,
        outstanding: &Outstanding,
        now: u64,
    ) -> Result<usize, Error> {
        let server = verify_server_certificate(fields.server_certificate, &self.root, now)?;
        verify_signed(bytes, &server.signing_key)?;
        if !ct_eq(fields.device_key_id, &self.key_id()) {
            return Err(Error::WrongDevice);
        }
        outstanding.find(fields.kind, fields.nonce)
    }

    /// Accepts a license: see the module documentation for the order of checks.
    pub fn accept_license(
        &self,
        outstanding: &mut Outstanding,
        bytes: &[u8],
        now: u64,
    ) -> Result<AcceptedLicense, Error> {
        let lic = License::parse(bytes)?;
        let slot = self.check_server_response(
            bytes,
            ResponseFields {
                server_certificate: &lic.server_certificate,
                device_key_id: &lic.device_key_id,
                kind: MessageType::LicenseRequest,
                nonce: &lic.nonce,
            },
            outstanding,
            now,
        )?;
        let info = license_keys_info(&lic.session_id, &lic.nonce);
        let mut ctx = HpkeReceiver::setup(&self.keys.encryption, &lic.enc, &info)?;
        // Sized once: a vector grown key by key would move (reallocate) the unwrapped keys
        // and free the old block without wiping it.
        let entitlements = lic
            .keys
            .iter()
            .filter(|k| k.kind == KeyKind::Entitlement)
            .count();
        let contents = lic.keys.len().saturating_sub(entitlements);
        let mut keys = with_capacity(contents)?;
        let mut entitlement_keys = with_capacity(entitlements)?;
        let mut entitlement_rules = with_capacity(entitlements)?;
        for sealed in &lic.keys {
            let mut buf = Zeroizing::new([0u8; KEY_LEN]);
            let (ct, tag) = sealed.sealed.split_at(KEY_LEN);
            buf.copy_from_slice(ct);
            let tag = tag.first_chunk().ok_or(Error::Decrypt)?;
            ctx.open(buf.as_mut(), &sealed.aad(), tag)?;
            match sealed.kind {
                KeyKind::Content => keys.push(LicensedKey {
                    key_id: sealed.key_id,
                    robustness: sealed.robustness,
                    min_hdcp: sealed.min_hdcp,
                    key: ContentKey::new(*buf),
                }),
                KeyKind::Entitlement => {
                    entitlement_keys.push((sealed.key_id, EntitlementKey::new(*buf)));
                    entitlement_rules.push((sealed.key_id, sealed.robustness, sealed.min_hdcp));
                }
            }
        }
        outstanding.consume(slot);
        Ok(AcceptedLicense {
            session_id: lic.session_id,
            policy: lic.policy,
            accepted_at: now,
            issued_at: lic.issued_at,
            keys,
            entitlement_keys,
            entitlement_rules,
        })
    }

    fn session_request<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        now: u64,
        outstanding: &mut Outstanding,
        session_id: &SessionId,
        ty: MessageType,
    ) -> Result<Vec<u8>, Error> {
        let nonce = fresh_nonce(rng);
        let msg = SessionRequest {
            session_id: *session_id,
            nonce,
            timestamp: now,
            device_key_id: self.key_id(),
        }
        .encode(ty, &self.keys.signing)?;
        outstanding.add(ty, nonce)?;
        Ok(msg)
    }

    /// A renewal request (EME `license-renewal`) for `session_id`.
    pub fn renewal_request<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        now: u64,
        outstanding: &mut Outstanding,
        session_id: &SessionId,
    ) -> Result<Vec<u8>, Error> {
        self.session_request(
            rng,
            now,
            outstanding,
            session_id,
            MessageType::RenewalRequest,
        )
    }

    /// Accepts a renewal response for `session_id`; returns the new policy, whose durations
    /// count from `now`.
    pub fn accept_renewal(
        &self,
        outstanding: &mut Outstanding,
        session_id: &SessionId,
        bytes: &[u8],
        now: u64,
    ) -> Result<Policy, Error> {
        let msg = RenewalResponse::parse(bytes)?;
        let slot = self.check_server_response(
            bytes,
            ResponseFields {
                server_certificate: &msg.server_certificate,
                device_key_id: &msg.device_key_id,
                kind: MessageType::RenewalRequest,
                nonce: &msg.nonce,
            },
            outstanding,
            now,
        )?;
        if !ct_eq(&msg.session_id, session_id) {
            return Err(Error::WrongSession);
        }
        outstanding.consume(slot);
        Ok(msg.policy)
    }

    /// A release request (EME `license-release`) for `session_id`.
    pub fn release_request<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        now: u64,
        outstanding: &mut Outstanding,
        session_id: &SessionId,
    ) -> Result<Vec<u8>, Error> {
        self.session_request(
            rng,
            now,
            outstanding,
            session_id,
            MessageType::ReleaseRequest,
        )
    }

    /// Accepts a release acknowledgement for `session_id`.
    pub fn accept_release_ack(
        &self,
        outstanding: &mut Outstanding,
        session_id: &SessionId,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), Error> {
        let msg = ReleaseAck::parse(bytes)?;
        let slot = self.check_server_response(
            bytes,
            ResponseFields {
                server_certificate: &msg.server_certificate,
                device_key_id: &msg.device_key_id,
                kind: MessageType::ReleaseRequest,
                nonce: &msg.nonce,
            },
            outstanding,
            now,
        )?;
        if !ct_eq(&msg.session_id, session_id) {
            return Err(Error::WrongSession);
        }
        outstanding.consume(slot);
        Ok(())
    }
}

/// Unwraps a rotation record (the data of a `pssh` box of [`crate::SYSTEM_ID`]) with the
/// entitlement keys of an accepted license. All entries must unwrap, or none is returned.
pub fn unwrap_rotation_record(
    entitlement_keys: &[(KeyId, EntitlementKey)],
    bytes: &[u8],
) -> Result<Vec<(KeyId, ContentKey)>, Error> {
    let record = RotationRecord::parse(bytes)?;
    let mut found = None;
    for (id, key) in entitlement_keys {
        if ct_eq(id, &record.entitlement_key_id) {
            found = Some(key);
        }
    }
    let ekey = found.ok_or(Error::UnknownEntitlementKey)?;
    let mut out = with_capacity(record.entries.len())?;
    for (kid, wrapped) in &record.entries {
        out.push((
            *kid,
            rotation_unwrap(ekey, &record.entitlement_key_id, kid, wrapped)?,
        ));
    }
    Ok(out)
}

fn fresh_nonce<R: CryptoRng + RngCore>(rng: &mut R) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    nonce
}
