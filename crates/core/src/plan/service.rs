//! Planning one service: the ordered steps that take what runs to what the
//! commit asks for, or a refusal when that would disturb live traffic.

use crate::spec::container::ContainerSpec;
use crate::spec::{Color, PerColor, Service, Strategy};

use super::refusal::{refusal, secret_changes};
use super::{is_service, route_hash, Change, ObservedContainer, ObservedService, ServicePlan, Step, Transition};

/// How the containers of one color compare with its desired spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Exactly the desired replicas, all running with the desired spec.
    Ready,
    /// Every desired replica exists with the right spec, some are stopped.
    Stopped,
    /// Replicas must be created or replaced (a pull may be needed).
    Create,
    /// Replicas 0..n are ready, and higher replicas must go (scale down).
    Extra,
    /// No desired image and no containers.
    Absent,
    /// No desired image but containers exist.
    Remove,
}

fn state(svc: &Service, color: Color, have: &[ObservedContainer]) -> State {
    let Some(spec) = ContainerSpec::of(svc, color) else {
        return if have.is_empty() { State::Absent } else { State::Remove };
    };
    let hash = spec.hash();
    let want = svc.replicas;
    let ok = |n: u32| have.iter().find(|c| c.replica == n).filter(|c| c.spec_hash == hash);
    if (0..want).any(|n| ok(n).is_none()) {
        return State::Create;
    }
    if (0..want).any(|n| ok(n).is_some_and(|c| !c.running)) {
        return State::Stopped;
    }
    if have.iter().any(|c| c.replica >= want) {
        return State::Extra;
    }
    State::Ready
}

/// Steps that bring `color` to `Ready` (without health checks).
fn start(svc: &Service, color: Color, st: State, steps: &mut Vec<Step>) {
    let Some(spec) = ContainerSpec::of(svc, color) else {
        return;
    };
    if st == State::Create {
        steps.push(Step::PullImage {
            color,
            image: spec.image.clone(),
        });
    }
    if matches!(st, State::Create | State::Stopped) {
        steps.push(Step::StartColor {
            color,
            image: spec.image.clone(),
            replicas: svc.replicas,
            spec_hash: spec.hash(),
        });
    }
}

fn image_of(have: &[ObservedContainer]) -> Option<String> {
    have.first().map(|c| c.image.clone())
}

/// Plans one service; `desired` or `observed` is `None` for a new or a
/// deleted service.
pub(super) fn plan_service(name: &str, desired: Option<&Service>, observed: Option<&ObservedService>) -> ServicePlan {
    let empty = ObservedService::default();
    let obs = observed.unwrap_or(&empty);
    let images = PerColor {
        blue: Transition {
            from: image_of(&obs.containers.blue),
            to: desired.and_then(|d| d.images.blue.clone()),
        },
        green: Transition {
            from: image_of(&obs.containers.green),
            to: desired.and_then(|d| d.images.green.clone()),
        },
    };
    let mut plan = ServicePlan {
        service: name.to_string(),
        change: Change::None,
        active: Transition {
            from: obs.live,
            to: desired.map(|d| d.active),
        },
        images,
        gate: None,
        steps: vec![],
        refused: None,
        hosts: vec![],
        secrets: vec![],
    };
    let Some(svc) = desired else {
        // The service's own drain went with its file: the default one.
        let routed = obs.route_hash.is_some();
        plan.steps.push(Step::RemoveService {
            drain: routed.then_some(crate::spec::defaults::DRAIN),
        });
        plan.change = Change::Delete;
        return plan;
    };
    if let Some(why) = &svc.secret_error {
        plan.change = Change::Refused;
        plan.refused = Some(format!(
            "cannot deploy {name} on this host: {why}; what runs keeps running"
        ));
        return plan;
    }
    if let Some(rb) = obs.rolled_back.as_ref().filter(|rb| is_service(&rb.service_hash, svc)) {
        plan.change = Change::RolledBack;
        plan.refused = Some(format!(
            "rolled back by analysis at {}: {}; revert or push a fix",
            crate::commit::ShortCommit::of(&rb.commit),
            rb.figures
        ));
        return plan;
    }
    plan.secrets = secret_changes(svc, obs);
    if let Some(why) = refusal(svc, obs) {
        plan.change = Change::Refused;
        plan.refused = Some(why);
        return plan;
    }
    plan.steps = steps(svc, obs);
    if plan.steps.iter().any(|s| matches!(s, Step::WaitHealthy { .. })) {
        plan.gate = Some(svc.health.clone());
    }
    let exists = obs.live.is_some() || !obs.containers.blue.is_empty() || !obs.containers.green.is_empty();
    plan.change = match (plan.steps.is_empty(), exists) {
        (true, _) => Change::None,
        (false, false) => Change::Create,
        (false, true) => Change::Update,
    };
    plan
}

