//! Tags that moved: for each color whose image tag this host pinned
//! (`crate::pins`), the digest the registry serves the tag at now. A
//! difference is shown (`teal plan`, `/status`) and not acted on: the
//! color keeps running the pinned bytes until a commit names another tag,
//! unless its service says `pull: always` (`follow`).

use std::collections::BTreeMap;

use crate::config::HostConfig;
use crate::drivers::docker::auth::RegistryAuth;
use crate::drivers::registry;
use crate::spec::{Color, Desired};

/// One color whose tag the registry now serves at another digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    pub service: String,
    pub color: Color,
    pub image: String,
    /// What the color runs (its pin), and what the tag means now.
    pub runs: String,
    pub now: String,
}

impl Moved {
    /// `web: tag 1.4 moved (blue runs sha256:1f2e3d4c5b6a, the registry now has sha256:9a8b7c6d5e4f)`.
    pub fn line(&self) -> String {
        let tag = crate::latest::reference(&self.image).map_or(self.image.clone(), |r| r.2);
        format!(
            "{}: tag {tag} moved ({} runs {}, the registry now has {})",
            self.service,
            self.color,
            short(&self.runs),
            short(&self.now)
        )
    }
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// What moved, after following it where a service asks (`pull: always`):
/// such a tag is pinned to what it means now, so the next plan redeploys
/// its color; the rest is returned, to be shown.
pub async fn follow(config: &HostConfig, desired: &Desired) -> Vec<Moved> {
    let all = moved(config, desired).await;
    let pins = crate::pins::Pins::new(&config.state_dir);
    let mut shown = vec![];
    for m in all {
        let follows = desired
            .services
            .get(&m.service)
            .is_some_and(|s| s.pull == crate::spec::PullPolicy::Always);
        if !follows {
            shown.push(m);
            continue;
        }
        match pins.set(&m.image, &m.now) {
            Ok(()) => {
                tracing::info!(service = %m.service, "{}; pull: always: pinned to the new digest, {} is redeployed", m.line(), m.color)
            }
            Err(e) => {
                tracing::warn!(service = %m.service, error = %e, "cannot record the new pin");
                shown.push(m);
            }
        }
    }
    shown
}

/// How long one registry gets to answer.
const ASK: std::time::Duration = std::time::Duration::from_secs(5);

/// The pinned colors of `desired` whose tags moved. A registry that does
/// not answer is logged and left out: this is information, not a gate.
pub async fn moved(config: &HostConfig, desired: &Desired) -> Vec<Moved> {
    let pins = crate::pins::Pins::new(&config.state_dir).all();
    let auth = RegistryAuth::new(config.registries.clone());
    let mut asked: BTreeMap<String, Option<String>> = BTreeMap::new();
    // A registry that did not answer is not asked again in this check.
    let mut silent: std::collections::BTreeSet<Option<String>> = Default::default();
    let mut out = vec![];
    for svc in desired.services.values() {
        for color in Color::ALL {
            let Some(image) = svc.images.get(color) else { continue };
            let (Some(runs), Some((host, name, tag))) = (pins.get(image), crate::latest::reference(image)) else {
                continue;
            };
            if !asked.contains_key(image) && !silent.contains(&host) {
                let ask = async {
                    let found = auth.for_image(image).await?;
                    let base = registry::base_url(host.as_deref());
                    registry::manifest_digest(&base, &name, &tag, &found).await
                };
                let now = match tokio::time::timeout(ASK, ask).await {
                    Ok(Ok(now)) => now,
                    Ok(Err(e)) => {
                        tracing::debug!(image = %image, error = %e, "cannot ask the registry whether the tag moved");
                        silent.insert(host.clone());
                        None
                    }
                    Err(_) => {
                        silent.insert(host.clone());
                        None
                    }
                };
                asked.insert(image.clone(), now);
            }
            if let Some(now) = asked.get(image).cloned().flatten().filter(|now| now != runs) {
                out.push(Moved {
                    service: svc.name.clone(),
                    color,
                    image: image.clone(),
                    runs: runs.clone(),
                    now,
                });
            }
        }
    }
    out
}
