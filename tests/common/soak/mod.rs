//! The fault soak (issue 24), shared by `benches/soak.rs` and
//! `tests/soak.rs`: one host with a managed proxy, services of the fixture
//! app, keep-alive load on a few, and a seeded schedule of commits (bumps,
//! reverts, canaries that pass and fail, broken images, invalid YAML) with
//! one fault at a time. After each step it checks the invariants
//! (`check`) and at the end prints the figures; the seed replays a run.

mod check;
pub mod counted;
pub mod faults;
pub mod model;
mod report;
mod scene;
pub mod traffic;

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::faketime::FakeClock;
use super::host::TestHost;
use super::process::Daemon;
use super::tmpfs::Tmpfs;
use super::{app_image_version, failing_app_image, free_port, git_in, unique, DockerGuard};
use counted::Counted;
use faults::Fault;
use model::{Action, Bag, File, Rng};
pub use report::{Figures, Report};
use traffic::{Load, Receiver};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `haproxy` or `nginx`.
    pub kind: &'static str,
    pub services: usize,
    /// The first `loaded` services get load and the canary strategy.
    pub loaded: usize,
    /// Keep-alive connections per loaded service.
    pub conns: usize,
    pub duration: Duration,
    pub seed: u64,
    /// Every service must converge within this after a push (or after the
    /// fault it overlapped ended).
    pub bound: Duration,
    /// How long the git remote and the webhook receiver stay down.
    pub outage: Duration,
    /// Runs the services on a dockerd of the soak's own (live-restore on),
    /// which the schedule restarts; the machine's engine is never restarted.
    pub own_engine: bool,
    /// How long `state_dir` stays full.
    pub full_for: Duration,
}

impl Config {
    /// `TEAL_SOAK_SEED` and `TEAL_SOAK_SECS` override the seed (default:
    /// from the clock, printed) and the duration.
    pub fn from_env(kind: &'static str, services: usize, loaded: usize, secs: u64) -> Config {
        let seed = std::env::var("TEAL_SOAK_SEED")
            .ok()
            .map(|s| s.parse().expect("TEAL_SOAK_SEED is a number"))
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        let secs = std::env::var("TEAL_SOAK_SECS")
            .ok()
            .map(|s| s.parse().expect("TEAL_SOAK_SECS is a number of seconds"))
            .unwrap_or(secs);
        Config {
            kind,
            services,
            loaded,
            conns: 2,
            duration: Duration::from_secs(secs),
            seed,
            bound: Duration::from_secs(60),
            outage: Duration::from_secs(5),
            own_engine: false,
            full_for: Duration::from_secs(5),
        }
    }
}

pub struct Svc {
    pub name: String,
    /// The file at the branch head.
    pub head: File,
    /// The last good file: what must serve.
    pub good: File,
}

pub struct Soak {
    pub cfg: Config,
    /// The tmpfs `state_dir` is on; unmounted before the host's directory goes.
    pub state_fs: Tmpfs,
    /// teal's wall clock, and how many hours it has been stepped.
    pub clock: FakeClock,
    clock_hours: u32,
    pub host: TestHost,
    pub daemon: Daemon,
    pub services: Vec<Svc>,
    pub rng: Rng,
    pub load: Load,
    /// The proxy's own response counters, followed.
    pub counted: Counted,
    pub receiver: Receiver,
    pub images: Vec<String>,
    pub failing: String,
    /// The fixture whose health checks never pass.
    pub unhealthy: String,
    pub violations: Vec<String>,
    pub figures: Figures,
    /// The soak's own dockerd, with `own_engine`.
    pub engine: Option<Engine>,
    /// The service and file before the last commit, when it was a good bump.
    last_bump: Option<(usize, File)>,
    /// (service, commit) of every good commit that changed a service:
    /// each must have its deploy line in the event log.
    deploys: Vec<(String, String)>,
    /// The faults and actions left in their current bags.
    faults: Bag<Fault>,
    actions: Bag<Action>,
    step: String,
    _guard: DockerGuard,
}

/// Runs the soak; a run that cannot even start panics.
pub async fn run(cfg: Config) -> Report {
    println!(
        "soak: {} with {} services ({} loaded), {:?}, seed {} (replay: TEAL_SOAK_SEED={})",
        cfg.kind, cfg.services, cfg.loaded, cfg.duration, cfg.seed, cfg.seed
    );
    let mut soak = Soak::start(cfg).await;
    let end = Instant::now() + soak.cfg.duration;
    while Instant::now() < end && soak.violations.is_empty() {
        soak.step().await;
    }
    soak.step = "at the end".into();
    if soak.violations.is_empty() {
        soak.until_converged().await;
        soak.check_invariants();
    }
    soak.finish().await
}

