//! Certificates and ACME answers in a running nginx, through the
//! balancer's control socket only (no reload): `PUT|DELETE
//! /certs/<service>` and `/acme/<token>`, `GET /certs` for what nginx
//! holds. nginx first, then the files a restarted nginx loads (its shared
//! dict starts empty); what teal observes is nginx's memory, so a restart
//! whose load failed, or a crash between the two, is repaired by the next
//! pass putting the certificate again.

use std::collections::BTreeMap;

use super::tls::Tls;
use super::Nginx;
use crate::drivers::reload::{persist, read_opt};
use crate::drivers::route::{acme_answer_refusal, ProxyError};
use crate::drivers::tls::{self_signed, Material, Store};

fn tls_err(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Other(format!("nginx TLS files: {e}"))
}

/// A TLS route on nginx without the balancer: refused, saying what to set.
pub(crate) fn needs_balancer() -> ProxyError {
    needs_balancer_for("route.tls: nginx serves HTTPS", "remove tls from the route")
}

/// `what` needs the balancer, which this nginx does not run; `or` is the
/// other way out.
pub(crate) fn needs_balancer_for(what: &str, or: &str) -> ProxyError {
    ProxyError::Other(format!(
        "{what} through teal's Lua balancer, and this host switches by reloads; set proxy.nginx.switch: balancer in the host config (it needs libnginx-mod-http-lua and lua-resty-core), or {or}"
    ))
}

/// The body of `PUT /certs/<service>` (see `certs.lua`).
fn cert_text(hosts: &[String], m: &Material) -> String {
    format!(
        "sha {}\nhosts {}\n{}\n{}\n",
        m.info.sha256,
        hosts.join(" "),
        m.chain_pem.trim_end(),
        m.key_pem.trim_end()
    )
}

/// A name that goes into a control path: what `certs.lua` accepts.
fn path_name(what: &str, s: &str) -> Result<(), ProxyError> {
    let ok = !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ProxyError::Other(format!("{what} {s:?}: outside [A-Za-z0-9-_.]")))
    }
}

impl Nginx {
    fn tls(&self) -> Result<(Tls, &super::Balancer), ProxyError> {
        let b = self.config.balancer.as_ref().ok_or_else(needs_balancer)?;
        Ok((Tls::new(&self.config.https, b), b))
    }

    /// The fallback certificate, before a config with an `ssl` listen is
    /// first checked (nginx reads it then).
    pub(super) fn prepare_tls(&self) -> Result<(), ProxyError> {
        let (tls, b) = self.tls()?;
        b.prepare()?;
        let store = Store::new(tls.fallback_dir());
        if store.get("default", None).map_err(tls_err)?.is_none() {
            let m = self_signed("teal.invalid").map_err(tls_err)?;
            store.put("default", &m).map_err(tls_err)?;
        }
        Ok(())
    }

    /// Installed certificates by service, as nginx holds them now: the
    /// sha256 of each leaf. None without the balancer (no TLS there).
    pub async fn certificates(&self) -> Result<BTreeMap<String, String>, ProxyError> {
        let Some(b) = &self.config.balancer else {
            return Ok(BTreeMap::new());
        };
        let text = b.request("GET", "/certs", "").await?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_string(), w.next()?.to_string()))
            })
            .collect())
    }

    /// Installs or replaces the certificate of `service` for `hosts`; its
    /// hosts then redirect to HTTPS (when their route asks).
    pub async fn put_certificate(&self, service: &str, hosts: &[String], m: &Material) -> Result<(), ProxyError> {
        path_name("service", service)?;
        for h in hosts {
            path_name("host", h)?;
        }
        let (tls, b) = self.tls()?;
        let _one = self.certs_lock.lock().await;
        b.request("PUT", &format!("/certs/{service}"), &cert_text(hosts, m))
            .await?;
        let (name, m2) = (service.to_string(), m.clone());
        let dir = tls.certs_dir();
        tokio::task::spawn_blocking(move || Store::new(dir).put(&name, &m2))
            .await
            .map_err(tls_err)?
            .map_err(tls_err)?;
        let line = format!("{service} {} {}", m.info.sha256, hosts.join(" "));
        self.set_listed(&tls, service, Some(line)).await
    }

    /// Removes the certificate of `service` and its hosts' redirect.
    pub async fn remove_certificate(&self, service: &str) -> Result<(), ProxyError> {
        path_name("service", service)?;
        let Ok((tls, b)) = self.tls() else { return Ok(()) };
        let _one = self.certs_lock.lock().await;
        b.request("DELETE", &format!("/certs/{service}"), "").await?;
        self.set_listed(&tls, service, None).await?;
        Store::new(tls.certs_dir()).remove(service).map_err(tls_err)
    }

    /// The restore list with `service`'s line replaced (or removed).
    async fn set_listed(&self, tls: &Tls, service: &str, line: Option<String>) -> Result<(), ProxyError> {
        let old = read_opt(&tls.certs_list())?.unwrap_or_default();
        let mut lines: Vec<String> = old
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(service))
            .map(str::to_string)
            .collect();
        lines.extend(line);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if text != old {
            persist(&tls.certs_list(), text).await?;
        }
        Ok(())
    }

    /// Publishes (`Some`) or withdraws (`None`) an ACME HTTP-01 answer.
    pub async fn acme_challenge(&self, token: &str, key_authorization: Option<&str>) -> Result<(), ProxyError> {
        acme_answer_refusal(token, key_authorization)?;
        let (_, b) = self.tls()?;
        let path = format!("/acme/{token}");
        match key_authorization {
            Some(k) => b.request("PUT", &path, k).await,
            None => b.request("DELETE", &path, "").await,
        }
        .map(|_| ())
    }
}
