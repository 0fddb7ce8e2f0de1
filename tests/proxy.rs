//! The nginx and HAProxy drivers against the real servers, with the demo app
//! run as local processes for backends.

mod common;

use common::{free_port, get_via, proxy_or_fail, LocalApp};
use teal::config::NginxSwitch;
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::proxy::{Backend, PreviewRoute, ProxyDriver, RouteSpec};
use teal::spec::Color::{self, Blue, Green};
use teal::spec::PerColor;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// nginx switching through teal's Lua balancer.
    Nginx,
    /// nginx switching by reloads.
    NginxReload,
    Haproxy,
}

struct Proxy {
    _managed: Managed,
    driver: ProxyDriver,
    listen: String,
    dir: tempfile::TempDir,
}

async fn start(kind: Kind) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let (m, driver) = match kind {
        Kind::Nginx => {
            proxy_or_fail("nginx");
            managed::start(&ManagedSpec::nginx(dir.path(), &listen)).await.unwrap()
        }
        Kind::NginxReload => {
            proxy_or_fail("nginx");
            let spec = ManagedSpec {
                switch: NginxSwitch::Reload,
                ..ManagedSpec::nginx(dir.path(), &listen)
            };
            managed::start(&spec).await.unwrap()
        }
        Kind::Haproxy => {
            proxy_or_fail("haproxy");
            managed::start(&ManagedSpec::haproxy(dir.path(), &listen))
                .await
                .unwrap()
        }
    };
    Proxy {
        _managed: m,
        driver,
        listen,
        dir,
    }
}

/// A route with all traffic on `active`, served by `addrs`.
fn route(service: &str, host: &str, active: Color, addrs: Vec<std::net::SocketAddr>) -> RouteSpec {
    let mut backends = PerColor::<Backend>::default();
    *backends.get_mut(active) = Backend { weight: 100, addrs };
    RouteSpec {
        service: service.into(),
        host: host.into(),
        aliases: vec![],
        tls: None,
        path: "/".into(),
        backends,
        preview: None,
        commit: "c0ffee".into(),
        traffic: Default::default(),
        next: None,
        route_hash: format!("hash-{service}"),
    }
}

/// Blue and green apps, two replicas each.
fn apps() -> (Vec<LocalApp>, Vec<LocalApp>) {
    (
        (0..2).map(|_| LocalApp::start("1.0", "blue")).collect(),
        (0..2).map(|_| LocalApp::start("2.0", "green")).collect(),
    )
}

fn addrs(apps: &[LocalApp]) -> Vec<std::net::SocketAddr> {
    apps.iter().map(|a| a.addr).collect()
}

async fn first_route_switch_observe_remove(kind: Kind) {
    let p = start(kind).await;
    let (blue, green) = apps();
    assert_eq!(
        get_via(&p.listen, "shop.test", "/").await.0,
        404,
        "{kind:?}: nothing routed yet"
    );
    p.driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            get_via(&p.listen, "shop.test", "/").await,
            (200, "1.0 blue\n".into()),
            "{kind:?}"
        );
    }
    let obs = p.driver.observe().await.unwrap();
    assert_eq!(obs["web"].live(), Some(Blue));
    assert_eq!(obs["web"].weights, PerColor { blue: 100, green: 0 }, "{kind:?}");
    assert_eq!(obs["web"].route_hash.as_deref(), Some("hash-web"));
    let mut got = obs["web"].addrs.blue.clone();
    got.sort();
    let mut want = addrs(&blue);
    want.sort();
    assert_eq!(got, want);

    p.driver
        .apply(&route("web", "shop.test", Green, addrs(&green)))
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            get_via(&p.listen, "shop.test", "/").await,
            (200, "2.0 green\n".into()),
            "{kind:?}"
        );
    }
    assert_eq!(p.driver.observe().await.unwrap()["web"].live(), Some(Green));

    // A second service on the same host under a longer path.
    let mut api = route("api", "shop.test", Blue, vec![blue[0].addr]);
    api.path = "/api".into();
    p.driver.apply(&api).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "shop.test", "/api/x").await.1,
        "1.0 blue\n",
        "{kind:?}"
    );
    assert_eq!(get_via(&p.listen, "shop.test", "/").await.1, "2.0 green\n", "{kind:?}");

    p.driver.remove("web").await.unwrap();
    assert_eq!(get_via(&p.listen, "shop.test", "/").await.0, 404, "{kind:?}");
    assert_eq!(
        get_via(&p.listen, "shop.test", "/api").await.1,
        "1.0 blue\n",
        "{kind:?}"
    );
    assert!(!p.driver.observe().await.unwrap().contains_key("web"));
}

