//! `teal demo`: a complete blue/green setup on this machine in one command.
//! Builds the demo app images locally (no registry), makes a config repo,
//! writes a host config for it (`<dir>/daemon.yaml`, so `teal status` and
//! `teal history` work beside it), starts a proxy teal owns on 127.0.0.1,
//! and runs the daemon in the foreground with its status API and
//! dashboard. `--clean` removes exactly what it created.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::config::{HostConfig, ProxyKind};
use crate::daemon::lock::StateLock;
use crate::daemon::Daemon;
use crate::drivers::docker::DockerDriver;
use crate::drivers::managed::{self, ManagedSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keeps its config repo and state.
    #[arg(long, default_value = "teal-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1 the demo proxy listens on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Proxy to use; default: HAProxy if installed, else nginx.
    #[arg(long, value_enum)]
    pub proxy: Option<ProxyKind>,
    /// Name of the demo's Docker network, image repository and owner label.
    #[arg(long, default_value = "teal-demo", value_name = "NAME")]
    pub name: String,
    /// Remove everything the demo created (containers, network, images, DIR) and exit.
    #[arg(long)]
    pub clean: bool,
}

/// Marks a directory as the demo's, so `--clean` never deletes anything else.
const MARKER: &str = ".teal-demo";
/// The status API's usual port; the demo takes the next free one after it.
const STATUS_PORT: u16 = 9470;

pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let docker = DockerDriver::connect(None, &args.name).await.context(
        "teal demo needs Docker: start it (`systemctl start docker` or `dockerd &`) and make sure you may use /var/run/docker.sock",
    )?;
    if args.clean {
        return clean(args, &docker).await;
    }
    let kind = args.proxy.map_or_else(pick_proxy, Ok)?;
    let service = if args.name == "teal-demo" {
        "demo".to_string()
    } else {
        args.name.clone()
    };
    let dir = prepare_dir(&args.dir)?;
    build_images(&docker, &args.name).await?;
    let repo = dir.join("config");
    if !repo.join(".git").exists() {
        make_repo(&repo, &service, &args.name)?;
    }
    // Before the host config is rewritten: a demo already running on this
    // directory keeps its own.
    let _lock = StateLock::acquire(&dir.join("state"))?;
    let status = status_listener().await?;
    let status_addr = status.local_addr()?;
    let config_path = args.dir.join("daemon.yaml");
    write_host_config(&config_path, &dir, &repo, kind, args, &status_addr.to_string())?;
    let config = HostConfig::load(&config_path)?;
    port_free_or_ours(&config, args.port)?;
    let state_dir = config.state_dir.clone();
    // Ctrl-C while the proxy starts still stops it (see the daemon).
    let shutdown = super::daemon::shutdown_on_signals();
    let (triggers, intake) = crate::daemon::scheduler::intake::channel();
    let mut daemon = Daemon::new(config).await?;
    super::daemon::serve_api(status, &daemon, triggers, None, state_dir, shutdown.clone())?;
    let teal = teal_command();
    let proxy_name = if kind == ProxyKind::Haproxy { "HAProxy" } else { "nginx" };
    let url = format!("http://localhost:{}/", args.port);
    let busy = if status_addr.port() == STATUS_PORT {
        String::new()
    } else {
        format!(" ({STATUS_PORT} is in use)")
    };
    let hints = hints(&teal, &url, &repo, &config_path, &service, &args.name);
    let ready = || {
        println!(
            "\nteal demo is serving {url} through {proxy_name} (started and owned by teal)\ndashboard: http://{status_addr}/{busy} (live; the status API is /status)\nhost config: {}\nconfig repo: {}\n\nTry, in another terminal:\n{hints}\nCtrl-C stops teal and its proxy (containers keep running); `{teal} demo --clean` removes everything.\n",
            config_path.display(),
            repo.display()
        );
    };
    crate::daemon::controller::run(&mut daemon, intake, None, shutdown, &ready).await;
    daemon.stop_proxy();
    println!(
        "teal demo stopped; `{teal} demo --clean` removes its containers, network, images and {}",
        dir.display()
    );
    Ok(super::exit::OK)
}

