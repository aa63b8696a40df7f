//! Attacks on a bucket by a local user who can plant files in it (issue 14), against the library: each test plants
//! links, special files or races, with "victim" files outside the bucket whose count and contents are checked
//! afterwards. The CLI's side is `bucketcache-cli/tests/attacks.rs`.
#![cfg(unix)]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bucketcache::store::ENTRIES_DIR;
use bucketcache::{Backend, Bucket, CrossFlight, FlightRole, KeyHash};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Files outside any bucket, with their contents, that no attack may change, remove or add to.
struct Victims {
    dir: tempfile::TempDir,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Victims {
    /// A tree shaped like a bucket's entries directory: fan-outs of entry-named files (garbage, so "corrupt"),
    /// dead writers' temporary files, entry-named files at the top, lock-named files and a project's lock files.
    fn tree(fans: &[&str], per_fan: usize) -> Victims {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        let mut add = |rel: String| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let body = format!("victim {}", path.display()).into_bytes();
            std::fs::write(&path, &body).expect("write victim");
            files.push((path, body));
        };
        for fan in fans {
            for i in 0..per_fan {
                add(format!("{fan}/{fan}{}{i:02}", "0".repeat(60)));
            }
            add(format!("{fan}/.tmp-999999999-abcdEFGH"));
            add(format!("{fan}/{}.lock", fan.repeat(32)));
        }
        add("ab".repeat(32));
        add(".tmp-999999998-abcdEFGH".to_owned());
        add("Cargo.lock".to_owned());
        add("yarn.lock".to_owned());
        add("ranges.lock".to_owned());
        Victims { dir, files }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every victim is there with its contents, and nothing was added.
    fn assert_intact(&self, what: &str) {
        for (path, body) in &self.files {
            let now =
                std::fs::read(path).unwrap_or_else(|e| panic!("{what}: victim `{}` is gone: {e}", path.display()));
            assert_eq!(&now, body, "{what}: victim `{}` was changed", path.display());
        }
        let count = count_files(self.path());
        assert_eq!(count, self.files.len(), "{what}: files were added outside the bucket");
    }
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("list").flatten() {
        let t = e.file_type().expect("type");
        if t.is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// The bytes of a valid entry for `key` holding `value` (written by a scratch bucket: whatever the format).
fn valid_entry_bytes(key_of: &str, value: u32) -> (KeyHash, Vec<u8>) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(scratch.path()).expect("bucket");
    let key = bucket.key_hash(key_of).expect("hash");
    bucket.insert_hashed(&key, &value, None).expect("insert");
    (key, std::fs::read(bucket.entry_path(&key)).expect("read"))
}

/// Row 1: `entries-v2` a link to a tree of entry-named and temporary files.
#[test]
fn row1_an_entries_directory_link_is_never_followed() {
    let victims = Victims::tree(&["ab", "cd"], 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bucket");
    std::fs::create_dir(&root).expect("mkdir");
    symlink(victims.path(), root.join(ENTRIES_DIR)).expect("symlink");
    let err = Bucket::new(&root).expect_err("a linked entries directory is refused");
    println!("attack 1, bucket opened on a linked entries directory: {err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    victims.assert_intact("open");

    // Planted after the bucket was opened: the bucket keeps using the directory it checked.
    let root2 = dir.path().join("bucket2");
    let bucket = Bucket::new(&root2).expect("bucket");
    bucket.insert("a", &1u32).expect("insert");
    std::fs::rename(root2.join(ENTRIES_DIR), root2.join("moved")).expect("move away");
    symlink(victims.path(), root2.join(ENTRIES_DIR)).expect("symlink");
    let pruned = bucket.prune_directory();
    println!("attack 1, prune_directory after the swap: {pruned:?}");
    assert!(pruned.is_err(), "the link is reported, not walked");
    bucket.insert("b", &2u32).expect("insert goes to the checked directory");
    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("a").expect("get"), Some(1));
    assert!(bucket.remove("a").expect("remove"));
    let victim_key = KeyHash::from_hex(&"ab".repeat(32)).expect("hex");
    assert!(!bucket.remove_hash(&victim_key).expect("remove"));
    victims.assert_intact("prune, insert, get, remove");
}

/// Row 2: `locks-v1`, or a lock fan-out, a link to project directories.
#[test]
fn row2_a_lock_directory_link_is_never_followed() {
    let victims = Victims::tree(&["ab"], 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    symlink(victims.path(), dir.path().join("locks-v1")).expect("symlink");
    bucket.prune_directory().expect("prune");
    let key = KeyHash([0xab; 32]);
    let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&key, Duration::from_secs(5)) else {
        panic!("cold key")
    };
    assert_eq!(
        g.role(),
        FlightRole::Unlocked,
        "a linked lock directory is refused: computed without the lock"
    );
    drop(g);
    victims.assert_intact("linked locks-v1");

    std::fs::remove_file(dir.path().join("locks-v1")).expect("rm link");
    std::fs::create_dir(dir.path().join("locks-v1")).expect("mkdir");
    symlink(victims.path().join("ab"), dir.path().join("locks-v1").join("ab")).expect("symlink");
    bucket.prune_directory().expect("prune");
    victims.assert_intact("linked lock fan-out");
}

/// Row 3: a fan-out directory exchanged with a link to outside, again and again, while the library prunes.
#[cfg(target_os = "linux")]
#[test]
fn row3_a_fan_out_swapped_with_a_link_during_prune_reaches_nothing_outside() {
    use rustix::fs::{openat, renameat_with, Mode, OFlags, RenameFlags, CWD};
    use std::sync::atomic::{AtomicBool, Ordering};

    let victims = Victims::tree(&["ab"], 40);
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let entries = dir.path().join(ENTRIES_DIR);
    let fan = entries.join("ab");
    let other = entries.join("ab-link");
    std::fs::create_dir(&fan).expect("fan-out");
    let real = rustix::fs::open(&fan, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).expect("open fan-out");
    symlink(victims.path().join("ab"), &other).expect("symlink");
    let stop = AtomicBool::new(false);
    let mut removed = 0u64;
    let mut rounds = 0u64;
    let mut swaps = 0u64;
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
        while Instant::now() < until {
            // Corrupt entry-named files in the real directory (through its handle, wherever its name is now):
            // work for prune.
            for i in 0..4 {
                let name = format!("ab{}{i:02}", "1".repeat(60));
                let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW;
                if let Ok(fd) = openat(&real, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
                    let _ = rustix::io::write(&fd, b"corrupt");
                }
            }
            if let Ok(info) = bucket.prune_directory() {
                removed += info.num;
            }
            rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        swaps = swapper.join().expect("swapper");
    });
    println!(
        "attack 3, library prune under a fan-out swap: {rounds} prunes, {swaps} swaps, {removed} bucket files removed"
    );
    assert!(swaps > 100 && rounds > 10, "the race ran");
    assert!(removed > 0, "prune did its work on the real directory");
    victims.assert_intact("prune under the swap");
}

/// Row 4: a fan-out directory, or `ranges.lock`, a link to outside; a dangling `ranges.lock` link.
#[test]
fn row4_linked_fan_outs_and_lock_files_are_not_written_read_or_removed() {
    let victims_dir = tempfile::tempdir().expect("tempdir");
    let (key, bytes) = valid_entry_bytes("k", 7);
    let hex = key.to_hex();
    // The victim directory holds a valid entry for the key: a followed link would serve it.
    let planted = victims_dir.path().join(&hex);
    std::fs::write(&planted, &bytes).expect("write");
    let victims = Victims {
        files: vec![(planted, bytes)],
        dir: victims_dir,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let fan = dir.path().join(ENTRIES_DIR).join(&hex[..2]);
    symlink(victims.path(), &fan).expect("symlink");

    assert_eq!(
        bucket.get::<u32>("k").expect("get is a miss"),
        None,
        "not served from outside"
    );
    assert!(!bucket.contains_key("k").expect("contains"));
    let insert = bucket.insert("k", &8u32);
    println!("attack 4, insert under a linked fan-out: {insert:?}");
    assert!(insert.is_err(), "the linked fan-out is refused");
    let _ = bucket.remove("k");
    victims.assert_intact("insert, get, remove under a linked fan-out");

    // The shared lock file a link (dangling, then to a victim), in both lock protocols.
    let target = victims.path().join("created-by-the-cache");
    let locks = dir.path().join("locks-v1");
    std::fs::create_dir_all(&locks).expect("mkdir");
    for files in [false, true] {
        bucketcache::lock::force_lock_files(files);
        let lock = bucket.lock_path(&key);
        std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
        let _ = std::fs::remove_file(&lock);
        symlink(&target, &lock).expect("symlink");
        let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&KeyHash([9; 32]), Duration::ZERO)
        else {
            panic!("cold key")
        };
        if !files {
            assert_eq!(g.role(), FlightRole::Unlocked, "a linked ranges.lock is refused");
        }
        drop(g);
        let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO) else {
            panic!("cold key")
        };
        assert_eq!(
            g.role(),
            FlightRole::Unlocked,
            "a linked lock file is refused (lock files: {files})"
        );
        drop(g);
        assert!(
            !target.exists(),
            "a dangling link's target was created (lock files: {files})"
        );
        std::fs::remove_file(&lock).expect("rm link");
    }
    bucketcache::lock::force_lock_files(false);
    victims.assert_intact("linked lock files");
}

/// Row 5: a FIFO under an entry's name.
#[test]
fn row5_a_fifo_under_an_entry_name_is_a_quick_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let key = bucket.key_hash("k").expect("hash");
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("fan")).expect("mkdir");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let started = Instant::now();
    assert_eq!(bucket.get::<u32>("k").expect("get"), None);
    assert!(!bucket.contains_key("k").expect("contains"));
    bucket.prune_directory().expect("prune");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    bucket.insert("k", &1u32).expect("the next write replaces it");
    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("k").expect("get"), Some(1));

    // A device that never ends (`/dev/zero`'s numbers), where the system lets this process make one.
    let key = bucket.key_hash("z").expect("hash");
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("fan")).expect("mkdir");
    let made = std::process::Command::new("mknod")
        .arg(&path)
        .args(["c", "1", "5"])
        .output();
    if made.is_ok_and(|o| o.status.success()) {
        let started = Instant::now();
        assert_eq!(bucket.get::<u32>("z").expect("get"), None, "a device is a miss");
        bucket.prune_directory().expect("prune");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        println!(
            "attack 5: /dev/zero's device node under an entry's name: a miss in {:?}",
            started.elapsed()
        );
    } else {
        println!("attack 5: cannot make a device node here; the device case is not run");
    }
}

