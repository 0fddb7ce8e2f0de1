//! Group commit for proxy changes: services converge concurrently, and
//! when several routes arrive while a change is in flight, the next change
//! applies all of them at once (one check, one reload) instead of one
//! reload each. A cold host with 100 services otherwise waits on 100
//! reloads in a row. If a batch of several is rejected, each route is
//! tried alone, so one bad route fails only its own service.

use std::future::Future;

use tokio::sync::{oneshot, Mutex, MutexGuard};

use super::route::{ProxyError, RouteSpec};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// One change to the proxy at a time.
    lock: Mutex<()>,
    /// Routes waiting for the next change, with who waits for each.
    pending: std::sync::Mutex<Vec<(RouteSpec, Waiter)>>,
}

impl Batch {
    /// Exclusive access for changes that are not batched (remove, resync).
    pub async fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Applies `route` together with whatever else is pending, through
    /// `apply` (which gets all of them); returns this route's outcome.
    pub async fn submit<'a, F, Fut>(&'a self, route: &RouteSpec, apply: F) -> Result<(), ProxyError>
    where
        F: Fn(Vec<RouteSpec>) -> Fut,
        Fut: Future<Output = Result<(), ProxyError>> + 'a,
    {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").push((route.clone(), tx));
        {
            let _one = self.lock.lock().await;
            let batch = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
            if !batch.is_empty() {
                let (routes, waiters): (Vec<RouteSpec>, Vec<Waiter>) = batch.into_iter().unzip();
                match apply(routes.clone()).await {
                    Ok(()) => waiters.into_iter().for_each(|w| drop(w.send(Ok(())))),
                    Err(e) if routes.len() == 1 => waiters.into_iter().for_each(|w| drop(w.send(Err(e.to_string())))),
                    Err(_) => {
                        for (r, w) in routes.into_iter().zip(waiters) {
                            let alone = apply(vec![r]).await.map_err(|e| e.to_string());
                            let _ = w.send(alone);
                        }
                    }
                }
            }
        }
        match rx.await {
            Ok(result) => result.map_err(ProxyError::Other),
            Err(_) => Err(ProxyError::Other("the proxy change was dropped before it ran".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::spec::PerColor;

    fn route(service: &str) -> RouteSpec {
        RouteSpec {
            service: service.into(),
            host: format!("{service}.test"),
            aliases: vec![],
            tls: None,
            path: "/".into(),
            backends: PerColor::default(),
            preview: None,
            commit: "c".into(),
            traffic: Default::default(),
            next: None,
            route_hash: "h".into(),
        }
    }

    /// 20 routes submitted at once, one named `bad` if `with_bad`: each
    /// route's result, and how many changes ran.
    async fn submit_20(with_bad: bool) -> (Vec<(String, bool)>, usize) {
        let batch = Arc::new(Batch::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let runs: Vec<_> = (0..20)
            .map(|i| {
                let (b, c) = (batch.clone(), calls.clone());
                let name = if with_bad && i == 7 {
                    "bad".to_string()
                } else {
                    format!("s{i}")
                };
                tokio::spawn(async move {
                    let apply = |routes: Vec<RouteSpec>| {
                        let c = c.clone();
                        async move {
                            c.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            match routes.iter().any(|r| r.service == "bad") {
                                true => Err(ProxyError::Other("bad route".into())),
                                false => Ok(()),
                            }
                        }
                    };
                    let ok = b.submit(&route(&name), apply).await.is_ok();
                    (name, ok)
                })
            })
            .collect();
        let mut out = vec![];
        for r in runs {
            out.push(r.await.unwrap());
        }
        (out, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn routes_that_arrive_together_share_one_change() {
        let (results, calls) = submit_20(false).await;
        assert!(results.iter().all(|(_, ok)| *ok));
        assert!(calls <= 3, "20 routes in {calls} changes");
    }

    #[tokio::test]
    async fn a_bad_route_in_a_batch_fails_only_itself() {
        let (results, _) = submit_20(true).await;
        for (name, ok) in results {
            assert_eq!(ok, name != "bad", "{name}");
        }
    }
}
