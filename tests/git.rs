//! `teal validate` and `teal diff` against real git repositories.

mod common;

use common::{service, teal, Repo};

const V1: &str = "registry.example.com/shop/web:1.4.1";
const V2: &str = "registry.example.com/shop/web:1.4.2";

/// A repo whose first commit runs web 1.4.1 on blue.
fn shop() -> Repo {
    let repo = Repo::new();
    repo.commit(
        "web 1.4.1",
        &[
            ("teal.yaml", Some("switch: {drain: 2s}\n")),
            (
                "services/web.yaml",
                Some(&service("blue", Some(V1), None, "shop.example.com")),
            ),
        ],
    );
    repo
}

fn bump(repo: &Repo) {
    repo.commit(
        "bump web",
        &[(
            "services/web.yaml",
            Some(&service("green", Some(V1), Some(V2), "shop.example.com")),
        )],
    );
}

#[test]
fn diff_between_two_commits_shows_the_bump_and_its_gate() {
    let repo = shop();
    bump(&repo);
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.starts_with("~ web  update, traffic blue -> green\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("    green  (none) -> {V2}\n")),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("    gate   http GET /healthz -> 200, 3 consecutive passes every 1s, timeout 2s, deadline 1m\n"));
    assert!(
        run.stdout
            .contains("4. switch traffic blue -> green\n           5. drain blue for 2s\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("Plan: 0 to create, 1 to update, 0 to remove.\n"));
}

#[test]
fn a_revert_commit_switches_back_to_the_warm_color() {
    let repo = shop();
    bump(&repo);
    repo.git(&["revert", "--no-edit", "HEAD"]);
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let web = &v["services"][0];
    assert_eq!(web["active"], serde_json::json!({"from": "green", "to": "blue"}));
    let steps: Vec<&str> = web["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    // The old color is still warm: no pull, no start, just check and switch,
    // then the reverted-away image is removed from green.
    assert_eq!(steps, ["wait_healthy", "switch", "drain", "remove_color"]);
}

#[test]
fn markdown_is_ready_for_a_step_summary() {
    let repo = shop();
    bump(&repo);
    let run = teal(
        repo.path(),
        &["diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .starts_with("### teal plan: 0 to create, 1 to update, 0 to remove\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("| ~ | `web` | blue → green | `{V1}` | `(none)` → `{V2}` |")),
        "{}",
        run.stdout
    );
}

#[test]
fn no_change_exits_zero() {
    let repo = shop();
    repo.commit("docs only", &[("README.md", Some("hello\n"))]);
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "No changes.\n"));
}

#[test]
fn a_refused_change_counts_as_a_change_and_says_how_to_fix_it() {
    let repo = shop();
    repo.commit(
        "bad bump",
        &[(
            "services/web.yaml",
            Some(&service("blue", Some(V2), None, "shop.example.com")),
        )],
    );
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.starts_with("! web  refused, traffic stays on blue\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("'teal bump web {V2}' does exactly that")),
        "{}",
        run.stdout
    );
}

#[test]
fn new_and_removed_services() {
    let repo = shop();
    repo.commit(
        "api in, web out",
        &[
            ("services/web.yaml", None),
            (
                "services/api.yaml",
                Some(&service("blue", Some("shop/api:1"), None, "api.example.com")),
            ),
        ],
    );
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("+ api  create, traffic nothing -> blue\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("- web  remove, traffic blue -> nothing\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("Plan: 1 to create, 0 to update, 1 to remove.\n"));
}

#[test]
fn a_revision_that_does_not_exist_is_a_clear_error() {
    let repo = shop();
    let run = teal(repo.path(), &["diff", "--base", "nope"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: revision \"nope\" not found in "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_repo_without_services_is_a_clear_error() {
    let repo = Repo::new();
    repo.commit("empty", &[("README.md", Some("x\n"))]);
    let run = teal(repo.path(), &["diff", "--base", "HEAD", "--head", "HEAD"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("services/: no services directory: create services/<name>.yaml, one file per service"),
        "{run:?}"
    );
    let run = teal(repo.path(), &["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("services/: no services directory"), "{run:?}");
}

#[test]
fn an_invalid_head_prints_every_error_with_its_position() {
    let repo = shop();
    repo.commit(
        "typo",
        &[("services/web.yaml", Some("active: blue\nblue:\n  imgae: x\nport: 0\n"))],
    );
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .starts_with("services/web.yaml:3:3: blue: unknown field \"imgae\", expected \"image\"\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("HEAD has an invalid config"), "{}", run.stdout);
}

#[test]
fn an_invalid_base_is_an_error_not_a_diff() {
    let repo = Repo::new();
    repo.commit("broken", &[("services/web.yaml", Some("active: [\n"))]);
    bump(&repo);
    let run = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("the base revision HEAD~1 has an invalid config, so a diff against it cannot be trusted"),
        "{}",
        run.stderr
    );
}

#[test]
fn validate_the_work_tree_and_a_revision() {
    let repo = shop();
    let run = teal(repo.path(), &["validate"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "ok: 1 service valid (web)\n"));
    // Break the work tree without committing: the work tree is invalid,
    // HEAD still valid.
    std::fs::write(repo.path().join("services/web.yaml"), "active: blue\nreplicas: 0\n").unwrap();
    let run = teal(repo.path(), &["validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "services/web.yaml:1:1: missing required field \"port\": the port the app listens on inside the container\n\
         services/web.yaml:1:1: missing required field \"route\": the host (and optional path) the proxy sends to this service\n\
         services/web.yaml:1:1: no health check declared: add health.http (e.g. {path: /healthz}), health.tcp: {} or health.exec: [cmd, args] here or in teal.yaml\n\
         services/web.yaml:1:9: the active color blue has no image: set blue.image, or make the color that has one active\n\
         services/web.yaml:2:11: replicas 0 is out of range: use 1-64\n\
         5 errors\n"
    );
    let run = teal(repo.path(), &["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn diff_in_a_bare_repo_and_a_sub_path() {
    let repo = Repo::new();
    repo.commit(
        "one",
        &[(
            "deploy/services/web.yaml",
            Some(&service("blue", Some(V1), None, "shop.example.com")),
        )],
    );
    repo.commit(
        "two",
        &[(
            "deploy/services/web.yaml",
            Some(&service("green", Some(V1), Some(V2), "shop.example.com")),
        )],
    );
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().join("deploy.git");
    common::git_in(
        bare.path(),
        &["clone", "-q", "--bare", repo.path().to_str().unwrap(), "deploy.git"],
    );
    let run = teal(
        bare.path(),
        &[
            "diff",
            "--repo",
            bare_path.to_str().unwrap(),
            "--base",
            "main~1",
            "--head",
            "main",
            "--path",
            "/deploy",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.starts_with("~ web  update, traffic blue -> green"));
    let run = teal(
        bare.path(),
        &[
            "diff",
            "--repo",
            bare_path.to_str().unwrap(),
            "--base",
            "main",
            "--path",
            "nowhere",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("main: no directory \"nowhere\" in the tree"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_bundled_example_validates_as_a_user_runs_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = teal(root, &["validate", "--repo", "examples/config-repo"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "ok: 4 services valid (admin, api, search, web)\n")
    );
}

#[test]
fn bump_edits_two_values_commits_and_diff_shows_the_switch() {
    let repo = shop();
    let before = std::fs::read_to_string(repo.path().join("services/web.yaml")).unwrap();
    let run = teal(repo.path(), &["bump", "web", V2, "--commit"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("services/web.yaml: green now runs {V2} and becomes active (blue keeps {V1} warm)\ncommitted: web: deploy {V2} (was {V1})\n")
    );
    let after = std::fs::read_to_string(repo.path().join("services/web.yaml")).unwrap();
    assert_eq!(
        after,
        before.replace("active: blue\n", &format!("active: green\ngreen:\n  image: {V2}\n"))
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        format!("web: deploy {V2} (was {V1})")
    );
    let diff = teal(repo.path(), &["diff", "--base", "HEAD~1"]);
    assert!(
        diff.stdout.starts_with("~ web  update, traffic blue -> green"),
        "{}",
        diff.stdout
    );
}

#[test]
fn bump_refuses_unknown_services_and_invalid_files() {
    let repo = shop();
    let run = teal(repo.path(), &["bump", "api", V2]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("error: no service \"api\": ") && run.stderr.contains("(services here: web)"),
        "{}",
        run.stderr
    );
    std::fs::write(
        repo.path().join("services/web.yaml"),
        "active: blue\nblue: {image: x}\nport: 0\n",
    )
    .unwrap();
    let run = teal(repo.path(), &["bump", "web", V2]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("services/web.yaml is invalid, fix it first:\nservices/web.yaml:"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("services/web.yaml")).unwrap(),
        "active: blue\nblue: {image: x}\nport: 0\n"
    );
}
