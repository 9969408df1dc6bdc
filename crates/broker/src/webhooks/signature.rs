//! Standard Webhooks signatures: `v1,` and the base64 of HMAC-SHA256, keyed with the secret's
//! bytes, over `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A signing secret as configured: `whsec_` and the base64 of its bytes. `Debug` never shows
/// it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// The secret in `raw`, `whsec_<base64>`; `Err` says what is wrong, without the secret.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw
            .trim()
            .strip_prefix("whsec_")
            .ok_or("webhook_secret must start with whsec_ (a Standard Webhooks secret)")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "webhook_secret must be whsec_ followed by base64")?;
        if bytes.len() < 24 || bytes.len() > 64 {
            return Err("webhook_secret must hold 24 to 64 bytes (whsec_ and their base64)".into());
        }
        Ok(Self(bytes))
    }

    /// A new random secret, as `whsec_<base64>` (32 bytes).
    pub fn generate() -> String {
        format!(
            "whsec_{}",
            STANDARD.encode(refreshd_core::random::bytes::<32>())
        )
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The `webhook-signature` of `body` sent as message `id` at `timestamp` (unix seconds).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_libraries_do() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_malformed_secret_is_refused_without_being_shown() {
        for raw in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_AAAA",
        ] {
            let error = WebhookSecret::parse(raw).unwrap_err();
            assert!(raw.is_empty() || !error.contains(raw), "{error}");
        }
        let generated = WebhookSecret::generate();
        let parsed = WebhookSecret::parse(&generated).unwrap();
        assert_eq!(format!("{parsed:?}"), "WebhookSecret(…)");
    }
}
