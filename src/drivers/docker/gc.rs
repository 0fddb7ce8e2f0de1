//! What an image cleanup asks of the engine: which images containers use
//! (every container, teal's or not), an image's ID and size, removing one
//! by reference (an image another container took meanwhile is refused by
//! the engine, and left), and the space free where the engine keeps them.

use std::collections::{BTreeMap, BTreeSet};

use bollard::query_parameters::{ListContainersOptions, RemoveImageOptions};

use super::{is_not_found, message, DockerDriver, DockerError};

/// A removal's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// Gone; `deleted`: its bytes too (false: only this tag, another
    /// names the same image).
    Yes { deleted: bool },
    /// The engine refused: a container uses it.
    InUse(String),
    /// It was not there.
    Absent,
}

impl DockerDriver {
    /// The image references and IDs of every container on the engine.
    pub async fn images_in_use(&self) -> Result<BTreeSet<String>, DockerError> {
        let opts = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .client
            .list_containers(Some(opts))
            .await
            .map_err(|e| DockerError::Api {
                action: "list containers",
                target: "all".into(),
                message: message(&e),
            })?;
        Ok(list.into_iter().flat_map(|c| [c.image, c.image_id]).flatten().collect())
    }

    /// Each present image's ID and size in bytes, by reference.
    pub async fn image_facts(&self, images: &[String]) -> Result<BTreeMap<String, (String, u64)>, DockerError> {
        let mut out = BTreeMap::new();
        for image in images {
            match self.client.inspect_image(image).await {
                Ok(i) => {
                    let size = i.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    out.insert(image.clone(), (i.id.unwrap_or_default(), size));
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(DockerError::Api {
                        action: "inspect image",
                        target: image.clone(),
                        message: message(&e),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Removes the image reference `image` (never forced).
    pub async fn remove_image_ref(&self, image: &str) -> Result<Removed, DockerError> {
        let opts = RemoveImageOptions {
            force: false,
            noprune: false,
        };
        match self.client.remove_image(image, Some(opts), None).await {
            Ok(items) => Ok(Removed::Yes {
                deleted: items.iter().any(|i| i.deleted.is_some()),
            }),
            Err(e) if is_not_found(&e) => Ok(Removed::Absent),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) => Ok(Removed::InUse(message)),
            Err(e) => Err(DockerError::Api {
                action: "remove image",
                target: image.to_string(),
                message: message(&e),
            }),
        }
    }

    /// Bytes free on the file system of the engine's root dir, when the
    /// engine runs on this machine (its root dir is here to measure).
    pub async fn disk_free(&self) -> Option<u64> {
        let root = self.client.info().await.ok()?.docker_root_dir?;
        tokio::task::spawn_blocking(move || free_bytes(std::path::Path::new(&root)))
            .await
            .ok()?
    }
}

fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_bytes_of_a_real_file_system_and_none_for_a_missing_path() {
        let free = super::free_bytes(std::path::Path::new("/")).expect("statvfs of /");
        assert!(free > 0);
        assert_eq!(super::free_bytes(std::path::Path::new("/no/such/dir")), None);
    }
}
