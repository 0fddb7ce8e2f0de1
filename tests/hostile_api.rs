//! Attacks on the daemon's own surface (issue 22), each reproduced
//! against the real `teal daemon` binary: empty secret files, a flood of
//! idle or slow connections to the status API, DNS rebinding through a
//! foreign Host header, and terminal escapes in repo-controlled text.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{proxy_or_fail, try_get_via};

/// Appends top-level lines to the host config `write_config` wrote.
fn append_config(h: &TestHost, lines: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(&h.config).unwrap();
    f.write_all(lines.as_bytes()).unwrap();
}

/// Waits up to `secs` for the daemon to exit; its exit code, or `None`
/// while it still runs.
fn exit_within(d: &mut common::process::Daemon, secs: u64) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if let Some(s) = d.0.try_wait().unwrap() {
            return Some(s.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn an_empty_secret_file_stops_the_daemon_at_start() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("emptysecret").await;
    let secret = h.dir.path().join("secret");
    let s = secret.display();
    // (setting, added to the repo mapping, top-level lines)
    let cases = [
        ("host.token_file", String::new(), format!("host: {{token_file: {s}}}\n")),
        (
            "repo.webhook_secret_file",
            format!(", webhook_secret_file: {s}"),
            String::new(),
        ),
        ("repo.token_file", format!(", token_file: {s}"), String::new()),
        (
            "notify[0].secret_file",
            String::new(),
            format!("notify:\n  - {{url: http://127.0.0.1:9/hook, secret_file: {s}}}\n"),
        ),
        (
            "notify[0].github.token_file",
            String::new(),
            format!("notify:\n  - github: {{repo: ops/deploy, token_file: {s}}}\n"),
        ),
    ];
    for (what, repo, lines) in cases {
        std::fs::write(&secret, " \n\t\n").unwrap();
        h.write_config_with(
            &repo,
            &format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen),
        );
        append_config(&h, &lines);
        let _ = std::fs::remove_file(&h.log);
        let mut d = h.start_daemon();
        let Some(code) = exit_within(&mut d, 20) else {
            // The attack: with an empty token the API is open to anyone.
            let got = try_get_via(&h.api, "localhost", "/status").await;
            panic!(
                "{what} empty: the daemon runs; GET /status without a token: {got:?}; log:\n{}",
                h.log_text()
            );
        };
        let log = h.log_text();
        assert_eq!(code, 1, "{what}: {log}");
        assert!(
            log.contains(&format!("{what} {}: ", secret.display())) && log.contains("is empty"),
            "{what}: the error names the setting and the file:\n{log}"
        );
    }
}

