//! The machine's engine as a Swarm manager for the swarm tests, the
//! engines that join it, and waits on what the daemon serves. Every test
//! that uses the swarm holds a `SwarmGuard` from start to end: it keeps
//! the tests of all processes on this machine off the swarm meanwhile.

use std::process::Command;
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::host::TestHost;
use super::{get_via, try_get_via};

/// The machine's engine as a one-node swarm manager while any test of
/// this binary needs it: the first one in makes the swarm when the engine
/// is in none, the last one out leaves it again (only if a test made it).
/// Each test's services are removed when its guard drops.
pub struct SwarmGuard {
    pub services: Vec<String>,
    /// Shared with the other one-node tests of this binary, or held alone
    /// by a test that adds nodes (whose tasks Swarm could otherwise place
    /// on a node that test then deletes, orphaning them).
    _nodes: Nodes,
}

enum Nodes {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

/// One-node tests share the swarm; a test that adds nodes has it alone.
static NODES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// (tests holding the swarm, whether a test made it, the lock that keeps
/// other test processes off this engine's swarm meanwhile).
static SWARM: std::sync::Mutex<(u32, bool, Option<std::fs::File>)> = std::sync::Mutex::new((0, false, None));

/// Shared by every process that runs these tests on this machine (two
/// checkouts, a bench): one at a time makes, uses and leaves the swarm.
const SWARM_LOCK: &str = "/tmp/teal-swarm-tests.lock";

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl SwarmGuard {
    pub fn join(service: &str) -> SwarmGuard {
        let nodes = Nodes::Shared(NODES.read().unwrap_or_else(|e| e.into_inner()));
        SwarmGuard::enter(service, nodes)
    }

    /// `join`, with no other test of this binary on the swarm meanwhile:
    /// for a test that adds (and removes) nodes.
    pub fn join_alone(service: &str) -> SwarmGuard {
        let nodes = Nodes::Alone(NODES.write().unwrap_or_else(|e| e.into_inner()));
        SwarmGuard::enter(service, nodes)
    }

    fn enter(service: &str, nodes: Nodes) -> SwarmGuard {
        let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        if held.2.is_none() {
            let f = std::fs::File::create(SWARM_LOCK).expect("create the swarm tests' lock file");
            f.lock().expect("lock the swarm tests' lock file");
            held.2 = Some(f);
        }
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state != "active" {
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
            held.1 = true;
        }
        held.0 += 1;
        let manager = docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
        assert_eq!(manager, "true", "this engine is in a swarm, but not as a manager");
        SwarmGuard {
            services: vec![format!("{service}-blue"), format!("{service}-green")],
            _nodes: nodes,
        }
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        let mut args = vec!["service", "rm"];
        args.extend(self.services.iter().map(String::as_str));
        let _ = Command::new("docker").args(&args).output();
        let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0 && held.1 {
            let _ = Command::new("docker").args(["swarm", "leave", "--force"]).output();
            held.1 = false;
        }
        if held.0 == 0 {
            held.2 = None;
        }
    }
}

/// The daemon's host config: swarm mode, a managed HAProxy, fast polls.
pub fn swarm_config(h: &TestHost, docker_host: Option<&str>) {
    let host = docker_host.map(|d| format!(", host: '{d}'")).unwrap_or_default();
    std::fs::write(
        &h.config,
        format!(
            "repo: {{url: {}, poll: 300ms}}\ndocker: {{network: {}, mode: swarm{host}}}\nproxy:\n  kind: haproxy\n  listen: {}\n  managed: true\nstate_dir: {}\nlisten: {}\nimages: {{keep: 100}}\n",
            h.bare.display(),
            h.network,
            h.listen,
            h.state.display(),
            h.api
        ),
    )
    .unwrap();
}

/// `docker service inspect` of one field of one color's service.
pub fn inspect(service: &str, format: &str) -> String {
    docker(&["service", "inspect", service, "--format", format])
}

pub async fn until(what: &str, secs: u64, h: &TestHost, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within {secs}s; daemon log:\n{}", h.log_text());
}

/// Every request of `n` through the proxy answers 200 with `want`.
pub async fn all_serve(h: &TestHost, want: &str, n: usize) {
    for i in 0..n {
        let got = get_via(&h.listen, &h.host, "/").await;
        assert_eq!(got, (200, want.to_string()), "request {i} of {n}");
    }
}

/// Waits (at most `secs`) until 10 requests in a row answer `want`.
pub async fn until_only(h: &TestHost, want: &str, secs: u64) {
    let start = Instant::now();
    loop {
        let mut ok = true;
        for _ in 0..10 {
            ok &= matches!(try_get_via(&h.listen, &h.host, "/").await, Ok((200, b)) if b == want);
        }
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "the proxy never served only {want:?}; log:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A second engine on this machine joined to the swarm as a worker; on
/// drop it leaves and the manager forgets it.
pub struct Worker {
    pub engine: Engine,
    pub id: String,
}

impl Worker {
    pub fn join() -> Worker {
        let engine = Engine::start();
        let token = docker(&["swarm", "join-token", "-q", "worker"]);
        let manager = docker(&["info", "--format", "{{.Swarm.NodeAddr}}"]);
        let addr = engine.addr();
        // Its own listen address: the manager holds 2377 and 7946 on every
        // address of this machine. (Its gossip port still clashes, so
        // overlay networks would not work across the two; teal needs none:
        // tasks publish their port on their node.)
        let out = engine.docker(&[
            "swarm",
            "join",
            "--token",
            &token,
            "--advertise-addr",
            &addr,
            "--listen-addr",
            &format!("{addr}:2377"),
            &format!("{manager}:2377"),
        ]);
        assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
        let out = engine.docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Worker { engine, id }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["swarm", "leave", "--force"]);
        let _ = Command::new("docker")
            .args(["node", "rm", "--force", &self.id])
            .output();
    }
}

/// A second engine on this machine joined to the swarm as a manager. Two
/// managers make a quorum of two: while either engine is stopped, the
/// swarm has no leader.
///
/// On drop (a failed test too) quorum is brought back if it can be (the
/// engine started again), the second manager is demoted, leaves, and the
/// swarm forgets it; when no leader comes back, the main engine forces a
/// new one-manager cluster instead. Either way the main engine is left a
/// one-manager swarm, for its `SwarmGuard` to leave if it made it.
pub struct SecondManager {
    pub engine: Engine,
    pub id: String,
}

impl SecondManager {
    pub fn join() -> SecondManager {
        let token = docker(&["swarm", "join-token", "-q", "manager"]);
        let manager = docker(&["info", "--format", "{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}"]);
        let manager = manager
            .split_whitespace()
            .next()
            .expect("a manager address")
            .to_string();
        let engine = Engine::start();
        let addr = engine.addr();
        // A port of its own: a manager listens for its peers, and the main
        // engine holds 2377 on every address of this machine.
        let port = std::net::TcpListener::bind((addr.as_str(), 0))
            .and_then(|l| l.local_addr())
            .expect("a free port on the engine's bridge")
            .port();
        let at = format!("{addr}:{port}");
        // From here on, drop cleans up whatever the join got to.
        let mut m = SecondManager {
            engine,
            id: String::new(),
        };
        let out = m.engine.docker(&[
            "swarm",
            "join",
            "--token",
            &token,
            "--advertise-addr",
            &at,
            "--listen-addr",
            &at,
            &manager,
        ]);
        // A busy manager may answer before the join is done ("will
        // continue in the background"): then wait for it.
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() || (said.contains("continue in the background") && within(60, || m.is_manager())),
            "join as a manager: {said}"
        );
        m.id = m.node_id();
        let start = Instant::now();
        while reachable_managers() < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the second manager never became reachable: {}",
                docker(&["node", "ls"])
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        m
    }

    fn node_id(&self) -> String {
        let out = self.engine.docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Whether this engine still counts as a manager.
    fn is_manager(&self) -> bool {
        let out = self.engine.docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }
}

/// Managers the main engine sees as leader or reachable (0 without a leader).
pub fn reachable_managers() -> usize {
    let out = Command::new("docker")
        .args([
            "node",
            "ls",
            "--filter",
            "role=manager",
            "--format",
            "{{.ManagerStatus}}",
        ])
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| matches!(l.trim(), "Leader" | "Reachable"))
            .count()
    })
    .unwrap_or(0)
}

