//! Real test media, made by the tests themselves: a 3 s clip from ffmpeg (`testsrc2` H.264
//! video with libx264, `sine` AAC audio), packaged by Shaka Packager in the four Common
//! Encryption schemes with and without a clear lead, and a non-fragmented file encrypted by
//! ffmpeg (`-encryption_scheme cenc-aes-ctr`), with `moov` at the end and at the front.
//!
//! Nothing is skipped: without ffmpeg or the packager the tests fail and say how to install
//! them (`scripts/install-deps.sh` does both: apt `ffmpeg`, `npm ci` in `browser-test/`, whose
//! `package.json` pins shaka-packager 3.4.2). `SHAKA_PACKAGER` overrides the packager path.
//!
//! The KID and key are TEST-ONLY values, public in this repository.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Test key ID (hex).
pub const KID: &str = "0123456789abcdef0123456789abcdef";
/// Test key (hex).
pub const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
/// Test key ID of the audio of the DASH segments (hex).
pub const AUDIO_KID: &str = "fedcba9876543210fedcba9876543210";
/// Test key of the audio of the DASH segments (hex).
pub const AUDIO_KEY: &str = "000102030405060708090a0b0c0d0e0f";

/// The schemes Shaka Packager writes.
pub const SCHEMES: [&str; 4] = ["cenc", "cens", "cbcs", "cbc1"];

/// Video frames per second of the clip (and per 1 s segment).
pub const FPS: u64 = 25;

/// Length of the clip in seconds (1 s segments: the clear lead of 1 s ends inside the file,
/// and key rotation with 1 s crypto periods gives several key IDs).
pub const SECONDS: u64 = 3;

/// The key IDs and keys of Shaka Packager's raw-key rotation in the `rotation` file: its
/// "naive" algorithm (raw_key_source.cc, which warns it is not for production) rotates the
/// configured key ID and key left by one byte per crypto period after the first two, as
/// observed on packager 3.4.2. Generous: keys for more periods than the file has.
pub fn rotation_keys() -> Vec<(String, String)> {
    let rot = |hex: &str, bytes: usize| {
        let n = 2 * bytes;
        format!("{}{}", &hex[n..], &hex[..n])
    };
    (0..=usize::try_from(SECONDS).unwrap())
        .map(|n| (rot(KID, n), rot(KEY, n)))
        .collect()
}

/// The generated files.
pub struct Media {
    dir: PathBuf,
}

impl Media {
    /// The clear source (non-fragmented, H.264 + AAC).
    pub fn clear(&self) -> PathBuf {
        self.dir.join("clear.mp4")
    }

    /// Shaka Packager's output: `kind` is `video` or `audio`; `clear_lead` 0 or 1 (seconds).
    pub fn shaka(&self, kind: &str, scheme: &str, clear_lead: u32) -> PathBuf {
        self.dir.join(format!("{kind}_{scheme}_{clear_lead}.mp4"))
    }

    /// Shaka Packager's DASH output for `kind`: the init segment and the media segments.
    pub fn segments(&self, kind: &str) -> Vec<PathBuf> {
        let mut v = vec![self.dir.join(format!("seg_{kind}_init.mp4"))];
        v.extend((1..=SECONDS).map(|n| self.dir.join(format!("seg_{kind}_{n}.m4s"))));
        v
    }

    /// Shaka Packager's video in `cenc` with key rotation every second (see
    /// [`rotation_keys`]): `pssh` boxes in every `moof`, `seig` sample groups.
    pub fn rotation(&self) -> PathBuf {
        self.dir.join("rotation.mp4")
    }

    /// ffmpeg's non-fragmented `cenc` file (video and audio).
    pub fn ffmpeg_cenc(&self) -> PathBuf {
        self.dir.join("ffmpeg_cenc.mp4")
    }

    /// The same file with `-movflags +faststart`: `moov` before `mdat`, so every chunk
    /// offset moves when the clear file drops the protection boxes.
    pub fn ffmpeg_cenc_faststart(&self) -> PathBuf {
        self.dir.join("ffmpeg_cenc_faststart.mp4")
    }

