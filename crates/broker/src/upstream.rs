//! Calling an upstream's token endpoint, and reading its answer in its own dialect.
//!
//! Only what is safe is retried: a connection that could not be made, so nothing was sent.
//! A refresh whose outcome is unknown (timeout, reset after sending) is never re-sent.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BrokerError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    Github,
    Google,
}

impl Upstream {
    pub fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Google => "google",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Github => "GitHub",
            Self::Google => "Google",
        }
    }
}

/// A refresh's outcome, as the broker answers it. Carries tokens, so no `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Refreshed {
    pub token: String,
    pub refresh_token: Option<String>,
    /// Unix time in milliseconds.
    pub expires_at: Option<i64>,
    /// The scopes granted, as the upstream wrote them, if it said.
    #[serde(default)]
    pub scope: Option<String>,
    /// When the new refresh token expires, Unix time in milliseconds, if the upstream said.
    #[serde(default)]
    pub refresh_expires_at: Option<i64>,
}

/// One configured upstream: where it is and refreshd's credentials with it.
pub struct UpstreamClient {
    pub upstream: Upstream,
    pub http: reqwest::Client,
    pub client_id: String,
    client_secret: SecretString,
}

/// The largest upstream answer refreshd reads; token and user documents are a few KiB.
const MAX_UPSTREAM_BODY: usize = 1024 * 1024;

/// Connection attempts before giving up; only failures to connect are retried.
const CONNECT_ATTEMPTS: u32 = 3;

/// The longest one upstream call can take, retries included, in whole seconds.
pub(crate) fn longest_call_secs(settings: &crate::BrokerSettings) -> u64 {
    let retries = u64::from(CONNECT_ATTEMPTS - 1);
    // Each failed attempt gives up connecting within the connect timeout, then waits a little.
    retries * (settings.connect_timeout_secs + 1) + settings.upstream_timeout_secs
}

impl UpstreamClient {
    /// `None` unless both the client id and secret are configured.
    pub fn configure(
        upstream: Upstream,
        http: &reqwest::Client,
        client_id: Option<&str>,
        client_secret: Option<SecretString>,
    ) -> Option<Self> {
        // An empty id or secret counts as not configured.
        let client_id = client_id.filter(|id| !id.is_empty())?;
        let client_secret = client_secret.filter(|s| !s.expose_secret().is_empty())?;
        Some(Self {
            upstream,
            http: http.clone(),
            client_id: client_id.to_owned(),
            client_secret,
        })
    }

    /// POSTs a form (with refreshd's client credentials) and returns the status and JSON body.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Value), BrokerError> {
        let mut fields = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        fields.extend_from_slice(form);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let sent = self
                .http
                .post(url)
                .header("accept", "application/json")
                .form(&fields)
                .send()
                .await;
            match sent {
                Ok(response) => break response,
                Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => return Err(self.transport_error(&e)),
            }
        };
        self.read_json(response).await
    }

    /// `request` authenticated with refreshd's client credentials as HTTP Basic (GitHub's
    /// application endpoints).
    pub fn with_client_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
    }

    /// GETs a JSON document with a Bearer token.
    pub async fn get_json(
        &self,
        url: &str,
        bearer: &str,
    ) -> Result<(StatusCode, Value), BrokerError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(bearer)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        self.read_json(response).await
    }

    /// The status and JSON body of an answer; a body that is not JSON is an upstream error.
    async fn read_json(
        &self,
        response: reqwest::Response,
    ) -> Result<(StatusCode, Value), BrokerError> {
        let status = response.status();
        // Read at most MAX_UPSTREAM_BODY: an upstream cannot make refreshd buffer without end.
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if bytes.len() + chunk.len() > MAX_UPSTREAM_BODY {
                let title = self.upstream.title();
                return Err(BrokerError::Upstream(format!(
                    "{title} answered with a body over {MAX_UPSTREAM_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&bytes).map_err(|_| {
            let title = self.upstream.title();
            BrokerError::Upstream(format!(
                "{title} answered HTTP {status} with a body that is not JSON"
            ))
        })?;
        Ok((status, json))
    }

    fn transport_error(&self, e: &reqwest::Error) -> BrokerError {
        if e.is_timeout() {
            BrokerError::UpstreamTimeout(self.upstream.name())
        } else if e.is_connect() {
            BrokerError::Upstream(format!("cannot reach {}", self.upstream.title()))
        } else {
            BrokerError::UpstreamInterrupted(self.upstream.name())
        }
    }

    /// Reads a token endpoint's answer: GitHub reports errors with HTTP 200 and an `error`
    /// field, Google with 4xx statuses; both are mapped to the broker's envelope.
    pub fn read_token_answer(
        &self,
        status: StatusCode,
        body: &Value,
        now_secs: i64,
    ) -> Result<Refreshed, BrokerError> {
        let title = self.upstream.title();
        if let Some(code) = body["error"].as_str() {
            let message = body["error_description"]
                .as_str()
                .unwrap_or(code)
                .to_owned();
            return Err(match code {
                "bad_refresh_token"
                | "bad_verification_code"
                | "invalid_grant"
                | "redirect_uri_mismatch" => BrokerError::InvalidGrant {
                    upstream_error: code.to_owned(),
                    message,
                },
                _ => BrokerError::Upstream(format!(
                    "{title} refused the request: {code} ({message})"
                )),
            });
        }
        if !status.is_success() {
            return Err(BrokerError::Upstream(format!(
                "{title} answered HTTP {status}"
            )));
        }
        let token = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                BrokerError::Upstream(format!("{title} answered without an access_token"))
            })?;
        // A nonsensical lifetime is dropped rather than overflowed.
        let at_ms = |field: &str| {
            body[field]
                .as_i64()
                .and_then(|secs| now_secs.checked_add(secs)?.checked_mul(1000))
        };
        Ok(Refreshed {
            token: token.to_owned(),
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_at: at_ms("expires_in"),
            scope: body["scope"].as_str().map(str::to_owned),
            refresh_expires_at: at_ms("refresh_token_expires_in"),
        })
    }
}
