//! Mistakes a user makes in the config repo are named in what teal prints:
//! a file teal would not read, and the field of a refused live change.

mod common;

use common::{service, teal, Repo};

#[test]
fn a_yml_file_is_an_error_naming_it_in_validate_and_diff() {
    let repo = Repo::new();
    let web = service("blue", Some("registry.example.com/web:1"), None, "web.example.com");
    let base = repo.commit("web", &[("services/web.yaml", Some(&web))]);
    let api = service("blue", Some("registry.example.com/api:1"), None, "api.example.com");
    repo.commit("api, misnamed", &[("services/api.yml", Some(&api))]);
    let want = "services/api.yml: teal reads only files ending in .yaml in services/: rename it to services/api.yaml";

    let run = teal(repo.path(), &["validate"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(want), "{run:?}");

    let run = teal(repo.path(), &["validate", "--rev", "HEAD"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(want), "{run:?}");

    let run = teal(repo.path(), &["diff", "--base", &base]);
    assert_eq!(run.code, 1, "an invalid head is an error, not 'no change': {run:?}");
    assert!(run.stdout.contains(want), "{run:?}");

    // Renamed as told, it is a service.
    repo.git(&["mv", "services/api.yml", "services/api.yaml"]);
    repo.git(&["commit", "-qm", "rename"]);
    let run = teal(repo.path(), &["diff", "--base", &base]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("api"), "{run:?}");
}

#[test]
fn a_refused_change_of_the_live_color_names_the_fields() {
    let repo = Repo::new();
    let web = service("blue", Some("registry.example.com/web:1"), None, "web.example.com");
    let base = repo.commit("web", &[("services/web.yaml", Some(&web))]);
    let changed = web.replace("port: 8080\n", "port: 9090\nenv: {RUST_LOG: debug}\nrestart: always\n");
    assert_ne!(changed, web);
    repo.commit("settings of the live color", &[("services/web.yaml", Some(&changed))]);
    let run = teal(repo.path(), &["diff", "--base", &base]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "services/web.yaml: the settings port, env.RUST_LOG and restart of blue, the color serving traffic, would change"
        ),
        "{run:?}"
    );
    assert!(!run.stdout.contains("debug"), "env values are not shown: {run:?}");
}
