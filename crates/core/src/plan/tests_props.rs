//! Properties of the planner over generated service files and generated
//! host states, not chosen rows: whatever the repo says and whatever the
//! host runs, a plan never sends traffic to a color whose checks it has
//! not run, never takes down the color that serves without moving traffic
//! off it first, and plans nothing once the host runs what it planned.

use proptest::prelude::*;

use super::*;
use crate::spec::load::{load, RepoFiles};
use crate::spec::Color;

/// One service file, valid by construction in most draws (the active
/// color has an image, rolling runs one color); the rest are refused by
/// the loader and only feed its own property.
fn service_yaml() -> impl Strategy<Value = String> {
    (
        (any::<bool>(), 0..2usize, 0..3usize, 1..4u32, 0..3usize),
        (proptest::option::of(any::<bool>()), any::<bool>(), 0..3usize),
        (0..2usize, 0..2usize, 0..3usize),
    )
        .prop_map(
            |((green, img, other, replicas, strategy), (keep_idle, preview, analysis), (host, port, env))| {
                let images = ["web:1", "web:2"];
                let (active, idle) = if green { ("green", "blue") } else { ("blue", "green") };
                let mut y = format!(
                    "active: {active}\n{active}:\n  image: {}\nport: {}\nreplicas: {replicas}\n\
                     route: {{host: {}.example}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 1s\n\
                     env: {{LEVEL: '{}'}}\n",
                    images[img],
                    [8080, 9090][port],
                    ["a", "b"][host],
                    ["info", "debug", "warn"][env],
                );
                let rolling = strategy == 2;
                if other > 0 && !rolling {
                    y.push_str(&format!("{idle}:\n  image: {}\n", ["web:1", "web:2"][other - 1]));
                }
                match strategy {
                    1 => y.push_str("strategy: canary\ncanary:\n  steps: [{weight: 20, hold: 1s}]\n"),
                    2 => y.push_str("strategy: rolling\nrolling: {max_surge: 1}\n"),
                    _ => {}
                }
                if let (Some(k), false) = (keep_idle, rolling) {
                    y.push_str(&format!("switch: {{keep_idle: {k}, drain: 1s}}\n"));
                }
                if preview && !rolling {
                    y.push_str("preview: {host: preview.example}\n");
                }
                match analysis {
                    1 => y.push_str("analysis: {max_errors: 5%}\n"),
                    2 if !rolling => y.push_str("analysis: {max_errors: 5%, verify: 2s}\n"),
                    _ => {}
                }
                y
            },
        )
}

fn desired_of(yaml: &str) -> Desired {
    let mut f = RepoFiles {
        has_services_dir: true,
        ..Default::default()
    };
    f.files.insert("services/web.yaml".into(), yaml.to_string());
    load(&f).unwrap_or_else(|e| panic!("generated file refused:\n{yaml}\n{e}"))
}

/// What a host can look like: converged on some earlier commit (or on
/// nothing), then disturbed: traffic elsewhere or nowhere, replicas
/// stopped, replaced or gone, the proxy's entry lost or edited by hand,
/// weights half way through a canary.
#[derive(Debug, Clone)]
struct Disturbance {
    live: usize,
    stopped: Vec<bool>,
    respecced: Vec<bool>,
    keep: usize,
    route: usize,
    stale: bool,
    weight: u32,
}

fn disturbance() -> impl Strategy<Value = Disturbance> {
    (
        0..4usize,
        proptest::collection::vec(any::<bool>(), 6),
        proptest::collection::vec(any::<bool>(), 6),
        0..4usize,
        0..3usize,
        any::<bool>(),
        0..=100u32,
    )
        .prop_map(|(live, stopped, respecced, keep, route, stale, weight)| Disturbance {
            live,
            stopped,
            respecced,
            keep,
            route,
            stale,
            weight,
        })
}

