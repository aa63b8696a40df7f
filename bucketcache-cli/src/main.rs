//! `bucketcache`: inspect and manage the directories of
//! [bucketcache](https://docs.rs/bucketcache) buckets from the command line.
//!
//! ```text
//! bucketcache stats  DIR
//! bucketcache ls     DIR [--function PATH] [--expired] [--sort size|written|expires] [--reverse]
//! bucketcache show   DIR HASH
//! bucketcache prune  DIR [--older-than 7d] [--max-size 1GiB] [--dry-run]
//! bucketcache verify DIR [--fix]
//! bucketcache clear  DIR [--function PATH] [--yes]
//! ```
//!
//! Every command takes `--json` for machine-readable output on stdout. A progress bar is drawn on stderr when it
//! is a terminal, never when it is piped. Exit codes: 0 success, 1 problems found (corrupt or unreadable files,
//! a missing entry, a failed removal), 2 usage errors (including a directory that is not a bucket).
//!
//! Modules: `cli` (the clap model), `scan` (walks a bucket and classifies its files), one module per command in
//! `commands/`, `units` (sizes, durations, dates), `render` (payloads as JSON), `output` (tables, JSON).

mod cli;
mod commands;
mod error;
mod output;
mod render;
mod scan;
mod units;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(status) => status.exit_code(),
        Err(e) => {
            eprintln!("bucketcache: error: {e}");
            ExitCode::from(e.code)
        }
    }
}
