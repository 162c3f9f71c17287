//! Real test media, made by the tests themselves: a 2 s clip from ffmpeg (`testsrc2` H.264
//! video with libx264, `sine` AAC audio), packaged by Shaka Packager in the four Common
//! Encryption schemes with and without a clear lead, and a non-fragmented file encrypted by
//! ffmpeg (`-encryption_scheme cenc-aes-ctr`).
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

/// The schemes Shaka Packager writes.
pub const SCHEMES: [&str; 4] = ["cenc", "cens", "cbcs", "cbc1"];

/// Video frames per second of the clip (and per 1 s segment).
pub const FPS: u64 = 25;

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

    /// ffmpeg's non-fragmented `cenc` file (video and audio).
    pub fn ffmpeg_cenc(&self) -> PathBuf {
        self.dir.join("ffmpeg_cenc.mp4")
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
                "testsrc2=duration=2:size=160x120:rate=25",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:duration=2:sample_rate=44100",
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
    run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(media.clear())
            .args(["-c", "copy", "-encryption_scheme", "cenc-aes-ctr"])
            .args(["-encryption_key", KEY, "-encryption_kid", KID])
            .arg(media.ffmpeg_cenc()),
        "ffmpeg",
    );
    media
}
