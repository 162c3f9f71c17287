//! The `license-server` program: `serve`, `import`, `protected-init` and
//! `protected-rotation`.
//!
//! ```text
//! license-server serve  [--addr 127.0.0.1:8080] [--db license-server.db] [--static DIR]
//!                       [--protected DIR [--device-validity-days 3650]]
//! license-server import [--db license-server.db] [--persistent] [--file FILE]
//!                       [--protected-key KID_HEX:KEY_HEX[:OPTION]...]... [KID_HEX:KEY_HEX]...
//! license-server protected-init --dir DIR [--validity-days 3650]
//! license-server protected-rotation --entitlement KID_HEX:KEY_HEX --key KID_HEX:KEY_HEX...
//!                       [--out FILE] [--pssh-out FILE]
//! ```
//!
//! `serve` prints `listening on ADDR` on standard output once bound (`--addr 127.0.0.1:0`
//! picks a free port), logs to standard error (`RUST_LOG` sets the level, `info` by default)
//! and stops on SIGINT or SIGTERM. With `--protected DIR` it loads the protected key system's
//! key material from DIR ([`crate::protected::material`]; refusing to start if it is
//! incomplete, inconsistent or not valid now) and serves the `/protected/` routes; device
//! certificates it issues are valid for `--device-validity-days`.
//!
//! `import` adds keys (or replaces the key and policy of a key ID already stored), all in one
//! transaction. Key IDs and keys are 16 bytes, written as 32 hex digits. Positional arguments
//! are Clear Key keys; `--protected-key` imports a key of the protected key system, with the
//! options of [`crate::protected::keys`] after the key (`:robustness=hw:hdcp=2.2:renewal=600`).
//! `--file FILE` (`-` for standard input) has one key per line, `KID_HEX KEY_HEX [persistent]`
//! for Clear Key or `protected KID_HEX KEY_HEX [OPTION]...` for the protected key system, with
//! blank lines and `#` comments allowed; `--persistent` allows persistence for every key
//! imported. Prefer `--file` for real keys: command-line arguments are visible to other
//! processes (`/proc/PID/cmdline`) and cannot be wiped. Clear Key and protected keys are
//! stored apart: a key is served only by the key system it was imported for.
//!
//! `protected-init` writes a new root, provisioning and license server key set into DIR
//! (refusing to overwrite any file), certificates valid for `--validity-days`.
//!
//! `protected-rotation` writes a rotation record (content keys wrapped under an entitlement
//! key; the data of a `pssh` box of the protected key system) to `--out` and/or the whole
//! version 0 `pssh` box to `--pssh-out` (at least one; existing files are replaced, atomically).
//!
//! Exit status: 0 on success, 2 on a usage error (unknown option, malformed or wrongly sized
//! hex, a malformed key option or file line, nothing to import, no output), 1 when the
//! database, a file, the key material or the network fails.

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cdm_core::{ContentKey, KeyId};
use clap::{Args, Parser, Subcommand};
use zeroize::{Zeroize, Zeroizing};

use crate::metrics::Metrics;
use crate::protected::keys::{parse_protected_fields, parse_protected_key_arg, ProtectedKey};
use crate::protected::material::{
    self, ProtectedMaterial, DEFAULT_DEVICE_VALIDITY_DAYS, DEFAULT_VALIDITY_DAYS, MAX_VALIDITY_DAYS,
};
use crate::protected::{rotation, unix_now, ProtectedService};
use crate::store::{SqliteStore, StoredKey};
use crate::{router, router_with_protected, serve, DEFAULT_ADDR, DEFAULT_DB};

/// Exit status of usage errors.
const EXIT_USAGE: u8 = 2;

/// Command line of `license-server`.
#[derive(Debug, Parser)]
#[command(
    name = "license-server",
    version,
    about = "A license server for Clear Key (EME §9.1) and the protected key system (org.teecdm.protected)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Import content keys into the database.
    Import(ImportArgs),
    /// Generate the protected key system's root, provisioning and license server keys.
    ProtectedInit(ProtectedInitArgs),
    /// Write a rotation record (and/or its pssh box) for packagers.
    ProtectedRotation(ProtectedRotationArgs),
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// SQLite database of keys (created if missing).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Also serve the files of DIR at `/` (a test page and its media, same origin).
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Serve the protected key system with the key material of DIR (from `protected-init`).
    #[arg(long, value_name = "DIR")]
    pub protected: Option<PathBuf>,
    /// Lifetime of the device certificates issued by `/protected/provision`, in days.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = DEFAULT_DEVICE_VALIDITY_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS)),
        requires = "protected"
    )]
    pub device_validity_days: u32,
}

