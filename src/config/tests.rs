//! Parsing the host config: defaults, located errors.
use super::*;

#[test]
fn minimal_config_gets_defaults() {
    let c = HostConfig::parse("d.yaml", "repo: {url: /srv/deploy}\nproxy: {kind: nginx}\n").unwrap();
    assert_eq!(c.repo.branch, "main");
    assert_eq!(c.repo.poll, Duration::from_secs(15));
    assert_eq!(c.docker.network, "teal");
    assert_eq!(c.listen, "127.0.0.1:9470");
    assert_eq!(c.proxy.nginx.test, ["nginx", "-t"]);
    assert!(!c.proxy.managed);
    assert_eq!(c.docker.mode, DockerMode::Engine);
}

#[test]
fn docker_mode_is_engine_or_swarm() {
    let c = HostConfig::parse(
        "d.yaml",
        "repo: {url: x}\ndocker: {mode: swarm}\nproxy: {kind: haproxy}\n",
    )
    .unwrap();
    assert_eq!(c.docker.mode, DockerMode::Swarm);
    let err = HostConfig::parse(
        "d.yaml",
        "repo: {url: x}\ndocker: {mode: k8s}\nproxy: {kind: haproxy}\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown variant \"k8s\", expected \"engine\" or \"swarm\""),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_located_all_at_once() {
    let err = HostConfig::parse(
        "d.yaml",
        "repo:\n  url: x\n  brnach: main\nproxy: {kind: nginx, lisen: ':80'}\nlisten: [oops]\n",
    )
    .unwrap_err()
    .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("d.yaml:3:3: repo: unknown field \"brnach\", expected one of"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("d.yaml:4:22: proxy: unknown field \"lisen\""),
        "{err}"
    );
}

#[test]
fn a_managed_proxy_needs_only_kind_listen_and_managed() {
    let c = HostConfig::parse(
        "d.yaml",
        "repo: {url: /srv/deploy}\nproxy: {kind: nginx, listen: '127.0.0.1:8080', managed: true}\nstate_dir: /srv/teal\n",
    )
    .unwrap();
    let spec = crate::reconcile::managed_spec(&c).expect("managed");
    assert_eq!(spec.dir, Path::new("/srv/teal/proxy"), "its files live under state_dir");
    assert_eq!((spec.kind, spec.listen.as_str()), (ProxyKind::Nginx, "127.0.0.1:8080"));
    assert_eq!(spec.switch, NginxSwitch::Balancer);
}

#[test]
fn an_operators_proxy_defaults_field_by_field_to_debians_layout() {
    let c = HostConfig::parse(
        "d.yaml",
        "repo: {url: x}\nproxy:\n  kind: haproxy\n  haproxy: {socket: /run/haproxy/teal.sock}\n  nginx: {switch: reload}\n",
    )
    .unwrap();
    let h = &c.proxy.haproxy;
    assert_eq!(h.socket, Path::new("/run/haproxy/teal.sock"));
    assert_eq!(h.config, Path::new("/etc/haproxy/teal.cfg"));
    assert_eq!(h.reload, ["systemctl", "reload", "haproxy"]);
    let n = &c.proxy.nginx;
    assert_eq!(n.switch, NginxSwitch::Reload);
    assert_eq!(n.conf_dir, Path::new("/etc/nginx/conf.d"));
    assert_eq!(
        (n.test.clone(), n.reload.clone()),
        (
            vec!["nginx".to_string(), "-t".into()],
            vec!["systemctl".to_string(), "reload".into(), "nginx".into()]
        )
    );
    assert!(n.client_keepalive);
}

#[test]
fn bad_duration_and_kind_are_errors() {
    let err = HostConfig::parse("d.yaml", "repo: {url: x, poll: soon}\nproxy: {kind: nginx}\n").unwrap_err();
    assert!(err.to_string().contains("invalid duration \"soon\""), "{err}");
    let err = HostConfig::parse("d.yaml", "repo: {url: x}\nproxy: {kind: traefik}\n").unwrap_err();
    assert!(err.to_string().contains("unknown variant \"traefik\""), "{err}");
}

#[test]
fn the_example_host_config_parses_with_every_notify_setting() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/host/daemon.yaml");
    let c = HostConfig::load(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.notify.len(), 2);
    assert!(c.notify[0].url.is_some() && c.notify[0].secret_file.is_some());
    let g = c.notify[1].github.as_ref().unwrap();
    assert!(g.target_url.is_some() && g.api.starts_with("https://"));
    assert!(c.repo.fast_forward_only == Some(true) && c.repo.verify.allowed_signers.is_some());
}

#[test]
fn policy_prometheus_entries_must_be_plain_http_urls_located_at_their_line() {
    let c = HostConfig::parse(
        "d.yaml",
        "repo: {url: x}\nproxy: {kind: nginx}\npolicy:\n  prometheus: ['http://127.0.0.1:9090/', 'https://prom.internal/']\n",
    )
    .unwrap();
    assert_eq!(c.policy.prometheus.unwrap().len(), 2);
    assert_eq!(
        HostConfig::parse("d.yaml", "repo: {url: x}\nproxy: {kind: nginx}\n")
            .unwrap()
            .policy
            .prometheus,
        None
    );
    let err = HostConfig::parse(
        "d.yaml",
        "repo: {url: x}\nproxy: {kind: nginx}\npolicy:\n  prometheus:\n    - 127.0.0.1:9090\n    - http://u:p@prom/\n",
    )
    .unwrap_err()
    .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("d.yaml:5:7: policy.prometheus[0]: 127.0.0.1:9090 is not"),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "d.yaml:6:7: policy.prometheus[1]: http://u:p@prom/ carries credentials: give the URL without them"
    );
}
