//! Route certificates, level-triggered like the rest of a pass: for each
//! service whose route has `tls`, the certificate it should serve (read
//! from the host's files, inside `policy.cert_files`, and checked) against
//! what the proxy has installed; install what differs, remove what no
//! route asks for. A certificate problem is that service's, reported and
//! never applied: the proxy keeps serving what it had.

use std::path::Path;

use crate::drivers::proxy::ProxyDriver;
use crate::drivers::tls::{read_files, Material};
use crate::policy::{cert_file_refusal, Host as PolicyHost, Policy};
use crate::spec::{Desired, Service, TlsSource};

/// What happened to one service's certificate in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertOutcome {
    /// Installed or replaced: the new leaf's subject and expiry.
    Installed {
        service: String,
        subject: String,
        not_after: i64,
    },
    /// Not installed, and why (the proxy serves what it had).
    Failed { service: String, error: String },
    /// Removed: the route no longer asks for TLS.
    Removed { service: String },
}

/// Makes the proxy's certificates match the routes of `desired`.
pub async fn converge(desired: &Desired, proxy: &ProxyDriver, policy: &Policy, now: i64) -> Vec<CertOutcome> {
    let installed = match proxy.certificates().await {
        Ok(i) => i,
        Err(e) => {
            return desired
                .services
                .values()
                .filter(|s| s.route.tls.is_some())
                .map(|s| CertOutcome::Failed {
                    service: s.name.clone(),
                    error: format!("reading the proxy's certificates: {e}"),
                })
                .collect();
        }
    };
    let mut out = vec![];
    for svc in desired.services.values() {
        let Some(tls) = &svc.route.tls else { continue };
        let TlsSource::Files { cert, key } = &tls.source else {
            // The ACME client (drivers/acme) is not yet driven by a pass:
            // the route serves plain HTTP (no redirect) and says why.
            out.push(CertOutcome::Failed {
                service: svc.name.clone(),
                error: "tls: acme is not ordered by this teal yet (its HTTP route serves meanwhile): use tls: {cert, key} with files on the host".into(),
            });
            continue;
        };
        let hosts: Vec<String> = svc.route.hosts().map(str::to_string).collect();
        let m = match read_checked(cert, key, &hosts, policy, now).await {
            Ok(m) => m,
            Err(error) => {
                out.push(CertOutcome::Failed {
                    service: svc.name.clone(),
                    error,
                });
                continue;
            }
        };
        if installed.get(&svc.name) == Some(&m.info.sha256) {
            continue;
        }
        out.push(install(proxy, svc, &hosts, &m).await);
    }
    for name in installed.keys() {
        if desired.services.get(name).is_none_or(|s| s.route.tls.is_none()) {
            out.push(match proxy.remove_certificate(name).await {
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

async fn install(proxy: &ProxyDriver, svc: &Service, hosts: &[String], m: &Material) -> CertOutcome {
    match proxy.put_certificate(&svc.name, hosts, m).await {
        Ok(()) => CertOutcome::Installed {
            service: svc.name.clone(),
            subject: m.info.subject.clone(),
            not_after: m.info.not_after,
        },
        Err(e) => CertOutcome::Failed {
            service: svc.name.clone(),
            error: e.to_string(),
        },
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
