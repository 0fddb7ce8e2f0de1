//! The fleet: the hosts `teal.yaml` lists, which of them a service is
//! placed on (a label selector), and the wave order of a rollout. Git is
//! the only place this is written; each host's daemon reads it and keeps
//! to its own part.

use std::collections::BTreeMap;

use super::file::RepoFile;
use super::locate::Locator;
use super::{Desired, Diagnostic, FleetHost, RepoFiles, Service};

const REPO_FILE: &str = "teal.yaml";

/// The `hosts` of `teal.yaml`, checked: status URLs are http(s).
/// (Duplicate names are a YAML error: a key appears once in a mapping.)
pub(super) fn resolve_hosts(
    repo: &RepoFile,
    loc: &Locator,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, FleetHost> {
    let mut out = BTreeMap::new();
    for (name, h) in repo.hosts.iter().flatten() {
        if let Some(url) = &h.status {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let (line, col) = loc.pos(&["hosts", name, "status"]);
                diags.push(Diagnostic::new(
                    REPO_FILE,
                    line,
                    col,
                    format!("status {url:?} of host {name} is not an http(s) URL: write e.g. https://10.0.0.11:9470"),
                ));
            }
        }
        out.insert(
            name.clone(),
            FleetHost {
                labels: h.labels.clone(),
                status: h.status.clone(),
            },
        );
    }
    out
}

/// Checks placements and waves against the fleet: a wave rollout needs a
/// numeric `wave` label on every host the service runs on (an error);
/// a placement that matches no host is a warning, returned.
pub(super) fn check_placement(desired: &Desired, files: &RepoFiles, diags: &mut Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut warnings = vec![];
    for svc in desired.services.values() {
        let loc = Locator::new(files.files.get(&svc.file).map_or("", String::as_str));
        let at = |path: &[&str], msg: String| {
            let (line, col) = loc.pos(path);
            Diagnostic::new(&svc.file, line, col, msg)
        };
        if !svc.placement.is_empty() && desired.hosts_of(svc).is_empty() {
            let msg = if desired.hosts.is_empty() {
                "placement is set, but teal.yaml lists no hosts: the service runs on every host".to_string()
            } else {
                format!(
                    "placement {} matches no host of teal.yaml: the service runs nowhere",
                    selector(&svc.placement)
                )
            };
            warnings.push(at(&["placement"], msg));
        }
        if let Some(on) = svc.release.as_ref().and_then(|r| r.on.as_deref()) {
            if let Err(why) = check_release_on(desired, svc, on) {
                diags.push(at(&["release", "on"], why));
            }
        }
        if svc.by_wave {
            for host in desired.hosts_of(svc) {
                if desired.wave(host).is_none() {
                    diags.push(at(
                        &["rollout", "by"],
                        format!("rollout by wave, but host {host} (which runs this service) has no numeric wave label in teal.yaml"),
                    ));
                }
            }
        }
    }
    warnings
}

