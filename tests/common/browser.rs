//! A real browser for dashboard tests: Debian's chromium, headless,
//! driven through chromedriver (WebDriver). Missing either is a failing
//! test that says what to install, never a skipped one.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::free_port;

const INSTALL: &str = "`apt-get install -y chromium chromium-driver` (Debian; `.ci/run` installs them)";

/// A chromedriver process and a WebDriver session on it; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    /// Ends chromedriver and every chromium it started, also when a failed
    /// assertion left the session open: they share a process group.
    fn drop(&mut self) {
        // SAFETY: kill(2) with plain integers; the group is chromedriver's own.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

/// The chromium binary: Debian's, or whatever `chromium` is on PATH.
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| panic!("the dashboard tests need chromium: {INSTALL}"))
}

impl Browser {
    /// Starts chromedriver and a headless chromium with a `width`x`height`
    /// window. Root needs `--no-sandbox`; nothing else of the machine's
    /// chromium profile is used.
    pub async fn start(width: u32, height: u32) -> Browser {
        let binary = chromium();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the dashboard tests need chromedriver ({e}): {INSTALL}"));
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {url}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": binary,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver would not start chromium ({e}); {INSTALL}"));
        Browser { client, driver }
    }

    /// The text of the first element matching `css`, or `None`.
    pub async fn text(&self, css: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok()
    }

    /// Polls until `css` has text `want`, or fails after `secs`, with the page's text.
    pub async fn until_text(&self, css: &str, want: &str, secs: u64) {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < Duration::from_secs(secs) {
            last = self.text(css).await;
            if last.as_deref() == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.text("body").await.unwrap_or_default();
        panic!("{css} never read {want:?} (last {last:?}); the page said:\n{body}");
    }

    /// Polls until an element matches `css`, or fails after `secs`.
    pub async fn until_present(&self, css: &str, secs: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.text("body").await.unwrap_or_default();
        panic!("nothing matched {css} within {secs}s; the page said:\n{body}");
    }
}
