//! The redirect URIs an app registers, and which URIs an authorize request may send a code
//! to.

use refreshd_core::AppKind;
use refreshd_store::App;
use url::Url;

/// At most this many redirect URIs per app, of at most this many bytes each.
const MAX_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RedirectUriError(String);

/// Checks redirect URIs given one per line (blank lines ignored) and returns them one per
/// line: 1 to 10 absolute URLs without a fragment or credentials, either `http`/`https` with
/// a host, or a native app's private-use scheme in reverse-domain form (`com.example.app:/cb`,
/// RFC 8252 §7.1). They are kept as given: matching compares them as registered.
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
        let url = Url::parse(uri).map_err(|_| bad("is not an absolute URL."))?;
        let web = matches!(url.scheme(), "http" | "https") && url.host().is_some();
        if !web && !url.scheme().contains('.') {
            return Err(bad(
                "must be an http or https URL with a host, or use a reverse-domain scheme \
                 such as com.example.app:/callback.",
            ));
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

/// Whether an authorize request may send a code to `given`: one of the app's redirect URIs
/// exactly, or one that differs only as its dialect allows:
/// - a loopback URI (`http` on 127.0.0.1, `[::1]` or `localhost`) on any port, as both GitHub
///   and Google allow native apps (RFC 8252 §7.3);
/// - for a GitHub OAuth App, a path below a registered one (GitHub's subdirectory rule).
pub fn allowed(app: &App, given: &str) -> bool {
    let Ok(given_url) = Url::parse(given) else {
        return false;
    };
    app.redirect_uris().any(|registered| {
        registered == given
            || Url::parse(registered).is_ok_and(|registered| {
                loopback_match(&registered, &given_url)
                    || (app.kind == AppKind::OAuthApp && below(&registered, &given_url))
            })
    })
}

fn loopback_match(registered: &Url, given: &Url) -> bool {
    let loopback = |url: &Url| {
        url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    };
    loopback(registered)
        && loopback(given)
        && registered.host_str() == given.host_str()
        && registered.path() == given.path()
        && registered.query() == given.query()
        && given.fragment().is_none()
        && given.username().is_empty()
        && given.password().is_none()
}

/// A path below the registered one: the extra segments are plain names (unreserved
/// characters only), so no encoded slash, backslash, `;` or `..` can make a server resolve
/// it to somewhere else.
fn below(registered: &Url, given: &Url) -> bool {
    let path = registered.path().trim_end_matches('/');
    registered.scheme() == given.scheme()
        && registered.host_str() == given.host_str()
        && registered.port_or_known_default() == given.port_or_known_default()
        && registered.query() == given.query()
        && given.fragment().is_none()
        && given.username().is_empty()
        && given.password().is_none()
        && (given.path() == registered.path()
            || given
                .path()
                .strip_prefix(&format!("{path}/"))
                .is_some_and(|rest| {
                    rest.split('/').all(|segment| {
                        segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                            && segment != "."
                            && segment != ".."
                    })
                }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use refreshd_core::{AppId, ClientId, Timestamp, TokenDigest};

    fn app(kind: AppKind, uris: &str) -> App {
        App {
            id: AppId(1),
            client_id: ClientId::generate(kind),
            name: "app".into(),
            kind,
            redirect_uri: uris.into(),
            secret_digest: TokenDigest::of("secret"),
            expiring_tokens: true,
            device_flow: false,
            owner_id: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn matches_exactly_or_as_the_dialect_allows() {
        let github = app(
            AppKind::GithubApp,
            "https://a.example/cb\nhttp://127.0.0.1:8000/cb",
        );
        assert!(allowed(&github, "https://a.example/cb"));
        assert!(
            !allowed(&github, "https://a.example/cb/deeper"),
            "GitHub Apps: exact"
        );
        assert!(!allowed(&github, "https://a.example/cb?x=1"));
        assert!(!allowed(&github, "https://a.example:444/cb"));
        assert!(
            allowed(&github, "http://127.0.0.1:53123/cb"),
            "loopback: any port"
        );
        assert!(allowed(&github, "http://127.0.0.1/cb"));
        assert!(!allowed(&github, "http://127.0.0.1:53123/other"));
        assert!(
            !allowed(&github, "http://localhost:53123/cb"),
            "same loopback host"
        );

        let oauth = app(AppKind::OAuthApp, "https://a.example/path");
        assert!(allowed(&oauth, "https://a.example/path/subdir/other"));
        assert!(!allowed(&oauth, "https://a.example/pathological"));
        assert!(!allowed(&oauth, "https://a.example/bar"));
        assert!(!allowed(&oauth, "https://a.example/"));
        assert!(!allowed(&oauth, "https://a.example:8080/path"));
        assert!(!allowed(&oauth, "https://oauth.a.example/path"));
        assert!(!allowed(&oauth, "http://a.example/path/x"), "same scheme");
        assert!(!allowed(&oauth, "https://a.example/path/x#frag"));
        for traversal in [
            "https://a.example/path/..%2Fopen-redirect",
            "https://a.example/path/%2e%2e%2fx",
            "https://a.example/path/..%5Cx",
            "https://a.example/path/..;/x",
            "https://a.example/path/x%00",
            "https://u:p@a.example/path/x",
        ] {
            assert!(!allowed(&oauth, traversal), "{traversal}");
        }
        assert!(!allowed(&github, "http://u:p@127.0.0.1:5/cb"));

        let native = app(AppKind::GoogleClient, "com.example.app:/oauth2redirect");
        assert!(allowed(&native, "com.example.app:/oauth2redirect"));
        assert!(!allowed(&native, "com.example.app:/other"));
    }

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
        assert!(redirect_uris("com.example.app:/oauth2redirect").is_ok());
        for bad in [
            "",
            "/relative/path",
            "javascript:alert(1)",
            "data:text/html,hi",
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
