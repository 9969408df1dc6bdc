//! GitHub's JSON objects: the user and the OAuth authorization.

use refreshd_core::Timestamp;
use refreshd_store::{Authorization, User};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::Provider;

/// ISO 8601 in UTC with whole seconds, as GitHub writes times.
pub fn iso8601(at: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(at.secs())
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn node_id(user_id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("04:User{user_id}"))
}

/// The "simple user" GitHub embeds in other objects.
pub fn simple_user(provider: &Provider, user: &User) -> Value {
    let api = format!("{}/users/{}", provider.api_url(), user.login);
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": node_id(user.id.0),
        "avatar_url": provider.avatar_url(&user.login),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{}", provider.public_url, user.login),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "site_admin": false,
    })
}

/// The authenticated user, as `GET /user` returns it.
pub fn full_user(provider: &Provider, user: &User) -> Value {
    let mut out = simple_user(provider, user);
    let extra = json!({
        "name": user.name,
        "email": user.email,
        "company": null,
        "blog": "",
        "location": null,
        "bio": null,
        "hireable": null,
        "twitter_username": null,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": iso8601(user.created_at),
        "updated_at": iso8601(user.updated_at),
    });
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// The authorization object of GitHub's OAuth Applications API, for the token the caller
/// presented or was just given.
pub fn authorization(provider: &Provider, auth: &Authorization, token: &str) -> Value {
    json!({
        "id": auth.id,
        "url": format!("{}/authorizations/{}", provider.api_url(), auth.id),
        "scopes": auth.scopes.as_slice(),
        "token": token,
        "token_last_eight": auth.access_last_eight,
        "hashed_token": auth.access_digest.to_hex(),
        "app": {
            "url": auth.app.redirect_uris().next(),
            "name": auth.app.name,
            "client_id": auth.app.client_id.as_str(),
        },
        "note": null,
        "note_url": null,
        "updated_at": iso8601(auth.updated_at),
        "created_at": iso8601(auth.created_at),
        "fingerprint": null,
        "expires_at": auth.access_expires_at.map(iso8601),
        "user": simple_user(provider, &auth.user),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_node_ids_like_github() {
        assert_eq!(iso8601(Timestamp(1_315_330_763)), "2011-09-06T17:39:23Z");
        assert_eq!(node_id(1), "MDQ6VXNlcjE=");
    }
}
