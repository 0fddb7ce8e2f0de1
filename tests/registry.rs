//! Pulls from a real registry (Debian's docker-registry with htpasswd
//! authentication) through `teal apply` and a managed HAProxy: the
//! credentials of the host config's `registries:`, of Docker's
//! `config.json` (`auths`) and of a credential helper (`credsStore`); and
//! each way a pull fails (credentials refused, none, a missing tag, the
//! registry down, an image for another platform) fails the deploy with
//! the image and the cause named while traffic stays where it was.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::host::TestHost;
use common::registry::{forget, Registry};
use common::{app_image_version, get_via, proxy_or_fail, teal_bin, unique, Run};

/// `teal apply` with extra environment (DOCKER_CONFIG, PATH).
fn apply(h: &TestHost, env: &[(&str, &std::ffi::OsStr)]) -> Run {
    let mut cmd = Command::new(teal_bin());
    cmd.args(["apply", "--config", h.config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        // No Docker CLI config of the machine's user is read.
        .env("DOCKER_CONFIG", h.dir.path().join("no-docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

/// The host config with a managed HAProxy and `extra` lines.
fn config(h: &TestHost, extra: &str) {
    h.managed_config("haproxy");
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str(extra);
    std::fs::write(&h.config, text).unwrap();
}

async fn serves(h: &TestHost) -> String {
    get_via(&h.listen, &h.host, "/").await.1
}

/// The `registries:` lines naming `reg` with the password in `pw`.
fn registries_yaml(reg: &Registry, pw: &std::path::Path) -> String {
    format!(
        "registries:\n  - {{host: '{}', username: {}, password_file: {}}}\n",
        reg.addr,
        reg.user,
        pw.display()
    )
}

/// `teal apply` fails saying `want`, and traffic stays on 1.0 blue.
async fn fails_saying(h: &TestHost, want: &str) -> Run {
    let run = apply(h, &[]);
    assert!(run.code == 1 && run.stderr.contains(want), "{want}\n{run:?}");
    assert_eq!(serves(h).await, "1.0 blue\n");
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn host_config_credentials_pull_and_each_failure_names_the_image_and_cause() {
    proxy_or_fail("haproxy");
    let mut reg = Registry::start();
    let h = TestHost::new("reg").await;
    let repo = unique("shop/web");
    let v1 = reg.push(&app_image_version(&h.docker, "1.0", true).await, &format!("{repo}:1"));
    let v2 = reg.push(&app_image_version(&h.docker, "2.0", true).await, &format!("{repo}:2"));
    let pw = reg.password_file(h.dir.path(), &reg.password);
    let registries = registries_yaml(&reg, &pw);
    config(&h, &registries);

    h.push("v1 from the registry", &h.service("blue", &v1, None, ""));
    let first = apply(&h, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains(&format!("pulled {v1} (sha256:")), "{first:?}");
    assert!(first.stderr.contains("layers"), "{first:?}");
    assert_eq!(serves(&h).await, "1.0 blue\n");

    // A wrong password: the deploy of v2 fails naming whose credentials.
    std::fs::write(&pw, "wrong").unwrap();
    h.push("v2", &h.service("green", &v1, Some(&v2), ""));
    let refused = fails_saying(
        &h,
        &format!(
            "image {v2} could not be pulled: the registry {} refused the credentials from registries[0] in the host config (user {})",
            reg.addr, reg.user
        ),
    )
    .await;
    assert!(
        !refused.stderr.contains("wrong"),
        "the password never shows: {refused:?}"
    );

    // No credentials at all.
    config(&h, "");
    let none = format!(
        "the registry {} asks for credentials and this host has none for it",
        reg.addr
    );
    fails_saying(&h, &none).await;

    // A tag that is not there.
    std::fs::write(&pw, &reg.password).unwrap();
    config(&h, &registries);
    let missing = format!("{}/{repo}:9", reg.addr);
    h.push("v9", &h.service("green", &v1, Some(&missing), ""));
    let absent = format!(
        "image {missing} could not be pulled: the tag is not in the registry {}",
        reg.addr
    );
    fails_saying(&h, &absent).await;

    // The registry down.
    reg.stop();
    h.push("v2 again", &h.service("green", &v1, Some(&v2), ""));
    let down = format!(
        "image {v2} could not be pulled: the registry {} cannot be reached",
        reg.addr
    );
    fails_saying(&h, &down).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dockers_config_json_and_a_credential_helper_are_used() {
    proxy_or_fail("haproxy");
    let reg = Registry::start();
    let h = TestHost::new("regcfg").await;
    let repo = unique("shop/api");
    let v1 = reg.push(&app_image_version(&h.docker, "1.0", true).await, &format!("{repo}:1"));
    let v2 = reg.push(&app_image_version(&h.docker, "2.0", true).await, &format!("{repo}:2"));
    config(&h, "");

    // `docker login` wrote auths into the test's config.json.
    h.push("v1", &h.service("blue", &v1, None, ""));
    let by_auths = apply(&h, &[("DOCKER_CONFIG", reg.docker_config.as_os_str())]);
    assert_eq!(by_auths.code, 0, "{by_auths:?}");
    assert_eq!(serves(&h).await, "1.0 blue\n");

    // A credsStore helper, found on PATH, asked with the registry on stdin.
    let helpers = h.dir.path().join("bin");
    let cfg = h.dir.path().join("helper-config");
    std::fs::create_dir_all(&helpers).unwrap();
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"credsStore": "teal-test"}"#).unwrap();
    let asked = h.dir.path().join("asked");
    let helper = helpers.join("docker-credential-teal-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ncat > '{}'\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' x\n",
            asked.display(),
            reg.user,
            reg.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    h.push("v2", &h.service("green", &v1, Some(&v2), ""));
    let by_helper = apply(
        &h,
        &[
            ("DOCKER_CONFIG", cfg.as_os_str()),
            ("PATH", std::ffi::OsStr::new(&path)),
        ],
    );
    assert_eq!(by_helper.code, 0, "{by_helper:?}");
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), reg.addr);
    assert_eq!(serves(&h).await, "2.0 green\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_for_another_platform_is_refused_before_it_starts() {
    proxy_or_fail("haproxy");
    let reg = Registry::start();
    let h = TestHost::new("regarch").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    // The same app, its image marked linux/arm64 (FROM scratch: no
    // emulation needed to build it; no cache, or the legacy builder takes
    // the amd64 image of the same steps).
    let ctx = h.dir.path().join("arm64");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app"), teal::app::DEMO_APP).unwrap();
    std::fs::set_permissions(ctx.join("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n",
    )
    .unwrap();
    let local = unique("teal-test-arm64");
    let out = Command::new("docker")
        .args(["build", "-q", "--no-cache", "--platform", "linux/arm64", "-t", &local])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let arm = reg.push(&local, &format!("{}:1", unique("shop/arm")));
    forget(&local);
    let pw = reg.password_file(h.dir.path(), &reg.password);
    config(&h, &registries_yaml(&reg, &pw));
    h.push("v1", &h.service("blue", &v1, None, ""));
    assert_eq!(apply(&h, &[]).code, 0);
    h.push("arm", &h.service("green", &v1, Some(&arm), ""));
    let arch =
        format!("image {arm} could not be pulled: the image is built for linux/arm64 and this host runs linux/amd64");
    fails_saying(&h, &arch).await;

    // A multi-platform tag (a manifest list) with no build for this host:
    // Docker itself refuses the pull, and teal says what that means.
    let list = manifest_list_of(&reg, &arm).await;
    h.push("list", &h.service("green", &v1, Some(&list), ""));
    let none = format!("image {list} could not be pulled: the image has no build for this host's platform");
    let run = fails_saying(&h, &none).await;
    assert!(run.stderr.contains("no matching manifest for linux/amd64"), "{run:?}");
}

/// Puts a manifest list holding only `image`'s manifest (linux/arm64) in
/// the registry, through its API, as `<repo>:list`.
async fn manifest_list_of(reg: &Registry, image: &str) -> String {
    let (repo, tag) = image.rsplit_once(':').unwrap();
    let name = repo.split_once('/').unwrap().1;
    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/{name}/manifests", reg.addr);
    let single = "application/vnd.docker.distribution.manifest.v2+json";
    let head = http
        .head(format!("{base}/{tag}"))
        .header("Accept", single)
        .basic_auth(&reg.user, Some(&reg.password))
        .send()
        .await
        .unwrap();
    assert!(head.status().is_success(), "{head:?}");
    let digest = head.headers()["docker-content-digest"].to_str().unwrap().to_string();
    let size: u64 = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let list_type = "application/vnd.docker.distribution.manifest.list.v2+json";
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": list_type,
        "manifests": [{"mediaType": single, "size": size, "digest": digest, "platform": {"architecture": "arm64", "os": "linux"}}],
    });
    let put = http
        .put(format!("{base}/list"))
        .header("Content-Type", list_type)
        .basic_auth(&reg.user, Some(&reg.password))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = put.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        put.text().await.unwrap_or_default()
    );
    format!("{repo}:list")
}

/// `teal bump --latest` in a config repo work tree, as CI runs it.
fn bump_latest(dir: &std::path::Path, pattern: &str, docker_config: &std::path::Path) -> Run {
    let out = Command::new(teal_bin())
        .args(["bump", "web", "--latest", pattern])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap();
    Run::from(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn bump_latest_lists_the_registrys_tags_and_picks_the_newest_match() {
    common::docker_or_fail();
    let mut reg = Registry::start();
    let docker = teal::drivers::docker::DockerDriver::connect(None, "bridge")
        .await
        .unwrap();
    let app = app_image_version(&docker, "1.0", true).await;
    let repo = unique("shop/web");
    for tag in ["1.3.9", "1.4.0", "1.4.2", "1.4.3-rc.1", "1.5.0", "latest"] {
        reg.push(&app, &format!("{repo}:{tag}"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("services")).unwrap();
    let file = dir.path().join("services/web.yaml");
    let before = format!(
        "# the shop's front end\nactive: blue\nblue:\n  image: {0}/{repo}:1.3.9   # what runs\ngreen:\n  image: {0}/{repo}:1.3.8\nport: 8080\nroute: {{host: shop.example.com}}\nhealth:\n  http: {{path: /healthz}}\n",
        reg.addr
    );
    std::fs::write(&file, &before).unwrap();
    let pattern = format!("{}/{repo}:~1.4", reg.addr);

    let bumped = bump_latest(dir.path(), &pattern, &reg.docker_config);
    assert_eq!(bumped.code, 0, "{bumped:?}");
    assert!(
        bumped
            .stdout
            .contains(&format!("{pattern}: newest match 1.4.2 (of 6 tags)")),
        "{bumped:?}"
    );
    let want = before
        .replace("active: blue", "active: green")
        .replace(&format!("{repo}:1.3.8"), &format!("{repo}:1.4.2"));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        want,
        "only the two values change"
    );

    // Run again: already served, no change and no error (CI runs it on every push).
    let again = bump_latest(dir.path(), &pattern, &reg.docker_config);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("green already serves") && again.stdout.contains("nothing to bump"),
        "{again:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), want);

    // A regex over the tags.
    let re = bump_latest(
        dir.path(),
        &format!("{}/{repo}:/^1\\.5\\./", reg.addr),
        &reg.docker_config,
    );
    assert_eq!(re.code, 0, "{re:?}");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(&format!("{repo}:1.5.0   # what runs")));

    // No credentials, no match, a registry that is down: errors, no edit.
    let edited = std::fs::read_to_string(&file).unwrap();
    let anonymous = bump_latest(dir.path(), &pattern, &dir.path().join("none"));
    assert!(
        anonymous.code == 1
            && anonymous
                .stderr
                .contains("the registry asks for credentials and none were found"),
        "{anonymous:?}"
    );
    let nothing = bump_latest(dir.path(), &format!("{}/{repo}:~3", reg.addr), &reg.docker_config);
    assert!(
        nothing.code == 1
            && nothing
                .stderr
                .contains(&format!("no tag of {}/{repo} matches", reg.addr)),
        "{nothing:?}"
    );
    let unknown = bump_latest(dir.path(), &format!("{}/shop/absent:~1", reg.addr), &reg.docker_config);
    assert!(
        unknown.code == 1 && unknown.stderr.contains("the registry has no repository shop/absent"),
        "{unknown:?}"
    );
    reg.stop();
    let down = bump_latest(dir.path(), &pattern, &reg.docker_config);
    assert!(
        down.code == 1
            && down.stderr.contains(&format!(
                "listing the tags of {}/{repo} at http://{}",
                reg.addr, reg.addr
            )),
        "{down:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
}

/// The event log's note of the service's pull steps.
fn pull_notes(h: &TestHost) -> Vec<String> {
    h.events()
        .into_iter()
        .filter(|e| e.service == h.svc && e.note.is_some() && e.image.is_some())
        .filter_map(|e| e.note)
        .collect()
}

fn container_image(name: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.Config.Image}}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_moved_in_the_registry_never_changes_what_a_color_runs() {
    proxy_or_fail("haproxy");
    let reg = Registry::start();
    let h = TestHost::new("regpin").await;
    let repo = unique("shop/pin");
    let tag = reg.push(&app_image_version(&h.docker, "1.0", true).await, &format!("{repo}:1"));
    let pw = reg.password_file(h.dir.path(), &reg.password);
    config(&h, &registries_yaml(&reg, &pw));
    h.push("v1", &h.service("blue", &tag, None, ""));
    let first = apply(&h, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let digest = h.docker.repo_digest(&tag).await.unwrap().expect("a registry digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(pull_notes(&h), [format!("resolved to {digest}")]);
    let blue = format!("teal-{}-blue-0", h.svc);
    assert_eq!(container_image(&blue), format!("{}/{repo}@{digest}", reg.addr));
    assert_eq!(serves(&h).await, "1.0 blue\n");

    // The tag moves to other bytes, and this host forgets its copy of the tag.
    reg.push(&app_image_version(&h.docker, "2.0", true).await, &format!("{repo}:1"));
    forget(&tag);
    assert!(!Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap()
        .status
        .success());
    // The color's container goes (a crash, a hand): the repair runs the
    // pinned bytes, not what the tag means now.
    assert!(Command::new("docker")
        .args(["rm", "-f", &blue])
        .output()
        .unwrap()
        .status
        .success());
    let repaired = apply(&h, &[]);
    assert_eq!(repaired.code, 0, "{repaired:?}");
    assert_eq!(container_image(&blue), format!("{}/{repo}@{digest}", reg.addr));
    assert_eq!(serves(&h).await, "1.0 blue\n");

    // Pinned in the repo: run as written, nothing recorded.
    let by_digest = format!("{}/{repo}@{digest}", reg.addr);
    h.push("by digest", &h.service("green", &tag, Some(&by_digest), ""));
    let pinned = apply(&h, &[]);
    assert_eq!(pinned.code, 0, "{pinned:?}");
    assert_eq!(container_image(&format!("teal-{}-green-0", h.svc)), by_digest);
    assert_eq!(serves(&h).await, "1.0 green\n");
    let pins: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.state.join("digests.json")).unwrap()).unwrap();
    assert_eq!(pins, serde_json::json!({ tag.clone(): digest }));

    // What moved is said, not acted on: teal plan, then the daemon's status.
    let plan = common::teal(h.dir.path(), &["plan", "--config", h.config.to_str().unwrap()]);
    let said = format!(
        "note: {}: tag 1 moved (blue runs {}, the registry now has sha256:",
        h.svc,
        &digest[..19]
    );
    assert!(plan.code == 0 && plan.stdout.contains(&said), "{said}\n{plan:?}");
    let mut daemon = h.start_daemon();
    let start = std::time::Instant::now();
    let now = loop {
        let st: serde_json::Value = match common::try_get_via(&h.api, "localhost", "/status").await {
            Ok((200, body)) => serde_json::from_str(&body).unwrap(),
            _ => serde_json::Value::Null,
        };
        if let Some(now) = st["services"][&h.svc]["moved"]["blue"].as_str() {
            break now.to_string();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{st}\n{}",
            h.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(now.starts_with("sha256:") && now != digest, "{now}");
    let status = common::teal(h.dir.path(), &["status", "--config", h.config.to_str().unwrap()]);
    assert!(
        status.stdout.contains(&format!("pinned to {digest}"))
            && status.stdout.contains(&format!(
                "tag moved: the registry now has {now}; blue keeps running the pinned digest"
            )),
        "{status:?}"
    );
    assert!(h.log_text().contains("tag 1 moved"), "{}", h.log_text());
    assert_eq!(serves(&h).await, "1.0 green\n");
    daemon.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_asks_for_bearer_tokens_serves_pulls_and_bump_latest() {
    proxy_or_fail("haproxy");
    let reg = Registry::start_token();
    let h = TestHost::new("regtok").await;
    let repo = unique("shop/tok");
    let v1 = reg.push(
        &app_image_version(&h.docker, "1.0", true).await,
        &format!("{repo}:1.0.0"),
    );
    reg.push(
        &app_image_version(&h.docker, "2.0", true).await,
        &format!("{repo}:1.1.0"),
    );

    // teal's own client: the tag list through the token service.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("services")).unwrap();
    let file = dir.path().join("services/web.yaml");
    std::fs::write(
        &file,
        format!("active: blue\nblue: {{image: '{v1}'}}\nport: 8080\nroute: {{host: shop.example.com}}\nhealth: {{http: {{path: /healthz}}}}\n"),
    )
    .unwrap();
    let pattern = format!("{}/{repo}:^1", reg.addr);
    let bumped = bump_latest(dir.path(), &pattern, &reg.docker_config);
    assert_eq!(bumped.code, 0, "{bumped:?}");
    assert!(bumped.stdout.contains("newest match 1.1.0 (of 2 tags)"), "{bumped:?}");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(&format!("{repo}:1.1.0")));
    // Wrong credentials: the token service refuses them, and says whose.
    let wrong = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong).unwrap();
    let b64 = base64_user_pass(&reg.user, "not-the-password");
    std::fs::write(
        wrong.join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{b64}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let refused = bump_latest(dir.path(), &pattern, &wrong);
    assert!(
        refused.code == 1
            && refused
                .stderr
                .contains("refused (HTTP 401 Unauthorized) the credentials from auths in")
            && refused.stderr.contains(&format!("(user {})", reg.user)),
        "{refused:?}"
    );

    // Docker's pull through the same flow, with the host config's credentials.
    let pw = reg.password_file(h.dir.path(), &reg.password);
    config(&h, &registries_yaml(&reg, &pw));
    h.push("v1", &h.service("blue", &v1, None, ""));
    let first = apply(&h, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(serves(&h).await, "1.0 blue\n");
}

fn base64_user_pass(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_always_follows_a_moved_tag_on_the_idle_color_and_refuses_to_restart_the_live_one() {
    proxy_or_fail("haproxy");
    let reg = Registry::start();
    let h = TestHost::new("regalways").await;
    let repo = unique("shop/always");
    let one = app_image_version(&h.docker, "1.0", true).await;
    let two = app_image_version(&h.docker, "2.0", true).await;
    let live = reg.push(&one, &format!("{repo}:live"));
    let next = reg.push(&one, &format!("{repo}:next"));
    let pw = reg.password_file(h.dir.path(), &reg.password);
    config(&h, &registries_yaml(&reg, &pw));
    h.push("both", &h.service("blue", &live, Some(&next), "pull: always\n"));
    let first = apply(&h, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let green = format!("teal-{}-green-0", h.svc);
    let before = container_image(&green);
    assert!(before.contains("@sha256:"), "{before}");

    // The idle color's tag moves: the next pass pins it anew and restages green.
    reg.push(&two, &format!("{repo}:next"));
    let followed = apply(&h, &[]);
    assert_eq!(followed.code, 0, "{followed:?}");
    let after = container_image(&green);
    assert!(
        after.contains("@sha256:") && after != before,
        "{before} -> {after}\n{followed:?}"
    );
    assert_eq!(serves(&h).await, "1.0 blue\n", "traffic stays on blue");
    let again = apply(&h, &[]);
    assert!(
        again.code == 0 && again.stderr.contains("converged: 0 services changed"),
        "{again:?}"
    );

    // The live color's tag moves: restarting blue under traffic is refused,
    // saying why; blue keeps serving what it ran.
    reg.push(&two, &format!("{repo}:live"));
    fails_saying(
        &h,
        "the setting digest (pull: always followed a moved tag) of blue, the color serving traffic, would change",
    )
    .await;
}
