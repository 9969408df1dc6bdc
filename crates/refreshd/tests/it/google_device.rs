//! Google's device flow with a plain HTTP client: `POST /device/code`, then polls at `POST
//! /token` with the device-code grant and the client secret, in Google's shapes and statuses
//! (pending 428, slow_down and access_denied 403, expired_token 400), approved on the page
//! at `verification_url` or through the store.

use crate::common::{self, TestApp, field, spawn};
use crate::device_page::{decide, enter};
use crate::pages::{Visitor, with_password};
use refreshd_core::{AppKind, Clock, UserCode};
use refreshd_store::App;
use reqwest::StatusCode;
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Form parameters, and the status, `error` and `error_description` they must get.
type ErrorCase<'a> = (&'a [(&'a str, &'a str)], u16, &'a str, &'a str);

/// A Google client with the device flow on, and its secret.
pub(crate) async fn google_device_app(t: &TestApp) -> (App, String) {
    let (app, secret) = common::create_app(&t.provider, AppKind::GoogleClient, true).await;
    set_device_flow(t, &app, true).await;
    (app, secret)
}

pub(crate) async fn set_device_flow(t: &TestApp, app: &App, on: bool) {
    t.provider
        .store
        .set_device_flow(&app.client_id, on, t.clock.now())
        .await
        .unwrap()
        .unwrap();
}

