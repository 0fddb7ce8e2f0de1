//! Hostile input from the repo's writer, read the two ways teal reads a
//! config repo (a work tree for `validate`/`bump`, git objects for
//! `validate --rev`, `diff` and the daemon): bytes that are not UTF-8, a
//! link to an endless file, ten thousand services, and a commit whose files
//! add up to more than teal holds. Each is refused with the file named, or
//! handled within the limits README's "Securing a host" states.

mod common;

use common::{service, teal, Repo};

fn svc(n: usize) -> String {
    service("blue", Some("app:1"), None, &format!("s{n}.example.com"))
}

#[test]
fn bytes_that_are_not_utf8_are_refused_with_the_file_named() {
    let repo = Repo::new();
    repo.commit("ok", &[("services/api.yaml", Some(&svc(1)))]);
    let bad = [
        b"active: blue\nblue:\n  image: app:\xff\xfe\n".as_slice(),
        b"port: 8080\n",
    ]
    .concat();
    std::fs::write(repo.path().join("services/web.yaml"), &bad).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "latin-1"]);
    for args in [
        &["validate"][..],
        &["validate", "--rev", "HEAD"],
        &["diff", "--base", "HEAD~1"],
    ] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(all.contains("services/web.yaml: not UTF-8 text"), "{args:?}: {all}");
    }
}

#[test]
fn a_teal_yaml_linked_to_an_endless_file_is_read_no_further_than_the_limit() {
    let repo = Repo::new();
    repo.commit("ok", &[("services/web.yaml", Some(&svc(1)))]);
    std::os::unix::fs::symlink("/dev/zero", repo.path().join("teal.yaml")).unwrap();
    let r = teal(repo.path(), &["validate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("teal.yaml:1:1: file is 1048577 bytes, more than the 1048576 teal reads"),
        "{r:?}"
    );
}

#[test]
fn ten_thousand_services_are_handled_and_one_more_is_refused() {
    let repo = Repo::new();
    let dir = repo.path().join("services");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..10_000 {
        std::fs::write(dir.join(format!("s{n:05}.yaml")), svc(n)).unwrap();
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "ten thousand"]);
    for args in [&["validate"][..], &["validate", "--rev", "HEAD"]] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("ok: 10000 services valid (s00000, s00001,") && r.stdout.ends_with(", 9988 more)\n"),
            "{args:?}: {}",
            r.stdout
        );
    }
    std::fs::write(dir.join("s10000.yaml"), svc(10_000)).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "one more"]);
    for args in [
        &["validate"][..],
        &["validate", "--rev", "HEAD"],
        &["diff", "--base", "HEAD~1"],
    ] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("more than 10000 service files in one commit: teal refuses such a repo"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn files_that_add_up_past_the_repo_limit_are_refused_before_all_are_read() {
    let repo = Repo::new();
    let dir = repo.path().join("services");
    std::fs::create_dir_all(&dir).unwrap();
    // Each file is valid YAML just under the limit on one file (a long
    // comment); 65 of them pass 64 MiB.
    let one = format!("{}#{}\n", svc(0), "x".repeat((1 << 20) - 200));
    for n in 0..65 {
        std::fs::write(dir.join(format!("s{n:02}.yaml")), &one).unwrap();
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "heavy"]);
    for args in [&["validate"][..], &["validate", "--rev", "HEAD"]] {
        let r = teal(repo.path(), args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("the config files of this commit add up to more than 67108864 bytes"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

/// `POST /hooks/git` as a stranger or a broken forge would send it, to
/// the real daemon: each is answered (never a hang or a crash), none
/// starts a fetch it should not, and the daemon serves on.
#[tokio::test]
async fn webhook_bodies_too_large_unsigned_or_malformed_are_answered_and_change_nothing() {
    use hmac::{Hmac, Mac};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    common::proxy_or_fail("haproxy");
    let h = common::host::TestHost::new("hookbody").await;
    let secret = h.dir.path().join("webhook_secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let proxy = format!("  kind: haproxy\n  listen: {}\n  managed: true\n", h.listen);
    h.write_config_with(&format!(", webhook_secret_file: {}", secret.display()), &proxy);
    let _daemon = h.start_daemon();
    let start = std::time::Instant::now();
    while common::try_get_via(&h.api, "localhost", "/healthz").await.is_err() {
        assert!(start.elapsed().as_secs() < 30, "{}", h.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let sign = |body: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    // The status line of the answer to `head` + `body`.
    let send = |head: String, body: Vec<u8>| {
        let api = h.api.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&api).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            // A server that answers before reading it all may close early.
            let _ = s.write_all(&body).await;
            let mut out = vec![];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(40), s.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_string()
        }
    };
    let post = |len: &str, sig: &str| {
        format!("POST /hooks/git HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{len}X-Hub-Signature-256: {sig}\r\n\r\n")
    };
    let big = vec![b'{'; 5 << 20];
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let rows: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "5 MiB, signed",
            post(&format!("Content-Length: {}\r\n", big.len()), &sign(&big)),
            big.clone(),
            "HTTP/1.1 413",
        ),
        (
            "5 MiB chunked, signed",
            post("Transfer-Encoding: chunked\r\n", &sign(&big)),
            {
                let mut b = format!("{:x}\r\n", big.len()).into_bytes();
                b.extend_from_slice(&big);
                b.extend_from_slice(b"\r\n0\r\n\r\n");
                b
            },
            "HTTP/1.1 413",
        ),
        (
            "a length of 10 GiB",
            post("Content-Length: 10737418240\r\n", &sign(b"")),
            b"{}".to_vec(),
            "HTTP/1.1 413",
        ),
        (
            "binary, unsigned",
            post(&format!("Content-Length: {}\r\n", garbage.len()), ""),
            garbage.clone(),
            "HTTP/1.1 401",
        ),
        (
            "binary, signature not hex",
            post(&format!("Content-Length: {}\r\n", garbage.len()), "sha256=zz"),
            garbage.clone(),
            "HTTP/1.1 401",
        ),
        (
            "binary, signed by another key",
            post("Content-Length: 2\r\n", &sign(b"{ }")),
            b"{}".to_vec(),
            "HTTP/1.1 401",
        ),
        // Signed: a trigger; the body is never parsed, so no shape of it matters.
        (
            "binary, signed",
            post(&format!("Content-Length: {}\r\n", garbage.len()), &sign(&garbage)),
            garbage.clone(),
            "HTTP/1.1 202",
        ),
    ];
    for (what, head, body, want) in rows {
        let got = send(head, body).await;
        assert!(got.starts_with(want), "{what}: {got:?}\n{}", h.log_text());
    }
    let (code, _) = common::get_via(&h.api, "localhost", "/healthz").await;
    assert_eq!(code, 200);
    assert!(!h.log_text().contains("panicked"), "{}", h.log_text());
}
