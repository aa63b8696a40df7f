//! `bucketcache stats DIR`: what a bucket holds, in totals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{FileProblem, Tally};
use crate::error::{CliResult, Status};
use crate::output::{emit, emit_json, warn, Table};
use crate::scan::{self, Class, Depth};
use crate::units::{format_size, format_time, relative, rfc3339};

#[derive(Debug, Default, Serialize)]
struct Stats {
    dir: String,
    /// Valid entries, expired ones included.
    entries: Tally,
    /// The expired subset of `entries`.
    expired: Tally,
    /// The entries of superseded code versions (`ls --superseded` lists them, `prune --superseded` removes them).
    superseded: Tally,
    /// Files named like entries that are not valid ones (by header and length; `verify` checks checksums).
    corrupt: Tally,
    temp_files: Tally,
    /// The temporary files whose writer is gone (or that are over an hour old): `prune` removes them.
    stale_temp_files: Tally,
    other_files: Tally,
    unreadable: Vec<FileProblem>,
    /// Every file under `entries-v2/`.
    total_bytes: u64,
    oldest_written: Option<String>,
    newest_written: Option<String>,
    oldest_written_ms: Option<i64>,
    newest_written_ms: Option<i64>,
    functions: Vec<Group>,
    backends: Vec<Group>,
    /// Risks found in the bucket directory itself (e.g. writable by other users), each with its fix.
    warnings: Vec<String>,
    /// The recorded costs (the body's wall time) of the entries that have one, in µs: what one hit on each saves.
    /// The CLI cannot count hits; the time a running process saved is its own statistic.
    recorded_cost_us: u64,
    /// How many entries recorded a cost.
    entries_with_cost: u64,
}

#[derive(Debug, Serialize)]
struct Group {
    /// The function path or backend id; `null` for entries recorded without a function.
    name: Option<String>,
    count: u64,
    bytes: u64,
    /// The recorded costs of the group's entries, in µs (entries without one count nothing).
    cost_us: u64,
}

