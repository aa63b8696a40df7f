//! A real `redis-server` for the shared-tier tests: started on a free loopback port with no persistence, stopped
//! (killed) when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that makes a missing `redis-server` a test failure (set by `.ci/run`).
pub const REQUIRE_VAR: &str = "BUCKETCACHE_REQUIRE_REDIS";

/// A running server.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// A port nobody listens on now (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

impl RedisServer {
    /// Starts a fresh server, or `None` (with a line on stderr) when `redis-server` is not installed; with
    /// [`REQUIRE_VAR`] set to 1, a missing server panics instead, so a green CI run always exercised Redis.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra `--name value` settings.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        let Some(bin) = binary() else {
            let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "redis-server is not installed and {REQUIRE_VAR}=1: install the `redis-server` package"
            );
            eprintln!(
                "SKIPPED: redis-server is not installed (apt-get install redis-server); shared-tier test skipped"
            );
            return None;
        };
        Some(Self::start_on(&bin, free_port(), extra))
    }

    fn start_on(bin: &PathBuf, port: u16, extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", dir.path().to_str().expect("utf-8 path")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer { child, port, _dir: dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.client().get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A client for direct commands.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// A connection for direct commands.
    pub fn con(&self) -> redis::Connection {
        self.client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect")
    }

    /// Every key matching `pattern` (`SCAN MATCH`).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut con = self.con();
        let iter: redis::Iter<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(pattern)
            .clone()
            .iter(&mut con)
            .expect("scan");
        let mut keys: Vec<String> = iter.map(|k| k.expect("key")).collect();
        keys.sort();
        keys
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the server process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Kills the server and starts a new, empty one on the same port.
    pub fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bin = binary().expect("redis-server");
        let port = self.port;
        // The port may linger a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpListener::bind(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        *self = Self::start_on(&bin, port, &[]);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
