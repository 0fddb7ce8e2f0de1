//! Compiles `app/main.rs` into a static binary that `teal demo` and the tests
//! put into `FROM scratch` images (no registry is needed to try teal), and
//! records the git commit teal is built from for `teal --version`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    commit();
    println!("cargo:rerun-if-changed=app/main.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("teal-demo-app");
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = env::var("TARGET").unwrap();
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "strip=symbols",
            "-C",
            "target-feature=+crt-static",
            "--target",
        ])
        .arg(&target)
        .arg("-o")
        .arg(&out)
        .arg("app/main.rs")
        .status()
        .expect("run rustc for app/main.rs");
    assert!(status.success(), "compiling app/main.rs statically failed");
    println!("cargo:rustc-env=TEAL_DEMO_APP={}", out.display());
}

/// Sets TEAL_COMMIT: `TEAL_COMMIT` from the environment (a build from a
/// source tarball), else the checkout's HEAD, else `unknown`. Reruns when
/// HEAD or its branch moves, so a build names the commit it was made from
/// (edits not yet committed are not tracked: that would rerun on every file).
fn commit() {
    println!("cargo:rerun-if-env-changed=TEAL_COMMIT");
    if let Some(given) = env::var("TEAL_COMMIT").ok().filter(|c| !c.is_empty()) {
        println!("cargo:rustc-env=TEAL_COMMIT={given}");
        return;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        println!("cargo:rustc-env=TEAL_COMMIT=unknown");
        return;
    };
    // HEAD itself (a checkout), the branch it names (a commit), and
    // packed-refs (a fetch or gc may move the branch there).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // A path that does not exist would rerun the script on every build.
        match git(&["rev-parse", "--git-path", &name]) {
            Some(path) if std::path::Path::new(&path).exists() => println!("cargo:rerun-if-changed={path}"),
            _ => {}
        }
    }
    println!("cargo:rustc-env=TEAL_COMMIT={head}");
}