/// Writes `bytes` as a sparse file of `len` bytes: only its 4 KiB blocks that are not all zeros are written.
fn write_sparse(path: &Path, bytes: &[u8], len: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).expect("create");
    for (i, block) in bytes.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start(i as u64 * 4096)).expect("seek");
            f.write_all(block).expect("write");
        }
    }
    f.set_len(len).expect("set_len");
}

/// The most a refused read may allocate: a few pages of bookkeeping, far below any of the files' sizes.
const REFUSED_READ_PEAK: usize = 256 * 1024;

/// Row 6: sparse and huge files under an entry's name, with valid headers.
#[test]
fn row6_sparse_and_huge_files_are_misses_without_reading_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let key = bucket.key_hash("k").expect("hash");
    let path = bucket.entry_path(&key);
    std::fs::create_dir_all(path.parent().expect("fan")).expect("mkdir");
    // A valid entry (good checksum) whose 64 MiB payload is zeros: on disk as a sparse file it reads exactly the
    // same, from a few KiB of blocks.
    let entry = bucketcache_suite::forge::entry(
        bucketcache::entry::FORMAT_VERSION,
        key.as_bytes(),
        bucket.backend().id(),
        &vec![0u8; 64 << 20],
    );
    let len = entry.len() as u64;
    write_sparse(&path, &entry, len);
    drop(entry);
    // The same header over a 3 GiB sparse file: its length disagrees with its header and exceeds the bound.
    let key3 = bucket.key_hash("k3").expect("hash");
    let path3 = bucket.entry_path(&key3);
    std::fs::create_dir_all(path3.parent().expect("fan")).expect("mkdir");
    let head = bucketcache_suite::forge::entry(
        bucketcache::entry::FORMAT_VERSION,
        key3.as_bytes(),
        bucket.backend().id(),
        &[],
    );
    write_sparse(&path3, &head, 3 << 30);
    let on_disk = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).expect("stat").blocks() * 512
    };
    println!(
        "attack 6: sparse files of {len} B ({} B on disk) and 3 GiB ({} B on disk)",
        on_disk(&path),
        on_disk(&path3)
    );
    for (what, k) in [("64 MiB sparse entry", "k"), ("3 GiB sparse file", "k3")] {
        bucket.unload_all();
        let before = ALLOC.current_usage();
        ALLOC.reset_peak_usage();
        let started = Instant::now();
        let got = bucket.get::<Vec<u8>>(k);
        let peak = ALLOC.peak_usage().saturating_sub(before);
        println!(
            "attack 6, {what}: {:?} in {:?}, peak {peak} B",
            got.as_ref().map(|_| ()),
            started.elapsed()
        );
        assert!(matches!(got, Ok(None)), "{what}: a miss");
        assert!(peak < REFUSED_READ_PEAK, "{what}: the read allocated {peak} bytes");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            started.elapsed()
        );
    }

    // A real entry over a bucket's configured bound.
    let small = Bucket::builder(dir.path())
        .max_entry_bytes(64 * 1024)
        .build()
        .expect("bucket");
    bucket.insert("big", &vec![1u8; 100_000]).expect("insert");
    assert_eq!(
        small.get::<Vec<u8>>("big").expect("get"),
        None,
        "over max_entry_bytes: a miss"
    );
    assert_eq!(
        bucket.get::<Vec<u8>>("big").expect("get").map(|v| v.len()),
        Some(100_000)
    );
}

