//! A real registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a 127.0.0.1 port with htpasswd (bcrypt)
//! authentication and its storage in a temp dir. Docker talks plain HTTP
//! to registries on 127.0.0.0/8, so no certificate is needed. Images get
//! there by `docker push` through a Docker CLI config of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, as image references name it.
    pub addr: String,
    pub user: String,
    pub password: String,
    /// A Docker CLI config dir logged in to this registry.
    pub docker_config: PathBuf,
    dir: tempfile::TempDir,
}

/// Fails (never skips) without the registry and htpasswd, saying how to get them.
pub fn registry_or_fail() {
    for (bin, pkg) in [("docker-registry", "docker-registry"), ("htpasswd", "apache2-utils")] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "these tests need {bin}: `apt-get install -y {pkg}` (`.ci/run` does this)"
        );
    }
}

/// Runs `cmd`, failing with its output unless it succeeds; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Registry {
    /// Starts a registry that asks for `user`'s password (HTTP Basic),
    /// and logs the test's Docker CLI config in to it.
    pub fn start() -> Registry {
        Registry::start_with(false)
    }

    /// Starts a registry that asks for Bearer tokens from a token
    /// service of the test's own (`token`), which asks for the password.
    pub fn start_token() -> Registry {
        Registry::start_with(true)
    }

    fn start_with(token: bool) -> Registry {
        registry_or_fail();
        let dir = tempfile::tempdir().unwrap();
        let user = "teal-ci".to_string();
        let password = super::unique("pw");
        let d = dir.path().display();
        let auth = if token {
            let t = super::token::TokenService::start(dir.path(), &user, &password);
            format!(
                "auth:\n  token: {{realm: '{}', service: {}, issuer: {}, rootcertbundle: {}}}\n",
                t.realm,
                super::token::SERVICE,
                super::token::ISSUER,
                t.cert.display()
            )
        } else {
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", &user, &password]));
            std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
            format!("auth:\n  htpasswd: {{realm: teal-test, path: {d}/htpasswd}}\n")
        };
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {d}/data}}\n  delete: {{enabled: true}}\nhttp: {{addr: '{addr}'}}\n{auth}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let docker_config = dir.path().join("docker");
        std::fs::create_dir_all(&docker_config).unwrap();
        let reg = Registry {
            child,
            addr,
            user,
            password,
            docker_config,
            dir,
        };
        reg.wait_up();
        reg.login();
        reg
    }

    fn wait_up(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on {}: {}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn login(&self) {
        let mut child = Command::new("docker")
            .arg("--config")
            .arg(&self.docker_config)
            .args(["login", &self.addr, "-u", &self.user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(self.password.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes the local image `local` as `<addr>/<repo>`, then removes that
    /// tag locally so a deploy of it must pull. Returns the reference.
    pub fn push(&self, local: &str, repo: &str) -> String {
        let remote = format!("{}/{repo}", self.addr);
        run(Command::new("docker").args(["tag", local, &remote]));
        run(Command::new("docker")
            .arg("--config")
            .arg(&self.docker_config)
            .args(["push", "-q", &remote]));
        forget(&remote);
        remote
    }

    /// A file holding the registry's password, mode 0600.
    pub fn password_file(&self, dir: &Path, password: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("registry_password");
        std::fs::write(&p, password).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Stops the registry (a registry that is down).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        // The local tags of what the tests pulled from it.
        let out = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        if let Ok(out) = out {
            let prefix = format!("{}/", self.addr);
            for image in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with(&prefix))
            {
                forget(image);
            }
        }
    }
}

/// Removes the local tag `image` (the image stays under its other tags).
pub fn forget(image: &str) {
    let _ = Command::new("docker").args(["rmi", image]).output();
}
