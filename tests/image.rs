//! The container image of teal (packaging/docker): built FROM scratch by
//! `docker build` with no pull, it runs teal, reads a config and a git
//! repo mounted into it, and reaches Docker through the mounted socket.

use std::path::Path;
use std::process::{Command, Output};

const TEAL: &str = env!("CARGO_BIN_EXE_teal");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (.ci/run starts Docker)"))
}

fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the test's image, however the test ends.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

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
    let tag = format!("teal-test-image:{}", std::process::id());
    let built =
        ok(Command::new(Path::new(REPO).join("packaging/docker/build")).args(["--binary", TEAL, "--tag", &tag]));
    let image = Image(tag);
    assert_eq!(built.trim(), image.0);

    // FROM scratch: one layer, which the Dockerfile's COPY made.
    let layers = ok(Command::new("docker").args(["image", "inspect", "--format", "{{len .RootFS.Layers}}", &image.0]));
    assert_eq!(layers.trim(), "1");

    let version = docker_run(&image.0, &[], &["--version"]);
    assert!(
        version.starts_with("teal ") && version.contains("tested with: "),
        "{version}"
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
