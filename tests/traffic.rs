//! Traffic for people through the real proxies (nginx's Lua balancer and
//! HAProxy), with the demo app run as local processes: a sticky canary
//! keeps each client on one version while the share grows, testers reach
//! the new color by a header, maintenance answers 503 from the proxy, and
//! a pause holds new requests until it is lifted or its deadline passes.

mod common;

use common::load::{get, share_on, sticky_clients, Load};
use common::{free_port, proxy_or_fail, LocalApp};
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::proxy::{Backend, PreviewRoute, ProxyDriver, RouteSpec};
use teal::spec::Color::Green;
use teal::spec::{Maintenance, Match, PerColor, Traffic};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Nginx,
    Haproxy,
}

struct Proxy {
    _managed: Managed,
    driver: ProxyDriver,
    listen: String,
    _dir: tempfile::TempDir,
}

async fn start(kind: Kind) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let spec = match kind {
        Kind::Nginx => {
            proxy_or_fail("nginx");
            ManagedSpec::nginx(dir.path(), &listen)
        }
        Kind::Haproxy => {
            proxy_or_fail("haproxy");
            ManagedSpec::haproxy(dir.path(), &listen)
        }
    };
    let (m, driver) = managed::start(&spec).await.unwrap();
    Proxy {
        _managed: m,
        driver,
        listen,
        _dir: dir,
    }
}

fn route(blue: &[LocalApp], green: &[LocalApp], green_weight: u32, traffic: Traffic) -> RouteSpec {
    let addrs = |a: &[LocalApp]| a.iter().map(|a| a.addr).collect();
    RouteSpec {
        service: "web".into(),
        host: "shop.test".into(),
        aliases: vec![],
        tls: None,
        path: "/".into(),
        backends: PerColor {
            blue: Backend {
                weight: 100 - green_weight,
                addrs: addrs(blue),
            },
            green: Backend {
                weight: green_weight,
                addrs: addrs(green),
            },
        },
        preview: Some(PreviewRoute {
            host: "preview.shop.test".into(),
            allow: vec![],
            color: Green,
        }),
        commit: "c0ffee".into(),
        traffic,
        next: None,
        route_hash: "hash-web".into(),
    }
}

fn sticky() -> Traffic {
    Traffic {
        sticky: true,
        testers: Some(Match::Header {
            name: "X-Canary".into(),
            value: "1".into(),
        }),
        maintenance: None,
        pause: None,
    }
}

async fn a_sticky_canary_keeps_each_client_on_one_version(kind: Kind) {
    let p = start(kind).await;
    let blue = [LocalApp::start("1.0", "blue"), LocalApp::start("1.0", "blue")];
    let green = [LocalApp::start("1.1", "green")];
    p.driver.apply(&route(&blue, &green, 20, sticky())).await.unwrap();

    let mut cookies = vec![None; 1000];
    let seen = sticky_clients(&p.listen, "shop.test", &mut cookies, 20).await;
    let both = seen.iter().filter(|v| v.len() > 1).count();
    let canary = share_on(&seen, "1.1 green\n");
    println!("{kind:?}: 1000 clients x 20 requests at 20 %: {both} saw both versions, {canary:.1} % on the canary");
    assert_eq!(both, 0, "{kind:?}: no client may see both versions");
    assert!((15.0..=25.0).contains(&canary), "{kind:?}: {canary} % on the canary");
    assert!(cookies
        .iter()
        .all(|c| c.as_deref().is_some_and(|c| c.starts_with("teal_web="))));

    // The share grows: clients already on the canary stay there, and only
    // the newly moved share switches.
    let before: Vec<bool> = seen.iter().map(|v| v.contains("1.1 green\n")).collect();
    p.driver.apply(&route(&blue, &green, 50, sticky())).await.unwrap();
    let after = sticky_clients(&p.listen, "shop.test", &mut cookies, 3).await;
    assert!(after.iter().all(|v| v.len() == 1), "{kind:?}: one version per client");
    let back = (0..1000)
        .filter(|&i| before[i] && !after[i].contains("1.1 green\n"))
        .count();
    assert_eq!(back, 0, "{kind:?}: a canary client went back to the old version");
    let now = share_on(&after, "1.1 green\n");
    assert!((43.0..=57.0).contains(&now), "{kind:?}: {now} % on the canary at 50 %");

    // A bucket cookie that is not one (a client's own value) gets a new one.
    let a = get(&p.listen, "shop.test", &[("Cookie", "teal_web=x%0a")]).await;
    assert_eq!(a.status, 200);
    assert!(a.cookie.is_some_and(|c| c.starts_with("teal_web=")), "{kind:?}");
}

async fn testers_reach_the_new_color_during_a_rollout_only(kind: Kind) {
    let p = start(kind).await;
    let blue = [LocalApp::start("1.0", "blue")];
    let green = [LocalApp::start("1.1", "green")];
    let mut r = route(&blue, &green, 10, sticky());
    r.next = Some(Green);
    p.driver.apply(&r).await.unwrap();
    for _ in 0..20 {
        let a = get(&p.listen, "shop.test", &[("X-Canary", "1"), ("Cookie", "teal_web=99")]).await;
        assert_eq!((a.status, a.body.as_str()), (200, "1.1 green\n"), "{kind:?}");
        let a = get(&p.listen, "shop.test", &[("X-Canary", "0"), ("Cookie", "teal_web=99")]).await;
        assert_eq!(a.body, "1.0 blue\n", "{kind:?}: another value is not a tester");
    }
    // Outside a rollout the header changes nothing (a runtime change).
    r.next = None;
    p.driver.apply(&r).await.unwrap();
    let a = get(&p.listen, "shop.test", &[("X-Canary", "1"), ("Cookie", "teal_web=99")]).await;
    assert_eq!(a.body, "1.0 blue\n", "{kind:?}");
}

