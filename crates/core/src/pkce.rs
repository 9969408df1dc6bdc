//! PKCE (RFC 7636): checking a code verifier against the challenge a code was issued with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `verifier` answers `challenge` under `method` (`S256` or `plain`; absent means plain).
pub fn verify(method: Option<&str>, challenge: &str, verifier: &str) -> bool {
    if !is_well_formed(verifier) {
        return false;
    }
    let expected = match method.unwrap_or("plain") {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_owned(),
        _ => return false,
    };
    expected.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// RFC 7636's form for a verifier, and so for a `plain` challenge: 43 to 128 unreserved
/// characters (an S256 challenge, 43 base64url characters, fits it too).
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether a client may ask for `method` when a code is issued.
pub fn is_supported_method(method: &str) -> bool {
    matches!(method, "S256" | "plain")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636, appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_matches_the_rfc_example() {
        assert!(verify(Some("S256"), CHALLENGE, VERIFIER));
        assert!(!verify(
            Some("S256"),
            CHALLENGE,
            &VERIFIER.replace('d', "e")
        ));
    }

    #[test]
    fn plain_compares_directly() {
        assert!(verify(Some("plain"), VERIFIER, VERIFIER));
        assert!(verify(None, VERIFIER, VERIFIER));
        assert!(!verify(Some("plain"), CHALLENGE, VERIFIER));
    }

    #[test]
    fn malformed_verifiers_and_methods_fail() {
        assert!(!verify(Some("S256"), CHALLENGE, "short"));
        assert!(!verify(Some("S512"), CHALLENGE, VERIFIER));
        assert!(!verify(Some("plain"), "a b", &"a b".repeat(20)));
    }
}
