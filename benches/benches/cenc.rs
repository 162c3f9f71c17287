//! Criterion benches of the CENC schemes: one group per scheme (`cenc`, `cbcs-1-9`, `cens-1-9`,
//! `cbc1`), every available engine at every size in [`benches::SIZES`], and the peers in the
//! same group so criterion reports them side by side: `openssl-ctr` and `rustcrypto-ctr` in
//! `cenc`, `openssl-cbc` in `cbc1`.
//!
//! Ids: `<engine>/<size>` is the real API path (`hal::cenc::decrypt_sample`, validation
//! included); `<engine>-raw/<size>` is the raw `Aes128` primitive (`cenc`, `cbcs-1-9` and
//! `cens-1-9`), so the API's overhead is visible. Every case decrypts the same buffer in place
//! again and again (same work per iteration; the bytes themselves do not matter).
//!
//! Before anything is timed, every engine's API path must decrypt every scheme at every size
//! to the bytes of the shared reference decryptor, which must agree with OpenSSL for `cenc`
//! and `cbc1` (`benches::verify_api_paths`); otherwise the bench exits with an error.
//!
//! Run: `cargo bench -p benches --bench cenc` (a few minutes; filter with e.g. `-- cenc/`).
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::time::Duration;

use benches::{
    or_exit, size_label, test_data, verify_api_paths, BenchSample, BenchScheme, OpensslCbc,
    OpensslCtr, RustCryptoCtr, CBC_IV, CTR_COUNTER_BLOCK, KEY, SIZES,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use hal::aes::Engine;

fn bench_schemes(c: &mut Criterion) {
    let engines: Vec<Engine> = Engine::available().collect();
    let names: Vec<&str> = engines.iter().map(|e| e.name()).collect();
    eprintln!("engines available: {}", names.join(", "));
    or_exit(
        verify_api_paths(&engines, &SIZES),
        "verification against the reference decryptor and OpenSSL",
    );

    for kind in BenchScheme::ALL {
        let mut group = c.benchmark_group(kind.name());
        group.measurement_time(Duration::from_secs(2));
        group.warm_up_time(Duration::from_secs(1));
        for len in SIZES {
            let sample = or_exit(BenchSample::new(kind, len), kind.name());
            let size = size_label(len);
            group.throughput(Throughput::Bytes(len as u64));
            let mut buf = test_data(len);

            for engine in &engines {
                let key = engine.key(&KEY);
                let id = BenchmarkId::new(engine.name(), &size);
                group.bench_function(id, |b| {
                    b.iter(|| or_exit(sample.decrypt(&key, black_box(&mut buf)), kind.name()))
                });
                if kind != BenchScheme::Cbc1 {
                    let id = BenchmarkId::new(format!("{}-raw", engine.name()), &size);
                    group.bench_function(id, |b| {
                        b.iter(|| {
                            or_exit(sample.decrypt_raw(&key, black_box(&mut buf)), kind.name())
                        })
                    });
                }
            }

            match kind {
                BenchScheme::Cenc => {
                    let mut ossl = or_exit(
                        OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK),
                        "openssl-ctr setup",
                    );
                    group.bench_function(BenchmarkId::new("openssl-ctr", &size), |b| {
                        b.iter(|| or_exit(ossl.apply(black_box(&mut buf)), "openssl-ctr"))
                    });
                    let mut rc = or_exit(
                        RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK),
                        "rustcrypto-ctr setup",
                    );
                    group.bench_function(BenchmarkId::new("rustcrypto-ctr", &size), |b| {
                        b.iter(|| or_exit(rc.apply(black_box(&mut buf)), "rustcrypto-ctr"))
                    });
                }
                BenchScheme::Cbc1 => {
                    let mut ossl = or_exit(OpensslCbc::new(&KEY, &CBC_IV), "openssl-cbc setup");
                    // OpenSSL's in-place update wants one block of slack after the data.
                    let mut padded = test_data(len + OpensslCbc::SLACK);
                    group.bench_function(BenchmarkId::new("openssl-cbc", &size), |b| {
                        b.iter(|| or_exit(ossl.apply(black_box(&mut padded), len), "openssl-cbc"))
                    });
                }
                BenchScheme::Cbcs19 | BenchScheme::Cens19 => {}
            }
        }
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_schemes(&mut c);
    c.final_summary();
}
