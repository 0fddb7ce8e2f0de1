//! Attacks on and through the drivers (issue 22), each against the real
//! thing: service names that take over teal's own proxy files and backends,
//! proxy workers running as root, env values in container labels.

mod common;

use common::{free_port, get_via, proxy_or_fail, LocalApp};
use teal::config::NginxSwitch;
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::proxy::{Backend, PreviewRoute, ProxyDriver, RouteSpec};
use teal::spec::Color::{Blue, Green};
use teal::spec::PerColor;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Nginx,
    NginxReload,
    Haproxy,
}

struct Proxy {
    managed: Managed,
    driver: ProxyDriver,
    listen: String,
    _dir: tempfile::TempDir,
}

fn spec(kind: Kind, dir: &std::path::Path, listen: &str) -> ManagedSpec {
    match kind {
        Kind::Nginx => ManagedSpec::nginx(dir, listen),
        Kind::NginxReload => ManagedSpec {
            switch: NginxSwitch::Reload,
            ..ManagedSpec::nginx(dir, listen)
        },
        Kind::Haproxy => ManagedSpec::haproxy(dir, listen),
    }
}

async fn start(kind: Kind) -> Proxy {
    proxy_or_fail(match kind {
        Kind::Haproxy => "haproxy",
        _ => "nginx",
    });
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let (managed, driver) = managed::start(&spec(kind, dir.path(), &listen)).await.unwrap();
    Proxy {
        managed,
        driver,
        listen,
        _dir: dir,
    }
}

/// All traffic of `service` on `host` to blue at `addr`.
fn route(service: &str, host: &str, addr: std::net::SocketAddr) -> RouteSpec {
    let backends = PerColor::<Backend> {
        blue: Backend {
            weight: 100,
            addrs: vec![addr],
        },
        green: Backend::default(),
    };
    RouteSpec {
        service: service.into(),
        host: host.into(),
        path: "/".into(),
        backends,
        preview: None,
        commit: "c0ffee".into(),
        route_hash: format!("hash-{service}"),
    }
}

/// Services named like teal's own nginx files (`servers`, `balancer`),
/// HAProxy's default backend (`no-route`) and another service's preview
/// upstream or backend (`x-preview` next to `x` with a preview) each serve
/// their own app on their own host, and nothing else breaks.
async fn names_like_teals_own(kind: Kind) {
    let p = start(kind).await;
    let names = ["servers", "balancer", "no-route", "x", "x-preview"];
    let apps: Vec<LocalApp> = names.iter().map(|n| LocalApp::start(n, "blue")).collect();
    let preview_app = LocalApp::start("x-idle", "green");
    for (n, app) in names.iter().zip(&apps) {
        let mut r = route(n, &format!("{n}.test"), app.addr);
        if *n == "x" {
            r.backends.green.addrs = vec![preview_app.addr];
            r.preview = Some(PreviewRoute {
                host: "preview.x.test".into(),
                allow: vec![],
                color: Green,
            });
        }
        p.driver
            .apply(&r)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: routing service {n:?}: {e}"));
    }
    for n in names {
        assert_eq!(
            get_via(&p.listen, &format!("{n}.test"), "/").await,
            (200, format!("{n} blue\n")),
            "{kind:?}: service {n:?}"
        );
    }
    assert_eq!(
        get_via(&p.listen, "preview.x.test", "/").await,
        (200, "x-idle green\n".into()),
        "{kind:?}: the preview of x"
    );
    assert_eq!(
        get_via(&p.listen, "nobody.test", "/").await.0,
        404,
        "{kind:?}: a host with no route"
    );
    let obs = p.driver.observe().await.unwrap();
    for n in names {
        assert_eq!(obs[n].live(), Some(Blue), "{kind:?}: observed {n:?}");
    }
    p.driver.remove("servers").await.unwrap();
    assert_eq!(get_via(&p.listen, "x-preview.test", "/").await.1, "x-preview blue\n");
    assert_eq!(get_via(&p.listen, "servers.test", "/").await.0, 404, "{kind:?}");
    drop(p.managed);
}

