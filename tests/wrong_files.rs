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
