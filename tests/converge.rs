//! `teal apply` end to end: a git config repo, the real Docker engine and a
//! real nginx or HAProxy. Every scenario runs against both proxies.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{
    app_image_version, docker_or_fail, free_port, get_via, proxy_or_fail, teal, unique, DockerGuard, Repo, Run,
};
use teal::drivers::docker::DockerDriver;
use teal::drivers::managed::{self, Managed, ManagedSpec};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Nginx,
    Haproxy,
}

struct Env {
    kind: Kind,
    repo: Repo,
    svc: String,
    host: String,
    listen: String,
    config: PathBuf,
    state: tempfile::TempDir,
    v1: String,
    v2: String,
    bad: String,
    proxy_dir: tempfile::TempDir,
    _proxy: Managed,
    _guard: DockerGuard,
}

async fn env(kind: Kind) -> Env {
    docker_or_fail();
    proxy_or_fail(if kind == Kind::Nginx { "nginx" } else { "haproxy" });
    let network = unique("teal-it");
    let svc = unique("web");
    let docker = DockerDriver::connect(None, &network).await.unwrap();
    let (v1, v2, bad) = (
        app_image_version(&docker, "1.0", true).await,
        app_image_version(&docker, "2.0", true).await,
        app_image_version(&docker, "3.0", false).await,
    );
    let proxy_dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let d = proxy_dir.path().display().to_string();
    let (proxy, proxy_yaml) = match kind {
        Kind::Nginx => {
            let (m, _) = managed::start(&ManagedSpec::nginx(proxy_dir.path(), &listen))
                .await
                .unwrap();
            let base = format!("[nginx, -p, {d}, -c, {d}/nginx.conf");
            let yaml = format!(
                "  nginx:\n    conf_dir: {d}/conf.d\n    test: {base}, -t, -q]\n    reload: {base}, -s, reload]\n"
            );
            (m, yaml)
        }
        Kind::Haproxy => {
            let (m, _) = managed::start(&ManagedSpec::haproxy(proxy_dir.path(), &listen))
                .await
                .unwrap();
            let yaml = format!(
                "  haproxy:\n    config: {d}/teal.cfg\n    socket: {d}/admin.sock\n    reload: [kill, -USR2, '{}']\n",
                m.pid()
            );
            (m, yaml)
        }
    };
    let repo = Repo::new();
    // git keeps no empty directory: this keeps services/ when the last
    // service is removed.
    repo.commit("init", &[("services/.gitkeep", Some(""))]);
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("daemon.yaml");
    let kind_name = if kind == Kind::Nginx { "nginx" } else { "haproxy" };
    std::fs::write(
        &config,
        format!(
            "repo:\n  url: {}\n  branch: main\ndocker:\n  network: {network}\nproxy:\n  kind: {kind_name}\n  listen: {listen}\n{proxy_yaml}state_dir: {}/state\n",
            repo.path().display(),
            state.path().display()
        ),
    )
    .unwrap();
    let host = format!("{svc}.test");
    let guard = DockerGuard {
        services: vec![svc.clone()],
        network,
    };
    Env {
        kind,
        repo,
        svc,
        host,
        listen,
        config,
        state,
        v1,
        v2,
        bad,
        proxy_dir,
        _proxy: proxy,
        _guard: guard,
    }
}

impl Env {
    /// A service file; checks have a generous deadline (tests run many
    /// containers at once on 2 cores) except when a build is meant to fail.
    fn service(&self, active: &str, blue: Option<&str>, green: Option<&str>, replicas: u32) -> String {
        let deadline = if [blue, green].contains(&Some(self.bad.as_str())) {
            "3s"
        } else {
            "60s"
        };
        let color = |c: &str, i: Option<&str>| i.map(|i| format!("{c}:\n  image: {i}\n")).unwrap_or_default();
        format!(
            "active: {active}\n{}{}port: 8080\nreplicas: {replicas}\nroute: {{host: {}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  timeout: 1s\n  successes: 2\n  deadline: {deadline}\nswitch: {{drain: 100ms}}\n",
            color("blue", blue),
            color("green", green),
            self.host
        )
    }

    fn commit(&self, msg: &str, text: Option<&str>) {
        self.repo.commit(msg, &[(&format!("services/{}.yaml", self.svc), text)]);
    }

    fn apply(&self) -> Run {
        teal(self.repo.path(), &["apply", "--config", self.config.to_str().unwrap()])
    }

    fn apply_ok(&self) {
        let run = self.apply();
        assert_eq!(run.code, 0, "{:?}: teal apply failed:\n{}", self.kind, run.stderr);
    }

    async fn get(&self) -> (u16, String) {
        get_via(&self.listen, &self.host, "/").await
    }

