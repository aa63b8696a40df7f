//! A hostile environment: an unwritable directory, the directory removed while in use, a file where a directory
//! should be, a full disk. `insert` returns a clear `Error`, nothing panics, previous entries stay intact, and once
//! the directory is usable again the cache works again.

use std::path::{Path, PathBuf};
use std::process::Command;

use bucketcache::store::{fault, ENTRIES_DIR, TEMP_PREFIX};
use bucketcache::{Bucket, Error};
use bucketcache_suite::fixtures::Checked;
use bucketcache_suite::skip::{self, Needs};

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-worker");
const ENOSPC: i32 = 28;
/// Printed by the shell once the tmpfs is mounted.
const MOUNTED: &str = "mounted-a-tmpfs";

fn io_error(r: bucketcache::Result<()>, what: &str) -> String {
    match r {
        Err(e @ Error::Io { .. }) => e.to_string(),
        other => panic!("{what}: expected an I/O error, got {other:?}"),
    }
}

fn temp_files(root: &Path) -> usize {
    let Ok(fans) = std::fs::read_dir(root.join(ENTRIES_DIR)) else {
        return 0;
    };
    fans.flatten()
        .filter_map(|f| std::fs::read_dir(f.path()).ok())
        .flat_map(|d| d.flatten())
        .filter(|f| f.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .count()
}

#[test]
fn a_full_disk_at_the_write_seam_is_a_clear_error_and_heals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = Bucket::new(dir.path()).expect("bucket");
    bucket.insert("kept", &Checked::new(1, 100)).expect("insert");

    fault::set_write_error(dir.path(), Some(ENOSPC));
    let msg = io_error(bucket.insert("kept", &Checked::new(2, 100)), "insert on a full disk");
    let fresh = io_error(bucket.insert("new", &Checked::new(3, 100)), "insert of a new key");
    println!("hostile env: full disk (injected ENOSPC): insert -> {msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(fresh.contains("No space left on device"), "{fresh}");
    assert_eq!(temp_files(dir.path()), 0, "the failed write removed its temporary file");
    bucket.unload_all();
    assert_eq!(
        bucket.get::<Checked>("kept").expect("get"),
        Some(Checked::new(1, 100)),
        "the previous entry is intact"
    );
    assert_eq!(bucket.get::<Checked>("new").expect("get"), None);
    // A single-flight computation still returns its value when it cannot be stored.
    let key = bucket.key_hash("computed").expect("hash");
    let wait = std::time::Duration::from_secs(5);
    assert_eq!(bucket.get_or_compute_cross_process(&key, wait, || 7u32), 7);

    fault::set_write_error(dir.path(), None);
    bucket
        .insert("new", &Checked::new(3, 100))
        .expect("insert once space is back");
    bucket.unload_all();
    assert_eq!(bucket.get::<Checked>("new").expect("get"), Some(Checked::new(3, 100)));
}

#[test]
fn a_really_full_tmpfs_is_a_clear_error_and_heals() {
    // A 256 KiB tmpfs in a private mount namespace (as an unprivileged user, mapped to root): needs user
    // namespaces; where they are not allowed the test says so and the injected fault above stands in.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    // The marker line says the mount succeeded: from there on, whatever the worker does is the test's result.
    let script = format!("mount -t tmpfs -o size=256k tmpfs '{d}' && echo {MOUNTED} && exec '{WORKER}' fill '{d}'");
    let out = match Command::new("unshare").args(["-Urm", "sh", "-c", &script]).output() {
        Ok(out) => out,
        Err(e) => {
            skip::skip(
                "hostile_env: full tmpfs",
                Needs::Tools,
                &format!("cannot run `unshare` (util-linux): {e}"),
            );
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(text) = stdout.strip_prefix(MOUNTED).and_then(|rest| rest.strip_prefix('\n')) else {
        assert!(
            !stdout.contains(MOUNTED),
            "the marker must be the first line: {stdout}\n{stderr}"
        );
        skip::skip(
            "hostile_env: full tmpfs",
            Needs::Environment,
            &format!(
                "cannot mount a tmpfs in a user namespace here ({}): {}",
                out.status,
                stderr.trim()
            ),
        );
        return;
    };
    let text = text.to_owned();
    assert!(
        out.status.success(),
        "the worker filling the tmpfs failed ({}): {text}\n{stderr}",
        out.status
    );
    let get = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    println!(
        "hostile env: full 256 KiB tmpfs: {} entries stored, then: {}",
        get("stored"),
        get("error")
    );
    assert!(get("error").contains("No space left on device"), "{text}");
    assert_eq!(
        get("intact"),
        get("stored"),
        "every entry written before the disk filled is intact"
    );
    assert_eq!(get("temp_files"), "0", "failed writes leave no temporary file");
    assert_eq!(get("after_free"), "ok", "after freeing space, inserts work again");
    assert_eq!(get("read_back"), "ok");
}

/// Whether permission bits stop this process (they do not for root, or with CAP_DAC_OVERRIDE).
fn permissions_bind_us(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("probe");
        std::fs::create_dir(&probe).expect("mkdir");
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        let bound = std::fs::write(probe.join("f"), b"x").is_err();
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::remove_dir_all(&probe).expect("rm");
        bound
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

#[cfg(unix)]
fn chmod_tree(root: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode)).expect("chmod");
    for e in std::fs::read_dir(root).expect("list").flatten() {
        if e.file_type().expect("type").is_dir() {
            chmod_tree(&e.path(), mode);
        }
    }
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_is_a_clear_error_and_heals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root: PathBuf = dir.path().join("bucket");
    let bucket = Bucket::new(&root).expect("bucket");
    bucket.insert(&1u64, &Checked::new(1, 64 + 1)).expect("insert");

    if permissions_bind_us(dir.path()) {
        chmod_tree(&root, 0o500);
        let msg = io_error(
            bucket.insert(&2u64, &Checked::new(2, 66)),
            "insert into a read-only directory",
        );
        println!("hostile env: unwritable directory: insert -> {msg}");
        assert!(msg.contains("Permission denied"), "{msg}");
        bucket.unload_all();
        assert!(bucket.get::<Checked>(&1u64).expect("get").is_some(), "reads still work");
        chmod_tree(&root, 0o700);
        bucket
            .insert(&2u64, &Checked::new(2, 66))
            .expect("insert once writable");
        return;
    }

    // Root ignores permission bits: run the writer as `nobody` instead, in directories root owns.
    use std::os::unix::process::CommandExt;
    chmod_tree(dir.path(), 0o755);
    let probe = |key: &str| {
        Command::new(WORKER)
            .arg("probe")
            .arg(&root)
            .arg(key)
            .uid(65534)
            .gid(65534)
            .output()
    };
    // Only a failure to start the child is a reason to skip; what the child reports is the result.
    let out = match probe("2") {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "the probe as nobody failed ({}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
        Err(e) => {
            skip::skip(
                "hostile_env: unwritable directory as nobody",
                Needs::Tools,
                &format!("cannot start a child as uid 65534: {e}"),
            );
            return;
        }
    };
    println!(
        "hostile env: unwritable directory (child as nobody): {}",
        out.lines().collect::<Vec<_>>().join("; ")
    );
    assert!(out.contains("open: ok"), "{out}");
    assert!(
        out.contains("insert: err") && out.contains("Permission denied"),
        "{out}"
    );
    assert!(out.contains("get: miss"), "{out}");
    // Usable again: the directory now belongs to the child's user.
    for e in walk(&root) {
        std::os::unix::fs::chown(&e, Some(65534), Some(65534)).expect("chown");
    }
    let out = probe("3").expect("spawn");
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "hostile env: after chown: {}",
        out.lines().collect::<Vec<_>>().join("; ")
    );
    assert!(out.contains("insert: ok") && out.contains("get: hit"), "{out}");
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(d) = std::fs::read_dir(root) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn the_directory_removed_while_in_use_is_recreated_by_the_next_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bucket");
    let bucket = Bucket::new(&root).expect("bucket");
    bucket.insert("a", &1u32).expect("insert");
    std::fs::remove_dir_all(&root).expect("rm -r");

    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("a").expect("get"), None, "its entry went with it");
    assert!(!bucket.contains_key("a").expect("contains"));
    assert!(matches!(bucket.prune_directory(), Ok(_) | Err(Error::Io { .. })));
    bucket.insert("b", &2u32).expect("insert recreates the directories");
    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("b").expect("get"), Some(2));

    // Removed again and again while another thread writes: writes succeed or fail cleanly, never panic.
    let (mut ok, mut failed) = (0u32, 0u32);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let (mut ok, mut failed) = (0u32, 0u32);
            for k in 0..300u32 {
                match bucket.insert(&k, &Checked::new(u64::from(k), 512)) {
                    Ok(()) => ok += 1,
                    Err(Error::Io { .. }) => failed += 1,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            (ok, failed)
        });
        for _ in 0..30 {
            let _ = std::fs::remove_dir_all(&root);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        (ok, failed) = writer.join().expect("writer");
    });
    println!("hostile env: directory removed 30 times under a writer: {ok} writes ok, {failed} clean errors");
    bucket.insert("c", &3u32).expect("insert");
    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("c").expect("get"), Some(3));
}

