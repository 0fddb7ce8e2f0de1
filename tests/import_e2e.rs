//! End to end: a compose app (a web service behind traefik labels, its
//! settings from `.env`, a database beside it) imported with `teal import
//! compose`, the written repo committed, and `teal daemon` serves the app
//! through its proxy with the compose file's port, env and health check.
//! Real Docker and HAProxy; the app image is built locally (no registry).

mod common;

use common::host::TestHost;
use common::{app_image_version, git_in, proxy_or_fail, teal};

#[tokio::test(flavor = "multi_thread")]
async fn an_imported_compose_app_serves_through_teals_proxy() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("import").await;
    let image = app_image_version(&h.docker, "1.0", true).await;
    let project = h.dir.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    // The service is named as the test host expects (unique per run).
    let compose = format!(
        "services:
  {svc}:
    image: ${{APP_IMAGE}}
    build: .
    environment:
      PORT: ${{APP_PORT:-8080}}
      VERSION: ${{APP_VERSION:?set in .env}}
      DB_PASSWORD: ${{DB_PASSWORD}}
    expose: [\"${{APP_PORT:-8080}}\"]
    labels:
      traefik.http.routers.web.rule: Host(`{host}`)
    healthcheck:
      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:${{APP_PORT:-8080}}/healthz\"]
      interval: 200ms
      retries: 3
    depends_on: [db]
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${{DB_PASSWORD}}
",
        svc = h.svc,
        host = h.host
    );
    std::fs::write(project.join("compose.yaml"), compose).unwrap();
    std::fs::write(
        project.join(".env"),
        format!("APP_IMAGE={image}\nAPP_PORT=9091\nAPP_VERSION=from-compose\nDB_PASSWORD=hunter2\n"),
    )
    .unwrap();

    let run = teal(&project, &["import", "compose", "--repo", h.work.to_str().unwrap()]);
    assert_eq!(run.code, 2, "build, depends_on and a secret are noted: {run:?}");
    assert!(run.stdout.contains("db: not imported: a postgres image"), "{run:?}");
    let file = std::fs::read_to_string(h.work.join(format!("services/{}.yaml", h.svc))).unwrap();
    assert!(!file.contains("hunter2"), "{file}");
    assert!(file.contains("port: 9091") && file.contains("path: /healthz"), "{file}");
    // The secret's placeholder points at a file on the host; this test host
    // keeps no secrets, so the line goes, as a user would move it.
    let file: String = file
        .lines()
        .filter(|l| !l.contains("DB_PASSWORD") && !l.starts_with("env_from_files") && !l.starts_with("# Secrets"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(h.work.join(format!("services/{}.yaml", h.svc)), &file).unwrap();
    git_in(&h.work, &["add", "-A"]);
    git_in(&h.work, &["commit", "-qm", "import from compose"]);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);

    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    // VERSION and PORT came from .env through compose's interpolation.
    h.until_serves("from-compose blue\n", 45).await;
}
