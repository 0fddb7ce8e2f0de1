//! Every default of the host config in one place a user can read: the
//! commented YAML `teal config --show-defaults` prints, rendered from the
//! very values the parser fills in (a test parses it back), and a config
//! built from them in code.

use std::fmt::Write;

use super::{
    default_branch, default_listen, default_poll, default_repo_path, default_state_dir, proxy::default_proxy_listen,
    DockerConfig, HaproxySettings, HostConfig, NginxSettings, ProxyConfig, ProxyKind, RepoConfig,
};

/// The example repo URL shown for the one required field without a default.
pub const EXAMPLE_URL: &str = "ssh://git@git.example.com/ops/deploy.git";

impl HostConfig {
    /// A host config with every default: what a file naming only
    /// `repo.url` and `proxy.kind` parses to.
    pub fn new(url: String, kind: ProxyKind) -> HostConfig {
        HostConfig {
            repo: RepoConfig {
                url,
                branch: default_branch(),
                path: default_repo_path(),
                poll: default_poll(),
                ssh_key: None,
                token_file: None,
                known_hosts: None,
                webhook_secret_file: None,
                watch: true,
                verify: super::VerifyConfig::default(),
                fast_forward_only: None,
            },
            docker: DockerConfig::default(),
            proxy: ProxyConfig {
                kind,
                listen: default_proxy_listen(),
                https_listen: None,
                haproxy: HaproxySettings::default(),
                nginx: NginxSettings::default(),
                managed: false,
                user: None,
            },
            state_dir: default_state_dir(),
            listen: default_listen(),
            policy: crate::policy::Policy::default(),
            host: super::HostIdentity::default(),
            notify: vec![],
            fleet: super::fleet::FleetConfig::default(),
            events: super::events::EventsConfig::default(),
            api: super::api::ApiConfig::default(),
            secrets: super::secrets::SecretsConfig::default(),
            acme: None,
            registries: vec![],
            images: super::registries::ImagesConfig::default(),
        }
    }
}

