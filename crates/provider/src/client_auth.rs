//! Authenticating an OAuth client by its client_id and client_secret.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use refreshd_core::{ClientId, ClientSecret, Dialect, TokenDigest};
use refreshd_store::{App, StoreError};

use crate::Provider;

/// Presented client credentials. The secret is only ever digested.
pub struct Credentials {
    pub client_id: String,
    pub secret: ClientSecret,
}

/// The `Authorization` header, split into its scheme and credentials.
pub enum Authorization<'a> {
    Absent,
    /// Not `scheme credentials` in visible ASCII.
    Malformed,
    Scheme(&'a str, &'a str),
}

pub fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Authorization::Absent;
    };
    match value.to_str().ok().and_then(|v| v.trim().split_once(' ')) {
        Some((scheme, credentials)) => Authorization::Scheme(scheme, credentials.trim()),
        None => Authorization::Malformed,
    }
}

/// The token of `Authorization: <scheme> <token>` when the scheme is one of `schemes`
/// (matched in any case).
pub fn token_of<'a>(headers: &'a HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    match authorization(headers) {
        Authorization::Scheme(scheme, token)
            if schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) =>
        {
            Some(token)
        }
        _ => None,
    }
}

/// What the `Authorization` header says about HTTP Basic credentials.
pub enum Basic {
    Absent,
    Malformed,
    Present(Credentials),
}

/// Reads HTTP Basic credentials; the scheme is matched case-insensitively (clients send `basic`).
pub fn basic(headers: &HeaderMap) -> Basic {
    let (scheme, encoded) = match authorization(headers) {
        Authorization::Absent => return Basic::Absent,
        Authorization::Malformed => return Basic::Malformed,
        Authorization::Scheme(scheme, credentials) => (scheme, credentials),
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        // Another scheme (a stray Bearer, say) carries no client credentials.
        return Basic::Absent;
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Basic::Malformed;
    };
    match (form_decode(id), form_decode(secret)) {
        (Some(client_id), Some(secret)) => Basic::Present(Credentials {
            client_id,
            secret: ClientSecret::from_presented(&secret),
        }),
        _ => Basic::Malformed,
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
fn form_decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Why credentials did not authenticate an app, for dialects that tell the cases apart.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No app of this dialect has that client id.
    UnknownClient,
    WrongSecret,
}

/// The app of `dialect` these credentials belong to.
pub async fn authenticate(
    provider: &Provider,
    credentials: &Credentials,
    dialect: Dialect,
) -> Result<Result<App, Refusal>, StoreError> {
    let presented = credentials.secret.digest();
    let Some(app) = find_client(provider, &credentials.client_id, dialect).await? else {
        return Ok(Err(Refusal::UnknownClient));
    };
    // TokenDigest compares in constant time.
    Ok(if app.secret_digest == presented {
        Ok(app)
    } else {
        Err(Refusal::WrongSecret)
    })
}

/// The refresh grant's client authentication, the one place its rule lives: the app's secret,
/// except that a token family started through the device flow is a public client's and
/// refreshes with the client id alone, as GitHub documents. A secret that is sent (non-empty)
/// is checked all the same, so a wrong one is refused whatever the family.
pub async fn authenticate_refresh(
    provider: &Provider,
    credentials: &Credentials,
    refresh: Option<TokenDigest>,
    dialect: Dialect,
) -> Result<Result<App, Refusal>, StoreError> {
    if !credentials.secret.expose().is_empty() {
        return authenticate(provider, credentials, dialect).await;
    }
    let Some(app) = find_client(provider, &credentials.client_id, dialect).await? else {
        return Ok(Err(Refusal::UnknownClient));
    };
    let public = match refresh {
        Some(refresh) => provider.store.public_family_of(refresh, app.id).await?,
        None => false,
    };
    Ok(if public {
        Ok(app)
    } else {
        Err(Refusal::WrongSecret)
    })
}

/// The app of `dialect` with this client id (`None` for a malformed one): a public client's
/// (the device flow), or the one whose secret `authenticate` checks.
pub async fn find_client(
    provider: &Provider,
    client_id: &str,
    dialect: Dialect,
) -> Result<Option<App>, StoreError> {
    let Some(client_id) = ClientId::parse(client_id) else {
        return Ok(None);
    };
    let app = provider.store.find_app(&client_id).await?;
    Ok(app.filter(|app| app.kind.dialect() == dialect))
}

/// The client id of a request from a public client: HTTP Basic's user part (its password is
/// not looked at), else the `client_id` parameter.
pub fn public_client_id(headers: &HeaderMap, params: &crate::params::Params) -> String {
    match basic(headers) {
        Basic::Present(credentials) => credentials.client_id,
        Basic::Absent | Basic::Malformed => params.get("client_id").unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn reads_basic_in_any_case() {
        for scheme in ["Basic", "basic", "BASIC"] {
            let value = format!("{scheme} {}", STANDARD.encode("id:sec:ret"));
            let Basic::Present(c) = basic(&with_auth(&value)) else {
                panic!("{scheme} not read")
            };
            assert_eq!(c.client_id, "id");
            assert_eq!(c.secret.expose(), "sec:ret");
        }
    }

    #[test]
    fn undoes_the_form_encoding_rfc_6749_asks_for() {
        let value = format!("Basic {}", STANDARD.encode("my+id%3A1:s%25cret"));
        let Basic::Present(c) = basic(&with_auth(&value)) else {
            panic!("not read")
        };
        assert_eq!(c.client_id, "my id:1");
        assert_eq!(c.secret.expose(), "s%cret");
    }

    #[test]
    fn tells_absent_from_malformed() {
        assert!(matches!(basic(&HeaderMap::new()), Basic::Absent));
        assert!(matches!(basic(&with_auth("Bearer abc")), Basic::Absent));
        assert!(matches!(basic(&with_auth("Basic")), Basic::Malformed));
        assert!(matches!(basic(&with_auth("Basic !!!")), Basic::Malformed));
        assert!(matches!(
            basic(&with_auth(&format!("Basic {}", STANDARD.encode("nocolon")))),
            Basic::Malformed
        ));
    }
}
