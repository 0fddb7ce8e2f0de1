//! instant-acme's HTTP client over reqwest: trusts `acme.ca_file` on top of
//! the system roots, bounds every call by the settings' timeout and every
//! response body by a size cap, and reports transport failures as a
//! [`Transport`] so the module's errors can say "unreachable" or "not
//! trusted" instead of a bare library message.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body::Body;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

/// The largest response body read: ACME objects are a few KiB and a
/// certificate chain a few more; anything bigger is not an ACME server.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Why a request got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// No connection, a timeout, or a broken connection.
    Unreachable,
    /// The server's TLS certificate did not verify.
    Untrusted,
    /// The answer was over [`MAX_BODY`].
    TooLarge,
}

/// A transport failure, carried through instant-acme's `Error::Other`.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub(crate) struct Transport {
    pub(crate) kind: TransportKind,
    pub(crate) cause: String,
}

/// A reqwest client set up for one ACME directory. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Client(reqwest::Client);

impl Client {
    /// `ca_pem`: an extra root to trust (PEM); `timeout` bounds each call.
    pub(crate) fn new(ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Client, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // ACME never redirects; following one could leave the directory's host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| chain(&e))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build().map(Client).map_err(|e| chain(&e))
    }
}

impl HttpClient for Client {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            send(client, req)
                .await
                .map_err(|t| instant_acme::Error::Other(Box::new(t)))
        })
    }
}

async fn send(client: reqwest::Client, req: Request<BodyWrapper<Bytes>>) -> Result<BytesResponse, Transport> {
    let (parts, body) = req.into_parts();
    let body = collect(body).await;
    let rsp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(transport)?;
    let mut head = http::Response::new(());
    *head.status_mut() = rsp.status();
    *head.headers_mut() = rsp.headers().clone();
    let body = read_capped(rsp, MAX_BODY).await?;
    let (parts, ()) = head.into_parts();
    Ok(BytesResponse {
        parts,
        body: Box::new(body),
    })
}

/// The request body instant-acme built (one frame of JSON, or none).
async fn collect(mut body: BodyWrapper<Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out.freeze()
}

/// Reads at most `cap` bytes of body, failing past it rather than
/// buffering whatever a broken or hostile server sends.
async fn read_capped(mut rsp: reqwest::Response, cap: usize) -> Result<Bytes, Transport> {
    let url = rsp.url().to_string();
    let too_large = || Transport {
        kind: TransportKind::TooLarge,
        cause: format!("{url} answered more than {cap} bytes"),
    };
    if rsp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut out = BytesMut::new();
    while let Some(chunk) = rsp.chunk().await.map_err(transport)? {
        if out.len() + chunk.len() > cap {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// `e` said without its URL: the errors around it name the directory.
fn transport(e: reqwest::Error) -> Transport {
    let cause = chain(&e.without_url());
    let lower = cause.to_ascii_lowercase();
    let untrusted = [
        "certificate verify failed",
        "self-signed certificate",
        "self signed certificate",
        "unable to get local issuer",
        "certificate has expired",
    ]
    .iter()
    .any(|s| lower.contains(s));
    let kind = if untrusted {
        TransportKind::Untrusted
    } else {
        TransportKind::Unreachable
    };
    Transport { kind, cause }
}

/// An error and its sources on one line: reqwest's own message is only
/// "error sending request", the reason is further down.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_pem_is_refused_with_the_reason() {
        let err = Client::new(Some(b"not a certificate"), Duration::from_secs(1))
            .err()
            .expect("garbage is not a CA");
        assert!(!err.is_empty());
    }

    /// One HTTP answer with `head` and `len` bytes of body, to whoever connects.
    async fn serve_once(head: &'static str, len: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut [0u8; 4096]).await;
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&vec![b'x'; len]).await;
        });
        url
    }

    async fn get(url: &str) -> Result<Bytes, Transport> {
        let rsp = reqwest::get(url).await.unwrap();
        read_capped(rsp, 1000).await
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_not_buffered() {
        let declared = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n", 1001).await;
        let err = get(&declared).await.unwrap_err();
        assert_eq!(err.kind, TransportKind::TooLarge);
        assert!(err.cause.ends_with("answered more than 1000 bytes"), "{}", err.cause);
        // No length up front: counted while reading.
        let streamed = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 5000).await;
        assert_eq!(get(&streamed).await.unwrap_err().kind, TransportKind::TooLarge);
        let small = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 1000).await;
        assert_eq!(get(&small).await.unwrap().len(), 1000);
    }

    #[tokio::test]
    async fn collects_the_request_body() {
        let body = BodyWrapper::from(b"{\"a\":1}".to_vec());
        assert_eq!(collect(body).await, Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(collect(BodyWrapper::default()).await, Bytes::new());
    }
}
