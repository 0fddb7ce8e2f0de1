//! When a commit may not be applied as it stands: a change to the live
//! color's containers without a flip would restart it under traffic.

use crate::spec::container::ContainerSpec;
use crate::spec::{Service, Strategy};

use super::ObservedService;

/// The live color keeps serving while it is live: a change to its
/// container spec without a flip would restart it under traffic. The
/// message names the fields that changed when the container carries the
/// spec it was created from.
pub(super) fn refusal(svc: &Service, obs: &ObservedService) -> Option<String> {
    if matches!(svc.strategy, Strategy::Rolling { .. }) {
        // Replacing the live color in place is what rolling does, a few
        // checked replicas at a time.
        return None;
    }
    let live = obs.live.filter(|l| *l == svc.active)?;
    let spec = ContainerSpec::of(svc, live)?;
    let hash = spec.hash();
    let running = obs.containers.get(live);
    let stale = running.iter().find(|c| c.spec_hash != hash)?;
    let idle = live.other();
    let mut fields = stale.spec.as_ref().map(|old| old.changes(&spec)).unwrap_or_default();
    fields.retain(|f| f != "image");
    let what = if stale.image != spec.image {
        let also = if fields.is_empty() {
            String::new()
        } else {
            format!(", and so would {}", and_list(&fields))
        };
        format!(
            "the image of {live}, the color serving traffic, would change from {} to {}{also}",
            stale.image, spec.image
        )
    } else if fields.is_empty() {
        format!("the container settings (env, command, port, volumes, labels, restart or network) of {live}, the color serving traffic, would change")
    } else {
        let s = if fields.len() == 1 { "" } else { "s" };
        format!(
            "the setting{s} {} of {live}, the color serving traffic, would change",
            and_list(&fields)
        )
    };
    let how = if stale.image != spec.image {
        format!("'teal bump {} {}' does exactly that", svc.name, spec.image)
    } else {
        "the idle color picks up the new settings and is checked before traffic moves".to_string()
    };
    Some(format!(
        "{}: {what}: that restarts the live color under traffic. Stage the change on the idle color ({idle}) and flip active in the same commit; {how}.",
        svc.file
    ))
}

/// The secrets that differ between what serves (the live color's spec,
/// as its containers carry it) and what the commit asks for.
pub(super) fn secret_changes(svc: &Service, obs: &ObservedService) -> Vec<String> {
    let Some(live) = obs.live else { return vec![] };
    let Some(old) = obs.containers.get(live).iter().find_map(|c| c.spec.as_ref()) else {
        return vec![];
    };
    ContainerSpec::of(svc, svc.active).map_or(vec![], |new| old.secret_changes(&new))
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
