//! The scheduler's decisions on a made-up clock: times are seconds (to
//! the millisecond) after the start; nothing here sleeps.

use super::*;

const POLL: Duration = Duration::from_secs(15);

fn t(secs: f64) -> Instant {
    // One base for the whole process: instants of different tests never meet.
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now) + Duration::from_millis((secs * 1000.0).round() as u64)
}

/// A scheduler told the time in seconds, with what it must decide.
struct Clock(Scheduler);

impl Clock {
    /// Past its first pass, which ended at 0.
    fn idle() -> Clock {
        let mut c = Clock(Scheduler::new(POLL, t(0.0)));
        c.pass(0.0, Trigger::Start, 0.0);
        c
    }

    fn trigger(&mut self, trigger: Trigger, at: f64) {
        self.0.request(trigger, t(at));
    }

    /// `why` comes at `at`, and its pass starts at once.
    fn triggers_pass(&mut self, why: Trigger, at: f64) {
        self.trigger(why, at);
        self.starts(at, why);
    }

    /// A pass for `why` starts at `start`.
    fn starts(&mut self, start: f64, why: Trigger) {
        assert_eq!(self.0.next(t(start)), Next::Pass(why), "at {start}");
    }

    /// A pass for `why` runs from `start` to `end`, meeting no outage.
    fn pass(&mut self, start: f64, why: Trigger, end: f64) {
        self.starts(start, why);
        self.0.finished(false, t(end));
    }

    /// At `now`, nothing runs before `until`.
    fn waits(&mut self, now: f64, until: f64) {
        assert_eq!(self.0.next(t(now)), Next::Wait(t(until)), "at {now}");
    }
}

#[test]
fn the_first_pass_runs_at_once_then_one_each_poll() {
    let mut c = Clock(Scheduler::new(POLL, t(0.0)));
    c.pass(0.0, Trigger::Start, 2.0);
    c.waits(2.0, 17.0); // the poll counts from the end of a pass
    c.starts(17.0, Trigger::Poll);
}

#[test]
fn a_trigger_runs_a_pass_before_the_poll_and_says_so() {
    for trigger in [Trigger::Webhook, Trigger::RepoChanged] {
        let mut c = Clock::idle();
        c.trigger(trigger, 3.0);
        c.pass(3.0, trigger, 4.0);
        c.waits(4.0, 19.0);
    }
}

#[test]
fn at_most_one_pass_is_in_flight_and_triggers_meanwhile_make_one_more() {
    let mut c = Clock::idle();
    c.triggers_pass(Trigger::Webhook, 1.0);
    for at in [2.0, 3.0, 4.0] {
        c.trigger(Trigger::RepoChanged, at);
        c.trigger(Trigger::Webhook, at);
    }
    assert_eq!(c.0.next(t(5.0)), Next::Busy, "due, but a pass is in flight");
    c.0.finished(false, t(10.0));
    // The first of the six names the pass; one pass for all.
    c.pass(10.0, Trigger::RepoChanged, 11.0);
    c.waits(11.0, 26.0);
}

#[test]
fn a_trigger_the_pass_in_flight_started_after_needs_no_other_pass() {
    let mut c = Clock::idle();
    c.triggers_pass(Trigger::Webhook, 5.0);
    // Came before the start, read by the loop only after it.
    c.trigger(Trigger::RepoChanged, 4.9);
    c.0.finished(false, t(6.0));
    c.waits(6.0, 21.0);

    c.triggers_pass(Trigger::Webhook, 20.0);
    c.trigger(Trigger::RepoChanged, 20.5);
    c.0.finished(false, t(21.0));
    c.starts(21.0, Trigger::RepoChanged); // came during the pass
}

#[test]
fn docker_events_wait_a_second_and_run_at_most_one_pass_a_second() {
    let mut c = Clock::idle();
    c.trigger(Trigger::Docker, 3.0);
    c.waits(3.0, 4.0);
    for at in [3.2, 3.5, 3.9] {
        c.trigger(Trigger::Docker, at);
    }
    c.starts(4.0, Trigger::Docker);
    // A crash loop: an event every 100 ms while the pass runs and after.
    c.trigger(Trigger::Docker, 4.1);
    c.trigger(Trigger::Docker, 4.2);
    c.0.finished(false, t(4.3));
    c.trigger(Trigger::Docker, 4.4);
    c.waits(4.4, 5.1);
    c.pass(5.1, Trigger::Docker, 5.2);
    c.waits(5.2, 20.2); // seven events, two passes
}

#[test]
fn a_webhook_does_not_wait_for_a_settling_docker_event() {
    let mut c = Clock::idle();
    c.trigger(Trigger::Docker, 3.0);
    c.trigger(Trigger::Webhook, 3.5);
    c.pass(3.5, Trigger::Webhook, 3.6);
    c.waits(3.6, 18.6); // that pass read the world after the event
}

#[test]
fn outages_in_a_row_slow_the_loop_down_and_a_good_pass_resets_it() {
    let mut c = Clock::idle();
    let mut due = 15.0;
    for wait in [30.0, 60.0, 120.0, 240.0, 300.0, 300.0] {
        c.starts(due, Trigger::Poll);
        c.0.finished(true, t(due));
        c.waits(due, due + wait);
        due += wait;
    }
    // A trigger is not held back by the outage's wait.
    c.trigger(Trigger::Webhook, due - 100.0);
    c.pass(due - 100.0, Trigger::Webhook, due - 99.0);
    assert_eq!(c.0.retry_in(), POLL);
    c.waits(due - 99.0, due - 84.0);
}

#[test]
fn sighup_reads_the_config_before_the_next_pass_then_runs_one() {
    let mut c = Clock::idle();
    c.trigger(Trigger::Reload, 1.0);
    assert_eq!(c.0.next(t(1.0)), Next::Reload);
    c.0.reloaded(Some(Duration::from_secs(60)), t(1.5));
    c.pass(1.5, Trigger::Reload, 2.0); // at once
    c.waits(2.0, 62.0); // the new poll interval

    // During a pass, the reload waits for it, and goes before the pass
    // already due.
    c.triggers_pass(Trigger::Webhook, 3.0);
    c.trigger(Trigger::Reload, 3.5);
    c.trigger(Trigger::Webhook, 3.6);
    assert_eq!(c.0.next(t(4.0)), Next::Busy);
    c.0.finished(false, t(4.0));
    assert_eq!(c.0.next(t(4.0)), Next::Reload);
    c.0.reloaded(None, t(4.1));
    c.pass(4.1, Trigger::Webhook, 5.0); // one pass for both
    c.waits(5.0, 65.0);
}
