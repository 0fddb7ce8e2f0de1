//! `entries_after` from summaries equals `entries` on the whole log:
//! random logs of switches, reverts, failures, refusals and runs left
//! open, cut into rotated files at random lines, some summaries missing.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::summary::{skip, FileSummary, Seed};
use super::*;
use crate::spec::Color::{self, Blue, Green};

/// One line of a random log.
#[derive(Debug, Clone)]
enum Line {
    Start(Color, u8),
    Switch(Option<Color>, Color),
    Wait,
    Outcome(&'static str),
    Certificate,
}

fn line() -> impl Strategy<Value = Line> {
    let color = prop_oneof![Just(Blue), Just(Green)];
    prop_oneof![
        3 => (color.clone(), 0..3u8).prop_map(|(c, i)| Line::Start(c, i)),
        3 => (proptest::option::of(color.clone()), color).prop_map(|(f, t)| Line::Switch(f, t)),
        1 => Just(Line::Wait),
        3 => prop_oneof![Just("ok"), Just("failed"), Just("refused"), Just("rolled back")].prop_map(Line::Outcome),
        1 => Just(Line::Certificate),
    ]
}

/// (service, commit, line, step failed, duration in s) -> an event, one
/// second after the one before.
fn events(lines: &[(u8, u8, Line, bool, u64)]) -> Vec<Event> {
    lines
        .iter()
        .enumerate()
        .map(|(i, (service, commit, l, failed, took))| {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + 2 * i as u64);
            let ok = if *failed { "failed" } else { "ok" };
            let (step, result, color, from, image) = match l {
                Line::Start(c, img) => ("start_color", ok, Some(*c), None, Some(format!("web:{img}"))),
                Line::Switch(f, t) => ("switch", ok, Some(*t), *f, None),
                Line::Wait => ("wait_healthy", ok, None, None, None),
                Line::Outcome(r) => ("deploy", *r, None, None, None),
                Line::Certificate => ("certificate", ok, None, None, None),
            };
            Event {
                time: humantime::format_rfc3339_millis(at).to_string(),
                commit: format!("c{commit}"),
                service: ["web", "api"][*service as usize].into(),
                step: step.into(),
                result: result.into(),
                duration_ms: took * 1000,
                error: (result != "ok").then(|| "boom".into()),
                color,
                from,
                image,
                note: None,
            }
        })
        .collect()
}

/// What `history --since` does: skips the oldest files their summaries
/// cover, reads the rest.
fn via_summaries(files: &[&[Event]], summaries: Vec<Option<FileSummary>>, filter: &Filter) -> Vec<Entry> {
    let (n, seed) = match filter.since {
        Some(t) => skip(summaries, t),
        None => (0, Seed::default()),
    };
    let rest: Vec<Event> = files[n..].concat();
    entries_after(seed, &rest, filter)
}

fn log() -> impl Strategy<Value = Vec<(u8, u8, Line, bool, u64)>> {
    proptest::collection::vec((0..2u8, 0..3u8, line(), proptest::bool::weighted(0.15), 0..5u64), 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn since_from_summaries_equals_the_whole_log_filtered(
        lines in log(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        missing in proptest::collection::vec(proptest::bool::weighted(0.1), 7),
        service in proptest::option::of(prop_oneof![Just("web"), Just("api")]),
    ) {
        let all = events(&lines);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(all.len() + 1)).collect();
        at.extend([0, all.len()]);
        at.sort_unstable();
        // Files cut at random lines, and every line a file of its own.
        let random: Vec<&[Event]> = at.windows(2).map(|w| &all[w[0]..w[1]]).collect();
        for files in [random, all.chunks(1).collect()] {
            // Every file but the current one rotated, its summary written
            // and read back as JSON; now and then one is missing.
            let summaries: Vec<Option<FileSummary>> = files[..files.len() - 1]
                .iter()
                .zip(missing.iter().cycle())
                .map(|(f, gone)| {
                    let json = serde_json::to_string(&FileSummary::of(f, 0)).unwrap();
                    (!gone).then(|| serde_json::from_str(&json).unwrap())
                })
                .collect();
            // From before the first line to after the last, on and between lines.
            let times = (0..2 * all.len() as u64 + 6).map(|s| {
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 - 3 + s))
            });
            for since in times.chain([None]) {
                let filter = Filter { service: service.map(String::from), since };
                prop_assert_eq!(
                    via_summaries(&files, summaries.clone(), &filter),
                    entries(&all, &filter),
                    "since {:?}", since
                );
            }
        }
    }
}

/// The guard of tests/history.rs, on summaries: the switch a revert undoes
/// is in a file `--since` does not read.
#[test]
fn a_revert_is_judged_from_the_summary_of_the_file_it_undoes() {
    let l = |s: &str, c: &str, step: &str, color: Option<Color>, from: Option<Color>| Event {
        time: String::new(),
        commit: c.into(),
        service: s.into(),
        step: step.into(),
        result: "ok".into(),
        duration_ms: 5,
        error: None,
        color,
        from,
        image: (step == "start_color").then(|| format!("web:{c}")),
        note: None,
    };
    let mut all = vec![
        l("web", "1", "start_color", Some(Blue), None),
        l("web", "1", "switch", Some(Blue), None),
        l("web", "1", "deploy", None, None),
        l("web", "2", "start_color", Some(Green), None),
        l("web", "2", "switch", Some(Green), Some(Blue)),
        l("web", "2", "deploy", None, None),
        l("api", "2", "deploy", None, None),
        l("web", "3", "switch", Some(Blue), Some(Green)),
        l("web", "3", "deploy", None, None),
    ];
    for (i, e) in all.iter_mut().enumerate() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + 3600 * i as u64);
        e.time = humantime::format_rfc3339_millis(at).to_string();
    }
    let filter = Filter {
        service: None,
        since: parse_time(&all[7].time).map(|t| t - Duration::from_secs(1)),
    };
    let files: [&[Event]; 3] = [&all[..6], &all[6..7], &all[7..]];
    let summaries = files[..2].iter().map(|f| Some(FileSummary::of(f, 0))).collect();
    let got = via_summaries(&files, summaries, &filter);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].commit.as_str(), got[0].kind), ("3", Kind::Rollback));
    assert_eq!(got, entries(&all, &filter));
    // Without the first summary, both files are read: the same answer.
    let got = via_summaries(&files, vec![None, Some(FileSummary::of(files[1], 0))], &filter);
    assert_eq!(got, entries(&all, &filter));
}
