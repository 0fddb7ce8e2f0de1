//! Pulls: with the credentials `auth` finds, within `images.pull_timeout`,
//! progress summed over layers (a line per finished layer, and at most one
//! a second while bytes come in), and a failure explained: the registry
//! unreachable, the credentials refused (saying whose they were), the tag
//! missing, or an image for another platform.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use super::auth::{registry_of, Found, RegistryAuth};
use super::progress::Progress;
use super::{is_not_found, message, DockerDriver, DockerError};

/// How this host pulls: whose credentials, and for how long at most.
#[derive(Debug, Clone)]
pub struct PullSettings {
    pub auth: RegistryAuth,
    pub timeout: Duration,
}

impl Default for PullSettings {
    fn default() -> Self {
        PullSettings {
            auth: RegistryAuth::new(vec![]),
            timeout: Duration::from_secs(600),
        }
    }
}

/// What a local image is.
struct Local {
    platform: String,
    digest: Option<String>,
}

impl DockerDriver {
    /// Pulls with these credentials and timeout.
    pub fn with_pulls(mut self, settings: PullSettings) -> DockerDriver {
        self.pulls = Arc::new(settings);
        self
    }

    /// The credentials a pull of `image` would send (for Swarm services,
    /// whose nodes pull). None when there are none or they cannot be read.
    pub(crate) async fn credentials_for(&self, image: &str) -> Option<bollard::auth::DockerCredentials> {
        self.pulls.auth.for_image(image).await.ok()?.credentials
    }

    /// The registry digest (`sha256:...`) the local `image` was pulled at,
    /// if it came from a registry (an image built here has none).
    pub async fn repo_digest(&self, image: &str) -> Result<Option<String>, DockerError> {
        Ok(self.local(image).await?.and_then(|l| l.digest))
    }

    /// The local `image`'s platform and registry digest, or None when it
    /// is absent: one inspect.
    async fn local(&self, image: &str) -> Result<Option<Local>, DockerError> {
        let i = match self.client.inspect_image(image).await {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => {
                return Err(DockerError::Api {
                    action: "inspect image",
                    target: image.to_string(),
                    message: message(&e),
                })
            }
        };
        let repo = format!("{}@", crate::pins::repo_of(image));
        Ok(Some(Local {
            platform: format!(
                "{}/{}",
                i.os.unwrap_or_default(),
                arch(&i.architecture.unwrap_or_default())
            ),
            digest: i
                .repo_digests
                .unwrap_or_default()
                .into_iter()
                .find_map(|d| d.strip_prefix(&repo).map(String::from)),
        }))
    }

    /// The engine's platform, as images name theirs (read once).
    async fn engine_platform(&self) -> Option<String> {
        let read = self.platform.get_or_try_init(|| async {
            let info = self.client.info().await?;
            Ok::<_, bollard::errors::Error>(format!(
                "{}/{}",
                info.os_type.unwrap_or_default(),
                arch(&info.architecture.unwrap_or_default())
            ))
        });
        match read.await {
            Ok(p) => Some(p.clone()),
            Err(e) => {
                tracing::warn!(error = %message(&e), "cannot read the engine's platform; images are not checked against it");
                None
            }
        }
    }

    /// Pulls `image` unless it is present, reporting progress lines, then
    /// makes sure it is built for this engine's platform. Returns the
    /// registry digest the local image was pulled at (`repo_digest`).
    pub async fn pull(&self, image: &str, mut on_progress: impl FnMut(String)) -> Result<Option<String>, DockerError> {
        let failed = |message: String| DockerError::Pull {
            image: image.to_string(),
            message,
        };
        // A present image is inspected once; a pulled one again after.
        let local = if let Some(l) = self.local(image).await? {
            l
        } else {
            let found = self.pulls.auth.for_image(image).await.map_err(|e| {
                failed(format!(
                    "the credentials for {} cannot be read: {e}",
                    registry_of(image)
                ))
            })?;
            let started = Instant::now();
            let limit = self.pulls.timeout;
            let mut progress = Progress::default();
            match tokio::time::timeout(limit, self.stream(image, &found, &mut progress, &mut on_progress)).await {
                Err(_) => {
                    return Err(failed(format!(
                        "the pull took longer than images.pull_timeout ({}); {}",
                        crate::spec::duration::format(limit),
                        progress.line()
                    )))
                }
                Ok(Err(m)) => return Err(failed(explain(&m, registry_of(image), &found))),
                Ok(Ok(())) => {}
            }
            on_progress(format!(
                "pulled {image}{}: {} in {:.1}s",
                progress.digest().map(|d| format!(" ({d})")).unwrap_or_default(),
                progress.summary(),
                started.elapsed().as_secs_f64()
            ));
            let Some(l) = self.local(image).await? else {
                return Err(failed("the pull ended without the image".into()));
            };
            l
        };
        match self.engine_platform().await {
            Some(host) if host != local.platform => Err(failed(format!(
                "the image is built for {} and this host runs {host}: push a build for {host} (or a multi-platform image)",
                local.platform
            ))),
            _ => Ok(local.digest),
        }
    }

