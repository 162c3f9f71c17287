//! `report`: the headline numbers, measured side by side in one process.
//!
//! `cargo run --release -p benches --bin report`
//!
//! Every case (each available engine for `cenc` at 64 KiB and 1 MiB, `cbcs` 1:9 and `cens`
//! 1:9 at 64 KiB, `cbc1` at 64 KiB and the raw `cenc` primitive at 64 KiB; OpenSSL
//! AES-128-CTR and AES-128-CBC and RustCrypto `aes`+`ctr` at 64 KiB) is calibrated to a time
//! slot, then all cases run round-robin for [`ROUNDS`] rounds of one slot each, so that
//! frequency changes and noise from other processes spread over all cases alike. Per case the
//! best and the median round are printed; ratios use the best rounds. GB/s means 10^9 bytes
//! per second of sample data (clear bytes of a subsample map included, as a player sees it).
//! `cens` 1:9 and `cbcs` 1:9 use the same sample description, so they decrypt the same
//! encrypted blocks; a summary line compares them (per encrypted block).
//!
//! A second section measures the layers above the engine, interleaved in the same rounds:
//! `cenc` through the raw engine (`hal::cenc::decrypt_sample`), through `SecureWorld::process`
//! (encoded `Decrypt` request, response parsed) for a Clear Key session and for an
//! `org.teecdm.protected` one (whose license policy and output protection every decrypt
//! checks), through `MediaKeys::decrypt` in process and
//! out of process (a `secure-world-host` over a Unix socket, when the binary is found next to
//! this one), and whole Clear Key sessions per second (create, generateRequest, license,
//! update, close) in and out of process. Its summary lines give the in-process throughput over
//! the raw engine at 64 KiB and the per-call overhead at 1 KiB (time per call minus the raw
//! engine's).
//!
//! Before timing, every engine's API-path output (every scheme, 64 KiB and 1 MiB) is checked
//! against the shared reference decryptor, itself checked against OpenSSL for `cenc` and
//! `cbc1`, and every ABI path's on a known ciphertext; a wrong result aborts the report with an
//! error (non-zero exit). The report prints only what it measured.
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use benches::eme::{DirectWorld, EmePath, RawEngine, SessionLoop};
use benches::host::{find_host_binary, host_missing_note};
use benches::{
    check_path, size_label, test_data, verify_api_paths, BenchError, BenchSample, BenchScheme,
    OpensslCbc, OpensslCtr, RustCryptoCtr, CBC_IV, CTR_COUNTER_BLOCK, KEY, KIB,
};
use hal::aes::Engine;

/// Rounds over all cases.
const ROUNDS: usize = 31;
/// Target duration of one case in one round.
const SLOT: Duration = Duration::from_millis(12);

/// Which peer a case is compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Ctr,
    Cbc,
}

type Work = Box<dyn FnMut() -> Result<(), BenchError>>;

struct Case {
    name: String,
    engine: String,
    size: usize,
    family: Family,
    work: Work,
    iters: u32,
    rates: Vec<f64>,
}

impl Case {
    fn new(name: &str, engine: &str, size: usize, family: Family, work: Work) -> Case {
        Case {
            name: name.to_owned(),
            engine: engine.to_owned(),
            size,
            family,
            work,
            iters: 1,
            rates: Vec::with_capacity(ROUNDS),
        }
    }

    /// A case whose work is `decrypt` on `buf` (the sample, plus any slack the call needs),
    /// in place, again and again.
    fn on_buffer(
        name: &str,
        engine: &str,
        size: usize,
        family: Family,
        mut buf: Vec<u8>,
        mut decrypt: impl FnMut(&mut [u8]) -> Result<(), BenchError> + 'static,
    ) -> Case {
        let work = move || decrypt(black_box(&mut buf));
        Case::new(name, engine, size, family, Box::new(work))
    }

