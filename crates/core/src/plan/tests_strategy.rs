//! Planner rows for strategies: how traffic moves once the new color is
//! checked, and the hold after a rollback.

use std::time::Duration;

use super::tests::{desired, with, V2};
use super::*;
use crate::spec::Color::*;
use crate::spec::{Analysis, CanaryStep, Strategy};

fn bumped(f: impl Fn(&mut Service)) -> Service {
    with(|s| {
        s.images.green = Some(V2.into());
        s.active = Green;
        f(s);
    })
}

fn steps_of(base: &Service, head: &Service, tweak: impl Fn(&mut Observed)) -> ServicePlan {
    let mut obs = Observed::converged(&desired(std::slice::from_ref(base)));
    tweak(&mut obs);
    plan(&desired(std::slice::from_ref(head)), &obs).services.remove(0)
}

fn canary_steps() -> Vec<CanaryStep> {
    vec![CanaryStep {
        weight: 10,
        hold: Duration::from_secs(30),
        manual: false,
    }]
}

#[test]
fn a_canary_moves_traffic_by_its_steps_after_the_checks() {
    let base = with(|_| {});
    let head = bumped(|s| s.strategy = Strategy::Canary { steps: canary_steps() });
    let sp = steps_of(&base, &head, |_| {});
    let moves: Vec<&Step> = sp
        .steps
        .iter()
        .skip_while(|s| !matches!(s, Step::WaitHealthy { .. }))
        .collect();
    assert_eq!(
        moves,
        [
            &Step::WaitHealthy { color: Green },
            &Step::Canary {
                from: Blue,
                to: Green,
                steps: canary_steps()
            },
            &Step::Drain {
                color: Blue,
                duration: Duration::from_secs(5)
            },
        ]
    );
    assert_eq!(render::step(moves[1]), "canary blue -> green: 10 % -> 100 %, holds 30s");
}

#[test]
fn a_first_deploy_has_nothing_to_canary_from() {
    let head = with(|s| s.strategy = Strategy::Canary { steps: canary_steps() });
    let sp = plan(&desired(std::slice::from_ref(&head)), &Observed::default())
        .services
        .remove(0);
    assert!(
        sp.steps.contains(&Step::Switch { from: None, to: Blue }),
        "{:?}",
        sp.steps
    );
}

#[test]
fn verify_follows_a_blue_green_switch_and_precedes_the_drain() {
    let base = with(|_| {});
    let head = bumped(|s| {
        s.analysis = Some(Analysis {
            max_errors: Some(1.0),
            min_requests: 20,
            verify: Some(Duration::from_secs(60)),
            prometheus: None,
        });
        s.switch.keep_idle = false;
    });
    let sp = steps_of(&base, &head, |_| {});
    let names: Vec<String> = sp.steps.iter().map(render::step).collect();
    let at = |p: &str| {
        names
            .iter()
            .position(|n| n.starts_with(p))
            .unwrap_or_else(|| panic!("{p} in {names:?}"))
    };
    assert!(at("switch traffic") < at("verify green for 1m"));
    // The old color keeps running through the window: stopped after it.
    assert!(
        at("verify green") < at("drain blue") && at("drain blue") < at("stop blue"),
        "{names:?}"
    );
}

#[test]
fn a_rolled_back_service_is_held_until_a_commit_changes_it() {
    let base = with(|_| {});
    let head = bumped(|_| {});
    let hash = service_hash(&head);
    let held = |o: &mut Observed| {
        o.services.get_mut("web").unwrap().rolled_back = Some(RolledBack {
            commit: "3f2a9c1d2e4b".into(),
            service_hash: hash.clone(),
            figures: "5xx 23.1 % of 212 responses > 5 %".into(),
        })
    };
    let sp = steps_of(&base, &head, held);
    assert_eq!(sp.change, Change::RolledBack);
    assert!(sp.steps.is_empty());
    assert_eq!(
        sp.refused.as_deref(),
        Some("rolled back by analysis at 3f2a9c1d2e: 5xx 23.1 % of 212 responses > 5 %; revert or push a fix")
    );
    // A fix (another image) is a new service: planned as usual.
    let fixed = with(|s| {
        s.images.green = Some("registry.example.com/shop/web:1.4.3".into());
        s.active = Green;
    });
    assert_eq!(steps_of(&base, &fixed, held).change, Change::Update);
}

#[test]
fn a_rolling_service_replaces_its_live_color_in_place() {
    let rolling = |image: &str| {
        with(|s| {
            s.images.blue = Some(image.into());
            s.strategy = Strategy::Rolling {
                max_surge: 2,
                hold: Duration::from_secs(10),
            };
        })
    };
    let base = rolling("registry.example.com/shop/web:1.4.1");
    let head = rolling(V2);
    let sp = steps_of(&base, &head, |_| {});
    assert_eq!(
        sp.change,
        Change::Update,
        "not refused: rolling changes the live color by design"
    );
    assert_eq!(
        sp.steps,
        [
            Step::PullImage {
                color: Blue,
                image: V2.into()
            },
            Step::Roll {
                color: Blue,
                image: V2.into(),
                replicas: 2,
                max_surge: 2
            }
        ]
    );
    assert_eq!(
        render::step(&sp.steps[1]),
        format!("rolling update of blue to {V2}: 2 replicas, 2 at a time")
    );
    // A replica left half swapped by a crash is finished by a roll too.
    let sp = steps_of(&head, &head, |o| {
        let c = &mut o.services.get_mut("web").unwrap().containers.blue[1];
        c.name = format!("{}-next", c.name);
    });
    assert!(matches!(sp.steps.last(), Some(Step::Roll { .. })), "{:?}", sp.steps);
    // At rest: nothing to do.
    assert!(steps_of(&head, &head, |_| {}).steps.is_empty());
}

#[test]
fn a_plan_says_which_hosts_each_change_reaches() {
    let mut d = desired(&[with(|s| {
        s.placement = [("role".to_string(), "web".to_string())].into();
    })]);
    for (name, role) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db")] {
        d.hosts.insert(
            name.into(),
            crate::spec::FleetHost {
                labels: [("role".to_string(), role.to_string())].into(),
                status: None,
            },
        );
    }
    let p = plan(&d, &Observed::default());
    assert_eq!(p.services[0].hosts, ["web-1", "web-2"]);
    assert!(
        render::text(&p, false).contains("    hosts: web-1, web-2\n"),
        "{}",
        render::text(&p, false)
    );
    assert_eq!(
        render::json(&p)["services"][0]["hosts"],
        serde_json::json!(["web-1", "web-2"])
    );
    assert!(render::markdown(&p).contains("| web-1, web-2 |"));
}
