//! `teal --version` tells the truth: the commit is this checkout's HEAD,
//! and each part it says it was tested with is the version this machine's
//! test suite runs against (.ci/run installs them from Debian).

use std::process::Command;

const TEAL: &str = env!("CARGO_BIN_EXE_teal");

fn stdout_and_err(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (.ci/run installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// "major.minor" of the first version-looking word after `marker`.
fn major_minor(text: &str, marker: &str) -> String {
    let at = text.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {text}"));
    let version: String = text[at + marker.len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn the_version_names_this_commit_and_the_parts_tests_run_against() {
    let said = stdout_and_err(TEAL, &["--version"]);
    let head = stdout_and_err(
        "git",
        &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"],
    );
    assert!(
        said.starts_with(&format!("teal {} (commit {})", env!("CARGO_PKG_VERSION"), head.trim())),
        "{said}"
    );

    let nginx = if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let haproxy = if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    };
    let lua = stdout_and_err("dpkg-query", &["-W", "-f=${Version}", "libnginx-mod-http-lua"]);
    let installed = [
        (
            "Docker Engine API",
            major_minor(
                &stdout_and_err("docker", &["version", "--format", "{{.Server.APIVersion}}"]),
                "",
            ),
        ),
        ("HAProxy", major_minor(&stdout_and_err(haproxy, &["-v"]), "version")),
        ("nginx", major_minor(&stdout_and_err(nginx, &["-v"]), "nginx/")),
        // Debian's version is "1:0.10.23-1...": the upstream part after the epoch.
        ("lua-nginx-module", major_minor(&lua, ":")),
    ];
    for (name, version) in installed {
        assert!(
            said.contains(&format!("{name} {version}")),
            "teal --version does not say the {name} the tests run against ({version}): {said}\n\
             update TESTED_WITH and LONG in src/version.rs"
        );
    }
}
