//! Provider users' logins: GitHub's rules for a username.

/// A login that follows GitHub's rules: 1 to 39 ASCII letters, digits or hyphens, not
/// starting with a hyphen.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    /// The login, if `raw` follows GitHub's rules.
    pub fn parse(raw: &str) -> Option<Self> {
        is_valid_login(raw).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Login {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `login` follows GitHub's rules for a username (see `Login`).
fn is_valid_login(login: &str) -> bool {
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
            assert_eq!(Login::parse(bad), None);
        }
        assert_eq!(Login::parse("octocat").unwrap().as_str(), "octocat");
    }
}
