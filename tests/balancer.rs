//! Weights, counters and switches without reloads, against the real
//! proxies: nginx with teal's Lua balancer, and HAProxy's runtime API.
//! The backends are the demo app run as local processes.

mod common;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::wrk::Wrk;
use common::{free_port, get_via, proxy_or_fail, LocalApp};
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::nginx::balancer::Balancer;
use teal::drivers::nginx::{Nginx, NginxConfig};
use teal::drivers::proxy::{Backend, Counts, ProxyDriver, RouteSpec};
use teal::spec::Color::{self, Blue, Green};
use teal::spec::PerColor;

struct Proxy {
    managed: Managed,
    driver: ProxyDriver,
    listen: String,
    _dir: tempfile::TempDir,
}

async fn start(kind: &str) -> Proxy {
    proxy_or_fail(kind);
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let spec = match kind {
        "nginx" => ManagedSpec::nginx(dir.path(), &listen),
        _ => ManagedSpec::haproxy(dir.path(), &listen),
    };
    let (managed, driver) = managed::start(&spec).await.unwrap();
    Proxy {
        managed,
        driver,
        listen,
        _dir: dir,
    }
}

/// Two replicas per color: blue 1.0, green 2.0.
fn apps() -> [Vec<LocalApp>; 2] {
    [
        (0..2).map(|_| LocalApp::start("1.0", "blue")).collect(),
        (0..2).map(|_| LocalApp::start("2.0", "green")).collect(),
    ]
}

fn route(apps: &[Vec<LocalApp>; 2], blue_weight: u32) -> RouteSpec {
    let backend = |i: usize, weight: u32| Backend {
        weight,
        addrs: apps[i].iter().map(|a| a.addr).collect(),
    };
    RouteSpec {
        service: "web".into(),
        host: "shop.test".into(),
        aliases: vec![],
        tls: None,
        path: "/".into(),
        backends: PerColor {
            blue: backend(0, blue_weight),
            green: backend(1, 100 - blue_weight),
        },
        preview: None,
        traffic: Default::default(),
        next: None,
        commit: "c0ffee".into(),
        route_hash: "hash-web".into(),
    }
}

