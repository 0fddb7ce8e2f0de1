//! Image cleanup against real Docker and a managed HAProxy: after a
//! converged `teal apply`, the images the service deployed go but for the
//! last `images.keep`, those a color declares and those any container
//! uses (a container teal did not create included); `teal gc --dry-run`
//! lists without removing, `teal gc` removes; the daemon's first pass
//! cleans up and shows what it kept in /status and /metrics.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::registry::forget;
use common::{app_image_version, get_via, proxy_or_fail, teal, try_get_via, unique, Run};

fn present(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .unwrap()
        .status
        .success()
}

fn apply(h: &TestHost) -> Run {
    teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()])
}

fn gc(h: &TestHost, dry: bool) -> Run {
    let mut args = vec!["gc", "--config", h.config.to_str().unwrap()];
    if dry {
        args.push("--dry-run");
    }
    teal(h.dir.path(), &args)
}

/// Removes the test's image tags and container on drop.
struct Cleanup {
    tags: Vec<String>,
    container: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.container]).output();
        for t in &self.tags {
            forget(t);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_converged_pass_removes_old_deployed_images_but_keeps_declared_used_and_recent_ones() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("gc").await;
    // Four versions, each a distinct image under a tag of this test's own
    // (removing a tag here never touches another test's images).
    let repo = unique("teal-gc");
    let mut tags = vec![];
    for v in 1..=4 {
        let built = app_image_version(&h.docker, &format!("gc-{v}"), true).await;
        let tag = format!("{repo}:{v}");
        assert!(Command::new("docker")
            .args(["tag", &built, &tag])
            .status()
            .unwrap()
            .success());
        tags.push(tag);
    }
    let foreign = unique("teal-gc-foreign");
    let _cleanup = Cleanup {
        tags: tags.clone(),
        container: foreign.clone(),
    };
    h.managed_config("haproxy");
    let config = std::fs::read_to_string(&h.config).unwrap();
    assert!(config.contains("images: {keep: 100}\n"), "{config}");
    std::fs::write(&h.config, config.replace("images: {keep: 100}", "images: {keep: 1}")).unwrap();
    let [v1, v2, v3, v4] = [&tags[0], &tags[1], &tags[2], &tags[3]];

    h.push("v1", &h.service("blue", v1, None, ""));
    assert_eq!(apply(&h).code, 0);
    h.push("v2", &h.service("green", v1, Some(v2), ""));
    let second = apply(&h);
    assert!(
        second.stderr.contains("images: removed 0 images"),
        "both declared: {second:?}"
    );
    // v3 replaces v1 on blue: v1 is declared by no color, used by no container.
    h.push("v3", &h.service("blue", v3, Some(v2), ""));
    let third = apply(&h);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(third.stderr.contains("images: removed 1 image"), "{third:?}");
    assert!(!present(v1) && present(v2) && present(v3));
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "gc-3 blue\n");

    // A container teal did not create holds v2 while v4 replaces it.
    let out = Command::new("docker")
        .args(["create", "--name", &foreign, v2])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    h.push("v4", &h.service("green", v3, Some(v4), ""));
    let fourth = apply(&h);
    assert!(
        fourth.code == 0 && fourth.stderr.contains("images: removed 0 images"),
        "{fourth:?}"
    );
    assert!(present(v2), "a container uses it");

    // Without that container: --dry-run lists v2 and removes nothing.
    assert!(Command::new("docker")
        .args(["rm", &foreign])
        .status()
        .unwrap()
        .success());
    let dry = gc(&h, true);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains(&format!("{}: would remove {v2} (", h.svc)),
        "{dry:?}"
    );
    assert!(
        dry.stdout.contains("would remove 1 image") && dry.stdout.contains("2 kept"),
        "{dry:?}"
    );
    assert!(present(v2));
    let real = gc(&h, false);
    assert!(
        real.code == 0 && real.stdout.contains(&format!("removed {v2}")),
        "{real:?}"
    );
    assert!(!present(v2) && present(v3) && present(v4));
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "gc-4 green\n");

    // The daemon's first pass: converged, so it cleans up and says what
    // it kept (v3 declared by blue, v4 serving).
    let mut daemon = h.start_daemon();
    let start = Instant::now();
    let images = loop {
        if let Ok((200, body)) = try_get_via(&h.api, "localhost", "/status").await {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if !v["images"].is_null() {
                break v["images"].clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no images in /status: {}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(images["kept"], 2, "{images}");
    assert!(images["kept_bytes"].as_u64().unwrap() > 0, "{images}");
    assert!(images["disk_free_bytes"].as_u64().unwrap() > 0, "{images}");
    let (_, metrics) = get_via(&h.api, "localhost", "/metrics").await;
    assert!(
        metrics.contains(&format!("\nteal_images_kept_bytes {}\n", images["kept_bytes"])),
        "{metrics}"
    );
    assert!(metrics.contains("\nteal_docker_disk_free_bytes "), "{metrics}");
    let status = teal(h.dir.path(), &["status", "--config", h.config.to_str().unwrap()]);
    assert!(status.stdout.contains("\nimages 2 kept ("), "{status:?}");
    // A removal next to the daemon is refused; listing is not.
    let refused = gc(&h, false);
    assert!(
        refused.code == 1 && refused.stderr.contains("cleans up after each converged pass itself"),
        "{refused:?}"
    );
    assert_eq!(gc(&h, true).code, 0);
    daemon.terminate();
}
