//! Compiles `app/main.rs` into a static binary that `teal demo` and the tests
//! put into `FROM scratch` images (no registry is needed to try teal).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
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
