//! Route TLS on a real HAProxy: a certificate installed and replaced
//! through the runtime API with no reload, the 308 redirect once it is
//! installed, HSTS, and ACME answers served on plain HTTP. Certificates
//! are made with Debian's openssl; requests go through curl.

mod common;

use std::path::Path;
use std::process::Command;

use common::certs::{make_cert, unix_now};
use common::tls::{curl, need, route};
use common::{proxy_or_fail, LocalApp};
use teal::drivers::managed::{self, ManagedSpec};
use teal::drivers::proxy::ProxyDriver;

/// A managed HAProxy in `dir` on free HTTP and HTTPS ports.
async fn start_haproxy(dir: &Path) -> (managed::Managed, ProxyDriver, u16, u16) {
    common::tls::start(dir, ManagedSpec::haproxy).await
}

#[tokio::test]
async fn haproxy_serves_installs_and_replaces_a_route_certificate_without_a_reload() {
    proxy_or_fail("haproxy");
    need("openssl");
    need("curl");
    let dir = tempfile::tempdir().unwrap();
    let (_m, driver, http, https) = start_haproxy(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let (cert, key) = make_cert(dir.path(), "one", &["shop.test", "www.shop.test"]);
    driver.apply(&route(app.addr, &cert, &key)).await.unwrap();

    // Before a certificate: plain HTTP serves (no redirect to a cert
    // that does not exist) and HTTPS presents the default one.
    let plain = format!("shop.test:{http}:127.0.0.1");
    let (head, _) = curl(&format!("http://shop.test:{http}/"), &plain, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let secure = format!("shop.test:{https}:127.0.0.1");
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, None);
    assert!(tls.contains("subject: CN=teal.invalid"), "{tls}");

    let hosts = vec!["shop.test".to_string(), "www.shop.test".to_string()];
    let one = teal::drivers::tls::read_files(&cert, &key, &hosts, unix_now()).unwrap();
    let ProxyDriver::Haproxy(h) = &driver else {
        unreachable!()
    };
    let pid = h.runtime().worker_pid().await.unwrap();
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
        head.contains(&format!("location: https://shop.test:{http}/a?b=1")),
        "{head}"
    );
    assert_eq!(driver.certificates().await.unwrap()["web"], one.info.sha256);

    // ACME answers on plain HTTP, redirect or not.
    driver.acme_challenge("tok-1", Some("tok-1.thumb")).await.unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--resolve", &plain])
        .arg(format!("http://shop.test:{http}/.well-known/acme-challenge/tok-1"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tok-1.thumb");
    assert!(
        driver.acme_challenge("a b", Some("x")).await.is_err(),
        "a token with a space"
    );
    driver.acme_challenge("tok-1", None).await.unwrap();

    // Replaced in place: the new one serves, by the same worker.
    let (cert2, key2) = make_cert(dir.path(), "two", &["shop.test", "www.shop.test"]);
    let two = teal::drivers::tls::read_files(&cert2, &key2, &hosts, unix_now()).unwrap();
    driver.put_certificate("web", &hosts, &two).await.unwrap();
    let (_, tls) = curl(
        &format!("https://www.shop.test:{https}/"),
        &format!("www.shop.test:{https}:127.0.0.1"),
        Some(&cert2),
    );
    assert!(tls.contains("subject: CN=two"), "{tls}");
    assert_eq!(h.runtime().worker_pid().await.unwrap(), pid, "no reload");

    // A route without the redirect takes a certificate too (its host
    // map must be loaded all the same) and plain HTTP keeps serving.
    let mut api = route(app.addr, &cert, &key);
    api.service = "api".into();
    api.host = "api.test".into();
    api.aliases = vec![];
    api.tls.as_mut().unwrap().redirect = false;
    driver.apply(&api).await.unwrap();
    let (cert3, key3) = make_cert(dir.path(), "three", &["api.test"]);
    let three = teal::drivers::tls::read_files(&cert3, &key3, &["api.test".into()], unix_now()).unwrap();
    driver
        .put_certificate("api", &["api.test".into()], &three)
        .await
        .unwrap();
    let (_, tls) = curl(
        &format!("https://api.test:{https}/"),
        &format!("api.test:{https}:127.0.0.1"),
        Some(&cert3),
    );
    assert!(tls.contains("subject: CN=three"), "{tls}");
    let (head, _) = curl(
        &format!("http://api.test:{http}/"),
        &format!("api.test:{http}:127.0.0.1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    driver.remove_certificate("api").await.unwrap();

    // Removed: the default again, and no redirect.
    driver.remove_certificate("web").await.unwrap();
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, None);
    assert!(tls.contains("subject: CN=teal.invalid"), "{tls}");
    let (head, _) = curl(&format!("http://shop.test:{http}/"), &plain, None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(driver.certificates().await.unwrap().is_empty());

    // A service named `default` neither replaces nor removes the fallback
    // certificate (a restarted HAProxy would not start without its file).
    let fallback = find(dir.path(), "teal.default.pem").expect("the fallback certificate's file");
    let before = std::fs::read(&fallback).unwrap();
    driver.put_certificate("default", &hosts, &one).await.unwrap();
    driver.remove_certificate("default").await.unwrap();
    assert_eq!(std::fs::read(&fallback).unwrap(), before, "the fallback is untouched");
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, None);
    assert!(tls.contains("subject: CN=teal.invalid"), "{tls}");
}

/// The first file named `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(found) = find(&p, name) {
                return Some(found);
            }
        }
    }
    None
}

