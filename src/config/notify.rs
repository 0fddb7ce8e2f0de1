//! `notify:` in the host config: where each deploy is reported. A list of
//! targets, each either a webhook (`url`, `secret_file`) or a forge's
//! commit statuses (`github`). Secrets are files, read once at start.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// One item of `notify:`: a webhook or a forge, never both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// Webhook: a JSON event is POSTed here per deploy step that matters.
    #[serde(default)]
    pub url: Option<String>,
    /// Webhook: file holding the HMAC key; each body is signed in
    /// `X-Teal-Signature-256: sha256=<hex>` (GitHub's webhook scheme).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Commit statuses through the GitHub REST API (also GitHub
    /// Enterprise, Gitea, Forgejo).
    #[serde(default)]
    pub github: Option<GithubTarget>,
}

/// `github:` of a notify target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubTarget {
    /// API root: `https://api.github.com`, or `https://HOST/api/v3`
    /// (Enterprise), `https://HOST/api/v1` (Gitea, Forgejo).
    #[serde(default = "default_api")]
    pub api: String,
    /// `owner/name` of the config repo.
    pub repo: String,
    /// File holding a token allowed to write commit statuses.
    pub token_file: PathBuf,
    /// Link shown with each status (this host's dashboard, say).
    #[serde(default)]
    pub target_url: Option<String>,
}

fn default_api() -> String {
    "https://api.github.com".into()
}

/// Located problems the types cannot say: a target that is both or
/// neither, a secret without a url, a repo that is not `owner/name`.
pub fn check(path: &str, text: &str, targets: &[NotifyTarget]) -> Vec<Diagnostic> {
    let loc = Locator::new(text);
    let mut out = vec![];
    for (i, t) in targets.iter().enumerate() {
        let n = i.to_string();
        let at = |field: &str, msg: &str| {
            let (line, col) = loc.pos(&["notify", &n, field]);
            Diagnostic::new(path, line, col, format!("notify[{i}]: {msg}"))
        };
        match (&t.url, &t.github) {
            (Some(_), Some(_)) => out.push(at(
                "github",
                "either url (a webhook) or github, not both: make two items",
            )),
            (None, None) => out.push(at("", "needs url (a webhook) or github (commit statuses)")),
            (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                out.push(at("url", &format!("url {u:?} must start with http:// or https://")))
            }
            _ => {}
        }
        if t.secret_file.is_some() && t.url.is_none() {
            out.push(at("secret_file", "secret_file signs webhook bodies: it goes with url"));
        }
        if let Some(g) = &t.github {
            let parts: Vec<&str> = g.repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                out.push(at("github", &format!("github.repo {:?} must be owner/name", g.repo)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::HostConfig;

    #[test]
    fn targets_parse_and_mistakes_are_located() {
        let base = "repo: {url: x}\nproxy: {kind: nginx}\n";
        let ok = format!(
            "{base}notify:\n  - url: https://hooks.example.com/teal\n    secret_file: /etc/teal/s\n  - github: {{repo: ops/deploy, token_file: /etc/teal/t}}\n"
        );
        let c = HostConfig::parse("d.yaml", &ok).unwrap();
        assert_eq!(c.notify.len(), 2);
        assert_eq!(c.notify[1].github.as_ref().unwrap().api, "https://api.github.com");
        let bad = format!(
            "{base}notify:\n  - secret_file: /s\n  - github: {{repo: deploy, token_file: /t}}\n  - url: ftp://x\n"
        );
        let err = HostConfig::parse("d.yaml", &bad).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "d.yaml:4:16: notify[0]: needs url (a webhook) or github (commit statuses)",
                "d.yaml:4:18: notify[0]: secret_file signs webhook bodies: it goes with url",
                "d.yaml:5:5: notify[1]: github.repo \"deploy\" must be owner/name",
                "d.yaml:6:10: notify[2]: url \"ftp://x\" must start with http:// or https://",
            ],
            "{err}"
        );
    }
}
