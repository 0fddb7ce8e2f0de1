//! `release:`: a one-off container of the new image (database
//! migrations), run once per commit before the new color starts.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::ReleaseFile;
use super::validate::{duration_field, Ctx, From};

/// Time a release may take when the file does not say.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What the release container gets of the color's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseEnv {
    /// The color's env and secrets.
    #[default]
    Inherit,
    /// Neither env nor secrets.
    None,
}

/// A resolved `release:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub command: Vec<String>,
    #[serde(with = "super::duration::serde_human")]
    pub timeout: Duration,
    pub env: ReleaseEnv,
    pub on_rollback: bool,
    /// `release.on` as written: the fleet host that runs it.
    pub on: Option<String>,
    /// Set for this host by `Desired::for_host` when another host of the
    /// fleet runs the release: that host. This host then runs no release
    /// and deploys once that host serves the commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<String>,
}

pub(super) fn resolve_release(ctx: &mut Ctx<'_>, r: &ReleaseFile) -> Option<Release> {
    let command = match &r.command {
        Some(c) if !c.is_empty() && c.iter().all(|a| !a.contains('\0')) => Some(c.clone()),
        Some(_) => {
            ctx.err(
                From::Service,
                &["release", "command"],
                "release.command is empty: give the command to run, e.g. [bin/migrate]",
            );
            None
        }
        None => {
            ctx.err(
                From::Service,
                &["release"],
                "release needs a command, e.g. command: [bin/migrate]",
            );
            None
        }
    };
    let timeout = duration_field(ctx, r.timeout.as_ref(), None, &["release", "timeout"], TIMEOUT);
    let timeout = match timeout {
        Some((d, _)) if d < Duration::from_secs(1) => {
            ctx.err(
                From::Service,
                &["release", "timeout"],
                "release.timeout is under 1s: give the release time to run, e.g. 5m",
            );
            None
        }
        other => other.map(|(d, _)| d),
    };
    Some(Release {
        command: command?,
        timeout: timeout?,
        env: r.env.unwrap_or_default(),
        on_rollback: r.on_rollback.unwrap_or(false),
        on: r.on.clone(),
        elsewhere: None,
    })
}
