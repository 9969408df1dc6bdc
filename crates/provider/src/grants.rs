//! Token grants counted by outcome for `/metrics`: `refreshd_grants_total{dialect, grant_type,
//! outcome}`.

use refreshd_core::Dialect;

pub(crate) fn count(dialect: Dialect, grant_type: &'static str, outcome: &'static str) {
    metrics::counter!(
        "refreshd_grants_total",
        "dialect" => dialect.as_str(),
        "grant_type" => grant_type,
        "outcome" => outcome
    )
    .increment(1);
}
