//! The status API's accept loop. `axum::serve` reads request heads without
//! a deadline and accepts without bound: 371 idle connections once used up
//! the daemon's file descriptors, and Docker calls, git fetches and SIGHUP
//! failed with "Too many open files". Here every connection has a deadline
//! for its request head (which also ends a keep-alive connection left
//! idle), a request has one for its body and answer, and at most
//! `max_connections` are open at once. A new connection past the cap
//! closes the one idle longest (or answering slowly): a flood only evicts
//! itself, and a client that sends its request at once is answered (a
//! connection whose request waits unread in its socket is never evicted).

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Notify};

/// How long a request head may take to arrive, counted from the connection
/// or the previous answer: slowloris and idle keep-alive both end there.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to send its body and be answered (the
/// `/events` stream excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request still unanswered after this long may be evicted for a new
/// connection: no handler takes that long, a body sent slowly does.
const SLOW: Duration = Duration::from_secs(1);
/// A connection is not evicted this soon after it was accepted or
/// answered: its request may still be on its way.
const GRACE: Duration = Duration::from_millis(10);
/// How long a new connection past the cap waits for room before it is
/// closed (it waits in the accept loop; the ones behind it, in the
/// kernel's backlog, hold no file descriptor of teal's).
const WAIT: Duration = Duration::from_secs(1);

/// The connection cap: the configured one, but never more than a quarter
/// of the open-file limit, which the rest of the daemon needs.
pub fn connection_cap(configured: usize, nofile: u64) -> usize {
    configured.min(usize::try_from(nofile / 4).unwrap_or(usize::MAX).max(4))
}

/// What a connection is doing, as far as eviction cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head: new, idle between requests, or slow.
    Idle,
    /// A request is being read or answered.
    Busy,
    /// An `/events` stream: capped on its own, never evicted.
    Stream,
}

struct Slot {
    phase: Phase,
    since: Instant,
    close: Arc<Notify>,
    /// Its socket, to see whether a request waits in it unread. Removed
    /// from `Slots` before the socket is closed, so never another's.
    fd: std::os::fd::RawFd,
}

/// The open connections, shared by the accept loop and each connection.
#[derive(Clone, Default)]
struct Slots(Arc<Mutex<SlotsInner>>);

#[derive(Default)]
struct SlotsInner {
    open: HashMap<u64, Slot>,
    next: u64,
}

