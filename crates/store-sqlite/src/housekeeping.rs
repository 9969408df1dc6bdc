//! The sweep in SQLite: `rules::sweep`'s plan, run on the single writer in one transaction.

use async_trait::async_trait;
use refreshd_core::Timestamp;
use refreshd_store::rules::{Deletion, SweepPlan};
use refreshd_store::{Housekeeping, StoreError, Swept};
use rusqlite::params;

use super::{SqliteStore, unavailable};

/// A deletion's statement: `?1` is the moment rows must be due by (`Deletion::due_by`), `?2` its limit where it has one.
fn deletion_sql(deletion: Deletion) -> &'static str {
    match deletion {
        Deletion::Codes => "DELETE FROM codes WHERE redeemed = 1 OR expires_at <= ?1",
        Deletion::Sessions => "DELETE FROM sessions WHERE expires_at <= ?1",
        Deletion::WebSessions => "DELETE FROM web_sessions WHERE expires_at <= ?1",
        Deletion::Replays => "DELETE FROM replays WHERE expires_at <= ?1",
        Deletion::Leases => "DELETE FROM leases WHERE expires_at <= ?1",
        Deletion::DeadPairs => {
            "DELETE FROM token_pairs WHERE id IN (
                 SELECT id FROM token_pairs WHERE dead_after <= ?1 LIMIT ?2)"
        }
        Deletion::SignInAttempts => {
            "DELETE FROM sign_in_attempts WHERE (address, login) IN (
                 SELECT address, login FROM sign_in_attempts WHERE expires_at <= ?1 LIMIT ?2)"
        }
        Deletion::Deliveries => {
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE forget_at <= ?1 LIMIT ?2)"
        }
        Deletion::DeviceCodes => {
            "DELETE FROM device_codes WHERE device_digest IN (
                 SELECT device_digest FROM device_codes WHERE expires_at <= ?1 LIMIT ?2)"
        }
    }
}

/// The last pair of the walk's next stretch created before the grace window: `?1` the walk's
/// start, `?2` its stretch, `?3` the window's start.
const WALK_UNTIL: &str = "SELECT max(id) FROM (SELECT id, created_at FROM token_pairs
                                          WHERE id > ?1 ORDER BY id LIMIT ?2)
                          WHERE created_at < ?3";

/// Forgets the sealed answers of pairs `?1` (exclusive) to `?2`.
const FORGET_SEALED: &str = "UPDATE token_pairs SET replay_sealed = NULL
                             WHERE id > ?1 AND id <= ?2 AND replay_sealed IS NOT NULL";

#[async_trait]
impl Housekeeping for SqliteStore {
    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError> {
        let plan = SweepPlan::new(now, grace_window_secs, &self.swept_up_to);
        let (swept, until) = self
            .writer
            .write(move |conn| {
                let mut deleted = Vec::with_capacity(Deletion::ALL.len());
                for deletion in Deletion::ALL {
                    let mut statement = conn
                        .prepare_cached(deletion_sql(deletion))
                        .map_err(unavailable)?;
                    let due_by = deletion.due_by(plan.now);
                    let n = match deletion.limit() {
                        Some(limit) => statement.execute(params![due_by, limit]),
                        None => statement.execute([due_by]),
                    }
                    .map_err(unavailable)?;
                    deleted.push((deletion, n as u64));
                }
                let until: Option<i64> = conn
                    .prepare_cached(WALK_UNTIL)
                    .and_then(|mut s| {
                        let args = params![plan.walk_from, plan.stretch, plan.sealed_before];
                        s.query_row(args, |r| r.get(0))
                    })
                    .map_err(unavailable)?;
                let forgotten = match until {
                    Some(until) => conn
                        .prepare_cached(FORGET_SEALED)
                        .and_then(|mut s| s.execute([plan.walk_from, until]))
                        .map_err(unavailable)?,
                    None => 0,
                };
                Ok((plan.swept(&deleted, forgotten as u64), until))
            })
            .await?;
        // Moved only once the sweep is durable.
        self.swept_up_to.advance(until);
        Ok(swept)
    }
}
