//! Tests of the balancer's control socket client.

use super::*;

#[tokio::test]
async fn a_socket_that_accepts_but_never_answers_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let b = Balancer::in_dir(dir.path());
    let listener = tokio::net::UnixListener::bind(&b.socket).unwrap();
    let hold = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(conn);
    });
    let err = b.pools().await.unwrap_err().to_string();
    assert!(err.contains("no answer within 5s to GET /pools"), "{err}");
    hold.abort();
}

#[tokio::test]
async fn a_missing_socket_names_the_likely_cause() {
    let dir = tempfile::tempdir().unwrap();
    let err = Balancer::in_dir(dir.path()).pools().await.unwrap_err().to_string();
    assert!(
        err.contains("is nginx running with teal's teal_balancer.conf included?"),
        "{err}"
    );
}

#[tokio::test]
async fn an_answer_past_the_bound_is_an_error_not_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let b = Balancer::in_dir(dir.path());
    let listener = tokio::net::UnixListener::bind(&b.socket).unwrap();
    let flood = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
        for _ in 0..(MAX_ANSWER >> 20) + 2 {
            if conn.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let err = b.pools().await.unwrap_err().to_string();
    assert!(err.contains("answer longer than 16777216 bytes"), "{err}");
    flood.abort();
}

#[test]
fn pools_round_trip_through_the_text_form() {
    let mut pools = Pools::new();
    pools.insert(
        "web".into(),
        Pool {
            colors: PerColor {
                blue: Backend {
                    weight: 90,
                    addrs: vec!["10.0.0.2:8080".parse().unwrap(), "10.0.0.3:8080".parse().unwrap()],
                },
                green: Backend {
                    weight: 10,
                    addrs: vec!["[fd00::1]:8080".parse().unwrap()],
                },
            },
            sticky: Some("teal_web".into()),
            testers: Some((
                Match::Header {
                    name: "X-Canary".into(),
                    value: "1".into(),
                },
                Color::Green,
            )),
            maintenance: Some(Maintenance {
                message: "Back at 14:00".into(),
                retry_after: 600,
            }),
            pause_until: Some(1_765_040_000_000),
        },
    );
    pools.insert(preview_pool("web"), Pool::default());
    let text = render_pools(&pools);
    assert_eq!(
        text,
        "pool web\nblue 90 10.0.0.2:8080 10.0.0.3:8080\ngreen 10 [fd00::1]:8080\nsticky teal_web\ntesters header X-Canary 1 green\nmaint 600 Back at 14:00\npause 1765040000000\npool web@preview\nblue 0\ngreen 0\n"
    );
    assert_eq!(parse_pools(&text).unwrap(), pools);
    assert!(parse_pools("blue 1\n").is_err());
    assert!(parse_pools("pool a\npurple 1\n").is_err());
    assert!(parse_pools("pool a\npause soon\n").is_err());
}
