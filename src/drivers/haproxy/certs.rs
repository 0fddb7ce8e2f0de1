//! Certificates and ACME answers in a running HAProxy, through its
//! runtime API only (no reload): `new/set/commit ssl cert` and
//! `add/del ssl crt-list` for certificates, `add/set/del map` for the
//! ACME tokens and the hosts that redirect to HTTPS. The runtime comes
//! first, then the files a restarted HAProxy loads; the files are what
//! teal observes, so a crash between the two is repaired by the next pass.

use std::collections::BTreeMap;

use super::tls::{crt_list_line, install_commands, TlsFiles, FALLBACK};
use super::Haproxy;
use crate::drivers::reload::{persist, read_opt};
use crate::drivers::route::ProxyError;
use crate::drivers::tls::{self_signed, Material, Store};

fn tls_err(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Other(format!("HAProxy TLS files: {e}"))
}

impl Haproxy {
    fn files(&self) -> &TlsFiles {
        &self.config.tls
    }

    /// The default certificate, an empty crt-list and empty maps, before a
    /// config with a TLS bind is first checked (HAProxy reads them then).
    pub(super) fn prepare_tls(&self) -> Result<(), ProxyError> {
        let f = self.files();
        let store = Store::new(&f.dir);
        if store.get(FALLBACK, None).map_err(tls_err)?.is_none() {
            let m = self_signed("teal.invalid").map_err(tls_err)?;
            store.put(FALLBACK, &m).map_err(tls_err)?;
        }
        for path in [f.crt_list(), f.acme_map(), f.hosts_map()] {
            if !path.exists() {
                crate::drivers::reload::write_atomic(&path, "")?;
            }
        }
        Ok(())
    }

    /// Installed certificates by service: the sha256 of each leaf, as
    /// recorded in the files HAProxy loads.
    pub async fn certificates(&self) -> Result<BTreeMap<String, String>, ProxyError> {
        let f = self.files().clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::new(&f.dir);
            let list = read_opt(&f.crt_list())?.unwrap_or_default();
            let mut out = BTreeMap::new();
            for line in list.lines() {
                let Some(path) = line.split_whitespace().next() else {
                    continue;
                };
                let Some(name) = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if let Some(m) = store.get(name, None).map_err(tls_err)? {
                    out.insert(name.to_string(), m.info.sha256);
                }
            }
            Ok(out)
        })
        .await
        .map_err(tls_err)?
    }

    /// Installs or replaces the certificate of `service` for `hosts`, and
    /// lets its hosts redirect to HTTPS.
    pub async fn put_certificate(&self, service: &str, hosts: &[String], m: &Material) -> Result<(), ProxyError> {
        self.prepare_tls()?;
        let f = self.files().clone();
        let path = f.cert(service).display().to_string();
        let loaded = self.runtime.call(&["show ssl cert".to_string()]).await?;
        let loaded = loaded.lines().any(|l| l.trim() == path);
        let pem = format!("{}{}", m.chain_pem, m.key_pem);
        for (cmd, payload) in install_commands(&path, &pem, loaded) {
            match payload {
                Some(p) => self.runtime.call_payload(&cmd, &p).await?,
                None => self.runtime.call(&[cmd]).await.map(|_| ())?,
            }
        }
        let line = crt_list_line(&f, service, hosts);
        let list = read_opt(&f.crt_list())?.unwrap_or_default();
        if !list.lines().any(|l| l == line) {
            if list.lines().any(|l| l.split_whitespace().next() == Some(path.as_str())) {
                let del = format!("del ssl crt-list {} {path}", f.crt_list().display());
                self.runtime.call(&[del]).await?;
            }
            let add = format!("add ssl crt-list {} <<", f.crt_list().display());
            self.runtime.call_payload(&add, &line).await?;
        }
        let store = Store::new(&f.dir);
        store.put(service, m).map_err(tls_err)?;
        let mut lines: Vec<&str> = list
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(path.as_str()))
            .collect();
        lines.push(&line);
        persist(&f.crt_list(), lines.join("\n") + "\n").await?;
        self.set_hosts(service, hosts).await
    }

    /// Removes the certificate of `service` and its hosts' redirect.
    pub async fn remove_certificate(&self, service: &str) -> Result<(), ProxyError> {
        let f = self.files().clone();
        let path = f.cert(service).display().to_string();
        self.set_hosts(service, &[]).await?;
        let list = read_opt(&f.crt_list())?.unwrap_or_default();
        if list.lines().any(|l| l.split_whitespace().next() == Some(path.as_str())) {
            let del = format!("del ssl crt-list {} {path}", f.crt_list().display());
            self.runtime.call(&[del, format!("del ssl cert {path}")]).await?;
            let kept: Vec<&str> = list
                .lines()
                .filter(|l| l.split_whitespace().next() != Some(path.as_str()))
                .collect();
            persist(&f.crt_list(), kept.iter().map(|l| format!("{l}\n")).collect::<String>()).await?;
        }
        Store::new(&f.dir).remove(service).map_err(tls_err)
    }

    /// The hosts of `service` in the redirect map: exactly `hosts`.
    async fn set_hosts(&self, service: &str, hosts: &[String]) -> Result<(), ProxyError> {
        let map = self.files().hosts_map();
        let text = read_opt(&map)?.unwrap_or_default();
        let mut cmds = vec![];
        let mut kept = vec![];
        for line in text.lines() {
            let mut w = line.split_whitespace();
            let (Some(host), Some(owner)) = (w.next(), w.next()) else {
                continue;
            };
            if owner == service && !hosts.iter().any(|h| h == host) {
                cmds.push(format!("del map {} {host}", map.display()));
            } else {
                kept.push(line.to_string());
            }
        }
        for h in hosts {
            if !kept.iter().any(|l| l.split_whitespace().next() == Some(h.as_str())) {
                cmds.push(format!("add map {} {h} {service}", map.display()));
                kept.push(format!("{h} {service}"));
            }
        }
        if !cmds.is_empty() {
            self.runtime.call(&cmds).await?;
            persist(&map, kept.iter().map(|l| format!("{l}\n")).collect::<String>()).await?;
        }
        Ok(())
    }

    /// Publishes (`Some`) or withdraws (`None`) an ACME HTTP-01 answer.
    pub async fn acme_challenge(&self, token: &str, key_authorization: Option<&str>) -> Result<(), ProxyError> {
        crate::drivers::route::acme_answer_refusal(token, key_authorization)?;
        self.prepare_tls()?;
        let map = self.files().acme_map();
        let cmd = match key_authorization {
            Some(k) => format!("add map {} {token} {k}", map.display()),
            None => format!("del map {} {token}", map.display()),
        };
        self.runtime.call(&[cmd]).await.map(|_| ())
    }
}
