//! A player process for the memory-scan test (`tests/protected_memory.rs`): it plays encrypted
//! samples through a secure world in its own process, then stays alive, sessions open, so that
//! the test can read its memory.
//!
//! ```text
//! protected_player --server URL --key-system org.teecdm.protected|org.w3.clearkey
//!                  [--root ROOT_PUB] [--in-process] --samples FILE
//! ```
//!
//! - `--server`: the reference license server (`license-server`), e.g. `http://127.0.0.1:PORT`.
//! - `--key-system org.teecdm.protected` (with `--root`, the server's 65-byte `root.pub`):
//!   `setServerCertificate` (`GET /protected/certificate`), `generateRequest` →
//!   `individualization-request` → `POST /protected/provision` → `update` → the queued
//!   `license-request` (encrypted to the server) → `POST /protected/license` → `update`; then
//!   the optional rotation record through `add_in_band_keys`.
//!   `--key-system org.w3.clearkey`: `generateRequest` → `POST /clearkey/license` → `update`.
//! - The secure world is this executable re-launched as `secure-world-host`, over shared
//!   memory handed over a Unix socket; `--in-process` links it into this process instead (a
//!   control for the test: then the keys *are* in this process's memory).
//! - `--samples FILE`, one record per line, fields separated by single spaces:
//!   - `kids KID_HEX...`: the key IDs the license is requested for (the `cenc` pssh);
//!   - `rotation RECORD_HEX`: a rotation record for `add_in_band_keys` (optional);
//!   - `sample SCHEME KID_HEX IV_HEX CRYPT:SKIP SUBSAMPLES OUTPUT SHA256_HEX DATA_HEX`, with
//!     `SUBSAMPLES` `-` or `CLEAR:PROTECTED,...`, `OUTPUT` `in-place` or `secure-buffer`, and
//!     the SHA-256 of the clear sample it must decrypt to (checked on the clear bytes in
//!     place, or on the digest the emulated secure decoder reports for a secure buffer).
//!
//! The player keeps what a player keeps: the `MediaKeys`, the session, and every message it
//! exchanged with the license server (a transcript, as players keep for diagnostics — for the
//! protected key system it holds the license, whose content keys are sealed to the device).
//! It also writes a marker the test computes from its process id (text and 16 raw bytes) into
//! its heap, so the test can show that its scanner finds what is there.
//!
//! Standard output: `HOST PID` (or `HOST in-process`), `ENGINE NAME`, `PLAYED ...`, one
//! `TRANSCRIPT ADDRESS LENGTH` per kept message, then `READY PID`; it then waits for end of
//! input on stdin (or a line `quit`), closes the session and exits 0. Any failure: `FAILED: reason` on stderr and exit status 1.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use cdm_core::init_data::build_common_pssh_v1;
use cdm_core::KeyId;
use common::{main_or_host, media_keys_in_a_process, messages, Failure, LicenseClient};
use normal_world::{
    request_media_key_system_access_with, DecryptedSample, EncryptionScheme, KeyStatus,
    KeySystemOptions, MediaKeySession, MediaKeySystemConfiguration, MediaKeySystemMediaCapability,
    MediaKeys, MessageType, OutputWish, SampleDescription, SessionType,
};

mod common;

/// The marker text and bytes of process `pid`: SHA-256("tee-cdm memory scan marker " ‖ pid in
/// decimal); the text is `tee-cdm-scan-marker:` and the digest's hex, the bytes its last 16.
/// The test computes the same (nothing of it is in the executable or the command line).
fn markers(pid: u32) -> (String, Vec<u8>) {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tee-cdm memory scan marker {pid}").as_bytes(),
    );
    let text = format!("tee-cdm-scan-marker:{}", hex::encode(digest.as_ref()));
    (text, digest.as_ref()[16..].to_vec())
}

/// One encrypted sample of the samples file.
struct Sample {
    scheme: EncryptionScheme,
    key_id: Vec<u8>,
    iv: Vec<u8>,
    pattern: (u8, u8),
    subsamples: Vec<(u32, u32)>,
    output: OutputWish,
    sha256: Vec<u8>,
    encrypted: Vec<u8>,
}

/// What the samples file holds.
#[derive(Default)]
struct Content {
    kids: Vec<KeyId>,
    rotation: Option<Vec<u8>>,
    samples: Vec<Sample>,
}

fn unhex(field: &str, what: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(field).map_err(|e| format!("samples file: {what}: {e}"))
}

