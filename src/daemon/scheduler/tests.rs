//! The scheduler's decisions on a made-up clock: `t(s)` is `s` seconds
//! (to the millisecond) after the start; nothing here sleeps.

use super::*;

const POLL: Duration = Duration::from_secs(15);

fn t(secs: f64) -> Instant {
    // One base for the whole process: instants of different tests never meet.
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now) + Duration::from_millis((secs * 1000.0).round() as u64)
}

/// A scheduler past its first pass, which ended at `t(0)`.
fn idle() -> Scheduler {
    let mut s = Scheduler::new(POLL, t(0.0));
    assert_eq!(s.next(t(0.0)), Next::Pass(Trigger::Start));
    s.finished(false, t(0.0));
    s
}

#[test]
fn the_first_pass_runs_at_once_then_one_each_poll() {
    let mut s = Scheduler::new(POLL, t(0.0));
    assert_eq!(s.next(t(0.0)), Next::Pass(Trigger::Start));
    s.finished(false, t(2.0));
    assert_eq!(
        s.next(t(2.0)),
        Next::Wait(t(17.0)),
        "the poll counts from the end of a pass"
    );
    assert_eq!(s.next(t(17.0)), Next::Pass(Trigger::Poll));
}

#[test]
fn a_trigger_runs_a_pass_before_the_poll_and_says_so() {
    for trigger in [Trigger::Webhook, Trigger::RepoChanged] {
        let mut s = idle();
        s.request(trigger, t(3.0));
        assert_eq!(s.next(t(3.0)), Next::Pass(trigger));
        s.finished(false, t(4.0));
        assert_eq!(
            s.next(t(4.0)),
            Next::Wait(t(19.0)),
            "the poll counts again from that pass"
        );
    }
}

#[test]
fn at_most_one_pass_is_in_flight_and_triggers_meanwhile_make_one_more() {
    let mut s = idle();
    s.request(Trigger::Webhook, t(1.0));
    assert_eq!(s.next(t(1.0)), Next::Pass(Trigger::Webhook));
    for at in [2.0, 3.0, 4.0] {
        s.request(Trigger::RepoChanged, t(at));
        s.request(Trigger::Webhook, t(at));
    }
    assert_eq!(s.next(t(5.0)), Next::Busy, "due, but a pass is in flight");
    s.finished(false, t(10.0));
    assert_eq!(
        s.next(t(10.0)),
        Next::Pass(Trigger::RepoChanged),
        "the first of them names the pass"
    );
    s.finished(false, t(11.0));
    assert_eq!(s.next(t(11.0)), Next::Wait(t(26.0)), "six triggers, one pass");
}

#[test]
fn a_trigger_the_pass_in_flight_started_after_needs_no_other_pass() {
    let mut s = idle();
    s.request(Trigger::Webhook, t(5.0));
    assert_eq!(s.next(t(5.0)), Next::Pass(Trigger::Webhook));
    // Came before the start, read by the loop only after it.
    s.request(Trigger::RepoChanged, t(4.9));
    s.finished(false, t(6.0));
    assert_eq!(s.next(t(6.0)), Next::Wait(t(21.0)));

    s.request(Trigger::Webhook, t(20.0));
    assert_eq!(s.next(t(20.0)), Next::Pass(Trigger::Webhook));
    s.request(Trigger::RepoChanged, t(20.5));
    s.finished(false, t(21.0));
    assert_eq!(
        s.next(t(21.0)),
        Next::Pass(Trigger::RepoChanged),
        "came during the pass"
    );
}

#[test]
fn docker_events_wait_a_second_and_run_at_most_one_pass_a_second() {
    let mut s = idle();
    s.request(Trigger::Docker, t(3.0));
    assert_eq!(s.next(t(3.0)), Next::Wait(t(4.0)), "settles for a second");
    for at in [3.2, 3.5, 3.9] {
        s.request(Trigger::Docker, t(at));
    }
    assert_eq!(s.next(t(4.0)), Next::Pass(Trigger::Docker));
    // A crash loop: an event every 100 ms while the pass runs and after.
    s.request(Trigger::Docker, t(4.1));
    s.request(Trigger::Docker, t(4.2));
    s.finished(false, t(4.3));
    s.request(Trigger::Docker, t(4.4));
    assert_eq!(s.next(t(4.4)), Next::Wait(t(5.1)));
    assert_eq!(s.next(t(5.1)), Next::Pass(Trigger::Docker));
    s.finished(false, t(5.2));
    assert_eq!(
        s.next(t(5.2)),
        Next::Wait(t(20.2)),
        "the loop's events folded into two passes"
    );
}

#[test]
fn a_webhook_does_not_wait_for_a_settling_docker_event() {
    let mut s = idle();
    s.request(Trigger::Docker, t(3.0));
    s.request(Trigger::Webhook, t(3.5));
    assert_eq!(s.next(t(3.5)), Next::Pass(Trigger::Webhook));
    s.finished(false, t(3.6));
    assert_eq!(
        s.next(t(3.6)),
        Next::Wait(t(18.6)),
        "the webhook's pass read the world after the event"
    );
}

#[test]
fn outages_in_a_row_slow_the_loop_down_and_a_good_pass_resets_it() {
    let mut s = idle();
    let mut due = 15.0;
    for wait in [30.0, 60.0, 120.0, 240.0, 300.0, 300.0] {
        assert_eq!(s.next(t(due)), Next::Pass(Trigger::Poll));
        s.finished(true, t(due));
        assert_eq!(s.next(t(due)), Next::Wait(t(due + wait)), "after {due}");
        due += wait;
    }
    // A trigger is not held back by the outage's wait.
    s.request(Trigger::Webhook, t(due - 100.0));
    assert_eq!(s.next(t(due - 100.0)), Next::Pass(Trigger::Webhook));
    s.finished(false, t(due - 99.0));
    assert_eq!(s.retry_in(), POLL);
    assert_eq!(s.next(t(due - 99.0)), Next::Wait(t(due - 84.0)));
}

#[test]
fn sighup_reads_the_config_before_the_next_pass_then_runs_one() {
    let mut s = idle();
    s.request(Trigger::Reload, t(1.0));
    assert_eq!(s.next(t(1.0)), Next::Reload);
    s.reloaded(Some(Duration::from_secs(60)), t(1.5));
    assert_eq!(s.next(t(1.5)), Next::Pass(Trigger::Reload), "a pass at once");
    s.finished(false, t(2.0));
    assert_eq!(s.next(t(2.0)), Next::Wait(t(62.0)), "the new poll interval");

    // During a pass, the reload waits for it, and goes before the pass
    // already due.
    s.request(Trigger::Webhook, t(3.0));
    assert_eq!(s.next(t(3.0)), Next::Pass(Trigger::Webhook));
    s.request(Trigger::Reload, t(3.5));
    s.request(Trigger::Webhook, t(3.6));
    assert_eq!(s.next(t(4.0)), Next::Busy);
    s.finished(false, t(4.0));
    assert_eq!(s.next(t(4.0)), Next::Reload);
    s.reloaded(None, t(4.1));
    assert_eq!(s.next(t(4.1)), Next::Pass(Trigger::Webhook), "one pass for both");
    s.finished(false, t(5.0));
    assert_eq!(s.next(t(5.0)), Next::Wait(t(65.0)));
}
