//! `bucketcache shared [--url URL] [--namespace NS] [--clear [--yes]]`: a Redis shared tier's namespace.
//!
//! Lists what the namespace holds (`SCAN MATCH <ns>:*`): keys, bytes, entries per function (from each entry's
//! verified header), live leases, and keys that are not entries of this format (garbage or another version). With
//! `--clear`, removes every key of the namespace (asking first unless `--yes`). The URL and namespace default to
//! `BUCKETCACHE_REDIS_URL` and `BUCKETCACHE_REDIS_NAMESPACE` (default `bucketcache`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Tally;
use crate::cli::SharedArgs;
use crate::error::{CliError, CliResult, Status};
use crate::output::{emit, emit_json, Table};
use crate::units::{count, format_size};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of each entry read to parse its header (a longer function path is reported as such, not read).
const HEADER_READ: usize = 4096;

#[derive(Debug, Default, Serialize)]
struct Report {
    namespace: String,
    keys: u64,
    bytes: u64,
    entries: Tally,
    functions: BTreeMap<String, Tally>,
    leases: u64,
    /// Keys under `<ns>:e:` that are not valid entry headers of this format.
    foreign: Tally,
    /// Keys of the namespace that the tier does not write (neither `e:` nor `l:`).
    other: u64,
    /// With `--clear`: keys removed.
    removed: Option<u64>,
}

fn connect(url: &str) -> CliResult<redis::Connection> {
    let shown = bucketcache::tier::redact_url(url);
    let client = redis::Client::open(url).map_err(|e| {
        CliError::usage(format!(
            "invalid Redis URL `{shown}`: {e}; expected redis://host[:port][/db]"
        ))
    })?;
    let con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| CliError::failed(format!("cannot reach Redis at `{shown}`: {e}")))?;
    con.set_read_timeout(Some(OP_TIMEOUT))
        .and_then(|()| con.set_write_timeout(Some(OP_TIMEOUT)))
        .map_err(|e| CliError::failed(format!("Redis at `{shown}`: {e}")))?;
    Ok(con)
}

fn failed(e: redis::RedisError) -> CliError {
    CliError::failed(format!("Redis: {e}"))
}

fn scan(con: &mut redis::Connection, ns: &str) -> CliResult<Vec<String>> {
    let pattern = format!("{ns}:*");
    let iter: redis::Iter<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(con)
        .map_err(failed)?;
    let mut keys = Vec::new();
    for k in iter {
        keys.push(k.map_err(failed)?);
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

pub fn run(args: &SharedArgs, json: bool) -> CliResult {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => std::env::var("BUCKETCACHE_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                CliError::usage("no Redis URL: pass `--url redis://host:port/db` or set BUCKETCACHE_REDIS_URL")
            })?,
    };
    let ns = args
        .namespace
        .clone()
        .or_else(|| {
            std::env::var("BUCKETCACHE_REDIS_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "bucketcache".to_owned());
    if ns.is_empty() || ns.contains(['*', '?', '[', ':']) {
        return Err(CliError::usage(format!(
            "invalid namespace {ns:?}: no `:`, `*`, `?` or `[` (it is matched as `<namespace>:*`)"
        )));
    }
    let mut con = connect(&url)?;
    let keys = scan(&mut con, &ns)?;
    let mut report = Report {
        namespace: ns.clone(),
        ..Report::default()
    };
    let (entry_prefix, lease_prefix) = (format!("{ns}:e:"), format!("{ns}:l:"));
    for key in &keys {
        let len: u64 = redis::cmd("STRLEN").arg(key).query(&mut con).unwrap_or(0);
        report.keys += 1;
        report.bytes += len;
        if key.starts_with(&lease_prefix) {
            report.leases += 1;
        } else if key.starts_with(&entry_prefix) {
            let head: Vec<u8> = redis::cmd("GETRANGE")
                .arg(key)
                .arg(0)
                .arg(HEADER_READ - 1)
                .query(&mut con)
                .unwrap_or_default();
            match bucketcache::entry::parse_header(&head) {
                Ok(h) if h.file_len() == len && key.ends_with(&h.key.to_hex()) => {
                    report.entries.add(len);
                    let f = h.function.unwrap_or_else(|| "(no function)".to_owned());
                    report.functions.entry(f).or_default().add(len);
                }
                _ => report.foreign.add(len),
            }
        } else {
            report.other += 1;
        }
    }
    if args.clear {
        if !args.yes && report.keys > 0 {
            confirm(&bucketcache::tier::redact_url(&url), &ns, report.keys, report.bytes)?;
        }
        let mut removed = 0u64;
        for chunk in keys.chunks(500) {
            let n: u64 = redis::cmd("UNLINK").arg(chunk).query(&mut con).map_err(failed)?;
            removed += n;
        }
        report.removed = Some(removed);
    }
    if json {
        emit_json(&report)?;
    } else {
        emit(&render(&report, &bucketcache::tier::redact_url(&url)))?;
    }
    Ok(Status::problems_if(report.foreign.count > 0))
}

fn render(r: &Report, url: &str) -> String {
    let mut out = format!("Namespace `{}` at {url}\n", r.namespace);
    out += &format!("  keys:     {} ({})\n", r.keys, format_size(r.bytes));
    out += &format!("  entries:  {}\n", r.entries.human());
    out += &format!("  leases:   {} (callers computing now)\n", r.leases);
    if r.foreign.count > 0 {
        out += &format!(
            "  foreign:  {} (not entries of this format: garbage or another version)\n",
            r.foreign.human()
        );
    }
    if r.other > 0 {
        out += &format!("  other:    {} keys the cache does not write\n", r.other);
    }
    if !r.functions.is_empty() {
        let mut t = Table::new(&[("function", false), ("entries", true), ("bytes", true)]);
        for (f, tally) in &r.functions {
            t.row(vec![f.clone(), tally.count.to_string(), format_size(tally.bytes)]);
        }
        out += "\n";
        out += &t.render();
    }
    if let Some(n) = r.removed {
        out += &format!("\nRemoved {}.\n", count(n, "key", "keys"));
    }
    out
}

fn confirm(url: &str, ns: &str, keys: u64, bytes: u64) -> CliResult<()> {
    super::confirm(
        &format!(
            "Remove all {keys} keys ({}) of namespace `{ns}` at {url}?",
            format_size(bytes)
        ),
        "refusing to clear a namespace without confirmation: there is no terminal to ask on; pass `--yes`",
    )
}