fn parse_sample(fields: &[&str]) -> Result<Sample, Failure> {
    let [scheme, kid, iv, pattern, subsamples, output, sha256, data] = fields else {
        return Err(format!(
            "samples file: a sample has {} fields, not 8",
            fields.len()
        ));
    };
    let scheme = scheme
        .parse::<EncryptionScheme>()
        .map_err(|_| format!("samples file: scheme {scheme:?}"))?;
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|e| format!("samples file: {s:?}: {e}"))
    };
    let (crypt, skip) = pattern
        .split_once(':')
        .ok_or("samples file: pattern is not CRYPT:SKIP")?;
    let pattern = (
        u8::try_from(num(crypt)?).map_err(|e| e.to_string())?,
        u8::try_from(num(skip)?).map_err(|e| e.to_string())?,
    );
    let subsamples = if *subsamples == "-" {
        Vec::new()
    } else {
        subsamples
            .split(',')
            .map(|pair| {
                let (c, p) = pair
                    .split_once(':')
                    .ok_or("samples file: subsample is not CLEAR:PROTECTED")?;
                Ok((num(c)?, num(p)?))
            })
            .collect::<Result<_, Failure>>()?
    };
    let output = match *output {
        "in-place" => OutputWish::InPlace,
        "secure-buffer" => OutputWish::SecureBuffer,
        other => return Err(format!("samples file: output {other:?}")),
    };
    Ok(Sample {
        scheme,
        key_id: unhex(kid, "key ID")?,
        iv: unhex(iv, "IV")?,
        pattern,
        subsamples,
        output,
        sha256: unhex(sha256, "SHA-256")?,
        encrypted: unhex(data, "sample")?,
    })
}

fn read_content(path: &PathBuf) -> Result<Content, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut content = Content::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["kids", kids @ ..] => {
                for k in kids {
                    let kid = KeyId::new(&unhex(k, "key ID")?).map_err(|e| e.to_string())?;
                    content.kids.push(kid);
                }
            }
            ["rotation", record] => content.rotation = Some(unhex(record, "rotation record")?),
            ["sample", rest @ ..] => content.samples.push(parse_sample(rest)?),
            _ => return Err(format!("samples file: unknown line {:.40?}", line)),
        }
    }
    if content.kids.is_empty() || content.samples.is_empty() {
        return Err("samples file: no key IDs or no samples".into());
    }
    Ok(content)
}

/// The license server over HTTP; every message sent and received stays in `transcript`.
struct Server {
    client: LicenseClient,
    transcript: Vec<Vec<u8>>,
}

impl Server {
    fn exchange(&mut self, path: &str, body: Option<(&str, &[u8])>) -> Result<Vec<u8>, Failure> {
        if let Some((_, body)) = body {
            self.transcript.push(body.to_vec());
        }
        let answer = self.client.call(path, body)?;
        self.transcript.push(answer.clone());
        Ok(answer)
    }
}

/// `generateRequest` and the license exchange, provisioning first if the secure world asks.
fn license(
    session: &MediaKeySession,
    server: &mut Server,
    protected: bool,
    pssh: &[u8],
) -> Result<(), Failure> {
    session
        .generate_request("cenc", pssh)
        .map_err(|e| format!("generateRequest: {e}"))?;
    let mut pending: std::collections::VecDeque<_> = messages(session).into();
    let mut licensed = false;
    // At most: individualization-request, then license-request.
    for _ in 0..4 {
        let Some((message_type, message)) = pending.pop_front() else {
            break;
        };
        let route = match (protected, message_type) {
            (true, MessageType::IndividualizationRequest) => "/protected/provision",
            (true, MessageType::LicenseRequest) => "/protected/license",
            (false, MessageType::LicenseRequest) => "/clearkey/license",
            (_, other) => return Err(format!("unexpected {other} message")),
        };
        let content_type = if protected {
            "application/octet-stream"
        } else {
            "application/json"
        };
        let answer = server.exchange(route, Some((content_type, &message)))?;
        session
            .update(&answer)
            .map_err(|e| format!("update ({message_type}): {e}"))?;
        licensed |= message_type == MessageType::LicenseRequest;
        pending.extend(messages(session));
    }
    if !licensed {
        return Err("no license-request message".into());
    }
    Ok(())
}

/// Decrypts every sample and checks its SHA-256; answers (in place, secure buffers).
fn play(mk: &MediaKeys, samples: &[Sample]) -> Result<(usize, usize), Failure> {
    let (mut in_place, mut secure) = (0, 0);
    for (i, s) in samples.iter().enumerate() {
        let mut buf = s.encrypted.clone();
        let desc = SampleDescription {
            key_id: &s.key_id,
            scheme: s.scheme,
            iv: &s.iv,
            pattern: s.pattern,
            subsamples: &s.subsamples,
            output: s.output,
        };
        match mk
            .decrypt(&mut buf, &desc)
            .map_err(|e| format!("decrypt sample {i}: {e}"))?
        {
            DecryptedSample::InPlace => {
                let digest = ring::digest::digest(&ring::digest::SHA256, &buf);
                if digest.as_ref() != s.sha256.as_slice() {
                    return Err(format!("sample {i} decrypted wrong"));
                }
                in_place += 1;
            }
            DecryptedSample::SecureBuffer(handle) => {
                if buf != s.encrypted {
                    return Err(format!("sample {i}: clear bytes reached the player"));
                }
                let r = mk
                    .render_secure_buffer(handle)
                    .map_err(|e| format!("render sample {i}: {e}"))?;
                if r.digest.as_slice() != s.sha256.as_slice() {
                    return Err(format!("sample {i}: the secure decoder's digest differs"));
                }
                secure += 1;
            }
        }
    }
    Ok((in_place, secure))
}

