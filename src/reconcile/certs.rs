//! Route certificates, level-triggered like the rest of a pass: for each
//! service whose route has `tls`, the certificate it should serve (read
//! from the host's files, inside `policy.cert_files`, and checked) against
//! what the proxy has installed; install what differs, remove what no
//! route asks for. A certificate problem is that service's, reported and
//! never applied: the proxy keeps serving what it had.

use std::collections::BTreeMap;
use std::path::Path;

use super::orders::{OrderView, Orders};
use crate::drivers::proxy::ProxyDriver;
use crate::drivers::tls::{read_files, Material};
use crate::policy::{cert_file_refusal, Host as PolicyHost, Policy};
use crate::spec::{Desired, Service, TlsSource};
use crate::status::{CertSource, CertState, CertificateStatus};

/// What happened to one service's certificate in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertOutcome {
    /// Installed, or replaced (`renewed`): the new leaf as shown.
    Installed {
        service: String,
        source: CertSource,
        subject: String,
        issuer: String,
        not_after: i64,
        renewed: bool,
    },
    /// Not installed or not ordered, and why (the proxy serves what it
    /// had). Said again each pass while it lasts.
    Failed { service: String, error: String },
    /// Removed: the route no longer asks for TLS.
    Removed { service: String },
}

/// A pass's certificate work: what changed, and how each route's
/// certificate stands now (for the status).
#[derive(Debug, Default)]
pub struct Certs {
    pub outcomes: Vec<CertOutcome>,
    pub status: BTreeMap<String, CertificateStatus>,
}

/// Makes the proxy's certificates match the routes of `desired`. Routes
/// with `tls: acme` take their certificate from `orders` (none: a command
/// that orders nothing, and says so).
pub async fn converge(
    desired: &Desired,
    proxy: &ProxyDriver,
    policy: &Policy,
    orders: Option<&Orders>,
    now: i64,
) -> Certs {
    let mut out = Certs::default();
    let tls: Vec<&Service> = desired.services.values().filter(|s| s.route.tls.is_some()).collect();
    if let Some(o) = orders {
        o.retain(|name| tls.iter().any(|s| s.name == name && is_acme(s)));
    }
    let installed = match proxy.certificates().await {
        Ok(i) => i,
        Err(e) => {
            for s in tls {
                let error = format!("reading the proxy's certificates: {e}");
                out.fail(s, source_of(s), error);
            }
            return out;
        }
    };
    for svc in tls {
        let hosts: Vec<String> = svc.route.hosts().map(str::to_string).collect();
        match (&svc.route.tls.as_ref().expect("filtered").source, orders) {
            (TlsSource::Files { cert, key }, _) => match read_checked(cert, key, &hosts, policy, now).await {
                Ok(m) => out.serve(proxy, svc, CertSource::Files, &hosts, &m, &installed).await,
                Err(error) => out.fail(svc, CertSource::Files, error),
            },
            (TlsSource::Acme, None) => out.fail(
                svc,
                CertSource::Acme,
                "tls: acme: this command orders no certificates (the daemon does)".into(),
            ),
            (TlsSource::Acme, Some(orders)) => out.acme(proxy, svc, &hosts, orders, &installed, now).await,
        }
    }
    for name in installed.keys() {
        if desired.services.get(name).is_none_or(|s| s.route.tls.is_none()) {
            out.outcomes.push(match proxy.remove_certificate(name).await {
                Ok(()) => CertOutcome::Removed { service: name.clone() },
                Err(e) => CertOutcome::Failed {
                    service: name.clone(),
                    error: e.to_string(),
                },
            });
        }
    }
    out
}

fn is_acme(s: &Service) -> bool {
    s.route.tls.as_ref().is_some_and(|t| t.source == TlsSource::Acme)
}

fn source_of(s: &Service) -> CertSource {
    if is_acme(s) {
        CertSource::Acme
    } else {
        CertSource::Files
    }
}

fn shown(source: CertSource, state: CertState, m: Option<&Material>) -> CertificateStatus {
    CertificateStatus {
        source,
        state,
        subject: m.map(|m| m.info.subject.clone()),
        issuer: m.map(|m| m.info.issuer.clone()),
        names: m.map(|m| m.info.names.clone()).unwrap_or_default(),
        not_after: m.map(|m| m.info.not_after),
        error: None,
        retry_at: None,
    }
}