    /// Runs `iters` iterations; returns the elapsed time.
    ///
    /// Rates are recorded in calls per second; [`Case::best`] and [`Case::median`] convert
    /// them to GB/s with the case's size.
    fn run(&mut self, iters: u32) -> Result<Duration, BenchError> {
        let start = Instant::now();
        for _ in 0..iters {
            (self.work)()?;
        }
        Ok(start.elapsed())
    }

    /// Doubles the iteration count until one run fills a slot.
    fn calibrate(&mut self) -> Result<(), BenchError> {
        self.run(1)?;
        let mut iters = 1u32;
        while self.run(iters)? < SLOT && iters < (1 << 24) {
            iters = iters.saturating_mul(2);
        }
        self.iters = iters;
        Ok(())
    }

    fn round(&mut self) -> Result<(), BenchError> {
        let elapsed = self.run(self.iters)?;
        self.rates
            .push(f64::from(self.iters) / elapsed.as_secs_f64().max(1e-9));
        Ok(())
    }

    /// Calls per second in the best round.
    fn best_calls(&self) -> f64 {
        self.rates.iter().copied().fold(0.0, f64::max)
    }

    /// Calls per second in the median round.
    fn median_calls(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or(0.0)
    }

    /// GB/s in the best round.
    fn best(&self) -> f64 {
        self.best_calls() * self.size as f64 / 1e9
    }

    /// GB/s in the median round.
    fn median(&self) -> f64 {
        self.median_calls() * self.size as f64 / 1e9
    }

    /// Nanoseconds per call in the best round.
    fn best_ns(&self) -> f64 {
        1e9 / self.best_calls()
    }
}

/// An engine case for `kind` at `len`: the API path (`hal::cenc::decrypt_sample`), or with
/// `raw` the raw `Aes128` primitive (case name `<scheme>-raw`).
fn engine_case(
    engine: Engine,
    kind: BenchScheme,
    len: usize,
    raw: bool,
) -> Result<Case, BenchError> {
    let sample = BenchSample::new(kind, len)?;
    let key = engine.key(&KEY);
    let family = if kind.is_ctr() {
        Family::Ctr
    } else {
        Family::Cbc
    };
    let buf = test_data(len);
    Ok(if raw {
        let name = format!("{}-raw", kind.name());
        Case::on_buffer(&name, engine.name(), len, family, buf, move |b| {
            sample.decrypt_raw(&key, b)
        })
    } else {
        Case::on_buffer(kind.name(), engine.name(), len, family, buf, move |b| {
            sample.decrypt(&key, b)
        })
    })
}

fn build_cases(engines: &[Engine]) -> Result<Vec<Case>, BenchError> {
    let k64 = 64 * KIB;
    let mut cases = Vec::new();
    for &engine in engines {
        cases.push(engine_case(engine, BenchScheme::Cenc, k64, false)?);
        cases.push(engine_case(engine, BenchScheme::Cenc, 1024 * KIB, false)?);
        // The raw primitive next to the API path shows what validation and dispatch cost.
        cases.push(engine_case(engine, BenchScheme::Cenc, k64, true)?);
        cases.push(engine_case(engine, BenchScheme::Cbcs19, k64, false)?);
        // Same sample map and pattern as `cbcs-1-9`, so the same 410 encrypted blocks: the
        // two compare per encrypted block.
        cases.push(engine_case(engine, BenchScheme::Cens19, k64, false)?);
        cases.push(engine_case(engine, BenchScheme::Cbc1, k64, false)?);
    }

    let mut ossl_ctr = OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)?;
    cases.push(Case::on_buffer(
        "openssl-ctr",
        "EVP_aes_128_ctr",
        k64,
        Family::Ctr,
        test_data(k64),
        move |b| ossl_ctr.apply(b),
    ));
    let mut ossl_cbc = OpensslCbc::new(&KEY, &CBC_IV)?;
    cases.push(Case::on_buffer(
        "openssl-cbc",
        "EVP_aes_128_cbc",
        k64,
        Family::Cbc,
        test_data(k64 + OpensslCbc::SLACK),
        move |b| ossl_cbc.apply(b, k64),
    ));
    let mut rc = RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)?;
    cases.push(Case::on_buffer(
        "rustcrypto-ctr",
        "aes+ctr",
        k64,
        Family::Ctr,
        test_data(k64),
        move |b| rc.apply(b),
    ));
    Ok(cases)
}

