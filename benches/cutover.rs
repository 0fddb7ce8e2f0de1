//! Cutover under load: 100 blue/green switches of a 2-replica service while
//! `wrk -t2 -c32` keeps keep-alive load on the proxy, for HAProxy (runtime
//! API), nginx `switch: balancer` (Lua, no reload) and nginx `switch:
//! reload`; each also run for the same time with no switch, as the
//! proxy's own throughput. Prints requests, failed requests (socket
//! errors and non-2xx) and req/s.
//! Run: `cargo bench --bench cutover` (needs nginx with the Lua module,
//! haproxy and wrk). `TEAL_BENCH_PROXY=haproxy|balancer|reload` runs one;
//! `TEAL_BENCH_SWITCHES=N` changes the count. `TEAL_BENCH_HTTPS=1` puts
//! the load on the proxy's HTTPS listener instead (a route with TLS, a
//! self-signed certificate installed by teal; plain HTTP still answers,
//! for the probe that sees where traffic went).
//!
//! The backends are the demo app run as local processes, so the figure is
//! the proxy's switch mechanism, not container start-up.
//! `TEAL_BENCH_BACKENDS=containers|swarm` puts the same switches in front
//! of real replicas started by teal's drivers instead: containers on the
//! managed network (engine mode), or the tasks of two Swarm services
//! published in `mode=host` (swarm mode; the engine must be a manager:
//! `docker swarm init --advertise-addr 127.0.0.1`).

#[path = "../tests/common/wrk.rs"]
mod wrk;

#[path = "../tests/common/certs.rs"]
mod certs;

mod backends;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use teal::config::NginxSwitch;
use teal::drivers::managed::{self, ManagedSpec};
use teal::drivers::proxy::{Backend, ProxyDriver, RouteSpec};
use teal::spec::{Color, PerColor, RouteTls, TlsSource};
use wrk::{Wrk, WrkResult};

/// Time between switches: the drain a user would configure, kept short.
const PAUSE: Duration = Duration::from_millis(200);