fn observed(base: Option<&Desired>, d: &Disturbance) -> Observed {
    let Some(base) = base else {
        return Observed::default();
    };
    let mut obs = Observed::converged(base);
    for svc in obs.services.values_mut() {
        match d.live {
            1 => svc.live = None,
            2 => svc.live = Some(Color::Blue),
            3 => svc.live = Some(Color::Green),
            _ => {}
        }
        let mut i = 0;
        for color in Color::ALL {
            let list = svc.containers.get_mut(color);
            list.truncate(d.keep.max(list.len().min(1)).min(list.len()));
            for c in list.iter_mut() {
                c.running &= !d.stopped[i % 6];
                if d.respecced[i % 6] {
                    c.spec_hash = "an-older-spec".into();
                }
                i += 1;
            }
        }
        match d.route {
            1 => svc.route_hash = None,
            2 => svc.route_drifted = true,
            _ => {}
        }
        svc.stale_peers = d.stale;
        if let Some(live) = svc.live {
            *svc.weights.get_mut(live) = d.weight;
            *svc.weights.get_mut(live.other()) = 100 - d.weight;
        }
    }
    obs
}

/// The traffic rules, checked step by step with the color that serves
/// as it would be after each step.
fn check_traffic(sp: &ServicePlan, live: Option<Color>, desired: bool) -> Result<(), String> {
    let mut live = live;
    let mut checked: Vec<Color> = vec![];
    for (i, step) in sp.steps.iter().enumerate() {
        let at = || format!("step {i} {step:?} of {:?}", sp.steps);
        match step {
            Step::WaitHealthy { color } => checked.push(*color),
            Step::Switch { to, .. } | Step::Canary { to, .. } => {
                if live != Some(*to) && !checked.contains(to) {
                    return Err(format!("traffic moves to unchecked {to}: {}", at()));
                }
                live = Some(*to);
            }
            Step::Reroute { color } if live != Some(*color) => {
                if !checked.contains(color) {
                    return Err(format!("reroute sends traffic to unchecked {color}: {}", at()));
                }
                live = Some(*color);
            }
            Step::StopColor { color } | Step::RemoveColor { color } if live == Some(*color) => {
                return Err(format!("the live color {color} is taken down: {}", at()));
            }
            Step::RemoveReplicas { color, keep: 0 } if live == Some(*color) => {
                return Err(format!("every replica of the live color goes: {}", at()));
            }
            Step::RemoveService { .. } if desired => {
                return Err(format!("a desired service is removed: {}", at()));
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn traffic_only_moves_to_checked_colors_and_the_live_one_stays_up(
        head in service_yaml(),
        base in proptest::option::of(service_yaml()),
        d in disturbance(),
    ) {
        let desired = desired_of(&head);
        let base = base.map(|b| desired_of(&b));
        let observed = observed(base.as_ref(), &d);
        let plan = plan(&desired, &observed);
        for sp in &plan.services {
            let live = observed.services.get(&sp.service).and_then(|s| s.live);
            if sp.refused.is_some() {
                prop_assert!(sp.steps.is_empty(), "a refused plan acts: {sp:?}");
            }
            let wanted = desired.services.contains_key(&sp.service);
            if let Err(e) = check_traffic(sp, live, wanted) {
                return Err(TestCaseError::fail(format!("{e}\nhead:\n{head}\nobserved: {observed:#?}")));
            }
        }
    }

    #[test]
    fn a_converged_host_plans_nothing(head in service_yaml()) {
        let desired = desired_of(&head);
        let plan = plan(&desired, &Observed::converged(&desired));
        prop_assert!(!plan.has_changes(), "head:\n{head}\nplan: {plan:#?}");
    }

    #[test]
    fn a_removed_service_is_removed_whatever_its_state(base in service_yaml(), d in disturbance()) {
        let base = desired_of(&base);
        let observed = observed(Some(&base), &d);
        let plan = plan(&Desired::default(), &observed);
        prop_assert_eq!(plan.services.len(), 1);
        prop_assert_eq!(plan.services[0].change, Change::Delete);
        let steps = &plan.services[0].steps;
        prop_assert!(matches!(steps.as_slice(), [Step::RemoveService { .. }]), "{:?}", steps);
    }
}
