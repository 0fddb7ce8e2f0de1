//! Keep-alive load on the loaded services for the whole soak, its answers
//! tallied by the window they fell in (no fault, or the fault under way),
//! and a webhook receiver the schedule can take down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers in one window.
#[derive(Debug, Default, Clone)]
pub struct Count {
    pub ok: u64,
    /// 500s a canary built to fail analysis answered (intended).
    pub intended: u64,
    /// Any other status, connection errors and timeouts.
    pub failed: u64,
    pub last_failure: Option<String>,
    /// Answers of the version whose checks never pass (`model::UNHEALTHY`):
    /// traffic on an unchecked color, which must never happen.
    pub unchecked: u64,
}

/// The window answers are counted in, and the counts per window.
#[derive(Default)]
pub struct Windows {
    now: Mutex<&'static str>,
    /// The step under way, named in failures.
    pub step: Mutex<String>,
    counts: Mutex<BTreeMap<&'static str, Count>>,
}

impl Windows {
    pub fn set(&self, name: &'static str) {
        *self.now.lock().unwrap() = name;
    }

    fn add(&self, f: impl FnOnce(&mut Count)) {
        let now = *self.now.lock().unwrap();
        f(self.counts.lock().unwrap().entry(now).or_default());
    }

    pub fn counts(&self) -> BTreeMap<&'static str, Count> {
        self.counts.lock().unwrap().clone()
    }
}

/// Keep-alive clients, `conns` per host, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub windows: Arc<Windows>,
}

impl Load {
    pub fn start(proxy: &str, hosts: &[String], conns: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let windows = Arc::new(Windows {
            now: Mutex::new("no fault"),
            ..Default::default()
        });
        let mut tasks = vec![];
        for host in hosts {
            for _ in 0..conns {
                let (url, host, stop, w) = (format!("http://{proxy}/"), host.clone(), stop.clone(), windows.clone());
                tasks.push(tokio::spawn(async move { client(url, host, stop, w).await }));
            }
        }
        Load { stop, tasks, windows }
    }

    pub async fn stop(self) -> BTreeMap<&'static str, Count> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.windows.counts()
    }
}

async fn client(url: String, host: String, stop: Arc<AtomicBool>, w: Arc<Windows>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let failure = match client.get(&url).header("Host", &host).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                match status {
                    200 if body.starts_with(&format!("{} ", super::model::UNHEALTHY)) => {
                        let f = format!("{}: {host} answered {}", w.step.lock().unwrap(), body.trim());
                        w.add(|c| {
                            c.unchecked += 1;
                            c.last_failure = Some(f);
                        });
                        continue;
                    }
                    200 => None,
                    500 if body.ends_with(" failing\n") => {
                        w.add(|c| c.intended += 1);
                        continue;
                    }
                    _ => Some(format!("{host}: {status} {}", body.trim())),
                }
            }
            Err(e) => Some(format!("{host}: {}", chain(&e))),
        };
        match failure {
            None => w.add(|c| c.ok += 1),
            Some(f) => {
                let f = format!("{}: {f}", w.step.lock().unwrap());
                w.add(|c| {
                    c.failed += 1;
                    c.last_failure = Some(f);
                });
                // A refused connection fails at once: do not spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// An error and its sources: reqwest's own text ("error sending
/// request") does not say whether the connection was refused, reset or
/// timed out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A webhook receiver on a fixed loopback port that answers 200 and
/// counts requests; `down` closes its port, `up` opens it again.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(port: u16) -> Receiver {
        let mut r = Receiver {
            port,
            got: Arc::default(),
            task: None,
        };
        r.up().await;
        r
    }

    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let got = self.got.clone();
        self.task = Some(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let got = got.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                    got.fetch_add(1, Ordering::Relaxed);
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        }));
    }

    pub fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}
