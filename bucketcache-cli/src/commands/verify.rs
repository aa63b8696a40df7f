//! `bucketcache verify DIR [--fix]`: every entry's header, length, key and checksum.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{remove, FileProblem, Tally};
use crate::error::{CliResult, Status};
use crate::output::{emit, emit_json, warn};
use crate::scan::{self, Class, Depth};
use crate::units::{count, format_size};

#[derive(Debug, Serialize)]
struct CorruptFile {
    path: String,
    reason: String,
    bytes: u64,
    /// Whether `--fix` removed it.
    removed: bool,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    /// Files named like entries that were checked.
    checked: Tally,
    /// Valid entries (expired ones included).
    intact: Tally,
    corrupt: Vec<CorruptFile>,
    unreadable: Vec<FileProblem>,
    /// Corrupt files removed by `--fix`.
    fixed: u64,
    /// Corrupt files `--fix` could not remove.
    failed: Vec<FileProblem>,
}

pub fn run(dir: &Path, fix: bool, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(dir)?;
    let mut r = Report::default();
    let errors = scan::walk(&entries_dir, Depth::Checksums, "verifying", |item| match &item.class {
        Class::Live(_) | Class::Expired(_) => {
            r.checked.add(item.len);
            r.intact.add(item.len);
        }
        Class::Corrupt(reason) => {
            r.checked.add(item.len);
            let mut removed = false;
            if fix {
                match remove(&item.file) {
                    Ok(_) => {
                        removed = true;
                        r.fixed += 1;
                    }
                    Err(e) => {
                        warn(format_args!("cannot remove `{}`: {e}", item.path.display()));
                        r.failed.push(FileProblem {
                            path: item.path.display().to_string(),
                            error: e.to_string(),
                        });
                    }
                }
            }
            r.corrupt.push(CorruptFile {
                path: item.path.display().to_string(),
                reason: reason.to_string(),
                bytes: item.len,
                removed,
            });
        }
        Class::Unreadable(e) => {
            r.checked.add(0);
            warn(format_args!("cannot read `{}`: {e}", item.path.display()));
            r.unreadable.push(FileProblem {
                path: item.path.display().to_string(),
                error: e.to_string(),
            });
        }
        Class::Temp { .. } | Class::Other => {}
    })?;
    let status = Status::problems_if(!r.corrupt.is_empty() || !r.unreadable.is_empty() || errors.unlistable_dirs > 0);
    if json {
        emit_json(&r)?;
    } else {
        emit(&human(&r, dir, fix))?;
    }
    Ok(status)
}

fn human(r: &Report, dir: &Path, fix: bool) -> String {
    let mut out = format!(
        "Checked {} ({}): {} intact, {} corrupt",
        count(r.checked.count, "entry file", "entry files"),
        format_size(r.checked.bytes),
        r.intact.count,
        r.corrupt.len()
    );
    if !r.unreadable.is_empty() {
        let _ = write!(out, ", {} unreadable", r.unreadable.len());
    }
    out.push_str(".\n");
    for c in &r.corrupt {
        let fixed = if c.removed { " [removed]" } else { "" };
        let _ = writeln!(out, "corrupt: {}: {}{fixed}", c.path, c.reason);
    }
    if !r.corrupt.is_empty() && !fix {
        let _ = writeln!(out, "Run `bucketcache verify {} --fix` to remove them.", dir.display());
    }
    out
}
