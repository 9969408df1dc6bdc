//! Single flight: concurrent refreshes of one refresh token at one upstream make exactly one
//! upstream call, and every caller gets its answer.
//!
//! The call runs in a task of its own, so a caller that disconnects cannot cancel it halfway
//! and let a second call burn the token. The call saves the answer in the replay vault for the
//! caller that started it; before anyone is answered, the task saves it under every other
//! joined caller's lookup, and only then leaves the table: a request arriving later finds
//! either the flight or the vault entry, never neither.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use refreshd_core::TokenDigest;
use tokio::sync::watch;

use crate::error::BrokerError;
use crate::upstream::Refreshed;

type Outcome = Option<Result<Refreshed, BrokerError>>;

struct Flight {
    outcome: watch::Receiver<Outcome>,
    /// The replay-vault lookup of the caller that started the flight; the call saves it.
    starter: TokenDigest,
    /// Replay-vault lookups of the other callers waiting, not yet saved.
    unsaved: Vec<TokenDigest>,
}

#[derive(Clone, Default)]
pub struct Flights(Arc<Mutex<HashMap<[u8; 32], Flight>>>);

/// Leaves the table and answers the waiters even if the flight's task panics.
struct Landing {
    flights: Flights,
    key: [u8; 32],
    done: Option<watch::Sender<Outcome>>,
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.key);
        if let Some(done) = self.done.take() {
            let _ = done.send(Some(Err(BrokerError::Upstream(
                "the refresh failed unexpectedly".into(),
            ))));
        }
    }
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Flight>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the flight for `key`, or starts one running `call`; `lookup` is this caller's
    /// replay-vault lookup: `call` saves the starter's, `save` the others'. Once every answer
    /// is saved the flight runs `land` (whatever the outcome), and only then answers anyone.
    /// Every caller gets the same result.
    pub async fn join<F, S, SF, L, LF>(
        &self,
        provider: &'static str,
        key: TokenDigest,
        lookup: TokenDigest,
        call: impl FnOnce() -> F,
        save: S,
        land: L,
    ) -> Result<Refreshed, BrokerError>
    where
        F: Future<Output = Result<Refreshed, BrokerError>> + Send + 'static,
        S: Fn(Vec<TokenDigest>, Refreshed) -> SF + Send + 'static,
        SF: Future<Output = ()> + Send + 'static,
        L: FnOnce() -> LF + Send + 'static,
        LF: Future<Output = ()> + Send + 'static,
    {
        let mut outcome = {
            let mut flights = self.lock();
            match flights.get_mut(key.as_bytes()) {
                Some(flight) => {
                    metrics::counter!("refreshd_broker_refreshes_total", "provider" => provider, "answer" => "joined")
                        .increment(1);
                    if lookup != flight.starter && !flight.unsaved.contains(&lookup) {
                        flight.unsaved.push(lookup);
                    }
                    flight.outcome.clone()
                }
                None => {
                    metrics::counter!("refreshd_broker_refreshes_total", "provider" => provider, "answer" => "called")
                        .increment(1);
                    let (done, outcome) = watch::channel(None);
                    let flight = Flight {
                        outcome: outcome.clone(),
                        starter: lookup,
                        unsaved: Vec::new(),
                    };
                    flights.insert(*key.as_bytes(), flight);
                    let landing = Landing {
                        flights: self.clone(),
                        key: *key.as_bytes(),
                        done: Some(done),
                    };
                    tokio::spawn(fly(call(), save, land, landing));
                    outcome
                }
            }
        };
        match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone().expect("waited for Some"),
            Err(_) => Err(BrokerError::Upstream(
                "the refresh failed unexpectedly".into(),
            )),
        }
    }
}

async fn fly<F, S, SF, L, LF>(call: F, save: S, land: L, mut landing: Landing)
where
    F: Future<Output = Result<Refreshed, BrokerError>>,
    S: Fn(Vec<TokenDigest>, Refreshed) -> SF,
    SF: Future<Output = ()>,
    L: FnOnce() -> LF,
    LF: Future<Output = ()>,
{
    let result = call.await;
    if let Ok(refreshed) = &result {
        // Save for every caller that joined, until none is left unsaved; the flight leaves
        // the table in the same locked step that finds nothing more to save.
        loop {
            let unsaved = {
                let mut flights = landing.flights.lock();
                let pending = flights
                    .get_mut(&landing.key)
                    .map(|f| std::mem::take(&mut f.unsaved))
                    .unwrap_or_default();
                if pending.is_empty() {
                    flights.remove(&landing.key);
                }
                pending
            };
            if unsaved.is_empty() {
                break;
            }
            save(unsaved, refreshed.clone()).await;
        }
    }
    land().await;
    if let Some(done) = landing.done.take() {
        let _ = done.send(Some(result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn answer(token: &str) -> Refreshed {
        Refreshed {
            token: token.into(),
            refresh_token: None,
            expires_at: None,
            scope: None,
            refresh_expires_at: None,
        }
    }

    #[tokio::test]
    async fn concurrent_joins_share_one_call_and_every_caller_is_saved_first() {
        let flights = Flights::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let saved = Arc::new(Mutex::new(Vec::new()));
        let key = TokenDigest::of("ghr_x");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (flights, calls, saved) = (flights.clone(), calls.clone(), saved.clone());
                tokio::spawn(async move {
                    let call = move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok(answer("t"))
                    };
                    let save = move |lookups: Vec<TokenDigest>, _| {
                        saved.lock().unwrap().extend(lookups);
                        async {}
                    };
                    flights
                        .join(
                            "test",
                            key,
                            TokenDigest::of(&format!("caller-{i}")),
                            call,
                            save,
                            || async {},
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.unwrap().ok().map(|r| r.token).as_deref(),
                Some("t")
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            saved.lock().unwrap().len(),
            49,
            "every joined caller's replay entry (the starter's is the call's to save)"
        );
        assert!(flights.lock().is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_cancel_the_call() {
        let flights = Flights::default();
        let key = TokenDigest::of("ghr_y");
        let nothing = |_: Vec<TokenDigest>, _: Refreshed| async {};
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                let call = || async {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    Ok(answer("done"))
                };
                flights
                    .join("test", key, TokenDigest::of("a"), call, nothing, || async {
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        leader.abort();
        let second = || async { Err(BrokerError::Upstream("second call".into())) };
        let result = flights
            .join(
                "test",
                key,
                TokenDigest::of("b"),
                second,
                nothing,
                || async {},
            )
            .await;
        assert_eq!(
            result.ok().map(|r| r.token).as_deref(),
            Some("done"),
            "joined the first call"
        );
    }

    #[tokio::test]
    async fn a_panicking_call_answers_an_error_and_leaves_the_table() {
        let flights = Flights::default();
        let key = TokenDigest::of("ghr_z");
        let nothing = |_: Vec<TokenDigest>, _: Refreshed| async {};
        let call = || async { panic!("a bug") };
        let result = flights
            .join("test", key, TokenDigest::of("a"), call, nothing, || async {
            })
            .await;
        assert!(matches!(result, Err(BrokerError::Upstream(_))));
        assert!(flights.lock().is_empty());
    }
}