    /// The engine's pull stream to its end; an error is the engine's words.
    async fn stream(
        &self,
        image: &str,
        found: &Found,
        progress: &mut Progress,
        on_progress: &mut impl FnMut(String),
    ) -> Result<(), String> {
        let opts = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut stream = self.client.create_image(Some(opts), None, found.credentials.clone());
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| message(&e))?;
            if let Some(e) = info.error_detail.and_then(|d| d.message).or(info.error) {
                return Err(e);
            }
            let (current, total) = info.progress_detail.map(|d| (d.current, d.total)).unwrap_or_default();
            let status = info.status.unwrap_or_default();
            if let Some(line) = progress.take(info.id.as_deref(), &status, current, total, Instant::now()) {
                on_progress(line);
            }
        }
        Ok(())
    }
}

/// Docker's and the kernel's names of an architecture, as images say it.
fn arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What a failed pull means, in front of the engine's own words.
pub(crate) fn explain(said: &str, registry: &str, found: &Found) -> String {
    let m = said.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    let registry = crate::config::registries::normalise(registry);
    let why = if has(&[
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
        "incorrect username or password",
    ]) {
        match &found.credentials {
            None => format!("the registry {registry} asks for credentials and this host has none for it: add a registries: item to the host config (or `docker login {registry}` as the user teal runs as)"),
            Some(_) => format!("the registry {registry} refused the credentials from {}: check the username and password", found.source),
        }
    } else if has(&["manifest unknown", "not found: manifest", "manifest for"]) && has(&["not found", "unknown"]) {
        format!("the tag is not in the registry {registry}: check the image's name and tag, or push it first")
    } else if has(&["no matching manifest", "does not match the specified platform"]) {
        "the image has no build for this host's platform: push one (or a multi-platform image)".to_string()
    } else if has(&["x509", "certificate signed by unknown authority"]) {
        format!("Docker does not trust the TLS certificate of the registry {registry}: put its CA in /etc/docker/certs.d/{registry}/ca.crt")
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "dial tcp",
        "network is unreachable",
        "timeout exceeded",
        "connection reset",
    ]) {
        format!("the registry {registry} cannot be reached")
    } else if has(&["denied"]) {
        format!(
            "the registry {registry} denied access to the repository (credentials from {})",
            found.source
        )
    } else {
        return said.to_string();
    };
    format!("{why} (Docker said: {said})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(creds: bool) -> Found {
        Found {
            credentials: creds.then(Default::default),
            source: "registries[0] in the host config (user ci)".into(),
        }
    }

    #[test]
    fn each_failure_is_explained_before_dockers_words() {
        let e = explain(
            "Head \"http://127.0.0.1:5000/v2/web/manifests/1\": no basic auth credentials",
            "127.0.0.1:5000",
            &with(false),
        );
        assert!(
            e.starts_with("the registry 127.0.0.1:5000 asks for credentials and this host has none for it"),
            "{e}"
        );
        assert!(
            e.ends_with("(Docker said: Head \"http://127.0.0.1:5000/v2/web/manifests/1\": no basic auth credentials)"),
            "{e}"
        );
        let e = explain("unauthorized: authentication required", "127.0.0.1:5000", &with(true));
        assert!(
            e.starts_with(
                "the registry 127.0.0.1:5000 refused the credentials from registries[0] in the host config (user ci)"
            ),
            "{e}"
        );
        let e = explain(
            "manifest for 127.0.0.1:5000/web:9 not found: manifest unknown: manifest unknown",
            "127.0.0.1:5000",
            &with(true),
        );
        assert!(e.starts_with("the tag is not in the registry 127.0.0.1:5000"), "{e}");
        let e = explain(
            "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
            "127.0.0.1:1",
            &with(false),
        );
        assert!(
            e.starts_with("the registry 127.0.0.1:1 cannot be reached (Docker said: Get"),
            "{e}"
        );
        let e = explain(
            "no matching manifest for linux/amd64 in the manifest list entries",
            "https://index.docker.io/v1/",
            &with(false),
        );
        assert!(e.starts_with("the image has no build for this host's platform"), "{e}");
        let e = explain(
            "x509: certificate signed by unknown authority",
            "r.example.com",
            &with(false),
        );
        assert!(e.contains("/etc/docker/certs.d/r.example.com/ca.crt"), "{e}");
        assert_eq!(explain("something new", "r.example.com", &with(false)), "something new");
    }

    #[test]
    fn architectures_are_named_as_images_name_them() {
        assert_eq!(arch("x86_64"), "amd64");
        assert_eq!(arch("aarch64"), "arm64");
        assert_eq!(arch("arm64"), "arm64");
    }
}
