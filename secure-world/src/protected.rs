//! The protected key system (`org.teecdm.protected`, `docs/protected-license.md`) on the
//! secure side: the device identity, the per-session protocol state and the policy the secure
//! world enforces. The protocol itself (parsing, signatures, HPKE, key wrap) is the
//! `protected-license` crate's device role; this module keeps its state and decides what is
//! usable.
//!
//! - **Device identity**: the device key pair is generated on first use and kept sealed in
//!   secure storage (record `device`, [`crate::sealed::RecordKind::DeviceIdentity`]) with the
//!   certificate chain provisioning gives it. A secure world without storage keeps an
//!   identity for its lifetime only (it provisions again after every restart).
//! - **Policy**: a license's keys are usable while [`protected_license::Policy::usable_at`]
//!   holds on the platform clock, up to the millisecond of the EME `expiration` announced
//!   (key status `expired` afterwards); a key with a minimum HDCP version above the
//!   platform's output protection is `output-restricted`; a key requiring
//!   `HW_SECURE_DECODE` never yields clear output in the shared buffer.

use alloc::vec::Vec;
use core::fmt;

use cdm_core::codec::{Reader, Writer};
use cdm_core::KeyStatus;
use hal::platform::{Clock, Hdcp, SecureRandom};
use protected_license::cert::{
    verify_server_certificate, Certificate, DeviceChain, Hdcp as PlHdcp, Robustness as PlRobustness,
};
use protected_license::crypto::{EntitlementKey, PublicKey, KEY_LEN, PRIVATE_KEY_LEN};
use protected_license::device::{Device, DeviceKeys, Outstanding};
use protected_license::messages::{KeyId as PlKeyId, SessionId as PlSessionId};
use protected_license::Policy;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::fallible::try_copy;
use crate::store::Store;

/// Format version of the device identity record.
const DEVICE_RECORD_VERSION: u8 = 1;
/// Largest encoded certificate in the device record.
const MAX_CERT_LEN: usize = protected_license::cert::MAX_CERTIFICATE_LEN;

/// The platform's [`SecureRandom`] as the `rand_core` RNG the protocol crate draws from.
///
/// `rand_core`'s `fill_bytes` cannot fail; a failure of the platform RNG is remembered and
/// [`RngAdapter::check`] turns it into an error, after which the caller discards whatever was
/// built with the (zero-filled) output.
pub(crate) struct RngAdapter<'a, R: SecureRandom> {
    rng: &'a R,
    failed: bool,
}

impl<'a, R: SecureRandom> RngAdapter<'a, R> {
    pub(crate) fn new(rng: &'a R) -> Self {
        RngAdapter { rng, failed: false }
    }

    /// Fails if any draw failed.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::Internal("random number generator failed"))
        } else {
            Ok(())
        }
    }
}

impl<R: SecureRandom> RngCore for RngAdapter<'_, R> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.rng.fill(dest).is_err() {
            dest.fill(0);
            self.failed = true;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl<R: SecureRandom> CryptoRng for RngAdapter<'_, R> {}

/// One reading of the platform clock in the two units the key system uses: seconds for the
/// protocol's times (certificate validity, when a license was accepted or first played) and
/// milliseconds for enforcing the end of a license exactly at the EME `expiration` announced
/// (a whole second, `LicenseState::expiration_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Now {
    /// Seconds since the Unix epoch (the reading rounded down).
    pub(crate) secs: u64,
    /// Milliseconds since the Unix epoch.
    pub(crate) ms: i64,
}

/// Reads the platform clock. The protected key system cannot work without one (certificate
/// validity and license durations are times).
pub(crate) fn read_clock(clock: &impl Clock) -> Result<Now, Error> {
    let ms = clock.now_ms().ok_or(Error::NotSupported(
        "the protected key system needs a clock",
    ))?;
    let secs = u64::try_from(ms).map_err(|_| Error::NotSupported("clock before 1970"))? / 1000;
    Ok(Now { secs, ms })
}

/// What using a protected key requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// The key requires `HW_SECURE_DECODE`: its clear output never reaches shared memory.
    pub(crate) hw_only: bool,
    /// Minimum HDCP version on the outputs.
    pub(crate) min_hdcp: Hdcp,
}

