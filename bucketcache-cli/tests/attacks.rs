//! Attacks on a bucket by a local user who can plant files in it (issue 14), against every command that reads or
//! removes: links where the bucket's directories should be, a fan-out swapped with a link during a walk, a FIFO
//! and a sparse file under an entry's name, a world-writable directory. Victim files outside the bucket are
//! checked afterwards; every command runs under a timeout.
#![cfg(unix)]

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bucketcache::store::ENTRIES_DIR;
use common::{bin, Cache};

/// Every command that reads or removes, as arguments after the directory (`show` gets a hash).
const COMMANDS: &[&[&str]] = &[
    &["stats"],
    &["ls"],
    &["verify"],
    &["verify", "--fix"],
    &["prune"],
    &["prune", "--older-than", "0s"],
    &["clear", "--yes"],
];

/// No command may take longer than this, whatever is planted.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `bucketcache <cmd> DIR [extra]` under the timeout; returns its exit code and stderr.
fn run(cmd: &[&str], dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = bin()
        .arg(cmd[0])
        .arg(dir)
        .args(&cmd[1..])
        .args(extra)
        .timeout(TIMEOUT)
        .output()
        .expect("run");
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{cmd:?} was killed (timeout?)"));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Files outside the bucket, shaped like entries, temporary and lock files, that nothing may change.
struct Victims {
    dir: tempfile::TempDir,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Victims {
    fn new(fan: &str, n: usize) -> Victims {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        let mut names: Vec<String> = (0..n).map(|i| format!("{fan}{}{i:02}", "0".repeat(60))).collect();
        names.push(".tmp-999999999-abcdEFGH".to_owned());
        names.push("Cargo.lock".to_owned());
        for name in names {
            let path = dir.path().join(&name);
            let body = format!("victim {name}").into_bytes();
            std::fs::write(&path, &body).expect("write");
            files.push((path, body));
        }
        Victims { dir, files }
    }

    fn assert_intact(&self, what: &str) {
        for (path, body) in &self.files {
            let now =
                std::fs::read(path).unwrap_or_else(|e| panic!("{what}: victim `{}` is gone: {e}", path.display()));
            assert_eq!(&now, body, "{what}: victim `{}` changed", path.display());
        }
        let count = std::fs::read_dir(self.dir.path()).expect("list").count();
        assert_eq!(count, self.files.len(), "{what}: files were added outside the bucket");
    }
}

#[test]
fn row1_a_linked_entries_directory_is_a_problem_for_every_command() {
    let victims = Victims::new("ab", 4);
    let dir = tempfile::tempdir().expect("tempdir");
    symlink(victims.dir.path(), dir.path().join(ENTRIES_DIR)).expect("symlink");
    let mut all: Vec<&[&str]> = COMMANDS.to_vec();
    let show: &[&str] = &["show", "ab00"];
    all.push(show);
    for cmd in all {
        let (code, stderr) = run(cmd, dir.path(), &[]);
        assert_eq!(code, 1, "{cmd:?}: {stderr}");
        assert!(stderr.contains("symbolic link"), "{cmd:?}: {stderr}");
        victims.assert_intact(&format!("{cmd:?}"));
    }
}

#[test]
fn row4_a_linked_fan_out_is_a_problem_and_never_entered() {
    let cache = Cache::new();
    let victims = Victims::new("ab", 4);
    symlink(victims.dir.path(), cache.path().join(ENTRIES_DIR).join("ab")).expect("symlink");
    for cmd in COMMANDS {
        let (code, stderr) = run(cmd, cache.path(), &[]);
        assert_eq!(code, 1, "{cmd:?}: the link is a problem: {stderr}");
        assert!(stderr.contains("symbolic link"), "{cmd:?}: {stderr}");
        victims.assert_intact(&format!("{cmd:?}"));
    }
    let (code, stderr) = run(&["show", &"ab".repeat(2)], cache.path(), &[]);
    assert_eq!(code, 1, "{stderr}");
    victims.assert_intact("show");
}

/// Row 3: a fan-out exchanged with a link to outside, in a loop, while prune, clear and verify --fix run.
#[cfg(target_os = "linux")]
#[test]
fn row3_a_fan_out_swapped_with_a_link_during_a_walk_reaches_nothing_outside() {
    use rustix::fs::{openat, renameat_with, Mode, OFlags, RenameFlags, CWD};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let victims = Victims::new("ab", 40);
    let cache = Cache::new();
    let entries = cache.path().join(ENTRIES_DIR);
    let fan = entries.join("ab");
    let other = entries.join("ab-link");
    std::fs::create_dir_all(&fan).expect("fan-out");
    let real = rustix::fs::open(&fan, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open");
    symlink(victims.dir.path(), &other).expect("symlink");
    let stop = AtomicBool::new(false);
    let mut runs = 0;
    std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if renameat_with(CWD, &fan, CWD, &other, RenameFlags::EXCHANGE).is_ok() {
                    n += 1;
                }
            }
            n
        });
        let until = Instant::now() + Duration::from_secs(3);
        let cmds: [&[&str]; 4] = [
            &["prune"],
            &["clear", "--yes"],
            &["verify", "--fix"],
            &["prune", "--older-than", "0s"],
        ];
        while Instant::now() < until {
            for i in 0..4 {
                let name = format!("ab{}{i:02}", "1".repeat(60));
                let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW;
                if let Ok(fd) = openat(&real, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
                    let _ = rustix::io::write(&fd, b"corrupt");
                }
            }
            let _ = run(cmds[runs % cmds.len()], cache.path(), &[]);
            runs += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().expect("swapper");
        println!("attack 3, CLI prune/clear/verify --fix under a fan-out swap: {runs} runs, {swaps} swaps");
        assert!(swaps > 100 && runs >= 4, "the race ran");
    });
    victims.assert_intact("commands under the swap");
}

