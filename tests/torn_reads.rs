//! Torn reads: a writer process rewrites one key with values from 1 B to 1 MiB while two reader processes read it
//! from its file. Every read must be a miss or exactly one of the written values (the Python ancestor showed
//! 33,543 torn reads in 3 s).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-worker");
const MILLIS: &str = "3000";

fn field(text: &str, name: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == name)
        .unwrap_or_else(|| panic!("no {name} in {text:?}"));
    words[at + 1].parse().expect("a number")
}

#[test]
fn readers_never_see_a_torn_value_while_a_writer_rewrites_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8 path");
    let spawn = |args: &[&str]| {
        Command::new(WORKER)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn worker")
    };
    let mut writer = spawn(&["torn-write", d, MILLIS]);
    // Readers start once the key exists, so a miss would be a failure of the atomic rename.
    let mut ready = String::new();
    BufReader::new(writer.stdout.as_mut().expect("stdout"))
        .read_line(&mut ready)
        .expect("read");
    assert_eq!(ready.trim(), "ready");
    let readers = [spawn(&["torn-read", d, MILLIS]), spawn(&["torn-read", d, MILLIS])];

    let finish = bucketcache_suite::child::success_output;
    let writes = field(&finish(writer), "writes");
    let (mut reads, mut hits, mut misses, mut torn) = (0, 0, 0, 0);
    for r in readers {
        let text = finish(r);
        assert_eq!(field(&text, "errors"), 0, "{text}");
        reads += field(&text, "reads");
        hits += field(&text, "hits");
        misses += field(&text, "misses");
        torn += field(&text, "torn");
    }
    println!(
        "torn reads: {writes} writes (1 B to 1 MiB), {reads} reads checked by 2 readers in {MILLIS} ms: \
         {hits} whole values, {misses} misses, {torn} torn"
    );
    assert_eq!(torn, 0);
    assert_eq!(misses, 0, "the key exists throughout: a rename never leaves a gap");
    assert!(writes > 10 && hits > 10, "the processes did overlap");
}
