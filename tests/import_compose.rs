//! `teal import compose` on real compose files (tests/fixtures/compose):
//! the written files validate, a second import changes nothing, secrets
//! never reach a file, a broken file writes nothing, and teal reads
//! interpolation and merging as `docker-compose config` does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{teal, Run};

/// A copy of fixture `name` in a temp dir (imports write relative paths
/// as absolute ones, and nothing is written into the source tree).
fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose")
        .join(name);
    let dst = dir.path().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (dir, dst)
}

fn import(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["import", "compose", "--repo", "../repo"];
    args.extend_from_slice(extra);
    teal(dir, &args)
}

fn read(dir: &Path, service: &str) -> String {
    std::fs::read_to_string(dir.join(format!("../repo/services/{service}.yaml"))).unwrap()
}

#[test]
fn fixtures_import_into_files_that_validate_and_round_trip() {
    for (name, written) in [
        ("webdb", &["web"][..]),
        ("traefik", &["api", "blog"][..]),
        ("override", &["app"][..]),
        ("spec", &["frontend"][..]),
    ] {
        let (_tmp, dir) = fixture(name);
        let first = import(&dir, &[]);
        assert_eq!(first.code, 2, "{name}: something is always left out here: {first:?}");
        let repo = dir.join("../repo");
        let mut files: Vec<String> = std::fs::read_dir(repo.join("services"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let want: Vec<String> = written.iter().map(|s| format!("{s}.yaml")).collect();
        assert_eq!(files, want, "{name}: {}", first.stdout);
        let v = teal(&repo, &["validate"]);
        assert_eq!(v.code, 0, "{name}: {v:?}");
        for s in written {
            let text = read(&dir, s);
            assert!(
                text.starts_with("# Imported by `teal import compose` from "),
                "{name}/{s}:\n{text}"
            );
        }
        let before: Vec<String> = written.iter().map(|s| read(&dir, s)).collect();
        let second = import(&dir, &[]);
        assert_eq!(second.code, 2, "{name}: {second:?}");
        for s in written {
            assert!(
                second.stdout.contains(&format!("services/{s}.yaml unchanged")),
                "{name}: {second:?}"
            );
        }
        let after: Vec<String> = written.iter().map(|s| read(&dir, s)).collect();
        assert_eq!(before, after, "{name}: a second import changed a file");
    }
}

#[test]
fn secrets_stay_out_of_the_files_and_every_left_out_key_is_said() {
    let (_tmp, dir) = fixture("webdb");
    let run = import(&dir, &[]);
    let web = read(&dir, "web");
    for secret in ["s3cret", "hunter2", "4f6c3a9e"] {
        assert!(!web.contains(secret), "{secret} written:\n{web}");
        assert!(!run.stdout.contains(secret), "{secret} printed:\n{}", run.stdout);
    }
    assert!(
        web.contains("DATABASE_URL: /etc/teal/secrets/web/DATABASE_URL"),
        "{web}"
    );
    assert!(
        web.contains("SMTP_PASSWORD: /etc/teal/secrets/web/SMTP_PASSWORD"),
        "{web}"
    );
    assert!(
        web.contains("MAILER_HOST: shop.example.com"),
        "env_file values come over:\n{web}"
    );
    assert!(web.contains("http:\n    path: /up"), "{web}");
    for line in [
        "db: not imported: a postgres image",
        "worker: not imported: no port",
        "web: build: left out: teal deploys images",
        "web: depends_on: left out:",
        "web: logging: left out:",
        "web: ports: left out: 8080 published on the host",
        "web: environment.SMTP_PASSWORD: to do: looks like a secret (env_file web.env)",
        "web: route: to do: no traefik, caddy or nginx-proxy label named a host",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{}", run.stdout);
    }
    // One service only, and a dry run writes nothing.
    let (_tmp2, dir2) = fixture("traefik");
    let dry = import(&dir2, &["--service", "api", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("--- services/api.yaml\n# Imported"), "{dry:?}");
    assert!(dry.stdout.contains("host: api.example.com\n  path: /v2"), "{dry:?}");
    assert!(!dir2.join("../repo").exists(), "a dry run wrote");
}

#[test]
fn a_broken_file_exits_1_naming_file_and_line_and_writes_nothing() {
    let (_tmp, dir) = fixture("override");
    std::fs::write(
        dir.join("docker-compose.override.yml"),
        "services:\n  app:\n    scale: 2\n    helthcheck: {}\n",
    )
    .unwrap();
    let run = import(&dir, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("docker-compose.override.yml:4:5: service app: unknown key \"helthcheck\""),
        "{run:?}"
    );
    assert!(!dir.join("../repo").exists());
    std::fs::remove_file(dir.join("docker-compose.override.yml")).unwrap();
    std::fs::write(dir.join(".env"), "REGISTRY=x\n").unwrap();
    let run = import(&dir, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("docker-compose.yml:3:12: variable TAG is not set: set TAG in .env"),
        "{run:?}"
    );
}

/// The compose service keys teal knows cover those of the JSON schema
/// that Debian's docker-compose ships.
#[test]
fn the_compose_specifications_service_keys_are_all_known() {
    // The schema file Debian's package installed.
    let out = Command::new("dpkg")
        .args(["-L", "docker-compose"])
        .output()
        .expect("dpkg");
    let listing = String::from_utf8_lossy(&out.stdout);
    let path = listing
        .lines()
        .find(|l| l.ends_with("/compose/config/compose_spec.json"))
        .unwrap_or_else(|| panic!("{}", docker_compose_missing()));
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let keys = schema["definitions"]["service"]["properties"].as_object().unwrap();
    assert!(keys.len() > 70, "{keys:?}");
    for k in keys.keys() {
        assert!(
            teal::compose::model::SERVICE_KEYS.contains(&k.as_str()),
            "{k} unknown to teal"
        );
    }
}

fn docker_compose_missing() -> &'static str {
    "these tests compare with docker-compose: install Debian's docker-compose package (apt-get install docker-compose); .ci/run does"
}

/// `docker-compose config` of a fixture, as YAML.
fn compose_config(dir: &Path, extra: &[&str]) -> serde_yaml::Value {
    let out = Command::new("docker-compose")
        .args(extra)
        .arg("config")
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}: {}", docker_compose_missing()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_yaml::from_slice(&out.stdout).unwrap()
}

#[test]
fn interpolation_and_merging_read_as_docker_compose_config_reads_them() {
    for name in ["override", "traefik", "spec"] {
        let (_tmp, dir) = fixture(name);
        let run = import(&dir, &["--dry-run"]);
        assert_ne!(run.code, 1, "{run:?}");
        let theirs = compose_config(&dir, &[]);
        let ours: Vec<(String, serde_yaml::Value)> = run
            .stdout
            .split("--- services/")
            .skip(1)
            .map(|chunk| {
                let (file, body) = chunk.split_once('\n').unwrap();
                // The file, then a blank line before the next line of the report.
                let yaml = body.split("\n\n").next().unwrap();
                (
                    file.trim_end_matches(".yaml").to_string(),
                    serde_yaml::from_str(yaml).unwrap(),
                )
            })
            .collect();
        assert!(!ours.is_empty(), "{name}: {run:?}");
        for (service, mine) in ours {
            let c = &theirs["services"][service.as_str()];
            assert_eq!(mine["blue"]["image"], c["image"], "{name}/{service}: image");
            let env = c["environment"].as_mapping().cloned().unwrap_or_default();
            for (k, v) in mine["env"].as_mapping().cloned().unwrap_or_default() {
                // docker-compose config writes a literal $ as $$.
                let theirs = env.get(&k).and_then(|v| v.as_str()).map(|s| s.replace("$$", "$"));
                assert_eq!(theirs.as_deref(), v.as_str(), "{name}/{service}: env {k:?}");
            }
            let labels = c["labels"].as_mapping().cloned().unwrap_or_default();
            for (k, v) in mine["labels"].as_mapping().cloned().unwrap_or_default() {
                assert_eq!(labels.get(&k), Some(&v), "{name}/{service}: label {k:?}");
            }
            let replicas = c["deploy"]["replicas"].as_i64().or(c["scale"].as_i64()).unwrap_or(1);
            assert_eq!(
                mine["replicas"].as_i64().unwrap_or(1),
                replicas,
                "{name}/{service}: replicas"
            );
            let theirs_vols: Vec<String> = c["volumes"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(|s| s.trim_end_matches(":rw").to_string()))
                .collect();
            for v in mine["volumes"].as_sequence().cloned().unwrap_or_default() {
                assert!(
                    theirs_vols.contains(&v.as_str().unwrap().to_string()),
                    "{name}/{service}: {v:?} not in {theirs_vols:?}"
                );
            }
        }
    }
}