impl Requirement {
    pub(crate) fn from_license(robustness: PlRobustness, min_hdcp: PlHdcp) -> Self {
        Requirement {
            hw_only: robustness.contains(PlRobustness::HW_SECURE_DECODE),
            min_hdcp: Hdcp::from_bcd(min_hdcp.to_u8()).unwrap_or(Hdcp::V2_3),
        }
    }
}

/// The EME status of a protected key that requires `requirement`, under a license that is
/// `usable` now or not, with the outputs at `hdcp`: `expired` once the license ends, else
/// `output-restricted` when the outputs do not meet the key's minimum HDCP, else `usable`.
pub(crate) fn key_status(usable: bool, requirement: Option<Requirement>, hdcp: Hdcp) -> KeyStatus {
    match requirement {
        _ if !usable => KeyStatus::Expired,
        Some(req) if req.min_hdcp > hdcp => KeyStatus::OutputRestricted,
        _ => KeyStatus::Usable,
    }
}

/// The secure world's part of the key system: the pinned root, the device and the server
/// certificate set by the application.
pub(crate) struct Protected {
    root: PublicKey,
    device: Option<Device>,
    server: Option<Certificate>,
}

impl fmt::Debug for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protected")
            .field("device", &self.device.is_some())
            .field(
                "provisioned",
                &self.device.as_ref().is_some_and(|d| d.chain().is_some()),
            )
            .field("server_certificate", &self.server.is_some())
            .finish()
    }
}

impl Protected {
    /// The key system with `root` pinned; `None` if `root` is not a P-256 point.
    pub(crate) fn new(root: &[u8; 65]) -> Option<Self> {
        Some(Protected {
            root: PublicKey::from_bytes(root).ok()?,
            device: None,
            server: None,
        })
    }

    /// The device, loaded from storage or generated (and stored) on first use. A stored
    /// chain that no longer verifies (expired) is dropped: the device provisions again.
    pub(crate) fn device(
        &mut self,
        rng: &impl SecureRandom,
        store: Option<&mut Store>,
        now: u64,
        claims: (PlRobustness, PlHdcp),
    ) -> Result<&Device, Error> {
        if self.device.is_none() {
            let loaded = match &store {
                Some(store) => store.read_device()?,
                None => None,
            };
            let device = match loaded {
                Some(plain) => self.decode_device(&plain, now, claims)?,
                None => {
                    let mut adapter = RngAdapter::new(rng);
                    let keys = DeviceKeys::generate(&mut adapter).map_err(protocol)?;
                    adapter.check()?;
                    let device = Device::new(keys, self.root, claims.0, claims.1);
                    if let Some(store) = store {
                        store.write_device(&encode_device(&device)?, rng)?;
                    }
                    device
                }
            };
            self.device = Some(device);
        }
        self.device.as_ref().ok_or(Error::Internal("device"))
    }

    fn decode_device(
        &self,
        plain: &[u8],
        now: u64,
        claims: (PlRobustness, PlHdcp),
    ) -> Result<Device, Error> {
        let corrupt = |_| Error::Store(crate::store::StoreError::Corrupt);
        let mut r = Reader::new(plain);
        if r.u8().map_err(corrupt)? != DEVICE_RECORD_VERSION {
            return Err(Error::Store(crate::store::StoreError::Corrupt));
        }
        let mut signing = Zeroizing::new([0u8; PRIVATE_KEY_LEN]);
        signing.copy_from_slice(r.take(PRIVATE_KEY_LEN).map_err(corrupt)?);
        let mut encryption = Zeroizing::new([0u8; PRIVATE_KEY_LEN]);
        encryption.copy_from_slice(r.take(PRIVATE_KEY_LEN).map_err(corrupt)?);
        let keys = DeviceKeys::from_bytes(&signing, &encryption)
            .map_err(|_| Error::Store(crate::store::StoreError::Corrupt))?;
        let chain = match r.u8().map_err(corrupt)? {
            0 => None,
            1 => Some(DeviceChain {
                device: try_copy(r.bytes_u16(MAX_CERT_LEN).map_err(corrupt)?)?,
                provisioning: try_copy(r.bytes_u16(MAX_CERT_LEN).map_err(corrupt)?)?,
            }),
            _ => return Err(Error::Store(crate::store::StoreError::Corrupt)),
        };
        r.finish().map_err(corrupt)?;
        let mut device = Device::new(keys, self.root, claims.0, claims.1);
        if let Some(chain) = chain {
            // An expired or otherwise invalid chain: provision again with the same keys.
            let _ = device.set_chain(chain, now);
        }
        Ok(device)
    }