/// The demo app's images, built once (FROM scratch, no registry).
async fn build_images(docker: &DockerDriver, name: &str) -> anyhow::Result<()> {
    eprintln!("teal demo: building the demo app images {name}:1.0, 1.1, 1.2 and :broken (FROM scratch, no registry)");
    for (version, healthy) in [("1.0", true), ("1.1", true), ("1.2", true), ("broken", false)] {
        let tag = format!("{name}:{version}");
        if !docker.image_present(&tag).await? {
            let env = [("VERSION", version), ("HEALTHY", if healthy { "1" } else { "0" })];
            docker.build_app_image(&tag, crate::app::DEMO_APP, &env).await?;
        }
    }
    Ok(())
}

/// What to try, one command a line with why, aligned.
fn hints(teal: &str, url: &str, repo: &Path, config: &Path, service: &str, name: &str) -> String {
    let steps = [
        (format!("curl {url}"), "1.0 blue".to_string()),
        (
            format!("{teal} status --config {}", config.display()),
            "what teal serves, per color".into(),
        ),
        (format!("cd {}", repo.display()), String::new()),
        (
            format!("{teal} bump {service} {name}:1.1 --commit"),
            "stage 1.1 on green, check it, switch".into(),
        ),
        (format!("curl {url}"), "1.1 green".into()),
        (
            "git revert --no-edit HEAD".into(),
            "rollback: blue is still warm, one switch".into(),
        ),
        (format!("{teal} diff --base HEAD~1"), "what the last commit did".into()),
        (
            format!("{teal} bump {service} {name}:broken --commit"),
            "a failing build: traffic stays put".into(),
        ),
        (
            // The repo is <dir>/config: its host config is one level up.
            format!("{teal} history --config ../daemon.yaml"),
            "each deploy, rollback and refusal".into(),
        ),
    ];
    let width = steps.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (cmd, why) in &steps {
        let line = if why.is_empty() {
            format!("  {cmd}")
        } else {
            format!("  {cmd:<width$}   # {why}")
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The status API's listener on 127.0.0.1: its usual port, or the next free one.
async fn status_listener() -> anyhow::Result<tokio::net::TcpListener> {
    for port in STATUS_PORT..STATUS_PORT + 100 {
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return Ok(l);
        }
    }
    bail!(
        "no free port for the status API on 127.0.0.1:{STATUS_PORT}-{}",
        STATUS_PORT + 99
    )
}

/// The demo's port must be free, or held by the demo's own proxy left
/// running by an earlier run that was killed (it is adopted).
fn port_free_or_ours(config: &HostConfig, port: u16) -> anyhow::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Ok(());
    }
    let spec = crate::reconcile::managed_spec(config).expect("the demo's proxy is managed");
    if managed::attach(&spec)?.is_some() {
        return Ok(());
    }
    let holder = managed::process::holder(&std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .map_or_else(|| "another process".to_string(), |h| h.to_string());
    bail!("port {port} on 127.0.0.1 is held by {holder}: pass --port with a free one, e.g. --port 8081")
}

fn pick_proxy() -> anyhow::Result<ProxyKind> {
    if managed::find("haproxy").is_ok() {
        Ok(ProxyKind::Haproxy)
    } else if managed::find("nginx").is_ok() {
        Ok(ProxyKind::Nginx)
    } else {
        bail!("teal demo needs HAProxy or nginx: `apt-get install -y haproxy` (or nginx-light)")
    }
}

fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() && !dir.join(MARKER).exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} exists and is not a teal demo directory: pass --dir with a new or empty one",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "created by teal demo; `teal demo --clean` removes this directory\n",
    )?;
    Ok(std::fs::canonicalize(dir)?)
}

