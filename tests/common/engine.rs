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

impl Engine {
    /// Starts a dockerd with its own bridge and pool; waits until it answers.
    pub fn start() -> Engine {
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
            format!("{{\"default-address-pools\":[{{\"base\":\"10.{p}.0.0/16\",\"size\":24}}]}}"),
        )
        .unwrap();
        let socket = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .args(["-b", &bridge, "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd is installed");
        let e = Engine {
            socket,
            bridge,
            exec_root,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        while !e.docker(&["info"]).status.success() {
            let log = std::fs::read_to_string(e._dir.path().join("dockerd.log")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dockerd did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        e
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
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).output();
        let _ = std::fs::remove_dir_all(&self.exec_root);
    }
}
