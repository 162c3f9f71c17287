//! Proves that an `Aes128` key schedule is wiped when it is dropped, on every engine: the
//! conformance suite's zeroize check (`cdm_testkit::conformance::key_schedule_wiped`, with its
//! control case) under the scanning allocator of `cdm-testkit`.
//!
//! The file has a single `#[test]`: the allocator scans the frees of every thread, so no other
//! test of this binary may allocate while it is armed.

use cdm_testkit::alloc_scan::ScanningAllocator;
use cdm_testkit::conformance;
use hal::aes::Engine;

#[global_allocator]
static SCANNER: ScanningAllocator = ScanningAllocator::new();

#[test]
fn key_schedules_are_wiped_on_drop() {
    let mut checked = 0;
    for engine in Engine::available() {
        conformance::key_schedule_wiped(engine, &SCANNER);
        checked += 1;
    }
    assert!(checked >= 1);
}
