//! A project in memory through load, map and render, and the written
//! file through teal's own validation.

use super::*;
use crate::spec::RepoFiles;

fn input(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Input {
    Input {
        files: files
            .iter()
            .map(|(n, t)| SourceFile {
                name: n.to_string(),
                text: t.to_string(),
            })
            .collect(),
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        profiles: vec![],
    }
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    load(&input(files, &[]))
        .unwrap_err()
        .0
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn problems_name_the_file_and_line_at_fault() {
    let e = errors(&[("compose.yaml", "services:\n  web:\n    image: x\n    imgae: y\n")]);
    assert_eq!(
        e,
        ["compose.yaml:4:5: service web: unknown key \"imgae\" (not in the compose specification)"]
    );
    let e = errors(&[("a.yml", "services:\n  web:\n    image: ${TAG:?set TAG in .env}\n")]);
    assert_eq!(e, ["a.yml:3:12: variable TAG is not set: set TAG in .env"]);
    let e = errors(&[("a.yml", "services:\n  web: [\n")]);
    assert!(e[0].starts_with("a.yml:3:"), "{e:?}");
    let e = errors(&[
        ("a.yml", "services:\n  web:\n    image: x\n    ports: ['80']\n"),
        ("b.yml", "services:\n  web:\n    ports: [{published: 1}]\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("b.yml:3:5: service web: ports has a shape"), "{e:?}");
    let e = errors(&[("a.yml", "bogus: 1\nservices:\n  w:\n    extends: {service: x}\n")]);
    assert!(e[0].starts_with("a.yml:1:1: unknown top-level key \"bogus\""), "{e:?}");
    assert!(e[1].contains("`extends` is not supported"), "{e:?}");
}

const APP: &str = "x-common: &common\n  restart: on-failure:3\nservices:\n  My_App:\n    <<: *common\n    image: ${REG}/app:${TAG:-1.0}\n    expose: [8080]\n    environment: [API_TOKEN=abc, MODE, 'LEVEL=${LEVEL-warn}']\n    labels: {caddy: 'shop.example.com, www.shop.example.com', caddy.reverse_proxy: '{{upstreams 8080}}', team: web}\n    healthcheck:\n      test: curl -f http://localhost:8080/healthz || exit 1\n      interval: 2s\n      retries: 3\n    privileged: true\n    x-mine: ignored\n";

#[test]
fn a_service_maps_to_a_file_that_validates() {
    let project = load(&input(
        &[("compose.yaml", APP)],
        &[("REG", "r.example.com"), ("MODE", "fast")],
    ))
    .unwrap();
    let loaded = &project.services["My_App"];
    let cx = Context {
        vars: &[("MODE".to_string(), "fast".to_string())].into(),
        env_files: vec![],
        base_dir: "/srv/app",
    };
    let mut notes = Notes::default();
    let Outcome::Imported(imp) = map_service("My_App", loaded, &cx, &mut notes) else {
        panic!("{notes:?}")
    };
    assert_eq!(imp.name, "my-app");
    let text = render::render(&imp);
    assert!(!text.contains("abc"), "a secret in plain text:\n{text}");
    let mut files = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    files.files.insert("services/my-app.yaml".into(), text.clone());
    let d = crate::spec::load(&files).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let s = &d.services["my-app"];
    assert_eq!(s.images.blue.as_deref(), Some("r.example.com/app:1.0"));
    assert_eq!((s.port, s.restart), (8080, crate::spec::RestartPolicy::OnFailure));
    assert_eq!(s.route.host, "shop.example.com");
    assert_eq!(s.route.aliases, ["www.shop.example.com"]);
    assert_eq!(s.env.get("MODE").map(String::as_str), Some("fast"));
    assert_eq!(s.env.get("LEVEL").map(String::as_str), Some("warn"));
    assert_eq!(s.labels.keys().collect::<Vec<_>>(), ["team"]);
    assert_eq!(s.health.probe.to_string(), "http GET /healthz -> 200");
    assert!(s.secrets.contains_key("API_TOKEN"));
    let lines: Vec<String> = notes.0.iter().map(|n| n.to_string()).collect();
    for want in [
        "My_App: privileged: left out: never allowed from the repo",
        "My_App: restart: left out: the retry count 3",
        "My_App: environment.API_TOKEN: to do: looks like a secret",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "{want}: {lines:#?}");
    }
    assert!(!lines.iter().any(|l| l.contains("x-mine")), "{lines:#?}");
    assert!(notes.incomplete());
}

#[test]
fn profiles_leave_services_out_unless_asked_for() {
    let text = "services:\n  a: {image: a, expose: [80]}\n  b: {image: b, expose: [80], profiles: [debug]}\n";
    let p = load(&input(&[("c.yaml", text)], &[])).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(p.disabled["b"], ["debug"]);
    let vars: Vars = [("COMPOSE_PROFILES".to_string(), "debug, x".to_string())].into();
    let mut i = input(&[("c.yaml", text)], &[]);
    i.profiles = profiles(&[], &vars);
    assert_eq!(i.profiles, ["debug", "x"]);
    assert_eq!(load(&i).unwrap().services.len(), 2);
}