#[tokio::test]
async fn nginx_routes_switches_observes_and_removes() {
    first_route_switch_observe_remove(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_routes_switches_observes_and_removes() {
    first_route_switch_observe_remove(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_routes_switches_observes_and_removes() {
    first_route_switch_observe_remove(Kind::Haproxy).await;
}

async fn preview(kind: Kind) {
    let p = start(kind).await;
    let (blue, green) = apps();
    let mut r = route("web", "shop.test", Blue, addrs(&blue));
    r.backends.green.addrs = addrs(&green);
    r.preview = Some(PreviewRoute {
        host: "preview.shop.test".into(),
        allow: vec![],
        color: Green,
    });
    p.driver.apply(&r).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "preview.shop.test", "/").await,
        (200, "2.0 green\n".into()),
        "{kind:?}"
    );
    assert_eq!(
        get_via(&p.listen, "shop.test", "/").await,
        (200, "1.0 blue\n".into()),
        "{kind:?}"
    );
    r.preview.as_mut().unwrap().allow = vec!["10.0.0.0/8".parse().unwrap()];
    p.driver.apply(&r).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "preview.shop.test", "/").await.0,
        403,
        "{kind:?}: 127.0.0.1 is not in 10.0.0.0/8"
    );
    assert_eq!(get_via(&p.listen, "shop.test", "/").await.0, 200);
}

#[tokio::test]
async fn nginx_preview_serves_the_idle_color_to_allowed_networks() {
    preview(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_preview_serves_the_idle_color_to_allowed_networks() {
    preview(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_preview_serves_the_idle_color_to_allowed_networks() {
    preview(Kind::Haproxy).await;
}

#[tokio::test]
async fn haproxy_switches_colors_without_a_reload() {
    let p = start(Kind::Haproxy).await;
    let (blue, green) = apps();
    p.driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    let ProxyDriver::Haproxy(h) = &p.driver else {
        unreachable!()
    };
    let worker = || h.runtime().worker_pid();
    let before = worker().await.unwrap();
    for (color, apps) in [(Green, &green), (Blue, &blue), (Green, &green)] {
        p.driver
            .apply(&route("web", "shop.test", color, addrs(apps)))
            .await
            .unwrap();
        assert_eq!(
            get_via(&p.listen, "shop.test", "/").await.1,
            format!("{} {color}\n", if color == Blue { "1.0" } else { "2.0" })
        );
    }
    assert_eq!(
        worker().await.unwrap(),
        before,
        "the same HAProxy worker serves: no reload happened"
    );
    // Each switch was recorded in the file (spliced into it): a restarted
    // HAProxy would serve green from both servers, and the file's hash
    // still says it is teal's own.
    let file = ManagedSpec::haproxy(p.dir.path(), &p.listen).config_path();
    let text = std::fs::read_to_string(&file).unwrap();
    for (i, app) in green.iter().enumerate() {
        assert!(
            text.contains(&format!("server green_{i} {} weight 128\n", app.addr)),
            "{text}"
        );
    }
    assert!(text.contains("server blue_0 127.0.0.1:1 disabled\n"), "{text}");
    assert!(text.contains("\"commit\":\"c0ffee\""), "{text}");
    let obs = p.driver.observe().await.unwrap();
    assert!(!obs["web"].drifted, "{obs:?}");
    assert_eq!(obs["web"].live(), Some(Green));
}

#[tokio::test]
async fn nginx_hand_edited_file_is_drift() {
    let p = start(Kind::Nginx).await;
    let (blue, _) = apps();
    p.driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    let file = p.dir.path().join("conf.d/teal-web.conf");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("keepalive 32", "keepalive 8")).unwrap();
    let obs = p.driver.observe().await.unwrap();
    assert!(obs["web"].drifted, "the edit is seen");
    assert_eq!(obs["web"].live(), Some(Blue));
    // Re-applying restores it.
    p.driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let obs = p.driver.observe().await.unwrap();
    assert!(!obs["web"].drifted);
    assert_eq!(obs["web"].route_hash.as_deref(), Some("hash-web"));
}

#[tokio::test]
async fn nginx_never_serves_a_config_its_test_rejects() {
    let p = start(Kind::Nginx).await;
    let (blue, green) = apps();
    p.driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    let before: Vec<(String, String)> = files(&p);
    // A second service claiming the same host and path: nginx -t refuses
    // the duplicate location.
    let err = p
        .driver
        .apply(&route("shadow", "shop.test", Green, addrs(&green)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("the new config for shadow was rejected by `"), "{err}");
    assert!(err.contains("duplicate location \"/\""), "nginx's own message: {err}");
    assert_eq!(files(&p), before, "files rolled back");
    assert_eq!(
        get_via(&p.listen, "shop.test", "/").await.1,
        "1.0 blue\n",
        "still serving the old route"
    );
    // And a later valid change still works.
    p.driver
        .apply(&route("web", "shop.test", Green, addrs(&green)))
        .await
        .unwrap();
    assert_eq!(get_via(&p.listen, "shop.test", "/").await.1, "2.0 green\n");
}

fn files(p: &Proxy) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(p.dir.path().join("conf.d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|path| (path.display().to_string(), std::fs::read_to_string(&path).unwrap()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn nginx_without_client_keepalive_closes_every_response() {
    proxy_or_fail("nginx");
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let spec = ManagedSpec {
        client_keepalive: false,
        ..ManagedSpec::nginx(dir.path(), &listen)
    };
    let (_m, driver) = managed::start(&spec).await.unwrap();
    let (blue, _) = apps();
    driver
        .apply(&route("web", "shop.test", Blue, addrs(&blue)))
        .await
        .unwrap();
    // An HTTP/1.1 request asks for keep-alive by default; nginx must refuse it.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&listen).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("nginx closed the connection")
        .unwrap();
    assert!(out.contains("Connection: close"), "{out}");
    assert!(out.ends_with("1.0 blue\n"), "{out}");
}
