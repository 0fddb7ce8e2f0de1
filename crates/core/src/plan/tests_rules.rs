//! Planner rules beyond the transition table: refusals, health gates,
//! drift on the live color, plan fields and the rendered views.

use super::tests::{desired, hash, steps, web, with, V1, V2};
use super::*;
use crate::spec::{Color::*, Probe};

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
fn a_deploy_repairs_the_live_colors_moved_peers_before_anything_else() {
    // Blue serves; its replicas came back at other addresses (a dockerd
    // restarted without live-restore) while a deploy to green is due.
    // Blue's entry is set right first: if green then fails, and waits
    // for its retry, blue's traffic does not go to whatever took its
    // old addresses.
    let base = desired(&[web()]);
    let head = desired(&[with(|s| {
        s.images.green = Some(V2.into());
        s.active = Green;
    })]);
    let mut obs = Observed::converged(&base);
    obs.services.get_mut("web").unwrap().stale_peers = true;
    let steps = &plan(&head, &obs).services[0].steps;
    assert_eq!(steps[0], Step::Reroute { color: Blue }, "{steps:?}");
    assert!(matches!(steps[1], Step::PullImage { .. }), "{steps:?}");
    // Peers in place: no such step.
    let steps = &plan(&head, &Observed::converged(&base)).services[0].steps;
    assert!(matches!(steps[0], Step::PullImage { .. }), "{steps:?}");
    // Blue's replicas stopped (dockerd restarted without live-restore and
    // did not start them): started and checked, and routed, first.
    let mut obs = Observed::converged(&base);
    for c in &mut obs.services.get_mut("web").unwrap().containers.blue {
        c.running = false;
    }
    let steps = &plan(&head, &obs).services[0].steps;
    assert!(matches!(steps[0], Step::StartColor { color: Blue, .. }), "{steps:?}");
    assert_eq!(
        steps[1..3],
        [Step::WaitHealthy { color: Blue }, Step::Reroute { color: Blue }]
    );
    assert!(matches!(steps[3], Step::PullImage { color: Green, .. }), "{steps:?}");
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

    #[test]
    fn outside_text_in_a_reason_is_escaped_in_text_and_markdown_and_exact_in_json() {
        let mut p = scenario("refused");
        p.services[0].refused = Some("no\x1b]0;pwned\x07\rok".into());
        for out in [render::text(&p, false), render::text(&p, true), render::markdown(&p)] {
            assert!(!out.contains(['\x07', '\r']) && !out.contains("\x1b]"), "{out:?}");
            assert!(out.contains("no\\u{1b}]0;pwned\\u{7}\\rok"), "{out}");
        }
        assert_eq!(render::json(&p)["services"][0]["refused"], "no\x1b]0;pwned\x07\rok");
    }
}

#[test]
fn a_deleted_service_the_proxy_does_not_route_is_removed_without_a_drain() {
    let mut obs = Observed::converged(&desired(&[web()]));
    for s in obs.services.values_mut() {
        s.route_hash = None;
        s.live = None;
    }
    let p = plan(&desired(&[]), &obs);
    assert_eq!(p.services[0].steps, vec![Step::RemoveService { drain: None }]);
}

#[test]
fn the_service_hash_hides_env_values_and_knows_an_older_teals() {
    let svc = with(|s| {
        s.env.insert("TOKEN".into(), "1234".into());
        s.env_key = crate::spec::env_seal::EnvKey::new([5; 32]);
    });
    let older = hex::encode(Sha256::digest(serde_json::to_string(&svc).unwrap().as_bytes()));
    assert_ne!(service_hash(&svc), older, "keyed: no guessing the value back");
    assert!(is_service(&service_hash(&svc), &svc));
    assert!(is_service(&older, &svc), "a record from before the upgrade");
    let changed = with(|s| {
        s.env.insert("TOKEN".into(), "1235".into());
        s.env_key = svc.env_key;
    });
    assert!(!is_service(&service_hash(&svc), &changed));
    assert!(!is_service(&older, &changed));
}
