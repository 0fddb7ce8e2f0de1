//! Prometheus's HTTP API: one instant query, read as its single value, for
//! `analysis.prometheus`. Prometheus is a network peer, not trusted: each
//! request is bounded in time and in the bytes read, and any answer that
//! is not one number is an error (which analysis counts as inconclusive,
//! never as a pass).

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// The longest one query may take, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read: one value needs a few hundred bytes.
pub const MAX_BODY: usize = 1 << 20;

/// Why a query gave no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    #[error("cannot reach Prometheus at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// The body is not shown: the URL comes from the repo, and whatever
    /// answers there must not be echoed into status and notices.
    #[error("Prometheus at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("Prometheus could not run the query ({kind}): {error}")]
    Query { kind: String, error: String },
    #[error("Prometheus answered more than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the query returned no series: nothing to judge yet (write `... or vector(0)` if no series means 0)")]
    Empty,
    #[error("the query returned {0} series: it must return one value, e.g. wrap it in sum(...)")]
    Many(usize),
    #[error("the query returned a {0}: it must return one value (an instant vector of one series, or a scalar)")]
    Kind(String),
    #[error("Prometheus's answer is not what its API returns: {0}")]
    Malformed(String),
}

/// A client for Prometheus: connections straight to the URL (no proxy
/// from the environment), no redirects, each request bounded by `TIMEOUT`.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .expect("static reqwest client configuration")
}

/// The value of `query` now, from the Prometheus at `base` (a checked
/// http(s) URL without a trailing slash). NaN is a value here: analysis
/// says what it makes of it.
pub async fn query(client: &reqwest::Client, base: &str, query: &str) -> Result<f64, PromError> {
    let unreachable = |cause: String| PromError::Unreachable {
        url: base.to_string(),
        cause,
    };
    let mut url = Url::parse(&crate::spec::prometheus::query_url(base)).map_err(|e| unreachable(e.to_string()))?;
    url.query_pairs_mut().append_pair("query", query);
    let rsp = client.get(url).send().await.map_err(|e| unreachable(cause(e)))?;
    let status = rsp.status().as_u16();
    let body = read_capped(rsp).await.map_err(|e| match e {
        Read::TooLarge => PromError::TooLarge,
        Read::Failed(e) => unreachable(cause(e)),
    })?;
    match parse(&body) {
        // Prometheus says why a query failed in the body of a 400 or 422.
        Err(e @ PromError::Query { .. }) => Err(e),
        _ if status != 200 => Err(PromError::Status {
            url: base.to_string(),
            status,
        }),
        other => other,
    }
}

/// The one value of an API answer.
pub fn parse(body: &[u8]) -> Result<f64, PromError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| PromError::Malformed(format!("not JSON: {e}")))?;
    match v["status"].as_str() {
        Some("success") => {}
        Some("error") => {
            // A peer's words: bounded, and printable in a log line.
            let said = |k: &str, or: &str, n: usize| {
                let t: String = v[k].as_str().unwrap_or(or).chars().take(n).collect();
                crate::printable::field(&t).into_owned()
            };
            return Err(PromError::Query {
                kind: said("errorType", "unknown", 40),
                error: said("error", "no message", 300),
            });
        }
        _ => return Err(PromError::Malformed("no status".into())),
    }
    let data = &v["data"];
    match data["resultType"].as_str() {
        Some("vector") => {
            let series = data["result"]
                .as_array()
                .ok_or_else(|| PromError::Malformed("a vector without result".into()))?;
            match series.as_slice() {
                [] => Err(PromError::Empty),
                [one] => sample(&one["value"]),
                many => Err(PromError::Many(many.len())),
            }
        }
        Some("scalar") => sample(&data["result"]),
        Some("matrix") => Err(PromError::Kind("range vector (matrix)".into())),
        Some(other) => Err(PromError::Kind(
            crate::printable::field(&other.chars().take(20).collect::<String>()).into_owned(),
        )),
        None => Err(PromError::Malformed("no resultType".into())),
    }
}

/// `[<time>, "<value>"]` -> value; Prometheus writes NaN, +Inf and -Inf
/// as such.
fn sample(v: &Value) -> Result<f64, PromError> {
    v.get(1)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| {
            PromError::Malformed(format!(
                "a sample that is not [time, \"value\"]: {}",
                excerpt(v.to_string().as_bytes())
            ))
        })
}

enum Read {
    TooLarge,
    Failed(reqwest::Error),
}

