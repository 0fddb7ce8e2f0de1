//! Secrets against the real parts: values encrypted by Debian's `age`
//! CLI (an age-keygen key, an ssh-keygen ed25519 key) and host files
//! under `policy.secret_files`, deployed by `teal daemon` and `teal
//! apply` into real containers with a managed HAProxy. A secret reaches
//! the container as `/run/secrets/<NAME>` and nowhere else: a rotation
//! restarts the color, and the values are in no `docker inspect`,
//! daemon log, event, `/status` or plan/diff output. A host that is not
//! a recipient deploys nothing of that service and everything else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::host::TestHost;
use common::{app_image, get_via, proxy_or_fail, teal, unique, DockerGuard};

/// Runs a tool, failing (never skipping) with how to install it.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: {e}: these tests need Debian's age and ssh-keygen: apt-get install -y age openssh-client (.ci/run does this)")
    });
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An age-keygen identity in `dir` (mode 0600): its path and recipient.
pub fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run(Command::new("age-keygen").arg("-o").arg(&key), "age-keygen");
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&key), "age-keygen -y");
    (key, recipient.trim().to_string())
}

/// `value` encrypted by the age CLI to `-r recipient` or `-R file`.
pub fn age_encrypt(flag: &str, to: &str, value: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("age")
        .args(["-a", flag, to])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("age is installed: apt-get install -y age (.ci/run does this)");
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "age -a {flag} {to}");
    String::from_utf8(out.stdout).unwrap()
}

/// A secrets file entry: `NAME:` with the armored value as a block.
pub fn entry(name: &str, armored: &str) -> String {
    let body: String = armored.lines().map(|l| format!("    {l}\n")).collect();
    format!("{name}:\n  age: |\n{body}")
}

/// FNV-1a 64 of `data` as hex: what the demo app answers for a secret.
fn fnv(data: &str) -> String {
    let h = data.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x}\n")
}

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

/// `docker inspect` of every container of `service`, as text.
fn inspect_all(service: &str) -> String {
    let ids = run(
        Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=teal.service={service}")]),
        "docker ps",
    );
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert!(!ids.is_empty(), "no containers of {service}");
    run(Command::new("docker").arg("inspect").args(&ids), "docker inspect")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_is_a_file_in_the_container_and_a_rotation_restarts_the_color_leaking_nowhere() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("secrets").await;
    let image = app_image(&h.docker).await;
    let keys = h.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (identity, recipient) = age_keygen(&keys, "host.key");
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
            (secrets_file.clone(), entry("DB", &age_encrypt("-r", &recipient, &v1))),
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
            (secrets_file.clone(), entry("DB", &age_encrypt("-r", &recipient, &v2))),
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
    let seen = [
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
}

/// The secret files under `dir` (one dir per container).
fn secret_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(dirs) = std::fs::read_dir(dir) else {
        return vec![];
    };
    dirs.flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .collect()
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
    let (_, stranger) = age_keygen(&keys, "stranger.key");
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
                entry("DB", &age_encrypt("-R", &host_pub, &v1)),
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
                entry("DB", &age_encrypt("-r", &stranger, &v2)),
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
    let damaged = age_encrypt("-R", &host_pub, &v2).replacen("\n", "\nAAAA", 2);
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

/// teal's own secret files pass the bind checks by an exemption that
/// covers exactly them: a service (the repo) naming one of those files,
/// or the dir, as a volume is held to `policy.volumes` like any path,
/// and refused; a stopped container with its secret files starts again.
#[tokio::test]
async fn the_secret_file_exemption_mounts_only_what_teal_wrote_for_the_container() {
    use std::collections::BTreeMap;
    use teal::drivers::docker::{DockerDriver, MountRules};
    use teal::spec::container::{ContainerSpec, SecretMount};
    use teal::spec::secret::{Delivery, SecretText};
    use teal::spec::{Color, RestartPolicy};

    common::docker_or_fail();
    let network = unique("teal-test-net");
    let (service, other) = (unique("own"), unique("thief"));
    let _guard = DockerGuard {
        services: vec![service.clone(), other.clone()],
        network: network.clone(),
    };
    let state = tempfile::tempdir().unwrap();
    let secrets_dir = std::fs::canonicalize(state.path()).unwrap().join("secrets");
    let rules = MountRules {
        policy: teal::policy::Policy {
            volumes: Some(vec!["/srv/teal-test-allowed/".into()]),
            ..Default::default()
        },
        secrets_dir: Some(secrets_dir.clone()),
        ..Default::default()
    };
    let docker = DockerDriver::connect(None, &network).await.unwrap().with_mounts(rules);
    docker.ensure_network().await.unwrap();
    let image = app_image(&docker).await;
    let spec = |service: &str, volumes: Vec<String>, secrets: BTreeMap<String, SecretMount>| ContainerSpec {
        service: service.to_string(),
        color: Color::Blue,
        image: image.clone(),
        port: 8080,
        env: BTreeMap::new(),
        command: None,
        volumes,
        labels: BTreeMap::new(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        secrets,
        env_key: Some(Default::default()),
    };
    let value = unique("value");
    let mine = BTreeMap::from([(
        "DB".to_string(),
        SecretMount {
            value: SecretText::new(value.clone()),
            delivery: Delivery::File,
        },
    )]);
    let own = spec(&service, vec![], mine);
    docker.ensure_color(&own, 1, "c1").await.unwrap();
    let files = secret_files(&secrets_dir.join(&service));
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), value);
    // Stopped and started again: the exemption holds at every start.
    docker.stop_color(&service, Color::Blue).await.unwrap();
    docker.ensure_color(&own, 1, "c1").await.unwrap();
    let inspect = inspect_all(&service);
    assert!(inspect.contains("\"Destination\": \"/run/secrets/DB\""), "{inspect}");
    assert!(!inspect.contains(&value), "the value is in no inspect: {inspect}");

    // The repo names teal's file, its dir, or the whole secrets dir.
    for volume in [
        format!("{}:/run/secrets/DB:ro", files[0].display()),
        format!("{}:/run/secrets:ro", files[0].parent().unwrap().display()),
        format!("{}:/stolen", secrets_dir.display()),
    ] {
        let e = docker
            .ensure_color(&spec(&other, vec![volume.clone()], BTreeMap::new()), 1, "c1")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is outside this host's policy (policy.volumes: /srv/teal-test-allowed/)")
                && e.contains("so teal did not create it"),
            "{volume}: {e}"
        );
    }
    docker.remove_service(&service).await.unwrap();
    assert!(
        secret_files(&secrets_dir.join(&service)).is_empty(),
        "removed with the color"
    );
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
    let (host_key, host) = age_keygen(keys.path(), "web-1.key");
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
