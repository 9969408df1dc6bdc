//! Revoking a deleted connection's grant at its upstream: GitHub's `DELETE
//! /applications/{client_id}/grant` (refreshd's client credentials as Basic, the access token
//! in the body), Google's `POST /revoke?token=` (the refresh token if there is one: revoking
//! either revokes the grant).

use refreshd_core::{TokenRole, Upstream};
use refreshd_store::Connection;
use serde_json::json;

use super::fresh::upstream_of;
use crate::state::Broker;

/// `Err` says why the upstream did not revoke the grant, in words (never a token).
pub async fn revoke(broker: &Broker, connection: &Connection) -> Result<(), String> {
    let client = broker
        .upstream(upstream_of(connection.upstream))
        .map_err(|e| e.to_string())?;
    let sealer = &broker.0.sealer;
    let access = sealer.unseal(&connection.id, TokenRole::Access, &connection.tokens.access);
    let refresh = connection
        .tokens
        .refresh
        .as_ref()
        .and_then(|sealed| sealer.unseal(&connection.id, TokenRole::Refresh, sealed));
    let settings = &broker.0.settings;
    let request = match connection.upstream {
        Upstream::Github => {
            let token = access.ok_or("the stored access token could not be opened")?;
            let url = format!(
                "{}/applications/{}/grant",
                settings.github.api_url.trim_end_matches('/'),
                client.client_id
            );
            client
                .with_client_auth(client.http.delete(url))
                .header("accept", "application/vnd.github+json")
                .json(&json!({ "access_token": token }))
        }
        Upstream::Google => {
            let token = refresh
                .or(access)
                .ok_or("the stored tokens could not be opened")?;
            client
                .http
                .post(&settings.google.revoke_url)
                // In the body, not the URL, which proxies and logs keep.
                .form(&[("token", token)])
        }
    };
    let title = connection.upstream.as_str();
    let response = request.send().await.map_err(|e| match e.is_timeout() {
        true => format!("{title} did not answer in time"),
        false => format!("could not reach {title}"),
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{title} answered HTTP {status}"))
    }
}
