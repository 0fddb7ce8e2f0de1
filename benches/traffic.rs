//! Traffic for people, measured on both managed proxies with the demo app
//! as local processes: a sticky canary at 20 % with 1,000 distinct
//! clients making 20 requests each (share of clients that saw both
//! versions, share on the canary), the step to 50 % (clients that went
//! back to the old version, new share), and maintenance switched on and
//! off 20 times under keep-alive load from 32 connections (failed requests
//! besides the intended 503s, and the time of one switch), and a pause
//! (`switch.pause`) of 1 s set and lifted 10 times under the same load
//! (failed requests, the longest request, the time to lift one).
//! Run: `cargo bench --bench traffic` (needs nginx with the Lua module and
//! haproxy). `TEAL_BENCH_PROXY=haproxy|nginx` runs one.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::load::{share_on, sticky_clients, Load};
use common::{free_port, LocalApp};
use teal::drivers::managed::{self, ManagedSpec};
use teal::drivers::proxy::{Backend, RouteSpec};
use teal::spec::{Maintenance, PerColor, Traffic};

fn route(blue: &[SocketAddr], green: &[SocketAddr], green_weight: u32, traffic: Traffic) -> RouteSpec {
    RouteSpec {
        service: "bench".into(),
        host: "bench.test".into(),
        aliases: vec![],
        tls: None,
        path: "/".into(),
        backends: PerColor {
            blue: Backend {
                weight: 100 - green_weight,
                addrs: blue.to_vec(),
            },
            green: Backend {
                weight: green_weight,
                addrs: green.to_vec(),
            },
        },
        preview: None,
        traffic,
        next: None,
        commit: "bench".into(),
        route_hash: "bench".into(),
    }
}

async fn run(kind: &str, blue: &[SocketAddr], green: &[SocketAddr]) {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let spec = match kind {
        "nginx" => ManagedSpec::nginx(dir.path(), &listen),
        _ => ManagedSpec::haproxy(dir.path(), &listen),
    };
    let (_m, proxy) = managed::start(&spec).await.unwrap();
    let sticky = Traffic {
        sticky: true,
        ..Default::default()
    };

    proxy.apply(&route(blue, green, 20, sticky.clone())).await.unwrap();
    let mut cookies = vec![None; 1000];
    let t = Instant::now();
    let seen = sticky_clients(&listen, "bench.test", &mut cookies, 20).await;
    let took = t.elapsed();
    let both = seen.iter().filter(|v| v.len() > 1).count();
    let canary = share_on(&seen, "1.1 green\n");
    println!(
        "{kind}: sticky canary at 20 %: 1000 clients x 20 requests ({:.1} s): {:.1} % saw both versions, {canary:.1} % on the canary",
        took.as_secs_f64(),
        both as f64 / 10.0
    );
    let on_canary: Vec<bool> = seen.iter().map(|v| v.contains("1.1 green\n")).collect();
    proxy.apply(&route(blue, green, 50, sticky)).await.unwrap();
    let after = sticky_clients(&listen, "bench.test", &mut cookies, 3).await;
    let back = (0..1000)
        .filter(|&i| on_canary[i] && !after[i].contains("1.1 green\n"))
        .count();
    println!(
        "{kind}: step to 50 %: {back} canary clients went back, {:.1} % on the canary, {:.1} % saw both",
        share_on(&after, "1.1 green\n"),
        after.iter().filter(|v| v.len() > 1).count() as f64 / 10.0
    );

    let plain = route(blue, green, 0, Traffic::default());
    let down = route(
        blue,
        green,
        0,
        Traffic {
            maintenance: Some(Maintenance {
                message: "Back at 14:00".into(),
                retry_after: 600,
            }),
            ..Default::default()
        },
    );
    proxy.apply(&plain).await.unwrap();
    let load = Load::start(&listen, "bench.test", 32);
    let mut switches = vec![];
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let t = Instant::now();
        proxy.apply(if i % 2 == 0 { &down } else { &plain }).await.unwrap();
        switches.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let tally = load.stop().await;
    switches.sort();
    println!(
        "{kind}: maintenance on/off x20 under keep-alive load (32 connections): {} answered 200, {} 503 (intended), {} other status, {} connection errors; one switch: median {:.1} ms, max {:.1} ms",
        tally.ok,
        tally.unavailable,
        tally.other,
        tally.errors,
        switches[switches.len() / 2].as_secs_f64() * 1000.0,
        switches[switches.len() - 1].as_secs_f64() * 1000.0
    );

    let pausable = route(
        blue,
        green,
        0,
        Traffic {
            pause: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    );
    proxy.apply(&pausable).await.unwrap();
    let load = Load::start(&listen, "bench.test", 32);
    let mut lifts = vec![];
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let until = std::time::SystemTime::now() + Duration::from_secs(20);
        assert!(proxy.pause("bench", Some(until)).await.unwrap());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        proxy.pause("bench", None).await.unwrap();
        lifts.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = load.stop().await;
    lifts.sort();
    println!(
        "{kind}: pause 1 s x10 under keep-alive load (32 connections): {} answered 200, {} 503, {} other status, {} connection errors; longest request {:.0} ms; lifting: median {:.1} ms, max {:.1} ms",
        tally.ok,
        tally.unavailable,
        tally.other,
        tally.errors,
        tally.slowest.as_secs_f64() * 1000.0,
        lifts[lifts.len() / 2].as_secs_f64() * 1000.0,
        lifts[lifts.len() - 1].as_secs_f64() * 1000.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let apps = [
        LocalApp::start("1.0", "blue"),
        LocalApp::start("1.0", "blue"),
        LocalApp::start("1.1", "green"),
    ];
    let (a1, a2, a3) = (apps[0].addr, apps[1].addr, apps[2].addr);
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    for kind in ["haproxy", "nginx"] {
        if only.as_deref().is_none_or(|o| o == kind) {
            run(kind, &[a1, a2], &[a3]).await;
        }
    }
}
