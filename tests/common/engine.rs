//! Extra Docker engines on this machine, to play the hosts of a fleet:
//! each has its own bridge, address pool, data root and socket, and is
//! removed with everything it ran on drop. Needs root, `ip` and `dockerd`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Engine {
    pub socket: PathBuf,
    bridge: String,
    exec_root: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

fn sh(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (these tests need root, iproute2 and dockerd)"))
}

/// A /24 for the bridge and a /16 pool that nothing on this machine routes yet.
fn free_ranges() -> (u8, u8) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = String::from_utf8_lossy(&sh(Command::new("ip").args(["-4", "route"])).stdout).into_owned();
    loop {
        let k = (NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id()) % 40;
        let (bridge, pool) = (100 + k as u8, 150 + k as u8);
        let used = routes.contains(&format!("10.{bridge}.")) || routes.contains(&format!("10.{pool}."));
        if !used {
            return (bridge, pool);
        }
    }
}

/// dockerd on `dir`'s config, data root and socket, logging to
/// `dir/dockerd.log` (appended, so a restart keeps the first run's log).
fn spawn_dockerd(
    dir: &std::path::Path,
    config: &str,
    exec_root: &std::path::Path,
    bridge: &str,
) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dockerd.log"))
        .unwrap();
    Command::new("dockerd")
        .arg("--config-file")
        .arg(dir.join(config))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(exec_root)
        .arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .args(["-b", bridge, "--iptables=false", "--ip-masq=false"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("dockerd is installed")
}

/// Whether this machine has an interface named docker0 (the main engine's bridge).
fn docker0_exists() -> bool {
    sh(Command::new("ip").args(["link", "show", "docker0"]))
        .status
        .success()
}

impl Engine {
    /// Starts a dockerd with its own bridge and pool; waits until it answers.
    pub fn start() -> Engine {
        Engine::start_with(false)
    }

    /// `start`, with `live-restore` as a production host sets it: a
    /// restart of dockerd leaves the containers running.
    pub fn start_live_restore() -> Engine {
        Engine::start_with(true)
    }

    fn start_with(live_restore: bool) -> Engine {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let (b, p) = free_ranges();
        let bridge = format!("tb{}x{n}", std::process::id() % 100_000);
        let dir = tempfile::tempdir().unwrap();
        let exec_root = PathBuf::from(format!("/tmp/te-{}-{n}", std::process::id()));
        let ok = sh(Command::new("ip").args(["link", "add", &bridge, "type", "bridge"]))
            .status
            .success()
            && sh(Command::new("ip").args(["addr", "add", &format!("10.{b}.1.1/24"), "dev", &bridge]))
                .status
                .success()
            && sh(Command::new("ip").args(["link", "set", &bridge, "up"]))
                .status
                .success();
        assert!(ok, "could not create bridge {bridge}: these tests need root");
        let config = dir.path().join("daemon.json");
        std::fs::write(
            &config,
            format!("{{\"default-address-pools\":[{{\"base\":\"10.{p}.0.0/16\",\"size\":24}}],\"live-restore\":{live_restore}}}"),
        )
        .unwrap();
        let socket = dir.path().join("docker.sock");
        // On a restart, no address pools: a dockerd that starts with
        // `default-address-pools` on a data root holding its former
        // default network deletes the interface named docker0 (moby's
        // initNetworkController, "clear stale bridge network"), and on
        // this machine that is the main engine's bridge. The pool is only
        // for networks made later; the restarted engine keeps the ones it has.
        std::fs::write(
            dir.path().join("restart.json"),
            format!("{{\"live-restore\":{live_restore}}}"),
        )
        .unwrap();
        let child = spawn_dockerd(dir.path(), "daemon.json", &exec_root, &bridge);
        let mut e = Engine {
            socket,
            bridge,
            exec_root,
            child,
            _dir: dir,
        };
        if let Err(log) = e.wait_answers() {
            panic!("dockerd did not start:\n{log}");
        }
        e
    }

    /// Waits (at most 30 s) until the engine answers; `Err` with its log.
    fn wait_answers(&mut self) -> Result<(), String> {
        let start = Instant::now();
        while !self.docker(&["info"]).status.success() {
            if start.elapsed() > Duration::from_secs(30) || self.child_running() == Some(false) {
                return Err(std::fs::read_to_string(self._dir.path().join("dockerd.log")).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Whether dockerd still runs (`None`: cannot tell).
    fn child_running(&mut self) -> Option<bool> {
        self.child.try_wait().ok().map(|s| s.is_none())
    }

    /// Starts the engine again after `stop`, on the same data root, bridge
    /// and socket, as a machine that boots again does: it comes back with
    /// its images and its swarm membership. `Err` with dockerd's log when
    /// it does not answer within 30 s.
    pub fn restart(&mut self) -> Result<(), String> {
        self.restart_from("restart.json")
    }

    /// `restart`, but this once without live-restore, as on a host that
    /// does not set it: the containers do not survive it, and the started
    /// engine starts those whose restart policy says so. It comes back
    /// with live-restore on again (a reload of its config, SIGHUP): left
    /// off, every later `restart` would be a cold one too, and the soak
    /// blamed teal for what a cold restart costs (it found this).
    #[allow(dead_code)]
    pub fn restart_cold(&mut self) -> Result<(), String> {
        let cold = self._dir.path().join("cold.json");
        std::fs::write(&cold, "{\"live-restore\":false}").unwrap();
        self.restart_from("cold.json")?;
        std::fs::write(&cold, "{\"live-restore\":true}").unwrap();
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
        let start = Instant::now();
        loop {
            let out = self.docker(&["info", "--format", "{{.LiveRestoreEnabled}}"]);
            if String::from_utf8_lossy(&out.stdout).trim() == "true" {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err("dockerd did not turn live-restore on again after SIGHUP".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn restart_from(&mut self, config: &str) -> Result<(), String> {
        if self.child_running() != Some(false) {
            self.stop();
        }
        let docker0 = docker0_exists();
        self.child = spawn_dockerd(self._dir.path(), config, &self.exec_root, &self.bridge);
        self.wait_answers()?;
        if docker0 && !docker0_exists() {
            return Err("the restarted dockerd deleted this machine's docker0: recreate it (ip link add docker0 type bridge ...)".into());
        }
        Ok(())
    }

    /// `unix:///.../docker.sock`, for `docker.host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        sh(Command::new("docker").arg("-H").arg(self.host()).args(args))
    }

    /// Copies an image from the machine's engine (no registry needed).
    pub fn load(&self, tag: &str) {
        let mut save = Command::new("docker")
            .args(["save", tag])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let ok = Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .arg("load")
            .stdin(save.stdout.take().unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(save.wait().unwrap().success() && ok, "docker save | load of {tag}");
    }

    /// Names and images of the containers of `service`.
    pub fn containers(&self, service: &str) -> Vec<(String, String)> {
        let out = self.docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=teal.service={service}"),
            "--format",
            "{{.Names}} {{.Image}}",
        ]);
        let mut v: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(n, i)| (n.to_string(), i.to_string())))
            .collect();
        v.sort();
        v
    }

    /// The bridge's IPv4 address (the engine's address on this machine).
    pub fn addr(&self) -> String {
        let out = sh(Command::new("ip").args(["-4", "-o", "addr", "show", &self.bridge]));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let cidr = text
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or("");
        cidr.split('/').next().unwrap_or("").to_string()
    }

    /// Stops the engine as a machine that shuts down does: SIGTERM, and
    /// dockerd stops its containers on the way out (a SIGKILL would leave
    /// them running under orphaned shims). Drop removes what is left.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Tasks this engine's containerd runs that Docker does not: a shim
    /// with processes for a container Docker does not say runs (what a
    /// dockerd stopped mid-start leaves, holding the container's
    /// address). One line each: shim pid, container id, its processes.
    pub fn lost_tasks(&self) -> Vec<String> {
        let out = self.docker(&["ps", "-q", "--no-trunc", "--filter", "status=running"]);
        let running = String::from_utf8_lossy(&out.stdout).to_string();
        self.processes()
            .into_iter()
            .filter_map(|(pid, argv)| {
                let id = argv.windows(2).find(|w| w[0] == "-id").map(|w| w[1].clone())?;
                let tasks = teal::drivers::managed::process::children(pid);
                (argv[0].contains("containerd-shim") && !tasks.is_empty() && !running.contains(&id))
                    .then(|| format!("shim {pid} of container {id} with processes {tasks:?}"))
            })
            .collect()
    }

    /// This engine's processes (dockerd, containerd, shims): pid and argv.
    fn processes(&self) -> Vec<(u32, Vec<String>)> {
        let root = self.exec_root.display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let argv = teal::drivers::managed::process::argv(pid)?;
                argv.iter().any(|a| a.contains(&root)).then_some((pid, argv))
            })
            .collect()
    }

    /// The bridge's name, to check it is gone after drop.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        let _ = self.docker(&["network", "prune", "-f"]);
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What outlives dockerd: containerd's shims (of tasks Docker
        // lost, or of containers a cold restart left) and their processes.
        for (pid, _) in self.processes() {
            for p in teal::drivers::managed::process::children(pid).into_iter().chain([pid]) {
                teal::drivers::managed::process::signal(p as i32, libc::SIGKILL);
            }
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).output();
        let _ = std::fs::remove_dir_all(&self.exec_root);
    }
}