/// Options of `protected-init`.
#[derive(Debug, Args)]
pub struct ProtectedInitArgs {
    /// Directory to write the key material into (created if missing; no file may exist).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Validity of the provisioning and license server certificates, in days.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = DEFAULT_VALIDITY_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VALIDITY_DAYS))
    )]
    pub validity_days: u32,
}

/// Options of `protected-rotation`.
#[derive(Args)]
pub struct ProtectedRotationArgs {
    /// The entitlement key that wraps the content keys (as imported with
    /// `--protected-key KID:KEY:entitlement`).
    #[arg(long, value_name = "KID_HEX:KEY_HEX")]
    pub entitlement: String,
    /// A content key to deliver in the record (1 to 32).
    #[arg(long = "key", value_name = "KID_HEX:KEY_HEX", required = true)]
    pub keys: Vec<String>,
    /// Write the rotation record (the pssh box's data) to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the whole version 0 pssh box to FILE.
    #[arg(long, value_name = "FILE")]
    pub pssh_out: Option<PathBuf>,
}

impl std::fmt::Debug for ProtectedRotationArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedRotationArgs")
            .field("keys", &self.keys.len())
            .field("out", &self.out)
            .field("pssh_out", &self.pssh_out)
            .finish_non_exhaustive()
    }
}

impl Drop for ProtectedRotationArgs {
    fn drop(&mut self) {
        self.entitlement.zeroize();
        self.keys.zeroize();
    }
}

/// Options of `import`.
#[derive(Args)]
pub struct ImportArgs {
    /// SQLite database of keys (created if missing).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Allow every imported key in persistent-license sessions.
    #[arg(long)]
    pub persistent: bool,
    /// Read keys from FILE (`-`: standard input): lines `KID_HEX KEY_HEX [persistent]`, or
    /// `protected KID_HEX KEY_HEX [OPTION]...`.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A key of the protected key system, with options: robustness=sw|hw, hdcp=none|1.4|2.2|…,
    /// license=SECS, playback=SECS, renewal=SECS, persist, entitlement.
    #[arg(long = "protected-key", value_name = "KID_HEX:KEY_HEX[:OPTION]...")]
    pub protected_keys: Vec<String>,
    /// Clear Key keys to import, each a 16-byte key ID and a 16-byte key in hex.
    #[arg(value_name = "KID_HEX:KEY_HEX")]
    pub keys: Vec<String>,
}

impl std::fmt::Debug for ImportArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportArgs")
            .field("db", &self.db)
            .field("persistent", &self.persistent)
            .field("file", &self.file)
            .field("protected_keys", &self.protected_keys.len())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Drop for ImportArgs {
    fn drop(&mut self) {
        self.keys.zeroize();
        self.protected_keys.zeroize();
    }
}

