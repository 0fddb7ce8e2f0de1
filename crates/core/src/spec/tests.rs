//! Table-driven tests of loading and validation: each bad input asserts the
//! exact `path:line:col: message` users will see.

use super::*;

pub(crate) const GOOD: &str = "\
active: green
blue:
  image: registry.example.com/shop/web:1.4.1
green:
  image: registry.example.com/shop/web:1.4.2
port: 8080
route: {host: shop.example.com}
health:
  http: {path: /healthz}
";

fn files(list: &[(&str, &str)]) -> RepoFiles {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    for (p, t) in list {
        f.files.insert(p.to_string(), t.to_string());
    }
    f
}

fn errors(list: &[(&str, &str)]) -> Vec<String> {
    match load(&files(list)) {
        Ok(_) => vec![],
        Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
    }
}

fn web(text: &str) -> Vec<String> {
    errors(&[("services/web.yaml", text)])
}

/// GOOD with one line replaced (by its start) or appended.
fn tweak(from: &str, to: &str) -> String {
    if from.is_empty() {
        return format!("{GOOD}{to}\n");
    }
    let out: Vec<String> = GOOD
        .lines()
        .map(|l| {
            if l.starts_with(from) {
                to.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_ne!(out.join("\n") + "\n", GOOD, "tweak {from:?} matched nothing");
    out.join("\n") + "\n"
}

#[test]
fn every_bad_input_is_reported_with_its_position() {
    let blue_img = "  image: registry.example.com/shop/web:1.4.1";
    let green_img = "  image: registry.example.com/shop/web:1.4.2";
    let cases: Vec<(String, &str)> = vec![
        (tweak("blue:", "blue:\n\timage: x"), "services/web.yaml:3:1: found character that cannot start any token"),
        (tweak("port:", "prot: 8080"), "services/web.yaml:6:1: unknown field \"prot\", expected one of \"active\", \"blue\", \"green\", \"port\", \"replicas\", \"env\", \"command\", \"volumes\", \"labels\", \"restart\", \"pull\", \"network\", \"route\", \"preview\", \"health\", \"switch\", \"strategy\", \"canary\", \"blue-green\", \"promote\", \"abort\", \"maintenance\", \"rolling\", \"analysis\", \"placement\", \"rollout\", \"secrets\", \"env_from_files\", \"release\""),
        (tweak(blue_img, "  imgae: web:1"), "services/web.yaml:3:3: blue: unknown field \"imgae\", expected \"image\""),
        (tweak("port:", "port: eighty"), "services/web.yaml:6:7: port: invalid type: string \"eighty\", expected i64"),
        (tweak("active:", "active: red"), "services/web.yaml:1:9: active: unknown variant \"red\", expected \"blue\" or \"green\""),
        (tweak("active:", ""), "services/web.yaml:1:1: missing required field \"active\": the color that serves traffic, blue or green"),
        (GOOD.replace(&format!("green:\n{green_img}\n"), ""), "services/web.yaml:1:9: the active color green has no image: set green.image, or make the color that has one active"),
        (tweak(green_img, "  {}"), "services/web.yaml:4:1: the active color green has no image: set green.image, or make the color that has one active"),
        (tweak(green_img, "  image: Shop/Web:1"), "services/web.yaml:5:10: invalid image reference \"Shop/Web:1\": path component \"Shop\" must be lowercase a-z 0-9 separated by . _ __ or -"),
        (tweak(green_img, "  image: web:-1"), "services/web.yaml:5:10: invalid image reference \"web:-1\": tag \"-1\" must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -"),
        (tweak(green_img, "  image: web@sha256:abc"), "services/web.yaml:5:10: invalid image reference \"web@sha256:abc\": a sha256 digest has 64 lowercase hex digits"),
        (tweak(green_img, "  image: 'bad host:99999/web:1'"), "services/web.yaml:5:10: invalid image reference \"bad host:99999/web:1\": registry \"bad host:99999\" is not a valid host[:port]"),
        (tweak("port:", "port: 0"), "services/web.yaml:6:7: port 0 is out of range: use 1-65535"),
        (tweak("port:", "port: 70000"), "services/web.yaml:6:7: port 70000 is out of range: use 1-65535"),
        (tweak("port:", ""), "services/web.yaml:1:1: missing required field \"port\": the port the app listens on inside the container"),
        (tweak("", "replicas: 0"), "services/web.yaml:10:11: replicas 0 is out of range: use 1-64"),
        (tweak("", "replicas: 65"), "services/web.yaml:10:11: replicas 65 is out of range: use 1-64"),
        (tweak("", "  interval: fast"), "services/web.yaml:10:13: invalid duration \"fast\": expected number at 0; write e.g. 500ms, 2s or 1m"),
        (tweak("", "  timeout: 2m\n  deadline: 1m"), "services/web.yaml:11:13: timeout (2m) must be shorter than deadline (1m)"),
        (tweak("", "  interval: 0s"), "services/web.yaml:10:13: interval must be greater than 0"),
        (tweak("", "  interval: 2m"), "services/web.yaml:10:13: interval (2m) must be shorter than deadline (1m)"),
        (tweak("", "  successes: 0"), "services/web.yaml:10:14: successes 0 is out of range: use 1-1000 consecutive passes"),
        (tweak("  http:", "  http: {path: /h}\n  tcp: {}"), "services/web.yaml:8:1: health declares more than one probe: keep exactly one of http, tcp, exec"),
        (tweak("  http:", "  interval: 1s"), "services/web.yaml:8:1: no health check declared: add health.http (e.g. {path: /healthz}), health.tcp: {} or health.exec: [cmd, args] here or in teal.yaml"),
        (tweak("health:", "").replace("  http: {path: /healthz}\n", ""), "services/web.yaml:1:1: no health check declared: add health.http (e.g. {path: /healthz}), health.tcp: {} or health.exec: [cmd, args] here or in teal.yaml"),
        (tweak("  http:", "  http: {path: /h, status: 999}"), "services/web.yaml:9:28: status 999 is not an HTTP status code: use 100-599"),
        (tweak("  http:", "  http: {path: healthz}"), "services/web.yaml:9:16: invalid probe path \"healthz\": it must start with '/' and have no spaces or quotes"),
        (tweak("  http:", "  exec: []"), "services/web.yaml:9:3: exec needs a command, e.g. exec: [/app, check]"),
        (tweak("route:", "route: {host: 'shop example.com'}"), "services/web.yaml:7:15: invalid host \"shop example.com\": use a DNS name such as shop.example.com"),
        (tweak("route:", "route: {host: shop.example.com, path: 'a b'}"), "services/web.yaml:7:39: invalid path \"a b\": it must start with '/' and have no spaces, quotes, ';', '{', '}', '#' or '?'"),
        (tweak("route:", "route: {path: /}"), "services/web.yaml:7:1: route needs a host, e.g. host: shop.example.com"),
        (tweak("route:", ""), "services/web.yaml:1:1: missing required field \"route\": the host (and optional path) the proxy sends to this service"),
        (tweak("", "preview:\n  host: p.example.com\n  allow: [10.0.0.0/8, 10.0.0.0/99]"), "services/web.yaml:12:23: invalid CIDR \"10.0.0.0/99\": use e.g. 10.0.0.0/8 or 192.168.1.7/32"),
        (tweak("", "preview: {host: shop.example.com}"), "services/web.yaml:10:17: preview host \"shop.example.com\" is the route host: the preview needs its own host name"),
        (tweak("", "labels: {teal.color: x}"), "services/web.yaml:10:22: label \"teal.color\" is reserved: keys starting with \"teal.\" are set by teal"),
        (tweak("", "env: {'A=B': x}"), "services/web.yaml:10:14: invalid environment variable name \"A=B\": it must be non-empty without '='"),
        (tweak("", "volumes: [data]"), "services/web.yaml:10:11: invalid volume \"data\": use source:/absolute/target or source:/target:ro"),
        (tweak("", "switch: {drain: 2h}"), "services/web.yaml:10:17: drain 2h is longer than 1h: in-flight requests should finish well within that"),
        (tweak("", "network: 'a b'"), "services/web.yaml:10:10: invalid network name \"a b\": use letters, digits, '_', '.', '-'"),
        (tweak("", "command: []"), "services/web.yaml:10:1: command is empty: remove it to use the image's command"),
        ("# nothing\n".to_string(), "services/web.yaml:1:1: empty service file: it needs at least active, a color with an image, port and route"),
    ];
    assert!(cases.len() >= 25);
    for (text, want) in &cases {
        assert_eq!(web(text), vec![want.to_string()], "input:\n{text}");
    }
}

#[test]
fn all_problems_are_reported_together_in_order() {
    let text = tweak("port:", "port: 0").replace("active: green", "active: green\nreplicas: 99");
    assert_eq!(
        web(&text),
        [
            "services/web.yaml:2:11: replicas 99 is out of range: use 1-64",
            "services/web.yaml:7:7: port 0 is out of range: use 1-65535",
        ]
    );
    // Problems in several files come back in one run, sorted by file.
    let errs = errors(&[
        ("services/b.yaml", &tweak("port:", "port: 0")),
        ("services/a.yaml", "active: ["),
    ]);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("services/a.yaml:"), "{errs:?}");
    assert_eq!(errs[1], "services/b.yaml:6:7: port 0 is out of range: use 1-65535");
}

#[test]
fn service_names_cannot_escape_container_or_file_names() {
    let rule =
        "use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'; it becomes part of container and file names";
    for name in ["Web", "web_app", "a..b", "-x", "x-", "../etc", &"a".repeat(64)] {
        let errs = errors(&[(&format!("services/{name}.yaml"), GOOD)]);
        assert_eq!(
            errs,
            [format!(
                "services/{name}.yaml:1:1: invalid service name {name:?} (the file name): {rule}"
            )],
            "name {name:?}"
        );
    }
}

#[test]
fn routes_are_unique_across_services() {
    let errs = errors(&[("services/a.yaml", GOOD), ("services/b.yaml", GOOD)]);
    assert_eq!(
        errs,
        ["services/b.yaml:7:15: route shop.example.com/ is already served by services/a.yaml: each host and path belongs to one service"]
    );
    // Same host, other path: fine.
    let other = GOOD.replace("{host: shop.example.com}", "{host: shop.example.com, path: /api}");
    assert_eq!(
        errors(&[("services/a.yaml", GOOD), ("services/b.yaml", &other)]),
        Vec::<String>::new()
    );
    // A preview may not take another service's route host.
    let preview = tweak(
        "route:",
        "route: {host: api.example.com}\npreview: {host: shop.example.com}",
    );
    assert_eq!(
        errors(&[("services/a.yaml", GOOD), ("services/b.yaml", &preview)]),
        ["services/b.yaml:8:17: preview host shop.example.com is the route host of services/a.yaml: use a host of its own"]
    );
}

#[test]
fn bad_defaults_point_into_teal_yaml() {
    let errs = errors(&[
        ("teal.yaml", "health:\n  deadline: soon\n"),
        ("services/web.yaml", GOOD),
        ("services/api.yaml", &GOOD.replace("shop.", "api.")),
    ]);
    assert_eq!(
        errs,
        ["teal.yaml:2:13: invalid duration \"soon\": expected number at 0; write e.g. 500ms, 2s or 1m"]
    );
    let errs = errors(&[("teal.yaml", "helth: {}\n"), ("services/web.yaml", GOOD)]);
    assert_eq!(
        errs,
        ["teal.yaml:1:1: unknown field \"helth\", expected one of \"health\", \"switch\", \"network\", \"hosts\", \"secrets\""]
    );
}

#[test]
fn a_pause_in_teal_yaml_applies_to_the_services_with_a_release() {
    let d = load(&files(&[
        ("teal.yaml", "switch: {pause: 3s}\n"),
        ("services/web.yaml", GOOD),
        (
            "services/api.yaml",
            &format!("{}release: {{command: [migrate]}}\n", GOOD.replace("shop.", "api.")),
        ),
    ]))
    .unwrap();
    assert_eq!(d.services["web"].traffic.pause, None, "no release to hold for");
    assert_eq!(d.services["api"].traffic.pause, Some(Duration::from_secs(3)));
    let errs = errors(&[
        ("teal.yaml", "switch: {pause: 90s}\n"),
        ("services/web.yaml", &format!("{GOOD}release: {{command: [migrate]}}\n")),
    ]);
    assert_eq!(errs, ["teal.yaml:1:17: pause must be between 100ms and 60s"]);
}

#[test]
fn missing_services_dir_is_a_clear_error() {
    let err = load(&RepoFiles::default()).unwrap_err().to_string();
    assert_eq!(
        err,
        "services/: no services directory: create services/<name>.yaml, one file per service"
    );
    // An empty services/ dir is a valid (empty) desired state.
    assert!(load(&files(&[])).unwrap().services.is_empty());
}

#[test]
fn good_file_resolves_with_builtin_defaults() {
    let d = load(&files(&[("services/web.yaml", GOOD)])).unwrap();
    let s = &d.services["web"];
    assert_eq!(s.active, Color::Green);
    assert_eq!(s.images.blue.as_deref(), Some("registry.example.com/shop/web:1.4.1"));
    assert_eq!(
        (s.port, s.replicas, s.network.as_deref()),
        (8080, 1, None),
        "None: the host's managed network"
    );
    assert_eq!(
        s.route,
        Route {
            host: "shop.example.com".into(),
            path: "/".into(),
            aliases: vec![],
            tls: None,
        }
    );
    assert_eq!(
        s.health.probe,
        Probe::Http {
            path: "/healthz".into(),
            status: 200,
            body: None
        }
    );
    assert_eq!(s.health.successes, 3);
    assert_eq!(s.health.deadline, std::time::Duration::from_secs(60));
    assert_eq!(
        s.switch,
        Switch {
            drain: std::time::Duration::from_secs(5),
            keep_idle: true
        }
    );
    assert_eq!(s.restart, RestartPolicy::UnlessStopped);
}

#[test]
fn repo_defaults_apply_field_by_field_unless_overridden() {
    let repo = "health:\n  tcp: {}\n  interval: 500ms\n  deadline: 30s\nswitch: {drain: 1s, keep_idle: false}\nnetwork: shop\n";
    let svc = GOOD.replace("  http: {path: /healthz}\n", "  deadline: 2m\n") + "switch: {keep_idle: true}\n";
    let d = load(&files(&[("teal.yaml", repo), ("services/web.yaml", &svc)])).unwrap();
    let s = &d.services["web"];
    assert_eq!(s.health.probe, Probe::Tcp, "probe from teal.yaml");
    assert_eq!(
        s.health.interval,
        std::time::Duration::from_millis(500),
        "interval from teal.yaml"
    );
    assert_eq!(
        s.health.deadline,
        std::time::Duration::from_secs(120),
        "deadline overridden"
    );
    assert_eq!(
        s.switch,
        Switch {
            drain: std::time::Duration::from_secs(1),
            keep_idle: true
        }
    );
    assert_eq!(s.network.as_deref(), Some("shop"));
    // A service's own probe replaces the default probe kind entirely.
    let d = load(&files(&[("teal.yaml", repo), ("services/web.yaml", GOOD)])).unwrap();
    assert!(matches!(d.services["web"].health.probe, Probe::Http { .. }));
}

#[test]
fn image_references() {
    for ok in [
        "web",
        "web:1",
        "shop/web:1.4.2",
        "registry.example.com:5000/shop/web:v1_2-rc.1",
        "localhost/web",
        "a__b/c-d.e:latest",
        &format!("web@sha256:{}", "a".repeat(64)),
        &format!("r.io/web:1@sha256:{}", "0".repeat(64)),
    ] {
        assert_eq!(validate::check_image(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "Web",
        "web:",
        "web::1",
        "web/",
        "/web",
        "web-:1",
        "r.io:abc/web",
        "web:.1",
        "we b",
    ] {
        assert!(validate::check_image(bad).is_err(), "{bad} should be refused");
    }
}

/// A service file: a blue-green web service with `extra` lines appended,
/// loaded alone; its resolved service, or its diagnostics as text.
pub(crate) fn service_with(extra: &str) -> Result<crate::spec::Service, Vec<String>> {
    const BASE: &str = "active: green\nblue:\n  image: web:1\ngreen:\n  image: web:2\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\n";
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert("services/web.yaml".into(), format!("{BASE}{extra}"));
    crate::spec::load(&f)
        .map(|d| d.services["web"].clone())
        .map_err(|d| d.0.iter().map(|d| d.to_string()).collect())
}
