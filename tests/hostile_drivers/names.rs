//! Service names like teal's own proxy names, and the upgrade from the
//! names an older teal gave its files.

use crate::common::{get_via, LocalApp};
use crate::{route, start, Kind};
use teal::drivers::managed;
use teal::drivers::proxy::PreviewRoute;
use teal::spec::Color::{Blue, Green};

/// Services named like teal's own nginx files (`servers`, `balancer`),
/// HAProxy's default backend (`no-route`) and another service's preview
/// upstream or backend (`x-preview` next to `x` with a preview) each serve
/// their own app on their own host, and nothing else breaks.
async fn names_like_teals_own(kind: Kind) {
    let p = start(kind).await;
    let names = ["servers", "balancer", "no-route", "x", "x-preview"];
    let apps: Vec<LocalApp> = names.iter().map(|n| LocalApp::start(n, "blue")).collect();
    let preview_app = LocalApp::start("x-idle", "green");
    for (n, app) in names.iter().zip(&apps) {
        let mut r = route(n, &format!("{n}.test"), app.addr);
        if *n == "x" {
            r.backends.green.addrs = vec![preview_app.addr];
            r.preview = Some(PreviewRoute {
                host: "preview.x.test".into(),
                allow: vec![],
                color: Green,
            });
        }
        p.driver
            .apply(&r)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: routing service {n:?}: {e}"));
    }
    for n in names {
        assert_eq!(
            get_via(&p.listen, &format!("{n}.test"), "/").await,
            (200, format!("{n} blue\n")),
            "{kind:?}: service {n:?}"
        );
    }
    assert_eq!(
        get_via(&p.listen, "preview.x.test", "/").await,
        (200, "x-idle green\n".into()),
        "{kind:?}: the preview of x"
    );
    assert_eq!(
        get_via(&p.listen, "nobody.test", "/").await.0,
        404,
        "{kind:?}: a host with no route"
    );
    let obs = p.driver.observe().await.unwrap();
    for n in names {
        assert_eq!(obs[n].live(), Some(Blue), "{kind:?}: observed {n:?}");
    }
    p.driver.remove("servers").await.unwrap();
    assert_eq!(get_via(&p.listen, "x-preview.test", "/").await.1, "x-preview blue\n");
    assert_eq!(get_via(&p.listen, "servers.test", "/").await.0, 404, "{kind:?}");
    drop(p.managed);
}

#[tokio::test]
async fn nginx_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_service_names_never_collide_with_teals_own() {
    names_like_teals_own(Kind::Haproxy).await;
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A file with a `... sha256=<hex>` header line, its body edited by `edit`
/// and the hash made to match again (as the teal that wrote it would have).
pub(crate) fn rewrite_signed(path: &std::path::Path, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let body = edit(body);
    let header = match header.strip_prefix("# teal {") {
        // A service file: the hash is a field of the JSON header.
        Some(_) => {
            let mut meta: serde_json::Value = serde_json::from_str(&header["# teal ".len()..]).unwrap();
            meta["sha256"] = sha256(&body).into();
            format!("# teal {meta}")
        }
        None => format!("{}sha256={}", header.rsplit_once("sha256=").unwrap().0, sha256(&body)),
    };
    std::fs::write(path, format!("{header}\n{body}")).unwrap();
}

/// The files the previous teal wrote: shared files named like services'
/// files, upstreams and backends with `-` turned into `_`.
fn downgrade(kind: Kind, dir: &std::path::Path) {
    let old_names = |t: &str| t.replace("teal_my-app", "teal_my_app");
    match kind {
        Kind::Haproxy => rewrite_signed(&dir.join("teal.cfg"), old_names),
        _ => {
            let conf = dir.join("conf.d");
            rewrite_signed(&conf.join("teal-my-app.conf"), old_names);
            for shared in ["servers", "balancer"] {
                let new = conf.join(format!("teal_{shared}.conf"));
                if new.exists() {
                    let old = conf.join(format!("teal-{shared}.conf"));
                    std::fs::rename(&new, &old).unwrap();
                    rewrite_signed(&old, old_names);
                }
            }
            let main = dir.join("nginx.conf");
            let text = std::fs::read_to_string(&main).unwrap();
            std::fs::write(&main, text.replace("conf.d/teal*.conf", "conf.d/teal-*.conf")).unwrap();
        }
    }
}

/// A running proxy on the previous teal's files, adopted by this teal:
/// it serves as before, and this teal's first change moves every file to
/// the new names in one checked reload.
async fn upgrade_keeps_serving(kind: Kind) {
    let p = start(kind).await;
    let (a, b) = (LocalApp::start("my-app", "blue"), LocalApp::start("api", "blue"));
    p.driver.apply(&route("my-app", "my-app.test", a.addr)).await.unwrap();
    downgrade(kind, &p.managed.spec().dir);
    let reload = match kind {
        Kind::Haproxy => vec!["pkill".to_string(), "-USR2".into(), "-F".into(), "haproxy.pid".into()],
        _ => vec![
            "nginx".to_string(),
            "-p".into(),
            ".".into(),
            "-c".into(),
            "nginx.conf".into(),
            "-s".into(),
            "reload".into(),
        ],
    };
    let out = std::process::Command::new(&reload[0])
        .args(&reload[1..])
        .current_dir(&p.managed.spec().dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{kind:?}: reload on the old files: {out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        get_via(&p.listen, "my-app.test", "/").await.1,
        "my-app blue\n",
        "{kind:?}: old files"
    );

    let (_adopted, driver, origin) = managed::adopt_or_start(p.managed.spec()).await.unwrap();
    assert_eq!(origin, managed::Origin::Adopted);
    // The same route again (what a pass does when the proxy reports no
    // peers under the new names), then a new service.
    driver.apply(&route("my-app", "my-app.test", a.addr)).await.unwrap();
    driver.apply(&route("api", "api.test", b.addr)).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "my-app.test", "/").await.1,
        "my-app blue\n",
        "{kind:?}: after the upgrade"
    );
    assert_eq!(get_via(&p.listen, "api.test", "/").await.1, "api blue\n", "{kind:?}");
    assert_eq!(driver.observe().await.unwrap()["my-app"].live(), Some(Blue), "{kind:?}");
    if !matches!(kind, Kind::Haproxy) {
        let conf = p.managed.spec().dir.join("conf.d");
        assert!(
            !conf.join("teal-servers.conf").exists(),
            "{kind:?}: the old servers file is gone"
        );
        assert!(conf.join("teal_servers.conf").exists(), "{kind:?}");
    }
}

#[tokio::test]
async fn nginx_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_upgrade_from_the_old_names_keeps_serving() {
    upgrade_keeps_serving(Kind::Haproxy).await;
}
