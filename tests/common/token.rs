//! A token service for the registry tests: the registry's `auth: token`
//! sends clients here (the Bearer flow of Docker Hub, GHCR, Harbor). It
//! answers `GET /token?service=..&scope=repository:NAME:ACTIONS` for the
//! one user and password it knows (HTTP Basic), with a JWT signed RS256 by
//! a key whose self-signed certificate the registry trusts
//! (`rootcertbundle`), the certificate in the token's `x5c` header. Wrong
//! or no credentials get 401.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

pub const SERVICE: &str = "teal-test-registry";
pub const ISSUER: &str = "teal-test-token-issuer";

pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The certificate the registry's `rootcertbundle` names.
    pub cert: PathBuf,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Every value of the query parameter `key` of a request target, decoded.
fn query(target: &str, key: &str) -> Vec<String> {
    let Some((_, q)) = target.split_once('?') else {
        return vec![];
    };
    q.split('&')
        .filter_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(decode)
        .collect()
}

/// Percent-decoding (and `+` as a space) of one query value.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(c) => {
                        out.push(c);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenService {
    /// Starts it on a thread, for `user`:`password`; key and certificate in `dir`.
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenService {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=teal-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("these tests need openssl: apt-get install -y openssl")
            .status
            .success();
        assert!(ok, "openssl req for the token key");
        let pem = std::fs::read(&key).unwrap();
        let pkey = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
        let der = openssl::x509::X509::from_pem(&std::fs::read(&cert).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut authorized = false;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") && v.trim() == basic {
                            authorized = true;
                        }
                    }
                }
                let mut out = stream;
                if !authorized {
                    let _ =
                        out.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let scopes = query(&target, "scope");
                let access: Vec<serde_json::Value> = scopes
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter_map(|s| {
                        let mut p = s.splitn(3, ':');
                        let (kind, name, actions) = (p.next()?, p.next()?, p.next()?);
                        Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]});
                let claims = serde_json::json!({
                    "iss": ISSUER, "sub": "teal-ci", "aud": SERVICE,
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_id()),
                    "access": access,
                });
                let signing = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
                signer.update(signing.as_bytes()).unwrap();
                let jwt = format!("{signing}.{}", b64url(&signer.sign_to_vec().unwrap()));
                let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300}).to_string();
                let _ = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenService { realm, cert }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