struct Args {
    server: String,
    key_system: String,
    root: Option<PathBuf>,
    in_process: bool,
    samples: PathBuf,
}

fn parse_args(args: Vec<OsString>) -> Result<Args, Failure> {
    let mut it = args.into_iter();
    let (mut server, mut key_system, mut root, mut samples) = (None, None, None, None);
    let mut in_process = false;
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{} needs a value", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--server") => server = Some(value()?.to_string_lossy().into_owned()),
            Some("--key-system") => key_system = Some(value()?.to_string_lossy().into_owned()),
            Some("--root") => root = Some(PathBuf::from(value()?)),
            Some("--samples") => samples = Some(PathBuf::from(value()?)),
            Some("--in-process") => in_process = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Args {
        server: server.ok_or("--server URL is required")?,
        key_system: key_system.ok_or("--key-system is required")?,
        root,
        in_process,
        samples: samples.ok_or("--samples FILE is required")?,
    })
}

fn run(args: Args) -> Result<(), Failure> {
    let pid = std::process::id();
    // Kept in the heap until exit.
    let marker = markers(pid);
    let content = read_content(&args.samples)?;
    let protected = match args.key_system.as_str() {
        "org.teecdm.protected" => true,
        "org.w3.clearkey" => false,
        other => return Err(format!("key system {other:?}")),
    };
    let mut options = KeySystemOptions::default();
    if protected {
        let path = args.root.as_ref().ok_or("--root is required")?;
        let root = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let root: [u8; 65] = root
            .as_slice()
            .try_into()
            .map_err(|_| "root.pub is not 65 bytes")?;
        options.protected_root = Some(root);
    }
    let config = MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into()],
        video_capabilities: vec![MediaKeySystemMediaCapability::new(
            "video/mp4; codecs=\"avc1.64001f\"",
        )],
        audio_capabilities: vec![MediaKeySystemMediaCapability::new(
            "audio/mp4; codecs=\"mp4a.40.2\"",
        )],
        ..Default::default()
    };
    let access = request_media_key_system_access_with(&args.key_system, &[config], &options)
        .map_err(|e| format!("requestMediaKeySystemAccess: {e}"))?;

    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let mk = if args.in_process {
        say(&mut out, "HOST in-process".into());
        access
            .create_media_keys()
            .map_err(|e| format!("createMediaKeys: {e}"))?
    } else {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new(exe);
        if let Some(root) = &args.root {
            cmd.arg("--protected-root").arg(root);
        }
        let (mk, host) = media_keys_in_a_process(&access, cmd)?;
        say(&mut out, format!("HOST {}", host.id()));
        mk
    };
    say(&mut out, format!("ENGINE {}", mk.capabilities().engine));

    let mut server = Server {
        client: LicenseClient::new(&args.server),
        transcript: Vec::new(),
    };
    if protected {
        let certificate = server.exchange("/protected/certificate", None)?;
        let set = mk
            .set_server_certificate(&certificate)
            .map_err(|e| format!("setServerCertificate: {e}"))?;
        if !set {
            return Err("setServerCertificate answered false".into());
        }
    }
    let session = mk
        .create_session(SessionType::Temporary)
        .map_err(|e| format!("createSession: {e}"))?;
    let pssh = build_common_pssh_v1(&content.kids).map_err(|e| format!("pssh: {e}"))?;
    license(&session, &mut server, protected, &pssh)?;
    if let Some(record) = &content.rotation {
        session
            .add_in_band_keys(record)
            .map_err(|e| format!("add_in_band_keys: {e}"))?;
    }
    let usable = session
        .key_statuses()
        .iter()
        .filter(|(_, s)| *s == KeyStatus::Usable)
        .count();
    let (in_place, secure) = play(&mk, &content.samples)?;
    say(
        &mut out,
        format!(
            "PLAYED {} samples ({in_place} in place, {secure} secure buffers); {usable} usable keys; {} messages in the transcript",
            content.samples.len(),
            server.transcript.len()
        ),
    );
    // Where the kept messages lie, so that the test can tell its hits there from others.
    for m in &server.transcript {
        say(&mut out, format!("TRANSCRIPT {:p} {}", m.as_ptr(), m.len()));
    }
    say(&mut out, format!("READY {pid}"));

    // Alive, sessions open, until told to go.
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line {
            Ok(l) if l.trim() == "quit" => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    session.close().map_err(|e| format!("close: {e}"))?;
    drop(mk);
    std::hint::black_box((&marker, &server.transcript));
    Ok(())
}

fn main() -> ExitCode {
    main_or_host(|args| parse_args(args).and_then(run))
}
