//! The release step: the service's release command, once per commit,
//! before the new color starts. Recorded in `state_dir/releases/<service>.json`
//! like a rollout step: `started` before the container is created,
//! `succeeded` or `failed` once it ended (then the container goes). A
//! teal that crashes mid-run finds the record and the container of the
//! same commit and waits for it; a recorded success is never run again,
//! nor a recorded failure for the same commit (a new commit runs it). A
//! commit that goes back to an image released before (a `git revert`)
//! runs none unless `release.on_rollback` says so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{container_spec, Engine, StepError};
use crate::drivers::docker::{DockerDriver, ReleaseRun, ReleaseSpec};
use crate::spec::release::ReleaseEnv;
use crate::spec::{Color, Service};

/// Successful releases remembered, to tell a rollback.
const KEEP: usize = 20;

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Started,
    Succeeded,
    Failed,
}

/// One service's last release, and the images released before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub commit: String,
    pub image: String,
    pub phase: Phase,
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Its last lines of output, secret values blanked out.
    #[serde(default)]
    pub output: Vec<String>,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Images whose release succeeded, oldest first, with their commits.
    #[serde(default)]
    pub released: Vec<(String, String)>,
}

/// The records under `state_dir/releases`.
pub fn path(state_dir: &Path, service: &str) -> PathBuf {
    state_dir.join("releases").join(format!("{service}.json"))
}

/// The last release record of `service`, if any.
pub fn load(state_dir: &Path, service: &str) -> Option<Record> {
    serde_json::from_str(&std::fs::read_to_string(path(state_dir, service)).ok()?).ok()
}

/// Records `r`, on disk before this returns (a crash leaves the old
/// record or the new, never half of one).
fn save(state_dir: &Path, service: &str, r: &Record) -> std::io::Result<()> {
    let file = path(state_dir, service);
    let dir = file.parent().expect("a record has a dir");
    std::fs::create_dir_all(dir)?;
    crate::atomic::write_synced(
        &file,
        &serde_json::to_vec_pretty(r).expect("a release record serialises"),
    )
}

impl Engine<'_> {
    /// Runs (or finds the recorded outcome of) the release of `svc` for
    /// this commit; a note on what happened, for the event log.
    pub(super) async fn release(&self, svc: &Service, color: Color, image: &str) -> Result<String, StepError> {
        let Some(rel) = &svc.release else {
            return Err(StepError::Invalid(format!("{}: no release command declared", svc.name)));
        };
        let state = self.records.state_dir().to_path_buf();
        let docker = self.docker.docker();
        let last = blocking(state.clone(), svc.name.clone(), |s, n| load(&s, &n)).await;
        let same = last.as_ref().filter(|r| r.commit == self.commit && r.image == image);
        let existing = docker.release_container(&svc.name).await?;
        match same.map(|r| r.phase) {
            Some(Phase::Succeeded) => {
                if existing.is_some() {
                    docker.remove_release(&svc.name).await?;
                }
                return Ok(format!("already succeeded for {} (not run again)", short(self.commit)));
            }
            Some(Phase::Failed) => return Err(failed(same.expect("a record"), self.commit)),
            _ => {}
        }
        let released = last.as_ref().map(|r| r.released.clone()).unwrap_or_default();
        if same.is_none() && !rel.on_rollback && is_rollback(&released, image) {
            return Ok(format!(
                "not run: {image} was released before, so this is a rollback (release.on_rollback: true runs it)"
            ));
        }
        let record = Record {
            commit: self.commit.to_string(),
            image: image.to_string(),
            phase: Phase::Started,
            exit_code: None,
            output: vec![],
            reason: None,
            released,
        };
        let adopt = same.is_some() && existing.as_deref() == Some(self.commit);
        // `switch.pause`: the route's new requests wait while it runs.
        let held = self.hold_requests(svc).await?;
        let ran = self.start_and_wait(svc, color, &record, last.as_ref(), adopt).await;
        let lifted = self.lift_hold(svc, held).await;
        let note = self.finish(svc, docker, &state, record, ran?, rel.timeout).await?;
        Ok(match lifted {
            Some(l) => format!("{note}; {l}"),
            None => note,
        })
    }

    /// Starts the release container (unless one of this commit runs,
    /// `adopt`), recorded first, and waits for it to end.
    async fn start_and_wait(
        &self,
        svc: &Service,
        color: Color,
        record: &Record,
        last: Option<&Record>,
        adopt: bool,
    ) -> Result<ReleaseRun, StepError> {
        let rel = svc.release.as_ref().expect("a release is declared");
        let state = self.records.state_dir().to_path_buf();
        let docker = self.docker.docker();
        if !adopt {
            self.save(&state, svc, record).await?;
            let mut spec = container_spec(svc, color)?;
            spec.run_image = self.pinned(&svc.name, &spec.image).await?;
            let r = ReleaseSpec {
                spec: &spec,
                command: &rel.command,
                bare: rel.env == ReleaseEnv::None,
                commit: self.commit,
                timeout: rel.timeout,
            };
            if let Err(e) = docker.start_release(&r).await {
                // The command never ran (Docker refused the container, a
                // network or an image was missing): the deploy fails, and
                // the next pass tries again, so the record goes back to
                // what it was. Only a command that ran is a failure that
                // sticks to the commit.
                let _ = docker.remove_release(&svc.name).await;
                match last {
                    Some(prev) => self.save(&state, svc, prev).await?,
                    None => self.forget(&state, svc).await?,
                }
                return Err(e.into());
            }
        }
        Ok(docker.wait_release(&svc.name, rel.timeout).await?)
    }

    /// Records how the release ended, then removes its container.
    async fn finish(
        &self,
        svc: &Service,
        docker: &DockerDriver,
        state: &Path,
        mut record: Record,
        run: ReleaseRun,
        timeout: std::time::Duration,
    ) -> Result<String, StepError> {
        record.output = redact(svc, run.output);
        record.exit_code = run.exit_code;
        match run.exit_code {
            Some(0) => {
                record.phase = Phase::Succeeded;
                record.released.push((record.commit.clone(), record.image.clone()));
                let extra = record.released.len().saturating_sub(KEEP);
                record.released.drain(..extra);
            }
            Some(code) => {
                record.phase = Phase::Failed;
                record.reason = Some(format!("exited {code}"));
            }
            None => {
                record.phase = Phase::Failed;
                record.reason = Some(format!(
                    "timed out after {} and was killed",
                    crate::spec::duration::format(timeout)
                ));
            }
        }
        self.save(state, svc, &record).await?;
        docker.remove_release(&svc.name).await?;
        match record.phase {
            Phase::Succeeded => Ok(format!("exit 0; last lines: {}", record.output.join(" | "))),
            _ => Err(failed(&record, self.commit)),
        }
    }

    /// Removes the record of a service that had none before.
    async fn forget(&self, state: &Path, svc: &Service) -> Result<(), StepError> {
        let file = path(state, &svc.name);
        tokio::task::spawn_blocking(move || match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .expect("removing a release record does not panic")
        .map_err(|e| StepError::Invalid(format!("recording the release of {}: {e}", svc.name)))
    }

    async fn save(&self, state: &Path, svc: &Service, r: &Record) -> Result<(), StepError> {
        let (dir, name, rec) = (state.to_path_buf(), svc.name.clone(), r.clone());
        tokio::task::spawn_blocking(move || save(&dir, &name, &rec))
            .await
            .expect("saving a release record does not panic")
            .map_err(|e| StepError::Invalid(format!("recording the release of {}: {e}", svc.name)))
    }
}