impl Certs {
    fn fail(&mut self, svc: &Service, source: CertSource, error: String) {
        let mut st = shown(source, CertState::Failed, None);
        st.error = Some(error.clone());
        self.status.insert(svc.name.clone(), st);
        self.outcomes.push(CertOutcome::Failed {
            service: svc.name.clone(),
            error,
        });
    }

    /// `m` served for `svc`: installed unless it already is.
    async fn serve(
        &mut self,
        proxy: &ProxyDriver,
        svc: &Service,
        source: CertSource,
        hosts: &[String],
        m: &Material,
        installed: &BTreeMap<String, String>,
    ) {
        if installed.get(&svc.name) == Some(&m.info.sha256) {
            self.status
                .insert(svc.name.clone(), shown(source, CertState::Ok, Some(m)));
            return;
        }
        match proxy.put_certificate(&svc.name, hosts, m).await {
            Ok(()) => {
                self.status
                    .insert(svc.name.clone(), shown(source, CertState::Ok, Some(m)));
                self.outcomes.push(CertOutcome::Installed {
                    service: svc.name.clone(),
                    source,
                    subject: m.info.subject.clone(),
                    issuer: m.info.issuer.clone(),
                    not_after: m.info.not_after,
                    renewed: installed.contains_key(&svc.name),
                });
            }
            Err(e) => self.fail(svc, source, e.to_string()),
        }
    }

    /// `tls: acme`: the stored certificate when it covers the hosts and
    /// has not expired, and an order when there is none or it is due.
    async fn acme(
        &mut self,
        proxy: &ProxyDriver,
        svc: &Service,
        hosts: &[String],
        orders: &Orders,
        installed: &BTreeMap<String, String>,
        now: i64,
    ) {
        let stored = match orders.stored(&svc.name).await {
            Ok(m) => m,
            Err(e) => return self.fail(svc, CertSource::Acme, e),
        };
        let usable = stored.filter(|m| m.info.not_after > now && hosts.iter().all(|h| m.info.names.contains(h)));
        if let Some(m) = &usable {
            self.serve(proxy, svc, CertSource::Acme, hosts, m, installed).await;
        }
        let renew = orders.renew_before().as_secs() as i64;
        if usable.as_ref().is_some_and(|m| m.info.not_after - now > renew) {
            return;
        }
        let mut st = self
            .status
            .remove(&svc.name)
            .unwrap_or_else(|| shown(CertSource::Acme, CertState::Ordering, None));
        match orders.request(&svc.name, hosts, now) {
            OrderView::Running if st.state == CertState::Failed => {}
            OrderView::Running => {
                st.state = if usable.is_some() {
                    CertState::Renewing
                } else {
                    CertState::Ordering
                }
            }
            OrderView::Waiting { error, retry_at } => {
                st.state = CertState::Failed;
                st.error = Some(error.clone());
                st.retry_at = Some(retry_at);
                self.outcomes.push(CertOutcome::Failed {
                    service: svc.name.clone(),
                    error,
                });
            }
        }
        self.status.insert(svc.name.clone(), st);
    }
}

/// The policy asked again with what the disk says now (the admission
/// check ran on the commit; a symlink may have changed since), then the
/// files read and checked.
async fn read_checked(cert: &str, key: &str, hosts: &[String], policy: &Policy, now: i64) -> Result<Material, String> {
    let resolve = |p: &Path| crate::drivers::paths::resolve(p);
    let host = PolicyHost {
        docker_sockets: &[],
        resolve: &resolve,
        swarm: false,
    };
    for path in [cert, key] {
        if let Some(why) = cert_file_refusal(path, policy, &host) {
            return Err(why);
        }
    }
    let (cert, key, hosts) = (
        crate::drivers::paths::resolve(Path::new(cert)),
        crate::drivers::paths::resolve(Path::new(key)),
        hosts.to_vec(),
    );
    tokio::task::spawn_blocking(move || read_files(&cert, &key, &hosts, now))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
