//! What the integration tests share: a seeded test RNG and a provisioned PKI.
#![allow(dead_code, unreachable_pub, missing_docs)]

use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::{KemKey, SigningKey};
use protected_license::device::{Device, DeviceKeys, Outstanding};
use protected_license::server::{LicenseServer, ProvisioningService, RootAuthority};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// A deterministic RNG for tests and the conformance vectors: block i = SHA-256(seed ‖ i as
/// u64 big-endian), concatenated. Not a production RNG.
pub struct TestRng {
    seed: Vec<u8>,
    counter: u64,
    buf: Vec<u8>,
}

impl TestRng {
    pub fn new(seed: &[u8]) -> Self {
        TestRng {
            seed: seed.to_vec(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl RngCore for TestRng {
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
        for d in dest.iter_mut() {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(&self.seed);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
                self.buf.reverse();
            }
            *d = self.buf.pop().unwrap();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// 2025-01-01T00:00:00Z.
pub const NOW: u64 = 1_735_689_600;
pub const YEAR: u64 = 365 * 24 * 3600;

/// Root, provisioning service, license server and one provisioned device.
pub struct Pki {
    pub rng: TestRng,
    pub root: RootAuthority,
    pub provisioning: ProvisioningService,
    pub server: LicenseServer,
    pub device: Device,
}

impl Pki {
    pub fn unprovisioned(seed: &[u8]) -> Self {
        let mut rng = TestRng::new(seed);
        let root = RootAuthority::generate(&mut rng);
        let prov_key = SigningKey::generate(&mut rng);
        let prov_cert = root
            .certify_provisioning([1; 16], &prov_key.public_key(), NOW - YEAR, NOW + 10 * YEAR)
            .unwrap();
        let provisioning = ProvisioningService::new(prov_key, prov_cert, 5 * YEAR);
        let server_sign = SigningKey::generate(&mut rng);
        let server_kem = KemKey::generate(&mut rng).unwrap();
        let server_cert = root
            .certify_license_server(
                [2; 16],
                &server_sign.public_key(),
                &server_kem.public_key(),
                NOW - YEAR,
                NOW + 2 * YEAR,
            )
            .unwrap();
        let server = LicenseServer::new(server_sign, server_kem, server_cert, root.public_key());
        let keys = DeviceKeys::generate(&mut rng).unwrap();
        let device = Device::new(keys, root.public_key(), Robustness::ALL, Hdcp::V2_2);
        Pki {
            rng,
            root,
            provisioning,
            server,
            device,
        }
    }

    pub fn new(seed: &[u8]) -> Self {
        let mut pki = Self::unprovisioned(seed);
        let out = &mut Outstanding::new();
        provision(&mut pki.device, &pki.provisioning, &mut pki.rng, out);
        pki
    }
}

/// Provisions `device` by `provisioning` at [`NOW`]; returns the request and the response.
pub fn provision(
    device: &mut Device,
    provisioning: &ProvisioningService,
    rng: &mut TestRng,
    out: &mut Outstanding,
) -> (Vec<u8>, Vec<u8>) {
    let req = device.provisioning_request(rng, NOW, out).unwrap();
    let resp = provisioning.provision(&req, NOW).unwrap();
    device.accept_provisioning(out, &resp, NOW).unwrap();
    (req, resp)
}
