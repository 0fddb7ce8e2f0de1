//! Only commits the host's owner allows are applied: signatures checked
//! against keys made by ssh-keygen and gpg (commits signed by the git CLI),
//! rewound history refused, and the host policy on images and bind
//! mounts; a refused head changes nothing that serves. Real git, Docker
//! and a managed HAProxy.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::host::TestHost;
use common::signing::{run, ssh_key, ssh_signing};
use common::{app_image_version, get_via, git_in, proxy_or_fail, teal};

/// Commits the service file signed with `sign` (extra `git -c` settings;
/// none: unsigned) and pushes it.
fn push_signed(h: &TestHost, msg: &str, text: &str, sign: &[String], env: &[(&str, &Path)]) {
    std::fs::write(h.work.join(format!("services/{}.yaml", h.svc)), text).unwrap();
    git_in(&h.work, &["add", "-A"]);
    let mut cmd = Command::new("git");
    cmd.args(["-c", "user.name=teal test", "-c", "user.email=test@example.com"]);
    for s in sign {
        cmd.args(["-c", s]);
    }
    cmd.args(["commit", "-q", "--allow-empty", "-m", msg])
        .current_dir(&h.work);
    if !sign.is_empty() {
        cmd.arg("-S");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, "git commit");
    git_in(&h.work, &["push", "-q", "-f", "origin", "HEAD:main"]);
}

