//! The release step in plans: before new containers of a color, once,
//! and not on a host whose fleet runs it elsewhere.

use std::time::Duration;

use super::tests::{steps, with, V1, V2};
use super::*;
use crate::spec::Color::*;

#[test]
fn a_release_runs_before_new_containers_of_the_color_taking_traffic_only() {
    let release = || {
        Some(crate::spec::release::Release {
            command: vec!["bin/migrate".into()],
            timeout: Duration::from_secs(300),
            env: Default::default(),
            on_rollback: false,
            on: None,
            elsewhere: None,
        })
    };
    let first = with(|s| s.release = release());
    let (_, got, _) = steps(None, Some(first.clone()));
    let names: Vec<String> = got.iter().map(|s| format!("{s:?}")).collect();
    assert!(
        matches!(&got[..3], [Step::PullImage { .. }, Step::Release { color: Blue, image }, Step::StartColor { .. }] if image == V1),
        "{names:?}"
    );
    // The bump: green is new, so the release runs first; blue then kept.
    let bumped = with(|s| {
        s.release = release();
        s.images.green = Some(V2.into());
        s.active = Green;
    });
    let (_, got, _) = steps(Some(first.clone()), Some(bumped.clone()));
    assert_eq!(got.iter().filter(|s| matches!(s, Step::Release { .. })).count(), 1);
    assert!(
        matches!(&got[1], Step::Release { color: Green, image } if image == V2),
        "{got:?}"
    );
    // A revert to the warm old color makes no container: no release.
    let back = with(|s| {
        s.release = release();
        s.images.green = Some(V2.into());
    });
    let (_, got, _) = steps(Some(bumped), Some(back));
    assert!(!got.iter().any(|s| matches!(s, Step::Release { .. })), "{got:?}");
    // Rolling: pull, release, roll.
    let rolling = |img: &str| {
        with(|s| {
            s.release = release();
            s.images.blue = Some(img.into());
            s.strategy = crate::spec::Strategy::Rolling {
                max_surge: 1,
                hold: Duration::from_secs(1),
            };
        })
    };
    let (_, got, _) = steps(Some(rolling(V1)), Some(rolling(V2)));
    assert!(
        matches!(
            &got[..],
            [Step::PullImage { .. }, Step::Release { .. }, Step::Roll { .. }, ..]
        ),
        "{got:?}"
    );
}

#[test]
fn a_host_whose_fleet_runs_the_release_elsewhere_plans_none() {
    let release = |elsewhere: Option<&str>| {
        Some(crate::spec::release::Release {
            command: vec!["bin/migrate".into()],
            timeout: Duration::from_secs(300),
            env: Default::default(),
            on_rollback: false,
            on: None,
            elsewhere: elsewhere.map(String::from),
        })
    };
    let here = with(|s| s.release = release(None));
    let there = with(|s| s.release = release(Some("web-1")));
    let (_, got, _) = steps(None, Some(here));
    assert!(got.iter().any(|s| matches!(s, Step::Release { .. })), "{got:?}");
    let (_, got, _) = steps(None, Some(there));
    assert!(
        matches!(&got[..2], [Step::PullImage { .. }, Step::StartColor { .. }]),
        "{got:?}"
    );
    assert!(!got.iter().any(|s| matches!(s, Step::Release { .. })), "{got:?}");
}