impl Soak {
    async fn start(cfg: Config) -> Soak {
        let host = TestHost::new("soak").await;
        let mut images = vec![];
        for v in model::VERSIONS {
            images.push(app_image_version(&host.docker, v, true).await);
        }
        let failing = failing_app_image(&host.docker, "9.0", 50).await;
        let unhealthy = app_image_version(&host.docker, model::UNHEALTHY, false).await;
        let services: Vec<Svc> = (0..cfg.services)
            .map(|i| {
                let name = unique("soak");
                let file = File {
                    active: "blue",
                    blue: Some(images[0].clone()),
                    green: None,
                    replicas: if i < cfg.loaded { 2 } else { 1 },
                    canary: i < cfg.loaded,
                    host: format!("{name}.test"),
                };
                Svc {
                    name,
                    head: file.clone(),
                    good: file,
                }
            })
            .collect();
        let guard = DockerGuard {
            services: services.iter().map(|s| s.name.clone()).collect(),
            network: host.network.clone(),
        };
        let receiver = Receiver::start(free_port()).await;
        host.managed_config(cfg.kind);
        let mut text = std::fs::read_to_string(&host.config).unwrap();
        let engine = cfg.own_engine.then(|| {
            let e = Engine::start_live_restore();
            for image in images.iter().chain([&failing, &unhealthy]) {
                e.load(image);
            }
            let at = format!("docker: {{network: {}}}", host.network);
            assert!(text.contains(&at), "{text}");
            text = text.replace(
                &at,
                &format!("docker: {{host: '{}', network: {}}}", e.host(), host.network),
            );
            e
        });
        text.push_str(&format!("notify:\n  - url: http://127.0.0.1:{}/hook\n", receiver.port));
        std::fs::write(&host.config, text).unwrap();
        let loaded: Vec<String> = services[..cfg.loaded].iter().map(|s| s.good.host.clone()).collect();
        let state_fs = Tmpfs::mount(&host.state, 64 << 20);
        let clock = FakeClock::new(host.state.parent().unwrap());
        let mut soak = Soak {
            rng: Rng::new(cfg.seed),
            daemon: host.start_daemon_with(&clock.env()),
            state_fs,
            clock,
            clock_hours: 0,
            load: Load::start(&host.listen, &[], 0),
            counted: Counted::start(cfg.kind, &host.proxy_dir()),
            host,
            services,
            receiver,
            images,
            failing,
            unhealthy,
            violations: vec![],
            figures: Figures::default(),
            engine,
            last_bump: None,
            deploys: vec![],
            faults: Bag::default(),
            actions: Bag::default(),
            step: "cold start".into(),
            _guard: guard,
            cfg,
        };
        for s in &soak.services {
            soak.write(s);
        }
        soak.commit("soak: every service at 1.0");
        soak.until_converged().await;
        soak.check_invariants();
        assert!(soak.violations.is_empty(), "cold start: {:?}", soak.violations);
        soak.load = Load::start(&soak.host.listen, &loaded, soak.cfg.conns);
        soak
    }

    /// Starts teal (again), on the soak's clock.
    pub fn start_daemon(&self) -> Daemon {
        self.host.start_daemon_with(&self.clock.env())
    }

    pub fn violation(&mut self, what: String) {
        let line = format!("{}: {what}", self.step);
        eprintln!("soak: VIOLATION {line}");
        self.violations.push(line);
    }

