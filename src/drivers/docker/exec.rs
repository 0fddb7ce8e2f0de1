//! `exec` health checks: a command run inside a container, its exit code.

use std::time::Duration;

use super::{message, DockerDriver, DockerError};

impl DockerDriver {
    /// Runs `cmd` inside `container` and returns its exit code.
    pub async fn exec(&self, container: &str, cmd: &[String], timeout: Duration) -> Result<i64, DockerError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let run = async {
            let opts = CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let exec = self.client.create_exec(container, opts).await?;
            if let StartExecResults::Attached { mut output, .. } = self.client.start_exec(&exec.id, None).await? {
                while output.next().await.is_some() {}
            }
            let info = self.client.inspect_exec(&exec.id).await?;
            Ok::<_, bollard::errors::Error>(info.exit_code.unwrap_or(-1))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(e)) => Err(DockerError::Api {
                action: "exec in",
                target: container.to_string(),
                message: message(&e),
            }),
            Err(_) => Err(DockerError::Timeout {
                action: "exec in",
                target: container.to_string(),
                secs: timeout.as_secs(),
            }),
        }
    }
}