/// An ABI-section case named `name` (`cenc`, compared with `raw-engine`): `decrypt` is
/// checked on a known `len`-byte ciphertext, then timed on a buffer of `len` bytes.
fn abi_case(
    name: &str,
    engine: &str,
    len: usize,
    mut decrypt: impl FnMut(&mut [u8]) -> Result<(), BenchError> + 'static,
) -> Result<Case, BenchError> {
    check_path(len, name, &mut decrypt)?;
    Ok(Case::on_buffer(
        name,
        engine,
        len,
        Family::Ctr,
        test_data(len),
        decrypt,
    ))
}

/// A sessions case (size 0: counted in sessions, not bytes): one whole session first, so a
/// loop that does not work fails before timing, then one session per call.
fn sessions_case(name: &str, transport: &str, sessions: SessionLoop) -> Result<Case, BenchError> {
    sessions.run_once()?;
    let work = move || sessions.run_once();
    Ok(Case::new(name, transport, 0, Family::Ctr, Box::new(work)))
}

/// The ABI section's cases (see the module docs), each checked on a known ciphertext first.
/// The out-of-process cases are left out, with a note, when the host binary is not found.
fn build_abi_cases(notes: &mut Vec<String>) -> Result<Vec<Case>, BenchError> {
    let mut cases = Vec::new();
    let host = find_host_binary();
    if host.is_none() {
        notes.push(host_missing_note());
    }
    for len in [KIB, 64 * KIB] {
        let raw = RawEngine::new(len)?;
        let engine = raw.engine();
        cases.push(abi_case(ABI_RAW, engine, len, move |b| raw.decrypt(b))?);
        let mut world = DirectWorld::new()?;
        cases.push(abi_case(ABI_WORLD, engine, len, move |b| world.decrypt(b))?);
        let mut protected = DirectWorld::protected()?;
        cases.push(abi_case(ABI_PROTECTED, engine, len, move |b| {
            protected.decrypt(b)
        })?);
        let eme = EmePath::in_process()?;
        cases.push(abi_case(ABI_EME, engine, len, move |b| eme.decrypt(b))?);
    }
    if let Some(host) = &host {
        for len in [KIB, 64 * KIB] {
            let remote = EmePath::out_of_process(host)?;
            cases.push(abi_case(ABI_REMOTE, "socket", len, move |b| {
                remote.decrypt(b)
            })?);
            let shared = EmePath::shared_memory(host)?;
            cases.push(abi_case(ABI_SHARED, "shared memory", len, move |b| {
                shared.decrypt(b)
            })?);
            let in_place = EmePath::shared_memory(host)?;
            check_path(len, ABI_ZERO_COPY, |b| in_place.decrypt_via_buffer(b))?;
            cases.push(Case::new(
                ABI_ZERO_COPY,
                "shared memory, sample buffer",
                len,
                Family::Ctr,
                Box::new(move || in_place.decrypt_in_buffer(len)),
            ));
        }
    }
    let local = SessionLoop::in_process()?;
    cases.push(sessions_case(SESSIONS_LOCAL, "in-process", local)?);
    if let Some(host) = &host {
        let remote = SessionLoop::out_of_process(host)?;
        cases.push(sessions_case(SESSIONS_REMOTE, "socket", remote)?);
        let shared = SessionLoop::shared_memory(host)?;
        cases.push(sessions_case(SESSIONS_SHARED, "shared memory", shared)?);
    }
    Ok(cases)
}

const ABI_RAW: &str = "raw-engine";
const ABI_WORLD: &str = "secure-world";
const ABI_PROTECTED: &str = "secure-world-protected";
const ABI_EME: &str = "eme-in-process";
const ABI_REMOTE: &str = "eme-out-of-process";
const SESSIONS_LOCAL: &str = "sessions-in-process";
const SESSIONS_REMOTE: &str = "sessions-out-of-process";
const ABI_SHARED: &str = "eme-shared-memory";
const ABI_ZERO_COPY: &str = "eme-shared-buffer";
const SESSIONS_SHARED: &str = "sessions-shared-memory";