fn selector(p: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// `release.on` must name a host the service runs on, of its first wave
/// (a later one would wait for hosts that wait for it).
fn check_release_on(desired: &Desired, svc: &Service, on: &str) -> Result<(), String> {
    if desired.hosts.is_empty() {
        return Err(format!(
            "release.on names host {on}, but teal.yaml lists no hosts: remove it (a single host runs its own release)"
        ));
    }
    let hosts = desired.hosts_of(svc);
    if !hosts.contains(&on) {
        return Err(format!(
            "release.on: {on} is not a host this service runs on ({})",
            hosts.join(", ")
        ));
    }
    let first = hosts.iter().filter_map(|h| desired.wave(h)).min();
    match (svc.by_wave, desired.wave(on), first) {
        (true, Some(w), Some(f)) if w > f => Err(format!(
            "release.on: {on} is in wave {w}, but the release must run in the first wave ({f}): later waves wait for it"
        )),
        _ => Ok(()),
    }
}

impl Desired {
    /// The fleet host that runs `svc`'s release: `release.on`, else the
    /// first of its hosts by wave then name. `None` without a release or a
    /// host list.
    pub fn release_host(&self, svc: &Service) -> Option<String> {
        let r = svc.release.as_ref()?;
        if self.hosts.is_empty() {
            return None;
        }
        if let Some(on) = &r.on {
            return Some(on.clone());
        }
        let mut hosts = self.hosts_of(svc);
        hosts.sort_by_key(|h| (self.wave(h).unwrap_or(0), h.to_string()));
        hosts.first().map(|h| h.to_string())
    }

    /// Seals every service's env values with this host's key (from its
    /// state dir) in container hashes and labels.
    pub fn set_env_key(&mut self, key: super::env_seal::EnvKey) {
        for svc in self.services.values_mut() {
            svc.env_key = key;
        }
    }

    /// The hosts `svc` runs on (all hosts when it has no placement); empty
    /// when the repo lists no hosts.
    pub fn hosts_of(&self, svc: &Service) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, h)| svc.placement.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// A host's wave, from its `wave` label.
    pub fn wave(&self, host: &str) -> Option<u32> {
        self.hosts.get(host)?.labels.get("wave")?.trim().parse().ok()
    }

    /// What the daemon named `host` applies: the services placed on it.
    /// With a host list that does not name it, nothing: an error saying so
    /// (a typo in host.name must not deploy everywhere).
    pub fn for_host(&self, host: &str) -> Result<Desired, String> {
        if self.hosts.is_empty() {
            return Ok(self.clone());
        }
        if !self.hosts.contains_key(host) {
            let names: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
            return Err(format!(
                "this host, {host:?} (host.name in the host config), is not in teal.yaml's hosts ({}): applying nothing",
                names.join(", ")
            ));
        }
        let mut mine = self.clone();
        mine.services.retain(|_, s| self.hosts_of(s).contains(&host));
        for svc in mine.services.values_mut() {
            let runs = self.release_host(svc);
            if let Some(r) = svc.release.as_mut() {
                r.elsewhere = runs.filter(|h| h != host);
            }
        }
        Ok(mine)
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::load::{load, RepoFiles};

    const FLEET: &str = "hosts:\n  web-1: {labels: {role: web, wave: \"1\"}, status: http://10.0.0.11:9470}\n  web-2: {labels: {role: web, wave: \"2\"}, status: http://10.0.0.12:9470}\n  db-1: {labels: {role: db}}\n";
    const SVC: &str = "active: blue\nblue: {image: web:1}\nport: 8080\nroute: {host: shop.example.com}\nhealth: {http: {path: /healthz}}\n";

    fn files(teal: &str, extra: &str) -> RepoFiles {
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("teal.yaml".into(), teal.into());
        f.files.insert("services/web.yaml".into(), format!("{SVC}{extra}"));
        f
    }

    fn errors(teal: &str, extra: &str) -> Vec<String> {
        load(&files(teal, extra))
            .err()
            .map_or(vec![], |d| d.0.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn placement_selects_hosts_and_a_daemon_keeps_to_its_own() {
        let d = load(&files(FLEET, "placement: {role: web}\nrollout: {by: wave}\n")).unwrap();
        let web = &d.services["web"];
        assert_eq!(d.hosts_of(web), ["web-1", "web-2"]);
        assert_eq!(d.wave("web-2"), Some(2));
        assert!(d.warnings.is_empty());
        assert_eq!(d.for_host("web-1").unwrap().services.len(), 1);
        assert_eq!(d.for_host("db-1").unwrap().services.len(), 0, "not placed there");
        let err = d.for_host("web-9").unwrap_err();
        assert_eq!(err, "this host, \"web-9\" (host.name in the host config), is not in teal.yaml's hosts (db-1, web-1, web-2): applying nothing");
        // Without a host list, today's single host: everything applies.
        let single = load(&files("", "")).unwrap();
        assert_eq!(single.for_host("anything").unwrap().services.len(), 1);
    }

    #[test]
    fn bad_fleet_input_is_located() {
        assert_eq!(
            errors(&FLEET.replace("http://10.0.0.12:9470", "10.0.0.12:9470"), ""),
            ["teal.yaml:3:51: status \"10.0.0.12:9470\" of host web-2 is not an http(s) URL: write e.g. https://10.0.0.11:9470"]
        );
        assert_eq!(
            errors(FLEET, "rollout: {by: wave}\n"),
            ["services/web.yaml:6:15: rollout by wave, but host db-1 (which runs this service) has no numeric wave label in teal.yaml"]
        );
        let dup = format!("{FLEET}  web-1: {{labels: {{}}}}\n");
        let e = errors(&dup, "");
        assert!(
            e.len() == 1 && e[0].starts_with("teal.yaml:") && e[0].contains("duplicate"),
            "{e:?}"
        );
        let d = load(&files(FLEET, "placement: {role: cache}\n")).unwrap();
        assert_eq!(
            d.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            ["services/web.yaml:6:1: placement {role=cache} matches no host of teal.yaml: the service runs nowhere"]
        );
    }

    #[test]
    fn one_host_runs_the_release_and_the_others_know_which() {
        let on = |extra: &str| {
            let d = load(&files(
                FLEET,
                &format!("placement: {{role: web}}\nrollout: {{by: wave}}\n{extra}"),
            ))
            .unwrap();
            let elsewhere = |host: &str| {
                d.for_host(host).unwrap().services["web"]
                    .release
                    .as_ref()
                    .and_then(|r| r.elsewhere.clone())
            };
            (
                d.release_host(&d.services["web"]),
                elsewhere("web-1"),
                elsewhere("web-2"),
            )
        };
        let web1 = Some("web-1".to_string());
        assert_eq!(
            on("release: {command: [migrate]}\n"),
            (web1.clone(), None, web1.clone()),
            "default: the first wave's first host"
        );
        assert_eq!(on(""), (None, None, None), "no release");
        let single = load(&files("", "release: {command: [migrate]}\n")).unwrap();
        assert_eq!(
            single.release_host(&single.services["web"]),
            None,
            "no fleet: each host its own"
        );
        assert_eq!(
            errors(FLEET, "placement: {role: web}\nrollout: {by: wave}\nrelease: {command: [m], on: web-2}\n"),
            ["services/web.yaml:8:29: release.on: web-2 is in wave 2, but the release must run in the first wave (1): later waves wait for it"]
        );
        assert_eq!(
            errors(FLEET, "placement: {role: web}\nrelease: {command: [m], on: db-1}\n"),
            ["services/web.yaml:7:29: release.on: db-1 is not a host this service runs on (web-1, web-2)"]
        );
        assert_eq!(
            errors("", "release: {command: [m], on: web-1}\n"),
            ["services/web.yaml:6:29: release.on names host web-1, but teal.yaml lists no hosts: remove it (a single host runs its own release)"]
        );
    }
}
