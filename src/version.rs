//! What `teal --version` says: the release, the commit it was built from,
//! and the versions of the outside parts its test suite ran against.

/// The git commit this binary was built from (build.rs), or `unknown`.
pub const COMMIT: &str = env!("TEAL_COMMIT");

/// The outside parts teal's tests run against, as (name, version): the
/// Docker Engine API and the proxies of Debian 12, which `.ci/run`
/// installs. `tests/version.rs` checks each against the installed tool, so
/// this list cannot claim a version CI did not run.
pub const TESTED_WITH: &[(&str, &str)] = &[
    ("Docker Engine API", "1.41"),
    ("HAProxy", "2.6"),
    ("nginx", "1.22"),
    ("lua-nginx-module", "0.10"),
];

/// The newest Docker Engine API teal speaks (bollard's); an older engine
/// is met at its own version.
pub const DOCKER_API_MAX: &str = "1.49";

/// `teal -V`: the release and the commit on one line.
pub const SHORT: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TEAL_COMMIT"), ")");

/// `teal --version`: the short line, then what it was tested with (each
/// of TESTED_WITH, which a unit test holds this to).
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TEAL_COMMIT"),
    ")\ntested with: Docker Engine API 1.41, HAProxy 2.6, nginx 1.22 with lua-nginx-module 0.10",
    "\nDocker Engine API: negotiated with the engine, up to 1.49"
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_long_version_names_the_commit_and_each_tested_part() {
        let long = super::LONG;
        assert!(long.starts_with(&format!("{}\n", super::SHORT)), "{long}");
        assert!(long.contains(&format!("up to {}", super::DOCKER_API_MAX)), "{long}");
        for (name, version) in super::TESTED_WITH {
            assert!(long.contains(&format!("{name} {version}")), "{long}");
        }
    }

    #[test]
    fn the_newest_docker_api_named_is_the_one_bollard_asks_for() {
        let v = bollard::API_DEFAULT_VERSION;
        assert_eq!(
            format!("{}.{}", v.major_version, v.minor_version),
            super::DOCKER_API_MAX
        );
    }
}
