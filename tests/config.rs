//! `teal config`: the defaults it prints are a host config that checks
//! clean, and a file with mistakes gets every unknown field at once.

mod common;

use common::teal;

#[test]
fn show_defaults_prints_a_config_that_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let shown = teal(dir.path(), &["config", "--show-defaults"]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.contains("  reload: [systemctl, reload, haproxy]"),
        "{}",
        shown.stdout
    );
    std::fs::write(dir.path().join("daemon.yaml"), &shown.stdout).unwrap();
    let check = teal(dir.path(), &["config", "--check", "daemon.yaml"]);
    assert_eq!(
        (check.code, check.stdout.as_str()),
        (0, "daemon.yaml: ok\n"),
        "{check:?}"
    );
}

#[test]
fn check_reports_every_unknown_field_with_its_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("daemon.yaml"),
        "repo:\n  url: /srv/deploy\n  pol: 5s\nproxy:\n  kind: nginx\n  nginx: {conf_dri: /etc/nginx/conf.d}\nlisen: 127.0.0.1:9470\n",
    )
    .unwrap();
    let check = teal(dir.path(), &["config", "--check", "daemon.yaml"]);
    assert_eq!(check.code, 1, "{check:?}");
    let lines: Vec<&str> = check.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", check.stderr);
    assert!(
        lines[0].starts_with(
            "daemon.yaml:3:3: repo: unknown field \"pol\", expected one of \"url\", \"branch\", \"path\", \"poll\""
        ),
        "{}",
        check.stderr
    );
    assert!(
        lines[1].starts_with("daemon.yaml:6:11: proxy.nginx: unknown field \"conf_dri\""),
        "{}",
        check.stderr
    );
    assert!(
        lines[2].starts_with("daemon.yaml:7:1: unknown field \"lisen\""),
        "{}",
        check.stderr
    );
    // The daemon refuses the same file with the same errors.
    let daemon = teal(dir.path(), &["daemon", "--config", "daemon.yaml"]);
    assert_eq!(daemon.code, 1);
    assert!(
        daemon
            .stderr
            .contains("daemon.yaml:6:11: proxy.nginx: unknown field \"conf_dri\""),
        "{}",
        daemon.stderr
    );
}

#[test]
fn check_without_a_file_reads_the_default_path() {
    let dir = tempfile::tempdir().unwrap();
    let check = teal(dir.path(), &["config", "--check"]);
    if std::path::Path::new("/etc/teal/daemon.yaml").exists() {
        assert!(check.stdout.contains("/etc/teal/daemon.yaml") || check.stderr.contains("/etc/teal/daemon.yaml"));
    } else {
        assert_eq!(check.code, 1);
        assert!(
            check.stderr.starts_with("/etc/teal/daemon.yaml: cannot read it"),
            "{check:?}"
        );
    }
}
