//! Checking a redeemed authorization code against the token request that presents it.

use refreshd_core::pkce;
use refreshd_store::{App, RedeemedCode};

#[derive(Debug, PartialEq, Eq)]
pub enum CodeMismatch {
    RedirectUri,
    Verifier,
}

/// The redirect URI, when given, must be the one the code was issued for (else the app's
/// registered one); the PKCE verifier must answer the code's challenge.
pub fn check(
    app: &App,
    redeemed: &RedeemedCode,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), CodeMismatch> {
    if let Some(given) = redirect_uri {
        let registered = redeemed
            .redirect_uri
            .as_deref()
            .unwrap_or(&app.redirect_uri);
        if given != registered {
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
