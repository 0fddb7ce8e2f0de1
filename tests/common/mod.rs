//! Helpers shared by the integration tests: real git repositories and the
//! built `teal` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A git work tree in a temp dir, removed on drop.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// `git init` with a `main` branch.
    pub fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the work tree; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args)
    }

    /// Writes (or, with `None`, deletes) files and commits them.
    pub fn commit(&self, msg: &str, files: &[(&str, Option<&str>)]) -> String {
        for (path, text) in files {
            let full = self.path().join(path);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, t).unwrap();
                }
                None => std::fs::remove_file(&full).unwrap(),
            }
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Runs git in `dir` with a fixed identity.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=teal test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `teal` binary built for this test run.
pub fn teal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_teal"))
}

/// Runs `teal` with `args` in `dir`.
pub fn teal(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(teal_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run::from(out)
}

/// A finished `teal` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A service file in the format of DESIGN section 1.
pub fn service(active: &str, blue: Option<&str>, green: Option<&str>, host: &str) -> String {
    let color = |c: &str, img: Option<&str>| {
        img.map(|i| format!("{c}:\n  image: {i}\n"))
            .unwrap_or_default()
    };
    format!(
        "# the {host} service\nactive: {active}\n{}{}port: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n",
        color("blue", blue),
        color("green", green)
    )
}
