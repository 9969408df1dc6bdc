//! The OAuth Applications API (seed 002) and `GET /user` over real HTTP.

use crate::common;
use crate::common::{TestApp, spawn};
use refreshd_core::{AppKind, TokenDigest};
use serde_json::{Value, json};

async fn call(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    auth: (&str, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = t
        .http
        .request(method, t.at(path))
        .basic_auth(auth.0, Some(auth.1))
        .header(
            "accept",
            "application/vnd.github.doctor-strange-preview+json",
        );
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

fn creds(t: &TestApp) -> (&str, &str) {
    (t.app.client_id.as_str(), t.secret.as_str())
}

fn token_path(t: &TestApp) -> String {
    format!("/applications/{}/token", t.app.client_id)
}

#[tokio::test]
async fn check_returns_the_authorization_object() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    for prefix in ["", "/api/v3"] {
        let path = format!("{prefix}{}", token_path(&t));
        let (status, auth) = call(
            &t,
            reqwest::Method::POST,
            &path,
            creds(&t),
            Some(json!({"access_token": pair.access_token})),
        )
        .await;
        assert_eq!(status, 200, "{auth}");
        assert_eq!(auth["token"], pair.access_token);
        assert_eq!(auth["token_last_eight"], &pair.access_token[32..]);
        assert_eq!(
            auth["hashed_token"],
            TokenDigest::of(&pair.access_token).to_hex()
        );
        assert_eq!(auth["scopes"], json!(["repo"]));
        assert_eq!(auth["app"]["client_id"], t.app.client_id.as_str());
        assert_eq!(auth["user"]["login"], "octocat");
        assert_eq!(auth["user"]["node_id"], "MDQ6VXNlcjE=");
        assert_eq!(auth["expires_at"], "2027-01-15T16:00:00Z");
        assert_eq!(
            auth["url"],
            format!("{}/api/v3/authorizations/{}", t.url, auth["id"])
        );
        for key in [
            "note",
            "note_url",
            "fingerprint",
            "created_at",
            "updated_at",
        ] {
            assert!(auth.get(key).is_some(), "{key} missing");
        }
    }
}

#[tokio::test]
async fn reset_replaces_the_token_at_once() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    let (status, auth) = call(
        &t,
        reqwest::Method::PATCH,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": pair.access_token})),
    )
    .await;
    assert_eq!(status, 200, "{auth}");
    let new = auth["token"].as_str().unwrap();
    assert!(new.starts_with("ghu_") && new != pair.access_token);
    assert_eq!(t.user_status(&pair.access_token).await, 401);
    assert_eq!(t.user_status(new).await, 200);
    let (status, _) = call(
        &t,
        reqwest::Method::PATCH,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": pair.access_token})),
    )
    .await;
    assert_eq!(status, 404, "an invalid token is Not Found");
}