    /// The device, which an earlier `GenerateRequest` loaded or created.
    pub(crate) fn current(&self) -> Result<&Device, Error> {
        self.device
            .as_ref()
            .ok_or(Error::InvalidState("no request was made"))
    }

    /// Installs a provisioned device (after its record was stored).
    pub(crate) fn replace_device(&mut self, device: Device) {
        self.device = Some(device);
    }

    /// A copy of the device's keys (for a candidate device that provisioning may replace the
    /// current one with).
    pub(crate) fn candidate(&self, claims: (PlRobustness, PlHdcp)) -> Result<Device, Error> {
        let device = self
            .device
            .as_ref()
            .ok_or(Error::InvalidState("no provisioning request was made"))?;
        Ok(Device::new(
            device.keys().clone(),
            self.root,
            claims.0,
            claims.1,
        ))
    }

    /// EME `setServerCertificate`: verifies `bytes` against the pinned root at `now`.
    pub(crate) fn set_server_certificate(&mut self, bytes: &[u8], now: u64) -> Result<(), Error> {
        let cert = verify_server_certificate(bytes, &self.root, now)
            .map_err(|_| Error::ServerCertificate)?;
        self.server = Some(cert);
        Ok(())
    }

    /// The server certificate license requests are encrypted to, if one was set.
    pub(crate) fn server(&self) -> Option<&Certificate> {
        self.server.as_ref()
    }
}

/// The device record: `u8 version, u8[32] signing scalar, u8[32] encryption scalar, u8
/// has_chain`, then, if 1, `bytes16 device certificate, bytes16 provisioning certificate`.
pub(crate) fn encode_device(device: &Device) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::new());
    out.try_reserve_exact(2 * PRIVATE_KEY_LEN + 2 + 4 + 2 * MAX_CERT_LEN)?;
    let scalars = device.keys().to_bytes();
    let mut w = Writer::new(&mut out);
    w.u8(DEVICE_RECORD_VERSION)?;
    w.put(scalars.as_ref())?;
    match device.chain() {
        None => w.u8(0)?,
        Some(chain) => {
            w.u8(1)?;
            w.bytes_u16(&chain.device, MAX_CERT_LEN)?;
            w.bytes_u16(&chain.provisioning, MAX_CERT_LEN)?;
        }
    }
    Ok(out)
}

/// An entitlement key of a license with the restrictions its in-band keys inherit.
pub(crate) struct Entitlement {
    pub(crate) kid: PlKeyId,
    pub(crate) key: EntitlementKey,
    pub(crate) requirement: Requirement,
    pub(crate) robustness: PlRobustness,
    pub(crate) min_hdcp: PlHdcp,
}

/// The license a protected session holds.
pub(crate) struct LicenseState {
    /// The server's session ID (renewal and release name it).
    pub(crate) session_id: PlSessionId,
    pub(crate) policy: Policy,
    /// Device time the license (or its last renewal) was accepted.
    pub(crate) accepted_at: u64,
    /// Device time of the first decrypt, for the playback duration.
    pub(crate) first_playback: Option<u64>,
    pub(crate) entitlements: Vec<Entitlement>,
}

impl LicenseState {
    /// The last second the keys may be used in ([`Policy::usable_at`]'s end); `None` =
    /// never ends.
    fn end(&self) -> Option<u64> {
        match self.first_playback {
            Some(p) => self.policy.playback_expiry(self.accepted_at, p),
            None => self.policy.license_expiry(self.accepted_at),
        }
    }

    /// Whether the keys may be used at `now`: up to and including the millisecond
    /// [`LicenseState::expiration_ms`] announces, not a moment after (the protocol's
    /// [`Policy::usable_at`] compares whole seconds, which would keep keys usable for up to a
    /// second past the announced expiration).
    pub(crate) fn usable_at(&self, now: Now) -> bool {
        self.end()
            .is_none_or(|end| i128::from(now.ms) <= i128::from(end).saturating_mul(1000))
    }

    /// When the keys stop being usable (EME `expiration`), in ms since the epoch.
    pub(crate) fn expiration_ms(&self) -> Option<i64> {
        i64::try_from(self.end()?).ok()?.checked_mul(1000)
    }