#[tokio::test]
async fn nginx_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::Haproxy).await;
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A file with a `... sha256=<hex>` header line, its body edited by `edit`
/// and the hash made to match again (as the teal that wrote it would have).
fn rewrite_signed(path: &std::path::Path, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let body = edit(body);
    let header = match header.strip_prefix("# teal {") {
        // A service file: the hash is a field of the JSON header.
        Some(_) => {
            let mut meta: serde_json::Value = serde_json::from_str(&header["# teal ".len()..]).unwrap();
            meta["sha256"] = sha256(&body).into();
            format!("# teal {meta}")
        }
        None => format!("{}sha256={}", header.rsplit_once("sha256=").unwrap().0, sha256(&body)),
    };
    std::fs::write(path, format!("{header}\n{body}")).unwrap();
}

/// The files the previous teal wrote: shared files named like services'
/// files, upstreams and backends with `-` turned into `_`.
fn downgrade(kind: Kind, dir: &std::path::Path) {
    let old_names = |t: &str| t.replace("teal_my-app", "teal_my_app");
    match kind {
        Kind::Haproxy => rewrite_signed(&dir.join("teal.cfg"), old_names),
        _ => {
            let conf = dir.join("conf.d");
            rewrite_signed(&conf.join("teal-my-app.conf"), old_names);
            for shared in ["servers", "balancer"] {
                let new = conf.join(format!("teal_{shared}.conf"));
                if new.exists() {
                    let old = conf.join(format!("teal-{shared}.conf"));
                    std::fs::rename(&new, &old).unwrap();
                    rewrite_signed(&old, old_names);
                }
            }
            let main = dir.join("nginx.conf");
            let text = std::fs::read_to_string(&main).unwrap();
            std::fs::write(&main, text.replace("conf.d/teal*.conf", "conf.d/teal-*.conf")).unwrap();
        }
    }
}

/// A running proxy on the previous teal's files, adopted by this teal:
/// it serves as before, and this teal's first change moves every file to
/// the new names in one checked reload.
async fn upgrade_keeps_serving(kind: Kind) {
    let p = start(kind).await;
    let (a, b) = (LocalApp::start("my-app", "blue"), LocalApp::start("api", "blue"));
    p.driver.apply(&route("my-app", "my-app.test", a.addr)).await.unwrap();
    downgrade(kind, &p.managed.spec().dir);
    let reload = match kind {
        Kind::Haproxy => vec!["pkill".to_string(), "-USR2".into(), "-F".into(), "haproxy.pid".into()],
        _ => vec![
            "nginx".to_string(),
            "-p".into(),
            ".".into(),
            "-c".into(),
            "nginx.conf".into(),
            "-s".into(),
            "reload".into(),
        ],
    };
    let out = std::process::Command::new(&reload[0])
        .args(&reload[1..])
        .current_dir(&p.managed.spec().dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{kind:?}: reload on the old files: {out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        get_via(&p.listen, "my-app.test", "/").await.1,
        "my-app blue\n",
        "{kind:?}: old files"
    );

    let (_adopted, driver, origin) = managed::adopt_or_start(p.managed.spec()).await.unwrap();
    assert_eq!(origin, managed::Origin::Adopted);
    // The same route again (what a pass does when the proxy reports no
    // peers under the new names), then a new service.
    driver.apply(&route("my-app", "my-app.test", a.addr)).await.unwrap();
    driver.apply(&route("api", "api.test", b.addr)).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "my-app.test", "/").await.1,
        "my-app blue\n",
        "{kind:?}: after the upgrade"
    );
    assert_eq!(get_via(&p.listen, "api.test", "/").await.1, "api blue\n", "{kind:?}");
    assert_eq!(driver.observe().await.unwrap()["my-app"].live(), Some(Blue), "{kind:?}");
    if !matches!(kind, Kind::Haproxy) {
        let conf = p.managed.spec().dir.join("conf.d");
        assert!(
            !conf.join("teal-servers.conf").exists(),
            "{kind:?}: the old servers file is gone"
        );
        assert!(conf.join("teal_servers.conf").exists(), "{kind:?}");
    }
}

