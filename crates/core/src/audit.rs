//! The audit log's target: security events are logged under it, each with a stable `event`
//! name (`token.reuse_detected`, `app.secret_reset`, `signin.locked`, `app.authorized`,
//! `app.revoked`) and never a token, code, password or secret.

/// `tracing` target of every security event.
pub const AUDIT: &str = "refreshd::audit";
