//! Hostile input from the repo's writer, read the two ways teal reads a
//! config repo (a work tree for `validate`/`bump`, git objects for
//! `validate --rev`, `diff` and the daemon): bytes that are not UTF-8, a
//! link to an endless file, ten thousand services, and a commit whose files
//! add up to more than teal holds. Each is refused with the file named, or
//! handled within the limits README's "Securing a host" states.

mod common;

use common::{service, teal, Repo};

fn svc(n: usize) -> String {
    service("blue", Some("app:1"), None, &format!("s{n}.example.com"))
}

#[test]
fn bytes_that_are_not_utf8_are_refused_with_the_file_named() {
    let repo = Repo::new();
    repo.commit("ok", &[("services/api.yaml", Some(&svc(1)))]);
    let bad = [
        b"active: blue\nblue:\n  image: app:\xff\xfe\n".as_slice(),
        b"port: 8080\n",
    ]
    .concat();
    std::fs::write(repo.path().join("services/web.yaml"), &bad).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "latin-1"]);
    for args in [
        &["validate"][..],
        &["validate", "--rev", "HEAD"],
        &["diff", "--base", "HEAD~1"],
    ] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains("services/web.yaml: not UTF-8 text"), "{args:?}: {all}");
    }
}

#[test]
fn a_teal_yaml_linked_to_an_endless_file_is_read_no_further_than_the_limit() {
    let repo = Repo::new();
    repo.commit("ok", &[("services/web.yaml", Some(&svc(1)))]);
    std::os::unix::fs::symlink("/dev/zero", repo.path().join("teal.yaml")).unwrap();
    let r = teal(repo.path(), &["validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("teal.yaml:1:1: file is 1048577 bytes, more than the 1048576 teal reads"),
        "{r:?}"
    );
}

#[test]
fn ten_thousand_services_are_handled_and_one_more_is_refused() {
    let repo = Repo::new();
    let dir = repo.path().join("services");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..10_000 {
        std::fs::write(dir.join(format!("s{n:05}.yaml")), svc(n)).unwrap();
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "ten thousand"]);
    for args in [&["validate"][..], &["validate", "--rev", "HEAD"]] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("ok: 10000 services valid (s00000, s00001,") && r.stdout.ends_with(", 9988 more)\n"),
            "{args:?}: {}",
            r.stdout
        );
    }
    std::fs::write(dir.join("s10000.yaml"), svc(10_000)).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "one more"]);
    for args in [
        &["validate"][..],
        &["validate", "--rev", "HEAD"],
        &["diff", "--base", "HEAD~1"],
    ] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("more than 10000 service files in one commit: teal refuses such a repo"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn files_that_add_up_past_the_repo_limit_are_refused_before_all_are_read() {
    let repo = Repo::new();
    let dir = repo.path().join("services");
    std::fs::create_dir_all(&dir).unwrap();
    // Each file is valid YAML just under the limit on one file (a long
    // comment); 65 of them pass 64 MiB.
    let one = format!("{}#{}\n", svc(0), "x".repeat((1 << 20) - 200));
    for n in 0..65 {
        std::fs::write(dir.join(format!("s{n:02}.yaml")), &one).unwrap();
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "heavy"]);
    for args in [&["validate"][..], &["validate", "--rev", "HEAD"]] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("the config files of this commit add up to more than 67108864 bytes"),
            "{args:?}: {}",
            r.stderr
        );
    }
}
