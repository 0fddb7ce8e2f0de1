//! Test certificates made by Debian's openssl (shared by tests and
//! benches; benches include this file by path).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A self-signed certificate for `hosts` with `cn`, as cert.pem and key.pem in `dir`.
pub fn make_cert(dir: &Path, cn: &str, hosts: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
    let san = hosts.iter().map(|h| format!("DNS:{h}")).collect::<Vec<_>>().join(",");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
        ])
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("this needs openssl: apt-get install -y openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// Now, in Unix seconds, for `read_files`' validity check.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
