//! The HAProxy runtime API client: commands on the admin stats socket,
//! every call bounded in time, so a stuck socket is an error for the
//! engine to report instead of a hang of the reconcile loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::drivers::route::ProxyError;

/// How long connecting to the socket may take.
const CONNECT: Duration = Duration::from_secs(2);
/// How long HAProxy may take to answer once connected.
const ANSWER: Duration = Duration::from_secs(5);

/// The admin socket of one HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    socket: PathBuf,
}

impl Runtime {
    pub fn new(socket: &Path) -> Runtime {
        Runtime {
            socket: socket.to_path_buf(),
        }
    }

    fn err(&self, message: String) -> ProxyError {
        ProxyError::Runtime {
            socket: self.socket.display().to_string(),
            message,
        }
    }

    /// Sends commands on one connection (`;`-separated, non-interactive
    /// mode: HAProxy answers and closes) and returns the answer; any error
    /// line fails the call.
    pub async fn call(&self, cmds: &[String]) -> Result<String, ProxyError> {
        let line = cmds.join(";");
        let out = self.exchange(&shorten(&line), format!("{line}\n")).await?;
        match out.lines().find(|l| is_error_line(l)) {
            Some(bad) => Err(self.err(format!("{} -> {bad}", shorten(&line)))),
            None => Ok(out),
        }
    }

    /// Sends one command whose last word is `<<`, followed by `payload`
    /// and the empty line that ends it (HAProxy's payload syntax); one
    /// command per connection. The payload (a certificate and its key)
    /// is never in an error.
    pub async fn call_payload(&self, cmd: &str, payload: &str) -> Result<(), ProxyError> {
        let body = payload.trim_end_matches('\n');
        let out = self.exchange(cmd, format!("{cmd}\n{body}\n\n")).await?;
        match out
            .lines()
            .find(|l| is_error_line(l) || l.to_ascii_lowercase().contains("error"))
        {
            Some(bad) => Err(self.err(format!("{cmd} -> {bad}"))),
            None => Ok(()),
        }
    }

    /// Writes `text` on a new connection and reads the answer until
    /// HAProxy closes it, each bounded in time; `shown` names the
    /// request in errors.
    async fn exchange(&self, shown: &str, text: String) -> Result<String, ProxyError> {
        let mut s = tokio::time::timeout(CONNECT, UnixStream::connect(&self.socket))
            .await
            .map_err(|_| self.err(format!("could not connect within {}s", CONNECT.as_secs())))?
            .map_err(|e| self.err(format!("cannot connect: {e} (is HAProxy running?)")))?;
        let talk = async {
            s.write_all(text.as_bytes()).await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        tokio::time::timeout(ANSWER, talk)
            .await
            .map_err(|_| {
                self.err(format!(
                    "no answer within {}s to `{shown}`; the socket accepted the connection, so HAProxy is overloaded or stuck",
                    ANSWER.as_secs()
                ))
            })?
            .map_err(|e| self.err(e.to_string()))
    }

    /// The pid of the worker serving traffic (changes on every reload).
    pub async fn worker_pid(&self) -> Result<u32, ProxyError> {
        let info = self.call(&["show info".to_string()]).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| self.err(format!("no Pid in `show info`: {info}")))
    }

    /// Waits until the socket answers (after a reload the new worker
    /// binds it a moment after it serves).
    pub async fn wait_ready(&self) -> Result<(), ProxyError> {
        for _ in 0..100 {
            if self.call(&["show info".to_string()]).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.call(&["show info".to_string()]).await.map(|_| ())
    }
}

fn is_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["unknown", "no such", "invalid", "require", "denied"]
        .iter()
        .any(|w| l.contains(w))
}

/// A long command list, cut for an error message.
fn shorten(line: &str) -> String {
    if line.len() <= 200 {
        line.to_string()
    } else {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}... ({} bytes)", line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_that_accepts_but_never_answers_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        // Accept and hold the connection without a word.
        let hold = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(conn);
        });
        let err = Runtime::new(&path)
            .call(&["show info".to_string()])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no answer within 5s to `show info`"), "{err}");
        hold.abort();
    }

    #[tokio::test]
    async fn a_missing_socket_says_so() {
        let err = Runtime::new(Path::new("/nonexistent/admin.sock"))
            .call(&["show info".to_string()])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HAProxy runtime API at /nonexistent/admin.sock: cannot connect"),
            "{err}"
        );
    }
}
