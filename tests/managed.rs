//! The managed proxy is the data plane: it keeps serving while teal is
//! killed, a restarted teal adopts the very same process, a clean stop
//! ends it, a port held by someone else is refused by name, and a proxy
//! that dies is started again without ever serving an unchecked color.
//! Real Docker, nginx, HAProxy and wrk.

mod common;

use std::time::Duration;

use common::host::TestHost;
use common::process::processes_of;
use common::wrk::Wrk;
use common::{app_image_version, get_via, proxy_or_fail};

/// kill -9 under keep-alive load, restart, adopt, deploy, SIGTERM.
async fn killed_teal_leaves_the_proxy_serving_and_adopts_it_back(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("adopt").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let pid = h.proxy_pid().expect("the managed proxy is recorded");

    // The data plane without its control plane: no request fails.
    let load = Wrk::start(&h.listen, &h.host, 6);
    tokio::time::sleep(Duration::from_secs(1)).await;
    daemon.kill_9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !processes_of(&h.proxy_dir()).is_empty(),
        "{kind}: the proxy outlived teal"
    );
    let mut daemon = h.start_daemon();
    h.until_logged("adopted the running managed proxy", 30).await;
    let r = load.finish();
    assert_eq!(
        r.failed(),
        0,
        "{kind}: failed requests while teal was down or restarting: {r:?}"
    );

    assert_eq!(h.proxy_pid(), Some(pid), "{kind}: the same proxy, adopted");
    let tree = processes_of(&h.proxy_dir());
    assert!(tree.iter().any(|(p, _)| *p == pid), "{kind}: {tree:?}");
    let masters: Vec<_> = tree
        .iter()
        .filter(|(_, c)| c.contains(&h.proxy_dir().display().to_string()))
        .filter(|(p, _)| {
            teal::drivers::managed::process::parent(*p).is_none_or(|pp| !tree.iter().any(|(q, _)| *q == pp))
        })
        .collect();
    assert_eq!(masters.len(), 1, "{kind}: exactly one proxy tree: {tree:?}");
    for _ in 0..20 {
        assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n", "{kind}");
    }

    // It still deploys through the adopted proxy.
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    assert_eq!(h.proxy_pid(), Some(pid), "{kind}: no new proxy for a deploy");

    // A clean stop ends everything teal started.
    let status = daemon.terminate();
    assert!(status.success(), "{kind}: {status:?}\n{}", h.log_text());
    let left = processes_of(&h.proxy_dir());
    assert!(left.is_empty(), "{kind}: left running after SIGTERM: {left:?}");
    assert!(
        std::net::TcpStream::connect(&h.listen).is_err(),
        "{kind}: nothing listens on {} any more",
        h.listen
    );
}

#[tokio::test]
async fn haproxy_survives_kill_9_and_is_adopted() {
    killed_teal_leaves_the_proxy_serving_and_adopts_it_back("haproxy").await;
}

#[tokio::test]
async fn nginx_survives_kill_9_and_is_adopted() {
    killed_teal_leaves_the_proxy_serving_and_adopts_it_back("nginx").await;
}

#[tokio::test]
async fn a_foreign_process_on_the_listen_port_is_named_and_no_proxy_starts() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("held").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let squatter = std::net::TcpListener::bind(&h.listen).unwrap();
    h.managed_config("haproxy");
    let mut daemon = h.start_daemon();
    let status = daemon.0.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", h.log_text());
    let log = h.log_text();
    let me = std::process::id();
    assert!(
        log.contains(&format!("proxy.listen {} is held by pid {me} (", h.listen))
            && log.contains("which is not teal's proxy"),
        "{log}"
    );
    assert!(processes_of(&h.proxy_dir()).is_empty(), "no second proxy");
    drop(squatter);
}

#[tokio::test]
async fn a_stale_pid_record_naming_another_program_is_not_adopted() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("stale").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    // A record left by a crash whose pid now belongs to something else.
    let mut other = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::create_dir_all(h.proxy_dir()).unwrap();
    std::fs::write(
        h.proxy_dir().join("managed.json"),
        format!(r#"{{"kind":"haproxy","pid":{},"listen":"{}"}}"#, other.id(), h.listen),
    )
    .unwrap();
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.until_logged("started the managed proxy", 10).await;
    assert_ne!(h.proxy_pid(), Some(other.id()));
    assert!(other.try_wait().unwrap().is_none(), "the other program was left alone");
    let _ = other.kill();
    let _ = other.wait();
    daemon.terminate();
}

/// A proxy killed while a bad version is being checked comes back with
/// the routes teal last set: the old color, never the unchecked one.
async fn a_dead_proxy_comes_back_serving_only_checked_colors(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("revive").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = app_image_version(&h.docker, "3.0", false).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let pid = h.proxy_pid().unwrap();

    let slow = h
        .service("green", &v1, Some(&bad), "")
        .replace("deadline: 10s", "deadline: 20s");
    h.push("bad 3.0", &slow);
    h.until_logged("start green", 30).await;
    // SIGKILL the whole proxy tree, as a crash would.
    teal::drivers::managed::process::signal(-(pid as i32), libc::SIGKILL);
    h.until_logged("the managed proxy had stopped; started it again", 30)
        .await;
    assert_ne!(h.proxy_pid(), Some(pid), "{kind}: a new process");
    h.until_serves("1.0 blue\n", 10).await;
    for _ in 0..50 {
        let (status, body) = get_via(&h.listen, &h.host, "/").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "1.0 blue\n"),
            "{kind}: only the checked color"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.terminate();
    let left = processes_of(&h.proxy_dir());
    assert!(left.is_empty(), "{kind}: left running {left:?}\n{}", h.log_text());
}

#[tokio::test]
async fn a_dead_haproxy_comes_back_serving_only_checked_colors() {
    a_dead_proxy_comes_back_serving_only_checked_colors("haproxy").await;
}

#[tokio::test]
async fn a_dead_nginx_comes_back_serving_only_checked_colors() {
    a_dead_proxy_comes_back_serving_only_checked_colors("nginx").await;
}

/// A restarted teal with a new `proxy.listen` keeps the same process and
/// moves it over by a seamless reload: never a second proxy.
async fn a_new_listen_address_is_taken_by_the_adopted_proxy(kind: &str) {
    proxy_or_fail(kind);
    let mut h = TestHost::new("relisten").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let pid = h.proxy_pid().unwrap();
    daemon.kill_9();

    let old = h.listen.clone();
    h.listen = format!("127.0.0.1:{}", common::free_port());
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_logged("adopted the running managed proxy", 30).await;
    h.until_serves("1.0 blue\n", 30).await;
    assert_eq!(h.proxy_pid(), Some(pid), "{kind}: the same process");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&old).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(std::net::TcpStream::connect(&old).is_err(), "{kind}: {old} was let go");
    daemon.terminate();
    let left = processes_of(&h.proxy_dir());
    assert!(left.is_empty(), "{kind}: left running {left:?}\n{}", h.log_text());
}

#[tokio::test]
async fn haproxy_moves_to_a_new_listen_address_in_place() {
    a_new_listen_address_is_taken_by_the_adopted_proxy("haproxy").await;
}

#[tokio::test]
async fn nginx_moves_to_a_new_listen_address_in_place() {
    a_new_listen_address_is_taken_by_the_adopted_proxy("nginx").await;
}
