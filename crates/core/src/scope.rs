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

    /// Whether every scope of `other` is one of these.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.iter().all(|scope| self.0.contains(scope))
    }

    /// These scopes followed by those of `other` not already among them.
    pub fn union(&self, other: &Scopes) -> Scopes {
        let mut all = self.0.clone();
        all.extend(other.0.iter().filter(|s| !self.0.contains(s)).cloned());
        Self(all)
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

    #[test]
    fn covers_and_union() {
        let approved = Scopes::parse("repo,user");
        assert!(approved.covers(&Scopes::parse("user")));
        assert!(approved.covers(&Scopes::parse("")));
        assert!(!approved.covers(&Scopes::parse("user gist")));
        assert_eq!(
            approved.union(&Scopes::parse("gist repo")).to_github(),
            "repo,user,gist"
        );
    }
}
