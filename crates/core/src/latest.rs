//! `teal bump SERVICE --latest PATTERN`: which of a repository's tags is
//! the newest match. PATTERN is an image reference whose tag is a semver
//! range (`registry.example.com/shop/web:~1.4`, `:^1`, `:>=1.4, <2`,
//! `:*`) or a regex between slashes (`...:/^2026-\d\d-\d\d$/`). Tags are
//! read as versions with an optional `v` and missing parts as 0 (`1.4`
//! is 1.4.0); a range matches no pre-release unless it names one, as
//! Cargo's do. The newest of the matches is the highest version; for a
//! regex whose matches are no versions, the greatest in byte order (so
//! use sortable tags such as dates). Pure: the tags come from the caller.

use std::cmp::Ordering;

/// A parsed `--latest` pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The registry host as written (`127.0.0.1:5000`); none: Docker Hub.
    pub registry: Option<String>,
    /// The repository's path (`shop/web`; Docker Hub's `nginx` is `library/nginx`).
    pub name: String,
    /// The reference as written, before the tag (`shop/web`, `r.example.com/web`).
    pub repo: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Semver(semver::VersionReq),
    Regex(regex::Regex),
}

impl Pattern {
    /// Parses `IMAGE:RANGE` or `IMAGE:/REGEX/`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let (registry, rest) = match text.split_once('/') {
            Some((first, rest)) if is_host(first) => (Some(first.to_string()), rest),
            _ => (None, text),
        };
        let Some((path, tag)) = rest.split_once(':') else {
            return Err(format!(
                "{text:?} has no tag pattern: write IMAGE:RANGE (shop/web:~1.4) or IMAGE:/REGEX/"
            ));
        };
        if path.is_empty()
            || !path.split('/').all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            })
        {
            return Err(format!(
                "{path:?} in {text:?} is not a repository name (lowercase letters, digits, . _ - and /)"
            ));
        }
        let matcher = match tag.strip_prefix('/').and_then(|t| t.strip_suffix('/')) {
            Some(re) => {
                Matcher::Regex(regex::Regex::new(re).map_err(|e| format!("the regex /{re}/ in {text:?}: {e}"))?)
            }
            None => Matcher::Semver(semver::VersionReq::parse(tag).map_err(|e| {
                format!("{tag:?} in {text:?} is neither a semver range (~1.4, ^1, >=1.4, <2) nor a /regex/: {e}")
            })?),
        };
        let name = match (&registry, path.contains('/')) {
            (None, false) => format!("library/{path}"),
            _ => path.to_string(),
        };
        let repo = match &registry {
            Some(r) => format!("{r}/{path}"),
            None => path.to_string(),
        };
        Ok(Pattern {
            registry,
            name,
            repo,
            matcher,
        })
    }

    /// The newest of `tags` that matches, if any.
    pub fn newest<'a>(&self, tags: &'a [String]) -> Option<&'a str> {
        let matching = tags.iter().map(String::as_str).filter(|t| match &self.matcher {
            Matcher::Semver(req) => version(t).is_some_and(|v| req.matches(&v)),
            Matcher::Regex(re) => re.is_match(t),
        });
        matching.max_by(|a, b| newer(a, b))
    }

    /// The image reference of `tag`.
    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }
}

/// An image reference with a tag as (registry host, repository path as
/// the registry API names it, tag); `None` for a reference by digest.
/// `nginx` is Docker Hub's `library/nginx:latest`.
pub fn reference(image: &str) -> Option<(Option<String>, String, String)> {
    if image.contains('@') {
        return None;
    }
    let (registry, rest) = match image.split_once('/') {
        Some((first, rest)) if is_host(first) => (Some(first.to_string()), rest),
        _ => (None, image),
    };
    let (path, tag) = rest.split_once(':').unwrap_or((rest, "latest"));
    let name = match (&registry, path.contains('/')) {
        (None, false) => format!("library/{path}"),
        _ => path.to_string(),
    };
    Some((registry, name, tag.to_string()))
}

/// Whether the first component of a reference is a registry host, as
/// Docker decides: a dot, a port or `localhost`.
fn is_host(first: &str) -> bool {
    let port_ok = |h: &str| match h.rsplit_once(':') {
        Some((_, port)) => !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()),
        None => true,
    };
    (first.contains('.') || first.contains(':') || first.starts_with("localhost")) && port_ok(first)
}