    /// Copies of the entitlement keys as the protocol crate's unwrap takes them.
    pub(crate) fn entitlement_pairs(&self) -> Result<Vec<(PlKeyId, EntitlementKey)>, Error> {
        let mut v = Vec::new();
        v.try_reserve_exact(self.entitlements.len())?;
        for e in &self.entitlements {
            v.push((e.kid, e.key.clone()));
        }
        Ok(v)
    }
}

/// The protocol state of one protected session.
#[derive(Default)]
pub(crate) struct ProtectedSession {
    /// Nonces of requests awaiting an answer.
    pub(crate) outstanding: Outstanding,
    /// The license, once one was accepted.
    pub(crate) license: Option<LicenseState>,
    /// When the renewal request awaiting its answer was made (device seconds). Another is
    /// made only a renewal interval later, in case the first or its answer was lost.
    pub(crate) renewal_requested_at: Option<u64>,
}

impl fmt::Debug for ProtectedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedSession")
            .field("outstanding", &self.outstanding.len())
            .field("licensed", &self.license.is_some())
            .field("renewal_requested_at", &self.renewal_requested_at)
            .finish()
    }
}

/// Maps a protocol failure to the secure world's error: every verification failure of a
/// server message is an invalid license (the detail stays inside).
pub(crate) fn protocol(e: protected_license::Error) -> Error {
    match e {
        protected_license::Error::OutOfMemory => Error::OutOfMemory,
        _ => Error::Protected(e),
    }
}

/// Format version of a stored protected license's extension.
const EXTENSION_VERSION: u8 = 1;

/// The extension of a stored protected license: `u8 version, u8[16] session_id, u32
/// license_duration, u32 playback_duration, u32 renewal_interval, u8 can_persist, u64
/// accepted_at, u64 first_playback (u64::MAX = none), u16 n`, n × (`u8[16] kid, u8
/// robustness, u8 min_hdcp`) for the record's keys, `u16 m`, m × (`u8[16] kid, u8[16] key, u8
/// robustness, u8 min_hdcp`) for its entitlement keys. Wiped on drop.
pub(crate) fn encode_extension(
    license: &LicenseState,
    key_rules: &[(PlKeyId, PlRobustness, PlHdcp)],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::new());
    out.try_reserve_exact(
        64usize
            .saturating_add(key_rules.len().saturating_mul(18))
            .saturating_add(license.entitlements.len().saturating_mul(34)),
    )?;
    let count = |n: usize| u16::try_from(n).map_err(|_| Error::KeyQuota);
    let mut w = Writer::new(&mut out);
    w.u8(EXTENSION_VERSION)?;
    w.put(&license.session_id)?;
    w.u32(license.policy.license_duration)?;
    w.u32(license.policy.playback_duration)?;
    w.u32(license.policy.renewal_interval)?;
    w.u8(u8::from(license.policy.can_persist))?;
    w.u64(license.accepted_at)?;
    w.u64(license.first_playback.unwrap_or(u64::MAX))?;
    w.u16(count(key_rules.len())?)?;
    for (kid, robustness, hdcp) in key_rules {
        w.put(kid)?;
        w.u8(robustness.bits())?;
        w.u8(hdcp.to_u8())?;
    }
    w.u16(count(license.entitlements.len())?)?;
    for e in &license.entitlements {
        w.put(&e.kid)?;
        w.put(e.key.expose())?;
        w.u8(e.robustness.bits())?;
        w.u8(e.min_hdcp.to_u8())?;
    }
    Ok(out)
}

