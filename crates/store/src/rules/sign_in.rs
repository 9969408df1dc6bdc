//! How sign-in attempts are counted, alike in every adapter.

/// How a login is kept in the attempt counts: lowercased, as logins are compared. `None` for
/// the empty login, which no user has (and which keys an address's own count).
pub fn attempt_login(login: &str) -> Option<String> {
    Some(login.to_lowercase()).filter(|l| !l.is_empty())
}