/// Why a key given to `import` was rejected. Never contains key material (the text of a key
/// ID may be quoted; the text of a key is not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySpecError {
    /// A command-line key without the `:` between key ID and key.
    #[error("expected KID_HEX:KEY_HEX")]
    MissingColon,
    /// A file line with the wrong number of fields.
    #[error("expected `KID_HEX KEY_HEX [persistent]`, found {0} fields")]
    Fields(usize),
    /// A third field other than `persistent`.
    #[error("unknown flag {0:?} (only `persistent`)")]
    UnknownFlag(String),
    /// A key ID that is not 32 hex digits.
    #[error("key ID {0:?} is not 16 bytes in hex (32 hex digits)")]
    BadKeyId(String),
    /// A key that is not 32 hex digits.
    #[error("key is not 16 bytes in hex (32 hex digits), found {0} characters")]
    BadKey(usize),
    /// A protected key option that does not exist (quoted only if short: never a key).
    #[error(
        "unknown option {0:?} (robustness=, hdcp=, license=, playback=, renewal=, persist, \
         entitlement)"
    )]
    UnknownOption(String),
    /// A protected key option given twice.
    #[error("option {0} given more than once")]
    DuplicateOption(&'static str),
    /// A protected key option with a value outside its domain.
    #[error("{option}={value:?}: expected {expected}")]
    BadOptionValue {
        /// The option.
        option: &'static str,
        /// The value given (quoted only if short).
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

/// The keys of a key file, by key system.
#[derive(Debug, Default)]
pub struct KeyFile {
    /// `KID_HEX KEY_HEX [persistent]` lines.
    pub clearkey: Vec<StoredKey>,
    /// `protected KID_HEX KEY_HEX [OPTION]...` lines.
    pub protected: Vec<ProtectedKey>,
}

/// Parses a command-line key `KID_HEX:KEY_HEX`.
pub fn parse_key_arg(arg: &str, allow_persistent: bool) -> Result<StoredKey, KeySpecError> {
    let (kid, key) = arg.split_once(':').ok_or(KeySpecError::MissingColon)?;
    key_from_hex(kid, key, allow_persistent)
}

/// Parses a key file: one `KID_HEX KEY_HEX [persistent]` (Clear Key) or
/// `protected KID_HEX KEY_HEX [OPTION]...` (protected key system) per line, blank lines and
/// `#` comments (whole lines or line ends) ignored; `allow_persistent` applies to every line.
/// An error names its line number (from 1).
pub fn parse_key_file(
    text: &str,
    allow_persistent: bool,
) -> Result<KeyFile, (usize, KeySpecError)> {
    let mut keys = KeyFile::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index.saturating_add(1);
        let content = line.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = content.split_whitespace().collect();
        if let ["protected", rest @ ..] = fields.as_slice() {
            let [kid, key, options @ ..] = rest else {
                return Err((line_no, KeySpecError::Fields(fields.len())));
            };
            let k = parse_protected_fields(kid, key, options.iter().copied(), allow_persistent)
                .map_err(|e| (line_no, e))?;
            keys.protected.push(k);
            continue;
        }
        let (kid, key, persistent) = match fields.as_slice() {
            [] => continue,
            [kid, key] => (*kid, *key, false),
            [kid, key, "persistent"] => (*kid, *key, true),
            [_, _, flag] => {
                return Err((line_no, KeySpecError::UnknownFlag((*flag).to_owned())));
            }
            other => return Err((line_no, KeySpecError::Fields(other.len()))),
        };
        let stored =
            key_from_hex(kid, key, allow_persistent || persistent).map_err(|e| (line_no, e))?;
        keys.clearkey.push(stored);
    }
    Ok(keys)
}

/// A 16-byte key ID from 32 hex digits (public: decoded with `hex`).
pub(crate) fn decode_key_id(kid: &str) -> Result<[u8; 16], KeySpecError> {
    let mut kid_bytes = [0u8; 16];
    if kid.len() != 32 || hex::decode_to_slice(kid, &mut kid_bytes).is_err() {
        return Err(KeySpecError::BadKeyId(kid.to_owned()));
    }
    Ok(kid_bytes)
}

/// A 16-byte key from 32 hex digits, in a buffer wiped on drop. The key is secret: decoded in
/// constant time (`base16ct`), and never quoted in the error.
pub(crate) fn decode_key(key: &str) -> Result<Zeroizing<[u8; 16]>, KeySpecError> {
    let mut key_bytes = Zeroizing::new([0u8; 16]);
    if key.len() != 32 || base16ct::mixed::decode(key, &mut key_bytes[..]).is_err() {
        return Err(KeySpecError::BadKey(key.chars().count()));
    }
    Ok(key_bytes)
}

fn key_from_hex(kid: &str, key: &str, allow_persistent: bool) -> Result<StoredKey, KeySpecError> {
    let kid_bytes = decode_key_id(kid)?;
    let key_bytes = decode_key(key)?;
    // From the zeroizing buffer, not by value (which would leave an unwiped copy).
    let key = ContentKey::from_slice(&key_bytes[..]).ok_or(KeySpecError::BadKey(32))?;
    Ok(StoredKey {
        kid: KeyId::from(kid_bytes),
        key,
        allow_persistent,
    })
}

/// The whole program: parses `args` (the first is the program name, as in
/// [`std::env::args_os`]) and runs the subcommand.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0, usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    match cli.command {
        Command::Serve(args) => run_serve(&args),
        Command::Import(args) => run_import(&args),
        Command::ProtectedInit(args) => run_protected_init(&args),
        Command::ProtectedRotation(args) => run_protected_rotation(&args),
    }
}