/// One line of the defaults file.
enum Line {
    /// `key:` opening a section.
    Section(&'static str),
    /// `key: value`, the default.
    Value(&'static str, String),
    /// `# key: example`: no default value (the field is off when absent).
    Off(&'static str, &'static str),
}

/// Each line of the defaults file with why, at its depth. A table, kept
/// one row a line.
#[rustfmt::skip]
fn lines() -> Vec<(usize, Line, &'static str)> {
    use Line::{Off, Section, Value};
    let d = HostConfig::new(EXAMPLE_URL.into(), ProxyKind::Haproxy);
    let (h, n) = (&d.proxy.haproxy, &d.proxy.nginx);
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let switch = serde_yaml::to_value(n.switch).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    vec![
        (0, Section("repo"), ""),
        (1, Value("url", d.repo.url.clone()), "required (an example): a path, file://, https:// or ssh:// URL"),
        (1, Value("branch", d.repo.branch.clone()), "the branch to deploy"),
        (1, Value("path", d.repo.path.clone()), "where teal.yaml and services/ are in the repo"),
        (1, Value("poll", crate::spec::duration::format(d.repo.poll)), "how often the branch is fetched"),
        (1, Off("ssh_key", "/etc/teal/deploy_key"), "ssh://: the private key; default: none (the remote must not ask)"),
        (1, Off("known_hosts", "/etc/teal/known_hosts"), "ssh://: pins the host key; default: ~/.ssh/known_hosts"),
        (1, Off("token_file", "/etc/teal/token"), "https://: \"token\" or \"user:token\"; default: none"),
        (1, Off("webhook_secret_file", "/etc/teal/webhook_secret"), "turns on POST /hooks/git; default: none (off)"),
        (1, Value("watch", d.repo.watch.to_string()), "a repo on this machine: fetch as soon as it changes"),
        (1, Section("verify"), "who may deploy: the head commit must carry a good signature"),
        (2, Off("allowed_signers", "/etc/teal/allowed_signers"), "ssh-keygen format; SSH-signed commits; default: none"),
        (2, Off("gpg_keyring", "/etc/teal/deployers.gpg"), "OpenPGP-signed commits (gpgv); default: none"),
        (1, Off("fast_forward_only", "true"), "refuse a head that rewinds the applied commit; default: true with verify, else false"),
        (0, Section("docker"), ""),
        (1, Off("host", "unix:///var/run/docker.sock"), "default: $DOCKER_HOST, else the local socket"),
        (1, Value("network", d.docker.network.clone()), "created when missing; services join it; names teal's containers"),
        (1, Value("mode", d.docker.mode.to_string()), "or swarm: each color a Swarm service, on a manager node"),
        (0, Section("proxy"), ""),
        (1, Value("kind", d.proxy.kind.to_string()), "required, no default: haproxy or nginx"),
        (1, Value("listen", d.proxy.listen.clone()), "where the proxy serves traffic"),
        (1, Off("https_listen", "0.0.0.0:443"), "where it serves HTTPS; default: 0.0.0.0:443 once a route has tls"),
        (1, Value("managed", d.proxy.managed.to_string()), "true: teal runs the proxy itself, files under state_dir/proxy"),
        (1, Off("user", "www-data"), "managed: its workers' user; default: www-data (nginx), haproxy, else nobody"),
        (1, Section("haproxy"), "an operator's HAProxy (managed: false), as Debian installs it"),
        (2, Value("config", h.config.display().to_string()), "teal owns this file; load it with -f"),
        (2, Value("socket", h.socket.display().to_string()), "runtime API: the stats socket of Debian's haproxy.cfg"),
        (2, Value("reload", list(&h.reload)), "Debian's service command"),
        (1, Section("nginx"), "an operator's nginx (managed: false), as Debian installs it"),
        (2, Value("conf_dir", n.conf_dir.display().to_string()), "teal writes teal-*.conf, teal_*.conf here; Debian's nginx.conf includes it"),
        (2, Value("test", list(&n.test)), "checks a new config before a reload"),
        (2, Value("reload", list(&n.reload)), "Debian's service command"),
        (2, Value("switch", switch), "balancer: teal's Lua balancer, no reload (managed too); or reload"),
        (2, Value("client_keepalive", n.client_keepalive.to_string()), "switch: reload only; false: reloads cut no request"),
        (0, Value("state_dir", d.state_dir.display().to_string()), "repo mirror, lock, events.jsonl, a managed proxy"),
        (0, Value("listen", d.listen.clone()), "status API, dashboard, metrics, webhook; loopback only"),
        (0, Section("host"), "this host in a fleet (teal.yaml hosts)"),
        (1, Off("name", "web-1"), "its name in teal.yaml's hosts; default: the machine's hostname"),
        (1, Off("token_file", "/etc/teal/status_token"), "bearer token for the status API and peer reads; default: none"),
        (1, Off("names", "[teal.example.com]"), "Host names the status API answers to besides IPs and localhost"),
        (0, Section("policy"), "what the repo may ask of this host"),
        (1, Off("images", "[registry.example.com/shop/]"), "image prefixes; default: any image"),
        (1, Off("volumes", "[/srv/]"), "bind-mount source prefixes; default: no bind mounts"),
        (1, Off("named_volumes", "[shop-]"), "named-volume prefixes; default: a service's own (<service>-...)"),
        (1, Off("secret_files", "[/etc/teal/secrets/]"), "host files a service may read secrets from; default: none"),
        (1, Off("cert_files", "[/etc/teal/certs/]"), "certificate and key files a route's tls may name; default: none"),
        (1, Off("prometheus", "[http://127.0.0.1:9090/]"), "URL prefixes analysis.prometheus may query; default: none"),
        (0, Section("secrets"), "secrets in the repo, age-encrypted to this host"),
        (1, Off("identity_file", "/etc/teal/age.key"), "age-keygen file or ssh ed25519 key, mode 0600; default: none"),
        (0, Off("acme", ""), "the CA of routes with tls: acme; default: none (such routes stay on HTTP)"),
        (1, Off("directory", super::acme::LETS_ENCRYPT), "the CA's ACME directory URL"),
        (1, Off("email", "ops@example.com"), "contact for expiry mail; default: none"),
        (1, Off("ca_file", "/etc/teal/acme-ca.pem"), "extra roots to trust for the directory (a private CA)"),
        (1, Off("renew_before", "30d"), "renews this long before expiry"),
        (0, Section("images"), "how images are pulled"),
        (1, Value("pull_timeout", crate::spec::duration::format(d.images.pull_timeout)), "one image's pull, at most; past it the deploy fails"),
        (1, Value("keep", d.images.keep.to_string()), "deployed images kept per service (besides declared and used)"),
        (0, Off("registries", "[{host: registry.example.com, username: deploy, password_file: /etc/teal/registry_password}]"), "pull credentials (before ~/.docker/config.json); default: none"),
        (0, Section("fleet"), "the peers this host reads: status URLs of teal.yaml's hosts"),
        (1, Off("peers", "[https://10.0.0.11:9470, https://10.0.0.12:9470]"), "the only ones read (and sent host.token_file); default: none"),
        (1, Value("allow_http_peers", d.fleet.allow_http_peers.to_string()), "true: plain http off loopback too (the token in clear)"),
        (0, Section("events"), "state_dir/events.jsonl, which teal history reads"),
        (1, Value("max_size", super::events::format_size(d.events.max_size)), "past it, events.jsonl becomes events.jsonl.1"),
        (1, Value("keep", d.events.keep.to_string()), "rotated files kept (.1 ... .keep); older ones are deleted"),
        (0, Section("api"), "the status API's limits"),
        (1, Value("max_connections", d.api.max_connections.to_string()), "open at once, at most a quarter of the open-file limit"),
        (1, Value("max_streams", d.api.max_streams.to_string()), "live /events streams (dashboards); more get 503"),
        (0, Off("notify", "[{url: https://hooks.example.com/teal, secret_file: /etc/teal/notify_secret}]"), "webhooks and commit statuses; default: none (README)"),
    ]
}

/// The full default host config as commented YAML.
pub fn commented_yaml() -> String {
    let mut o = String::from(
        "# The host config with every default (teal config --show-defaults).\n\
         # Only repo.url and proxy.kind are required: leave out any other field\n\
         # and teal uses the value shown. With managed: true, the haproxy and\n\
         # nginx paths and commands are not used (teal picks its own under\n\
         # state_dir/proxy); nginx.switch and client_keepalive still apply.\n\
         # Check a file with: teal config --check FILE\n",
    );
    for (depth, line, why) in lines() {
        let indent = "  ".repeat(depth);
        let text = match line {
            Line::Section(k) => format!("{indent}{k}:"),
            Line::Value(k, v) => format!("{indent}{k}: {v}"),
            Line::Off(k, "") => format!("{indent}# {k}:"),
            Line::Off(k, example) => format!("{indent}# {k}: {example}"),
        };
        if why.is_empty() {
            let _ = writeln!(o, "{text}");
        } else {
            let _ = writeln!(o, "{text:<42} # {why}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_defaults_are_the_parser_defaults() {
        let text = commented_yaml();
        let parsed = HostConfig::parse("defaults", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            parsed,
            HostConfig::new(EXAMPLE_URL.into(), ProxyKind::Haproxy),
            "{text}"
        );
        let minimal = HostConfig::parse(
            "m",
            &format!("repo: {{url: '{EXAMPLE_URL}'}}\nproxy: {{kind: haproxy}}\n"),
        )
        .unwrap();
        assert_eq!(parsed, minimal);
    }

    #[test]
    fn every_field_is_shown() {
        let text = commented_yaml();
        fn keys(v: &serde_yaml::Value, out: &mut Vec<String>) {
            if let serde_yaml::Value::Mapping(m) = v {
                for (k, v) in m {
                    out.push(k.as_str().unwrap().to_string());
                    keys(v, out);
                }
            }
        }
        let mut all = vec![];
        keys(&super::super::fields::known(), &mut all);
        assert!(all.len() > 20, "{all:?}");
        for k in all {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().trim_start_matches("# ").starts_with(&format!("{k}:"))),
                "{k} is not in the defaults:\n{text}"
            );
        }
    }

    #[test]
    fn docs_show_the_same_defaults() {
        let doc = include_str!("../../docs/config.md");
        assert!(
            doc.contains(&commented_yaml()),
            "docs/config.md must contain the output of `teal config --show-defaults` verbatim"
        );
    }
}
