//! `cdm decrypt` on real media: Shaka Packager's four schemes with and without a clear lead,
//! audio and video, DASH init + media segments with two key IDs, key rotation (key IDs in
//! `moof` `pssh` boxes and `seig` groups), ffmpeg's non-fragmented `cenc` file with `moov`
//! after and before `mdat` (the second moves every chunk offset); each output
//! checked against the clear source with ffmpeg (`-f framemd5`: every packet's size and hash,
//! and every decoded video frame), and against the parser (no protection left). A wrong key
//! must make that comparison fail. Then the license server (this workspace's, over loopback
//! HTTP), the in-process secure world, and failures that must leave no output file.
//!
//! These tests run host tools (ffmpeg, the packager, the secure-world host): `media_*`
//! names, skipped by the qemu-user runs of scripts/test-all.sh.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use cdm::error::exit;
use cdm::mp4::{self, FileSource};
use common::{media, rotation_keys, AUDIO_KEY, AUDIO_KID, KEY, KID, SCHEMES};
use serde_json::Value;

const LABEL: &str = "decrypt";

/// `KID:KEY` of the main test key.
fn key_arg() -> String {
    format!("{KID}:{KEY}")
}

/// The `secure-world-host` next to the `cdm` under test; built with cargo if missing (a
/// `cargo test -p cdm` alone does not build other packages' binaries).
fn host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let cdm = Path::new(env!("CARGO_BIN_EXE_cdm"));
        let host = cdm.with_file_name("secure-world-host");
        if !host.is_file() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "secure-world-host"]);
            if cdm.parent().and_then(Path::file_name) == Some("release".as_ref()) {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p secure-world-host");
            assert!(status.success(), "cargo build -p secure-world-host failed");
        }
        assert!(host.is_file(), "no {}", host.display());
        host
    })
}

fn cdm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdm"))
        .args(args)
        .env("TEE_CDM_HOST", host())
        .output()
        .expect("run cdm")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `cdm decrypt --json` with `extra` arguments; asserts success, returns the summary.
fn decrypt(inputs: &[PathBuf], output: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["decrypt", "--json"];
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| s(p)));
    args.push(s(output));
    let out = cdm(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "cdm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

/// ffmpeg's `framemd5` lines of stream `stream` (`v:0`, `a:0`) of `file`, without the
/// header; `decode`: of the decoded frames, else of the packets (`-c copy`).
fn framemd5(file: &Path, stream: &str, decode: bool) -> Vec<String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", &format!("0:{stream}")]);
    if !decode {
        cmd.args(["-c", "copy"]);
    }
    let out = cmd
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg framemd5 {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Size and hash of every packet: timestamps are left out, since the packager drops the
/// source's edit list (AAC priming), which moves audio timestamps without touching data.
fn packets(file: &Path, stream: &str) -> Vec<String> {
    framemd5(file, stream, false)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            format!("{} {}", f[4], f[5])
        })
        .collect()
}

/// Whether `out`'s stream `stream` carries exactly the clear source's packets (and, for
/// video, decodes to the same frames).
fn same_as_source(out: &Path, stream: &str) -> bool {
    let clear = media(LABEL).clear();
    let ok = packets(out, stream) == packets(&clear, stream);
    if stream.starts_with('v') {
        ok && framemd5(out, stream, true) == framemd5(&clear, stream, true)
    } else {
        ok
    }
}

/// The output parses and has no protection left: no `pssh`, no protected sample entry, no
/// encrypted sample.
fn assert_clear(out: &Path) {
    let src = FileSource::new(std::fs::File::open(out).unwrap()).unwrap();
    let movie = mp4::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    assert!(movie.pssh.is_empty(), "{}: pssh left", out.display());
    for t in &movie.tracks {
        for e in &t.entries {
            assert!(
                e.protection.is_none(),
                "{}: {} protected",
                out.display(),
                e.path
            );
            assert!(!e.children.iter().any(|c| c.0 == *b"sinf"));
        }
        assert!(t.samples.iter().all(|s| s.encryption.is_none()));
        assert_eq!((t.senc_boxes, t.saiz_saio_boxes, t.seig_groups), (0, 0, 0));
    }
}

fn stream_of(kind: &str) -> &'static str {
    if kind == "video" {
        "v:0"
    } else {
        "a:0"
    }
}

