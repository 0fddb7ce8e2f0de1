//! The soak's invariants: every service converges to the branch head (a
//! bad commit is held at the last good one, with a reason), the proxy
//! serves what the repo says, Docker runs exactly what it declares, the
//! event log is whole (every line an event, and a deploy line for each good
//! commit that changed a service), no temp file is left, one proxy runs, and the
//! rollout records agree with what serves.

use std::time::{Duration, Instant};

use super::model::{serves, Action};
use super::Soak;
use crate::common::process::processes_of;
use crate::common::{git_in, try_get_via};

impl Soak {
    async fn status(&self) -> Result<serde_json::Value, String> {
        let (code, body) = try_get_via(&self.host.api, "localhost", "/status")
            .await
            .map_err(|e| format!("status API: {e}"))?;
        if code != 200 {
            return Err(format!("status API: {code} {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("status API: {e}: {body}"))
    }

    /// Waits until the host holds the bad commit of `action` on `svc` at
    /// the last good state and says why; the time it took since `since`.
    pub(super) async fn until_held(&mut self, action: Action, svc: usize, since: Instant) -> Option<Duration> {
        let head = git_in(&self.host.work, &["rev-parse", "HEAD"]);
        let name = self.services[svc].name.clone();
        let mut last = String::new();
        while since.elapsed() < self.cfg.bound {
            // A replica killed meanwhile comes back while the head is bad:
            // the host keeps the last good state running, not just routed.
            let held = match self.held(action, &name, &head).await {
                Ok(why) => self.serving().await.map(|()| why),
                Err(e) => Err(e),
            };
            match held {
                Ok(_) => return Some(since.elapsed()),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let scene = self.scene(&last).await;
        self.violation(format!(
            "did not hold {head:.8} at the last good state with a reason within {:?}: {last}\n{scene}",
            self.cfg.bound
        ));
        None
    }

    /// The reason the host gives for not deploying the head, if it gives one yet.
    async fn held(&self, action: Action, name: &str, head: &str) -> Result<String, String> {
        let status = self.status().await?;
        let s = &status["services"][name];
        let why = match action {
            Action::InvalidYaml if status["fetched_commit"].as_str() == Some(head) => {
                status["config_errors"].as_array().and_then(|e| e.first()).cloned()
            }
            Action::CanaryFail if s["rolled_back"]["commit"].as_str() == Some(head) => {
                Some(s["rolled_back"]["figures"].clone())
            }
            Action::BrokenImage | Action::Unhealthy if s["failed"].as_str() == Some(head) => {
                Some(s["last_deploy"]["error"].clone())
            }
            _ => None,
        };
        why.map(|w| w.to_string())
            .ok_or_else(|| format!("status of {name}: {s}; config errors: {}", status["config_errors"]))
    }

    /// Waits until everything converged; the time it took.
    pub(super) async fn until_converged(&mut self) -> Option<Duration> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < self.cfg.bound {
            match self.converged().await {
                Ok(()) => return Some(start.elapsed()),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let scene = self.scene(&last).await;
        self.violation(format!("not converged within {:?}: {last}\n{scene}", self.cfg.bound));
        None
    }

    async fn converged(&self) -> Result<(), String> {
        let head = git_in(&self.host.work, &["rev-parse", "HEAD"]);
        let status = self.status().await?;
        if status["applied_commit"].as_str() != Some(head.as_str()) {
            return Err(format!("applied {} but the head is {head}", status["applied_commit"]));
        }
        for s in &self.services {
            let live = &status["services"][&s.name]["live"];
            if live.as_str() != Some(s.good.active) {
                return Err(format!("{}: live {live}, want {}", s.name, s.good.active));
            }
        }
        self.containers()?;
        self.serving().await?;
        self.deploy_lines()
    }

    /// Every good commit that changed a service has its deploy line (one
    /// a full disk did not take is written by the next pass).
    fn deploy_lines(&self) -> Result<(), String> {
        let mut deployed = std::collections::BTreeSet::new();
        for f in teal::events::files(&self.host.state.join("events.jsonl")) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                if v["step"] == "deploy" && v["result"] == "ok" {
                    deployed.insert((v["service"].to_string(), v["commit"].to_string()));
                }
            }
        }
        for (service, commit) in &self.deploys {
            let key = (
                serde_json::json!(service).to_string(),
                serde_json::json!(commit).to_string(),
            );
            if !deployed.contains(&key) {
                return Err(format!("the event log has no deploy line of {service} at {commit:.8}"));
            }
        }
        Ok(())
    }

    /// Every service answers what its good file serves, 10 times in a row
    /// (a canary split left behind fails this).
    async fn serving(&self) -> Result<(), String> {
        for s in &self.services {
            let want = serves(&s.good);
            for _ in 0..10 {
                let got = try_get_via(&self.host.listen, &s.good.host, "/").await;
                if !got.as_ref().is_ok_and(|(c, b)| *c == 200 && *b == want) {
                    return Err(format!("{} answers {got:?}, want {want:?}", s.name));
                }
            }
        }
        Ok(())
    }

    /// Docker runs, per service, `replicas` running containers of each
    /// color the head declares, with its image, and nothing else of teal's.
    fn containers(&self) -> Result<(), String> {
        let out = self.docker(&[
            "ps",
            "-a",
            "--filter",
            "label=teal.service",
            "--format",
            "{{.Label \"teal.service\"}} {{.Label \"teal.color\"}} {{.Image}} {{.State}} {{.Names}}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        for s in &self.services {
            let mut have: Vec<String> = text
                .lines()
                .filter(|l| l.split(' ').next() == Some(s.name.as_str()))
                .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
                .collect();
            have.sort();
            let mut want = vec![];
            for color in ["blue", "green"] {
                if let Some(image) = s.head.image(color) {
                    for _ in 0..s.head.replicas {
                        want.push(format!("{} {color} {image} running", s.name));
                    }
                }
            }
            if have != want {
                return Err(format!("containers {have:?}, want {want:?}"));
            }
        }
        Ok(())
    }

    /// The checks that need no waiting, after every convergence.
    pub(super) fn check_invariants(&mut self) {
        let state = self.host.state.clone();
        let events = state.join("events.jsonl");
        let mut lines = 0;
        for f in teal::events::files(&events) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                lines += 1;
                if serde_json::from_str::<teal::events::Event>(line).is_err() {
                    self.violation(format!("{}:{}: not an event: {line:?}", f.display(), i + 1));
                }
            }
            if !text.is_empty() && !text.ends_with('\n') {
                self.violation(format!("{}: the last line is torn", f.display()));
            }
        }
        self.figures.event_lines = lines;
        for tmp in temp_files(&state) {
            self.violation(format!("a temp file is left: {}", tmp.display()));
        }
        let out = self.docker(&[
            "network",
            "ls",
            "--filter",
            "label=teal.managed=true",
            "--format",
            "{{.Name}}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut nets: Vec<&str> = text.lines().collect();
        if self.engine.is_none() {
            // The machine's engine has other tests' networks too.
            nets.retain(|n| *n == self.host.network);
        }
        if nets != [self.host.network.as_str()] {
            self.violation(format!("teal's networks are {nets:?}, want [{:?}]", self.host.network));
        }
        let groups = proxy_groups(&self.host.proxy_dir());
        if groups != 1 {
            self.violation(format!("{groups} proxy process groups run, want 1"));
        }
        // teal ends such a task when it removes its container.
        let lost = self.engine.as_ref().map(|e| e.lost_tasks()).unwrap_or_default();
        for task in lost {
            self.violation(format!("a task Docker lost still runs: {task}"));
        }
        for i in 0..self.services.len() {
            let (name, live) = (self.services[i].name.clone(), self.services[i].good.active);
            let path = state.join(format!("rollouts/{name}.json"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let r: serde_json::Value = match serde_json::from_str(&text) {
                Ok(r) => r,
                Err(e) => {
                    self.violation(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let serving_color = match r["phase"]["phase"].as_str() {
                Some("done") => &r["to"],
                Some("rolled_back") => &r["from"],
                other => {
                    self.violation(format!(
                        "{name}: the rollout record is in phase {other:?} after convergence"
                    ));
                    continue;
                }
            };
            if serving_color.as_str() != Some(live) {
                self.violation(format!(
                    "{name}: the rollout record says {serving_color} serves, {live} does"
                ));
            }
        }
    }
}

/// Files under `dir` with a temp name (`*.tmp`, `.tmp*`).
fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            out.extend(temp_files(&p));
        } else if name.ends_with(".tmp") || name.starts_with(".tmp") {
            out.push(p);
        }
    }
    out
}

/// Process groups of proxies started in `dir`.
fn proxy_groups(dir: &std::path::Path) -> usize {
    let mut groups: Vec<String> = processes_of(dir)
        .iter()
        .filter_map(|(pid, _)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some(stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.to_string())
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups.len()
}
