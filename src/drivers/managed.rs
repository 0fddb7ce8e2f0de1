//! Proxies that teal starts and owns (`proxy.managed: true`): for `teal
//! demo` and the tests. An unprivileged nginx or HAProxy on its own config
//! dir, listening where asked, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::haproxy::{Haproxy, HaproxyConfig};
use super::nginx::{Nginx, NginxConfig};
use super::proxy::{ProxyDriver, ProxyError};

/// A running proxy process and the driver that manages it.
pub struct Managed {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Managed {
    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub(crate) fn find(binary: &str) -> Result<String, ProxyError> {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return Ok(p.display().to_string());
        }
    }
    if Command::new(binary)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return Ok(binary.to_string());
    }
    Err(ProxyError::Other(format!(
        "{binary} is not installed: install it with `apt-get install -y {}`",
        if binary == "nginx" { "nginx-light" } else { "haproxy" }
    )))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ProxyError + '_ {
    move |source| ProxyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Waits until something accepts connections on `listen`.
fn wait_listening(listen: &str, child: &mut Child, what: &str, log: &Path) -> Result<(), ProxyError> {
    for _ in 0..100 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(ProxyError::Other(format!(
                "{what} exited ({status}) before listening on {listen}: {log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ProxyError::Other(format!(
        "{what} did not listen on {listen} within 5s"
    )))
}

/// Starts nginx with its own prefix in `dir`, serving teal's files from
/// `dir/conf.d` on `listen` (e.g. `127.0.0.1:8080`).
pub fn start_nginx(dir: &Path, listen: &str) -> Result<(Managed, ProxyDriver), ProxyError> {
    start_nginx_with(dir, listen, true)
}

/// `start_nginx`, choosing whether client connections are kept alive.
pub fn start_nginx_with(
    dir: &Path,
    listen: &str,
    client_keepalive: bool,
) -> Result<(Managed, ProxyDriver), ProxyError> {
    let bin = find("nginx")?;
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).map_err(io(&conf_d))?;
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    // Running as root, nginx would switch workers to `nobody`, who cannot
    // write the temp paths in `dir`: keep the workers as this user.
    let user = if is_root() { "user root;\n" } else { "" };
    let text = format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n    fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n    keepalive_requests 100000;\n    server {{ listen {listen} default_server; return 404 \"no teal route for this host\\n\"; }}\n    include {}/teal-*.conf;\n}}\n",
        conf_d.display()
    );
    std::fs::create_dir_all(dir.join("tmp")).map_err(io(dir))?;
    std::fs::write(&conf, text).map_err(io(&conf))?;
    let base = vec![
        bin.clone(),
        "-p".into(),
        d.to_string(),
        "-c".into(),
        conf.display().to_string(),
    ];
    let log = dir.join("error.log");
    let mut child = Command::new(&bin)
        .args(&base[1..])
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io(Path::new(&bin)))?;
    wait_listening(listen, &mut child, "nginx", &log)?;
    let mut test = base.clone();
    test.insert(1, "-t".into());
    test.insert(2, "-q".into());
    let mut reload = base;
    reload.extend(["-s".into(), "reload".into()]);
    let driver = Nginx::new(NginxConfig {
        conf_dir: conf_d,
        test,
        reload,
        listen: listen.to_string(),
        client_keepalive,
    });
    Ok((
        Managed {
            child,
            dir: dir.to_path_buf(),
        },
        ProxyDriver::Nginx(driver),
    ))
}

/// Starts HAProxy in master-worker mode with its config in `dir`, its stats
/// socket at `dir/admin.sock`, listening on `listen`.
pub async fn start_haproxy(dir: &Path, listen: &str) -> Result<(Managed, ProxyDriver), ProxyError> {
    let bin = find("haproxy")?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config = dir.join("teal.cfg");
    let pidfile = dir.join("haproxy.pid");
    let cfg = HaproxyConfig {
        config: config.clone(),
        socket: dir.join("admin.sock"),
        reload: vec![],
        listen: listen.to_string(),
        binary: bin.clone(),
        global: vec![format!("pidfile {}", pidfile.display())],
    };
    // An empty routing table to start from.
    let text = super::haproxy::render(&Default::default(), &cfg, "initial");
    std::fs::write(&config, text).map_err(io(&config))?;
    let log = dir.join("haproxy.log");
    let logf = std::fs::File::create(&log).map_err(io(&log))?;
    let mut child = Command::new(&bin)
        .args(["-W", "-db", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .map_err(io(Path::new(&bin)))?;
    wait_listening(listen, &mut child, "haproxy", &log)?;
    // Master-worker: SIGUSR2 to the master reloads seamlessly (the
    // listening sockets pass to the new worker).
    let cfg = HaproxyConfig {
        reload: vec!["kill".into(), "-USR2".into(), child.id().to_string()],
        ..cfg
    };
    Ok((
        Managed {
            child,
            dir: dir.to_path_buf(),
        },
        ProxyDriver::Haproxy(Haproxy::new(cfg)),
    ))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
