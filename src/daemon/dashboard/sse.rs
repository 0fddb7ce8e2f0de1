//! `GET /events`: Server-Sent Events. Each event appended to the event log
//! is sent as it is appended, as its JSON line (the default `message`
//! type, for any client) and as the dashboard's rendered row (`row`).
//! When the status or the log changed, the page's live part follows
//! (`page`), rendered and escaped on the server like the first view.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as Sse, KeepAlive};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::{html, Context};
use crate::daemon::status::Status;
use crate::events::Event;

/// How often the loop's status is compared with what was last sent.
const STATUS_CHECK: Duration = Duration::from_millis(500);

struct Client {
    ctx: Arc<Context>,
    rx: Receiver<Event>,
    /// Messages ready to send, in order.
    queue: VecDeque<Sse>,
    /// The status and live part last sent, so only changes go out.
    status: Option<Status>,
    page: Option<String>,
    /// The log or the status moved since the live part was rendered.
    dirty: bool,
    /// This stream's place under `api.max_streams`, given back on drop.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The stream for one client: the live part at once (it may be reconnecting
/// after missing some), then every event and every change.
pub fn stream(
    ctx: Arc<Context>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> axum::response::sse::Sse<impl Stream<Item = Result<Sse, Infallible>>> {
    let client = Client {
        rx: ctx.shared.events.subscribe(),
        ctx,
        queue: VecDeque::new(),
        status: None,
        page: None,
        dirty: true,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(client, |mut c| async move {
        let next = c.next().await;
        Some((Ok(next), c))
    });
    axum::response::sse::Sse::new(events).keep_alive(KeepAlive::default())
}

impl Client {
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return m;
            }
            if std::mem::take(&mut self.dirty) {
                let view = self.ctx.snapshot().await;
                let page = html::live(&view.status);
                if self.page.as_ref() != Some(&page) {
                    self.page = Some(page.clone());
                    return Sse::default().event("page").data(page);
                }
            }
            self.wait().await;
        }
    }

    /// Waits for an event or a change of the status.
    async fn wait(&mut self) {
        tokio::select! {
            got = self.rx.recv() => match got {
                Ok(e) => {
                    let json = serde_json::to_string(&e).unwrap_or_default();
                    self.queue.push_back(Sse::default().data(json));
                    self.queue.push_back(Sse::default().event("row").data(html::event_row(&e)));
                    self.dirty = true;
                }
                // Too slow to keep up: the rows in between are lost, the live part is not.
                Err(RecvError::Lagged(_)) => self.dirty = true,
                // The sender lives as long as the daemon; nothing more will come.
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            },
            _ = tokio::time::sleep(STATUS_CHECK) => {
                let now = self.ctx.shared.status.read().expect("status lock").clone();
                if self.status.as_ref() != Some(&now) {
                    self.status = Some(now);
                    self.dirty = true;
                }
            }
        }
    }
}
