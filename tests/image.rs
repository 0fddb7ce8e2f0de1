//! The container image of teal (packaging/docker): built FROM scratch by
//! `docker build` with no pull, it runs teal, reads a config and a git
//! repo mounted into it, and reaches Docker through the mounted socket.
//! tests/image_daemon.rs runs the daemon in it.

mod common;

use std::path::Path;
use std::process::Command;

use common::image::{ok, run, Image};

const TEAL: &str = env!("CARGO_BIN_EXE_teal");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `docker run --rm IMAGE ARGS` with these mounts (host path, container path).
fn docker_run(image: &str, mounts: &[(&Path, &str)], args: &[&str]) -> String {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm"]);
    for (host, inside) in mounts {
        cmd.arg("-v").arg(format!("{}:{inside}", host.display()));
    }
    ok(cmd.arg(image).args(args))
}

/// A config repo with one service, committed on main.
fn config_repo(dir: &Path) {
    std::fs::create_dir_all(dir.join("services")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("examples/config-repo/services/web.yaml"),
        dir.join("services/web.yaml"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        ok(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir))
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "one service"]);
}

#[test]
fn the_scratch_image_runs_teal_against_mounted_config_repo_and_docker_socket() {
    let info = run(Command::new("docker").arg("info"));
    assert!(
        info.status.success(),
        "docker info failed: Docker must run (.ci/run starts it)"
    );
    let image = Image::build();

    // FROM scratch: one layer, which the Dockerfile's COPY made.
    let layers = ok(Command::new("docker").args(["image", "inspect", "--format", "{{len .RootFS.Layers}}", &image.0]));
    assert_eq!(layers.trim(), "1");

    let version = docker_run(&image.0, &[], &["--version"]);
    assert!(
        version.starts_with("teal ") && version.contains("tested with: "),
        "{version}"
    );

    // The managed proxy the image carries runs there with its libraries,
    // Lua included (switch.pause is a Lua action).
    let haproxy =
        ok(Command::new("docker").args(["run", "--rm", "--entrypoint", "/usr/sbin/haproxy", &image.0, "-vv"]));
    assert!(
        haproxy.starts_with("HAProxy version 2.") && haproxy.contains("Built with Lua version"),
        "{haproxy}"
    );

    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    config_repo(&repo);
    let conf = dir.path().join("daemon.yaml");
    std::fs::write(
        &conf,
        "repo: {url: /repo}\nproxy: {kind: haproxy}\ndocker: {network: teal-test-image}\n",
    )
    .unwrap();
    let checked = docker_run(&image.0, &[(&conf, "/etc/teal/daemon.yaml:ro")], &["config", "--check"]);
    assert_eq!(checked, "/etc/teal/daemon.yaml: ok\n");

    let valid = docker_run(&image.0, &[(&repo, "/repo:ro")], &["validate", "--repo", "/repo"]);
    assert!(
        valid.contains("1 services valid (web)") || valid.contains("valid (web)"),
        "{valid}"
    );

    // git (libgit2) reads the mounted repo, and Docker answers through the
    // socket: gc lists the host's images and removes nothing (dry run).
    let gc = docker_run(
        &image.0,
        &[
            (Path::new("/var/run/docker.sock"), "/var/run/docker.sock"),
            (&repo, "/repo:ro"),
            (&conf, "/etc/teal/daemon.yaml:ro"),
        ],
        &["gc", "--dry-run"],
    );
    assert!(gc.to_lowercase().starts_with("would remove "), "{gc}");

    // The binary the image holds is this run's.
    let here = ok(Command::new(TEAL).arg("--version"));
    assert_eq!(version, here);
}
