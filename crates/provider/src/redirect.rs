//! Checking the redirect URIs an app registers: where codes may be sent.

/// At most this many redirect URIs per app, of at most this many bytes each.
const MAX_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RedirectUriError(String);

/// Checks redirect URIs given one per line (blank lines ignored) and returns them one per
/// line: 1 to 10 absolute `http` or `https` URLs without a fragment or credentials. Matching
/// is exact, so they are kept as given.
pub fn redirect_uris(text: &str) -> Result<String, RedirectUriError> {
    let uris: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if uris.is_empty() {
        return Err(RedirectUriError("Give at least one redirect URI.".into()));
    }
    if uris.len() > MAX_URIS {
        return Err(RedirectUriError(format!(
            "At most {MAX_URIS} redirect URIs can be registered."
        )));
    }
    for uri in &uris {
        let bad = |why: &str| RedirectUriError(format!("{uri:?} {why}"));
        if uri.len() > MAX_URI_LEN {
            return Err(bad("is too long."));
        }
        let url = url::Url::parse(uri).map_err(|_| bad("is not an absolute URL."))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad("must be an http or https URL with a host."));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a fragment (#…)."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials."));
        }
    }
    Ok(uris.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_good_uris_one_per_line() {
        let text = " https://app.example/cb \n\nhttp://127.0.0.1:8080/callback?x=1\n";
        assert_eq!(
            redirect_uris(text).unwrap(),
            "https://app.example/cb\nhttp://127.0.0.1:8080/callback?x=1"
        );
    }

    #[test]
    fn refuses_what_cannot_be_a_safe_redirect() {
        for bad in [
            "",
            "/relative/path",
            "javascript:alert(1)",
            "ftp://example.com/x",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
        ] {
            assert!(redirect_uris(bad).is_err(), "{bad:?} was accepted");
        }
        let many = "https://a.example/\n".repeat(11);
        assert!(redirect_uris(&many).is_err());
    }
}