/// The pass's certificate step (`reconcile::certs`) on a real HAProxy: a
/// route's files are read, checked and installed; a key that does not
/// match, or a file outside `policy.cert_files`, is reported naming the
/// file and leaves the installed certificate serving.
#[tokio::test]
async fn each_pass_installs_checked_certificate_files_and_keeps_serving_on_a_bad_one() {
    use teal::reconcile::certs::{converge, CertOutcome};
    proxy_or_fail("haproxy");
    need("openssl");
    need("curl");
    let dir = tempfile::tempdir().unwrap();
    let certs = std::fs::canonicalize(dir.path()).unwrap().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (_m, driver, _http, https) = start_haproxy(dir.path()).await;
    let app = LocalApp::start("1.0", "blue");
    let (cert, key) = make_cert(&certs, "one", &["shop.test", "www.shop.test"]);
    driver.apply(&route(app.addr, &cert, &key)).await.unwrap();
    let service = |cert: &Path, key: &Path| {
        format!(
            "active: blue\nblue: {{image: web:1}}\nport: 8080\nroute:\n  host: shop.test\n  aliases: [www.shop.test]\n  tls: {{cert: {}, key: {}}}\nhealth: {{http: {{path: /}}}}\n",
            cert.display(),
            key.display()
        )
    };
    let desired = |text: String| {
        let mut f = teal::spec::RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), text);
        teal::spec::load(&f).unwrap()
    };
    let policy = teal::policy::Policy {
        cert_files: Some(vec![format!("{}/", certs.display())]),
        ..Default::default()
    };

    let out = converge(&desired(service(&cert, &key)), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    assert!(
        matches!(&out[..], [CertOutcome::Installed { service, subject, .. }] if service == "web" && subject.contains("one")),
        "{out:?}"
    );
    let secure = format!("shop.test:{https}:127.0.0.1");
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, Some(&cert));
    assert!(tls.contains("subject: CN=one"), "{tls}");
    // Nothing changed: nothing to do.
    assert_eq!(
        converge(&desired(service(&cert, &key)), &driver, &policy, None, unix_now())
            .await
            .outcomes,
        vec![]
    );

    // A key of another certificate: refused, naming the files; one serves on.
    let (_, other_key) = make_cert(&certs, "other", &["shop.test"]);
    let out = converge(&desired(service(&cert, &other_key)), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    let [CertOutcome::Failed { service: who, error }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(who, "web");
    assert!(
        error.contains("does not match") && error.contains("other.key"),
        "{error}"
    );
    let (_, tls) = curl(&format!("https://shop.test:{https}/"), &secure, Some(&cert));
    assert!(tls.contains("subject: CN=one"), "{tls}");

    // A key swapped for a symlink out of the policy since the commit was admitted.
    let link = certs.join("link.key");
    std::os::unix::fs::symlink("/etc/ssh/ssh_host_ed25519_key", &link).unwrap();
    let out = converge(&desired(service(&cert, &link)), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    let [CertOutcome::Failed { error, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("is outside this host's policy (policy.cert_files"),
        "{error}"
    );

    // The route drops tls: the certificate goes.
    let plain = service(&cert, &key).replace(
        &format!("  tls: {{cert: {}, key: {}}}\n", cert.display(), key.display()),
        "",
    );
    let out = converge(&desired(plain), &driver, &policy, None, unix_now())
        .await
        .outcomes;
    assert_eq!(out, vec![CertOutcome::Removed { service: "web".into() }]);
    assert!(driver.certificates().await.unwrap().is_empty());
}
