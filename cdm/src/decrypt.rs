//! `cdm decrypt`: a CENC MP4 file decrypted through the EME API and the secure world, the
//! path a device takes, into a clear file any player decodes.
//!
//! The steps: parse the input ([`crate::mp4`]); `requestMediaKeySystemAccess()` for Clear
//! Key and `MediaKeys` over the secure world (a `secure-world-host` process by default, or
//! linked in with `--in-process`); a session per init data — first the file's `pssh` boxes of
//! the Common SystemID as `cenc` init data, then, for key IDs those do not name, `keyids` init
//! data — with `generateRequest()`, the license (built from `--key` options or fetched from
//! `--license-server`), `update()`; then [`crate::clear::write_clear`] with every encrypted
//! sample through `MediaKeys::decrypt`. The output is written to a temporary file beside it,
//! flushed to disk and renamed over the output at the end: on any error there is no output
//! file at all.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cdm_core::clearkey::{build_license, kids_json, parse_license_request};
use cdm_core::{ContentKey, KeyId};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use normal_world::transport::SocketTransport;
use normal_world::{
    request_media_key_system_access, DecryptedSample, EmeError, EncryptionScheme, KeyStatus,
    MediaKeySession, MediaKeySessionEvent, MediaKeys, OutputWish, SampleDescription, SessionType,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::clear::{write_clear, ClearStats, CopyError, SampleRef};
use crate::error::CliError;
use crate::info::{InfoRequest, KEY_SYSTEM};
use crate::mp4::source::ConcatSource;
use crate::mp4::{FileSource, Movie, Source};
use cdm_core::init_data::COMMON_SYSTEM_ID;

/// The secure-world host binary's file name.
pub const HOST_BINARY: &str = "secure-world-host";
/// Environment variable naming the host binary (overridden by `--secure-world`).
pub const HOST_ENV_VAR: &str = "TEE_CDM_HOST";

/// A content key given on the command line, for a Clear Key license built here.
pub struct GivenKey {
    /// The key ID.
    pub kid: [u8; 16],
    /// The key (wiped on drop).
    pub key: ContentKey,
}

/// Where the keys come from.
pub enum KeySource {
    /// Keys given by the user: the license is built here.
    Keys(Vec<GivenKey>),
    /// A license server's URL (`POST` of the license request, the license in the answer).
    LicenseServer(String),
}

/// What to decrypt and how.
pub struct DecryptJob {
    /// The input: one MP4 file, or an init segment followed by its media segments.
    pub inputs: Vec<PathBuf>,
    /// The output file.
    pub output: PathBuf,
    /// Where the keys come from.
    pub keys: KeySource,
    /// Link the secure world into this process instead of spawning its host.
    pub in_process: bool,
    /// The `secure-world-host` binary (default: [`HOST_ENV_VAR`], else next to `cdm`).
    pub secure_world: Option<PathBuf>,
    /// Draw a progress bar (only done when standard error is a terminal).
    pub progress: bool,
}

/// What `cdm decrypt` reports.
#[derive(Clone, Debug, Serialize)]
pub struct DecryptReport {
    /// The input files.
    pub inputs: Vec<String>,
    /// The output file.
    pub output: String,
    /// `out-of-process` or `in-process`.
    pub secure_world: &'static str,
    /// The secure world's AES engine.
    pub engine: String,
    /// `keys` or `license-server`.
    pub key_source: &'static str,
    /// License requests made (one per session).
    pub license_requests: u32,
    /// The key IDs the encrypted samples use (hex).
    pub key_ids: Vec<String>,
    /// Per track.
    pub tracks: Vec<TrackSummary>,
    /// Samples decrypted.
    pub samples_decrypted: u64,
    /// Bytes of encrypted samples decrypted.
    pub bytes_decrypted: u64,
    /// Protection boxes dropped, and their bytes.
    pub boxes_dropped: u64,
    /// Bytes of the dropped boxes.
    pub bytes_dropped: u64,
    /// Size of the input (all files).
    pub input_size: u64,
    /// Size of the output.
    pub output_size: u64,
    /// Wall time, in seconds.
    pub seconds: f64,
}

/// One track in [`DecryptReport`].
#[derive(Clone, Debug, Serialize)]
pub struct TrackSummary {
    /// Track ID.
    pub id: u32,
    /// Handler (`vide`, `soun`).
    pub handler: String,
    /// Schemes of its protected sample descriptions.
    pub schemes: Vec<String>,
    /// Samples.
    pub samples: usize,
    /// Encrypted samples.
    pub encrypted: usize,
}

/// Parses `KID:KEY` (32 + 32 hex digits). The key is decoded in constant time (`base16ct`)
/// and never appears in an error.
pub fn parse_key(arg: &str) -> Result<GivenKey, String> {
    let (kid_hex, key_hex) = arg
        .split_once(':')
        .ok_or_else(|| "expected KID:KEY (32 hex digits each)".to_string())?;
    let mut kid = [0u8; 16];
    match base16ct::mixed::decode(kid_hex, &mut kid) {
        Ok(b) if b.len() == 16 => {}
        _ => return Err(format!("key ID {kid_hex:?} is not 32 hex digits")),
    }
    let mut key = Zeroizing::new([0u8; 16]);
    match base16ct::mixed::decode(key_hex, &mut key[..]) {
        Ok(b) if b.len() == 16 => {}
        _ => {
            return Err(format!(
                "the key of {kid_hex} is not 32 hex digits ({} characters)",
                key_hex.len()
            ))
        }
    }
    Ok(GivenKey {
        kid,
        key: ContentKey::new(*key),
    })
}

/// The `secure-world-host` to spawn: `explicit`, else [`HOST_ENV_VAR`], else next to the
/// running `cdm` (or one directory up, for test binaries in `target/<profile>/deps`).
pub fn find_host(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    let missing = |what: String| {
        CliError::Cdm(EmeError::NotSupportedError(format!(
            "{what}: build it with `cargo build -p secure-world-host` (same profile as cdm), \
             pass --secure-world PATH or set {HOST_ENV_VAR}, or use --in-process"
        )))
    };
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(missing(format!("no secure-world host at {}", p.display())))
        };
    }
    if let Some(p) = std::env::var_os(HOST_ENV_VAR) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(missing(format!(
                "{HOST_ENV_VAR} names no file ({})",
                p.display()
            )))
        };
    }
    let name = format!("{HOST_BINARY}{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    let found = [dir, dir.and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file());
    found.ok_or_else(|| missing(format!("{HOST_BINARY} not found next to cdm")))
}

