//! Cutover under load: 50 blue/green switches of a 2-replica service while
//! `wrk -t2 -c32` keeps keep-alive load on the proxy; once per driver.
//! Prints requests and failed requests (socket errors + non-2xx).
//! Run: `cargo bench --bench cutover` (needs nginx, haproxy and wrk).
//!
//! The backends are the demo app run as local processes, so the figure is
//! the proxy's switch mechanism, not container start-up.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use teal::drivers::managed::{self, ManagedSpec};
use teal::drivers::proxy::{Backend, ProxyDriver, RouteSpec};
use teal::spec::{Color, PerColor};

const SWITCHES: usize = 50;
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

struct Result {
    requests: u64,
    socket_errors: u64,
    non_2xx: u64,
    switch_ms: Vec<f64>,
}

fn number_after(text: &str, key: &str) -> u64 {
    text.split(key)
        .nth(1)
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn run(name: &str, driver: &ProxyDriver, listen: &str, blue: Vec<SocketAddr>, green: Vec<SocketAddr>) -> Result {
    let route = |c: Color| RouteSpec {
        service: "bench".into(),
        host: "bench.test".into(),
        path: "/".into(),
        backends: PerColor {
            blue: Backend {
                weight: if c == Color::Blue { 100 } else { 0 },
                addrs: blue.clone(),
            },
            green: Backend {
                weight: if c == Color::Green { 100 } else { 0 },
                addrs: green.clone(),
            },
        },
        preview: None,
        commit: "bench".into(),
        route_hash: "bench".into(),
    };
    driver.apply(&route(Color::Blue)).await.unwrap();
    let secs = (SWITCHES as f64 * (PAUSE.as_secs_f64() + 0.15) + 4.0).ceil() as u64;
    let wrk = Command::new("wrk")
        .args([
            "-t2",
            "-c32",
            &format!("-d{secs}s"),
            "-H",
            "Host: bench.test",
            &format!("http://{listen}/"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk is installed (apt-get install -y wrk)");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut switch_ms = vec![];
    for i in 0..SWITCHES {
        let to = if i % 2 == 0 { Color::Green } else { Color::Blue };
        let t = Instant::now();
        driver.apply(&route(to)).await.unwrap();
        switch_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(PAUSE).await;
    }
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let socket_errors = ["connect ", "read ", "write ", "timeout "]
        .iter()
        .map(|k| text.split("Socket errors:").nth(1).map_or(0, |s| number_after(s, k)))
        .sum();
    let r = Result {
        requests: text
            .split(" requests in")
            .next()
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        socket_errors,
        non_2xx: number_after(&text, "Non-2xx or 3xx responses:"),
        switch_ms,
    };
    assert!(r.requests > 0, "{name}: wrk printed no request count:\n{text}");
    r
}

fn report(name: &str, r: &Result) {
    let mut ms = r.switch_ms.clone();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let failed = r.socket_errors + r.non_2xx;
    println!(
        "{name}: {SWITCHES} switches, {} requests, {failed} failed ({} socket errors, {} non-2xx), {:.2} failed per switch; switch call median {:.1} ms, max {:.1} ms",
        r.requests,
        r.socket_errors,
        r.non_2xx,
        failed as f64 / SWITCHES as f64,
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (b0, a0) = app(dir.path(), "blue");
    let (b1, a1) = app(dir.path(), "blue");
    let (g0, c0) = app(dir.path(), "green");
    let (g1, c1) = app(dir.path(), "green");
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    for name in ["haproxy", "nginx", "nginx, client_keepalive: false"] {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let pdir = dir.path().join(name.replace([',', ' ', ':'], "_"));
        let listen = format!("127.0.0.1:{}", free_port());
        let (m, driver) = match name {
            "nginx" => managed::start(&ManagedSpec::nginx(&pdir, &listen)).await.unwrap(),
            "haproxy" => managed::start(&ManagedSpec::haproxy(&pdir, &listen)).await.unwrap(),
            _ => managed::start(&ManagedSpec {
                client_keepalive: false,
                ..ManagedSpec::nginx(&pdir, &listen)
            })
            .await
            .unwrap(),
        };
        let r = run(name, &driver, &listen, vec![a0, a1], vec![c0, c1]).await;
        report(name, &r);
        drop(m);
    }
    drop((b0, b1, g0, g1));
}
