//! A watch over the managed proxy: when it dies (a crash, a kill), it is
//! started again from its files within a second, serving the routes teal
//! last set, whatever the reconcile loop is busy with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{error, warn};

use super::Managed;

/// How often the proxy is looked at.
const EVERY: Duration = Duration::from_millis(500);

/// A managed proxy with its watch task. Dropping it ends the watch and
/// leaves the proxy running (a crash of teal must not stop traffic);
/// `stop` ends both.
pub struct Supervised {
    managed: Arc<Mutex<Option<Managed>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Starts watching `m`. Needs a tokio runtime.
    pub fn new(m: Managed) -> Supervised {
        let managed = Arc::new(Mutex::new(Some(m)));
        let watched = managed.clone();
        let task = tokio::spawn(async move {
            let mut last_error: Option<String> = None;
            loop {
                tokio::time::sleep(EVERY).await;
                let m = watched.clone();
                let revived = tokio::task::spawn_blocking(move || match m.lock().expect("managed lock").as_mut() {
                    Some(m) => m.revive().map(|r| r.then(|| m.pid())),
                    None => Ok(None),
                })
                .await;
                match revived {
                    Ok(Ok(Some(pid))) => {
                        warn!(pid, "the managed proxy had stopped; started it again from its files");
                        last_error = None;
                    }
                    Ok(Ok(None)) => last_error = None,
                    Ok(Err(e)) => {
                        let e = e.to_string();
                        if last_error.as_ref() != Some(&e) {
                            error!(error = %e, "the managed proxy is down and could not be started again; retrying");
                        }
                        last_error = Some(e);
                    }
                    Err(e) => error!(error = %e, "the managed proxy watch failed"),
                }
            }
        });
        Supervised { managed, task }
    }

    /// The pid of the proxy's master.
    pub fn pid(&self) -> Option<u32> {
        self.managed.lock().expect("managed lock").as_ref().map(Managed::pid)
    }

    /// Ends the watch and stops the proxy and its workers.
    pub fn stop(self) {
        self.task.abort();
        let m = self.managed.lock().expect("managed lock").take();
        if let Some(m) = m {
            m.stop();
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.task.abort();
    }
}
