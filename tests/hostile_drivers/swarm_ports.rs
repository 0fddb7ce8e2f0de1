//! Swarm task ports, published on every interface of their node.

use crate::common::{get_via, proxy_or_fail};

/// A firewall rule inserted for the test, deleted on drop.
struct Rule(Vec<String>);

impl Rule {
    fn insert(args: &[&str]) -> Rule {
        let spec: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = std::process::Command::new("iptables")
            .args(["-I", "DOCKER-USER"])
            .args(&spec)
            .output()
            .expect("iptables is installed (apt-get install -y iptables)");
        assert!(out.status.success(), "iptables -I DOCKER-USER {spec:?}: {out:?}");
        Rule(spec)
    }
}

impl Drop for Rule {
    fn drop(&mut self) {
        let _ = std::process::Command::new("iptables")
            .args(["-D", "DOCKER-USER"])
            .args(&self.0)
            .output();
    }
}

/// Another machine on the node's network: a network namespace behind a
/// veth pair, whose packets enter the node as a remote client's do
/// (through PREROUTING and FORWARD, where Docker's DNAT and DOCKER-USER
/// are). Removed on drop.
struct Outsider {
    ns: String,
    host_if: String,
}

impl Outsider {
    fn new() -> Outsider {
        let n = std::process::id() % 100_000;
        let (ns, host_if, inner) = (format!("teal-out-{n}"), format!("tvh{n}"), format!("tvo{n}"));
        let net = format!("10.{}.{}", 200 + n % 50, n % 250);
        let sh = |cmd: &str| {
            let out = std::process::Command::new("sh").args(["-c", cmd]).output().unwrap();
            assert!(out.status.success(), "{cmd}: {out:?}");
        };
        let o = Outsider {
            ns: ns.clone(),
            host_if: host_if.clone(),
        };
        sh(&format!("ip netns add {ns}"));
        sh(&format!("ip link add {host_if} type veth peer name {inner}"));
        sh(&format!("ip link set {inner} netns {ns}"));
        sh(&format!(
            "ip addr add {net}.1/30 dev {host_if} && ip link set {host_if} up"
        ));
        sh(&format!(
            "ip netns exec {ns} sh -c 'ip addr add {net}.2/30 dev {inner} && ip link set {inner} up && ip link set lo up && ip route add default via {net}.1'"
        ));
        o
    }

    /// GET / at `addr`; `None` when no answer comes within 3 s.
    fn get(&self, addr: &str) -> Option<String> {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let script =
            format!("exec 3<>/dev/tcp/{ip}/{port} && printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3");
        let out = std::process::Command::new("timeout")
            .args(["3", "ip", "netns", "exec", &self.ns, "bash", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output();
    }
}

/// An IPv4 address of this machine other than loopback: what another
/// machine on its network would connect to.
fn outside_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.split('/').next().unwrap().to_string())
        .find(|a| !a.starts_with("127."))
        .expect("an IPv4 address besides loopback")
}

/// Swarm publishes each task's port on every interface of its node (the
/// API cannot bind one address): the idle color answers anyone past the
/// proxy and its preview allow-list. The daemon says so, and the firewall
/// rule README "Swarm mode" gives closes it for everyone but the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_task_ports_are_closed_by_the_documented_firewall_rule() {
    use crate::common::host::TestHost;
    use crate::common::swarm::{swarm_config, SwarmGuard};

    proxy_or_fail("haproxy");
    crate::common::docker_or_fail();
    let h = TestHost::new("swfw").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = crate::common::app_image_version(&h.docker, "1.0", true).await;
    let v2 = crate::common::app_image_version(&h.docker, "2.0", true).await;
    swarm_config(&h, None);
    let preview = format!("preview: {{host: preview.{}, allow: [10.0.0.0/8]}}\n", h.host);
    h.push("web", &h.service("blue", &v1, Some(&v2), &preview));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    h.until_logged("published on every interface", 10).await;
    let mut idle = None;
    for _ in 0..100 {
        let s = h.status().await;
        idle = s["services"][&h.svc]["tasks"]["green"][0]["endpoint"]
            .as_str()
            .map(String::from);
        if idle.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let port = idle
        .expect("the idle color's task")
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        get_via(&h.listen, &format!("preview.{}", h.host), "/").await.0,
        403,
        "127.0.0.1 is not in the preview's allow-list"
    );
    let direct = format!("{}:{port}", outside_address());

    let outsider = Outsider::new();
    assert_eq!(
        outsider.get(&direct).as_deref(),
        Some("2.0 green\n"),
        "without a firewall, anyone reaches the idle color at {direct}"
    );

    // The rule of README "Swarm mode", with the proxy's address.
    let _rule = Rule::insert(&[
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctstate",
        "DNAT",
        "--ctorigdstport",
        "32768:60999",
        "!",
        "-s",
        "127.0.0.1",
        "-j",
        "DROP",
    ]);
    assert_eq!(outsider.get(&direct), None, "dropped for others than the proxy");
    crate::common::swarm::all_serve(&h, "1.0 blue\n", 10).await;
    assert_eq!(
        crate::common::try_get_via(&direct, "x", "/")
            .await
            .map(|r| r.1)
            .ok()
            .as_deref(),
        Some("2.0 green\n"),
        "the proxy's node still reaches every task"
    );
    drop(_rule);
    assert_eq!(
        outsider.get(&direct).as_deref(),
        Some("2.0 green\n"),
        "the rule is gone"
    );

    // The same rule for nftables, as README "Swarm mode" gives it.
    let table = format!("teal_test_{}", std::process::id());
    let nft = |script: &str| {
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft is installed (apt-get install -y nftables)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "nft -f: {script}");
    };
    struct Table(String);
    impl Drop for Table {
        fn drop(&mut self) {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "inet", &self.0])
                .output();
        }
    }
    nft(&format!(
        "table inet {table} {{\n  chain forward {{\n    type filter hook forward priority -1; policy accept;\n    ct status dnat meta l4proto tcp ct original proto-dst 32768-60999 ip saddr != 127.0.0.1 drop\n    ct status dnat meta l4proto tcp ct original proto-dst 32768-60999 meta nfproto ipv6 drop\n  }}\n}}\n"
    ));
    let _table = Table(table);
    assert_eq!(
        outsider.get(&direct),
        None,
        "nftables: dropped for others than the proxy"
    );
    crate::common::swarm::all_serve(&h, "1.0 blue\n", 10).await;
}