fn steps(svc: &Service, obs: &ObservedService) -> Vec<Step> {
    let target = svc.active;
    let idle = target.other();
    let st = state(svc, target, obs.containers.get(target));
    let mut steps = Vec::new();
    let same_route = obs.route_hash.as_deref() == Some(route_hash(svc).as_str()) && !obs.route_drifted;
    let route_stale = !same_route || obs.stale_peers;
    if obs.live != Some(target) {
        if let Some(old) = obs.live {
            repair_live(svc, obs, old, same_route, &mut steps);
        }
        // A new color takes traffic: start what is missing (after the
        // release, when new containers are made), check, switch.
        start(svc, target, st, &mut steps);
        release_first(svc, target, &mut steps);
        steps.push(Step::WaitHealthy { color: target });
        move_traffic(svc, obs.live, target, &mut steps);
        if st == State::Extra {
            steps.push(Step::RemoveReplicas {
                color: target,
                keep: svc.replicas,
            });
        }
        if let Some(old) = obs.live {
            steps.push(Step::Drain {
                color: old,
                duration: svc.switch.drain,
            });
        }
    } else if let Some(roll) = rolling(svc, target, st, obs.containers.get(target)) {
        steps.extend(roll);
    } else {
        match st {
            State::Ready if route_stale => steps.push(Step::Reroute { color: target }),
            State::Ready | State::Absent | State::Remove => {}
            State::Extra => {
                steps.push(Step::Reroute { color: target });
                steps.push(Step::RemoveReplicas {
                    color: target,
                    keep: svc.replicas,
                });
            }
            State::Create | State::Stopped => {
                // Missing or stopped replicas of the live color (scale up,
                // drift): the ones that run keep serving meanwhile.
                start(svc, target, st, &mut steps);
                steps.push(Step::WaitHealthy { color: target });
                steps.push(Step::Reroute { color: target });
                if has_extra(svc, obs.containers.get(target)) {
                    steps.push(Step::RemoveReplicas {
                        color: target,
                        keep: svc.replicas,
                    });
                }
            }
        }
    }
    idle_steps(svc, obs, idle, &mut steps);
    steps
}

/// What serves now is set right before a new color is tried: a deploy
/// that fails, and waits for its retry, must not leave the old color's
/// traffic going astray. Its replicas stopped (a dockerd restarted
/// without live-restore): started and checked again; back at other
/// addresses: the entry follows them.
fn repair_live(svc: &Service, obs: &ObservedService, old: Color, same_route: bool, steps: &mut Vec<Step>) {
    if state(svc, old, obs.containers.get(old)) == State::Stopped {
        start(svc, old, State::Stopped, steps);
        steps.push(Step::WaitHealthy { color: old });
        steps.push(Step::Reroute { color: old });
    } else if obs.stale_peers && same_route {
        steps.push(Step::Reroute { color: old });
    }
}

