//! Everything the device parses from the network or the media: certificates, provisioning
//! responses, licenses, renewal responses, release acks, rotation records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protected_license::crypto::EntitlementKey;
use protected_license::device::unwrap_rotation_record;
use protected_license::messages::parse_any;

fuzz_target!(|data: &[u8]| {
    let _ = parse_any(data);
    let _ = unwrap_rotation_record(&[([0x0e; 16], EntitlementKey::new([0xe0; 16]))], data);
});
