//! Keys and signed commits made by the real tools (ssh-keygen, gpg, the git
//! CLI), for the tests of who may deploy.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Repo;

/// Runs a command, panicking with its output (and how to install it) on failure.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: {e} (ssh-keygen: apt-get install -y openssh-client; gpg: apt-get install -y gnupg)")
    });
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ed25519 key pair made by ssh-keygen; the private key's path.
pub fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key),
        "ssh-keygen",
    );
    key
}

/// `git -c` settings that sign with an SSH key.
pub fn ssh_signing(key: &Path) -> Vec<String> {
    vec!["gpg.format=ssh".into(), format!("user.signingkey={}", key.display())]
}

/// A GnuPG home in a temp dir; its agent is stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        Gpg {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(
            Command::new("gpg")
                .env("GNUPGHOME", self.home.path())
                .args(["--batch", "--yes"])
                .args(args),
            "gpg",
        )
    }

    /// An ed25519 signing key without a passphrase for `uid`.
    pub fn key(&self, uid: &str) {
        self.run(&["--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"]);
    }

    /// A keyring file holding the public key of `email`.
    pub fn export(&self, email: &str) -> PathBuf {
        let keyring = self.home.path().join(format!("{email}.gpg"));
        self.run(&["--output", keyring.to_str().unwrap(), "--export", email]);
        keyring
    }

    /// `git -c` settings that sign with the key of `email`.
    pub fn signing(&self, email: &str) -> Vec<String> {
        vec!["gpg.format=openpgp".to_string(), format!("user.signingkey={email}")]
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// Writes `files` in the work tree `dir` and commits them, signed with
/// `sign` (extra `git -c` settings; none: unsigned), with `env` set (e.g.
/// GNUPGHOME) and, when given, this commit time (`@<unix> +0000`); the
/// commit id.
pub fn commit(
    dir: &Path,
    msg: &str,
    files: &[(&str, &str)],
    sign: &[String],
    env: &[(&str, &Path)],
    time: Option<&str>,
) -> String {
    for (path, text) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
    }
    super::git_in(dir, &["add", "-A"]);
    let mut cmd = Command::new("git");
    cmd.args(["-c", "user.name=teal test", "-c", "user.email=test@example.com"]);
    for s in sign {
        cmd.args(["-c", s]);
    }
    cmd.args(["commit", "-q", "--allow-empty", "-m", msg]).current_dir(dir);
    if !sign.is_empty() {
        cmd.arg("-S");
    } else {
        cmd.arg("--no-gpg-sign");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(t) = time {
        cmd.env("GIT_COMMITTER_DATE", t).env("GIT_AUTHOR_DATE", t);
    }
    run(&mut cmd, "git commit");
    super::git_in(dir, &["rev-parse", "HEAD"])
}

/// What git (2.x) and OpenSSH decide for a commit signed over `payload`
/// with `sig`: `git verify-commit` runs `ssh-keygen -Y find-principals`,
/// then `ssh-keygen -Y verify -n git -I <principal>` for each principal
/// found, with `-Overify-time=` the committer time; good when one verifies.
pub fn ssh_keygen_verdict(allowed: &Path, payload: &Path, sig: &Path, time: &str) -> bool {
    let verify_time = format!("-Overify-time={time}");
    let found = std::process::Command::new("ssh-keygen")
        .args(["-Y", "find-principals", "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(sig)
        .arg(&verify_time)
        .output()
        .expect("ssh-keygen (apt-get install -y openssh-client)");
    let principals = String::from_utf8_lossy(&found.stdout).into_owned();
    principals.lines().filter(|p| !p.is_empty()).any(|p| {
        std::process::Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "git", "-f"])
            .arg(allowed)
            .args(["-I", p, "-s"])
            .arg(sig)
            .arg(&verify_time)
            .stdin(std::fs::File::open(payload).unwrap())
            .output()
            .unwrap()
            .status
            .success()
    })
}

/// A config repo whose commits alice signs, the host config of a host
/// that pulls it with `repo.verify` (and `extra` repo settings), and
/// that host's state dir.
pub struct SignedRepo {
    pub repo: Repo,
    pub keys: tempfile::TempDir,
    pub alice: std::path::PathBuf,
    pub state: tempfile::TempDir,
    pub config: std::path::PathBuf,
}

impl SignedRepo {
    pub fn new(extra: &str) -> SignedRepo {
        let keys = tempfile::tempdir().unwrap();
        let alice = ssh_key(keys.path(), "alice");
        let public = std::fs::read_to_string(alice.with_extension("pub")).unwrap();
        let signers = keys.path().join("allowed_signers");
        std::fs::write(&signers, format!("alice@example.com {public}")).unwrap();
        let state = tempfile::tempdir().unwrap();
        let repo = Repo::new();
        let config = keys.path().join("daemon.yaml");
        std::fs::write(
            &config,
            format!(
                "repo: {{url: '{}', poll: 1h, verify: {{allowed_signers: '{}'}}{extra}}}\nproxy: {{kind: haproxy}}\nstate_dir: '{}'\n",
                repo.path().display(),
                signers.display(),
                state.path().join("teal").display()
            ),
        )
        .unwrap();
        SignedRepo {
            repo,
            keys,
            alice,
            state,
            config,
        }
    }

    /// Commits web at `image`, signed by alice (or not): the commit id.
    pub fn commit(&self, image: &str, signed: bool) -> String {
        let text = super::service("blue", Some(image), None, "web.example");
        let sign = if signed { ssh_signing(&self.alice) } else { vec![] };
        commit(
            self.repo.path(),
            image,
            &[("services/web.yaml", &text)],
            &sign,
            &[],
            None,
        )
    }

    pub fn host_config(&self) -> teal::config::HostConfig {
        teal::config::HostConfig::load(&self.config).unwrap()
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.state.path().join("teal")
    }

    pub fn record(&self) -> std::path::PathBuf {
        self.state_dir().join("applied-commit")
    }

    /// What the daemon does at each fetch: admit the head, and record it
    /// when admitted. The admitted commit, or the refusal.
    pub fn fetch(&self) -> Result<String, String> {
        let config = self.host_config();
        match teal::reconcile::fetch_desired(&config) {
            Ok(rev) => {
                teal::reconcile::record_applied(&config.state_dir, &rev.commit).unwrap();
                Ok(rev.commit)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