#[test]
fn media_decrypt_shaka_every_scheme_clear_lead_audio_and_video() {
    let m = media(LABEL);
    for scheme in SCHEMES {
        for clear_lead in [0, 1] {
            for kind in ["video", "audio"] {
                let input = m.shaka(kind, scheme, clear_lead);
                let out = m.scratch(&format!("clear_{kind}_{scheme}_{clear_lead}.mp4"));
                let v = decrypt(std::slice::from_ref(&input), &out, &["--key", &key_arg()]);
                let what = format!("{kind} {scheme} clear lead {clear_lead}");
                assert_eq!(v["secure_world"], "out-of-process", "{what}");
                assert_eq!(v["license_requests"], 1, "{what}");
                assert_eq!(v["key_ids"], serde_json::json!([KID]), "{what}");
                let encrypted = v["tracks"][0]["encrypted"].as_u64().unwrap();
                assert!(encrypted > 0, "{what}");
                assert_eq!(v["samples_decrypted"].as_u64(), Some(encrypted), "{what}");
                assert!(
                    v["output_size"].as_u64().unwrap() < v["input_size"].as_u64().unwrap(),
                    "{what}: protection boxes removed"
                );
                assert_eq!(
                    std::fs::metadata(&out).unwrap().len(),
                    v["output_size"].as_u64().unwrap()
                );
                assert_clear(&out);
                assert!(
                    same_as_source(&out, stream_of(kind)),
                    "{what}: frames differ"
                );
                // The input itself does not pass the comparison (the check can fail).
                assert!(!same_as_source(&input, stream_of(kind)), "{what}");
            }
        }
    }
}

#[test]
fn media_decrypt_wrong_key_fails_the_frame_comparison() {
    let m = media(LABEL);
    let input = m.shaka("video", "cenc", 1);
    let out = m.scratch("wrong_key.mp4");
    // A Clear Key CDM cannot tell a wrong key: the samples decrypt to noise.
    let wrong = format!("{KID}:{}", "00".repeat(16));
    decrypt(&[input], &out, &["--key", &wrong]);
    assert!(!same_as_source(&out, "v:0"));
}

#[test]
fn media_decrypt_ffmpeg_non_fragmented_cenc() {
    let m = media(LABEL);
    let out = m.scratch("clear_ffmpeg.mp4");
    let v = decrypt(&[m.ffmpeg_cenc()], &out, &["--key", &key_arg()]);
    assert_eq!(v["tracks"].as_array().unwrap().len(), 2);
    // The output gets the mode any new file gets here (the umask's), not a private one.
    let like = m.scratch("mode-reference");
    std::fs::write(&like, b"").unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&out), mode(&like));
    assert_clear(&out);
    assert!(same_as_source(&out, "v:0"));
    assert!(same_as_source(&out, "a:0"));
}

#[test]
fn media_decrypt_ffmpeg_faststart_moves_every_chunk_offset() {
    let m = media(LABEL);
    let out = m.scratch("clear_ffmpeg_faststart.mp4");
    decrypt(&[m.ffmpeg_cenc_faststart()], &out, &["--key", &key_arg()]);
    assert_clear(&out);
    assert!(same_as_source(&out, "v:0"));
    assert!(same_as_source(&out, "a:0"));
}

#[test]
fn media_decrypt_init_and_media_segments_with_two_key_ids() {
    let m = media(LABEL);
    let both = [
        "--key".to_string(),
        key_arg(),
        "--key".to_string(),
        format!("{AUDIO_KID}:{AUDIO_KEY}"),
    ];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    for kind in ["video", "audio"] {
        let out = m.scratch(&format!("clear_segments_{kind}.mp4"));
        let v = decrypt(&m.segments(kind), &out, &both);
        let kid = if kind == "video" { KID } else { AUDIO_KID };
        assert_eq!(v["key_ids"], serde_json::json!([kid]), "{kind}");
        assert_eq!(v["inputs"].as_array().unwrap().len(), 4, "{kind}");
        assert_clear(&out);
        assert!(same_as_source(&out, stream_of(kind)), "{kind}");
    }
    // Only the video key: the audio cannot be decrypted, and nothing is written.
    let out = m.scratch("clear_segments_audio_nokey.mp4");
    let mut args = vec!["decrypt", "--key"];
    let k = key_arg();
    args.push(&k);
    let inputs = m.segments("audio");
    args.extend(inputs.iter().map(|p| s(p)));
    args.push(s(&out));
    let r = cdm(&args);
    assert_eq!(r.status.code(), Some(i32::from(exit::CDM)));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(AUDIO_KID), "{err}");
    assert!(!out.exists());
}

#[test]
fn media_decrypt_key_rotation_many_key_ids() {
    let m = media(LABEL);
    let out = m.scratch("clear_rotation.mp4");
    let keys: Vec<String> = rotation_keys()
        .iter()
        .flat_map(|(kid, key)| ["--key".to_string(), format!("{kid}:{key}")])
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let v = decrypt(&[m.rotation()], &out, &keys);
    let kids = v["key_ids"].as_array().unwrap();
    assert!(kids.len() >= 2, "{v}");
    // The first pssh names one key ID: the others need a second (keyids) session.
    assert_eq!(v["license_requests"], 2, "{v}");
    assert_clear(&out);
    assert!(same_as_source(&out, "v:0"));
}

/// A license server of this workspace on 127.0.0.1, in this process, holding the test key.
struct Server {
    url: String,
    metrics: Arc<license_server::Metrics>,
    _runtime: tokio::runtime::Runtime,
}

