//! Hostile YAML: a "billion laughs" alias bomb in a service file and in
//! the host config is refused with its file and line, quickly, and the
//! process that reads it stays small. Its own test binary, so the peak
//! RSS of children (getrusage RUSAGE_CHILDREN) is that of its own runs.

mod common;

use std::time::Instant;

use common::{service, teal, Repo};

/// The classic bomb: nine lines that stand for 9^9 strings, under keys
/// a service file accepts nowhere (so only the limits decide how much of
/// it is read).
fn bomb() -> String {
    let mut s = String::from("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let p = format!("*a{}", i - 1);
        s.push_str(&format!("x{i}: &a{i} [{}]\n", [p.as_str(); 9].join(", ")));
    }
    s
}

/// Largest resident set of any waited-for child so far, in bytes.
fn children_max_rss() -> u64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) }, 0);
    ru.ru_maxrss as u64 * 1024
}

#[test]
fn an_alias_bomb_is_refused_quickly_with_its_line_and_flat_memory() {
    let repo = Repo::new();
    let text = format!("{}{}", service("blue", Some("app:1"), None, "a.example"), bomb());
    repo.commit("bomb", &[("services/web.yaml", Some(&text))]);
    let start = Instant::now();
    let r = teal(repo.path(), &["validate"]);
    let took = start.elapsed();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("services/web.yaml:")
            && r.stdout
                .contains("each alias (*name) counted as the values it repeats: teal refuses such a file"),
        "{r:?}"
    );
    let line: usize = r.stdout.split(':').nth(1).unwrap().parse().unwrap();
    assert!(
        (7..=20).contains(&line),
        "the line of the alias that crosses the limit: {r:?}"
    );
    let rss = children_max_rss();
    assert!(rss < 100 << 20, "peak RSS {} MiB", rss >> 20);
    // Its time is a figure for BENCHMARKS.md (benches/hostile_yaml.sh), not a test.
    eprintln!("the bomb refused in {took:?}, peak RSS {} MiB", rss >> 20);

    // The host config is checked the same way.
    let config = repo.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!("repo: {{url: /srv/deploy}}\nproxy: {{kind: nginx}}\n{}", bomb()),
    )
    .unwrap();
    let r = teal(repo.path(), &["config", "--check", config.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(&format!("{}:", config.display())) && all.contains("teal refuses such a file"),
        "{all}"
    );
    assert!(children_max_rss() < 100 << 20);
}