/// Reads at most `MAX_BODY` bytes, failing past it rather than buffering
/// whatever a broken or hostile peer sends.
async fn read_capped(mut rsp: reqwest::Response) -> Result<Vec<u8>, Read> {
    if rsp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Read::TooLarge);
    }
    let mut out = vec![];
    while let Some(chunk) = rsp.chunk().await.map_err(Read::Failed)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(Read::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The innermost cause says it best ("Connection refused (os error 111)").
fn cause(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", TIMEOUT.as_secs());
    }
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out = s.to_string();
        source = s.source();
    }
    out
}

/// The start of a body, printable, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(samples: &[&str]) -> String {
        let result: Vec<String> = samples
            .iter()
            .enumerate()
            .map(|(i, v)| format!(r#"{{"metric":{{"i":"{i}"}},"value":[1700000000.5,"{v}"]}}"#))
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        )
    }

    #[test]
    fn one_value_is_read_from_a_vector_or_a_scalar() {
        assert_eq!(parse(vector(&["0.034"]).as_bytes()), Ok(0.034));
        assert_eq!(parse(vector(&["+Inf"]).as_bytes()), Ok(f64::INFINITY));
        assert!(parse(vector(&["NaN"]).as_bytes()).unwrap().is_nan());
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"2"]}}"#;
        assert_eq!(parse(scalar.as_bytes()), Ok(2.0));
    }

    /// A peer on 127.0.0.1 that answers every connection with `answer`
    /// (or holds it open, saying nothing, when `None`).
    async fn peer(answer: Option<Vec<u8>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match answer {
                        Some(a) => {
                            let _ = s.write_all(&a).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        url
    }

    fn http(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn a_peer_is_bounded_in_time_and_bytes_and_never_echoed() {
        let c = client();
        let ok = peer(Some(http("200 OK", vector(&["0.5"]).as_bytes()))).await;
        assert_eq!(query(&c, &ok, "up").await, Ok(0.5));
        let down = peer(Some(http("503 Service Unavailable", b"secret internal page"))).await;
        let e = query(&c, &down, "up").await.unwrap_err();
        assert_eq!(e.to_string(), format!("Prometheus at {down} answered HTTP 503"));
        let huge = peer(Some(http("200 OK", &vec![b' '; MAX_BODY + 1]))).await;
        assert_eq!(query(&c, &huge, "up").await, Err(PromError::TooLarge));
        let bad = peer(Some(http(
            "400 Bad Request",
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )))
        .await;
        assert!(matches!(query(&c, &bad, "up(").await, Err(PromError::Query { .. })));
        let silent = peer(None).await;
        let started = std::time::Instant::now();
        let e = query(&c, &silent, "up").await.unwrap_err();
        assert!(
            started.elapsed() < TIMEOUT + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            e.to_string(),
            format!("cannot reach Prometheus at {silent}: no answer within 5s")
        );
        let refused = format!(
            "http://127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        );
        let e = query(&c, &refused, "up").await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot reach Prometheus at {refused}: ")) && e.contains("refused"),
            "{e}"
        );
    }

    #[test]
    fn anything_but_one_value_is_an_error_saying_why() {
        assert_eq!(parse(vector(&[]).as_bytes()), Err(PromError::Empty));
        assert_eq!(parse(vector(&["1", "2"]).as_bytes()), Err(PromError::Many(2)));
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(
            parse(err.as_bytes()).unwrap_err().to_string(),
            "Prometheus could not run the query (bad_data): parse error at char 4"
        );
        // A peer's error text reaches logs and notices: no terminal
        // escapes or line breaks, and bounded.
        let hostile = format!(
            r#"{{"status":"error","errorType":"x\u001b]52;c;AAAA\u0007{}","error":"a\nfake log line\r{}"}}"#,
            "t".repeat(1000),
            "e".repeat(10_000)
        );
        let said = parse(hostile.as_bytes()).unwrap_err().to_string();
        assert!(!said.chars().any(|c| c.is_control()), "{said:?}");
        assert!(said.contains("\\u{1b}") && said.contains("\\n"), "{said}");
        assert!(said.len() < 500, "{}", said.len());
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(parse(matrix.as_bytes()), Err(PromError::Kind(_))));
        for bad in [
            "<html>",
            "{}",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
        ] {
            assert!(matches!(parse(bad.as_bytes()), Err(PromError::Malformed(_))), "{bad}");
        }
    }
}
