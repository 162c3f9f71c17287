//! Everything the license server parses: clear and HPKE-encrypted license requests (decrypted
//! with a fixed server key), provisioning, renewal and release requests.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use protected_license::crypto::{KemKey, SigningKey};
use protected_license::messages::{parse_any, MessageType};
use protected_license::server::{LicenseServer, ProvisioningService, RootAuthority};

struct Servers {
    license: LicenseServer,
    provisioning: ProvisioningService,
}

fn servers() -> &'static Servers {
    static S: OnceLock<Servers> = OnceLock::new();
    S.get_or_init(|| {
        let root = RootAuthority::from_key(SigningKey::from_bytes(&[1; 32]).unwrap());
        let sign = SigningKey::from_bytes(&[2; 32]).unwrap();
        let kem = KemKey::from_bytes(&[3; 32]).unwrap();
        let cert = root
            .certify_license_server([2; 16], &sign.public_key(), &kem.public_key(), 0, u64::MAX)
            .unwrap();
        let prov = SigningKey::from_bytes(&[4; 32]).unwrap();
        let prov_cert = root.certify_provisioning([1; 16], &prov.public_key(), 0, u64::MAX).unwrap();
        Servers {
            license: LicenseServer::new(sign, kem, cert, root.public_key()),
            provisioning: ProvisioningService::new(prov, prov_cert, 1000),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = servers();
    let _ = parse_any(data);
    let _ = s.license.verify_license_request(data, 1_735_689_600);
    let _ = s.provisioning.provision(data, 1_735_689_600);
    let key = SigningKey::from_bytes(&[5; 32]).unwrap().public_key();
    let _ = s.license.verify_session_request(data, MessageType::RenewalRequest, &key);
});
