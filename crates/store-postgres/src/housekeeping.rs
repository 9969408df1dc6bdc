//! The sweep in PostgreSQL: `rules::sweep`'s plan, run in one transaction by one instance at a
//! time.

use async_trait::async_trait;
use refreshd_core::Timestamp;
use refreshd_store::rules::{Deletion, SweepPlan};
use refreshd_store::{Housekeeping, StoreError, Swept};

use super::{Pg, PostgresStore, execute};

/// Only one instance sweeps a schema at a time; the others skip their turn. The lock is
/// (this constant, a hash of the schema's name), so deployments sharing a database in
/// different schemas do not hold each other up.
const SWEEP_LOCK: i32 = 0x7266_7377;

/// A deletion's statement: `$1` is the moment rows must be due by (`Deletion::due_by`), `$2` its limit where it has one.
fn deletion_sql(deletion: Deletion) -> &'static str {
    match deletion {
        Deletion::Codes => "DELETE FROM codes WHERE redeemed OR expires_at <= $1",
        Deletion::Sessions => "DELETE FROM sessions WHERE expires_at <= $1",
        Deletion::WebSessions => "DELETE FROM web_sessions WHERE expires_at <= $1",
        Deletion::Replays => "DELETE FROM replays WHERE expires_at <= $1",
        Deletion::Leases => "DELETE FROM leases WHERE expires_at <= $1",
        Deletion::DeadPairs => {
            "DELETE FROM token_pairs WHERE id IN (
                 SELECT id FROM token_pairs WHERE dead_after <= $1 LIMIT $2)"
        }
        Deletion::SignInAttempts => {
            "DELETE FROM sign_in_attempts WHERE (address, login) IN (
                 SELECT address, login FROM sign_in_attempts WHERE expires_at <= $1 LIMIT $2)"
        }
        Deletion::Deliveries => {
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries WHERE forget_at <= $1 LIMIT $2)"
        }
        Deletion::DeviceCodes => {
            "DELETE FROM device_codes WHERE device_digest IN (
                 SELECT device_digest FROM device_codes WHERE expires_at <= $1 LIMIT $2)"
        }
    }
}

/// The last pair of the walk's next stretch created before the grace window: `$1` the walk's
/// start, `$2` its stretch, `$3` the window's start.
const WALK_UNTIL: &str = "SELECT max(id) FROM (SELECT id, created_at FROM token_pairs
                                          WHERE id > $1 ORDER BY id LIMIT $2) AS next
                          WHERE created_at < $3";

/// Forgets the sealed answers of pairs `$1` (exclusive) to `$2`.
const FORGET_SEALED: &str = "UPDATE token_pairs SET replay_sealed = NULL
                             WHERE id > $1 AND id <= $2 AND replay_sealed IS NOT NULL";

#[async_trait]
impl Housekeeping for PostgresStore {
    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError> {
        let plan = SweepPlan::new(now, grace_window_secs, &self.swept_up_to);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        let locked: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))",
                &[&SWEEP_LOCK],
            )
            .await
            .map_err(Pg)?
            .get(0);
        if !locked {
            return Ok(Swept::default());
        }
        let mut deleted = Vec::with_capacity(Deletion::ALL.len());
        for deletion in Deletion::ALL {
            let sql = deletion_sql(deletion);
            let due_by = deletion.due_by(plan.now);
            let n = match deletion.limit() {
                Some(limit) => execute(&tx, sql, &[&due_by, &limit]).await?,
                None => execute(&tx, sql, &[&due_by]).await?,
            };
            deleted.push((deletion, n));
        }
        let until: Option<i64> = tx
            .query_one(
                WALK_UNTIL,
                &[&plan.walk_from, &plan.stretch, &plan.sealed_before],
            )
            .await
            .map_err(Pg)?
            .get(0);
        let forgotten = match until {
            Some(until) => execute(&tx, FORGET_SEALED, &[&plan.walk_from, &until]).await?,
            None => 0,
        };
        tx.commit().await.map_err(Pg)?;
        self.swept_up_to.advance(until);
        Ok(plan.swept(&deleted, forgotten))
    }
}