/// The label of the input in messages: the file, or the first file and a segment count.
fn input_label(inputs: &[PathBuf]) -> PathBuf {
    match inputs {
        [one] => one.clone(),
        [first, rest @ ..] => PathBuf::from(format!(
            "{} (+{} segments; offsets count through all files)",
            first.display(),
            rest.len()
        )),
        [] => PathBuf::from("(no input)"),
    }
}

fn scheme_of(fourcc: [u8; 4]) -> Option<EncryptionScheme> {
    match &fourcc {
        b"cenc" => Some(EncryptionScheme::Cenc),
        b"cens" => Some(EncryptionScheme::Cens),
        b"cbcs" => Some(EncryptionScheme::Cbcs),
        b"cbc1" => Some(EncryptionScheme::Cbc1),
        _ => None,
    }
}

/// The key IDs of the encrypted samples.
fn needed_key_ids(movie: &Movie) -> BTreeSet<[u8; 16]> {
    movie
        .tracks
        .iter()
        .flat_map(|t| t.samples.iter())
        .filter_map(|s| s.encryption.as_ref().map(|e| e.key_id))
        .collect()
}

/// `cenc` init data: every distinct `pssh` box of the Common SystemID, concatenated (EME
/// "cenc" Initialization Data Format allows several boxes).
fn cenc_init_data(movie: &Movie) -> Vec<u8> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for p in &movie.pssh {
        if p.pssh.system_id == COMMON_SYSTEM_ID && !seen.contains(&p.bytes.as_slice()) {
            seen.push(&p.bytes);
        }
    }
    seen.concat()
}

