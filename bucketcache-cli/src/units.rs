//! Sizes, durations and dates, parsed from arguments and shown to people.

use std::time::Duration;

use chrono::{DateTime, Local, SecondsFormat, TimeZone, Utc};

/// Parses a size: a number (decimals allowed) and an optional unit, case-insensitive, spaces allowed between.
///
/// `B`; decimal `k`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` (powers of 1000); binary `Ki`/`KiB`, `Mi`/`MiB`,
/// `Gi`/`GiB`, `Ti`/`TiB` (powers of 1024). So `10k` is 10,000 bytes and `1GiB` is 1,073,741,824.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number = number.replace('_', "");
    if number.is_empty() {
        return Err(format!(
            "invalid size `{s}`: expected a number and a unit, such as `500MB`, `1GiB` or `10k`"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size `{s}`: `{number}` is not a number"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size `{s}`: unknown unit `{other}` (use B, k/KB, M/MB, G/GB, T/TB for powers of 1000, \
                 or KiB, MiB, GiB, TiB for powers of 1024)"
            ))
        }
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size `{s}`: too large"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration such as `7d`, `12h`, `1h 30m`, `90s` (humantime's syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}`: {e} (examples: `7d`, `12h`, `1h 30m`, `90s`)"))
}

/// `1 file`, `2 files`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// A size for people: `512 B`, `1.5 KiB`, `3.2 MiB` (binary units, one decimal).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// A time for machines: RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    utc(ms).map_or_else(|| ms.to_string(), |d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A time for people: the local date and time, to the second.
pub fn format_time(ms: i64) -> String {
    utc(ms).map_or_else(
        || format!("{ms} ms"),
        |d| d.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// How far `ms` is from `now_ms`, roughly: `3h ago`, `in 2d`, `now`.
pub fn relative(ms: i64, now_ms: i64) -> String {
    let delta = ms.saturating_sub(now_ms);
    let secs = delta.unsigned_abs() / 1000;
    let amount = match secs {
        0 => return "now".to_owned(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    if delta < 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("10k"), Ok(10_000));
        assert_eq!(parse_size("10K"), Ok(10_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("12b"), Ok(12));
        assert_eq!(parse_size(" 2 gb "), Ok(2_000_000_000));
        assert_eq!(parse_size("1_000"), Ok(1000));
    }

    #[test]
    fn bad_sizes_say_why() {
        for bad in ["", "GiB", "ten", "1.2.3MB", "5 parsecs", "99999999999TiB"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.starts_with("invalid size"), "{bad}: {e}");
        }
        assert!(parse_size("5 parsecs")
            .expect_err("unit")
            .contains("unknown unit `parsecs`"));
    }

    #[test]
    fn durations_use_humantime() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("7 fortnights")
            .expect_err("bad")
            .starts_with("invalid duration"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn relative_times_round_down() {
        assert_eq!(relative(0, 0), "now");
        assert_eq!(relative(0, 90_000), "1m ago");
        assert_eq!(relative(3 * 86_400_000, 0), "in 3d");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