fn run_import(args: &ImportArgs) -> ExitCode {
    let usage = |msg: &dyn std::fmt::Display| {
        eprintln!("license-server import: {msg}");
        ExitCode::from(EXIT_USAGE)
    };
    let mut keys = Vec::new();
    for (i, arg) in args.keys.iter().enumerate() {
        match parse_key_arg(arg, args.persistent) {
            Ok(k) => keys.push(k),
            Err(e) => return usage(&format_args!("argument {}: {e}", i.saturating_add(1))),
        }
    }
    let mut protected = Vec::new();
    for (i, arg) in args.protected_keys.iter().enumerate() {
        match parse_protected_key_arg(arg, args.persistent) {
            Ok(k) => protected.push(k),
            Err(e) => {
                return usage(&format_args!(
                    "--protected-key {}: {e}",
                    i.saturating_add(1)
                ));
            }
        }
    }
    if let Some(path) = &args.file {
        let text = match read_key_file(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("license-server import: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        match parse_key_file(&text, args.persistent) {
            Ok(more) => {
                keys.extend(more.clearkey);
                protected.extend(more.protected);
            }
            Err((line, e)) => return usage(&format_args!("{}:{line}: {e}", path.display())),
        }
    }
    if keys.is_empty() && protected.is_empty() {
        return usage(&"no keys given (KID_HEX:KEY_HEX arguments, --protected-key or --file FILE)");
    }
    let result = SqliteStore::open(&args.db).and_then(|store| store.import_all(&keys, &protected));
    match result {
        Ok(n) => {
            println!("imported {n} keys into {}", args.db.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("license-server import: {}: {e}", args.db.display());
            ExitCode::FAILURE
        }
    }
}

/// The file's text in a buffer that is wiped when dropped.
fn read_key_file(path: &Path) -> std::io::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        std::fs::File::open(path)?.read_to_string(&mut text)?;
    }
    Ok(text)
}