/// The case with this name and size.
fn find<'a>(cases: &'a [Case], name: &str, size: usize) -> Option<&'a Case> {
    cases.iter().find(|c| c.name == name && c.size == size)
}

/// Prints the ABI section: its table and summary lines.
fn print_abi(cases: &[Case], notes: &[String]) {
    println!("## Through the ABI and the EME API (`cenc`, whole sample)");
    println!();
    for note in notes {
        println!("- {note}");
    }
    if !notes.is_empty() {
        println!();
    }
    println!(
        "| case | engine / transport | size | GB/s (best) | GB/s (median) | ns/call (best) | \
         ratio to raw-engine |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    for c in cases.iter().filter(|c| c.size > 0) {
        let raw = find(cases, ABI_RAW, c.size).map_or(f64::NAN, Case::best);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.2} |",
            c.name,
            c.engine,
            size_label(c.size),
            c.best(),
            c.median(),
            c.best_ns(),
            c.best() / raw
        );
    }
    println!();
    println!("| sessions (create, generateRequest, license, update, close) | transport | sessions/s (best) | sessions/s (median) |");
    println!("|---|---|---:|---:|");
    for c in cases.iter().filter(|c| c.size == 0) {
        println!(
            "| {} | {} | {:.0} | {:.0} |",
            c.name,
            c.engine,
            c.best_calls(),
            c.median_calls()
        );
    }
    println!();

    let k64 = 64 * KIB;
    let gbs = |name: &str, size: usize| find(cases, name, size).map_or(f64::NAN, Case::best);
    let ns = |name: &str| find(cases, name, KIB).map_or(f64::NAN, Case::best_ns);
    let per_sec = |name: &str| {
        find(cases, name, 0).map_or_else(|| "n/a".to_owned(), |c| format!("{:.0}", c.best_calls()))
    };
    println!(
        "abi-in-process-64KiB / raw = {:.2}",
        gbs(ABI_EME, k64) / gbs(ABI_RAW, k64)
    );
    if find(cases, ABI_REMOTE, k64).is_some() {
        println!(
            "abi-out-of-process-64KiB / raw = {:.2} (socket), {:.2} (shared memory), {:.2} \
             (shared memory, sample buffer: no copy)",
            gbs(ABI_REMOTE, k64) / gbs(ABI_RAW, k64),
            gbs(ABI_SHARED, k64) / gbs(ABI_RAW, k64),
            gbs(ABI_ZERO_COPY, k64) / gbs(ABI_RAW, k64)
        );
    }
    println!(
        "per-call overhead 1KiB: secure-world {:.0} ns (protected session {:.0} ns), EME \
         in-process {:.0} ns, out-of-process socket {:.0} ns, shared memory {:.0} ns, sample \
         buffer {:.0} ns",
        ns(ABI_WORLD) - ns(ABI_RAW),
        ns(ABI_PROTECTED) - ns(ABI_RAW),
        ns(ABI_EME) - ns(ABI_RAW),
        ns(ABI_REMOTE) - ns(ABI_RAW),
        ns(ABI_SHARED) - ns(ABI_RAW),
        ns(ABI_ZERO_COPY) - ns(ABI_RAW)
    );
    println!(
        "sessions/s: in-process {}, out-of-process {} (socket), {} (shared memory)",
        per_sec(SESSIONS_LOCAL),
        per_sec(SESSIONS_REMOTE),
        per_sec(SESSIONS_SHARED)
    );
    println!();
}

