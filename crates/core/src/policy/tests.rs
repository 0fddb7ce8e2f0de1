use super::*;
use crate::spec::load::{load, RepoFiles};

const SVC: &str = "active: blue\nblue:\n  image: registry.example.com/shop/web:1\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\n";

fn violations(extra: &str, policy: &Policy) -> Vec<String> {
    found(&[("web", extra)], policy, false)
}

/// The violations of services `(name, lines after SVC)` on a host where
/// /srv/link points at /etc and /srv/alias at /srv/app.
fn found(services: &[(&str, &str)], policy: &Policy, swarm: bool) -> Vec<String> {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    for (name, extra) in services {
        let svc = SVC.replace("shop.example.com", &format!("{name}.example.com"));
        f.files.insert(format!("services/{name}.yaml"), format!("{svc}{extra}"));
    }
    let d = load(&f).unwrap();
    let resolve = |p: &Path| -> PathBuf {
        let s = p.to_string_lossy();
        if let Some(rest) = s.strip_prefix("/srv/link") {
            return PathBuf::from(format!("/etc{rest}"));
        }
        if let Some(rest) = s.strip_prefix("/srv/alias") {
            return PathBuf::from(format!("/srv/app{rest}"));
        }
        p.strip_prefix("/var/run")
            .map_or(p.to_path_buf(), |r| Path::new("/run").join(r))
    };
    let host = Host {
        docker_sockets: &[PathBuf::from("/var/run/docker.sock")],
        resolve: &resolve,
        swarm,
    };
    check(&d, &f, policy, &host).iter().map(|d| d.to_string()).collect()
}

fn shop() -> Policy {
    Policy {
        images: Some(vec!["registry.example.com/shop/".into()]),
        volumes: Some(vec!["/srv/".into()]),
        named_volumes: None,
        secret_files: None,
        cert_files: None,
        prometheus: None,
    }
}

#[test]
fn images_outside_the_prefixes_are_refused_where_they_are_written() {
    assert!(violations("", &shop()).is_empty());
    let text = SVC.replace("registry.example.com/shop/web:1", "evil.example.com/miner:1");
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert("services/web.yaml".into(), text);
    let d = load(&f).unwrap();
    let host = Host {
        docker_sockets: &[],
        resolve: &|p: &Path| p.to_path_buf(),
        swarm: false,
    };
    let got: Vec<String> = check(&d, &f, &shop(), &host).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        ["services/web.yaml:3:10: image evil.example.com/miner:1 is outside this host's policy (policy.images: registry.example.com/shop/)"]
    );
}

#[test]
fn bind_mounts_are_checked_after_normalising_and_resolving() {
    let rows = [
        ("volumes: [/srv/web/data:/data]", None),
        ("volumes: [web-data:/data]", None),
        ("volumes: [/etc:/etc:ro]", Some("services/web.yaml:8:11: bind source /etc is outside this host's policy (policy.volumes: /srv/)")),
        ("volumes: ['/srv/../etc:/x']", Some("services/web.yaml:8:11: bind source /srv/../etc (resolves to /etc) is outside this host's policy (policy.volumes: /srv/)")),
        ("volumes: [/srv/link/shadow:/x]", Some("services/web.yaml:8:11: bind source /srv/link/shadow (resolves to /etc/shadow) is outside this host's policy (policy.volumes: /srv/)")),
        ("volumes: [/var/run/docker.sock:/s]", Some("services/web.yaml:8:11: bind source /var/run/docker.sock is (or holds) the Docker socket: never allowed from the repo, whatever the policy")),
        ("volumes: [/run:/r]", Some("services/web.yaml:8:11: bind source /run is (or holds) the Docker socket: never allowed from the repo, whatever the policy")),
        ("network: host", Some("services/web.yaml:8:10: network \"host\" shares a namespace with the host or another container: never allowed from the repo")),
    ];
    for (extra, want) in rows {
        let got = violations(&format!("{extra}\n"), &shop());
        assert_eq!(got, want.map(String::from).into_iter().collect::<Vec<_>>(), "{extra}");
    }
    // A socket inside an allowed prefix is still refused.
    let open = Policy {
        volumes: Some(vec!["/".into()]),
        ..Default::default()
    };
    assert_eq!(violations("volumes: [/var/run/docker.sock:/s]\n", &open).len(), 1);
    // No list: no bind mounts at all.
    let none = Policy::default();
    assert_eq!(
        violations("volumes: [/srv/web:/w]\n", &none),
        ["services/web.yaml:8:11: bind mount of /srv/web: this host allows no bind mounts (policy.volumes lists none); use a named volume"]
    );
}

