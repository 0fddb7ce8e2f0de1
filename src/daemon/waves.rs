//! Waves: a host of wave N deploys commit C of a service only when every
//! host of an earlier wave that runs the service reports, through its
//! status API, that it serves C. An unreachable peer holds the wave (never
//! proceed on silence); a peer whose deploy of C failed stops it until a
//! new commit; a peer whose status URL the host config does not admit
//! (`fleet.peers`) is not read, and holds the wave too. The decision is a
//! pure function of what the peers said. What the peers say of the digests
//! their image tags run is kept too: a later wave runs the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crate::commit::ShortCommit;
use crate::config::fleet::FleetConfig;
use crate::drivers::peer::{PeerClient, PeerError};
use crate::spec::{Desired, Service};

/// May this host deploy the commit now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Go,
    Wait(String),
    Stop(String),
}

/// What one peer said about the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Its status: the commit it serves the service at, and one that failed.
    Seen {
        serving: Option<String>,
        failed: Option<String>,
    },
    /// No answer since that time.
    Unreachable { since: SystemTime, why: String },
    /// teal.yaml gives it no status URL.
    NoUrl,
    /// The host config does not let this host read its URL: why.
    NotRead(String),
}

/// The decision from each earlier-wave peer's report: (host, wave, report).
pub fn decide(commit: &str, reports: &[(String, u32, Report)]) -> Gate {
    let short = ShortCommit::git(commit);
    for (host, wave, r) in reports {
        if let Report::Seen { failed: Some(f), .. } = r {
            if f == commit {
                return Gate::Stop(format!("stopped: wave {wave} failed at {short} on {host}"));
            }
        }
    }
    for (host, wave, r) in reports {
        match r {
            Report::Seen { serving, .. } if serving.as_deref() == Some(commit) => {}
            Report::Seen { .. } => {
                return Gate::Wait(format!("waiting for wave {wave}: {host} does not serve {short} yet"))
            }
            Report::Unreachable { since, why } => {
                let at = humantime::format_rfc3339_seconds(*since).to_string();
                return Gate::Wait(format!(
                    "waiting for wave {wave}: {host} unreachable since {at} ({why})"
                ));
            }
            Report::NoUrl => {
                return Gate::Wait(format!(
                    "waiting for wave {wave}: {host} has no status URL in teal.yaml"
                ))
            }
            Report::NotRead(why) => return Gate::Wait(format!("waiting for wave {wave}: {host}: {why}")),
        }
    }
    Gate::Go
}

/// The decision for a host whose fleet runs the service's release on
/// `host`: go once that host serves the commit (its release, which runs
/// before its new color starts, then succeeded); stop when it failed it.
pub fn decide_release(commit: &str, host: &str, report: &Report) -> Gate {
    let short = ShortCommit::git(commit);
    let wait = |why: String| Gate::Wait(format!("waiting for the release on {host}: {why}"));
    match report {
        Report::Seen { failed: Some(f), .. } if f == commit => Gate::Stop(format!(
            "stopped: {host}, which runs the release, failed at {short} (its error says why)"
        )),
        Report::Seen { serving, .. } if serving.as_deref() == Some(commit) => Gate::Go,
        Report::Seen { .. } => wait(format!("it does not serve {short} yet")),
        Report::Unreachable { since, why } => {
            let at = humantime::format_rfc3339_seconds(*since).to_string();
            wait(format!("unreachable since {at} ({why})"))
        }
        Report::NoUrl => wait("it has no status URL in teal.yaml".into()),
        Report::NotRead(why) => wait(why.clone()),
    }
}

/// Reads the peers of earlier waves, remembering since when each has not
/// answered.
pub struct Peers {
    client: PeerClient,
    silent_since: HashMap<String, SystemTime>,
    /// The digests earlier waves' hosts pinned each service's image tags
    /// to, as their status said (the first peer to say wins).
    pins: HashMap<String, BTreeMap<String, String>>,
}

impl Peers {
    pub fn new(token: Option<crate::secret::Secret>) -> Peers {
        Peers {
            client: PeerClient::new(token, Duration::from_secs(2)),
            silent_since: HashMap::new(),
            pins: HashMap::new(),
        }
    }

    /// The digests the peers read for `service` last pinned its image tags
    /// to: image tag -> `sha256:...`.
    pub fn pins(&self, service: &str) -> BTreeMap<String, String> {
        self.pins.get(service).cloned().unwrap_or_default()
    }

