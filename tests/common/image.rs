//! The container image of teal (packaging/docker), built from this test
//! run's binary, and containers of it: each removed however the test
//! ends.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use super::{teal_bin, unique};

/// Runs a command; panics saying what could not start and where to get
/// it.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e}; .ci/run installs what the tests need and starts Docker (cargo install cargo-deb --locked; apt-get install dpkg-dev systemd man-db)")
    })
}

/// Runs a command that must succeed; its stdout.
pub fn ok(cmd: &mut Command) -> String {
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

/// The image, removed on drop.
pub struct Image(pub String);

impl Image {
    /// `packaging/docker/build` of this run's teal, under a tag of its own.
    /// Fails (never skips) without Docker or the HAProxy the image carries.
    pub fn build() -> Image {
        super::docker_or_fail();
        super::proxy_or_fail("haproxy");
        let tag = format!("{}:test", unique("teal-test-image"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/docker/build");
        let built = ok(Command::new(script)
            .arg("--binary")
            .arg(teal_bin())
            .args(["--tag", &tag]));
        assert_eq!(built.trim(), tag);
        Image(tag)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// A detached container, its output followed into a file; removed
/// (`docker rm -f`) on drop.
pub struct Container {
    pub name: String,
    logs: Option<Child>,
}

impl Container {
    /// `docker run -d --name <unique> FLAGS IMAGE ARGS`, its stdout and
    /// stderr appended to `log` as they come.
    pub fn start(image: &Image, flags: &[String], args: &[&str], log: &Path) -> Container {
        let name = unique("teal-test-container");
        let mut c = Container { name, logs: None };
        ok(Command::new("docker")
            .args(["run", "-d", "--name", &c.name])
            .args(flags)
            .arg(&image.0)
            .args(args));
        let file = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("the container's log file")
        };
        c.logs = Some(
            Command::new("docker")
                .args(["logs", "-f", &c.name])
                .stdout(file())
                .stderr(file())
                .stdin(Stdio::null())
                .spawn()
                .expect("docker logs -f"),
        );
        c
    }

    /// `docker stop`: SIGTERM to teal, then its exit code.
    pub fn stop(&self) -> i64 {
        ok(Command::new("docker").args(["stop", "-t", "20", &self.name]));
        let code = ok(Command::new("docker").args(["inspect", "--format", "{{.State.ExitCode}}", &self.name]));
        code.trim().parse().expect("an exit code")
    }

    /// `docker top` with ps's `pid,user,args` columns: one line per process.
    pub fn processes(&self) -> Vec<String> {
        let out = ok(Command::new("docker").args(["top", &self.name, "-o", "pid,user,args"]));
        out.lines().skip(1).map(String::from).collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
        if let Some(mut logs) = self.logs.take() {
            let _ = logs.kill();
            let _ = logs.wait();
        }
    }
}
