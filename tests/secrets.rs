//! Secrets against the real parts: values encrypted by Debian's `age`
//! CLI (an age-keygen key, an ssh-keygen ed25519 key) and host files
//! under `policy.secret_files`, deployed by `teal daemon` and `teal
//! apply` into real containers with a managed HAProxy. A secret reaches
//! the container as `/run/secrets/<NAME>` and nowhere else: a rotation
//! restarts the color, and the values are in no `docker inspect`,
//! daemon log, event, `/status` or plan/diff output. A host that is not
//! a recipient deploys nothing of that service and everything else.

mod common;

use std::path::Path;
use std::process::Command;

use common::age::{encrypt, entry, fnv, inspect_all, keygen, run, secret_files};
use common::host::TestHost;
use common::{app_image, get_via, proxy_or_fail, teal, unique, DockerGuard};

/// Appends host config lines.
fn add_config(h: &TestHost, lines: &str) {
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str(lines);
    std::fs::write(&h.config, text).unwrap();
}

/// Writes `files` into the work tree, commits and pushes them.
fn push_files(h: &TestHost, msg: &str, files: &[(String, String)]) {
    for (path, text) in files {
        let full = h.work.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    common::git_in(&h.work, &["add", "-A"]);
    common::git_in(&h.work, &["commit", "-qm", msg]);
    common::git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_is_a_file_in_the_container_and_a_rotation_restarts_the_color_leaking_nowhere() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("secrets").await;
    let since = unix_now();
    let image = app_image(&h.docker).await;
    let keys = h.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (identity, recipient) = keygen(&keys, "host.key");
    let host_files = h.dir.path().join("host-secrets");
    std::fs::create_dir(&host_files).unwrap();
    let token = format!("tok-{}", unique("t"));
    std::fs::write(host_files.join("token"), format!("{token}\n")).unwrap();
    h.managed_config("haproxy");
    add_config(
        &h,
        &format!(
            "policy: {{secret_files: ['{}/']}}\nsecrets: {{identity_file: {}}}\n",
            host_files.display(),
            identity.display()
        ),
    );
    let (v1, v2) = (
        format!("postgres://app:{}@db/shop", unique("one")),
        format!("postgres://app:{}@db/shop", unique("two")),
    );
    let secrets_file = format!("secrets/{}.yaml", h.svc);
    let extra = format!("env_from_files: {{TOKEN: {}/token}}\n", host_files.display());
    let svc_file = format!("services/{}.yaml", h.svc);
    push_files(
        &h,
        "web with a database",
        &[
            (svc_file.clone(), h.service("blue", &image, None, &extra)),
            (secrets_file.clone(), entry("DB", &encrypt("-r", &recipient, &v1))),
        ],
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&v1)));
    assert_eq!(get_via(&h.listen, &h.host, "/env/TOKEN").await, (200, fnv(&token)));
    assert_eq!(
        get_via(&h.listen, &h.host, "/env/DB").await.0,
        404,
        "DB is a file, not env"
    );
    // On the host: 0400 files in a 0700 dir under the state dir.
    let files = secret_files(&h.state.join("secrets").join(&h.svc));
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert_eq!(
        std::fs::metadata(h.state.join("secrets")).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // Rotated by a commit: the new value on the idle color, which takes over.
    push_files(
        &h,
        "rotate the database password",
        &[
            (svc_file.clone(), h.service("green", &image, Some(&image), &extra)),
            (secrets_file.clone(), entry("DB", &encrypt("-r", &recipient, &v2))),
        ],
    );
    h.until_only_serves("1.0 green\n", 60).await;
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&v2)));
    // The idle blue is kept current too, and the first value's file is gone.
    let current = || {
        let files = secret_files(&h.state.join("secrets").join(&h.svc));
        files.len() == 2 && files.iter().all(|f| std::fs::read_to_string(f).is_ok_and(|t| t == v2))
    };
    let start = std::time::Instant::now();
    while !current() && start.elapsed().as_secs() < 30 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let files = secret_files(&h.state.join("secrets").join(&h.svc));
    assert_eq!(files.len(), 2, "one file per container, none left behind: {files:?}");
    for f in &files {
        // Readable by the test as root only: mode 0400.
        assert_eq!(std::fs::read_to_string(f).unwrap(), v2);
    }

    // Nowhere else.
    let status = h.status().await.to_string();
    let plan = teal(
        h.dir.path(),
        &["plan", "--config", h.config.to_str().unwrap(), "--format", "json"],
    );
    let diff = teal(&h.work, &["diff", "--base", "HEAD~1", "--head", "HEAD"]);
    assert!(diff.stdout.contains("DB: changed (secret)"), "{diff:?}");
    let events = std::fs::read_to_string(h.state.join("events.jsonl")).unwrap();
    let dashboard = common::get_via(&h.api, "localhost", "/").await.1;
    let metrics = common::get_via(&h.api, "localhost", "/metrics").await.1;
    let docker_events = run(
        std::process::Command::new("docker").args([
            "events",
            "--since",
            &since,
            "--until",
            &unix_now(),
            "--format",
            "{{json .}}",
        ]),
        "docker events",
    );
    assert!(
        docker_events.contains(&h.svc),
        "docker events saw the service's containers"
    );
    let seen = [
        ("the dashboard", dashboard),
        ("/metrics", metrics),
        ("docker events", docker_events),
        ("docker inspect", inspect_all(&h.svc)),
        ("the daemon log", h.log_text()),
        ("events.jsonl", events),
        ("/status", status),
        ("teal plan", format!("{plan:?}")),
        ("teal diff", format!("{diff:?}")),
    ];
    for (what, text) in &seen {
        for v in [&v1, &v2] {
            assert!(!text.contains(v.as_str()), "{what} shows a secret value:\n{text}");
        }
        assert!(
            !text.contains("one-") && !text.contains("two-"),
            "{what} shows part of a secret"
        );
    }
    // Every process's arguments: the whole value only (other programs on
    // the machine may well have "one-" in theirs).
    let args = command_lines();
    for v in [&v1, &v2] {
        assert!(!args.contains(v.as_str()), "a process's arguments hold a secret value");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_is_not_a_recipient_keeps_that_service_as_it_runs_and_deploys_the_others() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("notrecipient").await;
    let image = app_image(&h.docker).await;
    let keys = h.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    // This host decrypts with an ssh-keygen ed25519 key (its host key).
    let host_key = keys.join("ssh_host_ed25519_key");
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key),
        "ssh-keygen",
    );
    let host_pub = format!("{}.pub", host_key.display());
    let (_, stranger) = keygen(&keys, "stranger.key");
    h.managed_config("haproxy");
    add_config(&h, &format!("secrets: {{identity_file: {}}}\n", host_key.display()));
    let other = format!("{}-b", h.svc);
    let _guard = DockerGuard {
        services: vec![other.clone()],
        network: format!("{}-unused", h.network),
    };
    let other_host = format!("{other}.test");
    let other_file = |active: &str, green: bool| {
        let green = if green {
            format!("green: {{image: {image}}}\n")
        } else {
            String::new()
        };
        format!(
            "active: {active}\nblue: {{image: {image}}}\n{green}port: 8080\nroute: {{host: {other_host}}}\nhealth: {{http: {{path: /healthz}}, interval: 100ms, successes: 2}}\nswitch: {{drain: 100ms}}\n"
        )
    };
    let (v1, v2) = (unique("first"), unique("second"));
    push_files(
        &h,
        "two services",
        &[
            (format!("services/{}.yaml", h.svc), h.service("blue", &image, None, "")),
            (
                format!("secrets/{}.yaml", h.svc),
                entry("DB", &encrypt("-R", &host_pub, &v1)),
            ),
            (format!("services/{other}.yaml"), other_file("blue", false)),
        ],
    );
    let apply = || teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()]);
    let first = apply();
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&v1)));

    // Now encrypted to another key only, while the other service moves on.
    push_files(
        &h,
        "a secret this host cannot read",
        &[
            (
                format!("services/{}.yaml", h.svc),
                h.service("green", &image, Some(&image), ""),
            ),
            (
                format!("secrets/{}.yaml", h.svc),
                entry("DB", &encrypt("-r", &stranger, &v2)),
            ),
            (format!("services/{other}.yaml"), other_file("green", true)),
        ],
    );
    let second = apply();
    assert_eq!(second.code, 1, "{second:?}");
    let want = format!(
        "{}: refused: cannot deploy {} on this host: secret DB (secrets/{}.yaml): this host is not one of its recipients",
        h.svc, h.svc, h.svc
    );
    assert!(second.stderr.contains(&want), "wanted {want:?} in:\n{}", second.stderr);
    assert_eq!(
        get_via(&h.listen, &h.host, "/").await,
        (200, "1.0 blue\n".into()),
        "traffic stays"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&v1)));
    assert_eq!(
        get_via(&h.listen, &other_host, "/").await,
        (200, "1.0 green\n".into()),
        "the other goes on"
    );
    // A damaged value says so.
    let damaged = encrypt("-R", &host_pub, &v2).replacen("\n", "\nAAAA", 2);
    push_files(
        &h,
        "damaged",
        &[(format!("secrets/{}.yaml", h.svc), entry("DB", &damaged))],
    );
    let third = apply();
    assert!(
        third.stderr.contains("secret DB (secrets/")
            && (third.stderr.contains("damaged") || third.stderr.contains("not an age ciphertext")),
        "{third:?}"
    );
    for out in [&first, &second, &third] {
        assert!(!out.stderr.contains(&v1) && !out.stderr.contains(&v2), "{out:?}");
    }
}

