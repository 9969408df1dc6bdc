//! The authorization-code grant, shared by both dialects: redeem the code, store the new
//! family, and check the redeemed code against the token request that presents it.

use refreshd_core::{TokenDigest, pkce};
use refreshd_store::{App, RedeemedCode, StoreError};

use crate::Provider;
use crate::issue::{Occasion, TokenAnswer, mint};

/// Why a code exchange failed; each dialect renders it in its own words.
#[derive(Debug)]
pub enum ExchangeError {
    /// Unknown, expired, already redeemed, or another app's.
    UnknownCode,
    Mismatch(CodeMismatch),
    Store(StoreError),
}

impl From<StoreError> for ExchangeError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A redeemed code's answer, and the authorize request's `nonce` for the dialect's id_token.
pub struct Exchanged {
    pub answer: TokenAnswer,
    pub nonce: Option<String>,
}

/// Redeems `code` and stores the new pair in one commit; the code is used up even when a
/// check then fails, and the pair, never handed out, is revoked. The answer's `scope` is the
/// code's scopes in GitHub's comma form.
pub async fn exchange(
    provider: &Provider,
    app: &App,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Exchanged, ExchangeError> {
    let exchanged = redeem(provider, app, code, redirect_uri, verifier).await;
    let outcome = match &exchanged {
        Ok(_) => "issued",
        Err(ExchangeError::Store(_)) => "failed",
        Err(_) => "refused",
    };
    crate::grants::count(app.kind.dialect(), "authorization_code", outcome);
    exchanged
}

async fn redeem(
    provider: &Provider,
    app: &App,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Exchanged, ExchangeError> {
    let now = provider.clock.now();
    let minted = mint(app, Occasion::NewFamily, "", &provider.lifetimes, now);
    let access = minted.pair.access.digest;
    let redeemed = provider
        .store
        .exchange_code(TokenDigest::of(code), app.id, minted.pair, now)
        .await?
        .ok_or(ExchangeError::UnknownCode)?;
    if let Err(mismatch) = check(app, &redeemed, redirect_uri, verifier) {
        provider.store.revoke_access(app.id, access, now).await?;
        return Err(ExchangeError::Mismatch(mismatch));
    }
    let mut answer = minted.answer;
    answer.scope = redeemed.grant.scopes.to_github();
    if !redeemed.with_refresh {
        answer.refresh_token = None;
        answer.refresh_token_expires_in = None;
    }
    Ok(Exchanged {
        answer,
        nonce: redeemed.nonce,
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum CodeMismatch {
    RedirectUri,
    Verifier,
}

/// The redirect URI, when given, must be the one the code was issued for (else one of the
/// app's registered ones); the PKCE verifier must answer the code's challenge.
fn check(
    app: &App,
    redeemed: &RedeemedCode,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), CodeMismatch> {
    if let Some(given) = redirect_uri {
        let matches = match &redeemed.redirect_uri {
            Some(bound) => given == bound,
            None => crate::redirect::allowed(app, given),
        };
        if !matches {
            return Err(CodeMismatch::RedirectUri);
        }
    }
    let verified = match (&redeemed.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => pkce::verify(
            redeemed.code_challenge_method.as_deref(),
            challenge,
            verifier,
        ),
        (None, None) => true,
        // A missing verifier, or one for a code issued without a challenge (a PKCE downgrade,
        // RFC 9700 §4.8.2), is refused.
        _ => false,
    };
    if verified {
        Ok(())
    } else {
        Err(CodeMismatch::Verifier)
    }
}