    /// The fleet's bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.client.token()
    }

    /// The gate for `svc` at `commit` on the host named `me`; only the
    /// status URLs `fleet` (the host config) admits are read.
    pub async fn gate(
        &mut self,
        desired: &Desired,
        fleet: &FleetConfig,
        me: &str,
        svc: &Service,
        commit: &str,
    ) -> Gate {
        if let Some(host) = svc.release.as_ref().and_then(|r| r.elsewhere.as_deref()) {
            let report = match desired.hosts.get(host).and_then(|h| h.status.as_deref()) {
                None => Report::NoUrl,
                Some(url) => self.read(host, url, fleet, &svc.name).await,
            };
            let gate = decide_release(commit, host, &report);
            if gate != Gate::Go {
                return gate;
            }
        }
        if !svc.by_wave {
            return Gate::Go;
        }
        let Some(mine) = desired.wave(me) else { return Gate::Go };
        let mut reports = vec![];
        for host in desired.hosts_of(svc) {
            let Some(wave) = desired.wave(host).filter(|w| *w < mine) else {
                continue;
            };
            let report = match desired.hosts[host].status.as_deref() {
                None => Report::NoUrl,
                Some(url) => self.read(host, url, fleet, &svc.name).await,
            };
            reports.push((host.to_string(), wave, report));
        }
        decide(commit, &reports)
    }

    async fn read(&mut self, host: &str, url: &str, fleet: &FleetConfig, service: &str) -> Report {
        match self.client.status(url, fleet).await {
            Ok(status) => {
                self.silent_since.remove(host);
                let s = status.services.get(service);
                if let Some(s) = s {
                    let pins = self.pins.entry(service.to_string()).or_default();
                    for c in crate::spec::Color::ALL {
                        if let (Some(image), Some(digest)) = (s.images.get(c), s.digests.get(c)) {
                            pins.entry(image.clone()).or_insert_with(|| digest.clone());
                        }
                    }
                }
                Report::Seen {
                    serving: s.and_then(|s| s.serving.clone()),
                    failed: s.and_then(|s| s.failed.clone()),
                }
            }
            Err(PeerError::NotAllowed(why)) => Report::NotRead(why),
            Err(e) => Report::Unreachable {
                since: *self
                    .silent_since
                    .entry(host.to_string())
                    .or_insert_with(SystemTime::now),
                why: e.why().to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(serving: Option<&str>, failed: Option<&str>) -> Report {
        Report::Seen {
            serving: serving.map(String::from),
            failed: failed.map(String::from),
        }
    }

    #[test]
    fn a_wave_goes_only_when_every_earlier_peer_serves_the_commit() {
        let c = "3f2a9c1d2e";
        assert_eq!(decide(c, &[]), Gate::Go);
        assert_eq!(decide(c, &[("web-1".into(), 1, seen(Some(c), None))]), Gate::Go);
        assert_eq!(
            decide(c, &[("web-1".into(), 1, seen(Some("a81b0d2"), None))]),
            Gate::Wait("waiting for wave 1: web-1 does not serve 3f2a9c1 yet".into())
        );
        assert_eq!(
            decide(
                c,
                &[
                    ("web-1".into(), 1, seen(Some("a81b0d2"), Some(c))),
                    ("web-2".into(), 1, seen(Some(c), None))
                ]
            ),
            Gate::Stop("stopped: wave 1 failed at 3f2a9c1 on web-1".into())
        );
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let Gate::Wait(w) = decide(
            c,
            &[(
                "web-1".into(),
                1,
                Report::Unreachable {
                    since,
                    why: "connection refused".into(),
                },
            )],
        ) else {
            panic!()
        };
        assert_eq!(
            w,
            "waiting for wave 1: web-1 unreachable since 2023-11-14T22:13:20Z (connection refused)"
        );
        assert_eq!(
            decide(
                c,
                &[(
                    "web-1".into(),
                    1,
                    Report::NotRead("status URL x is not in fleet.peers".into())
                )]
            ),
            Gate::Wait("waiting for wave 1: web-1: status URL x is not in fleet.peers".into()),
            "a peer the host config does not admit holds the wave"
        );
    }

    #[test]
    fn a_host_waits_for_the_one_that_runs_the_release() {
        let c = "3f2a9c1d2e";
        assert_eq!(decide_release(c, "web-1", &seen(Some(c), None)), Gate::Go);
        assert_eq!(
            decide_release(c, "web-1", &seen(Some("a81b0d2"), None)),
            Gate::Wait("waiting for the release on web-1: it does not serve 3f2a9c1 yet".into())
        );
        assert_eq!(
            decide_release(c, "web-1", &seen(Some("a81b0d2"), Some(c))),
            Gate::Stop("stopped: web-1, which runs the release, failed at 3f2a9c1 (its error says why)".into())
        );
        assert_eq!(
            decide_release(c, "web-1", &Report::NoUrl),
            Gate::Wait("waiting for the release on web-1: it has no status URL in teal.yaml".into())
        );
    }
}