/// `teal secret set NAME` with the value on stdin, in `dir`.
fn secret_set(dir: &Path, service: &str, name: &str, value: &str) -> common::Run {
    use std::io::Write;
    let mut child = Command::new(common::teal_bin())
        .args(["secret", "set", service, name])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    common::Run::from(child.wait_with_output().unwrap())
}

/// `teal secret set` encrypts to teal.yaml's recipients (what the age CLI
/// decrypts, with either kind of key), keeps the file's comments and
/// order, and neither it, `ls` nor `diff` prints a value.
#[test]
fn secret_set_writes_what_the_age_cli_decrypts_keeping_the_file_and_ls_names_no_value() {
    let repo = common::Repo::new();
    let keys = tempfile::tempdir().unwrap();
    let (host_key, host) = keygen(keys.path(), "web-1.key");
    let ssh_key = keys.path().join("alice");
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&ssh_key),
        "ssh-keygen",
    );
    let alice = std::fs::read_to_string(keys.path().join("alice.pub")).unwrap();
    let teal_yaml = format!(
        "secrets:\n  recipients:\n    web-1: {host}\n    alice: {}\n",
        alice.trim()
    );
    repo.commit(
        "web",
        &[
            ("teal.yaml", Some(&teal_yaml)),
            ("services/web.yaml", Some(&common::service("blue", Some("web:1"), None, "shop.example.com"))),
            ("secrets/web.yaml", Some("# rotated by the on-call\nOTHER:\n  age: |\n    -----BEGIN AGE ENCRYPTED FILE-----\n    YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhYWEK\n    -----END AGE ENCRYPTED FILE-----\n")),
        ],
    );
    let value = unique("postgres://u:pw");
    let set = secret_set(repo.path(), "web", "DB", &format!("{value}\n"));
    assert_eq!(set.code, 0, "{set:?}");
    let text = std::fs::read_to_string(repo.path().join("secrets/web.yaml")).unwrap();
    assert!(text.starts_with("# rotated by the on-call\nOTHER:\n"), "{text}");
    assert!(
        text.contains("DB:\n  recipients: [alice, web-1]\n  age: |\n    -----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{text}"
    );
    // The reference tool decrypts it with either recipient's key.
    let armored: String = text
        .split("DB:\n")
        .nth(1)
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    for key in [&host_key, &ssh_key] {
        let out = {
            use std::io::Write;
            let mut c = Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(key)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(armored.as_bytes()).unwrap();
            c.wait_with_output().unwrap()
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            value,
            "age -d -i {}",
            key.display()
        );
    }
    repo.commit("set DB", &[]);
    let again = secret_set(repo.path(), "web", "DB", "rotated");
    assert_eq!(again.code, 0, "{again:?}");
    let after = std::fs::read_to_string(repo.path().join("secrets/web.yaml")).unwrap();
    assert!(
        after.starts_with("# rotated by the on-call\nOTHER:\n") && after.matches("DB:").count() == 1,
        "{after}"
    );
    repo.commit("rotate DB", &[]);
    let ls = teal(repo.path(), &["secret", "ls", "web"]);
    assert_eq!(ls.code, 0, "{ls:?}");
    assert!(
        ls.stdout
            .contains("DB\tfile /run/secrets/DB\tage in secrets/web.yaml, readable by alice, web-1"),
        "{ls:?}"
    );
    assert!(ls.stdout.contains("OTHER\t"), "{ls:?}");
    let diff = teal(repo.path(), &["diff", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(diff.code, 2, "{diff:?}");
    assert!(
        diff.stdout.contains("secret DB: changed (secret)") && !diff.stdout.contains("OTHER"),
        "{diff:?}"
    );
    for out in [&set, &again, &ls, &diff] {
        assert!(
            !format!("{out:?}").contains(&value) && !format!("{out:?}").contains("rotated\""),
            "{out:?}"
        );
    }
    // No recipients: nothing is written, and the message says what to add.
    repo.commit("no recipients", &[("teal.yaml", Some("network: teal\n"))]);
    let none = secret_set(repo.path(), "web", "NEW", "x");
    assert!(
        none.code != 0 && none.stderr.contains("teal.yaml lists no secrets.recipients"),
        "{none:?}"
    );
}

/// Now as Unix seconds, for `docker events --since/--until`.
fn unix_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// Every process's arguments on this machine (teal, its proxy, Docker
/// and the containers' processes), NUL-separated as /proc has them.
fn command_lines() -> String {
    let mut out = String::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
            out.push_str(&String::from_utf8_lossy(&cmd));
            out.push('\n');
        }
    }
    assert!(out.contains("teal"), "teal's own process is among them");
    out
}
