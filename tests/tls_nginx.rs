//! Route TLS on a real nginx with teal's Lua balancer: certificates put
//! into a shared dict over the control socket and served by
//! `ssl_certificate_by_lua` for the client's SNI name, replaced with no
//! reload (same master and workers), the 308 once installed, HSTS, ACME
//! answers on plain HTTP, a restart restoring them, and a keep-alive
//! HTTPS load losing nothing while the certificate is swapped.

mod common;

use std::process::Command;
use std::time::Duration;

use common::certs::{make_cert, unix_now};
use common::tls::{curl, curl_body, need, route};
use common::wrk::Wrk;
use common::{proxy_or_fail, LocalApp};
use teal::drivers::managed::{Managed, ManagedSpec};
use teal::drivers::proxy::ProxyDriver;
use teal::drivers::tls::{read_files, Material};

fn need_all() {
    proxy_or_fail("nginx");
    let lua = teal::drivers::managed::lua_modules();
    assert!(lua.is_ok(), "these tests need nginx's Lua module: {lua:?}");
    need("openssl");
    need("curl");
}

async fn start_nginx(dir: &std::path::Path) -> (Managed, ProxyDriver, u16, u16) {
    common::tls::start(dir, ManagedSpec::nginx).await
}

fn material(dir: &std::path::Path, cn: &str, hosts: &[&str]) -> (Material, std::path::PathBuf) {
    let (cert, key) = make_cert(dir, cn, hosts);
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    (read_files(&cert, &key, &names, unix_now()).unwrap(), cert)
}

/// The nginx master and its workers, sorted: new workers mean a reload.
fn pids(m: &Managed) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            teal::drivers::managed::process::parent(*p) == Some(m.pid()) && teal::drivers::managed::process::alive(*p)
        })
        .collect();
    out.sort();
    out.insert(0, m.pid());
    out
}

