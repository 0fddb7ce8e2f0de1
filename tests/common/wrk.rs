//! `wrk` keep-alive load through a proxy, and what it counted: requests,
//! socket errors and non-2xx answers. Shared by the tests and benches
//! (benches include this file by path).

use std::process::{Child, Command, Stdio};

/// A running `wrk -t2 -c32` against one host behind a proxy.
pub struct Wrk {
    child: Option<Child>,
}

/// A test that fails mid-load leaves no wrk running.
impl Drop for Wrk {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What wrk counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrkResult {
    pub requests: u64,
    /// connect + read + write + timeout, the kinds wrk reports.
    pub socket_errors: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Requests unanswered after wrk's timeout (2 s).
    pub timeout: u64,
    pub non_2xx: u64,
    /// Requests per second, as wrk reports it.
    pub rps: u64,
    /// Mean and max latency in microseconds, as wrk reports them.
    pub latency_avg_us: u64,
    pub latency_max_us: u64,
}

impl WrkResult {
    pub fn failed(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

impl Wrk {
    /// Starts `wrk -t2 -c32 -d{secs}s -H 'Host: {host}' http://{listen}/`.
    /// Panics with how to install wrk when it is missing.
    #[allow(dead_code)]
    pub fn start(listen: &str, host: &str, secs: u64) -> Wrk {
        Wrk::start_url(&format!("http://{listen}/"), host, secs)
    }

    /// The same against any URL, e.g. `https://127.0.0.1:8443/` (wrk
    /// sends no SNI for an address and checks no certificate).
    pub fn start_url(url: &str, host: &str, secs: u64) -> Wrk {
        let child = Command::new("wrk")
            .args([
                "-t2",
                "-c32",
                &format!("-d{secs}s"),
                "-H",
                &format!("Host: {host}"),
                url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("this needs wrk: `apt-get install -y wrk` (`.ci/run` does this)");
        Wrk { child: Some(child) }
    }

    /// Ends the load now (wrk prints its report on SIGINT) and parses it:
    /// for load that must last until something happens.
    #[allow(dead_code)]
    pub fn stop(self) -> WrkResult {
        if let Some(c) = &self.child {
            teal::drivers::managed::process::signal(c.id() as i32, libc::SIGINT);
        }
        self.finish()
    }

    /// Waits for wrk to finish and parses its report.
    pub fn finish(mut self) -> WrkResult {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let r = parse(&text);
        assert!(r.requests > 0, "wrk printed no request count:\n{text}");
        r
    }
}

fn number_after(text: &str, key: &str) -> u64 {
    text.split(key)
        .nth(1)
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Parses wrk's text report.
pub fn parse(text: &str) -> WrkResult {
    let kind = |k| text.split("Socket errors:").nth(1).map_or(0, |s| number_after(s, k));
    let (connect, read, write, timeout) = (kind("connect "), kind("read "), kind("write "), kind("timeout "));
    WrkResult {
        requests: text
            .split(" requests in")
            .next()
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        socket_errors: connect + read + write + timeout,
        connect,
        read,
        write,
        timeout,
        non_2xx: number_after(text, "Non-2xx or 3xx responses:"),
        rps: number_after(text, "Requests/sec:"),
        latency_avg_us: latency(text, 0),
        latency_max_us: latency(text, 2),
    }
}

/// The `n`th figure of wrk's `Latency` line (avg, stdev, max), in µs.
fn latency(text: &str, n: usize) -> u64 {
    let Some(line) = text.lines().find(|l| l.trim_start().starts_with("Latency")) else {
        return 0;
    };
    let Some(f) = line.split_whitespace().nth(n + 1) else {
        return 0;
    };
    let (num, unit) = f.split_at(f.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(f.len()));
    let v: f64 = num.parse().unwrap_or(0.0);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        _ => 0.0,
    };
    (v * scale) as u64
}