/// Row 7: a relative bucket path, then the process changes directory.
#[test]
fn row7_a_relative_path_is_fixed_when_the_bucket_is_opened() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let was = std::env::current_dir().expect("cwd");
    std::env::set_current_dir(first.path()).expect("cd");
    let bucket = Bucket::new("cache").expect("bucket");
    std::env::set_current_dir(second.path()).expect("cd");
    bucket.insert("a", &1u32).expect("insert");
    bucket.unload_all();
    let got = bucket.get::<u32>("a").expect("get");
    bucket.prune_directory().expect("prune");
    std::env::set_current_dir(was).expect("cd back");
    assert_eq!(got, Some(1));
    assert!(bucket.path().is_absolute(), "{}", bucket.path().display());
    assert!(first.path().join("cache").join(ENTRIES_DIR).is_dir());
    assert!(
        !second.path().join("cache").exists(),
        "nothing happened under the new directory"
    );
    assert_eq!(count_files(second.path()), 0);
}

/// Row 8: a bucket directory writable by every user.
#[test]
fn row8_a_world_writable_bucket_directory_is_warned_about_or_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bucket");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let risk = bucketcache::scan::insecure_dir_warning(&root).expect("a warning");
    println!("attack 8: {risk}");
    assert!(risk.contains("chmod 700"), "{risk}");
    let err = Bucket::builder(&root)
        .refuse_insecure_dir(true)
        .build()
        .expect_err("refused");
    assert!(matches!(err, bucketcache::Error::Config { .. }), "{err}");
    Bucket::new(&root).expect("the default only warns");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    assert!(
        bucketcache::scan::insecure_dir_warning(&root).is_none(),
        "sticky: files of others cannot be removed"
    );
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    assert!(bucketcache::scan::insecure_dir_warning(&root).is_none());
    Bucket::builder(&root)
        .refuse_insecure_dir(true)
        .build()
        .expect("a private directory is fine");
}

