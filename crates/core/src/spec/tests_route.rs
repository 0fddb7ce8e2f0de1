//! `route:` with aliases and TLS: what resolves, and each bad input with
//! the exact located message.

use super::tests::GOOD;
use super::*;

fn load_web(text: &str) -> Result<Desired, Vec<String>> {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert("services/web.yaml".into(), text.into());
    load(&f).map_err(|d| d.0.iter().map(|d| d.to_string()).collect())
}

fn with_route(route: &str) -> String {
    GOOD.replace("route: {host: shop.example.com}", route)
}

#[test]
fn tls_routes_resolve_with_their_defaults() {
    let d = load_web(&with_route(
        "route: {host: Shop.Example.com, aliases: [www.shop.example.com], tls: acme}",
    ))
    .unwrap();
    let r = &d.services["web"].route;
    assert_eq!(
        r.hosts().collect::<Vec<_>>(),
        ["shop.example.com", "www.shop.example.com"]
    );
    assert_eq!(
        r.tls,
        Some(RouteTls {
            source: TlsSource::Acme,
            redirect: true,
            hsts: None
        })
    );
    let d = load_web(&with_route(
        "route:\n  host: shop.example.com\n  tls: {cert: /etc/teal/certs/shop.pem, key: /etc/teal/certs/shop.key}\n  redirect: false\n  hsts: 1y",
    ))
    .unwrap();
    let t = d.services["web"].route.tls.clone().unwrap();
    assert_eq!(
        t.source,
        TlsSource::Files {
            cert: "/etc/teal/certs/shop.pem".into(),
            key: "/etc/teal/certs/shop.key".into()
        }
    );
    assert!(!t.redirect);
    assert_eq!(t.hsts, Some(std::time::Duration::from_secs(31_557_600)));
}

#[test]
fn a_plain_route_hashes_as_before_tls_existed() {
    // Routes without TLS must not look changed after an upgrade.
    let d = load_web(GOOD).unwrap();
    let json = serde_json::to_string(&d.services["web"].route).unwrap();
    assert_eq!(json, r#"{"host":"shop.example.com","path":"/"}"#);
}

#[test]
fn bad_tls_input_is_located_and_explained() {
    let cases = [
        ("route: {host: shop.example.com, tls: letsencrypt}", "services/web.yaml:7:38: route.tls: unknown tls \"letsencrypt\": write tls: acme, or tls: {cert: FILE, key: FILE}"),
        ("route: {host: shop.example.com, tls: {cert: /c.pem}}", "services/web.yaml:7:33: tls needs key: the path of the PEM key file on the host"),
        ("route: {host: shop.example.com, tls: {cert: c.pem, key: /k}}", "services/web.yaml:7:45: tls cert \"c.pem\" must be an absolute path on the host"),
        ("route: {host: shop.example.com, tls: {crt: /c, key: /k}}", "services/web.yaml:7:39: route.tls: unknown field \"crt\", expected \"cert\" or \"key\""),
        ("route: {host: '*.example.com', tls: acme}", "services/web.yaml:7:15: wildcard host \"*.example.com\": teal routes exact names (and ACME's HTTP-01 cannot issue a wildcard certificate); list each name, in host and aliases"),
        ("route: {host: shop.example.com, aliases: ['a b'], tls: acme}", "services/web.yaml:7:43: invalid host \"a b\": use a DNS name such as shop.example.com"),
        ("route: {host: shop.example.com, aliases: [Shop.example.com]}", "services/web.yaml:7:43: alias shop.example.com is listed twice"),
        ("route: {host: shop.example.com, hsts: 1y}", "services/web.yaml:7:39: route.hsts needs route.tls: without TLS there is no HTTPS to send clients to"),
        ("route: {host: shop.example.com, tls: acme, hsts: soon}", "services/web.yaml:7:50: invalid duration \"soon\": expected number at 0"),
    ];
    for (route, want) in cases {
        let got = load_web(&with_route(route)).unwrap_err();
        assert_eq!(got.len(), 1, "{route}: {got:?}");
        assert!(got[0].starts_with(want), "{route}:\n got {}\nwant {want}", got[0]);
    }
}

#[test]
fn the_routes_of_one_host_agree_on_tls() {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert(
        "services/web.yaml".into(),
        with_route("route: {host: shop.example.com, tls: acme}"),
    );
    f.files.insert(
        "services/api.yaml".into(),
        with_route("route: {host: shop.example.com, path: /api}"),
    );
    let errs: Vec<String> = load(&f).unwrap_err().0.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errs,
        ["services/web.yaml:7:38: host shop.example.com is also routed by services/api.yaml with other TLS settings: the routes of one host must have the same tls, redirect and hsts"]
    );
    // An alias is a route host too.
    f.files.insert(
        "services/api.yaml".into(),
        with_route("route: {host: api.example.com, aliases: [shop.example.com]}"),
    );
    let errs: Vec<String> = load(&f).unwrap_err().0.iter().map(|d| d.to_string()).collect();
    assert!(
        errs[0].contains("route shop.example.com/ is already served by services/api.yaml"),
        "{errs:?}"
    );
}
