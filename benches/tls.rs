//! Certificate renewal under HTTPS keep-alive load on HAProxy and on
//! nginx: 20 renewals (two certificates in turn, through HAProxy's runtime
//! API or teal's nginx control socket) while
//! `wrk -t2 -c32` keeps keep-alive HTTPS load on the proxy; then the same
//! time with no renewal, as the proxy's own HTTPS throughput. Prints the
//! time from the install call to the first handshake that presents the
//! new certificate (curl with SNI), and wrk's failed requests.
//! Run: `cargo bench --bench tls` (needs haproxy, nginx with
//! libnginx-mod-http-lua and lua-resty-core, wrk, openssl, curl).
//! `TEAL_BENCH_RENEWALS=N` changes the count.

#[path = "../tests/common/wrk.rs"]
mod wrk;

#[path = "../tests/common/certs.rs"]
mod certs;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use teal::drivers::managed::{self, ManagedSpec};
use teal::drivers::proxy::{Backend, ProxyDriver, RouteSpec};
use teal::drivers::tls::{read_files, Material};
use teal::spec::{PerColor, RouteTls, TlsSource};

/// The demo app as a backend, killed and reaped on drop.
struct App(std::process::Child);
impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A self-signed certificate for bench.test with `cn`, read and checked.
fn material(dir: &Path, cn: &str) -> Material {
    let (cert, key) = certs::make_cert(dir, cn, &["bench.test"]);
    read_files(&cert, &key, &["bench.test".into()], certs::unix_now()).unwrap()
}

/// The subject a fresh TLS handshake for bench.test is given.
fn served_subject(https: u16) -> String {
    let out = Command::new("curl")
        .args(["-skv", "-o", "/dev/null", "--max-time", "2", "--resolve"])
        .arg(format!("bench.test:{https}:127.0.0.1"))
        .arg(format!("https://bench.test:{https}/"))
        .output()
        .expect("this needs curl: apt-get install -y curl");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.lines()
        .find_map(|l| l.split_once(" subject: ").map(|(_, s)| s.trim().to_string()))
        .unwrap_or_default()
}

fn spread(ms: &mut [f64]) -> String {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!("{:.1} / {:.1} ms", ms[ms.len() / 2], ms[ms.len() - 1])
}

async fn renewals(driver: &ProxyDriver, https: u16, certs: &[Material; 2], n: usize) {
    let hosts = ["bench.test".to_string()];
    let (mut served, mut call) = (vec![], vec![]);
    for i in 0..n {
        let m = &certs[(i + 1) % 2];
        let t = Instant::now();
        driver.put_certificate("bench", &hosts, m).await.unwrap();
        call.push(t.elapsed().as_secs_f64() * 1000.0);
        let want = m.info.subject.clone();
        while served_subject(https) != want {
            assert!(t.elapsed() < Duration::from_secs(10), "{want} never served");
        }
        served.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "  {n} renewals: served (median / max) {}, install call returned {}",
        spread(&mut served),
        spread(&mut call)
    );
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TEAL_BENCH_RENEWALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    teal::app::write_binary(dir.path()).unwrap();
    let port = free_port();
    let _app = App(teal::app::spawn_retrying(
        Command::new(dir.path().join("app"))
            .env("BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("COLOR", "blue")
            .stderr(Stdio::null()),
    )
    .unwrap());
    for (kind, spec) in [
        ("haproxy", ManagedSpec::haproxy as fn(&Path, &str) -> ManagedSpec),
        ("nginx", ManagedSpec::nginx),
    ] {
        run(kind, spec, dir.path(), port, n).await;
    }
}

/// One proxy: HTTPS load with and without renewals.
async fn run(kind: &str, spec: fn(&Path, &str) -> ManagedSpec, dir: &Path, port: u16, n: usize) {
    let (http, https) = (free_port(), free_port());
    let spec = ManagedSpec {
        https: format!("127.0.0.1:{https}"),
        ..spec(&dir.join(kind), &format!("127.0.0.1:{http}"))
    };
    let (_m, driver) = managed::start(&spec).await.unwrap();
    let certs = [material(dir, "one"), material(dir, "two")];
    let route = RouteSpec {
        service: "bench".into(),
        host: "bench.test".into(),
        aliases: vec![],
        path: "/".into(),
        tls: Some(RouteTls {
            source: TlsSource::Acme,
            redirect: false,
            hsts: None,
        }),
        backends: PerColor {
            blue: Backend {
                weight: 100,
                addrs: vec![format!("127.0.0.1:{port}").parse().unwrap()],
            },
            green: Backend::default(),
        },
        preview: None,
        traffic: Default::default(),
        next: None,
        commit: "bench".into(),
        route_hash: "bench".into(),
    };
    driver.apply(&route).await.unwrap();
    driver
        .put_certificate("bench", &["bench.test".into()], &certs[0])
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{https}/");
    let secs = (n as f64 * 0.3 + 4.0).ceil() as u64;
    for renew in [true, false] {
        let load = wrk::Wrk::start_url(&url, "bench.test", secs);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if renew {
            renewals(&driver, https, &certs, n).await;
        }
        let r = load.finish();
        println!(
            "{kind} https, {}: {} requests, {} failed ({} socket errors, {} non-2xx), {} req/s, latency avg {:.2} ms, max {:.1} ms",
            if renew { "renewing" } else { "no renewal" },
            r.requests,
            r.failed(),
            r.socket_errors,
            r.non_2xx,
            r.rps,
            r.latency_avg_us as f64 / 1000.0,
            r.latency_max_us as f64 / 1000.0
        );
    }
}