/// The connection to close for a new one: the one idle longest, else the
/// one answering slowly the longest; never a stream, nor one just accepted
/// or whose request is waiting to be read (`unread`).
fn victim(
    slots: impl Iterator<Item = (u64, Phase, Instant)>,
    now: Instant,
    unread: impl Fn(u64) -> bool,
) -> Option<u64> {
    let mut candidates: Vec<(u64, Phase, Instant)> = slots
        .filter(|(_, phase, since)| match phase {
            Phase::Idle => now.duration_since(*since) >= GRACE,
            Phase::Busy => now.duration_since(*since) >= SLOW,
            Phase::Stream => false,
        })
        .collect();
    candidates.sort_by_key(|(_, phase, since)| (*phase != Phase::Idle, *since));
    candidates
        .into_iter()
        .find(|(id, phase, _)| *phase != Phase::Idle || !unread(*id))
        .map(|(id, _, _)| id)
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the connection `victim` picks, for a new one; false: every
    /// connection is answering.
    fn evict(&self, now: Instant) -> bool {
        let mut s = self.lock();
        let slots = s.open.iter().map(|(id, x)| (*id, x.phase, x.since));
        let unread = |id| s.open.get(&id).is_some_and(|x| has_data(x.fd));
        let Some(id) = victim(slots, now, unread) else {
            return false;
        };
        if let Some(slot) = s.open.remove(&id) {
            slot.close.notify_one();
        }
        true
    }

    fn insert(&self, fd: std::os::fd::RawFd) -> (u64, Arc<Notify>) {
        let mut s = self.lock();
        let id = s.next;
        s.next += 1;
        let close = Arc::new(Notify::new());
        let slot = Slot {
            phase: Phase::Idle,
            since: Instant::now(),
            close: close.clone(),
            fd,
        };
        s.open.insert(id, slot);
        (id, close)
    }

    fn set(&self, id: u64, phase: Phase) {
        if let Some(slot) = self.lock().open.get_mut(&id) {
            slot.phase = phase;
            slot.since = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// Marks its connection busy from a request's head until its answer's
/// body has been sent (or dropped).
struct Activity(Slots, u64);

impl Drop for Activity {
    fn drop(&mut self) {
        self.0.set(self.1, Phase::Idle);
    }
}

/// An answer's body that holds the connection's `Activity` until it ends.
struct Held {
    body: Body,
    _activity: Activity,
}

impl http_body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves `router` on `listener` with at most `cap` connections, until
/// `shutdown` resolves; then open connections finish what they answer.
pub async fn run(
    listener: tokio::net::TcpListener,
    router: Router,
    cap: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut gate = Gate {
        slots: Slots::default(),
        permits: Arc::new(tokio::sync::Semaphore::new(cap)),
        cap,
        full: false,
    };
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors: the pending connection stays in
                // the backlog; retrying at once would spin.
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "status API: cannot accept a connection; retrying");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        failing = false;
        let Some(permit) = gate.admit().await else {
            continue;
        };
        let (id, close) = gate.slots.insert(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let conn = Conn {
            slots: gate.slots.clone(),
            id,
            close,
            stopping: stopping.clone(),
            _permit: permit,
        };
        tokio::spawn(conn.serve(stream, router.clone()));
    }
    let _ = stop.send(true);
}

/// Who gets in: one permit per open socket, given back once it is closed.
struct Gate {
    slots: Slots,
    permits: Arc<tokio::sync::Semaphore>,
    cap: usize,
    /// At the cap, and said so.
    full: bool,
}

impl Gate {
    /// A permit for a new connection, at once under the cap. Past it, the
    /// new one takes the place of an idle or slow one once that one's
    /// socket is closed (the cap counts file descriptors, not intentions);
    /// `None` after `WAIT` without.
    async fn admit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            if self.full && self.permits.available_permits() >= self.cap / 2 {
                self.full = false;
                tracing::info!("status API below its connection cap again");
            }
            return Some(p);
        }
        if !std::mem::replace(&mut self.full, true) {
            tracing::warn!(cap = self.cap, "status API at its connection cap (api.max_connections): idle and slow connections are closed for new ones");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // No one to evict yet: each check waits a little for a permit.
            let wait = if self.slots.evict(Instant::now()) {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(25))
            };
            if let Ok(Ok(p)) = tokio::time::timeout_at(wait, self.permits.clone().acquire_owned()).await {
                return Some(p);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }
}

/// Whether bytes wait unread in socket `fd`, without waiting or reading.
fn has_data(fd: std::os::fd::RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv(2) into one byte that lives across the call; MSG_PEEK
    // leaves it in the socket for hyper.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// One accepted connection and what may end it.
struct Conn {
    slots: Slots,
    id: u64,
    close: Arc<Notify>,
    stopping: watch::Receiver<bool>,
    /// Dropped with the connection, after its socket (a local of `serve`).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Conn {
    async fn serve(self, stream: tokio::net::TcpStream, router: Router) {
        let hyper_service = TowerToHyperService::new(router);
        let (slots, id) = (self.slots.clone(), self.id);
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let stream = req.uri().path() == "/events";
            slots.set(id, if stream { Phase::Stream } else { Phase::Busy });
            let activity = Activity(slots.clone(), id);
            let call = hyper::service::Service::call(&hyper_service, req);
            async move {
                let answer = if stream {
                    call.await
                } else {
                    tokio::time::timeout(REQUEST_TIMEOUT, call)
                        .await
                        .unwrap_or_else(|_| Ok(too_slow()))
                };
                let answer: Response<Body> = answer.unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Infallible>(answer.map(|body| {
                    Body::new(Held {
                        body,
                        _activity: activity,
                    })
                }))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut stopping = self.stopping.clone();
        let stop = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        tokio::select! {
            _ = conn.as_mut() => {}
            // Evicted for a new connection: dropping it closes the socket.
            _ = self.close.notified() => {}
            _ = stop => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
            }
        }
        self.slots.remove(self.id);
    }
}

fn too_slow() -> Response<Body> {
    let mut r = Response::new(Body::from(format!(
        "the request was not sent and answered within {} s\n",
        REQUEST_TIMEOUT.as_secs()
    )));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_three_quarters_of_the_fd_limit_to_the_rest() {
        assert_eq!(connection_cap(256, 1024), 256);
        assert_eq!(connection_cap(256, 256), 64);
        assert_eq!(connection_cap(256, 1_048_576), 256);
        assert_eq!(connection_cap(10, 8), 4);
    }

    #[test]
    fn the_idle_longest_goes_first_then_the_slowest_and_never_a_stream() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let now = at(100);
        use Phase::{Busy, Idle, Stream};
        type Row<'a> = (&'a [(u64, Phase, Instant)], Option<u64>);
        let table: &[Row] = &[
            (&[(1, Busy, at(0)), (2, Idle, at(50)), (3, Idle, at(40))], Some(3)),
            (&[(1, Idle, now), (2, Busy, now - Duration::from_millis(500))], None),
            (&[(1, Busy, at(10)), (2, Busy, at(5)), (3, Stream, at(0))], Some(2)),
            // A request answered right now is not cut for a newcomer.
            (&[(1, Busy, now), (2, Stream, at(0))], None),
            (&[], None),
        ];
        for (slots, want) in table {
            assert_eq!(victim(slots.iter().copied(), now, |_| false), *want, "{slots:?}");
        }
        // The oldest idle one has its request waiting unread: the next goes.
        let slots = [(1, Idle, at(10)), (2, Idle, at(20)), (3, Busy, at(0))];
        assert_eq!(victim(slots.iter().copied(), now, |id| id == 1), Some(2));
        assert_eq!(victim(slots.iter().copied(), now, |id| id != 3), Some(3));
    }
}