#[test]
fn a_file_where_a_directory_should_be_is_a_clear_error_and_heals() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The bucket directory itself.
    let blocked = dir.path().join("is-a-file");
    std::fs::write(&blocked, b"x").expect("write");
    let err = Bucket::new(&blocked).expect_err("a file is in the way");
    println!("hostile env: file as bucket directory: {err}");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_file(&blocked).expect("rm");
    Bucket::new(&blocked).expect("opens once the file is gone");

    // A fan-out directory.
    let root = dir.path().join("bucket");
    let bucket = Bucket::new(&root).expect("bucket");
    let path = bucket.entry_path(&bucket.key_hash("k").expect("hash"));
    let fan = path.parent().expect("fan").to_path_buf();
    std::fs::write(&fan, b"not a directory").expect("write");
    let msg = io_error(bucket.insert("k", &1u32), "insert under a file");
    println!("hostile env: file as fan-out directory: insert -> {msg}");
    assert!(matches!(bucket.get::<u32>("k"), Ok(None) | Err(Error::Io { .. })));
    bucket.prune_directory().expect("prune");
    std::fs::remove_file(&fan).expect("rm");
    bucket.insert("k", &1u32).expect("insert once the file is gone");

    // The entries directory, replaced by a file while the bucket is open.
    std::fs::remove_dir_all(root.join(ENTRIES_DIR)).expect("rm -r");
    std::fs::write(root.join(ENTRIES_DIR), b"x").expect("write");
    let msg = io_error(bucket.insert("k", &2u32), "insert under a file");
    println!("hostile env: file as entries directory: insert -> {msg}");
    assert!(matches!(bucket.prune_directory(), Err(Error::Io { .. })));
    std::fs::remove_file(root.join(ENTRIES_DIR)).expect("rm");
    bucket.insert("k", &2u32).expect("insert once the file is gone");
    bucket.unload_all();
    assert_eq!(bucket.get::<u32>("k").expect("get"), Some(2));
}

