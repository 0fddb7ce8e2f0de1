//! Snapshots of the nginx files teal renders for plain (no TLS) routes,
//! both ways of switching: what an operator's nginx reads, kept byte for
//! byte unless a change means it.

use super::render::{servers, service};
use crate::drivers::route::{Backend, PreviewRoute, RouteSpec};
use crate::spec::{Color, PerColor};

fn route(service: &str, host: &str, path: &str) -> RouteSpec {
    RouteSpec {
        service: service.into(),
        host: host.into(),
        aliases: vec![],
        path: path.into(),
        tls: None,
        backends: PerColor {
            blue: Backend {
                weight: 90,
                addrs: vec!["10.0.0.2:8080".parse().unwrap(), "10.0.0.3:8080".parse().unwrap()],
            },
            green: Backend {
                weight: 10,
                addrs: vec!["10.0.0.4:8080".parse().unwrap()],
            },
        },
        preview: None,
        commit: "c1".into(),
        traffic: Default::default(),
        next: None,
        route_hash: "h1".into(),
    }
}

fn routes() -> Vec<RouteSpec> {
    let mut web = route("web", "shop.test", "/");
    web.preview = Some(PreviewRoute {
        host: "preview.shop.test".into(),
        allow: vec!["10.0.0.0/8".parse().unwrap()],
        color: Color::Green,
    });
    vec![
        route("api", "shop.test", "/api"),
        route("docs", "docs.test", "/docs"),
        web,
    ]
}

#[test]
fn service_files_of_plain_routes() {
    let [api, _, web] = &routes()[..] else { unreachable!() };
    insta::assert_snapshot!("service_balanced", service(web, true));
    insta::assert_snapshot!("service_reload", service(web, false));
    insta::assert_snapshot!("service_reload_no_preview", service(api, false));
}

#[test]
fn servers_of_plain_routes() {
    let routes = routes();
    insta::assert_snapshot!(
        "servers_balanced",
        servers(&routes, "127.0.0.1:8080", "tok", true, true, None)
    );
    insta::assert_snapshot!(
        "servers_reload_no_keepalive",
        servers(&routes, "0.0.0.0:80", "tok", false, false, None)
    );
}

#[test]
fn servers_of_a_tls_route_listen_with_ssl_and_plain_ones_stay_as_they_were() {
    let mut routes = routes();
    let web = routes.iter_mut().find(|r| r.service == "web").unwrap();
    web.aliases = vec!["www.shop.test".into()];
    web.tls = Some(crate::spec::RouteTls {
        source: crate::spec::TlsSource::Acme,
        redirect: true,
        hsts: Some(std::time::Duration::from_secs(3600)),
    });
    let tls = super::tls::Tls {
        https: "127.0.0.1:8443".into(),
        dir: "/s/nginx".into(),
    };
    let text = servers(&routes, "127.0.0.1:8080", "tok", true, true, Some(&tls));
    insta::assert_snapshot!("servers_tls", text);
    // docs.test has no TLS route: its server is the plain one.
    let plain = servers(&routes, "127.0.0.1:8080", "tok", true, true, None);
    let docs = |t: &str| {
        t.split("server {")
            .find(|s| s.contains("\"docs.test\""))
            .unwrap()
            .to_string()
    };
    assert_eq!(docs(&text), docs(&plain));
}
