//! What the host runs when an invariant breaks, printed with the
//! violation so a failure in CI (where the temp dirs are gone) can be read
//! afterwards: the proxy's processes, the servers HAProxy holds for the
//! service at fault, every container of teal's with its addresses (a
//! stale or reused address shows), Docker's endpoints against the ports
//! and addresses its bridge holds (a leaked endpoint shows), and teal's
//! last words on that service.

use super::Soak;

impl Soak {
    /// The scene around `failure`, focused on the service it names.
    pub(super) async fn scene(&self, failure: &str) -> String {
        let service = self
            .services
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| failure.contains(n))
            .max_by_key(|n| n.len());
        let mut out = self.proxy_processes();
        if self.cfg.kind == "haproxy" {
            let rt = teal::drivers::haproxy::Runtime::new(&self.host.proxy_dir().join("admin.sock"));
            match rt.call(&["show servers state".to_string()]).await {
                Ok(state) => out.extend(
                    state
                        .lines()
                        .filter(|l| service.is_none_or(|s| of_backend(l, s)))
                        .map(|l| format!("    server: {l}")),
                ),
                Err(e) => out.push(format!("    runtime API: {e}")),
            }
        }
        out.extend(self.container_addresses());
        out.extend(self.bridge_ports());
        if let Some(s) = service {
            let log = self.host.log_text();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(s)).collect();
            out.extend(
                lines[lines.len().saturating_sub(25)..]
                    .iter()
                    .map(|l| format!("    teal: {l}")),
            );
        }
        out.join("\n")
    }

    /// The proxy's processes: pid, group, parent, start, command.
    fn proxy_processes(&self) -> Vec<String> {
        let ps = std::process::Command::new("ps")
            .args(["-eo", "pid,pgid,ppid,lstart,args"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let dir = self.host.proxy_dir().display().to_string();
        ps.lines()
            .filter(|l| l.contains(&dir))
            .map(|l| format!("    process: {}", l.trim()))
            .collect()
    }

    /// Every container of teal's: name, state, start, restarts, addresses.
    fn container_addresses(&self) -> Vec<String> {
        let ids = self.docker(&["ps", "-aq", "--filter", "label=teal.service"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if ids.is_empty() {
            return vec!["    container: none".into()];
        }
        let mut args = vec![
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} started {{.State.StartedAt}} restarts {{.RestartCount}} at {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        ];
        args.extend(ids.iter().map(String::as_str));
        let out = self.docker(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines: Vec<String> = text.lines().map(|l| format!("    container: {l}")).collect();
        // Two running containers at one address: Docker gave it out twice.
        let mut seen = std::collections::BTreeMap::<&str, &str>::new();
        for l in text.lines().filter(|l| l.split(' ').nth(1) == Some("running")) {
            let name = l.split(' ').next().unwrap_or("");
            for ip in l.rsplit_once(" at ").map(|(_, a)| a).unwrap_or("").split_whitespace() {
                if let Some(other) = seen.insert(ip, name) {
                    lines.push(format!("    container: {name} and {other} both run at {ip}"));
                }
            }
        }
        lines
    }
}

impl Soak {
    /// Docker's endpoints on teal's network against the ports its bridge
    /// has and the addresses the bridge has learnt: an endpoint Docker
    /// dropped but whose port stayed on the bridge takes the frames of the
    /// next container given its address (Docker derives a container's
    /// MAC from its IP), and shows as more ports than endpoints.
    fn bridge_ports(&self) -> Vec<String> {
        let net = &self.host.network;
        let out = self.docker(&[
            "network",
            "inspect",
            net,
            "-f",
            "{{.Id}} {{index .Options \"com.docker.network.bridge.name\"}}{{range .Containers}}\n{{.Name}} {{.IPv4Address}} {{.MacAddress}}{{end}}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let Some((id, name)) = lines.next().and_then(|l| l.split_once(' ')) else {
            return vec![format!(
                "    network {net}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )];
        };
        let bridge = match name {
            "" | "<no value>" => format!("br-{}", &id[..id.len().min(12)]),
            n => n.to_string(),
        };
        let endpoints: Vec<String> = lines.map(|l| format!("    endpoint: {l}")).collect();
        let run = |args: &[&str]| {
            std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        let ports = run(&["ip", "-o", "link", "show", "master", &bridge]);
        let fdb = run(&["bridge", "fdb", "show", "br", &bridge]);
        let mut out = vec![format!(
            "    bridge {bridge}: {} ports for {} endpoints",
            ports.lines().count(),
            endpoints.len()
        )];
        out.extend(endpoints);
        out.extend(
            fdb.lines()
                .filter(|l| !l.contains("permanent"))
                .map(|l| format!("    learnt: {l}")),
        );
        out
    }
}

/// Whether a `show servers state` line is of `service`'s backends (its
/// own and its per-color ones), or the header.
fn of_backend(line: &str, service: &str) -> bool {
    let be = format!("teal_{service}");
    match line.split_whitespace().nth(1) {
        Some(b) => line.starts_with('#') || b == be || b.strip_prefix(&be).is_some_and(|r| r.starts_with('_')),
        None => false,
    }
}
