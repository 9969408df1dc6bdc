//! Provider users' logins: GitHub's rules for a username.

/// 1 to 39 ASCII letters, digits or hyphens, not starting with a hyphen.
pub fn is_valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !login.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_githubs_username_rules() {
        assert!(is_valid_login("octocat") && is_valid_login("mona-lisa"));
        for bad in ["", "-octo", "octo cat", "octo_cat", &"a".repeat(40)] {
            assert!(!is_valid_login(bad), "{bad:?}");
        }
    }
}
