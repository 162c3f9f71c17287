//! The `cdm` program: argument parsing (clap) and the subcommands' output.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use normal_world::MediaKeySystemMediaCapability;
use serde::Serialize;
use zeroize::Zeroize;

use crate::decrypt::{self, DecryptJob, KeySource};
use crate::error::{exit, CliError};
use crate::info::{self, InfoRequest};
use crate::inspect;

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  the CDM failed or refused (e.g. an unsupported configuration)
  2  usage error
  3  invalid input: a malformed or unsupported MP4 file (the message names the box and offset)
  4  I/O error: a file cannot be opened or read, or the output cannot be written";

/// Command line of `cdm`.
#[derive(Debug, Parser)]
#[command(
    name = "cdm",
    version,
    about = "Decrypt and inspect Common Encryption (CENC) MP4 files through the tee-cdm Clear Key \
             CDM (EME API, secure world), and query the CDM.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt a CENC MP4 file (cenc, cens, cbcs, cbc1; fragmented, or an init segment and
    /// its media segments, or non-fragmented) through the CDM: EME session, license from
    /// --key options or a license server, every sample decrypted by the secure world. The
    /// output is a clear MP4 file any player decodes: original sample entries restored,
    /// protection boxes removed, offsets adjusted. It appears only when complete.
    #[command(
        after_help = EXIT_CODES,
        override_usage = "cdm decrypt [OPTIONS] (--key KID:KEY... | --license-server URL) \
                          INPUT [SEGMENT...] OUTPUT"
    )]
    Decrypt(DecryptArgs),
    /// Show what an encrypted MP4 file holds: tracks, sample descriptions and their
    /// protection (scheme, key ID, IV size, constant IV, pattern), pssh boxes, fragments,
    /// encrypted and clear sample counts, and where the sample auxiliary information is.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Show the CDM's capabilities (AES engine, robustness levels, schemes, limits, ABI
    /// version) and the configuration requestMediaKeySystemAccess() grants
    /// (getConfiguration()). The secure world runs in this process.
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
}