#[test]
fn a_bind_below_a_read_write_bind_of_any_service_is_refused() {
    let rw_app = ("web", "volumes: ['/srv/app:/data']\n");
    let inside = "services/web.yaml:8:11: bind source /srv/app/sub is inside /srv/app, which services/web.yaml:8:11 (service web) mounts read-write: a container of web could replace a directory there with a symlink, and Docker would mount wherever it points at this container's next start; mount /srv/app read-only (/srv/app:<target>:ro), or use directories side by side instead of one inside the other";
    type Row<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let rows: [Row; 7] = [
        // The attack: a second bind of a directory the service may write to.
        (
            &[("web", "volumes: ['/srv/app:/data', '/srv/app/sub:/sub:ro']\n")],
            &[&inside.replace("web.yaml:8:11: bind source", "web.yaml:8:29: bind source")],
        ),
        // The same through another service, and through a symlinked path.
        (
            &[rw_app, ("api", "volumes: ['/srv/app/sub:/sub:ro']\n")],
            &[&inside.replace("web.yaml:8:11: bind", "api.yaml:8:11: bind")],
        ),
        (
            &[rw_app, ("api", "volumes: ['/srv/alias/sub:/sub:ro']\n")],
            &[&inside.replace(
                "web.yaml:8:11: bind source /srv/app/sub",
                "api.yaml:8:11: bind source /srv/alias/sub",
            )],
        ),
        // A read-write bind inside a read-only one: nothing lies below a
        // directory a container may write to.
        (
            &[
                ("web", "volumes: ['/srv/app:/data:ro']\n"),
                ("api", "volumes: ['/srv/app/sub:/sub']\n"),
            ],
            &[],
        ),
        (&[rw_app, ("api", "volumes: ['/srv:/all:ro']\n")], &[]),
        // Side by side, or the very same directory: no path to replace.
        (
            &[rw_app, ("api", "volumes: ['/srv/app:/data', '/srv/apps:/x:rw']\n")],
            &[],
        ),
        (
            &[("web", "volumes: ['/srv/app:/data:ro', '/srv/app/sub:/sub:ro']\n")],
            &[],
        ),
    ];
    for (services, want) in rows {
        assert_eq!(found(services, &shop(), false), want.to_vec(), "{services:?}");
    }
}

#[test]
fn swarm_mode_refuses_every_bind_mount_and_keeps_named_volumes() {
    assert_eq!(
        found(&[("web", "volumes: ['/srv/app:/data:ro', 'web-data:/d']\n")], &shop(), true),
        ["services/web.yaml:8:11: bind mount of /srv/app: in swarm mode a task may run on any node, where teal cannot check the path (or what its symlinks point at); use a named volume (name:/target)"]
    );
}

#[test]
fn a_service_mounts_only_its_own_named_volumes_unless_the_policy_lists_more() {
    let named = |name: &str, named_volumes: Option<&[&str]>| {
        let policy = Policy {
            named_volumes: named_volumes.map(|l| l.iter().map(|p| p.to_string()).collect()),
            ..shop()
        };
        violations(&format!("volumes: ['{name}:/data']\n"), &policy)
    };
    for own in ["web", "web-data", "web_data"] {
        assert_eq!(named(own, None), Vec::<String>::new(), "{own}");
    }
    assert_eq!(
        named("billing-db", None),
        ["services/web.yaml:8:11: named volume billing-db is not named after service web, and this host lets a service mount only its own (another app's volume could be its database): rename it web-billing-db, or ask the host's owner to list a prefix of it in policy.named_volumes"]
    );
    // "webhooks-db" starts with "web" but is not web's.
    assert_eq!(named("webhooks-db", None).len(), 1);
    // A list replaces the default: only what it names.
    assert_eq!(named("shared-cache", Some(&["shared-"])), Vec::<String>::new());
    assert_eq!(
        named("web-data", Some(&["shared-"])),
        ["services/web.yaml:8:11: named volume web-data is outside this host's policy (policy.named_volumes: shared-): rename it to start with one of those, or ask the host's owner to add a prefix of it"]
    );
    assert_eq!(
        named("web-data", Some(&[])),
        ["services/web.yaml:8:11: named volume web-data: this host allows no named volumes (policy.named_volumes is empty); ask the host's owner to list a prefix of it there"]
    );
}

