//! The servers of the `org.teecdm.protected` key system for the decrypt-path benchmark: a root,
//! a provisioning service and a license server (`protected_license::server`), made fresh with
//! the operating system's randomness, that license the bench key ([`crate::KEY`] under
//! [`crate::eme::KEY_ID`]) to a device for `SW_SECURE_CRYPTO`, no HDCP, no time limit.
//!
//! [`crate::eme::DirectWorld::protected`] uses them, so that the report can put a protected
//! session's per-sample cost (the license policy and the output protection checked at every
//! decrypt) beside a Clear Key session's.

use std::time::{SystemTime, UNIX_EPOCH};

use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::{ContentKey, KemKey, SigningKey};
use protected_license::messages::KeyKind;
use protected_license::server::{KeyGrant, LicenseServer, ProvisioningService, RootAuthority};
use protected_license::Policy;
use rand_core::{OsRng, RngCore};

use crate::eme::KEY_ID;
use crate::{BenchError, KEY};

/// Seconds in a day: how far back the certificates start, against clock skew.
const DAY: u64 = 24 * 60 * 60;
/// How long the certificates are valid: far longer than a bench run.
const YEAR: u64 = 365 * DAY;

/// A root, a provisioning service and a license server of that root.
pub struct ProtectedServers {
    root: [u8; 65],
    provisioning: ProvisioningService,
    server: LicenseServer,
}

impl ProtectedServers {
    /// Fresh keys and certificates, valid from a day ago for a year.
    pub fn new() -> Result<ProtectedServers, BenchError> {
        let now = unix_now()?;
        let (not_before, not_after) = (now.saturating_sub(DAY), now.saturating_add(YEAR));
        let root = RootAuthority::generate(&mut OsRng);
        let provisioning_key = SigningKey::generate(&mut OsRng);
        let provisioning_cert = root.certify_provisioning(
            [1; 16],
            &provisioning_key.public_key(),
            not_before,
            not_after,
        )?;
        let signing = SigningKey::generate(&mut OsRng);
        let kem = KemKey::generate(&mut OsRng)?;
        let server_cert = root.certify_license_server(
            [2; 16],
            &signing.public_key(),
            &kem.public_key(),
            not_before,
            not_after,
        )?;
        Ok(ProtectedServers {
            root: *root.public_key().as_bytes(),
            provisioning: ProvisioningService::new(provisioning_key, provisioning_cert, YEAR),
            server: LicenseServer::new(signing, kem, server_cert, root.public_key()),
        })
    }

    /// The root's public key, which the secure world pins (`Config::protected_root`).
    pub fn root_key(&self) -> [u8; 65] {
        self.root
    }

    /// Answers a device's `individualization-request`: its certificate.
    pub fn provision(&self, request: &[u8]) -> Result<Vec<u8>, BenchError> {
        Ok(self.provisioning.provision(request, unix_now()?)?)
    }

    /// Answers a `license-request`: a license of the bench key, `SW_SECURE_CRYPTO`, no HDCP,
    /// no time limit.
    pub fn license(&self, request: &[u8]) -> Result<Vec<u8>, BenchError> {
        let now = unix_now()?;
        let verified = self.server.verify_license_request(request, now)?;
        let mut session_id = [0u8; 16];
        OsRng.fill_bytes(&mut session_id);
        let grant = KeyGrant {
            kind: KeyKind::Content,
            key_id: KEY_ID,
            robustness: Robustness::SW_SECURE_CRYPTO,
            min_hdcp: Hdcp::NONE,
            key: ContentKey::new(KEY),
        };
        Ok(self.server.issue_license(
            &mut OsRng,
            &verified,
            session_id,
            now,
            Policy::default(),
            &[grant],
        )?)
    }
}

/// Seconds since the Unix epoch, as the servers count time.
fn unix_now() -> Result<u64, BenchError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| BenchError::Unexpected("the system clock is before 1970".into()))
}