/// The pids of a process's children (nginx workers: new ones after a reload).
fn children(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            teal::drivers::managed::process::parent(*p) == Some(pid) && teal::drivers::managed::process::alive(*p)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn nginx_balancer_switches_under_keepalive_load_without_a_reload_or_a_failed_request() {
    let p = start("nginx").await;
    let apps = apps();
    p.driver.apply(&route(&apps, 100)).await.unwrap();
    let workers = children(p.managed.pid());
    assert!(!workers.is_empty());
    let load = Wrk::start(&p.listen, "shop.test", 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..20 {
        let blue = if i % 2 == 0 { 0 } else { 100 };
        p.driver.apply(&route(&apps, blue)).await.unwrap();
        assert_eq!(
            get_via(&p.listen, "shop.test", "/").await.1,
            if blue == 100 { "1.0 blue\n" } else { "2.0 green\n" },
            "switch {i} is served at once"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let r = load.finish();
    assert_eq!(r.failed(), 0, "{r:?}");
    assert!(r.requests > 1000, "{r:?}");
    assert_eq!(
        children(p.managed.pid()),
        workers,
        "the same workers: nginx never reloaded"
    );
}

/// A 10/90 split is measured within a few points, and the proxy's own
/// counters per color and class match what the client saw.
async fn weights_and_counters(kind: &str) {
    let p = start(kind).await;
    let apps = apps();
    p.driver.apply(&route(&apps, 10)).await.unwrap();
    let before = p.driver.counters().await.unwrap();
    let mut seen = PerColor::<Counts>::default();
    let n = 400;
    for i in 0..n + 40 {
        // Every 20th request asks for a 500, every other 20th for a 404.
        let path = match i % 20 {
            0 => "/status/500",
            10 => "/status/404",
            _ => "/",
        };
        let (status, body) = get_via(&p.listen, "shop.test", path).await;
        let color: Color = body
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| panic!("{kind}: {body:?}: {e}"));
        seen.get_mut(color).add(status / 100, 1);
    }
    let share = seen.blue.total() as f64 / (seen.blue.total() + seen.green.total()) as f64;
    assert!(
        (share - 0.10).abs() <= 0.03,
        "{kind}: blue got {:.1} % ({seen:?})",
        share * 100.0
    );
    let after = p.driver.counters().await.unwrap();
    let delta = |c: Color| {
        let (a, b) = (
            after["web"].get(c),
            before.get("web").map(|x| *x.get(c)).unwrap_or_default(),
        );
        Counts {
            xx2: a.xx2 - b.xx2,
            xx3: a.xx3 - b.xx3,
            xx4: a.xx4 - b.xx4,
            xx5: a.xx5 - b.xx5,
        }
    };
    assert_eq!(delta(Blue), seen.blue, "{kind}: blue counters");
    assert_eq!(delta(Green), seen.green, "{kind}: green counters");
    assert!(seen.blue.xx5 + seen.green.xx5 > 0 && seen.blue.xx4 + seen.green.xx4 > 0);
    // Observation reads the weights back.
    let obs = p.driver.observe().await.unwrap();
    assert_eq!(obs["web"].weights, PerColor { blue: 10, green: 90 }, "{kind}");
    assert_eq!(obs["web"].live(), Some(Green));
}

#[tokio::test]
async fn nginx_balancer_weights_and_counters_match_what_clients_saw() {
    weights_and_counters("nginx").await;
}

#[tokio::test]
async fn haproxy_weights_and_counters_match_what_clients_saw() {
    weights_and_counters("haproxy").await;
}

/// SIGKILL to the proxy's whole process group, as a crash; returns once
/// it is gone.
fn kill_tree(m: &mut Managed) {
    teal::drivers::managed::process::signal(-(m.pid() as i32), libc::SIGKILL);
    for _ in 0..200 {
        if !m.running() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pid {} survived SIGKILL", m.pid());
}

#[tokio::test]
async fn a_restarted_nginx_serves_the_last_peers_and_without_them_answers_503() {
    let mut p = start("nginx").await;
    let apps = apps();
    p.driver.apply(&route(&apps, 100)).await.unwrap();
    // Killed and started again: the peers file brings the route back.
    kill_tree(&mut p.managed);
    assert!(p.managed.revive().unwrap(), "it was dead");
    assert_eq!(get_via(&p.listen, "shop.test", "/").await, (200, "1.0 blue\n".into()));

    // Without the peers file the dict starts empty: 503, never a guess.
    let Some(balancer) = (match &p.driver {
        ProxyDriver::Nginx(n) => n.balancer().cloned(),
        _ => None,
    }) else {
        panic!("nginx switches through the balancer by default")
    };
    std::fs::remove_file(&balancer.peers_file).unwrap();
    kill_tree(&mut p.managed);
    assert!(p.managed.revive().unwrap());
    assert_eq!(get_via(&p.listen, "shop.test", "/").await.0, 503);
    assert_eq!(
        p.driver.observe().await.unwrap()["web"].live(),
        None,
        "observed as not routed"
    );
    // teal re-sends the peers: served again.
    p.driver.apply(&route(&apps, 100)).await.unwrap();
    assert_eq!(get_via(&p.listen, "shop.test", "/").await, (200, "1.0 blue\n".into()));
}

#[tokio::test]
async fn an_nginx_without_the_lua_module_gets_an_error_naming_the_packages() {
    proxy_or_fail("nginx");
    // An operator's nginx whose config loads no Lua module.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let listen = format!("127.0.0.1:{}", free_port());
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!("user root;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  server {{ listen {listen}; return 404; }}\n  include {d}/conf.d/*.conf;\n}}\n"),
    )
    .unwrap();
    let base = [
        "/usr/sbin/nginx".to_string(),
        "-p".into(),
        d.to_string(),
        "-c".into(),
        conf.display().to_string(),
    ];
    // Its own process group, and no inherited stdout: its workers are
    // ended with it and hold no pipe of the test harness open.
    let nginx = std::process::Command::new(&base[0])
        .args(&base[1..])
        .args(["-g", "daemon off;"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stop = KillGroup(nginx);
    // It serves before teal touches it (a loaded machine starts it slowly).
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the operator's nginx never listened on {listen}: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let driver = Nginx::new(NginxConfig {
        conf_dir: dir.path().join("conf.d"),
        test: [&base[..1], &["-t".to_string(), "-q".into()], &base[1..]].concat(),
        reload: [&base[..], &["-s".to_string(), "reload".into()]].concat(),
        listen: listen.clone(),
        client_keepalive: true,
        balancer: Some(Balancer::in_dir(&dir.path().join("state"))),
        https: "127.0.0.1:1".into(),
    });
    let apps = apps();
    let err = driver.apply(&route(&apps, 100)).await.unwrap_err().to_string();
    assert!(
        err.contains("nginx has no Lua module")
            && err.contains("apt-get install -y libnginx-mod-http-lua lua-resty-core")
            && err.contains("switch: reload"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("conf.d"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "nothing of teal's stays in conf.d: {left:?}");
    assert_eq!(
        get_via(&listen, "shop.test", "/").await.0,
        404,
        "the serving nginx is untouched"
    );
}

/// Kills a child's whole process group on drop.
struct KillGroup(std::process::Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        teal::drivers::managed::process::signal(-(self.0.id() as i32), libc::SIGKILL);
        let _ = self.0.wait();
    }
}