fn make_repo(repo: &Path, service: &str, name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(repo.join("services"))?;
    std::fs::write(
        repo.join("teal.yaml"),
        "# Repo-wide defaults for every service (see examples/config-repo).\nhealth:\n  http: { path: /healthz }\n  interval: 500ms\n  successes: 2\n  deadline: 20s\nswitch:\n  drain: 1s\n  keep_idle: true     # the old color stays warm: git revert is one switch\n",
    )?;
    std::fs::write(
        repo.join(format!("services/{service}.yaml")),
        format!("# The demo app: it answers its version and color on /.\n# Deploy a new version: teal bump {service} {name}:1.1 --commit\nactive: blue\nblue:\n  image: {name}:1.0\nport: 8080\nreplicas: 2\nroute:\n  host: localhost\n"),
    )?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "demo 1.0 on blue"],
    ] {
        let out = Command::new("git")
            .args(["-c", "user.name=teal demo", "-c", "user.email=demo@teal.invalid"])
            .args(args)
            .current_dir(repo)
            .output()
            .context("teal demo needs git on PATH")?;
        if !out.status.success() {
            bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// Writes the demo's host config: a repo on this machine, a managed proxy
/// (three fields are enough; teal picks its files under the state dir),
/// and the status API on `listen`. The demo reads it back like any host.
fn write_host_config(
    path: &Path,
    dir: &Path,
    repo: &Path,
    kind: ProxyKind,
    args: &Args,
    listen: &str,
) -> anyhow::Result<()> {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let text = format!(
        "# teal demo's host config, written by `teal demo` on each start.\n\
         # Use it with: teal status --config {shown}, teal history --config {shown}\n\
         repo:\n  url: {url}\n  poll: 2s\n\
         docker:\n  network: {network}\n\
         proxy:\n  kind: {kind}\n  listen: {proxy}\n  managed: true\n\
         state_dir: {state}\n\
         listen: {listen}\n",
        shown = path.display(),
        url = q(&repo.display().to_string()),
        network = q(&args.name),
        proxy = q(&format!("127.0.0.1:{}", args.port)),
        state = q(&dir.join("state").display().to_string()),
        listen = q(listen),
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// How the user should type teal: `teal` when that is this binary on PATH.
fn teal_command() -> String {
    let me = std::env::current_exe().ok().and_then(|p| std::fs::canonicalize(p).ok());
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("teal"))
            .find(|p| p.exists())
            .and_then(|p| std::fs::canonicalize(p).ok())
    });
    match (me, on_path) {
        (Some(me), Some(p)) if me == p => "teal".into(),
        (Some(me), _) => me.display().to_string(),
        _ => "teal".into(),
    }
}

async fn clean(args: &Args, docker: &DockerDriver) -> anyhow::Result<u8> {
    // A demo killed without Ctrl-C leaves its proxy serving: stop it.
    let dir = std::fs::canonicalize(&args.dir).unwrap_or_else(|_| args.dir.clone());
    for kind in [ProxyKind::Haproxy, ProxyKind::Nginx] {
        let spec = ManagedSpec {
            kind,
            ..ManagedSpec::haproxy(&dir.join("state/proxy"), &format!("127.0.0.1:{}", args.port))
        };
        if let Some((m, _)) = managed::attach(&spec)? {
            println!("stopping the demo's {kind} (pid {})", m.pid());
            m.stop();
        }
    }
    let containers = docker.remove_owned().await?;
    docker.remove_network().await?;
    let images = docker.remove_images(&args.name).await?;
    let dir = if args.dir.join(MARKER).exists() {
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("removing {}", args.dir.display()))?;
        format!(", {}", args.dir.display())
    } else {
        String::new()
    };
    println!(
        "removed {} container{}, network {}, {} image{}{dir}",
        containers.len(),
        super::validate::plural(containers.len()),
        args.name,
        images.len(),
        super::validate::plural(images.len())
    );
    Ok(super::exit::OK)
}
