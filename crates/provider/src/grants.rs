//! Token grants counted by outcome for `/metrics`: `refreshd_grants_total{dialect, grant_type,
//! outcome}`.

use refreshd_core::Dialect;

pub(crate) fn count(dialect: Dialect, grant_type: &'static str, outcome: &'static str) {
    let dialect = match dialect {
        Dialect::Github => "github",
        Dialect::Google => "google",
    };
    metrics::counter!(
        "refreshd_grants_total",
        "dialect" => dialect,
        "grant_type" => grant_type,
        "outcome" => outcome
    )
    .increment(1);
}
