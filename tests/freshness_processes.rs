//! `stale = "..."` across processes: during the stale window, N processes calling together get the stale value at
//! once and the body runs once (the refresher holds the key's cross-process lock; the others never wait for it).
//! The children (`src/bin/bucketcache-fresh-worker.rs`) share the bucket directory and a clock time passed on
//! their command line.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORKER: &str = env!("CARGO_BIN_EXE_bucketcache-fresh-worker");

fn spawn(dir: &Path, now_ms: i64, runs: &Path, release: &Path) -> Child {
    Command::new(WORKER)
        .arg(dir)
        .arg(now_ms.to_string())
        .arg(runs)
        .arg(release)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the worker")
}

fn output(child: Child) -> String {
    let out = child.wait_with_output().expect("worker output");
    assert!(out.status.success(), "worker failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn during_the_stale_window_processes_get_the_stale_value_and_the_body_runs_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, runs, release) = (
        tmp.path().join("bucket"),
        tmp.path().join("runs"),
        tmp.path().join("release"),
    );
    std::fs::create_dir(&runs).expect("runs dir");
    std::fs::write(&release, b"").expect("release");
    let t0 = chrono::Utc::now().timestamp_millis();
    assert_eq!(output(spawn(&dir, t0, &runs, &release)), "value 1");
    assert_eq!(
        output(spawn(&dir, t0 + 30_000, &runs, &release)),
        "value 1",
        "fresh: a hit"
    );

    // Two minutes later: expired a minute ago, within the ten-minute window. The refresh is held until released.
    std::fs::remove_file(&release).expect("hold the refresh");
    const N: usize = 4;
    let mut children: Vec<Option<Child>> = (0..N)
        .map(|_| Some(spawn(&dir, t0 + 120_000, &runs, &release)))
        .collect();
    let mut outputs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while outputs.len() < N - 1 && Instant::now() < deadline {
        for slot in &mut children {
            let done = slot.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if done {
                if let Some(c) = slot.take() {
                    outputs.push(output(c));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        outputs.len(),
        N - 1,
        "all but the refresher returned while the refresh was held: {outputs:?}"
    );
    assert!(outputs.iter().all(|o| o == "value 1"), "the stale value: {outputs:?}");
    std::fs::write(&release, b"").expect("release");
    for c in children.into_iter().flatten() {
        outputs.push(output(c));
    }
    assert_eq!(
        outputs.iter().filter(|o| *o == "value 2").count(),
        1,
        "the refresher's value: {outputs:?}"
    );
    let ran = std::fs::read_dir(&runs).expect("runs").count();
    assert_eq!(ran, 2, "the body ran once for the first call and once for the refresh");
    assert_eq!(
        output(spawn(&dir, t0 + 121_000, &runs, &release)),
        "value 2",
        "the refreshed entry is fresh"
    );
}
