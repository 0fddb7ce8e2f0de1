//! The fault soak of issue 24 at full size: 20 services of the fixture
//! app, 5 under keep-alive load, behind a managed HAProxy and then nginx,
//! for 30 minutes each, while a seeded schedule pushes commits (bumps,
//! reverts, canaries that pass and fail, broken images, invalid YAML) and
//! injects one fault at a time (kill -9 and SIGTERM of teal, kill -9 of
//! the proxy, a killed replica, the git remote and the webhook receiver
//! down, `state_dir` full for 20 s, teal's wall clock stepped an hour
//! forward, and a restart of dockerd with live-restore and once without it:
//! the services run on a dockerd of the bench's own, never the
//! machine's). Prints the
//! figures and every invariant broken.
//! Run: `cargo bench --bench soak`; `TEAL_SOAK_SECS` sets the length per
//! proxy, `TEAL_SOAK_SEED` replays a run, `TEAL_BENCH_PROXY=haproxy|nginx`
//! runs one.

#[path = "../tests/common/mod.rs"]
mod common;

use common::soak::{run, Config};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    let mut broken = 0;
    for kind in ["haproxy", "nginx"] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        common::proxy_or_fail(kind);
        let mut cfg = Config::from_env(kind, 20, 5, 1800);
        cfg.conns = 4;
        cfg.outage = std::time::Duration::from_secs(30);
        cfg.full_for = std::time::Duration::from_secs(20);
        cfg.bound = std::time::Duration::from_secs(90);
        cfg.own_engine = true;
        broken += run(cfg).await.violations.len();
    }
    assert_eq!(broken, 0, "the soak broke invariants: see above");
}