fn run_protected_init(args: &ProtectedInitArgs) -> ExitCode {
    match material::init(&args.dir, args.validity_days, unix_now()) {
        Ok(paths) => {
            for path in &paths {
                println!("wrote {}", path.display());
            }
            println!(
                "devices pin {}; serve --protected does not read {}: keep it offline",
                args.dir.join(material::ROOT_PUBLIC_KEY_FILE).display(),
                material::ROOT_KEY_FILE
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("license-server protected-init: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_protected_rotation(args: &ProtectedRotationArgs) -> ExitCode {
    let usage = |msg: &dyn std::fmt::Display| {
        eprintln!("license-server protected-rotation: {msg}");
        ExitCode::from(EXIT_USAGE)
    };
    if args.out.is_none() && args.pssh_out.is_none() {
        return usage(&"nothing to write: give --out FILE and/or --pssh-out FILE");
    }
    let parse = |arg: &str| {
        let (kid, key) = arg.split_once(':').ok_or(KeySpecError::MissingColon)?;
        Ok::<_, KeySpecError>((decode_key_id(kid)?, decode_key(key)?))
    };
    let (entitlement_id, entitlement) = match parse(&args.entitlement) {
        Ok((kid, key)) => (kid, protected_license::crypto::EntitlementKey::new(*key)),
        Err(e) => return usage(&format_args!("--entitlement: {e}")),
    };
    let mut keys = Vec::with_capacity(args.keys.len());
    for (i, arg) in args.keys.iter().enumerate() {
        match parse(arg) {
            Ok((kid, key)) => keys.push((kid, protected_license::crypto::ContentKey::new(*key))),
            Err(e) => return usage(&format_args!("--key {}: {e}", i.saturating_add(1))),
        }
    }
    let record = match rotation::build_record(&entitlement_id, &entitlement, &keys) {
        Ok(record) => record,
        Err(e @ rotation::RotationError::KeyCount(_)) => return usage(&e),
        Err(e) => {
            eprintln!("license-server protected-rotation: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pssh = match rotation::pssh_box(&record) {
        Ok(pssh) => pssh,
        Err(e) => {
            eprintln!("license-server protected-rotation: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (path, bytes) in [(&args.out, &record), (&args.pssh_out, &pssh)] {
        let Some(path) = path else { continue };
        if let Err(e) = replace_file(path, bytes) {
            eprintln!("license-server protected-rotation: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    ExitCode::SUCCESS
}

/// Writes `bytes` to `path` atomically (temporary file beside it, `fsync`, `rename`),
/// replacing an existing file.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), material::MaterialError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy());
    let temp = material::write_temp(dir, &name, bytes, false)?;
    if let Err(source) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(material::MaterialError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    material::sync_dir(dir)
}

fn run_serve(args: &ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("license-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_until_signal(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("license-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_signal(args: &ServeArgs) -> Result<(), String> {
    if let Some(dir) = &args.static_dir {
        if !dir.is_dir() {
            return Err(format!("--static {}: not a directory", dir.display()));
        }
    }
    let store = SqliteStore::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    if let Some(dir) = &args.static_dir {
        refuse_to_publish_db(dir, &args.db)?;
    }
    let protected = match &args.protected {
        Some(dir) => {
            if let Some(static_dir) = &args.static_dir {
                refuse_to_publish_material(static_dir, dir)?;
            }
            let device_validity = u64::from(args.device_validity_days).saturating_mul(86_400);
            let material = ProtectedMaterial::load(dir, unix_now(), device_validity)
                .map_err(|e| format!("--protected: {e}"))?;
            tracing::info!(
                dir = %dir.display(),
                server_certificate_not_after = material.server_not_after(),
                provisioning_certificate_not_after = material.provisioning_not_after(),
                "protected key system enabled"
            );
            Some(material)
        }
        None => None,
    };
    let store = Arc::new(store);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    // Scripts and tests read the port from this line.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    tracing::info!(addr = %local, db = %args.db.display(), "listening");
    let metrics = Arc::new(Metrics::new());
    let app = match protected {
        Some(material) => {
            let service = ProtectedService::new(material, Arc::clone(&store) as _);
            router_with_protected(store, metrics, args.static_dir.clone(), Arc::new(service))
        }
        None => router(store, metrics, args.static_dir.clone()),
    };
    serve(listener, app, shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Every file under the static directory is public: refuse one that holds the key database
/// (its WAL and shared-memory files sit beside it).
fn refuse_to_publish_db(static_dir: &Path, db: &Path) -> Result<(), String> {
    let dir = std::fs::canonicalize(static_dir)
        .map_err(|e| format!("--static {}: {e}", static_dir.display()))?;
    let db_path = std::fs::canonicalize(db).map_err(|e| format!("{}: {e}", db.display()))?;
    if db_path.starts_with(&dir) {
        return Err(format!(
            "--static {}: refusing to serve a directory that contains the key database {}",
            static_dir.display(),
            db.display()
        ));
    }
    Ok(())
}

/// Every file under the static directory is public: refuse one that holds the protected key
/// material (or lies inside it).
fn refuse_to_publish_material(static_dir: &Path, material: &Path) -> Result<(), String> {
    let dir = std::fs::canonicalize(static_dir)
        .map_err(|e| format!("--static {}: {e}", static_dir.display()))?;
    let material_dir = std::fs::canonicalize(material)
        .map_err(|e| format!("--protected {}: {e}", material.display()))?;
    if material_dir.starts_with(&dir) || dir.starts_with(&material_dir) {
        return Err(format!(
            "--static {}: refusing to serve a directory that overlaps the protected key \
             material {}",
            static_dir.display(),
            material.display()
        ));
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. A signal that cannot be watched never completes
/// its branch (rather than shutting the server down at once).
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "0123456789abcdef0123456789ABCDEF";
    const KEY: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn key_arg_decodes_both_halves() {
        let k = parse_key_arg(&format!("{KID}:{KEY}"), true).unwrap();
        assert_eq!(k.kid.as_bytes(), hex::decode(KID).unwrap());
        assert_eq!(&k.key.as_bytes()[..], hex::decode(KEY).unwrap());
        assert!(k.allow_persistent);
    }

    #[test]
    fn key_arg_errors_do_not_echo_the_key() {
        assert_eq!(
            parse_key_arg(KID, false).unwrap_err(),
            KeySpecError::MissingColon
        );
        assert!(matches!(
            parse_key_arg(&format!("{}:{KEY}", &KID[2..]), false),
            Err(KeySpecError::BadKeyId(_))
        ));
        let bad_key = "zz112233445566778899aabbccddeeff";
        let e = parse_key_arg(&format!("{KID}:{bad_key}"), false).unwrap_err();
        assert_eq!(e, KeySpecError::BadKey(32));
        assert!(!e.to_string().contains("zz1122"));
        assert_eq!(
            parse_key_arg(&format!("{KID}:{KEY}00"), false).unwrap_err(),
            KeySpecError::BadKey(34)
        );
    }

    #[test]
    fn key_file_lines_comments_and_flags() {
        let text = format!("# keys\n\n{KID} {KEY}\n  {KEY} {KID} persistent  # second\n");
        let keys = parse_key_file(&text, false).unwrap().clearkey;
        assert_eq!(keys.len(), 2);
        assert!(!keys[0].allow_persistent);
        assert!(keys[1].allow_persistent);
        assert_eq!(
            parse_key_file(&text, true)
                .unwrap()
                .clearkey
                .iter()
                .filter(|k| k.allow_persistent)
                .count(),
            2
        );

        let bad = format!("{KID} {KEY}\n{KID} {KEY} forever\n");
        assert_eq!(
            parse_key_file(&bad, false).unwrap_err(),
            (2, KeySpecError::UnknownFlag("forever".into()))
        );
        assert_eq!(
            parse_key_file(&format!("\n\n{KID}\n"), false).unwrap_err(),
            (3, KeySpecError::Fields(1))
        );
    }
}
