//! `bucketcache prune DIR [--older-than D] [--max-size S] [--dry-run]`.
//!
//! Removes what the runtime's `prune_directory` removes (expired entries, files named like entries whose header,
//! length or key is invalid, temporary files whose writer is gone or that are over an hour old), then entries
//! written longer ago than `--older-than`, then the least recently written entries until the entry files total at
//! most `--max-size` (the same order a size-bounded bucket evicts in). With `--superseded`, also the entries of
//! superseded code versions (see `ls`), before the size limit applies.

use bucketcache::scan::ScannedFile;
use serde::Serialize;

use super::{remove, FileProblem, Tally};
use crate::cli::PruneArgs;
use crate::error::{CliResult, Status};
use crate::output::{emit, emit_json, warn};
use crate::scan::{self, Class, Depth};
use crate::units::{count, format_size};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Reason {
    Expired,
    TempLeftover,
    Corrupt,
    OlderThan,
    Superseded,
    MaxSize,
}

#[derive(Debug, Serialize)]
struct Removal {
    path: String,
    reason: Reason,
    bytes: u64,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    dry_run: bool,
    /// Everything removed (or, with `--dry-run`, that would be).
    removed: Tally,
    expired: Tally,
    temp_files: Tally,
    corrupt: Tally,
    older_than: Tally,
    superseded: Tally,
    max_size: Tally,
    /// The entries left afterwards.
    remaining: Tally,
    failed: Vec<FileProblem>,
    files: Vec<Removal>,
}

pub fn run(args: &PruneArgs, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(&args.dir)?;
    let now = scan::now_ms();
    let cutoff = args
        .older_than
        .map(|d| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let mut planned: Vec<(ScannedFile, u64, Reason)> = Vec::new();
    let mut kept: Vec<(i64, u64, ScannedFile)> = Vec::new();
    let mut problems = 0u64;
    let mut versions = super::ls::Versions::default();
    // The function and code version of each kept entry, for `--superseded`.
    let mut kept_codes: Vec<(Option<String>, Option<[u8; 16]>)> = Vec::new();
    let errors = scan::walk(&entries_dir, Depth::Headers, "pruning", |item| match item.class {
        Class::Expired(_) => planned.push((item.file, item.len, Reason::Expired)),
        Class::Temp { stale: true } => planned.push((item.file, item.len, Reason::TempLeftover)),
        Class::Corrupt(ref c) if scan::prunable(c) => planned.push((item.file, item.len, Reason::Corrupt)),
        Class::Live(ref h) if cutoff.is_some_and(|c| h.written_ms < c) => {
            planned.push((item.file, item.len, Reason::OlderThan))
        }
        Class::Live(ref h) => {
            versions.add(h);
            kept_codes.push((h.function.clone(), h.code));
            kept.push((h.written_ms, item.len, item.file));
        }
        Class::Unreadable(ref e) => {
            warn(format_args!("cannot read `{}`: {e}", item.path.display()));
            problems += 1;
        }
        Class::Temp { stale: false } | Class::Corrupt(_) | Class::Other => {}
    })?;
    if args.superseded {
        // Entries removed as older than the limit still count for which version is newest: they were written
        // earlier than the kept ones, so they never make a kept version superseded.
        let mut still = Vec::with_capacity(kept.len());
        for (k, (function, code)) in kept.into_iter().zip(kept_codes) {
            if versions.superseded(function.as_deref(), code) {
                planned.push((k.2, k.1, Reason::Superseded));
            } else {
                still.push(k);
            }
        }
        kept = still;
    }
    if let Some(max) = args.max_size {
        kept.sort_by(|a, b| (a.0, a.1, &a.2.path).cmp(&(b.0, b.1, &b.2.path)));
        let mut total: u64 = kept.iter().map(|k| k.1).sum();
        let mut oldest = kept.drain(..).collect::<std::collections::VecDeque<_>>();
        while total > max {
            let Some((_, len, file)) = oldest.pop_front() else {
                break;
            };
            total -= len;
            planned.push((file, len, Reason::MaxSize));
        }
        kept = oldest.into();
    }

    let mut report = Report {
        dry_run: args.dry_run,
        ..Report::default()
    };
    for (file, bytes, reason) in planned {
        let path = &file.path;
        if !args.dry_run {
            match remove(&file) {
                Ok(true) => {}
                Ok(false) => continue, // removed meanwhile, by someone else
                Err(e) => {
                    warn(format_args!("cannot remove `{}`: {e}", path.display()));
                    report.failed.push(FileProblem {
                        path: path.display().to_string(),
                        error: e.to_string(),
                    });
                    continue;
                }
            }
        }
        report.removed.add(bytes);
        match reason {
            Reason::Expired => report.expired.add(bytes),
            Reason::TempLeftover => report.temp_files.add(bytes),
            Reason::Corrupt => report.corrupt.add(bytes),
            Reason::OlderThan => report.older_than.add(bytes),
            Reason::Superseded => report.superseded.add(bytes),
            Reason::MaxSize => report.max_size.add(bytes),
        }
        report.files.push(Removal {
            path: path.display().to_string(),
            reason,
            bytes,
        });
    }
    for (_, len, _) in &kept {
        report.remaining.add(*len);
    }
    let status = Status::problems_if(problems > 0 || !report.failed.is_empty() || errors.unlistable_dirs > 0);
    if json {
        emit_json(&report)?;
    } else {
        emit(&human(&report))?;
    }
    Ok(status)
}

fn human(r: &Report) -> String {
    let verb = if r.dry_run { "Would remove" } else { "Removed" };
    let mut parts = Vec::new();
    for (t, what) in [
        (r.expired, "expired"),
        (r.temp_files, "temporary leftover"),
        (r.corrupt, "corrupt"),
        (r.older_than, "older than the limit"),
        (r.superseded, "of superseded code versions"),
        (r.max_size, "over the size limit"),
    ] {
        if t.count > 0 {
            let plural = if what == "temporary leftover" {
                "temporary leftovers"
            } else {
                what
            };
            parts.push(count(t.count, what, plural));
        }
    }
    let detail = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    };
    let mut out = format!(
        "{verb} {} ({}){detail}.\n{} ({}) remain.\n",
        count(r.removed.count, "file", "files"),
        format_size(r.removed.bytes),
        count(r.remaining.count, "entry", "entries"),
        format_size(r.remaining.bytes)
    );
    if !r.failed.is_empty() {
        out.push_str(&format!(
            "{} could not be removed.\n",
            count(r.failed.len() as u64, "file", "files")
        ));
    }
    out
}
