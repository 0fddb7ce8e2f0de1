//! Fetching over SSH from a real, unprivileged sshd.

use super::*;
use std::process::{Child, Command};

/// An unprivileged sshd on 127.0.0.1 serving a bare repo, stopped on drop.
struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sshd() -> Sshd {
    assert!(
        std::path::Path::new("/usr/sbin/sshd").exists(),
        "this test needs sshd: `apt-get install -y openssh-server` (.ci/run does this)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["hostkey", "client"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(key)));
    }
    std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\nPidFile {0}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nLogLevel ERROR\n",
        d.display()
    );
    std::fs::write(d.join("sshd_config"), config).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run(Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(d.join("deploy.git")));
    run(Command::new("git")
        .args(["clone", "-q"])
        .arg(d.join("deploy.git"))
        .arg(d.join("work")));
    run(Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ])
        .current_dir(d.join("work")));
    run(Command::new("git")
        .args(["push", "-q", "origin", "HEAD:main"])
        .current_dir(d.join("work")));
    Sshd { child, dir, port }
}

#[test]
fn fetches_over_ssh_with_a_key_file() {
    let s = sshd();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let url = format!("ssh://{user}@127.0.0.1:{}{}/deploy.git", s.port, s.dir.path().display());
    let mirror = s.dir.path().join("mirror.git");
    let known = s.dir.path().join("known_hosts");
    let mut remote = Remote {
        url: url.clone(),
        branch: "main".into(),
        ssh_key: Some(s.dir.path().join("client")),
        token_file: None,
        known_hosts: Some(known.clone()),
    };
    // An unknown host key is refused, saying how to pin it.
    std::fs::write(&known, "").unwrap();
    let err = fetch(&mirror, &remote).unwrap_err().to_string();
    assert!(
        err.contains(&format!("the ssh host key of 127.0.0.1 is not in {}", known.display())),
        "{err}"
    );
    let pubkey = std::fs::read_to_string(s.dir.path().join("hostkey.pub")).unwrap();
    std::fs::write(&known, format!("[127.0.0.1]:{} {pubkey}", s.port)).unwrap();
    let oid = fetch(&mirror, &remote).unwrap_or_else(|e| panic!("{e}"));
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(s.dir.path().join("work"))
        .output()
        .unwrap();
    assert_eq!(oid.to_string(), String::from_utf8_lossy(&head.stdout).trim());
    // Without the key the remote refuses, and the error says what to set.
    remote.ssh_key = None;
    let err = fetch(&mirror, &remote).unwrap_err().to_string();
    assert!(err.contains("set repo.ssh_key"), "{err}");
}
