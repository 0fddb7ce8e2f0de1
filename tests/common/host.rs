//! A host for daemon tests: a Docker network of its own, a bare config
//! repo with a work tree the test pushes from, a state dir and a host
//! config (a managed proxy, or an operator's HAProxy the test starts),
//! and `teal daemon` runs whose logs a failing assertion prints.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{kill_proxies, Daemon};
use super::{docker_or_fail, free_port, git_in, teal_bin, try_get_via, unique, DockerGuard};
use teal::drivers::docker::DockerDriver;
use teal::drivers::managed::{self, Managed, ManagedSpec};

pub struct TestHost {
    pub dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
    /// The service under test and the host name it is routed on.
    pub svc: String,
    pub host: String,
    pub network: String,
    pub docker: DockerDriver,
    /// Where the proxy serves traffic.
    pub listen: String,
    /// The status API.
    pub api: String,
    pub state: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    _guard: DockerGuard,
}

/// The health block of a service file. The default is fast: a 100 ms
/// interval, 2 passes, a 10 s deadline.
#[derive(Debug, Clone)]
pub struct Checks {
    pub interval: &'static str,
    pub successes: u32,
    pub deadline: &'static str,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            interval: "100ms",
            successes: 2,
            deadline: "10s",
        }
    }
}

/// An HAProxy the test started and the daemon drives as an operator's
/// proxy (`managed: false`): stopped on drop.
pub struct OperatorProxy {
    pub proxy: Managed,
    /// The `proxy:` section of the host config that points teal at it.
    pub yaml: String,
}

impl Drop for TestHost {
    /// A proxy left serving by a killed daemon (kill -9 tests) ends here.
    fn drop(&mut self) {
        kill_proxies(&self.proxy_dir());
    }
}