/// The license for `request` (a Clear Key license request message).
fn obtain_license(keys: &KeySource, request: &[u8]) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let cdm = |m: String| CliError::Cdm(EmeError::InvalidStateError(m));
    match keys {
        KeySource::Keys(given) => {
            let parsed = parse_license_request(request)
                .map_err(|e| cdm(format!("the CDM's license request is unreadable: {e}")))?;
            let mut pairs = Vec::new();
            let mut missing = Vec::new();
            for kid in &parsed.kids {
                match given.iter().find(|g| g.kid.as_slice() == kid.as_bytes()) {
                    Some(g) => pairs.push((
                        KeyId::new(&g.kid).map_err(|e| cdm(format!("key ID: {e}")))?,
                        &g.key,
                    )),
                    None => missing.push(hex::encode(kid.as_bytes())),
                }
            }
            if !missing.is_empty() {
                return Err(cdm(format!(
                    "no --key given for key ID {} (the file needs it)",
                    missing.join(", ")
                )));
            }
            let refs: Vec<(KeyId, &ContentKey)> = pairs;
            build_license(&refs, parsed.session_type)
                .map_err(|e| cdm(format!("cannot build the license: {e}")))
        }
        KeySource::LicenseServer(url) => fetch_license(url, request),
    }
}

/// POSTs the license request to the license server and returns its answer.
fn fetch_license(url: &str, request: &[u8]) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let fail = |m: String| CliError::Cdm(EmeError::InvalidStateError(m));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(request)
        .map_err(|e| fail(format!("license server {url}: {e}")))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| fail(format!("license server {url}: reading the answer: {e}")))?;
    let body = Zeroizing::new(body);
    if !status.is_success() {
        // The server's JSON error, shortened; it never holds keys.
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(fail(format!(
            "license server {url} answered {status}: {text}"
        )));
    }
    Ok(body)
}

/// Opens a session for `init_data`, obtains and applies its license; returns the session.
fn license_session(
    media_keys: &MediaKeys,
    init_data_type: &str,
    init_data: &[u8],
    keys: &KeySource,
) -> Result<MediaKeySession, CliError> {
    let session = media_keys.create_session(SessionType::Temporary)?;
    session.generate_request(init_data_type, init_data)?;
    let request = session
        .drain_events()
        .into_iter()
        .find_map(|e| match e {
            MediaKeySessionEvent::Message { message, .. } => Some(message),
            _ => None,
        })
        .ok_or_else(|| {
            CliError::Cdm(EmeError::InvalidStateError(
                "generateRequest queued no license request".into(),
            ))
        })?;
    let license = obtain_license(keys, &request)?;
    session.update(&license)?;
    Ok(session)
}

fn usable(sessions: &[MediaKeySession], kid: &[u8; 16]) -> bool {
    sessions
        .iter()
        .any(|s| s.key_statuses().get(kid) == Some(KeyStatus::Usable))
}

