//! `teal bump SERVICE IMAGE`: the everyday deploy. Stages IMAGE on the idle
//! color and flips `active` in `services/SERVICE.yaml`, changing only those
//! two values, so a review shows exactly the deploy. With `--latest`, IMAGE
//! is a pattern and the image is its newest tag in the registry (what CI
//! runs after pushing one): already served, it is no change and no error.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{errors_in, git};
use crate::spec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service, i.e. the file stem of services/SERVICE.yaml, e.g. `web`.
    pub service: String,
    /// The new image, e.g. `registry.example.com/shop/web:1.4.3`; with
    /// --latest, a pattern: `registry.example.com/shop/web:~1.4` (a semver
    /// range: ~1.4, ^1, '>=1.4, <2', *) or `...:/REGEX/` over the tags.
    pub image: String,
    /// Bump to the newest tag of the registry that IMAGE's pattern matches,
    /// listed through the registry's API with the credentials of Docker's
    /// config.json (docker login, credential helpers; DOCKER_CONFIG).
    #[arg(long)]
    pub latest: bool,
    /// The config repo's work tree.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Where teal.yaml and services/ live inside the repo, e.g. `--path deploy/`.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// Also `git commit` the change, with a message naming the service, the
    /// old and the new image. Default: only edit the file.
    #[arg(long)]
    pub commit: bool,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    let dir = args.repo.join(args.path.trim_start_matches('/'));
    let rel = format!("services/{}.yaml", args.service);
    let file = dir.join(&rel);
    let mut files = crate::source::dir::read(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let Some(text) = files.files.get(&rel).cloned() else {
        let known: Vec<&str> = files
            .files
            .keys()
            .filter_map(|k| k.strip_prefix("services/")?.strip_suffix(".yaml"))
            .collect();
        bail!(
            "no service {:?}: {} does not exist (services here: {})",
            args.service,
            file.display(),
            known.join(", ")
        );
    };
    if let Some(errors) = errors_in(&files, &rel) {
        bail!("{rel} is invalid, fix it first:\n{errors}");
    }
    let image = match args.latest {
        true => newest(&args.image)?,
        false => args.image.clone(),
    };
    let b = match spec::edit::bump(&rel, &text, &image) {
        Err(e @ spec::edit::EditError::AlreadyServes { .. }) if args.latest => {
            println!("{e}");
            return Ok(super::exit::OK);
        }
        r => r?,
    };
    files.files.insert(rel.clone(), b.text.clone());
    if let Some(errors) = errors_in(&files, &rel) {
        bail!("the bumped {rel} would be invalid, nothing was written:\n{errors}");
    }
    let tmp = file.with_extension("yaml.teal-tmp");
    std::fs::write(&tmp, &b.text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    let (from_color, from_image) = &b.from;
    let (to_color, to_image) = &b.to;
    println!("{rel}: {to_color} now runs {to_image} and becomes active ({from_color} keeps {from_image} warm)");
    if args.commit {
        let msg = format!("{}: deploy {to_image} (was {from_image})", args.service);
        git(&dir, &["add", "--", &rel])?;
        git(&dir, &["commit", "-q", "-m", &msg, "--", &rel])?;
        println!("committed: {msg}");
    } else {
        println!(
            "next: git commit -am \"{}: deploy {to_image}\" && git push",
            args.service
        );
    }
    Ok(super::exit::OK)
}

/// The newest image `pattern` matches in its registry.
fn newest(pattern: &str) -> anyhow::Result<String> {
    use crate::drivers::{docker::auth::RegistryAuth, registry};
    let p = crate::latest::Pattern::parse(pattern).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let base = registry::base_url(p.registry.as_deref());
    let tags = rt.block_on(async {
        let found = RegistryAuth::new(vec![])
            .for_image(&p.image("latest"))
            .await
            .map_err(anyhow::Error::msg)?;
        registry::tags(&base, &p.name, &found)
            .await
            .map_err(|e| anyhow::anyhow!("listing the tags of {} at {base}: {e}", p.repo))
    })?;
    let Some(tag) = p.newest(&tags) else {
        bail!(
            "no tag of {} matches {pattern:?} ({} tags in the registry)",
            p.repo,
            tags.len()
        );
    };
    println!("{pattern}: newest match {tag} (of {} tags)", tags.len());
    Ok(p.image(tag))
}
