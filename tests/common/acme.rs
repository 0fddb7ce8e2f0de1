//! A real ACME server for the tests: Debian's `pebble` on 127.0.0.1, with
//! a test CA for its own TLS (made with `openssl`), and a tiny DNS
//! answerer it resolves every name with (A: 127.0.0.1, nothing else), so
//! it validates HTTP-01 for real against whatever listens on the
//! `http_port` it was started with: a test's [`ChallengeServer`] or a
//! proxy teal runs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running pebble; killed on drop.
pub struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    /// The ACME port (the directory is `https://127.0.0.1:<port>/dir`).
    pub port: u16,
    /// The management port (`/roots/0`, the issuing root).
    pub management_port: u16,
    /// Where pebble connects for HTTP-01 (on 127.0.0.1, via [`Dns`]).
    pub http_port: u16,
    _dns: Dns,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts pebble validating HTTP-01 on `127.0.0.1:<http_port>`. Fails
/// the test (with the install command) when pebble or openssl is missing.
pub fn start_pebble(http_port: u16) -> Pebble {
    let dir = tempfile::tempdir().expect("tempdir");
    make_tls(dir.path());
    let (port, management_port) = (super::free_port(), super::free_port());
    spawn(dir, port, management_port, http_port)
}

impl Pebble {
    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The PEM CA that signed pebble's own TLS certificate (`acme.ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root pebble issues certificates under (PEM), from its
    /// management port. A fresh one per pebble process.
    pub async fn root_pem(&self) -> String {
        let ca = std::fs::read(self.ca_file()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("https://127.0.0.1:{}/roots/0", self.management_port);
        let rsp = client.get(&url).send().await.expect("pebble /roots/0");
        assert!(rsp.status().is_success(), "{url}: {}", rsp.status());
        rsp.text().await.unwrap()
    }

    /// Kills this pebble and starts a new one on the same ports with the
    /// same TLS: same directory URL, but no accounts, orders or root.
    pub fn restart(mut self) -> Pebble {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let fresh = tempfile::tempdir().expect("tempdir");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(self.dir.path().join(f), fresh.path().join(f)).unwrap();
        }
        spawn(fresh, self.port, self.management_port, self.http_port)
    }

    /// What pebble printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

fn spawn(dir: tempfile::TempDir, port: u16, management_port: u16, http_port: u16) -> Pebble {
    let dns = Dns::start();
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": dir.path().join("cert.pem"),
        "privateKey": dir.path().join("key.pem"),
        "httpPort": http_port,
        "tlsPort": super::free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &format!("127.0.0.1:{}", dns.port)])
        // No random 0-15 s sleeps before validation, no fake bad nonces,
        // and every order validated afresh.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting pebble: {e}; install it: apt-get install -y pebble"));
    let mut pebble = Pebble {
        child,
        dir,
        port,
        management_port,
        http_port,
        _dns: dns,
    };
    wait_listening(&mut pebble);
    pebble
}

fn wait_listening(pebble: &mut Pebble) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = |p| TcpStream::connect(("127.0.0.1", p)).is_ok();
        if up(pebble.port) && up(pebble.management_port) {
            return;
        }
        if let Some(status) = pebble.child.try_wait().unwrap() {
            panic!("pebble exited ({status}):\n{}", pebble.log());
        }
        assert!(
            Instant::now() < deadline,
            "pebble did not listen in 20 s:\n{}",
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 and localhost signed
/// by it (`cert.pem`, `key.pem`): pebble's own TLS.
fn make_tls(dir: &Path) {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let steps = [
        format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=teal-test-ACME-CA \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
        format!("req {ec} -keyout key.pem -out req.pem -subj /CN=localhost"),
        "x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile ext.cnf -out cert.pem"
            .to_string(),
    ];
    for step in steps {
        let args: Vec<&str> = step.split_whitespace().collect();
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("running openssl: {e}; install it: apt-get install -y openssl"));
        assert!(
            out.status.success(),
            "openssl {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A DNS answerer on a UDP port of 127.0.0.1: every A query gets
/// 127.0.0.1, every other query an empty NOERROR. Stopped on drop.
pub struct Dns {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Dns {
    pub fn start() -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let port = socket.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(answer) = dns_answer(&buf[..n]) {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        Dns {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

/// The answer to one DNS query, or None for what is not one.
pub fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels up to the root label, then type and class.
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question = query.get(12..end + 5)?;
    let qtype = u16::from_be_bytes([question[question.len() - 4], question[question.len() - 3]]);
    let is_a = qtype == 1;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]); // the query's id
    out.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80]); // response, authoritative, RD copied, RA, NOERROR
    out.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if is_a {
        // A pointer to the question's name, A, IN, TTL 60, 4 bytes.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

/// How a [`ChallengeServer`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The published key authorization (404 for an unknown token).
    Published,
    /// A key authorization that is not the published one.
    Wrong,
    /// 404 for everything.
    NotFound,
}

/// Published HTTP-01 answers, token to key authorization, shared by a
/// [`ChallengeServer`] and the `Challenges` a test hands to `issue`.
pub type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The `Challenges` a test hands to `issue`: publishes into [`Tokens`]
/// and remembers every token it was given.
#[derive(Clone, Default)]
pub struct MapChallenges {
    pub tokens: Tokens,
    pub published: Arc<Mutex<Vec<String>>>,
}

impl teal::drivers::acme::Challenges for MapChallenges {
    fn publish<'a>(
        &'a self,
        token: &'a str,
        key_authorization: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        self.published.lock().unwrap().push(token.to_string());
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_string(), key_authorization.to_string());
        Box::pin(async { Ok(()) })
    }

    fn withdraw<'a>(&'a self, token: &'a str) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        self.tokens.lock().unwrap().remove(token);
        Box::pin(async { Ok(()) })
    }
}

/// A tiny HTTP/1.0 server for `/.well-known/acme-challenge/<token>`,
/// answering from [`Tokens`]; records the Host of each request.
pub struct ChallengeServer {
    pub port: u16,
    pub tokens: Tokens,
    pub hosts: Arc<Mutex<Vec<String>>>,
    answer: Arc<Mutex<Answer>>,
}

impl ChallengeServer {
    pub fn start() -> ChallengeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = ChallengeServer {
            port,
            tokens: Tokens::default(),
            hosts: Arc::default(),
            answer: Arc::new(Mutex::new(Answer::Published)),
        };
        let (tokens, hosts, answer) = (server.tokens.clone(), server.hosts.clone(), server.answer.clone());
        // Detached: it blocks in accept, and dies with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let how = *answer.lock().unwrap();
                serve_one(stream, &tokens, &hosts, how);
            }
        });
        server
    }

    pub fn set_answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

fn serve_one(mut stream: TcpStream, tokens: &Tokens, hosts: &Mutex<Vec<String>>, how: Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("");
    if let Some(host) = text
        .lines()
        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
    {
        hosts.lock().unwrap().push(host.trim().to_string());
    }
    let token = path.strip_prefix("/.well-known/acme-challenge/");
    let body = match (how, token.and_then(|t| tokens.lock().unwrap().get(t).cloned())) {
        (Answer::Published, Some(key_authorization)) => Some(key_authorization),
        (Answer::Wrong, Some(_)) => Some("not-the-key-authorization".to_string()),
        _ => None,
    };
    let rsp = match body {
        Some(b) => format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
    };
    let _ = stream.write_all(rsp.as_bytes());
}