/// Runs the job: the clear file is at `job.output` when this returns `Ok`, and nothing is
/// there (nor any temporary file) when it fails.
pub fn decrypt(job: &DecryptJob) -> Result<DecryptReport, CliError> {
    let started = Instant::now();
    let label = input_label(&job.inputs);
    for input in &job.inputs {
        if same_file(input, &job.output) {
            return Err(CliError::Usage(format!(
                "the output {} is also an input",
                job.output.display()
            )));
        }
    }
    let mut files = Vec::new();
    for input in &job.inputs {
        let file = File::open(input).and_then(FileSource::new);
        files.push(file.map_err(|source| CliError::Open {
            path: input.clone(),
            source,
        })?);
    }
    let src = ConcatSource::new(files).map_err(|source| CliError::Read {
        path: label.clone(),
        source,
    })?;
    let movie = crate::mp4::parse(&src).map_err(|e| CliError::from_read(&label, e))?;
    let needed = needed_key_ids(&movie);
    for track in &movie.tracks {
        for (i, s) in track.samples.iter().enumerate() {
            if let Some(e) = &s.encryption {
                if scheme_of(e.scheme.0).is_none() {
                    return Err(CliError::Input {
                        path: label.clone(),
                        source: crate::mp4::Mp4Error::new(
                            track.path.clone(),
                            s.offset,
                            crate::mp4::Mp4ErrorKind::Unsupported(format!(
                                "track {} sample {}: scheme '{}' is not Common Encryption",
                                track.id,
                                i.saturating_add(1),
                                e.scheme
                            )),
                        ),
                    });
                }
            }
        }
    }

    // The CDM, as a player reaches it.
    let access =
        request_media_key_system_access(KEY_SYSTEM, &[InfoRequest::default().configuration])?;
    let media_keys = if job.in_process {
        access.create_media_keys()?
    } else {
        let host = find_host(job.secure_world.as_deref())?;
        let transport = SocketTransport::spawn(&host)
            .and_then(SocketTransport::with_shared_memory)
            .map_err(|e| {
                CliError::Cdm(EmeError::NotSupportedError(format!(
                    "cannot start the secure world {}: {e}",
                    host.display()
                )))
            })?;
        access.create_media_keys_with_transport(Box::new(transport))?
    };

    let mut sessions = Vec::new();
    if !needed.is_empty() {
        let cenc = cenc_init_data(&movie);
        if !cenc.is_empty() {
            sessions.push(license_session(&media_keys, "cenc", &cenc, &job.keys)?);
        }
        let rest: Vec<KeyId> = needed
            .iter()
            .filter(|k| !usable(&sessions, k))
            .map(|k| KeyId::new(k))
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Cdm(EmeError::TypeError(format!("key ID: {e}"))))?;
        if !rest.is_empty() {
            let init = kids_json(rest.iter().map(KeyId::as_bytes), None).map_err(|e| {
                CliError::Cdm(EmeError::TypeError(format!("keyids init data: {e}")))
            })?;
            sessions.push(license_session(&media_keys, "keyids", &init, &job.keys)?);
        }
        let unusable: Vec<String> = needed
            .iter()
            .filter(|k| !usable(&sessions, k))
            .map(hex::encode)
            .collect();
        if !unusable.is_empty() {
            return Err(CliError::Cdm(EmeError::InvalidStateError(format!(
                "the license gave no usable key for key ID {}",
                unusable.join(", ")
            ))));
        }
    }

    let bar = progress_bar(job.progress, src.len());
    let stats = write_output(&job.output, &src, &movie, &media_keys, &bar, &label)?;
    bar.finish_and_clear();
    for s in &sessions {
        // Best effort: the work is done and written.
        let _ = s.close();
    }

    Ok(DecryptReport {
        inputs: job.inputs.iter().map(|p| p.display().to_string()).collect(),
        output: job.output.display().to_string(),
        secure_world: if job.in_process {
            "in-process"
        } else {
            "out-of-process"
        },
        engine: media_keys.capabilities().engine.to_string(),
        key_source: match job.keys {
            KeySource::Keys(_) => "keys",
            KeySource::LicenseServer(_) => "license-server",
        },
        license_requests: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
        key_ids: needed.iter().map(hex::encode).collect(),
        tracks: movie
            .tracks
            .iter()
            .map(|t| TrackSummary {
                id: t.id,
                handler: t.handler.to_string(),
                schemes: t
                    .entries
                    .iter()
                    .filter_map(|e| e.protection.as_ref().map(|p| p.scheme.to_string()))
                    .collect(),
                samples: t.samples.len(),
                encrypted: t.samples.iter().filter(|s| s.encryption.is_some()).count(),
            })
            .collect(),
        samples_decrypted: stats.samples_decrypted,
        bytes_decrypted: stats.bytes_decrypted,
        boxes_dropped: stats.boxes_dropped,
        bytes_dropped: stats.bytes_dropped,
        input_size: src.len(),
        output_size: stats.output_size,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn progress_bar(wanted: bool, total: u64) -> ProgressBar {
    if !wanted || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} decrypting [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Writes the clear file to a temporary file beside `output`, then renames it.
fn write_output(
    output: &Path,
    src: &ConcatSource,
    movie: &Movie,
    media_keys: &MediaKeys,
    bar: &ProgressBar,
    label: &Path,
) -> Result<ClearStats, CliError> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Created as any new file would be (0666 less the umask), not 0600: the clear file is the
    // user's product, not a secret of ours.
    let tmp = tempfile::Builder::new()
        .prefix(".cdm-decrypt-")
        .suffix(".part")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|source| CliError::Open {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let mut decrypt = |s: SampleRef<'_>, data: &mut [u8]| decrypt_sample(media_keys, s, data);
    let mut progress = |n: u64| bar.inc(n);
    let stats = match write_clear(src, movie, &mut out, &mut decrypt, &mut progress) {
        Ok(stats) => stats,
        Err(CopyError::Read(e)) => return Err(CliError::from_read(label, e)),
        Err(CopyError::Write(e)) => return Err(CliError::Output(e)),
        Err(CopyError::Decrypt(e)) => return Err(e),
    };
    out.flush().map_err(CliError::Output)?;
    drop(out);
    tmp.as_file().sync_all().map_err(CliError::Output)?;
    tmp.persist(output).map_err(|e| CliError::Output(e.error))?;
    Ok(stats)
}

/// One sample through `MediaKeys::decrypt`.
fn decrypt_sample(
    media_keys: &MediaKeys,
    s: SampleRef<'_>,
    data: &mut [u8],
) -> Result<(), CliError> {
    let Some(e) = &s.sample.encryption else {
        return Ok(());
    };
    let at = |m: String| {
        CliError::Cdm(EmeError::InvalidStateError(format!(
            "track {} sample {} (file offset {}, {} bytes): {m}",
            s.track.id, s.number, s.sample.offset, s.sample.size
        )))
    };
    let scheme = scheme_of(e.scheme.0).ok_or_else(|| at(format!("scheme '{}'", e.scheme)))?;
    let subsamples: Vec<(u32, u32)> = e
        .subsamples
        .iter()
        .map(|&(clear, protected)| (u32::from(clear), protected))
        .collect();
    let desc = SampleDescription {
        key_id: &e.key_id,
        scheme,
        iv: &e.iv,
        pattern: e.pattern.map_or((0, 0), |p| (p.crypt, p.skip)),
        subsamples: &subsamples,
        output: OutputWish::InPlace,
    };
    match media_keys.decrypt(data, &desc) {
        Ok(DecryptedSample::InPlace) => Ok(()),
        Ok(DecryptedSample::SecureBuffer(_)) => Err(at(
            "the key's robustness keeps clear samples in the secure world (HW_SECURE_DECODE)"
                .into(),
        )),
        Err(err) => Err(at(err.to_string())),
    }
}

/// The summary `cdm decrypt` prints.
pub fn render_text(r: &DecryptReport) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mut t = String::new();
    let rate = if r.seconds > 0.0 {
        r.input_size as f64 / MIB / r.seconds
    } else {
        0.0
    };
    t.push_str(&format!(
        "decrypted {} samples ({:.1} MiB) in {:.2} s ({rate:.1} MiB/s of input) through the \
         {} secure world ({} engine)\n",
        r.samples_decrypted,
        r.bytes_decrypted as f64 / MIB,
        r.seconds,
        r.secure_world,
        r.engine,
    ));
    t.push_str(&format!(
        "keys: {} from {} ({} license request{})\n",
        if r.key_ids.is_empty() {
            "none needed".to_string()
        } else {
            r.key_ids.join(", ")
        },
        r.key_source,
        r.license_requests,
        if r.license_requests == 1 { "" } else { "s" },
    ));
    for track in &r.tracks {
        t.push_str(&format!(
            "track {} ({}): {} samples, {} encrypted{}\n",
            track.id,
            track.handler,
            track.samples,
            track.encrypted,
            if track.schemes.is_empty() {
                String::new()
            } else {
                format!(" ({})", track.schemes.join(", "))
            }
        ));
    }
    t.push_str(&format!(
        "wrote {} ({} bytes; {} protection boxes, {} bytes, removed)\n",
        r.output, r.output_size, r.boxes_dropped, r.bytes_dropped
    ));
    t
}