    /// A scratch path in the media directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The media, made once per test binary in `CARGO_TARGET_TMPDIR/<label>`.
pub fn media(label: &str) -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| make(label))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The Shaka Packager binary: `SHAKA_PACKAGER`, or the one in browser-test's node modules.
pub fn packager() -> PathBuf {
    if let Some(p) = std::env::var_os("SHAKA_PACKAGER") {
        return PathBuf::from(p);
    }
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "x64",
    };
    let p = repo_root()
        .join("browser-test/node_modules/shaka-packager/bin")
        .join(format!("packager-linux-{arch}"));
    assert!(
        p.is_file(),
        "Shaka Packager not found at {}: run `npm ci` in browser-test/ (scripts/install-deps.sh \
         does it) or set SHAKA_PACKAGER",
        p.display()
    );
    p
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {what} ({e}): scripts/install-deps.sh installs it (ffmpeg from apt, \
             Shaka Packager with `npm ci` in browser-test/)"
        )
    });
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make(label: &str) -> Media {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let media = Media { dir };
    let packager = packager();

    // A key frame every second, so that 1 s segments start on one.
    run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=duration={SECONDS}:size=160x120:rate=25"),
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency=440:duration={SECONDS}:sample_rate=44100"),
            ])
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ])
            .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-b:a", "64k", "-shortest"])
            .arg(media.clear()),
        "ffmpeg",
    );
    for scheme in SCHEMES {
        for clear_lead in [0, 1] {
            let clear = media.clear();
            let clear = clear.display();
            run(
                Command::new(&packager)
                    .arg(format!(
                        "in={clear},stream=video,output={}",
                        media.shaka("video", scheme, clear_lead).display()
                    ))
                    .arg(format!(
                        "in={clear},stream=audio,output={}",
                        media.shaka("audio", scheme, clear_lead).display()
                    ))
                    .arg("--enable_raw_key_encryption")
                    .args(["--keys", &format!("label=:key_id={KID}:key={KEY}")])
                    .args(["--protection_scheme", scheme])
                    .args(["--clear_lead", &clear_lead.to_string()])
                    .args(["--protection_systems", "CommonSystem"])
                    .args(["--segment_duration", "1", "--fragment_duration", "1"])
                    .arg("--quiet"),
                "Shaka Packager",
            );
        }
    }
    // DASH segments: video in cbcs, audio in cenc, both with a 1 s clear lead.
    let clear = media.clear();
    let clear = clear.display();
    let dir = media.dir.display();
    run(
        Command::new(&packager)
            .arg(format!(
                "in={clear},stream=video,init_segment={dir}/seg_video_init.mp4,\
                 segment_template={dir}/seg_video_$Number$.m4s,drm_label=VIDEO"
            ))
            .arg(format!(
                "in={clear},stream=audio,init_segment={dir}/seg_audio_init.mp4,\
                 segment_template={dir}/seg_audio_$Number$.m4s,drm_label=AUDIO"
            ))
            .arg("--enable_raw_key_encryption")
            .args([
                "--keys",
                &format!("label=VIDEO:key_id={KID}:key={KEY},label=AUDIO:key_id={AUDIO_KID}:key={AUDIO_KEY}"),
            ])
            .args(["--protection_scheme", "cbcs"])
            .args(["--clear_lead", "1"])
            .args(["--protection_systems", "CommonSystem"])
            .args(["--segment_duration", "1", "--fragment_duration", "1"])
            .arg("--quiet"),
        "Shaka Packager",
    );
    run(
        Command::new(&packager)
            .arg(format!(
                "in={clear},stream=video,output={}",
                media.rotation().display()
            ))
            .arg("--enable_raw_key_encryption")
            .args(["--keys", &format!("label=:key_id={KID}:key={KEY}")])
            .args(["--protection_scheme", "cenc"])
            .args(["--clear_lead", "0", "--crypto_period_duration", "1"])
            .args(["--protection_systems", "CommonSystem"])
            .args(["--segment_duration", "1", "--fragment_duration", "1"])
            .arg("--quiet"),
        "Shaka Packager",
    );
    for (output, movflags) in [
        (media.ffmpeg_cenc(), "-faststart"),
        (media.ffmpeg_cenc_faststart(), "+faststart"),
    ] {
        run(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(media.clear())
                .args(["-c", "copy", "-encryption_scheme", "cenc-aes-ctr"])
                .args(["-encryption_key", KEY, "-encryption_kid", KID])
                .args(["-movflags", movflags])
                .arg(output),
            "ffmpeg",
        );
    }
    media
}