#[tokio::test]
async fn nginx_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::Haproxy).await;
}

/// The real and effective uid of a process, from `/proc/<pid>/status`.
fn uids(pid: u32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let f: Vec<u32> = line.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    (f[0], f[1])
}

/// The uid of a user of this machine, from `getent passwd`.
fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    line.split(':').nth(2).and_then(|u| u.parse().ok()).unwrap_or_else(|| {
        panic!(
            "these tests need the user {user}: `apt-get install -y nginx-light haproxy` creates www-data and haproxy"
        )
    })
}

/// POSTs a body of `len` bytes through the proxy: the status.
async fn post_via(proxy: &str, host: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let head = format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; len]).await.unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The proxy's processes other than its master: its workers.
fn workers(p: &Proxy) -> Vec<u32> {
    let master = p.managed.pid();
    common::host::processes_of(&p.managed.spec().dir)
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| *pid != master)
        .collect()
}

/// Worker processes run as the distribution's user for the proxy, not
/// root, and everything they serve still works: a switch (balancer socket
/// or stats socket), a reload, a large request body.
async fn workers_are_not_root(kind: Kind) {
    let p = start(kind).await;
    let user = match kind {
        Kind::Haproxy => "haproxy",
        _ => "www-data",
    };
    let (blue, green) = (LocalApp::start("1", "blue"), LocalApp::start("2", "green"));
    let mut r = route("web", "web.test", blue.addr);
    r.backends.green.addrs = vec![green.addr];
    p.driver.apply(&r).await.unwrap();
    assert_eq!(get_via(&p.listen, "web.test", "/").await.1, "1 blue\n", "{kind:?}");
    let check = |when: &str| {
        let ws = workers(&p);
        assert!(!ws.is_empty(), "{kind:?} {when}: no worker of {}", p.managed.pid());
        for w in ws {
            assert_eq!(
                uids(w),
                (uid_of(user), uid_of(user)),
                "{kind:?} {when}: worker {w} runs as root or another user"
            );
        }
    };
    check("at start");
    (r.backends.blue.weight, r.backends.green.weight) = (0, 100);
    p.driver.apply(&r).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "web.test", "/").await.1,
        "2 green\n",
        "{kind:?}: switched"
    );
    p.driver.apply(&route("api", "api.test", blue.addr)).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "api.test", "/").await.1,
        "1 blue\n",
        "{kind:?}: reloaded"
    );
    check("after a reload");
    let st = post_via(&p.listen, "web.test", 900 * 1024).await;
    eprintln!(
        "LOG {}",
        std::fs::read_to_string(p.managed.spec().dir.join("error.log")).unwrap_or_default()
    );
    assert_eq!(st, 200, "{kind:?}: a 900 KiB body");
    assert_eq!(p.driver.observe().await.unwrap()["web"].live(), Some(Green), "{kind:?}");
}