    /// (name, id, running) of the service's containers.
    fn containers(&self) -> Vec<(String, String, bool)> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter", &format!("label=teal.service={}", self.svc)])
            .args(["--format", "{{.Names}} {{.ID}} {{.State}}"])
            .output()
            .unwrap();
        let mut v: Vec<(String, String, bool)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[1].to_string(), f[2] == "running")
            })
            .collect();
        v.sort();
        v
    }

    fn names(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .map(|c| c.0.replace(&self.svc, "web"))
            .collect()
    }
}

async fn first_deploy_then_bump_then_revert(kind: Kind) {
    let e = env(kind).await;
    e.commit("web 1.0", Some(&e.service("blue", Some(&e.v1), None, 2)));
    e.apply_ok();
    assert_eq!(
        e.get().await,
        (200, "1.0 blue\n".into()),
        "{kind:?}: first deploy serves the active color"
    );
    assert_eq!(e.names(), ["teal-web-blue-0", "teal-web-blue-1"]);

    e.commit("bump", Some(&e.service("green", Some(&e.v1), Some(&e.v2), 2)));
    e.apply_ok();
    assert_eq!(e.get().await, (200, "2.0 green\n".into()), "{kind:?}: bump switched");
    let warm = e.containers();
    assert_eq!(warm.len(), 4);
    assert!(warm.iter().all(|c| c.2), "{kind:?}: the old color stays warm: {warm:?}");

    e.repo.git(&["revert", "--no-edit", "HEAD"]);
    let run = e.apply();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("start blue"),
        "{kind:?}: no container created for the revert:\n{}",
        run.stderr
    );
    assert_eq!(
        e.get().await,
        (200, "1.0 blue\n".into()),
        "{kind:?}: revert switched back"
    );
    let blue_ids: Vec<String> = warm
        .iter()
        .filter(|c| c.0.contains("-blue-"))
        .map(|c| c.1.clone())
        .collect();
    let after: Vec<String> = e.containers().iter().map(|c| c.1.clone()).collect();
    assert_eq!(
        after, blue_ids,
        "{kind:?}: same blue containers, green removed with its image"
    );

    // Nothing left to do: a second apply changes nothing.
    let plan = teal(e.repo.path(), &["plan", "--config", e.config.to_str().unwrap()]);
    assert_eq!(
        (plan.code, plan.stdout.as_str()),
        (0, "No changes.\n"),
        "{}",
        plan.stderr
    );

    // A setting of the live color changed without a flip: refused, naming
    // the field (read back from the running containers' labels).
    let env_changed = e.service("blue", Some(&e.v1), None, 2) + "env: {GREETING: hi}\n";
    e.commit("env on the live color", Some(&env_changed));
    let plan = teal(e.repo.path(), &["plan", "--config", e.config.to_str().unwrap()]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains("the setting env.GREETING of blue, the color serving traffic, would change"),
        "{kind:?}: {}",
        plan.stdout
    );
}

async fn an_unhealthy_color_never_gets_traffic(kind: Kind) {
    let e = env(kind).await;
    e.commit("web 1.0", Some(&e.service("blue", Some(&e.v1), None, 1)));
    e.apply_ok();
    e.commit("bad build", Some(&e.service("green", Some(&e.v1), Some(&e.bad), 1)));
    let run = e.apply();
    assert_eq!(run.code, 1, "{kind:?}: {}", run.stderr);
    assert!(run.stderr.contains("check green ... FAILED"), "{}", run.stderr);
    assert!(
        run.stderr.contains("/healthz -> 503 (expected 200)"),
        "says why: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("deploy of") && run.stderr.contains("traffic stays where it was"),
        "{}",
        run.stderr
    );
    for _ in 0..5 {
        assert_eq!(
            e.get().await,
            (200, "1.0 blue\n".into()),
            "{kind:?}: traffic stayed on blue"
        );
    }
    let events = teal::events::read(&e.state.path().join("state/events.jsonl")).unwrap();
    let failed: Vec<_> = events.iter().filter(|ev| ev.result == "failed").collect();
    assert_eq!(
        failed.len(),
        2,
        "the failed step, then the deploy's outcome: {events:?}"
    );
    assert_eq!(
        (failed[0].step.as_str(), failed[1].step.as_str()),
        ("wait_healthy", "deploy")
    );
    assert!(failed.iter().all(|f| f.service == e.svc && f.commit.len() == 40));
}

