//! Usage errors (exit code 2) and unreadable files (exit code 1), for every command.

mod common;

use common::{bin, Cache};
use predicates::prelude::*;

const COMMANDS: [&[&str]; 6] = [
    &["stats"],
    &["ls"],
    &["show", "_", "abcd"],
    &["prune"],
    &["verify"],
    &["clear"],
];

/// `args` with the directory put in place of the command's `DIR`.
fn with_dir<'a>(command: &[&'a str], dir: &'a str) -> Vec<&'a str> {
    let mut v = vec![command[0], dir];
    v.extend(command.iter().skip(1).filter(|a| **a != "_"));
    v
}

#[test]
fn a_directory_that_is_not_a_bucket_is_a_usage_error_for_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    for command in COMMANDS {
        bin()
            .args(with_dir(command, d))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "is not a bucketcache bucket: it has no `entries-v2/` directory",
            ));
    }
}

#[test]
fn a_missing_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    bin()
        .args(["stats", missing.to_str().expect("utf-8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn a_file_given_as_the_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").expect("write");
    bin()
        .args(["ls", file.to_str().expect("utf-8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a directory"));
}

#[test]
fn giving_the_entries_directory_suggests_its_parent() {
    let cache = Cache::new();
    let entries = cache.path().join("entries-v2");
    bin()
        .args(["stats", entries.to_str().expect("utf-8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give its parent directory"));
}

#[test]
fn bad_durations_and_sizes_are_usage_errors() {
    let cache = Cache::new();
    bin()
        .args(["prune", cache.arg(), "--older-than", "7 fortnights"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid duration `7 fortnights`"));
    bin()
        .args(["prune", cache.arg(), "--max-size", "12 parsecs"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown unit `parsecs`"));
    bin()
        .args(["prune", cache.arg(), "--max-size", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid size `lots`"));
    assert_eq!(cache.count_entries(), 6, "nothing was removed");
}

#[test]
fn unknown_commands_flags_and_missing_arguments_are_usage_errors() {
    let cache = Cache::new();
    bin().arg("frobnicate").assert().code(2);
    bin().args(["ls", cache.arg(), "--sort", "colour"]).assert().code(2);
    bin().args(["show", cache.arg()]).assert().code(2);
    bin().assert().code(2);
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("stats").and(predicate::str::contains("prune")))
        .stdout(predicate::str::contains("Exit codes: 0 success, 1 problems found"));
}

#[test]
fn an_unreadable_entry_is_reported_with_exit_code_1() {
    let cache = Cache::new();
    // A directory named like an entry: opening works, reading fails (EISDIR), even for root.
    let fan = bucketcache::scan::entries_dir(cache.path()).join("cd");
    std::fs::create_dir_all(fan.join("cd".repeat(32))).expect("dir");
    for command in [&["stats"][..], &["ls"], &["verify"], &["prune", "--dry-run"]] {
        bin()
            .args(with_dir(command, cache.arg()))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("cannot read").and(predicate::str::contains("cd".repeat(32))));
    }
    let stats = common::json(&["stats", cache.arg()], 1);
    assert_eq!(stats["unreadable"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["entries"]["count"], 6, "the readable entries are still counted");
}
