//! Planner table: one row per transition, asserting the exact steps.

use std::time::Duration;

use super::*;
use crate::spec::{Color::*, Health, Preview, Probe, RestartPolicy, Route, Service, Strategy, Switch};

pub(super) const V1: &str = "registry.example.com/shop/web:1.4.1";
pub(super) const V2: &str = "registry.example.com/shop/web:1.4.2";

pub(super) fn web() -> Service {
    Service {
        name: "web".into(),
        file: "services/web.yaml".into(),
        active: Blue,
        images: PerColor {
            blue: Some(V1.into()),
            green: None,
        },
        port: 8080,
        replicas: 2,
        env: Default::default(),
        command: None,
        volumes: vec![],
        labels: Default::default(),
        restart: RestartPolicy::UnlessStopped,
        network: None,
        route: Route {
            host: "shop.example.com".into(),
            path: "/".into(),
            aliases: vec![],
            tls: None,
        },
        preview: None,
        health: Health {
            probe: Probe::Http {
                path: "/healthz".into(),
                status: 200,
                body: None,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            successes: 3,
            deadline: Duration::from_secs(60),
        },
        switch: Switch {
            drain: Duration::from_secs(5),
            keep_idle: true,
        },
        strategy: Strategy::BlueGreen,
        analysis: None,
        traffic: Default::default(),
        promotion: Default::default(),
        placement: Default::default(),
        by_wave: false,
        secrets: Default::default(),
        release: None,
        secret_error: None,
        env_key: Default::default(),
        pull: Default::default(),
        digests: Default::default(),
    }
}

pub(super) fn desired(list: &[Service]) -> Desired {
    Desired {
        services: list.iter().map(|s| (s.name.clone(), s.clone())).collect(),
        ..Default::default()
    }
}

pub(super) fn with(f: impl Fn(&mut Service)) -> Service {
    let mut s = web();
    f(&mut s);
    s
}

pub(super) fn hash(s: &Service, c: crate::spec::Color) -> String {
    crate::spec::container::ContainerSpec::of(s, c).unwrap().hash()
}

fn drain() -> Step {
    Step::Drain {
        color: Blue,
        duration: Duration::from_secs(5),
    }
}

/// Plans `to` against a host fully converged on `from`, for `web` only.
pub(super) fn steps(from: Option<Service>, to: Option<Service>) -> (Change, Vec<Step>, Option<String>) {
    let base = desired(&from.into_iter().collect::<Vec<_>>());
    let head = desired(&to.into_iter().collect::<Vec<_>>());
    let p = plan(&head, &Observed::converged(&base));
    let sp = p
        .services
        .into_iter()
        .find(|s| s.service == "web")
        .expect("web planned");
    (sp.change, sp.steps, sp.refused)
}

/// name, base, head, expected change, expected steps
type Row = (&'static str, Option<Service>, Option<Service>, Change, Vec<Step>);

#[test]
fn transitions() {
    let bumped = with(|s| {
        s.images.green = Some(V2.into());
        s.active = Green;
    });
    let two = with(|s| s.images.green = Some(V2.into()));
    let start = |c, img: &str, s: &Service| Step::StartColor {
        color: c,
        image: img.into(),
        replicas: s.replicas,
        spec_hash: hash(s, c),
    };
    let pull = |c, img: &str| Step::PullImage {
        color: c,
        image: img.into(),
    };
    let table: Vec<Row> = vec![
        (
            "first deploy",
            None,
            Some(web()),
            Change::Create,
            vec![
                pull(Blue, V1),
                start(Blue, V1, &web()),
                Step::WaitHealthy { color: Blue },
                Step::Switch { from: None, to: Blue },
            ],
        ),
        ("no change", Some(web()), Some(web()), Change::None, vec![]),
        (
            "bump with flip",
            Some(web()),
            Some(bumped.clone()),
            Change::Update,
            vec![
                pull(Green, V2),
                start(Green, V2, &bumped),
                Step::WaitHealthy { color: Green },
                Step::Switch {
                    from: Some(Blue),
                    to: Green,
                },
                drain(),
            ],
        ),
        (
            "stage on idle without flip",
            Some(web()),
            Some(two.clone()),
            Change::Update,
            vec![
                pull(Green, V2),
                start(Green, V2, &two),
                Step::WaitHealthy { color: Green },
            ],
        ),
        (
            "revert to the warm color: no new containers",
            Some(bumped.clone()),
            Some(two.clone()),
            Change::Update,
            vec![
                Step::WaitHealthy { color: Blue },
                Step::Switch {
                    from: Some(Green),
                    to: Blue,
                },
                Step::Drain {
                    color: Green,
                    duration: Duration::from_secs(5),
                },
            ],
        ),
        (
            "scale up",
            Some(web()),
            Some(with(|s| s.replicas = 3)),
            Change::Update,
            vec![
                pull(Blue, V1),
                start(Blue, V1, &with(|s| s.replicas = 3)),
                Step::WaitHealthy { color: Blue },
                Step::Reroute { color: Blue },
            ],
        ),
        (
            "scale down",
            Some(web()),
            Some(with(|s| s.replicas = 1)),
            Change::Update,
            vec![
                Step::Reroute { color: Blue },
                Step::RemoveReplicas { color: Blue, keep: 1 },
            ],
        ),
        (
            "env change with flip restages both colors",
            Some(two.clone()),
            Some(with(|s| {
                s.images.green = Some(V2.into());
                s.active = Green;
                s.env.insert("RUST_LOG".into(), "debug".into());
            })),
            Change::Update,
            {
                let e = with(|s| {
                    s.images.green = Some(V2.into());
                    s.active = Green;
                    s.env.insert("RUST_LOG".into(), "debug".into());
                });
                vec![
                    pull(Green, V2),
                    start(Green, V2, &e),
                    Step::WaitHealthy { color: Green },
                    Step::Switch {
                        from: Some(Blue),
                        to: Green,
                    },
                    drain(),
                    pull(Blue, V1),
                    start(Blue, V1, &e),
                    Step::WaitHealthy { color: Blue },
                ]
            },
        ),
        (
            "port change with flip",
            Some(two.clone()),
            Some(with(|s| {
                s.images.green = Some(V2.into());
                s.active = Green;
                s.port = 9090;
            })),
            Change::Update,
            {
                let e = with(|s| {
                    s.images.green = Some(V2.into());
                    s.active = Green;
                    s.port = 9090;
                });
                vec![
                    pull(Green, V2),
                    start(Green, V2, &e),
                    Step::WaitHealthy { color: Green },
                    Step::Switch {
                        from: Some(Blue),
                        to: Green,
                    },
                    drain(),
                    pull(Blue, V1),
                    start(Blue, V1, &e),
                    Step::WaitHealthy { color: Blue },
                ]
            },
        ),
        (
            "route change",
            Some(web()),
            Some(with(|s| s.route.path = "/shop".into())),
            Change::Update,
            vec![Step::Reroute { color: Blue }],
        ),
        (
            "deleted service",
            Some(web()),
            None,
            Change::Delete,
            // Routed on the host it leaves: out of the proxy, drained, gone.
            vec![Step::RemoveService {
                drain: Some(crate::spec::defaults::DRAIN),
            }],
        ),
        (
            "keep_idle false stops the old color",
            Some(with(|s| s.switch.keep_idle = false)),
            Some(with(|s| {
                s.images.green = Some(V2.into());
                s.active = Green;
                s.switch.keep_idle = false;
            })),
            Change::Update,
            {
                let e = with(|s| {
                    s.images.green = Some(V2.into());
                    s.active = Green;
                    s.switch.keep_idle = false;
                });
                vec![
                    pull(Green, V2),
                    start(Green, V2, &e),
                    Step::WaitHealthy { color: Green },
                    Step::Switch {
                        from: Some(Blue),
                        to: Green,
                    },
                    drain(),
                    Step::StopColor { color: Blue },
                ]
            },
        ),
        (
            "removed idle image removes its containers",
            Some(two.clone()),
            Some(web()),
            Change::Update,
            vec![Step::RemoveColor { color: Green }],
        ),
        (
            "preview: staged idle is rerouted for the preview",
            Some(with(|s| {
                s.preview = Some(Preview {
                    host: "p.example.com".into(),
                    allow: vec![],
                })
            })),
            Some(with(|s| {
                s.preview = Some(Preview {
                    host: "p.example.com".into(),
                    allow: vec![],
                });
                s.images.green = Some(V2.into());
            })),
            Change::Update,
            {
                let e = with(|s| {
                    s.preview = Some(Preview {
                        host: "p.example.com".into(),
                        allow: vec![],
                    });
                    s.images.green = Some(V2.into());
                });
                vec![
                    pull(Green, V2),
                    start(Green, V2, &e),
                    Step::WaitHealthy { color: Green },
                    Step::Reroute { color: Blue },
                ]
            },
        ),
    ];
    for (name, from, to, change, want) in table {
        let (got_change, got, refused) = steps(from, to);
        assert_eq!(refused, None, "{name}");
        assert_eq!(got, want, "{name}");
        assert_eq!(got_change, change, "{name}");
    }
}
