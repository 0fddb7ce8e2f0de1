//! Route certificates in a daemon pass. After the deploys,
//! `Host::certificates` installs, renews and removes them
//! (`reconcile::certs`); here what changed becomes a `certificate` line in
//! the event log (and so a notice), the status shows each route's
//! certificate and the metrics its expiry. A failure is written once per
//! new error, not once per pass; a certificate served with under 14 days
//! left (its renewal keeps failing, or its files were not renewed) gets
//! one warning line.

use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

use super::Daemon;
use crate::events::Event;
use crate::reconcile::certs::CertOutcome;
use crate::reconcile::Revision;
use crate::status::{unix_date as date, CertSource, CertificateStatus};

/// A served certificate closer than this to its end is warned about.
pub const WARN_BEFORE: i64 = 14 * 86_400;

/// What was said about each service's certificate, so each failure and
/// warning is said once.
#[derive(Debug, Default)]
pub(super) struct Said {
    /// The last failure written, by service.
    failed: BTreeMap<String, String>,
    /// (service, not_after) of the certificates warned about.
    warned: BTreeSet<(String, i64)>,
}

impl Said {
    /// The warning to write when `service`'s served certificate has under
    /// [`WARN_BEFORE`] left at `now`; once per certificate (a renewed one,
    /// with a new end, is warned about afresh when it too runs short).
    fn expiry_warning(&mut self, service: &str, st: &CertificateStatus, now: i64) -> Option<String> {
        let end = st.not_after?;
        if end - now >= WARN_BEFORE || !self.warned.insert((service.to_string(), end)) {
            return None;
        }
        let why = match (&st.error, st.source) {
            (Some(e), _) => format!("renewal keeps failing: {e}"),
            (None, CertSource::Acme) => "its renewal has not succeeded yet".to_string(),
            (None, CertSource::Files) => "the files on the host were not renewed".to_string(),
        };
        Some(format!(
            "the served certificate expires {} (in {} days): {why}",
            date(end),
            (end - now).max(0) / 86_400
        ))
    }
}

impl Daemon {
    /// Converges the route certificates of `rev` and shows the result.
    pub(super) async fn certificates(&mut self, rev: &Revision) {
        let certs = self.host.certificates(&rev.desired).await;
        let now = crate::reconcile::orders::unix_now();
        for o in &certs.outcomes {
            self.cert_outcome(o, &rev.commit);
        }
        for (service, st) in &certs.status {
            self.expiry_warning(service, st, now, &rev.commit);
        }
        self.said.failed.retain(|s, _| certs.status.contains_key(s));
        self.said.warned.retain(|(s, _)| certs.status.contains_key(s));
        {
            let mut status = self.shared.status.write().expect("status lock");
            for (name, s) in status.services.iter_mut() {
                s.certificate = certs.status.get(name).cloned();
            }
        }
        let mut m = self.shared.metrics.write().expect("metrics lock");
        m.certificate_not_after = certs
            .status
            .iter()
            .filter_map(|(s, c)| Some((s.clone(), c.not_after?)))
            .collect();
    }

    fn cert_outcome(&mut self, o: &CertOutcome, commit: &str) {
        let (service, line) = match o {
            CertOutcome::Installed {
                service,
                source,
                subject,
                issuer,
                not_after,
                renewed,
            } => {
                self.said.failed.remove(service);
                let note = installed_note(*source, subject, issuer, *not_after, *renewed);
                info!(service = %service, "certificate {note}");
                (service, Ok(note))
            }
            CertOutcome::Removed { service } => {
                self.said.failed.remove(service);
                info!(service = %service, "certificate removed: the route no longer asks for TLS");
                (service, Ok("removed: the route no longer asks for TLS".to_string()))
            }
            CertOutcome::Failed { service, error } => {
                if self.said.failed.get(service) == Some(error) {
                    return;
                }
                self.said.failed.insert(service.clone(), error.clone());
                warn!(service = %service, error = %error, "certificate not installed; the proxy serves what it had");
                (service, Err(error.clone()))
            }
        };
        self.append(&Event::certificate(service, commit, line));
    }

