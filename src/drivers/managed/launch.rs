//! Starting a managed nginx or HAProxy from its files in the managed dir,
//! and building the driver that talks to a running one. A start from
//! existing files serves the routes they record (a proxy that crashed
//! comes back as it was); the first start serves nothing.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{account, ManagedSpec};
use crate::config::{NginxSwitch, ProxyKind};
use crate::drivers::haproxy::{render, Haproxy, HaproxyConfig};
use crate::drivers::nginx::balancer::Balancer;
use crate::drivers::nginx::{Nginx, NginxConfig};
use crate::drivers::proxy::ProxyDriver;
use crate::drivers::reload::config_token;
use crate::drivers::route::ProxyError;

/// The path of an installed binary, or an error saying what to install.
pub fn find(binary: &str) -> Result<String, ProxyError> {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return Ok(p.display().to_string());
        }
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

/// Starts the proxy of `spec` from its files and waits until it listens.
/// The process gets its own process group: a Ctrl-C at teal's terminal
/// reaches teal, which then stops the proxy itself.
pub(super) fn spawn(spec: &ManagedSpec) -> Result<Child, ProxyError> {
    std::fs::create_dir_all(&spec.dir).map_err(io(&spec.dir))?;
    let (mut cmd, log) = match spec.kind {
        ProxyKind::Nginx => nginx_command(spec)?,
        ProxyKind::Haproxy => haproxy_command(spec)?,
    };
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(io(Path::new(cmd.get_program())))?;
    if let Err(e) = wait_listening(&spec.listen, &mut child, &log) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    if spec.kind == ProxyKind::Nginx {
        wait_pid_file(&spec.dir.join("nginx.pid"));
    }
    Ok(child)
}

