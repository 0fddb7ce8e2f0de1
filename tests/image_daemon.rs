//! `teal daemon` in its container image (packaging/docker), run with the
//! flags docs/install.md documents: host network, the Docker socket, the
//! host config and the repo mounted read-only, a state volume. teal starts
//! the HAProxy the image carries as its managed proxy, deploys a service
//! through it, and deploys a version bump blue/green.

mod common;

use std::process::Command;

use common::host::TestHost;
use common::image::{ok, Container, Image};
use common::{app_image_version, try_get_via};

/// The flags of the documented `docker run` line, as the test gives them
/// and as docs/install.md writes them (its example paths).
fn run_flags(h: &TestHost, etc: &std::path::Path) -> Vec<(String, String, &'static str)> {
    let bare = h.bare.display();
    vec![
        ("--network".into(), "host".into(), "host"),
        (
            "-v".into(),
            "/var/run/docker.sock:/var/run/docker.sock".into(),
            "/var/run/docker.sock:/var/run/docker.sock",
        ),
        (
            "-v".into(),
            format!("{}:/etc/teal:ro", etc.display()),
            "/etc/teal:/etc/teal:ro",
        ),
        ("-v".into(), format!("{bare}:{bare}:ro"), "/srv/deploy:/srv/deploy:ro"),
        (
            "-v".into(),
            format!("{}:/var/lib/teal", h.state.display()),
            "teal-state:/var/lib/teal",
        ),
    ]
}

/// The `docker run -d` command of docs/install.md, its lines joined.
fn documented_run_line() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/install.md")).unwrap();
    let start = doc
        .find("docker run -d")
        .expect("docs/install.md has a `docker run -d` line");
    let mut line = String::new();
    for part in doc[start..].lines() {
        let part = part.split('#').next().unwrap().trim();
        match part.strip_suffix('\\') {
            Some(more) => line.push_str(more),
            None => {
                line.push_str(part);
                break;
            }
        }
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_runs_the_daemon_with_its_managed_haproxy_and_deploys_a_bump_blue_green() {
    let h = TestHost::new("image").await;
    let image = Image::build();
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));

    // The host config at /etc/teal/daemon.yaml; the state in the image's
    // default /var/lib/teal, a volume.
    let etc = h.dir.path().join("etc-teal");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&h.state).unwrap();
    std::fs::write(
        etc.join("daemon.yaml"),
        format!(
            "repo: {{url: 'file://{}', poll: 500ms}}\ndocker: {{network: {}}}\nproxy: {{kind: haproxy, listen: {}, managed: true}}\nlisten: {}\nimages: {{keep: 100}}\n",
            h.bare.display(),
            h.network,
            h.listen,
            h.api
        ),
    )
    .unwrap();
    let flags = run_flags(&h, &etc);
    let documented = documented_run_line();
    for (flag, _, doc) in &flags {
        assert!(
            documented.contains(&format!("{flag} {doc}")),
            "docs/install.md's docker run line lacks `{flag} {doc}`, which the test runs: {documented}"
        );
    }
    let flags: Vec<String> = flags.into_iter().flat_map(|(f, v, _)| [f, v]).collect();

    let checked = ok(Command::new("docker")
        .args(["run", "--rm"])
        .args(&flags)
        .arg(&image.0)
        .args(["config", "--check"]));
    assert_eq!(checked, "/etc/teal/daemon.yaml: ok\n");

    // The image's default command: teal daemon --config /etc/teal/daemon.yaml.
    let teal = Container::start(&image, &flags, &[], &h.log);
    h.until_serves("1.0 blue\n", 40).await;
    h.until_logged("started the managed proxy", 5).await;

    // The proxy is the image's HAProxy, in teal's container, with its
    // files in the state volume; its workers are not root.
    let procs = teal.processes();
    let haproxy: Vec<&String> = procs.iter().filter(|p| p.contains("/usr/sbin/haproxy")).collect();
    assert!(
        haproxy.iter().any(|p| p.contains("/var/lib/teal/proxy/teal.cfg")),
        "{procs:#?}"
    );
    assert!(haproxy.iter().any(|p| p.contains(" nobody ")), "{procs:#?}");
    assert!(h.state.join("proxy/teal.cfg").exists());

    // A version bump: 2.0 on the idle color, then traffic moves.
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_only_serves("2.0 green\n", 40).await;
    let ps = h.ps("{{.Image}} {{.Label \"teal.color\"}} {{.State}}");
    assert_eq!(ps, [format!("{v1} blue running"), format!("{v2} green running")]);
    // The status API, on the host's loopback, says so once the pass ends.
    let mut status = h.status().await;
    for _ in 0..100 {
        if status["services"][&h.svc]["history"][0]["result"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = h.status().await;
    }
    let web = &status["services"][&h.svc];
    assert_eq!(web["history"][0]["result"], "ok", "{status}");
    assert_eq!(
        (&web["live"], &web["versions"]["green"]),
        (&"green".into(), &"2.0".into()),
        "{status}"
    );

    // docker stop is a clean stop: teal stops its proxy and exits 0.
    assert_eq!(teal.stop(), 0, "log:\n{}", h.log_text());
    h.until_logged("stopping the managed proxy", 5).await;
    assert!(
        try_get_via(&h.listen, &h.host, "/").await.is_err(),
        "the proxy stopped with teal's container"
    );
}