/// Decodes [`encode_extension`]'s output: the license state and the key rules.
#[allow(clippy::type_complexity)]
pub(crate) fn decode_extension(
    bytes: &[u8],
) -> Result<(LicenseState, Vec<(PlKeyId, PlRobustness, PlHdcp)>), Error> {
    let corrupt = || Error::Store(crate::store::StoreError::Corrupt);
    let mut r = Reader::new(bytes);
    let read = || -> Result<_, cdm_core::abi::AbiError> {
        let version = r.u8()?;
        let session_id: PlSessionId = array(r.take(16)?)?;
        let policy = Policy {
            license_duration: r.u32()?,
            playback_duration: r.u32()?,
            renewal_interval: r.u32()?,
            can_persist: r.u8()? != 0,
        };
        let accepted_at = r.u64()?;
        let first = r.u64()?;
        let n = usize::from(r.u16()?);
        let mut raw_rules = Vec::new();
        raw_rules
            .try_reserve_exact(n)
            .map_err(|_| cdm_core::abi::AbiError::OutOfMemory)?;
        for _ in 0..n {
            let kid: PlKeyId = array(r.take(16)?)?;
            raw_rules.push((kid, r.u8()?, r.u8()?));
        }
        let m = usize::from(r.u16()?);
        let mut raw_ents = Vec::new();
        raw_ents
            .try_reserve_exact(m)
            .map_err(|_| cdm_core::abi::AbiError::OutOfMemory)?;
        for _ in 0..m {
            let kid: PlKeyId = array(r.take(16)?)?;
            let key: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(array(r.take(KEY_LEN)?)?);
            raw_ents.push((kid, key, r.u8()?, r.u8()?));
        }
        r.finish()?;
        Ok((
            version,
            session_id,
            policy,
            accepted_at,
            first,
            raw_rules,
            raw_ents,
        ))
    };
    let (version, session_id, policy, accepted_at, first, raw_rules, raw_ents) =
        read().map_err(|_| corrupt())?;
    if version != EXTENSION_VERSION {
        return Err(corrupt());
    }
    let mut rules = Vec::new();
    rules.try_reserve_exact(raw_rules.len())?;
    for (kid, rb, hb) in raw_rules {
        rules.push((
            kid,
            PlRobustness::single(rb).map_err(|_| corrupt())?,
            PlHdcp::from_u8(hb).map_err(|_| corrupt())?,
        ));
    }
    let mut entitlements = Vec::new();
    entitlements.try_reserve_exact(raw_ents.len())?;
    // By reference: moving a `Zeroizing` key out of the vector would leave its bytes in the
    // vector's block, freed unwiped; `raw_ents` wipes every key in place when dropped.
    for (kid, key, rb, hb) in &raw_ents {
        let robustness = PlRobustness::single(*rb).map_err(|_| corrupt())?;
        let min_hdcp = PlHdcp::from_u8(*hb).map_err(|_| corrupt())?;
        entitlements.push(Entitlement {
            kid: *kid,
            key: EntitlementKey::new(**key),
            requirement: Requirement::from_license(robustness, min_hdcp),
            robustness,
            min_hdcp,
        });
    }
    Ok((
        LicenseState {
            session_id,
            policy,
            accepted_at,
            first_playback: (first != u64::MAX).then_some(first),
            entitlements,
        },
        rules,
    ))
}

fn array<const N: usize>(b: &[u8]) -> Result<[u8; N], cdm_core::abi::AbiError> {
    b.try_into()
        .map_err(|_| cdm_core::abi::AbiError::InvalidField("length"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn extension_round_trips() {
        let lic = LicenseState {
            session_id: [3; 16],
            policy: Policy {
                license_duration: 60,
                playback_duration: 30,
                renewal_interval: 10,
                can_persist: true,
            },
            accepted_at: 1_700_000_000,
            first_playback: Some(1_700_000_005),
            entitlements: alloc::vec![Entitlement {
                kid: [9; 16],
                key: EntitlementKey::new([7; 16]),
                requirement: Requirement::from_license(
                    PlRobustness::HW_SECURE_DECODE,
                    PlHdcp::V2_2
                ),
                robustness: PlRobustness::HW_SECURE_DECODE,
                min_hdcp: PlHdcp::V2_2,
            }],
        };
        let rules = [([1; 16], PlRobustness::SW_SECURE_CRYPTO, PlHdcp::V1_4)];
        let bytes = encode_extension(&lic, &rules).unwrap();
        let (back, back_rules) = decode_extension(&bytes).unwrap();
        assert_eq!(back.session_id, [3; 16]);
        assert_eq!(back.policy, lic.policy);
        assert_eq!(back.accepted_at, lic.accepted_at);
        assert_eq!(back.first_playback, lic.first_playback);
        assert_eq!(back_rules.as_slice(), &rules);
        assert_eq!(back.entitlements.len(), 1);
        assert_eq!(back.entitlements[0].key.expose(), &[7; 16]);
        assert!(back.entitlements[0].requirement.hw_only);
        assert_eq!(back.entitlements[0].requirement.min_hdcp, Hdcp::V2_2);
        // Every truncation is refused.
        for n in 0..bytes.len() {
            assert!(decode_extension(&bytes[..n]).is_err());
        }
    }
}