async fn blocking<T: Send + 'static>(
    state: PathBuf,
    service: String,
    f: impl FnOnce(PathBuf, String) -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || f(state, service))
        .await
        .expect("reading a release record does not panic")
}

/// A failed release as a deploy error: what, why, its last lines, and
/// that it is not run again for this commit.
fn failed(r: &Record, commit: &str) -> StepError {
    StepError::Release(format!(
        "the release command of {} {}; last lines: {}. Traffic stays where it was; it is not run again for this commit: push a fix (an empty commit runs it again)",
        short(commit),
        r.reason.as_deref().unwrap_or("failed"),
        if r.output.is_empty() { "(none)".to_string() } else { r.output.join(" | ") }
    ))
}

/// Going back to an image released before, which is not the last one
/// released.
fn is_rollback(released: &[(String, String)], image: &str) -> bool {
    released.iter().any(|(_, i)| i == image) && released.last().map(|(_, i)| i.as_str()) != Some(image)
}

/// `lines` with every secret value of `svc` blanked out: a migration that
/// prints its database URL puts no password into the event log.
fn redact(svc: &Service, lines: Vec<String>) -> Vec<String> {
    let values: Vec<(&String, &str)> = svc
        .secrets
        .iter()
        .filter_map(|(k, s)| Some((k, s.value.as_ref()?.expose())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    lines
        .into_iter()
        .map(|l| {
            let l = values
                .iter()
                .fold(l, |l, (k, v)| l.replace(v, &format!("<secret {k}>")));
            crate::printable::field(&l).into_owned()
        })
        .collect()
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_is_an_image_released_before_but_not_last() {
        let r = |l: &[&str]| l.iter().map(|i| ("c".to_string(), i.to_string())).collect::<Vec<_>>();
        assert!(!is_rollback(&r(&[]), "a"));
        assert!(
            !is_rollback(&r(&["a"]), "a"),
            "the same image again (an env change) runs it"
        );
        assert!(is_rollback(&r(&["a", "b"]), "a"));
        assert!(!is_rollback(&r(&["a", "b"]), "c"));
    }

    #[test]
    fn records_are_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), "web"), None);
        let r = Record {
            commit: "c1".into(),
            image: "web:2".into(),
            phase: Phase::Started,
            exit_code: None,
            output: vec![],
            reason: None,
            released: vec![("c0".into(), "web:1".into())],
        };
        save(dir.path(), "web", &r).unwrap();
        assert_eq!(load(dir.path(), "web"), Some(r));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("releases"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["web.json"], "no temp file left");
    }
}