/// A rolling service whose live color needs new or replaced replicas, or
/// has one left half swapped (a `-next` container, a twin Swarm service's
/// task): pull, then roll.
fn rolling(svc: &Service, color: Color, st: State, have: &[ObservedContainer]) -> Option<Vec<Step>> {
    let Strategy::Rolling { max_surge, .. } = svc.strategy else {
        return None;
    };
    let spec = ContainerSpec::of(svc, color)?;
    let half_swapped = have.iter().any(|c| !c.at_rest(&svc.name, color));
    (st == State::Create || half_swapped).then(|| {
        let release = svc
            .release
            .as_ref()
            .filter(|r| r.elsewhere.is_none())
            .map(|_| Step::Release {
                color,
                image: spec.image.clone(),
            });
        let pull = Step::PullImage {
            color,
            image: spec.image.clone(),
        };
        [pull]
            .into_iter()
            .chain(release)
            .chain([Step::Roll {
                color,
                image: spec.image.clone(),
                replicas: svc.replicas,
                max_surge,
            }])
            .collect()
    })
}

/// With a release command, a `Release` step before new containers of
/// `color` start (not when stopped ones start again: no new version).
fn release_first(svc: &Service, color: Color, steps: &mut Vec<Step>) {
    // None here when another host of the fleet runs it (the daemon waits
    // for that host to serve the commit first).
    if svc.release.as_ref().is_none_or(|r| r.elsewhere.is_some()) {
        return;
    }
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::StartColor { color: c, .. } if *c == color));
    let pulled = steps
        .iter()
        .any(|s| matches!(s, Step::PullImage { color: c, .. } if *c == color));
    if let (Some(at), true, Some(image)) = (at, pulled, svc.images.get(color).clone()) {
        steps.insert(at, Step::Release { color, image });
    }
}

/// How traffic gets to `to`: by the canary's steps when there is an old
/// color to move from, else all at once, then judged for `verify`.
fn move_traffic(svc: &Service, from: Option<Color>, to: Color, steps: &mut Vec<Step>) {
    match (&svc.strategy, from) {
        (Strategy::Canary { steps: canary }, Some(from)) => steps.push(Step::Canary {
            from,
            to,
            steps: canary.clone(),
        }),
        // Blue-green waiting for a promotion: a rollout of one step at 0 %
        // that waits (the new color checked and idle), then all at once.
        (Strategy::BlueGreen, Some(from)) if svc.promotion.manual => steps.push(Step::Canary {
            from,
            to,
            steps: vec![crate::spec::CanaryStep {
                weight: 0,
                hold: std::time::Duration::ZERO,
                manual: true,
            }],
        }),
        _ => {
            steps.push(Step::Switch { from, to });
            let verify = svc.analysis.as_ref().and_then(|a| a.verify);
            if let (Some(from), Some(duration)) = (from, verify) {
                steps.push(Step::Verify {
                    color: to,
                    from,
                    duration,
                });
            }
        }
    }
}

fn has_extra(svc: &Service, have: &[ObservedContainer]) -> bool {
    have.iter().any(|c| c.replica >= svc.replicas)
}

/// The color not taking traffic: kept warm and current (`keep_idle`),
/// stopped, or removed when it has no image.
fn idle_steps(svc: &Service, obs: &ObservedService, idle: Color, steps: &mut Vec<Step>) {
    let have = obs.containers.get(idle);
    let st = state(svc, idle, have);
    let preview = svc.preview.is_some();
    match st {
        State::Absent => {}
        State::Remove => steps.push(Step::RemoveColor { color: idle }),
        _ if !svc.switch.keep_idle => {
            if have.iter().any(|c| c.running) {
                steps.push(Step::StopColor { color: idle });
            }
        }
        State::Ready => {}
        State::Extra => steps.push(Step::RemoveReplicas {
            color: idle,
            keep: svc.replicas,
        }),
        State::Create | State::Stopped => {
            start(svc, idle, st, steps);
            steps.push(Step::WaitHealthy { color: idle });
            if has_extra(svc, have) {
                steps.push(Step::RemoveReplicas {
                    color: idle,
                    keep: svc.replicas,
                });
            }
            if preview {
                // The preview serves the idle color: point it at the new containers.
                steps.push(Step::Reroute { color: svc.active });
            }
        }
    }
}
