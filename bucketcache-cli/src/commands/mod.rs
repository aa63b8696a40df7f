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

/// Asks `question` on the terminal (stderr) and reads y/N from stdin; without a terminal, the usage error
/// `no_terminal` (exit code 2); any answer but yes cancels (exit code 1).
pub fn confirm(question: &str, no_terminal: &str) -> CliResult<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(crate::error::CliError::usage(no_terminal));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| crate::error::CliError::failed(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(crate::error::CliError::failed("cancelled; nothing was removed")),
    }
}

/// The error for `--function NAME` matching no entry: says so and lists the closest recorded names (exit code 1).
pub fn no_such_function(wanted: &str, seen: &std::collections::BTreeSet<String>) -> crate::error::CliError {
    let close = close_names(wanted, seen);
    let hint = if seen.is_empty() {
        " (the bucket records no function: entries written with `insert` have none)".to_owned()
    } else if close.is_empty() {
        format!(
            "; recorded functions: {} (see `bucketcache stats`)",
            list(seen.iter().take(8))
        )
    } else {
        format!("; did you mean {}?", list(close.iter()))
    };
    crate::error::CliError::failed(format!("no entry is recorded for function `{wanted}`{hint}"))
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Up to five recorded names close to `wanted`: the same last segment, one containing the other, or a small edit
/// distance (async functions recorded by older builds as `f::{{closure}}` included).
fn close_names(wanted: &str, seen: &std::collections::BTreeSet<String>) -> Vec<String> {
    let last = |s: &str| {
        s.rsplit("::")
            .find(|p| !p.is_empty() && !p.starts_with('{'))
            .unwrap_or(s)
            .to_owned()
    };
    let w_last = last(wanted);
    let mut scored: Vec<(usize, &String)> = seen
        .iter()
        .filter_map(|n| {
            let d = edit_distance(wanted, n);
            let close =
                last(n) == w_last || n.contains(wanted) || wanted.contains(n.as_str()) || d <= 3.max(wanted.len() / 4);
            close.then_some((d, n))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