/// `cdm decrypt`.
#[derive(Args)]
#[command(group(ArgGroup::new("key_source").required(true).args(["keys", "license_server"])))]
pub struct DecryptArgs {
    /// The input (one MP4 file, or an init segment followed by its media segments, which are
    /// read as one file and written as one) and, last, the output file.
    #[arg(value_name = "FILE", num_args = 2.., required = true)]
    pub files: Vec<PathBuf>,
    /// A content key, KID:KEY as 32 + 32 hex digits (repeatable). The Clear Key license is
    /// built from these for the key IDs the CDM's license request names.
    #[arg(long = "key", value_name = "KID:KEY")]
    pub keys: Vec<String>,
    /// The license server URL the CDM's license request is POSTed to (e.g.
    /// http://127.0.0.1:8080/clearkey/license of `license-server serve`).
    #[arg(long, value_name = "URL")]
    pub license_server: Option<String>,
    /// Link the secure world into this process instead of running it in its own process
    /// (secure-world-host).
    #[arg(long)]
    pub in_process: bool,
    /// The secure-world-host binary [default: $TEE_CDM_HOST, else next to cdm].
    #[arg(long, value_name = "PATH", conflicts_with = "in_process")]
    pub secure_world: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

impl std::fmt::Debug for DecryptArgs {
    /// Without the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptArgs")
            .field("files", &self.files)
            .field("keys", &self.keys.len())
            .field("license_server", &self.license_server)
            .field("in_process", &self.in_process)
            .field("secure_world", &self.secure_world)
            .field("json", &self.json)
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl Drop for DecryptArgs {
    fn drop(&mut self) {
        for k in &mut self.keys {
            k.zeroize();
        }
    }
}

impl DecryptArgs {
    /// The job these arguments describe.
    pub fn job(&self) -> Result<DecryptJob, CliError> {
        let (output, inputs) = self
            .files
            .split_last()
            .filter(|(_, inputs)| !inputs.is_empty())
            .ok_or_else(|| CliError::Usage("give an input file and an output file".into()))?;
        let keys = match &self.license_server {
            Some(url) => KeySource::LicenseServer(url.clone()),
            None => KeySource::Keys(
                self.keys
                    .iter()
                    .map(|k| decrypt::parse_key(k))
                    .collect::<Result<_, _>>()
                    .map_err(|e| CliError::Usage(format!("--key: {e}")))?,
            ),
        };
        Ok(DecryptJob {
            inputs: inputs.to_vec(),
            output: output.clone(),
            keys,
            in_process: self.in_process,
            secure_world: self.secure_world.clone(),
            progress: !self.quiet && !self.json,
        })
    }
}

/// `cdm inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The MP4 file (fragmented, or with its encryption data in moov).
    pub file: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cdm info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// An initDataTypes entry (repeatable) [default: cenc, keyids, webm].
    #[arg(long = "init-data-type", value_name = "TYPE")]
    pub init_data_types: Vec<String>,
    /// A videoCapabilities content type (repeatable)
    /// [default: video/mp4; codecs="avc1.64001f"].
    #[arg(long = "video", value_name = "CONTENT_TYPE")]
    pub video: Vec<String>,
    /// An audioCapabilities content type (repeatable)
    /// [default: audio/mp4; codecs="mp4a.40.2"].
    #[arg(long = "audio", value_name = "CONTENT_TYPE")]
    pub audio: Vec<String>,
    /// The encryptionScheme of every capability (cenc, cbcs, cbcs-1-9) [default: null].
    #[arg(long, value_name = "SCHEME")]
    pub encryption_scheme: Option<String>,
    /// A sessionTypes entry (repeatable) [default: absent, i.e. temporary].
    #[arg(long = "session-type", value_name = "TYPE")]
    pub session_types: Vec<String>,
    /// persistentState: required, optional or not-allowed [default: optional].
    #[arg(long, value_name = "REQUIREMENT", value_parser = parse_requirement)]
    pub persistent_state: Option<normal_world::MediaKeysRequirement>,
    /// Storage directory of the secure world (offers persistent-license sessions).
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
}

fn parse_requirement(s: &str) -> Result<normal_world::MediaKeysRequirement, String> {
    info::requirement(s).ok_or_else(|| format!("{s:?} is not required, optional or not-allowed"))
}

impl InfoArgs {
    /// The request these arguments describe.
    pub fn request(&self) -> InfoRequest {
        let mut request = InfoRequest::default();
        let c = &mut request.configuration;
        if !self.init_data_types.is_empty() {
            c.init_data_types = self.init_data_types.clone();
        }
        let caps = |types: &[String], default: &[MediaKeySystemMediaCapability]| {
            let mut caps: Vec<MediaKeySystemMediaCapability> = if types.is_empty() {
                default.to_vec()
            } else {
                types
                    .iter()
                    .map(|t| MediaKeySystemMediaCapability::new(t))
                    .collect()
            };
            if let Some(scheme) = &self.encryption_scheme {
                for cap in &mut caps {
                    cap.encryption_scheme = Some(scheme.clone());
                }
            }
            caps
        };
        c.video_capabilities = caps(&self.video, &c.video_capabilities);
        c.audio_capabilities = caps(&self.audio, &c.audio_capabilities);
        if !self.session_types.is_empty() {
            c.session_types = Some(self.session_types.clone());
        }
        if let Some(p) = self.persistent_state {
            c.persistent_state = p;
        }
        request.storage_dir = self.storage.clone();
        request
    }
}

/// Runs `cdm` with `args` (the program name first) and returns its exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to standard output.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let json = match &cli.command {
        Command::Decrypt(a) => a.json,
        Command::Inspect(a) => a.json,
        Command::Info(a) => a.json,
    };
    match run(&cli.command) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("cdm: error: {e}");
            if json {
                let _ = print_json(&ErrorReport::from(&e));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one subcommand, printing its report.
pub fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Decrypt(a) => {
            let report = decrypt::decrypt(&a.job()?)?;
            if a.json {
                print_json(&report)
            } else if a.quiet {
                Ok(())
            } else {
                print_text(&decrypt::render_text(&report))
            }
        }
        Command::Inspect(a) => {
            let report = inspect::inspect_file(&a.file)?;
            if a.json {
                print_json(&report)
            } else {
                print_text(&inspect::render_text(&report))
            }
        }
        Command::Info(a) => {
            let report = info::info(&a.request())?;
            if a.json {
                print_json(&report)
            } else {
                print_text(&info::render_text(&report))
            }
        }
    }
}

/// An error as JSON, on standard output with `--json` (the message also goes to standard
/// error).
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// The error.
    pub error: ErrorDetail,
}

/// The fields of [`ErrorReport`].
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// `io`, `input` or `cdm`.
    pub class: &'static str,
    /// The exit code.
    pub exit_code: u8,
    /// The message.
    pub message: String,
    /// For input errors: the path of the box at fault.
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    pub box_path: Option<String>,
    /// For input errors: the file offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl From<&CliError> for ErrorReport {
    fn from(e: &CliError) -> Self {
        let (box_path, offset) = match e {
            CliError::Input { source, .. } => (Some(source.path.clone()), Some(source.offset)),
            _ => (None, None),
        };
        ErrorReport {
            error: ErrorDetail {
                class: e.class(),
                exit_code: e.exit_code(),
                message: e.to_string(),
                box_path,
                offset,
            },
        }
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| CliError::Output(io::Error::other(e)))?;
    text.push('\n');
    print_text(&text)
}

fn print_text(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that went away (`cdm inspect f | head`) is not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks (names, groups, conflicts), which otherwise run only when a
        // subcommand is first used.
        Cli::command().debug_assert();
    }
}
