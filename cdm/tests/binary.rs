//! The `cdm` executable: output formats and exit codes, on real media made in the test.
//!
//! Tests that start the executable are named `binary_*` (the qemu-user runs of
//! scripts/test-all.sh skip them: qemu-user cannot start a foreign executable by itself).

mod common;

use std::process::{Command, Output};

use cdm::error::exit;
use common::{media, KID};
use serde_json::Value;

fn cdm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdm"))
        .args(args)
        .output()
        .expect("run cdm")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn binary_inspect_json_reports_each_scheme() {
    for scheme in common::SCHEMES {
        let path = media("binary").shaka("video", scheme, 1);
        let out = cdm(&["inspect", "--json", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{scheme}: {out:?}");
        let v = json(&out);
        let p = &v["tracks"][0]["sample_descriptions"][0]["protection"];
        assert_eq!(p["scheme"], scheme);
        assert_eq!(p["default_kid"], KID);
        assert_eq!(v["pssh"][0]["key_ids"][0], KID);
        assert_eq!(v["tracks"][0]["kind"], "video");
        assert_eq!(v["tracks"][0]["samples"]["clear_lead"], common::FPS);
    }
}

#[test]
fn binary_inspect_text() {
    let path = media("binary").shaka("audio", "cbcs", 0);
    let out = cdm(&["inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("scheme cbcs 1.0"), "{text}");
    assert!(text.contains("pattern 0:0"), "{text}");
    assert!(text.contains(&format!("KID {KID}")), "{text}");
}

#[test]
fn binary_exit_codes() {
    let m = media("binary");
    // Usage.
    assert_eq!(cdm(&[]).status.code(), Some(i32::from(exit::USAGE)));
    assert_eq!(
        cdm(&["inspect"]).status.code(),
        Some(i32::from(exit::USAGE))
    );
    assert_eq!(
        cdm(&["frobnicate"]).status.code(),
        Some(i32::from(exit::USAGE))
    );
    let help = cdm(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for word in ["Exit status", "decrypt", "inspect", "info"] {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
    let help = cdm(&["decrypt", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "--key <KID:KEY>",
        "--license-server <URL>",
        "--in-process",
        "--secure-world <PATH>",
        "--json",
        "--quiet",
        "INPUT [SEGMENT...] OUTPUT",
        "Exit status",
    ] {
        assert!(text.contains(word), "decrypt --help lacks {word}: {text}");
    }
    // I/O: no such file.
    let missing = m.scratch("no-such-file.mp4");
    let out = cdm(&["inspect", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(i32::from(exit::IO)));
    // Input: a truncated file; the JSON error names the box and offset.
    let data = std::fs::read(m.shaka("video", "cenc", 0)).unwrap();
    let cut = m.scratch("truncated.mp4");
    std::fs::write(&cut, &data[..900]).unwrap();
    let out = cdm(&["inspect", "--json", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(i32::from(exit::INPUT)), "{out:?}");
    let v = json(&out);
    assert_eq!(v["error"]["class"], "input");
    assert_eq!(v["error"]["box"], "moov");
    assert!(v["error"]["offset"].is_u64());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("moov") && stderr.contains("truncated"),
        "{stderr}"
    );
    // Not an MP4 file at all.
    let text = m.scratch("text.mp4");
    std::fs::write(&text, b"hello, this is not an mp4 file\n").unwrap();
    let out = cdm(&["inspect", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(i32::from(exit::INPUT)), "{out:?}");
}

#[test]
fn binary_info() {
    let out = cdm(&["info", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json(&out);
    assert_eq!(v["key_system"], "org.w3.clearkey");
    assert_eq!(
        v["capabilities"]["abi_version"],
        u64::from(cdm_core::abi::ABI_VERSION)
    );
    assert!(v["capabilities"]["engine"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(v["configuration"]["sessionTypes"][0], "temporary");
    // EME has no encryptionScheme string for cens: the CDM refuses the configuration.
    let out = cdm(&["info", "--encryption-scheme", "cens"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CDM)), "{out:?}");
    let out = cdm(&["info", "--persistent-state", "sometimes"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{out:?}");
}
