//! `bucketcache ls DIR`: one line per entry.

use std::cmp::Reverse;
use std::collections::HashMap;

use bucketcache::entry::EntryHeader;
use serde::Serialize;

use crate::cli::{LsArgs, SortKey};
use crate::error::{CliResult, Status};
use crate::output::{emit, emit_json, warn, Table};
use crate::scan::{self, Class, Depth};
use crate::units::{count, format_size, format_time, relative, rfc3339};

/// One entry, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Row {
    hash: String,
    function: Option<String>,
    backend: String,
    size: u64,
    written: String,
    written_ms: i64,
    /// `null` when the entry never expires.
    expires: Option<String>,
    expires_ms: Option<i64>,
    expired: bool,
    /// The code version that wrote the entry (32 hex digits); `null` when not recorded.
    code: Option<String>,
    /// An entry of a superseded code version of its function.
    superseded: bool,
    path: String,
    /// How long the value took to compute, in µs; `null` when its writer did not record it.
    cost_us: Option<u64>,
}

/// The code versions of each function's entries, to tell superseded ones: for a function whose entries carry more
/// than one code version, every version but the one of its most recently written entry is superseded. (Entries
/// without a function path or a code version are never superseded.)
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// Per function: the code version of its newest entry, and when that entry was written.
    newest: HashMap<String, ([u8; 16], i64)>,
}

impl Versions {
    /// Counts one entry.
    pub(crate) fn add(&mut self, h: &EntryHeader) {
        let (Some(function), Some(code)) = (&h.function, h.code) else {
            return;
        };
        let newest = self.newest.entry(function.clone()).or_insert((code, h.written_ms));
        if h.written_ms > newest.1 || (h.written_ms == newest.1 && code > newest.0) {
            *newest = (code, h.written_ms);
        }
    }

    /// Whether `h` is an entry of a superseded code version.
    pub(crate) fn superseded(&self, function: Option<&str>, code: Option<[u8; 16]>) -> bool {
        match (function, code) {
            (Some(f), Some(c)) => self.newest.get(f).is_some_and(|(newest, _)| *newest != c),
            _ => false,
        }
    }
}

fn hex16(code: [u8; 16]) -> String {
    code.iter().map(|b| format!("{b:02x}")).collect()
}

impl Row {
    fn new(h: &EntryHeader, size: u64, expired: bool, path: String) -> Row {
        Row {
            hash: h.key.to_hex(),
            function: h.function.clone(),
            backend: h.backend.clone(),
            size,
            written: rfc3339(h.written_ms),
            written_ms: h.written_ms,
            expires: h.expires_ms.map(rfc3339),
            expires_ms: h.expires_ms,
            expired,
            code: h.code.map(hex16),
            superseded: false,
            path,
            cost_us: h.cost_us,
        }
    }
}

pub fn run(args: &LsArgs, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(&args.dir)?;
    let mut rows = Vec::new();
    let mut problems = 0u64;
    let mut corrupt = 0u64;
    let mut functions = std::collections::BTreeSet::new();
    let mut versions = Versions::default();
    let mut codes = Vec::new();
    let errors = scan::walk(&entries_dir, Depth::Headers, "listing", |item| {
        let expired = matches!(item.class, Class::Expired(_));
        match &item.class {
            Class::Live(h) | Class::Expired(h) => {
                if let Some(f) = &h.function {
                    functions.insert(f.clone());
                }
                versions.add(h);
                if args.expired && !expired {
                    return;
                }
                if args.function.as_ref().is_some_and(|f| h.function.as_ref() != Some(f)) {
                    return;
                }
                rows.push(Row::new(h, item.len, expired, item.path.display().to_string()));
                codes.push(h.code);
            }
            Class::Corrupt(_) => corrupt += 1,
            Class::Unreadable(e) => {
                warn(format_args!("cannot read `{}`: {e}", item.path.display()));
                problems += 1;
            }
            Class::Temp { .. } | Class::Other => {}
        }
    })?;
    if let Some(f) = &args.function {
        if !functions.contains(f) {
            return Err(super::no_such_function(f, &functions));
        }
    }
    for (row, code) in rows.iter_mut().zip(codes) {
        row.superseded = versions.superseded(row.function.as_deref(), code);
    }
    if args.superseded {
        rows.retain(|r| r.superseded);
    }
    match args.sort {
        SortKey::Size => rows.sort_by_key(|r| (Reverse(r.size), r.written_ms)),
        SortKey::Written => rows.sort_by_key(|r| (r.written_ms, r.hash.clone())),
        SortKey::Expires => rows.sort_by_key(|r| (r.expires_ms.unwrap_or(i64::MAX), r.written_ms)),
    }
    if args.reverse {
        rows.reverse();
    }
    if json {
        emit_json(&rows)?;
    } else {
        emit(&table(&rows))?;
        if corrupt > 0 {
            eprintln!(
                "({} not listed: see `bucketcache verify`)",
                count(corrupt, "corrupt file", "corrupt files")
            );
        }
    }
    Ok(Status::problems_if(problems > 0 || errors.unlistable_dirs > 0))
}

fn table(rows: &[Row]) -> String {
    let now = scan::now_ms();
    let mut t = Table::new(&[
        ("HASH", false),
        ("SIZE", true),
        ("WRITTEN", false),
        ("EXPIRES", false),
        ("COST", true),
        ("BACKEND", false),
        ("CODE", false),
        ("FUNCTION", false),
    ]);
    for r in rows {
        let expires = match r.expires_ms {
            None => "never".to_owned(),
            Some(ms) if r.expired => format!("{} (expired)", format_time(ms)),
            Some(ms) => format!("{} ({})", format_time(ms), relative(ms, now)),
        };
        t.row(vec![
            r.hash[..16].to_owned(),
            format_size(r.size),
            format_time(r.written_ms),
            expires,
            format_cost(r.cost_us),
            r.backend.clone(),
            match (&r.code, r.superseded) {
                (Some(c), true) => format!("{} (superseded)", &c[..8]),
                (Some(c), false) => c[..8].to_owned(),
                (None, _) => "-".to_owned(),
            },
            r.function.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    t.render()
}

/// A recorded cost (µs) for people: `1.5 s`, `230 ms`, `42 µs`; `-` when not recorded.
pub(crate) fn format_cost(cost_us: Option<u64>) -> String {
    match cost_us {
        None => "-".to_owned(),
        Some(us) if us >= 1_000_000 => format!("{:.1} s", us as f64 / 1e6),
        Some(us) if us >= 1_000 => format!("{} ms", us / 1_000),
        Some(us) => format!("{us} µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_cost;

    #[test]
    fn costs_read_in_their_unit() {
        assert_eq!(format_cost(None), "-");
        assert_eq!(format_cost(Some(42)), "42 µs");
        assert_eq!(format_cost(Some(230_400)), "230 ms");
        assert_eq!(format_cost(Some(1_500_000)), "1.5 s");
    }
}
