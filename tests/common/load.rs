//! Clients for traffic-for-people tests and benches (included by path):
//! raw requests that show the headers a proxy set, clients that keep the
//! sticky cookie they were given, and keep-alive load that tallies
//! answers by status.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One answer: status, the `Set-Cookie` and `Retry-After` headers, body.
pub struct Answer {
    pub status: u16,
    pub cookie: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
}

/// `GET /` for `host` through `proxy` with extra headers, on a new
/// connection (raw HTTP/1.1, so the request is exactly what is written).
pub async fn get(proxy: &str, host: &str, headers: &[(&str, &str)]) -> Answer {
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.trim().to_string())
    };
    Answer {
        status: head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0),
        cookie: header("set-cookie"),
        retry_after: header("retry-after"),
        body: body.to_string(),
    }
}

/// Polls `get` until an answer's body is `want` (a rollout's record is
/// written before the proxy acts); panics after `secs`.
pub async fn until_body(proxy: &str, host: &str, headers: &[(&str, &str)], want: &str, secs: u64) {
    let start = std::time::Instant::now();
    loop {
        let got = get(proxy, host, headers).await.body;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "never {want:?} with {headers:?} (last {got:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What each client saw: the bodies (versions) of its answers.
pub type Seen = Vec<BTreeSet<String>>;

/// `requests` answers for each client of `cookies` (its cookie, or none
/// yet: it keeps the one the proxy sets), 50 clients at a time.
pub async fn sticky_clients(proxy: &str, host: &str, cookies: &mut [Option<String>], requests: usize) -> Seen {
    let mut seen: Seen = vec![Default::default(); cookies.len()];
    for chunk in (0..cookies.len()).collect::<Vec<_>>().chunks(50) {
        let jobs = chunk.iter().map(|&i| {
            let (proxy, host) = (proxy.to_string(), host.to_string());
            let mut cookie = cookies[i].clone();
            async move {
                let mut versions = BTreeSet::new();
                for _ in 0..requests {
                    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
                    let a = get(&proxy, &host, &headers).await;
                    assert_eq!(a.status, 200, "{}", a.body);
                    versions.insert(a.body);
                    if let Some(set) = a.cookie {
                        cookie = Some(set.split(';').next().unwrap_or("").to_string());
                    }
                }
                (i, cookie, versions)
            }
        });
        for (i, cookie, versions) in futures_util::future::join_all(jobs).await {
            cookies[i] = cookie;
            seen[i] = versions;
        }
    }
    seen
}

/// Percent of clients that saw only `version`.
pub fn share_on(seen: &Seen, version: &str) -> f64 {
    seen.iter().filter(|v| v.len() == 1 && v.contains(version)).count() as f64 * 100.0 / seen.len() as f64
}

/// Answers of keep-alive load, by kind.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    /// 503: a maintenance page (intended while maintenance is on).
    pub unavailable: u64,
    /// Any other status.
    pub other: u64,
    /// Connection errors and timeouts.
    pub errors: u64,
    pub last_error: Option<String>,
    /// The longest a request took (a held request's wait shows here).
    pub slowest: std::time::Duration,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.unavailable += o.unavailable;
        self.other += o.other;
        self.errors += o.errors;
        if o.last_error.is_some() {
            self.last_error = o.last_error.clone();
        }
        self.slowest = self.slowest.max(o.slowest);
    }
}

/// Keep-alive load from `conns` clients, each with its own connection pool.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(proxy: &str, host: &str, conns: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..conns)
            .map(|_| {
                let (url, host, stop) = (format!("http://{proxy}/"), host.to_string(), stop.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(1)
                        .timeout(std::time::Duration::from_secs(15))
                        .build()
                        .unwrap();
                    let mut t = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = std::time::Instant::now();
                        match client.get(&url).header("Host", &host).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let _ = r.bytes().await;
                                t.slowest = t.slowest.max(sent.elapsed());
                                match status {
                                    200 => t.ok += 1,
                                    503 => t.unavailable += 1,
                                    _ => t.other += 1,
                                }
                            }
                            Err(e) => {
                                t.errors += 1;
                                t.last_error = Some(e.to_string());
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        Load { stop, tasks }
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for t in self.tasks {
            all.add(&t.await.unwrap());
        }
        all
    }
}