/// The CPU model from `/proc/cpuinfo` (`model name`, or `CPU part`/`Processor` elsewhere),
/// or `"unknown"`.
fn cpu_model() -> String {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return "unknown".to_owned();
    };
    ["model name", "Processor", "CPU part"]
        .iter()
        .find_map(|field| {
            info.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *field).then(|| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The best rate among cases with this name and size (any engine).
fn best_of(cases: &[Case], name: &str, size: usize) -> Option<f64> {
    cases
        .iter()
        .filter(|c| c.name == name && c.size == size)
        .map(Case::best)
        .reduce(f64::max)
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let engines: Vec<Engine> = Engine::available().collect();
    // A wrong result is a hard error: `?` makes `main` fail with the message (exit code 1).
    verify_api_paths(&engines, &[64 * KIB, 1024 * KIB])?;

    let mut cases = build_cases(&engines)?;
    let mut abi_notes = Vec::new();
    let mut abi_cases = build_abi_cases(&mut abi_notes)?;
    for case in cases.iter_mut().chain(abi_cases.iter_mut()) {
        case.calibrate()?;
    }
    for _ in 0..ROUNDS {
        for case in cases.iter_mut().chain(abi_cases.iter_mut()) {
            case.round()?;
        }
    }

    let names: Vec<&str> = engines.iter().map(|e| e.name()).collect();
    println!("# tee-cdm benchmark report");
    println!();
    println!("- CPU: {}", cpu_model());
    println!("- OpenSSL: {}", openssl::version::version());
    println!("- engines available: {}", names.join(", "));
    println!(
        "- method: {} interleaved rounds of ~{} ms per case, one process; best and median \
         round per case; GB/s = 10^9 bytes/s; ratios use best rounds",
        ROUNDS,
        SLOT.as_millis()
    );
    println!(
        "- decrypt path: hal::cenc::decrypt_sample (`*-raw` rows: raw Aes128 primitives), \
         checked against OpenSSL before timing"
    );
    println!();

    let k64 = 64 * KIB;
    let ossl_ctr = best_of(&cases, "openssl-ctr", k64).unwrap_or(f64::NAN);
    let ossl_cbc = best_of(&cases, "openssl-cbc", k64).unwrap_or(f64::NAN);
    println!("| case | engine | size | GB/s (best) | GB/s (median) | ratio to OpenSSL |");
    println!("|---|---|---|---:|---:|---:|");
    for c in &cases {
        let (peer, peer_name) = match c.family {
            Family::Ctr => (ossl_ctr, "ctr"),
            Family::Cbc => (ossl_cbc, "cbc"),
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} ({}) |",
            c.name,
            c.engine,
            size_label(c.size),
            c.best(),
            c.median(),
            c.best() / peer,
            peer_name
        );
    }
    println!();

    print_abi(&abi_cases, &abi_notes);

    let cenc_best = best_of(&cases, "cenc", k64).unwrap_or(f64::NAN);
    let cbcs_best = best_of(&cases, "cbcs-1-9", k64).unwrap_or(f64::NAN);
    println!(
        "cbcs-1-9-64KiB best / cenc-64KiB best = {:.2}",
        cbcs_best / cenc_best
    );
    // `cens-1-9` and `cbcs-1-9` decrypt the same encrypted blocks of the same sample, so the
    // throughput ratio is the ratio of their speeds per encrypted block.
    let cens_best = best_of(&cases, "cens-1-9", k64).unwrap_or(f64::NAN);
    println!(
        "cens-1-9-64KiB best / cbcs-1-9-64KiB best = {:.2} (per encrypted block)",
        cens_best / cbcs_best
    );
    let per_engine: Vec<String> = engines
        .iter()
        .map(|e| {
            let rate = |name: &str| {
                cases
                    .iter()
                    .find(|c| c.name == name && c.engine == e.name() && c.size == k64)
                    .map_or(f64::NAN, Case::best)
            };
            format!("{} {:.2}", e.name(), rate("cens-1-9") / rate("cbcs-1-9"))
        })
        .collect();
    println!(
        "cens-1-9-64KiB / cbcs-1-9-64KiB per engine: {}",
        per_engine.join(", ")
    );
    println!("cenc-64KiB best/openssl = {:.2}", cenc_best / ossl_ctr);
    Ok(())
}
