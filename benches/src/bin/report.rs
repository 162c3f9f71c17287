//! `report`: the headline numbers, measured side by side in one process.
//!
//! `cargo run --release -p benches --bin report`
//!
//! Every case (each available engine for `cenc` at 64 KiB and 1 MiB, `cbcs` 1:9 at 64 KiB,
//! `cbc1` at 64 KiB and the raw `cenc` primitive at 64 KiB; OpenSSL AES-128-CTR and
//! AES-128-CBC and RustCrypto `aes`+`ctr` at 64 KiB) is calibrated to a time slot, then all
//! cases run round-robin for [`ROUNDS`] rounds of one slot each, so that frequency changes and
//! noise from other processes spread over all cases alike. Per case the best and the median
//! round are printed; ratios use the best rounds. GB/s means 10^9 bytes per second of sample
//! data (clear bytes of a subsample map included, as a player sees it).
//!
//! Before timing, every engine's output is checked against OpenSSL; a wrong result aborts the
//! report. The report prints only what it measured.
#![forbid(unsafe_code)]

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use benches::{
    api_works, cpu_model, size_label, test_data, BenchError, BenchSample, BenchScheme, OpensslCbc,
    OpensslCtr, RustCryptoCtr, CBC_IV, CTR_COUNTER_BLOCK, KEY, KIB,
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

    /// Runs `iters` iterations; returns the elapsed time.
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
        let bytes = self.size as f64 * f64::from(self.iters);
        self.rates
            .push(bytes / elapsed.as_secs_f64().max(1e-9) / 1e9);
        Ok(())
    }

    fn best(&self) -> f64 {
        self.rates.iter().copied().fold(0.0, f64::max)
    }

    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or(0.0)
    }
}

/// An engine case for `kind` at `len`: the API path when it works, else the raw path (and the
/// case name says so).
fn engine_case(engine: Engine, kind: BenchScheme, len: usize, api: bool) -> Option<Case> {
    let sample = BenchSample::new(kind, len)?;
    let key = engine.key(&KEY);
    let mut buf = test_data(len);
    let family = if kind.is_ctr() {
        Family::Ctr
    } else {
        Family::Cbc
    };
    let (name, work): (String, Work) = if api {
        (
            kind.name().to_owned(),
            Box::new(move || sample.decrypt(&key, black_box(&mut buf))),
        )
    } else {
        (
            format!("{}-raw", kind.name()),
            Box::new(move || sample.decrypt_raw(&key, black_box(&mut buf))),
        )
    };
    Some(Case::new(&name, engine.name(), len, family, work))
}

/// Checks, before anything is timed, that every engine decrypts like OpenSSL (`cenc` and
/// `cbc1` over 64 KiB, on the path that will be timed).
fn verify(engines: &[Engine], api: bool) -> Result<(), String> {
    let len = 64 * KIB;
    let data = test_data(len);
    let mut ctr_ref = data.clone();
    OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)
        .and_then(|mut o| o.apply(&mut ctr_ref))
        .map_err(|e| e.to_string())?;
    let mut cbc_ref = data.clone();
    cbc_ref.resize(len + OpensslCbc::SLACK, 0);
    OpensslCbc::new(&KEY, &CBC_IV)
        .and_then(|mut o| o.apply(&mut cbc_ref, len))
        .map_err(|e| e.to_string())?;
    cbc_ref.truncate(len);
    for engine in engines {
        let key = engine.key(&KEY);
        for (kind, expected) in [(BenchScheme::Cenc, &ctr_ref), (BenchScheme::Cbc1, &cbc_ref)] {
            let sample = BenchSample::new(kind, len).ok_or("sample length")?;
            let mut buf = data.clone();
            let r = if api {
                sample.decrypt(&key, &mut buf)
            } else {
                sample.decrypt_raw(&key, &mut buf)
            };
            r.map_err(|e| e.to_string())?;
            if &buf != expected {
                return Err(format!(
                    "engine {} {} output differs from OpenSSL",
                    engine.name(),
                    kind.name()
                ));
            }
        }
    }
    Ok(())
}

fn build_cases(engines: &[Engine], api: bool) -> Result<Vec<Case>, BenchError> {
    let k64 = 64 * KIB;
    let mut cases = Vec::new();
    for &engine in engines {
        cases.extend(engine_case(engine, BenchScheme::Cenc, k64, api));
        cases.extend(engine_case(engine, BenchScheme::Cenc, 1024 * KIB, api));
        if api {
            // The raw primitive next to the API path shows what validation and dispatch cost.
            cases.extend(engine_case(engine, BenchScheme::Cenc, k64, false));
        }
        cases.extend(engine_case(engine, BenchScheme::Cbcs19, k64, api));
        cases.extend(engine_case(engine, BenchScheme::Cbc1, k64, api));
    }

    let mut ossl_ctr = OpensslCtr::new(&KEY, &CTR_COUNTER_BLOCK)?;
    let mut buf = test_data(k64);
    cases.push(Case::new(
        "openssl-ctr",
        "EVP_aes_128_ctr",
        k64,
        Family::Ctr,
        Box::new(move || ossl_ctr.apply(black_box(&mut buf))),
    ));
    let mut ossl_cbc = OpensslCbc::new(&KEY, &CBC_IV)?;
    let mut padded = test_data(k64 + OpensslCbc::SLACK);
    cases.push(Case::new(
        "openssl-cbc",
        "EVP_aes_128_cbc",
        k64,
        Family::Cbc,
        Box::new(move || ossl_cbc.apply(black_box(&mut padded), k64)),
    ));
    let mut rc = RustCryptoCtr::new(&KEY, &CTR_COUNTER_BLOCK)?;
    let mut buf = test_data(k64);
    cases.push(Case::new(
        "rustcrypto-ctr",
        "aes+ctr",
        k64,
        Family::Ctr,
        Box::new(move || rc.apply(black_box(&mut buf))),
    ));
    Ok(cases)
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
    let api = engines.first().is_some_and(|e| api_works(&e.key(&KEY)));
    verify(&engines, api)?;

    let mut cases = build_cases(&engines, api)?;
    for case in &mut cases {
        case.calibrate()?;
    }
    for _ in 0..ROUNDS {
        for case in &mut cases {
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
        "- decrypt path: {}",
        if api {
            "hal::cenc::decrypt_sample"
        } else {
            "raw Aes128 primitives"
        }
    );
    if !api {
        println!(
            "- NOTE: hal::cenc::decrypt_sample is not available in this build (not implemented \
             yet); engine cases use the raw Aes128 path (`-raw`) and the summary lines below \
             are computed from it"
        );
    }
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

    let (cenc, cbcs) = if api {
        ("cenc", "cbcs-1-9")
    } else {
        ("cenc-raw", "cbcs-1-9-raw")
    };
    let cenc_best = best_of(&cases, cenc, k64).unwrap_or(f64::NAN);
    let cbcs_best = best_of(&cases, cbcs, k64).unwrap_or(f64::NAN);
    println!(
        "cbcs-1-9-64KiB best / cenc-64KiB best = {:.2}",
        cbcs_best / cenc_best
    );
    println!("cenc-64KiB best/openssl = {:.2}", cenc_best / ossl_ctr);
    Ok(())
}
