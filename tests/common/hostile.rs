//! Helpers of the hostile-input tests (tests/hostile_fleet.rs,
//! tests/hostile_prometheus.rs): a listener that plays a fleet peer (or
//! any URL a repo aims the daemon at) and records what it was sent, event
//! log lines, and what a process has read.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::host::TestHost;
use super::teal;

/// A listener that plays a fleet peer: it records the head of every
/// request it gets and answers each with a status document, or with a
/// body that never ends (64 KiB a millisecond until the reader hangs up).
pub struct FakePeer {
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
    /// Endless answers still being written.
    writing: Arc<AtomicUsize>,
}

impl FakePeer {
    pub fn start(endless: bool) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(vec![]));
        let writing = Arc::new(AtomicUsize::new(0));
        let (h, w) = (heads.clone(), writing.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (h, w) = (h.clone(), w.clone());
                std::thread::spawn(move || answer(conn, endless, &h, &w));
            }
        });
        FakePeer { url, heads, writing }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Endless answers still being written (the reader has not hung up).
    pub fn writing(&self) -> usize {
        self.writing.load(Ordering::SeqCst)
    }
}

fn answer(mut conn: TcpStream, endless: bool, heads: &Mutex<Vec<String>>, writing: &AtomicUsize) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    heads.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
    if !endless {
        let body = r#"{"config_errors":[],"services":{}}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    writing.fetch_add(1, Ordering::SeqCst);
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[");
    let chunk = vec![b' '; 64 * 1024];
    while conn.write_all(&chunk).is_ok() {
        std::thread::sleep(Duration::from_millis(1));
    }
    writing.fetch_sub(1, Ordering::SeqCst);
}

/// A bearer token file (0600) in `dir`.
pub fn token_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("status_token");
    std::fs::write(&path, "fleet-s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// One line of events.jsonl.
pub fn event_line(step: &str, color: Option<&str>, from: Option<&str>, image: Option<&str>) -> String {
    let mut e = serde_json::json!({
        "time": "2026-11-25T19:43:09.358Z", "commit": "1dcece7d5058c7e06e3ab444262212ecae472b70",
        "service": "web", "step": step, "result": "ok", "duration_ms": 5,
    });
    for (k, v) in [("color", color), ("from", from), ("image", image)] {
        if let Some(v) = v {
            e[k] = v.into();
        }
    }
    format!("{e}\n")
}

/// Bytes a process has read through read(2) and friends so far
/// (`rchar` of /proc/PID/io): files, sockets and pipes alike.
pub fn bytes_read(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io of the daemon");
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("rchar in /proc/PID/io")
}

/// Polls `teal status --format json` (the API needs the token) until the
/// service's `waiting` satisfies `ok`.
pub async fn until_waiting(h: &TestHost, secs: u64, ok: impl Fn(&str) -> bool) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let run = teal(
            h.dir.path(),
            &["status", "--format", "json", "--config", h.config.to_str().unwrap()],
        );
        if let Ok(s) = serde_json::from_str::<serde_json::Value>(&run.stdout) {
            last = s["services"][&h.svc]["waiting"].as_str().unwrap_or("").to_string();
            if ok(&last) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("never waiting as expected; last {last:?}; log:\n{}", h.log_text());
}

/// Waits until the log (any of its files) has the outcome line of the
/// work tree's head commit; returns that commit.
pub async fn until_deployed(h: &TestHost, log: &Path) -> String {
    let head = super::git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    while !teal::events::files(log).iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&head) && l.contains("\"step\":\"deploy\""))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no deploy line:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    head
}

/// The `teal history --format json` entry of `commit`.
pub fn history_entry(h: &TestHost, commit: &str) -> serde_json::Value {
    let run = teal(
        h.dir.path(),
        &["history", "--state-dir", h.state.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["commit"] == commit)
        .unwrap_or_else(|| panic!("no entry for {commit}: {}", run.stdout))
        .clone()
}