#[tokio::test]
async fn teal_status_shows_terminal_escapes_of_a_commit_escaped_and_json_exact() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("escapes").await;
    let v1 = common::app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    // An author who retitles the terminal, and a subject that overwrites
    // its own line with a harmless one.
    let author = "Eve\x1b]0;pwned\x07\x1b[8m";
    let subject = "rm -rf /srv\r\x1b[2Kweb 1.0 again";
    std::fs::write(
        h.work.join(format!("services/{}.yaml", h.svc)),
        h.service("blue", &v1, None, "replicas: 1\n"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&h.work)
            .env("GIT_AUTHOR_NAME", author)
            .env("GIT_AUTHOR_EMAIL", "eve@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["add", "-A"]);
    git(&["-c", "commit.gpgsign=false", "commit", "-q", "-m", subject]);
    git(&["push", "-q", "origin", "HEAD:main"]);
    let head = common::git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    while h.status().await["applied_commit"] != head.as_str() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not applied:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let config = h.config.to_str().unwrap();
    let text = common::teal(h.dir.path(), &["status", "--config", config]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(!text.stdout.contains(['\x1b', '\r', '\x07']), "{:?}", text.stdout);
    assert!(
        text.stdout
            .contains("Eve\\u{1b}]0;pwned\\u{7}\\u{1b}[8m <eve@example.com>"),
        "{}",
        text.stdout
    );
    let json = common::teal(h.dir.path(), &["status", "--config", config, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        v["applied"]["author"],
        format!("{author} <eve@example.com>"),
        "JSON is exact"
    );
    assert_eq!(v["applied"]["message"], subject, "JSON is exact");
}

/// One raw request to the status API with `host` as its Host header (the
/// header a browser sends for the name in its address bar): (status, body).
async fn get_as(api: &str, host: &str, path: &str) -> (u16, String) {
    try_get_via(api, host, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} (Host: {host}) at {api}: {e}"))
}

#[tokio::test]
async fn a_foreign_host_header_dns_rebinding_is_refused() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("rebind").await;
    let webhook = h.dir.path().join("webhook_secret");
    std::fs::write(&webhook, "s3cret\n").unwrap();
    let proxy = format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen);
    h.write_config_with(&format!(", webhook_secret_file: {}", webhook.display()), &proxy);
    let mut daemon = h.start_daemon();
    let port = h.api.rsplit_once(':').unwrap().1;
    let start = Instant::now();
    while try_get_via(&h.api, "localhost", "/healthz").await.is_err() {
        assert!(exit_within(&mut daemon, 0).is_none(), "{}", h.log_text());
        assert!(start.elapsed() < Duration::from_secs(30), "{}", h.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A page at attacker.example whose name now resolves to 127.0.0.1.
    for path in ["/", "/status", "/events", "/metrics", "/healthz"] {
        for host in [
            "attacker.example",
            &format!("attacker.example:{port}"),
            "localhost.attacker.example",
        ] {
            let (code, body) = get_as(&h.api, host, path).await;
            assert_eq!(code, 421, "GET {path} with Host {host}: {body}");
            assert!(body.contains("host.names"), "the answer says what to do: {body}");
        }
    }
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        "LOCALHOST.".to_string(),
        h.api.clone(),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(get_as(&h.api, &host, "/status").await.0, 200, "Host {host}");
    }
    // The webhook is HMAC-signed and reached by whatever name the forge
    // uses: answered (here refused for its missing signature), not 421.
    let mut s = tokio::net::TcpStream::connect(&h.api).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(
        b"POST /hooks/git HTTP/1.1\r\nHost: git.example.com\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    drop(daemon);

    // A name this host is reached by, once listed, is accepted.
    append_config(&h, "host: {names: [teal.example.com, Status.Example.COM]}\n");
    let _daemon = h.start_daemon();
    let start = Instant::now();
    while try_get_via(&h.api, "localhost", "/healthz").await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", h.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for host in [
        "teal.example.com",
        &format!("teal.example.com:{port}"),
        "status.example.com",
    ] {
        assert_eq!(get_as(&h.api, host, "/status").await.0, 200, "Host {host}");
    }
    assert_eq!(get_as(&h.api, "attacker.example", "/status").await.0, 421);
}

/// `teal daemon` with its open files limited to `nofile` (soft and hard,
/// as `prlimit --nofile=256` sets them), its stderr appended to the log.
fn start_daemon_with_nofile(h: &TestHost, nofile: u64) -> common::process::Daemon {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&h.log)
        .unwrap();
    let mut cmd = std::process::Command::new(common::teal_bin());
    cmd.args(["daemon", "--config", h.config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stderr(log)
        .stdout(std::process::Stdio::null());
    // SAFETY: only setrlimit(2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    common::process::Daemon(cmd.spawn().unwrap())
}

/// A slowloris: `n` connections to `addr`, a third sending nothing, a
/// third a request head one byte a second, a third a whole head and then
/// its body one byte a second; each one the server closes is opened again
/// a second later, until the returned sender is dropped.
fn flood(addr: &str, n: usize) -> tokio::sync::watch::Sender<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (stop, stopped) = tokio::sync::watch::channel(());
    let slow_body = b"POST /hooks/git HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n";
    for i in 0..n {
        let (addr, mut stopped) = (addr.to_string(), stopped.clone());
        tokio::spawn(async move {
            let attack = async {
                loop {
                    if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
                        let mut head = b"GET /status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".iter().cycle();
                        if i % 3 == 2 && s.write_all(slow_body).await.is_err() {
                            continue;
                        }
                        let mut buf = [0u8; 256];
                        loop {
                            let byte = if i % 3 == 1 { *head.next().unwrap() } else { b'x' };
                            if i % 3 != 0 && s.write_all(&[byte]).await.is_err() {
                                break;
                            }
                            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                                Ok(Ok(0)) | Ok(Err(_)) => break,
                                _ => {}
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            };
            tokio::select! {
                _ = attack => {}
                _ = stopped.changed() => {}
            }
        });
    }
    stop
}

/// GET /healthz answered within `secs`, or what went wrong.
async fn healthz_within(api: &str, secs: u64) -> Result<(u16, String), String> {
    match tokio::time::timeout(Duration::from_secs(secs), try_get_via(api, "localhost", "/healthz")).await {
        Ok(Ok(got)) => Ok(got),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {secs} s")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_flood_past_the_fd_limit_starves_neither_healthz_nor_deploys() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("slowloris").await;
    let v1 = common::app_image_version(&h.docker, "1.0", true).await;
    let v2 = common::app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let daemon = start_daemon_with_nofile(&h, 256);
    h.until_serves("1.0 blue\n", 60).await;

    // More connections than the daemon may hold open files.
    let stop = flood(&h.api, 400);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..5 {
        let got = healthz_within(&h.api, 3).await;
        assert_eq!(got, Ok((200, "ok\n".into())), "under the flood; log:\n{}", h.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // SIGHUP re-reads the host config: it needs a file descriptor too.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    h.until_logged("SIGHUP: host config unchanged", 10).await;
    // A deploy needs Docker, git and the proxy: none of them may run out
    // of file descriptors.
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 90).await;
    assert_eq!(healthz_within(&h.api, 3).await, Ok((200, "ok\n".into())));
    drop(stop);
    let log = h.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("connections capped at a quarter of the open-file limit cap=64 nofile=256")
            && log.contains("status API at its connection cap"),
        "the flood reached the cap: {log}"
    );
}
