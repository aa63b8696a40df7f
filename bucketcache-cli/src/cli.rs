//! The command line, as clap derives it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units;

const AFTER_HELP: &str = "\
Sizes: B, k/KB, M/MB, G/GB, T/TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024), e.g. 500MB, 1GiB, 10k.
Durations: 90s, 12h, 7d, 1h 30m.

Exit codes: 0 success, 1 problems found (corrupt or unreadable files, a missing entry, a failed removal),
2 usage errors (bad arguments, a directory that is not a bucket).";

/// Inspect and manage bucketcache directories.
#[derive(Debug, Parser)]
#[command(name = "bucketcache", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count entries, bytes, expired entries, corrupt and temporary files, per function and per backend.
    Stats {
        /// The bucket directory (the one that holds `entries-v2/`).
        dir: PathBuf,
    },
    /// List entries: key hash, size, write and expiry times, backend, function.
    Ls(LsArgs),
    /// Show one entry's header, and its value as JSON when the backend is self-describing.
    Show {
        /// The bucket directory.
        dir: PathBuf,
        /// The entry's key hash, or a unique prefix of it (at least 2 hex digits).
        hash: String,
    },
    /// Remove expired entries, invalid entry files and stale temporary files; then, if asked, old entries.
    Prune(PruneArgs),
    /// Check every entry's header and checksum; report corrupt files (exit code 1 when there are any).
    Verify {
        /// The bucket directory.
        dir: PathBuf,
        /// Remove the corrupt files found.
        #[arg(long)]
        fix: bool,
    },
    /// Remove every entry, or one function's; asks before removing everything unless `--yes`.
    Clear {
        /// The bucket directory.
        dir: PathBuf,
        /// Only the entries recorded for this function path (as `ls` shows it).
        #[arg(long, value_name = "PATH")]
        function: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// A Redis shared tier's namespace: keys, bytes, entries per function, live leases; `--clear` empties it
    /// (exit code 1 when keys that are not valid entries are found).
    Shared(SharedArgs),
}

/// `shared` arguments.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// The Redis URL (default: `$BUCKETCACHE_REDIS_URL`).
    #[arg(long)]
    pub url: Option<String>,
    /// The namespace (default: `$BUCKETCACHE_REDIS_NAMESPACE`, else `bucketcache`).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Remove every key of the namespace (entries and leases).
    #[arg(long)]
    pub clear: bool,
    /// With `--clear`: do not ask for confirmation.
    #[arg(long, short = 'y', requires = "clear")]
    pub yes: bool,
}

/// `ls` arguments.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The bucket directory.
    pub dir: PathBuf,
    /// Only entries recorded for this function path.
    #[arg(long, value_name = "PATH")]
    pub function: Option<String>,
    /// Only expired entries.
    #[arg(long)]
    pub expired: bool,
    /// Order: `size` (largest first), `written` (oldest first), `expires` (soonest first, never last).
    #[arg(long, value_enum, default_value_t = SortKey::Written)]
    pub sort: SortKey,
    /// Reverse the order.
    #[arg(long, short = 'r')]
    pub reverse: bool,
    /// Only entries of superseded code versions (a function whose entries carry more than one code version: all
    /// but the version written most recently).
    #[arg(long)]
    pub superseded: bool,
}

/// How `ls` orders entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Largest first.
    Size,
    /// Oldest write first.
    Written,
    /// Soonest expiry first; entries that never expire last.
    Expires,
}

/// `prune` arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The bucket directory.
    pub dir: PathBuf,
    /// Also remove entries written longer ago than this (e.g. `7d`).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub older_than: Option<Duration>,
    /// Then remove the least recently written entries until the entry files total at most this (e.g. `1GiB`).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub max_size: Option<u64>,
    /// Report what would be removed, and remove nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Also remove the entries of superseded code versions (a function whose entries carry more than one code
    /// version: all but the version written most recently).
    #[arg(long)]
    pub superseded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn prune_parses_durations_and_sizes() {
        let cli = Cli::try_parse_from(["bucketcache", "prune", "d", "--older-than", "7d", "--max-size", "1GiB"])
            .expect("parses");
        let Command::Prune(p) = cli.command else {
            panic!("prune")
        };
        assert_eq!(p.older_than, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(p.max_size, Some(1 << 30));
        assert!(Cli::try_parse_from(["bucketcache", "prune", "d", "--max-size", "lots"]).is_err());
    }
}
