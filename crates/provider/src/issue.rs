//! Minting token pairs and authorization codes: what a grant hands out, in each dialect's shape.

use refreshd_core::{
    AccessToken, Dialect, Lifetimes, RefreshToken, Scopes, Timestamp, UserId, random,
};
use refreshd_store::{App, Grant, NewAccess, NewCode, NewPair, StoreError, User};
use serde::{Deserialize, Serialize};

use crate::Provider;

/// The body of a successful token response, in both dialects. Fields are in alphabetical
/// order, as GitHub sends them, except Google's `id_token`, last as Google sends it. It
/// carries tokens in clear, so it has no `Debug`.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<i64>,
    pub scope: String,
    pub token_type: String,
    /// Google's dialect, a grant with `openid`: the RS256-signed id_token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenAnswer {
    /// The answer for an expiring pair.
    pub(crate) fn expiring(
        access: String,
        refresh: String,
        scopes: String,
        lifetimes: &Lifetimes,
    ) -> Self {
        Self {
            access_token: access,
            expires_in: Some(lifetimes.access_token_secs),
            id_token: None,
            refresh_token: Some(refresh),
            refresh_token_expires_in: Some(lifetimes.refresh_token_secs),
            scope: scopes,
            token_type: "bearer".to_owned(),
        }
    }
}

/// A freshly generated pair: what storage keeps (digests) and what the client gets.
pub(crate) struct Minted {
    pub pair: NewPair,
    pub answer: TokenAnswer,
}

/// Why tokens are being minted, which decides what a grant hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Occasion {
    /// A code exchange or `refreshd token issue`: a new family.
    NewFamily,
    /// A refresh grant.
    Refresh,
}

/// GitHub: expiring grants get a `ghu_` token and a rotating `ghr_` refresh token; others a
/// bare access token whose prefix follows the app's kind. Google: a `ya29.` token that
/// expires, and, for a new family only, a `1//` refresh token that neither expires nor rotates.
pub(crate) fn mint(
    app: &App,
    occasion: Occasion,
    scopes: &str,
    lifetimes: &Lifetimes,
    now: Timestamp,
) -> Minted {
    let (expiring, refresh_lifetime, access_lifetime, token_type, scope) = match app.kind.dialect()
    {
        Dialect::Github => {
            let expiring = occasion == Occasion::Refresh || app.expiring_tokens;
            let refresh_lifetime = expiring.then_some(Some(lifetimes.refresh_token_secs));
            let access_lifetime = expiring.then_some(lifetimes.access_token_secs);
            (
                expiring,
                refresh_lifetime,
                access_lifetime,
                "bearer",
                scopes.to_owned(),
            )
        }
        Dialect::Google => {
            let refresh_lifetime = (occasion == Occasion::NewFamily).then_some(None);
            let access_lifetime = Some(lifetimes.google_access_token_secs);
            let scope = Scopes::parse(scopes).to_spaced();
            (true, refresh_lifetime, access_lifetime, "Bearer", scope)
        }
    };
    let access = AccessToken::generate(app.kind.access_token_kind(expiring));
    let refresh = refresh_lifetime.map(|_| RefreshToken::generate(app.kind.refresh_token_kind()));
    let pair = NewPair {
        access: NewAccess {
            digest: access.digest(),
            last_eight: access.last_eight().to_owned(),
            expires_at: access_lifetime.map(|secs| now.plus_secs(secs)),
        },
        refresh: refresh.as_ref().map(|r| {
            (
                r.digest(),
                refresh_lifetime.flatten().map(|secs| now.plus_secs(secs)),
            )
        }),
    };
    let answer = TokenAnswer {
        access_token: access.expose().to_owned(),
        expires_in: access_lifetime,
        id_token: None,
        refresh_token: refresh.as_ref().map(|r| r.expose().to_owned()),
        refresh_token_expires_in: refresh_lifetime.flatten(),
        scope,
        token_type: token_type.to_owned(),
    };
    Minted { pair, answer }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the code challenge method must be S256 or plain")]
    ChallengeMethod,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a new token family for `user` at `app`, honouring the app's expiring-tokens setting.
pub async fn issue_family(
    provider: &Provider,
    app: &App,
    user_id: UserId,
    scopes: &Scopes,
) -> Result<TokenAnswer, IssueError> {
    let now = provider.clock.now();
    let minted = mint(
        app,
        Occasion::NewFamily,
        &scopes.to_github(),
        &provider.lifetimes,
        now,
    );
    let grant = Grant {
        app_id: app.id,
        user_id,
        scopes: scopes.clone(),
    };
    provider.store.issue_pair(grant, minted.pair, now).await?;
    Ok(minted.answer)
}

/// An OpenID Connect `nonce` kept with a code (and returned in its id_token) has at most this
/// many bytes.
pub const MAX_NONCE_LEN: usize = 512;

/// What an authorization code is bound to, beyond its grant.
#[derive(Debug, Default)]
pub struct CodeTerms {
    /// The redirect URI the token request must repeat.
    pub redirect_uri: Option<String>,
    /// PKCE: the challenge and its method.
    pub code_challenge: Option<(String, String)>,
    /// Whether the exchange hands out a refresh token.
    pub with_refresh: bool,
    /// The authorize request's OpenID Connect `nonce`, returned in the exchange's id_token.
    pub nonce: Option<String>,
}

/// Issues a single-use authorization code (20 hex characters, as GitHub's) for `user` at `app`.
pub async fn issue_code(
    provider: &Provider,
    app: &App,
    user: &User,
    scopes: &Scopes,
    redirect_uri: Option<String>,
    code_challenge: Option<(String, String)>,
    with_refresh: bool,
) -> Result<String, IssueError> {
    let terms = CodeTerms {
        redirect_uri,
        code_challenge,
        with_refresh,
        nonce: None,
    };
    issue_code_with(provider, app, user, scopes, terms).await
}

/// Issues a single-use authorization code for `user` at `app`, bound to `terms`.
pub async fn issue_code_with(
    provider: &Provider,
    app: &App,
    user: &User,
    scopes: &Scopes,
    terms: CodeTerms,
) -> Result<String, IssueError> {
    let CodeTerms {
        redirect_uri,
        code_challenge,
        with_refresh,
        nonce,
    } = terms;
    let supported =
        |(_, method): &(String, String)| refreshd_core::pkce::is_supported_method(method);
    if code_challenge.as_ref().is_some_and(|c| !supported(c)) {
        return Err(IssueError::ChallengeMethod);
    }
    let code = random::hex(20);
    let (code_challenge, code_challenge_method) = code_challenge.unzip();
    let new = NewCode {
        digest: refreshd_core::TokenDigest::of(&code),
        grant: Grant {
            app_id: app.id,
            user_id: user.id,
            scopes: scopes.clone(),
        },
        redirect_uri,
        code_challenge,
        code_challenge_method,
        expires_at: provider.clock.now().plus_secs(provider.lifetimes.code_secs),
        with_refresh,
        nonce,
    };
    provider.store.store_code(new).await?;
    Ok(code)
}
