//! Single flight: concurrent refreshes of one refresh token at one upstream make exactly one
//! upstream call, and every caller gets its answer.
//!
//! The call runs in a task of its own, so a caller that disconnects cannot cancel it halfway
//! and let a second call burn the token.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use refreshd_core::TokenDigest;
use tokio::sync::watch;

use crate::error::BrokerError;
use crate::upstream::Refreshed;

type Outcome = Option<Result<Refreshed, BrokerError>>;

#[derive(Clone, Default)]
pub struct Flights(Arc<Mutex<HashMap<[u8; 32], watch::Receiver<Outcome>>>>);

impl Flights {
    /// Joins the flight for `key`, or starts one running `call`. Returns the shared outcome
    /// and whether this caller started the flight.
    pub async fn join<F>(
        &self,
        key: TokenDigest,
        call: impl FnOnce() -> F,
    ) -> (Result<Refreshed, BrokerError>, bool)
    where
        F: Future<Output = Result<Refreshed, BrokerError>> + Send + 'static,
    {
        let (mut outcome, led) = {
            let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(key.as_bytes()) {
                Some(running) => (running.clone(), false),
                None => {
                    let (done, outcome) = watch::channel(None);
                    flights.insert(*key.as_bytes(), outcome.clone());
                    let (flights, future) = (self.clone(), call());
                    tokio::spawn(async move {
                        let result = future.await;
                        let _ = done.send(Some(result));
                        flights
                            .0
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(key.as_bytes());
                    });
                    (outcome, true)
                }
            }
        };
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone().expect("waited for Some"),
            Err(_) => Err(BrokerError::Upstream(
                "the refresh task stopped unexpectedly".into(),
            )),
        };
        (result, led)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_joins_share_one_call() {
        let flights = Flights::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let key = TokenDigest::of("ghr_x");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (flights, calls) = (flights.clone(), calls.clone());
                tokio::spawn(async move {
                    flights
                        .join(key, move || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Ok(Refreshed {
                                token: "t".into(),
                                refresh_token: None,
                                expires_at: None,
                            })
                        })
                        .await
                })
            })
            .collect();
        let mut leaders = 0;
        for task in tasks {
            let (result, led) = task.await.unwrap();
            assert_eq!(result.ok().map(|r| r.token).as_deref(), Some("t"));
            leaders += usize::from(led);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_cancel_the_call() {
        let flights = Flights::default();
        let key = TokenDigest::of("ghr_y");
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .join(key, || async {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        Ok(Refreshed {
                            token: "done".into(),
                            refresh_token: None,
                            expires_at: None,
                        })
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        leader.abort();
        let (result, led) = flights
            .join(key, || async {
                Err(BrokerError::Upstream("second call".into()))
            })
            .await;
        assert!(!led, "the first call is still in flight");
        assert_eq!(result.ok().map(|r| r.token).as_deref(), Some("done"));
    }
}