static ATTR_DIR: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("tempdir"));
static ATTR_BUCKET: std::sync::LazyLock<Bucket> =
    std::sync::LazyLock::new(|| Bucket::new(ATTR_DIR.path()).expect("bucket"));
static ATTR_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[bucketcache::bucket_cache(bucket = ATTR_BUCKET)]
fn doubled(x: u32) -> u32 {
    ATTR_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    x * 2
}

#[test]
fn a_decorated_function_returns_its_value_on_a_full_disk_and_caches_again_after() {
    use std::sync::atomic::Ordering::SeqCst;
    fault::set_write_error(ATTR_DIR.path(), Some(ENOSPC));
    assert_eq!(doubled(21), 42, "the computed value, though it cannot be stored");
    ATTR_BUCKET.unload_all();
    assert_eq!(doubled(21), 42);
    assert_eq!(ATTR_RUNS.load(SeqCst), 2, "nothing was stored: the body ran again");
    fault::set_write_error(ATTR_DIR.path(), None);
    assert_eq!(doubled(21), 42);
    ATTR_BUCKET.unload_all();
    assert_eq!(doubled(21), 42);
    assert_eq!(
        ATTR_RUNS.load(SeqCst),
        3,
        "stored once space was back: a hit from the file"
    );
    println!("hostile env: #[bucket_cache] function on a full disk: returned its value, cached again afterwards");
}