async fn post(t: &TestApp, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let response = t.http.post(t.at(path)).form(params).send().await.unwrap();
    let status = response.status().as_u16();
    if path == "/token" || path == "/device/code" {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

async fn start(t: &TestApp, app: &App, scope: &str) -> Value {
    let (status, body) = post(
        t,
        "/device/code",
        &[("client_id", app.client_id.as_str()), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(t: &TestApp, app: &App, secret: &str, device_code: &str) -> (u16, Value) {
    post(
        t,
        "/token",
        &[
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret),
            ("device_code", device_code),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await
}

fn assert_error(answer: &(u16, Value), status: u16, error: &str, description: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
}

fn keys(body: &Value) -> Vec<&str> {
    body.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn a_device_code_is_answered_in_googles_shape_pointing_at_the_device_page() {
    let t = spawn().await;
    let (app, _) = google_device_app(&t).await;
    let body = start(&t, &app, "email profile").await;
    let mut names = keys(&body);
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "device_code",
            "expires_in",
            "interval",
            "user_code",
            "verification_url"
        ]
    );
    let device_code = field(&body, "device_code");
    assert_eq!(device_code.len(), 40);
    assert!(device_code.bytes().all(|b| b.is_ascii_hexdigit()));
    let user_code = field(&body, "user_code");
    assert!(UserCode::normalize(user_code).is_some(), "{user_code}");
    assert_eq!(user_code.as_bytes()[4], b'-');
    assert_eq!(body["verification_url"], format!("{}/device", t.url));
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["interval"], 5);

    // The verification URL is the device page; `?user_code=` fills the form in.
    let page = t
        .http
        .get(format!("{}/device?user_code={user_code}", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(r#"value="{user_code}""#)), "{html}");
    assert!(html.contains(r#"action="/login/device""#), "{html}");
}

#[tokio::test]
async fn unknown_clients_missing_parameters_and_a_disabled_device_flow_get_googles_errors() {
    let t = spawn().await;
    let (app, secret) = google_device_app(&t).await;
    let id = app.client_id.as_str();
    let github_id = t.app.client_id.as_str();
    let not_found = "The OAuth client was not found.";
    let cases: [ErrorCase; 5] = [
        (
            &[("client_id", "nope"), ("scope", "email")],
            401,
            "invalid_client",
            not_found,
        ),
        (
            &[("client_id", github_id), ("scope", "email")],
            401,
            "invalid_client",
            not_found,
        ),
        (
            &[("scope", "email")],
            400,
            "invalid_request",
            "Missing required parameter: client_id",
        ),
        (
            &[("client_id", id)],
            400,
            "invalid_request",
            "Missing required parameter: scope",
        ),
        (
            &[("client_id", id), ("scope", "")],
            400,
            "invalid_request",
            "Missing required parameter: scope",
        ),
    ];
    for (params, status, error, description) in cases {
        let answer = post(&t, "/device/code", params).await;
        assert_error(&answer, status, error, description);
    }

    // Polls: a wrong secret, no secret, no device code, an unknown device code.
    let started = start(&t, &app, "email").await;
    let device_code = field(&started, "device_code");
    let wrong = poll(&t, &app, "GOCSPX-wrong", device_code).await;
    assert_error(&wrong, 401, "invalid_client", "Unauthorized");
    let no_secret = post(
        &t,
        "/token",
        &[
            ("client_id", id),
            ("device_code", device_code),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await;
    assert_error(&no_secret, 401, "invalid_client", "Unauthorized");
    let no_code = post(
        &t,
        "/token",
        &[
            ("client_id", id),
            ("client_secret", &secret),
            ("grant_type", DEVICE_GRANT),
        ],
    )
    .await;
    assert_error(
        &no_code,
        400,
        "invalid_request",
        "Missing required parameter: device_code",
    );
    let unknown = poll(&t, &app, &secret, &"0".repeat(40)).await;
    assert_error(&unknown, 400, "invalid_grant", "Bad Request");

    // Scopes are bounded as on the authorize page: 51 scopes, or one of 201 bytes.
    let many = (0..51)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    for scope in [many, "x".repeat(201)] {
        let answer = post(&t, "/device/code", &[("client_id", id), ("scope", &scope)]).await;
        assert_error(
            &answer,
            400,
            "invalid_scope",
            "Some requested scopes were invalid.",
        );
    }

    // The device flow switched off: starting and polling are refused as a wrong client type.
    set_device_flow(&t, &app, false).await;
    let off = post(&t, "/device/code", &[("client_id", id), ("scope", "email")]).await;
    assert_error(&off, 401, "invalid_client", "Invalid client type.");
    let polled = poll(&t, &app, &secret, device_code).await;
    assert_error(&polled, 401, "invalid_client", "Invalid client type.");
}

#[tokio::test]
async fn a_device_approved_on_the_page_gets_a_google_token_pair_once() {
    let t = spawn().await;
    with_password(&t).await;
    let (app, secret) = google_device_app(&t).await;
    let started = start(&t, &app, "email profile").await;
    let device_code = field(&started, "device_code").to_owned();
    let user_code = field(&started, "user_code").to_owned();

    let pending = poll(&t, &app, &secret, &device_code).await;
    assert_error(
        &pending,
        428,
        "authorization_pending",
        "Precondition Required",
    );
    let fast = poll(&t, &app, &secret, &device_code).await;
    assert_error(&fast, 403, "slow_down", "Forbidden");
    t.clock.advance(10);
    let pending = poll(&t, &app, &secret, &device_code).await;
    assert_eq!(pending.0, 428, "{}", pending.1);

    let mut v = Visitor::new(&t);
    let approval = enter(&mut v, &user_code.to_lowercase()).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.body);
    assert!(approval.body.contains(&app.name), "{}", approval.body);
    assert!(
        approval.body.contains("<code>email</code>"),
        "{}",
        approval.body
    );
    let done = decide(&mut v, &approval, &user_code, "authorize").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);

    // A decided code is answered at once, however soon the device polls.
    let (status, token) = poll(&t, &app, &secret, &device_code).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        keys(&token),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ],
        "Google's token answer, without the id_token of another branch: {token}"
    );
    assert!(
        field(&token, "access_token").starts_with("ya29."),
        "{token}"
    );
    assert!(field(&token, "refresh_token").starts_with("1//"), "{token}");
    assert!(token["expires_in"].as_i64().unwrap() > 0, "{token}");
    assert_eq!(token["scope"], "email profile");
    assert_eq!(token["token_type"], "Bearer");

    let again = poll(&t, &app, &secret, &device_code).await;
    assert_error(&again, 400, "invalid_grant", "Bad Request");

    // The pair works: userinfo with the access token, a refresh with the refresh token.
    let userinfo = t
        .http
        .get(t.at("/oauth2/v3/userinfo"))
        .bearer_auth(field(&token, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let (status, refreshed) = post(
        &t,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", field(&token, "refresh_token")),
            ("client_id", app.client_id.as_str()),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(field(&refreshed, "access_token").starts_with("ya29."));
}

#[tokio::test]
async fn approved_through_the_store_denied_and_expired_codes() {
    let t = spawn().await;
    let (app, secret) = google_device_app(&t).await;
    let decide = |user_code: String, approve: bool| {
        let code = UserCode::normalize(&user_code).unwrap();
        let store = t.provider.store.clone();
        let (user, now) = (t.user.id, t.clock.now());
        async move {
            store
                .decide_device_code(code.digest(), user, approve, now)
                .await
                .unwrap()
        }
    };

    let approved = start(&t, &app, "email").await;
    assert!(decide(field(&approved, "user_code").to_owned(), true).await);
    let (status, token) = poll(&t, &app, &secret, field(&approved, "device_code")).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "email");
    assert!(token.get("id_token").is_none(), "no openid, no id_token");

    // With openid, the device gets an id_token, as from a code, but without a nonce.
    let signed_in = start(&t, &app, "openid email").await;
    assert!(decide(field(&signed_in, "user_code").to_owned(), true).await);
    let (status, token) = poll(&t, &app, &secret, field(&signed_in, "device_code")).await;
    assert_eq!(status, 200, "{token}");
    let (header, claims) = crate::oidc::verified(&t, field(&token, "id_token")).await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], app.client_id.as_str());
    assert_eq!(claims["azp"], app.client_id.as_str());
    assert_eq!(claims["sub"], t.user.id.to_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims.get("nonce").is_none(), "{claims}");

    let denied = start(&t, &app, "email").await;
    assert!(decide(field(&denied, "user_code").to_owned(), false).await);
    let answer = poll(&t, &app, &secret, field(&denied, "device_code")).await;
    assert_error(&answer, 403, "access_denied", "Forbidden");

    let expired = start(&t, &app, "email").await;
    t.clock.advance(1800);
    let user_code = field(&expired, "user_code").to_owned();
    assert!(
        !decide(user_code, true).await,
        "an expired code cannot be approved"
    );
    let answer = poll(&t, &app, &secret, field(&expired, "device_code")).await;
    assert_error(&answer, 400, "expired_token", "Bad Request");

    // Another client's device code is unknown to this one.
    let (other, other_secret) = google_device_app(&t).await;
    let theirs = start(&t, &app, "email").await;
    let answer = poll(&t, &other, &other_secret, field(&theirs, "device_code")).await;
    assert_error(&answer, 400, "invalid_grant", "Bad Request");
}