impl TestHost {
    /// A fresh host; fails (never skips) without Docker.
    pub async fn new(prefix: &str) -> TestHost {
        docker_or_fail();
        let network = unique(&format!("teal-{prefix}"));
        let svc = unique("web");
        let docker = DockerDriver::connect(None, &network).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("deploy.git");
        git_in(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        git_in(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
        TestHost {
            work: dir.path().join("work"),
            state: dir.path().join("state"),
            config: dir.path().join("daemon.yaml"),
            log: dir.path().join("daemon.log"),
            host: format!("{svc}.test"),
            listen: format!("127.0.0.1:{}", free_port()),
            api: format!("127.0.0.1:{}", free_port()),
            _guard: DockerGuard {
                services: vec![svc.clone()],
                network: network.clone(),
            },
            bare,
            svc,
            network,
            docker,
            dir,
        }
    }

    /// The service file: `active`, an image per color, fast checks.
    pub fn service(&self, active: &str, blue: &str, green: Option<&str>, extra: &str) -> String {
        self.service_checked(active, blue, green, &Checks::default(), extra)
    }

    /// The service file with the given health checks; `extra` lines are appended.
    pub fn service_checked(
        &self,
        active: &str,
        blue: &str,
        green: Option<&str>,
        checks: &Checks,
        extra: &str,
    ) -> String {
        let green = green.map(|g| format!("green:\n  image: {g}\n")).unwrap_or_default();
        let Checks {
            interval,
            successes,
            deadline,
        } = checks;
        format!(
            "active: {active}\nblue:\n  image: {blue}\n{green}port: 8080\nroute: {{host: {}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: {interval}\n  successes: {successes}\n  deadline: {deadline}\nswitch: {{drain: 100ms}}\n{extra}",
            self.host
        )
    }

    /// Commits the service file and pushes it to the bare repo's main.
    pub fn push(&self, msg: &str, text: &str) {
        self.push_to("main", msg, text);
    }

    /// Commits the service file on the work tree's current branch and
    /// pushes that to `branch` of the bare repo.
    pub fn push_to(&self, branch: &str, msg: &str, text: &str) {
        std::fs::create_dir_all(self.work.join("services")).unwrap();
        std::fs::write(self.work.join(format!("services/{}.yaml", self.svc)), text).unwrap();
        git_in(&self.work, &["add", "-A"]);
        git_in(&self.work, &["commit", "-qm", msg]);
        git_in(&self.work, &["push", "-q", "origin", &format!("HEAD:{branch}")]);
    }

    /// Writes the host config with `proxy` (YAML lines under `proxy:`).
    pub fn write_config(&self, proxy: &str) {
        self.write_config_with("", proxy);
    }

    /// Writes the host config; `repo` is added to the repo mapping (e.g.
    /// `", branch: prod"`), `proxy` are the YAML lines under `proxy:`.
    /// `images.keep` is high: the tests share the fixture images' tags, and
    /// one test's cleanup must not remove a tag another is about to run
    /// (tests/gc.rs sets its own).
    pub fn write_config_with(&self, repo: &str, proxy: &str) {
        std::fs::write(
            &self.config,
            format!(
                "repo: {{url: {}, poll: 500ms{repo}}}\ndocker: {{network: {}}}\nproxy:\n{proxy}state_dir: {}\nlisten: {}\nimages: {{keep: 100}}\n",
                self.bare.display(),
                self.network,
                self.state.display(),
                self.api
            ),
        )
        .unwrap();
    }

    /// Starts an HAProxy on `self.listen` as an operator would run it, and
    /// the `proxy:` lines that make teal drive it (its config file, admin
    /// socket and a reload by signal).
    pub async fn operator_haproxy(&self) -> OperatorProxy {
        let dir = self.dir.path().join("operator-proxy");
        let (proxy, _) = managed::start(&ManagedSpec::haproxy(&dir, &self.listen))
            .await
            .expect("start HAProxy");
        let d = dir.display();
        let yaml = format!(
            "  kind: haproxy\n  listen: {}\n  haproxy: {{config: {d}/teal.cfg, socket: {d}/admin.sock, reload: [kill, -USR2, '{}']}}\n",
            self.listen,
            proxy.pid()
        );
        OperatorProxy { proxy, yaml }
    }

    /// The event log so far (empty before the first event).
    pub fn events(&self) -> Vec<teal::events::Event> {
        teal::events::read(&self.state.join("events.jsonl")).unwrap_or_default()
    }

    /// A managed proxy of `kind` (`haproxy` or `nginx`) on `self.listen`.
    pub fn managed_config(&self, kind: &str) {
        self.write_config(&format!("  kind: {kind}\n  listen: {}\n  managed: true\n", self.listen));
    }

    /// Adds `prefix` to the host config's `policy.prometheus` (the only
    /// policy line it may have), so `analysis.prometheus` may query it.
    pub fn allow_prometheus(&self, prefix: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(&format!("policy: {{prometheus: ['{prefix}']}}\n"));
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts `teal daemon`, its stderr appended to the log.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(&[])
    }

    /// Starts `teal daemon` with `env` added to its environment.
    pub fn start_daemon_with(&self, env: &[(String, String)]) -> Daemon {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(teal_bin())
            .args(["daemon", "--config", self.config.to_str().unwrap()])
            .env("NO_COLOR", "1")
            // `TEAL_TEST_LOG=info,teal::observe=debug` etc. to look closer.
            .env(
                "TEAL_LOG",
                std::env::var("TEAL_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stderr(f)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    /// The daemon log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until the proxy answers `want`, or fails after `secs`.
    /// Waits until 20 answers in a row are `want`, then asserts the next
    /// 100 are too: traffic has all moved (one answer proves nothing while
    /// a split still sends most there).
    #[allow(dead_code)]
    pub async fn until_only_serves(&self, want: &str, secs: u64) {
        let start = Instant::now();
        let mut run = 0;
        let mut last = Ok((0, String::new()));
        while start.elapsed() < Duration::from_secs(secs) {
            last = try_get_via(&self.listen, &self.host, "/").await;
            run = if last.as_ref().is_ok_and(|(_, body)| body == want) {
                run + 1
            } else {
                0
            };
            if run == 20 {
                // Then every answer: a split left behind (say 10 % on the
                // other color) fails here, 100 answers in a row at 90 %
                // being a 1-in-38,000 chance.
                for _ in 0..100 {
                    let got = try_get_via(&self.listen, &self.host, "/").await;
                    assert!(
                        got.as_ref().is_ok_and(|(_, body)| body == want),
                        "after 20 answers of {want:?}, {got:?}: traffic is still split"
                    );
                }
                return;
            }
        }
        panic!(
            "the proxy never served only {want:?} (last {last:?}); daemon log:\n{}",
            self.log_text()
        );
    }

    pub async fn until_serves(&self, want: &str, secs: u64) {
        let start = Instant::now();
        let mut last = Ok((0, String::new()));
        while start.elapsed() < Duration::from_secs(secs) {
            last = try_get_via(&self.listen, &self.host, "/").await;
            if last.as_ref().is_ok_and(|(_, body)| body == want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "proxy never served {want:?} (last {last:?}); daemon log:\n{}",
            self.log_text()
        );
    }

    /// Polls until the daemon log contains `text`, or fails after `secs`.
    pub async fn until_logged(&self, text: &str, secs: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.log_text().contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the daemon never logged {text:?}; log:\n{}", self.log_text());
    }

    /// The service's rollout record, as JSON, if any.
    pub fn rollout(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.state.join(format!("rollouts/{}.json", self.svc))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The phase of the rollout record: `step`, `verify`, `done`,
    /// `rolled_back`, with the step index for a step.
    pub fn phase(&self) -> Option<String> {
        let r = self.rollout()?;
        let phase = r["phase"]["phase"].as_str()?.to_string();
        Some(match r["phase"]["index"].as_u64() {
            Some(i) => format!("{phase} {i}"),
            None => phase,
        })
    }

    /// Polls until the rollout record is in `phase`, or fails after `secs`.
    pub async fn until_phase(&self, phase: &str, secs: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.phase().as_deref() == Some(phase) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the rollout never reached {phase:?} (now {:?}); log:\n{}",
            self.phase(),
            self.log_text()
        );
    }

    /// Waits (at most `secs`) until `/status` reports `color` holding
    /// `percent` of the service's traffic, as the proxy says. A rollout's
    /// record is written before traffic moves: checking every answer
    /// right after it may meet the old split.
    pub async fn until_weight(&self, color: &str, percent: u64, secs: u64) {
        let start = Instant::now();
        loop {
            let st = self.status().await;
            if st["services"][&self.svc]["weights"][color] == percent {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{color} never held {percent} % of the traffic: {st}\nlog:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /status` of the daemon, as JSON.
    pub async fn status(&self) -> serde_json::Value {
        let (code, body) = try_get_via(&self.api, "localhost", "/status")
            .await
            .expect("the status API answers");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `docker ps -a` of the service's containers in `format` (e.g.
    /// `{{.Names}} {{.Image}}`), one sorted line each.
    pub fn ps(&self, format: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=teal.service={}", self.svc),
                "--format",
                format,
            ])
            .output()
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
        lines.sort();
        lines
    }

    /// The managed proxy's dir.
    pub fn proxy_dir(&self) -> PathBuf {
        self.state.join("proxy")
    }

    /// The last lines of the managed proxy's own log (nginx's error.log or
    /// HAProxy's log), for a failure message.
    #[allow(dead_code)]
    pub fn proxy_log_tail(&self) -> String {
        let text = ["error.log", "haproxy.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.proxy_dir().join(f)).ok())
            .collect::<Vec<_>>()
            .join("\n");
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The pid recorded for the managed proxy.
    pub fn proxy_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.proxy_dir().join("managed.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["pid"].as_u64().map(|p| p as u32)
    }
}
