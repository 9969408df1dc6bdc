//! OAuth scopes: parsed from the comma- or space-separated lists clients send.

/// A normalised scope list: deduplicated, in the order first given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Accepts GitHub's comma-separated form and RFC 6749's space-separated form.
    pub fn parse(raw: &str) -> Self {
        let mut scopes: Vec<String> = Vec::new();
        for scope in raw
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        Self(scopes)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// GitHub's wire form: comma-separated, no spaces.
    pub fn to_github(&self) -> String {
        self.0.join(",")
    }

    /// RFC 6749's wire form: space-separated.
    pub fn to_spaced(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_commas_and_spaces_and_drops_duplicates() {
        let s = Scopes::parse("repo, gist user repo,,");
        assert_eq!(s.as_slice(), ["repo", "gist", "user"]);
        assert_eq!(s.to_github(), "repo,gist,user");
        assert_eq!(Scopes::parse("").to_github(), "");
    }
}
