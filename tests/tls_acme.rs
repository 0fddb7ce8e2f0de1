//! `tls: acme` end to end: `teal daemon` with a managed HAProxy orders a
//! route's certificate from a real ACME CA (pebble, validating HTTP-01
//! through the proxy teal runs), installs it with no reload, and shows it
//! in the status, `teal status`, the event log and `/metrics`; and a CA
//! that cannot be reached fails the order, visibly, while the service
//! deploys and serves plain HTTP. Needs Docker, haproxy, pebble, openssl
//! and curl (`apt-get install -y haproxy pebble openssl curl`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::acme::start_pebble;
use common::host::TestHost;
use common::{app_image_version, free_port, proxy_or_fail, teal_bin};
use teal::events::{EventResult, StepKind};

/// The host config: a managed HAProxy on HTTP and HTTPS ports, and the
/// ACME CA at `directory`.
fn write_config(h: &TestHost, https: u16, directory: &str, ca_file: Option<&std::path::Path>) {
    let ca = ca_file
        .map(|f| format!("  ca_file: {}\n", f.display()))
        .unwrap_or_default();
    std::fs::write(
        &h.config,
        format!(
            "repo: {{url: {}, poll: 500ms}}\ndocker: {{network: {}}}\nproxy:\n  kind: haproxy\n  listen: {}\n  https_listen: 127.0.0.1:{https}\n  managed: true\nacme:\n  directory: {directory}\n{ca}  email: ops@example.com\nstate_dir: {}\nlisten: {}\n",
            h.bare.display(),
            h.network,
            h.listen,
            h.state.display(),
            h.api
        ),
    )
    .unwrap();
}

fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

/// Waits until the status shows the service's certificate in `state`.
async fn until_certificate(h: &TestHost, state: &str, secs: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        // The status API is up a moment after the daemon starts.
        let status = match common::try_get_via(&h.api, "localhost", "/status").await {
            Ok((200, body)) => serde_json::from_str(&body).unwrap(),
            _ => serde_json::Value::Null,
        };
        let cert = &status["services"][&h.svc]["certificate"];
        if cert["state"] == state {
            return cert.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no certificate {state} within {secs}s: {cert}\nlog:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// curl over HTTPS to the route: its output (`-v` included) and status.
fn curl_https(h: &TestHost, https: u16, ca: &std::path::Path) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{}:{https}:127.0.0.1", h.host))
        .arg(format!("https://{}:{https}/", h.host))
        .output()
        .expect("curl is needed: apt-get install -y curl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn an_acme_route_is_ordered_installed_and_shown_without_a_reload() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("acme").await;
    let pebble = start_pebble(port_of(&h.listen));
    let https = free_port();
    write_config(&h, https, &pebble.directory(), Some(&pebble.ca_file()));
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let file = h.service("blue", &v1, None, "").replace(
        &format!("route: {{host: {}}}", h.host),
        &format!("route: {{host: {}, tls: acme, hsts: 1h}}", h.host),
    );
    assert!(file.contains("tls: acme"), "{file}");
    h.push("web 1.0 over https", &file);
    let _daemon = h.start_daemon();

    let cert = until_certificate(&h, "ok", 90).await;
    assert_eq!(cert["source"], "acme", "{cert}");
    assert!(
        cert["subject"].as_str().unwrap_or("").contains(&h.host) || cert["names"][0] == h.host.as_str(),
        "{cert}"
    );
    assert!(cert["issuer"].as_str().unwrap_or("").contains("Pebble"), "{cert}");
    assert_eq!(cert["names"], serde_json::json!([h.host]), "{cert}");
    let left = cert["not_after"].as_i64().unwrap() - common::certs::unix_now();
    assert!(left > 86_400, "a fresh certificate: {cert}");

    // Served over HTTPS, verified under pebble's own root, with HSTS.
    let root = h.dir.path().join("pebble-root.pem");
    std::fs::write(&root, pebble.root_pem().await).unwrap();
    let (ok, text) = curl_https(&h, https, &root);
    assert!(ok && text.contains("1.0 blue"), "{text}\nlog:\n{}", h.log_text());
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=3600"),
        "{text}"
    );
    assert!(text.contains(&format!("subject: CN={}", h.host)), "{text}");
    // Plain HTTP now redirects there.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--max-time",
            "5",
        ])
        .arg("--resolve")
        .arg(format!("{}:{}:127.0.0.1", h.host, port_of(&h.listen)))
        .arg(format!("http://{}:{}/x", h.host, port_of(&h.listen)))
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(plain.starts_with("308 https://"), "{plain}");

    // One event line, with subject, issuer and expiry, and no failure.
    let events: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| e.step == StepKind::Certificate && e.service == h.svc)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let note = events[0].note.clone().unwrap_or_default();
    assert_eq!(events[0].result, EventResult::Ok, "{events:?}");
    assert!(
        note.starts_with("installed (ordered): ") && note.contains("Pebble") && note.contains("expires "),
        "{note}"
    );

    // `teal status` and the gauge.
    let status = Command::new(teal_bin())
        .args(["status", "--config", h.config.to_str().unwrap()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("  certificate ok (acme): "), "{status}");
    let metrics = reqwest::get(format!("http://{}/metrics", h.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = format!("teal_certificate_expiry_seconds{{service=\"{}\"}} ", h.svc);
    let secs: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(gauge.as_str()))
        .unwrap_or_else(|| panic!("{gauge} in {metrics}"))
        .parse()
        .unwrap();
    assert!((left - 60..=left).contains(&secs), "{secs} vs {left}");

    // The account and certificate files are the state dir's, 0600.
    for f in walk(&h.state.join("acme")) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

#[tokio::test]
async fn an_order_that_fails_is_shown_and_retried_while_the_service_serves_http() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("acmefail").await;
    // A directory nobody answers: every order fails.
    let closed = free_port();
    let https = free_port();
    write_config(&h, https, &format!("https://127.0.0.1:{closed}/dir"), None);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let file = h.service("blue", &v1, None, "").replace(
        &format!("route: {{host: {}}}", h.host),
        &format!("route: {{host: {}, tls: acme}}", h.host),
    );
    h.push("web 1.0", &file);
    let _daemon = h.start_daemon();

    h.until_serves("1.0 blue\n", 60).await;
    let cert = until_certificate(&h, "failed", 60).await;
    let error = cert["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.contains(&format!("127.0.0.1:{closed}")),
        "names the directory: {cert}"
    );
    assert!(
        cert["retry_at"].as_i64().unwrap() > common::certs::unix_now() - 5,
        "{cert}"
    );
    assert!(cert["subject"].is_null(), "nothing served: {cert}");
    // The deploy itself succeeded; the failure is the certificate's.
    let status = h.status().await;
    assert_eq!(status["services"][&h.svc]["live"], "blue", "{status}");

    // Said once, not once per pass, while passes go on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| e.step == StepKind::Certificate && e.result == EventResult::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains(&format!("127.0.0.1:{closed}")),
        "{failed:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
