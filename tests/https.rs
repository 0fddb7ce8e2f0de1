//! Fetching the config repo over https:// with a token file, from a real
//! git smart-HTTP server over TLS (git http-backend behind a small Python
//! server, tests/fixtures/git_https.py). Its own test binary: it points
//! OpenSSL at the test CA through SSL_CERT_FILE, which is process-wide.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use teal::source::fetch::{fetch, Remote};

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

#[test]
fn fetches_over_https_with_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem")));
    let root = d.join("git");
    std::fs::create_dir(&root).unwrap();
    common::git_in(&root, &["init", "-q", "--bare", "-b", "main", "deploy.git"]);
    let work = common::Repo::new();
    let head = work.commit("one", &[("services/.gitkeep", Some(""))]);
    work.git(&["push", "-q", root.join("deploy.git").to_str().unwrap(), "HEAD:main"]);

    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/git_https.py");
    let portfile = d.join("port");
    let server = Server(
        Command::new("python3")
            .arg(fixture)
            .args([root.to_str().unwrap(), "s3cret-token"])
            .arg(d.join("cert.pem"))
            .arg(d.join("key.pem"))
            .arg(&portfile)
            .spawn()
            .expect("python3 is installed"),
    );
    let mut port = String::new();
    for _ in 0..100 {
        port = std::fs::read_to_string(&portfile).unwrap_or_default();
        if !port.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!port.is_empty(), "the https git server did not start");
    // The only test in this binary: nothing else uses TLS concurrently.
    std::env::set_var("SSL_CERT_FILE", d.join("cert.pem"));

    let url = format!("https://127.0.0.1:{port}/deploy.git");
    let token = d.join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let mirror = d.join("mirror.git");
    let mut remote = Remote {
        url: url.clone(),
        branch: "main".into(),
        ssh_key: None,
        token_file: Some(token.clone()),
        known_hosts: None,
    };
    let oid = fetch(&mirror, &remote).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(oid.to_string(), head);

    // A wrong token is refused, and the error names the remote.
    std::fs::write(&token, "wrong\n").unwrap();
    let err = fetch(&mirror, &remote).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("fetching branch \"main\" from {url}: ")),
        "{err}"
    );
    // No token at all: the error says which setting is missing.
    remote.token_file = None;
    let err = fetch(&mirror, &remote).unwrap_err().to_string();
    assert!(err.contains("repo.token_file"), "{err}");
    drop(server);
}