/// Row 9: whoever can open `ranges.lock` holds a lock on all of it.
#[cfg(target_os = "linux")]
#[test]
fn row9_lock_files_are_private_ours_and_waits_stay_bounded() {
    use rustix::fs::{fcntl_lock, FlockOperation};
    use std::os::unix::fs::MetadataExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    let key = KeyHash([5; 32]);
    let ranges = dir.path().join("locks-v1").join("ranges.lock");
    std::fs::create_dir_all(ranges.parent().expect("parent")).expect("mkdir");
    std::fs::write(&ranges, b"").expect("create");
    std::fs::set_permissions(&ranges, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(bucket.begin_cross_process_flight::<u32>(&key, Duration::ZERO));
    let mode = std::fs::metadata(&ranges).expect("stat").mode() & 0o777;
    assert_eq!(mode, 0o600, "a readable lock file is made private");

    // A holder of a read-only descriptor with a whole-file read lock (possible only for this user now): every
    // wait stays bounded by the call's limit.
    let reader = std::fs::File::open(&ranges).expect("open read-only");
    fcntl_lock(&reader, FlockOperation::NonBlockingLockShared).expect("read lock");
    let started = Instant::now();
    let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&key, Duration::from_millis(300)) else {
        panic!("cold key")
    };
    println!(
        "attack 9: a whole-file read lock held; the flight ended as {:?} after {:?}",
        g.role(),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(g);
    drop(reader);

    // Another user's lock file or lock directory is refused (needs root to plant).
    if std::fs::metadata(dir.path()).expect("stat").uid() == 0 {
        std::os::unix::fs::chown(&ranges, Some(65534), None).expect("chown");
        let CrossFlight::Compute(g) = bucket.begin_cross_process_flight::<u32>(&key, Duration::from_secs(5)) else {
            panic!("cold key")
        };
        assert_eq!(g.role(), FlightRole::Unlocked, "another user's ranges.lock is refused");
        drop(g);
        std::fs::remove_file(&ranges).expect("rm");
        let fan = dir.path().join(ENTRIES_DIR).join("ee");
        std::fs::create_dir(&fan).expect("mkdir");
        std::os::unix::fs::chown(&fan, Some(65534), None).expect("chown");
        let foreign = fan.join("ee".repeat(32));
        std::fs::write(&foreign, b"planted").expect("write");
        bucket.prune_directory().expect("prune");
        assert!(foreign.exists(), "a file in another user's fan-out is not touched");
        assert!(
            bucket.insert_hashed(&KeyHash([0xee; 32]), &1u32, None).is_err(),
            "nor written into"
        );
    }
}