/// A tag as a version: `v` allowed, missing minor and patch as 0.
fn version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let parts = core.split('.').count();
    let padded = match parts {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => t.to_string(),
    };
    semver::Version::parse(&padded).ok()
}

/// Versions by value (the more specific tag first among equals: `1.4.0`
/// over `1.4`), then tags that are no versions, in byte order.
fn newer(a: &str, b: &str) -> Ordering {
    match (version(a), version(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.len().cmp(&b.len())),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_range_picks_the_highest_matching_version() {
        let all = tags(&[
            "1.3.9",
            "1.4",
            "1.4.0",
            "v1.4.2",
            "1.4.10",
            "1.4.11-rc.1",
            "1.5.0",
            "latest",
            "2.0.0",
        ]);
        let p = Pattern::parse("127.0.0.1:5000/shop/web:~1.4").unwrap();
        assert_eq!(p.newest(&all), Some("1.4.10"));
        assert_eq!(p.image("1.4.10"), "127.0.0.1:5000/shop/web:1.4.10");
        assert_eq!(p.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(p.name, "shop/web");
        assert_eq!(
            Pattern::parse("r.example.com/web:^1").unwrap().newest(&all),
            Some("1.5.0")
        );
        assert_eq!(Pattern::parse("web:*").unwrap().newest(&all), Some("2.0.0"));
        assert_eq!(
            Pattern::parse("web:>=1.4, <1.4.3").unwrap().newest(&all),
            Some("v1.4.2")
        );
        assert_eq!(
            Pattern::parse("web:~1.4.11-rc").unwrap().newest(&all),
            Some("1.4.11-rc.1")
        );
        assert_eq!(Pattern::parse("web:~3").unwrap().newest(&all), None);
        // Equal versions: the specific tag.
        assert_eq!(Pattern::parse("web:=1.4.0").unwrap().newest(&all), Some("1.4.0"));
    }

    #[test]
    fn a_regex_picks_the_newest_version_or_the_greatest_tag() {
        let dated = tags(&["2026-11-30", "2026-12-01", "2026-12-01-debug", "latest"]);
        let p = Pattern::parse("localhost:5000/web:/^\\d{4}-\\d\\d-\\d\\d$/").unwrap();
        assert_eq!(p.newest(&dated), Some("2026-12-01"));
        let prod = tags(&["1.9.0-prod", "1.10.0-prod", "1.11.0-dev"]);
        let p = Pattern::parse("web:/-prod$/").unwrap();
        assert_eq!(p.newest(&prod), Some("1.10.0-prod"));
    }

    #[test]
    fn docker_hub_names_and_hosts_are_told_apart() {
        let p = Pattern::parse("nginx:~1").unwrap();
        assert_eq!(
            (p.registry.as_deref(), p.name.as_str(), p.repo.as_str()),
            (None, "library/nginx", "nginx")
        );
        let p = Pattern::parse("shop/web:~1").unwrap();
        assert_eq!((p.registry.as_deref(), p.name.as_str()), (None, "shop/web"));
        let p = Pattern::parse("localhost/web:~1").unwrap();
        assert_eq!(p.registry.as_deref(), Some("localhost"));
        // `web:/re/`: "web:" is no host (no port digits).
        let p = Pattern::parse("web:/^1\\./").unwrap();
        assert_eq!((p.registry, p.name.as_str()), (None, "library/web"));
    }

    #[test]
    fn references_split_into_registry_name_and_tag() {
        let r = reference;
        assert_eq!(
            r("127.0.0.1:5000/shop/web:1.4"),
            Some((Some("127.0.0.1:5000".into()), "shop/web".into(), "1.4".into()))
        );
        assert_eq!(r("nginx"), Some((None, "library/nginx".into(), "latest".into())));
        assert_eq!(r("shop/web:2"), Some((None, "shop/web".into(), "2".into())));
        assert_eq!(r("shop/web@sha256:ab"), None);
    }

    #[test]
    fn a_bad_pattern_says_what_is_wrong() {
        let e = Pattern::parse("r.example.com/shop/web").unwrap_err();
        assert!(e.contains("has no tag pattern"), "{e}");
        let e = Pattern::parse("r.example.com/shop/web:~x").unwrap_err();
        assert!(e.contains("is neither a semver range"), "{e}");
        let e = Pattern::parse("web:/(/").unwrap_err();
        assert!(e.starts_with("the regex /(/"), "{e}");
        let e = Pattern::parse("r.example.com/Shop/web:~1").unwrap_err();
        assert!(e.contains("is not a repository name"), "{e}");
    }
}
