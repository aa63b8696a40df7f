//! A bucket directory copied to another path still hits, in another process: keys hold no absolute path and no
//! machine-specific value, and entries do not name their directory.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bucketcache::{bucket_cache, Bucket};

static BUCKET: OnceLock<Bucket> = OnceLock::new();
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Set in the child process: the copied bucket's path.
const CHILD_DIR: &str = "BUCKETCACHE_TEST_PORTABLE_DIR";

#[bucket_cache(bucket = BUCKET.get().expect("bucket set"))]
fn report(name: &str, n: u32) -> Vec<String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    vec![name.to_owned(); n as usize]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(item.file_name());
        if item.file_type().expect("type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy");
        }
    }
}

fn calls_at_the_copy(dir: &str) {
    assert!(BUCKET.set(Bucket::new(dir).expect("bucket at the copy")).is_ok());
    assert_eq!(report("ann", 2), vec!["ann".to_owned(); 2]);
    assert_eq!(report("bob", 1), vec!["bob".to_owned()]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 0, "both calls hit the copied entries");
    let s = bucketcache::stats().function("report").expect("row").stats;
    assert_eq!(s.hits_disk, 2, "{s}");
}

#[test]
fn a_copied_bucket_directory_hits_at_its_new_path() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        calls_at_the_copy(&dir);
        return;
    }
    let original = tempfile::tempdir().expect("tempdir");
    assert!(BUCKET.set(Bucket::new(original.path()).expect("bucket")).is_ok());
    assert_eq!(report("ann", 2), vec!["ann".to_owned(); 2]);
    assert_eq!(report("bob", 1), vec!["bob".to_owned()]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("moved").join("bucket");
    copy_dir(original.path(), &copy);
    drop(original); // the original directory is gone

    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_copied_bucket_directory_hits_at_its_new_path",
            "--nocapture",
        ])
        .env(CHILD_DIR, &copy)
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "the child at the copy: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran the test"
    );
}