#[tokio::test]
async fn deleting_a_token_revokes_it_and_only_it() {
    let t = spawn().await;
    let one = t.issue(&t.app).await;
    let two = t.issue(&t.app).await;
    let (status, body) = call(
        &t,
        reqwest::Method::DELETE,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": one.access_token})),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(t.user_status(&one.access_token).await, 401);
    assert_eq!(t.user_status(&two.access_token).await, 200);
    assert_eq!(
        t.refresh(one.refresh_token.as_deref().unwrap()).await.1["error"],
        "bad_refresh_token"
    );
    let (status, body) = call(
        &t,
        reqwest::Method::DELETE,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": one.access_token})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "Not Found");
}

#[tokio::test]
async fn deleting_the_grant_revokes_every_token_of_that_user() {
    let t = spawn().await;
    let one = t.issue(&t.app).await;
    let two = t.issue(&t.app).await;
    let path = format!("/applications/{}/grant", t.app.client_id);
    let (status, _) = call(
        &t,
        reqwest::Method::DELETE,
        &path,
        creds(&t),
        Some(json!({"access_token": one.access_token})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(t.user_status(&one.access_token).await, 401);
    assert_eq!(t.user_status(&two.access_token).await, 401);
    assert_eq!(
        t.refresh(two.refresh_token.as_deref().unwrap()).await.1["error"],
        "bad_refresh_token"
    );
}

#[tokio::test]
async fn credentials_and_ownership_are_enforced() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    let body = || Some(json!({"access_token": pair.access_token}));
    let (status, err) = call(
        &t,
        reqwest::Method::POST,
        &token_path(&t),
        (t.app.client_id.as_str(), "wrong"),
        body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(err["message"], "Bad credentials");

    let unauthenticated = t
        .http
        .post(t.at(&token_path(&t)))
        .json(&json!({"access_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let (other, other_secret) = common::create_app(&t.provider, AppKind::GithubApp, true).await;
    let other_path = format!("/applications/{}/token", other.client_id);
    let (status, _) = call(
        &t,
        reqwest::Method::POST,
        &other_path,
        (other.client_id.as_str(), &other_secret),
        body(),
    )
    .await;
    assert_eq!(status, 404, "another app cannot see this app's tokens");
    let (status, _) = call(
        &t,
        reqwest::Method::POST,
        &token_path(&t),
        (other.client_id.as_str(), &other_secret),
        body(),
    )
    .await;
    assert_eq!(status, 404, "credentials must be the path's app");
}

#[tokio::test]
async fn bad_bodies_get_githubs_error_shapes() {
    let t = spawn().await;
    let (status, err) = call(
        &t,
        reqwest::Method::POST,
        &token_path(&t),
        creds(&t),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(err["message"], "Validation Failed");
    assert_eq!(err["errors"][0]["field"], "access_token");
    let (status, _) = call(
        &t,
        reqwest::Method::POST,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": 5})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &t,
        reqwest::Method::POST,
        &token_path(&t),
        creds(&t),
        Some(json!({"access_token": "gho_nope"})),
    )
    .await;
    assert_eq!(status, 404);

    for (body, expected) in [
        (b"{oops".to_vec(), 400),
        (b"\xff\xfe".to_vec(), 400),
        (vec![b' '; 70 * 1024], 413),
    ] {
        let response = t
            .http
            .post(t.at(&token_path(&t)))
            .basic_auth(t.app.client_id.as_str(), Some(&t.secret))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected);
        let err: Value = response.json().await.unwrap();
        assert!(err["message"].is_string(), "{err}");
    }
}

#[tokio::test]
async fn wrong_methods_and_unreadable_paths_are_githubs_404() {
    let t = spawn().await;
    for (method, path) in [
        (reqwest::Method::GET, token_path(&t)),
        (reqwest::Method::GET, "/login/oauth/access_token".to_owned()),
        (
            reqwest::Method::POST,
            "/applications/%FF%FE/token".to_owned(),
        ),
    ] {
        let response = t
            .http
            .request(method, t.at(&path))
            .basic_auth("x", Some("y"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["message"],
            "Not Found"
        );
    }
}

#[tokio::test]
async fn get_user_accepts_bearer_and_token_schemes_only_for_live_tokens() {
    let t = spawn().await;
    let pair = t.issue(&t.app).await;
    for scheme in ["Bearer", "bearer", "token"] {
        let response = t
            .http
            .get(t.at("/api/v3/user"))
            .header("authorization", format!("{scheme} {}", pair.access_token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-oauth-scopes"], "repo");
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["login"], "octocat");
        assert_eq!(user["name"], "The Octocat");
        assert_eq!(user["type"], "User");
    }
    let missing = t.http.get(t.at("/user")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    for bad in [
        "Bearer ghu_unknown",
        "Basic abc",
        "Bearer",
        "token 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",
    ] {
        let response = t
            .http
            .get(t.at("/user"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{bad}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["message"],
            "Bad credentials"
        );
    }
}