/// Polls `/status` until the head is refused; the reason.
async fn until_refused(h: &TestHost, secs: u64) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Some(r) = h.status().await["refused"]["reason"].as_str() {
            return r.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "never refused:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_heads_signed_by_an_allowed_ssh_key_are_applied() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("sshsig").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let keys = tempfile::tempdir().unwrap();
    let alice = ssh_key(keys.path(), "alice");
    let mallory = ssh_key(keys.path(), "mallory");
    let signers = keys.path().join("allowed_signers");
    let pubkey = std::fs::read_to_string(alice.with_extension("pub")).unwrap();
    std::fs::write(&signers, format!("alice@example.com namespaces=\"git\" {pubkey}")).unwrap();
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    push_signed(
        &h,
        "web 1.0",
        &h.service("blue", &v1, None, ""),
        &ssh_signing(&alice),
        &[],
    );
    h.write_config_with(
        &format!(", verify: {{allowed_signers: {}}}", signers.display()),
        &format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen),
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    let bump = h.service("green", &v1, Some(&v2), "");
    push_signed(&h, "unsigned", &bump, &[], &[]);
    assert_eq!(until_refused(&h, 30).await, "no signature");
    let head = git_in(&h.work, &["rev-parse", "HEAD"]);
    // The status says it first; the pass's problem line follows it.
    h.until_logged(&format!("refused {}: no signature", &head[..7]), 10)
        .await;
    assert_eq!(h.status().await["refused"]["commit"].as_str(), Some(head.as_str()));
    assert_eq!(
        get_via(&h.listen, &h.host, "/").await.1,
        "1.0 blue\n",
        "nothing that serves changed"
    );

    push_signed(&h, "by mallory", &bump, &ssh_signing(&mallory), &[]);
    let start = std::time::Instant::now();
    let reason = loop {
        let r = until_refused(&h, 30).await;
        if r != "no signature" {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        reason.starts_with("signed by SHA256:")
            && reason.ends_with(&format!("which is not in {} for the git namespace", signers.display())),
        "{reason}"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    let events = std::fs::read_to_string(h.state.join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"result\":\"refused\"") && events.contains("no signature"),
        "{events}"
    );

    push_signed(&h, "by alice", &bump, &ssh_signing(&alice), &[]);
    h.until_serves("2.0 green\n", 60).await;
    assert!(
        h.status().await.get("refused").is_none_or(|r| r.is_null()),
        "cleared once a head is applied"
    );

    // The owner withdraws alice's key: the head already verified (and
    // kept from one pass to the next) is checked again and refused; what
    // serves stays.
    let mallory_pub = std::fs::read_to_string(mallory.with_extension("pub")).unwrap();
    std::fs::write(
        &signers,
        format!("mallory@example.com namespaces=\"git\" {mallory_pub}"),
    )
    .unwrap();
    let reason = until_refused(&h, 30).await;
    assert!(reason.starts_with("signed by SHA256:"), "{reason}");
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");
}

#[tokio::test]
async fn an_openpgp_signature_is_checked_against_the_keyring() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("gpgsig").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let gnupg = tempfile::tempdir().unwrap();
    let home = gnupg.path();
    let gpg = |args: &[&str]| {
        run(
            Command::new("gpg")
                .env("GNUPGHOME", home)
                .args(["--batch", "--yes"])
                .args(args),
            "gpg",
        )
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Deployer <deployer@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Stranger <stranger@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let keyring = home.join("deployers.gpg");
    gpg(&[
        "--output",
        keyring.to_str().unwrap(),
        "--export",
        "deployer@example.com",
    ]);
    let signing = |who: &str| vec!["gpg.format=openpgp".to_string(), format!("user.signingkey={who}")];
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    push_signed(
        &h,
        "web 1.0",
        &h.service("blue", &v1, None, ""),
        &signing("deployer@example.com"),
        &[("GNUPGHOME", home)],
    );
    h.write_config_with(
        &format!(", verify: {{gpg_keyring: {}}}", keyring.display()),
        &format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen),
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let bump = h.service("green", &v1, Some(&v2), "");
    push_signed(
        &h,
        "by a stranger",
        &bump,
        &signing("stranger@example.com"),
        &[("GNUPGHOME", home)],
    );
    let reason = until_refused(&h, 30).await;
    assert!(
        reason.starts_with("signed by ") && reason.ends_with(&format!("which is not in {}", keyring.display())),
        "{reason}"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    push_signed(
        &h,
        "by the deployer",
        &bump,
        &signing("deployer@example.com"),
        &[("GNUPGHOME", home)],
    );
    h.until_serves("2.0 green\n", 60).await;
}

#[tokio::test]
async fn a_rewound_branch_is_refused_and_a_descendant_accepted() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("ff").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let v3 = app_image_version(&h.docker, "3.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let c1 = git_in(&h.work, &["rev-parse", "HEAD"]);
    h.write_config_with(
        ", fast_forward_only: true",
        &format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen),
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    let c2 = git_in(&h.work, &["rev-parse", "HEAD"]);

    // Someone force-pushes the branch back to the first commit.
    git_in(&h.work, &["push", "-q", "-f", "origin", &format!("{c1}:main")]);
    let reason = until_refused(&h, 30).await;
    assert_eq!(
        reason,
        format!("history rewound, it does not descend from the applied {}", &c2[..7])
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");

    // A new commit on top of what was applied is accepted.
    h.push("web 3.0", &h.service("blue", &v3, Some(&v2), ""));
    h.until_serves("3.0 blue\n", 60).await;
}

#[tokio::test]
async fn the_host_policy_refuses_images_binds_and_the_docker_socket() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("policy").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let allowed = tempfile::tempdir().unwrap();
    let data = allowed.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let prefix = v1.split(':').next().unwrap().to_string();
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.write_config(&format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen));
    let policy = format!(
        "policy:\n  images: [{prefix}]\n  volumes: [{}/, /var/run/]\n",
        allowed.path().display()
    );
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str(&policy);
    std::fs::write(&h.config, &text).unwrap();
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let before = containers(&h);

    let cases = [
        (
            "registry.example.com/miner:1",
            "",
            "is outside this host's policy (policy.images: ",
        ),
        (
            "",
            "volumes: [/etc:/host-etc:ro]",
            "bind source /etc is outside this host's policy",
        ),
        (
            "",
            "volumes: [/var/run/docker.sock:/var/run/docker.sock]",
            "is (or holds) the Docker socket: never allowed from the repo",
        ),
        (
            "",
            &format!("volumes: ['{}/../../../etc:/x']", data.display()),
            "resolves to /etc) is outside this host's policy",
        ),
    ];
    for (image, extra, want) in cases {
        let image = if image.is_empty() { v2.as_str() } else { image };
        h.push("not allowed", &h.service("green", &v1, Some(image), extra));
        let head = git_in(&h.work, &["rev-parse", "HEAD"]);
        let start = std::time::Instant::now();
        let reason = loop {
            let s = h.status().await;
            if s["refused"]["commit"].as_str() == Some(head.as_str()) {
                break s["refused"]["reason"].as_str().unwrap().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{want}: not refused\n{}",
                h.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            reason.contains(&format!("services/{}.yaml:", h.svc)) && reason.contains(want),
            "{reason}"
        );
        assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
        assert_eq!(containers(&h), before, "nothing created: {want}");
    }
    // A bind inside the policy deploys.
    h.push(
        "allowed bind",
        &h.service(
            "green",
            &v1,
            Some(&v2),
            &format!("volumes: ['{}:/data:ro']", data.display()),
        ),
    );
    h.until_serves("2.0 green\n", 60).await;
    let mounts = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Source}} {{end}}",
            &format!("teal-{}-green-0", h.svc),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&mounts.stdout).contains(data.to_str().unwrap()));

    // The same check in a pull request, before anything merges.
    h.push(
        "socket again",
        &h.service("green", &v1, Some(&v2), "volumes: [/var/run/docker.sock:/s]"),
    );
    let r = teal(&h.work, &["validate", "--config", h.config.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the Docker socket: never allowed from the repo"),
        "{}",
        r.stdout
    );
    let r = teal(
        &h.work,
        &["diff", "--base", "HEAD~1", "--config", h.config.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is outside the host's policy"), "{}", r.stdout);
    let r = teal(&h.work, &["validate"]);
    assert_eq!(r.code, 0, "without a host config there is no host policy: {}", r.stdout);
}

/// The service's containers with their images.
fn containers(h: &TestHost) -> String {
    h.ps("{{.Names}} {{.Image}}").join("\n")
}