async fn maintenance_answers_503_and_leaves_the_preview_alone(kind: Kind) {
    let p = start(kind).await;
    let blue = [LocalApp::start("1.0", "blue")];
    let green = [LocalApp::start("1.1", "green")];
    let plain = route(&blue, &green, 0, Traffic::default());
    p.driver.apply(&plain).await.unwrap();
    assert_eq!(get(&p.listen, "shop.test", &[]).await.status, 200);
    let down = route(
        &blue,
        &green,
        0,
        Traffic {
            maintenance: Some(Maintenance {
                message: "We'll be back at 14:00 (UTC)".into(),
                retry_after: 600,
            }),
            ..Default::default()
        },
    );
    p.driver.apply(&down).await.unwrap();
    let a = get(&p.listen, "shop.test", &[]).await;
    assert_eq!(a.status, 503, "{kind:?}: {}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("600"), "{kind:?}");
    assert!(
        a.body.contains("<p>We'll be back at 14:00 (UTC)</p>"),
        "{kind:?}: {}",
        a.body
    );
    // The preview still reaches the colors.
    let a = get(&p.listen, "preview.shop.test", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "1.1 green\n"), "{kind:?}");
    // Analysis counts no maintenance page as an answer of a color.
    let counts = p.driver.counters().await.unwrap();
    let c = counts.get("web").cloned().unwrap_or_default();
    assert_eq!(c.blue.xx5 + c.green.xx5, 0, "{kind:?}");
    p.driver.apply(&plain).await.unwrap();
    let a = get(&p.listen, "shop.test", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "1.0 blue\n"), "{kind:?}");

    // On and off under keep-alive load: no request fails besides the
    // intended 503s (both are runtime changes, no reload).
    let load = Load::start(&p.listen, "shop.test", 16);
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        p.driver.apply(&down).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        p.driver.apply(&plain).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let t = load.stop().await;
    println!("{kind:?}: maintenance on/off x5 under load: {t:?}");
    assert_eq!((t.errors, t.other), (0, 0), "{kind:?}: {t:?}");
    assert!(t.ok > 0 && t.unavailable > 0, "{kind:?}: {t:?}");
}

async fn a_pause_holds_new_requests_until_lifted_or_its_deadline(kind: Kind) {
    use std::time::{Duration, SystemTime};
    let p = start(kind).await;
    let blue = [LocalApp::start("1.0", "blue")];
    let green = [LocalApp::start("1.1", "green")];
    let pausable = Traffic {
        pause: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    p.driver.apply(&route(&blue, &green, 0, pausable)).await.unwrap();
    assert_eq!(get(&p.listen, "shop.test", &[]).await.status, 200, "{kind:?}");

    let held = p.driver.pause("web", Some(SystemTime::now() + Duration::from_secs(30)));
    assert!(held.await.unwrap(), "{kind:?}: the route holds requests");
    let (listen, kind2) = (p.listen.clone(), kind);
    let waiting = tokio::spawn(async move { get(&listen, "shop.test", &[]).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "{kind:?}: a request is held while paused");
    // The preview is not held.
    let a = get(&p.listen, "preview.shop.test", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "1.1 green\n"), "{kind:?}");
    p.driver.pause("web", None).await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("{kind2:?}: a lifted pause lets held requests go on"))
        .unwrap();
    assert_eq!((a.status, a.body.as_str()), (200, "1.0 blue\n"), "{kind:?}");

    // Nobody lifts it: the pause ends at its deadline.
    p.driver
        .pause("web", Some(SystemTime::now() + Duration::from_millis(1500)))
        .await
        .unwrap();
    let listen = p.listen.clone();
    let waiting = tokio::spawn(async move { get(&listen, "shop.test", &[]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "{kind:?}: held until the deadline");
    let a = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("{kind2:?}: a pause past its deadline holds nothing"))
        .unwrap();
    assert_eq!(a.status, 200, "{kind:?}");

    // Paused and lifted under keep-alive load: every request answered.
    let load = Load::start(&p.listen, "shop.test", 16);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let until = SystemTime::now() + Duration::from_secs(20);
        p.driver.pause("web", Some(until)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        p.driver.pause("web", None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = load.stop().await;
    println!("{kind:?}: paused 0.5 s x3 under load: {t:?}");
    assert_eq!((t.errors, t.other, t.unavailable), (0, 0, 0), "{kind:?}: {t:?}");
    assert!(
        t.slowest >= Duration::from_millis(300),
        "{kind:?}: requests were held: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_pause() {
    a_pause_holds_new_requests_until_lifted_or_its_deadline(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_pause() {
    a_pause_holds_new_requests_until_lifted_or_its_deadline(Kind::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_sticky_canary() {
    a_sticky_canary_keeps_each_client_on_one_version(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_sticky_canary() {
    a_sticky_canary_keeps_each_client_on_one_version(Kind::Haproxy).await;
}

#[tokio::test]
async fn nginx_testers() {
    testers_reach_the_new_color_during_a_rollout_only(Kind::Nginx).await;
}

#[tokio::test]
async fn haproxy_testers() {
    testers_reach_the_new_color_during_a_rollout_only(Kind::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_maintenance() {
    maintenance_answers_503_and_leaves_the_preview_alone(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_maintenance() {
    maintenance_answers_503_and_leaves_the_preview_alone(Kind::Haproxy).await;
}
