//! `teal diff` over a generated repo of 1,000 services, both revisions read
//! from git: open, read two trees, parse and validate both, plan, render.
//! Run: `cargo bench --bench diff`. Prints min/median/max wall time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use teal::plan::{plan, render, Observed};

const SERVICES: usize = 1000;
const BUMPED: usize = 100;
const RUNS: usize = 15;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn service(i: usize, bumped: bool) -> String {
    let (active, green) = if bumped {
        ("green", format!("green:\n  image: registry.example.com/svc{i}:1.1.0\n"))
    } else {
        ("blue", String::new())
    };
    format!(
        "# service {i}\nactive: {active}\nblue:\n  image: registry.example.com/svc{i}:1.0.0\n{green}port: 8080\nreplicas: 2\nenv: {{RUST_LOG: info}}\nroute: {{host: svc{i}.example.com, path: /}}\nhealth:\n  http: {{path: /healthz}}\n  deadline: 30s\n"
    )
}

fn write_all(dir: &Path, bumped: usize) {
    for i in 0..SERVICES {
        std::fs::write(dir.join(format!("services/svc{i}.yaml")), service(i, i < bumped)).unwrap();
    }
}

fn diff_once(repo: &Path) -> usize {
    let r = teal::source::open(repo).unwrap();
    let base = teal::spec::load(&teal::source::read(&r, "HEAD~1", "/").unwrap()).unwrap();
    let head = teal::spec::load(&teal::source::read(&r, "HEAD", "/").unwrap()).unwrap();
    let p = plan(&head, &Observed::converged(&base));
    render::text(&p, false).len()
}

fn stats(name: &str, mut t: Vec<Duration>) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: min {:.1} ms, median {:.1} ms, max {:.1} ms ({} runs)",
        ms(t[0]),
        ms(t[t.len() / 2]),
        ms(t[t.len() - 1]),
        t.len()
    );
}

fn main() {
    // `cargo test --all-targets` runs benches as tests without --bench: stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(repo.join("services")).unwrap();
    write_all(repo, 0);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "base"]);
    write_all(repo, BUMPED);
    git(repo, &["commit", "-qam", "bump 100"]);

    let out = diff_once(repo);
    assert!(out > 0);
    let lib: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            diff_once(repo);
            t.elapsed()
        })
        .collect();
    stats(&format!("diff in-process, {SERVICES} services, {BUMPED} bumped"), lib);

    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/teal");
    let bin = std::env::var_os("CARGO_TARGET_DIR").map_or(bin, |t| Path::new(&t).join("release/teal"));
    if bin.exists() {
        let cli: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let s = Command::new(&bin)
                    .args(["diff", "--base", "HEAD~1"])
                    .current_dir(repo)
                    .output()
                    .unwrap();
                assert_eq!(s.status.code(), Some(2));
                t.elapsed()
            })
            .collect();
        stats("teal diff process end to end", cli);
    } else {
        println!("(build the binary with `cargo build --release` to also time the `teal diff` process)");
    }
}
