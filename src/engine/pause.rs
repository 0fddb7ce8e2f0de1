//! `switch.pause` around a release command: the proxy holds the route's
//! new requests from just before the release container starts until it
//! ends, or until the pause's length has passed, whichever comes first.
//! The proxy gets a deadline, not a flag, so a pause never outlives its
//! length even when teal dies mid-release or cannot lift it.

use std::time::{Instant, SystemTime};

use super::{Engine, StepError};
use crate::spec::Service;

impl Engine<'_> {
    /// Starts holding `svc`'s requests, when it declares a pause and the
    /// proxy serves a route of it (a first deploy has none to hold). When
    /// the proxy cannot be told, the release does not start either.
    pub(super) async fn hold_requests(&self, svc: &Service) -> Result<Option<Instant>, StepError> {
        let Some(pause) = svc.traffic.pause else {
            return Ok(None);
        };
        let held = self.proxy.pause(&svc.name, Some(SystemTime::now() + pause)).await?;
        Ok(held.then(Instant::now))
    }

    /// Lets the held requests go on; a note on the pause for the release's
    /// line. A proxy that cannot be told is reported, not fatal: the
    /// pause's deadline ends it.
    pub(super) async fn lift_hold(&self, svc: &Service, held: Option<Instant>) -> Option<String> {
        let (since, pause) = (held?, svc.traffic.pause?);
        // To a tenth of a second: "2s 100ms", not nanoseconds.
        let took = std::time::Duration::from_millis(since.elapsed().as_millis() as u64 / 100 * 100);
        let fmt = crate::spec::duration::format;
        let lifted = self.proxy.pause(&svc.name, None).await;
        Some(match lifted {
            Err(e) => format!(
                "requests were held (switch.pause {}), and lifting the pause failed: {e}; it ends by itself at its deadline",
                fmt(pause)
            ),
            Ok(_) if took > pause => format!(
                "requests were held for the first {} of its {} (switch.pause)",
                fmt(pause),
                fmt(took)
            ),
            Ok(_) => format!("requests were held for {} while it ran (switch.pause)", fmt(took)),
        })
    }
}