async fn replicas_drift_and_delete(kind: Kind) {
    let e = env(kind).await;
    e.commit("web", Some(&e.service("blue", Some(&e.v1), None, 2)));
    e.apply_ok();
    e.commit("scale up", Some(&e.service("blue", Some(&e.v1), None, 3)));
    e.apply_ok();
    assert_eq!(e.names(), ["teal-web-blue-0", "teal-web-blue-1", "teal-web-blue-2"]);
    e.commit("scale down", Some(&e.service("blue", Some(&e.v1), None, 1)));
    e.apply_ok();
    assert_eq!(e.names(), ["teal-web-blue-0"]);
    assert_eq!(e.get().await.1, "1.0 blue\n");

    // Drift: a container stopped by hand is started again.
    let name = e.containers()[0].0.clone();
    assert!(Command::new("docker")
        .args(["stop", "-t", "1", &name])
        .status()
        .unwrap()
        .success());
    e.apply_ok();
    assert!(e.containers()[0].2, "{kind:?}: restarted");
    assert_eq!(e.get().await.1, "1.0 blue\n");

    e.commit("remove web", None);
    e.apply_ok();
    assert!(e.containers().is_empty(), "{kind:?}: containers removed");
    assert_eq!(e.get().await.0, 404, "{kind:?}: route removed");
}

async fn a_missing_image_changes_nothing(kind: Kind) {
    let e = env(kind).await;
    e.commit("web", Some(&e.service("blue", Some(&e.v1), None, 1)));
    e.apply_ok();
    let before = e.containers();
    e.commit(
        "typo in tag",
        Some(&e.service("green", Some(&e.v1), Some("registry.invalid/shop/web:9.9"), 1)),
    );
    let run = e.apply();
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "image registry.invalid/shop/web:9.9 could not be pulled: the registry registry.invalid cannot be reached"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(e.containers(), before, "{kind:?}: nothing created or stopped");
    assert_eq!(e.get().await.1, "1.0 blue\n");
}

#[tokio::test]
async fn nginx_first_deploy_bump_and_revert() {
    first_deploy_then_bump_then_revert(Kind::Nginx).await;
}
#[tokio::test]
async fn haproxy_first_deploy_bump_and_revert() {
    first_deploy_then_bump_then_revert(Kind::Haproxy).await;
}
#[tokio::test]
async fn nginx_unhealthy_color_never_gets_traffic() {
    an_unhealthy_color_never_gets_traffic(Kind::Nginx).await;
}
#[tokio::test]
async fn haproxy_unhealthy_color_never_gets_traffic() {
    an_unhealthy_color_never_gets_traffic(Kind::Haproxy).await;
}
#[tokio::test]
async fn nginx_replicas_drift_and_delete() {
    replicas_drift_and_delete(Kind::Nginx).await;
}
#[tokio::test]
async fn haproxy_replicas_drift_and_delete() {
    replicas_drift_and_delete(Kind::Haproxy).await;
}
#[tokio::test]
async fn nginx_missing_image_changes_nothing() {
    a_missing_image_changes_nothing(Kind::Nginx).await;
}
#[tokio::test]
async fn haproxy_missing_image_changes_nothing() {
    a_missing_image_changes_nothing(Kind::Haproxy).await;
}

#[tokio::test]
async fn nginx_hand_edited_file_is_restored() {
    let e = env(Kind::Nginx).await;
    e.commit("web", Some(&e.service("blue", Some(&e.v1), None, 1)));
    e.apply_ok();
    let file = e.proxy_dir.path().join(format!("conf.d/teal-{}.conf", e.svc));
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, good.replace("keepalive 32", "keepalive 1")).unwrap();
    let plan = teal(e.repo.path(), &["plan", "--config", e.config.to_str().unwrap()]);
    assert_eq!(plan.code, 2, "drift is a change: {}", plan.stdout);
    assert!(plan.stdout.contains("update proxy entry"), "{}", plan.stdout);
    e.apply_ok();
    let restored = std::fs::read_to_string(&file).unwrap();
    assert!(
        restored.contains("keepalive 32") && !restored.contains("keepalive 1;"),
        "{restored}"
    );
    assert_eq!(e.get().await.1, "1.0 blue\n");
}

#[tokio::test]
async fn one_failing_service_does_not_block_another() {
    let e = env(Kind::Haproxy).await;
    let other = unique("api");
    let _guard = DockerGuard {
        services: vec![other.clone()],
        network: format!("{}-unused", other),
    };
    let api = e
        .service("blue", Some(&e.v2), None, 1)
        .replace(&e.host, &format!("{other}.test"));
    e.repo.commit(
        "web broken, api fine",
        &[
            (
                &format!("services/{}.yaml", e.svc),
                Some(&e.service("blue", Some(&e.bad), None, 1)),
            ),
            (&format!("services/{other}.yaml"), Some(&api)),
        ],
    );
    let run = e.apply();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{}: deploy of", e.svc)), "{}", run.stderr);
    assert_eq!(
        get_via(&e.listen, &format!("{other}.test"), "/").await,
        (200, "2.0 blue\n".into()),
        "api deployed anyway"
    );
    assert_ne!(get_via(&e.listen, &e.host, "/").await.0, 200, "web never got traffic");
}
