//! `bucketcache show DIR HASH`: one entry's header, and its value when the backend is self-describing.

use std::fmt::Write as _;
use std::path::Path;

use bucketcache::entry::{self, Corrupt};
use bucketcache::scan::{self as lib_scan, FileKind, ScannedFile};
use bucketcache::KeyHash;
use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, CliResult, Status};
use crate::output::{emit, emit_json};
use crate::render::{render, Rendered};
use crate::scan;
use crate::units::{format_size, format_time, relative, rfc3339};

/// Bytes of a payload shown in hex when it cannot be rendered.
const PREVIEW: usize = 64;

#[derive(Debug, Serialize)]
struct Shown {
    hash: String,
    path: String,
    format_version: u16,
    backend: String,
    function: Option<String>,
    written: String,
    written_ms: i64,
    expires: Option<String>,
    expires_ms: Option<i64>,
    expired: bool,
    file_size: u64,
    payload_size: u64,
    /// The value as JSON; `null` when it cannot be rendered (then `value_unavailable` says why).
    value: Option<Value>,
    value_unavailable: Option<String>,
    /// How long the value took to compute, in µs; `null` when its writer did not record it.
    cost_us: Option<u64>,
}

pub fn run(dir: &Path, hash: &str, json: bool) -> CliResult {
    let entries_dir = scan::entries_dir(dir)?;
    let (key, file) = resolve(&entries_dir, hash)?;
    let path = file.path.clone();
    // The library's regular-file, non-blocking, bounded read through the fan-out's handle: a FIFO, a device, a link
    // or a huge or sparse file is an error, never a hang.
    let bytes = file
        .read(lib_scan::DEFAULT_MAX_ENTRY_BYTES)
        .map_err(|e| CliError::failed(format!("cannot read `{}`: {e}", path.display())))?;
    let checked = entry::verify(&bytes).and_then(|(h, at)| {
        if h.key == key {
            Ok((h, at))
        } else {
            Err(Corrupt::KeyMismatch)
        }
    });
    let (header, payload_at) = checked.map_err(|reason| {
        CliError::failed(format!(
            "entry `{}` is corrupt ({reason}); `bucketcache verify {} --fix` removes it",
            path.display(),
            dir.display()
        ))
    })?;
    let payload = &bytes[payload_at..];
    let now = scan::now_ms();
    let (value, value_unavailable) = match render(&header.backend, payload) {
        Rendered::Value(v) => (Some(v), None),
        Rendered::Unavailable(why) => (None, Some(why)),
    };
    let shown = Shown {
        hash: key.to_hex(),
        path: path.display().to_string(),
        format_version: header.format_version,
        backend: header.backend.clone(),
        function: header.function.clone(),
        written: rfc3339(header.written_ms),
        written_ms: header.written_ms,
        expires: header.expires_ms.map(rfc3339),
        expires_ms: header.expires_ms,
        expired: header.is_expired_at(now),
        cost_us: header.cost_us,
        file_size: bytes.len() as u64,
        payload_size: payload.len() as u64,
        value,
        value_unavailable,
    };
    if json {
        emit_json(&shown)?;
    } else {
        emit(&human(&shown, payload, now))?;
    }
    Ok(Status::Clean)
}

/// Finds the entry a full hash or a unique prefix names.
fn resolve(entries_dir: &Path, hash: &str) -> CliResult<(KeyHash, ScannedFile)> {
    let prefix = hash.trim().to_ascii_lowercase();
    if prefix.len() < 2 || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CliError::usage(format!(
            "`{hash}` is not a key hash: give its 64 hex digits, or a unique prefix of at least 2 (as `ls` shows)"
        )));
    }
    let mut found = Vec::new();
    for file in lib_scan::walk_fan_out(entries_dir, &prefix[..2])? {
        // A fan-out that is a link or not ours is an error, never followed.
        let file = file?;
        if let (true, FileKind::Entry(key)) = (file.name.starts_with(&prefix), file.kind) {
            found.push((key, file));
        }
    }
    match found.len() {
        0 => Err(CliError::failed(format!(
            "no entry `{prefix}` in `{}`",
            entries_dir.parent().unwrap_or(entries_dir).display()
        ))),
        1 => Ok(found.remove(0)),
        n => Err(CliError::usage(format!(
            "`{prefix}` is ambiguous: {n} entries start with it; give more digits"
        ))),
    }
}

fn human(s: &Shown, payload: &[u8], now: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Hash:      {}", s.hash);
    let _ = writeln!(out, "Path:      {}", s.path);
    let _ = writeln!(out, "Backend:   {}", s.backend);
    let _ = writeln!(out, "Function:  {}", s.function.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "Written:   {} ({})",
        format_time(s.written_ms),
        relative(s.written_ms, now)
    );
    let expires = match s.expires_ms {
        None => "never".to_owned(),
        Some(ms) if s.expired => format!("{} (expired {}; reads as missing)", format_time(ms), relative(ms, now)),
        Some(ms) => format!("{} ({})", format_time(ms), relative(ms, now)),
    };
    let _ = writeln!(out, "Expires:   {expires}");
    let _ = writeln!(out, "Cost:      {}", super::ls::format_cost(s.cost_us));
    let _ = writeln!(
        out,
        "Size:      {} (payload {})",
        format_size(s.file_size),
        format_size(s.payload_size)
    );
    match (&s.value, &s.value_unavailable) {
        (Some(v), _) => {
            let text = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<{e}>"));
            let _ = writeln!(out, "Value:\n{text}");
        }
        (None, why) => {
            let _ = writeln!(out, "Value:     not shown: {}", why.as_deref().unwrap_or("unknown"));
            let shown = &payload[..payload.len().min(PREVIEW)];
            let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
            let more = if payload.len() > PREVIEW { " …" } else { "" };
            let _ = writeln!(out, "Payload:   {}{more}", hex.join(" "));
        }
    }
    out
}
