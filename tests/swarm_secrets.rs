//! Secrets in `docker.mode: swarm`, on a real one-node Swarm: an
//! age-encrypted value reaches the tasks as the file `/run/secrets/<NAME>`
//! through a Swarm secret named after its value's keyed digest, never in
//! the service's spec; a rotation makes a new Swarm secret (Swarm secrets
//! cannot change) while the warm color keeps the old one, and a secret no
//! color uses any more is removed. A secret asked `as: env` is refused.

mod common;

use common::age::{encrypt, entry, fnv, keygen};
use common::host::TestHost;
use common::swarm::{docker, swarm_config, until, SwarmGuard};
use common::{app_image_version, get_via, proxy_or_fail};

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

/// The names of the service's Swarm secrets.
fn swarm_secrets(svc: &str) -> Vec<String> {
    let out = docker(&[
        "secret",
        "ls",
        "--filter",
        &format!("label=teal.service={svc}"),
        "--format",
        "{{.Name}}",
    ]);
    let mut names: Vec<String> = out.lines().map(String::from).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_a_swarm_secret_file_rotated_by_name_and_removed_when_unused() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swsecret").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let (v1, v2) = (
        app_image_version(&h.docker, "1.0", true).await,
        app_image_version(&h.docker, "2.0", true).await,
    );
    swarm_config(&h, None);
    let (key, recipient) = keygen(h.dir.path(), "age.key");
    let mut config = std::fs::read_to_string(&h.config).unwrap();
    config.push_str(&format!("secrets: {{identity_file: {}}}\n", key.display()));
    std::fs::write(&h.config, config).unwrap();
    let (s1, s2) = (common::unique("swarm-pw-one"), common::unique("swarm-pw-two"));
    let secrets_file = format!("secrets/{}.yaml", h.svc);
    let service_file = format!("services/{}.yaml", h.svc);
    let (blue, green) = (format!("{}-blue", h.svc), format!("{}-green", h.svc));

    push_files(
        &h,
        "web 1.0 with DB",
        &[
            (service_file.clone(), h.service("blue", &v1, None, "")),
            (secrets_file.clone(), entry("DB", &encrypt("-r", &recipient, &s1))),
        ],
    );
    let _d = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&s1)));
    let first = swarm_secrets(&h.svc);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with(&format!("teal-{}-DB-", h.svc)), "{first:?}");
    assert_eq!(
        docker(&[
            "service",
            "inspect",
            &blue,
            "--format",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{.File.Name}} {{printf \"%o\" .File.Mode}}{{end}}"
        ]),
        format!("{} DB 400", first[0])
    );

    // A rotation: green gets a new Swarm secret, blue (warm) keeps its own.
    push_files(
        &h,
        "web 2.0, DB rotated",
        &[
            (service_file.clone(), h.service("green", &v1, Some(&v2), "")),
            (secrets_file.clone(), entry("DB", &encrypt("-r", &recipient, &s2))),
        ],
    );
    h.until_serves("2.0 green\n", 90).await;
    assert_eq!(get_via(&h.listen, &h.host, "/secret/DB").await, (200, fnv(&s2)));
    let both = swarm_secrets(&h.svc);
    assert_eq!(both.len(), 2, "the warm color keeps the old value: {both:?}");
    assert!(both.contains(&first[0]), "{both:?}");

    let specs = docker(&["service", "inspect", &blue, &green]);
    assert!(
        !specs.contains(&s1) && !specs.contains(&s2),
        "a value in a service spec:\n{specs}"
    );

    // as: env would put the value in the service's spec: refused, named.
    push_files(
        &h,
        "DB as env",
        &[(
            service_file.clone(),
            h.service("blue", &v1, Some(&v2), "secrets: {DB: {as: env}}\n"),
        )],
    );
    h.until_logged("secret DB with as: env is not supported in docker.mode: swarm", 60)
        .await;
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");

    // The service goes: its Swarm services, then its secrets.
    std::fs::remove_file(h.work.join(&service_file)).unwrap();
    std::fs::remove_file(h.work.join(&secrets_file)).unwrap();
    push_files(&h, "web removed", &[("services/.gitkeep".into(), String::new())]);
    until("the service's Swarm secrets removed", 90, &h, || {
        swarm_secrets(&h.svc).is_empty()
    })
    .await;
    let left = docker(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!left.lines().any(|l| l == blue || l == green), "{left}");

    // No value anywhere: services' specs, secrets' specs, the daemon's log.
    let shown = format!(
        "{}\n{}",
        h.log_text(),
        std::fs::read_to_string(h.state.join("events.jsonl")).unwrap_or_default()
    );
    for v in [&s1, &s2] {
        assert!(!shown.contains(v.as_str()), "a secret value leaked:\n{shown}");
    }
}