#[test]
fn row5_a_fifo_under_an_entry_name_hangs_no_command() {
    let cache = Cache::new();
    let path = cache.entry_path(&cache.json[0]);
    std::fs::remove_file(&path).expect("rm");
    assert!(std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo")
        .success());
    // And `/dev/zero`'s device node under another entry's name, where the system lets this process make one.
    let zero = cache.entry_path(&cache.json[1]);
    std::fs::remove_file(&zero).expect("rm");
    let made = std::process::Command::new("mknod")
        .arg(&zero)
        .args(["c", "1", "5"])
        .output();
    println!("attack 5: device node made: {}", made.is_ok_and(|o| o.status.success()));
    let hex = cache.json[0].to_hex();
    let show: &[&str] = &["show", &hex];
    for cmd in COMMANDS.iter().copied().chain([show]) {
        let (code, stderr) = run(cmd, cache.path(), &[]);
        println!("attack 5, {cmd:?} with a FIFO: exit {code}");
        assert!(code == 0 || code == 1, "{cmd:?}: {stderr}");
        if cmd[0] == "verify" || cmd[0] == "show" {
            assert_eq!(code, 1, "{cmd:?}: the FIFO is a problem: {stderr}");
            assert!(stderr.contains("not a regular file"), "{cmd:?}: {stderr}");
        }
    }
}

/// Writes `bytes` as a sparse file of their length: only the 4 KiB blocks that are not all zeros are written.
fn write_sparse(path: &Path, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).expect("create");
    for (i, block) in bytes.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(i as u64 * 4096)).expect("seek");
            f.write_all(block).expect("write");
        }
    }
    f.set_len(bytes.len() as u64).expect("set_len");
}

#[test]
fn row6_a_sparse_entry_is_refused_by_verify_and_show_without_reading_it() {
    let cache = Cache::new();
    let key = cache.bincode;
    let path = cache.entry_path(&key);
    // A valid entry (good checksum) with a 64 MiB payload of zeros, as a sparse file of a few KiB.
    let scratch = tempfile::tempdir().expect("tempdir");
    let bucket = bucketcache::Bucket::new(scratch.path()).expect("bucket");
    bucket.insert_hashed(&key, &vec![0u8; 64 << 20], None).expect("insert");
    let bytes = std::fs::read(bucket.entry_path(&key)).expect("read");
    write_sparse(&path, &bytes);
    drop(bytes);
    let hex = key.to_hex();
    for cmd in [&["verify"][..], &["show", &hex][..]] {
        let started = std::time::Instant::now();
        let (code, stderr) = run(cmd, cache.path(), &[]);
        println!(
            "attack 6, {cmd:?} on a sparse entry: exit {code} in {:?}",
            started.elapsed()
        );
        assert_eq!(code, 1, "{cmd:?}: {stderr}");
        assert!(stderr.contains("sparse"), "{cmd:?}: {stderr}");
    }
}

#[test]
fn row8_stats_warns_about_a_world_writable_bucket_directory() {
    let cache = Cache::new();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (code, stderr) = run(&["stats"], cache.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("chmod 700"), "{stderr}");
    let json = common::json(&["stats", cache.arg()], 0);
    let warnings = json["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{json}");
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let json = common::json(&["stats", cache.arg()], 0);
    assert!(json["warnings"].as_array().expect("warnings").is_empty());
}
