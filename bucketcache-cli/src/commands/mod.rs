//! One module per command; `run` dispatches.

mod clear;
mod ls;
mod prune;
mod shared;
mod show;
mod stats;
mod verify;

use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::error::CliResult;

/// Runs the command the command line names.
pub fn run(cli: Cli) -> CliResult {
    let json = cli.json;
    match cli.command {
        Command::Stats { dir } => stats::run(&dir, json),
        Command::Ls(args) => ls::run(&args, json),
        Command::Show { dir, hash } => show::run(&dir, &hash, json),
        Command::Prune(args) => prune::run(&args, json),
        Command::Verify { dir, fix } => verify::run(&dir, fix, json),
        Command::Clear { dir, function, yes } => clear::run(&dir, function.as_deref(), yes, json),
        Command::Shared(args) => shared::run(&args, json),
    }
}

/// A number of files and their bytes.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }

    /// `3 (1.2 KiB)`.
    pub fn human(&self) -> String {
        format!("{} ({})", self.count, crate::units::format_size(self.bytes))
    }
}

/// A file that could not be read or removed, for JSON output.
#[derive(Debug, Serialize)]
pub struct FileProblem {
    pub path: String,
    pub error: String,
}

/// Removes a walked file through the handle of the directory it was found in (never by its path, which a swapped
/// directory could redirect); `Ok(false)` when it was already gone.
pub fn remove(file: &bucketcache::scan::ScannedFile) -> std::io::Result<bool> {
    file.remove()
}
