//! Rollout records in the state dir (`rollouts/<service>.json`): the
//! progress of the last rollout of each service, written before the
//! engine acts, so a restarted teal resumes it, and a rollback survives
//! restarts (the same service is not tried again). Below the engine:
//! `observe` reads them as part of what the host runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::RolledBack;
use crate::strategy::{Phase, Progress};

#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The records under `state_dir/rollouts`.
    pub fn new(state_dir: &Path) -> Records {
        Records {
            dir: state_dir.join("rollouts"),
        }
    }

    /// The state dir the records are in.
    pub fn state_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    fn path(&self, service: &str) -> PathBuf {
        self.dir.join(format!("{service}.json"))
    }

    /// The last recorded progress of `service`, if any (an unreadable
    /// record counts as none: the rollout starts over, safely).
    pub fn load(&self, service: &str) -> Option<Progress> {
        let text = std::fs::read_to_string(self.path(service)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records `p`, atomically (a crash leaves the old record or the new).
    pub fn save(&self, p: &Progress) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&p.service);
        crate::atomic::write(&path, &serde_json::to_vec_pretty(p).expect("progress serialises"))
    }

    /// Forgets `service`'s rollback once a later commit converged it: the
    /// hold is for that change until a new commit arrives (DESIGN section
    /// 6), and a revert that needed no rollout of its own would otherwise
    /// leave the record holding the same change pushed again.
    pub fn forget_rolled_back(&self, service: &str) -> std::io::Result<()> {
        if self
            .load(service)
            .is_some_and(|p| matches!(p.phase, Phase::RolledBack(_)))
        {
            std::fs::remove_file(self.path(service))?;
        }
        Ok(())
    }

    /// Every service whose last rollout analysis rolled back.
    pub fn rolled_back(&self) -> BTreeMap<String, RolledBack> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
            .filter_map(|service| {
                let p = self.load(&service)?;
                let Phase::RolledBack(f) = p.phase else { return None };
                Some((
                    service,
                    RolledBack {
                        commit: p.commit,
                        service_hash: p.service_hash,
                        figures: f.figures,
                    },
                ))
            })
            .collect()
    }
}
