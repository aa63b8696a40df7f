//! The tool's errors and exit codes.

use std::fmt;
use std::process::ExitCode;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command ran, and found (or met) problems: corrupt or unreadable files, an entry that is not
/// there, a removal that failed.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: the command line is wrong (bad flags, a bad duration or size, a directory that is not a bucket, a
/// hash that is not hex or is ambiguous, a confirmation that cannot be asked). clap uses it for its own errors.
pub const EXIT_USAGE: u8 = 2;

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing to report.
    Clean,
    /// Problems were found and reported.
    Problems,
}

impl Status {
    pub fn problems_if(yes: bool) -> Status {
        if yes {
            Status::Problems
        } else {
            Status::Clean
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Status::Clean => EXIT_OK,
            Status::Problems => EXIT_PROBLEMS,
        })
    }
}

/// A command that could not run, with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A failure while running (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_PROBLEMS,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<bucketcache::Error> for CliError {
    fn from(e: bucketcache::Error) -> Self {
        // The library's messages start with its name; the tool prints its own.
        let text = e.to_string();
        CliError::failed(text.strip_prefix("bucketcache: ").unwrap_or(&text).to_owned())
    }
}

pub type CliResult<T = Status> = Result<T, CliError>;
