//! The teal demo and test app: a tiny std-only HTTP/1.1 server, compiled
//! statically by build.rs so it runs in a `FROM scratch` image.
//!
//! Environment:
//! - `PORT` (default 8080): port to listen on (all interfaces)
//! - `VERSION` (default "dev"), `COLOR` (default `TEAL_COLOR`, set by teal): echoed on `/`
//! - `HEALTHY` (default "1"): `/healthz` answers 200 when "1", else 503
//! - `START_DELAY_MS` (default 0): sleep before listening (slow starts)
//! - `FAIL_PERCENT` (default 0): this share of `GET /` answers 500, spread
//!   evenly and deterministically (request n fails when n * 37 mod 100 is
//!   below it), for tests of analysis
//!
//! `GET /status/<code>` answers with that status, e.g. `/status/404`.
//!
//! `GET /metrics` answers, in Prometheus's text format, the counts of the
//! requests served on the other paths (`app_requests_total`) and of the
//! 500s among them (`app_errors_total`), for tests of Prometheus analysis.
//!
//! `GET /secret/<NAME>` and `GET /env/<NAME>` answer the FNV-1a 64 hash
//! (hex) of `/run/secrets/<NAME>` or of variable `NAME`, 404 when absent:
//! tests see which value a replica got without it crossing the wire.
//!
//! `app check` asks the server in the same container for `/healthz` and
//! exits 0 on 200, 1 otherwise (for `exec` health probes).
//!
//! `app release MODE [NAME...]` is a release command: it prints a line
//! per NAME with the value it sees (file, else env), then `ok` exits 0,
//! `fail` exits 3, `sleep:<ms>` sleeps that long, then exits 0.
//!
//! `GET /` answers `<VERSION> <COLOR>\n`. Keep-alive is supported so load
//! tests through a proxy measure the proxy, not connection setup.

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

/// As PID 1 in a container, a process without a handler ignores SIGTERM
/// and `docker stop` waits out its grace period: exit at once instead.
extern "C" fn on_term(_: i32) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { _exit(0) }
}

fn main() {
    // SAFETY: installing a handler that only calls _exit.
    unsafe {
        signal(15, on_term);
        signal(2, on_term);
    }
    let port = env::var("PORT").unwrap_or_else(|_| "8080".into());
    if env::args().nth(1).as_deref() == Some("check") {
        std::process::exit(if check(&port) { 0 } else { 1 });
    }
    if env::args().nth(1).as_deref() == Some("release") {
        release(&env::args().skip(2).collect::<Vec<_>>());
    }
    let delay: u64 = env::var("START_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if delay > 0 {
        thread::sleep(Duration::from_millis(delay));
    }
    let bind = env::var("BIND").unwrap_or_else(|_| "0.0.0.0".into());
    let listener = match TcpListener::bind(format!("{bind}:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("app: cannot listen on {bind}:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("app: listening on {bind}:{port}");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

fn release(args: &[String]) -> ! {
    let mode = args.first().map(String::as_str).unwrap_or("ok");
    println!("release: starting ({mode})");
    for name in &args[1.min(args.len())..] {
        println!("release: {name}={}", secret(name).unwrap_or_default());
    }
    if let Some(ms) = mode.strip_prefix("sleep:") {
        thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
    }
    if mode == "fail" {
        eprintln!("release: migration 42 failed: relation \"users\" already exists");
        std::process::exit(3);
    }
    println!("release: done");
    std::process::exit(0)
}

/// `/run/secrets/NAME`, else the variable `NAME`.
fn secret(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/run/secrets/{name}"))
        .ok()
        .or_else(|| env::var(name).ok())
}

/// FNV-1a, 64 bits, as hex.
fn fnv(data: &[u8]) -> String {
    let h = data
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
    format!("{h:016x}")
}

fn check(port: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(format!("127.0.0.1:{port}")) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/1.1 200")
}

/// Requests served (not counting `/metrics` and `/healthz`), and 500s.
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

fn metrics() -> String {
    format!(
        "# TYPE app_requests_total counter\napp_requests_total {}\n# TYPE app_errors_total counter\napp_errors_total {}\n",
        REQUESTS.load(Ordering::Relaxed),
        ERRORS.load(Ordering::Relaxed)
    )
}

/// Whether this request is one of the `FAIL_PERCENT` that answer 500.
fn failing() -> bool {
    static N: AtomicU64 = AtomicU64::new(0);
    let percent: u64 = env::var("FAIL_PERCENT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    percent > 0 && (N.fetch_add(1, Ordering::Relaxed) * 37) % 100 < percent
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let version = env::var("VERSION").unwrap_or_else(|_| "dev".into());
    let color = env::var("COLOR").or_else(|_| env::var("TEAL_COLOR")).unwrap_or_default();
    let healthy = env::var("HEALTHY").map(|v| v == "1").unwrap_or(true);
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut close = request_line.ends_with("HTTP/1.0\r\n");
        let mut body_len = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let h = header.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if h == "connection: close" {
                close = true;
            } else if h == "connection: keep-alive" {
                close = false;
            } else if let Some(v) = h.strip_prefix("content-length:") {
                body_len = v.trim().parse().unwrap_or(0);
            }
        }
        if body_len > 0 {
            let mut skip = vec![0u8; body_len];
            std::io::Read::read_exact(&mut reader, &mut skip)?;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        if path != "/metrics" && !path.starts_with("/healthz") {
            REQUESTS.fetch_add(1, Ordering::Relaxed);
        }
        let (status, body) = match path {
            "/metrics" => ("200 OK".to_string(), metrics()),
            "/healthz" if healthy => ("200 OK".to_string(), "ok\n".to_string()),
            "/healthz" => ("503 Service Unavailable".to_string(), "unhealthy\n".to_string()),
            p if p.starts_with("/secret/") || p.starts_with("/env/") => {
                let name = p.rsplit('/').next().unwrap_or("");
                let found = if p.starts_with("/secret/") {
                    std::fs::read(format!("/run/secrets/{name}")).ok()
                } else {
                    env::var(name).ok().map(String::into_bytes)
                };
                match found {
                    Some(v) => ("200 OK".to_string(), format!("{}\n", fnv(&v))),
                    None => ("404 Not Found".to_string(), "absent\n".to_string()),
                }
            }
            p if p.starts_with("/status/") => {
                let code = p.trim_start_matches("/status/");
                (format!("{code} As Asked"), format!("{version} {color} {code}\n"))
            }
            _ if failing() => {
                ERRORS.fetch_add(1, Ordering::Relaxed);
                ("500 Internal Server Error".to_string(), format!("{version} {color} failing\n"))
            }
            _ => ("200 OK".to_string(), format!("{version} {color}\n")),
        };
        let conn = if close { "close" } else { "keep-alive" };
        // One write per response: several small writes would wait on
        // Nagle and delayed ACKs (~40 ms each) under keep-alive load.
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{body}",
            body.len()
        );
        out.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}
