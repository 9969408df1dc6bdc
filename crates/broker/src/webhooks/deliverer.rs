//! The deliverer: on every instance, a task that claims due deliveries from the outbox
//! (`Webhooks::claim_deliveries`; instances never attempt one delivery at the same time) and
//! POSTs each, signed, to its endpoint. A 2xx answer delivers it; anything else, a timeout or
//! a connection error schedules the next attempt (`rules::webhooks::RetrySchedule`), until
//! the schedule ends and it fails. It runs apart from the refresher, with its own HTTP client,
//! at most `CONCURRENCY` attempts at once and each bounded by the timeout, so a slow or
//! failing receiver holds up nothing but its own deliveries.

use std::sync::Arc;
use std::time::Duration;

use refreshd_store::{Delivery, DeliveryAttempt};
use tokio::sync::Semaphore;

use super::{WebhookSecret, sign};
use crate::state::Broker;

/// Most attempts in flight at once on one instance.
const CONCURRENCY: usize = 16;
/// How often the outbox is looked at for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// A claim outlasts the attempt's timeout by this much, so no other instance takes a delivery
/// while its attempt may still be running.
const CLAIM_MARGIN_SECS: i64 = 15;

/// Delivers due webhook deliveries every second, until the task is aborted. Does nothing if no
/// endpoint or secret is configured.
pub async fn run(broker: Broker) {
    let settings = &broker.0.settings.webhooks;
    let Some(secret) = settings.secret.clone().filter(|_| settings.is_on()) else {
        return;
    };
    let timeout = Duration::from_secs(settings.timeout_secs.max(1));
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("refreshd-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "could not build the webhook HTTP client; no webhooks");
            return;
        }
    };
    let deliverer = Arc::new(Deliverer {
        broker: broker.clone(),
        http,
        secret,
        claim_secs: timeout.as_secs() as i64 + CLAIM_MARGIN_SECS,
    });
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = deliverer.clone().start_due(&slots).await {
            tracing::warn!(error = %e, "the webhook deliverer's round failed; will retry");
        }
    }
}

struct Deliverer {
    broker: Broker,
    http: reqwest::Client,
    secret: WebhookSecret,
    claim_secs: i64,
}

impl Deliverer {
    /// Claims as many due deliveries as there are free slots, and starts an attempt at each
    /// without waiting for it; again while whole batches come back.
    async fn start_due(
        self: Arc<Self>,
        slots: &Arc<Semaphore>,
    ) -> Result<(), refreshd_store::StoreError> {
        loop {
            let free = slots.available_permits();
            if free == 0 {
                return Ok(());
            }
            let holder = refreshd_core::random::bytes::<16>();
            let now = self.broker.0.clock.now();
            let claimed = self
                .broker
                .0
                .store
                .claim_deliveries(holder, now.plus_secs(self.claim_secs), now, free as i64)
                .await?;
            let full = claimed.len() == free;
            for delivery in claimed {
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let deliverer = self.clone();
                tokio::spawn(async move {
                    deliverer.attempt(delivery, holder).await;
                    drop(permit);
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// One attempt at `delivery`, claimed by `holder`, recorded and counted.
    async fn attempt(&self, delivery: Delivery, holder: [u8; 16]) {
        let attempt = self.post(&delivery).await;
        let now = self.broker.0.clock.now();
        let attempt = match attempt {
            Ok(status) => DeliveryAttempt::Delivered { status },
            Err((status, error)) => DeliveryAttempt::NotDelivered {
                status,
                error,
                retry_at: self.broker.0.settings.webhooks.retry.retry_at(
                    delivery.attempts + 1,
                    now,
                    refreshd_core::random::fraction(),
                ),
            },
        };
        let outcome = match &attempt {
            DeliveryAttempt::Delivered { .. } => "delivered",
            DeliveryAttempt::NotDelivered {
                retry_at: Some(_), ..
            } => "retry",
            DeliveryAttempt::NotDelivered { retry_at: None, .. } => "failed",
        };
        if let DeliveryAttempt::NotDelivered { error, .. } = &attempt {
            tracing::info!(
                delivery = delivery.id,
                event = %delivery.event_id,
                r#type = delivery.kind.as_str(),
                attempts = delivery.attempts + 1,
                %error,
                outcome,
                "a webhook delivery failed"
            );
        }
        let store = &self.broker.0.store;
        match store
            .record_attempt(delivery.id, holder, attempt, now)
            .await
        {
            Ok(true) => {}
            // Queued again, or its claim ran out and another took it: theirs to record.
            Ok(false) => tracing::debug!(delivery = delivery.id, "a delivery's claim was lost"),
            // Not recorded: the claim runs out and it is attempted again (at least once).
            Err(e) => tracing::warn!(error = %e, "could not record a webhook delivery attempt"),
        }
        metrics::counter!("refreshd_webhook_deliveries_total", "outcome" => outcome).increment(1);
    }

    /// POSTs `delivery` signed; the 2xx status it was answered with, else the status (if
    /// answered) and why, in words without the endpoint's URL (it may hold a secret).
    async fn post(&self, delivery: &Delivery) -> Result<i64, (Option<i64>, String)> {
        // The wall clock, not the broker's: receivers check it against theirs.
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signature = sign(
            &self.secret,
            &delivery.event_id,
            timestamp,
            &delivery.payload,
        );
        let sent = self
            .http
            .post(&delivery.endpoint)
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = i64::from(response.status().as_u16());
                if response.status().is_success() {
                    Ok(status)
                } else {
                    Err((Some(status), format!("answered {status}")))
                }
            }
            Err(e) if e.is_timeout() => Err((None, "timed out".into())),
            Err(e) if e.is_connect() => Err((None, "could not connect".into())),
            Err(e) => Err((None, format!("the request failed: {}", e.without_url()))),
        }
    }
}
