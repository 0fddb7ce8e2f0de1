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
fn exit_within(d: &mut common::host::Daemon, secs: u64) -> Option<i32> {
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
