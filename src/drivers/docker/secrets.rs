//! Secrets delivered as files: each container gets its values as 0400
//! files teal writes under `state_dir/secrets/<service>/<dir>/` (a
//! release container's under `.release/<service>/<dir>/`), bound
//! read-only at `/run/secrets/<NAME>` (env would show in `docker
//! inspect`). These binds are teal's own, not the repo's: they pass the
//! bind checks by a narrow exemption (`is_own`) that covers exactly a
//! regular file in such a dir bound at `/run/secrets/` under its own
//! name, and nothing a service file can name. A dir no container uses
//! any more is removed (`sweep`).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::{DockerDriver, DockerError, MountRules};
use crate::spec::container::{labels, ContainerSpec};
use crate::spec::secret::{Delivery, MOUNT_DIR};

impl MountRules {
    /// Whether the bind `source` -> `dest` is one teal made for a secret:
    /// `<secrets_dir>/<service>/<dir>/<NAME>` at `/run/secrets/<NAME>`,
    /// a regular file reached through no symlink. Blocking.
    pub(super) fn is_own(&self, source: &Path, dest: &str) -> bool {
        let Some(root) = &self.secrets_dir else { return false };
        let Ok(rest) = source.strip_prefix(root) else {
            return false;
        };
        let parts: Vec<Component> = rest.components().collect();
        // A release container's files sit one level further down.
        let parts = match parts.as_slice() {
            [Component::Normal(r), tail @ ..] if *r == ".release" => tail,
            all => all,
        };
        let [Component::Normal(_), Component::Normal(_), Component::Normal(name)] = parts else {
            return false;
        };
        let Some(name) = name.to_str() else { return false };
        let plain = std::fs::symlink_metadata(source).is_ok_and(|m| m.file_type().is_file());
        crate::spec::secret::is_secret_name(name)
            && dest == format!("{MOUNT_DIR}/{name}")
            && plain
            && crate::drivers::paths::resolve(source) == source
    }
}

impl DockerDriver {
    /// Writes the file-delivered secrets of `spec` for container `name`
    /// into a fresh dir; the binds that mount them. None without secrets.
    pub(super) async fn secret_binds(&self, spec: &ContainerSpec, name: &str) -> Result<Vec<String>, DockerError> {
        let files: Vec<(String, String)> = spec
            .secrets
            .iter()
            .filter(|(_, m)| m.delivery == Delivery::File)
            .map(|(k, m)| (k.clone(), m.value.expose().to_string()))
            .collect();
        if files.is_empty() {
            return Ok(vec![]);
        }
        let err = |reason: String| DockerError::Mount {
            service: spec.service.clone(),
            color: spec.color.to_string(),
            container: name.to_string(),
            reason,
            done: "so teal did not create it",
        };
        let Some(root) = self.mounts.secrets_dir.clone() else {
            return Err(err(
                "secrets as files need the state dir, which this driver was not given".into(),
            ));
        };
        let dir = root.join(&spec.service).join(unique(name));
        tokio::task::spawn_blocking(move || write_files(&dir, &files).map(|()| binds(&dir, &files)))
            .await
            .expect("writing secret files does not panic")
            .map_err(|e| err(format!("writing its secret files under {}: {e}", root.display())))
    }

    /// Removes the secret dirs of `service` that no container of it
    /// mounts any more (its color removed, or replaced).
    pub async fn sweep_secrets(&self, service: &str) -> Result<(), DockerError> {
        let Some(root) = self.mounts.secrets_dir.clone() else {
            return Ok(());
        };
        let dir = root.join(service);
        // No secrets ever given to the service: nothing to sweep, and no
        // listing of its containers (one per start of a color).
        if !dir.exists() {
            return Ok(());
        }
        let used: BTreeSet<PathBuf> = self
            .list(&[(labels::SERVICE, service)])
            .await?
            .iter()
            .flat_map(|c| c.mounts.clone().unwrap_or_default())
            .filter_map(|m| m.source.map(PathBuf::from))
            .filter_map(|s| s.parent().map(Path::to_path_buf))
            .collect();
        tokio::task::spawn_blocking(move || sweep(&dir, &used))
            .await
            .expect("sweeping secret dirs does not panic");
        Ok(())
    }
}

/// A dir name no other container of the service has had.
fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{name}-{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// `dir` (and its parents up to the state dir) 0700, each value in a
/// 0400 file of its own.
fn write_files(dir: &Path, files: &[(String, String)]) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    for (name, value) in files {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
    }
    Ok(())
}

fn binds(dir: &Path, files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .map(|(name, _)| format!("{}:{MOUNT_DIR}/{name}:ro", dir.join(name).display()))
        .collect()
}

/// Removes each dir under `dir` that is not in `used`.
fn sweep(dir: &Path, used: &BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if !used.contains(&path) {
            if let Err(err) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %err, "cannot remove the secret files of a removed container");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_teal_wrote_bound_under_its_own_name_is_exempt() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap().join("secrets");
        let dir = root.join("web").join(unique("teal-web-blue-0"));
        let files = vec![("DB".to_string(), "postgres://x".to_string())];
        write_files(&dir, &files).unwrap();
        let meta = std::fs::metadata(dir.join("DB")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o400);
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(
            binds(&dir, &files),
            [format!("{}/DB:/run/secrets/DB:ro", dir.display())]
        );
        let rules = MountRules {
            secrets_dir: Some(root.clone()),
            ..Default::default()
        };
        assert!(rules.is_own(&dir.join("DB"), "/run/secrets/DB"));
        let release = root.join(".release").join("web").join(unique("teal-web-release"));
        write_files(&release, &files).unwrap();
        assert!(rules.is_own(&release.join("DB"), "/run/secrets/DB"));
        assert!(!rules.is_own(&root.join(".release").join("web").join("DB"), "/run/secrets/DB"));
        // Another destination, another name, the dir itself, a level up,
        // outside the secrets dir, a symlink, no secrets dir at all.
        assert!(!rules.is_own(&dir.join("DB"), "/data"));
        assert!(!rules.is_own(&dir.join("DB"), "/run/secrets/OTHER"));
        assert!(!rules.is_own(&dir, "/run/secrets/DB"));
        assert!(!rules.is_own(&root.join("web").join("DB"), "/run/secrets/DB"));
        std::fs::write(tmp.path().join("DB"), "x").unwrap();
        assert!(!rules.is_own(&tmp.path().join("DB"), "/run/secrets/DB"));
        std::os::unix::fs::symlink("/etc/hostname", dir.join("LINK")).unwrap();
        assert!(!rules.is_own(&dir.join("LINK"), "/run/secrets/LINK"));
        assert!(!MountRules::default().is_own(&dir.join("DB"), "/run/secrets/DB"));
        // Unused dirs go; used ones stay.
        let other = root.join("web").join(unique("teal-web-green-0"));
        write_files(&other, &files).unwrap();
        sweep(&root.join("web"), &BTreeSet::from([dir.clone()]));
        assert!(dir.exists() && !other.exists());
    }
}