    fn write(&self, s: &Svc) {
        let dir = self.host.work.join("services");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}.yaml", s.name)), s.head.text()).unwrap();
    }

    fn commit(&self, msg: &str) {
        git_in(&self.host.work, &["add", "-A"]);
        git_in(&self.host.work, &["commit", "-qm", msg]);
        git_in(&self.host.work, &["push", "-q", "origin", "HEAD:main"]);
    }

    fn revert(&self) {
        git_in(&self.host.work, &["revert", "--no-edit", "HEAD"]);
        git_in(&self.host.work, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// One commit of the schedule, maybe one fault over it, then the checks.
    async fn step(&mut self) {
        self.figures.steps += 1;
        let action = self.pick_action();
        let fault = self.rng.chance(75).then(|| self.next_fault());
        let delay = Duration::from_millis(self.rng.below(1500) as u64);
        // A bad commit (but a canary's, whose traffic is intended) must
        // not give its idle color one request: counted by the proxy.
        let idle_counted = match action.bad() && action != Action::CanaryFail {
            true => Some(self.counted.totals().await),
            false => None,
        };
        let svc = self.push(action);
        self.step = format!(
            "step {} ({} of {}{})",
            self.figures.steps,
            action.name(),
            self.services[svc].name,
            fault.map(|f| format!(", {}", f.name())).unwrap_or_default()
        );
        println!("soak: {}", self.step);
        *self.load.windows.step.lock().unwrap() = self.step.clone();
        *self.figures.actions.entry(action).or_default() += 1;
        let mut since = Instant::now();
        if let Some(f) = fault {
            *self.figures.faults.entry(f).or_default() += 1;
            tokio::time::sleep(delay).await;
            if let Some(took) = self.inject(f).await {
                self.figures.recover.push(took);
            }
            since = Instant::now();
        }
        if action.bad() {
            if let Some(took) = self.until_held(action, svc, since).await {
                self.figures.held.push(took);
            }
            self.revert();
            self.services[svc].head = self.services[svc].good.clone();
            since = Instant::now();
        }
        if let Some(took) = self.until_converged().await {
            self.figures.converge.push(took.max(since.elapsed()));
        }
        self.check_invariants();
        if let Some(before) = idle_counted {
            self.check_idle_counted(svc, before).await;
        }
        self.load.windows.set("no fault");
    }

    /// Faults come from a shuffled bag, so even a short run injects each.
    fn next_fault(&mut self) -> Fault {
        let own = self.engine.is_some();
        let all = Fault::ALL.into_iter().filter(|f| own || !f.needs_own_engine());
        self.faults.draw(&mut self.rng, all, |_| true)
    }

    /// Actions come from a shuffled bag of them all, bumps and passing
    /// canaries more than once, so even CI's short run draws each; a
    /// revert is drawn only right after a bump.
    fn pick_action(&mut self) -> Action {
        let bumped = self.last_bump.is_some();
        let all = Action::ALL.into_iter().flat_map(|a| std::iter::repeat_n(a, a.in_bag()));
        self.actions
            .draw(&mut self.rng, all, |a| bumped || *a != Action::Revert)
    }

    /// Commits `action` and returns the service it touched.
    fn push(&mut self, action: Action) -> usize {
        let svc = match action {
            Action::Revert => self.last_bump.as_ref().unwrap().0,
            Action::CanaryFail | Action::CanaryPass | Action::Unhealthy => self.rng.below(self.cfg.loaded),
            Action::Bump => self.cfg.loaded + self.rng.below(self.services.len() - self.cfg.loaded),
            _ => self.rng.below(self.services.len()),
        };
        let s = &self.services[svc];
        let good = s.good.clone();
        match action {
            Action::Bump | Action::CanaryPass => {
                let now = model::serves(&good);
                let choices: Vec<&String> = self.images.iter().filter(|i| !now.starts_with(version(i))).collect();
                let image = choices[self.rng.below(choices.len())].clone();
                let next = good.bumped(&image);
                self.set(svc, next.clone(), next);
                self.last_bump = Some((svc, good));
                self.commit(&format!("bump {} to {}", self.services[svc].name, version(&image)));
                self.deployed(svc);
                return svc;
            }
            Action::Revert => {
                let (_, before) = self.last_bump.take().unwrap();
                self.services[svc].head = before.clone();
                self.services[svc].good = before;
                self.revert();
                self.deployed(svc);
                return svc;
            }
            Action::CanaryFail => self.services[svc].head = good.bumped(&self.failing.clone()),
            Action::BrokenImage => self.services[svc].head = good.bumped(model::BROKEN),
            Action::Unhealthy => self.services[svc].head = good.bumped(&self.unhealthy.clone()),
            Action::InvalidYaml => {}
        }
        self.last_bump = None;
        let s = &self.services[svc];
        if action == Action::InvalidYaml {
            let path = self.host.work.join(format!("services/{}.yaml", s.name));
            std::fs::write(path, model::INVALID_YAML).unwrap();
        } else {
            self.write(s);
        }
        self.commit(&format!("{} for {}", action.name(), s.name));
        svc
    }

    /// The head commit changed `svc` for good: it must get a deploy line.
    fn deployed(&mut self, svc: usize) {
        let head = git_in(&self.host.work, &["rev-parse", "HEAD"]);
        self.deploys.push((self.services[svc].name.clone(), head));
    }

    fn set(&mut self, svc: usize, head: File, good: File) {
        self.services[svc].head = head;
        self.services[svc].good = good;
        self.write(&self.services[svc]);
    }
}

impl Soak {
    /// The docker CLI against the engine the services run on.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        match &self.engine {
            Some(e) => e.docker(args),
            None => std::process::Command::new("docker").args(args).output().unwrap(),
        }
    }
}

/// The tag of an image: the fixture's version.
pub fn version(image: &str) -> &str {
    image.rsplit(':').next().unwrap_or(image)
}
