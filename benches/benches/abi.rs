//! Criterion benches of the layers above the engine: what the ABI and the EME API add to a
//! `cenc` decrypt, and how many whole license sessions per second the CDM runs.
//!
//! - group `decrypt-path`, ids `<path>/<size>` at 1 KiB and 64 KiB (throughput in bytes):
//!   `raw-engine` (`hal::cenc::decrypt_sample`), `secure-world` (`SecureWorld::process` on an
//!   encoded `Decrypt` request, response parsed), `eme-in-process` (`MediaKeys::decrypt`, the
//!   secure world linked in) and `eme-out-of-process` (`MediaKeys::decrypt` over a Unix socket
//!   to `secure-world-host`);
//! - group `sessions`, ids `in-process` and `out-of-process`: one iteration is
//!   createSession → generateRequest("cenc") → license server → update → close.
//!
//! Every path is checked on a known ciphertext before it is timed. The out-of-process cases
//! need the host binary next to the bench (`cargo build --release -p secure-world-host`,
//! same target dir) or named by `TEE_CDM_HOST`; without it they are
//! skipped with a note on stderr.
//!
//! Run: `cargo bench -p benches --bench abi`.
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::time::Duration;

use benches::eme::{
    check_path, find_host_binary, DirectWorld, EmePath, RawEngine, SessionLoop, HOST_BINARY,
    HOST_BUILD_HINT,
};
use benches::{size_label, test_data, BenchError, KIB};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Aborts the bench on an error: a bench that silently measured a failing call would report
/// nonsense.
fn check<T>(result: Result<T, BenchError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench `{what}` failed: {e}");
            std::process::exit(1);
        }
    }
}

const SIZES: [usize; 2] = [KIB, 64 * KIB];

fn bench_decrypt_paths(c: &mut Criterion) {
    let host = find_host_binary();
    if host.is_none() {
        eprintln!(
            "NOTE: {HOST_BINARY} not found next to the bench: out-of-process cases skipped \
             (build it with `{HOST_BUILD_HINT}`, or set TEE_CDM_HOST)"
        );
    }
    let mut world = check(DirectWorld::new(), "secure-world setup");
    let eme = check(EmePath::in_process(), "eme-in-process setup");
    let remote = host
        .as_deref()
        .map(|h| check(EmePath::out_of_process(h), "eme-out-of-process setup"));

    let mut group = c.benchmark_group("decrypt-path");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_secs(1));
    for len in SIZES {
        let size = size_label(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = test_data(len);

        let raw = check(RawEngine::new(len), "raw-engine setup");
        check(
            check_path(len, "raw-engine", |b| raw.decrypt(b)),
            "raw-engine",
        );
        eprintln!("raw-engine uses the {} engine", raw.engine());
        group.bench_function(BenchmarkId::new("raw-engine", &size), |b| {
            b.iter(|| check(raw.decrypt(black_box(&mut buf)), "raw-engine"))
        });

        check(
            check_path(len, "secure-world", |b| world.decrypt(b)),
            "secure-world",
        );
        group.bench_function(BenchmarkId::new("secure-world", &size), |b| {
            b.iter(|| check(world.decrypt(black_box(&mut buf)), "secure-world"))
        });

        check(
            check_path(len, "eme-in-process", |b| eme.decrypt(b)),
            "eme-in-process",
        );
        group.bench_function(BenchmarkId::new("eme-in-process", &size), |b| {
            b.iter(|| check(eme.decrypt(black_box(&mut buf)), "eme-in-process"))
        });

        if let Some(remote) = &remote {
            check(
                check_path(len, "eme-out-of-process", |b| remote.decrypt(b)),
                "eme-out-of-process",
            );
            group.bench_function(BenchmarkId::new("eme-out-of-process", &size), |b| {
                b.iter(|| check(remote.decrypt(black_box(&mut buf)), "eme-out-of-process"))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("sessions");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let local = check(SessionLoop::in_process(), "sessions in-process setup");
    group.bench_function("in-process", |b| {
        b.iter(|| check(local.run_once(), "sessions in-process"))
    });
    if let Some(h) = host.as_deref() {
        let remote = check(
            SessionLoop::out_of_process(h),
            "sessions out-of-process setup",
        );
        group.bench_function("out-of-process", |b| {
            b.iter(|| check(remote.run_once(), "sessions out-of-process"))
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_decrypt_paths(&mut c);
    c.final_summary();
}
