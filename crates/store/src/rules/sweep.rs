//! The sweep's rules: what is deleted when, and how much one call does. Each adapter runs
//! the plan with its own SQL, in one transaction.

use std::sync::atomic::{AtomicI64, Ordering};

use refreshd_core::Timestamp;

use crate::Swept;

/// How many token pairs (or attempt counts) one sweep looks at, or deletes, at most.
pub const SWEEP_STRETCH: i64 = 20_000;

/// What a sweep deletes, in the order it deletes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Codes redeemed or expired: none can be redeemed again.
    Codes,
    /// Broker sessions past their expiry.
    Sessions,
    /// Signed-in browser sessions past their expiry.
    WebSessions,
    /// Broker replay entries past their expiry.
    Replays,
    /// Broker leases past their expiry: their holders are gone.
    Leases,
    /// Token pairs all of whose tokens have expired (their `dead_after` has passed).
    DeadPairs,
    /// Sign-in attempt counts whose window has ended.
    SignInAttempts,
    /// Webhook deliveries delivered or failed long enough ago (`rules::webhooks::forget_at`).
    Deliveries,
    /// Device authorizations an hour past their expiry: until then a late poll still hears
    /// `expired_token`, not that the code is unknown.
    DeviceCodes,
}

/// How long a device authorization is kept after it expires.
pub const DEVICE_CODES_KEPT_SECS: i64 = 3600;

impl Deletion {
    pub const ALL: [Deletion; 9] = [
        Deletion::Codes,
        Deletion::Sessions,
        Deletion::WebSessions,
        Deletion::Replays,
        Deletion::Leases,
        Deletion::DeadPairs,
        Deletion::SignInAttempts,
        Deletion::Deliveries,
        Deletion::DeviceCodes,
    ];

    /// The moment rows must be due at or before to be deleted by a sweep at `now`.
    pub fn due_by(self, now: i64) -> i64 {
        match self {
            Deletion::DeviceCodes => now - DEVICE_CODES_KEPT_SECS,
            _ => now,
        }
    }

    /// At most how many rows one sweep deletes; `None`: all that are due. The big tables are
    /// swept a stretch at a time, so no sweep holds the database for long.
    pub fn limit(self) -> Option<i64> {
        match self {
            Deletion::DeadPairs
            | Deletion::SignInAttempts
            | Deletion::Deliveries
            | Deletion::DeviceCodes => Some(SWEEP_STRETCH),
            _ => None,
        }
    }
}

/// One sweep at a moment: rows due at or before `now` are deleted, and sealed grace-replay
/// answers of pairs created before `sealed_before` are forgotten. Pairs are appended in time
/// order, so that walks ids upwards from `walk_from` (exclusive), looking at `stretch` pairs
/// at most (ids have gaps where dead pairs were deleted), never scanning the whole table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepPlan {
    pub now: i64,
    pub sealed_before: i64,
    pub walk_from: i64,
    pub stretch: i64,
}

impl SweepPlan {
    /// The sweep at `now` of a store whose walk has reached `cursor`.
    pub fn new(now: Timestamp, grace_window_secs: i64, cursor: &SweepCursor) -> Self {
        SweepPlan {
            now: now.secs(),
            sealed_before: now.secs() - grace_window_secs,
            walk_from: cursor.position(),
            stretch: SWEEP_STRETCH,
        }
    }

    /// What the sweep removed, from how many rows each deletion removed and how many sealed
    /// answers it forgot.
    pub fn swept(&self, deleted: &[(Deletion, u64)], forgotten: u64) -> Swept {
        let count = |of: Deletion| {
            deleted
                .iter()
                .filter(|(d, _)| *d == of)
                .map(|(_, n)| *n as usize)
                .sum()
        };
        Swept {
            codes: count(Deletion::Codes),
            replays: forgotten as usize,
            tokens: count(Deletion::DeadPairs),
        }
    }
}

/// How far the walk over sealed answers has come: pairs up to this id hold no sealed answer
/// older than the grace window. Kept in memory; after a restart the walk starts over.
#[derive(Debug, Default)]
pub struct SweepCursor(AtomicI64);

impl SweepCursor {
    pub fn position(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves the walk up to `until` (the last pair it forgot answers up to, if any); called
    /// only once the sweep is durable.
    pub fn advance(&self, until: Option<i64>) {
        if let Some(until) = until {
            self.0.store(until, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_walks_from_the_cursor_up_to_the_grace_window() {
        let cursor = SweepCursor::default();
        cursor.advance(Some(41));
        cursor.advance(None);
        let plan = SweepPlan::new(Timestamp(1000), 10, &cursor);
        assert_eq!(
            plan,
            SweepPlan {
                now: 1000,
                sealed_before: 990,
                walk_from: 41,
                stretch: SWEEP_STRETCH,
            }
        );
        let deleted = [
            (Deletion::Codes, 2),
            (Deletion::Leases, 5),
            (Deletion::DeadPairs, 3),
        ];
        let swept = plan.swept(&deleted, 4);
        assert_eq!((swept.codes, swept.tokens, swept.replays), (2, 3, 4));
    }

    #[test]
    fn only_the_big_tables_are_bounded() {
        let bounded: Vec<_> = Deletion::ALL
            .into_iter()
            .filter(|d| d.limit().is_some())
            .collect();
        assert_eq!(
            bounded,
            [
                Deletion::DeadPairs,
                Deletion::SignInAttempts,
                Deletion::Deliveries,
                Deletion::DeviceCodes
            ]
        );
        assert_eq!(Deletion::DeviceCodes.due_by(100_000), 100_000 - 3600);
        assert_eq!(Deletion::Codes.due_by(100_000), 100_000);
    }
}
