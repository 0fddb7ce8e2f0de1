//! The pure core stays pure: `teal-core` (crates/core: spec, plan,
//! strategy, policy) depends on no IO crate, directly or through another
//! crate, so no Docker, proxy, git, network or async runtime call can
//! slip into the planner. Read from cargo's own resolution of the
//! dependency graph (`cargo tree`), not from the manifest's text.

use std::process::Command;

/// Crates that do IO or run an async runtime.
const IO: &[&str] = &[
    "tokio",
    "mio",
    "bollard",
    "axum",
    "hyper",
    "hyper-util",
    "reqwest",
    "git2",
    "libgit2-sys",
    "notify",
    "tracing-subscriber",
    "socket2",
    "ssh-key",
    "tempfile",
];

#[test]
fn the_core_crate_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "teal-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"teal-core") && crates.contains(&"serde"), "{tree}");
    let io: Vec<&&str> = crates.iter().filter(|c| IO.contains(c)).collect();
    assert!(io.is_empty(), "teal-core depends on IO crates {io:?}:\n{tree}");
}
