//! `teal status --fleet`: every host of teal.yaml's `hosts`, read from its
//! status URL at once, as a table of host x service. A host that does not
//! answer within a few seconds is marked, not waited for; one whose URL the
//! host config does not admit (`fleet.peers`) is marked and not contacted.

use std::fmt::Write;
use std::time::Duration;

use crate::commit::ShortCommit;
use crate::config::HostConfig;
use crate::drivers::peer::PeerClient;
use crate::status::Status;

/// One host's answer.
type Answer = Result<Status, String>;

/// Prints the fleet as a table, or (`json`) as one document.
pub async fn run(config: &HostConfig, json: bool) -> anyhow::Result<u8> {
    let c = config.clone();
    let rev = tokio::task::spawn_blocking(move || crate::reconcile::fetch_fleet(&c)).await??;
    let hosts = rev.desired.hosts.clone();
    anyhow::ensure!(
        !hosts.is_empty(),
        "teal.yaml at {} lists no hosts: this is a single host, see `teal status`",
        ShortCommit::of(&rev.commit)
    );
    // The waves' client and rules: only URLs the host config admits are read.
    let token = super::host::token(config)?.map(crate::secret::Secret::new);
    let client = PeerClient::new(token, Duration::from_secs(3));
    let reads = hosts.iter().map(|(name, h)| {
        let client = client.clone();
        async move {
            let answer: Answer = match &h.status {
                None => Err("no status URL in teal.yaml".into()),
                Some(url) => client.status(url, &config.fleet).await.map_err(|e| e.to_string()),
            };
            (name.clone(), answer)
        }
    });
    let answers: Vec<(String, Answer)> = futures_util::future::join_all(reads).await;
    match json {
        true => {
            let doc: serde_json::Map<String, serde_json::Value> = answers
                .iter()
                .map(|(name, a)| {
                    let v = match a {
                        Ok(s) => serde_json::json!({ "status": s }),
                        Err(e) => serde_json::json!({ "error": e }),
                    };
                    (name.clone(), v)
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "hosts": doc }))?
            );
        }
        false => print!("{}", table(&answers)),
    }
    Ok(if answers.iter().all(|(_, a)| a.is_ok()) {
        super::exit::OK
    } else {
        super::exit::ERROR
    })
}

/// host x service: color, version, commit, state.
pub fn table(answers: &[(String, Answer)]) -> String {
    let mut rows = vec![["HOST", "SERVICE", "COLOR", "VERSION", "COMMIT", "STATE"]
        .map(String::from)
        .to_vec()];
    for (host, a) in answers {
        match a {
            Err(e) => rows.push(vec![
                host.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                e.clone(),
            ]),
            Ok(s) if s.services.is_empty() => rows.push(vec![
                host.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "no services".into(),
            ]),
            Ok(s) => {
                for (name, svc) in &s.services {
                    let color = svc.live.map_or("-".to_string(), |c| c.to_string());
                    let version = svc
                        .live
                        .and_then(|c| svc.versions.get(c).clone())
                        .unwrap_or_else(|| "-".into());
                    let commit = svc
                        .serving
                        .as_deref()
                        .map_or("-".to_string(), |c| ShortCommit::git(c).to_string());
                    let state = if let Some(w) = &svc.waiting {
                        w.clone()
                    } else if let Some(f) = &svc.failed {
                        format!("failed at {}", ShortCommit::git(f))
                    } else if svc.rolled_back.is_some() {
                        "rolled back".into()
                    } else if svc.serving.is_some() && svc.serving == s.applied_commit {
                        "serving".into()
                    } else {
                        "deploying".into()
                    };
                    rows.push(vec![host.clone(), name.clone(), color, version, commit, state]);
                }
            }
        }
    }
    // Every cell but the header is a peer's answer.
    for cell in rows.iter_mut().flatten() {
        *cell = crate::printable::field(cell).into_owned();
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_text_is_shown_escaped() {
        let mut s = Status::default();
        let svc = crate::daemon::status::ServiceStatus {
            waiting: Some("waiting\x1b[2J\rfor wave 1".into()),
            ..Default::default()
        };
        s.services.insert("web".into(), svc);
        let out = table(&[
            ("web-1".into(), Ok(s)),
            ("web-2".into(), Err("down\x1b]0;x\x07".into())),
        ]);
        assert!(!out.contains(['\x1b', '\r', '\x07']), "{out:?}");
        assert!(
            out.contains("waiting\\u{1b}[2J\\rfor wave 1") && out.contains("down\\u{1b}]0;x\\u{7}"),
            "{out}"
        );
    }

    /// A peer may answer any text where a commit goes: the table cuts it
    /// on characters, it does not panic in the middle of one.
    #[test]
    fn a_peers_commit_of_any_text_is_cut_without_a_panic() {
        let mut s = Status::default();
        let svc = crate::daemon::status::ServiceStatus {
            serving: Some("ééééééééé".into()),
            failed: Some("ü0123456789".into()),
            ..Default::default()
        };
        s.services.insert("web".into(), svc);
        let out = table(&[("web-1".into(), Ok(s))]);
        assert!(
            out.contains(" ééééééé ") && out.contains("failed at ü012345\n"),
            "{out}"
        );
    }
}
