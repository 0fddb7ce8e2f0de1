//! What a hostile repo or container can do with mounts, against the real
//! Docker engine: a read-write bind that turns a second bind into a host
//! path outside `policy.volumes` by a symlink (Docker resolves bind
//! sources afresh at every start), and named volumes of other apps.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{docker_or_fail, proxy_or_fail, unique, DockerGuard};
use teal::drivers::docker::{DockerDriver, MountRules};
use teal::policy::Policy;
use teal::spec::container::ContainerSpec;
use teal::spec::{Color, RestartPolicy};

/// A `FROM scratch` image of tests/fixtures/bind_escape.rs, compiled
/// statically with the rustc that builds these tests.
async fn escape_image(docker: &DockerDriver) -> String {
    use sha2::Digest;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bind_escape.rs");
    let text = std::fs::read(&source).unwrap();
    let tag = format!("teal-test-escape:{}", &hex::encode(sha2::Sha256::digest(&text))[..12]);
    if docker.image_present(&tag).await.unwrap() {
        return tag;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV (install Rust: rustup.rs)");
    let host = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(String::from))
        .expect("rustc -vV names its host");
    let out = tempfile::tempdir().unwrap();
    let bin = out.path().join("bind-escape");
    let status = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "--target",
            &host,
            "-o",
        ])
        .arg(&bin)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "compiling {} statically failed", source.display());
    docker
        .build_app_image(&tag, &std::fs::read(&bin).unwrap(), &[])
        .await
        .expect("build the bind-escape image");
    tag
}

/// Appends `policy:` lines to the test host's config.
fn add_policy(h: &TestHost, lines: &str) {
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str("policy:\n");
    text.push_str(lines);
    std::fs::write(&h.config, text).unwrap();
}