fn groups(map: BTreeMap<Option<String>, Tally>) -> Vec<Group> {
    let mut out: Vec<Group> = map
        .into_iter()
        .map(|(name, t)| Group {
            name,
            count: t.count,
            bytes: t.bytes,
            cost_us: 0,
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    out
}

pub fn run(dir: &Path, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(dir)?;
    let mut s = Stats {
        dir: dir.display().to_string(),
        ..Stats::default()
    };
    let mut functions: BTreeMap<Option<String>, Tally> = BTreeMap::new();
    let mut backends: BTreeMap<Option<String>, Tally> = BTreeMap::new();
    let mut costs: BTreeMap<Option<String>, u64> = BTreeMap::new();
    if let Some(risk) = bucketcache::scan::insecure_dir_warning(dir) {
        warn(format_args!("{risk}"));
        s.warnings.push(risk);
    }
    let mut versions = super::ls::Versions::default();
    let mut codes: Vec<(Option<String>, Option<[u8; 16]>, u64)> = Vec::new();
    let errors = scan::walk(&entries_dir, Depth::Headers, "stats", |item| {
        s.total_bytes += item.len;
        match &item.class {
            Class::Live(h) | Class::Expired(h) => {
                s.entries.add(item.len);
                versions.add(h);
                codes.push((h.function.clone(), h.code, item.len));
                if matches!(item.class, Class::Expired(_)) {
                    s.expired.add(item.len);
                }
                functions.entry(h.function.clone()).or_default().add(item.len);
                if let Some(us) = h.cost_us {
                    s.recorded_cost_us = s.recorded_cost_us.saturating_add(us);
                    s.entries_with_cost += 1;
                    let c = costs.entry(h.function.clone()).or_default();
                    *c = c.saturating_add(us);
                }
                backends.entry(Some(h.backend.clone())).or_default().add(item.len);
                s.oldest_written_ms = Some(s.oldest_written_ms.map_or(h.written_ms, |o| o.min(h.written_ms)));
                s.newest_written_ms = Some(s.newest_written_ms.map_or(h.written_ms, |o| o.max(h.written_ms)));
            }
            Class::Corrupt(_) => s.corrupt.add(item.len),
            Class::Temp { stale } => {
                s.temp_files.add(item.len);
                if *stale {
                    s.stale_temp_files.add(item.len);
                }
            }
            Class::Unreadable(e) => {
                warn(format_args!("cannot read `{}`: {e}", item.path.display()));
                s.unreadable.push(FileProblem {
                    path: item.path.display().to_string(),
                    error: e.to_string(),
                });
            }
            Class::Other => s.other_files.add(item.len),
        }
    })?;
    for (function, code, len) in codes {
        if versions.superseded(function.as_deref(), code) {
            s.superseded.add(len);
        }
    }
    s.oldest_written = s.oldest_written_ms.map(rfc3339);
    s.newest_written = s.newest_written_ms.map(rfc3339);
    s.functions = groups(functions);
    for f in &mut s.functions {
        f.cost_us = costs.get(&f.name).copied().unwrap_or(0);
    }
    s.backends = groups(backends);
    let status = Status::problems_if(!s.unreadable.is_empty() || errors.unlistable_dirs > 0);
    if json {
        emit_json(&s)?;
    } else {
        emit(&human(&s))?;
    }
    Ok(status)
}

fn human(s: &Stats) -> String {
    let now = scan::now_ms();
    let mut out = String::new();
    let _ = writeln!(out, "Bucket:          {}", s.dir);
    let _ = writeln!(
        out,
        "Entries:         {}, of which {} expired",
        s.entries.human(),
        s.expired.human()
    );
    if s.superseded.count > 0 {
        let _ = writeln!(
            out,
            "Superseded:      {} (older code versions: `ls --superseded`, `prune --superseded`)",
            s.superseded.human()
        );
    }
    let _ = writeln!(out, "Corrupt files:   {}", s.corrupt.human());
    let _ = writeln!(
        out,
        "Temporary files: {}, of which {} stale",
        s.temp_files.human(),
        s.stale_temp_files.count
    );
    if s.other_files.count > 0 {
        let _ = writeln!(out, "Other files:     {}", s.other_files.human());
    }
    if !s.unreadable.is_empty() {
        let _ = writeln!(out, "Unreadable:      {}", s.unreadable.len());
    }
    let _ = writeln!(out, "Total:           {}", format_size(s.total_bytes));
    for (label, ms) in [
        ("Oldest write:", s.oldest_written_ms),
        ("Newest write:", s.newest_written_ms),
    ] {
        if let Some(ms) = ms {
            let _ = writeln!(out, "{label:<16} {} ({})", format_time(ms), relative(ms, now));
        }
    }
    if s.entries_with_cost > 0 {
        let _ = writeln!(
            out,
            "Recorded cost:   {} over {} (the time one hit on each saves)",
            super::ls::format_cost(Some(s.recorded_cost_us)),
            crate::units::count(s.entries_with_cost, "entry", "entries")
        );
    }
    if !s.backends.is_empty() {
        let list: Vec<String> = s
            .backends
            .iter()
            .map(|b| format!("{} {}", b.name.as_deref().unwrap_or("?"), b.count))
            .collect();
        let _ = writeln!(out, "Backends:        {}", list.join(", "));
    }
    if !s.functions.is_empty() {
        let _ = writeln!(out, "\nBy function:");
        let mut t = Table::new(&[("ENTRIES", true), ("SIZE", true), ("COST", true), ("FUNCTION", false)]);
        for f in &s.functions {
            t.row(vec![
                f.count.to_string(),
                format_size(f.bytes),
                super::ls::format_cost((f.cost_us > 0).then_some(f.cost_us)),
                f.name.clone().unwrap_or_else(|| "(none)".to_owned()),
            ]);
        }
        for line in t.render().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if s.corrupt.count > 0 {
        let _ = writeln!(
            out,
            "\nRun `bucketcache verify {} --fix` to remove corrupt files.",
            s.dir
        );
    }
    out
}