/// Polls `ok` every 200 ms for at most `secs`; whether it came true.
fn within(secs: u64, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Whether the main engine's swarm has a leader (it answers `node ls`).
fn has_leader() -> bool {
    Command::new("docker")
        .args(["node", "ls", "-q"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `docker swarm init --force-new-cluster` on the main engine: a swarm of
/// itself alone, keeping its services, when its peers are not coming back.
fn force_new_cluster() {
    let out = Command::new("docker")
        .args(["swarm", "init", "--force-new-cluster"])
        .output();
    eprintln!("no leader came back: docker swarm init --force-new-cluster: {out:?}");
}

impl Drop for SecondManager {
    fn drop(&mut self) {
        if self.id.is_empty() {
            self.id = self.node_id();
        }
        if !self.engine.docker(&["info"]).status.success() {
            if let Err(log) = self.engine.restart() {
                eprintln!("the second manager's engine did not start again:\n{log}");
            }
        }
        // Demoted first, and only then gone: a manager that leaves stays a
        // member of the quorum, and the main engine alone would lose it.
        let demoted = !self.id.is_empty()
            && within(90, has_leader)
            && Command::new("docker")
                .args(["node", "demote", &self.id])
                .output()
                .is_ok_and(|o| o.status.success())
            && within(60, || !self.is_manager() && managers() == 1);
        if demoted {
            let _ = self.engine.docker(&["swarm", "leave", "--force"]);
        } else {
            // Its data root goes with it on drop: no need to leave.
            self.engine.stop();
            force_new_cluster();
        }
        if !self.id.is_empty() {
            within(30, || {
                Command::new("docker")
                    .args(["node", "rm", "--force", &self.id])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        }
        if !within(30, has_leader) {
            force_new_cluster();
        }
    }
}

/// The managers of the main engine's swarm, as it counts them.
fn managers() -> usize {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.Swarm.Managers}}"])
        .output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}