/// `/tmp/...` as the kernel sees it, so paths compare with what Docker reports.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// Waits until the daemon refuses the work tree's head; the reason. Fails
/// at once when `leaked` appears: the attack worked.
async fn until_refused(h: &TestHost, leaked: &Path) -> String {
    let head = common::git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    loop {
        if let Ok(secret) = std::fs::read_to_string(leaked) {
            panic!(
                "a container read {secret:?}, a file it must not reach, through a mount the policy admitted\n{}",
                h.log_text()
            );
        }
        // The status API answers once the daemon is up.
        if let Ok((200, body)) = common::try_get_via(&h.api, "localhost", "/status").await {
            let s: serde_json::Value = serde_json::from_str(&body).unwrap();
            if s["refused"]["commit"].as_str() == Some(head.as_str()) {
                return s["refused"]["reason"].as_str().unwrap().to_string();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "head not refused within 60 s; containers: {:?}\n{}",
            h.ps("{{.Names}} {{.Status}}"),
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_read_write_bind_cannot_turn_a_second_bind_into_a_host_path_outside_the_policy() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("escape").await;
    let image = escape_image(&h.docker).await;
    let dirs = tempfile::tempdir().unwrap();
    let (allowed, outside) = (real(dirs.path()).join("allowed"), real(dirs.path()).join("outside"));
    std::fs::create_dir_all(allowed.join("app/sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "the host's root\n").unwrap();
    h.managed_config("haproxy");
    add_policy(&h, &format!("  volumes: ['{}/']\n", allowed.display()));
    let (app, sub) = (allowed.join("app"), allowed.join("app/sub"));
    let extra = format!(
        "env: {{OUTSIDE: '{}'}}\nvolumes: ['{}:/data', '{}:/sub:ro']\n",
        outside.display(),
        app.display(),
        sub.display()
    );
    h.push("escape", &h.service("blue", &image, None, &extra));
    let _daemon = h.start_daemon();

    let reason = until_refused(&h, &app.join("leaked")).await;
    let file = format!("services/{}.yaml:", h.svc);
    for want in [
        file.as_str(),
        &format!("bind source {} is inside {}", sub.display(), app.display()),
        "read-write",
        "read-only",
    ] {
        assert!(reason.contains(want), "{want:?} not in: {reason}");
    }
    assert_eq!(h.ps("{{.Names}}"), Vec::<String>::new(), "nothing was created");
    assert!(sub.is_dir() && !app.join("leaked").exists());
}

/// A Docker driver whose bind mounts must stay under `allowed`, and the
/// blue spec of a fresh service of the bind-escape image with `volumes`.
async fn driver(allowed: &Path, volumes: &[String]) -> (DockerDriver, ContainerSpec, DockerGuard) {
    docker_or_fail();
    let network = unique("teal-mounts");
    let service = unique("mounts");
    let docker = DockerDriver::connect(None, &network).await.unwrap();
    docker.ensure_network().await.unwrap();
    let guard = DockerGuard {
        services: vec![service.clone()],
        network,
    };
    let rules = MountRules {
        policy: Policy {
            volumes: Some(vec![format!("{}/", allowed.display())]),
            ..Default::default()
        },
        docker_sockets: vec![PathBuf::from("/var/run/docker.sock")],
        secrets_dir: None,
    };
    let spec = ContainerSpec {
        service,
        color: Color::Blue,
        image: escape_image(&docker).await,
        port: 8080,
        env: BTreeMap::new(),
        command: None,
        volumes: volumes.to_vec(),
        labels: BTreeMap::new(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        secrets: Default::default(),
        env_key: None,
        run_image: None,
        digest: None,
    };
    (docker.with_mounts(rules), spec, guard)
}

fn docker_inspect(name: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn docker_is_given_the_resolved_bind_source_and_the_spec_hash_stays() {
    let dirs = tempfile::tempdir().unwrap();
    let allowed = real(dirs.path()).join("allowed");
    std::fs::create_dir_all(allowed.join("data-v1")).unwrap();
    std::os::unix::fs::symlink(allowed.join("data-v1"), allowed.join("data")).unwrap();
    let written = format!("{}:/sub:ro", allowed.join("data").display());
    let (docker, spec, _guard) = driver(&allowed, std::slice::from_ref(&written)).await;
    docker.ensure_color(&spec, 1, "c1").await.unwrap();

    let name = spec.container_name(0);
    assert_eq!(
        docker_inspect(&name, "{{range .Mounts}}{{.Source}}{{end}}"),
        allowed.join("data-v1").display().to_string(),
        "Docker resolves the path again at each start: it must get the path the policy admitted"
    );
    // The label keeps the spec as written, so an upgraded teal replaces nothing.
    assert_eq!(
        docker_inspect(&name, "{{index .Config.Labels \"teal.spec\"}}"),
        spec.hash()
    );
    assert_eq!(spec.volumes, [written]);
}

#[tokio::test]
async fn a_bind_source_swapped_for_a_symlink_while_stopped_is_never_mounted() {
    let dirs = tempfile::tempdir().unwrap();
    let (allowed, outside) = (real(dirs.path()).join("allowed"), real(dirs.path()).join("outside"));
    for d in [allowed.join("out"), allowed.join("data"), outside.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("secret"), "the host's root\n").unwrap();
    let volumes = [
        format!("{}:/data", allowed.join("out").display()),
        format!("{}:/sub:ro", allowed.join("data").display()),
    ];
    let (docker, spec, _guard) = driver(&allowed, &volumes).await;
    docker.ensure_color(&spec, 1, "c1").await.unwrap();
    let name = spec.container_name(0);
    assert_eq!(docker_inspect(&name, "{{.State.Running}}"), "true");

    // While it is stopped, the admitted directory becomes a symlink out of
    // the policy (what a container with write access to its parent could do).
    Command::new("docker")
        .args(["stop", "-t", "1", &name])
        .output()
        .unwrap();
    std::fs::remove_dir(allowed.join("data")).unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("data")).unwrap();

    let err = docker.ensure_color(&spec, 1, "c1").await.map(|_| ());
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Ok(secret) = std::fs::read_to_string(allowed.join("out/leaked")) {
        panic!("the container read {secret:?} from outside policy.volumes (ensure_color: {err:?})");
    }
    let err = err.expect_err("starting it again must be refused").to_string();
    for want in [
        spec.service.as_str(),
        "blue",
        name.as_str(),
        &allowed.join("data").display().to_string(),
        "outside this host's policy",
        "traffic stays",
    ] {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
    assert_eq!(docker_inspect(&name, "{{.State.Running}}"), "false");
}

/// Named volumes removed on drop, after the containers of `service` that
/// use them.
struct Volumes {
    service: String,
    names: Vec<String>,
}

impl Drop for Volumes {
    fn drop(&mut self) {
        let label = format!("label=teal.service={}", self.service);
        let out = Command::new("docker").args(["ps", "-aq", "--filter", &label]).output();
        let ids: Vec<String> = out
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).output();
        }
        let _ = Command::new("docker").args(["volume", "rm"]).args(&self.names).output();
    }
}

#[tokio::test]
async fn a_service_cannot_mount_another_apps_named_volume() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("volumes").await;
    let image = escape_image(&h.docker).await;
    let dirs = tempfile::tempdir().unwrap();
    let allowed = real(dirs.path()).join("allowed");
    std::fs::create_dir_all(allowed.join("out")).unwrap();
    // Another app's database on the same engine.
    let (theirs, ours) = (unique("billing-db"), format!("{}-data", h.svc));
    let _volumes = Volumes {
        service: h.svc.clone(),
        names: vec![theirs.clone(), ours.clone()],
    };
    let status = Command::new("docker")
        .args(["volume", "create", &theirs])
        .output()
        .unwrap();
    assert!(status.status.success(), "docker volume create {theirs}");
    let data = docker_inspect_volume(&theirs);
    std::fs::write(Path::new(&data).join("secret"), "billing's password\n").unwrap();

    h.managed_config("haproxy");
    add_policy(&h, &format!("  volumes: ['{}/']\n", allowed.display()));
    let out = format!("{}:/data", allowed.join("out").display());
    h.push(
        "steal",
        &h.service(
            "blue",
            &image,
            None,
            &format!("volumes: ['{out}', '{theirs}:/sub:ro']\n"),
        ),
    );
    let _daemon = h.start_daemon();
    let reason = until_refused(&h, &allowed.join("out/leaked")).await;
    for want in [
        format!("services/{}.yaml:", h.svc),
        format!("named volume {theirs} is not named after service {}", h.svc),
        format!("rename it {}-", h.svc),
        "policy.named_volumes".to_string(),
    ] {
        assert!(reason.contains(&want), "{want:?} not in: {reason}");
    }
    assert_eq!(h.ps("{{.Names}}"), Vec::<String>::new(), "nothing was created");

    // Its own volume (named after it) is mounted.
    h.push(
        "own volume",
        &h.service("blue", &image, None, &format!("volumes: ['{out}', '{ours}:/sub:ro']\n")),
    );
    let start = Instant::now();
    let name = format!("teal-{}-blue-0", h.svc);
    while docker_inspect(&name, "{{range .Mounts}}{{.Name}} {{end}}") != ours {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{ours} never mounted\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn docker_inspect_volume(name: &str) -> String {
    let out = Command::new("docker")
        .args(["volume", "inspect", "-f", "{{.Mountpoint}}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn swarm_mode_refuses_bind_mounts_where_they_are_written() {
    let repo = common::Repo::new();
    let svc = common::service("blue", Some("web:1"), None, "web.test");
    repo.commit(
        "binds",
        &[(
            "services/web.yaml",
            Some(&format!("{svc}volumes: ['/srv/web:/data:ro', 'web-data:/d']\n")),
        )],
    );
    let config = repo.path().join("daemon.yaml");
    std::fs::write(
        &config,
        "repo: {url: /nowhere}\ndocker: {mode: swarm}\nproxy: {kind: haproxy}\npolicy: {volumes: [/srv/]}\n",
    )
    .unwrap();
    let r = common::teal(repo.path(), &["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("services/web.yaml:9:11: bind mount of /srv/web: in swarm mode a task may run on any node, where teal cannot check the path (or what its symlinks point at); use a named volume (name:/target)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 error"), "{}", r.stdout);
}
