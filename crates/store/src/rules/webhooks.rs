//! The rules of announcing connections' changes by webhook, as plain functions: which event a
//! change causes (`on_save`, `on_failure`), when a failed delivery is attempted again
//! (`RetrySchedule`), and how long a finished delivery is kept (`forget_at`).

use refreshd_core::{ConnectionStatus, Timestamp};

use crate::{DeliveryAttempt, Failure, WebhookEventKind};

/// The event a refresh saved on a connection that was `before` causes: `recovered` if it was
/// failing (broken, or backing off after a failed refresh), else `refreshed`.
pub fn on_save(before: ConnectionStatus) -> WebhookEventKind {
    match before {
        ConnectionStatus::Broken | ConnectionStatus::BackingOff => WebhookEventKind::Recovered,
        ConnectionStatus::Live => WebhookEventKind::Refreshed,
    }
}

/// The event a failure recorded on a connection that was `before` causes: `broken` when the
/// failure breaks a connection that was not broken yet; a failure that backs off announces
/// nothing.
pub fn on_failure(before: ConnectionStatus, failure: &Failure) -> Option<WebhookEventKind> {
    let breaks = matches!(failure, Failure::Broken { .. });
    (breaks && before != ConnectionStatus::Broken).then_some(WebhookEventKind::Broken)
}

/// How long a delivered delivery is kept (for `refreshd webhook list`) before the sweep
/// deletes it.
pub const DELIVERED_KEPT_SECS: i64 = 7 * 24 * 3600;
/// How long a failed delivery is kept, to be redelivered by hand, before the sweep deletes it.
pub const FAILED_KEPT_SECS: i64 = 30 * 24 * 3600;

/// When the sweep may delete a delivery after `attempt`, made at `now`; `None` while it is
/// still pending.
pub fn forget_at(attempt: &DeliveryAttempt, now: Timestamp) -> Option<Timestamp> {
    match attempt {
        DeliveryAttempt::Delivered { .. } => Some(now.plus_secs(DELIVERED_KEPT_SECS)),
        DeliveryAttempt::NotDelivered { retry_at: None, .. } => {
            Some(now.plus_secs(FAILED_KEPT_SECS))
        }
        DeliveryAttempt::NotDelivered { .. } => None,
    }
}

/// The waits between a delivery's attempts, after the first, which is made at once. The
/// default follows the Standard Webhooks recommendation (Svix's schedule) stretched to about
/// three days: seconds, then minutes, then hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failed attempt, the second, …; after the last, the delivery
    /// fails.
    pub waits_secs: Vec<u64>,
}

impl Default for RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: ten attempts over 75 hours.
    fn default() -> Self {
        Self {
            waits_secs: vec![5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400],
        }
    }
}

impl RetrySchedule {
    /// When to attempt again after the `attempts`-th attempt failed at `now`; `None`: that
    /// was the last, the delivery fails. `jitter` in [0, 1) moves the wait by up to a tenth
    /// either way, so deliveries that failed together do not return together; never less than
    /// a second.
    pub fn retry_at(&self, attempts: i64, now: Timestamp, jitter: f64) -> Option<Timestamp> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        let wait = *self.waits_secs.get(index)? as f64;
        let jittered = wait * (0.9 + 0.2 * jitter.clamp(0.0, 1.0));
        Some(now.plus_secs((jittered.round() as i64).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_after_failing_recovers_and_otherwise_refreshes() {
        assert_eq!(
            on_save(ConnectionStatus::Broken),
            WebhookEventKind::Recovered
        );
        assert_eq!(
            on_save(ConnectionStatus::BackingOff),
            WebhookEventKind::Recovered
        );
        assert_eq!(on_save(ConnectionStatus::Live), WebhookEventKind::Refreshed);
    }

    #[test]
    fn only_breaking_a_connection_announces_a_failure() {
        let broken = Failure::Broken {
            error: "bad_refresh_token".into(),
        };
        let backing_off = Failure::BackingOff {
            error: "502".into(),
            retry_after: Timestamp(10),
        };
        assert_eq!(
            on_failure(ConnectionStatus::Live, &broken),
            Some(WebhookEventKind::Broken)
        );
        assert_eq!(
            on_failure(ConnectionStatus::BackingOff, &broken),
            Some(WebhookEventKind::Broken)
        );
        assert_eq!(on_failure(ConnectionStatus::Broken, &broken), None);
        assert_eq!(on_failure(ConnectionStatus::Live, &backing_off), None);
    }

    #[test]
    fn retries_follow_the_schedule_then_fail() {
        let schedule = RetrySchedule::default();
        let now = Timestamp(1000);
        assert_eq!(schedule.retry_at(1, now, 0.5), Some(Timestamp(1005)));
        assert_eq!(schedule.retry_at(2, now, 0.5), Some(Timestamp(1300)));
        assert_eq!(
            schedule.retry_at(9, now, 0.5),
            Some(Timestamp(1000 + 86_400))
        );
        assert_eq!(schedule.retry_at(10, now, 0.5), None);
        assert_eq!(schedule.retry_at(0, now, 0.5), None);
        // Jitter stays within a tenth either way.
        assert_eq!(schedule.retry_at(2, now, 0.0), Some(Timestamp(1270)));
        assert_eq!(schedule.retry_at(2, now, 1.0), Some(Timestamp(1330)));
        let total: u64 = schedule.waits_secs.iter().sum();
        assert!((3 * 24 * 3600..4 * 24 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn finished_deliveries_are_kept_a_while() {
        let now = Timestamp(0);
        let delivered = DeliveryAttempt::Delivered { status: 204 };
        let retried = DeliveryAttempt::NotDelivered {
            status: Some(500),
            error: "500".into(),
            retry_at: Some(Timestamp(5)),
        };
        let failed = DeliveryAttempt::NotDelivered {
            status: None,
            error: "refused".into(),
            retry_at: None,
        };
        assert_eq!(
            forget_at(&delivered, now),
            Some(Timestamp(DELIVERED_KEPT_SECS))
        );
        assert_eq!(forget_at(&retried, now), None);
        assert_eq!(forget_at(&failed, now), Some(Timestamp(FAILED_KEPT_SECS)));
    }
}
