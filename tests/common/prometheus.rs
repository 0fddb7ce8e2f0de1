//! A real Prometheus server (Debian's `prometheus`) for the analysis tests:
//! on a free 127.0.0.1 port, with its own config and TSDB in a temp dir,
//! scraping every second the fixture app's `/metrics` in the containers
//! of one service, found through Docker service discovery and labelled
//! with the container's `service` and `color`. Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct PromServer {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    dir: tempfile::TempDir,
}

/// The Prometheus binary; fails (never skips) when it is missing, saying
/// how to install it.
pub fn prometheus_or_fail() -> &'static str {
    let bin = "/usr/bin/prometheus";
    assert!(
        Path::new(bin).exists(),
        "these tests need Debian's Prometheus server at {bin}: install it without starting its service, \
         e.g. `printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && \
         apt-get install -y --no-install-recommends prometheus; rm /usr/sbin/policy-rc.d` (`.ci/run` does this)"
    );
    bin
}

impl PromServer {
    /// Starts Prometheus scraping the containers labelled
    /// `teal.service=<service>` on port 8080, and waits until it is ready.
    pub async fn start(service: &str) -> PromServer {
        let bin = prometheus_or_fail();
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: app
    docker_sd_configs:
      - host: unix:///var/run/docker.sock
        refresh_interval: 1s
        port: 8080
        filters:
          - name: label
            values: ["teal.service={service}"]
    relabel_configs:
      - source_labels: [__meta_docker_network_ip]
        regex: (.+)
        target_label: __address__
        replacement: "$1:8080"
      - source_labels: [__meta_docker_container_label_teal_service]
        target_label: service
      - source_labels: [__meta_docker_container_label_teal_color]
        target_label: color
"#
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let server = PromServer {
            child,
            url: format!("http://{addr}"),
            dir,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", server.url)).await {
                if r.status().is_success() {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus was not ready in 30 s; its log:\n{}", server.log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant query, `None` without exactly one.
    pub async fn value(&self, query: &str) -> Option<f64> {
        let client = teal::drivers::prometheus::client();
        teal::drivers::prometheus::query(&client, &self.url, query).await.ok()
    }

    /// What Prometheus scrapes, for a failing test's message.
    pub async fn targets(&self) -> String {
        match reqwest::get(format!("{}/api/v1/targets", self.url)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