/// nginx may answer before its pid file holds the pid, and `nginx -s
/// reload` then fails ("invalid PID number"): wait for it (seen once in
/// CI), at most 2 s; a reload still says what is wrong past that.
fn wait_pid_file(path: &Path) {
    for _ in 0..80 {
        if std::fs::read_to_string(path).is_ok_and(|t| t.trim().parse::<u32>().is_ok()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The driver for the running proxy of `spec`. It finds the master through
/// the pid file, so it stays valid when the proxy is started again.
pub(super) fn driver(spec: &ManagedSpec) -> Result<ProxyDriver, ProxyError> {
    Ok(match spec.kind {
        ProxyKind::Nginx => ProxyDriver::Nginx(nginx(spec)?),
        // Master-worker: SIGUSR2 to the master (its pid is in the pid
        // file) reloads seamlessly: the listening sockets pass to the new
        // worker.
        ProxyKind::Haproxy => ProxyDriver::Haproxy(Haproxy::new(HaproxyConfig {
            reload: vec![
                "pkill".into(),
                "-USR2".into(),
                "-F".into(),
                spec.dir.join("haproxy.pid").display().to_string(),
            ],
            ..haproxy_config(spec)?
        })),
    })
}

/// The driver of the managed nginx: its own files, `nginx -t` and a
/// reload of the master named by the pid file.
fn nginx(spec: &ManagedSpec) -> Result<Nginx, ProxyError> {
    let bin = find("nginx")?;
    let base = vec![
        bin,
        "-p".into(),
        spec.dir.display().to_string(),
        "-c".into(),
        spec.config_path().display().to_string(),
    ];
    let mut test = base.clone();
    test.insert(1, "-t".into());
    test.insert(2, "-q".into());
    let mut reload = base;
    reload.extend(["-s".into(), "reload".into()]);
    Ok(Nginx::new(NginxConfig {
        conf_dir: spec.dir.join("conf.d"),
        test,
        reload,
        listen: spec.listen.clone(),
        client_keepalive: spec.client_keepalive,
        balancer: (spec.switch == NginxSwitch::Balancer).then(|| Balancer::in_dir(&spec.dir)),
        https: spec.https.clone(),
    }))
}

pub(super) fn haproxy_config(spec: &ManagedSpec) -> Result<HaproxyConfig, ProxyError> {
    Ok(HaproxyConfig {
        config: spec.config_path(),
        socket: spec.dir.join("admin.sock"),
        reload: vec![],
        listen: spec.listen.clone(),
        https: spec.https.clone(),
        tls: crate::drivers::haproxy::TlsFiles {
            dir: spec.dir.join("tls"),
        },
        binary: find("haproxy")?,
        // Never two proxies on one address: without SO_REUSEPORT a second
        // HAProxy on this port fails to bind instead of sharing it. The
        // master stays root (it re-executes itself on a reload); the
        // workers switch to the user.
        global: [
            vec![
                format!("pidfile {}", spec.dir.join("haproxy.pid").display()),
                "noreuseport".into(),
            ],
            account::worker_account(spec)?
                .map(|a| vec![format!("user {}", a.name), format!("group {}", a.group)])
                .unwrap_or_default(),
        ]
        .concat(),
    })
}

/// Renders `teal.cfg` from the routes it already records (none at first)
/// with the current settings, and the command that serves it.
fn haproxy_command(spec: &ManagedSpec) -> Result<(Command, PathBuf), ProxyError> {
    let cfg = haproxy_config(spec)?;
    let haproxy = Haproxy::new(cfg.clone());
    let (routes, _) = haproxy.read_routes()?;
    haproxy.write_maps(&routes)?;
    let config = spec.config_path();
    std::fs::write(&config, render(&routes, &cfg, &config_token())).map_err(io(&config))?;
    let log = spec.dir.join("haproxy.log");
    let logf = std::fs::File::create(&log).map_err(io(&log))?;
    let mut cmd = Command::new(&cfg.binary);
    cmd.args(["-W", "-db", "-f"]).arg(&config).stderr(logf);
    Ok((cmd, log))
}

fn nginx_command(spec: &ManagedSpec) -> Result<(Command, PathBuf), ProxyError> {
    let bin = find("nginx")?;
    for d in [spec.dir.join("conf.d"), spec.dir.join("tmp")] {
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let conf = spec.config_path();
    std::fs::write(&conf, nginx_conf(spec)?).map_err(io(&conf))?;
    // A killed nginx leaves its unix socket behind, and a new one cannot
    // bind over it. The proxy of this dir is not running (the caller
    // checked), so the file is stale.
    let _ = std::fs::remove_file(Balancer::in_dir(&spec.dir).socket);
    // Errors before nginx opens its error_log go to stderr: the same file.
    let log = spec.dir.join("error.log");
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(&log))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("-p")
        .arg(&spec.dir)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stderr(logf);
    Ok((cmd, log))
}

/// Where Debian keeps nginx's dynamic modules.
const MODULE_DIRS: [&str; 2] = ["/usr/lib/nginx/modules", "/usr/share/nginx/modules"];

/// The `load_module` lines the balancer needs (NDK first: the Lua module
/// depends on it), or the error naming the packages to install.
pub fn lua_modules() -> Result<String, ProxyError> {
    let mut lines = String::new();
    for module in ["ndk_http_module.so", "ngx_http_lua_module.so"] {
        let Some(path) = MODULE_DIRS
            .iter()
            .map(|d| Path::new(d).join(module))
            .find(|p| p.exists())
        else {
            return Err(ProxyError::NoLua {
                detail: format!("{module} is not in {}", MODULE_DIRS.join(" or ")),
            });
        };
        lines.push_str(&format!("load_module {};\n", path.display()));
    }
    Ok(lines)
}

/// The managed nginx.conf: teal's files in `conf.d`. The workers run as
/// an unprivileged user who may not reach the dir (the balancer keeps it
/// 0700), so they write no files: request bodies stream to the app and
/// responses are never buffered to disk (the temp paths stay unused).
fn nginx_conf(spec: &ManagedSpec) -> Result<String, ProxyError> {
    let modules = match spec.switch {
        NginxSwitch::Balancer => lua_modules()?,
        NginxSwitch::Reload => String::new(),
    };
    let d = spec.dir.display();
    let user = match account::worker_account(spec)? {
        Some(a) => format!("user {} {};\n", a.name, a.group),
        None => String::new(),
    };
    let listen = &spec.listen;
    Ok(format!(
        "{modules}{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n    fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n    proxy_request_buffering off;\n    proxy_max_temp_file_size 0;\n    keepalive_requests 100000;\n    server {{ listen {listen} default_server; return 404 \"no teal route for this host\\n\"; }}\n    include {d}/conf.d/teal*.conf;\n}}\n"
    ))
}

/// `nginx -t`, then a reload, of the managed nginx's files as they are.
pub(super) async fn reload_nginx(spec: &ManagedSpec) -> Result<(), ProxyError> {
    nginx(spec)?.reload_checked().await
}

/// Rewrites the managed nginx.conf for the current settings (a changed
/// listen address), for a reload of an adopted nginx.
pub(super) fn rewrite_nginx_conf(spec: &ManagedSpec) -> Result<(), ProxyError> {
    let conf = spec.config_path();
    std::fs::write(&conf, nginx_conf(spec)?).map_err(io(&conf))
}

/// Waits until the proxy answers HTTP on `listen`, or the child exits
/// (then its log says why). An accepted connection is not enough: nginx
/// binds its TCP port before it has finished starting, and may still fail.
fn wait_listening(listen: &str, child: &mut Child, log: &Path) -> Result<(), ProxyError> {
    let what = child.id();
    for _ in 0..200 {
        if answers_http(&crate::drivers::reload::loopback(listen)) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            if log.contains("resty.core") || log.contains("lua") && log.contains("failed to load") {
                return Err(ProxyError::NoLua {
                    detail: log.lines().last().unwrap_or("").trim().to_string(),
                });
            }
            return Err(ProxyError::Other(format!(
                "the proxy (pid {what}) exited ({status}) before listening on {listen}: {}",
                log.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(ProxyError::Other(format!(
        "the proxy (pid {what}) did not listen on {listen} within 5s"
    )))
}

fn answers_http(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let req = format!(
        "GET / HTTP/1.0\r\nHost: {}\r\n\r\n",
        crate::drivers::reload::CONFIG_HOST
    );
    let mut head = [0u8; 8];
    s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
