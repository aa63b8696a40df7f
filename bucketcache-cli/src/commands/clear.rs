//! `bucketcache clear DIR [--function PATH] [--yes]`.
//!
//! Without `--function`: every file named like an entry (valid, expired or corrupt) and every stale temporary
//! file; temporary files of live writers and files the library does not name are left. With `--function`: the
//! valid entries recorded for that function. Clearing everything asks first unless `--yes`; with no terminal to
//! ask on, it refuses (exit code 2).

use std::path::Path;

use bucketcache::scan::ScannedFile;

use serde::Serialize;

use super::{remove, FileProblem, Tally};
use crate::error::{CliResult, Status};
use crate::output::{emit, emit_json, warn};
use crate::scan::{self, Class, Depth};
use crate::units::{count, format_size};

#[derive(Debug, Default, Serialize)]
struct Report {
    /// The function whose entries were removed; `null` for all entries.
    function: Option<String>,
    removed: Tally,
    failed: Vec<FileProblem>,
}

pub fn run(dir: &Path, function: Option<&str>, yes: bool, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(dir)?;
    let mut targets: Vec<(ScannedFile, u64)> = Vec::new();
    let mut entries = Tally::default();
    let mut problems = 0u64;
    let mut functions = std::collections::BTreeSet::new();
    let errors = scan::walk(&entries_dir, Depth::Headers, "listing", |item| {
        if let Class::Live(h) | Class::Expired(h) = &item.class {
            if let Some(f) = &h.function {
                functions.insert(f.clone());
            }
        }
        match (&item.class, function) {
            (Class::Live(h) | Class::Expired(h), Some(f)) if h.function.as_deref() == Some(f) => {
                entries.add(item.len);
                targets.push((item.file, item.len));
            }
            (Class::Live(_) | Class::Expired(_) | Class::Corrupt(_), None) => {
                entries.add(item.len);
                targets.push((item.file, item.len));
            }
            (Class::Temp { stale: true }, None) => targets.push((item.file, item.len)),
            (Class::Unreadable(e), _) => {
                warn(format_args!("cannot read `{}`: {e}", item.path.display()));
                problems += 1;
            }
            _ => {}
        }
    })?;
    if let Some(f) = function {
        if !functions.contains(f) {
            return Err(super::no_such_function(f, &functions));
        }
    }
    if function.is_none() && !yes && !targets.is_empty() {
        confirm(dir, entries)?;
    }
    let mut report = Report {
        function: function.map(str::to_owned),
        ..Report::default()
    };
    for (file, len) in targets {
        let path = &file.path;
        match remove(&file) {
            Ok(true) => report.removed.add(len),
            Ok(false) => {}
            Err(e) => {
                warn(format_args!("cannot remove `{}`: {e}", path.display()));
                report.failed.push(FileProblem {
                    path: path.display().to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
    let status = Status::problems_if(problems > 0 || !report.failed.is_empty() || errors.unlistable_dirs > 0);
    if json {
        emit_json(&report)?;
    } else {
        let whose = function.map_or_else(String::new, |f| format!(" of `{f}`"));
        emit(&format!(
            "Removed {}{whose} ({}).\n",
            count(report.removed.count, "file", "files"),
            format_size(report.removed.bytes)
        ))?;
    }
    Ok(status)
}

/// Asks on the terminal before everything is removed.
fn confirm(dir: &Path, entries: Tally) -> CliResult<()> {
    super::confirm(
        &format!(
            "Remove all {} entries ({}) from `{}`?",
            entries.count,
            format_size(entries.bytes),
            dir.display()
        ),
        "refusing to remove every entry without confirmation: there is no terminal to ask on; pass `--yes` to \
         clear anyway, or `--function PATH` to clear one function's entries",
    )
}
