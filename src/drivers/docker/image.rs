//! Images: presence, and building a `FROM scratch` image around one
//! static binary (the demo app). Pulls are in `pull`.

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

use super::{is_not_found, message, DockerDriver, DockerError};

impl DockerDriver {
    /// Whether `image` is present locally.
    pub async fn image_present(&self, image: &str) -> Result<bool, DockerError> {
        match self.client.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(DockerError::Api {
                action: "inspect image",
                target: image.to_string(),
                message: message(&e),
            }),
        }
    }

    /// Builds `tag` as a `FROM scratch` image whose entrypoint is `binary`
    /// (copied to `/app`), with `env` baked in as `ENV` lines. Used by
    /// `teal demo` and the tests, no registry needed.
    pub async fn build_app_image(&self, tag: &str, binary: &[u8], env: &[(&str, &str)]) -> Result<(), DockerError> {
        let mut dockerfile = String::from("FROM scratch\nCOPY app /app\n");
        for (k, v) in env {
            dockerfile.push_str(&format!("ENV {k}={v:?}\n"));
        }
        dockerfile.push_str("ENTRYPOINT [\"/app\"]\n");
        let context = tar(&[("Dockerfile", dockerfile.as_bytes(), 0o644), ("app", binary, 0o755)]);
        let opts = BuildImageOptions {
            t: Some(tag.to_string()),
            dockerfile: "Dockerfile".into(),
            rm: true,
            ..Default::default()
        };
        let mut stream = self
            .client
            .build_image(opts, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::Build {
                tag: tag.to_string(),
                message: message(&e),
            })?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError::Build {
                    tag: tag.to_string(),
                    message: e,
                });
            }
        }
        match self.image_present(tag).await? {
            true => Ok(()),
            false => Err(DockerError::Build {
                tag: tag.to_string(),
                message: "the build ended without the image".into(),
            }),
        }
    }
}

impl DockerDriver {
    /// Removes the local images `repo:*` (for `teal demo --clean`); returns their tags.
    pub async fn remove_images(&self, repo: &str) -> Result<Vec<String>, DockerError> {
        use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
        let filters = HashMap::from([("reference".to_string(), vec![format!("{repo}:*")])]);
        let opts = ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let images = self
            .client
            .list_images(Some(opts))
            .await
            .map_err(|e| DockerError::Api {
                action: "list images",
                target: repo.to_string(),
                message: message(&e),
            })?;
        let mut removed = vec![];
        for tag in images.into_iter().flat_map(|i| i.repo_tags) {
            let opts = RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            match self.client.remove_image(&tag, Some(opts), None).await {
                Ok(_) => removed.push(tag),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(DockerError::Api {
                        action: "remove image",
                        target: tag,
                        message: message(&e),
                    })
                }
            }
        }
        Ok(removed)
    }
}

/// A minimal ustar archive of regular files.
fn tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, mode) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |buf: &mut [u8], v: u64| {
            let s = format!("{:0width$o}\0", v, width = buf.len() - 1);
            buf.copy_from_slice(s.as_bytes());
        };
        octal(&mut h[100..108], *mode as u64);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_readable_by_the_tar_tool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctx.tar");
        std::fs::write(
            &path,
            tar(&[("Dockerfile", b"FROM scratch\n", 0o644), ("app", &[7u8; 1000], 0o755)]),
        )
        .unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(list.contains("-rw-r--r--") && list.contains("Dockerfile"), "{list}");
        assert!(
            list.contains("-rwxr-xr-x") && list.contains("1000") && list.contains("app"),
            "{list}"
        );
    }
}
