//! The managed proxy's workers are not root.

use crate::common::{get_via, LocalApp};
use crate::names::rewrite_signed;
use crate::{route, start, Kind, Proxy};
use teal::drivers::managed;
use teal::spec::Color::{Blue, Green};

/// The real and effective uid of a process, from `/proc/<pid>/status`;
/// `None` once it has exited (an old worker after a reload may go
/// between listing the workers and reading this: failed CI once).
fn uids(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let f: Vec<u32> = line.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    Some((f[0], f[1]))
}

/// The uid of a user of this machine, from `getent passwd`.
fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    line.split(':').nth(2).and_then(|u| u.parse().ok()).unwrap_or_else(|| {
        panic!(
            "these tests need the user {user}: `apt-get install -y nginx-light haproxy` creates www-data and haproxy"
        )
    })
}

/// POSTs a body of `len` bytes through the proxy: the status.
async fn post_via(proxy: &str, host: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let head = format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; len]).await.unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The proxy's processes other than its master: its workers.
fn workers(p: &Proxy) -> Vec<u32> {
    let master = p.managed.pid();
    crate::common::process::processes_of(&p.managed.spec().dir)
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| *pid != master)
        .collect()
}

/// Worker processes run as the distribution's user for the proxy, not
/// root, and everything they serve still works: a switch (balancer socket
/// or stats socket), a reload, a large request body.
async fn workers_are_not_root(kind: Kind) {
    let p = start(kind).await;
    let user = match kind {
        Kind::Haproxy => "haproxy",
        _ => "www-data",
    };
    let (blue, green) = (LocalApp::start("1", "blue"), LocalApp::start("2", "green"));
    let mut r = route("web", "web.test", blue.addr);
    r.backends.green.addrs = vec![green.addr];
    p.driver.apply(&r).await.unwrap();
    assert_eq!(get_via(&p.listen, "web.test", "/").await.1, "1 blue\n", "{kind:?}");
    let check = |when: &str| {
        let ws = workers(&p);
        assert!(!ws.is_empty(), "{kind:?} {when}: no worker of {}", p.managed.pid());
        for w in ws {
            assert_eq!(
                uids(w),
                Some((uid_of(user), uid_of(user))),
                "{kind:?} {when}: worker {w} runs as root or another user"
            );
        }
    };
    check("at start");
    (r.backends.blue.weight, r.backends.green.weight) = (0, 100);
    p.driver.apply(&r).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "web.test", "/").await.1,
        "2 green\n",
        "{kind:?}: switched"
    );
    p.driver.apply(&route("api", "api.test", blue.addr)).await.unwrap();
    assert_eq!(
        get_via(&p.listen, "api.test", "/").await.1,
        "1 blue\n",
        "{kind:?}: reloaded"
    );
    check("after a reload");
    let st = post_via(&p.listen, "web.test", 900 * 1024).await;
    eprintln!(
        "LOG {}",
        std::fs::read_to_string(p.managed.spec().dir.join("error.log")).unwrap_or_default()
    );
    assert_eq!(st, 200, "{kind:?}: a 900 KiB body");
    assert_eq!(p.driver.observe().await.unwrap()["web"].live(), Some(Green), "{kind:?}");
}

#[tokio::test]
async fn nginx_workers_are_not_root() {
    workers_are_not_root(Kind::Nginx).await;
}

#[tokio::test]
async fn nginx_reload_workers_are_not_root() {
    workers_are_not_root(Kind::NginxReload).await;
}

#[tokio::test]
async fn haproxy_workers_are_not_root() {
    workers_are_not_root(Kind::Haproxy).await;
}

/// Runs `cmd` in `dir`; panics with its output when it fails.
fn run_in(dir: &std::path::Path, cmd: &[&str]) {
    let out = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

/// Waits up to 5 s until every worker runs as `uid`.
async fn until_workers_run_as(p: &Proxy, uid: u32, what: &str) {
    for _ in 0..100 {
        let ws = workers(p);
        if !ws.is_empty() && ws.iter().all(|w| uids(*w).map(|u| u.1) == Some(uid)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: workers {:?} do not all run as uid {uid}", workers(p));
}

/// A proxy an older teal started with root workers, adopted by this teal:
/// one checked reload later its workers run as their own user, and it
/// serves throughout.
async fn adopted_root_workers_move(kind: Kind) {
    let p = start(kind).await;
    let app = LocalApp::start("1", "blue");
    p.driver.apply(&route("web", "web.test", app.addr)).await.unwrap();
    let dir = p.managed.spec().dir.clone();
    match kind {
        Kind::Haproxy => {
            rewrite_signed(&dir.join("teal.cfg"), |b| {
                b.lines()
                    .filter(|l| !l.starts_with("    user ") && !l.starts_with("    group "))
                    .map(|l| format!("{l}\n"))
                    .collect()
            });
            run_in(&dir, &["pkill", "-USR2", "-F", "haproxy.pid"]);
        }
        _ => {
            let text = std::fs::read_to_string(dir.join("nginx.conf")).unwrap();
            std::fs::write(
                dir.join("nginx.conf"),
                text.replace("user www-data www-data;", "user root;"),
            )
            .unwrap();
            run_in(&dir, &["nginx", "-p", ".", "-c", "nginx.conf", "-s", "reload"]);
        }
    }
    until_workers_run_as(&p, 0, &format!("{kind:?} as an older teal left it")).await;
    assert_eq!(get_via(&p.listen, "web.test", "/").await.1, "1 blue\n", "{kind:?}");

    let (_adopted, driver, origin) = managed::adopt_or_start(p.managed.spec()).await.unwrap();
    assert_eq!(origin, managed::Origin::Adopted);
    let user = if matches!(kind, Kind::Haproxy) {
        "haproxy"
    } else {
        "www-data"
    };
    until_workers_run_as(&p, uid_of(user), &format!("{kind:?} adopted")).await;
    assert_eq!(
        get_via(&p.listen, "web.test", "/").await.1,
        "1 blue\n",
        "{kind:?}: adopted"
    );
    assert_eq!(driver.observe().await.unwrap()["web"].live(), Some(Blue), "{kind:?}");
}

#[tokio::test]
async fn nginx_adopted_with_root_workers_moves_them_to_their_user() {
    adopted_root_workers_move(Kind::Nginx).await;
}

#[tokio::test]
async fn haproxy_adopted_with_root_workers_moves_them_to_their_user() {
    adopted_root_workers_move(Kind::Haproxy).await;
}
