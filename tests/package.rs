//! The Debian package as an admin meets it: built by packaging/deb/build
//! from the binary this test run built, installed with dpkg into a
//! throwaway root, its files, conffile, unit and man pages checked, then
//! purged. Needs cargo-deb, dpkg, systemd-analyze and man (.ci/run
//! installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::image::{ok, run};

const TEAL: &str = env!("CARGO_BIN_EXE_teal");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Builds the .deb the way a release does (packaging/deb/build), but from
/// this run's dev binary: a release build would double CI's build time.
fn build_deb(stage: &Path) -> PathBuf {
    let release = stage.join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(TEAL, release.join("teal")).unwrap();
    let cargo_deb = run(Command::new("cargo").args(["deb", "--version"]));
    assert!(
        cargo_deb.status.success(),
        "cargo-deb is missing: cargo install cargo-deb --locked (.ci/run does)"
    );
    ok(Command::new(Path::new(REPO).join("packaging/deb/build"))
        .args(["--no-build", "--fast"])
        .env("CARGO_TARGET_DIR", stage));
    let debs: Vec<_> = std::fs::read_dir(stage.join("debian"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let name = debs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("teal_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    debs[0].clone()
}

/// dpkg on a root of its own: maintainer scripts run on the host with
/// DPKG_ROOT set (no chroot needs a shell inside), libraries the empty root
/// lacks are not asked for (the host's are checked by `depends_are_met`).
fn dpkg(root: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "--force-script-chrootless", "--force-depends"])
        .args(args);
    ok(&mut cmd)
}

fn empty_root(root: &Path) {
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
}

/// Every `Depends:` of the package is installed on this (Debian) host in
/// a version it allows.
fn depends_are_met(deb: &Path) {
    let depends = ok(Command::new("dpkg-deb").args(["-f"]).arg(deb).arg("Depends"));
    assert!(depends.contains("libc6") && depends.contains("libssl3"), "{depends}");
    for dep in depends.trim().split(", ") {
        let (name, bound) = dep.split_once(" (").unwrap_or((dep, ""));
        let version = ok(Command::new("dpkg-query").args(["-W", "-f=${Version}", name]));
        if let Some((op, want)) = bound.trim_end_matches(')').split_once(' ') {
            let op = match op {
                ">=" => "ge",
                other => panic!("{dep}: unexpected relation {other}"),
            };
            ok(Command::new("dpkg").args(["--compare-versions", &version, op, want]));
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file (not directory) under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The installed unit checked by systemd itself, in a root holding the
/// host's units (for its After=/WantedBy= targets), /bin/kill (its
/// ExecReload=) and the installed teal, which ExecStart's bare name finds.
/// Its Documentation= man pages are looked up among the installed ones.
fn verify_unit(root: &Path, scratch: &Path) {
    let v = scratch.join("verify");
    std::fs::create_dir_all(v.join("usr/lib/systemd")).unwrap();
    std::fs::create_dir_all(v.join("usr/bin")).unwrap();
    ok(Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/systemd/system")
        .arg(v.join("usr/lib/systemd/")));
    std::os::unix::fs::symlink("usr/lib", v.join("lib")).unwrap();
    std::os::unix::fs::symlink("usr/bin", v.join("bin")).unwrap();
    std::fs::copy("/usr/bin/kill", v.join("usr/bin/kill")).unwrap();
    std::fs::copy(root.join("usr/bin/teal"), v.join("usr/bin/teal")).unwrap();
    std::fs::copy(
        root.join("lib/systemd/system/teal.service"),
        v.join("usr/lib/systemd/system/teal.service"),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", v.display()))
        .arg("teal.service")
        .env("MANPATH", root.join("usr/share/man")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on lines it ignores; it says so on stderr.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// Each installed page renders with no groff warning, and says something.
fn man_pages_render(root: &Path) -> Vec<String> {
    let mut names = vec![];
    for section in ["man1", "man5"] {
        for entry in std::fs::read_dir(root.join("usr/share/man").join(section)).unwrap() {
            let path = entry.unwrap().path();
            let out = run(Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80"));
            let text = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "man -l {}: {stderr}",
                path.display()
            );
            assert!(
                text.contains("NAME") && text.lines().count() > 10,
                "{}:\n{text}",
                path.display()
            );
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

#[test]
fn the_package_installs_checks_out_and_purges_clean() {
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(&scratch.path().join("stage"));
    depends_are_met(&deb);
    let root = scratch.path().join("root");
    empty_root(&root);

    let said = dpkg(&root, &["-i", deb.to_str().unwrap()]);
    assert!(
        said.contains("not enabled") && said.contains("systemctl enable --now teal"),
        "postinst does not say the next step:\n{said}"
    );

    // The binary, and what it says it is.
    let installed = root.join("usr/bin/teal");
    assert_eq!(mode(&installed), 0o755);
    let version = ok(Command::new(&installed).arg("--version"));
    assert!(
        version.contains("(commit ") && version.contains("tested with: "),
        "{version}"
    );

    // The conffile: teal's own defaults, root-only, and it checks clean.
    let conf = root.join("etc/teal/daemon.yaml");
    assert_eq!(mode(&conf), 0o600);
    let defaults = ok(Command::new(TEAL).args(["config", "--show-defaults"]));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), defaults);
    let checked = ok(Command::new(&installed).arg("config").arg("--check").arg(&conf));
    assert!(checked.ends_with(": ok\n"), "{checked}");
    let listed = std::fs::read_to_string(root.join("var/lib/dpkg/info/teal.conffiles")).unwrap();
    assert_eq!(listed.trim(), "/etc/teal/daemon.yaml");

    // The state directory as the unit's StateDirectoryMode says.
    assert_eq!(mode(&root.join("var/lib/teal")), 0o750);

    verify_unit(&root, scratch.path());

    let pages = man_pages_render(&root);
    for page in ["teal.1.gz", "teal-daemon.1.gz", "teal-config.5.gz", "teal-service.5.gz"] {
        assert!(pages.contains(&page.to_string()), "{page} missing: {pages:?}");
    }
    let subcommands = ok(Command::new(TEAL).arg("--help"));
    for line in subcommands.lines().skip_while(|l| !l.starts_with("Commands:")).skip(1) {
        if line.is_empty() {
            break;
        }
        // A command's line; wrapped help text is indented further.
        let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let name = name.split_whitespace().next().unwrap();
        if name != "help" {
            assert!(
                pages.contains(&format!("teal-{name}.1.gz")),
                "no page for teal {name}: {pages:?}"
            );
        }
    }

    for (path, needle) in [
        ("usr/share/bash-completion/completions/teal", "complete -F"),
        ("usr/share/zsh/vendor-completions/_teal", "#compdef teal"),
        ("usr/share/fish/vendor_completions.d/teal.fish", "complete -c teal"),
        ("usr/share/doc/teal/examples/config-repo/teal.yaml", ""),
        ("usr/share/doc/teal/examples/host/daemon.yaml", "repo:"),
        ("usr/share/doc/teal/CHANGELOG.md", "## [0.1.0]"),
        ("usr/share/doc/teal/copyright", "Apache-2.0"),
    ] {
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.contains(needle), "{path} lacks {needle:?}");
    }

    // Purge: nothing of the package is left, the state directory neither,
    // but a file the admin put in /etc/teal stays.
    std::fs::write(root.join("etc/teal/deploy_key"), "admin's own\n").unwrap();
    std::fs::write(root.join("var/lib/teal/events.jsonl"), "{}\n").unwrap();
    dpkg(&root, &["--purge", "teal"]);
    let left: Vec<_> = files(&root)
        .into_iter()
        .filter(|f| !f.starts_with("var/lib/dpkg/"))
        .collect();
    assert_eq!(left, ["etc/teal/deploy_key"]);
    assert!(!root.join("var/lib/teal").exists());
    assert!(!root.join("usr/share/doc/teal").exists());
}