fn server() -> Server {
    let store = license_server::SqliteStore::open_in_memory().unwrap();
    license_server::KeyStore::import(
        &store,
        &[license_server::StoredKey {
            kid: cdm_core::KeyId::from(<[u8; 16]>::try_from(hex::decode(KID).unwrap()).unwrap()),
            key: cdm_core::ContentKey::from_slice(&hex::decode(KEY).unwrap()).unwrap(),
            allow_persistent: false,
        }],
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(license_server::Metrics::new());
    let app = license_server::router(Arc::new(store), Arc::clone(&metrics), None);
    runtime.spawn(license_server::serve(listener, app, std::future::pending()));
    Server {
        url: format!("http://{addr}/clearkey/license"),
        metrics,
        _runtime: runtime,
    }
}

#[test]
fn media_decrypt_with_the_license_server_in_process_and_out() {
    let m = media(LABEL);
    let server = server();
    for in_process in [false, true] {
        let out = m.scratch(&format!("clear_server_{in_process}.mp4"));
        let mut extra = vec!["--license-server", server.url.as_str()];
        if in_process {
            extra.push("--in-process");
        }
        let v = decrypt(&[m.shaka("video", "cbcs", 1)], &out, &extra);
        assert_eq!(v["key_source"], "license-server");
        let expected = if in_process {
            "in-process"
        } else {
            "out-of-process"
        };
        assert_eq!(v["secure_world"], expected);
        assert!(same_as_source(&out, "v:0"), "in_process {in_process}");
    }
    assert_eq!(server.metrics.snapshot().requests_temporary, 2);

    // A key the server does not have: the CDM gets no usable key, nothing is written.
    let out = m.scratch("clear_server_audio_segments.mp4");
    let mut args = vec!["decrypt", "--license-server", server.url.as_str()];
    let inputs = m.segments("audio");
    args.extend(inputs.iter().map(|p| s(p)));
    args.push(s(&out));
    let r = cdm(&args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(i32::from(exit::CDM)), "{err}");
    assert!(err.contains("answered 4"), "{err}");
    assert!(!out.exists());

    // No server at all.
    let r = cdm(&[
        "decrypt",
        "--license-server",
        "http://127.0.0.1:9/clearkey/license",
        s(&m.shaka("video", "cenc", 0)),
        s(&out),
    ]);
    assert_eq!(r.status.code(), Some(i32::from(exit::CDM)));
    assert!(!out.exists());
}

/// Entries of `dir` whose names start with the temporary prefix.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".cdm-decrypt-"))
        .collect()
}

#[test]
fn media_decrypt_failures_leave_the_output_alone() {
    let m = media(LABEL);
    let dir = m.scratch("fail");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.mp4");
    std::fs::write(&out, b"previous contents").unwrap();
    let data = std::fs::read(m.shaka("video", "cenc", 0)).unwrap();

    // The last mdat cut short: its samples run past the end of the file.
    let truncated = dir.join("truncated.mp4");
    std::fs::write(&truncated, &data[..data.len() - 1000]).unwrap();
    // A senc IV count that no longer matches the samples.
    let mut bad_senc = data.clone();
    let at = data.windows(4).position(|w| w == b"senc").unwrap();
    bad_senc[at + 8..at + 12].copy_from_slice(&0xffff_u32.to_be_bytes());
    let bad = dir.join("bad_senc.mp4");
    std::fs::write(&bad, &bad_senc).unwrap();

    for input in [&truncated, &bad] {
        let r = cdm(&["decrypt", "--key", &key_arg(), s(input), s(&out)]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(i32::from(exit::INPUT)), "{err}");
        assert!(err.contains("file offset"), "names the place: {err}");
        assert_eq!(std::fs::read(&out).unwrap(), b"previous contents");
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    }
    // The output is the input.
    let input = m.scratch("self.mp4");
    std::fs::write(&input, &data).unwrap();
    let r = cdm(&["decrypt", "--key", &key_arg(), s(&input), s(&input)]);
    assert_eq!(r.status.code(), Some(i32::from(exit::USAGE)));
    assert_eq!(std::fs::read(&input).unwrap(), data);
}

#[test]
fn media_decrypt_usage_errors_never_echo_a_key() {
    let m = media(LABEL);
    let input = m.shaka("video", "cenc", 0);
    let out = m.scratch("usage.mp4");
    let secret = "2b7e151628aed2a6abf7158809cf4fXX";
    for args in [
        vec!["decrypt", s(&input), s(&out)],
        vec!["decrypt", "--key", &key_arg(), s(&input)],
        vec!["decrypt", "--key", "nocolon", s(&input), s(&out)],
    ] {
        let r = cdm(&args);
        assert_eq!(r.status.code(), Some(i32::from(exit::USAGE)), "{args:?}");
    }
    let bad = format!("{KID}:{secret}");
    let r = cdm(&["decrypt", "--key", &bad, s(&input), s(&out)]);
    assert_eq!(r.status.code(), Some(i32::from(exit::USAGE)));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("not 32 hex digits"), "{err}");
    assert!(!err.contains(secret), "{err}");
    assert!(!out.exists());
}