    fn expiry_warning(&mut self, service: &str, st: &CertificateStatus, now: i64, commit: &str) {
        let Some(error) = self.said.expiry_warning(service, st, now) else {
            return;
        };
        warn!(service = %service, "{error}");
        self.append(&Event::certificate(service, commit, Err(error)));
    }

    fn append(&self, e: &Event) {
        if let Err(err) = self.log.append(e) {
            warn!(path = %self.log.path().display(), error = %err, "cannot append to the event log");
        }
    }
}

/// What an installed certificate's line says.
fn installed_note(source: CertSource, subject: &str, issuer: &str, not_after: i64, renewed: bool) -> String {
    let what = if renewed { "renewed" } else { "installed" };
    let from = match source {
        CertSource::Acme => "ordered",
        CertSource::Files => "from files",
    };
    format!(
        "{what} ({from}): {subject}, issued by {issuer}, expires {}",
        date(not_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CertState;

    #[test]
    fn an_installed_line_names_subject_issuer_and_expiry() {
        let note = installed_note(CertSource::Acme, "CN=shop.example.com", "CN=Pebble", 86_400, true);
        assert_eq!(
            note,
            "renewed (ordered): CN=shop.example.com, issued by CN=Pebble, expires 1970-01-02T00:00:00Z"
        );
    }

    fn served(source: CertSource, not_after: i64, error: Option<&str>) -> CertificateStatus {
        CertificateStatus {
            source,
            state: if error.is_some() {
                CertState::Failed
            } else {
                CertState::Ok
            },
            subject: Some("CN=shop.example.com".into()),
            issuer: Some("CN=Pebble".into()),
            names: vec!["shop.example.com".into()],
            not_after: Some(not_after),
            error: error.map(str::to_string),
            retry_at: None,
        }
    }

    #[test]
    fn a_certificate_with_more_than_fourteen_days_left_is_not_warned_about() {
        let mut said = Said::default();
        let now = 1_000_000_000;
        let st = served(CertSource::Acme, now + WARN_BEFORE, None);
        assert_eq!(said.expiry_warning("web", &st, now), None);
        let none = CertificateStatus { not_after: None, ..st };
        assert_eq!(said.expiry_warning("web", &none, now), None);
    }

    #[test]
    fn a_failing_renewal_under_fourteen_days_is_warned_about_once_per_certificate() {
        let mut said = Said::default();
        let now = 1_000_000_000;
        let end = now + 13 * 86_400 + 5;
        let st = served(CertSource::Acme, end, Some("order: connection refused"));
        let line = said.expiry_warning("web", &st, now).expect("a warning under 14 days");
        assert_eq!(
            line,
            format!(
                "the served certificate expires {} (in 13 days): renewal keeps failing: order: connection refused",
                date(end)
            )
        );
        assert_eq!(said.expiry_warning("web", &st, now + 3_600), None, "said once");
        // Another service's certificate is its own warning.
        assert!(said.expiry_warning("api", &st, now).is_some());
        // A renewed certificate that runs short again is warned about anew.
        let renewed = served(CertSource::Acme, end + 60 * 86_400, None);
        let later = end + 50 * 86_400;
        let again = said
            .expiry_warning("web", &renewed, later)
            .expect("new certificate, new warning");
        assert!(
            again.ends_with("(in 10 days): its renewal has not succeeded yet"),
            "{again}"
        );
    }

    #[test]
    fn files_not_renewed_and_an_expired_certificate_say_so() {
        let mut said = Said::default();
        let now = 1_000_000_000;
        let st = served(CertSource::Files, now - 86_400, None);
        let line = said.expiry_warning("web", &st, now).expect("expired is under 14 days");
        assert!(
            line.ends_with("(in 0 days): the files on the host were not renewed"),
            "{line}"
        );
    }
}