#[tokio::test]
async fn nginx_workers_are_not_root() {
    workers_are_not_root(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_workers_are_not_root() {
    workers_are_not_root(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_workers_are_not_root() {
    workers_are_not_root(Kind::Haproxy).await;
}

/// Runs `cmd` in `dir`; panics with its output when it fails.
fn run_in(dir: &std::path::Path, cmd: &[&str]) {
    let out = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

/// Waits up to 5 s until every worker runs as `uid`.
async fn until_workers_run_as(p: &Proxy, uid: u32, what: &str) {
    for _ in 0..100 {
        let ws = workers(p);
        if !ws.is_empty() && ws.iter().all(|w| uids(*w).1 == uid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: workers {:?} do not all run as uid {uid}", workers(p));
}

/// A proxy an older teal started with root workers, adopted by this teal:
/// one checked reload later its workers run as their own user, and it
/// serves throughout.
async fn adopted_root_workers_move(kind: Kind) {
    let p = start(kind).await;
    let app = LocalApp::start("1", "blue");
    p.driver.apply(&route("web", "web.test", app.addr)).await.unwrap();
    let dir = p.managed.spec().dir.clone();
    match kind {
        Kind::Haproxy => {
            rewrite_signed(&dir.join("teal.cfg"), |b| {
                b.lines()
                    .filter(|l| !l.starts_with("    user ") && !l.starts_with("    group "))
                    .map(|l| format!("{l}\n"))
                    .collect()
            });
            run_in(&dir, &["pkill", "-USR2", "-F", "haproxy.pid"]);
        }
        _ => {
            let text = std::fs::read_to_string(dir.join("nginx.conf")).unwrap();
            std::fs::write(
                dir.join("nginx.conf"),
                text.replace("user www-data www-data;", "user root;"),
            )
            .unwrap();
            run_in(&dir, &["nginx", "-p", ".", "-c", "nginx.conf", "-s", "reload"]);
        }
    }
    until_workers_run_as(&p, 0, &format!("{kind:?} as an older teal left it")).await;
    assert_eq!(get_via(&p.listen, "web.test", "/").await.1, "1 blue\n", "{kind:?}");

    let (_adopted, driver, origin) = managed::adopt_or_start(p.managed.spec()).await.unwrap();
    assert_eq!(origin, managed::Origin::Adopted);
    let user = if matches!(kind, Kind::Haproxy) {
        "haproxy"
    } else {
        "www-data"
    };
    until_workers_run_as(&p, uid_of(user), &format!("{kind:?} adopted")).await;
    assert_eq!(
        get_via(&p.listen, "web.test", "/").await.1,
        "1 blue\n",
        "{kind:?}: adopted"
    );
    assert_eq!(driver.observe().await.unwrap()["web"].live(), Some(Blue), "{kind:?}");
}

#[tokio::test]
async fn nginx_adopted_with_root_workers_moves_them_to_their_user() {
    adopted_root_workers_move(Kind::Nginx).await;
}

#[tokio::test]
async fn haproxy_adopted_with_root_workers_moves_them_to_their_user() {
    adopted_root_workers_move(Kind::Haproxy).await;
}

/// Labels and env of a container, through the engine's API.
async fn labels_and_env(name: &str) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let c = docker
        .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .unwrap();
    let config = c.config.unwrap();
    (config.labels.unwrap_or_default(), config.env.unwrap_or_default())
}

async fn container_id(name: &str) -> String {
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let c = docker
        .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .unwrap();
    c.id.unwrap()
}

/// Env values are in no label of a container (what `docker inspect` of
/// labels, `docker events` and label exporters show): names and keyed
/// digests only, and a changed value still changes the spec hash. A
/// container an older teal labelled with the values is read as the same
/// spec and left running after the upgrade.
#[tokio::test]
async fn container_labels_hold_no_env_value() {
    use std::collections::BTreeMap;
    use teal::drivers::docker::DockerDriver;
    use teal::spec::container::{labels, ContainerSpec};
    use teal::spec::RestartPolicy;

    common::docker_or_fail();
    let network = common::unique("teal-test-net");
    let service = common::unique("envsvc");
    let state = tempfile::tempdir().unwrap();
    let key = teal::reconcile::env_key::load_or_create(state.path()).unwrap();
    let docker = DockerDriver::connect(None, &network).await.unwrap().with_env_key(key);
    docker.ensure_network().await.unwrap();
    let _guard = common::DockerGuard {
        services: vec![service.clone()],
        network,
    };
    let image = common::app_image(&docker).await;
    let secret = format!("pw-{}", common::unique("s3cret"));
    let spec = |password: &str, key| ContainerSpec {
        service: service.clone(),
        color: Blue,
        image: image.clone(),
        port: 8080,
        env: BTreeMap::from([("DB_PASSWORD".into(), password.to_string())]),
        command: None,
        volumes: vec![],
        labels: BTreeMap::new(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        env_key: key,
    };
    let now = spec(&secret, Some(key));
    let cs = docker.ensure_color(&now, 1, "abc123").await.unwrap();
    let (l, env) = labels_and_env(&cs[0].name).await;
    assert!(
        env.contains(&format!("DB_PASSWORD={secret}")),
        "the container gets the value: {env:?}"
    );
    for (k, v) in &l {
        assert!(!v.contains(&secret), "label {k} shows the env value: {v}");
    }
    assert!(l[labels::SPEC_JSON].contains("\"DB_PASSWORD\":\"hmac-sha256:"), "{l:?}");
    assert_eq!(l[labels::SPEC], now.hash());
    assert_ne!(
        spec("other", Some(key)).hash(),
        now.hash(),
        "a changed value restarts the color"
    );

    // What an older teal made: the value in plain text in the label.
    let old = spec(&secret, None);
    docker.remove_color(&service, Blue).await.unwrap();
    let cs = docker.ensure_color(&old, 1, "abc123").await.unwrap();
    assert!(labels_and_env(&cs[0].name).await.0[labels::SPEC_JSON].contains(&secret));
    let id = container_id(&cs[0].name).await;
    let observed = docker.observe().await.unwrap();
    assert_eq!(
        observed[&service].blue[0].spec_hash,
        now.hash(),
        "read as this teal hashes it"
    );
    let after = docker.ensure_color(&now, 1, "abc123").await.unwrap();
    assert_eq!(container_id(&after[0].name).await, id, "left as it runs");
    let changed = spec("n3w", Some(key));
    let after = docker.ensure_color(&changed, 1, "abc123").await.unwrap();
    assert_eq!(
        labels_and_env(&after[0].name).await.0[labels::SPEC],
        changed.hash(),
        "replaced"
    );
}

/// A firewall rule inserted for the test, deleted on drop.
struct Rule(Vec<String>);

impl Rule {
    fn insert(args: &[&str]) -> Rule {
        let spec: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = std::process::Command::new("iptables")
            .args(["-I", "DOCKER-USER"])
            .args(&spec)
            .output()
            .expect("iptables is installed (apt-get install -y iptables)");
        assert!(out.status.success(), "iptables -I DOCKER-USER {spec:?}: {out:?}");
        Rule(spec)
    }
}

impl Drop for Rule {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .args(["-D", "DOCKER-USER"])
            .args(&self.0)
            .output();
    }
}

/// Another machine on the node's network: a network namespace behind a
/// veth pair, whose packets enter the node as a remote client's do
/// (through PREROUTING and FORWARD, where Docker's DNAT and DOCKER-USER
/// are). Removed on drop.
struct Outsider {
    ns: String,
    host_if: String,
}

impl Outsider {
    fn new() -> Outsider {
        let n = std::process::id() % 100_000;
        let (ns, host_if, inner) = (format!("teal-out-{n}"), format!("tvh{n}"), format!("tvo{n}"));
        let net = format!("10.{}.{}", 200 + n % 50, n % 250);
        let sh = |cmd: &str| {
            let out = std::process::Command::new("sh").args(["-c", cmd]).output().unwrap();
            assert!(out.status.success(), "{cmd}: {out:?}");
        };
        let o = Outsider {
            ns: ns.clone(),
            host_if: host_if.clone(),
        };
        sh(&format!("ip netns add {ns}"));
        sh(&format!("ip link add {host_if} type veth peer name {inner}"));
        sh(&format!("ip link set {inner} netns {ns}"));
        sh(&format!(
            "ip addr add {net}.1/30 dev {host_if} && ip link set {host_if} up"
        ));
        sh(&format!(
            "ip netns exec {ns} sh -c 'ip addr add {net}.2/30 dev {inner} && ip link set {inner} up && ip link set lo up && ip route add default via {net}.1'"
        ));
        o
    }

    /// GET / at `addr`; `None` when no answer comes within 3 s.
    fn get(&self, addr: &str) -> Option<String> {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let script =
            format!("exec 3<>/dev/tcp/{ip}/{port} && printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3");
        let out = std::process::Command::new("timeout")
            .args(["3", "ip", "netns", "exec", &self.ns, "bash", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// An IPv4 address of this machine other than loopback: what another
/// machine on its network would connect to.
fn outside_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.split('/').next().unwrap().to_string())
        .find(|a| !a.starts_with("127."))
        .expect("an IPv4 address besides loopback")
}

/// Swarm publishes each task's port on every interface of its node (the
/// API cannot bind one address): the idle color answers anyone past the
/// proxy and its preview allow-list. The daemon says so, and the firewall
/// rule README "Swarm mode" gives closes it for everyone but the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_task_ports_are_closed_by_the_documented_firewall_rule() {
    use common::host::TestHost;
    use common::swarm::{swarm_config, SwarmGuard};

    proxy_or_fail("haproxy");
    common::docker_or_fail();
    let h = TestHost::new("swfw").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = common::app_image_version(&h.docker, "1.0", true).await;
    let v2 = common::app_image_version(&h.docker, "2.0", true).await;
    swarm_config(&h, None);
    let preview = format!("preview: {{host: preview.{}, allow: [10.0.0.0/8]}}\n", h.host);
    h.push("web", &h.service("blue", &v1, Some(&v2), &preview));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    h.until_logged("published on every interface", 10).await;
    let mut idle = None;
    for _ in 0..100 {
        let s = h.status().await;
        idle = s["services"][&h.svc]["tasks"]["green"][0]["endpoint"]
            .as_str()
            .map(String::from);
        if idle.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let port = idle
        .expect("the idle color's task")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        get_via(&h.listen, &format!("preview.{}", h.host), "/").await.0,
        403,
        "127.0.0.1 is not in the preview's allow-list"
    );
    let direct = format!("{}:{port}", outside_address());

    let outsider = Outsider::new();
    assert_eq!(
        outsider.get(&direct).as_deref(),
        Some("2.0 green\n"),
        "without a firewall, anyone reaches the idle color at {direct}"
    );

    // The rule of README "Swarm mode", with the proxy's address.
    let _rule = Rule::insert(&[
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctstate",
        "DNAT",
        "--ctorigdstport",
        "32768:60999",
        "!",
        "-s",
        "127.0.0.1",
        "-j",
        "DROP",
    ]);
    assert_eq!(outsider.get(&direct), None, "dropped for others than the proxy");
    common::swarm::all_serve(&h, "1.0 blue\n", 10).await;
    assert_eq!(
        common::try_get_via(&direct, "x", "/")
            .await
            .map(|r| r.1)
            .ok()
            .as_deref(),
        Some("2.0 green\n"),
        "the proxy's node still reaches every task"
    );
    drop(_rule);
    assert_eq!(
        outsider.get(&direct).as_deref(),
        Some("2.0 green\n"),
        "the rule is gone"
    );

    // The same rule for nftables, as README "Swarm mode" gives it.
    let table = format!("teal_test_{}", std::process::id());
    let nft = |script: &str| {
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft is installed (apt-get install -y nftables)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "nft -f: {script}");
    };
    struct Table(String);
    impl Drop for Table {
        fn drop(&mut self) {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "inet", &self.0])
                .output();
        }
    }
    nft(&format!(
        "table inet {table} {{\n  chain forward {{\n    type filter hook forward priority -1; policy accept;\n    ct status dnat meta l4proto tcp ct original proto-dst 32768-60999 ip saddr != 127.0.0.1 drop\n    ct status dnat meta l4proto tcp ct original proto-dst 32768-60999 meta nfproto ipv6 drop\n  }}\n}}\n"
    ));
    let _table = Table(table);
    assert_eq!(
        outsider.get(&direct),
        None,
        "nftables: dropped for others than the proxy"
    );
    common::swarm::all_serve(&h, "1.0 blue\n", 10).await;
}