struct App(Child);
impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn app(dir: &std::path::Path, color: &str) -> (App, SocketAddr) {
    let bin = dir.join("app");
    if !bin.exists() {
        teal::app::write_binary(dir).unwrap();
    }
    let port = free_port();
    let child = teal::app::spawn_retrying(
        Command::new(&bin)
            .env("BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("COLOR", color)
            .stderr(Stdio::null()),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while std::net::TcpStream::connect(addr).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    (App(child), addr)
}

fn route(c: Color, blue: &[SocketAddr], green: &[SocketAddr]) -> RouteSpec {
    let backend = |me: Color, addrs: &[SocketAddr]| Backend {
        weight: if c == me { 100 } else { 0 },
        addrs: addrs.to_vec(),
    };
    RouteSpec {
        service: "bench".into(),
        host: "bench.test".into(),
        aliases: vec![],
        tls: https().then_some(RouteTls {
            source: TlsSource::Acme,
            redirect: false,
            hsts: None,
        }),
        path: "/".into(),
        backends: PerColor {
            blue: backend(Color::Blue, blue),
            green: backend(Color::Green, green),
        },
        preview: None,
        traffic: Default::default(),
        next: None,
        commit: "bench".into(),
        route_hash: "bench".into(),
    }
}

/// `TEAL_BENCH_HTTPS=1`: the load goes through HTTPS.
fn https() -> bool {
    std::env::var("TEAL_BENCH_HTTPS").is_ok_and(|v| v == "1")
}

/// The color a fresh request through the proxy reaches.
async fn color_served(listen: &str) -> Option<Color> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(listen).await.ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.split("\r\n\r\n").nth(1)?.split_whitespace().nth(1)?.parse().ok()
}

/// Milliseconds from `since` until requests reach `to`.
async fn until_served(listen: &str, to: Color, since: Instant) -> f64 {
    while color_served(listen).await != Some(to) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    since.elapsed().as_secs_f64() * 1000.0
}

/// Per switch: milliseconds until traffic moved, and until the call
/// returned (which includes recording the route on disk).
#[derive(Default)]
struct Times {
    moved: Vec<f64>,
    call: Vec<f64>,
}

/// "median / max" of a list of milliseconds.
fn spread(ms: &[f64]) -> String {
    let mut ms = ms.to_vec();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!("{:.1} / {:.1} ms", ms[ms.len() / 2], ms[ms.len() - 1])
}

/// wrk for the time `switches` switches take, switching when asked.
async fn run(
    driver: &ProxyDriver,
    listen: &str,
    addrs: &[Vec<SocketAddr>; 2],
    switches: usize,
    switch: bool,
    https_port: Option<u16>,
) -> (WrkResult, Times) {
    let [blue, green] = addrs;
    driver.apply(&route(Color::Blue, blue, green)).await.unwrap();
    let secs = (switches as f64 * (PAUSE.as_secs_f64() + 0.05) + 3.0).ceil() as u64;
    let load = match https_port {
        Some(p) => Wrk::start_url(&format!("https://127.0.0.1:{p}/"), "bench.test", secs),
        None => Wrk::start(listen, "bench.test", secs),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times = Times::default();
    for i in 0..switches {
        if switch {
            let to = if i % 2 == 0 { Color::Green } else { Color::Blue };
            let t = Instant::now();
            let call = async {
                let r = driver.apply(&route(to, blue, green)).await;
                (r, t.elapsed().as_secs_f64() * 1000.0)
            };
            let ((r, call_ms), moved_ms) = tokio::join!(call, until_served(listen, to, t));
            if let Err(e) = r {
                println!("  switch {i} failed after {call_ms:.1} ms: {e}");
            }
            times.call.push(call_ms);
            times.moved.push(moved_ms);
        }
        tokio::time::sleep(PAUSE).await;
    }
    (load.finish(), times)
}

fn report(name: &str, r: &WrkResult, t: &Times, switches: usize) {
    let calls = if t.call.is_empty() {
        "no switches".to_string()
    } else {
        format!(
            "{switches} switches, traffic moved (median / max) {}, call returned {}",
            spread(&t.moved),
            spread(&t.call)
        )
    };
    println!(
        "{name}: {} requests, {} failed ({} socket errors, {} non-2xx), {} req/s; {calls}",
        r.requests,
        r.failed(),
        r.socket_errors,
        r.non_2xx,
        r.rps
    );
}

async fn start(name: &str, dir: &std::path::Path, listen: &str, https: Option<u16>) -> (managed::Managed, ProxyDriver) {
    let mut spec = match name {
        "haproxy" => ManagedSpec::haproxy(dir, listen),
        "balancer" => ManagedSpec::nginx(dir, listen),
        _ => ManagedSpec {
            switch: NginxSwitch::Reload,
            ..ManagedSpec::nginx(dir, listen)
        },
    };
    if let Some(p) = https {
        spec.https = format!("127.0.0.1:{p}");
    }
    managed::start(&spec).await.unwrap()
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let switches: usize = std::env::var("TEAL_BENCH_SWITCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let kind = std::env::var("TEAL_BENCH_BACKENDS").unwrap_or_default();
    let mut apps = vec![];
    let mut replicas = None;
    let addrs = if kind == "containers" || kind == "swarm" {
        let r = backends::start(&kind).await;
        let addrs = r.addrs.clone();
        println!("backends: {kind}, blue {:?}, green {:?}", addrs[0], addrs[1]);
        replicas = Some(r);
        addrs
    } else {
        let mut one = |color: &str| {
            let (app, addr) = app(dir.path(), color);
            apps.push(app);
            addr
        };
        [vec![one("blue"), one("blue")], vec![one("green"), one("green")]]
    };
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    for name in ["haproxy", "balancer", "reload"] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        if https() && name == "reload" {
            println!("nginx switch: reload serves no HTTPS (teal refuses TLS routes there): skipped");
            continue;
        }
        let pdir = dir.path().join(name);
        let listen = format!("127.0.0.1:{}", free_port());
        let https_port = https().then(free_port);
        let (m, driver) = start(name, &pdir, &listen, https_port).await;
        if https_port.is_some() {
            // Installed once; the switches then run under HTTPS load.
            driver.apply(&route(Color::Blue, &addrs[0], &addrs[1])).await.unwrap();
            let (cert, key) = certs::make_cert(dir.path(), "bench", &["bench.test"]);
            let hosts = ["bench.test".to_string()];
            let m = teal::drivers::tls::read_files(&cert, &key, &hosts, certs::unix_now()).unwrap();
            driver.put_certificate("bench", &hosts, &m).await.unwrap();
        }
        let label = match name {
            "haproxy" => "HAProxy (runtime API)",
            "balancer" => "nginx switch: balancer (Lua, no reload)",
            _ => "nginx switch: reload",
        };
        let label = if https_port.is_some() {
            format!("{label}, HTTPS")
        } else {
            label.to_string()
        };
        let label = label.as_str();
        let (r, ms) = run(&driver, &listen, &addrs, switches, false, https_port).await;
        report(&format!("{label}, no switches"), &r, &ms, switches);
        let (r, ms) = run(&driver, &listen, &addrs, switches, true, https_port).await;
        report(label, &r, &ms, switches);
        drop(m);
    }
    drop(apps);
    if let Some(r) = replicas {
        r.remove().await;
    }
}
