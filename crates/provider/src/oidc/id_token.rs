//! id_tokens in Google's dialect: the claims Google puts in them, signed RS256 with the newest
//! key that signs now, and verified as `/tokeninfo?id_token=` verifies them. jsonwebtoken
//! assembles and parses the JWS; ring signs and verifies (`jws`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use refreshd_core::{KeySealer, Scopes, Timestamp};
use refreshd_store::{SigningKey, User};
use serde::{Deserialize, Serialize};

/// An id_token's lifetime, as Google's: an hour.
pub const ID_TOKEN_SECS: i64 = 3600;

/// The claims, in the JSON types Google's libraries expect (`sub` a string of digits, `iat`
/// and `exp` numbers, `email_verified` a boolean).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub azp: String,
    pub aud: String,
    pub sub: String,
    pub at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// What the grant's scopes let the app know of the user.
    #[serde(flatten)]
    pub identity: Identity,
    pub iat: i64,
    pub exp: i64,
}

/// Whom and what an id_token speaks of.
pub struct Subject<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub scopes: &'a Scopes,
    /// `{public_url}/avatars/{login}`, as `/oauth2/v3/userinfo` answers.
    pub picture: String,
    pub access_token: &'a str,
    /// From the authorize request, on a code exchange only (never on a refresh).
    pub nonce: Option<String>,
}

/// `at_hash` (OIDC Core §3.1.3.6, RS256): base64url of the left half of SHA-256 of the access
/// token's ASCII.
pub fn at_hash(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// `name` split as Google gives it: the first word, and the rest (none for a single word).
pub fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((given, family)) => (Some(given.to_owned()), Some(family.trim().to_owned())),
        None if name.is_empty() => (None, None),
        None => (Some(name.to_owned()), None),
    }
}

/// What a grant's scopes let its app know of the user, as Google's id_token, userinfo and
/// tokeninfo tell it, the one rule for the three: `email` and `email_verified` with the
/// `email` scope (or Google's `…/auth/userinfo.email`) and an address on file; `name`,
/// `given_name`, `family_name` and `picture` with `profile` (or `…/auth/userinfo.profile`),
/// `name` being the login when the user has none.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

impl Identity {
    /// `picture` is `{public_url}/avatars/{login}`.
    pub fn of(user: &User, scopes: &Scopes, picture: String) -> Self {
        let has = |short: &str| {
            let long = format!("https://www.googleapis.com/auth/userinfo.{short}");
            scopes.as_slice().iter().any(|s| *s == short || *s == long)
        };
        let email = has("email").then(|| user.email.clone()).flatten();
        let mut identity = Identity {
            email_verified: email.as_ref().map(|_| true),
            email,
            ..Identity::default()
        };
        if has("profile") {
            let name = user.name.clone().unwrap_or_else(|| user.login.to_string());
            (identity.given_name, identity.family_name) = split_name(&name);
            identity.name = Some(name);
            identity.picture = Some(picture);
        }
        identity
    }
}

impl IdTokenClaims {
    /// `sub` is the user's id, as `/tokeninfo` and `/oauth2/v3/userinfo` answer: numeric and
    /// stable; the rest of what it says of the user is [`Identity::of`] its scopes.
    pub fn new(subject: Subject<'_>, now: Timestamp) -> Self {
        let user = subject.user;
        Self {
            iss: subject.issuer.to_owned(),
            azp: subject.client_id.to_owned(),
            aud: subject.client_id.to_owned(),
            sub: user.id.to_string(),
            at_hash: at_hash(subject.access_token),
            nonce: subject.nonce,
            identity: Identity::of(user, subject.scopes, subject.picture),
            iat: now.secs(),
            exp: now.secs() + ID_TOKEN_SECS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no signing key signs yet")]
    NoKey,
    #[error("signing key {0} does not open under this master key")]
    Unseal(String),
    #[error("cannot sign with key {0}")]
    Sign(String),
}

/// The key that signs now, opened (unsealed, and read by ring to prove it is a key ring signs
/// with; `jws::key_pair` keeps what ring read, so signing does not read it again). Made ready before a code is redeemed, so that nothing about the key can fail
/// once the code is spent: what is left, the signature, fails only if the system's random
/// source does.
pub struct Signer {
    kid: String,
    key: EncodingKey,
}

impl Signer {
    pub fn open(key: &SigningKey, sealer: &KeySealer) -> Result<Self, SignError> {
        let pkcs8 = sealer
            .unseal(&key.kid, &key.sealed_private_key)
            .ok_or_else(|| SignError::Unseal(key.kid.clone()))?;
        super::jws::key_pair(&pkcs8).map_err(|_| SignError::Sign(key.kid.clone()))?;
        Ok(Self {
            kid: key.kid.clone(),
            // `from_rsa_der` takes the bytes as they are: ring's signer reads them as PKCS#8.
            key: EncodingKey::from_rsa_der(&pkcs8),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The compact JWS of `claims`, signed RS256: header `{"typ": "JWT", "alg": "RS256",
    /// "kid"}`. jsonwebtoken assembles it; ring signs (`jws`).
    pub fn sign(&self, claims: &IdTokenClaims) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        super::jws::install();
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|_| SignError::Sign(self.kid.clone()))
    }
}

/// The compact JWS of `claims`, signed RS256 with `key` (see [`Signer::sign`]).
pub fn sign(
    claims: &IdTokenClaims,
    key: &SigningKey,
    sealer: &KeySealer,
) -> Result<String, SignError> {
    Signer::open(key, sealer)?.sign(claims)
}

/// Why an id_token is refused (for the log; every one answers the same to the client).
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("not a JWS of an RS256 header with a kid")]
    Malformed,
    #[error("key {0} is not published")]
    UnknownKid(String),
    #[error("expired at {0}")]
    Expired(i64),
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// A verified id_token: its header and claims.
#[derive(Debug)]
pub struct Verified {
    pub header: Header,
    pub claims: IdTokenClaims,
}

/// Verifies `token` as Google's `/tokeninfo?id_token=` does: RS256, signed by one of `published`
/// (the keys `/oauth2/v3/certs` lists at `now`), its claims ours, and not expired at `now`
/// (`exp` past, no leeway: the clock that checks is the clock that signed). The audience is
/// not checked: tokeninfo answers for any client's token.
pub fn verify(token: &str, published: &[SigningKey], now: Timestamp) -> Result<Verified, Invalid> {
    let unchecked = jsonwebtoken::decode_header(token).map_err(|_| Invalid::Malformed)?;
    let kid = unchecked.kid.ok_or(Invalid::Malformed)?;
    let key = published
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(Invalid::UnknownKid(kid))?;
    let public = DecodingKey::from_rsa_components(&key.jwk_n, &key.jwk_e)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // jsonwebtoken checks `exp` against the system clock; refreshd's clock checks it below.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    super::jws::install();
    let data = jsonwebtoken::decode::<IdTokenClaims>(token, &public, &validation)?;
    if data.claims.exp <= now.secs() {
        return Err(Invalid::Expired(data.claims.exp));
    }
    Ok(Verified {
        header: data.header,
        claims: data.claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256_base64url() {
        // OIDC Core's example pair (A.3: access_token → at_hash) uses RS256 too.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(
            split_name("The Octocat"),
            (Some("The".into()), Some("Octocat".into()))
        );
        assert_eq!(split_name("Ada"), (Some("Ada".into()), None));
        assert_eq!(
            split_name("Jean Paul Sartre"),
            (Some("Jean".into()), Some("Paul Sartre".into()))
        );
        assert_eq!(split_name(" "), (None, None));
    }
}
