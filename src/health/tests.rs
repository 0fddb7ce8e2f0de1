//! Probes against the real demo app as a local process, and apps that
//! misbehave on purpose.

use super::*;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command};

/// The real demo app as a local process, killed on drop.
struct App {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl App {
    fn start(healthy: bool) -> App {
        let dir = tempfile::tempdir().unwrap();
        let bin = crate::app::write_binary(dir.path()).unwrap();
        let port = free_port();
        let child = crate::app::spawn_retrying(
            Command::new(bin)
                .env("BIND", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("HEALTHY", if healthy { "1" } else { "0" }),
        )
        .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        App { child, port, _dir: dir }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct FixedExec(i64);
impl Exec for FixedExec {
    async fn exec(&self, _: &str, _: &[String], _: Duration) -> Result<i64, String> {
        Ok(self.0)
    }
}

fn health(probe: Probe, successes: u32, deadline_ms: u64) -> Health {
    Health {
        probe,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        successes,
        deadline: Duration::from_millis(deadline_ms),
    }
}

fn http(status: u16, body: Option<&str>) -> Probe {
    Probe::Http {
        path: "/healthz".into(),
        status,
        body: body.map(Into::into),
    }
}

fn local(name: &str) -> Vec<Target> {
    vec![Target {
        container: name.into(),
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: None,
    }]
}

#[tokio::test]
async fn http_probe_passes_on_a_healthy_app() {
    let app = App::start(true);
    let reports = wait_healthy(
        &health(http(200, Some("ok")), 3, 5000),
        app.port,
        &local("a"),
        &FixedExec(0),
    )
    .await
    .expect("healthy app passes");
    assert_eq!(reports[0].passes, 3);
    assert_eq!(reports[0].attempts, 3);
}

#[tokio::test]
async fn http_probe_reports_the_status_of_an_unhealthy_app() {
    let app = App::start(false);
    let err = wait_healthy(
        &health(http(200, None), 2, 400),
        app.port,
        &local("web-green-0"),
        &FixedExec(0),
    )
    .await
    .expect_err("503 must fail");
    let msg = err.to_string();
    assert!(msg.contains("web-green-0: GET http://127.0.0.1:"), "{msg}");
    assert!(msg.contains("/healthz -> 503 (expected 200)"), "{msg}");
    assert!(
        err.replicas[0].attempts >= 3,
        "kept probing until the deadline: {err:?}"
    );
}

#[tokio::test]
async fn http_probe_checks_the_body() {
    let app = App::start(true);
    let err = wait_healthy(
        &health(http(200, Some("ready")), 1, 300),
        app.port,
        &local("a"),
        &FixedExec(0),
    )
    .await
    .expect_err("body lacks 'ready'");
    assert!(err.to_string().contains("body does not contain \"ready\""), "{err}");
}

/// An app that answers every request with a body that never ends,
/// and keeps the most it managed to send on one connection.
async fn endless_app() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut mine = 0u64;
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 << 10];
                while s.write_all(&chunk).await.is_ok() {
                    mine += chunk.len() as u64;
                    count.fetch_max(mine, Ordering::Relaxed);
                }
            });
        }
    });
    (port, sent)
}

#[tokio::test]
async fn an_endless_body_is_read_no_further_than_the_limit() {
    let (port, sent) = endless_app().await;
    let mut h = health(http(200, Some("ready")), 1, 1500);
    h.timeout = Duration::from_millis(1000);
    let err = wait_healthy(&h, port, &local("a"), &FixedExec(0))
        .await
        .expect_err("no 'ready' in the body");
    assert!(
        err.to_string()
            .contains("body does not contain \"ready\" in its first 65536 bytes"),
        "{err}"
    );
    // What the app got to send on a connection is bounded by the limit
    // and the socket buffers, not by how long a probe may take.
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 32 << 20, "a probe read {sent} bytes of an endless body");
}

#[tokio::test]
async fn tcp_probe_passes_on_listen_and_fails_on_closed_port() {
    let app = App::start(false);
    wait_healthy(&health(Probe::Tcp, 2, 2000), app.port, &local("a"), &FixedExec(0))
        .await
        .expect("tcp connect passes even when /healthz says 503");
    let closed = free_port();
    let err = wait_healthy(&health(Probe::Tcp, 1, 200), closed, &local("a"), &FixedExec(0))
        .await
        .expect_err("nothing listens");
    assert!(
        err.to_string().contains(&format!("tcp connect 127.0.0.1:{closed}")),
        "{err}"
    );
}

#[tokio::test]
async fn every_replica_must_pass() {
    let good = App::start(true);
    let h = health(http(200, None), 1, 300);
    let two = vec![
        Target {
            container: "r0".into(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
        },
        Target {
            container: "r1".into(),
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            port: None,
        },
    ];
    // 127.0.0.2 has nothing on good.port: r1 fails, r0 passes, color fails.
    let err = wait_healthy(&h, good.port, &two, &FixedExec(0))
        .await
        .expect_err("r1 fails");
    assert_eq!(err.replicas[0].passes, 1);
    assert!(err.to_string().contains("1 of 2 replicas failed"), "{err}");
    assert!(err.to_string().contains("r1: GET http://127.0.0.2:"), "{err}");
}

#[tokio::test]
async fn exec_probe_uses_the_exit_code() {
    let cmd = Probe::Exec(vec!["check".into()]);
    wait_healthy(&health(cmd.clone(), 2, 1000), 1, &local("a"), &FixedExec(0))
        .await
        .unwrap();
    let err = wait_healthy(&health(cmd, 1, 100), 1, &local("a"), &FixedExec(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exec check exited 3"), "{err}");
}
