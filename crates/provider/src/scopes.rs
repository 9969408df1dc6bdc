//! The scopes a client asks for, bounded: one rule for the authorize request and the device
//! flow's start.

use refreshd_core::Scopes;

/// At most this many scopes of at most this many bytes each.
const MAX_SCOPES: usize = 50;
const MAX_SCOPE_LEN: usize = 200;

/// What a refused request for scopes is told.
pub const TOO_MANY: &str = "Too many scopes, or a scope too long.";

/// `raw` (space- or comma-separated) as scopes, or `None` when it asks for more than 50 or
/// one longer than 200 bytes. The length is checked before parsing, which removes duplicates
/// in quadratic time.
pub fn requested(raw: &str) -> Option<Scopes> {
    if raw.len() > MAX_SCOPES * (MAX_SCOPE_LEN + 1) {
        return None;
    }
    let scopes = Scopes::parse(raw);
    let within = scopes.as_slice().len() <= MAX_SCOPES
        && scopes.as_slice().iter().all(|s| s.len() <= MAX_SCOPE_LEN);
    within.then_some(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_scopes_of_two_hundred_bytes_at_most() {
        let many = |n: usize, len: usize| {
            (0..n)
                .map(|i| format!("{i:0len$}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(requested(&many(50, 200)).unwrap().as_slice().len(), 50);
        assert!(requested(&many(51, 3)).is_none());
        assert!(requested(&many(1, 201)).is_none());
        assert!(
            requested(&"a ".repeat(40_000)).is_none(),
            "too long to parse"
        );
        assert_eq!(requested("").unwrap().as_slice().len(), 0);
    }
}
