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

use benches::eme::{DirectWorld, EmePath, RawEngine, SessionLoop};
use benches::host::{find_host_binary, host_missing_note};
use benches::{check_path, or_exit, size_label, test_data, BenchError, KIB};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 2] = [KIB, 64 * KIB];

/// Checks `decrypt` on a known `len`-byte ciphertext, then times it as `<name>/<size>`,
/// decrypting `buf` in place again and again.
fn bench_path(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    buf: &mut [u8],
    mut decrypt: impl FnMut(&mut [u8]) -> Result<(), BenchError>,
) {
    let len = buf.len();
    or_exit(check_path(len, name, &mut decrypt), name);
    group.bench_function(BenchmarkId::new(name, size_label(len)), |b| {
        b.iter(|| or_exit(decrypt(black_box(&mut *buf)), name))
    });
}

fn bench_decrypt_paths(c: &mut Criterion) {
    let host = find_host_binary();
    if host.is_none() {
        eprintln!("{}", host_missing_note());
    }
    let mut world = or_exit(DirectWorld::new(), "secure-world setup");
    let eme = or_exit(EmePath::in_process(), "eme-in-process setup");
    let remote = host
        .as_deref()
        .map(|h| or_exit(EmePath::out_of_process(h), "eme-out-of-process setup"));

    let mut group = c.benchmark_group("decrypt-path");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_secs(1));
    for len in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = test_data(len);

        let raw = or_exit(RawEngine::new(len), "raw-engine setup");
        eprintln!("raw-engine uses the {} engine", raw.engine());
        bench_path(&mut group, "raw-engine", &mut buf, |b| raw.decrypt(b));
        bench_path(&mut group, "secure-world", &mut buf, |b| world.decrypt(b));
        bench_path(&mut group, "eme-in-process", &mut buf, |b| eme.decrypt(b));
        if let Some(remote) = &remote {
            bench_path(&mut group, "eme-out-of-process", &mut buf, |b| {
                remote.decrypt(b)
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("sessions");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let local = or_exit(SessionLoop::in_process(), "sessions in-process setup");
    group.bench_function("in-process", |b| {
        b.iter(|| or_exit(local.run_once(), "sessions in-process"))
    });
    if let Some(h) = host.as_deref() {
        let remote = or_exit(
            SessionLoop::out_of_process(h),
            "sessions out-of-process setup",
        );
        group.bench_function("out-of-process", |b| {
            b.iter(|| or_exit(remote.run_once(), "sessions out-of-process"))
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_decrypt_paths(&mut c);
    c.final_summary();
}