#[tokio::test]
async fn nginx_serves_installs_and_replaces_a_route_certificate_without_a_reload() {
    need_all();
    let dir = tempfile::tempdir().unwrap();
    let (m, driver, http, https) = start_nginx(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let (cert, key) = make_cert(dir.path(), "one", &["shop.test", "www.shop.test"]);
    driver.apply(&route(app.addr, &cert, &key)).await.unwrap();

    // Before a certificate: plain HTTP serves, HTTPS presents the fallback.
    let plain = format!("shop.test:{http}:127.0.0.1");
    let (head, _) = curl(&format!("http://shop.test:{http}/"), &plain, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let secure = format!("shop.test:{https}:127.0.0.1");
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, None);
    assert!(tls.contains("subject: CN=teal.invalid"), "{tls}");

    let hosts = vec!["shop.test".to_string(), "www.shop.test".to_string()];
    let one = read_files(&cert, &key, &hosts, unix_now()).unwrap();
    let before = pids(&m);
    driver.put_certificate("web", &hosts, &one).await.unwrap();
    let (head, tls) = curl(&format!("https://shop.test:{https}/"), &secure, Some(&cert));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{tls}");
    assert!(tls.contains("subject: CN=one"), "{tls}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=3600"),
        "{head}"
    );
    let (head, _) = curl(&format!("http://shop.test:{http}/a?b=1"), &plain, None);
    assert!(head.starts_with("HTTP/1.1 308"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("location: https://shop.test:{http}/a?b=1")),
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("strict-transport-security"),
        "no HSTS on plain HTTP: {head}"
    );
    assert_eq!(driver.certificates().await.unwrap()["web"], one.info.sha256);

    // ACME answers on plain HTTP, redirect or not.
    driver.acme_challenge("tok-1", Some("tok-1.thumb")).await.unwrap();
    let url = format!("http://shop.test:{http}/.well-known/acme-challenge/tok-1");
    assert_eq!(curl_body(&url, &plain), "tok-1.thumb");
    assert!(
        driver.acme_challenge("a b", Some("x")).await.is_err(),
        "a token with a space"
    );
    driver.acme_challenge("tok-1", None).await.unwrap();
    let (head, _) = curl(&url, &plain, None);
    assert!(head.starts_with("HTTP/1.1 308"), "withdrawn: {head}");

    // Replaced in place: the new one serves, by the same processes.
    let (two, cert2) = material(dir.path(), "two", &["shop.test", "www.shop.test"]);
    driver.put_certificate("web", &hosts, &two).await.unwrap();
    let (_, tls) = curl(
        &format!("https://www.shop.test:{https}/"),
        &format!("www.shop.test:{https}:127.0.0.1"),
        Some(&cert2),
    );
    assert!(tls.contains("subject: CN=two"), "{tls}");
    assert_eq!(pids(&m), before, "no reload: the same master and workers");

    // redirect: false takes a certificate and plain HTTP keeps serving.
    let mut api = route(app.addr, &cert, &key);
    api.service = "api".into();
    api.host = "api.test".into();
    api.aliases = vec![];
    let t = api.tls.as_mut().unwrap();
    t.redirect = false;
    t.hsts = None;
    driver.apply(&api).await.unwrap();
    let (three, cert3) = material(dir.path(), "three", &["api.test"]);
    driver
        .put_certificate("api", &["api.test".into()], &three)
        .await
        .unwrap();
    let (head, tls) = curl(
        &format!("https://api.test:{https}/"),
        &format!("api.test:{https}:127.0.0.1"),
        Some(&cert3),
    );
    assert!(tls.contains("subject: CN=three"), "{tls}");
    assert!(!head.to_ascii_lowercase().contains("strict-transport"), "{head}");
    let (head, _) = curl(
        &format!("http://api.test:{http}/"),
        &format!("api.test:{http}:127.0.0.1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    driver.remove_certificate("api").await.unwrap();

    // Removed: the fallback again, and no redirect.
    driver.remove_certificate("web").await.unwrap();
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, None);
    assert!(tls.contains("subject: CN=teal.invalid"), "{tls}");
    let (head, _) = curl(&format!("http://shop.test:{http}/"), &plain, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(driver.certificates().await.unwrap().is_empty());
}

/// A restarted nginx starts with an empty dict: it loads teal's files.
#[tokio::test]
async fn a_restarted_nginx_serves_the_certificate_teal_installed() {
    need_all();
    let dir = tempfile::tempdir().unwrap();
    let (mut m, driver, _http, https) = start_nginx(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let (one, cert) = material(dir.path(), "one", &["shop.test", "www.shop.test"]);
    let key = dir.path().join("one.key");
    driver.apply(&route(app.addr, &cert, &key)).await.unwrap();
    let hosts = vec!["shop.test".to_string(), "www.shop.test".to_string()];
    driver.put_certificate("web", &hosts, &one).await.unwrap();
    teal::drivers::managed::process::signal(-(m.pid() as i32), libc::SIGKILL);
    for _ in 0..200 {
        if !m.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(m.revive().unwrap(), "it was dead");
    let (_, tls) = curl(
        &format!("https://shop.test:{https}/"),
        &format!("shop.test:{https}:127.0.0.1"),
        Some(&cert),
    );
    assert!(tls.contains("subject: CN=one"), "{tls}");
    assert_eq!(driver.certificates().await.unwrap()["web"], one.info.sha256);

    // Without teal's restore list nginx holds none: certificates() says
    // so, which is what makes the next pass put it again.
    std::fs::remove_file(dir.path().join("proxy/balancer.certs")).unwrap();
    teal::drivers::managed::process::signal(-(m.pid() as i32), libc::SIGKILL);
    for _ in 0..200 {
        if !m.running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(m.revive().unwrap(), "it was dead");
    assert!(driver.certificates().await.unwrap().is_empty());
    driver.put_certificate("web", &hosts, &one).await.unwrap();
    assert_eq!(driver.certificates().await.unwrap()["web"], one.info.sha256);
}

#[tokio::test]
async fn nginx_in_reload_mode_refuses_a_tls_route_naming_the_setting() {
    need_all();
    let dir = tempfile::tempdir().unwrap();
    let reload = |d: &std::path::Path, l: &str| ManagedSpec {
        switch: teal::config::NginxSwitch::Reload,
        ..ManagedSpec::nginx(d, l)
    };
    let (_m, driver, _, _) = common::tls::start(dir.path(), reload).await;
    let app = LocalApp::start("1.0", "blue");
    let (cert, key) = make_cert(dir.path(), "one", &["shop.test"]);
    let err = driver
        .apply(&route(app.addr, &cert, &key))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("proxy.nginx.switch: balancer"), "{err}");
    assert!(driver.certificates().await.unwrap().is_empty());
}

/// The pass's certificate step on nginx: a bad key is refused naming the
/// file while the installed certificate keeps serving.
#[tokio::test]
async fn a_bad_certificate_is_refused_and_nginx_keeps_serving_the_old_one() {
    use teal::reconcile::certs::{converge, CertOutcome};
    need_all();
    let dir = tempfile::tempdir().unwrap();
    let certs = std::fs::canonicalize(dir.path()).unwrap().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (_m, driver, _http, https) = start_nginx(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let (cert, key) = make_cert(&certs, "one", &["shop.test", "www.shop.test"]);
    driver.apply(&route(app.addr, &cert, &key)).await.unwrap();
    let service = |key: &std::path::Path| {
        let mut f = teal::spec::RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert(
            "services/web.yaml".into(),
            format!(
                "active: blue\nblue: {{image: web:1}}\nport: 8080\nroute:\n  host: shop.test\n  aliases: [www.shop.test]\n  tls: {{cert: {}, key: {}}}\nhealth: {{http: {{path: /}}}}\n",
                cert.display(),
                key.display()
            ),
        );
        teal::spec::load(&f).unwrap()
    };
    let policy = teal::policy::Policy {
        cert_files: Some(vec![format!("{}/", certs.display())]),
        ..Default::default()
    };
    let out = converge(&service(&key), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    assert!(matches!(&out[..], [CertOutcome::Installed { .. }]), "{out:?}");
    assert_eq!(
        converge(&service(&key), &driver, &policy, None, unix_now())
            .await
            .outcomes,
        vec![],
        "installed: nothing to do"
    );
    let (_, other_key) = make_cert(&certs, "other", &["shop.test"]);
    let out = converge(&service(&other_key), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    let [CertOutcome::Failed { error, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("does not match") && error.contains("other.key"),
        "{error}"
    );
    let (_, tls) = curl(
        &format!("https://shop.test:{https}/"),
        &format!("shop.test:{https}:127.0.0.1"),
        Some(&cert),
    );
    assert!(tls.contains("subject: CN=one"), "{tls}");

    // Garbage past teal's checks is refused by nginx's module too.
    let mut bad = read_files(&cert, &key, &["shop.test".into()], unix_now()).unwrap();
    bad.chain_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    bad.info.sha256 = "00".into();
    let err = driver
        .put_certificate("web", &["shop.test".into()], &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "{err}");
    let (_, tls) = curl(
        &format!("https://shop.test:{https}/"),
        &format!("shop.test:{https}:127.0.0.1"),
        Some(&cert),
    );
    assert!(tls.contains("subject: CN=one"), "{tls}");
}

/// Zero failed requests under keep-alive HTTPS load while the certificate
/// is swapped back and forth (wrk sends no SNI; curl checks each swap).
#[tokio::test]
async fn keepalive_https_load_loses_nothing_while_the_certificate_is_swapped() {
    need_all();
    need("wrk");
    let dir = tempfile::tempdir().unwrap();
    let (m, driver, _http, https) = start_nginx(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let hosts = ["shop.test", "www.shop.test"];
    let (one, cert) = material(dir.path(), "one", &hosts);
    let (two, _) = material(dir.path(), "two", &hosts);
    driver
        .apply(&route(app.addr, &cert, &dir.path().join("one.key")))
        .await
        .unwrap();
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    driver.put_certificate("web", &names, &one).await.unwrap();
    let before = pids(&m);
    let load = Wrk::start_url(&format!("https://127.0.0.1:{https}/"), "shop.test", 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..10 {
        let m = if i % 2 == 0 { &two } else { &one };
        driver.put_certificate("web", &names, m).await.unwrap();
        let out = Command::new("curl")
            .args(["-skv", "-o", "/dev/null", "--max-time", "2", "--resolve"])
            .arg(format!("shop.test:{https}:127.0.0.1"))
            .arg(format!("https://shop.test:{https}/"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("subject: {}", m.info.subject)),
            "swap {i}: {said}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = load.finish();
    assert_eq!(r.failed(), 0, "{r:?}");
    assert!(r.requests > 500, "{r:?}");
    assert_eq!(pids(&m), before, "no reload");
}
