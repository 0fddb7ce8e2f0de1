//! Secrets made by the reference tools: Debian's age and age-keygen
//! (and ssh-keygen), and what the demo app answers for a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a tool, failing (never skipping) with how to install it.
pub fn run(cmd: &mut Command, what: &str) -> String {
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
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run(Command::new("age-keygen").arg("-o").arg(&key), "age-keygen");
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&key), "age-keygen -y");
    (key, recipient.trim().to_string())
}

/// `value` encrypted by the age CLI to `-r recipient` or `-R file`.
pub fn encrypt(flag: &str, to: &str, value: &str) -> String {
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
pub fn fnv(data: &str) -> String {
    let h = data.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x}\n")
}

/// `docker inspect` of every container of `service`, as text.
pub fn inspect_all(service: &str) -> String {
    let ids = run(
        Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=teal.service={service}")]),
        "docker ps",
    );
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert!(!ids.is_empty(), "no containers of {service}");
    run(Command::new("docker").arg("inspect").args(&ids), "docker inspect")
}

/// The secret files under `dir` (one dir per container).
pub fn secret_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(dirs) = std::fs::read_dir(dir) else {
        return vec![];
    };
    dirs.flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .collect()
}
