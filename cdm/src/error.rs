//! The tool's errors and the exit codes they map to.

use std::io;
use std::path::{Path, PathBuf};

use normal_world::EmeError;

use crate::mp4::{Mp4Error, ReadError};

/// Exit codes, stable for scripts.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The CDM failed or refused (e.g. `NotSupportedError` for a configuration).
    pub const CDM: u8 = 1;
    /// Usage error: unknown option, missing or malformed argument (clap's code too).
    pub const USAGE: u8 = 2;
    /// Invalid input: the file is not a valid MP4 file, or uses something unsupported.
    pub const INPUT: u8 = 3;
    /// I/O error: a file cannot be opened, read or written.
    pub const IO: u8 = 4;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file cannot be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is malformed or unsupported: the error names the box and offset.
    #[error("{}: {source}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Mp4Error,
    },
    /// The CDM failed.
    #[error("{0}")]
    Cdm(#[from] EmeError),
    /// The command line asks for something impossible (checks clap cannot make).
    #[error("{0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
}

impl CliError {
    /// The error of reading `path`.
    pub fn from_read(path: &Path, e: ReadError) -> CliError {
        match e {
            ReadError::Io { offset, source } => CliError::Read {
                path: path.to_path_buf(),
                source: io::Error::new(source.kind(), format!("at offset {offset}: {source}")),
            },
            ReadError::Mp4(source) => CliError::Input {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Open { .. } | CliError::Read { .. } | CliError::Output(_) => exit::IO,
            CliError::Input { .. } => exit::INPUT,
            CliError::Cdm(_) => exit::CDM,
            CliError::Usage(_) => exit::USAGE,
        }
    }

    /// A short name of the class of error, for JSON output (`io`, `input`, `cdm`).
    pub fn class(&self) -> &'static str {
        match self.exit_code() {
            exit::IO => "io",
            exit::INPUT => "input",
            exit::USAGE => "usage",
            _ => "cdm",
        }
    }
}
