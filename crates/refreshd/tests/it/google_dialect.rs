//! The provider's Google dialect over real HTTP: `/token`, `/revoke`, `/tokeninfo`,
//! `/oauth2/v3/userinfo`, Google's error statuses and texts, and google-auth-library itself.

use crate::common;
use crate::common::{TestApp, field, run_js, spawn};
use refreshd_core::AppKind;
use refreshd_store::App;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9999/callback";

/// Form parameters, and the status, `error` and `error_description` they must get.
type ErrorCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);

async fn google_app(t: &TestApp) -> (App, String) {
    common::create_app(&t.provider, AppKind::GoogleClient, true).await
}

async fn token(t: &TestApp, params: &[(&str, &str)]) -> (u16, Value) {
    let response = t
        .http
        .post(t.at("/token"))
        .form(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn userinfo(t: &TestApp, access: &str) -> u16 {
    let response = t
        .http
        .get(t.at("/oauth2/v3/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn code_exchange_and_non_rotating_refresh() {
    let t = spawn().await;
    let (app, secret) = google_app(&t).await;
    let id = app.client_id.as_str();
    let code = t.code_for(&app, Some(REDIRECT)).await;
    let (status, first) = token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert!(field(&first, "access_token").starts_with("ya29."));
    assert!(field(&first, "refresh_token").starts_with("1//"));
    assert_eq!(first["expires_in"], 3599);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["scope"], "openid email");
    assert!(first.get("refresh_token_expires_in").is_none());

    let refresh = field(&first, "refresh_token");
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", id),
        ("client_secret", &secret),
    ];
    let (status, second) = token(&t, &params).await;
    assert_eq!(status, 200, "{second}");
    assert!(
        second.get("refresh_token").is_none(),
        "Google returns no new refresh token"
    );
    let (_, third) = token(&t, &params).await;
    assert!(
        field(&third, "access_token").starts_with("ya29."),
        "the refresh token does not rotate"
    );
    for answer in [&first, &second, &third] {
        assert_eq!(
            userinfo(&t, field(answer, "access_token")).await,
            200,
            "earlier access tokens live on"
        );
    }
    t.clock.advance(3599);
    assert_eq!(
        userinfo(&t, field(&third, "access_token")).await,
        401,
        "an hour and it is gone"
    );
}

#[tokio::test]
async fn client_credentials_may_come_as_basic() {
    let t = spawn().await;
    let (app, secret) = google_app(&t).await;
    let code = t.code_for(&app, Some(REDIRECT)).await;
    let response = t
        .http
        .post(t.at("/token"))
        .basic_auth(app.client_id.as_str(), Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn errors_have_googles_statuses_and_texts() {
    let t = spawn().await;
    let (app, secret) = google_app(&t).await;
    let id = app.client_id.as_str();
    let github_id = t.app.client_id.as_str();
    let cases: Vec<ErrorCase> = vec![
        (
            vec![("client_id", id)],
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
        (
            vec![("grant_type", "password"), ("client_id", id)],
            400,
            "unsupported_grant_type",
            "Invalid grant_type: password",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "1//x"),
                ("client_id", "nope"),
                ("client_secret", "x"),
            ],
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "1//x"),
                ("client_id", github_id),
                ("client_secret", &t.secret),
            ],
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "1//x"),
                ("client_id", id),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
            "Unauthorized",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "1//x"),
                ("client_id", id),
                ("client_secret", &secret),
            ],
            400,
            "invalid_grant",
            "Token has been expired or revoked.",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", id),
                ("client_secret", &secret),
            ],
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "abc"),
                ("client_id", id),
                ("client_secret", &secret),
            ],
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "abc"),
                ("redirect_uri", REDIRECT),
                ("client_id", id),
                ("client_secret", &secret),
            ],
            400,
            "invalid_grant",
            "Malformed auth code.",
        ),
    ];
    for (params, status, error, description) in cases {
        let (got, body) = token(&t, &params).await;
        assert_eq!(
            (
                got,
                body["error"].as_str(),
                body["error_description"].as_str()
            ),
            (status, Some(error), Some(description))
        );
    }
    let code = t.code_for(&app, Some(REDIRECT)).await;
    let (status, body) = token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://evil/"),
            ("client_id", id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("redirect_uri_mismatch"))
    );
}

#[tokio::test]
async fn tokeninfo_userinfo_and_revoke() {
    let t = spawn().await;
    let (app, _) = google_app(&t).await;
    let pair = t.issue(&app).await;
    let access = pair.access_token.clone();
    let info: Value = t
        .http
        .get(t.at(&format!("/tokeninfo?access_token={access}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["aud"], app.client_id.as_str());
    assert_eq!(info["sub"], t.user.id.to_string());
    assert_eq!(info["expires_in"], "3599");
    let user: Value = t
        .http
        .get(t.at("/oauth2/v3/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The grant's scope (`repo`) has neither `profile` nor `email`: only the subject, as an
    // id_token of that grant would say.
    assert_eq!(user, serde_json::json!({ "sub": t.user.id.to_string() }));
    assert_eq!(
        t.user_status(&access).await,
        401,
        "GitHub's /user does not take Google tokens"
    );

    let unknown = t
        .http
        .post(t.at("/revoke?token=ya29.nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let revoked = t
        .http
        .post(t.at("/revoke"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(userinfo(&t, &access).await, 401);
    let denied = t
        .http
        .get(t.at("/oauth2/v3/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let info = t
        .http
        .get(t.at(&format!("/tokeninfo?access_token={access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 400);
    let refresh = pair.refresh_token.unwrap();
    assert_eq!(
        t.http
            .post(t.at("/revoke"))
            .form(&[("token", refresh.as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        400,
        "revoking the access token revoked its refresh token too"
    );
}

#[tokio::test]
async fn google_auth_library_works_unchanged() {
    let t = spawn().await;
    let (app, secret) = google_app(&t).await;
    let code = t.code_for(&app, Some(REDIRECT)).await;
    let env = [
        ("REFRESHD_URL", t.url.as_str()),
        ("CLIENT_ID", app.client_id.as_str()),
        ("CLIENT_SECRET", &secret),
        ("REDIRECT_URI", REDIRECT),
        ("CODE", &code),
    ];
    run_js("google.mjs", "google-auth-library", &env, String::new).await;
}
