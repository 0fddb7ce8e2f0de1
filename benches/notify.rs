//! Does a receiver that is down slow deploys? The same blue -> green
//! deploy by `teal daemon` (real Docker, managed HAProxy), timed from the
//! push until the proxy serves the new version, with notify targets that
//! answer (a webhook and commit statuses on a local server answering 201)
//! and with targets that do not (a port nothing listens on, and a server
//! that accepts and never answers, for a webhook and commit statuses).
//! A fresh host per run; 5 runs each, interleaved.
//!
//! Run: `cargo bench --bench notify` (needs Docker and HAProxy).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{app_image_version, free_port, proxy_or_fail};

const RUNS: usize = 5;

/// A receiver answering 201 to every request, on a thread of its own.
fn answering() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .split("content-length:")
                        .nth(1)
                        .and_then(|r| r.split("\r\n").next())
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if req.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    url
}

/// A receiver that accepts connections and never answers.
fn silent() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || l.incoming().flatten().collect::<Vec<_>>());
    url
}

/// One deploy from push to serving, with `notify` in the host config.
async fn deploy(receivers_up: bool) -> Duration {
    let h = TestHost::new("bench-notify").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let secrets = tempfile::tempdir().unwrap();
    let (secret, token) = (secrets.path().join("secret"), secrets.path().join("token"));
    for f in [&secret, &token] {
        std::fs::write(f, "s3cret\n").unwrap();
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let (hook, api, api2) = if receivers_up {
        let up = answering();
        (up.clone(), up.clone(), up)
    } else {
        (format!("http://127.0.0.1:{}", free_port()), silent(), silent())
    };
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str(&format!(
        "notify:\n  - {{url: {hook}/hook, secret_file: {}}}\n  - {{url: {api2}/hook}}\n  - github: {{api: {api}, repo: ops/deploy, token_file: {}}}\n",
        secret.display(),
        token.display()
    ));
    std::fs::write(&h.config, text).unwrap();
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let start = Instant::now();
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    let took = start.elapsed();
    daemon.terminate();
    took
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[tokio::main]
async fn main() {
    proxy_or_fail("haproxy");
    let (mut up, mut down) = (vec![], vec![]);
    for run in 0..RUNS {
        up.push(deploy(true).await);
        down.push(deploy(false).await);
        eprintln!(
            "run {}: answering {}, down or silent {}",
            run + 1,
            ms(up[run]),
            ms(down[run])
        );
    }
    println!("push -> serving 2.0, {RUNS} runs each (min / median / max)");
    for (name, mut v) in [("answering", up), ("down or silent", down)] {
        v.sort();
        println!(
            "| {name} | {} | {} | {} |",
            ms(v[0]),
            ms(v[v.len() / 2]),
            ms(v[v.len() - 1])
        );
    }
}