#[test]
fn secret_files_are_read_only_under_the_policy_prefixes_resolved() {
    let with = |prefixes: Option<&[&str]>, extra: &str| {
        let policy = Policy {
            secret_files: prefixes.map(|l| l.iter().map(|p| p.to_string()).collect()),
            ..shop()
        };
        violations(extra, &policy)
    };
    let own = "env_from_files: {DB: /srv/secrets/web/db}\n";
    assert_eq!(with(Some(&["/srv/secrets/"]), own), Vec::<String>::new());
    assert_eq!(
        with(None, own),
        ["services/web.yaml:8:22: secret file /srv/secrets/web/db: this host lets the repo read no files (policy.secret_files lists none); ask the host's owner to list a prefix of it there, or use an age-encrypted secret"]
    );
    // Out by `..`, and out by a symlink (/srv/link -> /etc).
    for (extra, at) in [
        ("secrets: {KEY: {file: /srv/secrets/../../etc/shadow}}\n", "8:11"),
        ("secrets:\n  KEY: {file: /srv/link/shadow}\n", "9:3"),
    ] {
        let got = with(Some(&["/srv/secrets/", "/srv/link/x"]), extra);
        assert_eq!(got.len(), 1, "{extra}: {got:?}");
        assert!(
            got[0].starts_with(&format!("services/web.yaml:{at}: secret file /srv/"))
                && got[0].contains("is outside this host's policy (policy.secret_files: /srv/secrets/, /srv/link/x)"),
            "{extra}: {got:?}"
        );
    }
}

#[test]
fn certificate_files_are_read_only_under_the_policy_prefixes_resolved() {
    let tls = |cert: &str, key: &str| {
        SVC.replace(
            "route: {host: shop.example.com}",
            &format!("route:\n  host: shop.example.com\n  tls: {{cert: {cert}, key: {key}}}"),
        )
    };
    let check_with = |prefixes: Option<&[&str]>, svc: String| {
        let policy = Policy {
            cert_files: prefixes.map(|l| l.iter().map(|p| p.to_string()).collect()),
            ..shop()
        };
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), svc);
        let d = load(&f).unwrap();
        let resolve = |p: &Path| -> PathBuf {
            let s = p.to_string_lossy();
            match s.strip_prefix("/srv/link") {
                Some(rest) => PathBuf::from(format!("/etc{rest}")),
                None => p.to_path_buf(),
            }
        };
        let host = Host {
            docker_sockets: &[],
            resolve: &resolve,
            swarm: false,
        };
        check(&d, &f, &policy, &host)
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    };
    let own = tls("/etc/teal/certs/shop.pem", "/etc/teal/certs/shop.key");
    assert_eq!(
        check_with(Some(&["/etc/teal/certs/"]), own.clone()),
        Vec::<String>::new()
    );
    assert_eq!(
        check_with(None, own),
        [
            "services/web.yaml:7:15: certificate file /etc/teal/certs/shop.pem: this host lets the repo read no certificate files (policy.cert_files lists none); ask the host's owner to list a prefix of it there, or use tls: acme",
            "services/web.yaml:7:46: certificate file /etc/teal/certs/shop.key: this host lets the repo read no certificate files (policy.cert_files lists none); ask the host's owner to list a prefix of it there, or use tls: acme"
        ]
    );
    // The host's own keys are out of reach, by `..` and by a symlink.
    let got = check_with(
        Some(&["/etc/teal/certs/", "/srv/link/teal"]),
        tls(
            "/etc/teal/certs/shop.pem",
            "/etc/teal/certs/../../ssh/ssh_host_ed25519_key",
        ),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("certificate file /etc/teal/certs/../../ssh/ssh_host_ed25519_key (resolves to /etc/ssh/ssh_host_ed25519_key) is outside this host's policy (policy.cert_files: /etc/teal/certs/, /srv/link/teal)"), "{got:?}");
    let got = check_with(Some(&["/etc/teal/"]), tls("/etc/teal/c.pem", "/srv/link/shadow"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("/srv/link/shadow (resolves to /etc/shadow) is outside"),
        "{got:?}"
    );
}

#[test]
fn a_prometheus_url_outside_the_policy_is_refused_at_its_line() {
    let analysis = |url: &str| {
        format!("strategy: canary\nanalysis:\n  prometheus:\n    url: {url}\n    query: sum(up)\n    min: 1\n")
    };
    assert_eq!(
        violations(&analysis("http://169.254.169.254/latest"), &shop()),
        ["services/web.yaml:11:10: prometheus url http://169.254.169.254/latest: this host lets the repo query no Prometheus (policy.prometheus lists none); if it may query this one, its owner adds `prometheus: [http://169.254.169.254/latest/]` under `policy:` in the host config"]
    );
    let policy = Policy {
        prometheus: Some(vec!["http://127.0.0.1:9090".into()]),
        ..shop()
    };
    assert!(violations(&analysis("http://127.0.0.1:9090/"), &policy).is_empty());
    let got = violations(&analysis("http://127.0.0.1:9090.evil.com"), &policy);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("services/web.yaml:11:10: prometheus url http://127.0.0.1:9090.evil.com is outside this host's policy (policy.prometheus: http://127.0.0.1:9090)"),
        "{got:?}"
    );
}
