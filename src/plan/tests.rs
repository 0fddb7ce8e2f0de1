//! Planner table: one row per transition, asserting the exact steps.

use std::time::Duration;

use super::*;
use crate::spec::{Color::*, Health, Preview, Probe, RestartPolicy, Route, Service, Strategy, Switch};

const V1: &str = "registry.example.com/shop/web:1.4.1";
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
        placement: Default::default(),
        by_wave: false,
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

fn hash(s: &Service, c: crate::spec::Color) -> String {
    crate::spec::container::ContainerSpec::of(s, c).unwrap().hash()
}

fn drain() -> Step {
    Step::Drain {
        color: Blue,
        duration: Duration::from_secs(5),
    }
}

/// Plans `to` against a host fully converged on `from`, for `web` only.
fn steps(from: Option<Service>, to: Option<Service>) -> (Change, Vec<Step>, Option<String>) {
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
            vec![Step::RemoveService],
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

#[test]
fn changing_the_live_color_is_refused() {
    let (change, steps_, why) = steps(Some(web()), Some(with(|s| s.images.blue = Some(V2.into()))));
    assert_eq!((change, steps_), (Change::Refused, vec![]));
    assert_eq!(
        why.unwrap(),
        "services/web.yaml: the image of blue, the color serving traffic, would change from registry.example.com/shop/web:1.4.1 to registry.example.com/shop/web:1.4.2: that restarts the live color under traffic. Stage the change on the idle color (green) and flip active in the same commit; 'teal bump web registry.example.com/shop/web:1.4.2' does exactly that."
    );
    let (change, _, why) = steps(
        Some(web()),
        Some(with(|s| {
            s.env.insert("A".into(), "1".into());
        })),
    );
    assert_eq!(change, Change::Refused);
    assert_eq!(
        why.unwrap(),
        "services/web.yaml: the setting env.A of blue, the color serving traffic, would change: that restarts the live color under traffic. Stage the change on the idle color (green) and flip active in the same commit; the idle color picks up the new settings and is checked before traffic moves."
    );
}

#[test]
fn a_refusal_names_every_changed_field_or_the_group_without_a_recorded_spec() {
    let changed = with(|s| {
        s.images.blue = Some(V2.into());
        s.port = 9090;
        s.env.insert("A".into(), "1".into());
    });
    let (_, _, why) = steps(Some(web()), Some(changed.clone()));
    assert!(
        why.as_deref().unwrap().contains("would change from registry.example.com/shop/web:1.4.1 to registry.example.com/shop/web:1.4.2, and so would port and env.A: "),
        "{why:?}"
    );
    // Containers created before teal recorded their spec: the group is named.
    let mut obs = Observed::converged(&desired(&[web()]));
    for c in obs.services.get_mut("web").unwrap().containers.blue.iter_mut() {
        c.spec = None;
    }
    let changed = with(|s| s.volumes = vec!["/srv:/data".into()]);
    let why = plan(&desired(&[changed]), &obs).services[0].refused.clone().unwrap();
    assert!(
        why.contains("the container settings (env, command, port, volumes, labels, restart or network) of blue"),
        "{why}"
    );
}

#[test]
fn traffic_never_moves_without_a_health_check_first() {
    // Property over every transition above and some drift: each Switch is
    // preceded by a WaitHealthy of the same color.
    let cases = [
        (None, with(|s| s.active = Blue)),
        (
            Some(web()),
            with(|s| {
                s.images.green = Some(V2.into());
                s.active = Green;
            }),
        ),
        (
            Some(with(|s| {
                s.images.green = Some(V2.into());
                s.active = Green;
            })),
            with(|s| s.images.green = Some(V2.into())),
        ),
    ];
    for (from, to) in cases {
        let (_, steps, _) = steps(from, Some(to));
        for (i, s) in steps.iter().enumerate() {
            if let Step::Switch { to, .. } = s {
                assert!(steps[..i].contains(&Step::WaitHealthy { color: *to }), "{steps:?}");
            }
        }
    }
}

#[test]
fn drift_on_the_live_color_is_repaired_under_a_health_gate() {
    let d = desired(&[web()]);
    let mut obs = Observed::converged(&d);
    obs.services.get_mut("web").unwrap().containers.blue[1].running = false;
    let sp = &plan(&d, &obs).services[0];
    assert_eq!(sp.change, Change::Update);
    assert_eq!(
        sp.steps,
        vec![
            Step::StartColor {
                color: Blue,
                image: V1.into(),
                replicas: 2,
                spec_hash: hash(&web(), Blue)
            },
            Step::WaitHealthy { color: Blue },
            Step::Reroute { color: Blue },
        ]
    );
    // A hand-edited proxy entry is re-rendered, and so is one whose peers
    // are not the running replicas.
    let mut obs = Observed::converged(&d);
    obs.services.get_mut("web").unwrap().route_drifted = true;
    assert_eq!(plan(&d, &obs).services[0].steps, vec![Step::Reroute { color: Blue }]);
    let mut obs = Observed::converged(&d);
    obs.services.get_mut("web").unwrap().stale_peers = true;
    assert_eq!(plan(&d, &obs).services[0].steps, vec![Step::Reroute { color: Blue }]);
}

#[test]
fn nothing_serving_is_a_first_switch_even_with_containers() {
    // Containers survive but the proxy lost its entry (fresh proxy): check
    // again and route, without recreating anything.
    let d = desired(&[web()]);
    let mut obs = Observed::converged(&d);
    let o = obs.services.get_mut("web").unwrap();
    o.live = None;
    o.route_hash = None;
    let sp = &plan(&d, &obs).services[0];
    assert_eq!(
        sp.steps,
        vec![Step::WaitHealthy { color: Blue }, Step::Switch { from: None, to: Blue }]
    );
    assert_eq!(sp.change, Change::Update);
}

#[test]
fn plan_fields_describe_the_transition() {
    let base = desired(&[web()]);
    let head = desired(&[with(|s| {
        s.images.green = Some(V2.into());
        s.active = Green;
    })]);
    let p = plan(&head, &Observed::converged(&base));
    let sp = &p.services[0];
    assert_eq!(
        sp.active,
        Transition {
            from: Some(Blue),
            to: Some(Green)
        }
    );
    assert_eq!(
        sp.images.green,
        Transition {
            from: None,
            to: Some(V2.to_string())
        }
    );
    assert_eq!(
        sp.images.blue,
        Transition {
            from: Some(V1.to_string()),
            to: Some(V1.to_string())
        }
    );
    assert_eq!(sp.gate.as_ref(), Some(&web().health));
    assert!(p.has_changes() && p.services.iter().all(|s| s.refused.is_none()));
    assert!(!plan(&base, &Observed::converged(&base)).has_changes());
}

mod render_snapshots {
    use super::*;

    fn api() -> Service {
        with(|s| {
            s.name = "api".into();
            s.file = "services/api.yaml".into();
            s.images.blue = Some("registry.example.com/shop/api:2.0.0".into());
            s.route.host = "api.example.com".into();
            s.replicas = 1;
            s.health.probe = Probe::Tcp;
        })
    }

    fn bumped() -> Service {
        with(|s| {
            s.images.green = Some(V2.into());
            s.active = Green;
        })
    }

    fn scenario(name: &str) -> Plan {
        let (base, head) = match name {
            "bump" => (vec![web()], vec![bumped()]),
            "revert" => (vec![bumped()], vec![with(|s| s.images.green = Some(V2.into()))]),
            "new" => (vec![web()], vec![web(), api()]),
            "removed" => (vec![web(), api()], vec![web()]),
            "refused" => (vec![web()], vec![with(|s| s.images.blue = Some(V2.into()))]),
            "none" => (vec![web()], vec![web()]),
            _ => unreachable!(),
        };
        plan(&desired(&head), &Observed::converged(&desired(&base)))
    }

    #[test]
    fn text_markdown_and_json() {
        for name in ["bump", "revert", "new", "removed", "refused", "none"] {
            let p = scenario(name);
            insta::assert_snapshot!(format!("{name}_text"), render::text(&p, false));
            insta::assert_snapshot!(format!("{name}_markdown"), render::markdown(&p));
            insta::assert_json_snapshot!(format!("{name}_json"), render::json(&p));
        }
    }

    #[test]
    fn text_is_coloured_only_when_asked() {
        let p = scenario("bump");
        assert!(!render::text(&p, false).contains('\x1b'));
        insta::assert_snapshot!("bump_text_colour", render::text(&p, true).replace('\x1b', "\\e"));
    }
}
